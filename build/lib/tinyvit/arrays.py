"""Which array library holds an array (NumPy, or CuPy on a GPU), and a copy on the host.

The model code is written once with `autograd.numpy`; NumPy's dispatch protocols send those
calls to CuPy when the inputs are CuPy arrays. Only code that *creates* arrays from nothing
(`arange`, a dropout mask) must know the library: it asks `array_module(x)`.
"""
import numpy
from autograd.tracer import getval


def array_module(x):
    """`numpy`, or the module of a device array x (CuPy, a test stand-in); boxes unwrapped."""
    t = type(getval(x))
    mod = getattr(t, "__array_module__", None)  # test stand-ins declare their module
    if mod is None and t.__module__.split(".")[0] == "cupy":
        import cupy as mod
    return mod or numpy


def to_numpy(x):
    """A NumPy array of x: device arrays are copied back explicitly (`.get()`), boxes unwrapped."""
    x = getval(x)
    if isinstance(x, (numpy.ndarray, numpy.generic)):
        return x
    get = getattr(x, "get", None)  # cupy.ndarray.get(): the explicit device-to-host copy
    return get() if get is not None else numpy.asarray(x)
