"""Comparing a student's output with the expected one, and saying how they differ.

Outputs are arrays, or tuples of arrays (`out` names the parts). A shape is written with the
legend's letters, as an exercise's docstring writes it: "B, N, P*P*C" is shown as
(B, N, P·P·C) = (2, 6, 48), its value for the case's sizes `d`.
"""
import numpy as np
from autograd.tracer import getval


def parts_of(out):
    """`out` as a list of (label, shape expression): one unnamed part, or named ones."""
    return [(None, out)] if isinstance(out, str) else list(out)


def shape_of(expr, d):
    """The sizes of a shape expression such as "B, N, P*P*C" for the sizes `d`."""
    return tuple(int(eval(e, {}, dict(d))) for e in expr.split(",") if e.strip())


def show_expr(expr):
    """ "B, N, P*P*C" -> "(B, N, P·P·C)"; "" (a scalar) -> "()"."""
    return "(" + ", ".join(e.strip().replace("*", "·") for e in expr.split(",") if e.strip()) + ")"


def kind(expr):
    """ "an array (B, N, D)", or "a scalar" for the shape ()."""
    return f"an array {show_expr(expr)}" if expr.strip() else "a scalar"


def num(x):
    """A number in 4 significant digits."""
    return f"{float(x):.4g}"


def array_text(a, prefix=""):
    """prefix + a small array, readable, its further lines aligned under the first."""
    text = np.array2string(np.asarray(a, dtype=float), precision=4, suppress_small=True,
                           max_line_width=80, threshold=60)
    return prefix + "\n".join(line and " " * len(prefix) + line if i else line
                               for i, line in enumerate(text.splitlines()))


def where(idx):
    """A NumPy index as "[0, 1, 2]"."""
    return "[" + ", ".join(str(int(i)) for i in idx) + "]"


def axes_message(found, want, names):
    """Why a found shape is not the wanted one, naming the axes involved."""
    if len(found) == len(want) and sorted(found) == sorted(want):
        moved = [n for n, f, w in zip(names, found, want) if f != w]
        return f": the axes {' and '.join(moved)} are in each other's places"
    for i in range(len(want) - 1):
        merged = want[:i] + (want[i] * want[i + 1],) + want[i + 2:]
        if tuple(found) == merged:
            return f": {names[i]} and {names[i + 1]} are merged into one axis"
    if len(found) != len(want):
        return f": {len(found)} axes where {len(want)} were expected"
    wrong = [f"{n} is {f}, not {w}" for n, f, w in zip(names, found, want) if f != w]
    return ": " + ", ".join(wrong)


def structure_message(found, out, d):
    """None if `found` has the parts, types and shapes `out` says; else what is wrong."""
    parts = parts_of(out)
    if len(parts) > 1:
        labels = ", ".join(label for label, _ in parts)
        if not isinstance(found, (tuple, list)) or len(found) != len(parts):
            what = f"{type(found).__name__} of {len(found)}" if isinstance(found, (tuple, list)) \
                else type(found).__name__
            return f"expected a tuple ({labels}), found {what}"
        found_parts = list(found)
    else:
        found_parts = [found]
    for (label, expr), f in zip(parts, found_parts):
        name = f"{label}: " if label else ""
        want = shape_of(expr, d)
        if f is None:
            return f"{name}expected {kind(expr)}, found None (is `return` missing?)"
        f = getval(f)
        if not isinstance(f, (np.ndarray, np.generic, float)):
            return f"{name}expected a NumPy array, found {type(f).__name__}"
        dtype = np.asarray(f).dtype
        if dtype == object:
            odd = next(x for x in np.ravel(f) if not isinstance(x, (int, float, np.number)))
            return f"{name}expected numbers, found {type(odd).__name__} (is `return` missing?)"
        if not np.issubdtype(dtype, np.floating):
            return f"{name}expected a float array, found dtype {dtype}"
        if np.shape(f) != want and not want:
            return f"{name}expected a scalar, found an array {np.shape(f)}"
        if np.shape(f) != want:
            names = [e.strip().replace("*", "·") for e in expr.split(",") if e.strip()]
            return (f"{name}expected {show_expr(expr)} = {want}, found {np.shape(f)}"
                    + axes_message(np.shape(f), want, names))
    return None


def as_parts(x):
    """An output as a list of float64 arrays (a tuple's parts, or the one array)."""
    items = x if isinstance(x, (tuple, list)) else [x]
    return [np.asarray(getval(p), dtype=np.float64) for p in items]


def values_message(found, expected, tol, labels=None):
    """None if every part of `found` is close to `expected`; else where and by how much not."""
    rtol, atol = tol
    labels = labels or [None] * len(expected)
    for f, e, label in zip(as_parts(found), as_parts(expected), labels):
        bad = ~np.isclose(f, e, rtol, atol)
        if not bad.any():
            continue
        name = f"{label}: " if label else ""
        if f.ndim == 0:
            return f"{name}expected {num(e)}, found {num(f)}"
        first = np.argwhere(bad)[0]
        err = np.where(np.isfinite(f), np.abs(f - e), np.inf)
        worst = np.unravel_index(np.argmax(err), err.shape)
        text = (f"{name}{int(bad.sum())} of {bad.size} values differ; at {where(first)} "
                f"expected {num(e[tuple(first)])}, found {num(f[tuple(first)])}")
        if not np.isfinite(f).all():
            return text + f" ({int((~np.isfinite(f)).sum())} are nan or inf)"
        return text + f" (largest difference {num(err[worst])}, at {where(worst)})"
    return None


def same(a, b, tol):
    """True when two outcomes agree: equal values (nan where nan), or the same error type."""
    if isinstance(a, BaseException) or isinstance(b, BaseException):
        return type(a) is type(b)
    try:
        pa, pb = as_parts(a), as_parts(b)
    except (TypeError, ValueError):
        return False
    return len(pa) == len(pb) and all(
        x.shape == y.shape and np.allclose(x, y, tol[0], tol[1], equal_nan=True)
        for x, y in zip(pa, pb))
