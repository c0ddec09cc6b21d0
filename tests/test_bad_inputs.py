"""Bad inputs and faults: each gets one clear line, the right exit status, and nothing on disk is
lost or changed (issue 15).

Every case runs the command line in-process on tiny generated data (8x8 images, 2-3 classes, a
few training steps) in a copy of one prepared folder, and checks: the exit status, exactly one
`error: ...` line naming the option or file, and that every file there (but the data cache) is
byte for byte what it was. Library-level cases (Google files, caches, decoding limits) follow.
"""
import contextlib
import errno
import hashlib
import io
import json
import os
import shutil
import struct
import tarfile
import urllib.error
import urllib.request
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tinyvit.data import DataError, cache, imagefolder, limits, paths
from tinyvit.run import checkpoint, google, rundir
from tinyvit.run import train as T
from tinyvit.run.cli import main
from tinyvit.support.files import stale_temp_files

TRAIN = ["train", "--data", "imgs", "--data-dir", "cache", "--epochs", "2", "--batch-size", "8"]
CUT = TRAIN[:5] + ["--epochs", "3", "--batch-size", "8", "--out", "cut"]  # cut: 1 of 3 epochs
RESUME = CUT + ["--resume"]
EVAL = ["eval", "run/last.npz", "--data-dir", "cache"]
PREDICT = ["predict", "run/last.npz", "imgs/test/dark/0.png"]


# ---------------------------------------------------------------------------------------------
# The prepared folder: image folders, a finished run (run/) and one cut after 1 of 3 epochs (cut/)
# ---------------------------------------------------------------------------------------------


def images(root, classes=("bright", "dark"), n=8, size=8, seed=0):
    """train/ (n per class) and test/ (n // 2) of noisy bright or dark PNGs."""
    rng = np.random.default_rng(seed)
    for split, count in (("train", n), ("test", n // 2)):
        for k, c in enumerate(classes):
            (root / split / c).mkdir(parents=True, exist_ok=True)
            for i in range(count):
                x = rng.normal(60 + 130 * (k % 2), 30, (size, size, 3))
                Image.fromarray(np.clip(x, 0, 255).astype(np.uint8)).save(
                    root / split / c / f"{i}.png")


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    root = tmp_path_factory.mktemp("base")
    images(root / "imgs")
    images(root / "imgs3", classes=("a", "b", "c"))
    images(root / "imgs16", size=16)
    with contextlib.chdir(root), contextlib.redirect_stderr(io.StringIO()), \
            contextlib.redirect_stdout(io.StringIO()):
        assert main(TRAIN + ["--out", "run"]) == 0
        assert main(CUT + ["--max-steps", "2"]) == 0
    return root


@pytest.fixture
def site(base, tmp_path, monkeypatch):
    """A fresh copy of the prepared folder, as the current folder."""
    d = tmp_path / "site"
    shutil.copytree(base, d, symlinks=True)
    monkeypatch.chdir(d)
    return d


def snapshot(d):
    """{path: sha1 of a file, or "folder"} of everything under d except the data cache."""
    return {p.relative_to(d).as_posix(): "folder" if p.is_dir() else
            hashlib.sha1(p.read_bytes()).hexdigest() if p.is_file() else paths.kind(p)
            for p in sorted(d.rglob("*")) if not p.is_symlink()
            and not p.relative_to(d).as_posix().startswith("cache/")}


def refused(site, capsys, argv, needles, code=2):
    """Run the CLI: exit status `code`, one error line naming `needles`, nothing changed."""
    before = snapshot(site)
    assert main([str(a) for a in argv]) == code
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and err.rstrip().endswith(errors[0]) and "Traceback" not in err, err
    for needle in needles:
        assert needle in errors[0], (needle, errors[0])
    assert snapshot(site) == before
    return errors[0]


def rows(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


# ---------------------------------------------------------------------------------------------
# Checkpoint surgery
# ---------------------------------------------------------------------------------------------


def mutate(path, change):
    """Rewrite the arrays of an .npz file after change(arrays) (a dict, edited in place)."""
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    change(arrays)
    np.savez(path, **arrays)


def edit_meta(change, which="run/last.npz"):
    """A setup that edits the checkpoint's metadata dict."""
    def fn(arrays):
        meta = json.loads(str(arrays["__extra__/meta"]))
        change(meta)
        arrays["__extra__/meta"] = np.array(json.dumps(meta))
    return lambda d: mutate(d / which, fn)


def edit(change, which="run/last.npz"):
    return lambda d: mutate(d / which, change)


def put(key, value):
    return lambda a: a.update({key: value})


def poke(key, index, value):
    return lambda a: a[key].__setitem__(index, value)


def model_field(name, value):
    return edit_meta(lambda m: m["model"].update({name: value}))


def run_field(name, value, which="cut/last.npz"):
    return edit_meta(lambda m: m.update({name: value}), which)


def write(rel, content):
    def fn(d):
        (d / rel).parent.mkdir(parents=True, exist_ok=True)
        (d / rel).write_bytes(content) if isinstance(content, bytes) else (d / rel).write_text(
            content)
    return fn


def png_header(w, h, mode_bits=(8, 2)):
    """A PNG claiming w x h pixels (its pixel data is a stub: only the header is read)."""
    def chunk(kind, body):
        return (struct.pack(">I", len(body)) + kind + body
                + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF))
    ihdr = struct.pack(">IIBBBBB", w, h, *mode_bits, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0"))
            + chunk(b"IEND", b""))


def float_image(rel, dtype=np.float32):
    """An image of 32-bit float (mode F) or integer (mode I) values, under an image name."""
    def fn(d):
        Image.fromarray(np.arange(64, dtype=dtype).reshape(8, 8) * 1000).save(d / rel, "TIFF")
    return fn


def zip_of(src, name, extra=None, skip=lambda rel: False, top=""):
    """Pack the folder src (minus skipped paths, plus extra members) as a zip."""
    def fn(d):
        with zipfile.ZipFile(d / name, "w") as zf:
            for p in sorted((d / src).rglob("*.png")):
                rel = p.relative_to(d / src).as_posix()
                if not skip(rel):
                    zf.write(p, top + rel)
            for member, data in (extra or {}).items():
                zf.writestr(top + member, data)
    return fn


def cnn_params_under_vit_meta(d):
    with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
        assert main(TRAIN + ["--epochs", "1", "--model", "cnn-tiny", "--out", "cnn"]) == 0
    with np.load(d / "cnn/last.npz") as c, np.load(d / "run/last.npz") as v:
        arrays = {k: c[k] for k in c.files} | {"__extra__/meta": v["__extra__/meta"]}
    shutil.rmtree(d / "cnn")
    np.savez(d / "run/last.npz", **arrays)


def train_on(src):
    return ["train", "--data", src, "--data-dir", "cache", "--epochs", "1", "--out", "new"]


# ---------------------------------------------------------------------------------------------
# The cases: (id, setup(site) or None, argv, words the error line must contain, exit status)
# ---------------------------------------------------------------------------------------------

OPTIONS = [(f"{opt}={val}", None, TRAIN + [opt, val, "--out", "new"], [opt], 2)
           for opt, val in [("--epochs", "0"), ("--epochs", "-1"), ("--batch-size", "0"),
                            ("--batch-size", "-5"), ("--lr", "-1"), ("--lr", "nan"),
                            ("--lr", "0"), ("--weight-decay", "nan"), ("--weight-decay", "-1"),
                            ("--smoothing", "2"), ("--smoothing", "1"), ("--clip", "-1"),
                            ("--clip", "nan"), ("--warmup", "-1"), ("--max-steps", "0"),
                            ("--seed", "-1"), ("--train-size", "0"), ("--epochs", "abc")]] + [
    ("epochs-0-into-a-run", None, TRAIN + ["--epochs", "0", "--out", "run"], ["--epochs"], 2),
    ("weight-decay-times-lr", None, TRAIN + ["--weight-decay", "1e30", "--out", "new"],
     ["--weight-decay", "--lr"], 2),
    ("train-size-below-classes", None, TRAIN + ["--train-size", "1", "--out", "new"],
     ["--train-size"], 2),
    ("backend-unknown", None, TRAIN + ["--backend", "foo", "--out", "new"], ["--backend"], 2),
    ("model-unknown", None, TRAIN + ["--model", "vit-zz", "--out", "new"], ["vit-zz"], 2),
    ("out-is-a-file", None, TRAIN + ["--out", "imgs/test/dark/0.png"], ["--out", "0.png"], 2),
    ("out-under-a-file", None, TRAIN + ["--out", "imgs/test/dark/0.png/x"], ["0.png"], 2),
    ("data-dir-is-a-file", None, TRAIN[:3] + ["--data-dir", "imgs/test/dark/0.png", "--out",
                                              "new"], ["--data-dir"], 2),
    ("data-missing", None, train_on("nowhere"), ["nowhere"], 2),
    ("resume-and-replace", None, RESUME + ["--replace"], ["--resume", "--replace"], 2),
    ("info-image-size-0", None, ["info", "--image-size", "0"], ["--image-size"], 2),
    ("info-num-classes-negative", None, ["info", "--num-classes", "-1"], ["--num-classes"], 2),
    ("predict-top-0", None, PREDICT + ["--top", "0"], ["--top"], 2),
]

RUN_FOLDERS = [
    ("new-run-into-a-run", None, TRAIN + ["--out", "run"], ["--out run", "--resume",
                                                             "--replace"], 2),
    ("resume-without-checkpoint", write("empty/metrics.jsonl", '{"epoch": 1}\n'),
     TRAIN + ["--out", "empty", "--resume"], ["--resume", "last.npz"], 2),
    ("resume-other-seed", None, RESUME + ["--seed", "3"], ["cut/last.npz", "--seed 0 then, 3"],
     2),
    ("resume-other-train-size", None, RESUME + ["--train-size", "12"], ["--train-size 16"], 2),
    ("resume-other-lr", None, RESUME + ["--lr", "0.5"], ["other settings", "--lr"], 2),
    ("resume-other-classes", None, ["train", "--data", "imgs3"] + RESUME[3:],
     ["classes", "cut/last.npz"], 2),
    ("resume-other-images", None, ["train", "--data", "imgs16"] + RESUME[3:],
     ["cut/last.npz", "images"], 2),
    ("resume-cut-inside-an-epoch", edit(put("__extra__/step", np.array(1)), "cut/last.npz"),
     RESUME, ["inside epoch 1", "--max-steps"], 2),
    ("resume-corrupt-checkpoint", write("cut/last.npz", b"PK\x03\x04 cut short"), RESUME,
     ["cut/last.npz"], 2),
]

CHECKPOINTS = [
    ("missing-file", None, ["eval", "nope.npz"], ["nope.npz", "nothing there"], 2),
    ("a-folder", None, ["eval", "run"], ["run", "folder"], 2),
    ("not-npz", None, ["eval", "run/metrics.jsonl"], ["metrics.jsonl"], 2),
    ("missing-array", edit(lambda a: a.pop("params/head/w")), EVAL, ["head/w", "missing"], 2),
    ("unexpected-array", edit(put("params/blocks/0/rel", np.zeros(3, np.float32))), EVAL,
     ["params/blocks/0/rel"], 2),
    ("stray-array", edit(put("junk", np.zeros(3, np.float32))), EVAL, ["'junk'"], 2),
    ("misshaped-array", edit(put("params/head/w", np.zeros((64, 3), np.float32))), EVAL,
     ["params/head/w: expected (64, 2), found (64, 3)"], 2),
    ("string-array", edit(put("params/head/b", np.array(["a", "b"]))), EVAL,
     ["params/head/b", "floating-point"], 2),
    ("int-array", edit(put("params/head/b", np.zeros(2, np.int64))), PREDICT,
     ["params/head/b", "int64"], 2),
    ("nan-in-head-eval", edit(poke("params/head/w", (0, 0), np.nan)), EVAL,
     ["params/head/w", "NaN"], 2),
    ("nan-in-head-predict", edit(poke("params/head/w", (0, 0), np.nan)), PREDICT,
     ["params/head/w", "NaN"], 2),
    ("inf-in-embedding", edit(poke("params/embed/w", (0, 0), np.inf)), EVAL, ["embed/w"], 2),
    ("pickled-object", edit(put("params/head/b", np.array([object()], dtype=object))), EVAL,
     ["last.npz"], 2),
    ("meta-not-json", edit(put("__extra__/meta", np.array("{oops"))), EVAL,
     ["run/last.npz", "meta", "JSON"], 2),
    ("meta-a-list", edit(put("__extra__/meta", np.array("[1, 2]"))), EVAL, ["meta", "list"], 2),
    ("meta-missing", edit(lambda a: a.pop("__extra__/meta")), EVAL, ["run/last.npz", "meta"],
     2),
    ("meta-without-model", edit_meta(lambda m: m.pop("model")), EVAL, ["meta", "model"], 2),
    ("meta-3-classes-for-2", edit_meta(lambda m: m.update(classes=["a", "b", "c"])), PREDICT,
     ["meta classes", "2 distinct"], 2),
    ("meta-classes-not-names", edit_meta(lambda m: m.update(classes=[1, 2])), EVAL,
     ["meta classes"], 2),
    ("meta-unknown-field", model_field("foo", 1), EVAL, ["meta model", "'foo'"], 2),
    ("meta-missing-field", edit_meta(lambda m: m["model"].pop("width")), EVAL, ["width"], 2),
    ("meta-width-a-string", model_field("width", "abc"), EVAL, ["width", "'abc'"], 2),
    ("meta-dropout-a-string", model_field("dropout", "x"), EVAL, ["dropout"], 2),
    ("meta-negative-eps", model_field("ln_eps", -1.0), EVAL, ["ln_eps"], 2),
    ("meta-huge-model", model_field("mlp_dim", 10**9), EVAL, ["parameters", "disagree"], 2),
    ("meta-depth-contradicts", model_field("depth", 3), EVAL, ["run/last.npz", "blocks/3"], 2),
    ("meta-cnn-type-on-vit", model_field("type", "CNNConfig"), EVAL, ["meta model"], 2),
    ("meta-short-mean", edit_meta(lambda m: m.update(mean=[1.0])), EVAL, ["meta mean"], 2),
    ("meta-zero-std", edit_meta(lambda m: m.update(std=[0.0, 1.0, 1.0])), PREDICT,
     ["meta std"], 2),
    ("cnn-params-vit-meta", cnn_params_under_vit_meta, EVAL, ["run/last.npz"], 2),
    ("resume-rng-not-json", edit(put("__extra__/rng", np.array("{bad")), "cut/last.npz"),
     RESUME, ["cut/last.npz", "rng"], 2),
    ("resume-rng-other-generator", edit(put("__extra__/rng", np.array(json.dumps(
        {"bit_generator": "MT19937"}))), "cut/last.npz"), RESUME, ["rng", "PCG64"], 2),
    ("resume-moment-missing", edit(lambda a: a.pop("opt/m/head/w"), "cut/last.npz"), RESUME,
     ["opt/m/head/w"], 2),
    ("resume-negative-moment", edit(lambda a: a.__setitem__(
        "opt/v/head/w", -1 - np.abs(a["opt/v/head/w"])), "cut/last.npz"), RESUME,
     ["opt/v/head/w", "negative"], 2),
    ("resume-nan-moment", edit(poke("opt/m/head/b", 0, np.nan), "cut/last.npz"), RESUME,
     ["opt/m/head/b"], 2),
    ("resume-negative-step", edit(put("__extra__/step", np.array(-5)), "cut/last.npz"), RESUME,
     ["step", "-5"], 2),
    ("resume-epoch-past-the-end", edit(put("__extra__/epoch", np.array(99)), "cut/last.npz"),
     RESUME, ["epoch", "99"], 2),
    ("resume-hparams-missing", edit_meta(lambda m: m["hparams"].pop("clip"), "cut/last.npz"),
     RESUME, ["hparams"], 2),
    ("resume-hparams-nan-lr", edit_meta(lambda m: m["hparams"].update(lr=float("nan")),
                                        "cut/last.npz"), RESUME, ["hparams lr nan"], 2),
    ("resume-history-wrong", edit(put("__extra__/history", np.array("[]")), "cut/last.npz"),
     RESUME, ["history"], 2),
]

DATA = [
    ("eval-on-3-classes", None, EVAL + ["--data", "imgs3"], ["--data imgs3", "classes"], 2),
    ("eval-on-16px-images", None, EVAL + ["--data", "imgs16"], ["imgs16", "16x16"], 2),
    ("eval-relative-data-path", run_field("data", "imgs", "run/last.npz"), EVAL,
     ["'imgs'", "--data"], 2),
    ("train-on-7px-images", lambda d: images(d / "imgs7", size=7), train_on("imgs7"),
     ["imgs7", "7x7"], 2),
    ("broken-symlink", lambda d: os.symlink(d / "gone", d / "imgs3/train/a/x.png"),
     train_on("imgs3"), ["x.png", "broken symbolic link"], 2),
    ("archive-name-is-a-folder", lambda d: (d / "cache/cifar-10-python.tar.gz").mkdir(),
     train_on("cifar10"), ["cifar-10-python.tar.gz", "folder"], 2),
    ("zip-class-without-images", zip_of("imgs3", "c.zip", {"train/c/notes.txt": "none",
                                                           "test/c/notes.txt": "none"},
                                        lambda rel: rel.startswith(("train/c", "test/c"))),
     train_on("c.zip"), ["c.zip", "train/c", "empty"], 2),
    ("zip-train-split-missing", zip_of("imgs3", "t.zip", skip=lambda r: r.startswith("train"),
                                       top="top/"), train_on("t.zip"), ["top/train/"], 2),
    ("decompression-bomb", write("imgs3/train/a/big.png", png_header(20000, 20000)),
     train_on("imgs3"), ["big.png", "too large"], 2),
    ("over-the-pixel-limit", write("imgs3/train/a/big.png", png_header(10000, 9000)),
     train_on("imgs3"), ["big.png", "too large"], 2),
    ("bomb-to-predict", write("big.png", png_header(20000, 20000)),
     ["predict", "run/last.npz", "big.png"], ["big.png"], 2),
    ("float-image", float_image("imgs3/train/a/x.png"), train_on("imgs3"),
     ["x.png", "mode F", "float"], 2),
    ("int32-image-to-predict", float_image("x.png", np.int32), ["predict", "run/last.npz",
                                                                "x.png"], ["x.png", "mode I"], 2),
    ("empty-png", write("imgs3/train/a/e.png", b""), train_on("imgs3"), ["e.png"], 2),
    ("predict-missing-image", None, ["predict", "run/last.npz", "nope.png"], ["nope.png"], 2),
]


@pytest.mark.parametrize("setup, argv, needles, code",
                         [c[1:] for c in OPTIONS + RUN_FOLDERS + CHECKPOINTS + DATA],
                         ids=[c[0] for c in OPTIONS + RUN_FOLDERS + CHECKPOINTS + DATA])
def test_bad_input_is_one_line_and_changes_nothing(site, capsys, setup, argv, needles, code):
    if setup is not None:
        with contextlib.redirect_stderr(io.StringIO()):
            setup(site)
    refused(site, capsys, argv, needles, code)


# ---------------------------------------------------------------------------------------------
# Run folders: a lock, nothing lost, the log always the checkpoint's history
# ---------------------------------------------------------------------------------------------


def test_a_folder_in_use_is_refused(site, capsys):
    folder = rundir.RunFolder(site / "cut")
    with rundir.locked(folder):
        refused(site, capsys, RESUME, ["--out cut", "in use", str(os.getpid())])
    assert not folder.lock.exists()


def test_a_read_only_out_is_one_line(site, capsys, monkeypatch):
    real = os.open

    def read_only(path, *args, **kw):
        if str(path).endswith(rundir.LOCK):
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real(path, *args, **kw)

    monkeypatch.setattr(rundir.os, "open", read_only)  # root ignores chmod: refuse it here
    refused(site, capsys, RESUME, ["--out cut", "cannot write there (Permission denied)"])


def test_replace_moves_the_old_run_aside(site, capsys):
    old = (site / "run/last.npz").read_bytes()
    assert main(TRAIN + ["--out", "run", "--replace", "--epochs", "1"]) == 0
    assert (site / "run/previous-1/last.npz").read_bytes() == old
    assert [r["epoch"] for r in rows(site / "run/metrics.jsonl")] == [1]
    assert "moved the run" in capsys.readouterr().out


def test_disk_full_keeps_log_and_checkpoint_in_step(site, capsys, monkeypatch):
    real, calls = checkpoint.save_params, []

    def full(path, *args, **kw):
        calls.append(path)
        if len(calls) == 2:
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return real(path, *args, **kw)

    monkeypatch.setattr(checkpoint, "save_params", full)
    assert main(RESUME) == 1
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "cut/last.npz: cannot write (No space left on device)" in err
    assert "the last checkpoint is cut/last.npz (epoch 2)" in err
    assert checkpoint.load_extra(site / "cut/last.npz")["epoch"] == 2
    assert [r["epoch"] for r in rows(site / "cut/metrics.jsonl")] == [1, 2]


def test_ctrl_c_says_which_checkpoint_is_kept(site, capsys, monkeypatch):
    real, calls = T.train_epoch, []

    def interrupted(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(T, "train_epoch", interrupted)
    assert main(TRAIN[:5] + ["--epochs", "3", "--batch-size", "8", "--out", "int"]) == 130
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err == ("error: interrupted; the last checkpoint is int/last.npz (epoch 1) "
                   "(continue with --resume)")
    assert [r["epoch"] for r in rows(site / "int/metrics.jsonl")] == [1]
    assert not (site / "int/.lock").exists()


def test_resume_rewrites_a_log_that_lags_or_repeats_and_stays_bit_exact(site, capsys):
    full = site / "full"
    assert main(TRAIN[:5] + ["--epochs", "3", "--batch-size", "8", "--out", "full"]) == 0
    (site / "cut/metrics.jsonl").write_text((site / "cut/metrics.jsonl").read_text() * 3)
    (site / "cut/.last.npz.999999-abc.tmp").write_bytes(b"left by a kill -9")
    assert main(RESUME) == 0
    strip = lambda rs: [{k: v for k, v in r.items() if k != "seconds"} for r in rs]  # noqa: E731
    assert strip(rows(site / "cut/metrics.jsonl")) == strip(rows(full / "metrics.jsonl"))
    assert not (site / "cut/.last.npz.999999-abc.tmp").exists()
    a, b = checkpoint.load_state(site / "cut/last.npz"), checkpoint.load_state(full / "last.npz")
    for key, x in a[0]["head"].items():
        np.testing.assert_array_equal(x, b[0]["head"][key])


def test_resume_without_a_log_rebuilds_it_from_the_checkpoint(site):
    (site / "cut/metrics.jsonl").unlink()
    assert main(RESUME) == 0
    assert [r["epoch"] for r in rows(site / "cut/metrics.jsonl")] == [1, 2, 3]


def test_eval_needs_no_optimiser_or_rng_state(site, capsys):
    mutate(site / "run/last.npz", lambda a: [a.pop(k) for k in list(a)
                                              if k.startswith("opt/") or k.endswith("/rng")])
    assert main(EVAL) == 0
    assert "test accuracy" in capsys.readouterr().out


def test_a_constant_channel_trains_instead_of_blaming_the_lr(site):
    for p in (site / "imgs").rglob("*.png"):
        x = np.asarray(Image.open(p)).copy()
        x[..., 2] = 0
        Image.fromarray(x).save(p)
    assert main(TRAIN + ["--out", "blue0"]) == 0
    assert all(np.isfinite(r["loss"]) for r in rows(site / "blue0/metrics.jsonl"))


def test_stale_temp_files_of_dead_processes_only():
    import tempfile
    from pathlib import Path
    with tempfile.TemporaryDirectory() as d:
        dead, alive = Path(d, ".x.npz.999999-a.tmp"), Path(d, f".x.npz.{os.getpid()}-b.tmp")
        dead.touch(), alive.touch()
        assert stale_temp_files(d) == [dead] == stale_temp_files(d, "x.npz")


# ---------------------------------------------------------------------------------------------
# Caches: validated like any input, rebuilt when they fail
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("change, reason", [
    (lambda a: a.update(y_train=a["y_train"] + 90), "labels go from 90"),
    (lambda a: a.update(y_train=a["y_train"] - 5), "labels go from -5"),
    (lambda a: a.update(y_train=a["y_train"][:-1]), "labels: expected"),
    (lambda a: a.update(x_train=a["x_train"].astype(np.float32)), "uint8"),
    (lambda a: a.update(version=np.array(99)), "version 99"),
], ids=["labels-too-high", "labels-negative", "lengths-differ", "float-images", "version"])
def test_a_bad_cache_is_rebuilt(site, capsys, change, reason):
    assert main(train_on("imgs3")) == 0
    (path,) = (site / "cache").glob("imagefolder-imgs3-*.npz")
    good = cache.read_cache(path)
    mutate(path, change)
    shutil.rmtree(site / "new")
    capsys.readouterr()
    assert main(train_on("imgs3")) == 0
    note = capsys.readouterr().err.splitlines()[0]
    assert note.startswith(f"note: ignoring the cache cache/{path.name}: ") and reason in note, note
    assert note.endswith("; decoding again")
    np.testing.assert_array_equal(cache.read_cache(path)["train"][1], good["train"][1])


def _offline(url, timeout=None):
    raise urllib.error.URLError("[Errno -2] Name or service not known")


def test_cifar_cache_with_bad_labels_is_not_trained_on(site, capsys, monkeypatch):
    # Offline and without the local JPEG copy (CI exports $TINYVIT_CIFAR10_COPY): the rebuild
    # that replaces the bad cache cannot happen, so the run must stop instead of training.
    monkeypatch.delenv("TINYVIT_CIFAR10_COPY", raising=False)
    monkeypatch.setattr(urllib.request, "urlopen", _offline)
    rng = np.random.default_rng(0)
    np.savez(site / "cache/cifar10.npz", x_train=rng.integers(0, 255, (20, 32, 32, 3), np.uint8),
             y_train=np.arange(20) % 10 + 90, x_test=np.zeros((10, 32, 32, 3), np.uint8),
             y_test=np.arange(10), classes=np.array([f"c{i}" for i in range(10)]))
    assert main(train_on("cifar10")) == 2
    err = capsys.readouterr().err
    assert "cifar10.npz" in err and "labels go from 90" in err and "error: " in err


# ---------------------------------------------------------------------------------------------
# Archives and images: limits while reading
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["zip", "tar.gz"])
def test_archive_members_are_size_capped_while_reading(site, monkeypatch, kind):
    monkeypatch.setattr(imagefolder, "MAX_IMAGE_BYTES", 10_000)
    path = site / f"h.{kind}"
    big = b"\0" * 50_000
    if kind == "zip":
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
            zf.writestr("train/a/huge.png", big)
    else:
        with tarfile.open(path, "w:gz") as tf:
            info = tarfile.TarInfo("train/a/huge.png")
            info.size = len(big)
            tf.addfile(info, io.BytesIO(big))
    with pytest.raises(DataError, match=r"h\.(zip|tar\.gz):train/a/huge\.png: member of 50,000"):
        imagefolder.load_image_folder(path, site / "cache")


def test_decode_image_limits_in_memory():
    with pytest.raises(DataError, match="b.png: image too large"):
        imagefolder.decode_image(png_header(20000, 20000), "b.png")
    with pytest.raises(DataError, match="g.png: cannot decode image"):  # a stub, not 16-bit
        imagefolder.decode_image(png_header(4, 4, (16, 0)), "g.png")


# ---------------------------------------------------------------------------------------------
# The Google format: every array checked too
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def google_file(tmp_path):
    from tinyvit.configs import ViTConfig
    from tinyvit.vit import init_vit

    cfg = ViTConfig(image_size=8, patch_size=4, width=8, depth=2, heads=2, mlp_dim=8,
                    num_classes=3)
    path = tmp_path / "g.npz"
    google.save_google_vit(path, init_vit(np.random.default_rng(0), cfg), cfg)
    return path, cfg


@pytest.mark.parametrize("change, needle", [
    (poke("head/kernel", (0, 0), np.nan), "head/kernel: holds 1 NaN"),
    (put("head/bias", np.array(["a", "b", "c"])), "head/bias: expected floating-point"),
    (put("head/bias", np.zeros(3, np.int32)), "head/bias: expected floating-point"),
], ids=["nan", "strings", "ints"])
def test_google_arrays_are_checked(google_file, change, needle):
    path, cfg = google_file
    mutate(path, change)
    with pytest.raises(ValueError, match=needle) as e:
        google.load_google_vit(path, cfg)
    assert "g.npz" in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize("change, needle", [
    (put("embedding/kernel", np.zeros((48, 8), np.float32)), "embedding/kernel with 4"),
    (put("Transformer/encoderblock_0/MultiHeadDotProductAttention_1/query/kernel",
         np.zeros((8, 3, 2), np.float32)), "divisible by heads 3"),
], ids=["2d-embedding", "heads"])
def test_google_config_inference_names_the_file(google_file, change, needle):
    path, _ = google_file
    mutate(path, change)
    with pytest.raises(ValueError, match=needle) as e:
        google.infer_config_from_google(path)
    assert str(e.value).startswith(str(path))


def test_a_tar_gz_cut_at_a_member_boundary_is_noticed(tmp_path):
    """Its deflate stream simply stops after whole members: it would read as a shorter archive."""
    png = io.BytesIO()
    Image.new("RGB", (4, 4)).save(png, "PNG")
    tar = io.BytesIO()
    with tarfile.open(fileobj=tar, mode="w") as tf:
        for name in ("train/a/0.png", "test/a/0.png"):
            info = tarfile.TarInfo(name)
            info.size = len(png.getvalue())
            tf.addfile(info, io.BytesIO(png.getvalue()))
    first = tar.getvalue()[:512 + 512 * -(-len(png.getvalue()) // 512)]  # header + data blocks
    deflate = zlib.compressobj(9, zlib.DEFLATED, -15)
    cut = deflate.compress(first) + deflate.flush(zlib.Z_SYNC_FLUSH)  # no final block
    path = tmp_path / "cut.tar.gz"
    path.write_bytes(b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff" + cut)
    with pytest.raises(DataError, match="cut.tar.gz: truncated or corrupt archive"):
        imagefolder.load_image_folder(path, tmp_path / "cache")


# ---------------------------------------------------------------------------------------------
# Round three (issue 28): what a path is, sizes read from files, degenerate data sets, file
# names as the OS gives them, signals
# ---------------------------------------------------------------------------------------------


def fifo(rel):
    return lambda d: os.mkfifo(d / rel)


def unix_socket(rel):
    def fn(d):
        import socket
        with socket.socket(socket.AF_UNIX) as s:
            s.bind(rel)  # relative to the site: socket paths are limited to ~100 bytes
    return fn


def link(rel, target):
    return lambda d: os.symlink(target, d / rel)


def replace_with_fifo(rel):
    def fn(d):
        (d / rel).unlink(missing_ok=True)
        os.mkfifo(d / rel)
    return fn


def npy_header(shape, descr="<f4"):
    """The bytes of an .npy header declaring `shape` (and no data after it)."""
    f = io.BytesIO()
    np.lib.format.write_array_header_1_0(f, dict(descr=descr, fortran_order=False, shape=shape))
    return f.getvalue()


def npz_member(which, member, raw):
    """Replace (or add) the raw bytes of one member of an .npz file."""
    def fn(d):
        with zipfile.ZipFile(d / which) as z:
            members = {i.filename: z.read(i) for i in z.infolist()}
        members[member] = raw
        with zipfile.ZipFile(d / which, "w") as z:
            for name, data in members.items():
                z.writestr(name, data)
    return fn


def one_class(name):
    return lambda d: images(d / name, classes=("a",))


def image_copy(rel, src="imgs3/train/a/0.png"):
    def fn(d):
        (d / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(d / src, d / rel)
    return fn


E9 = "caf\udce9"  # the bytes b"caf\xe9" (Latin-1, not UTF-8) as Python gives them

ROUND_THREE = [
    # every path is checked for what it must be before it is opened
    ("fifo-in-train-split", fifo("imgs3/train/a/f.png"), train_on("imgs3"),
     ["imgs3/train/a/f.png", "expected an image file, found a FIFO"], 2),
    ("fifo-in-test-split", fifo("imgs3/test/b/f.jpg"), train_on("imgs3"),
     ["imgs3/test/b/f.jpg", "FIFO"], 2),
    ("fifo-as-archive-source", fifo("x.zip"), train_on("x.zip"), ["x.zip", "FIFO"], 2),
    ("fifo-where-cifar-archive-goes", fifo("cache/cifar-10-python.tar.gz"), train_on("cifar10"),
     ["cifar-10-python.tar.gz", "FIFO"], 2),
    ("fifo-to-predict", fifo("f.png"), ["predict", "run/last.npz", "f.png"], ["f.png", "FIFO"],
     2),
    ("fifo-as-checkpoint-eval", fifo("f.npz"), ["eval", "f.npz", "--data-dir", "cache"],
     ["f.npz", "expected an .npz file, found a FIFO"], 2),
    ("fifo-as-checkpoint-predict", fifo("f.npz"), ["predict", "f.npz", "imgs/test/dark/0.png"],
     ["f.npz", "FIFO"], 2),
    ("fifo-as-resume-checkpoint", replace_with_fifo("cut/last.npz"), RESUME,
     ["--resume", "cut/last.npz"], 2),
    ("socket-in-train-split", unix_socket("imgs3/train/a/s.png"), train_on("imgs3"),
     ["s.png", "socket"], 2),
    ("device-in-train-split", link("imgs3/train/a/z.png", "/dev/zero"), train_on("imgs3"),
     ["z.png", "character device"], 2),
    ("device-to-predict", link("z.png", "/dev/zero"), ["predict", "run/last.npz", "z.png"],
     ["z.png", "character device"], 2),
    ("device-as-checkpoint", None, ["eval", "/dev/null"], ["/dev/null", "character device"],
     2),
    ("folder-to-predict", None, ["predict", "run/last.npz", "imgs"], ["imgs", "folder"], 2),
    ("link-loop-in-data", link("imgs3/again", "."), train_on("imgs3"),
     ["imgs3/again", "loop"], 2),
    ("link-loop-as-class-folder", link("imgs3/train/again", ".."), train_on("imgs3"),
     ["imgs3/train/again", "loop"], 2),
    ("old-checkpoint-log-is-a-fifo", lambda d: (edit(lambda a: a.pop("__extra__/history"),
                                                     "cut/last.npz")(d),
                                                replace_with_fifo("cut/metrics.jsonl")(d)),
     RESUME, ["cut/metrics.jsonl", "FIFO"], 2),
    ("lock-is-a-fifo", replace_with_fifo("cut/.lock"), RESUME,
     ["--out cut", ".lock is a FIFO"], 2),
    ("class-folder-broken-link", link("imgs3/train/d", "/nonexistent/d"), train_on("imgs3"),
     ["imgs3/train/d", "broken symbolic link"], 2),
    ("source-broken-link", link("gone.zip", "nowhere.zip"), train_on("gone.zip"),
     ["gone.zip", "broken symbolic link"], 2),
    # every size read from a file is checked before anything is allocated
    ("npz-declares-10^12-eval", npz_member("run/last.npz", "params/head/w.npy",
                                           npy_header((10**6, 10**6))), EVAL,
     ["run/last.npz", "params/head/w", "(1000000, 1000000)", "3.6 TiB"], 2),
    ("npz-declares-10^12-predict", npz_member("run/last.npz", "params/head/w.npy",
                                              npy_header((10**6, 10**6))), PREDICT,
     ["params/head/w", "3.6 TiB"], 2),
    ("npz-declares-2^80-bytes", npz_member("run/last.npz", "params/head/b.npy",
                                           npy_header((2**40, 2**37), "<f8")), EVAL,
     ["params/head/b"], 2),
    ("npz-resume-huge-moment", npz_member("cut/last.npz", "opt/m/head/w.npy",
                                          npy_header((10**7, 10**5))), RESUME,
     ["cut/last.npz", "opt/m/head/w"], 2),
    ("npz-data-shorter-than-header", npz_member("run/last.npz", "params/head/w.npy",
                                                npy_header((64, 2)) + b"\0" * 10), EVAL,
     ["params/head/w", "holds"], 2),
    ("npz-object-array-header", npz_member("run/last.npz", "params/head/b.npy",
                                           npy_header((2,), "|O") + b"\0" * 16), EVAL,
     ["params/head/b", "objects"], 2),
    ("npz-garbage-member", npz_member("run/last.npz", "notes.txt", b"hello"), EVAL,
     ["run/last.npz", "notes.txt", "not a readable array"], 2),
    ("npz-bad-header", npz_member("run/last.npz", "params/head/b.npy",
                                  b"\x93NUMPY\x01\x00\x10\x00{'descr': ???}  \n"), PREDICT,
     ["params/head/b"], 2),
    # data sets that cannot train a classifier
    ("one-class-folder", one_class("one"), train_on("one"),
     ["one", "at least 2 classes", "'a'"], 2),
    ("one-class-zip", zip_of("imgs3", "one.zip", skip=lambda r: r.split("/")[1] != "a"),
     train_on("one.zip"), ["one.zip", "at least 2 classes"], 2),
    ("eval-on-one-class", one_class("one"), EVAL + ["--data", "one"], ["one", "2 classes"], 2),
    ("class-only-in-test", image_copy("imgs3/test/z/0.png"), train_on("imgs3"),
     ["test/z", "train/z"], 2),
    ("test-split-without-images", lambda d: [p.unlink() for p in d.glob("imgs3/test/*/*.png")],
     train_on("imgs3"), ["imgs3: test/ holds no images"], 2),
    ("class-empty-in-train", lambda d: (d / "imgs3/train/z").mkdir(), train_on("imgs3"),
     ["train/z", "empty"], 2),
    # file names as the OS gives them; every data error names the file
    ("non-utf8-bad-image", write(f"imgs3/train/a/{E9}.png", b"not a png"), train_on("imgs3"),
     ["imgs3/train/a/caf\\xe9.png", "cannot decode"], 2),
    ("non-utf8-fifo", fifo(f"imgs3/test/a/{E9}.png"), train_on("imgs3"),
     ["caf\\xe9.png", "FIFO"], 2),
    ("non-utf8-predict-missing", None, ["predict", "run/last.npz", f"{E9}.png"],
     ["caf\\xe9.png", "nothing there"], 2),
    ("non-utf8-checkpoint-missing", None, ["eval", f"{E9}.npz"], ["caf\\xe9.npz"], 2),
    ("non-utf8-data-missing", None, train_on(E9), ["'caf\\xe9'", "nothing there"], 2),
    ("non-utf8-big-image", write(f"imgs3/train/b/{E9}.png", png_header(20000, 20000)),
     train_on("imgs3"), ["caf\\xe9.png", "too large"], 2),
]


@pytest.mark.parametrize("setup, argv, needles, code", [c[1:] for c in ROUND_THREE],
                         ids=[c[0] for c in ROUND_THREE])
def test_round_three_is_one_line_and_changes_nothing(site, capsys, setup, argv, needles, code):
    if setup is not None:
        with contextlib.redirect_stderr(io.StringIO()):
            setup(site)
    refused(site, capsys, argv, needles, code)


def stop_with(signum, at_call=2):
    """A train_epoch that sends this process `signum` on its `at_call`-th call."""
    real, calls = T.train_epoch, []

    def epoch(*args, **kwargs):
        calls.append(1)
        if len(calls) == at_call:
            os.kill(os.getpid(), signum)
        return real(*args, **kwargs)
    return epoch


@pytest.mark.parametrize("name, status", [("SIGTERM", 143), ("SIGHUP", 129)])
def test_sigterm_and_sighup_stop_a_run_as_ctrl_c_does(site, capsys, monkeypatch, name, status):
    import signal
    before = signal.getsignal(getattr(signal, name))
    monkeypatch.setattr(T, "train_epoch", stop_with(getattr(signal, name)))
    assert main(TRAIN[:5] + ["--epochs", "3", "--batch-size", "8", "--out", "int"]) == status
    err = capsys.readouterr().err.strip().splitlines()
    assert [line for line in err if line.startswith("error: ")] == [err[-1]]
    assert err[-1] == (f"error: stopped by {name}; the last checkpoint is int/last.npz (epoch 1) "
                       f"(continue with --resume)")
    assert [r["epoch"] for r in rows(site / "int/metrics.jsonl")] == [1]
    assert not (site / "int/.lock").exists() and not list((site / "int").glob(".*.tmp"))
    assert signal.getsignal(getattr(signal, name)) is before  # restored after the command
    assert main(TRAIN[:5] + ["--epochs", "3", "--batch-size", "8", "--out", "int",
                             "--resume"]) == 0  # and it continues


def test_sigterm_while_decoding_or_testing_leaves_nothing(site, capsys, monkeypatch):
    import signal
    real = imagefolder.decode_image

    def decode(src, name):
        if name.endswith("b/3.png"):
            os.kill(os.getpid(), signal.SIGTERM)
        return real(src, name)

    monkeypatch.setattr(imagefolder, "decode_image", decode)
    refused(site, capsys, train_on("imgs3"), ["stopped by SIGTERM"], 143)
    assert not (site / "new").exists() and not list((site / "cache").glob("*imgs3*"))
    monkeypatch.setattr(imagefolder, "decode_image", real)
    from tinyvit.run import evaluate
    real_eval = evaluate.evaluate
    monkeypatch.setattr(evaluate, "evaluate", lambda *a, **k: (os.kill(os.getpid(), signal.SIGTERM),
                                                                  real_eval(*a, **k))[1])
    refused(site, capsys, EVAL, ["stopped by SIGTERM"], 143)


def only_for_pathlib(real, needle):
    """os.scandir/os.open that refuse `needle` (as root ignores chmod) for the library's str
    paths, not the test's own pathlib walks."""
    def fake(path, *args, **kw):
        if isinstance(path, str) and path.endswith(needle):
            raise PermissionError(errno.EACCES, "Permission denied", path)
        return real(path, *args, **kw)
    return fake


def test_an_unreadable_class_folder_says_permission_denied(site, capsys, monkeypatch):
    monkeypatch.setattr(paths.os, "scandir", only_for_pathlib(os.scandir, "imgs3/train/b"))
    refused(site, capsys, train_on("imgs3"),
            ["imgs3/train/b: cannot list this folder (Permission denied)"])


def test_an_unreadable_image_says_permission_denied(site, capsys, monkeypatch):
    monkeypatch.setattr(paths.os, "open", only_for_pathlib(os.open, "imgs3/test/c/1.png"))
    refused(site, capsys, train_on("imgs3"), ["imgs3/test/c/1.png", "Permission denied"])


def test_links_below_class_folders_are_not_walked(site, capsys):
    os.symlink("/", site / "imgs3/train/a/root")  # would walk the whole disk
    os.symlink("..", site / "imgs3/test/b/up")  # a loop, but nothing of the layout
    assert main(train_on("imgs3")) == 0


def test_a_class_folder_that_is_a_link_is_followed(site, capsys):
    shutil.move(site / "imgs3/train/c", site / "elsewhere")
    os.symlink(site / "elsewhere", site / "imgs3/train/c")
    assert main(train_on("imgs3")) == 0
    meta = json.loads(str(np.load(site / "new/last.npz")["__extra__/meta"]))
    assert meta["classes"] == ["a", "b", "c"] and meta["train_size"] == 24
    (site / "elsewhere/0.png").unlink()  # a change behind the link is a new data set
    shutil.rmtree(site / "new")
    assert main(train_on("imgs3")) == 0
    assert json.loads(str(np.load(site / "new/last.npz")["__extra__/meta"]))["train_size"] == 23


def test_a_fifo_cache_is_replaced_not_read(site, capsys):
    assert main(train_on("imgs3")) == 0
    (path,) = (site / "cache").glob("imagefolder-imgs3-*.npz")
    path.unlink()
    os.mkfifo(path)
    shutil.rmtree(site / "new")
    capsys.readouterr()
    assert main(train_on("imgs3")) == 0
    assert "found a FIFO (named pipe); decoding again" in capsys.readouterr().err
    assert path.is_file()


def test_a_cache_declaring_a_huge_array_is_rebuilt(site, capsys):
    assert main(train_on("imgs3")) == 0
    (path,) = (site / "cache").glob("imagefolder-imgs3-*.npz")
    npz_member(path, "x_train.npy", npy_header((10**6, 10**6, 3), "|u1"))(site)
    shutil.rmtree(site / "new")
    capsys.readouterr()
    assert main(train_on("imgs3")) == 0
    assert "x_train: declares uint8 (1000000, 1000000, 3)" in capsys.readouterr().err


@pytest.mark.parametrize("memory, argv, needles", [
    (1000, EVAL, ["run/last.npz", "params/", "need", "this machine's memory (1,000 bytes)"]),
    (1000, train_on("imgs3"), ["imgs3/train/a/0.png", "24 images like this 8x8 one need 4.5 KiB",
                               "memory"]),
    (10**6, TRAIN + ["--out", "new"], ["--model vit-cifar-nano on --data imgs", "2 classes",
                                       "training", "need 2.1 MiB", "memory (976.6 KiB)"]),
], ids=["checkpoint", "images", "classes"])
def test_what_needs_more_than_the_memory_is_refused_with_the_figure(site, capsys, monkeypatch,
                                                                    memory, argv, needles):
    monkeypatch.setattr(limits, "memory_bytes", lambda: memory)
    refused(site, capsys, argv, needles)


def test_evaluation_memory_does_not_grow_with_classes_times_images():
    """Logits of 2,000 images over 20,000 classes would be 160 MB; a batch's are 5 MB."""
    import tracemalloc
    from types import SimpleNamespace

    from tinyvit.run import evaluate
    k, n = 20_000, 2_000
    w = np.zeros((3, k), np.float32)
    model = SimpleNamespace(cfg=SimpleNamespace(num_classes=k),
                            apply=lambda p, x: x.mean((1, 2)) @ p["head"]["w"])  # (B, K)
    x, y = np.zeros((n, 4, 4, 3), np.uint8), np.arange(n) % k
    tracemalloc.start()
    acc, cm = evaluate.evaluate(model, {"head": {"w": w}}, x, y, np.zeros(3, np.float32),
                                np.ones(3, np.float32))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 40e6, f"{peak / 1e6:.0f} MB"
    assert acc == 1 / n and cm.count.sum() == n and set(cm.pred) == {0}  # all predicted 0
    lines = evaluate.confusion_summary(cm, [f"c{i}" for i in range(k)])
    assert lines[1].endswith("100.0%") and lines[-1].startswith("most confused: c")
    assert "(no test images)" in lines[n + 2]  # classes 2000.. have none


def test_a_class_without_test_images_is_noted_not_scored(site, capsys):
    image_copy("imgs3/train/z/0.png")(site)
    image_copy("imgs3/train/z/1.png")(site)
    (site / "imgs3/test/z").mkdir()  # empty: as if missing
    assert main(train_on("imgs3")) == 0
    err = capsys.readouterr().err
    assert ("note: imgs3: class 'z' has no test images: trained on, but not measured by the "
            "test accuracy") in err.splitlines()
    assert main(["eval", "new/last.npz", "--data", "imgs3", "--data-dir", "cache"]) == 0
    out = capsys.readouterr().out
    assert "z                      - (no test images)" in out.splitlines()


def test_a_given_data_set_with_an_untrained_class_is_refused():
    from tinyvit import data
    x = np.zeros((4, 8, 8, 3), np.uint8)
    ds = dict(train=(x, np.array([0, 0, 2, 2])), test=(x, np.array([0, 1, 2, 2])),
              classes=["a", "b", "c"])
    with pytest.raises(DataError, match="class 'b' has no training images"):
        data.check_dataset(ds, "ds")


def test_non_utf8_file_and_class_names_train_and_print(site, capsys):
    shutil.move(site / "imgs3/train/c", site / f"imgs3/train/{E9}")
    shutil.move(site / "imgs3/test/c", site / f"imgs3/test/{E9}")
    shutil.move(site / "imgs3/train/a/0.png", site / f"imgs3/train/a/{E9}.png")
    assert main(train_on("imgs3")) == 0
    assert main(["eval", "new/last.npz", "--data", "imgs3", "--data-dir", "cache"]) == 0
    assert main(["predict", "new/last.npz", f"imgs3/train/a/{E9}.png"]) == 0
    out = capsys.readouterr().out
    assert any(line.startswith("caf\\xe9 ") for line in out.splitlines()), out
    assert "  caf\\xe9" in out


def test_16_bit_grey_and_colour_images_read_alike():
    """Pillow reads 16-bit colour PNGs by their top 8 bits; 16-bit grey ones are read so too
    (they used to be clipped at 255, and README said both were refused)."""
    grey = np.arange(64, dtype=np.uint16).reshape(8, 8) * 1000  # (H, W)
    png = io.BytesIO()
    Image.fromarray(grey).save(png, "PNG")
    got = imagefolder.decode_image(png.getvalue(), "g.png")  # (H, W, C)
    np.testing.assert_array_equal(got, np.repeat((grey >> 8).astype(np.uint8)[..., None], 3, -1))

    def chunk(kind, body):
        return (struct.pack(">I", len(body)) + kind + body
                + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF))
    rows = b"".join(b"\0" + grey[i].repeat(3).astype(">u2").tobytes() for i in range(8))
    rgb16 = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 8, 8, 16, 2, 0, 0, 0))
             + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))
    np.testing.assert_array_equal(imagefolder.decode_image(rgb16, "c.png"), got)


def test_readme_says_what_the_image_decoder_does():
    """README's sentences on which images are read and which refused hold for the decoder: a
    16-bit grey PNG is read by its top 8 bits, a float image and a 32-bit one are refused."""
    readme = " ".join((Path(__file__).resolve().parents[1] / "README.md").read_text()
                      .lower().split())
    assert "16-bit images, grey or colour, are read by their top 8 bits" in readme
    assert "images of 32-bit integer or float values are refused" in readme
    grey = (np.arange(64, dtype=np.uint16).reshape(8, 8) * 1000)  # (H, W)
    png = io.BytesIO()
    Image.fromarray(grey).save(png, "PNG")
    assert imagefolder.decode_image(png.getvalue(), "g.png")[0, 1, 0] == 1000 >> 8
    for image in (Image.fromarray(np.full((8, 8), 0.5, np.float32)),  # mode F
                  Image.fromarray(np.full((8, 8), 70000, np.int32))):  # mode I
        tiff = io.BytesIO()
        image.save(tiff, "TIFF")
        with pytest.raises(ValueError) as e:
            imagefolder.decode_image(tiff.getvalue(), "x.tif")
        assert "x.tif" in str(e.value) and "\n" not in str(e.value)


def test_a_second_stopping_signal_does_not_cut_the_clean_up_short():
    import signal

    from tinyvit.run import signals
    cleaned = []
    with pytest.raises(signals.Stopped) as e, signals.as_interrupt():
        try:
            os.kill(os.getpid(), signal.SIGTERM)
        finally:
            os.kill(os.getpid(), signal.SIGHUP)  # while unwinding: ignored
            cleaned.append(1)
    assert e.value.signum == signal.SIGTERM and cleaned == [1]
    assert signals.exit_status() == 143 and signals.reason() == "stopped by SIGTERM"


def test_a_compressed_npz_member_cannot_claim_more_than_deflate_expands(tmp_path):
    """A zip's directory may claim any uncompressed size; deflate expands at most ~1032 times,
    so a small member claiming 800 MB is refused before anything is allocated."""
    path = tmp_path / "bomb.npz"
    header = npy_header((2 * 10**8,))
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("a.npy", header + b"\0" * 1000)
    raw = bytearray(path.read_bytes())
    real = struct.pack("<I", len(header) + 1000)
    claimed = struct.pack("<I", len(header) + 8 * 10**8)
    for at in (i for i in range(len(raw) - 3) if raw[i:i + 4] == real):
        raw[at:at + 4] = claimed  # the local header's and the directory's uncompressed size
    path.write_bytes(bytes(raw))
    with zipfile.ZipFile(path) as z:
        assert z.getinfo("a.npy").file_size == len(header) + 8 * 10**8
    with pytest.raises(DataError, match=r"bomb.npz: a: declares float32 \(200000000,\) "
                                        r"\(762.9 MiB\) but holds .* or less"):
        limits.load_npz(path)


@pytest.mark.parametrize("kind", ["zip", "tar.gz"])
def test_archive_members_together_are_capped_by_the_memory(site, monkeypatch, kind):
    """Each member under the per-image cap, but all of them kept at once past the memory."""
    monkeypatch.setattr(limits, "memory_bytes", lambda: 25_000)
    path, part = site / f"many.{kind}", b"\0" * 10_000
    if kind == "zip":
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
            for i in range(3):
                zf.writestr(f"train/a/{i}.png", part)
    else:
        with tarfile.open(path, "w:gz") as tf:
            for i in range(3):
                info = tarfile.TarInfo(f"train/a/{i}.png")
                info.size = len(part)
                tf.addfile(info, io.BytesIO(part))
    with pytest.raises(DataError, match=r"many\.(zip|tar\.gz): its members up to train/a/2\.png "
                                        r"need 29\.3 KiB, more than this machine's memory"):
        imagefolder.load_image_folder(path, site / "cache")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_an_out_or_data_dir_that_is_a_fifo_or_device_is_named_as_such(site, capsys):
    """What stands where a folder should is named as what it is, not 'a file'."""
    os.mkfifo("pipe")
    before = snapshot(site)
    assert main(TRAIN[:5] + ["--out", "pipe"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["error: --out pipe: is a FIFO (named pipe), expected a folder"]
    assert main(TRAIN[:5] + ["--out", "pipe/run"]) == 2
    assert capsys.readouterr().err.strip() == (
        "error: --out pipe/run: lies under a FIFO (named pipe) pipe, expected a folder")
    if os.path.exists("/dev/null"):
        assert main(TRAIN[:5] + ["--data-dir", "/dev/null"]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "/dev/null" in err[0] and "a character device" in err[0]
    assert snapshot(site) == before


# The reader of our output leaves (`python -m tinyvit ... | head`): no error line, the status
# of a program stopped by the closed pipe. Output larger than any pipe buffer, so the write
# really fails; both command lines.
PIPED = """
import sys
from tinyvit.run import cli
from tinyvit.exercises import cli as ex
def many(args):
    for i in range(200000):
        print("line", i)
    return 0
cli.cmd_info = many
ex.cmd_docs = many
sys.exit(cli.main(["info"]) if sys.argv[1] == "tinyvit" else ex.main(["docs"]))
"""


@pytest.mark.parametrize("which", ["tinyvit", "exercises"])
def test_a_reader_that_closes_the_pipe_is_not_an_error(which):
    import subprocess
    import sys
    root = Path(__file__).resolve().parents[1]
    proc = subprocess.Popen([sys.executable, "-c", PIPED, which], cwd=root,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout.readline() == b"line 0\n"
    proc.stdout.close()  # `head -1` has what it wants
    err = proc.stderr.read()
    assert (proc.wait(timeout=60), err) == (141, b"")
