"""Run an exercise's stages on a function and say what happened, in a result and a report.

A result is a plain dict:

    number, name       which exercise
    status             "passed", "failed", "not started", or (files only) "missing",
                       "error" (the file does not import), "timeout"
    stage              the stage that failed (None when passed)
    message            what was wrong, naming axes and values; diagnosis: the mistake's name
    stages             [(stage, "pass" | "fail" | "not run"), ...]: the credit, stage by stage
    notes, flags       notes that never fail; a grader's flags (the reference imported, ...)
"""
import textwrap
import warnings

import numpy as np

from .notes import STUDENT_ERRORS, notes, raised
from .stages import NotStarted, random_cases

MARKS = {"pass": "✓", "fail": "✗", "not run": "·"}


def new_result(ex, status="failed", message="", stage=None):
    """A result with nothing run yet."""
    return {"number": ex["number"], "name": ex["name"], "status": status, "stage": stage,
            "message": message, "diagnosis": None, "stages": [], "notes": [], "flags": []}


def check(ex, fn, secret=None, passed=None):
    """Run the stages of `ex` on `fn` (NumPy's warnings silenced: nan is reported instead)."""
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return run_stages(ex, fn, secret, passed)


def run_stages(ex, fn, secret=None, passed=None):
    """Run the stages of `ex` on `fn`, stopping at the first failure. Returns a result.

    `secret` (a teacher's) adds the hidden stage; `passed` {number: function} are the
    student's other passed functions, which the capstone puts into the library.
    """
    result = new_result(ex, status="passed")
    ctx = {"secret": secret, "passed": passed or {}, "notes": []}
    for name, stage in ex["stages"]:
        if name == "hidden" and secret is None:
            continue
        if result["stage"] is not None:
            result["stages"].append((name, "not run"))
            continue
        try:
            failure = stage(ex, fn, ctx)
        except NotStarted as e:
            failure, result["status"] = (str(e) or "not started", None), "not started"
        except STUDENT_ERRORS as e:  # a strange output can trip the checker itself
            failure = (f"{name}: your output could not be checked: {raised(e)}", None)
        if failure is None:
            result["stages"].append((name, "pass"))
            continue
        result["stages"].append((name, "fail"))
        result.update(stage=name, message=failure[0], diagnosis=failure[1])
        if result["status"] == "passed":
            result["status"] = "failed"
    if result["status"] == "passed":
        result["notes"] = ctx["notes"] + (notes(ex, fn, random_cases(ex)[0]) if ex["notes"] else [])
    return result


def credit(result):
    """(stages passed, stages in all) of a result."""
    return sum(s == "pass" for _, s in result["stages"]), len(result["stages"])


def headline(ex, result):
    """One line: 'Exercise 3 · softmax: passed (7/7 stages)'."""
    got, total = credit(result)
    status = result["status"]
    if status == "failed":
        status = f"failed at «{result['stage']}»"
    counted = f" ({got}/{total} stages)" if total else ""
    return f"Exercise {ex['number']} · {ex['name']}: {status}{counted}"


def report(ex, result):
    """The readable report of a result (several lines)."""
    lines = [headline(ex, result)]
    if result["stages"]:
        lines.append("  " + "  ".join(f"{MARKS[s]} {name}" for name, s in result["stages"]))
    if result["status"] == "not started":
        lines.append(wrap(f"not started: replace the `raise NotImplementedError` in {ex['name']} "
                          f"with your code (hints: python -m tinyvit.exercises hint "
                          f"{ex['number']})"))
    elif result["message"]:
        lines += [wrap(line) for line in result["message"].splitlines()]
        if result["status"] == "failed":
            lines.append(f"  stuck? python -m tinyvit.exercises hint {ex['number']}")
    lines += [wrap(f"note: {n}") for n in result["notes"]]
    lines += [wrap(f"flag: {f}") for f in result["flags"]]
    return "\n".join(lines)


def wrap(line, width=96):
    """One message line, indented under the headline and wrapped (arrays are left alone)."""
    if len(line) + 2 <= width or line.startswith(" "):
        return "  " + line
    return textwrap.fill(line, width, initial_indent="  ", subsequent_indent="    ")
