# %% [markdown]
# # Lesson 9 — Fine-tuning at higher resolution, and few-shot linear probes
#
# Two ways the paper uses a pre-trained ViT beyond its training task:
#
# * **(a) Fine-tuning at higher resolution** (Sec. 3.2): "it is often beneficial to fine-tune at
#   higher resolution than pre-training" (Touvron et al., 2019). The patch size stays, so a
#   bigger image means a longer sequence — and position embeddings that no longer fit.
# * **(b) Few-shot linear probes** (Sec. 4.1): freeze the network, and fit only a linear
#   classifier on its features from 1, 5, 10 or 25 labelled images per class. This measures how
#   directly the representation exposes the classes, cheaply.
#
# We use the trained ViT of lesson 8 (`lesson.trained_vit`): your checkpoint if you have one,
# else the `vit-cifar-nano` shipped with tinyvit (`tinyvit/pretrained/`, 18 epochs, 67.8%).
# Any ViT the library builds works here (smoke mode trains `$TINYVIT_SMOKE_VIT`, default
# `vit-cifar-nano`, for 3 steps); where fixed sin-cos positions or sequence pooling change
# what a step means, the text and the pictures say so.
# Full mode takes up to about 15 minutes on 2 CPU cores (mostly part (a)'s fine-tuning);
# `--smoke` runs in seconds.

# %%
import time

import numpy as np
from autograd import value_and_grad
from PIL import Image

import lesson
from tinyvit import data, optim
from tinyvit.data import normalize
from tinyvit.figures import analysis, charts, pictures
from tinyvit.run import models
from tinyvit.run.evaluate import evaluate
from tinyvit.tree import tree_map
from tinyvit.vit import init_vit, loss_fn, vit

LESSON = "09_finetune_and_probe"
SMOKE = lesson.smoke()
model, params, meta = lesson.trained_vit(LESSON)
cfg = model.cfg
mean, std = np.float32(meta["mean"]), np.float32(meta["std"])
ds = lesson.cifar10()
x_test, y_test = data.balanced_subset(*ds["test"], 2000, seed=0)  # evaluate on 2,000 images
print(f"{cfg.name} at {cfg.image_size} px: {cfg.grid}x{cfg.grid} = {cfg.num_patches} patches; "
      f"{len(y_test):,} test images")

# %% [markdown]
# ## (a) Higher resolution: same patches, longer sequence
#
# From the paper (Sec. 3.2): "When feeding images of higher resolution, we keep the patch size
# the same, which results in a larger effective sequence length. [...] the pre-trained position
# embeddings may no longer be meaningful. We therefore perform 2D interpolation of the
# pre-trained position embeddings, according to their location in the original image."
#
# With $P = 4$, a 32-px image has $N = 32^2/4^2 = 64$ patches, a 48-px image $48^2/4^2 = 144$.
# Everything in the encoder works for any $N$ (attention is $N \times N$, the MLPs act per
# token; shifted patch tokens shift by half a patch at any size; sequence pooling weighs any
# number of tokens) — except learned position embeddings
# $E_{pos} \in \mathbb{R}^{(N+1) \times D}$ ($N$ rows without a class token), one row per
# position. **Fixed sin-cos** positions (`pos = "sincos"`) are a formula of each patch's row
# and column, computed for whatever grid the config has: nothing to interpolate, the model
# runs at 48 px as it is — but the 12×12 grid's rows and columns 8–11 get codes it never saw
# in training (extrapolation), where interpolation would have squeezed the old 0–7 range over
# the new grid.

# %%
SIZE = 48
LEARNED = cfg.pos == "learned"
params48, cfg48 = analysis.resize_vit(params, cfg, SIZE)  # sin-cos: the same parameters
pos, pos48 = (analysis.position_embeddings(p, c)[0, 1 if c.pool == "cls" else 0:]
              for p, c in ((params, cfg), (params48, cfg48)))  # (N, D), (N', D) patches only
print(f"{SIZE} px: {cfg48.grid}x{cfg48.grid} = {cfg48.num_patches} patches; E_pos of the "
      f"patches {pos.shape} -> {pos48.shape} "
      + ("(interpolated)" if LEARNED else "(fixed sin-cos, computed for the new grid)"))
try:  # the old position embeddings with the longer sequence
    vit(params, np.zeros((1, SIZE, SIZE, 3), np.float32), cfg48)
    print("without interpolation: runs as it is (fixed sin-cos positions: no parameter "
          "depends on the number of patches)")
except ValueError as e:
    print("without interpolation:", e)

# %% [markdown]
# ### Interpolating the position embeddings in 2D
#
# Lay the $g \times g$ patch embeddings out as the $g \times g \times D$ "image" they index and
# resize it bilinearly to $g' \times g'$ (the class token's embedding is kept as it is). New
# cell $i$ sits at old coordinate $x_i = (i + \tfrac12)\,g/g' - \tfrac12$ (cell centres aligned)
# and mixes its two neighbours; in matrix form, with $M \in \mathbb{R}^{g' \times g}$ the 1-D
# interpolation weights (`analysis.bilinear_matrix`),
#
# $$E'_{pos}[i, j] = \sum_{a, b} M_{ia}\, M_{jb}\; E_{pos}[a, b] .$$
#
# Left: one dimension of $E_{pos}$ on the 8×8 grid; right: the same dimension on the 12×12 grid.
# Below: the similarity grid of lesson 8 for the interpolated embeddings. The structure is
# carried over, but it is now only approximately right: fine-tuning has to adjust it. (For
# fixed sin-cos positions both pictures show the formula on the two grids, labelled so: the
# left one is the 8×8 grid's codes, which reappear unchanged in the 12×12 grid's top-left
# corner.)

# %%
d = int(pos.var(axis=0).argmax())  # the dimension that varies most across positions
lo, hi = min(pos[:, d].min(), pos48[:, d].min()), max(pos[:, d].max(), pos48[:, d].max())
pair = [pictures.heatmap(p[:, d].reshape(g, g), size=192, vmin=lo, vmax=hi)
        for p, g in ((pos, cfg.grid), (pos48, cfg48.grid))]
HOW = ("trained", "interpolated") if LEARNED else ("sin-cos", "sin-cos")
lesson.show(pictures.labelled_grid(
    pair, 2, col_labels=[f"{cfg.grid}x{cfg.grid} ({cfg.image_size} px, {HOW[0]})",
                         f"{cfg48.grid}x{cfg48.grid} ({SIZE} px, {HOW[1]})"],
    title=f"Position embeddings of {cfg.name} ({'learned' if LEARNED else 'fixed, not learned'}"
          f"), dimension {d} of {cfg.width}, over the patch grid",
    colorbar=(round(float(lo), 3), round(float(hi), 3), "viridis", f"E_pos[:, {d}]"), gap=16),
    "pos_embedding_dim_8x8_to_12x12", LESSON)
sim48 = analysis.position_similarity(analysis.position_embeddings(params48, cfg48), cfg48)
lesson.show(pictures.similarity_grid(sim48, cell=4, title=(
    f"Interpolated to {cfg48.grid}x{cfg48.grid} ({SIZE} px), before fine-tuning" if LEARNED
    else f"Fixed sin-cos positions computed for {cfg48.grid}x{cfg48.grid} ({SIZE} px), not "
         f"learned")),
            "position_similarity_interpolated_48px", LESSON)

# %% [markdown]
# ### Accuracy at 48 px, before and after fine-tuning
#
# Our 48-px images are the 32-px test images enlarged with Pillow's bicubic filter: they hold
# no more detail, but each object now covers more patches. First the interpolated model as it
# is, then after a short fine-tune with the paper's recipe (Appendix B.1.1): **SGD with
# momentum 0.9**, no weight decay, gradients clipped at global norm 1, cosine learning-rate
# decay (here after a 10% linear warmup), all weights trained, on upsampled (randomly cropped
# and flipped) training images in batches of 64. The head is kept: the classes are the same.
# For a *new* task the paper replaces it (Sec. 3.2: "we remove the pre-trained prediction
# head and attach a zero-initialized D × K feedforward layer, where K is the number of
# downstream classes"); a zero head makes the first logits all zero, so fine-tuning starts
# from "no opinion" instead of the old task's answers. Lesson 10 does exactly that after
# self-supervised pre-training (`mpp.to_classifier`).
#
# $$b \leftarrow 0.9\, b + g, \qquad w \leftarrow w - \eta_t\, b .$$


# %%
def upsample(x, size=SIZE):
    """uint8 (B, h, w, C) -> (B, size, size, C): each image enlarged with Pillow's bicubic."""
    return np.stack([np.asarray(Image.fromarray(im).resize((size, size), Image.BICUBIC))
                     for im in x])  # (B, size, size, C)


model48 = models.from_config_dict({**meta["model"], "image_size": SIZE})  # same net, 48 px
x48_test = upsample(x_test)  # (S, 48, 48, 3)
acc32, _ = evaluate(model, params, x_test, y_test, mean, std)
acc48_before, _ = evaluate(model48, params48, x48_test, y_test, mean, std)
print(f"32 px, as trained:                    {acc32:.1%}")
print(f"48 px, {'interpolated' if LEARNED else 'sin-cos for 12x12'}, not fine-tuned:  "
      f"{acc48_before:.1%}")

# %%
STEPS, BATCH, LR = (2, 64, 0.01) if SMOKE else (300, 64, 0.01)
ft = tree_map(np.copy, params48)  # sgd_momentum_update works in place: keep params48 intact
state = optim.init_sgd(ft)
loss_and_grad = value_and_grad(loss_fn)  # d(mean cross-entropy) / d(params)
rng = np.random.default_rng(0)
x_train, y_train = ds["train"]
losses, t0 = [], time.perf_counter()
for step in range(STEPS):
    idx = rng.choice(len(x_train), BATCH, replace=False)  # (B,)
    xb = upsample(data.random_crop_flip(rng, x_train[idx]))  # (B, 48, 48, 3) uint8
    loss, grads = loss_and_grad(ft, normalize(xb, mean, std), y_train[idx], cfg48, train=True,
                                rng=rng)
    grads, _ = optim.clip_by_global_norm(grads, 1.0)
    lr = optim.warmup_cosine(step, STEPS, LR, STEPS // 10)
    ft, state = optim.sgd_momentum_update(ft, grads, state, lr, momentum=0.9)
    losses.append(float(loss))
    if (step + 1) % 50 == 0 or step + 1 == STEPS:
        print(f"step {step + 1:3d}/{STEPS}  lr {lr:.4f}  loss (last 50) "
              f"{np.mean(losses[-50:]):.3f}  {(time.perf_counter() - t0) / (step + 1):.2f} s/step")
acc48_after, _ = evaluate(model48, ft, x48_test, y_test, mean, std)
print(f"48 px, after {STEPS} fine-tuning steps:  {acc48_after:.1%}   (32 px as trained: "
      f"{acc32:.1%})")
steps = np.arange(1, STEPS + 1)
smooth = np.convolve(losses, np.ones(10) / 10, "valid") if STEPS >= 10 else np.array(losses)
lesson.show(charts.line_chart({"training loss (10-step mean)": (steps[len(steps) - len(smooth):],
                                                                smooth)},
                              xlabel="fine-tuning step", ylabel="cross-entropy",
                              title=f"Fine-tuning at {SIZE} px, SGD + momentum "
                                    f"({lesson.data_name()})"),
            "finetune_loss", LESSON)

# %% [markdown]
# ### Reading the numbers
#
# * Right after interpolation the model usually *loses* accuracy: objects now span more patches
#   than in training, each patch holds a smoother (upsampled) piece of image, and the
#   interpolated position code is only approximately right.
# * Fine-tuning repairs that. Whether it ends *above* the 32-px accuracy is an open question
#   here: in the paper the higher resolution brings real extra detail (384 vs. 224 px photos);
#   our upsampled CIFAR images bring none, only 2.25× more tokens — and 2.25× more compute
#   per image (more with the $N^2$ attention). A few hundred steps are also a short fine-tune.

# %% [markdown]
# ## (b) Few-shot linear probes (Sec. 4.1)
#
# "Few-shot accuracies are obtained by solving a regularized least-squares regression problem
# that maps the (frozen) representation of a subset of training images to $\{-1, 1\}^K$ target
# vectors" (Sec. 4.1) — chosen because it is fast. With features $X \in \mathbb{R}^{S \times F}$
# (standardised; `analysis.probe_features` = `vit.features`, the $y$ of Eq. 4 that the model's
# own head reads: the class token, the mean of the tokens, or their mean weighted by sequence
# pooling) and targets $T = 2\,\mathrm{onehot}(y) - 1$:
#
# $$W = (X^\top X + \lambda I)^{-1} X^\top (T - \mathbf{1} b^\top), \qquad
#   \hat y = \arg\max_k\, (x^\top W + b)_k ,$$
#
# where the columns of $X$ are centred (and scaled), so the intercept $b$ is simply the mean
# target row.
#
# When there are fewer examples ($S = 10 \times$ shots) than features, `analysis.linear_probe`
# solves the equivalent, smaller dual problem $W = X^\top (X X^\top + \lambda I)^{-1} T$.
# We draw the shots from 5,000 training images, score on the 2,000 test images, repeat with 5
# seeds, and do the same with the features of a **randomly initialised** ViT of the same shape:
# the difference is what training bought.
#
# An honest caveat: the paper probes *other* data sets (e.g. ImageNet after JFT pre-training).
# Our model was trained on CIFAR-10's labels, so this probe is in-domain: it asks how few
# examples a linear classifier needs to read the classes off the representation.


# %%
def embed_images(p, x):
    """Frozen features (Eq. 4's y, the model's own pooling) of uint8 images. -> (S, D)."""
    return analysis.probe_features(p, x, cfg, mean, std)  # (S, D)


x_pool, y_pool = data.balanced_subset(*ds["train"], 5000, seed=1)  # where the shots come from
random_params = init_vit(np.random.default_rng(0), cfg)
feats = {"trained ViT": (embed_images(params, x_pool), embed_images(params, x_test)),
         "random init": (embed_images(random_params, x_pool), embed_images(random_params, x_test))}
POOLED = {"cls": "class token", "gap": "token mean", "seq": "SeqPool"}[cfg.pool]
SHOTS = [s for s in (1, 5, 10, 25) if s <= np.bincount(y_pool).min()]
SEEDS = range(5)
series = {}
print(f"{'':12s}" + "".join(f"{s:>9d}-shot" for s in SHOTS) + f"  {'all':>8s} ({len(y_pool):,})")
for name, (f_pool, f_test) in feats.items():
    acc = np.array([[analysis.few_shot_accuracy(f_pool, y_pool, s, seed, f_test, y_test)
                     for seed in SEEDS] for s in SHOTS])  # (shots, seeds)
    w, b = analysis.linear_probe(f_pool, y_pool)  # the same probe on the whole pool
    full = analysis.probe_accuracy(w, b, f_test, y_test)
    print(f"{name:12s}" + "".join(f"  {m:5.1%} ± {s:4.1%}" for m, s in
                                  zip(acc.mean(1), acc.std(1))) + f"  {full:8.1%}")
    series[name] = (SHOTS, acc.mean(1), acc.std(1))
series["chance"] = (SHOTS, np.full(len(SHOTS), 1 / cfg.num_classes), None)
lesson.show(charts.line_chart(series, xlabel="labelled images per class (log scale)",
                              ylabel="test accuracy", log_x=True, ylim=(0, None),
                              title=f"Few-shot linear probe on frozen features (y: "
                                    f"{POOLED}), {cfg.name} ({lesson.data_name()})"),
            "few_shot_probe", LESSON)
print(f"for comparison, the model's own head (trained with the network on "
      f"{meta['train_size']:,} images): {acc32:.1%}")

# %% [markdown]
# ## What to take away
#
# * Even random features carry some signal — a random ViT is a random non-linear projection of
#   the pixels, and a linear probe finds colour and layout cues in it (expect it above the 10%
#   of chance). Training should add much more, visible already at 1–5 shots per class: a
#   trained representation clusters images by class, so a few labels locate the clusters.
# * The probe on the whole pool and the model's own head are both linear classifiers on the
#   same features — one fitted by least squares on 5,000 images, the other by cross-entropy on
#   all training images — so they should land close to each other.
# * The paper's Fig. 4 is the transfer version of this chart: 5-shot ImageNet probes of models
#   pre-trained on growing subsets of JFT-300M. The more pre-training data, the better the
#   probes on a *new* task — a cheap way to compare pre-training without fine-tuning.
