# %% [markdown]
# # Lesson 8 — What does a ViT learn? (Sec. 4.5, Fig. 6, Fig. 7)
#
# Section 4.5 of the paper opens a trained ViT and finds CNN-like structure that nobody built
# in: position embeddings that encode 2D distance, embedding filters that look like basis
# functions, heads that attend locally in low layers — next to heads that look at the whole
# image from the first layer on — and class-token attention that falls on the object (Fig. 6).
# We compute each figure for our own trained model, with the functions of
# `tinyvit/figures/analysis.py`.
#
# **The model:** `lesson.trained_vit` uses your checkpoint if there is one (`$TINYVIT_CKPT`,
# `runs/vit-cifar-nano/last.npz` from `python -m tinyvit train` run in the repository, or
# lesson 5's `lessons/output/05_training/run/last.npz`); otherwise the `vit-cifar-nano`
# shipped with tinyvit (`tinyvit/pretrained/`: the default 18-epoch run, 67.8% on CIFAR-10).
# The numbers quoted in this lesson come from that 18-epoch model (docs/RESULTS.md, "Results").
#
# **Any ViT.** The analyses take every ViT the library builds, and say so where one changes
# meaning: a class token or none (global average pooling, or the sequence pooling of Hassani
# et al. 2021), learned or fixed sin-cos positions, shifted patch tokens and locality
# self-attention (Lee et al. 2021; `vit-cifar-sl` has all of these). Smoke mode trains
# `$TINYVIT_SMOKE_VIT` (default `vit-cifar-nano`) for 3 steps instead.
#
# **Expectations:** the paper's models are ViT-L/H pre-trained on ImageNet-21k or JFT-300M at
# 224 px. Ours has ~0.1–1M parameters, was trained for minutes to an hour on 50k images of 32×32 pixels,
# and sees a grid of only 8×8 patches. Expect the same effects, but weaker and noisier.

# %%
import numpy as np
from PIL import ImageDraw

import lesson
from tinyvit.data import normalize
from tinyvit.figures import analysis, charts, pictures
from tinyvit.vit import init_vit

LESSON = "08_what_vit_learns"
SMOKE = lesson.smoke()
model, params, meta = lesson.trained_vit(LESSON)
cfg = model.cfg
mean, std = np.float32(meta["mean"]), np.float32(meta["std"])
ds = lesson.cifar10()
x_test, y_test = ds["test"]
classes = meta["classes"]
first = 1 if cfg.pool == "cls" else 0  # index of the first patch token
READ = analysis.READOUT[cfg.pool]  # what the head reads: the class token, GAP or SeqPool
print(f"{cfg.name}: {cfg.depth} layers x {cfg.heads} heads, D = {cfg.width}, "
      f"{cfg.grid}x{cfg.grid} patches of {cfg.patch_size} px; the head reads the {READ}; "
      f"positions {'fixed sin-cos' if cfg.pos == 'sincos' else 'learned'}"
      + ("; shifted patch tokens" if cfg.spt else "")
      + ("; locality self-attention" if cfg.lsa else ""))

# %% [markdown]
# ## Attention maps, head by head
#
# `analysis.maps_and_readout` runs the model once and returns the logits and, for every layer
# $\ell$, the weights $A^{\ell,h} = \mathrm{softmax}(q k^\top / \sqrt{D_h})$ of every head
# that the model really used: L arrays of shape `(B, H, T, T)`; row $i$ says where token $i$
# reads from. (With locality self-attention they are LSA's: $\mathrm{softmax}(\tau_h\,
# M(q k^\top))$ with a learned temperature $\tau_h$ and the diagonal masked, so a token never
# attends to itself.)
#
# Which row matters depends on what the head reads. Its input is a weighted mean of the final
# tokens, $y = \sum_t w_t z_L^t$: with a **class token** $w$ is one-hot on token 0 (Eq. 4);
# with global average pooling (GAP) $w_t = 1/T$; with **sequence pooling** $w =
# \mathrm{softmax}(z_L g)$, learned and different for every image (`analysis.pool_weights`).
# So "where the classified representation reads from" is $w^\top A$: the class token's row,
# the mean row, or the rows weighted by the pooling. Below: $w^\top A$ for each head of the
# **last** layer, laid over six test images (bright = much attention). Images are fed exactly
# as in training: normalised with the checkpoint's mean and std (`tinyvit.data.normalize`).

# %%
pick = np.array([np.flatnonzero(y_test == c)[0] for c in range(6)])  # one image per class
images = x_test[pick]  # (6, 32, 32, 3) uint8
logits, maps, w = analysis.maps_and_readout(params, normalize(images, mean, std), cfg)
# logits (6, K); maps: L x (6, H, T, T); w (6, T) the readout weights
for i, (t, p) in enumerate(zip(y_test[pick], logits.argmax(1))):
    print(f"image {i}: {classes[t]:<10s} predicted {classes[p]}")


def readout_row(a):
    """w^T A: where the tokens the head reads attend, over the patches. a (B, T, T) -> (B, g, g)."""
    return analysis.rollout_to_image(a, cfg, w)


S = 4  # display scale: 32 px -> 128 px
heats = np.stack([readout_row(maps[-1][:, h]) for h in range(cfg.heads)], 1)  # (6, H, g, g)
top = float(heats.max())  # one absolute scale, 0 .. the largest weight, for every tile
tiles = []
for i, img in enumerate(images):
    tiles.append(pictures.upscale(img, S))  # (128, 128, 3) the image itself first
    for h in range(cfg.heads):
        tiles.append(pictures.overlay(img, heats[i, h], alpha=0.6, scale=S, vmin=0, vmax=top))
lesson.show(pictures.labelled_grid(
    tiles, cfg.heads + 1, col_labels=["image"] + [f"head {h + 1}" for h in range(cfg.heads)],
    row_labels=[f"{classes[t]}: " + ("predicted right" if p == t else f"predicted {classes[p]}")
                for t, p in zip(y_test[pick], logits.argmax(1))],
    title=f"Layer {cfg.depth} (last): attention of the {READ} to each patch, {cfg.name} "
          f"({lesson.data_name()})" + ("\n(locality self-attention: a token's weight on "
                                       "itself is 0)" if cfg.lsa else ""),
    colorbar=(0, round(top, 3), "inferno", "attention weight")),
    "cls_attention_last_layer", LESSON)

# %% [markdown]
# With **sequence pooling** the readout weights are themselves a map: how much each final
# token counts in $y$. Since the tokens have mixed through every layer, a high weight says the
# token at that place is useful to the head, not that the object's pixels are there.

# %%
if cfg.pool == "seq":
    wmap = w[:, first:].reshape(-1, cfg.grid, cfg.grid)  # (6, g, g) SeqPool's weights
    top = float(wmap.max())
    tiles = []
    for img, hm in zip(images, wmap):
        tiles += [pictures.upscale(img, S),
                  pictures.overlay(img, hm, alpha=0.6, scale=S, vmin=0, vmax=top)]
    print(f"SeqPool weights: {wmap.min():.4f} to {top:.4f} (uniform: {1 / cfg.num_tokens:.4f})")
    lesson.show(pictures.labelled_grid(
        tiles, 6, col_labels=["image", "SeqPool weight"] * 3,
        row_labels=[", ".join(classes[c] for c in y_test[pick][r:r + 3]) for r in (0, 3)],
        title=f"Sequence pooling: the weight softmax(z_L g) of each final token in the "
              f"head's input, {cfg.name} ({lesson.data_name()})",
        colorbar=(0, round(top, 4), "inferno", "pooling weight")), "seq_pool_weights", LESSON)
else:
    print(f"pool = {cfg.pool!r}: the readout weights are fixed ({READ}), no map to show")

# %% [markdown]
# ### Local and global heads
#
# The same for one **patch** token instead of the tokens the head reads: where does the patch near the
# centre (white square) read from, in every layer (rows) and head (columns)? Some heads in the
# first layers look only at the neighbourhood — what a convolution does by construction —
# while others already spread over the whole image. (With locality self-attention the white
# square itself is always dark: the diagonal is masked.)

# %%
q_row = q_col = cfg.grid // 2 - 1
q = first + q_row * cfg.grid + q_col  # token index of the query patch
heats = np.stack([a[0, :, q, first:] for a in maps])  # (L, H, N) attention of query q
heats = heats.reshape(cfg.depth, cfg.heads, cfg.grid, cfg.grid)  # (L, H, g, g)
top = float(heats.max())  # shared absolute scale
tiles = []
for layer in range(cfg.depth):
    for h in range(cfg.heads):
        tile = pictures.overlay(images[0], heats[layer, h], alpha=0.7, scale=S, vmin=0, vmax=top)
        p = cfg.patch_size * S
        ImageDraw.Draw(tile).rectangle((q_col * p, q_row * p, (q_col + 1) * p - 1,
                                        (q_row + 1) * p - 1), outline="white")
        tiles.append(tile)
lesson.show(pictures.labelled_grid(
    tiles, cfg.heads, col_labels=[f"head {h + 1}" for h in range(cfg.heads)],
    row_labels=[f"layer {layer + 1}" for layer in range(cfg.depth)],
    title=f"Where patch ({q_row}, {q_col}) (white square) reads from, {classes[y_test[pick[0]]]}"
          f", {cfg.name}" + (" (LSA: never from itself)" if cfg.lsa else ""),
    colorbar=(0, round(top, 3), "inferno", "attention weight")),
    "patch_attention_by_layer_and_head", LESSON)

# %% [markdown]
# ## Attention rollout (Fig. 6, Appendix D.8)
#
# One layer's map ignores that information also flows through the residual connections and
# through the layers below. Abnar & Zuidema's **rollout** accounts for both: average the heads,
# add the identity for the skip connection $z + \mathrm{MSA}(z)$, renormalise the rows, and
# multiply through the layers:
#
# $$\tilde A_\ell = \frac{\bar A_\ell + I}{\text{row sums}},\qquad
#   \bar A_\ell = \tfrac{1}{H}\textstyle\sum_h A^{\ell,h},\qquad
#   R = \tilde A_L \cdots \tilde A_2 \tilde A_1 .$$
#
# The class token's row of $R$, reshaped to the patch grid, is how much each patch contributed
# to the representation the head classifies; without a class token the same is $w^\top R$,
# the rows mixed by the readout weights (the mean row for GAP, the SeqPool-weighted rows for
# sequence pooling). With LSA the rollout uses LSA's own weights (diagonal zero): the identity
# added for the skip connection is then each layer's only path from a token to itself. Fig. 6
# multiplies the image by it
# (`pictures.attention_mask`); an overlay is easier to read at 32 px. Two images per row, each as
# image, mask, overlay, all on one absolute scale from 0 to the largest share of any patch:
# a rollout that is nearly flat (every patch about $1/N$) looks flat, not contrasted.

# %%
rollout = analysis.attention_rollout(maps)  # (6, T, T), rows sum to 1
heat = analysis.rollout_to_image(rollout, cfg, w)  # (6, g, g): w^T R over the patches
top = float(heat.max())
tiles = []
for img, hm in zip(images, heat):
    tiles += [pictures.upscale(img, S), pictures.attention_mask(img, hm, S, 0, top),
              pictures.overlay(img, hm, alpha=0.6, scale=S, vmin=0, vmax=top)]
print(f"rollout share of a patch: {heat.min():.4f} to {top:.4f} (uniform: "
      f"{1 / cfg.num_patches:.4f})")
lesson.show(pictures.labelled_grid(
    tiles, 6, col_labels=["image", "rollout mask", "overlay"] * 2,
    row_labels=[f"{classes[a]}, {classes[b]}" for a, b in zip(y_test[pick][::2],
                                                              y_test[pick][1::2])],
    title=f"Attention rollout (Fig. 6): how much each patch feeds the {READ}, {cfg.name} "
          f"({lesson.data_name()})",
    colorbar=(0, round(top, 4), "inferno", "rollout share")), "attention_rollout", LESSON)

# %% [markdown]
# ## Mean attention distance (Fig. 7 right, Appendix D.7)
#
# How far does a head look? Weight the pixel distance between the centres of query patch $q$
# and key patch $k$ by the attention between them, and average over queries and images. The
# class token has no position, so it is dropped as query and key and each row is renormalised
# over the patches, $\tilde A_{qk} = A_{qk} / \sum_{k'=1}^{N} A_{qk'}$:
#
# $$d_{\ell,h} = \frac{1}{|\text{images}|\,N}\sum_{\text{images}}\sum_{q=1}^{N}\sum_{k=1}^{N}
#   \tilde A^{\ell,h}_{qk}\,\lVert c_q - c_k\rVert_2 .$$
#
# This is the analogue of a CNN's receptive field size — except that a CNN's grows with depth
# by construction, while a ViT can choose. The paper (Fig. 7 right): in the lowest layers some
# heads already attend across most of the image, others stay local; with depth all heads
# become global. For reference: a head attending uniformly to all patches has the average
# distance between patch centres. With **locality self-attention** a token cannot attend to
# itself (distance 0), so even a head as local as it can be has a distance of at least one
# patch, and the uniform reference is the mean distance to the *other* patches.

# %%
n_dist = 100 if SMOKE else 256
_, dmaps, _ = analysis.maps_and_readout(params, normalize(x_test[:n_dist], mean, std), cfg)
dist = analysis.mean_attention_distance(dmaps, cfg)  # (L, H) pixels
uniform = analysis.uniform_attention_distance(cfg)
print(f"mean attention distance in pixels over {n_dist} test images (uniform attention"
      f"{' to the other patches' if cfg.lsa else ''}: {uniform:.1f} px, image side "
      f"{cfg.image_size} px)")
for layer, d in enumerate(dist, 1):
    print(f"layer {layer}: min {d.min():5.1f}  mean {d.mean():5.1f}  max {d.max():5.1f}")
if cfg.lsa:  # LSA's learned temperature tau_h, against Eq. 6's fixed 1 / sqrt(D_h)
    tau = np.exp(np.stack([np.asarray(b["attn"]["log_tau"])
                           for b in params["blocks"]]))  # (L, H)
    print("LSA's learned temperature x sqrt(D_h), layers (rows) x heads (1 = Eq. 6's scale, "
          "> 1 sharper):\n", np.round(tau * np.sqrt(cfg.width // cfg.heads), 2))
lesson.show(pictures.attention_distance_chart(
    dist, title=f"Mean attention distance, {cfg.name}, {n_dist} test images "
                f"({lesson.data_name()})" + (", LSA (no self-attention)" if cfg.lsa else ""),
    uniform=uniform, uniform_label="uniform over the other patches" if cfg.lsa else
    "uniform attention"), "mean_attention_distance", LESSON)

# %% [markdown]
# ## Position embeddings (Fig. 7 centre)
#
# Nothing tells the model that patch 9 sits below patch 1 — the learned position embeddings
# $E_{pos}$ start as noise (lesson 2). (A model with **fixed sin-cos** positions, `pos =
# "sincos"`, is told: its $E_{pos}$ is a formula of each patch's row and column
# (`vit.sincos_2d`), never trained. The pictures below are then drawn for that formula,
# labelled "fixed, not learned": they show what the model was given, the same before and after
# training, and say nothing about what it learned. The paper's Fig. 7 finding is about learned
# embeddings.) Tile $(i, j)$ shows the cosine similarity of patch
# $(i, j)$'s embedding with every other patch's. After training, the paper finds that "closer
# patches tend to have more similar position embeddings" and a row–column structure: patches
# in the same row or column are similar. The chart under it condenses the grid: the mean
# similarity of all pairs of patches at a given distance (distances with fewer than 50
# pairs, a few corner-to-corner pairs on our 8×8 grid, are left out: their mean is noise).

# %%
LEARNED = cfg.pos == "learned"
KIND = "learned" if LEARNED else "fixed sin-cos, not learned"
sim = analysis.position_similarity(analysis.position_embeddings(params, cfg), cfg)  # (g,g,g,g)
lesson.show(pictures.similarity_grid(sim, title=f"Position embeddings of the trained "
                                                f"{cfg.name}: {KIND}"),
            "position_embedding_similarity", LESSON)

dists, by_dist, pairs = analysis.similarity_by_distance(sim)
init_sim = analysis.position_similarity(
    analysis.position_embeddings(init_vit(np.random.default_rng(0), cfg), cfg), cfg)
_, init_by_dist, _ = analysis.similarity_by_distance(init_sim)
print("pairs per distance:", dict(zip(dists.astype(int).tolist(), pairs.tolist())))
curves = ({"trained": (dists, by_dist), "at initialisation": (dists, init_by_dist)} if LEARNED
          else {"fixed sin-cos (the same at initialisation)": (dists, by_dist)})
chart = charts.line_chart(curves, xlabel="distance between patches (patches, rounded)",
                          ylabel="mean cosine similarity",
                          title=f"Position embeddings of {cfg.name} ({KIND}): similarity "
                                f"falls with distance?")
lesson.show(chart, "position_similarity_vs_distance", LESSON)
print("mean similarity at distance 1, 2, 3 patches:", np.round(by_dist[:3], 2),
      " farthest:", round(float(by_dist[-1]), 2))

# %% [markdown]
# ## The patch-embedding filters (Fig. 7 left)
#
# The linear projection $E \in \mathbb{R}^{(P^2 C) \times D}$ has one filter per output
# dimension: a $P \times P \times C$ pattern matched against every patch. Fig. 7 (left) shows
# the top principal components of these $D$ filters; for ViT-L/32 they "resemble plausible
# basis functions for a low-dimensional representation of the fine structure within each
# patch" (colour blobs, gradients, stripes of rising frequency). `analysis.embedding_filters_pca`
# centres the filters and takes the SVD $E^\top - \bar e = U \Sigma V^\top$; the rows of $V^\top$
# are the components, $\sigma_i^2 / \sum_j \sigma_j^2$ the variance each explains (under
# each tile). Our patches are 4×4, so each component has only 48 numbers. The paper's large
# models, trained on huge data, concentrate the filters' variance in a few smooth
# components. Ours do not: compare the two percentages printed below. For `vit-cifar-nano`
# after the default 18 epochs the project measured 30% in the top 5 components for the
# trained filters and 30% at random initialisation — no more structure than chance. Whatever
# 2D structure our small model learned is in its position embeddings and attention
# distances above, not in its patch filters.
#
# **With shifted patch tokens** (`cfg.spt`) E does not read the patch alone: it reads the
# patch and four copies of the image shifted diagonally by half a patch, side by side on the
# channel axis, after a LayerNorm (`vit.patch_inputs`): $5 P^2 C$ numbers (240 for 4×4 RGB
# patches). A filter is then five $P \times P \times C$ patterns, one per view; the PCA runs
# over the whole filters (scaled by the LayerNorm's gain, `analysis.embedding_filters`: what
# meets the standardised input), and each component is drawn as its five views, on one scale
# per component so their contrasts compare: the first column is the weight on the patch's
# own pixels; "x[r-2, c-2]" is the weight on the pixel 2 rows up and 2 columns left of each
# of them, and so on.

# %%
filters = analysis.embedding_filters(params, cfg)  # (P*P*C', D), C' = 5C with SPT
comps, ratio = analysis.embedding_filters_pca(filters, cfg, k=28)  # (k, P, P, C')
_, ratio_init = analysis.embedding_filters_pca(
    analysis.embedding_filters(init_vit(np.random.default_rng(0), cfg), cfg), cfg, k=28)
shares = (f"top 5: {ratio[:5].sum():.0%} of the variance trained, {ratio_init[:5].sum():.0%} "
          f"at random init")
if cfg.spt:  # each component as its five views: rows = components, columns = views
    k = min(8, len(comps))
    views = analysis.filter_views(comps[:k], cfg)  # (k, 5, P, P, C)
    lesson.show(pictures.filters_grid(
        views.reshape((-1,) + views.shape[2:]), nrow=views.shape[1], share=views.shape[1],
        scale=max(1, 84 // cfg.patch_size),
        col_labels=analysis.view_names(cfg),
        row_labels=[f"PC {i + 1}: {r:.1%}" for i, r in enumerate(ratio[:k])],
        title=f"Embedding filters of {cfg.name} (shifted patch tokens): top {k} principal "
              f"components\nof the {cfg.embed_in}-number filters, each as the 5 views E "
              f"reads: the patch, and the pixels\nat (row, column) offsets of half a patch; "
              f"one colour scale per row ({shares})"), "embedding_filters_pca", LESSON)
else:
    lesson.show(pictures.filters_grid(
        comps, nrow=7, captions=[f"{r:.1%}" for r in ratio],
        title=f"Embedding filters of {cfg.name}: top 28 principal components\n(share of "
              f"variance under each; {shares})"), "embedding_filters_pca", LESSON)
print(f"variance explained by the top 5 components: trained {ratio[:5].sum():.0%}, "
      f"random init {ratio_init[:5].sum():.0%}")

# %% [markdown]
# ## What to look for, honestly
#
# * **Rollout / class-token attention:** mass on the object rather than the background — at 8×8
#   patches a dog is a handful of patches, so the maps are blotchy.
# * **Attention distance:** a spread of heads in layer 1 (some well below the uniform value,
#   some near it) and larger, tighter distances higher up. With 4–6 layers and an 8×8 grid the
#   range is short (at most ~40 px), and our model is shallow, so the trend is weaker than
#   Fig. 7's 24-layer, 224-px picture.
# * **Position embeddings:** a bright blob around each tile's own position, sometimes bands
#   along its row and column; the similarity falls with distance, while at initialisation it
#   is flat around 0. (The sinusoidal patterns the paper sees appear for larger grids; ours is
#   8×8.)
# * **Without a class token, with LSA, SPT or fixed positions:** the readout maps and the rollout
#   are $w^\top A$ and $w^\top R$ for the pooling the model has; LSA's maps are dark on the
#   query's own patch and its attention distances cannot go below one patch; fixed sin-cos
#   positions show the formula's 2D structure whether or not the model uses it; SPT's filters
#   spread over five views, so compare the variance shares with the random-init ones only.
# * **Filters:** in the paper, smooth colour/brightness patterns first, then gradients and
#   checkerboards. Ours explain no more variance than random filters (30% vs 30% in the top
#   5 components): at this scale the filters have *not* learned a clean basis.
#
# A model trained for an hour or less on 32-px images shows all of this weaker than the paper's
# ImageNet-21k/JFT models, and the filters not at all. The point is that none of what does
# appear was programmed: locality in the attention distances and the 2D layout in the
# position embeddings were *learned* from data — which is why ViT needs a lot of it (lesson 7).
