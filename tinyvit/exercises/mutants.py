"""Mutants of the references: proof that every checker fails on wrong answers (CI, proof (e)).

A mutant is the source of one of an exercise's `targets` (the reference, or a library
function it is made of) with one small change, made by walking its syntax tree:

    operators swapped        + <-> -,  * <-> /,  ** -> *,  @ -> *,  // -> /  (also in +=, ...)
    comparisons changed      < <-> <=,  > <-> >=,  == <-> !=,  is <-> is not
    constants changed        an int n -> n + 1 (axes, slices, sizes), a float x -> 2x
                             (0.0 -> 1.0), True <-> False, a unary minus dropped
    keepdims dropped         keepdims=True removed from a call
    reductions swapped       max <-> min, maximum <-> minimum, argmax <-> argmin, sum <-> mean
    logic changed            `not` dropped, the branches of `a if c else b` swapped
    order changed            two neighbouring arguments of a call (not of min, max, ...) or
                             elements of a list or tuple swapped
    statements deleted       one assignment, augmented assignment or call statement

Left alone: default argument values (the signature is the exercise's), the text of error
messages, and guards that only raise on invalid input (`if l2 <= 0: raise ...`). A mutant of a
helper runs inside the reference: the helper's module attribute is swapped while the
reference runs. Every mutant must fail the exercise's checker, unless the exercise lists
it in `equivalent` with the reason it computes the same function on every valid input.
"""
import ast
import copy
import inspect
import sys
import textwrap

from .patching import swapped

SWAPS = {ast.Add: ast.Sub, ast.Sub: ast.Add, ast.Mult: ast.Div, ast.Div: ast.Mult,
         ast.Pow: ast.Mult, ast.MatMult: ast.Mult, ast.FloorDiv: ast.Div}
SYMBOLS = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.Pow: "**",
           ast.MatMult: "@", ast.FloorDiv: "//"}
COMPARES = {ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE, ast.GtE: ast.Gt, ast.Eq: ast.NotEq,
            ast.NotEq: ast.Eq, ast.Is: ast.IsNot, ast.IsNot: ast.Is}
COMMUTATIVE = {"max", "min", "maximum", "minimum", "add", "multiply"}
NAMES = {"max": "min", "min": "max", "maximum": "minimum", "minimum": "maximum",
         "argmax": "argmin", "argmin": "argmax", "sum": "mean", "mean": "sum"}


def constant_change(value):
    """The changed constant, or None for constants left alone (strings, None)."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    if isinstance(value, float):
        return 2.0 * value if value else 1.0
    return None


def node_sites(node):
    """(description, change) pairs for one node; change(node) alters it in place."""
    if isinstance(node, (ast.BinOp, ast.AugAssign)) and type(node.op) in SWAPS:
        new = SWAPS[type(node.op)]
        yield (f"{SYMBOLS[type(node.op)]} -> {SYMBOLS[new]}",
               lambda n, new=new: setattr(n, "op", new()))
    elif isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.Not)):
        minus = isinstance(node.op, ast.USub)
        yield (f"{'unary -' if minus else 'not'} dropped",
               lambda n, minus=minus: setattr(n, "op", ast.UAdd() if minus else ast.Invert()))
    elif isinstance(node, ast.IfExp):
        yield "if-else branches swapped", swap_branches
    elif isinstance(node, ast.Compare):
        for j, op in enumerate(node.ops):
            if type(op) in COMPARES:
                new = COMPARES[type(op)]
                yield (f"{type(op).__name__} -> {new.__name__}",
                       lambda n, j=j, new=new: n.ops.__setitem__(j, new()))
    elif isinstance(node, ast.Constant) and constant_change(node.value) is not None:
        new = constant_change(node.value)
        yield f"{node.value!r} -> {new!r}", lambda n, new=new: setattr(n, "value", new)
    elif isinstance(node, ast.Call):
        for j, kw in enumerate(node.keywords):
            if kw.arg == "keepdims":
                yield "keepdims dropped", lambda n, j=j: n.keywords.pop(j)
        callee = getattr(node.func, "attr", getattr(node.func, "id", ""))
        if callee not in COMMUTATIVE:
            yield from neighbours(node.args, "args", "arguments")
    elif isinstance(node, (ast.List, ast.Tuple)) and isinstance(node.ctx, ast.Load):
        yield from neighbours(node.elts, "elts", "elements")
    elif isinstance(node, ast.Attribute) and node.attr in NAMES:
        yield f".{node.attr} -> .{NAMES[node.attr]}", lambda n: setattr(n, "attr", NAMES[n.attr])
    elif isinstance(node, ast.Name) and node.id in NAMES:
        yield f"{node.id} -> {NAMES[node.id]}", lambda n: setattr(n, "id", NAMES[n.id])
    for field in ("body", "orelse"):
        statements = getattr(node, field, None)
        if isinstance(statements, list) and len(statements) > 1:
            for j, stmt in enumerate(statements):
                kinds = (ast.Assign, ast.AugAssign, ast.Expr)
                if isinstance(stmt, kinds) and not is_docstring(stmt):
                    yield (f"statement deleted (line {stmt.lineno})",
                           lambda n, field=field, j=j: getattr(n, field).pop(j))


def neighbours(items, field, what):
    """Swaps of two neighbouring, different items of a node's list `field`."""
    for j in range(len(items) - 1):
        a, b = items[j], items[j + 1]
        if ast.dump(a) != ast.dump(b) and not isinstance(a, ast.Starred) \
                and not isinstance(b, ast.Starred):
            yield f"{what} {j + 1} and {j + 2} swapped", lambda n, j=j: swap_items(n, field, j)


def swap_items(node, field, j):
    items = getattr(node, field)
    items[j], items[j + 1] = items[j + 1], items[j]


def swap_branches(node):
    node.body, node.orelse = node.orelse, node.body


def is_docstring(stmt):
    return isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant) \
        and isinstance(stmt.value.value, str)


def left_alone(tree):
    """Nodes not mutated: defaults, error-message f-strings, guards that only raise."""
    roots = [d for d in tree.args.defaults + tree.args.kw_defaults if d]
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr) or isinstance(node, ast.Raise):
            roots.append(node)
        if isinstance(node, ast.If) and all(isinstance(s, ast.Raise) for s in node.body) \
                and not node.orelse:
            roots.append(node)
    return {id(n) for root in roots for n in ast.walk(root)}


def parse(fn):
    """The syntax tree of a module-level function (its decorators dropped)."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(fn))).body[0]
    tree.decorator_list = []
    return tree


def sites(tree):
    """(node index in ast.walk order, mutant id suffix, change) for every mutation point."""
    skip = left_alone(tree)
    body = tree.body[1:] if ast.get_docstring(tree) else tree.body
    inside = {id(n) for stmt in body for n in ast.walk(stmt)} | {id(tree)}
    seen = {}
    for i, node in enumerate(ast.walk(tree)):
        if id(node) in skip or id(node) not in inside:
            continue
        for desc, change in node_sites(node):
            if desc.startswith("statement deleted"):
                line = int(desc.split("line ")[1][:-1])
                label = f"line {line - tree.lineno}: statement deleted"
            else:
                label = f"line {node.lineno - tree.lineno}: {desc}"
            seen[label] = seen.get(label, 0) + 1
            yield i, label + (f" #{seen[label]}" if seen[label] > 1 else ""), change


def build(fn, tree):
    """Compile a function's altered tree in (a copy of) its module's namespace."""
    module = ast.fix_missing_locations(ast.Module(body=[tree], type_ignores=[]))
    namespace = dict(fn.__globals__)
    exec(compile(module, inspect.getsourcefile(fn), "exec"), namespace)  # noqa: S102
    return namespace[fn.__name__]


def mutants(fn):
    """[(id, mutant function)] of one function: 'softmax line 6: .max -> .min'."""
    tree, out = parse(fn), []
    for index, label, change in sites(tree):
        altered = copy.deepcopy(tree)
        change(list(ast.walk(altered))[index])
        out.append((f"{fn.__name__} {label}", build(fn, altered)))
    return out


def candidate(ex, target, mutant):
    """The reference with `target` replaced by `mutant` (directly, or inside the reference)."""
    if target is ex["reference"]:
        return mutant
    module = sys.modules[target.__module__]

    def reference_with_mutant(*args, **kwargs):
        with swapped([(module, target.__name__, mutant)]):
            return ex["reference"](*args, **kwargs)
    return reference_with_mutant


def mutation_report(ex, check):
    """Mutants made, killed and surviving, against the exercise's list of equivalent ones.

    check(ex, fn) -> result. "unexplained" survivors and "stale" entries of the list (mutants
    that no longer survive, or no longer exist) are what a test must find empty.
    """
    made, survivors, quiet = 0, [], {**ex, "explain": False}  # pass or fail is all it needs
    for target in ex["targets"]:
        for mid, mutant in mutants(target):
            made += 1
            if check(quiet, candidate(ex, target, mutant))["status"] == "passed":
                survivors.append(mid)
    listed = ex["equivalent"]
    return {"made": made, "killed": made - len(survivors), "equivalent": len(survivors),
            "unexplained": [m for m in survivors if m not in listed],
            "stale": [m for m in listed if m not in survivors]}
