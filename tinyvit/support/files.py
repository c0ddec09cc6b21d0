"""Writing files so that a crash never leaves a half-written one behind.

`atomic_write(path)` hands out a temporary file beside `path`; when the `with` block ends
without an error, the file is flushed to disk and renamed onto `path` in one step
(`os.replace`, atomic on POSIX and Windows); on an error (or Ctrl-C) it is removed. Readers
see the old file or the new one, never a mixture. Every temporary name is
`.<name>.<pid>-<random>.tmp`, so `stale_temp_files(folder, name)` can find those left by a
kill -9; `atomic_write` removes those in the folder it writes to (run folders, the data
folder alike) before it writes.
"""
import os
import re
import tempfile
from contextlib import contextmanager
from pathlib import Path

TEMP_SUFFIX = ".tmp"


@contextmanager
def atomic_write(path, mode="wb"):
    """with atomic_write("run/last.npz") as f: f.write(...)  -- all or nothing at `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    for stale in stale_temp_files(path.parent):  # left in this folder by killed processes
        stale.unlink(missing_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.{os.getpid()}-",
                               suffix=TEMP_SUFFIX)
    try:
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes owner-only files
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def stale_temp_files(folder, name=None):
    """Temporary files of `atomic_write(folder / name)` (of any name when None) left by
    processes that no longer run."""
    stem = re.escape(name) if name is not None else ".+"
    pattern = re.compile(rf"^\.{stem}\.(\d+)-.*{re.escape(TEMP_SUFFIX)}$")
    found = []
    for p in Path(folder).glob(f".*{TEMP_SUFFIX}"):
        m = pattern.match(p.name)
        if m and not _running(int(m.group(1))):
            found.append(p)
    return found


def _running(pid):
    """True when a process with this id exists (ours included)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
