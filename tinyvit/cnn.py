"""A tiny convolutional network: the baseline that shows ViT's "data hunger" (paper, Sec. 4.3).

A CNN builds in what a ViT must learn from data: locality (3 x 3 kernels) and translation
equivariance (the same kernel at every position). The ViT's patch embedding cuts the image into
non-overlapping P x P patches and applies one matrix to each (`vit.patchify` + `@`). A 3 x 3
convolution is the same idea with stride 1 and overlapping patches: "patchify" every pixel's
3 x 3 neighbourhood (im2col), then one matrix product with the kernel.

    stem:     conv 3x3 (C -> S), norm, activation                            at H x W
              (or, with `whiten`, a fixed 2x2 patch-whitening conv (C -> 8C), activation)
    stage i:  conv 3x3 (-> W_i), max-pool 2x2, norm, activation            H and W halve
              (depth - 1) x [conv 3x3 (W_i -> W_i), norm, activation]
    head:     global average pool, (dropout), linear -> K logits

Pooling right after a stage's first convolution (before the norm and the activation, as in
Keller Jordan's fast CIFAR-10 "airbench" nets) runs those two on 4x fewer pixels.

Normalisation, two kinds (`cfg.norm`):
  * GroupNorm (Wu & He 2018), per sample over (H, W, channels of a group). It needs no
    statistics of other images, so training and evaluation compute the same function.
  * BatchNorm (Ioffe & Szegedy 2015), per channel over the batch and the pixels: while
    training each batch is normalised by its own mean and variance (a shard's, when a step runs
    in shards: "ghost" batches); at evaluation by population statistics stored in the
    parameter tree as "mean" and "var". These are not trained (they enter the model through
    `getval`, so their gradient is zero, and weight decay only touches kernels named "w"):
    `population_stats(params, images, cfg)` computes them once, after training and before
    evaluating. So the model stays a pure `cnn(params, images) -> logits` at evaluation and a
    checkpoint is just the parameters. airbench and "How to train your ResNet" train with it.
The convolutions that feed a norm have no bias (the norm's offset b plays its role).

The whitening stem (airbench; Coates & Ng 2011 whiten patches for the same reason): its kernel
holds the eigenvectors of the covariance of the training images' 2x2 patches, each scaled by
1 / sqrt(eigenvalue + eps), and their negatives (so a ReLU/GELU after it keeps both signs).
Its output channels are decorrelated with unit variance, which the first learned convolution
then finds easy to train on. It is computed from data once (`init_whitening`) and fixed
(kept out of the gradient by `getval`, named "fixed" so no decay touches it). airbench also
trains a bias for its first epochs; here there is none, so the whole stem is a constant of the
parameters and the backward pass stops at the first learned convolution (about 10% faster a
step). It runs as a 3x3 convolution whose kernel is 0 outside the bottom-right 2x2 taps.

`im2col`, `max_pool`, `group_norm`, `batch_norm` below are the formulas; training swaps in
fast twins with hand VJPs (`tinyvit.fast.cnn`, tested equal). The config and presets are in
`tinyvit.configs` (`CNNConfig`, `get_cnn_config`).

Shape legend: B batch, H, W height/width (halved by each pool), C channels (Cin -> Cout for a
convolution), k kernel size (3), G groups, K classes. Images are NHWC float32.
Parameters (a nested dict; see docs/CONVENTIONS.md):

    {"stem":   {"w": (k, k, C, S), "norm": {...}}   or, whitening, {"fixed": (2, 2, C, 8C)},
     "stages": [[{"w": (k, k, Cin, Cout), "norm": {...}}, ...], ...],
     "head":   {"w": (W_last, K), "b": (K,)}}

    "norm": GroupNorm {"g": (Cout,), "b": (Cout,)}; BatchNorm also "mean", "var" (Cout,).

A convolution kernel is stored (kh, kw, Cin, Cout) (JAX/flax layout); `w.reshape(k*k*Cin,
Cout)` is then the matrix for patches flattened in (row, col, channel) order, as in ViT.
torch's Conv2d weight (Cout, Cin, kh, kw) is `w.transpose(3, 2, 0, 1)`.
Without normalisation (GroupNorm with groups=0) every convolution has a bias "b" (Cout,) instead.
"""
import numpy as onp

import autograd.numpy as np
from autograd.tracer import getval

from . import layers, ops
from .arrays import array_module
from .configs import CNNConfig, check_images
from .tree import count_params, tree_map  # noqa: F401  (re-exported: tinyvit.cnn.count_params)


# ---------------------------------------------------------------------------------------------
# Counting
# ---------------------------------------------------------------------------------------------


def conv_shapes(cfg: CNNConfig):
    """(Cin, Cout, output side) of every convolution in order (the stem first), for counting
    and init."""
    out, c, side = [(cfg.channels, cfg.stem, cfg.image_size)], cfg.stem, cfg.image_size
    for w in cfg.widths:
        out.append((c, w, side))  # the stage's first conv runs before the pool
        side //= 2
        out += [(w, w, side)] * (cfg.depth - 1)
        c = w
    return out


def norm_size(cfg: CNNConfig, cout):
    """Numbers held per convolution besides its kernel: norm g, b (BatchNorm also mean, var),
    or a bias."""
    if cfg.norm == "batch":
        return 4 * cout
    return 2 * cout if cfg.groups else cout


def backbone_param_count(cfg: CNNConfig):
    """Parameters of the stem and the stages (the CNN without its head)."""
    (c, s, _), *rest = conv_shapes(cfg)
    stem = 4 * c * s if cfg.whiten else cfg.kernel**2 * c * s + norm_size(cfg, s)
    return stem + sum(cfg.kernel**2 * cin * cout + norm_size(cfg, cout) for cin, cout, _ in rest)


def param_count(cfg: CNNConfig):
    """Number of parameters of `cfg` (equals count_params(init_cnn(rng, cfg))), counting
    BatchNorm's population statistics and the fixed whitening kernel (neither trained)."""
    return backbone_param_count(cfg) + cfg.widths[-1] * cfg.num_classes + cfg.num_classes


def backbone_flops(cfg: CNNConfig):
    """Forward multiply-adds per image of the stem and the stages (the whitening conv as 2x2)."""
    (c, s, side), *rest = conv_shapes(cfg)
    stem = (4 if cfg.whiten else cfg.kernel**2) * c * s * side**2
    return stem + sum(cfg.kernel**2 * cin * cout * side**2 for cin, cout, side in rest)


def flops_per_image(cfg: CNNConfig):
    """Forward multiply-adds per image (convolutions and head; 1 MAC = 2 FLOPs)."""
    return backbone_flops(cfg) + cfg.widths[-1] * cfg.num_classes


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



def batch_norm(x, g, b, eps=1e-5):
    """BatchNorm (Ioffe & Szegedy 2015) with the batch's statistics (training): LayerNorm's
    formula with statistics per channel over the batch and the pixels.

    x (B, H, W, C), g and b (C,) -> (B, H, W, C)."""
    c = x.shape[-1]
    xr = x.reshape(-1, c)  # (B*H*W, C)
    inv_n = 1.0 / xr.shape[0]
    xc = xr - xr.sum(0) * inv_n  # (B*H*W, C) centred
    var = (xc * xc).sum(0) * inv_n  # (C,) biased variance, as torch normalises by
    return (xc / np.sqrt(var + eps) * g + b).reshape(x.shape)


def batch_stats(x):
    """Mean and variance per channel over (B, H, W), float64, of a raw array; and the count."""
    xr = getval(x).reshape(-1, x.shape[-1])  # (B*H*W, C)
    xp = array_module(xr)
    mean = xr.mean(0, dtype=xp.float64)  # (C,)
    return mean, ((xr - mean) ** 2).mean(0), len(xr)  # float64 (C,), (C,), int


def norm(p, x, cfg: CNNConfig, train=False, stats_out=None):
    """The configured norm of a conv's output x (B, H, W, C) -> same.

    BatchNorm uses the batch's statistics when `train`, else the population statistics
    p["mean"], p["var"] (constants: `getval`). `stats_out`, a list, receives
    (p, mean, var, count) of each BatchNorm's batch (for `population_stats`).
    """
    if cfg.norm == "group":
        return group_norm(x, p["g"], p["b"], cfg.groups, cfg.norm_eps)
    if stats_out is not None:
        stats_out.append((p, *batch_stats(x)))
    if train:
        return batch_norm(x, p["g"], p["b"], cfg.norm_eps)
    scale = p["g"] * (1.0 / np.sqrt(getval(p["var"]) + cfg.norm_eps))  # (C,)
    return (x - getval(p["mean"])) * scale + p["b"]


# ---------------------------------------------------------------------------------------------
# The fixed whitening stem
# ---------------------------------------------------------------------------------------------


def whitening_kernel(images, eps=5e-4, chunk=500):
    """The 2x2 patch-whitening kernel of (normalised) images (N, H, W, C): (2, 2, C, 8C).

    Column j < 4C is the j-th eigenvector of the patches' covariance (largest first) divided by
    sqrt(eigenvalue + eps); column 4C + j is its negative. Patches are flattened in (row, col,
    channel) order, the kernel layout's; the covariance is the second moment (the images are
    normalised, mean about 0), as in airbench.
    """
    n, h, w, c = images.shape
    cov = onp.zeros((4 * c, 4 * c))
    for s in range(0, n, chunk):
        x = onp.asarray(images[s:s + chunk], onp.float64)
        patches = onp.stack([x[:, i:h - 1 + i, j:w - 1 + j] for i in (0, 1) for j in (0, 1)],
                            axis=3)  # (b, H-1, W-1, 4, C)
        flat = patches.reshape(-1, 4 * c)  # (b (H-1) (W-1), 4C)
        cov += flat.T @ flat
    cov /= n * (h - 1) * (w - 1)
    lam, vec = onp.linalg.eigh(cov)  # ascending
    scaled = vec[:, ::-1] / onp.sqrt(lam[::-1] + eps)  # (4C, 4C), largest first
    return onp.concatenate([scaled, -scaled], axis=1).reshape(2, 2, c, 8 * c)


def init_whitening(params, images, cfg: CNNConfig):
    """A copy of `params` with the stem's fixed kernel computed from `images` (normalised
    training images; airbench takes 5000). Without a whitening stem: `params` unchanged."""
    if not cfg.whiten:
        return params
    kernel = whitening_kernel(images).astype(params["stem"]["fixed"].dtype)
    return {**params, "stem": {**params["stem"], "fixed": kernel}}


def whiten(p, x, cfg: CNNConfig):
    """The fixed 2x2 whitening conv (as a 3x3 conv, zero outside the bottom-right 2x2 taps).
    (B, H, W, C) -> (B, H, W, 8C): a constant (no gradient flows into the stem)."""
    fixed = getval(p["fixed"])  # (2, 2, C, 8C), a constant
    kernel = array_module(fixed).pad(fixed, ((1, 0), (1, 0), (0, 0), (0, 0)))  # (3, 3, C, 8C)
    return conv({"w": kernel}, x, 3)  # (B, H, W, 8C)


# ---------------------------------------------------------------------------------------------
# The network
# ---------------------------------------------------------------------------------------------


def relu(x):
    """max(x, 0) as x * (x > 0): the mask is a constant, so the VJP is one float32 multiply."""
    return x * (x > 0)


def act(x, cfg: CNNConfig):
    """The configured activation: ReLU or GELU (`tinyvit.ops.gelu`, the ViT's)."""
    return ops.gelu(x) if cfg.act == "gelu" else relu(x)


def init_norm(cout, cfg: CNNConfig, dtype=onp.float32):
    """g = 1, b = 0; BatchNorm's population statistics start as mean 0, var 1."""
    p = {"g": onp.ones(cout, dtype), "b": onp.zeros(cout, dtype)}
    if cfg.norm == "batch":
        p.update(mean=onp.zeros(cout, dtype), var=onp.ones(cout, dtype))
    return p


def init_conv(rng, cin, cout, cfg: CNNConfig, dtype=onp.float32):
    """He-normal kernel (std sqrt(2 / fan_in), for ReLU); a norm's parameters, or a bias."""
    k = cfg.kernel
    w = rng.standard_normal((k, k, cin, cout)) * onp.sqrt(2.0 / (k * k * cin))
    p = {"w": w.astype(dtype)}
    if cfg.normalised:
        p["norm"] = init_norm(cout, cfg, dtype)
    else:
        p["b"] = onp.zeros(cout, dtype)
    return p


def init_backbone(rng, cfg: CNNConfig, dtype=onp.float32):
    """Random parameters of the stem and the stages. The whitening kernel starts at 0 (set it
    from data with `init_whitening`)."""
    (c, s, _), *rest = conv_shapes(cfg)
    if cfg.whiten:
        stem = {"fixed": onp.zeros((2, 2, c, s), dtype)}
    else:
        stem = init_conv(rng, c, s, cfg, dtype)
    convs = [init_conv(rng, cin, cout, cfg, dtype) for cin, cout, _ in rest]
    return {"stem": stem,
            "stages": [convs[i * cfg.depth:(i + 1) * cfg.depth] for i in range(len(cfg.widths))]}


def init_cnn(rng, cfg: CNNConfig, dtype=onp.float32):
    """Random parameters for `cfg`. `rng` is a numpy.random.Generator. The head starts at 0."""
    return {**init_backbone(rng, cfg, dtype),
            "head": layers.init_linear(rng, cfg.widths[-1], cfg.num_classes, dtype, zero=True)}


def conv_block(p, x, cfg: CNNConfig, pool=False, train=False, stats_out=None):
    """conv -> (2x2 max-pool) -> norm -> activation. (B, H, W, Cin) -> (B, H(/2), W(/2), Cout)."""
    x = conv(p, x, cfg.kernel)  # (B, H, W, Cout)
    if pool:
        x = max_pool(x)  # (B, H/2, W/2, Cout)
    if cfg.normalised:
        x = norm(p["norm"], x, cfg, train, stats_out)
    return act(x, cfg)


def feature_map(params, images, cfg: CNNConfig, train=False, stats_out=None):
    """Stem and stages: (B, H, W, C) -> (B, H / 2^stages, W / 2^stages, W_last).

    Uses params["stem"] and params["stages"] only (the hybrid's backbone is such a tree)."""
    check_images(images, cfg)
    if cfg.whiten:
        x = act(whiten(params["stem"], images, cfg), cfg)  # (B, H, W, 8C)
    else:
        x = conv_block(params["stem"], images, cfg, train=train, stats_out=stats_out)  # (B,H,W,S)
    for stage in params["stages"]:
        x = conv_block(stage[0], x, cfg, True, train, stats_out)  # (B, H/2, W/2, W_i)
        for p in stage[1:]:
            x = conv_block(p, x, cfg, False, train, stats_out)
    return x


def features(params, images, cfg: CNNConfig, train=False):
    """The feature map's global average. (B, H, W, C) -> (B, W_last)."""
    x = feature_map(params, images, cfg, train)
    b, h, w, c = x.shape
    return x.reshape(b, h * w, c).sum(1) * (1.0 / (h * w))  # (B, W_last)


def cnn(params, images, cfg: CNNConfig, train=False, rng=None):
    """Class logits. images (B, H, W, C) float -> (B, K). Training: dropout before the head, and
    BatchNorm with the batch's statistics."""
    f = layers.dropout(rng, features(params, images, cfg, train), cfg.dropout, train)  # (B, W_l)
    return layers.linear(params["head"], f)  # (B, K)


def batch_statistics(params, images, cfg: CNNConfig):
    """[(norm params, mean, var, count)] of every BatchNorm, in order, for one batch of images
    run as in training (each layer's input normalised with its own batch statistics)."""
    found = []
    feature_map(params, images, cfg, train=True, stats_out=found)
    return found


def population_stats(params, images, cfg: CNNConfig, batch_size=128, map_batches=map):
    """A copy of `params` whose BatchNorm "mean" and "var" are the statistics of each layer's
    input over `images` (normalised, e.g. 2000-10000 training images), run in batches of
    about the size one training thread normalises together (`batch_size`), as in training
    (`batch_statistics`), combined exactly, in the batches' order:
    mean = sum n_i m_i / n, var = sum n_i (v_i + m_i^2) / n - mean^2. Call it after training,
    before evaluating. Works on any tree holding "stem" and "stages" (the hybrid's backbone).

    `map_batches(f, batches)` runs f on every batch and yields the results in order; the
    batches are independent, so they may run side by side (training passes
    `tinyvit.fast.map_in_threads`: one batch per core), the same numbers up to the rounding of
    BLAS in another thread setting.
    """
    if cfg.norm != "batch":
        return params
    params = tree_map(lambda leaf: leaf, params)  # new dicts and lists, the same arrays
    batches = [images[s:s + batch_size] for s in range(0, len(images), batch_size)]
    totals = {}  # id(norm params) -> [p, sum n m, sum n (v + m^2), n]
    for found in map_batches(lambda x: batch_statistics(params, x, cfg), batches):
        for p, mean, var, n in found:
            t = totals.setdefault(id(p), [p, 0.0, 0.0, 0])
            t[1], t[2], t[3] = t[1] + n * mean, t[2] + n * (var + mean * mean), t[3] + n
    for p, s1, s2, n in totals.values():
        mean = s1 / n
        p["mean"] = mean.astype(p["mean"].dtype)
        p["var"] = (s2 / n - mean * mean).astype(p["var"].dtype)
    return params
