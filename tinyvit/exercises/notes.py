"""What the student sees besides pass and fail: errors at their own line, and notes.

Notes never fail a check: float32 inputs that come back float64 (where the library keeps
float32), a Python loop (where the library's code is vectorised), arguments changed in place.
"""
import ast
import copy
import inspect
import sysconfig
import textwrap
import traceback
from pathlib import Path

import numpy as np

# What a student's code may raise that a check reports (KeyboardInterrupt and the worker's
# alarm still stop it): sys.exit() or exit() inside a function is a SystemExit.
STUDENT_ERRORS = (Exception, SystemExit)

NOT_STUDENTS = (str(Path(__file__).resolve().parents[1]), sysconfig.get_paths()["stdlib"],
                "<frozen")  # tinyvit/, Python's own modules


def library_frame(filename):
    """True for frames in tinyvit, NumPy, autograd or Python itself (not the student's)."""
    return filename.startswith(NOT_STUDENTS) or "site-packages" in filename


def raised(e):
    """'TypeError: ... (line 12: return x @ w)': the error, at the student's line if any."""
    frames = traceback.extract_tb(e.__traceback__)
    mine = [f for f in frames if not library_frame(f.filename)] or frames[-1:]
    where = f" (line {mine[-1].lineno}: {mine[-1].line.strip()})" if mine and mine[-1].line else ""
    first = (str(e).strip().splitlines() or [""])[0]
    return f"{type(e).__name__}: {first}{where}"


def source_of(fn):
    """The dedented source of a function, or None (a lambda in a notebook, a builtin)."""
    try:
        return textwrap.dedent(inspect.getsource(fn))
    except (OSError, TypeError):
        return None


def loop_lines(source):
    """Line numbers (in `source`) of for / while loops and comprehensions."""
    kinds = (ast.For, ast.While, ast.ListComp, ast.GeneratorExp, ast.SetComp, ast.DictComp)
    try:
        return sorted({n.lineno for n in ast.walk(ast.parse(source)) if isinstance(n, kinds)})
    except SyntaxError:
        return []


def to_float32(tree):
    """A copy of a nested dict / list of inputs with float64 arrays made float32."""
    if isinstance(tree, dict):
        return {k: to_float32(v) for k, v in tree.items()}
    if isinstance(tree, (list, tuple)):
        return type(tree)(to_float32(v) for v in tree)
    if isinstance(tree, np.ndarray) and tree.dtype == np.float64:
        return tree.astype(np.float32)
    return copy.deepcopy(tree)


def dtypes(out):
    """The dtypes of an output's parts."""
    return [np.asarray(p).dtype for p in (out if isinstance(out, (tuple, list)) else [out])]


def float32_note(ex, fn, case):
    inputs = to_float32(case["inputs"])
    ref = dtypes(ex["call"](ex["reference"], copy.deepcopy(inputs)))
    mine = dtypes(ex["call"](fn, copy.deepcopy(inputs)))
    if all(d == np.float32 for d in ref) and any(d == np.float64 for d in mine):
        return ("float32 inputs come back as float64: a float64 constant (np.array(0.5), "
                "np.float64(...)) or np.mean / np.var of a traced array upcasts; the library "
                "keeps float32 float32 (docs/CONVENTIONS.md)")
    return None


def loop_note(ex, fn, case):
    source = source_of(fn)
    if source is None or any(loop_lines(source_of(t) or "") for t in ex["targets"]):
        return None
    lines = loop_lines(source)
    return (f"your function uses a Python loop (line {lines[0]} of the function); correct, "
            f"but the library's version is vectorised, which is much faster on big arrays"
            if lines else None)


def inplace_note(ex, fn, case):
    inputs = copy.deepcopy(case["inputs"])
    ex["call"](fn, inputs)
    changed = [k for k, v in inputs.items() if isinstance(v, np.ndarray)
               and not np.array_equal(v, case["inputs"][k], equal_nan=True)]
    return (f"your function changes its argument {changed[0]!r} in place; callers may not "
            f"expect that (return a new array instead)" if changed else None)


def notes(ex, fn, case):
    """The notes for a function that passed (each note's own errors are ignored)."""
    out = []
    for note in ex["notes"]:
        try:
            text = note(ex, fn, case)
        except STUDENT_ERRORS:  # a note never fails a check
            text = None
        if text:
            out.append(text)
    return out


STANDARD_NOTES = (float32_note, loop_note, inplace_note)
