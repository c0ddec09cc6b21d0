"""Proof (d) of issue 11: other correct solutions pass, so no checker's bounds are too strict.

Each is written another way than the library's reference (logsumexp softmax, np.var
LayerNorm, einsum attention, explicit loops, ...). Then the capstone puts them all into the
library at once and trains: the losses must equal the library's.
"""
import functools
import math

import autograd.numpy as np
import pytest
from autograd import value_and_grad

from tinyvit import layers, ops, optim
from tinyvit.exercises import registry
from tinyvit.exercises.checker import check, report
from tinyvit.vit import patchify


def logsumexp(x, axis, keepdims=False):
    """log(sum(exp(x))) along `axis`, shifted by the maximum (scipy is not a dependency)."""
    m = np.max(x, axis=axis, keepdims=True)
    out = m + np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True))
    return out if keepdims else np.squeeze(out, axis=axis)


def patchify_swapaxes(images, p):
    b, h, w, c = images.shape
    return images.reshape(b, h // p, p, w // p, p, c).swapaxes(2, 3).reshape(b, -1, p * p * c)


def patchify_loops(images, p):
    b, h, w, c = images.shape
    return np.stack([images[:, i:i + p, j:j + p, :].reshape(b, -1)
                     for i in range(0, h, p) for j in range(0, w, p)], axis=1)


def embed_einsum(params, images, cfg):
    x = np.einsum("bnk,kd->bnd", patchify(images, cfg.patch_size), params["embed"]["w"])
    x = x + params["embed"]["b"]
    if cfg.pool == "cls":
        x = np.concatenate([np.repeat(params["cls"], x.shape[0], axis=0), x], axis=1)
    return x + params["pos"]


def softmax_logsumexp(x):
    return np.exp(x - logsumexp(x, axis=-1, keepdims=True))


def softmax_vjp_jacobian(x, g):
    y = ops.softmax(x)
    jac = y[..., :, None] * (np.eye(x.shape[-1]) - y[..., None, :])  # (..., D, D) J_ij
    return np.einsum("...i,...ij->...j", g, jac)


def attention_weights_einsum(q, k):
    logits = np.einsum("bhqd,bhkd->bhqk", q, k) / np.sqrt(q.shape[-1])
    return softmax_logsumexp(logits)


def attention_head_loop(p, x, heads):
    d = x.shape[-1]
    hd = d // heads
    qkv = x @ p["qkv"]["w"] + p["qkv"]["b"]
    outs = []
    for h in range(heads):
        q, k, v = (qkv[..., part * d + h * hd:part * d + (h + 1) * hd] for part in range(3))
        outs.append(ops.softmax(q @ np.swapaxes(k, -1, -2) / np.sqrt(hd)) @ v)
    return np.concatenate(outs, axis=-1) @ p["out"]["w"] + p["out"]["b"]


def layer_norm_np_var(x, g, b, eps=1e-6):
    return (x - np.mean(x, -1, keepdims=True)) / np.sqrt(np.var(x, -1, keepdims=True) + eps) * g + b


def layer_norm_vjp_cs231n(x, g, b, dy, eps=1e-6):
    n = x.shape[-1]
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    dxhat = dy * g
    dvar = (dxhat * (x - mu) * -0.5 * (var + eps) ** -1.5).sum(-1, keepdims=True)
    dmu = (-dxhat / np.sqrt(var + eps)).sum(-1, keepdims=True) + dvar * (-2 * (x - mu)).mean(
        -1, keepdims=True)
    dx = dxhat / np.sqrt(var + eps) + dvar * 2 * (x - mu) / n + dmu / n
    rows = tuple(range(x.ndim - 1))
    return dx, (dy * (x - mu) / np.sqrt(var + eps)).sum(rows), dy.sum(rows)


def gelu_sigmoid(x):
    return x / (1.0 + np.exp(-2.0 * np.sqrt(2.0 / np.pi) * (x + 0.044715 * x ** 3)))


def gelu_grad_cosh(x):
    u = np.sqrt(2.0 / np.pi) * (x + 0.044715 * x ** 3)
    du = np.sqrt(2.0 / np.pi) * (1.0 + 3 * 0.044715 * x ** 2)
    return 0.5 * (1.0 + np.tanh(u)) + 0.5 * x * du / np.cosh(u) ** 2


def block_by_ops(p, z, heads, eps=1e-6):
    z = z + layers.attention(p["attn"], ops.layer_norm(z, p["ln1"]["g"], p["ln1"]["b"], eps), heads)
    h = ops.layer_norm(z, p["ln2"]["g"], p["ln2"]["b"], eps)
    h = ops.gelu(h @ p["mlp"]["fc1"]["w"] + p["mlp"]["fc1"]["b"])
    return z + h @ p["mlp"]["fc2"]["w"] + p["mlp"]["fc2"]["b"]


def vit_by_pieces(params, images, cfg):
    from tinyvit.vit import embed

    z = embed(params, images, cfg)
    for p in params["blocks"]:
        z = block_by_ops(p, z, cfg.heads, cfg.ln_eps)
    z = layer_norm_np_var(z, params["norm"]["g"], params["norm"]["b"], cfg.ln_eps)
    y = z[:, 0] if cfg.pool == "cls" else np.mean(z, axis=1)
    return np.einsum("bd,dk->bk", y, params["head"]["w"]) + params["head"]["b"]


def cross_entropy_eye(logits, labels, smoothing=0.0):
    b, k = logits.shape
    q = (1.0 - smoothing) * np.eye(k)[labels] + smoothing / k
    return -np.sum(q * (logits - logsumexp(logits, axis=1, keepdims=True))) / b


def cross_entropy_grad_eye(logits, labels, smoothing=0.0):
    b, k = logits.shape
    return (softmax_logsumexp(logits) - ((1.0 - smoothing) * np.eye(k)[labels] + smoothing / k)) / b


def adam_textbook(w, g, m, v, t, lr, b1=0.9, b2=0.999, eps=1e-8, weight_decay=0.0):
    m = b1 * m + (1 - b1) * g
    v = b2 * v + (1 - b2) * g ** 2
    m_hat, v_hat = m / (1 - b1 ** t), v / (1 - b2 ** t)
    return w - lr * (m_hat / (np.sqrt(v_hat) + eps) + weight_decay * w), m, v


def warmup_cosine_squared(step, total_steps, base_lr, warmup_steps, final_lr=0.0):
    if step < warmup_steps:
        return base_lr * step / warmup_steps
    t = min((step - warmup_steps) / (total_steps - warmup_steps), 1.0)
    return final_lr + (base_lr - final_lr) * math.cos(math.pi * t / 2) ** 2


def im2col_concatenate(x, k=3):
    b, h, w, c = x.shape
    r = k // 2
    padded = np.pad(x, ((0, 0), (r, r), (r, r), (0, 0)), "constant")
    windows = [padded[:, i:i + h, j:j + w, :] for i in range(k) for j in range(k)]
    return np.concatenate(windows, axis=-1).reshape(b * h * w, k * k * c)


def rollout_reduce(maps, residual=True):
    a = [m.mean(axis=1) for m in maps]  # rows sum to 1, so (A + I) / 2 renormalises
    a = [0.5 * x + 0.5 * np.eye(x.shape[-1]) for x in a] if residual else a
    return functools.reduce(lambda r, x: x @ r, a[1:], a[0])


def interpolate_loops(pos, old_grid, new_grid, has_cls):
    first = 1 if has_cls else 0
    grid = pos[0, first:].reshape(old_grid, old_grid, -1)
    at = lambda i: min(max((i + 0.5) * old_grid / new_grid - 0.5, 0.0), old_grid - 1)
    out = []
    for i in range(new_grid):
        for j in range(new_grid):
            y, x = at(i), at(j)
            y0, x0 = int(y), int(x)
            y1, x1 = min(y0 + 1, old_grid - 1), min(x0 + 1, old_grid - 1)
            fy, fx = y - y0, x - x0
            out.append((1 - fy) * ((1 - fx) * grid[y0, x0] + fx * grid[y0, x1])
                       + fy * ((1 - fx) * grid[y1, x0] + fx * grid[y1, x1]))
    return np.concatenate([pos[:, :first], np.stack(out)[None]], axis=1)


def probe_lstsq(features, labels, k=None, l2=1.0):
    k = labels.max() + 1 if k is None else k
    mean, std = features.mean(0), features.std(0) + 1e-5
    x = (features - mean) / std
    t = 2.0 * np.eye(k)[labels] - 1.0
    f = x.shape[1]
    a = np.concatenate([x, np.sqrt(l2) * np.eye(f)])  # ridge as least squares
    w = np.linalg.lstsq(a, np.concatenate([t - t.mean(0), np.zeros((f, k))]), rcond=None)[0]
    return w / std[:, None], t.mean(0) - (mean / std) @ w


def train_value_and_grad(model, params, images, labels, steps, lr, warmup, weight_decay, clip,
                         smoothing):
    loss_of = lambda p: ops.cross_entropy(model.apply(p, images, True), labels, smoothing)
    opt, losses = optim.init_adam(params), []
    for step in range(steps):
        loss, grads = value_and_grad(loss_of)(params)
        if clip:
            grads, _ = optim.clip_by_global_norm(grads, clip)
        rate = optim.warmup_cosine(step, steps, lr, warmup)
        params, opt = optim.adam_update(params, grads, opt, rate, weight_decay=weight_decay)
        losses.append(float(loss))
    return losses


def cka_centring_matrix(x, y):
    s = len(x)
    h = np.eye(s) - np.ones((s, s)) / s  # H = I - 1 1^T / S
    hsic = lambda k, l: np.trace(k @ h @ l @ h) / (s - 1) ** 2
    k, l = x @ x.T, y @ y.T
    return hsic(k, l) / np.sqrt(hsic(k, k) * hsic(l, l))


ALTERNATIVES = {
    "patchify": [patchify_swapaxes, patchify_loops], "embed": [embed_einsum],
    "softmax": [softmax_logsumexp], "softmax_vjp": [softmax_vjp_jacobian],
    "attention_weights": [attention_weights_einsum], "attention": [attention_head_loop],
    "layer_norm": [layer_norm_np_var], "layer_norm_vjp": [layer_norm_vjp_cs231n],
    "gelu": [gelu_sigmoid], "gelu_grad": [gelu_grad_cosh], "block": [block_by_ops],
    "vit": [vit_by_pieces], "cross_entropy": [cross_entropy_eye],
    "cross_entropy_grad": [cross_entropy_grad_eye], "adam_step": [adam_textbook],
    "warmup_cosine": [warmup_cosine_squared], "im2col": [im2col_concatenate],
    "attention_rollout": [rollout_reduce], "interpolate_pos_embed": [interpolate_loops],
    "linear_probe": [probe_lstsq], "train": [train_value_and_grad],
    "linear_cka": [cka_centring_matrix],
}
CASES = [(name, fn) for name, fns in ALTERNATIVES.items() for fn in fns]


def test_every_exercise_has_another_correct_solution():
    assert sorted(ALTERNATIVES) == sorted(ex["name"] for ex in registry.EXERCISES)


@pytest.mark.parametrize(("name", "fn"), CASES, ids=[fn.__name__ for _, fn in CASES])
def test_d_another_correct_solution_passes(name, fn):
    ex = registry.get(name)
    result = check(ex, fn, secret="alternatives")
    assert result["status"] == "passed", report(ex, result)


def test_the_capstone_trains_with_every_alternative_in_the_library():
    passed = {registry.get(name)["number"]: fns[-1] for name, fns in ALTERNATIVES.items()
              if name != "train"}
    ex = registry.get("train")
    result = check(ex, train_value_and_grad, passed=passed)
    assert result["status"] == "passed", report(ex, result)
    assert any("your patchify_loops" in n or "your patchify" in n for n in result["notes"])
    assert any(n.startswith("CNN:") for n in result["notes"])  # im2col passed: the CNN trains
