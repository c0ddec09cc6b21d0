"""A student's files: checked in a subprocess with a timeout, and read for what they import.

`check_files(folder, numbers)` starts `python -m tinyvit.exercises worker ...` in the folder
(so that a student's files may import each other), which loads each file, checks its
function and prints one result line per exercise; an exercise that runs past `timeout`
seconds is stopped and reported as "timeout", and a crash or hang of the whole worker costs
only the results it had not printed yet. The student's prints are kept out of the results.

`flags(source, ex)` reads a file's imports for a grader: the reference imported or called
from tinyvit, tinyvit.exercises (the answer key) imported, and, in a hand-written gradient,
autograd's differentiation or the fast twins' hand VJPs used instead.
"""
import ast
import json
import os
import subprocess
import sys
from pathlib import Path

from .checker import new_result
from .spec import stub_name

MARK = "@@tinyvit-exercise-result@@ "
AUTODIFF = {"grad", "make_vjp", "elementwise_grad", "value_and_grad", "jacobian", "vjp",
            "grad_and_aux", "make_jvp", "hessian", "holomorphic_grad"}


def check_files(folder, numbers, secret=None, timeout=60):
    """Results for the exercises `numbers`, from the student's files in `folder`."""
    if not Path(folder).is_dir():
        raise ValueError(f"no folder {folder}: python -m tinyvit.exercises init {folder} "
                         f"writes the exercises there")
    path = os.pathsep.join(os.path.abspath(p) for p in sys.path)  # the worker imports what we do
    env = dict(os.environ, PYTHONPATH=path)
    if secret is not None:
        env["TINYVIT_EXERCISE_SECRET"] = str(secret)  # not on the command line, for ps to show
    cmd = [sys.executable, "-m", "tinyvit.exercises", "worker", str(Path(folder).resolve()),
           ",".join(str(n) for n in numbers), "--timeout", str(timeout)]
    try:
        out = subprocess.run(cmd, cwd=folder, env=env, capture_output=True, text=True,
                             timeout=timeout * (len(numbers) + 1) + 30).stdout
    except subprocess.TimeoutExpired as e:
        out = e.stdout.decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
    found = {}
    for line in out.splitlines():
        if line.startswith(MARK):
            result = json.loads(line[len(MARK):])
            found[result["number"]] = result
    return [found.get(n) or lost(n, timeout) for n in numbers]


def lost(number, timeout):
    """The result of an exercise whose worker died before reporting it."""
    from .registry import get

    return new_result(get(number), "timeout", f"the check did not finish within {timeout} s: "
                                             f"an endless loop, or a very slow function?")


# ---------------------------------------------------------------------------------------------
# Reading a file's imports
# ---------------------------------------------------------------------------------------------


def tinyvit_modules():
    """Every module name of the tinyvit package ("tinyvit", "tinyvit.vit", ...), from its
    files (nothing is imported)."""
    package = Path(__file__).resolve().parents[1]  # tinyvit/
    names = set()
    for path in package.rglob("*.py"):
        parts = ("tinyvit",) + path.relative_to(package).with_suffix("").parts
        names.add(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


def dotted(node, aliases):
    """The full dotted name of `a.b.c` with `a` resolved through the file's imports, or None."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name) or node.id not in aliases:
        return None
    return ".".join([aliases[node.id]] + parts[::-1])


def imported(tree):
    """{local name: the dotted name it stands for} for the file's imports."""
    aliases = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:  # `import a.b` binds a; `import a.b as c` binds c to a.b
                top = a.name.split(".")[0]
                aliases[a.asname or top] = a.name if a.asname else top
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for a in node.names:
                aliases[a.asname or a.name] = f"{node.module}.{a.name}"
    return aliases


def flags(source, ex):
    """What a grader should look at in a file: a list of one-line findings (maybe empty)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    aliases, modules, hand = imported(tree), tinyvit_modules(), bool(ex["fd"])
    names = set(aliases.values()) | {a.name for node in ast.walk(tree)
                                     if isinstance(node, ast.Import) for a in node.names}
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and dotted(node, aliases):
            names.add(dotted(node, aliases))
    out = []
    for name in sorted(names):
        parts = name.split(".")
        if parts[0] == "tinyvit" and "exercises" in parts:
            out.append(f"imports {name}: the exercises' answer key")
        elif parts[0] == "tinyvit" and name not in modules and parts[-1] in ex["forbid"]:
            out.append(f"uses the reference {name}")
        elif hand and parts[0] == "autograd" and parts[-1] in AUTODIFF:
            out.append(f"differentiates with {name} instead of by hand")
        elif hand and name.startswith("tinyvit.fast"):
            out.append(f"uses {name}, the fast twins' hand-written gradients")
    return sorted(set(out))


def file_of(folder, ex):
    """The student's file of an exercise in `folder`."""
    return Path(folder) / stub_name(ex)
