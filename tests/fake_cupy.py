"""A strict CPU stand-in for CuPy, so CI (no GPU) can test the device backend.

`FakeArray` wraps a numpy array and behaves like a `cupy.ndarray` where it matters for
"did anything silently go to the host?":

* NumPy's dispatch protocols send ufuncs (`__array_ufunc__`) and array functions
  (`__array_function__`) to it; it unwraps, runs NumPy, and wraps every array result again
  (reductions give 0-d FakeArrays, as CuPy gives 0-d device arrays, never host scalars).
* Mixing with a `numpy.ndarray` raises TypeError, as CuPy does: in ufuncs (any ndim; CuPy
  turns only a 0-d one in a comparison into a scalar), in array functions, in methods and in
  `__setitem__`. NumPy scalars (`np.float32(2)`) and Python scalars are fine, as in CuPy.
  Stricter than CuPy: a host array anywhere in a call's arguments is refused, also where
  CuPy would quietly read it as a list of ints (an `axes=` or shape argument).
* Implicit conversion to the host (`np.asarray(x)`, `np.array(x)`, `__array__`) raises
  TypeError; `.get()` (or the module's `asnumpy`) is the explicit transfer.
* CuPy quirks that bit autograd: `reshape(..., order=None)` raises TypeError ('order not
  understood'), and `.view(numpy.ndarray)` is refused (CuPy reads the class as a dtype).

This module is also the array module (`FakeArray.__array_module__`): it provides the creation
functions (`zeros`, `ones`, `empty`, `full`, `*_like`, `arange`, `eye`, `linspace`, `asarray`,
`array`), `asnumpy`, `ndarray`, and, through `__getattr__`, NumPy's dtypes, constants,
ufuncs and dispatching functions (calling those on FakeArrays dispatches back here).
"""
import numbers
import sys

import numpy
from numpy.lib.mixins import NDArrayOperatorsMixin

_COMPARISONS = {"equal", "not_equal", "less", "less_equal", "greater", "greater_equal"}


class FakeArray(NDArrayOperatorsMixin):
    """A numpy array that pretends to live on a device. Build with `asarray` / `zeros` ..."""

    __slots__ = ("_a",)
    __array_module__ = None  # set to this module below

    def __init__(self, a):
        if not isinstance(a, (numpy.ndarray, numpy.generic)):
            raise TypeError(f"FakeArray wraps numpy arrays, found {type(a).__name__}")
        self._a = numpy.asarray(a)

    # ---- explicit transfer ----------------------------------------------------------------
    def get(self):
        """A host copy (numpy.ndarray), as `cupy.ndarray.get()`."""
        return self._a.copy()

    def item(self, *args):
        return self._a.item(*args)

    def tolist(self):
        return self._a.tolist()

    # ---- implicit transfer: refused -------------------------------------------------------
    def __array__(self, dtype=None, copy=None):
        raise TypeError("FakeArray: implicit conversion to a NumPy array is not allowed. "
                        "Please use `.get()` to construct a NumPy array explicitly.")

    # ---- attributes -----------------------------------------------------------------------
    shape = property(lambda self: self._a.shape)
    ndim = property(lambda self: self._a.ndim)
    dtype = property(lambda self: self._a.dtype)
    size = property(lambda self: self._a.size)
    itemsize = property(lambda self: self._a.itemsize)
    nbytes = property(lambda self: self._a.nbytes)
    strides = property(lambda self: self._a.strides)
    flags = property(lambda self: self._a.flags)
    T = property(lambda self: FakeArray(self._a.T))
    real = property(lambda self: FakeArray(self._a.real))
    imag = property(lambda self: FakeArray(self._a.imag))

    def __repr__(self):
        return f"FakeArray({self._a!r})"

    __str__ = __repr__

    def __len__(self):
        return len(self._a)

    def __iter__(self):
        if self._a.ndim == 0:
            raise TypeError("iteration over a 0-d array")
        return (self[i] for i in range(len(self._a)))

    def __bool__(self):  # CuPy syncs and reads one element back; so do we
        return bool(self._a)

    def __float__(self):
        return float(self._a)

    def __int__(self):
        return int(self._a)

    def __complex__(self):
        return complex(self._a)

    def __copy__(self):
        return FakeArray(self._a.copy())

    def __deepcopy__(self, memo):
        return FakeArray(self._a.copy())

    # ---- indexing -------------------------------------------------------------------------
    def __getitem__(self, key):
        return _wrap(self._a[_unwrap(key)])

    def __setitem__(self, key, value):
        _refuse_host((value,), {}, "FakeArray.__setitem__", zero_d_ok=False)
        self._a[_unwrap(key)] = _unwrap(value)

    # ---- methods --------------------------------------------------------------------------
    def view(self, dtype=None, type=None):
        if type is not None or (isinstance(dtype, builtins_type) and
                                issubclass(dtype, numpy.ndarray)):
            raise TypeError("FakeArray.view: CuPy reads the argument as a dtype, "
                            f"not an array class (found {dtype or type})")
        return FakeArray(self._a.view() if dtype is None else self._a.view(dtype))

    def reshape(self, *shape, order="C", **kwargs):
        if order is None:
            raise TypeError("FakeArray.reshape: order not understood (None)")
        _refuse_host(shape, kwargs, "FakeArray.reshape")
        return FakeArray(self._a.reshape(*shape, order=order, **kwargs))

    # ---- NumPy's dispatch protocols ---------------------------------------------------------
    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        out = kwargs.get("out", ())
        # As CuPy: every input, also the indices of np.add.at(a, indices, b), must be a device
        # array or a scalar; a tuple/slice index makes it NotImplemented (TypeError). The
        # module's own `add.at` (cupy.add.at) takes any index.
        for x in inputs + tuple(out):
            if isinstance(x, numpy.ndarray):
                if x.ndim == 0 and ufunc.__name__ in _COMPARISONS and method == "__call__":
                    continue  # CuPy turns a 0-d host array in a comparison into a scalar
                raise TypeError(f"FakeArray: {ufunc.__name__} got a numpy.ndarray "
                                f"{x.shape}: no implicit host-to-device transfer")
            if not isinstance(x, (FakeArray, numbers.Number, numpy.generic)):
                return NotImplemented  # e.g. an autograd ArrayBox: let it handle the call
        result = getattr(ufunc, method)(*_unwrap(inputs), **_unwrap(kwargs))
        if out:
            return out[0] if len(out) == 1 else out
        return _wrap(result)

    def __array_function__(self, func, types, args, kwargs):
        if not all(issubclass(t, (FakeArray, numpy.ndarray)) for t in types):
            return NotImplemented
        name = getattr(func, "__name__", str(func))
        _refuse_host(args, kwargs, f"numpy.{name}")
        if kwargs.get("order", "C") is None and name in ("reshape", "ravel"):
            raise TypeError(f"FakeArray: {name}(order=None): order not understood")
        return _wrap(func(*_unwrap(args), **_unwrap(kwargs)))


builtins_type = type  # `type` is shadowed by the argument of `view`


def _method(name):
    def method(self, *args, **kwargs):
        _refuse_host(args, kwargs, f"FakeArray.{name}")
        return _wrap(getattr(self._a, name)(*_unwrap(args), **_unwrap(kwargs)))

    method.__name__ = name
    return method


for _name in ("sum", "mean", "max", "min", "prod", "var", "std", "argmax", "argmin", "any",
              "all", "astype", "copy", "transpose", "swapaxes", "squeeze", "ravel", "flatten",
              "clip", "cumsum", "cumprod", "round", "take", "repeat", "dot", "nonzero", "fill",
              "conj", "conjugate", "diagonal", "trace", "argsort", "sort"):
    setattr(FakeArray, _name, _method(_name))


def _refuse_host(args, kwargs, where, zero_d_ok=False):
    """TypeError if a numpy.ndarray is among the arguments (looking inside lists/tuples/dicts)."""

    def walk(x):
        if isinstance(x, numpy.ndarray):
            if not (zero_d_ok and x.ndim == 0):
                raise TypeError(f"FakeArray: {where} got a numpy.ndarray {x.shape}: "
                                "no implicit host-to-device transfer (use asarray)")
        elif isinstance(x, (list, tuple)):
            for y in x:
                walk(y)
        elif isinstance(x, dict):
            for y in x.values():
                walk(y)

    walk(args)
    walk(kwargs)


def _unwrap(x):
    """FakeArrays -> their numpy arrays, recursively through lists, tuples and dicts."""
    if isinstance(x, FakeArray):
        return x._a
    if isinstance(x, tuple):
        return tuple(_unwrap(y) for y in x)
    if isinstance(x, list):
        return [_unwrap(y) for y in x]
    if isinstance(x, dict):
        return {k: _unwrap(v) for k, v in x.items()}
    return x


def _wrap(x):
    """numpy arrays and numpy scalars -> FakeArrays (0-d for scalars), recursively."""
    if isinstance(x, (numpy.ndarray, numpy.generic)):
        return FakeArray(x)
    if isinstance(x, tuple) and not hasattr(x, "_fields"):
        return tuple(_wrap(y) for y in x)
    if isinstance(x, list):
        return [_wrap(y) for y in x]
    return x


# ---------------------------------------------------------------------------------------------
# The module namespace (what `cupy` offers): creation functions build FakeArrays directly.
# ---------------------------------------------------------------------------------------------

ndarray = FakeArray
newaxis = None


def asarray(a, dtype=None, order=None):
    """Like cupy.asarray: the same FakeArray if nothing changes, else an explicit copy in."""
    if isinstance(a, FakeArray):
        return a if dtype is None or a.dtype == numpy.dtype(dtype) else a.astype(dtype)
    return FakeArray(numpy.array(a, dtype=dtype, order=order or "K"))


def array(a, dtype=None, copy=True, order="K", ndmin=0):
    """Like cupy.array: a new FakeArray (from host data or another FakeArray)."""
    return FakeArray(numpy.array(_unwrap(a), dtype=dtype, copy=copy, order=order, ndmin=ndmin))


def asnumpy(a):
    """Like cupy.asnumpy: explicit device-to-host copy."""
    return a.get() if isinstance(a, FakeArray) else numpy.asarray(a)


def _creator(name):
    f = getattr(numpy, name)

    def create(*args, **kwargs):
        _refuse_host(args, kwargs, f"{__name__}.{name}")
        return FakeArray(f(*args, **kwargs))

    create.__name__ = name
    return create


def _like(name):
    f = getattr(numpy, name)

    def create(a, *args, **kwargs):
        _refuse_host(args, kwargs, f"{__name__}.{name}")
        proto = a._a if isinstance(a, FakeArray) else numpy.asarray(a)
        return FakeArray(f(proto, *args, **kwargs))

    create.__name__ = name
    return create


class _ScatterUfunc:
    """`add` etc. of the module: the NumPy ufunc, plus an `at` that takes any index (as
    `cupy.add.at`), unlike `numpy.add.at` dispatched to a FakeArray (as `cupy.ndarray`)."""

    def __init__(self, ufunc):
        self._ufunc = ufunc

    def __call__(self, *args, **kwargs):
        return self._ufunc(*args, **kwargs)

    def at(self, a, indices, b=None):
        _refuse_host((indices, b), {}, f"{__name__}.{self._ufunc.__name__}.at")
        if not isinstance(a, FakeArray):
            raise TypeError(f"{__name__}.{self._ufunc.__name__}.at: expected a FakeArray, "
                            f"found {type(a).__name__}")
        args = (a._a, _unwrap(indices)) + (() if b is None else (_unwrap(b),))
        self._ufunc.at(*args)

    def __getattr__(self, name):
        return getattr(self._ufunc, name)


add, subtract, maximum, minimum = (
    _ScatterUfunc(u) for u in (numpy.add, numpy.subtract, numpy.maximum, numpy.minimum))
zeros, ones, empty, full = (_creator(n) for n in ("zeros", "ones", "empty", "full"))
arange, eye, linspace = (_creator(n) for n in ("arange", "eye", "linspace"))
zeros_like, ones_like, empty_like, full_like = (
    _like(n) for n in ("zeros_like", "ones_like", "empty_like", "full_like"))


def __getattr__(name):
    """NumPy's dtypes, constants, ufuncs and array-function-dispatching functions.

    Everything else (np.zeros-style host creators that were not wrapped above, np.random, ...)
    is an AttributeError, so a missing device implementation shows up loudly.
    """
    obj = getattr(numpy, name, None)
    if obj is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    if isinstance(obj, (numpy.ufunc, numpy.dtype, float, int)) or obj is numpy.newaxis:
        return obj
    if isinstance(obj, type) and issubclass(obj, (numpy.generic, numpy.dtype)):
        return obj
    if hasattr(obj, "_implementation"):  # dispatches through __array_function__
        return obj
    raise AttributeError(f"module {__name__!r} has no attribute {name!r} "
                         "(not a dispatching NumPy function)")


FakeArray.__array_module__ = sys.modules[__name__]
