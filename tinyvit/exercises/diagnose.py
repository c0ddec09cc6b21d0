"""Naming the student's mistake: a catalogue of typical wrong answers, and detectors.

A catalogue entry is `name: (wrong_function, why)`: the wrong function takes the exercise's
arguments, so the checker can run it on the case that failed; when the student's outcome
matches it (values, or the same kind of error), the message says which mistake and why.
A detector looks at the failed outcome itself: nan where the answer is finite, the right
numbers in the wrong places, the answer times a constant (a fitted scale factor, named when
it is a known one, such as the first Adam step's sqrt(10) without bias correction).
"""
import numpy as np

from .compare import as_parts, num, same


def outcome(compute, fn):
    """compute(fn), or the exception it raised (a mistake may fail the way a student's does)."""
    try:
        return compute(fn)
    except Exception as e:  # noqa: BLE001 (the outcome is compared, not hidden)
        return e


def flat(x):
    """All parts of an outcome as one float64 vector."""
    return np.concatenate([p.ravel() for p in as_parts(x)])


def fitted_factor(found, expected):
    """a with found = a * expected (least squares) when that fits to 1e-6, else None."""
    f, e = flat(found), flat(expected)
    if f.shape != e.shape or not np.isfinite(f).all() or not e.any():
        return None
    a = float(f @ e / (e @ e))
    fits = np.linalg.norm(f - a * e) <= 1e-6 * max(np.linalg.norm(f), 1e-12)
    return a if fits and abs(a - 1.0) > 1e-6 else None


def detector(label):
    """Mark a function (found, expected, case) -> text or None as the detector `label`."""
    def mark(fn):
        fn.label = label
        return fn
    return mark


def nonfinite(advice):
    """Detector: nan or inf in the output where the expected values are finite."""
    @detector("nan or inf")
    def detect(found, expected, case):
        try:
            bad, ok = not np.isfinite(flat(found)).all(), np.isfinite(flat(expected)).all()
        except (TypeError, ValueError):
            return None
        return f"your output has nan or inf where the expected values are finite: {advice}" \
            if bad and ok else None
    return detect


def scaled(known=()):
    """Detector: the answer times a constant; `known` is [(value or value(dims), meaning)]."""
    @detector("scale factor")
    def detect(found, expected, case):
        try:
            a = fitted_factor(found, expected)
        except (TypeError, ValueError):
            return None
        if a is None:
            return None
        for value, meaning in known:
            v = value(case["dims"]) if callable(value) else value
            if np.isclose(a, v, rtol=1e-3):
                return f"your values are the expected ones times {num(a)}: {meaning}"
        return f"your values are the expected ones times {num(a)}: a constant factor is off"
    return detect


@detector("values in the wrong places")
def reordered(found, expected, case):
    """Detector: the right numbers, in the wrong places (an axis order, a missing transpose)."""
    try:
        f, e = np.sort(flat(found)), np.sort(flat(expected))
    except (TypeError, ValueError):
        return None
    if f.shape == e.shape and np.allclose(f, e, 1e-9, 1e-12) \
            and not np.allclose(flat(found), flat(expected), 1e-9, 1e-12):
        return ("the right numbers in the wrong places: check the order of the axes in your "
                "reshape and transpose")
    return None


def diagnose(found, expected, case, ex, compute):
    """(name, text): the first catalogued mistake whose outcome matches, or a detector's."""
    for name, (wrong, why) in ex["mistakes"].items():
        if same(found, outcome(compute, wrong), ex["tol"]):
            return name, f"This is a typical mistake, «{name}»: {why}"
    for detect in ex["detectors"]:
        text = detect(found, expected, case)
        if text:
            return detect.label, text
    return None, ""
