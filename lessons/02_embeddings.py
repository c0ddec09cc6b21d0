# %% [markdown]
# # Lesson 2 — Patch embeddings, the [class] token and position embeddings
#
# Eq. 1 of the paper builds the Transformer's input sequence:
#
# $$z_0 = [x_\text{class};\; x_p^1 E;\; x_p^2 E;\; \dots;\; x_p^N E] + E_{pos},\qquad
#   E \in \mathbb{R}^{(P^2 C) \times D},\; E_{pos} \in \mathbb{R}^{(N+1) \times D}$$
#
# * **Linear projection** $E$: every flattened patch is mapped to a D-dimensional vector.
# * **[class] token** $x_\text{class}$: one learned vector put in front of the sequence; its
#   output after the encoder is the image representation (Eq. 4).
# * **Position embeddings** $E_{pos}$: one learned vector per position, *added*, so the model can
#   tell where each patch came from.

# %%
import numpy as np

import lesson
from tinyvit import get_config, init_vit
from tinyvit.figures import pictures
from tinyvit.layers import linear
from tinyvit.vit import embed, patchify

LESSON = "02_embeddings"
cfg = get_config("vit-cifar-tiny")  # 32 px, P = 4, D = 128
params = init_vit(np.random.default_rng(0), cfg)
x_test, _ = lesson.cifar10()["test"]
images = (x_test[:4].astype(np.float32) - 127.5) / 64.0  # (4, 32, 32, 3), roughly normalised

# %% [markdown]
# ## The linear projection $x_p E$
#
# `params["embed"]["w"]` is $E$, shape `(P*P*C, D) = (48, 128)`. Projecting all patches of all
# images is one matrix product (the 3-D input is flattened to 2-D first, see `layers.linear`).

# %%
patches = patchify(images, cfg.patch_size)  # (4, 64, 48)
tokens = linear(params["embed"], patches)  # (4, 64, 128)
print("E:", params["embed"]["w"].shape, " patches:", patches.shape, " tokens:", tokens.shape)

# %% [markdown]
# ### The projection is a convolution
#
# Sliding one `P×P×C` filter per output channel over the image with stride `P` computes the same
# numbers: the "patch embedding" is a convolution whose stride equals its size (the official
# code implements it as `nn.Conv` with `strides=P`). Check it with a loop over positions:

# %%
w = params["embed"]["w"].reshape(cfg.patch_size, cfg.patch_size, 3, cfg.width)  # (P, P, C, D)
P = cfg.patch_size
conv = np.stack([
    np.tensordot(images[:, r:r + P, c:c + P, :], w, axes=([1, 2, 3], [0, 1, 2]))  # (4, D)
    for r in range(0, 32, P) for c in range(0, 32, P)], axis=1) + params["embed"]["b"]
print("conv with stride P == x_p E:", np.allclose(conv, tokens, atol=1e-5))

# %% [markdown]
# ## Prepend the [class] token, add position embeddings
#
# `embed()` does both: `(B, N, D) -> (B, N+1, D)`. At initialisation $E_{pos}$ is random noise
# (std 0.02), so the cosine similarity between positions shows no structure; after training
# (lesson 8, the paper's Fig. 7 centre) nearby patches get similar embeddings.

# %%
z0 = embed(params, images, cfg)  # (4, 65, 128)
print("z_0:", z0.shape, "= (B, 1 + N, D)")
print("row 0 of every image is the same class token + E_pos[0]:",
      np.allclose(z0[0, 0], z0[3, 0]))

from tinyvit.figures.analysis import position_similarity  # noqa: E402

sim = position_similarity(params["pos"], cfg)  # (8, 8, 8, 8)
lesson.show(pictures.similarity_grid(sim), "pos_similarity_at_init", LESSON)
