"""Official CIFAR-10/100: download once (MD5-checked, with progress), decode, cache.

The python-version archives (https://www.cs.toronto.edu/~kriz/cifar.html) hold pickled batches:
dicts with 'data' uint8 (N, 3072) -- 1024 red, then 1024 green, then 1024 blue values per image,
row-major -- and N labels. They are unpickled with the restricted `archives.CifarUnpickler` and
cached as `cifar10.npz` / `cifar100.npz` in the data folder.

Shape legend: N images, H, W height and width (32), C channels (3, RGB).
"""
import hashlib
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np

from ..support.files import atomic_write
from ..support.progress import Progress, format_seconds
from .archives import py2_text, read_archive, unpickle_cifar
from .cache import load_cache, save_cache
from .checks import check_dataset
from .errors import DataError, DownloadError, one_line
from .paths import kind, open_regular

# The official python-version archives.
OFFICIAL = {
    "cifar10": dict(url="https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
                    file="cifar-10-python.tar.gz", md5="c58f30108f718f92721af3b95e74349a",
                    size=170_498_071, folder="cifar-10-batches-py",
                    train=[f"data_batch_{i}" for i in range(1, 6)], test="test_batch",
                    meta="batches.meta", labels="labels", names="label_names", classes=10),
    "cifar100": dict(url="https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",
                     file="cifar-100-python.tar.gz", md5="eb9058c3a382ffc7106e4002c42a8d85",
                     size=169_001_437, folder="cifar-100-python",
                     train=["train"], test="test",
                     meta="meta", labels="fine_labels", names="fine_label_names",
                     classes=100),
}


# ---------------------------------------------------------------------------------------------
# Download and MD5
# ---------------------------------------------------------------------------------------------


def md5sum(path, chunk=1 << 20):
    """Hex MD5 of a file."""
    h = hashlib.md5()
    with open_regular(path) as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def offline_hint(spec, data_dir):
    """How to use a local copy instead of the download."""
    return (f"put {spec['file']} into {data_dir} (or point $TINYVIT_DATA at its folder), "
            f"or pass `source` PATH, an ImageFolder folder/.tar.gz/.zip")


def download(url, dest, md5, size=None, stream=None):
    """Download `url` to `dest` with a one-line progress display; verify MD5 before keeping it.

    The bytes go through `atomic_write`: `dest` appears only once complete and verified, and an
    interrupted or corrupt download leaves nothing behind.
    """
    dest = Path(dest)
    with atomic_write(dest) as f, urllib.request.urlopen(url, timeout=30) as r:
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
        if h.hexdigest() != md5:  # raised inside the `with`: the temporary file is removed
            raise DataError(f"{url}: downloaded file has MD5 {h.hexdigest()}, expected {md5} "
                            f"(corrupt download; try again)")
    return dest


def verify_md5(path, spec):
    """Refuse an official archive whose MD5 differs from the published one."""
    found = md5sum(path)
    if found != spec["md5"]:
        raise DataError(f"{path}: MD5 is {found}, expected {spec['md5']} "
                        f"(corrupt or not {spec['file']}; delete it to download again)")


def official_archive(name, data_dir):
    """Path of the verified official archive in `data_dir`, downloading it on first use."""
    spec = OFFICIAL[name]
    path = Path(data_dir) / spec["file"]
    found = kind(path)
    if found not in ("a regular file", "nothing there"):
        raise DataError(f"{path}: expected the archive {spec['file']}, found {found} (move it "
                        f"away to download the archive)")
    if found == "nothing there":
        try:
            download(spec["url"], path, spec["md5"], spec["size"])
        except (urllib.error.URLError, OSError) as e:
            reason = one_line(getattr(e, "reason", e))
            raise DownloadError(f"cannot download {spec['url']} ({reason}); offline? "
                                f"{offline_hint(spec, data_dir)}") from None
    verify_md5(path, spec)
    return path


# ---------------------------------------------------------------------------------------------
# Decoding the batches
# ---------------------------------------------------------------------------------------------


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


def read_cifar_archive(path, spec):
    """dict(train, test, classes) decoded from an official CIFAR python .tar.gz."""
    names = spec["train"] + [spec["test"], spec["meta"]]
    wanted = {f"{spec['folder']}/{n}": n for n in names}  # member -> batch name
    found, _ = read_archive(path, lambda member: member in wanted)
    members = {wanted[m]: raw for m, raw in found.items()}  # batch name -> bytes
    missing = [f"{spec['folder']}/{n}" for n in names if n not in members]
    if missing:
        raise DataError(f"{path}: expected member {missing[0]} (not a {spec['file']}?)")
    batch = lambda n: unpickle_cifar(members[n], f"{path}:{n}")  # noqa: E731
    train = [cifar_batch(batch(n), spec, f"{path}:{n}") for n in spec["train"]]
    test = cifar_batch(batch(spec["test"]), spec, f"{path}:{spec['test']}")
    meta = batch(spec["meta"])
    classes = [py2_text(c) for c in meta.get(spec["names"], [])]
    if not classes:
        raise DataError(f"{path}:{spec['meta']}: expected '{spec['names']}', "
                        f"found keys {sorted(meta)}")
    x_train = np.concatenate([x for x, _ in train])  # (N, H, W, C)
    y_train = np.concatenate([y for _, y in train])  # (N,)
    return check_dataset(dict(train=(x_train, y_train), test=test, classes=classes), path,
                         (32, 32, 3), spec["classes"])


def load_cifar(name, data_dir, archive=None):
    """Official CIFAR-10/100 from the .npz cache, else from the (downloaded) archive."""
    spec = OFFICIAL[name]
    cache = Path(data_dir) / f"{name}.npz"
    ds = load_cache(cache, image_shape=(32, 32, 3), num_classes=spec["classes"])
    if ds is None:
        if archive is None:
            archive = official_archive(name, data_dir)
        else:
            verify_md5(archive, spec)
        ds = read_cifar_archive(archive, spec)
        save_cache(cache, ds)
    return ds
