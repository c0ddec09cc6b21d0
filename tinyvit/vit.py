"""The Vision Transformer (Dosovitskiy et al., ICLR 2021), Eq. 1-4, in autograd.numpy.

    z_0 = [x_class; x_p^1 E; ...; x_p^N E] + E_pos        (Eq. 1)  embed()
    z'_l = MSA(LN(z_{l-1})) + z_{l-1}                      (Eq. 2)  layers.block()
    z_l  = MLP(LN(z'_l)) + z'_l                            (Eq. 3)  layers.block()
    y    = LN(z_L^0)                                       (Eq. 4)  encode() + pool()

Three ingredients for small data sets, off by default (ViTConfig.spt, .lsa, pool "seq"):
shifted patch tokenization (`patch_inputs`) and locality self-attention (`layers.lsa_weights`)
of Lee et al. 2021, and the sequence pooling of Hassani et al. 2021 (`layers.seq_pool`).

Shape legend: B batch, H, W image height/width (H = heads in attention maps), C channels,
P patch size, N patches (N+1 tokens with the class token), D width, K classes.
Images are NHWC float32; parameters are nested dicts (see docs/CONVENTIONS.md).
"""
import functools

import numpy as onp

import autograd.numpy as np
from autograd.tracer import getval

from . import layers, ops
from .arrays import array_module
from .configs import ViTConfig, check_images
from .tree import count_params  # noqa: F401  (re-exported: tinyvit.vit.count_params)


def patchify(images, p):
    """Cut images into non-overlapping P x P patches, flattened in (row, col, channel) order.

    (B, H, W, C) -> (B, N, P*P*C) with N = (H/P)(W/P), by reshape + transpose (no loops).
    """
    b, h, w, c = images.shape
    x = images.reshape(b, h // p, p, w // p, p, c)  # (B, H/P, P, W/P, P, C)
    x = x.transpose((0, 1, 3, 2, 4, 5))  # (B, H/P, W/P, P, P, C)
    return x.reshape(b, (h // p) * (w // p), p * p * c)  # (B, N, P*P*C)


def unpatchify(patches, p, c):
    """Inverse of `patchify`: (B, N, P*P*C) -> (B, H, W, C) for a square grid."""
    b, n, _ = patches.shape
    g = int(round(n**0.5))
    x = patches.reshape(b, g, g, p, p, c).transpose((0, 1, 3, 2, 4, 5))  # (B, g, P, g, P, C)
    return x.reshape(b, g * p, g * p, c)  # (B, H, W, C)


def init_vit(rng, cfg: ViTConfig, dtype=onp.float32):
    """Random parameters for `cfg`. `rng` is a numpy.random.Generator.

    Dense kernels Xavier-uniform, biases and the class token zero, position embeddings
    N(0, 0.02^2) (none when they are the fixed sin-cos ones), head zero (as the official
    code), LayerNorm scale 1 / offset 0. (The hybrid's Transformer is made here too.)
    """
    d = cfg.width
    params = {
        "embed": layers.init_linear(rng, cfg.embed_in, d, dtype),  # E: (P*P*C, D), SPT 5x
        "pos": (0.02 * rng.standard_normal((1, cfg.num_tokens, d))).astype(dtype),
        "blocks": [layers.init_block(rng, d, cfg.mlp_dim, dtype) for _ in range(cfg.depth)],
        "norm": layers.init_layer_norm(d, dtype),
        "head": layers.init_linear(rng, d, cfg.num_classes, dtype, zero=True),
    }
    if cfg.pos == "sincos":  # drawn all the same: both options get the same other weights
        del params["pos"]
    if cfg.pool == "cls":
        params["cls"] = onp.zeros((1, 1, d), dtype)
    return with_ingredients(params, rng, cfg, dtype)


def with_ingredients(params, rng, cfg, dtype=onp.float32):
    """The parameters the small-data ingredients add, drawn after all others (so a config
    without them gets exactly the parameters it always had): SeqPool's g (pool "seq"), SPT's
    LayerNorm over 5 P^2 C (spt), each block's log temperature (lsa)."""
    if cfg.pool == "seq":
        params["seqpool"] = layers.init_seq_pool(rng, cfg.width, dtype)  # g: (D, 1)
    if cfg.spt:
        params["spt_norm"] = layers.init_layer_norm(cfg.embed_in, dtype)
    if cfg.lsa:
        for block in params["blocks"]:
            block["attn"]["log_tau"] = layers.init_lsa_temperature(cfg.heads, cfg.width, dtype)
    return params


@functools.lru_cache(maxsize=16)
def sincos_2d(grid, d, temperature=10000.0):
    """Fixed 2-D sin-cos position embeddings (Beyer et al. 2022, "Better plain ViT baselines";
    big_vision's posemb_sincos_2d): (grid*grid, D) float64, row-major patch order.

    With omega_i = temperature^(-i / (D/4 - 1)), i < D/4, the patch at (row y, column x) gets
    [sin(x omega), cos(x omega), sin(y omega), cos(y omega)].
    """
    y, x = onp.mgrid[:grid, :grid]  # (grid, grid) each
    omega = 1.0 / temperature ** (onp.arange(d // 4) / (d // 4 - 1))  # (D/4,)
    x = x.reshape(-1)[:, None] * omega[None]  # (N, D/4)
    y = y.reshape(-1)[:, None] * omega[None]
    return onp.concatenate([onp.sin(x), onp.cos(x), onp.sin(y), onp.cos(y)], axis=1)  # (N, D)


def position_embedding(params, cfg: ViTConfig, like):
    """E_pos (1, N(+1), D): the learned params["pos"], or the fixed sin-cos embeddings (the
    class token's row 0) in the array library and dtype of `like`."""
    if cfg.pos == "learned":
        return params["pos"]
    pe = sincos_2d(cfg.grid, cfg.width)  # (N, D)
    if cfg.pool == "cls":
        pe = onp.concatenate([onp.zeros((1, cfg.width)), pe])  # (1+N, D)
    return array_module(like).asarray(pe[None].astype(getval(like).dtype))  # (1, N(+1), D)


# SPT's four diagonal shifts (rows, columns), in half patches: left-up, right-up, left-down,
# right-down, as the paper's code orders them
SPT_SHIFTS = ((-1, -1), (-1, 1), (1, -1), (1, 1))


def shifted_copies(images, s):
    """The image and its four diagonal shifts by s pixels (zeros shifted in), side by side on
    the channel axis (Lee et al. 2021, Sec. 3.1, Eq. 1): (B, H, W, C) -> (B, H, W, 5C)."""
    b, h, w, c = images.shape
    x = np.pad(images, ((0, 0), (s, s), (s, s), (0, 0)))  # (B, H+2s, W+2s, C)
    views = [x[:, s + dy * s:s + dy * s + h, s + dx * s:s + dx * s + w] for dy, dx in SPT_SHIFTS]
    return np.concatenate([images] + views, axis=-1)  # (B, H, W, 5C)


def patch_inputs(params, images, cfg: ViTConfig):
    """The x_p of Eq. 1: the flattened patches (B, N, P*P*C); with shifted patch tokenization
    (cfg.spt; Lee et al. 2021, Eq. 1-2) the LayerNorm of the flattened patches of
    `shifted_copies` by half a patch (B, N, 5*P*P*C), which E then embeds as usual."""
    if cfg.spt:
        patches = patchify(shifted_copies(images, cfg.patch_size // 2), cfg.patch_size)
        return layers.layer_norm(params["spt_norm"], patches, cfg.ln_eps)  # (B, N, 5*P*P*C)
    return patchify(images, cfg.patch_size)  # (B, N, P*P*C)


def embed(params, images, cfg: ViTConfig):
    """Eq. 1: z_0 = [x_class; x_p^1 E; ...; x_p^N E] + E_pos. (B, H, W, C) -> (B, N(+1), D)."""
    return embed_patches(params, patch_inputs(params, images, cfg), cfg)


def embed_patches(params, patches, cfg: ViTConfig):
    """Eq. 1 from flattened patches x_p (B, N, P*P*C): projection E, the class token, E_pos.

    -> (B, N(+1), D). The hybrid calls it with the 1x1 patches of a CNN feature map."""
    x = layers.linear(params["embed"], patches)  # (B, N, D)
    if cfg.pool == "cls":
        b, _, d = x.shape
        cls = np.broadcast_to(params["cls"], (b, 1, d))  # (B, 1, D)
        x = np.concatenate([cls, x], axis=1)  # (B, 1+N, D)
    return x + position_embedding(params, cfg, x)  # (B, N(+1), D)


def encode(params, images, cfg: ViTConfig, train=False, rng=None, weights_out=None):
    """Embed, run the L encoder blocks and the final LayerNorm. -> (B, N(+1), D)."""
    check_images(images, cfg)
    return transformer(params, embed(params, images, cfg), cfg, train, rng, weights_out)


def transformer(params, z, cfg: ViTConfig, train=False, rng=None, weights_out=None):
    """Dropout, the L encoder blocks (Eq. 2-3) and the final LayerNorm. (B, T, D) -> same."""
    z = layers.dropout(rng, z, cfg.dropout, train)  # (B, T, D)
    for p in params["blocks"]:
        z = layers.block(p, z, cfg.heads, cfg.ln_eps, cfg.dropout, train, rng, weights_out)
    return layers.layer_norm(params["norm"], z, cfg.ln_eps)  # (B, T, D)


def pool(z, cfg: ViTConfig, params=None):
    """Eq. 4: the class token's output y = LN(z_L^0), the mean over tokens ("gap"), or their
    mean weighted by SeqPool's softmax(z w) ("seq", `layers.seq_pool`, params["seqpool"])."""
    if cfg.pool == "cls":
        return ops.first_token(z)  # (B, D)
    if cfg.pool == "seq":
        return layers.seq_pool(params["seqpool"], z)  # (B, D)
    return z.sum(1) * (1.0 / z.shape[1])  # (B, D)


def features(params, images, cfg: ViTConfig, train=False, rng=None):
    """The image representation y fed to the head (and to linear probes). -> (B, D)."""
    return pool(encode(params, images, cfg, train, rng), cfg, params)


def vit(params, images, cfg: ViTConfig, train=False, rng=None):
    """Class logits. images (B, H, W, C) float -> (B, K)."""
    return layers.linear(params["head"], features(params, images, cfg, train, rng))  # (B, K)


def loss_fn(params, images, labels, cfg: ViTConfig, smoothing=0.0, train=False, rng=None):
    """Mean softmax cross-entropy (with label smoothing) of the model's logits: a scalar."""
    return ops.cross_entropy(vit(params, images, cfg, train, rng), labels, smoothing)


def attention_maps(params, images, cfg: ViTConfig):
    """Logits and the attention weights of every block: a list of L arrays (B, H, N, N)."""
    maps = []
    z = encode(params, images, cfg, weights_out=maps)
    return layers.linear(params["head"], pool(z, cfg, params)), maps


def param_count(cfg: ViTConfig):
    """Number of parameters of `cfg`, without allocating them (ViT-H has 632M)."""
    d, m, k = cfg.width, cfg.mlp_dim, cfg.num_classes
    block = 2 * 2 * d + (d * 3 * d + 3 * d) + (d * d + d) + (d * m + m) + (m * d + d)
    pos = cfg.num_tokens * d if cfg.pos == "learned" else 0
    embed = cfg.embed_in * d + d + pos + (d if cfg.pool == "cls" else 0)
    extra = ((d if cfg.pool == "seq" else 0) + (2 * cfg.embed_in if cfg.spt else 0)
             + (cfg.depth * cfg.heads if cfg.lsa else 0))  # SeqPool's g, SPT's LN, LSA's tau
    return embed + cfg.depth * block + 2 * d + d * k + k + extra


def flops_per_image(cfg: ViTConfig):
    """Forward multiply-adds per image (matmuls only; 1 MAC = 2 FLOPs)."""
    t, d, m = cfg.num_tokens, cfg.width, cfg.mlp_dim
    embed_macs = cfg.num_patches * cfg.embed_in * d
    block_macs = t * d * 3 * d + 2 * t * t * d + t * d * d + 2 * t * d * m
    pool_macs = 2 * t * d if cfg.pool == "seq" else 0  # SeqPool: the logits z w, then a z
    return embed_macs + cfg.depth * block_macs + pool_macs + d * cfg.num_classes
