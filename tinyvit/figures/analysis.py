"""The paper's analysis figures as small NumPy functions (Sec. 3.2, 4.1, 4.5; Appendix D).

    maps_and_readout, pool_weights         the attention maps, and which tokens the head reads
    attention_rollout, rollout_to_image    Fig. 6 / Appendix D.8  (what the classified
                                           representation draws on)
    mean_attention_distance                Fig. 7 right / D.7     ("receptive field" per head)
    position_embeddings,                   Fig. 7 centre          (2D position code: learned,
    position_similarity,                                          or the fixed sin-cos one)
    similarity_by_distance
    embedding_filters_pca, filter_views    Fig. 7 left            (patch-embedding filters;
                                                                  SPT: five views per filter)
    interpolate_pos_embed, resize_vit      Sec. 3.2               (fine-tuning at higher res.)
    probe_features, linear_probe,          Sec. 4.1               (few-shot linear evaluation)
    few_shot_accuracy

Every analysis takes any ViT the library builds: a class token, global average pooling or
sequence pooling ("readout": which tokens the head reads, and with what weights), learned or
fixed sin-cos positions, shifted patch tokens (SPT) and locality self-attention (LSA: the maps
are the weights LSA really uses, diagonal masked).

No gradients are needed here, so this is plain `numpy` (inputs on a GPU are copied to the host).
Drawing the figures is `tinyvit/figures/pictures.py`'s job.

Shape legend: B batch, L layers, H heads, T tokens (N patches, +1 with the class token),
N patches, g grid (patches per side, N = g^2), D width, P patch size, C channels,
F feature width, K classes, S examples.
"""
import numpy as np

from .. import layers, vit
from ..arrays import to_numpy
from ..configs import replace
from ..data import normalize


def stack_maps(maps):
    """The list of L attention arrays (B, H, T, T) from `vit.attention_maps` -> (L, B, H, T, T)."""
    a = np.stack([to_numpy(m) for m in maps])  # (L, B, H, T, T)
    if a.ndim != 5 or a.shape[-1] != a.shape[-2]:
        raise ValueError(f"attention maps: expected L arrays (B, H, T, T), found {a.shape[1:]}")
    return a


# ---------------------------------------------------------------------------------------------
# The readout: which of the final tokens the head's input y (Eq. 4) is made of
# ---------------------------------------------------------------------------------------------

READOUT = {"cls": "class token", "gap": "mean of all tokens (GAP)",
           "seq": "tokens weighted by sequence pooling"}  # what y is, per cfg.pool


def pool_weights(params, z, cfg):
    """The weights w (B, T) with which the head's input is a mean of the final tokens,
    y = sum_t w_t z_L^t (Eq. 4 and its variants): the class token one-hot (pool "cls"), 1/T
    each (global average pooling, "gap"), or SeqPool's softmax(z_L g) ("seq",
    `layers.seq_pool_weights`). z (B, T, D) the encoder's output -> (B, T), rows sum to 1."""
    z = to_numpy(z)
    b, t, _ = z.shape
    if cfg.pool == "seq":
        return to_numpy(layers.seq_pool_weights(params["seqpool"], z))  # (B, T)
    if cfg.pool == "cls":
        return np.broadcast_to(np.eye(t)[0], (b, t)).astype(z.dtype)  # (B, T) one-hot
    return np.full((b, t), 1.0 / t, z.dtype)  # (B, T) uniform


def maps_and_readout(params, images, cfg):
    """One forward pass: logits (B, K), the attention weights every block really used
    (`vit.attention_maps`'s list of L arrays (B, H, T, T); LSA's with its temperature and its
    masked diagonal) and the readout weights `pool_weights` (B, T). images normalised."""
    maps = []
    z = vit.encode(params, images, cfg, weights_out=maps)  # (B, T, D)
    logits = layers.linear(params["head"], vit.pool(z, cfg, params))  # (B, K)
    return to_numpy(logits), [to_numpy(m) for m in maps], pool_weights(params, z, cfg)


# ---------------------------------------------------------------------------------------------
# Attention rollout (Abnar & Zuidema 2020): Fig. 6 and Appendix D.8
# ---------------------------------------------------------------------------------------------


def attention_rollout(maps, residual=True):
    """How much each output token draws on each input token, through all L layers.

    Per layer: average the heads, A = mean_h A_h; with `residual`, account for the skip
    connection z + MSA(z) by adding the identity and renormalising the rows,
    A <- (A + I) / rowsum. Then multiply through the layers: R = A_L ... A_2 A_1.
    maps: L arrays (B, H, T, T) -> R (B, T, T), rows sum to 1.
    """
    a = stack_maps(maps).mean(axis=2)  # (L, B, T, T) heads averaged
    if residual:
        a = a + np.eye(a.shape[-1])  # (L, B, T, T)
        a = a / a.sum(-1, keepdims=True)  # rows sum to 1 again
    rollout = a[0]  # (B, T, T)
    for layer in a[1:]:  # R_l = A_l R_{l-1}
        rollout = layer @ rollout  # (B, T, T)
    return rollout


def rollout_to_image(rollout, cfg, weights=None):
    """The rollout (or one layer's attention) seen from the head, as a (B, g, g) map over the
    image patches (Fig. 6 masks the image with it): w^T R, the rows of R mixed by the
    readout weights w (`pool_weights`) with which the head's input averages the tokens, the
    class token's column (if any) left out.

    With a class token that is its row R[:, 0, 1:] (the paper's Fig. 6); with "gap" pooling
    the mean over query rows; with sequence pooling the rows weighted by SeqPool's softmax,
    which depends on the image: pass `weights` (B, T) from `maps_and_readout`.
    rollout (B, T, T) -> (B, g, g); for "cls" and "gap" each map sums to at most 1.
    """
    r = to_numpy(rollout)
    if r.ndim != 3 or r.shape[1:] != (cfg.num_tokens, cfg.num_tokens):
        raise ValueError(f"rollout: expected (B, {cfg.num_tokens}, {cfg.num_tokens}) for "
                         f"{cfg.name}, found {r.shape}")
    if weights is None:
        if cfg.pool == "seq":
            raise ValueError(f"rollout_to_image: {cfg.name} pools by sequence pooling, whose "
                             f"weights depend on the image: pass weights= (B, {cfg.num_tokens}) "
                             f"from analysis.maps_and_readout")
        weights = pool_weights(None, np.zeros((len(r), cfg.num_tokens, 1)), cfg)  # (B, T)
    w = to_numpy(weights)
    if w.shape != r.shape[:2]:
        raise ValueError(f"rollout_to_image: expected weights {r.shape[:2]}, found {w.shape}")
    first = 1 if cfg.pool == "cls" else 0
    row = np.einsum("bt,bts->bs", w, r)[:, first:]  # (B, N) patches only
    return row.reshape(-1, cfg.grid, cfg.grid)  # (B, g, g)


# ---------------------------------------------------------------------------------------------
# Mean attention distance: Fig. 7 right and Appendix D.7
# ---------------------------------------------------------------------------------------------


def patch_centres(cfg):
    """Pixel coordinates (row, col) of the centre of every patch, row-major. -> (N, 2)."""
    idx = np.arange(cfg.grid) * cfg.patch_size + cfg.patch_size / 2  # (g,)
    rows, cols = np.meshgrid(idx, idx, indexing="ij")  # (g, g) each
    return np.stack([rows.ravel(), cols.ravel()], axis=1)  # (N, 2)


def patch_distances(cfg):
    """Euclidean pixel distance between every pair of patch centres. -> (N, N)."""
    c = patch_centres(cfg)  # (N, 2)
    return np.linalg.norm(c[:, None, :] - c[None, :, :], axis=-1)  # (N, N)


def mean_attention_distance(maps, cfg, renormalize=True):
    """Fig. 7 right: each head's attention-weighted distance, in pixels, from query to keys.

    For every query patch: sum_k A[q, k] * dist(q, k) over the key patches; then the mean over
    query patches and images. The class token has no position, so it is left out as a query,
    and as a key its weight is dropped; with `renormalize` the remaining weights are rescaled
    to sum to 1 (distance "among the patches attended to"); without, the class token's share
    counts as distance 0 (as some public re-implementations do). Like the receptive field of a
    CNN layer: small = local head, large = global head.
    maps: L arrays (B, H, T, T) -> (L, H) pixels.
    """
    a = stack_maps(maps)  # (L, B, H, T, T)
    if a.shape[-1] != cfg.num_tokens:
        raise ValueError(f"attention maps: expected {cfg.num_tokens} tokens for {cfg.name}, "
                         f"found {a.shape[-1]}")
    first = 1 if cfg.pool == "cls" else 0
    a = a[..., first:, first:]  # (L, B, H, N, N) patches only
    if renormalize:
        a = a / a.sum(-1, keepdims=True)  # (L, B, H, N, N) rows sum to 1
    per_query = (a * patch_distances(cfg)).sum(-1)  # (L, B, H, N)
    return per_query.mean(axis=(1, 3))  # (L, H)


def uniform_attention_distance(cfg):
    """The mean attention distance of a head that attends to every key patch alike: the mean
    distance between patch centres; with LSA (cfg.lsa) a token never attends to itself, so
    the mean over the other patches (pairs at distance 0 left out). -> pixels."""
    d = patch_distances(cfg)  # (N, N)
    n = len(d)
    return float(d.sum() / (n * (n - 1))) if cfg.lsa else float(d.mean())


# ---------------------------------------------------------------------------------------------
# Position-embedding similarity: Fig. 7 centre
# ---------------------------------------------------------------------------------------------


def position_embeddings(params, cfg):
    """E_pos (1, T, D) as numpy: the learned params["pos"], or, for pos "sincos", the fixed
    2-D sin-cos embeddings the model adds (`vit.position_embedding`; not learned, the same
    before and after training; the class token's row, if any, zero)."""
    if cfg.pos == "learned":
        return to_numpy(params["pos"])
    return to_numpy(vit.position_embedding(params, cfg, to_numpy(params["embed"]["w"])))


def position_similarity(pos, cfg):
    """Fig. 7 centre: cosine similarity of each patch's position embedding with every other.

    pos (1, T, D) (`position_embeddings`; the class token's position, if any, is dropped)
    -> (g, g, g, g), where [i, j] is the (g, g) map of patch (row i, col j)'s similarity to
    all patches.
    """
    e = to_numpy(pos)[0, 1:] if cfg.pool == "cls" else to_numpy(pos)[0]  # (N, D)
    if e.shape[0] != cfg.num_patches:
        raise ValueError(f"position embedding: expected {cfg.num_tokens} tokens for "
                         f"{cfg.name}, found {to_numpy(pos).shape}")
    e = e / np.linalg.norm(e, axis=1, keepdims=True)  # (N, D) unit rows
    g = cfg.grid
    return (e @ e.T).reshape(g, g, g, g)  # (N, N) -> (g, g, g, g)


def similarity_by_distance(sim, min_pairs=50):
    """The similarity grid condensed: mean similarity of all patch pairs at each distance.

    Distances are Euclidean, in patches, rounded to whole patches; a patch with itself
    (distance 0) is left out, and so are distances with fewer than `min_pairs` ordered pairs
    (the farthest bins of a small grid hold a handful of corner-to-corner pairs, whose mean
    is noise). sim (g, g, g, g) -> (distances (m,), mean similarity (m,), pairs (m,)).
    """
    s = to_numpy(sim)
    g = s.shape[0]
    cells = np.stack(np.meshgrid(np.arange(g), np.arange(g), indexing="ij"), -1).reshape(-1, 2)
    dist = np.linalg.norm(cells[:, None] - cells[None], axis=-1).round().ravel()  # (N*N,)
    flat = s.reshape(g * g, g * g).ravel()  # (N*N,)
    d, counts = np.unique(dist, return_counts=True)
    keep = (d > 0) & (counts >= min_pairs)
    d, counts = d[keep], counts[keep]
    return d, np.array([flat[dist == x].mean() for x in d]), counts


# ---------------------------------------------------------------------------------------------
# Principal components of the patch-embedding filters: Fig. 7 left
# ---------------------------------------------------------------------------------------------


def embedding_filters(params, cfg):
    """The filters the patch meets: E = params["embed"]["w"] (P*P*C', D). With shifted patch
    tokens E reads SPT's LayerNorm of the five views, LN(x) = x_hat * g + b (x_hat
    standardised), so the filters acting on x_hat are diag(g) E (b only adds a constant)."""
    w = to_numpy(params["embed"]["w"])  # (P*P*C', D)
    if cfg.spt:
        return to_numpy(params["spt_norm"]["g"])[:, None] * w  # (5*P*P*C, D)
    return w


def embedding_filters_pca(w_embed, cfg, k=28):
    """Fig. 7 left: the top-k principal components of the linear embedding's D filters.

    E = params["embed"]["w"] is (P*P*C', D); column d is filter d, one weight per pixel and
    channel of a patch. C' = C, or 5C with shifted patch tokens (cfg.spt): E then reads the
    patch and its four shifted copies, side by side on the channel axis (`vit.shifted_copies`,
    after SPT's LayerNorm), and `filter_views` splits a component into the five.
    PCA over the D filters: centre them, take the SVD, keep the top-k right-singular vectors
    (unit length, orthogonal; sign fixed so the largest entry is positive) reshaped as
    patches. Returns (components (k, P, P, C'), explained variance ratio (k,), sorted
    descending). k is capped at min(D, P*P*C'). w_embed: E or `embedding_filters`.
    """
    w = to_numpy(w_embed)
    if w.shape != (cfg.embed_in, cfg.width):
        raise ValueError(f"embedding weights: expected ({cfg.embed_in}, {cfg.width}) for "
                         f"{cfg.name}, found {w.shape}")
    filters = w.T - w.T.mean(axis=0)  # (D, P*P*C) centred filters
    _, s, vt = np.linalg.svd(filters, full_matrices=False)  # vt (r, P*P*C), r = min(D, PPC)
    k = min(k, vt.shape[0])
    comps = vt[:k]  # (k, P*P*C)
    peak = comps[np.arange(k), np.abs(comps).argmax(axis=1)]  # (k,)
    comps = comps * np.where(peak < 0, -1.0, 1.0)[:, None]  # (k, P*P*C) deterministic sign
    ratio = s**2 / (s**2).sum()  # (r,)
    p = cfg.patch_size
    return comps.reshape(k, p, p, cfg.embed_in // (p * p)), ratio[:k]  # (k, P, P, C'), (k,)


def filter_views(filters, cfg):
    """Filters (k, P, P, C') over SPT's input split into the views E reads: (k, V, P, P, C),
    V = 5 with shifted patch tokens (the patch itself, then `vit.SPT_SHIFTS`' four diagonal
    shifts by half a patch), else V = 1. Names of the views: `view_names(cfg)`."""
    f = to_numpy(filters)
    k, p, _, c5 = f.shape
    v = 5 if cfg.spt else 1
    return f.reshape(k, p, p, v, c5 // v).transpose(0, 3, 1, 2, 4)  # (k, V, P, P, C)


def view_names(cfg):
    """What each view of `filter_views` holds: "patch", then for SPT the pixel each shifted
    copy puts at a position, e.g. "x[r-2, c-2]" (read 2 px up and 2 px left)."""
    s = cfg.patch_size // 2
    return ["patch"] + ([f"x[r{dy * s:+d}, c{dx * s:+d}]" for dy, dx in vit.SPT_SHIFTS]
                        if cfg.spt else [])


# ---------------------------------------------------------------------------------------------
# Position embeddings at a new resolution: Sec. 3.2
# ---------------------------------------------------------------------------------------------


def bilinear_matrix(old, new):
    """The (new, old) matrix of 1-D linear interpolation, align_corners=False.

    Output sample i sits at input coordinate x = (i + 0.5) * old / new - 0.5 (pixel centres
    aligned, as torch `F.interpolate(..., align_corners=False)`), clamped to [0, old - 1];
    it mixes its two neighbours floor(x) and floor(x) + 1 by the fractional part.
    """
    x = (np.arange(new) + 0.5) * (old / new) - 0.5  # (new,)
    x = np.clip(x, 0, old - 1)  # (new,)
    lo = np.floor(x).astype(int)  # (new,)
    hi = np.minimum(lo + 1, old - 1)  # (new,)
    frac = x - lo  # (new,)
    cols = np.arange(old)  # (old,)
    return ((1 - frac)[:, None] * (cols == lo[:, None])
            + frac[:, None] * (cols == hi[:, None]))  # (new, old)


def interpolate_pos_embed(pos, old_grid, new_grid, has_cls):
    """Sec. 3.2: 2D bilinear interpolation of the patch position embeddings to a new grid.

    The N = old_grid^2 patch embeddings are laid out as the (g, g, D) image they index and
    resampled separably (rows, then columns) with align_corners=False; the class token's
    embedding (when `has_cls`) is passed through. pos (1, T_old, D) -> (1, T_new, D), same dtype.
    """
    pos = to_numpy(pos)
    first = 1 if has_cls else 0
    if pos.ndim != 3 or pos.shape[0] != 1 or pos.shape[1] != old_grid**2 + first:
        raise ValueError(f"position embedding: expected (1, {old_grid**2 + first}, D) for a "
                         f"{old_grid}x{old_grid} grid, found {pos.shape}")
    d = pos.shape[-1]
    grid = pos[0, first:].reshape(old_grid, old_grid, d)  # (g_old, g_old, D)
    m = bilinear_matrix(old_grid, new_grid)  # (g_new, g_old)
    grid = np.einsum("ij,jkd,lk->ild", m, grid, m)  # (g_new, g_new, D) rows then cols
    patches = grid.reshape(1, new_grid**2, d)  # (1, N_new, D)
    return np.concatenate([pos[:, :first], patches], axis=1).astype(pos.dtype)  # (1, T_new, D)


def resize_vit(params, cfg, image_size):
    """Sec. 3.2: the same model at a new image size (same patch size, so a bigger grid).

    Only the position embeddings depend on the number of patches: learned ones are
    interpolated; fixed sin-cos ones (pos "sincos") are a formula of each patch's (row, col)
    on the new grid, so nothing changes in the parameters (the old grid's codes reappear in
    its top-left corner, the new rows and columns get codes never seen in training).
    Returns (params, new_cfg); the arrays are shared with the input, not copied.
    """
    new_cfg = replace(cfg, image_size=image_size)  # validates patch | image_size
    if cfg.pos == "sincos":
        return dict(params), new_cfg
    pos = interpolate_pos_embed(params["pos"], cfg.grid, new_cfg.grid, cfg.pool == "cls")
    return {**params, "pos": pos}, new_cfg  # pos (1, T_new, D)


# ---------------------------------------------------------------------------------------------
# Few-shot linear probe: Sec. 4.1 (closed-form regularised least squares)
# ---------------------------------------------------------------------------------------------


def probe_features(params, images, cfg, mean, std, batch=500):
    """The frozen features a probe reads: the y of Eq. 4 that the model's head reads
    (`vit.features`: its own pooling, sequence pooling with its weights included), for uint8
    images (S, H, W, C) normalised with the training `mean` and `std`, batch by batch.
    -> (S, D) numpy."""
    return np.concatenate([to_numpy(vit.features(params, normalize(images[i:i + batch], mean,
                                                                   std), cfg))
                           for i in range(0, len(images), batch)])  # (S, D)


def linear_probe(features, labels, k=None, l2=1.0):
    """Sec. 4.1: fit a linear classifier in closed form to {-1, 1}^K targets.

    As the official few-shot evaluator: standardise each feature (train mean / std), targets
    2 * onehot - 1, ridge regression W = (X^T X + l2 I)^-1 X^T Y with an unregularised bias
    (the dual X^T (X X^T + l2 I)^-1 Y when there are fewer examples than features: the same
    W). The standardisation is folded into the returned weights, so
    `predict = features @ w + b`. features (S, F), labels (S,) ints -> w (F, K), b (K,).
    """
    x, y = to_numpy(features).astype(np.float64), to_numpy(labels).astype(int)
    if x.ndim != 2 or y.shape != (x.shape[0],):
        raise ValueError(f"linear_probe: expected features (S, F) and labels (S,), found "
                         f"{x.shape} and {y.shape}")
    if l2 <= 0:
        raise ValueError(f"linear_probe: expected l2 > 0, found {l2}")
    k = int(y.max()) + 1 if k is None else k
    mean, std = x.mean(axis=0), x.std(axis=0) + 1e-5  # (F,), (F,)
    x = (x - mean) / std  # (S, F) standardised, centred
    t = 2.0 * (y[:, None] == np.arange(k)) - 1.0  # (S, K) targets in {-1, 1}
    bias = t.mean(axis=0)  # (K,) exact intercept, since x is centred
    t = t - bias  # (S, K)
    s, f = x.shape
    if s >= f:
        w = np.linalg.solve(x.T @ x + l2 * np.eye(f), x.T @ t)  # (F, K) primal
    else:
        w = x.T @ np.linalg.solve(x @ x.T + l2 * np.eye(s), t)  # (F, K) dual
    w = w / std[:, None]  # (F, K) acts on raw features
    return w, bias - mean @ w  # (F, K), (K,)


def probe_predict(w, b, features):
    """Class predictions of a linear probe. features (S, F) -> (S,) ints."""
    return (to_numpy(features) @ w + b).argmax(axis=1)  # (S, K) -> (S,)


def probe_accuracy(w, b, features, labels):
    """Fraction of `features` whose predicted class equals `labels`."""
    return float((probe_predict(w, b, features) == to_numpy(labels)).mean())


def sample_shots(labels, shots, seed=0):
    """Indices of `shots` examples of every class, drawn without replacement (seeded).

    labels (S,) ints -> (K * shots,) indices, grouped by class. One-line ValueError when a
    class has fewer than `shots` examples.
    """
    labels = to_numpy(labels)
    rng = np.random.default_rng(seed)
    picks = []
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)  # (S_c,)
        if len(members) < shots:
            raise ValueError(f"few-shot: class {c} has {len(members)} examples, "
                             f"expected at least {shots}")
        picks.append(rng.choice(members, shots, replace=False))  # (shots,)
    return np.concatenate(picks)  # (K * shots,)


def few_shot_accuracy(features, labels, shots, seed=0, test_features=None, test_labels=None,
                      l2=1.0):
    """Sec. 4.1 few-shot accuracy: a linear probe on `shots` examples per class.

    The probe is fitted on a seeded, class-balanced sample of (features, labels) and scored on
    (test_features, test_labels) when given, else on the examples not sampled.
    """
    labels = to_numpy(labels)
    features = to_numpy(features)
    train = sample_shots(labels, shots, seed)  # (K * shots,)
    if test_features is None:
        rest = np.setdiff1d(np.arange(len(labels)), train)  # (S - K * shots,)
        test_features, test_labels = features[rest], labels[rest]
    w, b = linear_probe(features[train], labels[train], int(labels.max()) + 1, l2)
    return probe_accuracy(w, b, test_features, test_labels)
