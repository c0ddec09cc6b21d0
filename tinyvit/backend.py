"""Which array library holds an array: NumPy on the CPU, or CuPy on a GPU.

The model code is written once with `autograd.numpy`. NumPy's dispatch protocols
(`__array_function__`, `__array_ufunc__`) send those calls to CuPy when the inputs are CuPy
arrays, so the only places in tinyvit that must know the array library are those that *create*
arrays from nothing (zeros, arange, random masks). They ask `array_module(x)` for the right one.
Beware the NumPy functions that do *not* dispatch on their input (`np.array`, `np.asarray`,
`np.ascontiguousarray`, `np.zeros`, ...): on a CuPy array they are an implicit host copy,
which CuPy refuses (TypeError). Use methods (`x.copy()`, `x.astype(...)`), `np.zeros_like(x)`
or `array_module(x).asarray(...)` instead.

Autograd itself (HIPS/autograd never supported CuPy, issue #46) needs three things taught, which
`register_array_type(cls, xp)` does for any array type `cls` of an array module `xp`:

1. the box: `ArrayBox.register(cls)` (autograd looks up the exact type of every value);
2. the vector space: a `VSpace` whose zeros/ones/basis live in `xp` (autograd's own
   `ArrayVSpace` starts with `np.asarray(value)`, an implicit device-to-host copy, and makes
   its zeros with `np.zeros`);
3. VJPs that create host arrays or pass host arrays where CuPy wants device ones. For these
   the registered VJP becomes a switch: NumPy inputs run autograd's own VJP, untouched (so
   NumPy results are bit-identical), device inputs run a device-neutral twin:

   ================================  ===========================================================
   sum, mean, prod, var, std,        `repeat_to_match_shape` adds `onp.zeros(shape)` (host) and
   max, min, amax, amin              reshapes by a NumPy array -> zeros made in `xp`, int shape
   reshape, ravel                    `reshape(g, shape, order=None)`: CuPy refuses order=None
   transpose                         axes from `np.argsort` (a host array) -> tuple of ints
   where                             `np.zeros(g.shape)` (host) -> `xp.zeros`
   dot (+ its adjoints)              `onp.asarray(out, dtype)`: implicit copy to the host
   tensordot, inner (+ adjoints)     axes and permutations as host arrays -> lists of ints
   einsum                            parses operands with `asanyarray` (host copy) and makes
                                     `onp.ones` for summed-out axes -> shape-only stand-ins, xp
   x[idx] (ArrayBox.__getitem__)     `onp.add.at(A, idx, g)`: CuPy's `__array_ufunc__` refuses
                                     a slice/tuple index; list indices become a host array
                                     -> `A[idx] += g` for basic indices, else `xp.add.at`
   ================================  ===========================================================

   and, the same way, autograd's own forward functions that go through the host: `concatenate`
   (behind `stack`, `hstack`, `vstack`, `append` and the VJP of `split`) ends in
   `.view(numpy.ndarray)`, which CuPy reads as a dtype; `anp.array(x)` (behind `stack`)
   calls `np.array(x)`, an implicit host copy. For device inputs they call `xp` instead.

Not covered (they still make host arrays or host-index device arrays; tinyvit does not use them):
VJPs of sort/partition, trace, diff, gradient, diagonal/make_diagonal, linspace, power with a
NumPy-scalar exponent, and every forward-mode JVP. Device copies that remain in tinyvit by
design: the dropout mask is drawn by the host `numpy.random.Generator` (so CPU and GPU runs
are the same function of the seed) and copied in with `xp.asarray`.

These rely on autograd's internals: written and tested against autograd==1.9.1 (pinned in
requirements.txt); another version gives a warning on the first registration.

API: `array_module(x)`, `use_backend("numpy" | "cupy" | module)`, `current_backend()`,
`register_array_type(cls, xp)`, `to_device(tree, xp=None)`, `to_host(tree)`,
`cupy_available()`; `install_autograd_overrides()` / `uninstall_autograd_overrides()`
(called by `register_array_type`; the second one is for tests).
"""
import importlib.metadata
import warnings
from functools import partial

import numpy
import numpy as onp  # host-side metadata, as in autograd's numpy_vjps

import autograd.numpy as _anp_pkg
import autograd.numpy.numpy_jvps  # noqa: F401  (JVPs registered before we copy them)
import autograd.numpy.numpy_vjps as _vjps
import autograd.numpy.numpy_wrapper as anp
from autograd.core import primitive_jvps, primitive_vjps
from autograd.extend import SparseObject, VSpace, defvjp, defvjp_argnum, primitive, vspace
from autograd.numpy.numpy_boxes import ArrayBox
from autograd.numpy.numpy_vspaces import ArrayVSpace
from autograd.tracer import getval
from autograd.util import func

AUTOGRAD_VERSION = "1.9.1"  # the version whose internals the overrides below replace

_DEVICE_TYPES = {}  # registered non-NumPy array type -> its array module
_BACKEND = numpy  # what `to_device(tree)` moves to; set by `use_backend`


def array_module(x):
    """The module (`numpy`, `cupy`, a registered one) that owns array `x` (boxes unwrapped)."""
    x = getval(x)
    xp = _DEVICE_TYPES.get(type(x))
    if xp is not None:
        return xp
    if type(x).__module__.split(".")[0] == "cupy":
        import cupy

        return cupy
    mod = getattr(type(x), "__array_module__", None)  # test stand-ins declare themselves
    return mod if mod is not None else numpy


# ---------------------------------------------------------------------------------------------
# Selecting a backend, moving parameter trees
# ---------------------------------------------------------------------------------------------


def cupy_available():
    """True when CuPy imports and sees at least one CUDA device."""
    try:
        import cupy

        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:  # ImportError, CUDARuntimeError (no driver / no device), ...
        return False


def _resolve(backend):
    """'numpy' | 'cupy' | an array module -> the module, registered with autograd."""
    if isinstance(backend, str):
        key = backend.lower()
        if key == "numpy":
            return numpy
        if key != "cupy":
            raise ValueError(f"backend: expected 'numpy' or 'cupy', found {backend!r}")
        try:
            import cupy
        except ImportError as e:
            raise ValueError(f"backend 'cupy': expected an installed CuPy (pip install "
                             f"cupy-cuda12x), found ImportError: {e}") from None
        if not cupy_available():
            raise ValueError("backend 'cupy': expected a CUDA device, found none")
        backend = cupy
    if backend is not numpy:
        if not isinstance(getattr(backend, "ndarray", None), type):
            raise ValueError(f"backend: expected 'numpy', 'cupy' or an array module with an "
                             f"ndarray type, found {backend!r}")
        register_array_type(backend.ndarray, backend)
    return backend


def use_backend(backend):
    """Select the array module: "numpy", "cupy", or a module object (e.g. a test stand-in).

    Returns the module. Registers its array type with autograd, so `autograd.grad` of the
    unchanged model code runs with arrays of that module; `to_device(tree)` then moves to it.
    """
    global _BACKEND
    _BACKEND = _resolve(backend)
    return _BACKEND


def current_backend():
    """The module selected by `use_backend` (numpy until then)."""
    return _BACKEND


def _is_array(x):
    return isinstance(x, (numpy.ndarray, numpy.generic)) or type(x) in _DEVICE_TYPES or \
        array_module(x) is not numpy


def _map_arrays(f, tree):
    """Apply f to every array leaf of nested dicts/lists/tuples; other leaves stay as they are."""
    if isinstance(tree, dict):
        return {k: _map_arrays(f, v) for k, v in tree.items()}
    if isinstance(tree, (list, tuple)):
        return type(tree)(_map_arrays(f, v) for v in tree)
    return f(tree) if _is_array(tree) else tree


def to_device(tree, xp=None):
    """Copy every array leaf of a params (or optimiser-state) tree to `xp` (default: the
    current backend). Dtypes are kept; Python scalars and None stay on the host as they are."""
    xp = _BACKEND if xp is None else _resolve(xp)
    if xp is numpy:
        return to_host(tree)
    return _map_arrays(xp.asarray, tree)


def _host(x):
    if isinstance(x, (numpy.ndarray, numpy.generic)):
        return x
    get = getattr(x, "get", None)  # cupy.ndarray.get(): the explicit device-to-host copy
    return get() if get is not None else numpy.asarray(x)


def to_host(tree):
    """Every array leaf as a NumPy array (device arrays copied back with `.get()`)."""
    return _map_arrays(_host, tree)


# ---------------------------------------------------------------------------------------------
# Teaching autograd a new array type
# ---------------------------------------------------------------------------------------------


def _vspace_classes(xp):
    """Real and complex vector spaces whose arrays are made by `xp`."""

    class DeviceArrayVSpace(ArrayVSpace):
        def __init__(self, value):  # shape and dtype only: no np.asarray(value)
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

        def randn(self):  # host RNG (as autograd's), copied in explicitly
            return xp.asarray(onp.random.randn(*self.shape)).astype(self.dtype)

        def _inner_prod(self, x, y):
            return onp.dot(onp.ravel(x), onp.ravel(y))  # dispatches to xp

    class DeviceComplexArrayVSpace(DeviceArrayVSpace):
        iscomplex = True

        @property
        def size(self):
            return onp.prod(self.shape) * 2

        def ones(self):
            return xp.ones(self.shape, dtype=self.dtype) + 1.0j * xp.ones(self.shape, self.dtype)

        def standard_basis(self):
            for idxs in onp.ndindex(*self.shape):
                for v in [1.0, 1.0j]:
                    vect = xp.zeros(self.shape, dtype=self.dtype)
                    vect[idxs] = v
                    yield vect

        def randn(self):
            return (xp.asarray(onp.random.randn(*self.shape)).astype(self.dtype)
                    + 1.0j * xp.asarray(onp.random.randn(*self.shape)).astype(self.dtype))

        def _inner_prod(self, x, y):
            return onp.real(onp.dot(onp.conj(onp.ravel(x)), onp.ravel(y)))

        def _covector(self, x):
            return onp.conj(x)

    return DeviceArrayVSpace, DeviceComplexArrayVSpace


def register_array_type(cls, xp):
    """Teach autograd the array type `cls` of module `xp` (e.g. `cupy.ndarray`, `cupy`).

    Registers the box and a vector space made by `xp`, and installs the device-safe VJPs
    (once; NumPy inputs keep autograd's own). Idempotent.
    """
    if cls in _DEVICE_TYPES:
        return
    if cls is numpy.ndarray:
        raise ValueError("register_array_type: numpy.ndarray is autograd's own type already")
    install_autograd_overrides()
    real, complex_ = _vspace_classes(xp)
    ArrayBox.register(cls)
    VSpace.register(cls, lambda x: complex_(x) if x.dtype.kind == "c" else real(x))
    _DEVICE_TYPES[cls] = xp


# ---------------------------------------------------------------------------------------------
# Device-neutral VJPs (run only when an input is a registered device array)
# ---------------------------------------------------------------------------------------------


def _on_device(args):
    """True if a (possibly boxed) argument, or an element of a list/tuple one, is a device
    array of a registered type."""
    for a in args:
        a = getval(a)
        if type(a) in _DEVICE_TYPES:
            return True
        if isinstance(a, (list, tuple)) and any(type(getval(b)) in _DEVICE_TYPES for b in a):
            return True
    return False


def _ints(seq):
    return tuple(int(i) for i in seq)


def _repeat_to_match_shape(g, shape, dtype, axis, xp):
    """autograd's `repeat_to_match_shape` with zeros made by `xp` and an int-tuple shape."""
    if shape == ():
        return g, 1
    axis = list(axis) if isinstance(axis, tuple) else axis
    new_shape = onp.array(shape)
    new_shape[axis] = 1
    num_reps = onp.prod(onp.array(shape)[axis])
    return anp.reshape(g, _ints(new_shape)) + xp.zeros(shape, dtype=dtype), num_reps


def _meta(x):
    return anp.shape(x), anp.result_type(x), array_module(x)


def _grad_sum(ans, x, axis=None, keepdims=False, dtype=None, **kwargs):
    shape, dt, xp = _meta(x)
    return lambda g: _repeat_to_match_shape(g, shape, dt, axis, xp)[0]


def _grad_mean(ans, x, axis=None, keepdims=False, **kwargs):
    shape, dt, xp = _meta(x)

    def vjp(g):
        g_repeated, num_reps = _repeat_to_match_shape(g, shape, dt, axis, xp)
        return g_repeated / num_reps

    return vjp


def _grad_prod(ans, x, axis=None, keepdims=False, **kwargs):
    shape, dt, xp = _meta(x)

    def vjp(g):
        g_repeated, _ = _repeat_to_match_shape(g * ans, shape, dt, axis, xp)
        return g_repeated / x

    return vjp


def _grad_var(ans, x, axis=None, ddof=0, keepdims=False, **kwargs):
    shape, _, dt, iscomplex = anp.metadata(x)
    xp = array_module(x)

    def vjp(g):
        if iscomplex:
            g = g + 0j
        g_repeated, num_reps = _repeat_to_match_shape(g, shape, dt, axis, xp)
        x_minus_mean = anp.conj(x - anp.mean(x, axis=axis, keepdims=True))
        return 2.0 * g_repeated * x_minus_mean / (num_reps - ddof)

    return vjp


def _grad_std(ans, x, axis=None, ddof=0, keepdims=False, **kwargs):
    shape, _, dt, iscomplex = anp.metadata(x)
    xp = array_module(x)

    def vjp(g):
        if iscomplex:
            g = g + 0j
        g_repeated, num_reps = _repeat_to_match_shape(g, shape, dt, axis, xp)
        if num_reps <= 1:
            return g_repeated * 0.0
        g_repeated, num_reps = _repeat_to_match_shape(g / ans, shape, dt, axis, xp)
        x_minus_mean = anp.conj(x - anp.mean(x, axis=axis, keepdims=True))
        return g_repeated * x_minus_mean / (num_reps - ddof)

    return vjp


def _grad_chooser(ans, x, axis=None, keepdims=None, **kwargs):
    shape, dt, xp = _meta(x)

    def vjp(g):
        g_repeated, _ = _repeat_to_match_shape(g, shape, dt, axis, xp)
        argmax_locations = x == _repeat_to_match_shape(ans, shape, dt, axis, xp)[0]
        return g_repeated * argmax_locations / onp.sum(argmax_locations, axis=axis, keepdims=True)

    return vjp


def _reshape_back(x, order):
    shape = anp.shape(x)
    if order is None:  # autograd passes order=None, which CuPy's reshape refuses
        return lambda g: anp.reshape(g, shape)
    return lambda g: anp.reshape(g, shape, order=order)


def _grad_reshape(ans, x, shape=None, order=None, **kwargs):
    return _reshape_back(x, order)


def _grad_ravel(ans, x, order=None):
    return _reshape_back(x, order)


def _grad_transpose(ans, x, axes=None):
    if axes is not None:
        axes = _ints(onp.argsort(axes))
    return lambda g: anp.transpose(g, axes)


def _grad_where_x(ans, c, x=None, y=None):
    return lambda g: anp.where(c, g, array_module(g).zeros(g.shape))


def _grad_where_y(ans, c, x=None, y=None):
    return lambda g: anp.where(c, array_module(g).zeros(g.shape), g)


# ---- dot / tensordot: adjoints as new primitives without host arrays --------------------------


@primitive
def _dot_adjoint_0(B, G, A_meta, B_meta):
    _, A_ndim, A_dtype, _ = A_meta
    _, B_ndim, _, _ = B_meta
    if B_ndim == 0 or B_ndim == 1 or A_ndim == 0:
        out = onp.tensordot(G, B, max(0, B_ndim - (A_ndim != 0)))
    else:
        out = onp.tensordot(G, onp.swapaxes(B, -1, -2), B_ndim - 1)
    return array_module(out).asarray(out, dtype=A_dtype)


@primitive
def _dot_adjoint_1(A, G, A_meta, B_meta):
    _, A_ndim, _, _ = A_meta
    _, B_ndim, B_dtype, _ = B_meta
    needs_transpose = B_ndim > 1 and A_ndim != 0
    swap = (lambda x: onp.swapaxes(x, -1, -2)) if needs_transpose else (lambda x: x)
    if A_ndim == 0 or A_ndim == 1 or B_ndim == 0:
        out = swap(onp.tensordot(G, A, max(0, A_ndim - (B_ndim != 0))))
    else:
        out = swap(onp.tensordot(G, A, [list(range(-A_ndim - B_ndim + 2, -B_ndim + 1)),
                                         list(range(A_ndim - 1))]))
    return array_module(out).asarray(out, dtype=B_dtype)


def _grad_dot_0(ans, A, B):
    A_meta, B_meta = anp.metadata(A), anp.metadata(B)
    return lambda g: _vjps.match_complex(A, _dot_adjoint_0(B, g, A_meta, B_meta))


def _grad_dot_1(ans, A, B):
    A_meta, B_meta = anp.metadata(A), anp.metadata(B)
    return lambda g: _vjps.match_complex(B, _dot_adjoint_1(A, g, A_meta, B_meta))


defvjp(_dot_adjoint_0,
       lambda ans, B, g, An, Bn: lambda A: _vjps.match_complex(B, _dot_adjoint_1(A, g, An, Bn)),
       lambda ans, B, g, An, Bn: lambda A: _vjps.match_complex(g, anp.dot(A, B)))
defvjp(_dot_adjoint_1,
       lambda ans, A, g, An, Bn: lambda B: _vjps.match_complex(A, _dot_adjoint_0(B, g, An, Bn)),
       lambda ans, A, g, An, Bn: lambda B: _vjps.match_complex(g, anp.dot(A, B)))


def _tensordot_axes(axes, A_ndim, B_ndim):
    """(summed axes of A, of B, other axes of A, of B) as host int arrays (metadata only)."""
    axes0 = [axes[0]] if type(axes[0]) is int else axes[0]
    axes1 = [axes[1]] if type(axes[1]) is int else axes[1]
    summed_a = onp.asarray(axes0, dtype="int64") % A_ndim
    summed_b = onp.asarray(axes1, dtype="int64") % B_ndim
    return (summed_a, summed_b,
            onp.delete(onp.arange(A_ndim), summed_a), onp.delete(onp.arange(B_ndim), summed_b))


@primitive
def _tensordot_adjoint_0(B, G, axes, A_ndim, B_ndim):
    if B_ndim == 0:
        return G * B
    G_axes = list(range(onp.ndim(G)))
    if type(axes) is int:
        axes = max(axes, 0)
        return onp.tensordot(G, B, [G_axes[A_ndim - axes:], list(range(B_ndim))[axes:]])
    summed_a, summed_b, other_a, other_b = _tensordot_axes(axes, A_ndim, B_ndim)
    out = onp.tensordot(G, B, [G_axes[len(other_a):], other_b.tolist()])
    perm = onp.argsort(onp.concatenate((other_a, summed_a[onp.argsort(summed_b)])))
    return onp.transpose(out, _ints(perm))


@primitive
def _tensordot_adjoint_1(A, G, axes, A_ndim, B_ndim):
    if A_ndim == 0:
        return G * A
    G_axes = list(range(onp.ndim(G)))
    if type(axes) is int:
        axes = max(axes, 0)
        return onp.tensordot(A, G, [list(range(A_ndim))[:A_ndim - axes], G_axes[:A_ndim - axes]])
    summed_a, summed_b, other_a, other_b = _tensordot_axes(axes, A_ndim, B_ndim)
    out = onp.tensordot(A, G, [other_a.tolist(), G_axes[:len(other_a)]])
    perm = onp.argsort(onp.concatenate((summed_b[onp.argsort(summed_a)], other_b)))
    return onp.transpose(out, _ints(perm))


def _grad_tensordot_0(ans, A, B, axes=2):
    A_ndim, B_ndim = anp.ndim(A), anp.ndim(B)
    return lambda G: _vjps.match_complex(A, _tensordot_adjoint_0(B, G, axes, A_ndim, B_ndim))


def _grad_tensordot_1(ans, A, B, axes=2):
    A_ndim, B_ndim = anp.ndim(A), anp.ndim(B)
    return lambda G: _vjps.match_complex(B, _tensordot_adjoint_1(A, G, axes, A_ndim, B_ndim))


def _grad_inner(argnum, ans, A, B):
    A_ndim, B_ndim = anp.ndim(A), anp.ndim(B)
    axes = ([], []) if A_ndim == 0 or B_ndim == 0 else ([A_ndim - 1], [B_ndim - 1])
    if argnum == 0:
        return lambda G: _tensordot_adjoint_0(B, G, axes, A_ndim, B_ndim)
    return lambda G: _tensordot_adjoint_1(A, G, axes, A_ndim, B_ndim)


defvjp(_tensordot_adjoint_0,
       lambda ans, B, G, axes, An, Bn: lambda A: _vjps.match_complex(
           B, _tensordot_adjoint_1(A, G, axes, An, Bn)),
       lambda ans, B, G, axes, An, Bn: lambda A: _vjps.match_complex(
           G, anp.tensordot(A, B, axes)))
defvjp(_tensordot_adjoint_1,
       lambda ans, A, G, axes, An, Bn: lambda B: _vjps.match_complex(
           A, _tensordot_adjoint_0(B, G, axes, An, Bn)),
       lambda ans, A, G, axes, An, Bn: lambda B: _vjps.match_complex(
           G, anp.tensordot(A, B, axes)))

# ---- einsum --------------------------------------------------------------------------------


def _grad_einsum(argnum, ans, operands_, kwargs):
    """autograd's `grad_einsum`, parsing subscripts from shapes and making `ones` in xp."""
    result_meta = anp.metadata(operands_[argnum])
    xp = array_module(operands_[argnum])

    def vjp(g):
        operands = operands_
        if not isinstance(operands[0], str):  # (op0, sublist0, ..., sublistout): no host arrays
            if len(operands) % 2 == 0:
                raise NotImplementedError("Need sublistout argument")
            operands = list(operands)
            rest_of_ops = ([operands[-1]] + operands[:argnum] + operands[(argnum + 2):-1]
                           + [operands[argnum + 1]])
            return _vjps.unbroadcast_einsum(anp.einsum(g, *rest_of_ops), result_meta,
                                            operands[argnum + 1])
        # numpy's parser calls asanyarray on the operands: give it zero-size shape stand-ins
        stand_ins = [onp.broadcast_to(onp.zeros(()), anp.shape(o)) for o in operands[1:]]
        in_subs, out_subs, _ = anp.parse_einsum_input(operands[0], *stand_ins)
        operands = operands[1:]
        in_subs_list = in_subs.split(",")
        op_num = argnum - 1
        subs_wrt = in_subs_list[op_num]
        rest_of_ops = operands[:op_num] + operands[op_num + 1:]
        rest_of_subs = in_subs_list[:op_num] + in_subs_list[op_num + 1:]
        other_named_subs = set("".join([out_subs] + rest_of_subs))
        naked_summed = [(i, sub) for i, sub in enumerate(subs_wrt) if sub not in other_named_subs]
        if naked_summed:
            naked_summed_dims, ones_subs = zip(*naked_summed)
            shape = anp.shape(operands[op_num])
            ones = xp.ones(tuple(shape[i] for i in naked_summed_dims))
            new_input_subs = ",".join([out_subs, "".join(ones_subs)] + rest_of_subs)
            new_operands = (g, ones) + tuple(rest_of_ops)
        else:
            new_input_subs = ",".join([out_subs] + rest_of_subs)
            new_operands = (g,) + tuple(rest_of_ops)
        return _vjps.unbroadcast(anp.einsum(new_input_subs + "->" + subs_wrt, *new_operands),
                                 result_meta)

    return vjp


# ---- indexing: x[idx] ------------------------------------------------------------------------


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


# ---- forward functions of autograd that go through the host --------------------------------


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


# concatenate (and stack, hstack, vstack, append, split's VJP) ends in .view(numpy.ndarray),
# which CuPy reads as a dtype; np.array(x) (stack and array() call it) is an implicit host copy.
_FORWARD_TWINS = {
    "concatenate_args": _device_twin(
        anp.concatenate_args, lambda axis, *args: onp.concatenate(args, axis)),
    "_array_from_scalar_or_array": _device_twin(
        anp._array_from_scalar_or_array,
        lambda array_args, array_kwargs, scalar:
            array_module(scalar).array(scalar, *array_args, **array_kwargs)),
    "array_from_args": _device_twin(
        anp.array_from_args,
        lambda array_args, array_kwargs, *args:
            _first_device_module(args).array(args, *array_args, **array_kwargs)),
}
_ORIGINAL_FORWARDS = {name: getattr(anp, name) for name in _FORWARD_TWINS}
_ORIGINAL_CONCATENATE_ARGS = _ORIGINAL_FORWARDS["concatenate_args"]


def _first_device_module(args):
    for a in args:
        xp = _DEVICE_TYPES.get(type(getval(a)))
        if xp is not None:
            return xp
    return numpy


# ---------------------------------------------------------------------------------------------
# Installing the switches
# ---------------------------------------------------------------------------------------------

_SAVED_VJPS = {}  # primitive -> autograd's own vjp_argnums, while installed
_INSTALLED = False


def _switch(fun, device_vjp_argnums):
    """Make fun's VJP run `device_vjp_argnums` for device inputs and autograd's own otherwise."""
    host_vjp_argnums = primitive_vjps[fun]
    _SAVED_VJPS[fun] = host_vjp_argnums

    def vjp_argnums(argnums, ans, args, kwargs):
        chosen = device_vjp_argnums if _on_device(args) else host_vjp_argnums
        return chosen(argnums, ans, args, kwargs)

    primitive_vjps[fun] = vjp_argnums


def _made_by(define, fun, *makers):
    """The vjp_argnums that `defvjp`/`defvjp_argnum` would register, without registering it."""
    saved = primitive_vjps[fun]
    define(fun, *makers)
    made = primitive_vjps[fun]
    primitive_vjps[fun] = saved
    return made


def _device_vjps():
    """{primitive: device vjp_argnums} for every VJP replaced on device inputs."""
    table = [
        (anp.sum, defvjp, _grad_sum),
        (anp._primitive_mean, defvjp, _grad_mean),
        (anp.prod, defvjp, _grad_prod),
        (anp._primitive_var, defvjp, _grad_var),
        (anp._primitive_std, defvjp, _grad_std),
        (anp.max, defvjp, _grad_chooser),
        (anp.min, defvjp, _grad_chooser),
        (anp.amax, defvjp, _grad_chooser),
        (anp.amin, defvjp, _grad_chooser),
        (anp.reshape, defvjp, _grad_reshape),
        (anp.ravel, defvjp, _grad_ravel),
        (anp.transpose, defvjp, _grad_transpose),
        (_anp_pkg._original_where, defvjp, None, _grad_where_x, _grad_where_y),
        (anp.dot, defvjp, _grad_dot_0, _grad_dot_1),
        (anp.tensordot, defvjp, _grad_tensordot_0, _grad_tensordot_1),
        (anp.inner, defvjp, partial(_grad_inner, 0), partial(_grad_inner, 1)),
        (anp.einsum, defvjp_argnum, _grad_einsum),
        (func(ArrayBox.__getitem__), defvjp, _grad_getitem),
    ]
    return {fun: _made_by(define, fun, *makers) for fun, define, *makers in table}


def _check_autograd_version():
    try:
        found = importlib.metadata.version("autograd")
    except importlib.metadata.PackageNotFoundError:
        found = None
    if found != AUTOGRAD_VERSION:
        warnings.warn(f"tinyvit.backend replaces VJPs of autograd=={AUTOGRAD_VERSION}, found "
                      f"autograd {found}: device gradients may be wrong or fail",
                      RuntimeWarning, stacklevel=3)


def install_autograd_overrides():
    """Install the device switches (idempotent; `register_array_type` calls it)."""
    global _INSTALLED
    if _INSTALLED:
        return
    _check_autograd_version()
    for fun, device in _device_vjps().items():
        _switch(fun, device)
    for name, twin in _FORWARD_TWINS.items():  # looked up at call time by anp.concatenate, ...
        setattr(anp, name, twin)
        setattr(_anp_pkg, name, twin)
    _INSTALLED = True


def uninstall_autograd_overrides():
    """Give autograd back its own VJPs and `concatenate` (for tests; device arrays then fail)."""
    global _INSTALLED
    for fun, host in _SAVED_VJPS.items():
        primitive_vjps[fun] = host
    _SAVED_VJPS.clear()
    for name, original in _ORIGINAL_FORWARDS.items():
        setattr(anp, name, original)
        setattr(_anp_pkg, name, original)
    _INSTALLED = False
