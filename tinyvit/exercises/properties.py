"""Properties every right answer has, named when a wrong answer breaks one.

A property is prop(call, obs) -> None, or the evidence that the answer breaks it: `obs` are
the diagnosis's observations (the student's outcome on each case), `call(inputs)` runs the
student's function on other inputs (a constant added to a row, tokens permuted, one image
of the batch). Each is checked on the first random case; the exercise lists its properties
in `properties`, and a test proves that the reference has every one of them.
"""
import copy

import numpy as np

from .compare import as_parts, num, where

TOL = (1e-6, 1e-8)


def prop(label):
    """Mark a function (call, obs) -> evidence or None as the property `label`."""
    def mark(fn):
        fn.label = label
        return fn
    return mark


def random_case(obs):
    """The first random case's observation (the by-hand case is often too small)."""
    return next((o for o in obs if o["case"]["label"].startswith("random")), obs[0])


def parts(x, part):
    """One part of an outcome as float64, or None for an error or a malformed outcome."""
    try:
        return as_parts(x)[part]
    except (TypeError, ValueError, IndexError):
        return None


def first_difference(found, want):
    """ "at [0, 1] 0.5 instead of 0.25" ("0.5 instead of 0.25" for a scalar), or None."""
    if found is None or np.shape(found) != np.shape(want):
        return f"an output of shape {np.shape(found)}" if found is not None else "no output"
    bad = ~np.isclose(found, want, *TOL)
    if not bad.any():
        return None
    i = tuple(np.argwhere(bad)[0])
    return f"{'at ' + where(i) + ' ' if i else ''}{num(found[i])} instead of {num(want[i])}"


def safely(call, inputs):
    try:
        return call(inputs)
    except (Exception, SystemExit):  # noqa: BLE001 (no evidence, no claim)
        return None


def output_has(label, expected, part=0):
    """Property: the output on the random case equals expected(inputs, output), a function of
    the inputs and of the output itself (a centre column equal to the pixel)."""
    @prop(label)
    def check(call, obs):
        o = random_case(obs)
        found = parts(o["found"], part)
        if found is None:
            return None
        try:
            want = expected(o["case"]["inputs"], found)
        except (TypeError, ValueError, IndexError):
            return f"{label}; yours has the shape {np.shape(found)}"
        diff = first_difference(found, want)
        return f"{label}; yours: {diff}" if diff else None
    return check


def changed_inputs(label, change, expected, part=0):
    """Property: the output for change(inputs) equals expected(inputs, output, new output)."""
    @prop(label)
    def check(call, obs):
        o = random_case(obs)
        inputs = copy.deepcopy(o["case"]["inputs"])
        new = parts(safely(call, change(inputs)), part)
        found = parts(o["found"], part)
        if new is None or found is None:
            return None
        try:
            want = expected(o["case"]["inputs"], found)
        except (TypeError, ValueError, IndexError):
            return None
        diff = first_difference(new, want)
        return f"{label}; yours: {diff}" if diff else None
    return check


def unchanged_by(label, change, part=0):
    """Property: change(inputs) leaves the output as it is."""
    return changed_inputs(label, change, lambda inputs, found: found, part)


def at_inputs(label, make, expected, part=0):
    """Property: the output at the inputs make(inputs) is expected(those inputs)."""
    @prop(label)
    def check(call, obs):
        o = random_case(obs)
        inputs = make(copy.deepcopy(o["case"]["inputs"]))
        new = parts(safely(call, copy.deepcopy(inputs)), part)
        if new is None:
            return None
        want = expected(inputs)
        diff = first_difference(new, np.broadcast_to(want, np.shape(new)) if np.size(want) == 1
                                else want)
        return f"{label}; yours: {diff}" if diff else None
    return check


def sums_to(label, total, axis=-1, part=0):
    """Property: the output sums to `total` along `axis`."""
    @prop(label)
    def check(call, obs):
        found = parts(random_case(obs)["found"], part)
        if found is None or not np.ndim(found):
            return None
        sums = np.sum(found, axis=axis)
        diff = first_difference(sums, np.full(sums.shape, float(total)))
        return f"{label}; yours: the sum {diff}" if diff else None
    return check


def mean_over_items(label, names):
    """Property: a scalar over the batch is the mean of the items' values, each computed alone
    (a loss is the mean of the examples' losses)."""
    @prop(label)
    def check(call, obs):
        o = random_case(obs)
        inputs, found = o["case"]["inputs"], parts(o["found"], 0)
        n = len(inputs[names[0]])
        alone = [parts(safely(call, {k: (v[j:j + 1] if k in names else v)
                                     for k, v in inputs.items()}), 0) for j in range(n)]
        if found is None or found.ndim or any(a is None or a.ndim for a in alone):
            return None
        diff = first_difference(found, np.mean(alone))
        return f"{label}; yours: {diff}" if diff else None
    return check


def first_items(inputs, names, n=1):
    """The inputs with the arrays `names` cut to their first n items (one image, one row)."""
    return {k: (v[:n] if k in names else v) for k, v in inputs.items()}


def independent_items(label, names, part=0):
    """Property: each item of the batch depends on its own inputs only: the function of the
    first item alone gives the first row of the batch's output."""
    return changed_inputs(label, lambda inputs: first_items(inputs, names),
                          lambda inputs, found: found[:1], part)
