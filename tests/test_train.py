"""Training loop: learning on easy data, bit-identical resume, the NaN guard, the CLI."""
import json

import numpy as np
import pytest
from PIL import Image

from tinyvit.run import checkpoint, evaluate
from tinyvit.run import train as T
from tinyvit.run.recipe import NAMES, recipe_for
from tinyvit.run.cli import main


def easy_dataset(n=64, k=2, size=32, seed=0):
    """Class 0 dark images, class 1 bright ones (+noise): any model learns it in a few steps."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % k
    x = np.clip(rng.normal(60 + 130 * y[:, None, None, None], 30, (n, size, size, 3)), 0, 255)
    x = x.astype(np.uint8)
    mean, std = T.channel_stats(x)
    return dict(train=(x, y), test=(x[:32], y[:32]), classes=["dark", "bright"][:k],
                mean=mean, std=std)


def run(tmp_path, name, **kw):
    """T.train on the easy data set into tmp_path/name; keywords that are settings of the
    recipe change the model's recipe, the others go to train."""
    args = dict(model="vit-cifar-nano", out=tmp_path / name, epochs=2, batch_size=16,
                data=easy_dataset(), log=lambda *a: None, progress_stream=open("/dev/null", "w"))
    args.update(kw)
    settings = {k: args.pop(k) for k in NAMES if k in args}
    return T.train(recipe=recipe_for(args["model"], **settings), **args)


def test_training_learns_an_easy_problem_and_logs(tmp_path):
    hist = run(tmp_path, "a", epochs=3, lr=3e-3, warmup=0.5)
    assert [h["epoch"] for h in hist] == [1, 2, 3]
    assert hist[-1]["test_acc"] >= 0.9  # dark vs bright
    rows = [json.loads(line) for line in (tmp_path / "a/metrics.jsonl").read_text().splitlines()]
    assert rows == hist
    assert (tmp_path / "a/last.npz").exists()
    assert not [p for p in (tmp_path / "a").iterdir() if p.name not in ("last.npz", "metrics.jsonl")]


def test_eval_every_measures_test_accuracy_on_those_epochs_and_the_last(tmp_path):
    hist = run(tmp_path, "e", epochs=3, eval_every=2)
    assert [h["test_acc"] is None for h in hist] == [True, False, False]


@pytest.mark.parametrize("model", ["vit-cifar-nano", "cnn-small"])
def test_resume_is_bit_identical(tmp_path, model):
    kw = dict(model=model, epochs=2)
    full = run(tmp_path, "full", **kw)
    run(tmp_path, "cut", max_steps=4, **kw)  # 64 images / 16 = 4 steps: stops after epoch 1
    resumed = run(tmp_path, "cut", resume=True, **kw)
    assert [h["epoch"] for h in resumed] == [1, 2]
    for a, b in zip(full, resumed):
        assert {k: v for k, v in a.items() if k != "seconds"} == \
               {k: v for k, v in b.items() if k != "seconds"}
    pa, oa, _, ea, _ = checkpoint.load_state(tmp_path / "full/last.npz")
    pb, ob, _, eb, _ = checkpoint.load_state(tmp_path / "cut/last.npz")
    from tinyvit.tree import flatten
    fa, fb = flatten({"p": pa, "m": oa["m"], "v": oa["v"]}), flatten({"p": pb, "m": ob["m"], "v": ob["v"]})
    assert fa.keys() == fb.keys() and ea == eb == 2 and oa["step"] == ob["step"]
    for k in fa:
        np.testing.assert_array_equal(fa[k], fb[k], err_msg=k)


def test_untested_epochs_are_saved_with_their_statistics_only_now_and_then(tmp_path,
                                                                           monkeypatch):
    """An untested epoch skips BatchNorm's statistics pass and its checkpoint unless
    CHECKPOINT_SECONDS have passed: the same training, tests and final checkpoint (statistics
    included) as saving every epoch, and a resume from a sparse checkpoint ends the same."""
    from tinyvit import fast
    from tinyvit.run import models, rundir
    from tinyvit.tree import flatten, unflatten

    saved, params, real = [], {}, rundir.RunFolder.save

    def recording(self, state, epoch, meta, history):
        saved.append(epoch)
        params[epoch] = {k: np.array(v) for k, v in flatten(state["params"]).items()}
        return real(self, state, epoch, meta, history)

    monkeypatch.setattr(rundir.RunFolder, "save", recording)
    kw = dict(model="cnn-air-small", epochs=4, eval_every=3)
    finals = {}
    for name, seconds in (("every", 0.0), ("sparse", 1e9)):
        monkeypatch.setattr(T, "CHECKPOINT_SECONDS", seconds)
        saved.clear()
        hist = run(tmp_path, name, **kw)
        assert saved == ([1, 2, 3, 4] if name == "every" else [3, 4])
        if name == "every":  # an untested epoch's checkpoint holds its own weights' statistics
            net = models.build("cnn-air-small", num_classes=2)
            with fast.twins():
                again = flatten(net.population_stats(unflatten(params[1]),
                                                     T.stats_images(easy_dataset(), 0)))
            assert any(params[1][k].any() for k in again if k.endswith("norm/mean"))
            for k in again:
                np.testing.assert_array_equal(params[1][k], again[k], err_msg=k)
        assert [h["test_acc"] is None for h in hist] == [True, True, False, False]
        finals[name] = hist
    run(tmp_path, "cut", max_steps=8, **kw)  # 4 steps an epoch: stops, saved, after epoch 2
    resumed = run(tmp_path, "cut", resume=True, **kw)
    drop = lambda rows: [{k: v for k, v in r.items() if k != "seconds"} for r in rows]  # noqa
    assert drop(finals["every"]) == drop(finals["sparse"])
    assert drop(finals["every"])[2:] == drop(resumed)[2:]
    files = {n: checkpoint.load_state(tmp_path / n / "last.npz")
             for n in ("every", "sparse", "cut")}
    flat = {n: flatten({"p": f[0], "m": f[1]["m"]}) for n, f in files.items()}
    assert any(k.endswith("norm/var") for k in flat["every"])
    for k in flat["every"]:
        np.testing.assert_array_equal(flat["sparse"][k], flat["every"][k], err_msg=k)
        np.testing.assert_array_equal(flat["cut"][k], flat["every"][k], err_msg=k)


def test_resume_refuses_other_settings(tmp_path):
    run(tmp_path, "r", max_steps=4)
    with pytest.raises(ValueError, match="other settings"):
        run(tmp_path, "r", resume=True, lr=0.5)


def test_nan_loss_stops_and_keeps_last_good_checkpoint(tmp_path, monkeypatch):
    real = T.make_grad_fn
    calls = {"n": 0}

    def poisoned(model, smoothing):
        grad_fn = real(model, smoothing)

        def f(*args):
            grads, (loss, logits) = grad_fn(*args)
            calls["n"] += 1
            return grads, (loss * np.nan if calls["n"] > 5 else loss, logits)
        return f

    monkeypatch.setattr(T, "make_grad_fn", poisoned)
    with pytest.raises(T.TrainingDiverged, match=r"epoch 2, step 5: loss is nan.*last good checkpoint"):
        run(tmp_path, "nan", epochs=3)
    _, opt, _, epoch, _ = checkpoint.load_state(tmp_path / "nan/last.npz")  # still loadable
    assert epoch == 1 and opt["step"] == 4


def test_confusion_matrix_and_summary():
    cm = evaluate.confusion_matrix(np.array([0, 0, 1, 1]), np.array([0, 1, 1, 1]), 2)
    np.testing.assert_array_equal(cm, [[1, 1], [0, 2]])
    lines = evaluate.confusion_summary(cm, ["a", "b"])
    assert "50.0%" in lines[1] and "a->b (1)" in lines[-1]


def test_cli_info(capsys):
    assert main(["info", "vit-ti16"]) == 0
    out = capsys.readouterr().out
    assert "5,717,416" in out and "197" in out
    assert main(["info", "vit-zz"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: unknown model") and err.count("\n") == 1


def test_cli_info_names_the_pooling_and_the_ingredients(capsys):
    assert main(["info", "vit-cifar-sl"]) == 0
    out = capsys.readouterr().out
    assert "64 (8x8 patches, sequence pooling)" in out and "fixed 2-D sin-cos" in out
    assert "shifted patch tokens, locality self-attention" in out
    assert main(["info", "vit-cifar-nano"]) == 0
    out = capsys.readouterr().out
    assert "65 (8x8 patches + 1 class token)" in out and "learned" in out
    assert "small data" not in out


def make_image_folder(root, n=8):
    """train/test splits of dark/bright 32x32 PNGs."""
    ds = easy_dataset(n * 2)
    x, y = ds["train"]
    for split in ("train", "test"):
        for i in range(len(x)):
            d = root / split / ds["classes"][y[i]]
            d.mkdir(parents=True, exist_ok=True)
            Image.fromarray(x[i]).save(d / f"{i}.png")
    return x


def test_cli_train_eval_predict(tmp_path, capsys):
    x = make_image_folder(tmp_path / "imgs")
    out = tmp_path / "run"
    rc = main(["train", "--model", "vit-cifar-nano", "--data", str(tmp_path / "imgs"),
               "--data-dir", str(tmp_path / "cache"), "--epochs", "1", "--batch-size", "8",
               "--out", str(out)])
    assert rc == 0 and (out / "last.npz").exists()
    assert "final test accuracy" in capsys.readouterr().out
    assert main(["eval", str(out / "last.npz"), "--data-dir", str(tmp_path / "cache")]) == 0
    assert "test accuracy" in capsys.readouterr().out
    Image.fromarray(x[0]).resize((64, 64)).save(tmp_path / "one.png")
    assert main(["predict", str(out / "last.npz"), str(tmp_path / "one.png")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and {l.split()[-1] for l in lines} == {"dark", "bright"}
    (tmp_path / "bad.png").write_bytes(b"not an image")
    assert main(["predict", str(out / "last.npz"), str(tmp_path / "bad.png")]) == 2
    assert "cannot decode image" in capsys.readouterr().err


def test_training_on_a_device_backend_equals_numpy(tmp_path):
    """The whole loop through the strict CuPy stand-in (tests/fake_cupy.py): same metrics and
    bit-identical parameters as on NumPy, and checkpoints written as host arrays."""
    import fake_cupy
    from tinyvit import device

    try:
        host = run(tmp_path, "host", epochs=1)
        dev = run(tmp_path, "dev", epochs=1, backend=fake_cupy)
    finally:
        device.use_backend("numpy")
    strip = lambda h: [{k: v for k, v in r.items() if k != "seconds"} for r in h]
    assert strip(host) == strip(dev)
    from tinyvit.tree import flatten
    a = flatten(checkpoint.load_state(tmp_path / "host/last.npz")[0])
    b = flatten(checkpoint.load_state(tmp_path / "dev/last.npz")[0])
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


def test_cli_info_cnn(capsys):
    assert main(["info", "cnn-small"]) == 0
    assert "298,026" in capsys.readouterr().out


def test_eval_and_predict_default_to_the_shipped_model(tmp_path, capsys, monkeypatch):
    from tinyvit.run import cli
    assert cli.PRETRAINED.is_file() and cli.PRETRAINED.stat().st_size <= 2_000_000
    model, params, meta = checkpoint.load_model(cli.PRETRAINED)
    assert model.name == "vit-cifar-nano" and meta["data"] == "cifar10" and len(meta["classes"]) == 10
    rows = [json.loads(l) for l in cli.PRETRAINED.with_suffix(".metrics.jsonl").read_text().splitlines()]
    assert len(rows) == meta["hparams"]["epochs"] and rows[-1]["test_acc"] > 0.6
    monkeypatch.chdir(tmp_path)  # no runs/ here
    Image.fromarray(easy_dataset()["train"][0][0]).save(tmp_path / "one.png")
    assert main(["predict", str(tmp_path / "one.png")]) == 0
    out, err = capsys.readouterr()
    assert len(out.splitlines()) == 5 and "pretrained" in err


@pytest.mark.parametrize("clock_origin", [0.0, 1e6], ids=["clock-just-started", "clock-old"])
def test_progress_lines_update_in_place_on_a_terminal_and_clear(monkeypatch, clock_origin):
    """The same lines whatever perf_counter's arbitrary zero (a host up for seconds or for days)."""
    import io
    import itertools

    ticks = itertools.count()
    monkeypatch.setattr("tinyvit.support.progress.time.perf_counter",
                        lambda: clock_origin + 0.001 * next(ticks))

    from tinyvit.support.progress import Progress

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    screen = Terminal()
    p = Progress(10, "testing ", screen)
    p.update(5, "images tested")
    p.update(10, "images tested")
    p.clear()
    text = screen.getvalue()
    assert text.count("\r") == 4 and "testing 10/10 images tested ETA 0:00" in text
    assert text.endswith("\r" + " " * len("testing 10/10 images tested ETA 0:00") + "\r")
    log = io.StringIO()  # not a terminal: full lines, at most one per `every`, and the last
    q = Progress(10, "testing ", log, every=3600)
    for done in range(1, 11):
        q.update(done)
    q.clear()  # leaves them
    lines = log.getvalue().splitlines()
    assert len(lines) == 2 and lines[0].startswith("testing 1/10 ETA ")
    assert lines[1] == "testing 10/10 ETA 0:00"
