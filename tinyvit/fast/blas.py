"""NumPy's BLAS (OpenBLAS) called directly: threads per Python thread, and products into place.

How many threads it uses for the calls of one Python thread (`set_thread_local`):

A sharded training step (`tinyvit.fast.shards`) runs one shard per core, each in its own
Python thread; each of those threads must then run its matrix products on one BLAS thread,
or the two shards' BLAS pools fight over the same cores. OpenBLAS (0.3.27 and newer, as in
NumPy's wheels) has a per-thread setting for that, `openblas_set_num_threads_local`.

`threads()` says how many threads it uses outside shard threads.

Found by looking the OpenBLAS that NumPy loaded up with ctypes; where there is none (another
BLAS, or an OpenBLAS without the per-thread setting), `set_thread_local` does nothing and
says so by returning None.

`matmul_into(a, b, out, accumulate)`: out = a @ b, or out += a @ b with BLAS's own beta = 1,
where NumPy's `np.matmul(..., out=)` can only overwrite (an accumulated product then costs a
temporary and an extra pass over it, `out += part`). The convolution twin's k*k taps use it
(`tinyvit/fast/conv.py`). For float32 / float64 NumPy arrays whose rows are contiguous (or
transposes of such) it calls `cblas_sgemm` / `cblas_dgemm`; anything else (a device array,
another dtype or layout, no OpenBLAS found) takes the NumPy route, the same result to rounding.
`tests/test_fast.py` checks both routes against `a @ b`.
"""
import ctypes
import glob
import os

import numpy as np

_LIB = None
_SEARCHED = False
_GEMM = {}  # dtype -> cblas_?gemm (a ctypes function) or None, filled on first use
ROW_MAJOR, NO_TRANS, TRANS = 101, 111, 112  # CBLAS enums


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


def threads():
    """How many threads OpenBLAS runs a product on (its global setting; a shard thread's own
    setting is 1, `tinyvit.fast.shards`); without OpenBLAS, OPENBLAS_NUM_THREADS or the cores."""
    lib = _openblas()
    for name in ("openblas_get_num_threads", "scipy_openblas_get_num_threads64_"):
        f = getattr(lib, name, None) if lib is not None else None
        if f is not None:
            f.argtypes, f.restype = [], ctypes.c_int
            return int(f())
    return int(os.environ.get("OPENBLAS_NUM_THREADS") or os.cpu_count() or 1)


def _gemm(dtype):
    """NumPy's OpenBLAS `cblas_sgemm` (float32) or `cblas_dgemm` (float64) as a ctypes
    function, found on first use; None for other dtypes or where there is none.

    NumPy's wheels ship an ILP64 OpenBLAS with prefixed, suffixed names
    (scipy_cblas_sgemm64_, 64-bit integers); plainer builds export cblas_sgemm (32-bit).
    """
    if dtype not in _GEMM:
        _GEMM[dtype] = _find_gemm(dtype)
    return _GEMM[dtype]


def _find_gemm(dtype):
    """Look the ?gemm symbol up in NumPy's OpenBLAS and declare its C signature (see `_gemm`)."""
    lib, letter = _openblas(), {np.dtype(np.float32): "s", np.dtype(np.float64): "d"}.get(dtype)
    if lib is None or letter is None:
        return None
    real, ptr = (ctypes.c_float if letter == "s" else ctypes.c_double), ctypes.c_void_p
    for name, int_t in ((f"scipy_cblas_{letter}gemm64_", ctypes.c_int64),
                        (f"cblas_{letter}gemm64_", ctypes.c_int64),
                        (f"cblas_{letter}gemm", ctypes.c_int)):
        f = getattr(lib, name, None)
        if f is not None:
            # (order, trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc)
            f.argtypes = ([ctypes.c_int] * 3 + [int_t] * 3
                          + [real, ptr, int_t, ptr, int_t, real, ptr, int_t])
            f.restype = None
            return f
    return None


def _layout(m):
    """(transpose flag, leading dimension) of a 2-D array BLAS can read in place, or None."""
    (s0, s1), item = m.strides, m.itemsize
    if s1 == item and s0 % item == 0 and s0 // item >= max(m.shape[1], 1):
        return NO_TRANS, s0 // item  # rows contiguous: the array itself
    if s0 == item and s1 % item == 0 and s1 // item >= max(m.shape[0], 1):
        return TRANS, s1 // item  # columns contiguous: the transpose of a row-major array
    return None


def _blas_layouts(a, b, out):
    """((trans_a, lda), (trans_b, ldb), ldc) for BLAS to compute out (+)= a @ b in place, or
    None where it cannot: NumPy arrays of one dtype, 2-D, matching non-empty shapes, a and b
    readable as they are, out row-major."""
    if not all(type(m) is np.ndarray and m.ndim == 2 and m.dtype == out.dtype
               for m in (a, b, out)):
        return None
    (m, k), n = a.shape, b.shape[1]
    if b.shape[0] != k or out.shape != (m, n) or 0 in (m, k, n):
        return None
    la, lb, lc = _layout(a), _layout(b), _layout(out)
    if la is None or lb is None or lc is None or lc[0] != NO_TRANS:
        return None
    return la, lb, lc[1]


def matmul_into(a, b, out, accumulate=False):
    """out = a @ b, or out += a @ b when `accumulate` (BLAS's C = A B + beta C with beta = 1);
    a (M, K), b (K, N), out (M, N) written in place (a view of a bigger array is fine).
    Returns out."""
    layouts = _blas_layouts(a, b, out)
    gemm = _gemm(out.dtype) if layouts is not None else None
    if gemm is None:  # the NumPy route
        if accumulate:
            out += a @ b
        else:
            np.matmul(a, b, out=out)
        return out
    (trans_a, lda), (trans_b, ldb), ldc = layouts
    (m, k), n = a.shape, b.shape[1]
    gemm(ROW_MAJOR, trans_a, trans_b, m, n, k, 1.0, a.ctypes.data, lda, b.ctypes.data, ldb,
         1.0 if accumulate else 0.0, out.ctypes.data, ldc)
    return out
