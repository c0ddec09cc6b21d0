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


# ---------------------------------------------------------------------------------------------
# Fine-tuning from a checkpoint: `init`
# ---------------------------------------------------------------------------------------------

FAMILIES = ["vit-cifar-nano", "cnn-air-small", "hybrid-tiny"]  # ViT, CNN, hybrid


def labelled_data(n=48, k=3, size=32, seed=1):
    """Stand-in downstream data (a stripe per class), with its own statistics."""
    from tinyvit.data import synthetic_images
    x, y = synthetic_images(n, size=size, k=k, seed=seed)
    mean, std = T.channel_stats(x)
    return dict(train=(x, y), test=(x[:24], y[:24]), classes=["a", "b", "c"][:k], mean=mean,
                std=std)


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    """{family: checkpoint} of a few steps of pre-training on SPEC."""
    root = tmp_path_factory.mktemp("pre")
    for name in FAMILIES:
        fit(root / name, model=name, epochs=1, max_steps=2)
    return {name: root / name / "last.npz" for name in FAMILIES}


@pytest.mark.parametrize("name", FAMILIES)
def test_fine_tuning_starts_from_the_encoder_and_resumes_bit_exactly(tmp_path, pretrained,
                                                                     name):
    ckpt = pretrained[name]
    pre = checkpoint.load_run(ckpt)
    ds = labelled_data()
    full = fit(tmp_path / "full", model=name, data=ds, init=ckpt)
    run = checkpoint.load_run(tmp_path / "full/last.npz")
    init = run["meta"]["init"]
    assert init["path"] == str(ckpt.resolve()) and init["model"] == name
    assert init["data"] == SPEC and init["classes"] == 4 and len(init["sha1"]) == 40
    assert run["meta"]["model"]["num_classes"] == 3
    np.testing.assert_allclose(run["meta"]["mean"], ds["mean"])  # the new data's own
    for key, x in flatten(pre["params"]).items():  # the whitening kernel: kept, not re-fitted
        if key.endswith("fixed"):
            np.testing.assert_array_equal(flatten(run["params"])[key], x, err_msg=key)
    assert run["opt"]["step"] == 2 * 3  # a fresh schedule: 48 images / 16, 2 epochs
    fit(tmp_path / "cut", model=name, data=ds, init=ckpt, max_steps=3)
    resumed = fit(tmp_path / "cut", model=name, data=ds, init=ckpt, resume=True)
    same_runs(tmp_path / "full", tmp_path / "cut", full, resumed)


def test_the_first_step_of_fine_tuning_is_the_transferred_model(tmp_path, pretrained):
    """Before any step, the model fine-tuned is the pre-trained encoder with a zero head: every
    logit 0 on any image (lr 1e-12: the first step moves nothing visible)."""
    from tinyvit.run.transfer import load_pretrained
    model, params, _ = load_pretrained(pretrained["vit-cifar-nano"], 3)
    hist = fit(tmp_path / "z", data=labelled_data(), init=pretrained["vit-cifar-nano"],
               epochs=1, max_steps=1, lr=1e-12)
    after = checkpoint.load_run(tmp_path / "z/last.npz")["params"]
    for key, x in flatten(params).items():
        np.testing.assert_allclose(flatten(after)[key], x, atol=1e-6, err_msg=key)
    assert hist[0]["step"] == 1


def test_a_bad_init_is_refused_in_one_line(tmp_path, pretrained):
    ds = labelled_data()
    cases = [
        (dict(init=tmp_path / "none.npz"), r"`init` .*none.npz: expected an .npz file, found "
                                           r"nothing there"),
        (dict(init=pretrained["cnn-air-small"], model="vit-cifar-nano"),
         r"`init` .*: holds a cnn-air-small, not the `model` vit-cifar-nano asked for"),
        (dict(init=pretrained["vit-cifar-nano"], data=labelled_data(size=16)),
         r"`init` .*: vit-cifar-nano takes 32x32x3 images, the `data` are 16x16x3"),
    ]
    for kw, message in cases:
        with pytest.raises(ValueError, match=message) as e:
            fit(tmp_path / "bad", **{"data": ds, **kw})
        assert "\n" not in str(e.value)
        assert not (tmp_path / "bad").exists()


def test_resuming_refuses_another_init(tmp_path, pretrained):
    ds = labelled_data()
    fit(tmp_path / "r", data=ds, init=pretrained["vit-cifar-nano"], max_steps=3)
    fit(tmp_path / "o", data=ds, epochs=1, max_steps=1)  # a run from scratch
    other = _other_file(tmp_path, pretrained)
    with pytest.raises(ValueError, match="was fine-tuned from .*; `init` .*pre2/last.npz is "
                                         "another start"):
        T.train("vit-cifar-nano", ds, recipe_for("vit-cifar-nano", epochs=2, batch_size=16),
                tmp_path / "r", resume=True, init=other, **quiet())
    with pytest.raises(ValueError, match="was trained from scratch"):
        fit(tmp_path / "o", data=ds, epochs=1, resume=True, init=pretrained["vit-cifar-nano"])
    resumed = fit(tmp_path / "r", data=ds, resume=True)  # without init: the run's own start
    assert checkpoint.load_run(tmp_path / "r/last.npz")["meta"]["init"]["model"] == \
        "vit-cifar-nano" and resumed[-1]["epoch"] == 2


def _other_file(tmp_path, pretrained):
    """Another checkpoint of the same model (another pre-training seed)."""
    fit(tmp_path / "pre2", seed=1, epochs=1, max_steps=1)
    return tmp_path / "pre2" / "last.npz"


def test_the_command_line_fine_tunes_with_init_and_names_the_flags(tmp_path, pretrained,
                                                                   capsys):
    folder = tmp_path / "imgs"
    from PIL import Image
    x, y = labelled_data()["train"]
    for split in ("train", "test"):
        for i, (img, label) in enumerate(zip(x, y)):
            path = folder / split / "abc"[label] / f"{i}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(img).save(path)
    out = tmp_path / "ft"
    args = ["train", "--init", str(pretrained["cnn-air-small"]), "--data", str(folder),
            "--epochs", "1", "--batch-size", "16", "--out", str(out)]
    assert main(args) == 0  # the model: --init's
    meta = checkpoint.load_run(out / "last.npz")["meta"]
    assert meta["model"]["name"] == "cnn-air-small" and meta["init"]["model"] == "cnn-air-small"
    capsys.readouterr()
    assert main(args + ["--model", "hybrid-tiny", "--replace"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--init" in err and "--model hybrid-tiny" in err
    assert "cnn-air-small" in err


def test_a_malformed_init_record_is_refused_in_one_line():
    for bad in ("runs/pre/last.npz", {"path": "p"}, {"sha1": 1, "path": "p"}):
        with pytest.raises(ValueError, match=r"^ck.npz: meta init: expected its start's path "
                                             r"and sha1"):
            T.check_same_init("ck.npz", bad, {})
    meta = {}
    T.check_same_init("ck.npz", {"path": "p", "sha1": "a" * 40}, meta)
    assert meta["init"]["path"] == "p"  # the run's own record kept for its next checkpoints
