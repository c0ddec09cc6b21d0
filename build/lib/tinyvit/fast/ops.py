"""Fast twins of `tinyvit.ops`: the same functions as autograd primitives with hand VJPs.

Autograd's generic VJPs of the formulas are correct but slow here (several passes over big
tensors, float64 upcasts, `cosh` in tanh's VJP, `np.add.at` for `z[:, 0]`); these do one
fused pass each, update freshly made arrays in place and keep float32 float32. Inside a
primitive the arrays are raw (untraced), so in-place writes are safe. `tests/test_fast.py`
checks every twin against its formula (values and gradients) and finite differences.

Shape legend: R rows (any leading axes), D features (the last axis), B batch, N tokens, K classes.
"""
import numpy as onp

import autograd.numpy as np
from autograd.extend import defvjp, defvjp_argnums, primitive

from ..ops import GELU_A, GELU_C, smoothed_targets

# ---------------------------------------------------------------------------------------------
# LayerNorm
# ---------------------------------------------------------------------------------------------


def _normalise(x, eps):
    """x_hat and 1/std over the last axis (x_hat is a new array)."""
    mu = x.mean(-1, keepdims=True, dtype=x.dtype)  # (..., 1)
    xc = x - mu  # (..., D)
    rstd = 1.0 / np.sqrt((xc * xc).mean(-1, keepdims=True, dtype=x.dtype) + eps)  # (..., 1)
    xc *= rstd  # in place: a fresh raw array
    return xc, rstd


@primitive
def layer_norm(x, g, b, eps=1e-6):
    """LayerNorm with a hand VJP: one fused backward pass in float32, x_hat recomputed rather
    than kept (autograd's VJP of the formula makes a dozen passes). x (..., D) -> (..., D)."""
    y, _ = _normalise(x, eps)
    y *= g  # in place: one new array in all, not three
    y += b
    return y


def _layer_norm_vjp(argnums, ans, args, kwargs):
    """dx = rstd (dxh - mean(dxh) - x_hat mean(dxh x_hat)), dxh = dy g; dg, db: sums over rows.

    The two row means are matrix-vector products with g (mean(dy g) = dy @ g / D), so the
    backward pass allocates two activation-sized arrays besides x_hat.
    """
    x, g, b = args[:3]
    eps = args[3] if len(args) > 3 else kwargs.get("eps", 1e-6)

    def vjp(dy):
        x_hat, rstd = _normalise(x, eps)  # recomputed: cheaper than keeping it alive
        inv_d = 1.0 / dy.shape[-1]
        dy_x_hat = dy * x_hat  # (..., D)
        out = []
        for i in argnums:
            if i == 0:
                m1 = (dy @ g)[..., None] * inv_d  # (..., 1) mean(dxh)
                m2 = (dy_x_hat @ g)[..., None] * inv_d  # (..., 1) mean(dxh * x_hat)
                dx = dy * g  # (..., D) dxh, then updated in place
                dx -= m1
                x_hat *= m2  # in place: x_hat is not needed after this
                dx -= x_hat
                dx *= rstd
                out.append(dx)
            elif i == 1:
                out.append(dy_x_hat.reshape(-1, dy.shape[-1]).sum(0))  # (D,)
            elif i == 2:
                out.append(dy.reshape(-1, dy.shape[-1]).sum(0))  # (D,)
            else:
                raise ValueError("layer_norm: eps is not differentiable")
        return tuple(out)

    return vjp


defvjp_argnums(layer_norm, _layer_norm_vjp)

# ---------------------------------------------------------------------------------------------
# Softmax
# ---------------------------------------------------------------------------------------------


@primitive
def softmax(x):
    """Softmax in one buffer, with the VJP dx = y (g - sum(g y)) in two passes (autograd
    differentiates the exp, the sum and the division of the formula one by one)."""
    e = x - x.max(-1, keepdims=True)  # (..., D) a new array, then updated in place
    np.exp(e, out=e)
    e *= 1.0 / e.sum(-1, keepdims=True)  # (..., 1) reciprocals: D multiplies, 1 divide per row
    return e


defvjp(softmax, lambda y, x: lambda g: y * (g - (g * y).sum(-1, keepdims=True)))

# ---------------------------------------------------------------------------------------------
# GELU, rewritten as x * sigmoid(2u): 0.5 (1 + tanh u) = sigmoid(2u), u = c (x + a x^3)
# ---------------------------------------------------------------------------------------------


def _sigmoid_2u(x):
    """s = 1 / (1 + exp(-2u)) with one `exp` and in-place updates of one buffer.

    The same number as the tanh form; NumPy's float32 `tanh` is slower than its `exp`, and
    every `a * b` that is not in place allocates another activation-sized array.
    """
    s = np.multiply(x, x, out=np.empty_like(x))  # (..., D) a new array (also for 0-d x)
    s *= -2.0 * GELU_C * GELU_A
    s -= 2.0 * GELU_C
    s *= x  # -2u
    with onp.errstate(over="ignore"):  # exp(-2u) = inf for x < -10 gives s = 0, as it should
        np.exp(s, out=s)
    s += 1.0
    return np.reciprocal(s, out=s)


@primitive
def gelu(x):
    """GELU as x sigmoid(2u): one `exp` instead of a `tanh`, one buffer updated in place, and a
    VJP in one expression (autograd's VJP of tanh computes a cosh and keeps five temporaries)."""
    s = _sigmoid_2u(x)
    s *= x
    return s


def _gelu_vjp(ans, x):
    """d/dx [x s] = s + x s (1 - s) 2c (1 + 3a x^2) = s (1 + 2c x (1 + 3a x^2) (1 - s))."""

    def vjp(g):
        s = _sigmoid_2u(x)  # recomputed: cheaper than keeping it alive
        d = x * x  # (..., D)
        d *= 2.0 * GELU_C * 3 * GELU_A
        d += 2.0 * GELU_C
        d *= x  # 2c x (1 + 3a x^2)
        d *= 1.0 - s
        d += 1.0
        d *= s
        d *= g
        return d

    return vjp


defvjp(gelu, _gelu_vjp)

# ---------------------------------------------------------------------------------------------
# Cross-entropy with label smoothing
# ---------------------------------------------------------------------------------------------


@primitive
def cross_entropy(logits, labels, smoothing=0.0):
    """Mean smoothed cross-entropy with the VJP d logits = (softmax(z) - q) / B in one line
    (autograd differentiates the log-sum-exp of the formula step by step)."""
    z = logits - logits.max(-1, keepdims=True)  # (B, K)
    log_p = z - np.log(np.exp(z).sum(-1, keepdims=True))  # (B, K)
    q = smoothed_targets(labels, logits.shape[-1], smoothing, logits)  # (B, K)
    return -(q * log_p).sum() * (1.0 / logits.shape[0])


def _cross_entropy_vjp(ans, logits, labels, smoothing=0.0):
    def vjp(g):
        p = softmax(logits)  # raw arrays here: the forward function, not traced
        q = smoothed_targets(labels, logits.shape[-1], smoothing, logits)
        return (p - q) * (g * (1.0 / logits.shape[0]))

    return vjp


defvjp(cross_entropy, _cross_entropy_vjp)

# ---------------------------------------------------------------------------------------------
# The [class] token, z[:, 0]: autograd's VJP of indexing runs np.add.at over all of (B, N, D);
# this one writes one slice into zeros.
# ---------------------------------------------------------------------------------------------


@primitive
def first_token(z):
    """z[:, 0] with a VJP that writes g into one slice of zeros (autograd's VJP of indexing runs
    np.add.at over the whole (B, N, D) array). z (B, N, D) -> (B, D)."""
    return z[:, 0]


def _first_token_vjp(ans, z):
    def vjp(g):
        out = np.zeros_like(z)  # (B, N, D)
        out[:, 0] = g
        return out

    return vjp


defvjp(first_token, _first_token_vjp)
