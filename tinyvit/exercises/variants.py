"""Variants of a reference: one edit each, whose outputs may explain a student's (mutant matching).

The mutants of `mutants.py` prove the checkers; turned around, they and a family of more
meaningful single edits explain a wrong answer. A variant is the source of one of an
exercise's `targets` with one change, made on its syntax tree:

    every mutant             + <-> -, * <-> /, n -> n + 1, keepdims dropped, sum <-> mean, ...
    another axis             a reduction, softmax, concatenate or stack over another axis
                             (0, 1, 2, -1, -2, or all axes)
    a dropped term           a + b -> a (or b); a * b -> a (or b): a term or a scale left out
    a dropped function       sqrt(a) -> a, exp(a) -> a, x.transpose(...) -> x, ...
    a term moved             sqrt(a + b) <-> sqrt(a) + b (eps inside or outside the root)
    a transposed operand     a @ b -> a^T @ b, a @ b^T (the last two axes swapped)
    n - 1                    a / n -> a / (n - 1) (ddof), an integer n -> n - 1 (off by one)
    the sign                 return r -> return -r
    another variable         one use of a local name replaced by another (q for k, x for x_hat),
                             or every use in one line; 1 passed for a name (heads = 1)
    a bracket closed early   c * (a + b) -> c * a + b; a * c + b -> (a + b) * c
    a condition fixed        `if c:` taken as always true, or always false
    a loop cut               for p in items -> items[:1], items[1:], items[::-1]
    a decimal point moved    a float constant c -> 10 c, c / 10

An exercise whose reference is autograd's derivative of a formula (a VJP) lists `formulas`:
the same function written out by hand, whose variants are tried too; one made of library
functions lists in `explain_targets` the parts, beyond its mutants' `targets`, whose edits
may explain an answer (patchify inside embed, the attention weights inside MSA).

Each variant carries the line of the reference it changes and that line as changed, so that
a match reads "the reference with ... at line 4 of layer_norm: <line> -> <changed line>".
"""
import ast
import copy
import inspect

from .mutants import candidate, left_alone, node_sites, parse

REDUCTIONS = {"sum", "mean", "max", "min", "var", "std", "argmax", "argmin", "prod", "softmax",
              "concatenate", "stack", "split", "cumsum", "logsumexp", "norm", "squeeze",
              "expand_dims"}
AXES = (0, 1, 2, -1, -2, None)
UNWRAP = {"sqrt", "exp", "log", "tanh", "abs", "getval", "float", "cos", "sin", "transpose",
          "swapaxes", "maximum", "minimum", "clip", "broadcast_to", "astype", "min", "max"}
MOVE_INTO = {"sqrt", "log", "exp"}


def callee(call):
    """The called name: `sum` for x.sum(...) and np.sum(...)."""
    return getattr(call.func, "attr", getattr(call.func, "id", ""))


def constant(node):
    """The value of an int literal (also -1), else a marker that is no int."""
    try:
        value = ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return "?"
    return value if value is None or (isinstance(value, int) and not isinstance(value, bool)) \
        else "?"


def axis_slot(call):
    """(where, key) of a call's axis argument: ("kw", j) or ("arg", j), or None."""
    for j, kw in enumerate(call.keywords):
        if kw.arg == "axis":
            return "kw", j
    name = callee(call)
    if name not in REDUCTIONS:
        return None
    method = isinstance(call.func, ast.Attribute) and not (
        isinstance(call.func.value, ast.Name) and call.func.value.id in ("np", "anp", "xp"))
    j = 0 if method else 1
    if name in ("split",):
        j += 1
    return ("arg", j) if len(call.args) > j else None


def get_slot(call, slot):
    where, j = slot
    return call.keywords[j].value if where == "kw" else call.args[j]


def set_slot(call, slot, value):
    where, j = slot
    if where == "kw":
        call.keywords[j].value = value
    else:
        call.args[j] = value


def text(node):
    return ast.unparse(node)


def swap_last(node):
    """np.swapaxes(node, -1, -2)."""
    return ast.Call(func=ast.Attribute(value=ast.Name("np", ast.Load()), attr="swapaxes",
                                       ctx=ast.Load()),
                    args=[node, ast.Constant(-1), ast.Constant(-2)], keywords=[])


def with_call(call, arg):
    out = copy.deepcopy(call)
    out.args = [arg]
    return out


def axis_slots(tree):
    """[(node, slot or None)]: every axis argument of a reduction, and every `.shape[k]`."""
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and axis_slot(node) is not None \
                and constant(get_slot(node, axis_slot(node))) not in ("?", None):
            out.append((node, axis_slot(node)))
        elif isinstance(node, ast.Subscript) and isinstance(node.value, ast.Attribute) \
                and node.value.attr == "shape" and constant(node.slice) not in ("?", None):
            out.append((node, None))
    return out


def axis_value(node, slot):
    return constant(get_slot(node, slot) if slot else node.slice)


def set_axis(node, slot, new):
    if slot:
        set_slot(node, slot, ast.Constant(new))
    else:
        node.slice = ast.Constant(new)


def every_axis(tree):
    """(description, change(tree)) that move every axis `old` of a function to `new` at once:
    statistics over another axis, sizes read from it too (x.shape[k])."""
    olds = sorted({axis_value(n, s) for n, s in axis_slots(tree)})
    for old in olds:
        if sum(axis_value(n, s) == old for n, s in axis_slots(tree)) < 2:
            continue
        for new in AXES[:-1]:
            if new != old:
                def change(t, old=old, new=new):
                    for n, s in axis_slots(t):
                        if axis_value(n, s) == old:
                            set_axis(n, s, new)
                yield (f"every axis {old} (reductions and shape[{old}]) changed to axis {new}",
                       change)


def call_edits(node):
    """(description, replace(node) -> node) for a call."""
    name = callee(node)
    slot = axis_slot(node)
    if slot is not None:
        old = constant(get_slot(node, slot))
        if old != "?":
            for new in AXES:
                if new != old:
                    where = "all axes" if new is None else f"axis {new}"
                    yield (f"the {name} over {where} instead of axis {old}",
                           lambda n, slot=slot, new=new: (
                               set_slot(n, slot, ast.Constant(new)), n)[1])
    target = node.func.value if isinstance(node.func, ast.Attribute) else None
    if name in UNWRAP:
        if len(node.args) == 1 and target is not None and name in ("transpose", "swapaxes",
                                                                   "astype", "min", "max"):
            if name in ("transpose", "swapaxes"):
                yield f"without the .{name}(...)", lambda n: n.func.value
        elif node.args and name not in ("min", "max"):
            yield f"without {name}(...)", lambda n: n.args[0]
    if name in MOVE_INTO and len(node.args) == 1 and isinstance(node.args[0], ast.BinOp) \
            and isinstance(node.args[0].op, ast.Add):
        inner = node.args[0]
        yield (f"{text(inner.right)} added outside the {name}, not inside",
               lambda n: ast.BinOp(with_call(n, n.args[0].left), ast.Add(), n.args[0].right))
    if name in ("var", "std") and not any(kw.arg == "ddof" for kw in node.keywords):
        yield f"the {name} with ddof=1 (divided by n - 1)", \
            lambda n: (n.keywords.append(ast.keyword("ddof", ast.Constant(1))), n)[1]


def binop_edits(node):
    """(description, replace(node) -> node) for a binary operation."""
    left, right, op = text(node.left), text(node.right), type(node.op)
    if op in (ast.Add, ast.Sub):
        yield f"the term {right} left out", lambda n: n.left
        if op is ast.Add:
            yield f"the term {left} left out", lambda n: n.right
    if op is ast.Mult:
        yield f"the factor {right} left out", lambda n: n.left
        yield f"the factor {left} left out", lambda n: n.right
    if op is ast.Div:
        yield f"without the division by {right}", lambda n: n.left
        yield (f"divided by {right} - 1 instead of {right}",
               lambda n: ast.BinOp(n.left, ast.Div(),
                                   ast.BinOp(n.right, ast.Sub(), ast.Constant(1))))
    if op is ast.MatMult:
        yield f"{left} transposed (its last two axes swapped)", \
            lambda n: ast.BinOp(swap_last(n.left), ast.MatMult(), n.right)
        yield f"{right} not transposed the same way (its last two axes swapped)", \
            lambda n: ast.BinOp(n.left, ast.MatMult(), swap_last(n.right))
    if op is ast.Add and isinstance(node.left, ast.Call) and callee(node.left) in MOVE_INTO \
            and len(node.left.args) == 1:
        yield (f"{right} inside the {callee(node.left)}, not added outside",
               lambda n: with_call(n.left, ast.BinOp(n.left.args[0], ast.Add(), n.right)))


def bracket_edits(node):
    """c * (a + b) -> c * a + b and (a + b) * c -> a + b * c: a bracket closed early; and
    a * c + b -> (a + b) * c: an offset added before a scale instead of after."""
    if isinstance(node.op, (ast.Add, ast.Sub)) and isinstance(node.left, ast.BinOp) \
            and isinstance(node.left.op, ast.Mult):
        sign = "+" if isinstance(node.op, ast.Add) else "-"
        yield (f"{sign} {text(node.right)} before the factor {text(node.left.right)}, not after",
               lambda n: ast.BinOp(ast.BinOp(n.left.left, n.op, n.right), ast.Mult(),
                                   n.left.right))
    if not isinstance(node.op, ast.Mult):
        return
    if isinstance(node.right, ast.BinOp) and isinstance(node.right.op, (ast.Add, ast.Sub)):
        yield (f"the bracket closed early: {text(node.left)} * {text(node.right.left)} ... "
               f"instead of {text(node.left)} * ({text(node.right)})",
               lambda n: ast.BinOp(ast.BinOp(n.left, ast.Mult(), n.right.left), n.right.op,
                                   n.right.right))
    if isinstance(node.left, ast.BinOp) and isinstance(node.left.op, (ast.Add, ast.Sub)):
        yield (f"the bracket closed late: ... {text(node.left.right)} * {text(node.right)} "
               f"instead of ({text(node.left)}) * {text(node.right)}",
               lambda n: ast.BinOp(n.left.left, n.left.op, ast.BinOp(n.left.right, ast.Mult(),
                                                                     n.right)))


def rename(node, name, other):
    """Every load of `name` under `node` made a load of `other`."""
    for n in ast.walk(node):
        if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load) and n.id == name:
            n.id = other


def flow_edits(node):
    """A condition taken as always true or false; a loop over a slice of its items."""
    if isinstance(node, (ast.If, ast.IfExp)):
        for value in (True, False):
            yield (f"the condition {text(node.test)} taken as always {str(value).lower()}",
                   lambda n, value=value: (setattr(n, "test", ast.Constant(value)), n)[1])
    if isinstance(node, ast.For):
        for part, what in (("[:1]", "only the first of"), ("[1:]", "the first skipped of"),
                           ("[::-1]", "in reverse order,")):
            yield (f"the loop over {what} {text(node.iter)}",
                   lambda n, part=part: (setattr(n, "iter", ast.parse(
                       f"({text(n.iter)}){part}", mode="eval").body), n)[1])


def bound_names(tree):
    """The function's arguments and the names it assigns."""
    names = {a.arg for a in tree.args.args + tree.args.kwonlyargs}
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
    return names


MAX_NAMES = 16  # "another variable" only in functions with at most this many names


def edit_sites(node, names=frozenset()):
    """(description, replace(node) -> node): the mutants' changes and the meaningful edits;
    `names` are the variables another may stand for."""
    for desc, change in node_sites(node):
        if not desc.startswith("statement deleted"):
            yield desc, lambda n, change=change: (change(n), n)[1]
    yield from flow_edits(node)
    if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load) and node.id in names:
        for other in sorted(names - {node.id}):
            yield (f"{other} where the reference uses {node.id}",
                   lambda n, other=other: (setattr(n, "id", other), n)[1])
    if isinstance(node, ast.Call):
        for j, arg in enumerate(node.args):
            if isinstance(arg, ast.Name) and arg.id in names:
                yield (f"1 passed where the reference passes {arg.id}",
                       lambda n, j=j: (n.args.__setitem__(j, ast.Constant(1)), n)[1])
    if isinstance(node, (ast.Assign, ast.Return, ast.AugAssign)):
        used = [n.id for n in ast.walk(node) if isinstance(n, ast.Name)
                and isinstance(n.ctx, ast.Load) and n.id in names]
        for name in sorted({u for u in used if used.count(u) > 1}):
            for other in sorted(names - {name}):
                yield (f"{other} for every {name} of the line",
                       lambda n, name=name, other=other: (rename(n, name, other), n)[1])
    if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Attribute) \
            and node.value.attr == "shape" and constant(node.slice) not in ("?", None):
        old = constant(node.slice)
        for new in AXES[:-1]:
            if new != old:
                yield (f"shape[{new}] instead of shape[{old}]",
                       lambda n, new=new: (setattr(n, "slice", ast.Constant(new)), n)[1])
    if isinstance(node, ast.Call):
        yield from call_edits(node)
    elif isinstance(node, ast.BinOp):
        yield from binop_edits(node)
        yield from bracket_edits(node)
    elif isinstance(node, ast.Constant) and constant(node) not in ("?", None, 0):
        yield f"{node.value} -> {node.value - 1}", \
            lambda n: (setattr(n, "value", n.value - 1), n)[1]
    elif isinstance(node, ast.Constant) and isinstance(node.value, float) and node.value:
        for factor in (10.0, 0.1):
            yield (f"{node.value!r} -> {node.value * factor:.6g} (a decimal point moved)",
                   lambda n, factor=factor: (setattr(n, "value", n.value * factor), n)[1])
    elif isinstance(node, ast.Return) and node.value is not None \
            and not isinstance(node.value, ast.Tuple):
        yield "the sign of the result flipped", \
            lambda n: (setattr(n, "value", ast.UnaryOp(ast.USub(), n.value)), n)[1]


def parents(tree):
    """{id(child): (parent, field, index or None)}."""
    out = {}
    for parent in ast.walk(tree):
        for field, value in ast.iter_fields(parent):
            if isinstance(value, list):
                for j, child in enumerate(value):
                    if isinstance(child, ast.AST):
                        out[id(child)] = (parent, field, j)
            elif isinstance(value, ast.AST):
                out[id(value)] = (parent, field, None)
    return out


def put(parent, field, j, new):
    if j is None:
        setattr(parent, field, new)
    else:
        getattr(parent, field)[j] = new


def statement_of(node, up):
    while id(node) in up and not isinstance(node, ast.stmt):
        node = up[id(node)][0]
    return node


def line_text(stmt):
    """One statement as one line (a block's header only)."""
    if isinstance(stmt, (ast.For, ast.If, ast.While, ast.With, ast.FunctionDef)):
        head = copy.copy(stmt)
        head.body, head.orelse = [ast.Pass()], []
        return ast.unparse(head).splitlines()[0]
    return " ".join(ast.unparse(stmt).split())


def function_variants(fn):
    """[(id, description, where, before, after, variant function)] of one function."""
    from .mutants import build

    tree = parse(fn)
    skip = left_alone(tree)
    body = tree.body[1:] if ast.get_docstring(tree) else tree.body
    inside = {id(n) for stmt in body for n in ast.walk(stmt)}
    file, first = fn.__module__.replace(".", "/") + ".py", inspect.getsourcelines(fn)[1]
    out, seen, ids = [], set(), {}
    for desc, change in every_axis(tree):
        altered = copy.deepcopy(tree)
        change(altered)
        try:
            variant = build(fn, altered)
        except Exception:  # noqa: BLE001
            continue
        before = [line_text(s) for s in tree.body]
        after = [line_text(s) for s in altered.body]
        changed = [(b, a) for b, a in zip(before, after) if b != a]
        out.append((f"{fn.__name__}: {desc}", desc, f"{fn.__name__} ({file})",
                    "\n".join(b for b, _ in changed), "\n".join(a for _, a in changed), variant))
    names = bound_names(tree)
    names = names if len(names) <= MAX_NAMES else frozenset()
    for k, top in enumerate(tree.body):
        for i, node in enumerate(ast.walk(top)):
            if id(node) in skip or id(node) not in inside:
                continue
            for desc, replace in edit_sites(node, names):
                edited = one_edit(tree, k, i, replace)
                if edited is None:
                    continue
                altered, stmt_before, after = edited
                if after == stmt_before or (node.lineno, after) in seen:
                    continue
                seen.add((node.lineno, after))
                try:
                    variant = build(fn, altered)
                except Exception:  # noqa: BLE001 (an edit that does not compile is no variant)
                    continue
                where = f"{fn.__name__} ({file} line {first + node.lineno - 1})"
                vid = f"{fn.__name__} line {node.lineno - 1}: {desc}"
                ids[vid] = ids.get(vid, 0) + 1  # ids are unique: they key the outcomes' cache
                out.append((vid + (f" #{ids[vid]}" if ids[vid] > 1 else ""), desc, where,
                            stmt_before, after, variant))
    return out


def one_edit(tree, k, i, replace):
    """(the function with node i of its statement k replaced, that statement's line before
    and after), or None; only statement k is copied."""
    top = copy.deepcopy(tree.body[k])
    target = list(ast.walk(top))[i]
    holder = ast.Module(body=[top], type_ignores=[])
    up = parents(holder)
    before = line_text(statement_of(target, up))
    new = replace(target)
    if new is not target:
        put(*up[id(target)], new)
    up = parents(holder)
    try:
        after = line_text(statement_of(new if id(new) in up else target, up))
    except Exception:  # noqa: BLE001 (an edit that does not unparse is no variant)
        return None
    altered = copy.copy(tree)
    altered.body = tree.body[:k] + holder.body + tree.body[k + 1:]
    return altered, before, after


VARIANTS = {}  # exercise number: its variants, made once


def variants(ex):
    """[(id, description, where, before, after, function with the reference's signature)]."""
    if ex["number"] not in VARIANTS:
        made = []
        for target in list(ex["targets"]) + list(ex["explain_targets"]):
            for vid, desc, where, before, after, fn in function_variants(target):
                made.append((vid, desc, where, before, after, candidate(ex, target, fn)))
        for formula in ex["formulas"]:  # the variant itself stands for the reference
            made += function_variants(formula)
        VARIANTS[ex["number"]] = made
    return VARIANTS[ex["number"]]


WORDS = {"+ -> -": "- where the reference adds", "- -> +": "+ where the reference subtracts",
         "* -> /": "a division where the reference multiplies",
         "/ -> *": "a multiplication where the reference divides",
         "** -> *": "* where the reference raises to a power", "@ -> *": "* where the reference "
         "has a matrix product @", "// -> /": "/ where the reference has //",
         "unary - dropped": "a minus sign left out", "keepdims dropped": "without keepdims=True",
         "if-else branches swapped": "the two branches of an if-else swapped",
         "not dropped": "a `not` left out"}


def words(desc):
    """A mutant's change in words ("a division where the reference multiplies")."""
    if desc in WORDS:
        return WORDS[desc]
    if " -> " in desc and desc.split(" -> ")[0].startswith("."):
        old, new = desc.split(" -> ")
        return f"{new}() where the reference has {old}()"
    return desc


def variant_text(desc, where, before, after):
    """The words of a matching variant."""
    before, after = (t.replace("\n", "\n" + " " * 17) for t in (before, after))
    return (f"your values equal the reference's with one change, {words(desc)}, in {where}:\n"
            f"  the reference: {before}\n  yours acts as: {after}")
