"""Keep freed large arrays in the process heap instead of returning them to the OS.

glibc's malloc serves blocks over 128 KiB-32 MiB (adaptive) with mmap and gives them back on
free; a training step allocates and frees hundreds of activation-sized temporaries, so every
step page-faults them all in again. Raising the mmap and trim thresholds makes glibc reuse
that memory instead (`python benchmarks/levers.py` measures what it buys; docs/RESULTS.md lists it).

It changes the allocator of the whole process, so it is opt-in: `tinyvit.run.train` calls it
(on Linux with glibc); set TINYVIT_NO_MALLOPT=1 to skip it there too.
Peak memory is unchanged; memory freed by the model is kept for reuse until the process exits.
"""
import ctypes
import ctypes.util
import os
import sys

M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_THRESHOLD = -1, -2, -3
_applied = False


def keep_freed_memory(threshold=1 << 30):
    """Set glibc's mmap/trim thresholds; returns True when they were applied."""
    global _applied
    if _applied or not sys.platform.startswith("linux") or os.environ.get("TINYVIT_NO_MALLOPT"):
        return _applied
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        ok = libc.mallopt(M_MMAP_THRESHOLD, threshold) and libc.mallopt(M_TRIM_THRESHOLD, threshold)
        libc.mallopt(M_TOP_PAD, 64 << 20)
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to do
        return False
    _applied = bool(ok)
    return _applied
