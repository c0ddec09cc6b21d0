"""Decoded data sets cached as .npz files, so the second load takes well under a second.

An official CIFAR set is cached as `<data dir>/cifar10.npz` / `cifar100.npz`. An ImageFolder
source is cached under a name hashed from its path, sizes and modification times (and
CACHE_VERSION), so a changed folder or archive is decoded again instead of read stale.
Every cache stores its CACHE_VERSION (caches from before the key existed are version 1) and is
checked like any input (`checks.check_dataset`: labels in range, lengths that agree, ...);
a cache that is missing, unreadable, of another version or fails the check is rebuilt (with a
note saying why). A read-only data folder only costs speed.
"""
import hashlib
import os
import stat
import sys
import zipfile
from pathlib import Path

import numpy as np

from ..support.files import atomic_write
from .checks import check_dataset
from .errors import DataError, one_line
from .limits import load_npz
from .paths import kind, walk

CACHE_VERSION = 1  # bump when the cached arrays' format changes


def dataset_arrays(ds):
    """dict(train=(x, y), test=(x, y), classes) -> flat arrays for an .npz cache."""
    (x_train, y_train), (x_test, y_test) = ds["train"], ds["test"]
    return dict(x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test,
                classes=np.array(ds["classes"], dtype=str), version=np.array(CACHE_VERSION))


def read_cache(path):
    """The data set in an .npz cache, exactly as stored (DataError for a wrong version)."""
    z = load_npz(path)  # each array's header checked before it is read
    version = int(z["version"]) if "version" in z else 1
    if version != CACHE_VERSION:
        raise DataError(f"{path}: version {version}, expected {CACHE_VERSION}")
    return dict(train=(z["x_train"], z["y_train"]), test=(z["x_test"], z["y_test"]),
                classes=[str(c) for c in z["classes"]])


def load_cache(path, **expected):
    """A data set from an .npz cache, or None when it is missing, unreadable or not a valid
    data set (`check_dataset` with `expected`: image_shape, num_classes): then it is rebuilt."""
    if kind(path) == "nothing there":
        return None
    try:
        return check_dataset(read_cache(path), path, **expected)
    except DataError as e:  # names the cache
        reason = one_line(e)
    except (OSError, ValueError, KeyError, TypeError, zipfile.BadZipFile) as e:
        reason = f"{path}: unreadable ({one_line(e)})"
    print(f"note: ignoring the cache {reason}; decoding again", file=sys.stderr)
    return None


def save_cache(path, ds):
    """Cache a data set as an uncompressed .npz, written atomically (never half-written)."""
    try:
        with atomic_write(path) as f:
            np.savez(f, **dataset_arrays(ds))
    except OSError as e:
        print(f"note: could not cache decoded images in {path} ({one_line(e)})", file=sys.stderr)


def source_signature(path, descend=lambda rel: True):
    """A string that changes when the folder or archive at `path` changes (file names as the
    OS gives them; a folder walked as `paths.walk(path, descend)` does: links followed)."""
    if kind(path) != "a folder":
        st = path.stat()
        return f"{path}|{st.st_size}|{st.st_mtime_ns}"
    entries = [f"{os.path.join(top, n)}|{st.st_size}|{st.st_mtime_ns}"
               for top, found in walk(path, descend) for n, st in found
               if not stat.S_ISDIR(st.st_mode)]
    return f"{path}|" + "\n".join(sorted(entries))


def image_folder_cache(path, data_dir, descend=lambda rel: True):
    """Cache file for an ImageFolder source: name + hash of its path, size and mtime (of the
    files in the folders that pass `descend`)."""
    signature = source_signature(path, descend)
    key = hashlib.sha1(os.fsencode(f"v{CACHE_VERSION}|{signature}")).hexdigest()[:16]
    stem = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in path.name)
    return Path(data_dir) / f"imagefolder-{stem}-{key}.npz"
