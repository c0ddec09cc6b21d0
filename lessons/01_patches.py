# %% [markdown]
# # Lesson 1 — An image is worth 16×16 words
#
# Dosovitskiy et al. (ICLR 2021) feed a *standard* Transformer with images by cutting each
# image into fixed-size patches and treating every patch as a word (Sec. 3.1):
#
# > reshape the image $x \in \mathbb{R}^{H \times W \times C}$ into a sequence of flattened 2D
# > patches $x_p \in \mathbb{R}^{N \times (P^2 \cdot C)}$, where [...] $(P, P)$ is the resolution of each
# > image patch, and $N = HW / P^2$ is the resulting number of patches.
#
# This lesson does exactly that to real CIFAR-10 images (32×32×3), with no loops: one
# `reshape` and one `transpose`. Run it as a script (`python lessons/01_patches.py`) or open it as
# a notebook (VS Code / Jupyter with jupytext). `--smoke` runs it in seconds on synthetic data.

# %% [markdown]
# **Exercises.** Write this lesson's `patchify` yourself, then 20 more functions of the paper,
# up to a training loop that trains on your own code: `python -m tinyvit.exercises init` writes
# the stubs into `exercises/`; `python -m tinyvit.exercises check 1` checks yours (`hint 1` when
# stuck). In a notebook: `from tinyvit.exercises import check; check(1, patchify)`. The list is
# [docs/EXERCISES.md](../docs/EXERCISES.md).

# %%
import numpy as np

import lesson
from tinyvit.figures import pictures
from tinyvit.configs import get_config
from tinyvit.vit import patchify, unpatchify

LESSON = "01_patches"
ds = lesson.cifar10()
x_test, y_test = ds["test"]
pick = np.array([np.flatnonzero(y_test == c)[0] for c in range(8)])  # one image per class
images = x_test[pick]  # (8, 32, 32, 3) uint8, NHWC
names = [ds["classes"][i] for i in y_test[pick]]
print("images", images.shape, images.dtype, "classes:", names)
lesson.show(pictures.labelled_grid(list(pictures.upscale(images, 4)), 8, captions=names,
                                   title=f"Eight test images, one per class (32x32 pixels, "
                                         f"drawn 4x; {lesson.data_name()})"), "images", LESSON)

# %% [markdown]
# ## Patchify by reshape
#
# Split the height into `H/P` blocks of `P` rows and the width into `W/P` blocks of `P` columns:
# `(B, H, W, C) -> (B, H/P, P, W/P, P, C)`. Bring the two block indices together,
# `(B, H/P, W/P, P, P, C)`, and flatten: each of the `N = (H/P)(W/P)` patches becomes one row of
# length `P·P·C`, read in (row, column, channel) order — the same order as the official code's
# patch-embedding kernel `(P, P, C, D)`.

# %%
P = 8
patches = patchify(images.astype(np.float32), P)  # (8, 16, 192): N = 32*32/8^2 = 16 words
print("patches", patches.shape, "= (B, N, P*P*C) =", (8, (32 // P) ** 2, P * P * 3))

# A loop says the same thing more slowly; the test suite checks they agree.
b, i, j = 0, 1, 2  # image 0, patch row 1, patch column 2
by_hand = images[b, P * i:P * (i + 1), P * j:P * (j + 1), :].reshape(-1)
assert np.array_equal(patches[b, i * (32 // P) + j], by_hand)

# Nothing is lost: unpatchify puts the words back into an image.
assert np.array_equal(unpatchify(patches, P, 3), images.astype(np.float32))

# %% [markdown]
# ## The 16 "words" of one image
#
# Drawn with a gap between patches, each numbered with its place in the sequence (reading
# order, row by row). Below it, the same 16 patches as the Transformer receives them: one row
# of words. It has no idea that patch 4 sits below patch 0 — that knowledge must come from
# the position embeddings of lesson 2. The third picture cuts the same image into 4×4
# patches — 64 words — the patch size of our CIFAR models.

# %%
grid = pictures.patch_grid(images[0], P, gap=3, scale=8, numbers=True)
lesson.show(pictures.labelled_grid([grid], 1, title=f"The {names[0]} cut into 16 patches "
                                                    f"of {P}x{P} px\n(number: place in the "
                                                    f"sequence)"), "patch_grid_p8", LESSON)
sequence = pictures.patch_grid(images[0], P, gap=3, scale=5, ncol=16, numbers=True)
lesson.show(pictures.labelled_grid([sequence], 1, title="The same 16 patches as the "
                                                        "Transformer reads them: one sequence "
                                                        "of words, patch 0 first"),
            "patch_sequence_p8", LESSON)
lesson.show(pictures.labelled_grid([pictures.patch_grid(images[0], 4, gap=2, scale=10,
                                                        numbers=True)], 1,
                                   title="Patches of 4x4 px: 64 words\n(our CIFAR models)"),
            "patch_grid_p4", LESSON)

# %% [markdown]
# ## How long are the sentences?
#
# Tokens grow with the square of resolution over patch size: attention costs $O(N^2)$, which is
# why the paper uses large patches (14, 16, 32) on 224-pixel ImageNet images, and why our CIFAR
# models use patch 4 on 32-pixel images (64 tokens).

# %%
for name in ["vit-b32", "vit-b16", "vit-h14", "vit-cifar-tiny"]:
    cfg = get_config(name)
    print(f"{name:15s} {cfg.image_size:4d} px, patch {cfg.patch_size:2d}: "
          f"N = {cfg.num_patches:4d} patches of length {cfg.patch_dim}")
