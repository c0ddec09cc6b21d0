"""Naming the student's mistake by explaining the student's numbers, on every case at once.

When an answer fails, the student's outcomes (outputs, or errors by type name) on all of the
exercise's fixed cases are compared with those of candidate explanations, in order:

    the catalogue        `mistakes` {name: (wrong function, why)}: typical wrong answers
    the variants         single edits of the reference (variants.py: mutants, another axis,
                         a dropped term, eps moved, a transposed operand, ...) and the
                         exercise's own `variants` {description: function}
    the detectors        facts about the outcome itself: nan or inf, the right numbers in
                         the wrong places, the answer times a constant
    the properties       what every right answer has (properties.py): rows sum to 1, ...

A candidate is stated as the cause only when it reproduces the student's outcome on EVERY
case (to tolerance), and a detector only when its fact holds on every case; a violated
property is a fact and is named as one. Otherwise the closest variant is offered as a
question, never as a verdict: misleading is worse than silent. Only the student's outcomes
are used, never their code, so the same diagnosis works on a function in another process.
"""
import numpy as np

from .compare import as_parts, num, same
from .variants import variant_text, variants, words

MATCH_TOL = (1e-6, 1e-9)  # a variant reproduces the student's values (at least this loose)


def outcome(compute, fn):
    """compute(fn), or the exception it raised (a mistake may fail the way a student's does)."""
    try:
        return compute(fn)
    except (Exception, SystemExit) as e:  # noqa: BLE001 (the outcome is compared, not hidden)
        return e


def error_name(x):
    """The type name of an error outcome (an error from another process carries its own)."""
    return getattr(x, "type_name", type(x).__name__)


def agree(a, b, tol):
    """Two outcomes agree: close values (nan where nan), or errors of the same type name."""
    if isinstance(a, BaseException) or isinstance(b, BaseException):
        return isinstance(a, BaseException) and isinstance(b, BaseException) \
            and error_name(a) == error_name(b)
    return same(a, b, tol)


def finite_somewhere(x):
    """True for an outcome with at least one finite number."""
    try:
        return bool(np.isfinite(flat(x)).any())
    except (TypeError, ValueError):
        return False


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
    """Mark a function (observations) -> (verdict text or None, question text or None) as the
    detector `label`; an observation is {case, found, expected, wrong}."""
    def mark(fn):
        fn.label = label
        return fn
    return mark


def numeric(obs):
    """The observations whose outcomes are numbers (not errors), as float vectors."""
    out = []
    for o in obs:
        try:
            out.append((o, flat(o["found"]), flat(o["expected"])))
        except (TypeError, ValueError):
            return None
    return out


def nonfinite(advice):
    """Detector: nan or inf where the expected values are finite; the advice is the cause
    only when every finite value is right on every case and some case is right throughout
    (else it is asked)."""
    @detector("nan or inf")
    def detect(obs):
        rows = numeric(obs)
        if rows is None:
            return None, None
        bad = [o["case"]["label"] for o, f, e in rows
               if f.shape == e.shape and not np.isfinite(f).all() and np.isfinite(e).all()]
        if not bad:
            return None, None
        finite_right = all(f.shape == e.shape and np.allclose(
            f[np.isfinite(f)], e[np.isfinite(f)], 1e-6, 1e-9) for o, f, e in rows) \
            and not all(o["wrong"] for o, _, _ in rows)
        fact = f"your output has nan or inf where the expected values are finite ({bad[0]})"
        if finite_right:
            return f"{fact}, and every finite value is right: {advice}", None
        return None, f"{fact}, and other values are wrong too: is it only that {advice}?"
    return detect


def sizes_factors(all_dims):
    """(value(dims), meaning) for every size and ratio of two sizes that vary from case to
    case (`all_dims`, one per case): a mean over the wrong axis, a division by the wrong size."""
    names = [k for k in all_dims[0] if all(isinstance(d.get(k), int) and d[k] > 0
                                           for d in all_dims)]
    out = [(lambda d, a=a: d[a], f"{a}: is something summed over {a} instead of averaged?")
           for a in names]
    out += [(lambda d, a=a: 1.0 / d[a], f"1/{a}: is something divided by {a} too many times, or "
             f"averaged over {a} where it is summed?") for a in names]
    out += [(lambda d, a=a, b=b: d[a] / d[b], f"{a}/{b}: divided by {b} instead of {a}?")
            for a in names for b in names if a != b]
    return out


def factor_on_every_case(rows, known, transform):
    """(factor text, meaning) when found = a * expected on every case, with the same a or a
    known a(dims); else None. Cases where expected is 0 say nothing. A factor made of the
    sizes is named only when it changes from case to case (else it is just a constant)."""
    pairs = [(o, transform(o, f, e)) for o, f, e in rows]
    pairs = [(o, fe) for o, fe in pairs if fe is not None and fe[1].any()]
    wrong = [(o, fe) for o, fe in pairs if o["wrong"]]
    if not wrong:
        return None
    dims = [o["case"]["dims"] for o, _ in pairs]
    sized = [(value, meaning) for value, meaning in sizes_factors(dims)
             if len({num(value(d)) for d in dims}) > 1]
    for value, meaning in list(known) + sized:
        values = [value(o["case"]["dims"]) if callable(value) else value for o, _ in pairs]
        if all(f.shape == e.shape and np.allclose(f, v * e, 1e-6, 1e-12)
               for (o, (f, e)), v in zip(pairs, values)):
            return num(values[[o for o, _ in pairs].index(wrong[0][0])]), meaning
    a = fitted_factor(*wrong[0][1])
    if a is not None and all(f.shape == e.shape and np.allclose(f, a * e, 1e-6, 1e-12)
                             for o, (f, e) in pairs):
        return num(a), None
    return None


def ratio_detector(label, known, what, transform=lambda o, f, e: (f, e)):
    """Detector: `what` is the expected one times a constant on every case."""
    @detector(label)
    def detect(obs):
        rows = numeric(obs)
        if rows is None:
            return None, None
        found = factor_on_every_case(rows, known, transform)
        if found is None:
            return None, None
        a, meaning = found
        return f"on every case {what} {a} times the expected: " + (
            meaning or "a constant factor is off"), None
    return detect


def scaled(known=()):
    """Detector: the answer times a constant; `known` is [(value or value(dims), meaning)]."""
    return ratio_detector("scale factor", known, "your values are")


def slices_permuted(found, expected):
    """The axes along which `found` is `expected` with whole slices in another order."""
    out = []
    for axis in range(found.ndim if found.shape == expected.shape else 0):
        f, e = np.moveaxis(found, axis, 0), np.moveaxis(expected, axis, 0)
        matches = [[j for j in range(len(e)) if np.allclose(f[i], e[j], 1e-9, 1e-12)]
                   for i in range(len(f))]
        if all(matches) and sorted(m[0] for m in matches) == list(range(len(e))) \
                and not np.allclose(f, e, 1e-9, 1e-12):
            out.append(axis)
    return out


@detector("values in the wrong places")
def reordered(obs):
    """Detector: the right numbers, in the wrong places: whole slices along one axis in
    another order (named), or an axis order, a missing transpose."""
    rows = numeric(obs)
    if rows is None or not any(o["wrong"] for o, _, _ in rows):
        return None, None
    if not all(f.shape == e.shape and np.allclose(np.sort(f), np.sort(e), 1e-9, 1e-12)
               for o, f, e in rows):
        return None, None
    parts = [(as_parts(o["found"])[0], as_parts(o["expected"])[0]) for o, _, _ in rows
             if o["wrong"]]
    axes = set.intersection(*(set(slices_permuted(f, e)) for f, e in parts))
    if axes:
        return (f"on every case your output holds the right numbers, and whole slices along "
                f"axis {min(axes)} in another order: the items along that axis are reordered"), \
            None
    return ("on every case your output holds the right numbers, in the wrong places: "
            "check the order of the axes in your reshape and transpose"), None


def candidates(ex):
    """(key, name, verdict, the same as a question, function) of the catalogue, the
    exercise's own variants and the reference's variants, in that order."""
    for name, (wrong, why) in ex["mistakes"].items():
        yield (f"mistake {name}", name, f"This is a typical mistake, «{name}»: {why}",
               f"«{name}» ({why})", wrong)
    for desc, wrong in ex.get("variants", {}).items():
        yield (f"variant {desc}", f"variant: {desc}",
               f"your values equal the reference's with one change: {desc}", desc, wrong)
    for vid, desc, where, before, after, wrong in variants(ex) if ex["explain_variants"] else ():
        yield (vid, f"variant: {desc}", variant_text(desc, where, before, after),
               f"{words(desc)}, in {where}: {before} -> {after}".replace("\n", "; "), wrong)


OUTCOMES = {}  # (exercise, candidate key, case key): the candidate's outcome, computed once


def candidate_outcome(ex, key, fn, case, run_case):
    cache = case.get("key") is not None
    k = (ex["number"], key, case.get("key"))
    if cache and k in OUTCOMES:
        return OUTCOMES[k]
    out = outcome(lambda f: run_case(f, case), fn)
    if cache:
        OUTCOMES[k] = out
    return out


def explain_error(ex, obs, run_case):
    """(name, text) of the catalogued mistake that raises the student's error where the
    student's function raises and gives its values elsewhere, on every case; else (None, "").
    An answer that raises everywhere is not explained: any broken function would match."""
    tol = (max(ex["tol"][0], MATCH_TOL[0]), max(ex["tol"][1], MATCH_TOL[1]))
    if not any(finite_somewhere(o["found"]) for o in obs):
        return None, ""
    for key, name, text, _, fn in list(candidates(ex))[:len(ex["mistakes"])]:
        if all(agree(o["found"], candidate_outcome(ex, key, fn, o["case"], run_case), tol)
               for o in obs):
            return name, text
    return None, ""


def explain(ex, obs, run_case, prop_call=None):
    """(diagnosis name or None, text) for a failed answer.

    obs: [{case, found, expected, wrong}] on every case the diagnosis looks at (found: the
    student's outcome); run_case(fn, case) -> a function's outcome on a case; prop_call(inputs)
    -> the student's outcome on other inputs (for the properties), or None.
    """
    tol = (max(ex["tol"][0], MATCH_TOL[0]), max(ex["tol"][1], MATCH_TOL[1]))
    agrees = lambda key, fn, o: agree(o["found"], candidate_outcome(ex, key, fn, o["case"],
                                                                    run_case), tol)
    obs = sorted(obs, key=lambda o: not o["wrong"])  # the cases it gets wrong tell most
    # nan or errors everywhere: any edit that breaks the function would "match"; none is tried
    tried = list(candidates(ex)) if any(finite_somewhere(o["found"]) for o in obs) else []
    for key, name, text, short, fn in tried:
        if all(agrees(key, fn, o) for o in obs):
            return name, text
    best, best_count = None, 0  # none explains every case: which explains the most?
    for key, name, text, short, fn in tried:
        if not any(agrees(key, fn, o) for o in obs if o["wrong"]):
            continue
        agreeing = [agrees(key, fn, o) for o in obs]
        if sum(agreeing) > best_count:
            missed = next(o for a, o in zip(agreeing, obs) if not a)
            best, best_count = (short, missed), sum(agreeing)
    questions = []
    for detect in ex["detectors"]:
        verdict, question = detect(obs)
        if verdict:
            return detect.label, verdict
        if question:
            questions.append(question)
    if prop_call is not None:
        for prop in ex.get("properties", ()):
            broken = prop(prop_call, obs)
            if broken:
                return f"property: {prop.label}", (
                    f"your answer breaks a property every right answer has: {broken}")
    if best is not None and best_count > len(obs) / 2:  # a question only when it is close
        short, missed = best
        questions.append(f"no single change explains every case; the closest, as a question: "
                         f"is it {short}? It gives your values on {best_count} of {len(obs)} "
                         f"cases, but not on «{missed['case']['label']}»")
    return None, "\n".join(questions)
