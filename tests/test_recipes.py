"""The strong baselines' recipes through the training loop: per-preset defaults, SGD's state in
checkpoints, the whitening kernel set from data, BatchNorm's population statistics saved with
the model (evaluation is a pure function of the file), flip and shift TTA, older checkpoints."""
import json

import numpy as np
import pytest

from tinyvit import data, optim
from tinyvit.run import checkpoint, evaluate, models
from tinyvit.run import train as T
from tinyvit.run.recipe import FAMILY_RECIPES, SETTINGS, Recipe, recipe_for
from tinyvit.run.cli import build_parser, main
from tinyvit.tree import flatten

from test_train import easy_dataset, run


def test_presets_get_their_own_recipe_over_their_family():
    air = recipe_for("cnn-air")
    assert (air.optimizer, air.schedule, air.batch_size, air.tta) == ("sgd", "linear", 256, "flip")
    assert recipe_for("cnn-small") == FAMILY_RECIPES["cnn"]  # no preset recipe: the family's
    assert recipe_for("hybrid-small").schedule == "cosine"
    plain = recipe_for("vit-cifar-plain")
    assert (plain.optimizer, plain.crop_pad, plain.crop_mode) == ("adamw", 2, "reflect")
    assert recipe_for("cnn-air", lr=0.05, tta="none").lr == 0.05
    assert recipe_for("cnn-air", epochs=1).warmup == 1.0  # a shorter run: warmup within it


@pytest.mark.parametrize("name, value, words", [
    ("optimizer", "adam", "`optimizer` 'adam': expected one of 'adamw', 'sgd'"),
    ("schedule", "step", "`schedule` 'step': expected one of 'cosine', 'linear'"),
    ("crop_mode", "wrap", "`crop_mode` 'wrap': expected one of 'constant', 'reflect'"),
    ("tta", True, "`tta` True: expected one of 'none', 'flip', 'flip-shift'"),
    ("crop_pad", -1, "`crop_pad` -1: expected an integer >= 0"),
    ("warmup", 1e308, "`warmup` 1e+308: expected at most the run's epochs (18)"),
    ("epochs", 1.5, "`epochs` 1.5: expected an integer >= 1"),
    ("lr", 30.0, "`weight_decay` 0.05 with `lr` 30.0: each step multiplies the weights by "
                 "1 - lr x weight decay = -0.5; expected lr x weight decay < 1"),
])
def test_bad_recipe_options_are_one_line_errors(name, value, words):
    with pytest.raises(ValueError) as e:
        Recipe(**{name: value})
    assert str(e.value) == words


def test_a_crop_pad_larger_than_the_images_is_refused(tmp_path):
    with pytest.raises(ValueError, match=r"`crop_pad` 33: expected at most the run's image "
                                         r"size \(32\)"):
        run(tmp_path, "pad", crop_pad=33)
    assert not (tmp_path / "pad" / "last.npz").exists()


def test_every_setting_is_a_flag_with_its_meaning():
    train = build_parser()._subparsers._group_actions[0].choices["train"]
    for setting in SETTINGS:
        helps = [a.help for a in train._actions if a.dest == setting.name]
        assert any(setting.metadata["meaning"] in h for h in helps), setting.name


@pytest.mark.parametrize("model", ["cnn-air-small", "hybrid-tiny"])
def test_resume_with_sgd_and_batchnorm_is_bit_identical(tmp_path, model):
    kw = dict(model=model, epochs=2, batch_size=16)
    full = run(tmp_path, "full", **kw)
    run(tmp_path, "cut", max_steps=4, **kw)
    resumed = run(tmp_path, "cut", resume=True, **kw)
    strip = lambda h: [{k: v for k, v in r.items() if k != "seconds"} for r in h]
    assert strip(full) == strip(resumed)
    pa, oa, _, _, _ = checkpoint.load_state(tmp_path / "full/last.npz")
    pb, ob, _, _, meta = checkpoint.load_state(tmp_path / "cut/last.npz")
    assert meta["hparams"]["optimizer"] == "sgd" and sorted(oa) == ["m", "step"]
    fa, fb = flatten({"p": pa, "m": oa["m"]}), flatten({"p": pb, "m": ob["m"]})
    assert fa.keys() == fb.keys()
    for k in fa:
        np.testing.assert_array_equal(fa[k], fb[k], err_msg=k)


def test_whitening_and_population_stats_are_set_and_saved(tmp_path):
    ds = easy_dataset()
    run(tmp_path, "w", model="cnn-air-small", epochs=1, batch_size=16, data=ds)
    model, params, meta = checkpoint.load_model(tmp_path / "w/last.npz")
    fixed = params["stem"]["fixed"]  # (2, 2, C, 8C)
    sample = T.stats_images(ds, 0)
    np.testing.assert_allclose(fixed, models.build("cnn-air-small").from_data(
        params, sample)["stem"]["fixed"], rtol=1e-5)  # the kernel of those training images
    assert np.abs(fixed).max() > 0
    norms = [v for k, v in flatten(params).items() if k.endswith("norm/mean")]
    assert norms and all(np.abs(m).max() > 0 for m in norms)  # not the initial zeros
    # The file alone gives the model that was tested: statistics recomputed from the same
    # images are what it holds, and evaluating it again gives the logged accuracy.
    again = flatten(model.population_stats(params, sample))
    for k, v in flatten(params).items():
        np.testing.assert_allclose(again[k], v, rtol=1e-4, atol=1e-6, err_msg=k)
    acc, _ = evaluate.evaluate(model, params, *ds["test"], ds["mean"], ds["std"],
                               tta=meta["hparams"]["tta"])
    logged = json.loads((tmp_path / "w/metrics.jsonl").read_text().splitlines()[-1])
    assert acc == logged["test_acc"]


def test_flip_tta_averages_the_logits_of_both_images():
    ds = easy_dataset(16)
    net = models.build("vit-cifar-nano", num_classes=2)
    rng = np.random.default_rng(0)
    params = net.init(rng)
    params["head"]["w"] = rng.standard_normal(params["head"]["w"].shape).astype(np.float32)
    x = ds["train"][0]
    plain = evaluate.predict_logits(net, params, x, ds["mean"], ds["std"])
    mirror = evaluate.predict_logits(net, params, x[:, :, ::-1], ds["mean"], ds["std"])
    both = evaluate.predict_logits(net, params, x, ds["mean"], ds["std"], tta="flip")
    np.testing.assert_allclose(both, 0.5 * (plain + mirror), rtol=1e-5, atol=1e-6)
    assert not np.allclose(both, plain)
    # flip-shift: the flip TTA of the image and of its one-pixel shifts (uint8 shifts here, so
    # the views are normalised after shifting, as the model sees them: the same numbers)
    padded = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)), mode="reflect")
    flip = lambda v: evaluate.predict_logits(net, params, v, ds["mean"], ds["std"], tta="flip")
    six = evaluate.predict_logits(net, params, x, ds["mean"], ds["std"], tta="flip-shift")
    np.testing.assert_allclose(six, 0.5 * both + 0.25 * (flip(padded[:, :-2, :-2])
                                                         + flip(padded[:, 2:, 2:])),
                               rtol=1e-5, atol=1e-6)
    assert not np.allclose(six, both)
    wanted = "tta: expected one of none, flip, flip-shift, got 'flips'"
    with pytest.raises(ValueError, match=wanted):
        evaluate.predict_logits(net, params, x, ds["mean"], ds["std"], tta="flips")


def test_cli_trains_a_preset_with_its_recipe_and_options_override_it(tmp_path, capsys):
    from test_train import make_image_folder

    make_image_folder(tmp_path / "imgs")
    out = tmp_path / "air"
    assert main(["train", "--model", "cnn-air-small", "--data", str(tmp_path / "imgs"),
                 "--data-dir", str(tmp_path / "cache"), "--epochs", "1", "--batch-size", "8",
                 "--crop-mode", "constant", "--no-tta", "--out", str(out)]) == 0
    hp = checkpoint.load_run(out / "last.npz")["meta"]["hparams"]
    assert hp == recipe_for("cnn-air-small", epochs=1, batch_size=8, crop_mode="constant",
                            tta="none").stored()
    assert main(["eval", str(out / "last.npz"), "--data-dir", str(tmp_path / "cache")]) == 0
    assert main(["train", "--model", "cnn-air-small", "--optimizer", "adam"]) == 2
    assert "--optimizer 'adam': expected one of" in capsys.readouterr().err


def test_older_checkpoints_without_the_new_hyper_parameters_resume(tmp_path):
    run(tmp_path, "old", max_steps=4, epochs=2)
    path = tmp_path / "old/last.npz"
    arrays = dict(np.load(path))
    meta = json.loads(str(arrays["__extra__/meta"]))
    for f in SETTINGS:
        if f.metadata["before"] is not None:
            del meta["hparams"][f.name]  # what a checkpoint written before them holds
    arrays["__extra__/meta"] = np.array(json.dumps(meta))
    np.savez(path, **arrays)
    assert [h["epoch"] for h in run(tmp_path, "old", resume=True, epochs=2)] == [1, 2]


@pytest.mark.parametrize("old, new", [(False, "none"), (True, "flip")])
def test_older_checkpoints_with_a_boolean_tta_read_as_its_name(tmp_path, old, new):
    run(tmp_path, "b", max_steps=4, epochs=2, tta=new)
    path = tmp_path / "b/last.npz"
    arrays = dict(np.load(path))
    meta = json.loads(str(arrays["__extra__/meta"]))
    meta["hparams"]["tta"] = old  # what checkpoints wrote before TTA had levels
    arrays["__extra__/meta"] = np.array(json.dumps(meta))
    np.savez(path, **arrays)
    assert checkpoint.load_model(path)[2]["hparams"]["tta"] == new
    assert [h["epoch"] for h in run(tmp_path, "b", resume=True, epochs=2, tta=new)] == [1, 2]


def test_the_tta_option_names_its_views():
    parse = lambda *a: build_parser().parse_args(["train", *a]).tta
    assert (parse(), parse("--tta"), parse("--no-tta"), parse("--tta", "flip-shift")) == \
           (None, "flip", "none", "flip-shift")


def test_a_checkpoint_with_moments_its_optimiser_does_not_keep_is_refused(tmp_path):
    run(tmp_path, "s", model="cnn-air-small", epochs=1, batch_size=16)
    path = tmp_path / "s/last.npz"
    arrays = dict(np.load(path))
    arrays["opt/v/head/b"] = arrays["opt/m/head/b"]
    np.savez(path, **arrays)
    with pytest.raises(ValueError, match="holds opt/v/..., which its optimiser 'sgd'"):
        checkpoint.load_run(path)


def test_every_optimiser_names_its_slots():
    params = {"w": np.ones((2, 2), np.float32)}
    for name, slots in optim.SLOTS.items():
        assert sorted(optim.init_optimizer(name, params)) == sorted([*slots, "step"])


def test_cli_eval_tests_as_training_did_with_tta(tmp_path, capsys):
    from test_train import make_image_folder

    make_image_folder(tmp_path / "imgs")
    out = tmp_path / "tta"
    assert main(["train", "--model", "cnn-air-small", "--data", str(tmp_path / "imgs"),
                 "--data-dir", str(tmp_path / "cache"), "--epochs", "1", "--batch-size", "8",
                 "--out", str(out)]) == 0
    logged = json.loads((out / "metrics.jsonl").read_text().splitlines()[-1])["test_acc"]
    capsys.readouterr()
    assert main(["eval", str(out / "last.npz"), "--data-dir", str(tmp_path / "cache")]) == 0
    printed = capsys.readouterr()
    line = printed.out.splitlines()[0]
    assert f"test accuracy {logged:.2%}" in line and "flip TTA" in line
    x, y = data.load_data(str(tmp_path / "imgs"), data_dir=tmp_path / "cache")["test"]
    assert f"testing {len(y)}/{len(y)} images tested ETA 0:00" in printed.err  # its progress
    # --tta tests with other views than the recipe's, and says so
    model, params, meta = checkpoint.load_model(out / "last.npz")
    six, _ = evaluate.evaluate(model, params, x, y, np.float32(meta["mean"]),
                               np.float32(meta["std"]), tta="flip-shift")
    assert main(["eval", str(out / "last.npz"), "--data-dir", str(tmp_path / "cache"),
                 "--tta", "flip-shift"]) == 0
    line = capsys.readouterr().out.splitlines()[0]
    assert f"test accuracy {six:.2%}" in line
    assert "shifted images too, as asked; its recipe tests with flip TTA" in line
    assert main(["eval", str(out / "last.npz"), "--tta", "rotate"]) == 2
    assert "--tta 'rotate': expected one of 'none', 'flip', 'flip-shift'" in capsys.readouterr().err


def test_only_cnns_without_batchnorm_train_in_chunks():
    """fast.chunked would change BatchNorm (the chunk becomes its batch); ViTs gain too little."""
    assert T.chunk_rows(models.build("cnn-small")) == T.CHUNK_ROWS > 0
    for name in ("cnn-air", "hybrid-tiny", "vit-cifar-nano"):
        assert T.chunk_rows(models.build(name)) == 0, name


def test_older_checkpoints_with_a_warmup_longer_than_their_run_resume(tmp_path):
    run(tmp_path, "w", max_steps=4, epochs=2)
    path = tmp_path / "w/last.npz"
    arrays = dict(np.load(path))
    meta = json.loads(str(arrays["__extra__/meta"]))
    meta["hparams"]["warmup"] = 5.0  # stored as given: the schedule warmed up over the whole run
    arrays["__extra__/meta"] = np.array(json.dumps(meta))
    np.savez(path, **arrays)
    assert checkpoint.load_run(path)["meta"]["hparams"]["warmup"] == 2.0
    assert [h["epoch"] for h in run(tmp_path, "w", resume=True, epochs=2)] == [1, 2]
    with pytest.raises(ValueError, match=r"`warmup` 5.0: expected at most the run's epochs \(2\)"):
        run(tmp_path, "x", epochs=2, warmup=5.0)


@pytest.mark.parametrize("argv, words", [
    (["--warmup", "1e308"], "--warmup 1e+308: expected at most the run's epochs (18)"),
    (["--crop-pad", "1000000"], "--crop-pad 1000000: expected at most the run's image size (32)"),
    (["--out", ""], "--out '': expected a folder name"),
    (["--epochs", "1", "--warmup", "2"], "--warmup 2.0: expected at most the run's epochs (1)"),
])
def test_options_bounded_by_the_run_are_refused_in_one_line(tmp_path, capsys, monkeypatch,
                                                            argv, words):
    from test_train import make_image_folder

    make_image_folder(tmp_path / "imgs")
    monkeypatch.chdir(tmp_path)
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    assert main(["train", "--data", "imgs", "--data-dir", "cache", *argv]) == 2
    err = capsys.readouterr().err
    assert err == f"error: {words}\n"
    after = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")
                   if not p.relative_to(tmp_path).parts[0] == "cache")
    assert after == [p for p in before if p.parts[0] != "cache"]  # no run folder left


def test_library_errors_name_parameters_and_the_cli_its_flags(tmp_path, capsys):
    from tinyvit.support.errors import as_flags

    (tmp_path / "file").write_text("")
    with pytest.raises(ValueError, match=r"^`out` .*file: is a file, expected a folder"):
        run(tmp_path, "file")
    assert main(["train", "--out", str(tmp_path / "file")]) == 2
    assert capsys.readouterr().err.startswith(f"error: --out {tmp_path / 'file'}: is a file")
    assert as_flags("`data_dir` x; `nonesuch` y", {"data_dir": "--data-dir"}) == \
        "--data-dir x; `nonesuch` y"
