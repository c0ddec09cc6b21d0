"""How many threads NumPy's BLAS (OpenBLAS) uses for the calls of one Python thread.

A sharded training step (`tinyvit.fast.shards`) runs one shard per core, each in its own
Python thread; each of those threads must then run its matrix products on one BLAS thread,
or the two shards' BLAS pools fight over the same cores. OpenBLAS (0.3.27 and newer, as in
NumPy's wheels) has a per-thread setting for that, `openblas_set_num_threads_local`.

Found by looking the OpenBLAS that NumPy loaded up with ctypes; where there is none (another
BLAS, or an OpenBLAS without the per-thread setting), `set_thread_local` does nothing and
says so by returning None.
"""
import ctypes
import glob
import os

import numpy as np

_LIB = None
_SEARCHED = False


def _openblas():
    """The ctypes handle of NumPy's OpenBLAS, or None."""
    global _LIB, _SEARCHED
    if not _SEARCHED:
        _SEARCHED = True
        here = os.path.dirname(np.__file__)
        for path in sorted(glob.glob(os.path.join(here, "..", "numpy.libs", "*openblas*"))
                           + glob.glob(os.path.join(here, ".dylibs", "*openblas*"))):
            try:
                _LIB = ctypes.CDLL(path)  # already loaded by NumPy: the same library
                break
            except OSError:
                continue
    return _LIB


def set_thread_local(n):
    """Use n BLAS threads for calls made from the calling thread only; returns the old value,
    or None when this BLAS has no per-thread setting."""
    lib = _openblas()
    f = getattr(lib, "openblas_set_num_threads_local", None) if lib is not None else None
    if f is None:
        return None
    f.argtypes, f.restype = [ctypes.c_int], ctypes.c_int
    return int(f(int(n)))
