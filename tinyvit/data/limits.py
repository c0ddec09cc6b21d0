"""Sizes read from files are checked before anything is allocated or decompressed.

A file can declare any size: an .npy header a shape of 10**12 elements, a PNG header 20000 x
20000 pixels, an archive member gigabytes. `check_bytes` refuses an allocation larger than this
machine's memory (`memory_bytes`), with the figure; `load_npz` reads each array of an .npz only
after its header is checked against the bytes its archive member really holds, and against
the memory (a compressed member cannot hold more than DEFLATE_RATIO times its size).
"""
import math
import os
import zipfile

import numpy as np

from .errors import DataError, one_line
from .paths import open_regular, shown

DEFLATE_RATIO = 1032  # deflate's largest expansion: no compressed member holds more than this


def memory_bytes():
    """This machine's physical memory in bytes (16 GiB where the OS does not say)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return 16 << 30


def size_text(n):
    """1536 -> '1.5 KiB'."""
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if n < 1024 or unit == "PiB":
            return f"{n:,} bytes" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return ""


def check_bytes(name, nbytes, what, limit=None):
    """Refuse `nbytes` (for `what`, of the file `name`) above `limit` (default: the memory)."""
    against = "this machine's memory" if limit is None else "the limit"
    limit = memory_bytes() if limit is None else limit
    if nbytes > limit:
        raise DataError(f"{shown(name)}: {what} need {size_text(nbytes)}, more than {against} "
                        f"({size_text(limit)})")


def _header(zf, info, name):
    """(shape, dtype, member bytes it needs) of the .npy in zip member `info`, before reading."""
    fmt = np.lib.format
    try:
        with zf.open(info) as m:
            version = fmt.read_magic(m)
            read = {(1, 0): fmt.read_array_header_1_0, (2, 0): fmt.read_array_header_2_0}
            if version not in read:
                raise ValueError(f"unsupported .npy format version {version}")
            shape, _, dtype = read[version](m)
            offset = m.tell()
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, KeyError) as e:
        raise DataError(f"{name}: {info.filename}: not a readable array ({one_line(e)})") \
            from None
    if dtype.hasobject:
        raise DataError(f"{name}: {info.filename}: an array of Python objects (refused: loading "
                        f"it could run code); expected numbers or strings")
    return shape, dtype, offset + math.prod(shape) * dtype.itemsize


def load_npz(path, name=None):
    """{array name: array} of an .npz file; each member's header (shape, dtype) is checked
    first: an array needing more bytes than its member holds, or than the memory, is a
    one-line DataError naming the file and the array."""
    name = shown(path if name is None else name)
    with open_regular(path, name, "an .npz file") as f:
        try:
            zf = zipfile.ZipFile(f)
        except (zipfile.BadZipFile, OSError, EOFError, ValueError) as e:
            raise DataError(f"{name}: not a readable .npz file ({one_line(e)})") from None
        with zf:
            arrays, total = {}, 0
            for info in zf.infolist():
                shape, dtype, needed = _header(zf, info, name)
                key = info.filename[:-4] if info.filename.endswith(".npy") else info.filename
                holds = info.file_size if info.compress_type != zipfile.ZIP_DEFLATED else min(
                    info.file_size, DEFLATE_RATIO * info.compress_size + 1024)
                if needed > holds:
                    raise DataError(f"{name}: {key}: declares {dtype} {shape} "
                                    f"({size_text(needed)}) but holds {size_text(holds)}"
                                    f"{'' if holds == info.file_size else ' or less'} "
                                    f"(corrupt or crafted file)")
                total += needed
                check_bytes(name, total, f"its arrays (up to {key} {shape})")
                try:
                    with zf.open(info) as m:
                        arrays[key] = np.lib.format.read_array(m, allow_pickle=False)
                except (ValueError, OSError, EOFError, zipfile.BadZipFile) as e:
                    raise DataError(f"{name}: {key}: corrupt array ({one_line(e)})") from None
    return arrays
