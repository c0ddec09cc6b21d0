"""Where the arrays live: NumPy on the CPU, or CuPy on a GPU, for the same model code.

The model is written once with `autograd.numpy`. NumPy's dispatch protocols
(`__array_function__`, `__array_ufunc__`) send those calls to CuPy when the inputs are CuPy
arrays, so the only code that must know the array library is code that *creates* arrays from
nothing (`arange`, a dropout mask): it asks `array_module(x)` (from `tinyvit.arrays`).
Beware the NumPy functions that do *not* dispatch on their input (`np.array`, `np.asarray`,
`np.ascontiguousarray`, `np.zeros`, ...): on a CuPy array they are an implicit host copy,
which CuPy refuses (TypeError). Use methods (`x.copy()`, `x.astype(...)`), `np.zeros_like(x)`
or `array_module(x).asarray(...)` instead.

One host-to-device copy stays by design: the dropout mask is drawn by the host
`numpy.random.Generator` (so CPU and GPU runs are the same function of the seed) and copied
in with `xp.asarray`.

Autograd must also be taught the device array type; `tinyvit.device.autograd_cupy` does that,
and `use_backend` calls it.

    use_backend("cupy")               # or "numpy", or an array module (a test stand-in)
    params = to_device(params)        # every array leaf copied to the current backend
    grads = autograd.grad(loss)(params, xp.asarray(x), xp.asarray(y))
    to_host(grads)                    # every array leaf back as a NumPy array

The one host copy of one array is `tinyvit.arrays.to_numpy`; `to_host` maps it over a tree.
"""
import numpy

from ..arrays import array_module, to_numpy
from ..tree import tree_map
from .autograd_cupy import register_array_type

__all__ = ["array_module", "cupy_available", "current_backend", "register_array_type",
           "to_device", "to_host", "use_backend"]

_BACKEND = numpy  # what `to_device(tree)` moves to; set by `use_backend`


def cupy_available():
    """True when CuPy imports and sees at least one CUDA device."""
    try:
        import cupy

        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:  # ImportError, CUDARuntimeError (no driver / no device), ...
        return False


def _import_cupy():
    """The cupy module, or a one-line ValueError saying what is missing."""
    try:
        import cupy
    except ImportError as e:
        raise ValueError(f"backend 'cupy': expected an installed CuPy (pip install "
                         f"cupy-cuda12x), found ImportError: {e}") from None
    if not cupy_available():
        raise ValueError("backend 'cupy': expected a CUDA device, found none")
    return cupy


def _resolve(backend):
    """'numpy' | 'cupy' | an array module -> the module, registered with autograd."""
    if isinstance(backend, str):
        if backend.lower() not in ("numpy", "cupy"):
            raise ValueError(f"backend: expected 'numpy' or 'cupy', found {backend!r}")
        backend = numpy if backend.lower() == "numpy" else _import_cupy()
    if backend is numpy:
        return numpy
    if not isinstance(getattr(backend, "ndarray", None), type):
        raise ValueError(f"backend: expected 'numpy', 'cupy' or an array module with an "
                         f"ndarray type, found {backend!r}")
    found = array_module(backend.empty(0))  # CuPy, or a stand-in naming its module
    if found is not backend:
        raise ValueError(f"backend {backend.__name__}: expected arrays that name their module "
                         f"(ndarray.__array_module__), found arrays of {found.__name__}")
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
    """True for NumPy arrays and scalars and for device arrays; False for ints, None, ..."""
    return isinstance(x, (numpy.ndarray, numpy.generic)) or array_module(x) is not numpy


def to_device(tree, xp=None):
    """Copy every array leaf of a params (or optimiser-state) tree to `xp` (default: the
    current backend). Dtypes are kept; Python scalars and None stay on the host as they are."""
    xp = _BACKEND if xp is None else _resolve(xp)
    if xp is numpy:
        return to_host(tree)
    return tree_map(lambda x: xp.asarray(x) if _is_array(x) else x, tree)


def to_host(tree):
    """Every array leaf as a NumPy array (device arrays copied back with `.get()`)."""
    return tree_map(lambda x: to_numpy(x) if _is_array(x) else x, tree)
