"""Images made by formula: fractals of iterated function systems (IFS), rendered by the chaos game.

Formula-driven supervised pre-training (FractalDB, Kataoka et al., ACCV 2020) labels each image
by the formula that drew it. A category is an IFS: M affine maps (M = 2..7)

    w_i(x, y) = (a_i x + b_i y + e_i,  c_i x + d_i y + f_i),     a_i .. f_i ~ U[-1, 1],

with map i chosen with probability p_i = |a_i d_i - b_i c_i| / sum_j |a_j d_j - b_j c_j|.
The chaos game draws its attractor: from a start point, apply a randomly chosen map again and
again; after a burn-in the points lie on the fractal. They are scaled to the canvas by their
bounding box, and the canvas is kept as a category only if the fractal fills enough of it
(FractalDB's fill-rate rule: >= 20% of the pixels of a large canvas; `FILL_THRESHOLD` for 32x32).

Here every image of a batch and every point of an image advance together (one loop over
chaos-game iterations, none over points or images): `chaos_game`. `rasterise` turns the points
into uint8 images, grey (log hit density) or coloured (each map paints its own colour).

Shape legend: B images (IFS), M maps per IFS (padded to MAX_MAPS with probability 0),
Q chains (points advanced side by side per image), T recorded iterations, S canvas side,
C channels (1 grey, 3 colour). A system is (M, 6): the rows (a, b, c, d, e, f) of its maps.
"""
import numpy as np

MIN_MAPS, MAX_MAPS = 2, 7  # FractalDB: 2 to 7 affine maps per category
# Fraction of 32x32 pixels a category must light. FractalDB's 0.2 is for a large canvas; a shape
# of box-counting dimension D lights about S^(D - 2) of an S x S canvas, so more of a coarse one.
# 0.4 is the 32x32 threshold that best reproduces "fill >= 0.2 at 256x256" on random IFS
# (benchmarks/fill_threshold.py: on 400 IFS it keeps 11.5% against 12.2%, agreeing on 93.8%).
FILL_THRESHOLD = 0.4
CHAINS, STEPS, BURN_IN = 128, 32, 16  # Q chains x T recorded steps = 4096 points per image


def random_systems(rng, n):
    """n random IFS: (systems (n, MAX_MAPS, 6), maps (n,)). Map count M ~ U{2..7}, a..f ~
    U[-1, 1]; rows past an IFS's M maps are zero (and get probability 0)."""
    maps = rng.integers(MIN_MAPS, MAX_MAPS + 1, n)  # (n,)
    systems = rng.uniform(-1.0, 1.0, (n, MAX_MAPS, 6))  # (n, MAX_MAPS, 6)
    used = np.arange(MAX_MAPS)[None, :] < maps[:, None]  # (n, MAX_MAPS)
    return systems * used[..., None], maps


def map_probabilities(systems):
    """p_i = |a_i d_i - b_i c_i| / sum_j |a_j d_j - b_j c_j| (FractalDB). (B, M, 6) -> (B, M)."""
    a, b, c, d = (systems[..., i] for i in range(4))  # (B, M) each
    det = np.abs(a * d - b * c)
    return det / np.maximum(det.sum(-1, keepdims=True), 1e-300)  # (B, M)


def map_index(probs, maps, u):
    """The map each uniform u in [0, 1) picks: the first i with u < p_0 + ... + p_i.
    probs (B, M), maps (B,), u (B, n) -> int (B, n). The last real map ends at 2 (> any u), so
    rounding in the cumulative sum can never pick a padded map."""
    edges = np.cumsum(probs, -1)  # (B, M)
    edges = np.where(np.arange(probs.shape[1])[None] >= maps[:, None] - 1, 2.0, edges)
    k = np.zeros(u.shape, np.int64)  # (B, n)
    for i in range(probs.shape[1] - 1):
        k += u >= edges[:, i, None]  # one more for every edge at or below u
    return k


def chaos_game(systems, maps, starts, picks, burn_in=BURN_IN):
    """The chaos game for B systems at once, Q chains each.

    systems (B, M, 6), maps (B,), starts (B, Q, 2) start points, picks (B, burn_in + T, Q)
    uniforms in [0, 1) choosing each step's map. Returns the recorded points x, y (B, T, Q)
    each and the map that made each point (B, T, Q) int.
    Step t: k = map_index(u_t); (x, y) <- (a_k x + b_k y + e_k, c_k x + d_k y + f_k).
    """
    b, steps, q = picks.shape
    m = systems.shape[1]
    k = map_index(map_probabilities(systems), maps, picks.reshape(b, steps * q))  # (B, steps*Q)
    k = k.reshape(b, steps, q)  # every step's maps, chosen up front
    rows = np.arange(b)[None, :, None] * m + k.transpose(1, 0, 2)  # (steps, B, Q) into B*M maps
    a, bb, c, d, e, f = np.take(systems.reshape(b * m, 6).T, rows, axis=1)  # (steps, B, Q) each
    x, y = starts[..., 0], starts[..., 1]  # (B, Q) each
    xs, ys = [], []
    for t in range(steps):
        x, y = a[t] * x + bb[t] * y + e[t], c[t] * x + d[t] * y + f[t]
        if t >= burn_in:
            xs.append(x)
            ys.append(y)
    return np.stack(xs, 1), np.stack(ys, 1), k[:, burn_in:]  # (B, T, Q) each


def pixel_index(x, y, size):
    """Each point's pixel on an S x S canvas spanned by its image's bounding box (each axis
    scaled on its own), as a flat index b*S*S + row*S + col. x, y (B, T, Q) -> (B, T*Q) int."""
    b = len(x)

    def cell(v):  # (B, T*Q) in 0 .. S-1
        v = v.reshape(b, -1)
        lo, hi = v.min(1, keepdims=True), v.max(1, keepdims=True)  # (B, 1)
        with np.errstate(invalid="ignore"):  # a diverged IFS (inf) lands on an edge
            return np.clip(((v - lo) * (size / np.maximum(hi - lo, 1e-12))).astype(np.int64),
                           0, size - 1)

    return np.arange(b)[:, None] * size * size + cell(y) * size + cell(x)  # (B, T*Q)


def hit_counts(x, y, size):
    """Points per pixel. x, y (B, T, Q) -> (B, S, S) int."""
    b = len(x)
    counts = np.bincount(pixel_index(x, y, size).ravel(), minlength=b * size * size)
    return counts.reshape(b, size, size)


def fill_rate(x, y, size):
    """The fraction of the S x S canvas the fractal covers (pixels hit at least once). -> (B,)."""
    return (hit_counts(x, y, size) > 0).mean((1, 2))


def rasterise(x, y, made_by, size, colours=None):
    """uint8 images (B, S, S, C) of points x, y (B, T, Q): brightness log(1 + hits) /
    log(1 + most hits) per image; grey (C = 1) without `colours`, else each pixel the mean
    colour of the maps that hit it (colours (B, M, 3) in [0, 1], C = 3). Background black."""
    b, m = len(x), 1 if colours is None else colours.shape[1]
    idx = pixel_index(x, y, size) * m  # (B, T*Q) one bin per pixel and map
    if colours is not None:
        idx = idx + made_by.reshape(b, -1)
    hits = np.bincount(idx.ravel(), minlength=b * size * size * m)
    hits = hits.reshape(b, size * size, m).astype(np.float64)  # (B, S*S, M) per pixel and map
    counts = hits.sum(-1)  # (B, S*S)
    level = np.log1p(counts) / np.log1p(counts.max(1, keepdims=True)).clip(1e-12)  # (B, S*S)
    if colours is None:
        tone = level[..., None]  # (B, S*S, 1)
    else:
        mean = (hits @ colours) / np.maximum(counts, 1)[..., None]  # (B, S*S, 3)
        tone = level[..., None] * mean
    return np.round(255 * tone).astype(np.uint8).reshape(b, size, size, -1)  # (B, S, S, C)
