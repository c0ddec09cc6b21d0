"""Data: CIFAR-10/100 (official download), ImageFolder folders and archives, subsets, augmentation.

    ds = load_data("cifar10")                      # or "cifar100", a folder, .tar(.gz)/.tgz/.zip
    x, y = ds["train"]                             # uint8 (N, H, W, C), int64 (N,)
    x, y = balanced_subset(x, y, 5000, seed=0)     # 500 images per class
    for xb, yb in iterate_batches(rng, x, y, 128):
        xb = normalize(random_crop_flip(rng, xb), CIFAR10_MEAN, CIFAR10_STD)  # float32

Shape legend: N images in a data set, B batch, H, W height and width, C channels (3, RGB),
K classes. Images are NHWC uint8 in data sets, float32 once normalised; labels are int64.

Where the data comes from:

* `"cifar10"` / `"cifar100"`: the official python-version archives are downloaded once into the
  data folder (`default_data_dir()`), checked against their MD5, unpickled with a restricted
  unpickler (only numpy arrays, lists, numbers and strings can come out of it) and cached as
  `cifar10.npz` / `cifar100.npz`.
* An ImageFolder folder or archive: `[top/]train/<class>/*.png|jpg|jpeg` and
  `[top/]test/<class>/...` (or `val/`); classes are the folder names, sorted alphabetically.
  Archives are read in-stream, nothing is extracted to disk. The decoded arrays are cached in
  the data folder under a name hashed from the source's path, size and modification time, so
  the second load takes well under a second.

Every problem a user can cause (missing or corrupt files, wrong MD5, no network, unsafe archive
members, odd image sizes) raises a one-line `DataError` (a `ValueError`) naming the file.
"""
import hashlib
import io
import os
import pickle
import sys
import tarfile
import time
import urllib.error
import urllib.request
import uuid
import zipfile
import zlib
from pathlib import Path, PurePosixPath

import numpy as np

from .run.progress import Progress, format_seconds


class DataError(ValueError):
    """A data file is missing, corrupt, unsafe or not in the expected layout (one-line message)."""


class DownloadError(DataError):
    """An official archive could not be downloaded (offline, server down)."""


# A local ImageFolder copy of CIFAR-10 used when the official download cannot run (offline
# machines such as this project's own keep one in ../shared/data/ beside the repository).
LOCAL_CIFAR10 = Path(__file__).resolve().parents[2] / "shared" / "data" / "cifar10-jpeg.tar.gz"


# Per-channel (R, G, B) statistics of the official training sets, in 0-255 pixel units.
CIFAR10_MEAN = np.array([125.307, 122.950, 113.865], np.float32)  # (C,)
CIFAR10_STD = np.array([62.993, 62.089, 66.705], np.float32)  # (C,)
CIFAR100_MEAN = np.array([129.304, 124.070, 112.434], np.float32)  # (C,)
CIFAR100_STD = np.array([68.170, 65.392, 70.418], np.float32)  # (C,)

# The official python-version archives (https://www.cs.toronto.edu/~kriz/cifar.html).
OFFICIAL = {
    "cifar10": dict(url="https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
                    file="cifar-10-python.tar.gz", md5="c58f30108f718f92721af3b95e74349a",
                    size=170_498_071, folder="cifar-10-batches-py",
                    train=[f"data_batch_{i}" for i in range(1, 6)], test="test_batch",
                    meta="batches.meta", labels="labels", names="label_names"),
    "cifar100": dict(url="https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",
                     file="cifar-100-python.tar.gz", md5="eb9058c3a382ffc7106e4002c42a8d85",
                     size=169_001_437, folder="cifar-100-python",
                     train=["train"], test="test",
                     meta="meta", labels="fine_labels", names="fine_label_names"),
}

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg")
ARCHIVE_EXTENSIONS = (".tar", ".tar.gz", ".tgz", ".zip")
CACHE_VERSION = 1  # bump when the cached arrays' format changes


def one_line(e):
    """An exception's message on one line (for messages built from library errors)."""
    return " ".join(str(e).split()) or type(e).__name__


# ---------------------------------------------------------------------------------------------
# Where data lives; small file helpers
# ---------------------------------------------------------------------------------------------


def default_data_dir():
    """The download/cache folder: `$TINYVIT_DATA`, else `~/.cache/tinyvit`."""
    env = os.environ.get("TINYVIT_DATA")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "tinyvit"


def md5sum(path, chunk=1 << 20):
    """Hex MD5 of a file."""
    h = hashlib.md5()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def temp_sibling(path):
    """An unused hidden file name next to `path`, for write-then-`os.replace`."""
    return path.with_name(f".{path.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.part")


def save_npz_atomic(path, **arrays):
    """Write an uncompressed .npz via a temporary file + os.replace (never half-written)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_sibling(path)
    try:
        with open(tmp, "xb") as f:
            np.savez(f, **arrays)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


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
    """Cache a data set as .npz; a read-only data folder only costs speed, so just say so."""
    try:
        save_npz_atomic(path, **dataset_arrays(ds))
    except OSError as e:
        print(f"note: could not cache decoded images in {path} ({one_line(e)})", file=sys.stderr)


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
# Download (official CIFAR archives)
# ---------------------------------------------------------------------------------------------


def offline_hint(spec, data_dir):
    """How to use a local copy instead of the download."""
    return (f"put {spec['file']} into {data_dir} (or point $TINYVIT_DATA at its folder), "
            f"or use --data PATH with an ImageFolder folder/.tar.gz/.zip "
            f"(e.g. ../shared/data/cifar10-jpeg.tar.gz)")


def download(url, dest, md5, size=None, stream=None):
    """Download `url` to `dest` with a one-line progress display; verify MD5 before keeping it.

    The bytes go to a temporary file next to `dest`, which replaces `dest` only once complete
    and verified: an interrupted or corrupt download leaves nothing behind.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_sibling(dest)
    try:
        with open(tmp, "xb") as f, urllib.request.urlopen(url, timeout=30) as r:
            total = int(r.headers.get("Content-Length") or size or 0) or None
            progress = Progress(round(total / 1e6, 1) if total else 0,
                                f"downloading {dest.name} ", stream, every=10.0)
            h, done, t0 = hashlib.md5(), 0, time.perf_counter()
            while block := r.read(1 << 20):
                f.write(block)
                h.update(block)
                done += len(block)
                rate = done / max(time.perf_counter() - t0, 1e-9) / 1e6
                progress.update(round(done / 1e6, 1), f"MB {rate:.1f} MB/s")
            progress.close(f"downloaded {dest.name}: {done / 1e6:.1f} MB in "
                           f"{format_seconds(time.perf_counter() - t0)}")
        if h.hexdigest() != md5:
            raise DataError(f"{url}: downloaded file has MD5 {h.hexdigest()}, expected {md5} "
                            f"(corrupt download; try again)")
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return dest


# ---------------------------------------------------------------------------------------------
# Official CIFAR-10/100: restricted unpickling of the python batches
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


def _text(s):
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
    return {_text(k): v for k, v in obj.items()}


def cifar_batch(d, spec, name):
    """(x uint8 (N, 32, 32, 3), y int64 (N,)) from one unpickled CIFAR batch dict."""
    data, labels = d.get("data"), d.get(spec["labels"])
    ok = (isinstance(data, np.ndarray) and data.dtype == np.uint8 and data.ndim == 2
          and data.shape[1] == 3 * 32 * 32 and labels is not None and len(labels) == len(data))
    if not ok:
        found = getattr(data, "shape", type(data).__name__)
        raise DataError(f"{name}: expected 'data' uint8 (N, 3072) and N '{spec['labels']}', "
                        f"found 'data' {found} and keys {sorted(d)}")
    x = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)  # (N, C, H, W) -> (N, H, W, C)
    return np.ascontiguousarray(x), np.asarray(labels, np.int64)


def read_tar_members(path, wanted):
    """{basename: bytes} of the members in `wanted` (name -> basename), read in-stream."""
    found = {}
    try:
        with tarfile.open(path, "r|*") as tf:
            for m in tf:
                check_tar_member(path, m)
                if m.name in wanted:
                    found[wanted[m.name]] = tf.extractfile(m).read()
            check_tar_complete(path, tf)
    except (tarfile.TarError, EOFError, zlib.error, OSError) as e:
        raise DataError(f"{path}: truncated or corrupt archive ({one_line(e)})") from None
    return found


def read_cifar_archive(path, spec):
    """dict(train, test, classes) decoded from an official CIFAR python .tar.gz."""
    names = spec["train"] + [spec["test"], spec["meta"]]
    members = read_tar_members(path, {f"{spec['folder']}/{n}": n for n in names})
    missing = [f"{spec['folder']}/{n}" for n in names if n not in members]
    if missing:
        raise DataError(f"{path}: expected member {missing[0]} (not a {spec['file']}?)")
    train = [cifar_batch(unpickle_cifar(members[n], f"{path}:{n}"), spec, f"{path}:{n}")
             for n in spec["train"]]
    test = cifar_batch(unpickle_cifar(members[spec["test"]], f"{path}:{spec['test']}"),
                       spec, f"{path}:{spec['test']}")
    meta = unpickle_cifar(members[spec["meta"]], f"{path}:{spec['meta']}")
    classes = [_text(c) for c in meta.get(spec["names"], [])]
    if not classes:
        raise DataError(f"{path}:{spec['meta']}: expected '{spec['names']}', "
                        f"found keys {sorted(meta)}")
    x_train = np.concatenate([x for x, _ in train])  # (N, H, W, C)
    y_train = np.concatenate([y for _, y in train])  # (N,)
    return dict(train=(x_train, y_train), test=test, classes=classes)


def official_archive(name, data_dir):
    """Path of the verified official archive in `data_dir`, downloading it on first use."""
    spec = OFFICIAL[name]
    path = Path(data_dir) / spec["file"]
    if not path.exists():
        try:
            download(spec["url"], path, spec["md5"], spec["size"])
        except (urllib.error.URLError, OSError) as e:
            reason = one_line(getattr(e, "reason", e))
            raise DownloadError(f"cannot download {spec['url']} ({reason}); offline? "
                            f"{offline_hint(spec, data_dir)}") from None
    verify_md5(path, spec)
    return path


def verify_md5(path, spec):
    """Refuse an official archive whose MD5 differs from the published one."""
    found = md5sum(path)
    if found != spec["md5"]:
        raise DataError(f"{path}: MD5 is {found}, expected {spec['md5']} "
                        f"(corrupt or not {spec['file']}; delete it to download again)")


def load_cifar(name, data_dir, archive=None):
    """Official CIFAR-10/100 from the .npz cache, else from the (downloaded) archive."""
    spec = OFFICIAL[name]
    cache = Path(data_dir) / f"{name}.npz"
    ds = load_cache(cache)
    if ds is None:
        if archive is None:
            archive = official_archive(name, data_dir)
        else:
            verify_md5(archive, spec)
        ds = read_cifar_archive(archive, spec)
        save_cache(cache, ds)
    return ds


# ---------------------------------------------------------------------------------------------
# ImageFolder folders and archives
# ---------------------------------------------------------------------------------------------


def is_image_name(name):
    """True for visible .png/.jpg/.jpeg files."""
    base = name.rsplit("/", 1)[-1]
    return base.lower().endswith(IMAGE_EXTENSIONS) and not base.startswith(".")


def is_archive(path):
    """True when the file name ends like a supported archive."""
    return str(path).lower().endswith(ARCHIVE_EXTENSIONS)


def read_tar(path):
    """({image member: bytes}, {folder names}) of a tar archive, read in-stream."""
    files, dirs = {}, set()
    with tarfile.open(path, "r|*") as tf:
        for m in tf:
            check_tar_member(path, m)
            name = m.name.rstrip("/")
            if m.isdir():
                dirs.add(name)
            elif is_image_name(name):
                files[name] = tf.extractfile(m).read()
        check_tar_complete(path, tf)
    return files, dirs


def read_zip(path):
    """({image member: bytes}, {folder names}) of a zip archive."""
    files, dirs = {}, set()
    with zipfile.ZipFile(path) as zf:
        for info in zf.infolist():
            check_zip_member(path, info)
            name = info.filename.rstrip("/")
            if info.is_dir():
                dirs.add(name)
            elif is_image_name(name):
                files[name] = zf.read(info)
    return files, dirs


def read_archive(path):
    """({image member: bytes}, {folder names}) of a .tar/.tar.gz/.tgz/.zip archive."""
    try:
        if str(path).lower().endswith(".zip"):
            return read_zip(path)
        return read_tar(path)
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, zlib.error, OSError) as e:
        raise DataError(f"{path}: truncated or corrupt archive ({one_line(e)})") from None


def list_folder(root):
    """({relative image path: full path}, {relative folder names}) under a folder."""
    files, dirs = {}, set()
    for top, subdirs, names in os.walk(root):
        rel = Path(top).relative_to(root).as_posix()
        prefix = "" if rel == "." else rel + "/"
        dirs.update(prefix + d for d in subdirs)
        files.update((prefix + n, os.path.join(top, n)) for n in names if is_image_name(n))
    return files, dirs


def is_ignored(part):
    """Hidden entries and macOS zip debris are not part of a layout."""
    return part.startswith(".") or part == "__MACOSX"


def find_root(paths):
    """The prefix holding `train/`: '' or 'top/' (descending through single top folders)."""
    prefix = ""
    while True:
        tops = {p[len(prefix):].split("/")[0] for p in paths if p.startswith(prefix)}
        tops = {t for t in tops if t and not is_ignored(t)}
        if "train" in tops or len(tops) != 1:
            return prefix
        prefix += tops.pop() + "/"


def image_folder_layout(source, files, dirs):
    """{'train': [(class, path)], 'test': [...]} and the sorted class names of an ImageFolder.

    `files` maps relative image paths to their data (bytes or a file path); `dirs` lists the
    folders (to find empty class folders).
    """
    prefix = find_root(set(files) | dirs)
    folders, images = {}, {}  # split -> {class}, (split, class) -> [path]
    for path in sorted(set(files) | dirs):
        parts = path[len(prefix):].split("/") if path.startswith(prefix) else []
        if len(parts) < 2 or parts[0] not in ("train", "test", "val") or is_ignored(parts[1]):
            continue
        folders.setdefault(parts[0], set()).add(parts[1])
        if len(parts) == 3 and path in files:
            images.setdefault((parts[0], parts[1]), []).append(path)
    if "train" not in folders:
        tops = sorted({p.split("/")[0] for p in set(files) | dirs if not is_ignored(p)})[:5]
        raise DataError(f"{source}: expected {prefix}train/<class>/ image folders, "
                        f"found top level {tops or 'empty'}")
    test_split = "test" if "test" in folders else "val" if "val" in folders else None
    if test_split is None:
        raise DataError(f"{source}: expected a {prefix}test/ (or val/) split next to "
                        f"{prefix}train/, found none")
    classes = sorted(folders["train"])
    for split in ("train", test_split):
        for c in sorted(folders[split]):
            if c not in folders["train"]:
                raise DataError(f"{source}: class folder {prefix}{split}/{c} has no "
                                f"{prefix}train/{c} (expected the same classes in both)")
            if (split, c) not in images:
                raise DataError(f"{source}: class folder {prefix}{split}/{c} is empty "
                                f"(expected .png/.jpg/.jpeg images in it)")
    layout = {s: [(classes.index(c), p) for c in classes for p in images.get((split, c), [])]
              for s, split in (("train", "train"), ("test", test_split))}
    return layout, classes


def decode_image(src, name):
    """uint8 (H, W, C) RGB from image bytes or a file path; `name` is for errors."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(src) if isinstance(src, bytes) else src) as im:
            return np.asarray(im.convert("RGB"), np.uint8)  # (H, W, C)
    except (OSError, UnidentifiedImageError, ValueError, SyntaxError) as e:
        raise DataError(f"{name}: cannot decode image ({one_line(e)})") from None


def decode_images(items, files, describe, size=None, label=""):
    """(x uint8 (N, H, W, C), y int64 (N,)) of [(class index, path)]; all of one size."""
    n = len(items)
    x, first = None, None
    progress = Progress(n, f"decoding {label} ", every=10.0)
    for i, (_, path) in enumerate(items):
        img = decode_image(files[path], describe(path))  # (H, W, C)
        if x is None:
            first = describe(path)
            if size is not None and img.shape != size:
                raise DataError(f"{first}: image is {img.shape[1]}x{img.shape[0]}, expected "
                                f"{size[1]}x{size[0]} like the training images")
            x = np.empty((n,) + img.shape, np.uint8)  # (N, H, W, C)
        elif img.shape != x.shape[1:]:
            raise DataError(f"{describe(path)}: image is {img.shape[1]}x{img.shape[0]}, "
                            f"expected {x.shape[2]}x{x.shape[1]} like {first} "
                            f"(all images must have one size)")
        x[i] = img
        if i % 1000 == 999:
            progress.update(i + 1)
    progress.close()
    return x, np.array([c for c, _ in items], np.int64)


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


def load_image_folder(path, data_dir):
    """dict(train, test, classes) of an ImageFolder folder or archive (cached as .npz)."""
    path = Path(path).resolve()
    cache = image_folder_cache(path, data_dir)
    ds = load_cache(cache)
    if ds is not None:
        return ds
    if path.is_dir():
        files, dirs = list_folder(path)
        describe = lambda p: str(path / p)  # noqa: E731
    else:
        files, dirs = read_archive(path)
        describe = lambda p: f"{path}:{p}"  # noqa: E731
    layout, classes = image_folder_layout(path, files, dirs)
    x_train, y_train = decode_images(layout["train"], files, describe, label=f"{path.name} train")
    x_test, y_test = decode_images(layout["test"], files, describe, x_train.shape[1:],
                                   label=f"{path.name} test")
    ds = dict(train=(x_train, y_train), test=(x_test, y_test), classes=classes)
    save_cache(cache, ds)
    return ds


# ---------------------------------------------------------------------------------------------
# The one entry point
# ---------------------------------------------------------------------------------------------


def load_data(source, data_dir=None):
    """dict(train=(x, y), test=(x, y), classes=[str]) with x uint8 (N, H, W, C), y int64 (N,).

    `source`: "cifar10", "cifar100", an ImageFolder folder, a .tar/.tar.gz/.tgz/.zip archive of
    one, or a local copy of the official cifar-10-python.tar.gz / cifar-100-python.tar.gz.
    `data_dir`: where downloads and caches go (default `default_data_dir()`).
    """
    data_dir = Path(data_dir).expanduser() if data_dir else default_data_dir()
    name = str(source).lower()
    if name in OFFICIAL:
        try:
            return load_cifar(name, data_dir)
        except DownloadError as e:
            if name != "cifar10" or not LOCAL_CIFAR10.is_file():
                raise
            print(f"{e}\nusing the local copy {LOCAL_CIFAR10} instead (JPEG re-encoded: "
                  f"pixels differ slightly from the official files)", file=sys.stderr)
            return load_image_folder(LOCAL_CIFAR10, data_dir)
    path = Path(source).expanduser()
    official = [k for k, spec in OFFICIAL.items() if path.name == spec["file"]]
    if path.is_file() and official:
        return load_cifar(official[0], data_dir, archive=path)
    if path.is_dir() or (path.is_file() and is_archive(path)):
        return load_image_folder(path, data_dir)
    found = "a file of another type" if path.exists() else "nothing there"
    raise DataError(f"data source {str(source)!r}: expected cifar10, cifar100, an ImageFolder "
                    f"folder or a {'/'.join(ARCHIVE_EXTENSIONS)} archive, found {found}")


# ---------------------------------------------------------------------------------------------
# Subsets, normalisation, batches
# ---------------------------------------------------------------------------------------------


def class_quotas(counts, n):
    """How many images to take per class: n // K each, the remainder to the first classes;
    a class with too few images gives its share to the others (so the total is n)."""
    quotas = np.zeros_like(counts)
    while (left := n - quotas.sum()) > 0:
        open_ = np.flatnonzero(quotas < counts)  # classes with images to spare
        share = np.full(len(open_), left // len(open_))
        share[:left % len(open_)] += 1
        quotas[open_] = np.minimum(quotas[open_] + share, counts[open_])
    return quotas


def balanced_subset(x, y, n, seed):
    """A seeded, class-balanced subset of n images: (x (n, ...), y (n,)), in the data's order.

    Each class gets n // K images, the first n % K classes one more. The same seed gives the
    same subset, and a smaller n gives a subset of a larger one. n >= len(x) returns all.
    """
    if n >= len(x):
        return x, y
    labels, counts = np.unique(y, return_counts=True)
    if n < len(labels):
        raise DataError(f"subset size {n} is smaller than the number of classes {len(labels)} "
                        f"(expected at least one image per class)")
    rng = np.random.default_rng(seed)
    quotas = class_quotas(counts, n)
    picks = [rng.permutation(np.flatnonzero(y == c))[:q] for c, q in zip(labels, quotas)]
    idx = np.sort(np.concatenate(picks))  # (n,)
    return x[idx], y[idx]


def normalize(x, mean=CIFAR10_MEAN, std=CIFAR10_STD):
    """uint8 (..., C) -> float32 (x - mean) / std, with mean and std (C,) in 0-255 units."""
    mean, std = np.asarray(mean, np.float32), np.asarray(std, np.float32)
    return (x.astype(np.float32) - mean) / std


def one_hot(y, k, dtype=np.float32):
    """int labels (B,) -> one-hot (B, K)."""
    return np.eye(k, dtype=dtype)[y]


def iterate_batches(rng, x, y, batch_size, shuffle=True, drop_last=False):
    """Yield (x (B, ...), y (B,)) batches, shuffled with `rng` when `shuffle`."""
    n = len(x)
    order = rng.permutation(n) if shuffle else np.arange(n)
    stop = n - n % batch_size if drop_last else n
    for i in range(0, stop, batch_size):
        idx = order[i:i + batch_size]  # (B,)
        yield x[idx], y[idx]


# ---------------------------------------------------------------------------------------------
# Augmentation (whole batches at once)
# ---------------------------------------------------------------------------------------------


def random_crop_flip(rng, x, pad=4, flip=True, mode="constant"):
    """Random crops of the padded images and random horizontal flips: (B, H, W, C) -> same.

    Each image is padded by `pad` pixels per side (zeros, or `mode="reflect"`), cropped back
    to H x W at a random offset, and mirrored left-right with probability 1/2. One gather,
    no loop over images.
    """
    b, h, w, _ = x.shape
    xp = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)), mode=mode)  # (B, H+2p, W+2p, C)
    dy, dx = rng.integers(0, 2 * pad + 1, size=(2, b))  # (B,) each
    rows = dy[:, None] + np.arange(h)  # (B, H)
    cols = dx[:, None] + np.arange(w)  # (B, W)
    if flip:
        flipped = rng.random(b) < 0.5  # (B,)
        cols = np.where(flipped[:, None], cols[:, ::-1], cols)  # (B, W)
    return xp[np.arange(b)[:, None, None], rows[:, :, None], cols[:, None, :]]  # (B, H, W, C)


def mixup(rng, x, y_onehot, alpha=0.2):
    """Mixup (Zhang et al., 2018): blend each example with another one of the same batch.

    lam ~ Beta(alpha, alpha), one per batch; returns float32 (x, y_onehot) mixes
    lam * a + (1 - lam) * b. alpha <= 0 returns the inputs as float32.
    """
    x, y_onehot = x.astype(np.float32), y_onehot.astype(np.float32)
    if alpha <= 0:
        return x, y_onehot
    lam = np.float32(rng.beta(alpha, alpha))
    perm = rng.permutation(len(x))  # (B,)
    return lam * x + (1 - lam) * x[perm], lam * y_onehot + (1 - lam) * y_onehot[perm]
