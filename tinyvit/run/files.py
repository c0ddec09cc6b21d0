"""Atomic writes for the run layer's callers: `tinyvit.support.files`, re-exported."""
from ..support.files import TEMP_SUFFIX, atomic_write, stale_temp_files  # noqa: F401
