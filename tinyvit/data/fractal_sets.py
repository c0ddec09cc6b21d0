"""Formula-driven data sets: FractalDB-style categories and 1p-frac, streamed image by image.

    fs = fractal_set("fractal:1000x100")          # 1000 categories x 100 instances, coloured
    fs = fractal_set("1p-frac:1000x10,delta=0.1")  # 1000 perturbations of one fractal
    for x, y in batches(fs, epoch=0, batch_size=128):   # uint8 (B, S, S, 3), int64 (B,)
        ...
    ds = load_fractals("fractal:100x50")           # or held in memory, as `load_data` returns

* FractalDB (Kataoka et al., ACCV 2020): the categories are random IFS kept when they fill
  enough of the canvas (`search_categories`); an instance multiplies every parameter of its
  category by a weight drawn from U[1 - delta, 1 + delta] (default delta 0.1) and may be
  flipped left-right and/or upside down.
* 1p-frac (Nakamura et al., ECCV 2024, arXiv 2408.00677): ONE fractal (the first that passes the
  fill rule); class k multiplies its parameters by weights from U[1 - delta, 1 + delta]
  (delta = 0.1: small shape changes a model must learn to tell apart; 0.01 is too small to
  learn from). Its instances differ only by the chaos game's random path and the flips.

Every image is a pure function of (seed, category, instance): it is drawn from its own random
stream `np.random.default_rng([seed, IMAGE, category, instance])`, so a batch is the same
whatever else is in it. An epoch is a seeded permutation of all K x I images, so the batch
`index` of `epoch` is a function of (seed, epoch, index, batch_size): a resumed run sees the
same images, and a million images never sit on disk. Held-out test images are instances
I, I+1, ... of each category, never drawn in training.

Shape legend: K categories, I instances per category, B batch, S canvas side (32), M maps.
"""
import re
from typing import NamedTuple

import numpy as np

from . import fractals
from .errors import DataError

SEARCH, IMAGE, CLASS, ORDER = 0, 1, 2, 3  # separate random streams of one seed
KINDS = ("fractal", "1p-frac")
MAX_IN_MEMORY = 100_000  # `load_fractals` holds at most this many images (300 MB at 32x32x3)


class FractalSet(NamedTuple):
    """A formula-driven data set: its K categories' IFS and how their images are drawn."""

    spec: str  # the text it was made from ("fractal:1000x100"): stored with a run
    kind: str  # "fractal" (FractalDB-style) or "1p-frac"
    systems: np.ndarray  # (K, MAX_MAPS, 6) each category's IFS
    maps: np.ndarray  # (K,) maps per IFS
    instances: int  # I training images per category
    jitter: float  # instance weights ~ U[1 - jitter, 1 + jitter] (0: none, 1p-frac)
    colour: bool  # coloured, or grey in three equal channels
    seed: int
    size: int = 32


def candidates(seed, t, batch=256, size=32):
    """Batch t of the category search: `batch` random IFS from default_rng([seed, SEARCH, t])
    and the fraction of the S x S canvas each fills. -> (systems, maps, fill (batch,))."""
    rng = np.random.default_rng([seed, SEARCH, t])
    systems, maps = fractals.random_systems(rng, batch)  # (batch, MAX_MAPS, 6), (batch,)
    starts = rng.uniform(-1.0, 1.0, (batch, fractals.CHAINS, 2))
    picks = rng.random((batch, fractals.BURN_IN + fractals.STEPS, fractals.CHAINS))
    x, y, _ = fractals.chaos_game(systems, maps, starts, picks)
    return systems, maps, fractals.fill_rate(x, y, size)


def search_categories(n, seed, threshold=fractals.FILL_THRESHOLD, size=32, batch=256,
                      max_candidates=1_000_000):
    """The first n random IFS (`candidates` 0, 1, ... in order) that fill >= threshold of the
    S x S canvas: FractalDB's rule. The result depends only on (n, seed, threshold, size), and
    the categories of a smaller n are the first of a larger one.
    Returns (systems (n, MAX_MAPS, 6), maps (n,)).
    """
    found_s, found_m = [], []
    for t in range(-(-max_candidates // batch)):
        systems, maps, fill = candidates(seed, t, batch, size)
        found_s.append(systems[fill >= threshold])
        found_m.append(maps[fill >= threshold])
        if sum(map(len, found_m)) >= n:
            return np.concatenate(found_s)[:n], np.concatenate(found_m)[:n]
    raise DataError(f"fractal categories: only {sum(map(len, found_m))} of {max_candidates} "
                    f"random IFS fill >= {threshold} of the canvas, expected {n}")


def perturbed(systems, weights):
    """Each parameter times its weight: (..., M, 6) * (..., M, 6) (1p-frac's perturbation)."""
    return systems * weights


def one_fractal_classes(k, seed, delta, size=32):
    """1p-frac's K classes: one searched IFS, its parameters times U[1 - delta, 1 + delta]
    weights drawn per class from default_rng([seed, CLASS, class]). -> ((K, M, 6), (K,))."""
    base, maps = search_categories(1, seed, size=size)  # (1, MAX_MAPS, 6), (1,)
    weights = np.stack([np.random.default_rng([seed, CLASS, c]).uniform(
        1 - delta, 1 + delta, base.shape[1:]) for c in range(k)])  # (K, MAX_MAPS, 6)
    return perturbed(base, weights), np.repeat(maps, k)


def is_spec(text):
    """Whether a data source names a formula-driven set ("fractal:..." or "1p-frac:...")."""
    return str(text).strip().startswith(tuple(f"{kind}:" for kind in KINDS))


def parse_spec(spec):
    """"fractal:KxI[,grey][,seed=S][,delta=D]" or "1p-frac:KxI[,...]" -> dict of fields.

    One-line DataError naming the spec for anything else."""
    m = re.fullmatch(r"(fractal|1p-frac):(\d+)x(\d+)((?:,[a-z]+(?:=[0-9.]+)?)*)", spec.strip())
    usage = (f"expected fractal:KxI or 1p-frac:KxI (K categories, I images each), then any of "
             f",grey ,seed=S ,delta=D, e.g. fractal:1000x100,seed=1")
    if not m:
        raise DataError(f"data source {spec!r}: {usage}")
    kind, k, i = m.group(1), int(m.group(2)), int(m.group(3))
    fields = dict(kind=kind, categories=k, instances=i, colour=True, seed=0, delta=0.1)
    for option in filter(None, m.group(4).split(",")):
        name, _, value = option.partition("=")
        if name == "grey" and not value:
            fields["colour"] = False
        elif name == "seed" and value.isdigit():
            fields["seed"] = int(value)
        elif name == "delta" and re.fullmatch(r"\d*\.?\d+", value):
            fields["delta"] = float(value)
        else:
            raise DataError(f"data source {spec!r}: unknown option {option!r}; {usage}")
    lowest = 0 if kind == "fractal" else 1e-9  # 1p-frac's classes must differ
    if k < 1 or i < 1 or not lowest <= fields["delta"] < 1:
        raise DataError(f"data source {spec!r}: expected K, I >= 1 and delta in "
                        f"[{lowest:g}, 1) (an integer seed), found K={k}, I={i}, "
                        f"delta={fields['delta']:g}")
    return fields


def fractal_set(spec, size=32):
    """The FractalSet a spec names (`parse_spec`); the category search runs here (seconds)."""
    f = parse_spec(spec)
    if f["kind"] == "1p-frac":
        systems, maps = one_fractal_classes(f["categories"], f["seed"], f["delta"], size)
        jitter = 0.0
    else:
        systems, maps = search_categories(f["categories"], f["seed"], size=size)
        jitter = f["delta"]
    return FractalSet(spec.strip(), f["kind"], systems, maps, f["instances"], jitter,
                      f["colour"], f["seed"], size)


def image_randomness(fs, categories, instances):
    """What each image draws from its own stream default_rng([seed, IMAGE, c, i]): weights
    (B, M, 6), chain starts (B, Q, 2), map picks (B, burn-in + T, Q), colours (B, M, 3),
    flips (B, 2) bool."""
    m, q, steps = fractals.MAX_MAPS, fractals.CHAINS, fractals.BURN_IN + fractals.STEPS
    draws = []
    for c, i in zip(categories.tolist(), instances.tolist()):
        rng = np.random.default_rng([fs.seed, IMAGE, c, i])
        draws.append((rng.uniform(1 - fs.jitter, 1 + fs.jitter, (m, 6)),
                      rng.uniform(-1.0, 1.0, (q, 2)), rng.random((steps, q)),
                      rng.uniform(0.2, 1.0, (m, 3)), rng.random(2) < 0.5))
    return [np.stack(d) for d in zip(*draws)]


def render(fs, categories, instances):
    """Images of (category, instance) pairs: uint8 (B, S, S, 3). categories, instances (B,)."""
    categories, instances = np.asarray(categories), np.asarray(instances)
    weights, starts, picks, colours, flips = image_randomness(fs, categories, instances)
    systems = perturbed(fs.systems[categories], weights)  # (B, M, 6)
    px, py, made_by = fractals.chaos_game(systems, fs.maps[categories], starts, picks)
    x = fractals.rasterise(px, py, made_by, fs.size, colours if fs.colour else None)
    x = np.where(flips[:, 0, None, None, None], x[:, :, ::-1], x)  # left-right
    x = np.where(flips[:, 1, None, None, None], x[:, ::-1], x)  # upside down
    return np.broadcast_to(x, x.shape[:3] + (3,)).copy()  # (B, S, S, 3)


def epoch_order(fs, epoch):
    """The K x I training images in epoch `epoch`'s order, as (categories, instances) (K*I,)."""
    k = len(fs.systems)
    items = np.random.default_rng([fs.seed, ORDER, epoch]).permutation(k * fs.instances)
    return items // fs.instances, items % fs.instances


def batches(fs, epoch, batch_size, start=0, drop_last=False):
    """Yield the epoch's batches (uint8 (B, S, S, 3), int64 labels (B,)) from batch `start` on
    (a resumed run passes the batch it stopped at); the last one may be smaller, unless
    `drop_last` leaves it out (as a schedule of K*I // B steps an epoch does)."""
    cats, inst = epoch_order(fs, epoch)
    stop = len(cats) - len(cats) % batch_size if drop_last else len(cats)
    for s in range(start * batch_size, stop, batch_size):
        c = cats[s:s + batch_size]
        yield render(fs, c, inst[s:s + batch_size]), c.astype(np.int64)


def held_out(fs, per_category):
    """Held-out images: instances I .. I + per_category - 1 of every category, in category
    order. -> (uint8 (K * per_category, S, S, 3), int64 (K * per_category,))."""
    c = np.repeat(np.arange(len(fs.systems)), per_category)
    i = fs.instances + np.tile(np.arange(per_category), len(fs.systems))
    return np.concatenate([render(fs, c[s:s + 512], i[s:s + 512])
                           for s in range(0, len(c), 512)]), c.astype(np.int64)


def load_fractals(spec, test_per_category=None):
    """A FractalSet held in memory as `load_data` returns data sets: dict(train=(x, y),
    test=(x, y), classes). Training images in the order of epoch 0; the test split is
    `held_out` (default: a fifth of I per category, at least 1). At most MAX_IN_MEMORY images."""
    fs = fractal_set(spec)
    k, i = len(fs.systems), fs.instances
    t = test_per_category or max(1, i // 5)
    if k * (i + t) > MAX_IN_MEMORY:
        raise DataError(f"data source {spec!r}: {k * (i + t):,} images are more than "
                        f"{MAX_IN_MEMORY:,} to hold in memory; stream them "
                        f"(tinyvit.data.fractal_sets.batches)")
    xs, ys = zip(*batches(fs, 0, 512))
    width = len(str(k - 1))
    return dict(train=(np.concatenate(xs), np.concatenate(ys)), test=held_out(fs, t),
                classes=[f"{fs.kind}-{c:0{width}d}" for c in range(k)])
