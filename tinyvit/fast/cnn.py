"""Fast twins of the CNN's formulas in `tinyvit.cnn`, as autograd primitives with hand VJPs.

    im2col      autograd's VJP of slicing is `np.add.at`; here col2im adds each window back
    max_pool    autograd's VJP of `max` divides by an int64 tie count and runs in float64;
                here each gradient goes to one maximum (the first corner, row-major)
    group_norm  a few passes over the activations in its VJP instead of autograd's dozen
    batch_norm  the same for BatchNorm with the batch's statistics (per channel over B, H, W)

`tests/test_fast.py` checks each against its formula (values and gradients) and finite
differences. Inside a primitive the arrays are raw (untraced), so in-place writes are safe.

Shape legend: B batch, H, W height/width, C channels, k kernel size, G groups, P = H*W pixels.
"""
import autograd.numpy as np
from autograd.extend import defvjp, defvjp_argnums, primitive

from ..cnn import pad

# ---------------------------------------------------------------------------------------------
# im2col and its VJP, col2im
# ---------------------------------------------------------------------------------------------


@primitive
def im2col(x, k=3):
    """im2col as a primitive: the same windows copied into one buffer; its VJP (col2im) adds each
    window back in place (autograd's VJP of the formula's slices runs np.add.at)."""
    b, h, w, c = x.shape
    padded = pad(x, k // 2)  # (B, H+2r, W+2r, C)
    cols = np.empty_like(x, shape=(b, h, w, k, k, c))  # (B, H, W, k, k, C)
    for i in range(k):
        for j in range(k):
            cols[:, :, :, i, j, :] = padded[:, i:i + h, j:j + w, :]
    return cols.reshape(b * h * w, k * k * c)  # (B*H*W, k*k*C)


_CHUNK = 8  # images per col2im pass: a chunk's padded buffer stays in the CPU cache


def _im2col_vjp(ans, x, k=3):
    """col2im: add each shifted window's gradient back where it was read from, then crop.

    Done for a few images at a time, and each window's gradient is first copied to a
    contiguous buffer: NumPy adds contiguous rows faster than rows strided by k*k*C, and the
    small padded buffer stays in cache across the k*k additions (faster than one pass over the
    whole batch).
    """
    b, h, w, c = x.shape
    r = k // 2

    def vjp(g):  # g (B*H*W, k*k*C)
        g = g.reshape(b, h, w, k, k, c)  # (B, H, W, k, k, C)
        dxp = np.zeros_like(x, shape=(b, h + 2 * r, w + 2 * r, c))  # (B, H+2r, W+2r, C)
        buf = np.empty_like(x, shape=(min(b, _CHUNK), h, w, c))  # (chunk, H, W, C)
        for s in range(0, b, _CHUNK):
            d, gs = dxp[s:s + _CHUNK], g[s:s + _CHUNK]  # views of one chunk of images
            t = buf[:len(d)]
            for i in range(k):
                for j in range(k):
                    t[...] = gs[:, :, :, i, j, :]  # contiguous copy of one window's gradient
                    d[:, i:i + h, j:j + w, :] += t  # in place: raw arrays here
        return dxp[:, r:r + h, r:r + w, :].copy()  # (B, H, W, C) contiguous crop

    return vjp


defvjp(im2col, _im2col_vjp)



# ---------------------------------------------------------------------------------------------
# 2 x 2 max pooling
# ---------------------------------------------------------------------------------------------


_CORNERS = ((0, 0), (0, 1), (1, 0), (1, 1))  # the order in which ties are broken


@primitive
def max_pool(x):
    """2x2 max pooling whose VJP sends each gradient to one maximum in float32 (autograd's VJP
    of the formula's max splits ties, dividing by an int64 count in float64).
    (B, H, W, C) -> (B, H/2, W/2, C)."""
    b, h, w, c = x.shape
    x6 = x.reshape(b, h // 2, 2, w // 2, 2, c)  # (B, H/2, 2, W/2, 2, C)
    top = np.maximum(x6[:, :, 0, :, 0], x6[:, :, 0, :, 1])  # (B, H/2, W/2, C)
    bottom = np.maximum(x6[:, :, 1, :, 0], x6[:, :, 1, :, 1])  # (B, H/2, W/2, C)
    return np.maximum(top, bottom)  # (B, H/2, W/2, C)


def _max_pool_vjp(ans, x):
    """dx = g at the first corner (row-major) that holds the block's max, 0 elsewhere."""
    b, h, w, c = x.shape

    def vjp(g):  # g (B, H/2, W/2, C)
        x6 = x.reshape(b, h // 2, 2, w // 2, 2, c)  # (B, H/2, 2, W/2, 2, C)
        dx = np.empty_like(x6)
        free = np.ones_like(ans, dtype=bool)  # (B, H/2, W/2, C): no maximum routed yet
        for i, j in _CORNERS:
            hit = (x6[:, :, i, :, j] == ans) & free
            dx[:, :, i, :, j] = g * hit  # bool * float32 stays float32
            free &= ~hit
        return dx.reshape(b, h, w, c)  # (B, H, W, C)

    return vjp


defvjp(max_pool, _max_pool_vjp)


# ---------------------------------------------------------------------------------------------
# GroupNorm
# ---------------------------------------------------------------------------------------------


def _pixel_sums(x):
    """Raw-array helper: per-sample per-channel sums over pixels, (B, P, C) -> (B, C).

    Written as a product with a vector of ones: NumPy's `x.sum(1)` over the middle axis of a
    narrow array runs several times slower (see docs/CONVENTIONS.md).
    """
    return np.ones_like(x, shape=(x.shape[1],)) @ x  # (B, C)


def _group_mean(s, groups, inv_n):
    """Per-channel sums (B, C) -> the mean of each channel's group, repeated per channel (B, 1, C).

    Statistics per channel, not per group (B, 1, G, 1), keep every elementwise pass over the
    activations on (B, P, C) arrays, whose inner loops are C long instead of C/G (2x faster).
    """
    bs, c = s.shape
    m = s.reshape(bs, groups, c // groups).sum(2, keepdims=True) * inv_n  # (B, G, 1)
    return np.broadcast_to(m, (bs, groups, c // groups)).reshape(bs, 1, c)  # (B, 1, C)


def _group_normalise(x, groups, eps):
    """Raw-array helper: x_hat (B, H*W, C), a new array, and 1/std per channel (B, 1, C)."""
    bs, h, w, c = x.shape
    inv_n = 1.0 / (h * w * (c // groups))
    xr = x.reshape(bs, h * w, c)  # (B, H*W, C)
    xc = xr - _group_mean(_pixel_sums(xr), groups, inv_n)  # (B, H*W, C) centred
    var = _group_mean(_pixel_sums(xc * xc), groups, inv_n)  # (B, 1, C)
    rstd = 1.0 / np.sqrt(var + eps)
    xc *= rstd  # in place: a fresh raw array
    return xc, rstd


@primitive
def group_norm(x, g, b, groups, eps=1e-5):
    """GroupNorm with a hand VJP: a few passes over the activations instead of autograd's dozen,
    statistics per channel so every pass runs on (B, P, C). x (B, H, W, C) -> same."""
    y, _ = _group_normalise(x, groups, eps)  # (B, H*W, C)
    y *= g  # in place: one new array in all
    y += b
    return y.reshape(x.shape)  # (B, H, W, C)


def _group_norm_vjp(argnums, ans, args, kwargs):
    x, g, b, groups = args[:4]
    eps = args[4] if len(args) > 4 else kwargs.get("eps", 1e-5)
    bs, h, w, c = x.shape
    inv_n = 1.0 / (h * w * (c // groups))

    def vjp(dy):  # dy (B, H, W, C)
        x_hat, rstd = _group_normalise(x, groups, eps)  # recomputed, not kept alive
        dy = dy.reshape(bs, h * w, c)  # (B, H*W, C)
        s_dy = _pixel_sums(dy)  # (B, C) per-channel sums
        s_dyx = _pixel_sums(dy * x_hat)  # (B, C)
        out = []
        for i in argnums:
            if i == 0:  # dx = rstd (dxh - mean(dxh) - x_hat mean(dxh x_hat)), dxh = dy g
                m1 = _group_mean(s_dy * g, groups, inv_n)  # (B, 1, C)
                m2 = _group_mean(s_dyx * g, groups, inv_n)  # (B, 1, C)
                dx = dy * g  # (B, H*W, C)
                dx -= m1
                x_hat *= m2  # in place: x_hat is not needed after this
                dx -= x_hat
                dx *= rstd
                out.append(dx.reshape(bs, h, w, c))  # (B, H, W, C)
            elif i == 1:
                out.append(s_dyx.sum(0))  # (C,)
            elif i == 2:
                out.append(s_dy.sum(0))  # (C,)
            else:
                raise ValueError("group_norm: groups and eps are not differentiable")
        return tuple(out)

    return vjp


defvjp_argnums(group_norm, _group_norm_vjp)


# ---------------------------------------------------------------------------------------------
# BatchNorm (training: the batch's statistics)
# ---------------------------------------------------------------------------------------------


def _batch_normalise(x, eps):
    """Raw-array helper: x_hat (R, C) over the rows R = B*H*W, a new array, and 1/std (C,)."""
    xr = x.reshape(-1, x.shape[-1])  # (R, C)
    inv_n = 1.0 / len(xr)
    ones = np.ones_like(xr, shape=(len(xr),))  # (R,) column sums as products (see _pixel_sums)
    xc = xr - (ones @ xr) * inv_n  # (R, C) centred
    rstd = 1.0 / np.sqrt((ones @ (xc * xc)) * inv_n + eps)  # (C,)
    xc *= rstd  # in place: a fresh raw array
    return xc, rstd, ones


@primitive
def batch_norm(x, g, b, eps=1e-5):
    """BatchNorm with the batch's statistics, with a hand VJP (two column sums of the gradient
    and one fused pass instead of autograd's dozen). x (B, H, W, C) -> same."""
    y, _, _ = _batch_normalise(x, eps)  # (R, C)
    y *= g  # in place: one new array in all
    y += b
    return y.reshape(x.shape)  # (B, H, W, C)


def _batch_norm_vjp(argnums, ans, args, kwargs):
    x, g = args[:2]
    eps = args[3] if len(args) > 3 else kwargs.get("eps", 1e-5)

    def vjp(dy):  # dy (B, H, W, C)
        x_hat, rstd, ones = _batch_normalise(x, eps)  # recomputed, not kept alive
        dy = dy.reshape(x_hat.shape)  # (R, C)
        s_dy = ones @ dy  # (C,) column sums
        s_dyx = ones @ (dy * x_hat)  # (C,)
        out = []
        for i in argnums:
            if i == 0:  # dx = g rstd (dy - mean(dy) - x_hat mean(dy x_hat))
                inv_n = 1.0 / len(x_hat)
                x_hat *= s_dyx * inv_n  # in place: x_hat is not needed after this
                dx = dy - s_dy * inv_n  # (R, C)
                dx -= x_hat
                dx *= g * rstd
                out.append(dx.reshape(x.shape))  # (B, H, W, C)
            elif i == 1:
                out.append(s_dyx)  # (C,)
            elif i == 2:
                out.append(s_dy)  # (C,)
            else:
                raise ValueError("batch_norm: eps is not differentiable")
        return tuple(out)

    return vjp


defvjp_argnums(batch_norm, _batch_norm_vjp)
