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

from .backend import array_module

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
    """Raw-array helper: x_hat and 1/std over the last axis."""
    mu = x.mean(-1, keepdims=True, dtype=x.dtype)  # (..., 1)
    xc = x - mu
    rstd = 1.0 / np.sqrt((xc * xc).mean(-1, keepdims=True, dtype=x.dtype) + eps)  # (..., 1)
    return xc * rstd, rstd


@primitive
def layer_norm(x, g, b, eps=1e-6):
    """LayerNorm with a hand VJP. x (..., D), g (D,), b (D,) -> (..., D)."""
    x_hat, _ = _normalise(x, eps)
    return x_hat * g + b


def _layer_norm_vjp(argnums, ans, args, kwargs):
    x, g, b = args[:3]
    eps = args[3] if len(args) > 3 else kwargs.get("eps", 1e-6)

    def vjp(dy):
        x_hat, rstd = _normalise(x, eps)  # recomputed: cheaper than keeping it alive
        lead = tuple(range(dy.ndim - 1))
        out = []
        for i in argnums:
            if i == 0:  # dx = rstd * (dxh - mean(dxh) - x_hat * mean(dxh * x_hat))
                dxh = dy * g
                m1 = dxh.mean(-1, keepdims=True, dtype=dy.dtype)
                m2 = (dxh * x_hat).mean(-1, keepdims=True, dtype=dy.dtype)
                out.append((dxh - m1 - x_hat * m2) * rstd)
            elif i == 1:
                out.append((dy * x_hat).sum(lead))  # (D,)
            elif i == 2:
                out.append(dy.sum(lead))  # (D,)
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
    e = np.exp(x - x.max(-1, keepdims=True))
    e /= e.sum(-1, keepdims=True)
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


@primitive
def gelu(x):
    """GELU with a hand VJP: d/dx = 0.5 (1 + t) + 0.5 x (1 - t^2) c (1 + 3a x^2)."""
    return 0.5 * x * (1.0 + np.tanh(_C * (x + _A * (x * x * x))))


def _gelu_vjp(ans, x):
    def vjp(g):
        x2 = x * x
        t = np.tanh(_C * x * (1.0 + _A * x2))
        return g * (0.5 * (1.0 + t) + (0.5 * _C) * x * (1.0 - t * t) * (1.0 + (3 * _A) * x2))

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
