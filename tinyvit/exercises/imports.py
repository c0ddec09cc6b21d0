"""Reading a student's file for the grader, without running it: what its imports reach.

`flags(source, ex)` lists one-line findings for exercise `ex`: the answer key imported
(anything under tinyvit.exercises), the exercise's reference used (a name of its `forbid`
list reached through the library), and, where the gradient is to be written by hand (`fd`),
autograd's differentiation or the fast twins' hand-written gradients. Only the syntax tree is
read; what the student's process sees happen at run time is added by `sandbox.py`.
"""
import ast
from pathlib import Path

AUTODIFF = {"grad", "make_vjp", "elementwise_grad", "value_and_grad", "jacobian", "vjp",
            "grad_and_aux", "make_jvp", "hessian", "holomorphic_grad"}


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
