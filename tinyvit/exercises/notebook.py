"""`check(n, fn)` for Jupyter and Colab: check a function defined in a cell, in this process.

    from tinyvit.exercises import check
    check(3, softmax)          # or check("softmax", softmax)

It prints the report and returns the result (a dict), and never raises, so that "run all"
keeps going: a wrong exercise number, something that is not a function, a function that
crashes the checker itself or runs past `timeout` seconds are reported like any other
failure. A function that passes is remembered for this session: the capstone,
check(21, train), trains with every one of them.
"""
from .checker import check as run_check
from .checker import headline, new_result, report
from .notes import raised, source_of
from .registry import get
from .sandbox import flags
from .worker import Timeout, alarm

PASSED = {}  # {number: function} that passed in this session


class Result(dict):
    """A result that shows as its headline (the full report was printed already)."""

    def __repr__(self):
        return self.get("headline", "")

    def _ipython_display_(self):  # Jupyter: nothing more to show
        pass


def check(exercise, fn, seed=None, timeout=60):
    """Check `fn` as exercise `exercise` (number or name); print the report; never raise.

    `seed` adds the hidden stage a teacher grades with (any string or number).
    """
    try:
        ex = get(exercise)
    except ValueError as e:
        print(f"check: {e}")
        return Result(status="error", message=str(e))
    if not callable(fn):
        message = f"check({ex['number']}, ...): expected your function, found {type(fn).__name__}"
        print(message)
        return Result(new_result(ex, "error", message))
    try:
        with alarm(timeout):
            result = run_check(ex, fn, seed, dict(PASSED))
        result["flags"] = flags(source_of(fn) or "", ex)
        if any(fn is t for t in ex["targets"]):
            result["flags"].append("this is the library's own function")
    except KeyboardInterrupt:
        raise
    except Timeout:
        result = new_result(ex, "timeout", f"stopped after {timeout} s: an endless loop?")
    except BaseException as e:  # noqa: BLE001 (never raise: "run all" keeps going)
        result = new_result(ex, "error", f"the check stopped: {raised(e)}")
    if result["status"] == "passed":
        PASSED[ex["number"]] = fn
    else:
        PASSED.pop(ex["number"], None)  # the capstone uses the latest version only
    print(report(ex, result))
    return Result(result, headline=headline(ex, result))
