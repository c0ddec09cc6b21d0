"""Gradients checked by centred finite differences, in float64, along random directions.

For each array x (a leaf of the differentiated arguments) and a random unit direction v,
the analytic directional derivative <grad_x, v> must equal

    (L(x + h v) - L(x - h v)) / 2h,   h = 1e-6,

to a relative error below 1e-5 (a correct gradient gives ~1e-9, a wrong one ~1e-1). One
direction per array tests every entry of its gradient at once, for two evaluations of L.
"""
import numpy as np

from ..tree import flatten

H = 1e-6
BOUND = 1e-5


def float_leaves(tree, name):
    """{path: array} of the float arrays of a tree, paths as in checkpoints ("params/embed/w")."""
    return {path: x for path, x in flatten({name: tree}).items()
            if isinstance(x, np.ndarray) and np.issubdtype(x.dtype, np.floating)}


def rel_error(a, n):
    """|a - n| / (|a| + |n|), with a floor so that two tiny numbers agree."""
    return abs(a - n) / max(abs(a) + abs(n), 1e-6)


def first_wrong(loss, args, grads, seed=0):
    """(path, analytic, numeric) of the first array whose gradient is wrong, or None.

    `args` {name: tree of float64 arrays} is perturbed in place (and restored) and
    `loss()` evaluated at it; `grads` has the same structure (as autograd returns it).
    """
    rng = np.random.default_rng(seed)
    for name in args:
        arrays, grad_arrays = float_leaves(args[name], name), flatten({name: grads[name]})
        for path, x in arrays.items():
            g = grad_arrays[path]
            v = rng.standard_normal(x.shape)
            v /= max(np.linalg.norm(v), 1e-12)
            analytic = float(np.sum(np.asarray(g, dtype=np.float64) * v))
            x += H * v
            up = float(loss())
            x -= 2 * H * v
            down = float(loss())
            x += H * v
            numeric = (up - down) / (2 * H)
            if not rel_error(analytic, numeric) < BOUND:  # `not <` also catches nan
                return path, analytic, numeric
    return None


def gradient_message(wrong):
    """The message for first_wrong's answer."""
    path, analytic, numeric = wrong
    return (f"the gradient with respect to {path} is wrong: along a random direction it gives "
            f"{analytic:.6g}, centred finite differences give {numeric:.6g}")
