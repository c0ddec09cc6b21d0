# %% [markdown]
# # Lesson 4 — The encoder block and the whole ViT
#
# The Transformer encoder alternates multi-head self-attention and an MLP, each preceded by
# LayerNorm (LN) and wrapped in a residual connection (Sec. 3.1):
#
# $$z'_\ell = \mathrm{MSA}(\mathrm{LN}(z_{\ell-1})) + z_{\ell-1} \quad\text{(Eq. 2)}$$
# $$z_\ell = \mathrm{MLP}(\mathrm{LN}(z'_\ell)) + z'_\ell \quad\text{(Eq. 3)}$$
# $$y = \mathrm{LN}(z_L^0) \quad\text{(Eq. 4)}$$
#
# The MLP has two layers with a GELU non-linearity.

# %%
import numpy as np

import lesson
from tinyvit import get_config, init_vit, layers, ops
from tinyvit.figures import charts
from tinyvit.configs import PAPER_MODELS
from tinyvit.vit import flops_per_image, param_count, vit

LESSON = "04_encoder"
rng = np.random.default_rng(0)

# %% [markdown]
# ## LayerNorm
# $\mathrm{LN}(x) = \frac{x - \mu}{\sqrt{\sigma^2 + \epsilon}}\, g + b$ over the D features of each
# token separately (not over the batch, unlike BatchNorm).

# %%
lesson.show_code(ops.layer_norm)
lesson.show_twin("layer_norm")

x = rng.standard_normal((2, 3, 8)) * 5 + 3  # (B, N, D)
y = layers.layer_norm(layers.init_layer_norm(8, np.float64), x)
print("per-token mean ~0:", np.allclose(y.mean(-1), 0), " std ~1:", np.allclose(y.std(-1), 1, atol=1e-4))

# %% [markdown]
# ## GELU
# $\mathrm{GELU}(x) = x\,\Phi(x) \approx \tfrac12 x\,(1 + \tanh[\sqrt{2/\pi}(x + 0.044715x^3)])$,
# the tanh form used by the official JAX code. A smooth ReLU that lets small negatives through.

# %%
lesson.show_code(ops.gelu)
lesson.show_twin("gelu")

xs = np.linspace(-4, 4, 81)
chart = charts.line_chart({"GELU": (xs, ops.gelu(xs), None), "ReLU": (xs, np.maximum(xs, 0), None)},
                          xlabel="x", ylabel="f(x)", title="GELU vs ReLU", error_bars=False)
lesson.show(chart, "gelu", LESSON)

# %% [markdown]
# ## One block, then the whole model
# `layers.block` is Eq. 2 and Eq. 3, line for line. `vit.vit` embeds (Eq. 1), runs L blocks,
# applies the final LN and the head on the class token (Eq. 4).

# %%
lesson.show_code(layers.block)

blk = layers.init_block(rng, 16, 32, np.float64)
z = rng.standard_normal((2, 5, 16))  # (B, N, D)
print("block keeps the shape:", layers.block(blk, z, heads=4).shape)

cfg = get_config("vit-cifar-tiny")
params = init_vit(rng, cfg)
logits = vit(params, rng.standard_normal((3, 32, 32, 3)).astype(np.float32), cfg)
print(f"{cfg.name}: logits {logits.shape}; all zero at init (the head starts at zero):",
      np.allclose(logits, 0))

# %% [markdown]
# ## The paper's models (Table 1: ViT-B/L/H; ViT-Ti and ViT-S come from DeiT)
# Parameter counts at 224 px with a 1000-class head, and forward GFLOPs per image (1
# multiply-add = 2 FLOPs). Table 1 gives one rounded count per model whatever the patch size
# (86M, 307M, 632M); ours are exact for patch 16: B/16 and L/16 equal the published /16
# checkpoints (timm's `vit_base_patch16_224`: 86,567,656; `vit_large_patch16_224`: 304,326,632).
# ViT-H was released only with 14-pixel patches, so H/16 has no checkpoint to compare with.

# %%
print(f"{'model':10s} {'layers':>6s} {'D':>5s} {'MLP':>5s} {'heads':>5s} {'params':>13s} {'GFLOPs':>7s}")
for size in PAPER_MODELS:
    cfg = get_config(f"vit-{size}16")
    print(f"{'ViT-' + size.capitalize() + '/16':10s} {cfg.depth:6d} {cfg.width:5d} {cfg.mlp_dim:5d} {cfg.heads:5d} "
          f"{param_count(cfg):13,d} {2 * flops_per_image(cfg) / 1e9:7.1f}")
