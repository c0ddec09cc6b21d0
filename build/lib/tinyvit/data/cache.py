"""Decoded data sets cached as .npz files, so the second load takes well under a second.

An official CIFAR set is cached as `<data dir>/cifar10.npz` / `cifar100.npz`. An ImageFolder
source is cached under a name hashed from its path, sizes and modification times (and
CACHE_VERSION), so a changed folder or archive is decoded again instead of read stale.
A missing or unreadable cache is simply rebuilt; a read-only data folder only costs speed.
"""
import hashlib
import os
import sys
import zipfile
from pathlib import Path

import numpy as np

from ..run.files import atomic_write
from .errors import one_line

CACHE_VERSION = 1  # bump when the cached arrays' format changes


def dataset_arrays(ds):
    """dict(train=(x, y), test=(x, y), classes) -> flat arrays for an .npz cache."""
    (x_train, y_train), (x_test, y_test) = ds["train"], ds["test"]
    return dict(x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test,
                classes=np.array(ds["classes"], dtype=str))


def load_cache(path):
    """A data set from an .npz cache, or None when it is missing or unreadable."""
    try:
        with np.load(path, allow_pickle=False) as z:
            return dict(train=(z["x_train"], z["y_train"]), test=(z["x_test"], z["y_test"]),
                        classes=[str(c) for c in z["classes"]])
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as e:
        print(f"note: ignoring unreadable cache {path} ({one_line(e)})", file=sys.stderr)
        return None


def save_cache(path, ds):
    """Cache a data set as an uncompressed .npz, written atomically (never half-written)."""
    try:
        with atomic_write(path) as f:
            np.savez(f, **dataset_arrays(ds))
    except OSError as e:
        print(f"note: could not cache decoded images in {path} ({one_line(e)})", file=sys.stderr)


def source_signature(path):
    """A string that changes when the folder or archive at `path` changes."""
    st = path.stat()
    if path.is_file():
        return f"{path}|{st.st_size}|{st.st_mtime_ns}"
    entries = []
    for top, _, names in os.walk(path):
        for n in names:
            s = os.stat(os.path.join(top, n))
            entries.append(f"{os.path.join(top, n)}|{s.st_size}|{s.st_mtime_ns}")
    return f"{path}|" + "\n".join(sorted(entries))


def image_folder_cache(path, data_dir):
    """Cache file for an ImageFolder source: name + hash of its path, size and mtime."""
    key = hashlib.sha1(f"v{CACHE_VERSION}|{source_signature(path)}".encode()).hexdigest()[:16]
    stem = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in path.name)
    return Path(data_dir) / f"imagefolder-{stem}-{key}.npz"
