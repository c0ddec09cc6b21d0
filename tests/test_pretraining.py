"""Pre-training on formula-driven data and fine-tuning from a checkpoint: a `fractal:` spec
trains like any data source (recorded verbatim, streamed when large, resumed bit-exactly,
evaluated from its checkpoint), and `init` fine-tunes every family."""
import numpy as np
import pytest

from tinyvit.data import fractal_sets
from tinyvit.figures.fractal_grid import save_categories
from tinyvit.run import checkpoint, rundata
from tinyvit.run import train as T
from tinyvit.run.cli import main
from tinyvit.run.recipe import recipe_for
from tinyvit.tree import flatten

SPEC = "fractal:4x16,seed=3"  # 4 categories x 16 images: 4 steps of 16 an epoch


def quiet():
    return dict(log=lambda *a: None, progress_stream=open("/dev/null", "w"))


def fit(out, model="vit-cifar-nano", data=SPEC, **kw):
    settings = {k: kw.pop(k) for k in ("epochs", "batch_size", "lr") if k in kw}
    recipe = recipe_for(model, **{"epochs": 2, "batch_size": 16, **settings})
    return T.train(model, data, recipe, out, **quiet(), **kw)


def same_runs(a_dir, b_dir, a_hist, b_hist):
    """Histories equal but for seconds; parameters and optimiser state bit-identical."""
    strip = lambda h: [{k: v for k, v in r.items() if k != "seconds"} for r in h]
    assert strip(a_hist) == strip(b_hist)
    pa, oa, _, ea, _ = checkpoint.load_state(a_dir / "last.npz")
    pb, ob, _, eb, _ = checkpoint.load_state(b_dir / "last.npz")
    slots = [s for s in ("m", "v") if s in oa]
    fa, fb = (flatten({"p": p, **{s: o[s] for s in slots}}) for p, o in ((pa, oa), (pb, ob)))
    assert fa.keys() == fb.keys() and ea == eb and oa["step"] == ob["step"]
    for k in fa:
        np.testing.assert_array_equal(fa[k], fb[k], err_msg=k)


def test_a_spec_is_recorded_verbatim_not_as_a_path():
    assert rundata.data_name(" fractal:10x5,grey ") == "fractal:10x5,grey"
    assert rundata.data_name("1p-frac:3x2,delta=0.1") == "1p-frac:3x2,delta=0.1"
    assert rundata.data_name("CIFAR10") == "cifar10"


@pytest.fixture
def streaming(monkeypatch):
    """Sets of more than 50 images stream: SPEC's 64 (+ its held-out split) do."""
    monkeypatch.setattr(rundata, "IN_MEMORY", 50)


def test_a_streamed_epoch_draws_every_image_of_the_set_once(streaming):
    ds = T.prepare(SPEC)
    assert ds["images"] == 64 and len(ds["train"][0]) == 64  # the sample: all 64 here
    fs = ds["stream"]
    seen = list(T.epoch_batches(None, ds, 16, 4, epoch=1))  # the stream needs no rng
    xs, ys = np.concatenate([x for x, _ in seen]), np.concatenate([y for _, y in seen])
    assert np.bincount(ys).tolist() == [16] * 4
    cats, inst = fractal_sets.epoch_order(fs, 1)
    np.testing.assert_array_equal(xs, fractal_sets.render(fs, cats, inst))
    assert ds["digest"] == rundata.formula_digest(fs) != rundata.formula_digest(
        fractal_sets.fractal_set("fractal:4x16,seed=4"))
    assert len(ds["test"][1]) == 4 * 3  # a fifth of I per category, instances 16..18


def test_a_streamed_run_interrupted_and_resumed_equals_the_uninterrupted_one(
        tmp_path, streaming):
    full = fit(tmp_path / "full")
    fit(tmp_path / "cut", max_steps=4)  # stops after epoch 1 (4 steps)
    resumed = fit(tmp_path / "cut", resume=True)
    same_runs(tmp_path / "full", tmp_path / "cut", full, resumed)
    meta = checkpoint.load_run(tmp_path / "cut/last.npz")["meta"]
    assert meta["data"] == SPEC and meta["train_size"] == 64
    assert meta["train_digest"] == rundata.formula_digest(fractal_sets.fractal_set(SPEC))
    with pytest.raises(ValueError, match="other settings"):
        fit(tmp_path / "cut", data="fractal:4x16,seed=4", resume=True)


def test_a_streamed_set_refuses_a_train_size(streaming):
    with pytest.raises(ValueError, match="`train_size` 32: `data` fractal:4x16,seed=3 is "
                                         "streamed whole"):
        T.prepare(SPEC, train_size=32)


def test_the_command_line_pre_trains_on_a_spec_draws_its_categories_resumes_and_evaluates(
        tmp_path, capsys):
    out = tmp_path / "pre"
    args = ["train", "--model", "vit-cifar-nano", "--data", SPEC, "--epochs", "2",
            "--batch-size", "16", "--out", str(out)]
    assert main(args + ["--max-steps", "4"], on_start=save_categories) == 0
    assert (out / "categories.png").is_file()
    assert main(args + ["--resume"], on_start=save_categories) == 0
    assert checkpoint.load_run(out / "last.npz")["epoch"] == 2
    capsys.readouterr()
    assert main(["eval", str(out / "last.npz")]) == 0  # its data from the checkpoint's spec
    assert "test accuracy" in capsys.readouterr().out
    assert save_categories(tmp_path, "cifar10") is None  # other sources: no picture
