"""Reading untrusted files safely: tar/zip archives in-stream, and CIFAR's pickled batches.

Archives: every member name is checked before its bytes are read (no absolute paths, no '..', no
links, devices or fifos), nothing is extracted to disk, no member is read past `max_bytes` (a few
KB of zip can hold gigabytes of zeros) nor all of them together past the memory, and a plain tar
must end with its end-of-archive marker (so a copy cut at a member boundary is noticed). Every
folder a member lies in is reported, so a class folder holding no images is noticed even without
its own entry.

Pickles: a pickle can name any importable callable (`os.system`, ...) and have it called while
loading, so `CifarUnpickler` resolves only the four globals a CIFAR batch needs.
"""
import io
import os
import pickle
import tarfile
import zipfile
import zlib
from pathlib import PurePosixPath

import numpy as np

from .errors import DataError, one_line
from .limits import check_bytes
from .paths import open_regular

MAX_MEMBER_BYTES = 256 << 20  # the largest member read (CIFAR-100's train batch is 155 MB)

# ---------------------------------------------------------------------------------------------
# Archive members: refuse anything that could escape a folder or is not a plain file
# ---------------------------------------------------------------------------------------------


def check_member_name(archive, name):
    """Refuse absolute paths and '..' components in an archive member's name."""
    parts = PurePosixPath(name.replace("\\", "/")).parts
    if name.startswith(("/", "\\")) or (parts and ":" in parts[0]) or ".." in parts:
        raise DataError(f"{archive}: refusing unsafe member {name!r} "
                        f"(expected relative paths without '..')")


def check_tar_member(archive, m):
    """Refuse unsafe names, links and devices in a tar archive."""
    check_member_name(archive, m.name)
    if m.issym() or m.islnk():
        raise DataError(f"{archive}: refusing link member {m.name!r} -> {m.linkname!r} "
                        f"(expected plain files and folders)")
    if not (m.isfile() or m.isdir()):
        raise DataError(f"{archive}: refusing special member {m.name!r} (device or fifo; "
                        f"expected plain files and folders)")


def check_tar_complete(archive, tf):
    """A tar cut at a member boundary reads like a shorter archive: insist on a plain tar's end
    marker (two zero blocks), and on a compressed one's end of stream."""
    stream = tf.fileobj
    if getattr(stream, "comptype", "tar") == "tar":
        if os.path.getsize(archive) < tf.offset + 2 * tarfile.BLOCKSIZE:
            raise tarfile.ReadError("no end-of-archive marker")
        return
    while stream.read(1 << 20):  # the rest: padding after the end marker
        pass
    if not getattr(getattr(stream, "cmp", None), "eof", True):
        raise tarfile.ReadError("compressed stream cut short")


def check_zip_member(archive, info):
    """Refuse unsafe names and symbolic links in a zip archive."""
    check_member_name(archive, info.filename)
    if (info.external_attr >> 16) & 0o170000 == 0o120000:
        raise DataError(f"{archive}: refusing link member {info.filename!r} "
                        f"(expected plain files and folders)")


# ---------------------------------------------------------------------------------------------
# Reading archives: {member name: bytes} of the files wanted, and the folder names
# ---------------------------------------------------------------------------------------------


def parent_folders(name):
    """'a/b/c.png' -> {'a', 'a/b'}: the folders a member lies in."""
    parts = name.split("/")[:-1]
    return {"/".join(parts[:i]) for i in range(1, len(parts) + 1)}


def check_size(archive, name, size, max_bytes):
    """Refuse a member larger than `max_bytes` before (or while) reading it."""
    if size > max_bytes:
        raise DataError(f"{archive}:{name}: member of {size:,} bytes or more, larger than the "
                        f"{max_bytes:,} allowed")


def collect(archive, members, keep, max_bytes):
    """({name: bytes} of the members with keep(name), {folder names}) of (name, is_dir, size,
    open) tuples; no member is read past `max_bytes`, whatever its header says."""
    files, dirs, total = {}, set(), 0
    for name, is_dir, size, open_member in members:
        dirs |= parent_folders(name)
        if is_dir:
            dirs.add(name)
        elif keep(name):
            check_size(archive, name, size, max_bytes)
            check_bytes(archive, total + size, f"its members up to {name}")  # all kept at once
            with open_member() as f:
                files[name] = f.read(max_bytes + 1)
            check_size(archive, name, len(files[name]), max_bytes)
            total += len(files[name])
    return files, dirs


def tar_members(path, tf):
    """(name, is_dir, size, open) of each member of an open tar, each checked first."""
    for m in tf:
        check_tar_member(path, m)
        yield m.name.rstrip("/"), m.isdir(), m.size, lambda m=m: tf.extractfile(m)


def zip_members(path, zf):
    """(name, is_dir, size, open) of each member of an open zip, each checked first."""
    for info in zf.infolist():
        check_zip_member(path, info)
        yield info.filename.rstrip("/"), info.is_dir(), info.file_size, lambda i=info: zf.open(i)


def read_tar(path, keep, max_bytes=MAX_MEMBER_BYTES):
    """({member: bytes} for the files with keep(member), {folder names}), read in-stream."""
    with open_regular(path, expected="an archive file") as f, \
            tarfile.open(fileobj=f, mode="r|*") as tf:
        found = collect(path, tar_members(path, tf), keep, max_bytes)
        check_tar_complete(path, tf)
    return found


def read_zip(path, keep, max_bytes=MAX_MEMBER_BYTES):
    """({member: bytes} for the files with keep(member), {folder names}) of a zip archive."""
    with open_regular(path, expected="an archive file") as f, zipfile.ZipFile(f) as zf:
        return collect(path, zip_members(path, zf), keep, max_bytes)


def read_archive(path, keep, max_bytes=MAX_MEMBER_BYTES):
    """({member: bytes} for the files with keep(member), {folder names}) of a
    .tar/.tar.gz/.tgz/.zip archive; a truncated or corrupt one raises a DataError, and so does
    a member larger than `max_bytes`."""
    try:
        if str(path).lower().endswith(".zip"):
            return read_zip(path, keep, max_bytes)
        return read_tar(path, keep, max_bytes)
    except DataError:
        raise
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, zlib.error, OSError) as e:
        raise DataError(f"{path}: truncated or corrupt archive ({one_line(e)})") from None


# ---------------------------------------------------------------------------------------------
# CIFAR python batches: restricted unpickling
# ---------------------------------------------------------------------------------------------


def _numpy_reconstruct():
    """numpy's array-unpickling helper (numpy._core in numpy 2, numpy.core in numpy 1)."""
    core = getattr(np, "_core", None) or np.core
    return core.multiarray._reconstruct


class CifarUnpickler(pickle.Unpickler):
    """Unpickles CIFAR python batches and nothing else.

    A pickle can name any importable callable (`os.system`, ...) and have it called while
    loading. CIFAR batches are dicts of strings, lists of ints and one uint8 numpy array, which
    need only these four globals; every other global is refused before anything is imported.
    """

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"): _numpy_reconstruct(),
        ("numpy._core.multiarray", "_reconstruct"): _numpy_reconstruct(),
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
    }

    def find_class(self, module, name):
        try:
            return self.ALLOWED[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"refusing to load global {module}.{name}") from None


def py2_text(s):
    """py2 pickles give str (latin1) or bytes; use str."""
    return s.decode("latin1") if isinstance(s, bytes) else s


def unpickle_cifar(raw, name):
    """The dict in one CIFAR batch (bytes of a pickle), keys as str; `name` is for errors."""
    try:
        obj = CifarUnpickler(io.BytesIO(raw), encoding="latin1").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError,
            IndexError, KeyError) as e:
        raise DataError(f"{name}: not a CIFAR python batch ({one_line(e)})") from None
    if not isinstance(obj, dict):
        raise DataError(f"{name}: expected a dict, found {type(obj).__name__}")
    return {py2_text(k): v for k, v in obj.items()}
