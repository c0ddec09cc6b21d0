"""The one entry point, `load_data(source)`: where each kind of data source is read from.

* `"cifar10"` / `"cifar100"`: the official archives, downloaded once into the data folder
  (`default_data_dir()`: `$TINYVIT_DATA`, else `~/.cache/tinyvit`) and cached there
  (`cifar.load_cifar`).
* A local copy of the official cifar-10-python.tar.gz / cifar-100-python.tar.gz: the same,
  without the download (its MD5 is still checked).
* An ImageFolder folder or .tar/.tar.gz/.tgz/.zip archive (`imagefolder.load_image_folder`).
* `"fractal:KxI"` / `"1p-frac:KxI"` (options `,grey ,seed=S ,delta=D`): images made by formula,
  rendered in memory (`fractal_sets.load_fractals`; larger sets stream, `fractal_sets.batches`).

A local copy of CIFAR-10: when the data folder holds no official CIFAR-10 files, `"cifar10"`
reads the ImageFolder copy named by the environment variable `TINYVIT_CIFAR10_COPY` (a folder,
.tar.gz or .zip, anywhere; `local_cifar10_copy()`) without trying the download, and says so in
one line on stderr. Such a copy may be re-encoded (JPEG), so its pixels can differ slightly from
the official files. Without the variable, a failed download says how to point at a copy.
"""
import os
import sys
from pathlib import Path

from . import fractal_sets
from .checks import check_dataset, untested_note
from .cifar import OFFICIAL, load_cifar
from .errors import DataError, DownloadError
from .imagefolder import ARCHIVE_EXTENSIONS, is_archive, load_image_folder
from .paths import kind, shown

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


def has_official_files(name, data_dir):
    """Whether `data_dir` already holds the official files of `name` (its cache or archive)."""
    return (Path(data_dir) / f"{name}.npz").exists() or \
        (Path(data_dir) / OFFICIAL[name]["file"]).exists()


def load_official(name, data_dir):
    """Official CIFAR-10/100 from `data_dir`, downloaded on first use. For CIFAR-10 without the
    official files, `local_cifar10_copy()` is used when set: no download is tried, and one line
    says so."""
    copy = local_cifar10_copy() if name == "cifar10" else None
    if copy is None or has_official_files(name, data_dir):
        try:
            return load_cifar(name, data_dir)
        except DownloadError as e:
            if name != "cifar10":
                raise
            raise DownloadError(f"{e}, or set ${CIFAR10_COPY_VARIABLE} to a local ImageFolder "
                                f"copy of CIFAR-10 (folder, .tar.gz or .zip)") from None
    if not copy.exists():
        raise DownloadError(f"${CIFAR10_COPY_VARIABLE}={copy}: expected a local ImageFolder copy "
                            f"of CIFAR-10 (folder, .tar.gz or .zip), found nothing there")
    print(f"cifar10: using the local copy {copy} (from ${CIFAR10_COPY_VARIABLE}; an ImageFolder "
          f"copy: pixels may differ slightly from the official files)", file=sys.stderr)
    return load_image_folder(copy, data_dir)


def load_data(source, data_dir=None):
    """dict(train=(x, y), test=(x, y), classes=[str]) with x uint8 (N, H, W, C), y int64 (N,).

    `source`: "cifar10", "cifar100", an ImageFolder folder, a .tar/.tar.gz/.tgz/.zip archive of
    one, or a local copy of the official cifar-10-python.tar.gz / cifar-100-python.tar.gz.
    `data_dir`: where downloads and caches go (default `default_data_dir()`).
    Every data set returned has passed `check_dataset` (a DataError naming the source if not).
    """
    data_dir = Path(data_dir).expanduser() if data_dir else default_data_dir()
    if kind(data_dir) not in ("a folder", "nothing there"):
        raise DataError(f"`data_dir` {shown(data_dir)}: expected a folder, found "
                        f"{kind(data_dir)}")
    ds = check_dataset(read_source(source, data_dir), shown(source))
    note = untested_note(ds, source)
    if note:
        print(note, file=sys.stderr)
    return ds


def read_source(source, data_dir):
    """The data set `source` names (see `load_data`), not yet checked."""
    name = str(source).lower()
    if fractal_sets.is_spec(name):
        return fractal_sets.load_fractals(str(source))
    if name in OFFICIAL:
        return load_official(name, data_dir)
    path = Path(source).expanduser()
    official = [k for k, spec in OFFICIAL.items() if path.name == spec["file"]]
    found = kind(path)
    if found == "a regular file" and official:
        return load_cifar(official[0], data_dir, archive=path)
    if found == "a folder" or (found == "a regular file" and is_archive(path)):
        return load_image_folder(path, data_dir)
    found = "a file of another type" if found == "a regular file" else found
    raise DataError(f"data source '{shown(source)}': expected cifar10, cifar100, fractal:KxI, an "
                    f"ImageFolder folder or a {'/'.join(ARCHIVE_EXTENSIONS)} archive, found "
                    f"{found}")
