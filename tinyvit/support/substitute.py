"""Putting another function in place of an operation, for a while: the one way tinyvit does it.

The model looks each operation up in its module when it runs (`ops.softmax(...)` in
`tinyvit.layers`, `im2col(...)` inside `tinyvit.cnn`), so the function that runs is the
module attribute. Every substitution is a layer over those attributes:

    with substituted([(ops, "softmax", my_softmax)]):   # a scoped layer
        ...                                              # every forward and backward uses it
    layer = Layer([...]); layer.update([...]); layer.remove()   # one held open (a setting)

An attribute's value is computed from the layers in the order they were opened: the
original, then each layer that names it. A change may stand in only for one function
(`over=`): a fast twin replaces the formula it equals, never a function someone else put
there, so a student's softmax inside the fast twins runs, and the fast twins switched on
inside a student's softmax leave it in place. Layers may close in any order (the values
are recomputed from those still open), and opening and closing are serialised by a lock, so
threads see one consistent value per attribute. A substitution is process-wide for its
duration: the training step's shard threads (`tinyvit.fast.shards`) all run it, and one opened
inside a shard's thread is seen by the other shards while it is open (open substitutions
before the shards start; the model never opens one inside a step).

Code that imported a function by name (`from tinyvit.ops import softmax`) keeps the one it
got; the model's own modules never do that.
"""
import threading
from contextlib import contextmanager
from typing import Any, NamedTuple

_lock = threading.RLock()
_open = []  # the layers now open, oldest first
_original = {}  # (id(target), name) -> (target, the value before any layer)


class Change(NamedTuple):
    """target.name (target[name] for a dict) := value, where the value beneath is `over`
    (always, for None)."""

    target: Any
    name: Any
    value: Any
    over: Any = None

    @property
    def key(self):
        return id(self.target), self.name


MISSING = object()  # the value of an attribute (or key) that did not exist before any layer


def _get(target, name):
    return target.get(name, MISSING) if isinstance(target, dict) else getattr(target, name,
                                                                              MISSING)


def _put(target, name, value):
    if value is MISSING:
        if isinstance(target, dict):
            target.pop(name, None)
        elif hasattr(target, name):
            delattr(target, name)
    elif isinstance(target, dict):
        target[name] = value
    else:
        setattr(target, name, value)


def _recompute(keys):
    """Set each (target, name) of `keys` to the value its open layers give it."""
    for key in keys:
        target, value = _original[key]
        for layer in _open:
            for c in layer.changes:
                if c.key == key and (c.over is None or value is c.over):
                    value = c.value
        _put(target, key[1], value)


class Layer:
    """A set of changes held open until `remove()`; `update` changes them in place."""

    def __init__(self, changes=()):
        self.changes = []
        with _lock:
            _open.append(self)
            self.update(changes)

    def update(self, changes):
        """Replace this layer's changes (attributes it no longer names get theirs back)."""
        changes = [Change(*c) for c in changes]  # (target, name, value[, over]) tuples
        with _lock:
            for c in changes:
                _original.setdefault(c.key, (c.target, _get(c.target, c.name)))
            touched = {c.key for c in self.changes + changes}
            self.changes = changes
            _recompute(touched)

    def remove(self):
        """Close the layer: its attributes get the values the other open layers give them."""
        with _lock:
            if self in _open:
                touched = {c.key for c in self.changes}
                _open.remove(self)
                _recompute(touched)


@contextmanager
def substituted(changes):
    """`with substituted([(target, name, value[, over]), ...]):` a layer, closed after."""
    layer = Layer(changes)
    try:
        yield layer
    finally:
        layer.remove()
