"""Elementwise and row-wise operations of the Transformer, each written twice.

* `*_plain`: the textbook formula in `autograd.numpy`; autograd differentiates it for us.
  Read these first: they are the definitions.
* the unsuffixed name: the same function as an `autograd.extend.primitive` with a
  hand-derived vector-Jacobian product (VJP). Autograd's generic VJPs are correct but slow
  here (float64 upcasts in `mean`/`var`/`max`, several passes over big tensors, `cosh` in
  tanh's VJP); ours do one fused pass each and keep float32 float32.

`tests/test_ops.py` checks that every primitive's VJP equals autograd's gradient of its plain
twin, and both against centred finite differences. Inside a primitive the arrays are raw
(untraced), so in-place writes there are safe.

Shape legend: R rows (any leading axes), D features (the last axis), K classes, B batch.
"""
import numpy as onp

import autograd.numpy as np
from autograd.extend import defvjp, defvjp_argnums, primitive
from autograd.tracer import getval

from .arrays import array_module

# ---------------------------------------------------------------------------------------------
# LayerNorm (Ba et al. 2016): y = (x - mean) / sqrt(var + eps) * g + b over the last axis.
# ---------------------------------------------------------------------------------------------


def layer_norm_plain(x, g, b, eps=1e-6):
    """LayerNorm over the last axis, as autograd sees it. x (..., D), g (D,), b (D,)."""
    inv_d = 1.0 / x.shape[-1]  # a Python float keeps float32 float32 (np.mean's VJP would not)
    xc = x - (x.sum(-1, keepdims=True) * inv_d)  # (..., D) centred
    var = (xc * xc).sum(-1, keepdims=True) * inv_d  # (..., 1)
    return xc / np.sqrt(var + eps) * g + b


def _normalise(x, eps):
    """Raw-array helper: x_hat and 1/std over the last axis (x_hat is a new array)."""
    mu = x.mean(-1, keepdims=True, dtype=x.dtype)  # (..., 1)
    xc = x - mu  # (..., D)
    rstd = 1.0 / np.sqrt((xc * xc).mean(-1, keepdims=True, dtype=x.dtype) + eps)  # (..., 1)
    xc *= rstd  # in place: a fresh raw array
    return xc, rstd


@primitive
def layer_norm(x, g, b, eps=1e-6):
    """LayerNorm with a hand VJP. x (..., D), g (D,), b (D,) -> (..., D)."""
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
# Softmax over the last axis (numerically stable: shift by the row max first).
# ---------------------------------------------------------------------------------------------


def softmax_plain(x):
    """softmax(x)_j = exp(x_j - max x) / sum_k exp(x_k - max x). The shift is a constant."""
    e = np.exp(x - getval(x).max(-1, keepdims=True))  # (..., D)
    return e / e.sum(-1, keepdims=True)


@primitive
def softmax(x):
    """Softmax over the last axis, with VJP dx = y * (g - sum(g * y))."""
    e = x - x.max(-1, keepdims=True)  # (..., D) a new array, then updated in place
    np.exp(e, out=e)
    e *= 1.0 / e.sum(-1, keepdims=True)  # (..., 1) reciprocals: D multiplies, 1 divide per row
    return e


defvjp(softmax, lambda y, x: lambda g: y * (g - (g * y).sum(-1, keepdims=True)))

# ---------------------------------------------------------------------------------------------
# GELU (Hendrycks & Gimpel 2016), tanh form, as in the official JAX ViT (flax's nn.gelu):
# gelu(x) = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
# ---------------------------------------------------------------------------------------------

_C = float(onp.sqrt(2.0 / onp.pi))
_A = 0.044715


def gelu_plain(x):
    """GELU, tanh approximation. (x * x * x, not x**3: autograd's power VJP is slow.)"""
    return 0.5 * x * (1.0 + np.tanh(_C * (x + _A * (x * x * x))))


def _sigmoid_2u(x):
    """Raw-array helper: s = 0.5 (1 + tanh(u)) = 1 / (1 + exp(-2u)), u = c (x + a x^3).

    The same number as the tanh form, written with one `exp` and in-place updates of one
    buffer: NumPy's float32 `tanh` is slower than its `exp`, and every `a * b` that is not
    in place allocates a new activation-sized array (measured: GELU forward 26 -> 12 ms for a
    128 x 65 x 512 float32 input on one core).
    """
    s = np.multiply(x, x, out=np.empty_like(x))  # (..., D) a new array (also for 0-d x)
    s *= -2.0 * _C * _A
    s -= 2.0 * _C
    s *= x  # -2u
    with onp.errstate(over="ignore"):  # exp(-2u) = inf for x < -10 gives s = 0, as it should
        np.exp(s, out=s)
    s += 1.0
    return np.reciprocal(s, out=s)


@primitive
def gelu(x):
    """GELU = x * sigmoid(2u), the tanh form rewritten (0.5 (1 + tanh u) = sigmoid(2u))."""
    s = _sigmoid_2u(x)
    s *= x
    return s


def _gelu_vjp(ans, x):
    """d/dx [x s] = s + x s (1 - s) 2c (1 + 3a x^2) = s (1 + 2c x (1 + 3a x^2) (1 - s))."""

    def vjp(g):
        s = _sigmoid_2u(x)  # recomputed: cheaper than keeping it alive
        d = x * x  # (..., D)
        d *= 2.0 * _C * 3 * _A
        d += 2.0 * _C
        d *= x  # 2c x (1 + 3a x^2)
        d *= 1.0 - s
        d += 1.0
        d *= s
        d *= g
        return d

    return vjp


defvjp(gelu, _gelu_vjp)

# ---------------------------------------------------------------------------------------------
# Softmax cross-entropy with label smoothing (Szegedy et al. 2016), averaged over the batch.
# target q = (1 - s) * onehot(y) + s / K ;  loss = -mean_b sum_k q_bk log softmax(z)_bk
# ---------------------------------------------------------------------------------------------


def _targets(labels, k, smoothing, like):
    """Smoothed one-hot targets (B, K) in the array library and dtype of `like`."""
    xp = array_module(like)
    onehot = labels[:, None] == xp.arange(k)[None, :]  # (B, K) bool
    return (onehot * (1.0 - smoothing) + smoothing / k).astype(getval(like).dtype)


def cross_entropy_plain(logits, labels, smoothing=0.0):
    """Mean smoothed cross-entropy. logits (B, K) float, labels (B,) int -> scalar."""
    z = logits - getval(logits).max(-1, keepdims=True)  # (B, K) shift: a constant
    log_p = z - np.log(np.exp(z).sum(-1, keepdims=True))  # (B, K) log softmax
    q = _targets(labels, logits.shape[-1], smoothing, logits)  # (B, K)
    return -(q * log_p).sum() * (1.0 / logits.shape[0])


@primitive
def cross_entropy(logits, labels, smoothing=0.0):
    """Mean smoothed cross-entropy with VJP d logits = (softmax(z) - q) / B."""
    z = logits - logits.max(-1, keepdims=True)
    log_p = z - np.log(np.exp(z).sum(-1, keepdims=True))
    q = _targets(labels, logits.shape[-1], smoothing, logits)
    return -(q * log_p).sum() * (1.0 / logits.shape[0])


def _cross_entropy_vjp(ans, logits, labels, smoothing=0.0):
    def vjp(g):
        p = softmax(logits)  # raw arrays here: this is the forward function, not traced
        q = _targets(labels, logits.shape[-1], smoothing, logits)
        return (p - q) * (g * (1.0 / logits.shape[0]))

    return vjp


defvjp(cross_entropy, _cross_entropy_vjp)

# ---------------------------------------------------------------------------------------------
# Taking the [class] token: z[:, 0]. Indexing a traced array makes autograd's backward run
# np.add.at over the whole (B, N, D) tensor; this VJP writes one slice of zeros instead.
# ---------------------------------------------------------------------------------------------


def first_token_plain(z):
    """z (B, N, D) -> z[:, 0] (B, D)."""
    return z[:, 0]


@primitive
def first_token(z):
    """z (B, N, D) -> z[:, 0] (B, D), with a cheap VJP."""
    return z[:, 0]


def _first_token_vjp(ans, z):
    def vjp(g):
        out = np.zeros_like(z)  # (B, N, D)
        out[:, 0] = g
        return out

    return vjp


defvjp(first_token, _first_token_vjp)
