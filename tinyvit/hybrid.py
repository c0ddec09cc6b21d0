"""The paper's hybrid architecture (Dosovitskiy et al. 2021, Sec. 3.1, "Hybrid Architecture"):

    "As an alternative to raw image patches, the input sequence can be formed from feature maps
    of a CNN. In this hybrid model, the patch embedding projection E (Eq. 1) is applied to
    patches extracted from a CNN feature map. As a special case, the patches can have spatial
    size 1x1, which means that the input sequence is obtained by simply flattening the spatial
    dimensions of the feature map and projecting to the Transformer dimension."

    feature map:  the CNN's stem and stages (`tinyvit.cnn.feature_map`)   (B, h, w, C_f)
    patches:      1x1 patches of the map, flattened                     (B, N = h w, C_f)
    Eq. 1:        z_0 = [x_class; x_p^1 E; ...; x_p^N E] + E_pos        (`vit.embed_patches`)
    Eq. 2-4:      the same encoder blocks, final LayerNorm, head on the class token

The paper's backbone is a ResNet (stages cut to give 14x14 maps at 224 px); here it is a few
conv blocks of `tinyvit.cnn` (whitening stem, conv -> pool -> BatchNorm -> GELU), giving an 8x8
map of a 32x32 image: 64 tokens, as many as a ViT with 4x4 patches, but each token has seen a
receptive field beyond its own 4x4 pixels and arrives with a CNN's locality built in.
Everything after the feature map is `tinyvit.vit`'s code. With BatchNorm in the backbone, call
`population_stats` after training, as for the CNN.

Parameters: the ViT's tree (`vit.init_vit`; "embed" is E: (C_f, D)) plus "backbone":
the CNN's {"stem", "stages"} (`cnn.init_backbone`). Shape legend as in `tinyvit.vit`.
"""
import numpy as onp

from . import cnn, layers, vit
from .configs import HybridConfig, check_images
from .tree import count_params  # noqa: F401  (re-exported: tinyvit.hybrid.count_params)


def init_hybrid(rng, cfg: HybridConfig, dtype=onp.float32):
    """Random parameters for `cfg`: the backbone's (`cnn.init_backbone`; set a whitening stem
    from data with `init_whitening`) and the Transformer's (`vit.init_vit`)."""
    backbone = cnn.init_backbone(rng, cfg.backbone, dtype)
    return {"backbone": backbone, **vit.init_vit(rng, cfg, dtype)}


def tokens(params, images, cfg: HybridConfig, train=False):
    """The CNN feature map cut into 1x1 patches. (B, H, W, C) -> (B, N, C_f)."""
    check_images(images, cfg)
    x = cnn.feature_map(params["backbone"], images, cfg.backbone, train)  # (B, h, w, C_f)
    b, h, w, c = x.shape
    return x.reshape(b, h * w, c)  # (B, N, C_f)


def encode(params, images, cfg: HybridConfig, train=False, rng=None, weights_out=None):
    """Tokens, Eq. 1 (E, class token, E_pos), the encoder and its LayerNorm. -> (B, N(+1), D)."""
    z = vit.embed_patches(params, tokens(params, images, cfg, train), cfg)  # (B, N(+1), D)
    return vit.transformer(params, z, cfg, train, rng, weights_out)


def hybrid(params, images, cfg: HybridConfig, train=False, rng=None):
    """Class logits. images (B, H, W, C) float -> (B, K)."""
    z = encode(params, images, cfg, train, rng)  # (B, N(+1), D)
    return layers.linear(params["head"], vit.pool(z, cfg, params))  # (B, K)


def attention_maps(params, images, cfg: HybridConfig):
    """Logits and the attention weights of every block: a list of L arrays (B, H, T, T)."""
    maps = []
    z = encode(params, images, cfg, weights_out=maps)
    return layers.linear(params["head"], vit.pool(z, cfg, params)), maps


def init_whitening(params, images, cfg: HybridConfig):
    """`cnn.init_whitening` for the backbone: a copy of params with its whitening kernel set."""
    return {**params, "backbone": cnn.init_whitening(params["backbone"], images, cfg.backbone)}


def population_stats(params, images, cfg: HybridConfig, batch_size=128, map_batches=map):
    """`cnn.population_stats` for the backbone's BatchNorms: call after training."""
    backbone = cnn.population_stats(params["backbone"], images, cfg.backbone, batch_size,
                                    map_batches)
    return {**params, "backbone": backbone}


def param_count(cfg: HybridConfig):
    """Number of parameters (equals count_params(init_hybrid(rng, cfg)))."""
    return cnn.backbone_param_count(cfg.backbone) + vit.param_count(cfg)


def flops_per_image(cfg: HybridConfig):
    """Forward multiply-adds per image: the backbone's convolutions and the Transformer's
    matmuls (E is the (C_f, D) projection of each 1x1 patch)."""
    return cnn.backbone_flops(cfg.backbone) + vit.flops_per_image(cfg)
