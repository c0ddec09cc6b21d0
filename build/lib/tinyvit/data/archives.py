"""Reading untrusted files safely: tar/zip archives in-stream, and CIFAR's pickled batches.

Archives: every member name is checked before its bytes are read (no absolute paths, no '..',
no links, devices or fifos), nothing is extracted to disk, and a plain tar must end with its
end-of-archive marker (so a copy cut at a member boundary is noticed).

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
    """A plain tar cut at a member boundary reads like a shorter archive: insist on its end
    marker (two zero blocks). Compressed tars detect truncation by themselves."""
    if getattr(tf.fileobj, "comptype", "tar") == "tar" \
            and os.path.getsize(archive) < tf.offset + 2 * tarfile.BLOCKSIZE:
        raise tarfile.ReadError("no end-of-archive marker")


def check_zip_member(archive, info):
    """Refuse unsafe names and symbolic links in a zip archive."""
    check_member_name(archive, info.filename)
    if (info.external_attr >> 16) & 0o170000 == 0o120000:
        raise DataError(f"{archive}: refusing link member {info.filename!r} "
                        f"(expected plain files and folders)")


# ---------------------------------------------------------------------------------------------
# Reading archives: {member name: bytes} of the files wanted, and the folder names
# ---------------------------------------------------------------------------------------------


def read_tar(path, keep):
    """({member: bytes} for the files with keep(member), {folder names}), read in-stream."""
    files, dirs = {}, set()
    with tarfile.open(path, "r|*") as tf:
        for m in tf:
            check_tar_member(path, m)
            name = m.name.rstrip("/")
            if m.isdir():
                dirs.add(name)
            elif keep(name):
                files[name] = tf.extractfile(m).read()
        check_tar_complete(path, tf)
    return files, dirs


def read_zip(path, keep):
    """({member: bytes} for the files with keep(member), {folder names}) of a zip archive."""
    files, dirs = {}, set()
    with zipfile.ZipFile(path) as zf:
        for info in zf.infolist():
            check_zip_member(path, info)
            name = info.filename.rstrip("/")
            if info.is_dir():
                dirs.add(name)
            elif keep(name):
                files[name] = zf.read(info)
    return files, dirs


def read_archive(path, keep):
    """({member: bytes} for the files with keep(member), {folder names}) of a
    .tar/.tar.gz/.tgz/.zip archive; a truncated or corrupt one raises a DataError."""
    try:
        if str(path).lower().endswith(".zip"):
            return read_zip(path, keep)
        return read_tar(path, keep)
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
