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
from tinyvit.figures import charts, pictures

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
# Eq. 5, 7 and 8 around it. (`attention` asks `head_weights` for A: that is
# `attention_weights(q, k)`, unless the layer has the learned temperature of locality
# self-attention, an option for small data sets: `ViTConfig.lsa`.)

# %%
lesson.show_code(layers.attention_weights)
lesson.show_code(layers.attention)

# %% [markdown]
# ### Eq. 5–8 written out, head by head
#
# The same computation with one loop over heads, each line one equation, checked against
# `layers.attention`. `U_qkv` holds $[U_q | U_k | U_v]$, and inside each of the three, head
# $h$ owns the columns $h D_h \dots (h+1) D_h - 1$; `U_msa` is the output projection.

# %%
rng_eq = np.random.default_rng(1)
p_eq = layers.init_attention(rng_eq, 8, np.float64)  # D = 8, 2 heads of D_h = 4
z_eq = rng_eq.standard_normal((5, 8))  # (N, D): one sequence of 5 tokens
D, H = 8, 2
Dh = D // H
U_qkv, b_qkv = p_eq["qkv"]["w"], p_eq["qkv"]["b"]  # (D, 3D), (3D,)
U_msa, b_msa = p_eq["out"]["w"], p_eq["out"]["b"]  # (D, D), (D,)
heads = []
for h in range(H):
    cols = slice(h * Dh, (h + 1) * Dh)
    q_h = z_eq @ U_qkv[:, :D][:, cols] + b_qkv[:D][cols]  # (N, D_h)       Eq. 5
    k_h = z_eq @ U_qkv[:, D:2 * D][:, cols] + b_qkv[D:2 * D][cols]  # (N, D_h)
    v_h = z_eq @ U_qkv[:, 2 * D:][:, cols] + b_qkv[2 * D:][cols]  # (N, D_h)
    A_h = ops.softmax(q_h @ k_h.T / np.sqrt(Dh))  # (N, N)                 Eq. 6
    heads.append(A_h @ v_h)  # SA_h(z) (N, D_h)                             Eq. 7
msa = np.concatenate(heads, axis=1) @ U_msa + b_msa  # [SA_1; ...; SA_k] U_msa  Eq. 8
print("head-by-head Eq. 5-8 == layers.attention:",
      np.allclose(msa, layers.attention(p_eq, z_eq[None], heads=H)[0]))

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
lesson.show(pictures.matrix_heatmap(maps[0][0, 0], "key token j (read from)",
                                    "query token i (reading)",
                                    "Attention weights A of head 1, image 1 (random weights)",
                                    vmin=0, vmax=1, label="A_ij (each row sums to 1)",
                                    annotate=True), "attention_weights_head0", LESSON)

# %% [markdown]
# ## Knob: why divide by $\sqrt{D_h}$?
#
# If the entries of $q$ and $k$ are roughly independent with variance 1, the score
# $q \cdot k = \sum_{j=1}^{D_h} q_j k_j$ has variance $D_h$: wider heads give larger scores,
# and softmax of large scores is nearly one-hot ("saturated"). A saturated softmax passes
# almost no gradient: $\partial A_i / \partial s_j = A_i(\delta_{ij} - A_j)$ is near 0 when
# one $A_i$ is near 1. Dividing by $\sqrt{D_h}$ keeps the variance at 1 for every head width
# (Vaswani et al., 2017, footnote 4). Measured on random queries and keys, 64 keys per query:

# %%
lesson.knob("Without the 1/sqrt(D_h), how large is the largest attention weight of a row for "
            "D_h = 64 (ViT-B's head width)? And with it?")
rng_s = np.random.default_rng(0)
widths = np.array([4, 16, 64, 256, 1024])
stats = {}
for scaled in (True, False):
    rows = []
    for dh in widths:
        q_s = rng_s.standard_normal((256, dh))  # (queries, D_h)
        k_s = rng_s.standard_normal((64, dh))  # (keys, D_h)
        a_s = ops.softmax(q_s @ k_s.T / (np.sqrt(dh) if scaled else 1.0))  # (256, 64)
        jac = a_s[:, :, None] * (np.eye(64) - a_s[:, None, :])  # (256, 64, 64) dA/ds
        rows.append((a_s.max(1).mean(), np.sqrt((jac**2).sum((1, 2))).mean()))
    stats[scaled] = np.array(rows)  # (widths, 2): mean max weight, mean gradient norm
print(f"{'D_h':>5s} {'max weight, /sqrt(D_h)':>23s} {'without':>8s} "
      f"{'|dA/ds|, /sqrt(D_h)':>20s} {'without':>8s}")
for i, dh in enumerate(widths):
    print(f"{dh:5d} {stats[True][i, 0]:23.3f} {stats[False][i, 0]:8.3f} "
          f"{stats[True][i, 1]:20.3f} {stats[False][i, 1]:8.3f}")
lesson.show(charts.line_chart(
    {"largest weight, scores / sqrt(D_h)": (widths, stats[True][:, 0]),
     "largest weight, raw scores q.k": (widths, stats[False][:, 0]),
     "uniform (1/64)": (widths, np.full(len(widths), 1 / 64))},
    xlabel="head width D_h (log scale)", ylabel="largest weight of a softmax row (mean)",
    title="Softmax saturation: 64 keys, random q and k", log_x=True, ylim=(0, 1.05),
    error_bars=False), "knob_sqrt_dh_saturation", LESSON)

# %% [markdown]
# With the scaling the rows stay equally soft at every width (the largest of 64 weights is
# about 0.1). Without it, a $D_h = 64$ head already puts about 0.8 of a row's weight on one
# key, and wider heads close further (0.95 at $D_h = 1024$). The gradient through the softmax
# (the norm of its Jacobian) first rises a little as rows sharpen, then collapses: at
# $D_h = 1024$ it is about a third of the scaled head's. A saturated head has stopped
# choosing: whatever key wins at initialisation wins, and the other keys get no gradient.
#
# ## Knob: shuffle the tokens (permutation equivariance)
#
# Nothing in Eq. 5–8 knows the order of the tokens: permute the input rows and the output
# rows come out permuted the same way, $\mathrm{MSA}(Pz) = P\,\mathrm{MSA}(z)$. The whole
# encoder inherits it (LayerNorm and the MLP act on each token alone). Only the position
# embeddings, added before the encoder, tell the tokens apart (lesson 2 measures what
# shuffling the patches of real images does to trained models).

# %%
lesson.knob("Shuffle the 5 tokens of a sequence: what happens to the attention output?")
perm = rng.permutation(5)
out_perm = layers.attention(p, x[:, perm], heads=2)  # shuffle, then attend
print("MSA(P z) == P MSA(z):", np.allclose(out_perm, out[:, perm], atol=1e-6))

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
