"""Fast twin of `tinyvit.cnn.conv`: a 'same' k x k convolution without an im2col buffer.

Zero-pad the image by r = k // 2 and flatten it to rows, (B*(H+2r)*(W+2r), C). The pixel
(i, j) tap of the kernel then reads, for every output pixel, the input row a fixed distance
away: off = (i - r)(W + 2r) + (j - r). So each of the k*k taps is one matrix product on a
contiguous view of the padded rows, accumulated into one output:

    y[p] = sum_taps x_pad[p + off] @ W[i, j]            (p over the padded grid; border cut)

No k*k-wide copy of the image is made (im2col makes one; `tinyvit.cnn.im2col`). The VJP is the
same trick transposed: dW[i, j] = x_pad[p + off]^T @ g_pad[p] and dx_pad[p + off] += g_pad[p]
@ W[i, j]^T, with g zero-padded so the border rows add nothing. Each tap's product is added
into the output by the BLAS call itself (`blas.matmul_into`, beta = 1), not through a
temporary and a second pass. Where the copy is cheap the taps do not pay, and the primitive
runs im2col and one product instead (the fast im2col of `tinyvit.fast.cnn`): on small images
(below TAPS_MIN_PIXELS pixels the padded border costs more than the copy saves) and for wide
outputs (from TAPS_MAX_OUT channels the copy, 1/O of the product's work, is small, and one
product with K = k*k*C runs faster than k*k with K = C). `benchmarks/conv_dispatch.py` times
both routes on every layer shape of the CNNs and hybrids (docs/RESULTS.md, "Speed").
`tests/test_cnn.py` checks it against the formula (values and gradients).

Shape legend: B batch, H, W height/width, C input channels, O output channels, k kernel size,
n = B (H+2r) (W+2r) padded rows.
"""
import autograd.numpy as np
from autograd.extend import defvjp_argnums, primitive

from .blas import matmul_into
from .cnn import _im2col_vjp, im2col

TAPS_MIN_PIXELS = 256  # H*W from which taps beat im2col (16 x 16 and up) ...
TAPS_MAX_OUT = 128  # ... below this many output channels


def use_taps(x_shape, w_shape):
    """True where the taps beat im2col: large enough images, narrow enough outputs."""
    _, h, wd, _ = x_shape
    return h * wd >= TAPS_MIN_PIXELS and w_shape[-1] < TAPS_MAX_OUT


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


@primitive
def convolve(x, w):
    """x (B, H, W, C) convolved with w (k, k, C, O), 'same' padding, stride 1 -> (B, H, W, O).

    By k*k products on row-offset views (or im2col where that is faster: `use_taps`); no bias.
    """
    b, h, wd, c = x.shape
    k, o = w.shape[0], w.shape[-1]
    if not use_taps(x.shape, w.shape):
        return (im2col(x, k) @ w.reshape(k * k * c, o)).reshape(b, h, wd, o)
    rows = _padded_rows(x, k // 2)  # (n, C)
    taps, lo, hi = _taps(x.shape, k)
    out = np.empty_like(x, shape=(len(rows), o))  # (n, O); rows outside [lo, hi) are cut
    for t, (off, i, j) in enumerate(taps):  # in place: raw arrays here
        matmul_into(rows[lo + off:hi + off], w[i, j], out[lo:hi], accumulate=t > 0)
    return _crop(out, x.shape, k // 2)


def _convolve_vjp(argnums, ans, args, kwargs):
    x, w = args
    c = x.shape[-1]
    k, o = w.shape[0], w.shape[-1]

    def vjp_im2col(g):  # g (B, H, W, O)
        g2 = g.reshape(-1, o)  # (B*H*W, O)
        out = []
        for a in argnums:
            if a == 0:
                cols_grad = g2 @ w.reshape(k * k * c, o).T  # (B*H*W, k*k*C)
                out.append(_im2col_vjp(None, x, k)(cols_grad))  # col2im
            else:
                out.append((im2col(x, k).T @ g2).reshape(w.shape))  # (k*k*C, O) -> w's shape
        return tuple(out)

    def vjp_taps(g):  # g (B, H, W, O)
        rows, grows = _padded_rows(x, k // 2), _padded_rows(g, k // 2)  # (n, C), (n, O)
        taps, lo, hi = _taps(x.shape, k)
        gi = grows[lo:hi]  # (hi - lo, O); zero on the border rows
        dw = np.empty_like(w)
        dx = np.zeros_like(rows) if 0 in argnums else None  # (n, C)
        for off, i, j in taps:
            if 1 in argnums:
                matmul_into(rows[lo + off:hi + off].T, gi, dw[i, j])  # (C, O)
            if dx is not None:
                matmul_into(gi, w[i, j].T, dx[lo + off:hi + off], accumulate=True)  # (hi-lo, C)
        return tuple(_crop(dx, x.shape, k // 2) if a == 0 else dw for a in argnums)

    return vjp_taps if use_taps(x.shape, w.shape) else vjp_im2col


defvjp_argnums(convolve, _convolve_vjp)


def conv(p, x, k=3):
    """`tinyvit.cnn.conv` with `convolve`: (B, H, W, Cin) -> (B, H, W, Cout), bias if p has one."""
    y = convolve(x, p["w"])  # (B, H, W, Cout)
    return y + p["b"] if "b" in p else y
