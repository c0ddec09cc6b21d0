"""Which images a run sees: seeded class-balanced subsets, validation splits carved from
them, and (shuffled) batches.

Shape legend: N images in a data set, n in a subset, v in its validation split, B batch, K
classes.
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


def split_indices(y, fraction, seed):
    """(fit (n - v,), val (v,)) sorted indices of a seeded, stratified validation split of
    labels y: each class gives `fraction` of its images (rounded; the rounding remainders go
    to the classes with the largest fractional shares, ties to the first classes), so the split
    keeps the classes' proportions. The same seed gives the same split; the generator is its
    own (`[seed, 2]`), apart from `balanced_subset`'s."""
    if not 0 < fraction < 1:
        raise DataError(f"validation `fraction` {fraction}: expected a number in (0, 1)")
    labels, counts = np.unique(y, return_counts=True)
    share = fraction * counts  # (K,) images each class gives, before rounding
    quotas = np.floor(share).astype(int)  # (K,)
    left = int(round(fraction * len(y))) - quotas.sum()
    quotas[np.argsort(-(share - quotas), kind="stable")[:max(left, 0)]] += 1
    if quotas.sum() == 0 or np.any(quotas >= counts):
        raise DataError(f"validation split of {fraction:.0%} of {len(y)} images: expected "
                        f"every class to keep a training image and at least one image in the "
                        f"split, found {dict(zip(labels.tolist(), counts.tolist()))} per class")
    rng = np.random.default_rng([seed, 2])
    val = np.sort(np.concatenate([rng.permutation(np.flatnonzero(y == c))[:q]
                                  for c, q in zip(labels, quotas)]))  # (v,)
    return np.setdiff1d(np.arange(len(y)), val), val


def validation_split(x, y, fraction, seed):
    """((x_fit, y_fit), (x_val, y_val)): `split_indices`' stratified validation split of the
    images x (n, ...) with labels y (n,), both parts in the data's order."""
    fit, val = split_indices(y, fraction, seed)
    return (x[fit], y[fit]), (x[val], y[val])


def iterate_batches(rng, x, y, batch_size, shuffle=True, drop_last=False):
    """Yield (x (B, ...), y (B,)) batches, shuffled with `rng` when `shuffle`."""
    n = len(x)
    order = rng.permutation(n) if shuffle else np.arange(n)
    stop = n - n % batch_size if drop_last else n
    for i in range(0, stop, batch_size):
        idx = order[i:i + batch_size]  # (B,)
        yield x[idx], y[idx]
