"""The checker's stages for a function exercise, in order; the first failure stops the check.

    runs       the function returns (NotImplementedError means "not started")
    shapes     the output's type, float dtype and shape, e.g. (B, N, P·P·C) = (2, 6, 48)
    by hand    a case small enough to check with pencil and paper, shown in full
    random     seeded random cases, one at other sizes
    edge       huge logits, N_q != N_k, non-square grids, eps that matters, ...
    gradients  centred finite differences in float64, parameters randomised (zero inits hide
               backward bugs): of the student's own function through autograd, or, for a
               hand-written gradient, of the library's forward
    hidden     (teachers' grading) cases drawn from a secret seed, at other sizes

A case is {label, dims, inputs}: inputs come from a fixed seed and reach the student's
function as copies, so the student's own random draws or in-place writes change nothing.
"""
import copy
import hashlib
import traceback

import numpy as np
from autograd import grad

from .compare import array_text, parts_of, structure_message, values_message
from .diagnose import agree, explain, explain_error, outcome
from .gradients import first_wrong, gradient_message
from .notes import STUDENT_ERRORS, raised
from .quirks import NOTES, quirk_message, tolerated


class NotStarted(Exception):
    """The student's function raised NotImplementedError on its first call."""


def make_case(ex, seed, dims=None, inputs=None, label=None):
    """A case: sizes (derived ones added), inputs drawn from `seed`, a label for messages."""
    d = ex["derive"](dict(dims or ex["dims"]))
    make = inputs or ex["inputs"]
    key = (ex["number"], seed, tuple(d.items()), id(make))  # the same case, drawn again
    return {"label": label, "dims": d, "inputs": make(np.random.default_rng(seed), d), "key": key}


def run(ex, fn, case):
    """The function's output on a copy of the case's inputs."""
    return ex["call"](fn, copy.deepcopy(case["inputs"]))


EXPECTED = {}  # case key: the reference's output (mutants and mistakes meet the same cases)


def expected_of(ex, case):
    """The reference's output on a case, computed once per case."""
    key = case.get("key")
    if key is None:
        return run(ex, ex["reference"], case)
    if key not in EXPECTED:
        EXPECTED[key] = run(ex, ex["reference"], case)
    return EXPECTED[key]


def sizes(case):
    """ "(B=2, N=3, D=5)" for a message."""
    return "(" + ", ".join(f"{k}={v}" for k, v in case["dims"].items()) + ")"


def attempt(ex, fn, case, where, first=False):
    """(output, None), or (None, failure) when the function raised. NotImplementedError on
    the `first` call means "not started"; later it is a case not written yet, a failure."""
    try:
        return run(ex, fn, case), None
    except NotImplementedError as e:
        if first:
            raise NotStarted(str(e)) from e
        return None, (f"{where}: your function raised {raised(e)}: a case not written yet?", None)
    except STUDENT_ERRORS as e:  # the student's error is the message
        name, text = raised_mistake(ex, fn, case)
        return None, (f"{where}: your function raised {raised(e)}" + (f"\n{text}" if text
                                                                       else ""), name)


def raised_mistake(ex, fn, case):
    """(name, text) of a catalogued mistake that fails the same way on every case (e.g. a
    shape error only where two sizes differ), else (None, "")."""
    if not ex["explain"] or not ex["mistakes"]:
        return None, ""
    return explain_error(ex, observations(ex, fn, case), lambda f, c: run(ex, f, c))


def hand_case(ex):
    """The by-hand case, as a case."""
    hand = ex["hand"]
    return {"label": "by hand", "dims": ex["derive"](dict(hand["dims"])), "inputs": hand["inputs"],
            "key": (ex["number"], "by hand")}


def diagnosis_cases(ex):
    """The fixed cases a diagnosis explains at once: by hand, random and edge."""
    return ([hand_case(ex)] + random_cases(ex) + edge_cases(ex))[:ex.get("explain_cases")]


def observations(ex, fn, failing):
    """[{case, found, expected, wrong}]: the student's outcome on every diagnosis case and on
    the failing one (a hidden case is added to the fixed ones)."""
    cases = diagnosis_cases(ex)
    if all(c["key"] != failing.get("key") for c in cases):
        cases.append(failing)
    obs = []
    for case in cases:
        found, expected = outcome(lambda f: run(ex, f, case), fn), expected_of(ex, case)
        obs.append({"case": {**case, "label": case["label"] or f"random {sizes(case)}"},
                    "found": found, "expected": expected,
                    "wrong": not agree(found, expected, ex["tol"])})
    return obs


def explained(ex, fn, case):
    """(diagnosis name, text) of a failure on `case`, from the student's outcomes on every case
    (and, for a loop, where its steps differ first); none for a record with explain=False."""
    if not ex["explain"]:
        return None, ""
    name, text = explain(ex, observations(ex, fn, case), lambda f, c: run(ex, f, c),
                         lambda inputs: ex["call"](fn, copy.deepcopy(inputs)))
    trace = ex["trace"](ex, fn, case) if ex["trace"] else None
    if trace and name is None:
        name = "where: " + trace.split(": ", 2)[-1]  # a fact: the first part that differs
    return name, "\n".join(t for t in (text, trace) if t)


def compare_case(ex, fn, case, where, expected=None):
    """None, or (message, diagnosis) for the first way the output is wrong on `case`."""
    found, failure = attempt(ex, fn, case, where)
    if failure:
        return failure
    expected = expected_of(ex, case) if expected is None else expected
    labels = [label for label, _ in parts_of(ex["out"])]
    problem = structure_message(found, ex["out"], case["dims"]) \
        or values_message(found, expected, ex["tol"], labels)
    if problem is None:
        return None
    name, text = explained(ex, fn, case)
    return f"{where}: {problem}" + (f"\n{text}" if text else ""), name


# ---------------------------------------------------------------------------------------------
# The stages: each is stage(ex, fn, ctx) -> None or (message, diagnosis); ctx holds the
# teacher's secret (or None) and the student's other passed functions
# ---------------------------------------------------------------------------------------------


def random_cases(ex):
    """Seeds 1 and 2 at the exercise's sizes, seed 3 at sizes drawn from seed 3."""
    other = ex["draw"](np.random.default_rng(3))
    return [make_case(ex, 1), make_case(ex, 2), make_case(ex, 3, other)]


def stage_runs(ex, fn, ctx):
    case = random_cases(ex)[0]
    return attempt(ex, fn, case, f"on a random case {sizes(case)}", first=True)[1]


def stage_shapes(ex, fn, ctx):
    case = random_cases(ex)[0]
    found, failure = attempt(ex, fn, case, "shapes")
    if failure:
        return failure
    problem = structure_message(found, ex["out"], case["dims"])
    if problem is None:
        return None
    name, text = explained(ex, fn, case)
    return f"shapes {sizes(case)}: {problem}" + (f"\n{text}" if text else ""), name


def stage_hand(ex, fn, ctx):
    hand, case = ex["hand"], hand_case(ex)
    failure = compare_case(ex, fn, case, "by hand")
    if failure is None:
        return None
    lines = [failure[0], f"the case: {hand['note']}"]
    lines += [array_text(np.squeeze(v), f"  {k} {v.shape} = ")
              for k, v in hand["inputs"].items() if isinstance(v, np.ndarray)]
    found, _ = attempt(ex, fn, case, "by hand")
    if isinstance(found, np.ndarray):
        expected = expected_of(ex, case)
        lines += [array_text(np.squeeze(expected), "  expected "),
                  array_text(np.squeeze(found), "  found    ")]
    return "\n".join(lines), failure[1]


def stage_random(ex, fn, ctx):
    for i, case in enumerate(random_cases(ex)):
        failure = compare_case(ex, fn, case, f"random case {i + 1} {sizes(case)}")
        if failure:
            return failure
    return None


def edge_cases(ex):
    return [make_case(ex, 10 + i, e.get("dims"), e.get("inputs"), e["label"])
            for i, e in enumerate(ex["edges"])]


def stage_edge(ex, fn, ctx):
    for case in edge_cases(ex):
        failure = compare_case(ex, fn, case, f"edge case «{case['label']}» {sizes(case)}")
        if failure:
            return failure
    return None


def autograd_objective(ex, fn, case, weight):
    """L(diff) = sum(weight * f(inputs with the differentiated ones replaced by diff))."""
    def loss(diff):
        out = ex["call"](fn, {**copy.deepcopy(case["inputs"]), **diff})
        return (weight * out).sum()
    return loss


def stage_autograd(ex, fn, ctx):
    """The student's function, differentiated by autograd, against finite differences."""
    case = make_case(ex, 5)
    expected = expected_of(ex, case)
    weight = np.random.default_rng(99).standard_normal(np.shape(expected))
    diff = {name: copy.deepcopy(case["inputs"][name]) for name in ex["grads"]}
    compute = lambda f: grad(autograd_objective(ex, f, case, weight))(copy.deepcopy(diff))
    with tolerated() as accepted:
        try:
            grads = compute(fn)
        except STUDENT_ERRORS as e:
            text = quirk_message(type(e).__name__, str(e), "".join(traceback.format_exception(e)))
            return f"gradients: {text} ({raised(e)})", None
        loss = lambda: autograd_objective(ex, fn, case, weight)(copy.deepcopy(diff))
        wrong = first_wrong(loss, diff, grads)
    ctx["notes"] += [NOTES[name] for name in accepted.used]
    if wrong is None:
        return None
    return (f"gradients {sizes(case)}: {gradient_message(wrong)}; your values are right on every "
            f"case, so is a value cut off from the gradient (getval, float(...), .item()) or a "
            f"hand-made gradient wrong?"), None


def stage_fd(ex, fn, ctx):
    """A hand-written gradient against finite differences of the library's forward."""
    fd, case = ex["fd"], make_case(ex, 5)
    found, failure = attempt(ex, fn, case, "gradients")
    if failure:
        return failure
    args = {name: copy.deepcopy(case["inputs"][name]) for name in fd["wrt"]}
    grads = dict(zip(fd["wrt"], fd["grads"](found)))
    wrong = first_wrong(lambda: fd["loss"]({**case["inputs"], **args}), args, grads)
    return None if wrong is None else (f"gradients {sizes(case)}: {gradient_message(wrong)}", None)


def hidden_seed(secret, number):
    """The hidden cases' seed: from the teacher's secret and the exercise number."""
    return int.from_bytes(hashlib.sha256(f"{secret}:{number}".encode()).digest()[:8], "little")


def stage_hidden(ex, fn, ctx):
    rng = np.random.default_rng(hidden_seed(ctx["secret"], ex["number"]))
    for i in range(2):
        case = make_case(ex, int(rng.integers(2**31)), ex["draw"](rng), label=f"hidden {i + 1}")
        failure = compare_case(ex, fn, case, f"hidden case {i + 1} {sizes(case)}")
        if failure:
            return failure
    return None


def standard_stages(ex):
    """The stage list of a function exercise: (name, stage) pairs."""
    stages = [("runs", stage_runs), ("shapes", stage_shapes), ("by hand", stage_hand),
              ("random", stage_random)]
    if ex["edges"]:
        stages.append(("edge", stage_edge))
    if ex["grads"]:
        stages.append(("gradients", stage_autograd))
    elif ex["fd"]:
        stages.append(("gradients", stage_fd))
    return stages + [("hidden", stage_hidden)]
