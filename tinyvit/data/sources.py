"""The one entry point, `load_data(source)`: where each kind of data source is read from.

* `"cifar10"` / `"cifar100"`: the official archives, downloaded once into the data folder
  (`default_data_dir()`: `$TINYVIT_DATA`, else `~/.cache/tinyvit`) and cached there
  (`cifar.load_cifar`).
* A local copy of the official cifar-10-python.tar.gz / cifar-100-python.tar.gz: the same,
  without the download (its MD5 is still checked).
* An ImageFolder folder or .tar/.tar.gz/.tgz/.zip archive (`imagefolder.load_image_folder`).

Offline fallback for CIFAR-10: when `load_data("cifar10")` cannot download, it reads the local
ImageFolder copy of CIFAR-10 named by the environment variable `TINYVIT_CIFAR10_COPY` (a
folder, .tar.gz or .zip; `local_cifar10_copy()`) and says so on stderr. Such a copy may be
re-encoded (JPEG), so its pixels can differ slightly from the official files. Without the
variable, the error says how to point at a copy.
"""
import os
import sys
from pathlib import Path

from .checks import check_dataset
from .cifar import OFFICIAL, load_cifar
from .errors import DataError, DownloadError
from .imagefolder import ARCHIVE_EXTENSIONS, is_archive, load_image_folder

CIFAR10_COPY_VARIABLE = "TINYVIT_CIFAR10_COPY"
OFFICIAL_NAMES = tuple(OFFICIAL)  # the sources that are names, not paths


def default_data_dir():
    """The download/cache folder: `$TINYVIT_DATA`, else `~/.cache/tinyvit`."""
    env = os.environ.get("TINYVIT_DATA")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "tinyvit"


def local_cifar10_copy():
    """The local ImageFolder copy of CIFAR-10 named by `$TINYVIT_CIFAR10_COPY`, or None."""
    env = os.environ.get(CIFAR10_COPY_VARIABLE)
    return Path(env).expanduser() if env else None


def load_official(name, data_dir):
    """Official CIFAR-10/100; offline, CIFAR-10 falls back to `local_cifar10_copy()`."""
    try:
        return load_cifar(name, data_dir)
    except DownloadError as e:
        if name != "cifar10":
            raise
        copy = local_cifar10_copy()
        if copy is None:
            raise DownloadError(f"{e}, or set ${CIFAR10_COPY_VARIABLE} to a local ImageFolder "
                                f"copy of CIFAR-10 (folder, .tar.gz or .zip)") from None
        if not copy.exists():
            raise DownloadError(f"{e}; ${CIFAR10_COPY_VARIABLE}={copy}: expected a local "
                                f"ImageFolder copy of CIFAR-10, found nothing there") from None
        print(f"{e}\nusing the local copy {copy} instead (from ${CIFAR10_COPY_VARIABLE}; an "
              f"ImageFolder copy: pixels may differ slightly from the official files)",
              file=sys.stderr)
    return load_image_folder(copy, data_dir)


def load_data(source, data_dir=None):
    """dict(train=(x, y), test=(x, y), classes=[str]) with x uint8 (N, H, W, C), y int64 (N,).

    `source`: "cifar10", "cifar100", an ImageFolder folder, a .tar/.tar.gz/.tgz/.zip archive of
    one, or a local copy of the official cifar-10-python.tar.gz / cifar-100-python.tar.gz.
    `data_dir`: where downloads and caches go (default `default_data_dir()`).
    Every data set returned has passed `check_dataset` (a DataError naming the source if not).
    """
    data_dir = Path(data_dir).expanduser() if data_dir else default_data_dir()
    if data_dir.exists() and not data_dir.is_dir():
        raise DataError(f"`data_dir` {data_dir}: is a file, expected a folder")
    name = str(source).lower()
    if name in OFFICIAL:
        return check_dataset(load_official(name, data_dir), source)
    path = Path(source).expanduser()
    official = [k for k, spec in OFFICIAL.items() if path.name == spec["file"]]
    if path.is_file() and official:
        return check_dataset(load_cifar(official[0], data_dir, archive=path), source)
    if path.is_dir() or (path.is_file() and is_archive(path)):
        return check_dataset(load_image_folder(path, data_dir), source)
    found = "a file of another type" if path.exists() else "nothing there"
    raise DataError(f"data source {str(source)!r}: expected cifar10, cifar100, an ImageFolder "
                    f"folder or a {'/'.join(ARCHIVE_EXTENSIONS)} archive, found {found}")
