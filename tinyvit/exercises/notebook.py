"""`check(n, fn)` for Jupyter and Colab: check a function defined in a cell, as `grade` does.

    from tinyvit.exercises import check
    check(3, softmax)          # or check("softmax", softmax)

The function's source (and what it uses from the notebook: imports, helper functions,
constants) is written as exercise file into a fresh folder and checked there exactly as
`python -m tinyvit.exercises check` and a teacher's `grade` check files: in a process of its
own, judged here. It prints the report and returns the result (a dict), and never raises, so
that "run all" keeps going: a wrong exercise number, something that is not a function, a
function that crashes or runs past `timeout` seconds are reported like any other failure. A
function that passes is remembered for this session: the capstone, check(21, train), trains
with every one of them.
"""
import ast
import builtins
import shutil
import sys
import tempfile
import types
from pathlib import Path

from .checker import headline, new_result, report
from .notes import raised, source_of
from .registry import get
from .sandbox import PACKAGE, check_files
from .spec import stub_name

PASSED = {}  # {number: function} that passed in this session
PLAIN = (int, float, str, bool, type(None))


class Result(dict):
    """A result that shows as its headline (the full report was printed already)."""

    def __repr__(self):
        return self.get("headline", "")

    def _ipython_display_(self):  # Jupyter: nothing more to show
        pass


def importable(obj):
    """'module', 'name' when `obj` is a top-level function or class of an installed module
    (the library, a package, the standard library), else None."""
    name = getattr(obj, "__module__", None) or ""
    for module in (sys.modules.get(name), sys.modules.get(name.split(".")[0])):
        file = getattr(module, "__file__", None) or ""
        installed = file.startswith(str(PACKAGE)) or "-packages" in file \
            or file.startswith(sys.base_prefix)
        names = [k for k, v in vars(module).items() if v is obj] if installed else []
        if names:
            return module.__name__, names[0]
    return None


def lambda_source(fn, source):
    """The `lambda ...` expression of a lambda, from the line that holds it."""
    try:
        nodes = [n for n in ast.walk(ast.parse(source.strip()))if isinstance(n, ast.Lambda)]
    except SyntaxError:
        return None
    argc = fn.__code__.co_argcount
    for node in nodes:
        if len(node.args.args) == argc:
            return ast.get_source_segment(source.strip(), node)
    return None


def used_names(code):
    """The global names a code object (and the functions nested in it) uses."""
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= used_names(const)
    return names


def module_text(fn, name, seen=None, inline=()):
    """A file defining `name` as `fn`: its source and what it uses from its globals (imported
    where they are installed; their source for the names in `inline`)."""
    seen = set() if seen is None else seen
    where = importable(fn)
    if where and getattr(fn, "__name__", None) not in inline:
        return f"from {where[0]} import {where[1]} as {name}\n"
    source = source_of(fn)
    if source is None:
        raise ValueError(f"the source of {getattr(fn, '__name__', fn)!r} cannot be found: "
                         f"define it with def in a cell")
    seen |= {name, fn.__name__}
    try:
        tree = ast.parse(source.strip())
    except SyntaxError:  # a lambda's line, cut from a longer statement
        tree = ast.Module(body=[], type_ignores=[])
    head, names = [], used_names(fn.__code__) | {
        n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    if fn.__name__ == "<lambda>":
        source = f"{name} = {lambda_source(fn, source)}\n"
    elif fn.__name__ != name:
        source += f"\n{name} = {fn.__name__}\n"
    for used in sorted(names - seen - set(dir(builtins))):
        seen.add(used)
        if used not in fn.__globals__:
            continue
        value = fn.__globals__[used]
        if isinstance(value, types.ModuleType):
            head.append(f"import {value.__name__} as {used}")
        elif isinstance(value, PLAIN) or isinstance(value, tuple) and all(
                isinstance(v, PLAIN) for v in value):
            head.append(f"{used} = {value!r}")
        elif callable(value):
            head.append(module_text(value, used, seen, inline))
    return "\n".join(head) + "\n\n" + source


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
    folder = Path(tempfile.mkdtemp(prefix="tinyvit-notebook-"))
    try:
        for number, f in {**PASSED, ex["number"]: fn}.items():
            other = get(number)
            (folder / stub_name(other)).write_text(module_text(f, other["name"]),
                                                   encoding="utf-8")
        result = check_files(folder, [ex["number"]], seed, timeout)[0]
        if any(fn is t for t in ex["targets"]):
            result["flags"].insert(0, "this is the library's own function")
    except KeyboardInterrupt:
        raise
    except BaseException as e:  # noqa: BLE001 (never raise: "run all" keeps going)
        result = new_result(ex, "error", f"the check stopped: {raised(e)}")
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    if result["status"] == "passed":
        PASSED[ex["number"]] = fn
    else:
        PASSED.pop(ex["number"], None)  # the capstone uses the latest version only
    print(report(ex, result))
    return Result(result, headline=headline(ex, result))
