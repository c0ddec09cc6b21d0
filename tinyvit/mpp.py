"""Masked patch prediction (Sec. 4.6, Appendix B.1.2): self-supervised pre-training of a ViT.

The paper's "preliminary exploration" of self-supervision, after BERT's masked language
modelling: no labels, the image itself is the target.

    1. choose 50% of the N patch embeddings x_p^i E of each image (`corruption_plan`); of the
       chosen, replace 80% by a learned [mask] embedding, 10% by another patch's embedding
       (here: another patch of the same image) and keep 10% as they are (`corrupt`);
    2. add the class token and the position embeddings and run the encoder as usual
       (`encode_corrupted`, Eq. 1-3 with the corrupted embeddings);
    3. predict the 3-bit mean colour of every *chosen* patch (8 levels per channel,
       8^3 = 512 classes, `color_targets`) from its output token with a linear head, and
       minimise the cross-entropy over the chosen patches (`mpp_loss`).

The kept 10% matter: the model cannot tell a kept patch from an untouched one, so it must
produce a colour prediction for every token, not only for the [mask] tokens. Fine-tuning
then drops the [mask] embedding and the colour head and attaches a zero-initialised
classification head (Sec. 3.2; `to_classifier`).

The labels of one batch are packed into one integer array (B, N, 3): the colour class, the
action (`NOT_CHOSEN`, `MASKED`, `REPLACED`, `KEPT`) and the source patch of a replacement,
so that `mpp_loss(params, images, labels, cfg)` has the signature of a supervised loss.

Shape legend: B batch, H, W, C image, P patch size, N patches (T tokens with the class
token), D width, S chosen patches in the batch, K colour classes (512).
"""
import numpy as onp

import autograd.numpy as np

from . import layers, ops
from .arrays import array_module
from .configs import ViTConfig, check_images
from .vit import init_vit, patch_inputs, patchify

NOT_CHOSEN, MASKED, REPLACED, KEPT = 0, 1, 2, 3  # what happened to a patch embedding
BITS = 3  # bits per colour channel: 2^3 = 8 levels, 8^3 = 512 colour classes for RGB


def num_colors(channels=3, bits=BITS):
    """K, the number of colour classes: (2^bits)^channels (512 for RGB at 3 bits)."""
    return (2**bits) ** channels


# ---------------------------------------------------------------------------------------------
# The target: each patch's mean colour, quantised
# ---------------------------------------------------------------------------------------------


def color_targets(images, patch_size, bits=BITS):
    """The class of each patch's mean colour: uint8 (B, H, W, C) -> ints (B, N) in [0, K).

    Each channel's mean over the patch (0-255) falls into one of 2^bits equal bins,
    level = floor(mean * 2^bits / 256); the class reads the levels as digits, most
    significant first: (r, g, b) -> r * 64 + g * 8 + b at 3 bits.
    """
    x = onp.asarray(images)
    if x.dtype != onp.uint8 or x.ndim != 4:
        raise ValueError(f"color_targets: expected uint8 images (B, H, W, C), found "
                         f"{x.dtype} {x.shape}")
    b, _, _, c = x.shape
    mean = patchify(x.astype(onp.float64), patch_size).reshape(b, -1, patch_size**2, c)
    mean = mean.mean(axis=2)  # (B, N, C) in [0, 255]
    levels = onp.minimum((mean * (2**bits / 256.0)).astype(onp.int64), 2**bits - 1)  # (B, N, C)
    digits = (2**bits) ** onp.arange(c - 1, -1, -1)  # (C,) 64, 8, 1
    return levels @ digits  # (B, N)


def color_of_class(k, channels=3, bits=BITS):
    """The colour a class stands for, each channel at the centre of its bin.

    (...) ints -> (..., C) uint8."""
    k = onp.asarray(k)
    digits = (2**bits) ** onp.arange(channels - 1, -1, -1)  # (C,)
    levels = (k[..., None] // digits) % 2**bits  # (..., C)
    return ((levels + 0.5) * (256.0 / 2**bits)).astype(onp.uint8)  # (..., C)


# ---------------------------------------------------------------------------------------------
# The corruption
# ---------------------------------------------------------------------------------------------


def corruption_plan(rng, batch, n, ratio=0.5, probs=(0.8, 0.1, 0.1)):
    """Which patches to corrupt and how: (action (B, N) int, source (B, N) int).

    round(ratio * N) patches of every image are chosen at random (exactly that many); each
    chosen one is MASKED, REPLACED or KEPT with probabilities `probs` (the paper's
    80% / 10% / 10%). source[b, i] is the patch of image b whose embedding a REPLACED
    patch i receives: uniformly one of the other N - 1 patches (never i itself).
    """
    if not 0.0 < ratio <= 1.0 or n < 2:
        raise ValueError(f"corruption_plan: expected 0 < ratio <= 1 and N >= 2 patches, found "
                         f"ratio {ratio}, N {n}")
    if len(probs) != 3 or min(probs) < 0 or not onp.isclose(sum(probs), 1.0):
        raise ValueError(f"corruption_plan: expected 3 probabilities (mask, replace, keep) "
                         f"summing to 1, found {probs}")
    chosen = onp.zeros((batch, n), bool)  # (B, N)
    order = onp.argsort(rng.random((batch, n)), axis=1)  # (B, N) a random permutation per row
    onp.put_along_axis(chosen, order[:, :int(round(ratio * n))], True, axis=1)
    how = rng.choice([MASKED, REPLACED, KEPT], size=(batch, n), p=probs)  # (B, N)
    action = onp.where(chosen, how, NOT_CHOSEN)  # (B, N)
    source = (onp.arange(n) + rng.integers(1, n, size=(batch, n))) % n  # (B, N), != own index
    return action, source


def pack_labels(targets, action, source):
    """One int array (B, N, 3) of [colour class, action, source] (see the module docstring)."""
    return onp.stack([targets, action, source], axis=-1).astype(onp.int64)  # (B, N, 3)


def corrupt(tokens, mask_token, action, source):
    """Replace patch embeddings as planned: tokens (B, N, D), mask_token (1, 1, D) -> (B, N, D).

    MASKED rows become the [mask] embedding, REPLACED rows the embedding of patch
    source[b, i] of the same image, KEPT and NOT_CHOSEN rows stay. Written as a sum of
    0/1-weighted terms so that autograd reaches every input (and the mask token's gradient
    is summed over the rows it replaced).
    """
    b, n, d = tokens.shape
    xp = array_module(tokens)
    action, source = onp.asarray(action), onp.asarray(source)
    if action.shape != (b, n) or source.shape != (b, n):
        raise ValueError(f"corrupt: expected action and source of shape {(b, n)}, found "
                         f"{action.shape} and {source.shape}")
    rows = (onp.arange(b)[:, None] * n + source).ravel()  # (B*N,) flat row of each source
    other = tokens.reshape(b * n, d)[xp.asarray(rows)].reshape(b, n, d)  # (B, N, D)
    dtype = tokens.dtype
    masked = xp.asarray((action == MASKED)[..., None].astype(dtype))  # (B, N, 1)
    replaced = xp.asarray((action == REPLACED)[..., None].astype(dtype))  # (B, N, 1)
    untouched = 1.0 - masked - replaced  # (B, N, 1)
    return tokens * untouched + mask_token * masked + other * replaced  # (B, N, D)


# ---------------------------------------------------------------------------------------------
# The model: the ViT's encoder on corrupted embeddings, a colour head on the chosen tokens
# ---------------------------------------------------------------------------------------------


def init_mpp(rng, cfg: ViTConfig, bits=BITS, dtype=onp.float32):
    """Pre-training parameters: the ViT's (without its class head), a [mask] embedding
    "mask" (1, 1, D) ~ N(0, 0.02^2) and a colour head "mpp_head" (D, K), zero like the ViT's."""
    params = init_vit(rng, cfg, dtype)
    del params["head"]
    params["mask"] = (0.02 * rng.standard_normal((1, 1, cfg.width))).astype(dtype)
    params["mpp_head"] = layers.init_linear(rng, cfg.width, num_colors(cfg.channels, bits),
                                            dtype, zero=True)
    return params


def to_classifier(params, num_classes):
    """Sec. 3.2: the pre-trained ViT with the pre-training head removed and a zero-initialised
    D x K classification head attached (the [mask] embedding is dropped too). Arrays are shared."""
    vit_params = {k: v for k, v in params.items() if k not in ("mask", "mpp_head")}
    d = params["mask"].shape[-1]
    vit_params["head"] = layers.init_linear(None, d, num_classes, params["mask"].dtype, zero=True)
    return vit_params


def encode_corrupted(params, images, action, source, cfg: ViTConfig):
    """Eq. 1-3 with corrupted patch embeddings, then the final LayerNorm. -> (B, T, D)."""
    check_images(images, cfg)
    x = layers.linear(params["embed"], patch_inputs(params, images, cfg))  # (B, N, D)
    x = corrupt(x, params["mask"], action, source)  # (B, N, D)
    if cfg.pool == "cls":
        cls = np.broadcast_to(params["cls"], (x.shape[0], 1, cfg.width))  # (B, 1, D)
        x = np.concatenate([cls, x], axis=1)  # (B, T, D)
    z = x + params["pos"]  # (B, T, D)
    for p in params["blocks"]:
        z = layers.block(p, z, cfg.heads, cfg.ln_eps)
    return layers.layer_norm(params["norm"], z, cfg.ln_eps)  # (B, T, D)


def chosen_rows(labels, cfg: ViTConfig):
    """Flat token rows (into (B*T, D)) of the chosen patches, and their colour classes (S,)."""
    labels = onp.asarray(labels)
    b, n = labels.shape[:2]
    if labels.ndim != 3 or labels.shape[2] != 3 or n != cfg.num_patches:
        raise ValueError(f"mpp labels: expected (B, {cfg.num_patches}, 3) [colour, action, "
                         f"source] for {cfg.name}, found {labels.shape}")
    first = cfg.num_tokens - cfg.num_patches  # 1 with a class token
    bi, pi = onp.nonzero(labels[..., 1] != NOT_CHOSEN)  # (S,) each
    return bi * cfg.num_tokens + first + pi, labels[bi, pi, 0]  # (S,), (S,)


def mpp_logits(params, images, labels, cfg: ViTConfig):
    """Colour logits (S, K) of the chosen patches, and their targets (S,)."""
    rows, targets = chosen_rows(labels, cfg)  # checks the labels' shape first
    z = encode_corrupted(params, images, labels[..., 1], labels[..., 2], cfg)  # (B, T, D)
    xp = array_module(z)
    tokens = z.reshape(-1, cfg.width)[xp.asarray(rows)]  # (S, D)
    return layers.linear(params["mpp_head"], tokens), targets  # (S, K), (S,)


def mpp_loss(params, images, labels, cfg: ViTConfig):
    """The pre-training objective: mean cross-entropy of the chosen patches' colour classes.

    images (B, H, W, C) float (normalised as for training), labels (B, N, 3) from
    `pack_labels` -> a scalar.
    """
    logits, targets = mpp_logits(params, images, labels, cfg)
    return ops.cross_entropy(logits, array_module(logits).asarray(targets))
