"""Winograd's minimal filtering F(m x m, 3 x 3) for the 3 x 3 'same' convolution (Lavin & Gray
2016), m = 2 (`F2`) and m = 4 (`F4`).

A 3 x 3 convolution makes each m x m block of outputs from the (m+2) x (m+2) tile d of inputs
around it (tiles overlap by 2). Lavin & Gray's eq. (8) computes that block with (m+2)^2
multiplies per channel pair instead of 9 m^2:

    Y = A^T [ (G g G^T) (.) (B^T d B) ] A          (.) element-wise, summed over channels

with constant matrices B^T ((m+2) x (m+2)), G ((m+2) x 3), A^T (m x (m+2)) (`F2`, `F4`).
Summing over the input channels turns the element-wise products into (m+2)^2 matrix
products, one per tile position xi (`blas.matmul_into`):

    M[xi] = V[xi] @ U[xi]      V = B^T d B of all tiles (T', C), U = G g G^T (C, O)

The multiplies fall from 9 C O per output pixel to 4 C O (F2) or 2.25 C O (F4); the transforms
are a few passes over the activations, done a few images at a time so that V and M stay in
the CPU's caches (`chunks`). The float32 rounding grows with m (the transforms mix more inputs,
F4's with coefficients up to 8; `benchmarks/conv_dispatch.py --errors` prints it per shape).

The VJPs (same notation; `tinyvit.fast.conv` uses them):
  * input:  a 'same' 3x3 convolution of g with the kernel flipped in space and transposed in
    channels, w'[i, j] = w[2-i, 2-j]^T: `forward(g, flip(w))`.
  * kernel: dU[xi] = V[xi]^T @ dM[xi] with dM = A dY A^T per tile ((m+2)^2 products
    (C, T') @ (T', O), summed over the chunks), then dw = G^T dU G.

H and W need not be multiples of m: the padded image gets extra zero rows / columns and the
extra outputs are cut. Inside, arrays are raw (no autograd), so writes into buffers are safe.
Device arrays (CuPy) work too: every array is made like the input (`array_module`).

Shape legend: B batch, H, W height/width, C input channels, O output channels, m outputs per
tile side, a = m + 2 inputs per tile side, th, tw = ceil(H/m), ceil(W/m) tiles per column /
row, T' = B th (tw+1) tiles (one junk tile per row, see `input_transform`).
"""
import numpy as np

from collections import namedtuple

from ..arrays import array_module
from .blas import matmul_into

Winograd = namedtuple("Winograd", "m BT G AT")  # m outputs per tile side; B^T, G, A^T
F2 = Winograd(2,
              BT=((1, 0, -1, 0), (0, 1, 1, 0), (0, -1, 1, 0), (0, 1, 0, -1)),
              G=((1, 0, 0), (0.5, 0.5, 0.5), (0.5, -0.5, 0.5), (0, 0, 1)),
              AT=((1, 1, 1, 0), (0, 1, -1, -1)))
F4 = Winograd(4,  # Lavin & Gray 2016, section 4.2
              BT=((4, 0, -5, 0, 1, 0), (0, -4, -4, 1, 1, 0), (0, 4, -4, -1, 1, 0),
                  (0, -2, -1, 2, 1, 0), (0, 2, -1, -2, 1, 0), (0, 4, 0, -5, 0, 1)),
              G=((1 / 4, 0, 0), (-1 / 6, -1 / 6, -1 / 6), (-1 / 6, 1 / 6, -1 / 6),
                 (1 / 24, 1 / 12, 1 / 6), (1 / 24, -1 / 12, 1 / 6), (0, 0, 1)),
              AT=((1, 1, 1, 1, 1, 0), (0, 1, -1, 2, -2, 0), (0, 1, 1, 4, 4, 0),
                  (0, 1, -1, 8, -8, 1)))
CHUNK_BYTES = 2 << 20  # V or M of one chunk of images (`chunks`)


def _combine(coefs, parts, out):
    """out = sum_k coefs[k] * parts[k], written into `out` (raw arrays; +-1 as adds, 0 skipped).

    The first two terms go in one pass (`np.add` / `np.subtract` into out), the rest are added
    in place (F2's rows have 2 terms, F4's 2 to 4)."""
    terms = [(c, p) for c, p in zip(coefs, parts) if c != 0]
    (c0, p0), rest = terms[0], terms[1:]
    if rest and abs(c0) == 1 and abs(rest[0][0]) == 1:
        (c1, p1), rest = rest[0], rest[1:]
        if c0 == 1:
            (np.add if c1 == 1 else np.subtract)(p0, p1, out=out)
        elif c1 == 1:
            np.subtract(p1, p0, out=out)
        else:
            np.add(p0, p1, out=out)
            np.negative(out, out=out)
    elif c0 == 1:
        np.copyto(out, p0)
    else:
        np.multiply(p0, c0, out=out)
    for c, p in rest:
        if c == 1:
            out += p
        elif c == -1:
            out -= p
        else:
            out += p * c
    return out


def tiles(h, w, m):
    """Tiles per column and per row, (th, tw), for an H x W output in m x m blocks."""
    return -(-h // m), -(-w // m)


def input_transform(x, f=F2):
    """V = B^T d B of every a x a input tile: x (B, H, W, C) -> (a^2, T', C), contiguous.

    The zero-padded image, m (tw+1) pixels wide, is kept as its m phases of columns (column
    p = m q + r in phase r at q), (B, m th + 2, tw+1, C) each, so that every pass below runs
    over contiguous memory (a pass over every m-th pixel runs several times slower per
    element). Rows first: t = sum_k BT[i, k] xp[:, k::m] for each phase; the tile (b, ti, tj)
    then has its column k at phase k % m, place tau + k // m, tau = (b th + ti)(tw + 1) + tj,
    and the column sums are shifted contiguous passes. Of the T' = B th (tw+1) tiles, the last
    of each row (tj = tw) is junk that `output_transform` drops."""
    b, h, w, c = x.shape
    m, a = f.m, len(f.BT)
    th, tw = tiles(h, w, m)
    n = b * th * (tw + 1)  # T'
    phases = np.zeros_like(x, shape=(m, b, m * th + 2, tw + 1, c))  # padded columns by p % m
    phases[0, :, 1:h + 1, 1:1 + len(range(m - 1, w, m))] = x[:, :, m - 1::m]  # p = m q: x's p-1
    for r in range(1, m):
        phases[r, :, 1:h + 1, :len(range(r - 1, w, m))] = x[:, :, r - 1::m]
    t = np.zeros_like(x, shape=(m, n + 1, c))  # row sums of each phase, a zero tile after
    v = np.empty_like(x, shape=(a, a, n, c))  # (a, a, T', C)
    for i in range(a):
        for r in range(m):
            rows = [phases[r, :, k:k + m * th:m] for k in range(a)]  # a x (B, th, tw+1, C)
            _combine(f.BT[i], rows, t[r, :n].reshape(rows[0].shape))
        cols = [t[k % m, k // m:k // m + n] for k in range(a)]  # column k of every tile (T', C)
        for j in range(a):
            _combine(f.BT[j], cols, v[i, j])
    return v.reshape(a * a, n, c)  # (a^2, T', C)


def kernel_transform(w, f=F2):
    """U = G g G^T of a 3x3 kernel: w (3, 3, C, O) -> (a^2, C, O)."""
    g = array_module(w).asarray(f.G, dtype=w.dtype)  # (a, 3), where w is (host or device)
    u = np.tensordot(g, w, axes=(1, 0))  # (a, 3, C, O): G g
    u = np.tensordot(g, u, axes=(1, 1)).transpose(1, 0, 2, 3)  # (a, a, C, O): (G g) G^T
    return u.copy().reshape(len(g) ** 2, *w.shape[2:])  # (a^2, C, O)


def _outer(mat, like):
    """(mat (x) mat) as an array of like's dtype and kind (host or device): the transform of a
    tile's rows and columns at once."""
    mat = np.asarray(mat, dtype=np.float64)
    return array_module(like).asarray(np.kron(mat, mat), dtype=like.dtype)


def output_transform(mm, shape, f=F2, out=None):
    """Y = A^T M A of every tile: mm (a^2, T', O) -> the output (B, H, W, O) of an x of `shape`
    (written into `out` when given, a contiguous array of that shape).

    As one product, (A^T (x) A^T) (m^2, a^2) @ M (a^2, T' O): the m^2 outputs of every tile,
    then one copy that interleaves them into the image and drops the junk tiles."""
    b, h, w, _ = shape
    m = f.m
    th, tw = tiles(h, w, m)
    o = mm.shape[-1]
    ys = np.empty_like(mm, shape=(m * m, mm[0].size))  # (m^2, T' O)
    matmul_into(_outer(f.AT, mm), mm.reshape(len(mm), -1), ys)
    ys = ys.reshape(m, m, b, th, tw + 1, o)[..., :tw, :].transpose(2, 3, 0, 4, 1, 5)
    out = np.empty_like(mm, shape=(b, h, w, o)) if out is None else out  # (B, H, W, O)
    if (m * th, m * tw) == (h, w):
        out.reshape(b, th, m, tw, m, o)[...] = ys  # (B, th, m, tw, m, O) <- (B, th, m, tw, m, O)
    else:
        out[...] = ys.reshape(b, m * th, m * tw, o)[:, :h, :w]  # cut the outputs beyond H, W
    return out


def products(v, u):
    """The products M[xi] = V[xi] @ U[xi]: v (a^2, T', C), u (a^2, C, O) -> (a^2, T', O)."""
    mm = np.empty_like(v, shape=(len(v), v.shape[1], u.shape[-1]))  # (a^2, T', O)
    for xi in range(len(v)):
        matmul_into(v[xi], u[xi], mm[xi])
    return mm


def chunks(shape, c, o, itemsize, f=F2):
    """Slices of the batch small enough that one slice's V and M (a^2 T' max(C, O) numbers
    each) stay in the CPU's caches between the transforms and the products: CHUNK_BYTES."""
    b, h, w, _ = shape
    th, tw = tiles(h, w, f.m)
    per_image = len(f.BT) ** 2 * th * (tw + 1) * max(c, o) * itemsize
    step = max(1, min(b, CHUNK_BYTES // per_image))
    return [slice(s, min(s + step, b)) for s in range(0, b, step)]


def forward(x, w, f=F2):
    """x (B, H, W, C) convolved with w (3, 3, C, O), 'same' padding, stride 1 -> (B, H, W, O),
    a few images at a time (`chunks`)."""
    u = kernel_transform(w, f)  # (a^2, C, O)
    y = np.empty_like(x, shape=(*x.shape[:3], w.shape[-1]))  # (B, H, W, O)
    for s in chunks(x.shape, x.shape[-1], w.shape[-1], x.itemsize, f):
        output_transform(products(input_transform(x[s], f), u), x[s].shape, f, out=y[s])
    return y


def flip(w):
    """The kernel of the input gradient: w'[i, j] = w[2-i, 2-j]^T. (3, 3, C, O) -> (3, 3, O, C)."""
    return w[::-1, ::-1].transpose(0, 1, 3, 2)


def input_grad(g, w, f=F2):
    """dL/dx of `forward` for dL/dy = g (B, H, W, O): a Winograd convolution of g. -> (B,H,W,C)."""
    return forward(g, flip(w), f)


def output_transform_vjp(g, f=F2):
    """dM = A dY A^T of every tile: g (B, H, W, O) -> (a^2, T', O), zero on the junk tiles.

    The transpose of `output_transform`: the m x m blocks of g gathered per tile (m^2, T' O),
    then one product with (A (x) A) (a^2, m^2)."""
    b, h, w, o = g.shape
    m = f.m
    th, tw = tiles(h, w, m)
    gp = np.zeros_like(g, shape=(b, m * th, m * (tw + 1), o))  # (B, m th, m (tw+1), O)
    gp[:, :h, :w] = g
    blocks = gp.reshape(b, th, m, tw + 1, m, o).transpose(2, 4, 0, 1, 3, 5)  # (m,m,B,th,tw+1,O)
    blocks = blocks.copy().reshape(m * m, -1)  # (m^2, T' O)
    dm = np.empty_like(g, shape=(len(f.BT) ** 2, blocks.shape[1]))  # (a^2, T' O)
    matmul_into(_outer(f.AT, g).T, blocks, dm)
    return dm.reshape(len(dm), -1, o)  # (a^2, T', O)


def kernel_grad(x, g, f=F2):
    """dL/dw of `forward` for dL/dy = g: dU[xi] = sum over chunks of V[xi]^T @ dM[xi], then
    dw = G^T dU G. -> (3, 3, C, O)."""
    c, o, a = x.shape[-1], g.shape[-1], len(f.BT)
    du = np.empty_like(x, shape=(a * a, c, o))  # (a^2, C, O)
    for k, s in enumerate(chunks(x.shape, c, o, x.itemsize, f)):
        v, dm = input_transform(x[s], f), output_transform_vjp(g[s], f)  # (a^2, T', C|O)
        for xi in range(len(v)):
            matmul_into(v[xi].T, dm[xi], du[xi], accumulate=k > 0)
    gm = array_module(x).asarray(f.G, dtype=x.dtype)  # (a, 3)
    du = du.reshape(a, a, c, o)  # (a, a, C, O)
    dw = np.tensordot(gm, du, axes=(0, 0))  # (3, a, C, O): G^T dU
    return np.tensordot(gm, dw, axes=(0, 1)).transpose(1, 0, 2, 3).copy()  # (3, 3, C, O)
