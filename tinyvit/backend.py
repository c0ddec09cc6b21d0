"""Which array library holds an array: NumPy on the CPU, or CuPy on a GPU.

The model code is written once with `autograd.numpy`. NumPy's dispatch protocols
(`__array_function__`, `__array_ufunc__`) send those calls to CuPy when the inputs are CuPy
arrays, so the only places that must know the array library are those that *create* arrays
from nothing (zeros, arange, random masks). They ask `array_module(x)` for the right one.
"""
import numpy

from autograd.tracer import getval


def array_module(x):
    """The module (`numpy` or `cupy`) that owns array `x` (autograd boxes are unwrapped)."""
    x = getval(x)
    if type(x).__module__.split(".")[0] == "cupy":
        import cupy

        return cupy
    mod = getattr(type(x), "__array_module__", None)  # test stand-ins declare themselves
    return mod if mod is not None else numpy
