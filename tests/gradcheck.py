"""Centred finite-difference gradient checks, CS231n style.

rel_error(a, n) = ||a - n|| / (||a|| + ||n||) over the checked entries of one array
(norm-wise, so entries whose true gradient is ~0 cannot blow it up).
With float64 and h = 1e-6 a correct gradient of a smooth function gives ~1e-9;
a wrong one gives ~1e-1. Tests assert below a stated bound (usually 1e-7).
"""
import numpy as np


def leaves(tree, prefix=""):
    """(path, array) pairs of a nested dict/list tree."""
    if isinstance(tree, dict):
        for k, v in tree.items():
            yield from leaves(v, f"{prefix}/{k}")
    elif isinstance(tree, (list, tuple)):
        for i, v in enumerate(tree):
            yield from leaves(v, f"{prefix}/{i}")
    else:
        yield prefix, tree


def numerical_grad(f, x, idx, h=1e-6):
    """(f(x + h e_i) - f(x - h e_i)) / 2h for the flat indices `idx` of array x (in place)."""
    flat = x.reshape(-1)
    out = []
    for i in idx:
        old = flat[i]
        flat[i] = old + h
        fp = f()
        flat[i] = old - h
        fm = f()
        flat[i] = old
        out.append((fp - fm) / (2 * h))
    return np.array(out)


def rel_error(a, n):
    """Norm-wise relative error between analytic `a` and numerical `n` gradients."""
    a, n = np.asarray(a, np.float64).ravel(), np.asarray(n, np.float64).ravel()
    return float(np.linalg.norm(a - n) / max(np.linalg.norm(a) + np.linalg.norm(n), 1e-30))


def randomize(tree, rng, scale=0.5):
    """A float64 copy of `tree` with every leaf redrawn ~ N(0, scale^2) (no zero inits)."""
    if isinstance(tree, dict):
        return {k: randomize(v, rng, scale) for k, v in tree.items()}
    if isinstance(tree, (list, tuple)):
        return [randomize(v, rng, scale) for v in tree]
    return scale * rng.standard_normal(np.shape(tree))


def check_tree(f, params, grads, max_entries=20, h=1e-6, seed=0):
    """Worst relative error over every leaf of `params` (up to `max_entries` per leaf).

    f() evaluates the scalar loss at the current (mutated in place) params.
    Returns {path: rel_error}.
    """
    rng = np.random.default_rng(seed)
    errors = {}
    for (path, x), (_, g) in zip(leaves(params), leaves(grads)):
        size = x.size
        idx = np.arange(size) if size <= max_entries else rng.choice(size, max_entries, False)
        num = numerical_grad(f, x, idx, h)
        errors[path] = rel_error(np.asarray(g).reshape(-1)[idx], num)
    return errors
