"""Optimisers and learning-rate schedules, by hand, over parameter trees (plain NumPy).

The paper's recipe (Dosovitskiy et al. 2021, Sec. 4.1 and Appendix B.1):
  * pre-training: Adam with beta1 = 0.9, beta2 = 0.999, weight decay 0.1 ("high weight decay";
    Table 3 uses 0.3 when pre-training on ImageNet-1k alone),
    batch 4096, a linear learning-rate warmup of 10k steps then linear (or cosine) decay,
    gradients clipped at global norm 1;
  * fine-tuning: SGD with momentum 0.9, batch 512, no weight decay, cosine decay,
    gradients clipped at global norm 1.

AdamW (Loshchilov & Hutter, "Decoupled Weight Decay Regularization", ICLR 2019) shrinks the
weights directly instead of adding lambda * w to the gradient, so the decay is not rescaled
by Adam's per-parameter step size. Here, as in PyTorch's `AdamW`, `optax.adamw` and Flax's
old `optim.Adam`, the decay is multiplied by the learning rate:
    w <- w - lr * (m_hat / (sqrt(v_hat) + eps) + lambda * w).

Speed and memory: `adam_update` and `sgd_momentum_update` update the parameter arrays and
the moment arrays **in place** and return the same trees. Copy the parameters first
(`tree_map(np.copy, params)`) if you need the old values. In-place updates also keep each
array's dtype: float32 parameters stay float32 (all scalars here are Python floats, which
NumPy does not let promote a float32 array).
"""
import math

import numpy as np

from .tree import flatten, map_with_path, tree_map


# ---------------------------------------------------------------------------------------------
# Which parameters get weight decay
# ---------------------------------------------------------------------------------------------


def default_decay_mask(params):
    """A tree of bools: True for weight matrices, False for everything else.

    Decayed: every `w` leaf with 2+ dimensions (dense kernels, the patch-embedding kernel,
    the head). Not decayed: biases, LayerNorm scales/offsets, the class token and the position
    embeddings. Shrinking these towards zero has no regularising meaning (a LayerNorm scale
    of 0 switches a feature off), which is why timm/DeiT and big_vision also exclude them.
    """
    return map_with_path(lambda path, x: path.rsplit("/", 1)[-1] == "w" and np.ndim(x) >= 2,
                         params)


def _same_keys(flat_a, flat_b, what):
    """One-line ValueError unless two flattened trees have the same paths."""
    if flat_a.keys() != flat_b.keys():
        missing = sorted(set(flat_a) - set(flat_b))[:3]
        extra = sorted(set(flat_b) - set(flat_a))[:3]
        raise ValueError(f"{what}: expected the parameters' structure; missing {missing}, "
                         f"unexpected {extra}")


# ---------------------------------------------------------------------------------------------
# Adam / AdamW
# ---------------------------------------------------------------------------------------------


def init_adam(params):
    """Adam state: first and second moments (zeros like the params) and the step count."""
    return {"m": tree_map(np.zeros_like, params), "v": tree_map(np.zeros_like, params), "step": 0}


def adam_update(params, grads, state, lr, b1=0.9, b2=0.999, eps=1e-8, weight_decay=0.0,
                decay_mask=None):
    """One Adam step (AdamW when weight_decay > 0), in place. Returns (params, state).

        m = b1 m + (1 - b1) g          v = b2 v + (1 - b2) g^2
        m_hat = m / (1 - b1^t)         v_hat = v / (1 - b2^t)
        w = w (1 - lr lambda)          (only where decay_mask is True)
        w = w - lr m_hat / (sqrt(v_hat) + eps)

    decay_mask: a tree of bools like params; None means `default_decay_mask(params)`.
    """
    lr, b1, b2, eps, wd = (float(x) for x in (lr, b1, b2, eps, weight_decay))
    step = state["step"] + 1
    flat_p, flat_g = flatten(params), flatten(grads)
    flat_m, flat_v = flatten(state["m"]), flatten(state["v"])
    _same_keys(flat_p, flat_g, "adam_update grads")
    if wd:
        flat_mask = flatten(default_decay_mask(params) if decay_mask is None else decay_mask)
        _same_keys(flat_p, flat_mask, "adam_update decay_mask")
    step_size = lr / (1.0 - b1**step)  # lr / bias correction 1
    inv_sqrt_bc2 = 1.0 / math.sqrt(1.0 - b2**step)  # 1 / sqrt(bias correction 2)
    for key, p in flat_p.items():
        g, m, v = flat_g[key], flat_m[key], flat_v[key]
        m *= b1
        m += (1.0 - b1) * g
        v *= b2
        v += (1.0 - b2) * (g * g)
        if wd and flat_mask[key]:
            p *= 1.0 - lr * wd  # decoupled weight decay
        denom = np.sqrt(v)
        denom *= inv_sqrt_bc2
        denom += eps  # sqrt(v_hat) + eps
        p -= step_size * m / denom
    return params, {"m": state["m"], "v": state["v"], "step": step}


# ---------------------------------------------------------------------------------------------
# SGD with momentum (the paper's fine-tuning optimiser)
# ---------------------------------------------------------------------------------------------


def init_sgd(params):
    """SGD-momentum state: the velocity (zeros like the params) and the step count."""
    return {"m": tree_map(np.zeros_like, params), "step": 0}


def sgd_momentum_update(params, grads, state, lr, momentum=0.9, nesterov=False,
                        weight_decay=0.0, decay_mask=None):
    """One SGD step with (heavy-ball) momentum, in place, as torch.optim.SGD.

    Returns (params, state).

        g = g + lambda w   (L2 weight decay, only where decay_mask is True)
        buf = momentum buf + g;   w = w - lr buf   (Nesterov: w = w - lr (g + momentum buf))

    The decay is coupled (added to the gradient, then through the momentum), as torch's SGD
    and "How to train your ResNet" / airbench use it. decay_mask: None means
    `default_decay_mask(params)`.
    """
    lr, momentum, wd = float(lr), float(momentum), float(weight_decay)
    flat_p, flat_g, flat_m = flatten(params), flatten(grads), flatten(state["m"])
    _same_keys(flat_p, flat_g, "sgd_momentum_update grads")
    if wd:
        flat_mask = flatten(default_decay_mask(params) if decay_mask is None else decay_mask)
        _same_keys(flat_p, flat_mask, "sgd_momentum_update decay_mask")
    for key, p in flat_p.items():
        g, buf = flat_g[key], flat_m[key]
        if wd and flat_mask[key]:
            g = g + wd * p  # a new array: the caller's gradient is left alone
        buf *= momentum
        buf += g
        p -= lr * (g + momentum * buf) if nesterov else lr * buf
    return params, {"m": state["m"], "step": state["step"] + 1}


# ---------------------------------------------------------------------------------------------
# One name for each optimiser (what a training recipe chooses)
# ---------------------------------------------------------------------------------------------


SLOTS = {"adamw": ("m", "v"), "sgd": ("m",)}  # the arrays like params each optimiser keeps


def init_optimizer(name, params):
    """The state of optimiser `name` ("adamw" or "sgd") for `params`."""
    return {"adamw": init_adam, "sgd": init_sgd}[_check_optimizer(name)](params)


def update(name, params, grads, state, lr, weight_decay=0.0, momentum=0.9):
    """One step of optimiser `name`, in place: "adamw" (`adam_update`, decoupled decay) or
    "sgd" (`sgd_momentum_update`, Nesterov, coupled L2 decay). Returns (params, state)."""
    if _check_optimizer(name) == "adamw":
        return adam_update(params, grads, state, lr, weight_decay=weight_decay)
    return sgd_momentum_update(params, grads, state, lr, momentum, nesterov=True,
                               weight_decay=weight_decay)


def _check_optimizer(name):
    if name not in ("adamw", "sgd"):
        raise ValueError(f"optimizer: expected 'adamw' or 'sgd', found {name!r}")
    return name


# ---------------------------------------------------------------------------------------------
# An exponential moving average of the weights (Polyak & Juditsky 1992; as timm's ModelEmaV2)
# ---------------------------------------------------------------------------------------------


def init_ema(params):
    """The average starts as a copy of the parameters (new arrays, same dtypes)."""
    return tree_map(np.copy, params)


def ema_decay(step, decay, warmup=True):
    """The decay at optimiser step `step` (from 0): `decay`, or with `warmup`
    min(decay, (1 + step) / (10 + step)), tf.train.ExponentialMovingAverage's num_updates
    rule, so the early average forgets the random initialisation quickly."""
    if not 0.0 <= decay < 1.0:
        raise ValueError(f"ema decay: expected a number in [0, 1), found {decay!r}")
    return min(decay, (1.0 + step) / (10.0 + step)) if warmup else float(decay)


def ema_update(ema, params, decay):
    """One step of the average, in place: ema <- decay ema + (1 - decay) params, leaf by leaf
    (every leaf: LayerNorm's and BatchNorm's too). Returns ema; dtypes are kept."""
    decay = float(decay)
    flat_e, flat_p = flatten(ema), flatten(params)
    _same_keys(flat_e, flat_p, "ema_update params")
    for key, e in flat_e.items():
        e *= decay
        e += (1.0 - decay) * flat_p[key]
    return ema


# ---------------------------------------------------------------------------------------------
# Gradient clipping
# ---------------------------------------------------------------------------------------------


def global_norm(tree):
    """sqrt(sum of all squared entries of all leaves), as a Python float (float64 sum)."""
    return math.sqrt(sum(float(np.sum(x * x, dtype=np.float64)) for x in flatten(tree).values()))


def clip_by_global_norm(grads, max_norm):
    """Scale all gradients by max_norm / norm when their global norm exceeds max_norm.

    Returns (grads, norm) with `norm` measured before clipping. New arrays when clipped,
    the same tree otherwise; dtypes are kept.
    """
    norm = global_norm(grads)
    if norm <= max_norm:
        return grads, norm
    scale = float(max_norm) / norm
    return tree_map(lambda g: g * scale, grads), norm


# ---------------------------------------------------------------------------------------------
# Learning-rate schedules (step counts from 0)
# ---------------------------------------------------------------------------------------------


def _warmup(step, base_lr, warmup_steps):
    """Linear warmup: 0 at step 0, base_lr at step warmup_steps."""
    return base_lr * step / warmup_steps


def _check_schedule(total_steps, warmup_steps):
    """One-line ValueError unless 0 <= warmup_steps < total_steps."""
    if not 0 <= warmup_steps < total_steps:
        raise ValueError(f"schedule: expected 0 <= warmup_steps < total_steps, "
                         f"found warmup_steps={warmup_steps}, total_steps={total_steps}")


def warmup_cosine(step, total_steps, base_lr, warmup_steps, final_lr=0.0):
    """Linear warmup from 0 to base_lr, then cosine decay to final_lr at total_steps."""
    _check_schedule(total_steps, warmup_steps)
    if step < warmup_steps:
        return _warmup(step, base_lr, warmup_steps)
    t = min(1.0, (step - warmup_steps) / (total_steps - warmup_steps))  # progress in [0, 1]
    return final_lr + (base_lr - final_lr) * 0.5 * (1.0 + math.cos(math.pi * t))


def warmup_linear(step, total_steps, base_lr, warmup_steps, final_lr=0.0):
    """Linear warmup from 0 to base_lr, then linear decay to final_lr (the paper's pre-training)."""
    _check_schedule(total_steps, warmup_steps)
    if step < warmup_steps:
        return _warmup(step, base_lr, warmup_steps)
    t = min(1.0, (step - warmup_steps) / (total_steps - warmup_steps))
    return base_lr + (final_lr - base_lr) * t


SCHEDULES = {"cosine": warmup_cosine, "linear": warmup_linear}  # "linear": triangular


def schedule(name, step, total_steps, base_lr, warmup_steps):
    """The learning rate at `step` of schedule `name`: "cosine" (`warmup_cosine`) or "linear"
    (`warmup_linear`: a triangle, the shape airbench and "How to train your ResNet" use)."""
    if name not in SCHEDULES:
        raise ValueError(f"schedule: expected one of {', '.join(SCHEDULES)}, found {name!r}")
    return SCHEDULES[name](step, total_steps, base_lr, warmup_steps)
