# %% [markdown]
# # Lesson 3 — Self-attention and multi-head attention
#
# Appendix A of the paper (following Vaswani et al., 2017). For an input sequence
# $z \in \mathbb{R}^{N \times D}$:
#
# $$[q, k, v] = z\,U_{qkv},\qquad U_{qkv} \in \mathbb{R}^{D \times 3D_h} \quad\text{(Eq. 5)}$$
# $$A = \mathrm{softmax}\!\left(q k^\top / \sqrt{D_h}\right),\qquad A \in \mathbb{R}^{N \times N} \quad\text{(Eq. 6)}$$
# $$\mathrm{SA}(z) = A v \quad\text{(Eq. 7)}$$
# $$\mathrm{MSA}(z) = [\mathrm{SA}_1(z); \dots; \mathrm{SA}_k(z)]\, U_{msa} \quad\text{(Eq. 8)}$$
#
# Every token looks at every other token; $A_{ij}$ says how much token $i$ takes from token $j$.

# %%
import numpy as np
from autograd import grad

import lesson
from tinyvit import layers, ops
from tinyvit.figures import pictures

LESSON = "03_attention"
rng = np.random.default_rng(0)

# %% [markdown]
# ## One head, written out
# Four tokens of width 6, one head ($D_h = 6$). Softmax subtracts each row's maximum before
# `exp` so huge scores cannot overflow (`ops.softmax`).

# %%
z = rng.standard_normal((4, 6))  # (N, D)
U_qkv = rng.standard_normal((6, 18)) * 0.5  # (D, 3 D_h)
q, k, v = np.split(z @ U_qkv, 3, axis=1)  # 3 x (N, D_h)      Eq. 5
A = ops.softmax(q @ k.T / np.sqrt(6))  # (N, N)          Eq. 6
sa = A @ v  # (N, D_h)                                         Eq. 7
print("A =\n", np.round(A, 3), "\nrows sum to 1:", np.allclose(A.sum(1), 1))

# %% [markdown]
# The library's softmax is the formula itself; autograd differentiates it. Training swaps in
# a fast twin from `tinyvit.fast`, the same function with a hand-derived VJP:

# %%
lesson.show_code(ops.softmax)
lesson.show_twin("softmax")

# %% [markdown]
# ## Many heads at once, batched
#
# Eq. 5–8 in code: `attention_weights` is Eq. 6 for every head at once, and `attention` is
# Eq. 5, 7 and 8 around it.

# %%
lesson.show_code(layers.attention_weights)
lesson.show_code(layers.attention)

# %% [markdown]
#
# `layers.attention` computes all heads of all images with a handful of matrix products: one
# fused projection to `[q | k | v]` of shape `(B*N, 3D)`, a reshape to `(B, H, N, D/H)`, and
# batched `q @ k^T` of shape `(B, H, N, N)`. Pass a list as `weights_out` and $A$ is appended
# to it.
# Here: 2 images, 5 tokens, D = 8, H = 2.

# %%
p = layers.init_attention(rng, 8)
x = rng.standard_normal((2, 5, 8)).astype(np.float32)  # (B, N, D)
maps = []
out = layers.attention(p, x, heads=2, weights_out=maps)
print("MSA output", out.shape, " attention weights", maps[0].shape, "= (B, H, N, N)")
lesson.show(pictures.heatmap(maps[0][0, 0], size=160), "attention_weights_head0", LESSON)

# %% [markdown]
# ## A gradient check you can read
#
# How do we know autograd's gradient of all of this is right? Nudge one weight by $\pm h$ and
# watch the loss: the centred difference $(L(w+h) - L(w-h)) / 2h$ approximates $\partial L /
# \partial w$ with error $O(h^2)$. In float64 with $h = 10^{-6}$ a correct gradient agrees to
# about 9 digits; a wrong one is off in the first digit. (`tests/test_vit.py` does this for
# every parameter of every layer and of the whole model.)

# %%
p64 = {name: {k: v.astype(np.float64) for k, v in d.items()} for name, d in p.items()}
x64 = x.astype(np.float64)
c = rng.standard_normal((2, 5, 8))  # a fixed random "upstream gradient"


def loss(params):
    return (c * layers.attention(params, x64, heads=2)).sum()


g = grad(loss)(p64)["qkv"]["w"]  # autograd's answer, (8, 24)
h = 1e-6
for (i, j) in [(0, 0), (3, 10), (7, 23)]:
    w = p64["qkv"]["w"]
    old = w[i, j]
    w[i, j] = old + h
    up = loss(p64)
    w[i, j] = old - h
    down = loss(p64)
    w[i, j] = old
    numeric = (up - down) / (2 * h)
    rel = abs(numeric - g[i, j]) / max(abs(numeric) + abs(g[i, j]), 1e-12)
    print(f"dL/dU_qkv[{i},{j:2d}]  autograd {g[i, j]: .9f}  numeric {numeric: .9f}  rel.err {rel:.1e}")
    assert rel < 1e-6
