# %% [markdown]
# # Lesson 6 — The tiny CNN: convolution is "patchify with stride 1"
#
# The paper's central comparison is with convolutional networks (ResNets, BiT). A CNN has
# **inductive biases** that a ViT lacks (Sec. 3.1, "Inductive bias"):
#
# * **locality** — each output sees only a small neighbourhood (3×3 here);
# * **translation equivariance** — the same kernel is applied at every position;
# * **a 2D neighbourhood structure** at every layer.
#
# In ViT only the MLPs are local and translation-equivariant; self-attention is global, and
# the spatial relations between patches must be *learned* (only the patch cutting and the
# resolution change of fine-tuning inject 2D structure). With little data, the built-in
# assumptions win; with enough data, learning them wins. Lesson 7 measures that.

# %%
import numpy as np

import lesson
from tinyvit import cnn, configs
from tinyvit.figures import pictures
from tinyvit.vit import patchify

LESSON = "06_cnn"
rng = np.random.default_rng(0)
x_test, y_test = lesson.cifar10()["test"]
img = x_test[:2].astype(np.float32) / 255.0  # (2, 32, 32, 3)

# %% [markdown]
# ## ViT's patchify vs. a convolution's im2col
# ViT: cut the image into non-overlapping P×P patches, multiply every patch by one matrix.
# A 3×3 convolution: cut out the 3×3 neighbourhood of **every** pixel (overlapping patches,
# stride 1, zero padding at the border), multiply every patch by one matrix (the kernel).
# `cnn.im2col` builds those neighbourhoods from 9 shifted slices of the padded image.

# %%
vit_patches = patchify(img, 4)  # (2, 64, 48): 64 non-overlapping 4x4 patches
lesson.show_code(cnn.im2col)
lesson.show_twin("im2col")
cols = cnn.im2col(img, 3)  # (2*32*32, 27): a 3x3x3 patch around every pixel
print("ViT patches", vit_patches.shape, " conv patches", cols.shape)
w = rng.standard_normal((3, 3, 3, 8)).astype(np.float32)  # (k, k, Cin, Cout)
conv_out = cols.reshape(-1, 27) @ w.reshape(27, 8)  # one matmul = the convolution
# Same numbers as a convolution written with loops:
i, j, c = 5, 7, 2
padded = np.pad(img, ((0, 0), (1, 1), (1, 1), (0, 0)))
by_hand = (padded[0, i:i + 3, j:j + 3, :] * w[..., c]).sum()
print("im2col @ kernel == convolution:", np.isclose(conv_out.reshape(2, 32, 32, 8)[0, i, j, c], by_hand))

# %% [markdown]
# ## The network
# Stem convolution, three stages (convolution, 2×2 max-pool, GroupNorm, ReLU, then `depth - 1`
# more convolution–GroupNorm–ReLU at the same size; every preset has depth 2), global average
# pooling and a linear head. The presets span 75k to 474k parameters: lesson 7 pits
# `cnn-tiny` (75k) against `vit-cifar-nano` (142k), and the default `cnn-small` (298k) sits
# between `vit-cifar-nano` and `vit-cifar-tiny` (0.8M). Per parameter, a convolution does
# far more work than a ViT's dense layers: it is applied at every pixel (compare the
# multiply-adds below with `vit-cifar-nano`'s 10.9M).

# %%
for name in configs.CNN_PRESETS:
    cfg = configs.get_cnn_config(name)
    print(f"{name:10s} {cnn.param_count(cfg):9,d} parameters  "
          f"{cnn.flops_per_image(cfg) / 1e6:6.1f} M multiply-adds per image")
cfg = configs.get_cnn_config("cnn-small")
params = cnn.init_cnn(rng, cfg)
print("logits", cnn.cnn(params, img, cfg).shape)

# %% [markdown]
# ## What the first layer sees
# Feature maps of four stem channels for one image, all on one colour scale (random weights:
# even untrained, a 3×3 convolution responds to *local* structure — edges, colour changes).
# The frame along the border is the zero padding: there the 3×3 window reaches outside the
# image and sees zeros, i.e. black, so every border pixel looks like an edge against a black
# frame. A ViT's patchify needs no padding (the patches tile the image exactly).

# %%
stem = np.asarray(cnn.conv(params["stem"], img[:1]))  # (1, 32, 32, S)
lim = float(np.abs(stem[0, :, :, :4]).max())  # one symmetric scale for the four maps
maps = [np.asarray(pictures.heatmap(stem[0, :, :, c], size=128, colormap="coolwarm",
                                    vmin=-lim, vmax=lim)) for c in range(4)]
tiles = [pictures.upscale((img[0] * 255).round().astype(np.uint8), 4)] + maps
lesson.show(pictures.labelled_grid(
    tiles, 5, col_labels=["input image"] + [f"channel {c + 1}" for c in range(4)],
    title=f"Stem convolution (3x3, random weights, zero padding) of a test image "
          f"({lesson.data_name()})",
    colorbar=(round(-lim, 2), round(lim, 2), "coolwarm", "conv output")),
    "stem_feature_maps", LESSON)

# %% [markdown]
# ## The hybrid model (Sec. 3.1)
# The paper's third family puts the two together: "as an alternative to raw image patches,
# the input sequence can be formed from feature maps of a CNN". The patch embedding $E$ is
# applied to patches of a ResNet's feature map — in the special case of 1×1 patches, each
# feature-map position is one token — and the rest is the ViT unchanged. Fig. 5: hybrids
# beat ViT at small compute budgets, and the gap vanishes for larger models. In this
# package's terms: `cnn`'s stages give a (B, h, w, C) map, `patchify` with P = 1 makes it
# (B, h·w, C), and Eq. 1 goes on from there. (tinyvit does not build the hybrid as a model
# yet, and refuses the official "R50+ViT" checkpoints with a message.) Its input sequence,
# from this lesson's CNN and lesson 2's pieces — the stem and the first two stages of
# `cnn-tiny` turn a 32×32 image into an 8×8 map of 32 channels:

# %%
from tinyvit import layers  # noqa: E402
from tinyvit.vit import patchify as cut  # noqa: E402

tiny = configs.get_cnn_config("cnn-tiny")
p_tiny = cnn.init_cnn(rng, tiny)
fmap = cnn.conv_block(p_tiny["stem"], img, tiny)  # (2, 32, 32, 16)
for stage in p_tiny["stages"][:2]:
    fmap = cnn.conv_block(stage[0], fmap, tiny, pool=True)  # /2 per stage
    for p_conv in stage[1:]:
        fmap = cnn.conv_block(p_conv, fmap, tiny)
seq = cut(fmap, 1)  # (2, 64, 32): 1x1 "patches" of the feature map, one token per position
E_h = layers.init_linear(rng, seq.shape[-1], 64)  # the patch embedding E: (32, D = 64)
z0 = layers.linear(E_h, seq)  # (2, 64, 64): Eq. 1 from here on (class token, E_pos, encoder)
print(f"feature map {fmap.shape} -> sequence {seq.shape} -> tokens {z0.shape}: 64 tokens, "
      f"like vit-cifar-nano's 4x4 patches, but each already sees a 24x24-pixel neighbourhood "
      f"(its receptive field)")
