"""Winograd's minimal filtering F(2x2, 3x3) for the 3 x 3 'same' convolution (Lavin & Gray 2016).

A 3 x 3 convolution makes each 2 x 2 block of outputs from the 4 x 4 tile d of inputs around
it (tiles overlap by 2). Lavin & Gray's eq. (8) computes that block with 16 multiplies per
channel pair instead of 36:

    Y = A^T [ (G g G^T) (.) (B^T d B) ] A          (.) element-wise, summed over channels

with the constant matrices BT (4x4), G (4x3), AT (2x4) below. Summing over the input channels
turns the 16 element-wise products into 16 matrix products, one per tile position (xi, nu):

    M[xi, nu] = V[xi, nu] @ U[xi, nu]      V = B^T d B over all tiles (T, C), U = G g G^T (C, O)

done by `blas.matmul_into`; the transforms are additions of strided views (+-1 entries),
a few passes over the activations. The multiplies fall from 9 C O to 4 C O per output pixel;
the float32 rounding grows a little (the transforms add up to 4 inputs before multiplying;
`benchmarks/conv_dispatch.py --errors` prints it per layer shape).

The VJPs (same notation, `tinyvit.fast.conv` uses them):
  * input:  a 'same' 3x3 convolution of g with the kernel flipped in space and transposed in
    channels, w'[i, j] = w[2-i, 2-j]^T: `forward(g, flip(w))`.
  * kernel: dU[xi, nu] = V[xi, nu]^T @ dM[xi, nu] with dM = A dY A^T per tile (16 products
    (C, T) @ (T, O)), then dw = G^T dU G.

H and W need not be even: the padded image gets an extra zero row / column and the extra
outputs are cut. Inside, arrays are raw (no autograd), so writes into buffers are safe.

Shape legend: B batch, H, W height/width, C input channels, O output channels,
th, tw = ceil(H/2), ceil(W/2) tiles per column / row, T = B th tw tiles, 16 = 4 x 4 positions.
"""
import numpy as np

from .blas import matmul_into

BT = ((1, 0, -1, 0), (0, 1, 1, 0), (0, -1, 1, 0), (0, 1, 0, -1))  # input transform B^T (4, 4)
G = ((1, 0, 0), (0.5, 0.5, 0.5), (0.5, -0.5, 0.5), (0, 0, 1))  # kernel transform (4, 3)
AT = ((1, 1, 1, 0), (0, 1, -1, -1))  # output transform A^T (2, 4)
M_OUT, TILE = 2, 4  # outputs per tile side, inputs per tile side (M_OUT + 3 - 1)


def _combine(coefs, parts, out):
    """out = sum_k coefs[k] * parts[k], written into `out` (raw arrays; +-1 as adds, 0 skipped).

    The first two terms go in one pass (`np.add` / `np.subtract` into out), the rest are added
    in place: for BT and AT every row has 2 or 3 terms."""
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


def tiles(h, w):
    """Tiles per column and per row, (th, tw), for an H x W output."""
    return -(-h // M_OUT), -(-w // M_OUT)


def input_transform(x):
    """V = B^T d B of every 4x4 input tile: x (B, H, W, C) -> (16, T', C), contiguous.

    The zero-padded image is 2(tw+1) pixels wide and kept as its even and its odd columns,
    (B, 2th+2, tw+1, C) each, so that every pass below runs over contiguous memory (a pass
    over every other pixel runs several times slower per element). Rows first: t = sum_k
    BT[i, k] xp[:, k::2] for both halves; the tile (b, ti, m) then has its four columns at
    even[tau], odd[tau], even[tau+1], odd[tau+1], tau = (b th + ti)(tw + 1) + m, and the column
    sums are shifted contiguous passes. T' = B th (tw+1) tiles: the last of each row (m = tw)
    is junk that `output_transform` drops."""
    b, h, w, c = x.shape
    th, tw = tiles(h, w)
    n = b * th * (tw + 1)  # T'
    halves = np.zeros_like(x, shape=(2, b, 2 * th + 2, tw + 1, c))  # even, odd padded columns
    halves[0, :, 1:h + 1, 1:1 + w // 2] = x[:, :, 1::2]  # padded column 2m is x's 2m - 1
    halves[1, :, 1:h + 1, :(w + 1) // 2] = x[:, :, 0::2]  # padded column 2m + 1 is x's 2m
    t = np.zeros_like(x, shape=(2, n + 1, c))  # row sums of both halves, a zero tile after
    v = np.empty_like(x, shape=(TILE, TILE, n, c))  # (4, 4, T', C)
    for i in range(TILE):
        for half in range(2):
            rows = [halves[half, :, k:k + 2 * th:2] for k in range(TILE)]  # (B, th, tw+1, C)
            _combine(BT[i], rows, t[half, :n].reshape(rows[0].shape))
        cols = [t[0, :n], t[1, :n], t[0, 1:], t[1, 1:]]  # columns 2 tau + 0, 1, 2, 3: (T', C)
        for j in range(TILE):
            _combine(BT[j], cols, v[i, j])
    return v.reshape(TILE * TILE, n, c)  # (16, T', C)


def kernel_transform(w):
    """U = G g G^T of a 3x3 kernel: w (3, 3, C, O) -> (16, C, O)."""
    g = np.asarray(G, dtype=w.dtype)  # (4, 3)
    u = np.tensordot(g, w, axes=(1, 0))  # (4, 3, C, O): G g
    u = np.tensordot(g, u, axes=(1, 1)).transpose(1, 0, 2, 3)  # (4, 4, C, O): (G g) G^T
    return np.ascontiguousarray(u).reshape(TILE * TILE, *w.shape[2:])  # (16, C, O)


def output_transform(m, shape):
    """Y = A^T M A of every tile: m (16, T', O) -> the output (B, H, W, O) of an x of `shape`.

    As one product, (A^T (x) A^T) (4, 16) @ M (16, T' O): the four outputs of every tile, then
    one copy that interleaves them into the image and drops the junk tiles."""
    b, h, w, _ = shape
    th, tw = tiles(h, w)
    o = m.shape[-1]
    y4 = np.empty_like(m, shape=(M_OUT * M_OUT, m[0].size))  # (4, T' O)
    matmul_into(np.kron(AT, AT).astype(m.dtype), m.reshape(len(m), -1), y4)
    y4 = y4.reshape(M_OUT, M_OUT, b, th, tw + 1, o)[..., :tw, :]  # (2, 2, B, th, tw, O)
    y = np.ascontiguousarray(y4.transpose(2, 3, 0, 4, 1, 5))  # (B, th, 2, tw, 2, O)
    y = y.reshape(b, M_OUT * th, M_OUT * tw, o)  # (B, 2th, 2tw, O)
    return y if (M_OUT * th, M_OUT * tw) == (h, w) else y[:, :h, :w].copy()  # (B, H, W, O)


def products(v, u):
    """The 16 products M[xi] = V[xi] @ U[xi]: v (16, T', C), u (16, C, O) -> (16, T', O)."""
    m = np.empty_like(v, shape=(len(v), v.shape[1], u.shape[-1]))  # (16, T', O)
    for xi in range(len(v)):
        matmul_into(v[xi], u[xi], m[xi])
    return m


def forward(x, w):
    """x (B, H, W, C) convolved with w (3, 3, C, O), 'same' padding, stride 1 -> (B, H, W, O)."""
    return output_transform(products(input_transform(x), kernel_transform(w)), x.shape)


def flip(w):
    """The kernel of the input gradient: w'[i, j] = w[2-i, 2-j]^T. (3, 3, C, O) -> (3, 3, O, C)."""
    return w[::-1, ::-1].transpose(0, 1, 3, 2)


def input_grad(g, w):
    """dL/dx of `forward` for dL/dy = g (B, H, W, O): a Winograd convolution of g. -> (B,H,W,C)."""
    return forward(g, flip(w))


def output_transform_vjp(g):
    """dM = A dY A^T of every tile: g (B, H, W, O) -> (16, T', O), zero on the junk tiles.

    The transpose of `output_transform`: the 2x2 blocks of g gathered per tile (4, T' O),
    then one product with (A (x) A) (16, 4)."""
    b, h, w, o = g.shape
    th, tw = tiles(h, w)
    gp = np.zeros_like(g, shape=(b, 2 * th, 2 * (tw + 1), o))  # (B, 2th, 2tw+2, O)
    gp[:, :h, :w] = g
    blocks = gp.reshape(b, th, 2, tw + 1, 2, o).transpose(2, 4, 0, 1, 3, 5)  # (2,2,B,th,tw+1,O)
    blocks = np.ascontiguousarray(blocks).reshape(M_OUT * M_OUT, -1)  # (4, T' O)
    dm = np.empty_like(g, shape=(TILE * TILE, blocks.shape[1]))  # (16, T' O)
    matmul_into(np.kron(AT, AT).T.astype(g.dtype), blocks, dm)
    return dm.reshape(TILE * TILE, -1, o)  # (16, T', O)


def kernel_grad(x, g):
    """dL/dw of `forward` for dL/dy = g: dU[xi] = V[xi]^T @ dM[xi], dw = G^T dU G. -> (3,3,C,O)."""
    v, dm = input_transform(x), output_transform_vjp(g)  # (16, T', C), (16, T', O)
    du = np.empty_like(dm, shape=(len(v), x.shape[-1], dm.shape[-1]))  # (16, C, O)
    for xi in range(len(v)):
        matmul_into(v[xi].T, dm[xi], du[xi])
    gm = np.asarray(G, dtype=x.dtype)  # (4, 3)
    du = du.reshape(TILE, TILE, *du.shape[1:])  # (4, 4, C, O)
    dw = np.tensordot(gm, du, axes=(0, 0))  # (3, 4, C, O): G^T dU
    return np.ascontiguousarray(np.tensordot(gm, dw, axes=(0, 1)).transpose(1, 0, 2, 3))
