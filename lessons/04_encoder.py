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

# Eq. 2 and Eq. 3 written out with the layers they use, checked against layers.block:
z_prime = layers.attention(blk["attn"], layers.layer_norm(blk["ln1"], z), 4) + z  # Eq. 2
z_out = layers.mlp(blk["mlp"], layers.layer_norm(blk["ln2"], z_prime)) + z_prime  # Eq. 3
print("Eq. 2-3 by hand == layers.block:", np.allclose(z_out, layers.block(blk, z, heads=4)))

cfg = get_config("vit-cifar-tiny")
params = init_vit(rng, cfg)
logits = vit(params, rng.standard_normal((3, 32, 32, 3)).astype(np.float32), cfg)
print(f"{cfg.name}: logits {logits.shape}; all zero at init (the head starts at zero):",
      np.allclose(logits, 0))

# %% [markdown]
# ## The paper's models (Table 1: ViT-B/L/H; ViT-Ti and ViT-S come from DeiT)
# Parameter counts at 224 px with a 1000-class head, and the forward compute per image in
# both units in use: **GMACs** (10^9 multiply-adds, what most model tables list as
# "GFLOPs": 17.6 for ViT-B/16) and **GFLOPs** (10^9 floating-point operations, 1
# multiply-add = 2 FLOPs). Matrix products only. Table 1 gives one rounded count per model
# whatever the patch size (86M, 307M, 632M); ours are exact for patch 16: B/16 and L/16 equal
# the published /16 checkpoints (timm's `vit_base_patch16_224`: 86,567,656;
# `vit_large_patch16_224`: 304,326,632). ViT-H was released only with 14-pixel patches, so H/16
# has no checkpoint to compare with.

# %%
print(f"{'model':10s} {'layers':>6s} {'D':>5s} {'MLP':>5s} {'heads':>5s} {'params':>13s} "
      f"{'GMACs':>7s} {'GFLOPs':>7s}")
for size in PAPER_MODELS:
    cfg = get_config(f"vit-{size}16")
    macs = flops_per_image(cfg) / 1e9  # multiply-adds per image (the function's unit)
    print(f"{'ViT-' + size.capitalize() + '/16':10s} {cfg.depth:6d} {cfg.width:5d} "
          f"{cfg.mlp_dim:5d} {cfg.heads:5d} {param_count(cfg):13,d} {macs:7.1f} {2 * macs:7.1f}")

# %% [markdown]
# ## Knob: patch size vs tokens vs cost
#
# Halve the patch size and the image has 4× the tokens. The dense layers (qkv, output,
# MLP) cost $\propto N$, attention's $q k^\top$ and $A v$ cost $\propto N^2$. The parameter
# count barely moves: only $E$ (the patch length $P^2 C$) and $E_{pos}$ (one row per token)
# depend on $P$. Below: `vit-cifar-nano` at 32 px with patches of 2 to 16 pixels —
# counted, and timed for one training step of 32 images.

# %%
lesson.knob("vit-cifar-nano uses 4x4 patches. With 2x2 patches, how many times the tokens, "
            "the compute, the parameters? With 8x8?")
import time  # noqa: E402

from autograd import grad  # noqa: E402

from tinyvit import fast  # noqa: E402
from tinyvit.vit import loss_fn  # noqa: E402

B = 4 if lesson.smoke() else 32  # images per timed step
x32 = rng.standard_normal((B, 32, 32, 3)).astype(np.float32)  # (B, 32, 32, 3)
y32 = rng.integers(0, 10, B)
print(f"{'patch':>5s} {'tokens':>6s} {'params':>8s} {'MMACs/img':>10s} {'attention share':>16s} "
      f"{f'ms/step ({B} img)':>17s}")
for P in (2, 4, 8, 16):
    c = get_config("vit-cifar-nano", patch_size=P)
    t, d = c.num_tokens, c.width
    attn = c.depth * 2 * t * t * d / flops_per_image(c)  # share of the N^2 products
    p_c = init_vit(rng, c)
    with fast.twins():
        times = []
        for _ in range(3):  # the fastest of 3: the least disturbed by other processes
            t0 = time.perf_counter()
            grad(loss_fn)(p_c, x32, y32, c)  # forward + backward
            times.append(time.perf_counter() - t0)
        ms = min(times) * 1e3
    print(f"{P:5d} {t:6d} {param_count(c):8,d} {flops_per_image(c) / 1e6:10.1f} "
          f"{attn:16.0%} {ms:17.0f}")

# %% [markdown]
# Smaller patches buy resolution with compute: 2×2 patches give 257 tokens and about 6× the
# multiply-adds of 4×4 — not 4×, because half of them are now attention's $N^2$ products —
# and the measured step is slower still (the $B \times H \times N \times N$ attention
# arrays are memory traffic, not only arithmetic). 16×16 patches leave 5 tokens: almost
# nothing for attention to relate, and more parameters (a longer $E$). The paper's "/16" and
# "/32" models make the same trade at 224 px (196 vs 49 tokens). Is the cheaper 8×8 model much
# worse? A minute each:

# %%
from tinyvit.run.models import build  # noqa: E402

knob_ds = lesson.knob_data()
lesson.compare({f"patch {P}x{P} ({get_config('vit-cifar-nano', patch_size=P).num_tokens} "
                f"tokens)": (m := build("vit-cifar-nano", patch_size=P),
                             m.init(np.random.default_rng(0))) for P in (4, 8)},
               knob_ds, "Patch size", LESSON, "knob_patch_size")

# %% [markdown]
# Measured (2026-12-01, one core): 33.8% for 4×4 patches in 76 s, 31.4% for 8×8 in 16 s —
# two points for five times the time. With more time per run the finer grid's advantage
# grows (more tokens, more detail per image); at equal *compute*, coarse patches are the
# better buy on a short budget, which is the trade-off the paper's Fig. 5 plots.

# %% [markdown]
# ## Knob: the class token or global average pooling? (Appendix D.3)
#
# Eq. 4 classifies from the class token's output. The alternative, as in ResNets, is the mean
# of all patch outputs ("GAP", `pool="gap"`: no class token). Appendix D.3 (Fig. 9): both work
# equally well — but only with a learning rate suited to each; with the class token's learning
# rate GAP did worse. Same recipe for both here:

# %%
lesson.knob("Class token or average pooling: which one learns faster on 5,000 images?")
lesson.compare({f"pool = {pool}": (m := build("vit-cifar-nano", pool=pool),
                                   m.init(np.random.default_rng(0))) for pool in ("cls", "gap")},
               knob_ds, "Class token vs global average pooling", LESSON, "knob_cls_vs_gap")

# %% [markdown]
# Measured (2026-12-01): class token 33.8%, GAP 31.1% after 5 epochs on 5,000 images, with
# the class token's learning rate (1e-3) for both. Appendix D.3 saw the same thing — GAP
# behind with the class token's learning rate, equal with its own — so before concluding
# "the class token is better", try GAP with another `lr=` (`lesson.compare(..., lr=3e-4)`).
