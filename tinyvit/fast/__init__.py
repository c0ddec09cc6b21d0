"""Speed, kept apart from the model: fast twins of the formulas, and a memory setting.

The model (`tinyvit.ops`, `tinyvit.cnn`) is written as formulas that autograd differentiates.
Each formula listed in `TWINS` has a fast twin here: the same function as an autograd
primitive with a hand-derived VJP (`tinyvit/fast/ops.py`, `cnn.py`, `conv.py`), tested
equal to its formula in values and gradients (`tests/test_fast.py`).

    fast.enable()             the model calls the fast twins (training does this)
    fast.disable()            the model calls the formulas again (the state after import)
    with fast.formulas(): ... the formulas for a block, whatever was on before
    with fast.twins(): ...    the fast twins for a block
    fast.disable(["gelu"])    one formula back, the others as they were (benchmarks/levers.py)

How: the model looks each operation up in its module when it runs (`ops.softmax(...)` in
`tinyvit.layers`, `im2col(...)` inside `tinyvit.cnn`), and every switch is a layer of
`tinyvit.support.substitute` over those attributes: `twins()` and `formulas()` scoped ones,
`enable` / `disable` one held open. A twin stands in only for its formula, so a function
put in place of a formula (a student's, `tinyvit.exercises`) stays there whichever is
switched first; `formulas()` takes back only twins. Code that imported a function by name
(`from tinyvit.ops import softmax`) keeps the one it got.

`sharded(grad_fn, shards)` (`tinyvit/fast/shards.py`) runs a training step's forward and
backward as one shard of the batch per core, each in a thread (training does this);
`sharded_map(fn, x, shards)` a forward pass (evaluation) the same way, and
`map_in_threads(fn, items, shards)` independent items (BatchNorm's statistics batches).

`keep_freed_memory()` (`tinyvit/fast/malloc.py`) tunes glibc's allocator so freed
activations are reused; it changes the whole process, so it is opt-in: training turns it on.
"""
from .. import cnn as model_cnn
from .. import ops as model_ops
from ..support.substitute import Layer, substituted
from . import cnn as fast_cnn  # the submodules, tinyvit.fast.cnn and tinyvit.fast.ops
from . import conv as fast_conv
from . import ops as fast_ops
from .malloc import keep_freed_memory  # noqa: F401  (tinyvit.fast.keep_freed_memory)
from .shards import SHARDS, chunked, map_in_threads, sharded, sharded_map  # noqa: F401

# name: (module whose attribute the model calls, the formula, its fast twin)
TWINS = {
    "layer_norm": (model_ops, model_ops.layer_norm, fast_ops.layer_norm),
    "softmax": (model_ops, model_ops.softmax, fast_ops.softmax),
    "gelu": (model_ops, model_ops.gelu, fast_ops.gelu),
    "cross_entropy": (model_ops, model_ops.cross_entropy, fast_ops.cross_entropy),
    "first_token": (model_ops, model_ops.first_token, fast_ops.first_token),
    "im2col": (model_cnn, model_cnn.im2col, fast_cnn.im2col),
    "max_pool": (model_cnn, model_cnn.max_pool, fast_cnn.max_pool),
    "group_norm": (model_cnn, model_cnn.group_norm, fast_cnn.group_norm),
    "batch_norm": (model_cnn, model_cnn.batch_norm, fast_cnn.batch_norm),
    "conv": (model_cnn, model_cnn.conv, fast_conv.conv),
}
VIT_TWINS = ("layer_norm", "softmax", "gelu", "cross_entropy", "first_token")
CNN_TWINS = ("im2col", "max_pool", "group_norm", "batch_norm", "conv")


def _names(names):
    """All names, or the given ones checked against the table."""
    if names is None:
        return list(TWINS)
    names = [names] if isinstance(names, str) else list(names)
    unknown = [n for n in names if n not in TWINS]
    if unknown:
        raise ValueError(f"tinyvit.fast: unknown operation {unknown[0]!r}; expected one of "
                         f"{', '.join(TWINS)}")
    return names


def _changes(names, use_fast):
    """The substitutions that put the twins (or the formulas back) in place of those named."""
    out = []
    for name in _names(names):
        module, formula, twin = TWINS[name]
        out.append((module, name, twin, formula) if use_fast else (module, name, formula, twin))
    return out


_SETTING = Layer()  # what enable / disable switched on, under every scoped switch
_ON = []  # the names enable switched on


def enable(names=None):
    """Make the model call the fast twins (all, or the named ones) until `disable`."""
    _ON[:] = [n for n in TWINS if n in _ON or n in _names(names)]
    _SETTING.update(_changes(_ON, True))


def disable(names=None):
    """Make the model call the formulas (all, or the named ones) again."""
    off = _names(names)
    _ON[:] = [n for n in _ON if n not in off]
    _SETTING.update(_changes(_ON, True))


def enabled():
    """The names whose fast twin the model calls now."""
    return [n for n, (module, _, twin) in TWINS.items() if getattr(module, n) is twin]


def formulas(names=None):
    """`with fast.formulas():` the model runs the formulas (all, or the named ones)."""
    return substituted(_changes(names, False))


def twins(names=None):
    """`with fast.twins():` the model runs the fast twins (all, or the named ones)."""
    return substituted(_changes(names, True))
