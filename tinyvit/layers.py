"""The layers of the Transformer encoder (paper, Sec. 3.1 and Appendix), as pure functions.

Each layer is a pair: `init_x(rng, ...) -> params` (a dict of arrays) and `x(params, inputs)`.
The operations inside (LayerNorm, softmax, GELU) are `tinyvit.ops`'s formulas, looked up as
`ops.name` when a layer runs, so that training can swap in their fast twins (`tinyvit.fast`).

Besides the paper's layers: locality self-attention (`lsa_weights`, a block whose attention
has a learned temperature) and sequence pooling (`seq_pool`), for ViTs trained on small data.

Shape legend: B batch, N tokens, D width, H heads, hd = D / H head width, M MLP width.
"""
import math

import numpy as onp

import autograd.numpy as np
from autograd.tracer import getval

from . import ops
from .arrays import array_module

# ---------------------------------------------------------------------------------------------
# Linear (dense) layer
# ---------------------------------------------------------------------------------------------


def init_linear(rng, d_in, d_out, dtype=onp.float32, zero=False):
    """Xavier-uniform weights (as the official ViT's Dense layers), zero biases."""
    limit = onp.sqrt(6.0 / (d_in + d_out))
    w = onp.zeros((d_in, d_out)) if zero else rng.uniform(-limit, limit, (d_in, d_out))
    return {"w": w.astype(dtype), "b": onp.zeros(d_out, dtype)}


def linear(p, x):
    """y = x W + b over the last axis. x (..., D_in) -> (..., D_out).

    The input is flattened to 2-D first so the weight gradient is one matmul
    (x^T g), not a batched product summed afterwards.
    """
    lead = x.shape[:-1]
    y = x.reshape(-1, x.shape[-1]) @ p["w"] + p["b"]  # (R, D_out), R = prod(lead)
    return y.reshape(lead + (p["w"].shape[1],))  # (..., D_out)


# ---------------------------------------------------------------------------------------------
# LayerNorm
# ---------------------------------------------------------------------------------------------


def init_layer_norm(d, dtype=onp.float32):
    """Scale g = 1, offset b = 0."""
    return {"g": onp.ones(d, dtype), "b": onp.zeros(d, dtype)}


def layer_norm(p, x, eps=1e-6):
    """LN(x) = (x - mean) / sqrt(var + eps) * g + b over D. x (..., D) -> (..., D)."""
    return ops.layer_norm(x, p["g"], p["b"], eps)


# ---------------------------------------------------------------------------------------------
# Dropout (Srivastava et al. 2014): only while training, from an explicit seeded rng.
# ---------------------------------------------------------------------------------------------


def dropout(rng, x, rate, train):
    """Zero each element with probability `rate` and scale the rest by 1 / (1 - rate)."""
    if not train or rate == 0.0:
        return x
    if rng is None:
        raise ValueError("dropout: train=True with rate > 0 needs an rng (np.random.Generator)")
    xp = array_module(x)
    keep = rng.random(x.shape, dtype=onp.float32) >= rate  # (same as x) host bool mask
    scale = onp.asarray(1.0 / (1.0 - rate), dtype=x.dtype)
    return x * xp.asarray(keep.astype(x.dtype) * scale)


# ---------------------------------------------------------------------------------------------
# Multi-head self-attention (Eq. 5-8 of the paper's Appendix A)
# ---------------------------------------------------------------------------------------------


def init_attention(rng, d, dtype=onp.float32):
    """One fused projection to [q | k | v] (D, 3D) and the output projection (D, D)."""
    qkv = init_linear(rng, d, 3 * d, dtype)
    # Xavier limit of a (D, D) matrix for each of q, k, v (as three separate Dense layers).
    limit = onp.sqrt(6.0 / (2 * d))
    qkv["w"] = rng.uniform(-limit, limit, (d, 3 * d)).astype(dtype)
    return {"qkv": qkv, "out": init_linear(rng, d, d, dtype)}


def split_heads(x, heads):
    """(B, N, D) -> (B, H, N, hd)."""
    b, n, d = x.shape
    return x.reshape(b, n, heads, d // heads).transpose((0, 2, 1, 3))  # (B, H, N, hd)


def merge_heads(x):
    """(B, H, N, hd) -> (B, N, D)."""
    b, h, n, hd = x.shape
    return x.transpose((0, 2, 1, 3)).reshape(b, n, h * hd)  # (B, N, D)


def attention_weights(q, k):
    """Eq. 6: A = softmax(q k^T / sqrt(hd)). q, k (B, H, N, hd) -> A (B, H, N, N)."""
    q = q * float(q.shape[-1]) ** -0.5  # scale q (B H N hd) rather than A (B H N N)
    return ops.softmax(q @ k.transpose((0, 1, 3, 2)))  # (B, H, N, N)


def init_lsa_temperature(heads, d, dtype=onp.float32):
    """LSA's learned temperature, as its log per head: log(1 / sqrt(hd)) at first, so that
    before training only the masked diagonal tells LSA from Eq. 6."""
    return onp.full(heads, -0.5 * math.log(d // heads), dtype)  # (H,)


def diagonal_mask(n, like):
    """(N, N): -inf on the diagonal, 0 elsewhere, in the array library and dtype of `like`."""
    mask = onp.where(onp.eye(n, dtype=bool), -onp.inf, 0.0).astype(getval(like).dtype)
    return array_module(like).asarray(mask)


def lsa_weights(q, k, log_tau):
    """Locality self-attention (Lee et al. 2021, "Vision Transformer for Small-Size Datasets",
    Sec. 3.2): A = softmax(M(q k^T) tau_h), a learned temperature tau_h = exp(log_tau_h) per
    head instead of the fixed 1 / sqrt(hd), and M the diagonal masking (each token's logit
    for itself is -inf, so it attends only to the other tokens).

    q, k (B, H, N, hd), log_tau (H,) -> A (B, H, N, N), zeros on the diagonal.
    """
    q = q * np.exp(log_tau)[:, None, None]  # (B, H, N, hd) scaled per head
    s = q @ k.transpose((0, 1, 3, 2))  # (B, H, N, N)
    return ops.softmax(s + diagonal_mask(s.shape[-1], s))  # (B, H, N, N)


def head_weights(p, q, k):
    """The attention weights of every head: Eq. 6 (`attention_weights`), or LSA's
    (`lsa_weights`) in a layer that has a learned temperature p["log_tau"] (cfg.lsa)."""
    if "log_tau" in p:
        return lsa_weights(q, k, p["log_tau"])
    return attention_weights(q, k)  # (B, H, N, N)


def attention(p, x, heads, weights_out=None):
    """Eq. 5-8: MSA(z) = [SA_1(z); ...; SA_H(z)] U_msa, SA(z) = A v.

    x (B, N, D) -> (B, N, D). If `weights_out` is a list, the attention weights
    A (B, H, N, N) are appended to it (for the attention maps of lesson 8).
    """
    b, n, d = x.shape
    qkv = x.reshape(b * n, d) @ p["qkv"]["w"] + p["qkv"]["b"]  # (B*N, 3D) one fused matmul
    q, k, v = np.split(qkv, 3, axis=1)  # 3 x (B*N, D); split's VJP is a cheap concatenate
    q, k, v = (split_heads(t.reshape(b, n, d), heads) for t in (q, k, v))  # (B, H, N, hd)
    a = head_weights(p, q, k)  # (B, H, N, N)
    if weights_out is not None:
        weights_out.append(a)
    o = merge_heads(a @ v)  # (B, N, D)
    return linear(p["out"], o)  # (B, N, D)


# ---------------------------------------------------------------------------------------------
# Sequence pooling (Hassani et al. 2021): the encoder's tokens averaged with learned weights
# ---------------------------------------------------------------------------------------------


def init_seq_pool(rng, d, dtype=onp.float32):
    """g: one Xavier-uniform column (D, 1). (A bias would shift every token's logit alike:
    softmax ignores it, so there is none.)"""
    return {"w": init_linear(rng, d, 1, dtype)["w"]}


def seq_pool_weights(p, z):
    """SeqPool's weights softmax(g(z)^T): the softmax over the tokens of one learned logit
    g(z_n) = z_n w per token. z (B, N, D) -> (B, N), each row sums to 1."""
    b, n, d = z.shape
    return ops.softmax((z.reshape(b * n, d) @ p["w"]).reshape(b, n))  # (B, N) over tokens


def seq_pool(p, z):
    """SeqPool ("Escaping the Big Data Paradigm with Compact Transformers", Sec. 3.2):
    y = softmax(g(z)^T) z (`seq_pool_weights`), the tokens' mean weighted by a learned
    softmax. z (B, N, D) -> y (B, D)."""
    b, n, d = z.shape
    a = seq_pool_weights(p, z).reshape(b, 1, n)  # (B, 1, N)
    return (a @ z).reshape(b, d)  # (B, D)


# ---------------------------------------------------------------------------------------------
# MLP block: two dense layers with a GELU between (Sec. 3.1)
# ---------------------------------------------------------------------------------------------


def init_mlp(rng, d, m, dtype=onp.float32):
    """fc1 (D, M), fc2 (M, D)."""
    return {"fc1": init_linear(rng, d, m, dtype), "fc2": init_linear(rng, m, d, dtype)}


def mlp(p, x, rate=0.0, train=False, rng=None):
    """MLP(x) = GELU(x W1 + b1) W2 + b2, dropout after each dense layer. (B, N, D) -> same."""
    h = ops.gelu(linear(p["fc1"], x))  # (B, N, M)
    h = dropout(rng, h, rate, train)
    return dropout(rng, linear(p["fc2"], h), rate, train)  # (B, N, D)


# ---------------------------------------------------------------------------------------------
# Encoder block (pre-LN, residual)
# ---------------------------------------------------------------------------------------------


def init_block(rng, d, m, dtype=onp.float32):
    """LN -> MSA -> (+), LN -> MLP -> (+)."""
    return {
        "ln1": init_layer_norm(d, dtype),
        "attn": init_attention(rng, d, dtype),
        "ln2": init_layer_norm(d, dtype),
        "mlp": init_mlp(rng, d, m, dtype),
    }


def block(p, z, heads, eps=1e-6, rate=0.0, train=False, rng=None, weights_out=None):
    """Eq. 2: z' = MSA(LN(z)) + z;  Eq. 3: z_out = MLP(LN(z')) + z'.  (B, N, D) -> same."""
    a = attention(p["attn"], layer_norm(p["ln1"], z, eps), heads, weights_out)
    z = z + dropout(rng, a, rate, train)  # Eq. 2
    return z + mlp(p["mlp"], layer_norm(p["ln2"], z, eps), rate, train, rng)  # Eq. 3
