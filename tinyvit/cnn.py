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

Fast paths, each written twice like `tinyvit.ops` (plain formula + primitive with a hand VJP,
tested equal): `im2col` (autograd's VJP of slicing is `np.add.at`), `max_pool` (autograd's
VJP of `max` divides by an int64 tie count and runs in float64), `group_norm` (a few passes
over the activations in its VJP instead of autograd's dozen). A cnn-tiny training step (batch
128, 2 threads, `python benchmarks/levers.py`, 2026-11-24) took 227 ms with all three, 1197 ms
with the plain im2col, 382 ms with the plain max-pool, 305 ms with the plain GroupNorm and
2891 ms with all plain ones.

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
from dataclasses import dataclass

import numpy as onp

import autograd.numpy as np
from autograd.extend import defvjp, defvjp_argnums, primitive

from . import layers
from .tree import count_params  # noqa: F401  (re-exported: tinyvit.cnn.count_params)

# ---------------------------------------------------------------------------------------------
# Configuration
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CNNConfig:
    """Hyper-parameters of the CNN.

    stem S: channels of the first convolution (full resolution). widths: output channels of
    each stage; every stage halves H and W, so image_size must be divisible by 2^len(widths).
    depth: convolutions per stage. groups G: GroupNorm groups (must divide S and every width),
    0 for no normalisation. dropout: rate before the head (training only).
    """

    name: str = "cnn-small"
    image_size: int = 32
    channels: int = 3
    stem: int = 32
    widths: tuple = (32, 64, 128)
    depth: int = 2
    groups: int = 8
    kernel: int = 3
    num_classes: int = 10
    dropout: float = 0.0
    norm_eps: float = 1e-5

    def __post_init__(self):
        object.__setattr__(self, "widths", tuple(self.widths))  # a list from JSON is fine
        for field in ("image_size", "channels", "stem", "depth", "kernel", "num_classes"):
            v = getattr(self, field)
            if not isinstance(v, int) or v < 1:
                raise ValueError(f"CNNConfig.{field}: expected a positive int, found {v!r}")
        if not self.widths or not all(isinstance(w, int) and w > 0 for w in self.widths):
            raise ValueError(f"CNNConfig.widths: expected positive ints, found {self.widths!r}")
        if self.kernel % 2 == 0:
            raise ValueError(f"CNNConfig.kernel: expected an odd size, found {self.kernel}")
        if not isinstance(self.groups, int) or self.groups < 0:
            raise ValueError(f"CNNConfig.groups: expected an int >= 0, found {self.groups!r}")
        if self.groups and any(c % self.groups for c in (self.stem,) + self.widths):
            raise ValueError(f"CNNConfig.groups: expected a divisor of stem {self.stem} and "
                             f"widths {self.widths}, found {self.groups}")
        if self.image_size % self.reduction:
            raise ValueError(f"image size {self.image_size} must be divisible by "
                             f"{self.reduction} (2^{len(self.widths)} stages of 2x2 pooling), "
                             f"found remainder {self.image_size % self.reduction}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout: expected a rate in [0, 1), found {self.dropout}")

    @property
    def reduction(self):
        """How much the stages shrink each side: 2^(number of stages)."""
        return 2 ** len(self.widths)


# Presets for 32 x 32 images, 10 classes. Parameters / forward multiply-adds per image:
CNN_PRESETS = {
    "cnn-tiny": dict(stem=16, widths=(16, 32, 64), depth=2, groups=4),  # 75k, 6.9M
    "cnn-small": dict(stem=32, widths=(32, 64, 128), depth=2, groups=8),  # 298k, 26.8M
    "cnn-base": dict(stem=32, widths=(48, 96, 144), depth=2, groups=8),  # 474k, 47.2M
}
DEFAULT_CNN = "cnn-small"


def get_cnn_config(name=DEFAULT_CNN, num_classes=None, image_size=None, **overrides):
    """The CNN preset called `name`, with optional classes / image size / field overrides."""
    key = name.lower()
    if key not in CNN_PRESETS:
        raise ValueError(f"unknown CNN {name!r}; expected one of: {', '.join(CNN_PRESETS)}")
    base = dict(CNN_PRESETS[key])
    if num_classes is not None:
        base["num_classes"] = num_classes
    if image_size is not None:
        base["image_size"] = image_size
    base.update(overrides)
    return CNNConfig(name=key, **base)


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
# im2col: every pixel's k x k neighbourhood as one row ("patchify" with stride 1, overlapping)
# ---------------------------------------------------------------------------------------------


def _pad(x, r):
    """Zero-pad H and W by r on each side. (B, H, W, C) -> (B, H+2r, W+2r, C)."""
    return np.pad(x, ((0, 0), (r, r), (r, r), (0, 0)), "constant")  # autograd's VJP needs the mode


def im2col_plain(x, k=3):
    """The k*k shifted windows of the zero-padded input, side by side; autograd differentiates it.

    x (B, H, W, C) -> (B*H*W, k*k*C): row (b, h, w) holds the pixels (h+i-r, w+j-r), i, j < k,
    r = k // 2, in (i, j, channel) order. Each shifted slice is one column block.
    """
    b, h, w, c = x.shape
    xp = _pad(x, k // 2)  # (B, H+2r, W+2r, C)
    shifted = [xp[:, i:i + h, j:j + w, :] for i in range(k) for j in range(k)]  # k*k (B,H,W,C)
    return np.stack(shifted, axis=3).reshape(b * h * w, k * k * c)  # (B*H*W, k*k*C)


@primitive
def im2col(x, k=3):
    """`im2col_plain` as a primitive: the same slices copied into one buffer, col2im VJP."""
    b, h, w, c = x.shape
    xp = _pad(x, k // 2)  # (B, H+2r, W+2r, C)
    cols = np.empty_like(x, shape=(b, h, w, k, k, c))  # (B, H, W, k, k, C)
    for i in range(k):
        for j in range(k):
            cols[:, :, :, i, j, :] = xp[:, i:i + h, j:j + w, :]
    return cols.reshape(b * h * w, k * k * c)  # (B*H*W, k*k*C)


_CHUNK = 8  # images per col2im pass: a chunk's padded buffer stays in the CPU cache


def _im2col_vjp(ans, x, k=3):
    """col2im: add each shifted window's gradient back where it was read from, then crop.

    Done for a few images at a time, and each window's gradient is first copied to a
    contiguous buffer: NumPy adds contiguous rows faster than rows strided by k*k*C, and the
    small padded buffer stays in cache across the k*k additions (measured: about 2x faster
    than one pass over the whole batch for a 128 x 32 x 32 x 32 input).
    """
    b, h, w, c = x.shape
    r = k // 2

    def vjp(g):  # g (B*H*W, k*k*C)
        g = g.reshape(b, h, w, k, k, c)  # (B, H, W, k, k, C)
        dxp = np.zeros_like(x, shape=(b, h + 2 * r, w + 2 * r, c))  # (B, H+2r, W+2r, C)
        buf = np.empty_like(x, shape=(min(b, _CHUNK), h, w, c))  # (chunk, H, W, C)
        for s in range(0, b, _CHUNK):
            d, gs = dxp[s:s + _CHUNK], g[s:s + _CHUNK]  # views of one chunk of images
            t = buf[:len(d)]
            for i in range(k):
                for j in range(k):
                    t[...] = gs[:, :, :, i, j, :]  # contiguous copy of one window's gradient
                    d[:, i:i + h, j:j + w, :] += t  # in place: raw arrays here
        return dxp[:, r:r + h, r:r + w, :].copy()  # (B, H, W, C) contiguous crop

    return vjp


defvjp(im2col, _im2col_vjp)


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
# 2 x 2 max pooling (stride 2)
# ---------------------------------------------------------------------------------------------


def max_pool_plain(x):
    """Max over each 2x2 block by a reshape; autograd's VJP splits ties evenly (in float64).

    (B, H, W, C) -> (B, H/2, W/2, C).
    """
    b, h, w, c = x.shape
    return x.reshape(b, h // 2, 2, w // 2, 2, c).max(axis=(2, 4))  # (B, H/2, W/2, C)


_CORNERS = ((0, 0), (0, 1), (1, 0), (1, 1))  # the order in which ties are broken


@primitive
def max_pool(x):
    """2x2 max pooling; the VJP sends each gradient to one maximum. (B,H,W,C) -> (B,H/2,W/2,C)."""
    b, h, w, c = x.shape
    x6 = x.reshape(b, h // 2, 2, w // 2, 2, c)  # (B, H/2, 2, W/2, 2, C)
    top = np.maximum(x6[:, :, 0, :, 0], x6[:, :, 0, :, 1])  # (B, H/2, W/2, C)
    bottom = np.maximum(x6[:, :, 1, :, 0], x6[:, :, 1, :, 1])  # (B, H/2, W/2, C)
    return np.maximum(top, bottom)  # (B, H/2, W/2, C)


def _max_pool_vjp(ans, x):
    """dx = g at the first corner (row-major) that holds the block's max, 0 elsewhere."""
    b, h, w, c = x.shape

    def vjp(g):  # g (B, H/2, W/2, C)
        x6 = x.reshape(b, h // 2, 2, w // 2, 2, c)  # (B, H/2, 2, W/2, 2, C)
        dx = np.empty_like(x6)
        free = np.ones_like(ans, dtype=bool)  # (B, H/2, W/2, C): no maximum routed yet
        for i, j in _CORNERS:
            hit = (x6[:, :, i, :, j] == ans) & free
            dx[:, :, i, :, j] = g * hit  # bool * float32 stays float32
            free &= ~hit
        return dx.reshape(b, h, w, c)  # (B, H, W, C)

    return vjp


defvjp(max_pool, _max_pool_vjp)

# ---------------------------------------------------------------------------------------------
# GroupNorm: y = (x - mean) / sqrt(var + eps) * g + b, statistics per sample and group of
# C/G channels, over (H, W, channels of the group).
# ---------------------------------------------------------------------------------------------


def group_norm_plain(x, g, b, groups, eps=1e-5):
    """GroupNorm as autograd sees it. x (B, H, W, C), g and b (C,) -> (B, H, W, C)."""
    bs, h, w, c = x.shape
    inv_n = 1.0 / (h * w * (c // groups))  # a Python float keeps float32 float32
    xg = x.reshape(bs, h * w, groups, c // groups)  # (B, H*W, G, C/G)
    mean = xg.sum(axis=(1, 3), keepdims=True) * inv_n  # (B, 1, G, 1)
    xc = xg - mean
    var = (xc * xc).sum(axis=(1, 3), keepdims=True) * inv_n  # (B, 1, G, 1)
    x_hat = (xc / np.sqrt(var + eps)).reshape(bs, h, w, c)  # (B, H, W, C)
    return x_hat * g + b


def _pixel_sums(x):
    """Raw-array helper: per-sample per-channel sums over pixels, (B, P, C) -> (B, C).

    Written as a product with a vector of ones: NumPy's `x.sum(1)` over the middle axis of a
    narrow array runs about 7x slower (measured: 0.70 vs 0.10 ms for 128 x 256 x 32 float32).
    """
    return np.ones_like(x, shape=(x.shape[1],)) @ x  # (B, C)


def _group_mean(s, groups, inv_n):
    """Per-channel sums (B, C) -> the mean of each channel's group, repeated per channel (B, 1, C).

    Statistics per channel, not per group (B, 1, G, 1), keep every elementwise pass over the
    activations on (B, P, C) arrays, whose inner loops are C long instead of C/G (2x faster).
    """
    bs, c = s.shape
    m = s.reshape(bs, groups, c // groups).sum(2, keepdims=True) * inv_n  # (B, G, 1)
    return np.broadcast_to(m, (bs, groups, c // groups)).reshape(bs, 1, c)  # (B, 1, C)


def _group_normalise(x, groups, eps):
    """Raw-array helper: x_hat (B, H*W, C), a new array, and 1/std per channel (B, 1, C)."""
    bs, h, w, c = x.shape
    inv_n = 1.0 / (h * w * (c // groups))
    xr = x.reshape(bs, h * w, c)  # (B, H*W, C)
    xc = xr - _group_mean(_pixel_sums(xr), groups, inv_n)  # (B, H*W, C) centred
    var = _group_mean(_pixel_sums(xc * xc), groups, inv_n)  # (B, 1, C)
    rstd = 1.0 / np.sqrt(var + eps)
    xc *= rstd  # in place: a fresh raw array
    return xc, rstd


@primitive
def group_norm(x, g, b, groups, eps=1e-5):
    """GroupNorm with a hand VJP. x (B, H, W, C), g and b (C,) -> (B, H, W, C)."""
    y, _ = _group_normalise(x, groups, eps)  # (B, H*W, C)
    y *= g  # in place: one new array in all
    y += b
    return y.reshape(x.shape)  # (B, H, W, C)


def _group_norm_vjp(argnums, ans, args, kwargs):
    x, g, b, groups = args[:4]
    eps = args[4] if len(args) > 4 else kwargs.get("eps", 1e-5)
    bs, h, w, c = x.shape
    inv_n = 1.0 / (h * w * (c // groups))

    def vjp(dy):  # dy (B, H, W, C)
        x_hat, rstd = _group_normalise(x, groups, eps)  # recomputed, not kept alive
        dy = dy.reshape(bs, h * w, c)  # (B, H*W, C)
        s_dy = _pixel_sums(dy)  # (B, C) per-channel sums
        s_dyx = _pixel_sums(dy * x_hat)  # (B, C)
        out = []
        for i in argnums:
            if i == 0:  # dx = rstd (dxh - mean(dxh) - x_hat mean(dxh x_hat)), dxh = dy g
                m1 = _group_mean(s_dy * g, groups, inv_n)  # (B, 1, C)
                m2 = _group_mean(s_dyx * g, groups, inv_n)  # (B, 1, C)
                dx = dy * g  # (B, H*W, C)
                dx -= m1
                x_hat *= m2  # in place: x_hat is not needed after this
                dx -= x_hat
                dx *= rstd
                out.append(dx.reshape(bs, h, w, c))  # (B, H, W, C)
            elif i == 1:
                out.append(s_dyx.sum(0))  # (C,)
            elif i == 2:
                out.append(s_dy.sum(0))  # (C,)
            else:
                raise ValueError("group_norm: groups and eps are not differentiable")
        return tuple(out)

    return vjp


defvjp_argnums(group_norm, _group_norm_vjp)

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


def check_images(images, cfg: CNNConfig):
    """One-line ValueError unless images are (B, image_size, image_size, channels)."""
    shape = getattr(images, "shape", None)
    want = (cfg.image_size, cfg.image_size, cfg.channels)
    if shape is None or len(shape) != 4 or tuple(shape[1:]) != want:
        raise ValueError(f"{cfg.name}: expected images of shape (B, {want[0]}, {want[1]}, "
                         f"{want[2]}) (NHWC), found {tuple(shape) if shape else type(images)}")


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
