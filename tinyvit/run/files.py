"""Atomic writes for the run layer's callers: `tinyvit.io.files`, re-exported."""
from ..io.files import TEMP_SUFFIX, atomic_write, stale_temp_files  # noqa: F401
