"""A tiny convolutional network: the baseline that shows ViT's "data hunger" (paper, Sec. 4.3).

A CNN builds in what a ViT must learn from data: locality (3 x 3 kernels) and translation
equivariance (the same kernel at every position). The ViT's patch embedding cuts the image into
non-overlapping P x P patches and applies one matrix to each (`vit.patchify` + `@`). A 3 x 3
convolution is the same idea with stride 1 and overlapping patches: "patchify" every pixel's
3 x 3 neighbourhood (im2col), then one matrix product with the kernel.

    stem:     conv 3x3 (C -> S), GroupNorm, ReLU                            at H x W
    stage i:  conv 3x3 (-> W_i), max-pool 2x2, GroupNorm, ReLU              H and W halve
              (depth - 1) x [conv 3x3 (W_i -> W_i), GroupNorm, ReLU]
    head:     global average pool, (dropout), linear -> K logits

Pooling right after a stage's first convolution (before the norm and the ReLU, as in
Keller Jordan's fast CIFAR-10 "airbench" nets) runs those two on 4x fewer pixels.

Normalisation: GroupNorm (Wu & He 2018), per sample over (H, W, channels of a group).
It needs no running statistics, so training and evaluation compute the same function, the
model stays a pure `cnn(params, images) -> logits`, and a checkpoint is just the parameters.
BatchNorm would need a separate state of running means threaded through training and
checkpoints; GroupNorm is close to it in accuracy (Wu & He report 0.5% lower ImageNet
accuracy at a batch of 32 per GPU), and cheap here because the norm runs after pooling.
The convolutions that feed a norm have no bias (the norm's offset b plays its role).

`im2col`, `max_pool` and `group_norm` below are the formulas; training swaps in fast twins
with hand VJPs (`tinyvit.fast.cnn`, tested equal). The config and presets are in
`tinyvit.configs` (`CNNConfig`, `get_cnn_config`).

Shape legend: B batch, H, W height/width (halved by each pool), C channels (Cin -> Cout for a
convolution), k kernel size (3), G groups, K classes. Images are NHWC float32.
Parameters (a nested dict; see docs/CONVENTIONS.md):

    {"stem":   {"w": (k, k, C, S), "norm": {"g": (S,), "b": (S,)}},
     "stages": [[{"w": (k, k, Cin, Cout), "norm": {"g": (Cout,), "b": (Cout,)}}, ...], ...],
     "head":   {"w": (W_last, K), "b": (K,)}}

A convolution kernel is stored (kh, kw, Cin, Cout) (JAX/flax layout); `w.reshape(k*k*Cin,
Cout)` is then the matrix for patches flattened in (row, col, channel) order, as in ViT.
torch's Conv2d weight (Cout, Cin, kh, kw) is `w.transpose(3, 2, 0, 1)`.
Without GroupNorm (groups=0) every convolution has a bias "b" (Cout,) instead of "norm".
"""
import numpy as onp

import autograd.numpy as np

from . import layers
from .configs import CNNConfig, check_images
from .tree import count_params  # noqa: F401  (re-exported: tinyvit.cnn.count_params)


# ---------------------------------------------------------------------------------------------
# Counting
# ---------------------------------------------------------------------------------------------


def conv_shapes(cfg: CNNConfig):
    """(Cin, Cout, output side) of every convolution in order, for counting and init."""
    out, c, side = [(cfg.channels, cfg.stem, cfg.image_size)], cfg.stem, cfg.image_size
    for w in cfg.widths:
        out.append((c, w, side))  # the stage's first conv runs before the pool
        side //= 2
        out += [(w, w, side)] * (cfg.depth - 1)
        c = w
    return out


def param_count(cfg: CNNConfig):
    """Number of parameters of `cfg` (equals count_params(init_cnn(rng, cfg)))."""
    per_conv = lambda cin, cout: cfg.kernel**2 * cin * cout + (2 * cout if cfg.groups else cout)
    convs = sum(per_conv(cin, cout) for cin, cout, _ in conv_shapes(cfg))
    return convs + cfg.widths[-1] * cfg.num_classes + cfg.num_classes


def flops_per_image(cfg: CNNConfig):
    """Forward multiply-adds per image (convolutions and head; 1 MAC = 2 FLOPs)."""
    convs = sum(cfg.kernel**2 * cin * cout * side**2 for cin, cout, side in conv_shapes(cfg))
    return convs + cfg.widths[-1] * cfg.num_classes



# ---------------------------------------------------------------------------------------------
# Convolution: im2col (every pixel's k x k neighbourhood as one row), then a matmul
# ---------------------------------------------------------------------------------------------


def pad(x, r):
    """Zero-pad H and W by r on each side. (B, H, W, C) -> (B, H+2r, W+2r, C)."""
    return np.pad(x, ((0, 0), (r, r), (r, r), (0, 0)), "constant")  # autograd's VJP needs the mode



def im2col(x, k=3):
    """Every pixel's k x k neighbourhood as one row: the k*k shifted windows of the zero-padded
    input, side by side ("patchify" with stride 1, overlapping patches).

    x (B, H, W, C) -> (B*H*W, k*k*C): row (b, h, w) holds the pixels (h+i-r, w+j-r), i, j < k,
    r = k // 2, in (i, j, channel) order. Each shifted slice is one column block.
    """
    b, h, w, c = x.shape
    padded = pad(x, k // 2)  # (B, H+2r, W+2r, C)
    shifted = [padded[:, i:i + h, j:j + w, :] for i in range(k) for j in range(k)]  # k*k (B,H,W,C)
    return np.stack(shifted, axis=3).reshape(b * h * w, k * k * c)  # (B*H*W, k*k*C)



def conv(p, x, k=3):
    """'Same' k x k convolution, stride 1: im2col then one 2-D matmul. (B,H,W,Cin) -> (B,H,W,Cout).

    p["w"] (k, k, Cin, Cout); p["b"] (Cout,) only when the model has no norm.
    """
    b, h, w, c = x.shape
    kernel = p["w"].reshape(k * k * c, -1)  # (k*k*Cin, Cout)
    y = im2col(x, k) @ kernel  # (B*H*W, Cout)
    if "b" in p:
        y = y + p["b"]
    return y.reshape(b, h, w, kernel.shape[1])  # (B, H, W, Cout)



# ---------------------------------------------------------------------------------------------
# 2 x 2 max pooling (stride 2) and GroupNorm
# ---------------------------------------------------------------------------------------------


def max_pool(x):
    """2x2 max pooling, stride 2: the max over each 2x2 block, by a reshape.

    (B, H, W, C) -> (B, H/2, W/2, C).
    """
    b, h, w, c = x.shape
    return x.reshape(b, h // 2, 2, w // 2, 2, c).max(axis=(2, 4))  # (B, H/2, W/2, C)



def group_norm(x, g, b, groups, eps=1e-5):
    """GroupNorm (Wu & He 2018): LayerNorm's formula with statistics per sample and group.

    x (B, H, W, C), g and b (C,) -> (B, H, W, C)."""
    bs, h, w, c = x.shape
    inv_n = 1.0 / (h * w * (c // groups))  # a Python float keeps float32 float32
    xg = x.reshape(bs, h * w, groups, c // groups)  # (B, H*W, G, C/G)
    mean = xg.sum(axis=(1, 3), keepdims=True) * inv_n  # (B, 1, G, 1)
    xc = xg - mean
    var = (xc * xc).sum(axis=(1, 3), keepdims=True) * inv_n  # (B, 1, G, 1)
    x_hat = (xc / np.sqrt(var + eps)).reshape(bs, h, w, c)  # (B, H, W, C)
    return x_hat * g + b



# ---------------------------------------------------------------------------------------------
# The network
# ---------------------------------------------------------------------------------------------


def relu(x):
    """max(x, 0) as x * (x > 0): the mask is a constant, so the VJP is one float32 multiply."""
    return x * (x > 0)


def init_conv(rng, cin, cout, k, groups, dtype=onp.float32):
    """He-normal kernel (std sqrt(2 / fan_in), for ReLU); GroupNorm g = 1, b = 0, or a bias."""
    w = rng.standard_normal((k, k, cin, cout)) * onp.sqrt(2.0 / (k * k * cin))
    p = {"w": w.astype(dtype)}
    if groups:
        p["norm"] = {"g": onp.ones(cout, dtype), "b": onp.zeros(cout, dtype)}
    else:
        p["b"] = onp.zeros(cout, dtype)
    return p


def init_cnn(rng, cfg: CNNConfig, dtype=onp.float32):
    """Random parameters for `cfg`. `rng` is a numpy.random.Generator. The head starts at 0."""
    convs = [init_conv(rng, cin, cout, cfg.kernel, cfg.groups, dtype)
             for cin, cout, _ in conv_shapes(cfg)]
    stages, rest = [], convs[1:]
    for s in range(len(cfg.widths)):
        stages.append(rest[s * cfg.depth:(s + 1) * cfg.depth])
    return {
        "stem": convs[0],
        "stages": stages,
        "head": layers.init_linear(rng, cfg.widths[-1], cfg.num_classes, dtype, zero=True),
    }


def conv_block(p, x, cfg: CNNConfig, pool=False):
    """conv -> (2x2 max-pool) -> GroupNorm -> ReLU. (B, H, W, Cin) -> (B, H(/2), W(/2), Cout)."""
    x = conv(p, x, cfg.kernel)  # (B, H, W, Cout)
    if pool:
        x = max_pool(x)  # (B, H/2, W/2, Cout)
    if cfg.groups:
        x = group_norm(x, p["norm"]["g"], p["norm"]["b"], cfg.groups, cfg.norm_eps)
    return relu(x)


def features(params, images, cfg: CNNConfig):
    """Stem and stages, then global average pooling. (B, H, W, C) -> (B, W_last)."""
    check_images(images, cfg)
    x = conv_block(params["stem"], images, cfg)  # (B, H, W, S)
    for stage in params["stages"]:
        x = conv_block(stage[0], x, cfg, pool=True)  # (B, H/2, W/2, W_i)
        for p in stage[1:]:
            x = conv_block(p, x, cfg)
    b, h, w, c = x.shape
    return x.reshape(b, h * w, c).sum(1) * (1.0 / (h * w))  # (B, W_last)


def cnn(params, images, cfg: CNNConfig, train=False, rng=None):
    """Class logits. images (B, H, W, C) float -> (B, K). Dropout before the head if training."""
    f = layers.dropout(rng, features(params, images, cfg), cfg.dropout, train)  # (B, W_last)
    return layers.linear(params["head"], f)  # (B, K)
