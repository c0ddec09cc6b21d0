"""Which images a run sees: seeded class-balanced subsets, and (shuffled) batches.

Shape legend: N images in a data set, n in a subset, B batch, K classes.
"""
import numpy as np

from .errors import DataError


def class_quotas(counts, n):
    """How many images to take per class: n // K each, the remainder to the first classes;
    a class with too few images gives its share to the others (so the total is n)."""
    quotas = np.zeros_like(counts)
    while (left := n - quotas.sum()) > 0:
        open_ = np.flatnonzero(quotas < counts)  # classes with images to spare
        share = np.full(len(open_), left // len(open_))
        share[:left % len(open_)] += 1
        quotas[open_] = np.minimum(quotas[open_] + share, counts[open_])
    return quotas


def balanced_subset(x, y, n, seed):
    """A seeded, class-balanced subset of n images: (x (n, ...), y (n,)), in the data's order.

    Each class gets n // K images, the first n % K classes one more. The same seed gives the
    same subset, and a smaller n gives a subset of a larger one. n >= len(x) returns all.
    """
    if n >= len(x):
        return x, y
    labels, counts = np.unique(y, return_counts=True)
    if n < len(labels):
        raise DataError(f"training subset of {n} images (`train_size`) is smaller than the "
                        f"number of classes {len(labels)} (expected at least one image per "
                        f"class)")
    rng = np.random.default_rng(seed)
    quotas = class_quotas(counts, n)
    picks = [rng.permutation(np.flatnonzero(y == c))[:q] for c, q in zip(labels, quotas)]
    idx = np.sort(np.concatenate(picks))  # (n,)
    return x[idx], y[idx]


def iterate_batches(rng, x, y, batch_size, shuffle=True, drop_last=False):
    """Yield (x (B, ...), y (B,)) batches, shuffled with `rng` when `shuffle`."""
    n = len(x)
    order = rng.permutation(n) if shuffle else np.arange(n)
    stop = n - n % batch_size if drop_last else n
    for i in range(0, stop, batch_size):
        idx = order[i:i + batch_size]  # (B,)
        yield x[idx], y[idx]
