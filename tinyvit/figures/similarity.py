"""Do a ViT's layers resemble a CNN's? Centred kernel alignment (CKA) between representations.

Raghu et al. 2021 ("Do Vision Transformers See Like Convolutional Neural Networks?") compare
every layer of one network with every layer of another by linear CKA (Kornblith et al. 2019)
on the same images:

    K = X X^T, L = Y Y^T                 Gram matrices of the S examples     (S, S)
    HSIC(K, L) = tr(K H L H) / (S - 1)^2 H = I - 1 1^T / S centres them      (Kornblith Eq. 3)
    CKA(K, L) = HSIC(K, L) / sqrt(HSIC(K, K) HSIC(L, L))                     (Kornblith Eq. 4)

X (S, F1) and Y (S, F2) may have any widths: only the S x S Gram matrices meet. CKA is 1 for
X against itself, and unchanged by an orthogonal transform or an isotropic scaling of X (or
Y), but not by an arbitrary invertible linear map (Kornblith et al. Sec. 3). For many images
the Gram matrices are too large, so Nguyen et al. 2021 (and Raghu et al.) average the unbiased
HSIC estimator (Song et al. 2012, Eq. 5) over minibatches of k examples (`minibatch_cka`):

    HSIC_1(K, L) = [tr(K~ L~) + 1^T K~ 1 1^T L~ 1 / ((k-1)(k-2)) - 2/(k-2) 1^T K~ L~ 1] / (k (k-3))

with K~, L~ the Gram matrices with their diagonals set to 0.

Which representation of a layer is compared (`layer_representations`): "tokens" flattens all
its positions, the ViT's patch tokens (N D values; the class token left out) and the CNN's
feature map (h w C values); "pooled" averages them over positions (the ViT's patch tokens, the
CNN's map: global average pooling); "cls" takes the ViT's class token alone. A CNN has no
class token: with "cls" its layers are "pooled".

Shape legend: S examples, F features (F1, F2 of the two sides), k minibatch size, L layers,
B batch, N patches, D width, h, w, C a feature map's height, width, channels.
"""
import numpy as np

from .. import cnn, hybrid, layers, vit
from ..arrays import to_numpy
from ..configs import family


def gram(x):
    """The linear kernel's Gram matrix X X^T of S examples. x (S, F) -> (S, S), float64."""
    x = np.asarray(to_numpy(x), np.float64).reshape(len(x), -1)  # (S, F)
    return x @ x.T  # (S, S)


def centre_gram(k):
    """H K H with H = I - 1 1^T / S: rows and columns of K centred. (S, S) -> (S, S)."""
    k = k - k.mean(axis=0, keepdims=True)
    return k - k.mean(axis=1, keepdims=True)


def hsic(k, l):
    """Kornblith et al. Eq. 3, the biased HSIC: tr(K H L H) / (S - 1)^2. -> a float."""
    s = len(k)
    return float((centre_gram(k) * centre_gram(l)).sum()) / (s - 1) ** 2  # tr(A B), B symmetric


def linear_cka(x, y):
    """Kornblith et al. Eq. 4 with linear kernels: HSIC(K, L) / sqrt(HSIC(K, K) HSIC(L, L)).

    x (S, F1), y (S, F2) (more axes are flattened into features) -> a float in [0, 1].
    """
    if len(x) != len(y):
        raise ValueError(f"linear_cka: x and y must hold the same examples, found {len(x)} "
                         f"and {len(y)} rows")
    k, l = gram(x), gram(y)
    return hsic(k, l) / np.sqrt(hsic(k, k) * hsic(l, l))


def hsic_unbiased(k, l):
    """Song et al. 2012 Eq. 5 (Nguyen et al. 2021 Eq. 3), the unbiased HSIC estimator of one
    minibatch of k >= 4 examples. k, l (k, k) Gram matrices -> a float."""
    n = len(k)
    if n < 4:
        raise ValueError(f"hsic_unbiased: a minibatch needs at least 4 examples, found {n}")
    k = k * (1 - np.eye(n))  # (k, k) K~: diagonal zeroed
    l = l * (1 - np.eye(n))
    kl = k @ l  # (k, k)
    total = (np.trace(kl) + k.sum() * l.sum() / ((n - 1) * (n - 2))
             - 2.0 / (n - 2) * kl.sum())
    return float(total) / (n * (n - 3))


class MinibatchCKA:
    """CKA of every pair (layer i of A, layer j of B), accumulated over minibatches
    (Nguyen et al. 2021): CKA_ij = sum_b HSIC_1(K_i, L_j) / sqrt(sum_b HSIC_1(K_i, K_i)
    sum_b HSIC_1(L_j, L_j)), summed over minibatches b. `update` with each minibatch's
    representations; `result()` is the (L_A, L_B) matrix."""

    def __init__(self):
        self.cross, self.self_a, self.self_b = 0.0, 0.0, 0.0
        self.varies_a, self.varies_b = False, False  # does a layer differ between images?

    def update(self, reps_a, reps_b):
        """reps_a: L_A arrays (k, F_i), reps_b: L_B arrays (k, F_j) of the same k images."""
        ka, kb = [gram(r) for r in reps_a], [gram(r) for r in reps_b]
        self.cross = self.cross + np.array([[hsic_unbiased(a, b) for b in kb] for a in ka])
        self.self_a = self.self_a + np.array([hsic_unbiased(a, a) for a in ka])  # (L_A,)
        self.self_b = self.self_b + np.array([hsic_unbiased(b, b) for b in kb])  # (L_B,)
        self.varies_a = self.varies_a | np.array([varies(r) for r in reps_a])  # (L_A,)
        self.varies_b = self.varies_b | np.array([varies(r) for r in reps_b])  # (L_B,)

    def result(self):
        """The (L_A, L_B) CKA matrix. A layer whose representation is the same for every
        image (e.g. a class token before the first block) holds nothing about the images:
        its CKA with anything is 0 (not 0 / 0, or rounding noise)."""
        both = np.outer(self.varies_a, self.varies_b)  # (L_A, L_B)
        norm = np.sqrt(np.abs(np.outer(self.self_a, self.self_b)))  # (L_A, L_B)
        return np.where(both, self.cross / np.where(both, norm, 1.0), 0.0)


def varies(r):
    """True when the rows of a representation (k, F) are not all the same."""
    r = to_numpy(r).reshape(len(r), -1)
    return bool((r != r[:1]).any())


def minibatch_cka(reps_a, reps_b, batch_size=256):
    """`MinibatchCKA` over full representation lists split into minibatches of `batch_size`
    (a last, smaller one is dropped when it has fewer than 4 examples).
    reps_a: L_A arrays (S, F_i), reps_b: L_B arrays (S, F_j) -> (L_A, L_B)."""
    acc, s = MinibatchCKA(), len(reps_a[0])
    for i in range(0, s, batch_size):
        if min(s, i + batch_size) - i >= 4:
            acc.update([r[i:i + batch_size] for r in reps_a], [r[i:i + batch_size] for r in reps_b])
    return acc.result()


# ---------------------------------------------------------------------------------------------
# Every layer's representation, with the core's own blocks
# ---------------------------------------------------------------------------------------------


def vit_layers(params, images, cfg, tokens_of=None):
    """The ViT's token sequences: after the embedding (Eq. 1), after every block (Eq. 2-3),
    and after the final LayerNorm (what `vit.encode` returns): L + 2 arrays (B, T, D).

    The loop of `vit.transformer` with its own functions (`layers.block`), eval mode.
    `tokens_of(params, images, cfg)` gives the patches' inputs (default `vit.patch_inputs`:
    the flattened patches, or shifted patch tokens; the hybrid passes its CNN feature map).
    """
    x = (tokens_of or vit.patch_inputs)(params, images, cfg)  # (B, N, P*P*C)
    z = vit.embed_patches(params, x, cfg)  # (B, T, D)
    out = [z]
    for p in params["blocks"]:
        z = layers.block(p, z, cfg.heads, cfg.ln_eps)  # (B, T, D)
        out.append(z)
    out.append(layers.layer_norm(params["norm"], z, cfg.ln_eps))  # (B, T, D)
    return out


def cnn_layers(params, images, cfg):
    """The CNN's feature maps: after the stem and after every conv block (eval mode), the
    loop of `cnn.feature_map` with its own functions. -> 1 + stages * depth arrays
    (B, h, w, C); the last is `cnn.feature_map`'s output."""
    if cfg.whiten:
        x = cnn.act(cnn.whiten(params["stem"], images, cfg), cfg)  # (B, H, W, 8C)
    else:
        x = cnn.conv_block(params["stem"], images, cfg)  # (B, H, W, S)
    out = [x]
    for stage in params["stages"]:
        for i, p in enumerate(stage):
            x = cnn.conv_block(p, x, cfg, pool=i == 0)  # (B, h, w, W_i)
            out.append(x)
    return out


def cnn_layer_names(cfg):
    """"stem", then "s<stage>.<block>" for each conv block of a CNNConfig."""
    return ["stem"] + [f"s{s + 1}.{i + 1}" for s in range(len(cfg.widths))
                       for i in range(cfg.depth)]


def layer_names(cfg):
    """What each representation of `layer_representations` is, for axis labels: the CNN's
    "stem", "s1.1" (stage 1, block 1), ...; the ViT's "emb" (Eq. 1), "b1", ... (blocks), "LN"
    (final norm); the hybrid's backbone blocks "c1.1", ... then its Transformer's."""
    if family(cfg) == "cnn":
        return cnn_layer_names(cfg)
    names = ["emb"] + [f"b{i + 1}" for i in range(cfg.depth)] + ["LN"]
    if family(cfg) == "hybrid":
        names = ["c" + n[1:] for n in cnn_layer_names(cfg.backbone)[1:]] + names
    return names


def as_features(a, kind, cfg):
    """One layer's array as (B, F) features: `kind` "tokens" (every position, flattened),
    "pooled" (the mean over positions) or "cls" (the class token; a CNN map: pooled).
    a: ViT tokens (B, T, D) with cfg a ViT/hybrid config, or a CNN map (B, h, w, C)."""
    a = to_numpy(a)
    if a.ndim == 4:  # a CNN feature map (B, h, w, C)
        b, h, w, c = a.shape
        a = a.reshape(b, h * w, c)  # (B, h w, C) positions as tokens
        first = 0
    else:
        first = 1 if cfg.pool == "cls" else 0
        if kind == "cls":
            if not first:
                raise ValueError(f"{cfg.name} has no class token (pool = {cfg.pool!r}); "
                                 f"compare 'tokens' or 'pooled'")
            return a[:, 0]  # (B, D)
    patches = a[:, first:]  # (B, N, D)
    if kind == "tokens":
        return patches.reshape(len(a), -1)  # (B, N D)
    if kind in ("pooled", "cls"):
        return patches.mean(axis=1)  # (B, D)
    raise ValueError(f"representation kind: expected 'tokens', 'pooled' or 'cls', found {kind!r}")


def layer_representations(model, params, images, kind="tokens"):
    """Every layer's representation of normalised images (B, H, W, C) as (B, F) arrays, in
    the order of `layer_names(model.cfg)`. model: a `tinyvit.run.models.Model`."""
    cfg = model.cfg
    fam = family(cfg)
    if fam == "cnn":
        maps = cnn_layers(params, images, cfg)
    elif fam == "hybrid":
        maps = cnn_layers(params["backbone"], images, cfg.backbone)[1:]
        maps += vit_layers(params, images, cfg, hybrid.tokens)
    else:
        maps = vit_layers(params, images, cfg)
    return [as_features(m, kind, cfg) for m in maps]


def cka_matrices(extract, pairs, images, batch_size=250):
    """The minibatch CKA matrix of each pair of representations on the same images.

    extract: {name: f(images (k, H, W, C)) -> L arrays (k, F)} (e.g. a model's
    `layer_representations` of one kind); pairs: [(name_a, name_b), ...]. Each minibatch of
    `images` is run through every extractor once. -> {(name_a, name_b): (L_a, L_b)}.
    """
    acc = {pair: MinibatchCKA() for pair in pairs}
    for i in range(0, len(images) - 3, batch_size):  # the last minibatch needs >= 4 images
        batch = images[i:i + batch_size]
        reps = {name: extract[name](batch) for name in {n for pair in pairs for n in pair}}
        for (a, b), m in acc.items():
            m.update(reps[a], reps[b])
    return {pair: m.result() for pair, m in acc.items()}


def mean_off_diagonal(m):
    """The mean CKA between different layers of one network (a square matrix's entries off
    its diagonal): high when the layers are alike (Raghu et al.'s "uniform" ViT)."""
    m = np.asarray(m)
    return float(m[~np.eye(len(m), dtype=bool)].mean())
