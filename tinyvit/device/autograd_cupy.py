"""Teaching autograd a device array type (CuPy's, or a test stand-in's).

HIPS autograd never supported CuPy (autograd issue #46). `register_array_type(cls, xp)` teaches
it the array type `cls` of the array module `xp` in three steps:

1. the box: `ArrayBox.register(cls)` (autograd looks up the exact type of every value);
2. the vector space: a `VSpace` whose zeros/ones/basis are made by `xp` (autograd's own
   `ArrayVSpace` starts with `np.asarray(value)`, an implicit device-to-host copy);
3. the few autograd functions that the model's gradients reach and that make host arrays, or
   pass host arrays where CuPy wants device ones. Each registered VJP becomes a switch: NumPy
   inputs run autograd's own VJP, untouched (NumPy results stay bit-identical), device inputs
   a device-neutral twin. Fast path = the fast twins (`tinyvit.fast`); plain path = the
   formulas of `tinyvit.ops` / `tinyvit.cnn`, differentiated by autograd.

   ==============  =====================================  =====================================
   override        model operation that reaches it        autograd's own on device arrays
   ==============  =====================================  =====================================
   sum VJP         `z.sum(1)`: ViT "gap" pooling, CNN      `repeat_to_match_shape` reshapes by a
                   global pooling (both paths); plain      host-array shape and adds
                   LayerNorm, GroupNorm, softmax, loss     `onp.zeros(shape)` (host)
   max VJP         `max_pool`'s reshape-and-max (plain     the same `repeat_to_match_shape`
                   CNN)
   reshape VJP     every `x.reshape` (both paths)          `reshape(g, shape, order=None)`:
                                                           CuPy refuses order=None
   transpose VJP   patchify, split/merge heads, k^T        axes from `np.argsort`: a host array
                   (ViT, both paths)
   x[idx] VJP      `first_token`'s z[:, 0] (plain ViT      `onp.add.at(A, idx, g)`: CuPy's
                   "cls"), `im2col`'s shifted windows      `__array_ufunc__` refuses a slice or
                   (plain CNN)                             tuple index
   concatenate     `np.concatenate([cls, x])` (ViT         ends in `.view(numpy.ndarray)`,
                   "cls"), the VJP of `np.split` in        which CuPy reads as a dtype
                   attention (ViT, both paths), `np.stack`
                   in `im2col` (plain CNN)
   anp.array(x)    `np.stack` in `im2col` calls it on      `np.array(x)`: an implicit host copy
                   every window (plain CNN)
   ==============  =====================================  =====================================

   The last two are forward functions, not VJPs: `_array_from_scalar_or_array` (behind
   `anp.array(x)`) and `concatenate_args` (behind `concatenate`, `stack`, split's VJP) are
   replaced by primitives that call `xp` for device inputs and keep autograd's VJPs.

Not covered: every other autograd function that makes host arrays from device ones (VJPs of
mean, var, std, prod, min, where, dot, tensordot, einsum, sort, ...; `anp.array` of a list;
complex device arrays; forward-mode JVPs). tinyvit's model does not reach them; a gradient
that does fails loudly on CuPy (TypeError), it is not silently wrong.

These rely on autograd's internals: written and tested against autograd==1.9.1 (pinned in
requirements.txt); another version gives a warning on the first registration.
`install_autograd_overrides()` / `uninstall_autograd_overrides()` switch them on and off, as
one layer of `tinyvit.support.substitute` held open (`register_array_type` calls the first;
the second is for tests).
"""
import importlib.metadata
import warnings

import numpy
import numpy as onp  # host-side metadata, as in autograd's numpy_vjps

import autograd.numpy as _anp_pkg
import autograd.numpy.numpy_wrapper as anp
from autograd.core import primitive_jvps, primitive_vjps
from autograd.extend import SparseObject, VSpace, defvjp, primitive, vspace
from autograd.numpy.numpy_boxes import ArrayBox
from autograd.numpy.numpy_vspaces import ArrayVSpace
from autograd.tracer import getval
from autograd.util import func

from ..arrays import array_module
from ..support.substitute import Layer

AUTOGRAD_VERSION = "1.9.1"  # the version whose internals the overrides below replace

_REGISTERED = {}  # registered device array type -> its array module


def _vspace_class(xp):
    """A real vector space whose arrays are made by `xp`."""

    class DeviceArrayVSpace(ArrayVSpace):
        def __init__(self, value):  # shape and dtype only: no np.asarray(value)
            if value.dtype.kind == "c":
                raise ValueError(f"tinyvit.device: expected a real device array, found "
                                 f"dtype {value.dtype} (complex gradients are not supported)")
            self.shape = tuple(value.shape)
            self.dtype = value.dtype

        def zeros(self):
            return xp.zeros(self.shape, dtype=self.dtype)

        def ones(self):
            return xp.ones(self.shape, dtype=self.dtype)

        def standard_basis(self):
            for idxs in onp.ndindex(*self.shape):
                vect = xp.zeros(self.shape, dtype=self.dtype)
                vect[idxs] = 1
                yield vect

    return DeviceArrayVSpace


def register_array_type(cls, xp):
    """Teach autograd the array type `cls` of module `xp` (e.g. `cupy.ndarray`, `cupy`).

    Registers the box and a vector space made by `xp`, and installs the device-safe VJPs
    (once; NumPy inputs keep autograd's own). Idempotent. `tinyvit.arrays.array_module` must
    know `cls`'s arrays: CuPy's, or a type whose `__array_module__` is `xp`.
    """
    if cls in _REGISTERED:
        return
    if cls is numpy.ndarray:
        raise ValueError("register_array_type: numpy.ndarray is autograd's own type already")
    install_autograd_overrides()
    ArrayBox.register(cls)
    VSpace.register(cls, _vspace_class(xp))
    _REGISTERED[cls] = xp


def _on_device(args):
    """True if a (possibly boxed) argument, or an element of a list/tuple one, is a device
    array of a registered type."""
    for a in args:
        a = getval(a)
        if type(a) in _REGISTERED:
            return True
        if isinstance(a, (list, tuple)) and any(type(getval(b)) in _REGISTERED for b in a):
            return True
    return False


# ---------------------------------------------------------------------------------------------
# Device-neutral VJPs (run only when an input is a registered device array)
# ---------------------------------------------------------------------------------------------


def _repeat_to_match_shape(g, shape, dtype, axis, xp):
    """autograd's `repeat_to_match_shape` with zeros made by `xp` and an int-tuple shape."""
    if shape == ():
        return g, 1
    axis = list(axis) if isinstance(axis, tuple) else axis
    new_shape = onp.array(shape)
    new_shape[axis] = 1
    num_reps = onp.prod(onp.array(shape)[axis])
    return anp.reshape(g, tuple(int(i) for i in new_shape)) + xp.zeros(shape, dtype), num_reps


def _grad_sum(ans, x, axis=None, keepdims=False, dtype=None, **kwargs):
    shape, dt, xp = anp.shape(x), anp.result_type(x), array_module(x)
    return lambda g: _repeat_to_match_shape(g, shape, dt, axis, xp)[0]


def _grad_max(ans, x, axis=None, keepdims=None, **kwargs):
    """autograd's `grad_chooser`: g split evenly among the maxima (ties share)."""
    shape, dt, xp = anp.shape(x), anp.result_type(x), array_module(x)

    def vjp(g):
        g_repeated, _ = _repeat_to_match_shape(g, shape, dt, axis, xp)
        argmax_locations = x == _repeat_to_match_shape(ans, shape, dt, axis, xp)[0]
        return g_repeated * argmax_locations / onp.sum(argmax_locations, axis=axis, keepdims=True)

    return vjp


def _grad_reshape(ans, x, shape=None, order=None, **kwargs):
    x_shape = anp.shape(x)
    if order is None:  # autograd passes order=None, which CuPy's reshape refuses
        return lambda g: anp.reshape(g, x_shape)
    return lambda g: anp.reshape(g, x_shape, order=order)


def _grad_transpose(ans, x, axes=None):
    if axes is not None:
        axes = tuple(int(i) for i in onp.argsort(axes))  # ints, not a host array
    return lambda g: anp.transpose(g, axes)


def _is_basic_index(idx):
    """Ints, slices, None and Ellipsis only: each element is addressed at most once."""
    parts = idx if isinstance(idx, tuple) else (idx,)
    return all(p is None or p is Ellipsis or isinstance(p, (int, slice, onp.integer))
               and not isinstance(p, bool) for p in parts)


@primitive
def _untake(x, idx, vs):
    """Sparse gradient of A[idx]: adds x into A at idx, on A's device."""

    def mut_add(A):
        xp = array_module(A)
        if _is_basic_index(idx):
            A[idx] += x  # a view of distinct elements: plain in-place add
        else:
            index = idx
            if isinstance(index, list) and (len(index) == 0 or not isinstance(index[0], slice)):
                index = xp.asarray(onp.array(index, dtype="int64"))
            xp.add.at(A, index, x)  # repeated indices accumulate
        return A

    return SparseObject(vs, mut_add)


defvjp(_untake, lambda ans, x, idx, _: lambda g: g[idx])


def _grad_getitem(ans, A, idx):
    return lambda g: _untake(g, idx, vspace(A))


# ---------------------------------------------------------------------------------------------
# Forward functions of autograd that go through the host
# ---------------------------------------------------------------------------------------------


def _device_twin(original, device_impl):
    """A primitive that runs `device_impl` for device inputs and autograd's own `original`
    otherwise, with `original`'s VJP and JVP (their makers call nothing by identity)."""

    def raw(*args, **kwargs):
        if _on_device(args):
            return device_impl(*args, **kwargs)
        return original.fun(*args, **kwargs)  # autograd's own: NumPy unchanged

    raw.__name__ = original.__name__
    twin = primitive(raw)
    primitive_vjps[twin] = primitive_vjps[original]
    if original in primitive_jvps:
        primitive_jvps[twin] = primitive_jvps[original]
    return twin


_FORWARD_TWINS = {  # looked up at call time by anp.concatenate, anp.stack, anp.array
    "concatenate_args": _device_twin(
        anp.concatenate_args, lambda axis, *args: onp.concatenate(args, axis)),
    "_array_from_scalar_or_array": _device_twin(
        anp._array_from_scalar_or_array,
        lambda array_args, array_kwargs, scalar:
            array_module(scalar).array(scalar, *array_args, **array_kwargs)),
}

_ORIGINAL_FORWARDS = {name: getattr(anp, name) for name in _FORWARD_TWINS}

# ---------------------------------------------------------------------------------------------
# Installing the switches
# ---------------------------------------------------------------------------------------------

def _switch(fun, device_vjp_argnums):
    """fun's VJP that runs `device_vjp_argnums` for device inputs and autograd's own
    otherwise."""
    host_vjp_argnums = primitive_vjps[fun]

    def vjp_argnums(argnums, ans, args, kwargs):
        chosen = device_vjp_argnums if _on_device(args) else host_vjp_argnums
        return chosen(argnums, ans, args, kwargs)

    return vjp_argnums


def _made_by_defvjp(fun, vjp_maker):
    """The vjp_argnums that `defvjp(fun, vjp_maker)` would register, without registering it."""
    saved = primitive_vjps[fun]
    defvjp(fun, vjp_maker)
    made = primitive_vjps[fun]
    primitive_vjps[fun] = saved
    return made


def _device_vjps():
    """{primitive: device vjp_argnums} for every VJP replaced on device inputs."""
    table = [
        (anp.sum, _grad_sum),
        (anp.max, _grad_max),
        (anp.reshape, _grad_reshape),
        (anp.transpose, _grad_transpose),
        (func(ArrayBox.__getitem__), _grad_getitem),
    ]
    return {fun: _made_by_defvjp(fun, maker) for fun, maker in table}


def _check_autograd_version():
    try:
        found = importlib.metadata.version("autograd")
    except importlib.metadata.PackageNotFoundError:
        found = None
    if found != AUTOGRAD_VERSION:
        warnings.warn(f"tinyvit.device replaces VJPs of autograd=={AUTOGRAD_VERSION}, found "
                      f"autograd {found}: device gradients may be wrong or fail",
                      RuntimeWarning, stacklevel=3)


_OVERRIDES = []  # the substitution layer while installed (`tinyvit.support.substitute`)


def overrides():
    """The device switches as substitutions: autograd's VJP table entries and forwards."""
    vjps = [(primitive_vjps, fun, _switch(fun, device)) for fun, device in _device_vjps().items()]
    forwards = [(module, name, twin) for name, twin in _FORWARD_TWINS.items()
                for module in (anp, _anp_pkg)]
    return vjps + forwards


def install_autograd_overrides():
    """Install the device switches, a substitution layer held open (idempotent;
    `register_array_type` calls it)."""
    if _OVERRIDES:
        return
    _check_autograd_version()
    _OVERRIDES.append(Layer(overrides()))


def uninstall_autograd_overrides():
    """Give autograd back its own VJPs and forwards (for tests; device arrays then fail)."""
    while _OVERRIDES:
        _OVERRIDES.pop().remove()
