"""Fast twin of `tinyvit.cnn.conv`: a 'same' k x k convolution by the fastest of four routes.

Each of the three parts (the forward pass, the input gradient, the kernel gradient) runs by one
of these routes, chosen per part and layer shape (`route`):

  taps      zero-pad the image by r = k // 2 and flatten it to rows, (B*(H+2r)*(W+2r), C). The
            kernel tap (i, j) reads, for every output pixel, the input row a fixed distance
            away, off = (i - r)(W + 2r) + (j - r); each of the k*k taps is one product on a
            contiguous view of the rows, added into the output by BLAS (`blas.matmul_into`,
            beta = 1): y[p] = sum_taps x_pad[p + off] @ W[i, j]. No k*k-wide copy is made.
            VJP, the same trick transposed: dW[i, j] = x_pad[p + off]^T @ g_pad[p],
            dx_pad[p + off] += g_pad[p] @ W[i, j]^T (g zero-padded: border rows add nothing).
  im2col    the fast im2col of `tinyvit.fast.cnn` and one product with K = k*k*C (and col2im
            in the VJP): the copy is 1/O of the product's work, cheap for wide outputs and
            small images where the taps' padded border costs more than the copy saves.
  winograd  (3 x 3 only) Winograd's F(2x2, 3x3), 16 products with 4 C O multiplies per output
            pixel instead of 9 C O (`tinyvit.fast.winograd`); a little more float32 rounding.
  winograd4 F(4x4, 3x3): 36 products, 2.25 C O multiplies per output pixel, but 20-40 times
            the taps' float32 rounding (`benchmarks/conv_dispatch.py --errors`) and seldom
            faster than F(2x2) in NumPy: it runs only where pinned (AUTOMATIC).

Which route: a table of timings measured on this machine, if there is one for this CPU, this
thread setting and this exact shape and dtype (`tinyvit.fast.tuning`: a JSON file in the user's
cache directory, $XDG_CACHE_HOME/tinyvit/conv_routes.json, else ~/.cache/...; written by
`python benchmarks/conv_dispatch.py --save`, which times every layer shape of the CNNs and
hybrids as training runs them and can be rerun or deleted at any time). Without an entry, the
deterministic rule `default_route`: taps from TAPS_MIN_PIXELS pixels and below TAPS_MAX_OUT
output channels, else im2col. The rule never takes Winograd: in whole training steps at two
threads it cost cnn-small and cnn-air time on the machine it was measured on (docs/RESULTS.md,
"Winograd"), so it runs only where a machine's own table picks it, or where pinned.
`pinned(route)` (or the environment variable TINYVIT_CONV_ROUTE) forces one route for every
shape it applies to, and "rule" the rule without the table: tests pin the route they test.
`tests/test_cnn.py` and `tests/test_winograd.py` check every route against the formula.

Shape legend: B batch, H, W height/width, C input channels, O output channels, k kernel size,
n = B (H+2r) (W+2r) padded rows.
"""
import os
from contextlib import contextmanager

import autograd.numpy as np
from autograd.extend import defvjp_argnums, primitive

from . import tuning, winograd
from .blas import matmul_into
from .cnn import _im2col_vjp, im2col

ROUTES = ("taps", "im2col", "winograd", "winograd4")  # in use (benchmarks/levers.py drops some)
KNOWN = ("taps", "im2col", "winograd", "winograd4", "rule")  # what `pinned` accepts
AUTOMATIC = ("taps", "im2col", "winograd")  # what a measured table may pick (F4: pinned only)
PARTS = ("forward", "input", "kernel")  # y, dL/dx, dL/dw
TAPS_MIN_PIXELS = 256  # H*W from which taps beat im2col (16 x 16 and up) ...
TAPS_MAX_OUT = 128  # ... below this many output channels
_PINNED = []  # the route `pinned` forces, innermost last


def use_taps(x_shape, w_shape):
    """True where the rule prefers the taps to im2col: large enough images, narrow outputs."""
    _, h, wd, _ = x_shape
    return h * wd >= TAPS_MIN_PIXELS and w_shape[-1] < TAPS_MAX_OUT


def default_route(part, x_shape, w_shape):
    """The rule without measurements, the same for every part: the taps or im2col
    (`use_taps`). Winograd only where a measured table or a pin says so."""
    return "taps" if use_taps(x_shape, w_shape) else "im2col"


def routes_for(w_shape):
    """The routes that can run a kernel of this shape (Winograd: 3 x 3 only)."""
    return tuple(r for r in ROUTES if not r.startswith("winograd") or w_shape[:2] == (3, 3))


def _pin():
    """The pinned route ("rule" included) or None; the innermost `pinned`, else the env var."""
    pin = _PINNED[-1] if _PINNED else os.environ.get("TINYVIT_CONV_ROUTE") or None
    if pin is not None and pin not in KNOWN:
        raise ValueError(f"TINYVIT_CONV_ROUTE / fast.conv.pinned: expected one of "
                         f"{', '.join(KNOWN)}, found {pin!r}")
    return pin


@contextmanager
def pinned(route):
    """`with pinned("winograd"):` every convolution runs by `route` where it applies (else by
    the rule); "rule": the rule, ignoring any measured table."""
    _PINNED.append(route)
    try:
        _pin()  # fail here, not inside a gradient, on a wrong name
        yield
    finally:
        _PINNED.pop()


def route(part, x_shape, w_shape, dtype):
    """The route of one part ("forward", "input", "kernel") for this shape: pinned, else the
    measured table's fastest of the AUTOMATIC routes, else `default_route`."""
    pin, options = _pin(), routes_for(w_shape)
    if pin in options:
        return pin
    if pin is None:
        best = tuning.fastest(part, x_shape, w_shape, dtype,
                              [r for r in options if r in AUTOMATIC])
        if best is not None:
            return best
    return default_route(part, x_shape, w_shape)


# ---------------------------------------------------------------------------------------------
# The routes, each part as a function of raw arrays (x, w, g): g unused by the forward pass
# ---------------------------------------------------------------------------------------------


def _padded_rows(x, r):
    """x (B, H, W, C) zero-padded by r and flattened to rows (n, C); a new array."""
    b, h, w, c = x.shape
    xp = np.zeros_like(x, shape=(b, h + 2 * r, w + 2 * r, c))  # (B, H+2r, W+2r, C)
    xp[:, r:r + h, r:r + w] = x
    return xp.reshape(-1, c)  # (n, C)


def _taps(shape, k):
    """(row offset, i, j) of every kernel tap, and the range [lo, hi) of rows all taps can read."""
    b, h, w, _ = shape
    r = k // 2
    wp = w + 2 * r
    n = b * (h + 2 * r) * wp
    lo = r * wp + r
    return [((i - r) * wp + (j - r), i, j) for i in range(k) for j in range(k)], lo, n - lo


def _crop(rows, shape, r):
    """Rows over the padded grid (n, O) -> the interior (B, H, W, O), a contiguous copy."""
    b, h, w, _ = shape
    grid = rows.reshape(b, h + 2 * r, w + 2 * r, rows.shape[-1])  # (B, H+2r, W+2r, O)
    return grid[:, r:r + h, r:r + w].copy()  # (B, H, W, O)


def forward_taps(x, w, g=None):
    """y = sum over taps of row-offset views @ W[i, j]. (B, H, W, C) -> (B, H, W, O)."""
    k = w.shape[0]
    rows = _padded_rows(x, k // 2)  # (n, C)
    taps, lo, hi = _taps(x.shape, k)
    out = np.empty_like(x, shape=(len(rows), w.shape[-1]))  # (n, O); rows outside [lo, hi) cut
    for t, (off, i, j) in enumerate(taps):
        matmul_into(rows[lo + off:hi + off], w[i, j], out[lo:hi], accumulate=t > 0)
    return _crop(out, x.shape, k // 2)


def input_taps(x, w, g):
    """dx_pad[p + off] += g_pad[p] @ W[i, j]^T over the taps. g (B, H, W, O) -> (B, H, W, C)."""
    k = w.shape[0]
    grows = _padded_rows(g, k // 2)  # (n, O)
    taps, lo, hi = _taps(x.shape, k)
    dx = np.zeros_like(x, shape=(len(grows), x.shape[-1]))  # (n, C)
    for off, i, j in taps:
        matmul_into(grows[lo:hi], w[i, j].T, dx[lo + off:hi + off], accumulate=True)
    return _crop(dx, x.shape, k // 2)


def kernel_taps(x, w, g):
    """dW[i, j] = x_pad[p + off]^T @ g_pad[p] over the padded rows. -> (k, k, C, O)."""
    k = w.shape[0]
    rows, grows = _padded_rows(x, k // 2), _padded_rows(g, k // 2)  # (n, C), (n, O)
    taps, lo, hi = _taps(x.shape, k)
    dw = np.empty_like(w)
    for off, i, j in taps:
        matmul_into(rows[lo + off:hi + off].T, grows[lo:hi], dw[i, j])  # (C, O)
    return dw


def forward_im2col(x, w, g=None):
    """im2col, then one product with the (k*k*C, O) kernel. (B, H, W, C) -> (B, H, W, O)."""
    k, o = w.shape[0], w.shape[-1]
    return (im2col(x, k) @ w.reshape(-1, o)).reshape(*x.shape[:3], o)


def input_im2col(x, w, g):
    """col2im(g @ W^T). g (B, H, W, O) -> (B, H, W, C)."""
    k, o = w.shape[0], w.shape[-1]
    return _im2col_vjp(None, x, k)(g.reshape(-1, o) @ w.reshape(-1, o).T)


def kernel_im2col(x, w, g):
    """im2col(x)^T @ g. -> (k, k, C, O)."""
    k, o = w.shape[0], w.shape[-1]
    return (im2col(x, k).T @ g.reshape(-1, o)).reshape(w.shape)


IMPLEMENTATIONS = {  # (part, route): f(x, w, g) on raw arrays
    ("forward", "taps"): forward_taps,
    ("input", "taps"): input_taps,
    ("kernel", "taps"): kernel_taps,
    ("forward", "im2col"): forward_im2col,
    ("input", "im2col"): input_im2col,
    ("kernel", "im2col"): kernel_im2col,
}
for _name, _f in (("winograd", winograd.F2), ("winograd4", winograd.F4)):
    IMPLEMENTATIONS.update({
        ("forward", _name): lambda x, w, g=None, f=_f: winograd.forward(x, w, f),
        ("input", _name): lambda x, w, g, f=_f: winograd.input_grad(g, w, f),
        ("kernel", _name): lambda x, w, g, f=_f: winograd.kernel_grad(x, g, f)})


def run_part(part, x, w, g=None, by=None):
    """One part of the convolution on raw arrays, by route `by` (None: `route` chooses)."""
    by = by or route(part, x.shape, w.shape, x.dtype)
    return IMPLEMENTATIONS[part, by](x, w, g)


# ---------------------------------------------------------------------------------------------
# The primitive
# ---------------------------------------------------------------------------------------------


@primitive
def convolve(x, w):
    """x (B, H, W, C) convolved with w (k, k, C, O), 'same' padding, stride 1 -> (B, H, W, O).

    Each part by the route `route` picks for this shape; no bias."""
    return run_part("forward", x, w)


def _convolve_vjp(argnums, ans, args, kwargs):
    x, w = args

    def vjp(g):  # g (B, H, W, O)
        return tuple(run_part("input" if a == 0 else "kernel", x, w, g) for a in argnums)

    return vjp


defvjp_argnums(convolve, _convolve_vjp)


def conv(p, x, k=3):
    """`tinyvit.cnn.conv` with `convolve`: (B, H, W, Cin) -> (B, H, W, Cout), bias if p has one."""
    y = convolve(x, p["w"])  # (B, H, W, Cout)
    return y + p["b"] if "b" in p else y
