"""The elementwise and row-wise operations of the Transformer, as their textbook formulas.

These are the definitions: autograd differentiates them for us. Training swaps in fast
twins with hand-derived VJPs (`tinyvit.fast`, tested equal to these, values and gradients);
`tinyvit.fast.formulas()` runs the model on exactly the code below.

Written so that autograd traces them quickly and float32 stays float32: sums times a Python
float instead of `np.mean` / `np.var` (whose VJPs divide by an int64 count, in float64),
`x * x * x` instead of `x**3`, and the max shift of softmax taken as a constant (`getval`).

Shape legend: R rows (any leading axes), D features (the last axis), B batch, N tokens, K classes.
"""
import numpy as onp

import autograd.numpy as np
from autograd.tracer import getval

from .arrays import array_module


def layer_norm(x, g, b, eps=1e-6):
    """LayerNorm (Ba et al. 2016): (x - mean) / sqrt(var + eps) * g + b over the last axis.

    x (..., D), g (D,), b (D,) -> (..., D). The variance is the biased one (divide by D).
    """
    inv_d = 1.0 / x.shape[-1]  # a Python float keeps float32 float32
    xc = x - (x.sum(-1, keepdims=True) * inv_d)  # (..., D) centred
    var = (xc * xc).sum(-1, keepdims=True) * inv_d  # (..., 1)
    return xc / np.sqrt(var + eps) * g + b


def softmax(x):
    """softmax(x)_j = exp(x_j - max x) / sum_k exp(x_k - max x) over the last axis.

    Subtracting the row max changes nothing mathematically and keeps exp from overflowing;
    it is a constant for the gradient. (..., D) -> (..., D).
    """
    e = np.exp(x - getval(x).max(-1, keepdims=True))  # (..., D)
    return e / e.sum(-1, keepdims=True)


GELU_C = float(onp.sqrt(2.0 / onp.pi))
GELU_A = 0.044715


def gelu(x):
    """GELU (Hendrycks & Gimpel 2016), tanh form, as in the official JAX ViT (flax's nn.gelu):

        gelu(x) = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
    """
    return 0.5 * x * (1.0 + np.tanh(GELU_C * (x + GELU_A * (x * x * x))))


def smoothed_targets(labels, k, smoothing, like):
    """q = (1 - s) onehot(y) + s / K: (B, K) in the array library and dtype of `like`."""
    xp = array_module(like)
    onehot = labels[:, None] == xp.arange(k)[None, :]  # (B, K) bool
    return (onehot * (1.0 - smoothing) + smoothing / k).astype(getval(like).dtype)


def cross_entropy(logits, labels, smoothing=0.0):
    """Softmax cross-entropy with label smoothing (Szegedy et al. 2016), mean over the batch:

        loss = -mean_b sum_k q_bk log softmax(z)_bk,   q = (1 - s) onehot(y) + s / K

    logits (B, K) float, labels (B,) int -> a scalar.
    """
    z = logits - getval(logits).max(-1, keepdims=True)  # (B, K) shift: a constant
    log_p = z - np.log(np.exp(z).sum(-1, keepdims=True))  # (B, K) log softmax
    q = smoothed_targets(labels, logits.shape[-1], smoothing, logits)  # (B, K)
    return -(q * log_p).sum() * (1.0 / logits.shape[0])


def soft_cross_entropy(logits, targets, smoothing=0.0):
    """Cross-entropy against soft targets (mixup's and CutMix's, `tinyvit.data.mixing`), with
    label smoothing, mean over the batch:

        loss = -mean_b sum_k q_bk log softmax(z)_bk,   q = (1 - s) t + s / K

    logits (B, K) float, targets (B, K) rows summing to 1 -> a scalar. With one-hot targets
    it is `cross_entropy`.
    """
    z = logits - getval(logits).max(-1, keepdims=True)  # (B, K) shift: a constant
    log_p = z - np.log(np.exp(z).sum(-1, keepdims=True))  # (B, K) log softmax
    q = (targets * (1.0 - smoothing) + smoothing / logits.shape[-1]).astype(getval(logits).dtype)
    return -(q * log_p).sum() * (1.0 / logits.shape[0])


def first_token(z):
    """The [class] token's row of every sequence: z (B, N, D) -> z[:, 0] (B, D)."""
    return z[:, 0]
