"""The subprocess that checks a student's files: `python -m tinyvit.exercises worker ...`.

Started by `sandbox.check_files`, in the student's folder. Each exercise's file is imported
and checked with an alarm of `timeout` seconds; its result goes to stdout as one marked JSON
line, while whatever the student's code prints is swallowed. For the capstone every earlier
exercise is checked too (quietly): the functions that pass go into the library.
"""
import contextlib
import importlib.util
import io
import json
import signal
import sys
import threading

from .checker import check, new_result
from .notes import STUDENT_ERRORS, raised
from .registry import EXERCISES, get
from .sandbox import MARK, file_of, flags


class Timeout(BaseException):
    """The alarm: a BaseException, so that a student's `except Exception` cannot stop it."""


@contextlib.contextmanager
def alarm(seconds):
    """Raise Timeout in the block after `seconds` (where the OS has SIGALRM and this is the
    main thread; else no limit)."""
    if not hasattr(signal, "SIGALRM") or threading.current_thread() is not threading.main_thread():
        yield
        return

    def ring(signum, frame):
        raise Timeout()

    old = signal.signal(signal.SIGALRM, ring)
    signal.alarm(max(1, int(seconds)))
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def load(path):
    """Import a student's file as a fresh module."""
    spec = importlib.util.spec_from_file_location(f"student_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def check_file(folder, ex, secret, passed):
    """(result, the student's function or None) for one exercise's file."""
    path = file_of(folder, ex)
    if not path.exists():
        return new_result(ex, "missing", f"no file {path.name} here: python -m tinyvit.exercises "
                                         f"init writes it"), None
    try:
        module = load(path)
    except STUDENT_ERRORS as e:  # the student's file
        return new_result(ex, "error", f"your file {path.name} does not run: {raised(e)}"), None
    fn = getattr(module, ex["name"], None)
    if not callable(fn):
        return new_result(ex, "error", f"{path.name} defines no function {ex['name']}"), None
    result = check(ex, fn, secret, passed)
    result["flags"] = flags(path.read_text(), ex)
    return result, fn


def main(folder, numbers, secret=None, timeout=60):
    """Check the exercises `numbers` of `folder`, printing one marked result line each."""
    out, passed = sys.stdout, {}
    capstone = [ex["number"] for ex in EXERCISES if ex["name"] == "train"]
    order = [ex["number"] for ex in EXERCISES] if set(numbers) & set(capstone) else numbers
    for number in order:
        ex = get(number)
        with contextlib.redirect_stdout(io.StringIO()):
            try:
                with alarm(timeout):
                    result, fn = check_file(folder, ex, secret, passed)
            except Timeout:
                result, fn = new_result(ex, "timeout", f"stopped after {timeout} s: an endless "
                                                       f"loop, or a very slow function?"), None
        if result["status"] == "passed":
            passed[number] = fn
        if number in numbers:
            print(MARK + json.dumps(result), file=out, flush=True)
    return 0
