"""Putting functions into the library for a while, the way `tinyvit.fast` switches its twins.

The model looks its operations up as module attributes when it runs (`ops.softmax(...)` in
`tinyvit.layers`, `layers.block(...)` in `tinyvit.vit`), so setting such an attribute puts
another function into every forward and backward pass until it is set back: a layer of
`tinyvit.support.substitute`, the one mechanism the fast twins and the device use too (a
student's function inside the fast twins stays in place). The capstone
puts a student's passed functions in; a catalogued mistake or a mutant may swap one helper.
A hand-written gradient goes in as an autograd primitive: the forward that is in place, with
the student's VJP.
"""
from autograd.extend import defvjp, primitive

from ..support.substitute import substituted


def swapped(changes):
    """`with swapped([(module, name, value), ...]):` those attributes set, restored after."""
    return substituted(changes)


def replace(fn, current):
    """A patch's `wrap` for a function with the library's signature: the function itself."""
    return fn


def with_vjp(forward, *vjps):
    """An autograd primitive computing `forward`, differentiated by `vjps` (autograd's
    defvjp makers, one per differentiable argument: vjp(ans, *args) -> (g -> gradient))."""
    f = primitive(lambda *args, **kwargs: forward(*args, **kwargs))
    defvjp(f, *vjps)
    return f
