"""Data loading (every format, every user error), subsets, normalisation, augmentation.

All on tiny data the tests write into tmp_path; two optional tests read the real CIFAR-10 copy
named by `$TINYVIT_CIFAR10_COPY` when it is set.
"""
import io
import os
import pickle
import re
import shutil
import struct
import tarfile
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tinyvit import data
from tinyvit.data import DataError, archives, cifar, imagefolder

REAL_CIFAR = os.environ.get("TINYVIT_CIFAR10_COPY")  # read before the fixture below unsets it
CLASSES = ["cat", "bird", "dog"]  # deliberately not sorted


def one_line_error(excinfo, *words):
    """The error is a DataError on one line that mentions every word."""
    msg = str(excinfo.value)
    assert isinstance(excinfo.value, DataError) and "\n" not in msg, msg
    for w in words:
        assert str(w) in msg, (w, msg)
    return msg


# ---------------------------------------------------------------------------------------------
# ImageFolder fixtures
# ---------------------------------------------------------------------------------------------


def write_image_folder(root, n=3, size=8, splits=("train", "test"), fmt="png", seed=0):
    """root/split/<class>/i.<fmt> with random images (one random colour each for lossy JPEG);
    returns {split: {class: [array]}}."""
    rng = np.random.default_rng(seed)
    made = {}
    for split in splits:
        for c in CLASSES:
            d = root / split / c
            d.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                shape = (1, 1, 3) if fmt == "jpg" else (size, size, 3)
                img = rng.integers(0, 256, shape, dtype=np.uint8) + np.zeros(  # (H, W, C)
                    (size, size, 3), np.uint8)
                Image.fromarray(img).save(d / f"{i}.{fmt}")
                made.setdefault(split, {}).setdefault(c, []).append(img)
    return made


def expected_arrays(made, split):
    """(x, y) in the loader's order: classes sorted, files sorted within a class."""
    classes = sorted(CLASSES)
    x = np.stack([img for c in classes for img in made[split][c]])  # (N, H, W, C)
    y = np.array([k for k, c in enumerate(classes) for _ in made[split][c]])  # (N,)
    return x, y


def make_archive(folder, out, top=None):
    """Pack a folder's contents (optionally under one top-level name) as tar/tar.gz/tgz/zip."""
    files = sorted(p for p in folder.rglob("*"))
    arc = lambda p: ((top + "/") if top else "") + p.relative_to(folder).as_posix()  # noqa: E731
    if out.name.endswith(".zip"):
        with zipfile.ZipFile(out, "w") as zf:
            for p in files:
                zf.write(p, arc(p))
    else:
        mode = "w:gz" if out.name.endswith(("gz", ".tgz")) else "w"
        with tarfile.open(out, mode) as tf:
            for p in files:
                tf.add(p, arc(p), recursive=False)
    return out


def test_image_folder_png_and_jpeg(tmp_path):
    made = write_image_folder(tmp_path / "imgs", n=3)
    jpg = write_image_folder(tmp_path / "imgs", n=2, splits=("test",), fmt="jpg", seed=1)
    ds = data.load_data(tmp_path / "imgs", data_dir=tmp_path / "cache")
    assert ds["classes"] == sorted(CLASSES)
    x, y = ds["train"]
    ex, ey = expected_arrays(made, "train")
    assert x.dtype == np.uint8 and y.dtype == np.int64 and x.shape == (9, 8, 8, 3)
    np.testing.assert_array_equal(x, ex)  # PNG is lossless
    np.testing.assert_array_equal(y, ey)
    xt, yt = ds["test"]  # 3 PNG + 2 JPEG per class
    assert xt.shape == (15, 8, 8, 3) and np.bincount(yt).tolist() == [5, 5, 5]
    first_jpg = xt[0].astype(int) - jpg["test"]["bird"][0]  # "0.jpg" sorts before "0.png"
    assert np.abs(first_jpg).max() <= 3  # lossy, but the same picture
    assert len(list((tmp_path / "cache").glob("imagefolder-imgs-*.npz"))) == 1


@pytest.mark.parametrize("name, top, test_split", [
    ("d.tar", None, "test"), ("d.tar.gz", "cifarish", "test"), ("d.tgz", "x", "val"),
    ("d.zip", None, "val"), ("d.zip", "top", "test")])
def test_image_folder_archives(tmp_path, name, top, test_split):
    made = write_image_folder(tmp_path / "imgs", splits=("train", test_split))
    (tmp_path / "imgs" / "README.txt").write_text("ignored")
    archive = make_archive(tmp_path / "imgs", tmp_path / name, top)
    ds = data.load_data(str(archive), data_dir=tmp_path / "cache")
    for split, key in (("train", "train"), ("test", test_split)):
        ex, ey = expected_arrays(made, key)
        np.testing.assert_array_equal(ds[split][0], ex)
        np.testing.assert_array_equal(ds[split][1], ey)
    assert ds["classes"] == sorted(CLASSES)


def test_cache_is_used_then_invalidated(tmp_path, monkeypatch):
    write_image_folder(tmp_path / "imgs")
    archive = make_archive(tmp_path / "imgs", tmp_path / "d.tar.gz")
    first = data.load_data(archive, data_dir=tmp_path / "cache")

    def no_decoding(*args):
        raise AssertionError("decoded again instead of using the cache")

    monkeypatch.setattr(imagefolder, "decode_image", no_decoding)
    second = data.load_data(archive, data_dir=tmp_path / "cache")
    np.testing.assert_array_equal(first["train"][0], second["train"][0])
    assert second["classes"] == first["classes"]
    os.utime(archive, ns=(0, 10**18))  # the archive changed: the cache no longer applies
    with pytest.raises(AssertionError, match="decoded again"):
        data.load_data(archive, data_dir=tmp_path / "cache")


def test_folder_cache_notices_new_files(tmp_path, monkeypatch):
    write_image_folder(tmp_path / "imgs")
    data.load_data(tmp_path / "imgs", data_dir=tmp_path / "cache")
    Image.new("RGB", (8, 8)).save(tmp_path / "imgs" / "train" / "cat" / "new.png")
    assert len(data.load_data(tmp_path / "imgs", data_dir=tmp_path / "cache")["train"][0]) == 10


# ---------------------------------------------------------------------------------------------
# ImageFolder errors: one line, naming the file
# ---------------------------------------------------------------------------------------------


def test_undecodable_image(tmp_path):
    write_image_folder(tmp_path / "imgs")
    (tmp_path / "imgs" / "train" / "dog" / "bad.png").write_bytes(b"not an image")
    with pytest.raises(DataError) as e:
        data.load_data(tmp_path / "imgs", data_dir=tmp_path / "cache")
    one_line_error(e, "train/dog/bad.png", "cannot decode")
    archive = make_archive(tmp_path / "imgs", tmp_path / "d.zip")
    with pytest.raises(DataError) as e:
        data.load_data(archive, data_dir=tmp_path / "cache")
    one_line_error(e, "d.zip", "train/dog/bad.png")


def test_truncated_image(tmp_path):
    write_image_folder(tmp_path / "imgs", fmt="jpg")
    p = tmp_path / "imgs" / "test" / "cat" / "1.jpg"
    p.write_bytes(p.read_bytes()[:40])
    with pytest.raises(DataError) as e:
        data.load_data(tmp_path / "imgs", data_dir=tmp_path / "cache")
    one_line_error(e, "test/cat/1.jpg")


def test_empty_class_folder(tmp_path):
    write_image_folder(tmp_path / "imgs")
    (tmp_path / "imgs" / "test" / "zebra").mkdir()
    with pytest.raises(DataError) as e:
        data.load_data(tmp_path / "imgs", data_dir=tmp_path / "cache")
    one_line_error(e, "test/zebra")
    (tmp_path / "imgs" / "train" / "zebra").mkdir()
    archive = make_archive(tmp_path / "imgs", tmp_path / "d.tar", top="top")
    with pytest.raises(DataError) as e:
        data.load_data(archive, data_dir=tmp_path / "cache")
    one_line_error(e, "d.tar", "top/train/zebra", "empty")


def test_one_class_is_refused_before_decoding(tmp_path):
    """One class folder is refused from the folder listing: no image is decoded first (the
    undecodable one would otherwise be named)."""
    write_image_folder(tmp_path / "imgs")
    for split in ("train", "test"):
        for c in CLASSES[1:]:
            shutil.rmtree(tmp_path / "imgs" / split / c)
    (tmp_path / "imgs" / "train" / CLASSES[0] / "bad.png").write_bytes(b"not an image")
    for source in (tmp_path / "imgs", make_archive(tmp_path / "imgs", tmp_path / "d.zip")):
        with pytest.raises(DataError) as e:
            data.load_data(source, data_dir=tmp_path / "cache")
        one_line_error(e, source.name, "at least 2 class", CLASSES[0])
        assert "decode" not in str(e.value)


def test_images_of_different_sizes(tmp_path):
    write_image_folder(tmp_path / "imgs")
    Image.new("RGB", (9, 8)).save(tmp_path / "imgs" / "test" / "dog" / "wide.png")
    with pytest.raises(DataError) as e:
        data.load_data(tmp_path / "imgs", data_dir=tmp_path / "cache")
    one_line_error(e, "test/dog/wide.png", "9x8", "8x8")


def test_missing_splits(tmp_path):
    write_image_folder(tmp_path / "imgs", splits=("test",))
    with pytest.raises(DataError) as e:
        data.load_data(tmp_path / "imgs", data_dir=tmp_path / "cache")
    one_line_error(e, "imgs", "train/")
    write_image_folder(tmp_path / "only_train", splits=("train",))
    with pytest.raises(DataError) as e:
        data.load_data(tmp_path / "only_train", data_dir=tmp_path / "cache")
    one_line_error(e, "only_train", "test/")


@pytest.mark.parametrize("name", ["d.tar.gz", "d.zip", "d.tar"])
def test_truncated_archive(tmp_path, name):
    write_image_folder(tmp_path / "imgs", n=4, size=16)
    archive = make_archive(tmp_path / "imgs", tmp_path / name)
    archive.write_bytes(archive.read_bytes()[:archive.stat().st_size // 2 + 100])
    with pytest.raises(DataError) as e:
        data.load_data(archive, data_dir=tmp_path / "cache")
    one_line_error(e, name, "truncated or corrupt")


def tar_with(tmp_path, member):
    """A .tar.gz holding one valid image under a given TarInfo (name, type)."""
    buf = io.BytesIO()
    Image.new("RGB", (4, 4)).save(buf, "PNG")
    out = tmp_path / "evil.tar.gz"
    with tarfile.open(out, "w:gz") as tf:
        member.size = len(buf.getvalue()) if member.isfile() else 0
        tf.addfile(member, io.BytesIO(buf.getvalue()) if member.isfile() else None)
    return out


@pytest.mark.parametrize("name", ["../evil.png", "train/../../evil.png", "/tmp/evil.png"])
def test_tar_path_traversal_refused(tmp_path, name):
    with pytest.raises(DataError) as e:
        data.load_data(tar_with(tmp_path, tarfile.TarInfo(name)), data_dir=tmp_path / "cache")
    one_line_error(e, "evil.tar.gz", "unsafe", name)


@pytest.mark.parametrize("kind", [tarfile.SYMTYPE, tarfile.LNKTYPE, tarfile.CHRTYPE])
def test_tar_links_and_devices_refused(tmp_path, kind):
    m = tarfile.TarInfo("train/cat/0.png")
    m.type, m.linkname = kind, "/etc/passwd"
    with pytest.raises(DataError) as e:
        data.load_data(tar_with(tmp_path, m), data_dir=tmp_path / "cache")
    one_line_error(e, "evil.tar.gz", "refusing", "train/cat/0.png")


def test_zip_path_traversal_refused(tmp_path):
    with zipfile.ZipFile(tmp_path / "evil.zip", "w") as zf:
        zf.writestr("../../evil.png", b"x")
    with pytest.raises(DataError) as e:
        data.load_data(tmp_path / "evil.zip", data_dir=tmp_path / "cache")
    one_line_error(e, "evil.zip", "unsafe")


def test_unknown_source(tmp_path):
    with pytest.raises(DataError) as e:
        data.load_data(tmp_path / "nowhere", data_dir=tmp_path / "cache")
    one_line_error(e, "nowhere", "cifar10", "ImageFolder")
    (tmp_path / "notes.txt").write_text("hi")
    with pytest.raises(DataError) as e:
        data.load_data(tmp_path / "notes.txt", data_dir=tmp_path / "cache")
    one_line_error(e, "notes.txt", "another type")


def test_default_data_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("TINYVIT_DATA", str(tmp_path))
    assert data.default_data_dir() == tmp_path
    monkeypatch.delenv("TINYVIT_DATA")
    assert data.default_data_dir() == Path.home() / ".cache" / "tinyvit"


# ---------------------------------------------------------------------------------------------
# Official CIFAR-10 path, on a fake archive with the real structure
# ---------------------------------------------------------------------------------------------


class Py2Pickler(pickle._Pickler):
    """Pickles bytes as Python 2 pickled its str (BINSTRING), like the official batches."""

    dispatch = dict(pickle._Pickler.dispatch)

    def save_py2_str(self, obj):
        n = len(obj)
        head = (pickle.SHORT_BINSTRING + bytes([n]) if n < 256
                else pickle.BINSTRING + struct.pack("<i", n))
        self.write(head + obj)
        self.memoize(obj)

    dispatch[bytes] = save_py2_str


def py2_pickle(obj):
    """Protocol-2 pickle as written by Python 2 + numpy 1 (numpy.core.multiarray)."""
    f = io.BytesIO()
    Py2Pickler(f, protocol=2).dump(obj)
    return f.getvalue().replace(b"cnumpy._core.multiarray\n", b"cnumpy.core.multiarray\n")


CIFAR_NAMES = [b"airplane", b"automobile", b"bird", b"cat", b"deer", b"dog", b"frog", b"horse",
               b"ship", b"truck"]


def fake_cifar10(path, n=4, seed=0, batches=None):
    """A cifar-10-python.tar.gz with 5 train batches + 1 test batch of n images each."""
    rng = np.random.default_rng(seed)
    members, arrays = {}, {}
    for k, b in enumerate([f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]):
        x = rng.integers(0, 256, (n, 3072), dtype=np.uint8)  # (N, C*H*W)
        y = rng.permutation((np.arange(n) + n * k) % 10).tolist()  # every class in training
        arrays[b] = (x, y)
        members[b] = py2_pickle({b"batch_label": b"batch " + b.encode(), b"labels": y,
                                 b"data": x, b"filenames": [b"f%d.png" % i for i in range(n)]})
    members["batches.meta"] = py2_pickle({b"num_cases_per_batch": n, b"num_vis": 3072,
                                          b"label_names": CIFAR_NAMES})
    members["readme.html"] = b"<html></html>"
    members.update(batches or {})
    with tarfile.open(path, "w:gz") as tf:
        for name, raw in members.items():
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(raw)
            tf.addfile(info, io.BytesIO(raw))
    return arrays


@pytest.fixture(autouse=True)
def no_local_cifar10(tmp_path, monkeypatch):
    """Download tests see a machine without a local CIFAR-10 copy (some tests add their own)."""
    monkeypatch.delenv("TINYVIT_CIFAR10_COPY", raising=False)


@pytest.fixture
def fake_md5(monkeypatch):
    """Make the official MD5 that of the fake archive: call with the archive path."""
    def set_md5(path):
        monkeypatch.setitem(cifar.OFFICIAL["cifar10"], "md5", cifar.md5sum(path))
    return set_md5


def test_official_cifar10_path(tmp_path, fake_md5):
    arrays = fake_cifar10(tmp_path / "cifar-10-python.tar.gz")
    fake_md5(tmp_path / "cifar-10-python.tar.gz")
    ds = data.load_data("cifar10", data_dir=tmp_path)
    x, y = ds["train"]
    assert x.shape == (20, 32, 32, 3) and x.dtype == np.uint8 and y.dtype == np.int64
    assert ds["classes"] == [c.decode() for c in CIFAR_NAMES]
    raw, labels = arrays["data_batch_2"]
    np.testing.assert_array_equal(y[4:8], labels)
    # rows are 1024 red, then 1024 green, then 1024 blue values, row-major
    assert x[4, 0, 1, 0] == raw[0, 1] and x[4, 0, 0, 1] == raw[0, 1024]
    assert x[4, 1, 0, 2] == raw[0, 2048 + 32]
    np.testing.assert_array_equal(ds["test"][1], arrays["test_batch"][1])
    assert (tmp_path / "cifar10.npz").exists()
    (tmp_path / "cifar-10-python.tar.gz").unlink()  # the cache alone suffices now
    np.testing.assert_array_equal(data.load_data("cifar10", data_dir=tmp_path)["train"][0], x)


def test_official_archive_given_as_path(tmp_path, fake_md5):
    archive = tmp_path / "local" / "cifar-10-python.tar.gz"
    archive.parent.mkdir()
    fake_cifar10(archive)
    fake_md5(archive)
    ds = data.load_data(archive, data_dir=tmp_path / "cache")
    assert ds["train"][0].shape == (20, 32, 32, 3) and len(ds["classes"]) == 10


def test_official_wrong_md5_refused(tmp_path):
    fake_cifar10(tmp_path / "cifar-10-python.tar.gz")
    with pytest.raises(DataError) as e:
        data.load_data("cifar10", data_dir=tmp_path)
    one_line_error(e, "cifar-10-python.tar.gz", "MD5", cifar.OFFICIAL["cifar10"]["md5"])
    assert not (tmp_path / "cifar10.npz").exists()


class Evil:
    """Unpickling this would run a shell command."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_restricted_unpickler_refuses_code(tmp_path, fake_md5):
    marker = tmp_path / "pwned"
    for evil in (pickle.dumps(Evil(marker)), py2_pickle({b"data": Evil(marker)})):
        with pytest.raises(DataError) as e:
            archives.unpickle_cifar(evil, "batch")
        one_line_error(e, "batch", "refusing", "system")
    archive = tmp_path / "cifar-10-python.tar.gz"
    fake_cifar10(archive, batches={"data_batch_3": pickle.dumps({"data": Evil(marker)})})
    fake_md5(archive)
    with pytest.raises(DataError) as e:
        data.load_data("cifar10", data_dir=tmp_path)
    one_line_error(e, "data_batch_3", "refusing")
    assert not marker.exists()
    assert archives.unpickle_cifar(pickle.dumps({"x": [1, b"a"]}), "ok") == {"x": [1, b"a"]}


def test_official_missing_member(tmp_path, fake_md5):
    archive = tmp_path / "cifar-10-python.tar.gz"
    with tarfile.open(archive, "w:gz") as tf:
        info = tarfile.TarInfo("cifar-10-batches-py/readme.html")
        tf.addfile(info, io.BytesIO(b""))
    fake_md5(archive)
    with pytest.raises(DataError) as e:
        data.load_data("cifar10", data_dir=tmp_path)
    one_line_error(e, "cifar-10-python.tar.gz", "data_batch_1")


class FakeResponse(io.BytesIO):
    """What urlopen returns: a readable stream with headers; fails after `fail_after` bytes."""

    def __init__(self, raw, fail_after=None):
        super().__init__(raw)
        self.headers = {"Content-Length": str(len(raw))}
        self.fail_after = fail_after

    def read(self, n=-1):
        if self.fail_after is not None and self.tell() >= self.fail_after:
            raise ConnectionResetError("connection reset by peer")
        return super().read(min(n, 1000) if n > 0 else n)


def test_download_verifies_and_shows_progress(tmp_path, fake_md5, monkeypatch, capsys):
    src = tmp_path / "server.tar.gz"
    fake_cifar10(src)
    fake_md5(src)
    monkeypatch.setattr(urllib.request, "urlopen", lambda url, timeout: FakeResponse(
        src.read_bytes()))
    ds = data.load_data("cifar10", data_dir=tmp_path / "dl")
    assert ds["train"][0].shape == (20, 32, 32, 3)
    assert cifar.md5sum(tmp_path / "dl" / "cifar-10-python.tar.gz") == cifar.md5sum(src)
    err = capsys.readouterr().err
    assert "downloading cifar-10-python.tar.gz" in err and "MB" in err and "ETA" in err


def test_bad_or_interrupted_download_leaves_nothing(tmp_path, monkeypatch):
    src = tmp_path / "server.tar.gz"
    fake_cifar10(src)  # the real MD5 does not match this file
    monkeypatch.setattr(urllib.request, "urlopen", lambda url, timeout: FakeResponse(
        src.read_bytes()))
    with pytest.raises(DataError) as e:
        data.load_data("cifar10", data_dir=tmp_path / "dl")
    one_line_error(e, "MD5", "corrupt download")
    assert list((tmp_path / "dl").iterdir()) == []
    monkeypatch.setattr(urllib.request, "urlopen", lambda url, timeout: FakeResponse(
        src.read_bytes(), fail_after=3000))
    with pytest.raises(DataError) as e:
        data.load_data("cifar10", data_dir=tmp_path / "dl")
    one_line_error(e, "connection reset")
    assert list((tmp_path / "dl").iterdir()) == []


def offline(url, timeout):
    """urlopen on a machine without network."""
    raise urllib.error.URLError(OSError(-3, "Temporary failure in name resolution"))


def no_download_expected(url, timeout):
    raise AssertionError(f"no download should be tried: {url}")


def test_offline_message(tmp_path, monkeypatch):
    monkeypatch.setattr(urllib.request, "urlopen", offline)
    with pytest.raises(DataError) as e:
        data.load_data("cifar10", data_dir=tmp_path)
    one_line_error(e, "cannot download", "name resolution", "`source` PATH", "TINYVIT_DATA",
                   str(tmp_path), "cifar-10-python.tar.gz")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("kind", [".tar.gz", ".zip", "folder"])
def test_offline_falls_back_to_the_local_copy(tmp_path, monkeypatch, capsys, kind):
    made = write_image_folder(tmp_path / "src" / "cifar10-jpeg", n=2)
    local = tmp_path / "src" / "cifar10-jpeg" if kind == "folder" else make_archive(
        tmp_path / "src", tmp_path / f"cifar10-jpeg{kind}")
    monkeypatch.setattr(urllib.request, "urlopen", no_download_expected)
    monkeypatch.setenv("TINYVIT_CIFAR10_COPY", str(local))
    ds = data.load_data("cifar10", data_dir=tmp_path / "cache")
    np.testing.assert_array_equal(ds["train"][0], expected_arrays(made, "train")[0])
    assert ds["classes"] == sorted(CLASSES)
    err = capsys.readouterr().err.splitlines()  # one line, no DNS failure before it
    assert len(err) == 1 and err[0].startswith(f"cifar10: using the local copy {local} (from "
                                               f"$TINYVIT_CIFAR10_COPY")
    monkeypatch.setattr(urllib.request, "urlopen", offline)
    with pytest.raises(DataError, match="cannot download"):  # no local CIFAR-100 copy
        data.load_data("cifar100", data_dir=tmp_path / "cache")


def test_offline_without_a_local_copy_names_the_variable(tmp_path, monkeypatch):
    monkeypatch.setattr(urllib.request, "urlopen", offline)
    with pytest.raises(DataError) as e:  # $TINYVIT_CIFAR10_COPY unset (the autouse fixture)
        data.load_data("cifar10", data_dir=tmp_path)
    one_line_error(e, "cannot download", "TINYVIT_CIFAR10_COPY", "`source` PATH")
    with pytest.raises(DataError) as e:  # CIFAR-100 has no such fallback: not suggested
        data.load_data("cifar100", data_dir=tmp_path)
    assert "TINYVIT_CIFAR10_COPY" not in one_line_error(e, "cannot download", "`source` PATH")
    missing = tmp_path / "no-copy-here.tar.gz"
    monkeypatch.setenv("TINYVIT_CIFAR10_COPY", str(missing))
    with pytest.raises(DataError) as e:
        data.load_data("cifar10", data_dir=tmp_path)
    one_line_error(e, "TINYVIT_CIFAR10_COPY", str(missing), "nothing there")
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "cifar-10-python.tar.gz").write_bytes(b"not the archive")  # official files
    with pytest.raises(DataError) as e:  # here: they come first, the copy is not read
        data.load_data("cifar10", data_dir=tmp_path)
    one_line_error(e, "MD5")


def test_no_data_module_names_a_folder_outside_the_package():
    """The offline copy comes from $TINYVIT_CIFAR10_COPY, not from a path beside the repository."""
    folder = Path(data.__file__).parent
    for module in sorted(folder.glob("*.py")):
        text = module.read_text()
        assert not re.search(r"""["'/\\]shared\b|\bshared["'/\\]""", text), module
        assert "parents[" not in text, module


# ---------------------------------------------------------------------------------------------
# Subsets, normalisation, batches
# ---------------------------------------------------------------------------------------------


def labelled(n_per_class, k=10):
    """x whose first pixel is the image's index, labels k classes interleaved."""
    n = n_per_class * k
    x = np.zeros((n, 2, 2, 3), np.int64)
    x[:, 0, 0, 0] = np.arange(n)
    return x, np.arange(n) % k


def test_balanced_subset():
    x, y = labelled(20)
    xs, ys = data.balanced_subset(x, y, 53, seed=3)
    assert len(xs) == 53 and np.bincount(ys).tolist() == [6, 6, 6] + [5] * 7
    np.testing.assert_array_equal(y[xs[:, 0, 0, 0]], ys)  # images keep their labels
    again = data.balanced_subset(x, y, 53, seed=3)
    np.testing.assert_array_equal(again[0], xs)
    other = data.balanced_subset(x, y, 53, seed=4)
    assert not np.array_equal(other[0], xs)
    small = data.balanced_subset(x, y, 20, seed=3)  # nested in the larger one (same seed)
    assert set(small[0][:, 0, 0, 0]) <= set(xs[:, 0, 0, 0])
    assert data.balanced_subset(x, y, 200, seed=0)[0] is x
    with pytest.raises(DataError) as e:
        data.balanced_subset(x, y, 9, seed=0)
    one_line_error(e, "9", "10")


def test_balanced_subset_with_a_small_class():
    y = np.array([0] * 50 + [1] * 2 + [2] * 50)
    x = np.arange(len(y))
    xs, ys = data.balanced_subset(x, y, 30, seed=0)
    assert np.bincount(ys).tolist() == [14, 2, 14]


def test_normalize():
    x = np.full((2, 4, 4, 3), 255, np.uint8)
    z = data.normalize(x, data.CIFAR10_MEAN, data.CIFAR10_STD)
    assert z.dtype == np.float32 and z.shape == x.shape
    np.testing.assert_allclose(z[0, 0, 0], (255 - data.CIFAR10_MEAN) / data.CIFAR10_STD,
                               rtol=1e-6)
    assert 120 < data.CIFAR10_MEAN.mean() < 121  # 0-255 units


def test_iterate_batches():
    x, y = labelled(5, k=2)  # 10 images
    batches = list(data.iterate_batches(np.random.default_rng(0), x, y, 4))
    assert [len(b[0]) for b in batches] == [4, 4, 2]
    seen = np.concatenate([b[0][:, 0, 0, 0] for b in batches])
    assert sorted(seen) == list(range(10)) and list(seen) != list(range(10))
    assert all(np.array_equal(y[b[0][:, 0, 0, 0]], b[1]) for b in batches)
    assert [len(b[0]) for b in data.iterate_batches(None, x, y, 4, shuffle=False,
                                                    drop_last=True)] == [4, 4]


# ---------------------------------------------------------------------------------------------
# Augmentation
# ---------------------------------------------------------------------------------------------


def distinct_images(b=16, h=6, w=5):
    """uint8 images with all-different nonzero pixels."""
    return (np.arange(b * h * w * 3).reshape(b, h, w, 3) % 250 + 1).astype(np.uint8)


def test_random_crop_flip_is_a_crop_of_the_padded_image():
    x = distinct_images()
    out = data.random_crop_flip(np.random.default_rng(0), x, pad=2)
    assert out.shape == x.shape and out.dtype == np.uint8
    xp = np.pad(x, ((0, 0), (2, 2), (2, 2), (0, 0)))
    for i in range(len(x)):
        crops = [c for dy in range(5) for dx in range(5)
                 for c in (xp[i, dy:dy + 6, dx:dx + 5], xp[i, dy:dy + 6, dx:dx + 5][:, ::-1])]
        assert any(np.array_equal(out[i], c) for c in crops)
    assert (out == 0).any()  # some zero padding shows
    reflect = data.random_crop_flip(np.random.default_rng(0), x, pad=2, mode="reflect")
    assert (reflect != 0).all()


def test_random_crop_flip_deterministic():
    x = distinct_images()
    a = data.random_crop_flip(np.random.default_rng(5), x)
    b = data.random_crop_flip(np.random.default_rng(5), x)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, data.random_crop_flip(np.random.default_rng(6), x))


def test_flip_really_flips():
    x = distinct_images(b=32)
    out = data.random_crop_flip(np.random.default_rng(1), x, pad=0)
    flipped = np.array([np.array_equal(o, xi[:, ::-1]) for o, xi in zip(out, x)])
    kept = np.array([np.array_equal(o, xi) for o, xi in zip(out, x)])
    assert (flipped ^ kept).all() and 5 < flipped.sum() < 27
    np.testing.assert_array_equal(
        data.random_crop_flip(np.random.default_rng(1), x, pad=0, flip=False), x)


def test_flip_tta_averages_the_image_and_its_mirror():
    x = np.arange(2 * 2 * 3 * 1, dtype=np.float32).reshape(2, 2, 3, 1)  # (B, H, W, C)
    logits_fn = lambda x: x[:, 0, :, 0]  # "logits": the first row of pixels, (B, W)
    np.testing.assert_array_equal(data.flip_tta(logits_fn, x),
                                  0.5 * (x[:, 0, :, 0] + x[:, 0, ::-1, 0]))
    symmetric = lambda x: x.sum((1, 2))  # a flip-invariant model: TTA changes nothing
    np.testing.assert_array_equal(data.flip_tta(symmetric, x), symmetric(x))


def test_shift_tta_is_airbenchs_six_views_with_mirrored_borders():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 4, 5, 3)).astype(np.float32)  # (B, H, W, C)
    pixels = lambda v: v.reshape(len(v), -1)  # "logits": every pixel, so each view is visible
    # The views written out by index: shifted down-right by one pixel (row/column i shows
    # i - 1, the border row/column mirrored: -1 -> 1) and up-left (i shows i + 1, H -> H - 2).
    down = lambda n: np.array([1, *range(n - 1)])
    up = lambda n: np.array([*range(1, n), n - 2])
    dr = x[:, down(4)][:, :, down(5)]
    ul = x[:, up(4)][:, :, up(5)]
    mirror = lambda v: v[:, :, ::-1]
    expected = (0.25 * (pixels(x) + pixels(mirror(x)))
                + 0.125 * sum(pixels(v) + pixels(mirror(v)) for v in (dr, ul)))
    np.testing.assert_allclose(data.shift_tta(pixels, x), expected, rtol=1e-6)
    assert data.shift_tta(pixels, x).dtype == np.float32
    assert sorted(data.TTA) == ["flip", "flip-shift", "none"]
    np.testing.assert_array_equal(data.TTA["none"](pixels, x), pixels(x))


def test_mixup():
    x = distinct_images(b=8)
    y = data.one_hot(np.arange(8) % 3, 3)
    xm, ym = data.mixup(np.random.default_rng(0), x, y, alpha=0.4)
    assert xm.dtype == np.float32 and xm.shape == x.shape and ym.shape == (8, 3)
    np.testing.assert_allclose(ym.sum(1), 1, rtol=1e-6)
    xm2, _ = data.mixup(np.random.default_rng(0), x, y, alpha=0.4)
    np.testing.assert_array_equal(xm, xm2)
    np.testing.assert_array_equal(data.mixup(None, x, y, alpha=0)[0], x)


# ---------------------------------------------------------------------------------------------
# The real CIFAR-10 copy named by $TINYVIT_CIFAR10_COPY (skipped where it is unset)
# ---------------------------------------------------------------------------------------------

needs_real = pytest.mark.skipif(not REAL_CIFAR, reason="$TINYVIT_CIFAR10_COPY is not set")


@needs_real
def test_real_cifar10_archive_layout():
    files, dirs = archives.read_archive(REAL_CIFAR, imagefolder.is_image_name)
    layout, classes = imagefolder.image_folder_layout(REAL_CIFAR, files, dirs)
    assert classes == ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
                       "ship", "truck"]
    assert len(layout["train"]) == 50_000 and len(layout["test"]) == 10_000
    x, y = imagefolder.decode_images(layout["test"][::100], files, str)
    assert x.shape == (100, 32, 32, 3) and np.bincount(y).tolist() == [10] * 10


@needs_real
@pytest.mark.slow
def test_real_cifar10_full_load(tmp_path, monkeypatch):
    ds = data.load_data(REAL_CIFAR, data_dir=tmp_path)
    x, y = ds["train"]
    assert x.shape == (50_000, 32, 32, 3) and ds["test"][0].shape == (10_000, 32, 32, 3)
    assert abs(x.mean() - 120.69) < 0.05

    def no_decoding(*args, **kwargs):
        raise AssertionError("the second load decoded JPEGs instead of reading the cache")

    monkeypatch.setattr(imagefolder, "decode_images", no_decoding)  # the second load: cache only
    again = data.load_data(REAL_CIFAR, data_dir=tmp_path)
    np.testing.assert_array_equal(again["test"][1], ds["test"][1])
