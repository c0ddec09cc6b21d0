"""The small-data regularisers as settings of the Recipe, through the training loop: bounds
refused in one line, the order of the steps on a batch, soft targets for mixed batches, the
weights' moving average (EMA) kept in checkpoints and tested, bit-identical resume with all of
them on, older checkpoints, and today's runs unchanged at the defaults."""
import json

import numpy as np
import pytest

from tinyvit import data, ops, optim
from tinyvit.run import checkpoint, evaluate
from tinyvit.run import train as T
from tinyvit.run.cli import main
from tinyvit.run.recipe import Recipe, recipe_for
from tinyvit.tree import flatten

from test_train import easy_dataset, make_image_folder, run

STRONG = dict(augment="trivialaugment", erasing=0.25, mixup=0.8, cutmix=1.0, ema=0.9)
NEW = ("augment", "randaug_n", "randaug_m", "erasing", "mixup", "cutmix", "mix_switch",
       "mix_prob", "ema")


def strip(history):
    return [{k: v for k, v in r.items() if k != "seconds"} for r in history]


@pytest.mark.parametrize("name, value, words", [
    ("augment", "autoaugment", "`augment` 'autoaugment': expected one of 'none', "
                               "'trivialaugment', 'randaugment'"),
    ("randaug_n", -1, "`randaug_n` -1: expected an integer >= 0"),
    ("randaug_n", 2.0, "`randaug_n` 2.0: expected an integer >= 0"),
    ("randaug_m", 31, "`randaug_m` 31: expected an integer in [0, 30]"),
    ("erasing", 1.01, "`erasing` 1.01: expected a number in [0, 1]"),
    ("erasing", -0.1, "`erasing` -0.1: expected a number in [0, 1]"),
    ("mixup", -0.2, "`mixup` -0.2: expected a finite number >= 0"),
    ("cutmix", float("inf"), "`cutmix` inf: expected a finite number >= 0"),
    ("mix_switch", 1.5, "`mix_switch` 1.5: expected a number in [0, 1]"),
    ("mix_prob", float("nan"), "`mix_prob` nan: expected a number in [0, 1]"),
    ("ema", 1.0, "`ema` 1.0: expected a number in [0, 1)"),
    ("ema", -0.5, "`ema` -0.5: expected a number in [0, 1)"),
])
def test_each_setting_out_of_bounds_is_a_one_line_error(name, value, words):
    with pytest.raises(ValueError) as e:
        Recipe(**{name: value})
    assert str(e.value) == words


def test_the_bounds_themselves_are_allowed_and_the_defaults_are_off():
    Recipe(randaug_n=0, randaug_m=30, erasing=1.0, mix_switch=1, mix_prob=0.0, ema=0.0)
    r = Recipe()
    assert (r.augment, r.erasing, r.mixup, r.cutmix, r.ema) == ("none", 0.0, 0.0, 0.0, 0.0)


def test_the_cli_names_the_flag(capsys):
    for flag, value in (("--ema", "1"), ("--randaug-m", "40"), ("--mix-prob", "2"),
                        ("--augment", "auto")):
        assert main(["train", flag, value]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"error: {flag} ") and err.count("\n") == 1, err


# ------------------------------------------------------------------------ one batch, one step


def test_a_batch_goes_crop_augment_erasing_mix_all_from_the_steps_generator(monkeypatch):
    calls = []

    def spy(name, real):
        def f(rng, x, *a, **k):
            calls.append((name, rng))
            return real(rng, x, *a, **k)
        monkeypatch.setattr(data, name, f)

    for name in ("random_crop_flip", "rand_augment", "random_erasing", "mix_batch"):
        spy(name, getattr(data, name))
    ds, seen = easy_dataset(), []

    def grad_fn(params, x, y, rng):  # what the loss gets: float32 images, soft targets
        seen.append(y)
        class_0 = np.eye(2, dtype=np.float32)[np.zeros(len(x), int)]  # (B, 2)
        return {"w": np.zeros(1, np.float32)}, (0.5, class_0)

    recipe = Recipe(epochs=1, warmup=0.0, batch_size=16, augment="randaugment", erasing=0.5,
                    mixup=0.8, cutmix=1.0)
    state = dict(params={"w": np.zeros(1, np.float32)}, rng=np.random.default_rng(0))
    state["opt"] = optim.init_optimizer("adamw", state["params"])
    _, train_acc, _, _ = T.train_epoch(state, ds, recipe, T.Schedule.of(64, recipe), grad_fn)
    assert [n for n, _ in calls[:4]] == ["random_crop_flip", "rand_augment", "random_erasing",
                                        "mix_batch"] and len(calls) == 16
    assert all(rng is state["rng"] for _, rng in calls)
    assert all(y.shape == (16, 2) and np.allclose(y.sum(1), 1) for y in seen)
    assert train_acc == 0.5  # every logit says class 0: half of the unmixed labels


def test_a_mixed_batch_trains_on_soft_targets():
    net = T.models.build("vit-cifar-nano", num_classes=3)
    params, rng = net.init(np.random.default_rng(0)), np.random.default_rng(1)
    x = rng.standard_normal((4, 32, 32, 3)).astype(np.float32)
    params["head"]["w"] = rng.standard_normal(params["head"]["w"].shape).astype(np.float32)
    grad_fn = T.make_grad_fn(net, 0.1, shards=1)
    t = np.float32([[0.7, 0.3, 0], [0, 1, 0], [0.5, 0, 0.5], [0, 0, 1]])
    _, (loss, logits) = grad_fn(params, x, t, None)
    assert loss == pytest.approx(float(ops.soft_cross_entropy(logits, t, 0.1)), rel=1e-6)
    labels = np.array([0, 1, 0, 2])
    _, (hard, logits) = grad_fn(params, x, labels, None)
    assert hard == pytest.approx(float(ops.cross_entropy(logits, labels, 0.1)), rel=1e-6)
    assert float(ops.cross_entropy(logits, labels, 0.1)) != pytest.approx(
        float(ops.soft_cross_entropy(logits, t, 0.1)))  # the targets make a difference


# ------------------------------------------------------------------------------ whole runs


@pytest.mark.parametrize("model, extra", [("vit-cifar-nano", dict(augment="randaugment")),
                                          ("cnn-air-small", {})])
def test_all_on_trains_and_resumes_bit_identically(tmp_path, model, extra):
    kw = dict(model=model, epochs=2, batch_size=16, **{**STRONG, **extra})
    full = run(tmp_path, "full", **kw)
    assert [h["epoch"] for h in full] == [1, 2] and all(np.isfinite(h["loss"]) for h in full)
    run(tmp_path, "cut", max_steps=4, **kw)  # 64 images / 16: stops after epoch 1
    resumed = run(tmp_path, "cut", resume=True, **kw)
    assert strip(full) == strip(resumed)
    a, b = (checkpoint.load_run(tmp_path / f"{n}/last.npz") for n in ("full", "cut"))
    assert a["ema"] is not None and a["meta"]["hparams"]["ema"] == 0.9
    fa, fb = ({"p": r["params"], "ema": r["ema"], "m": r["opt"]["m"], "v": r["opt"].get("v", {})}
              for r in (a, b))
    fa, fb = flatten(fa), flatten(fb)
    assert fa.keys() == fb.keys()
    for k in fa:
        np.testing.assert_array_equal(fa[k], fb[k], err_msg=k)
    ema, params = flatten(a["ema"]), flatten(a["params"])
    assert any(not np.array_equal(ema[k], params[k]) for k in params)  # an average, not a copy


def test_the_ema_is_what_is_tested_and_what_eval_reads(tmp_path):
    """BatchNorm model: the average's own population statistics are computed and saved, so
    the checkpoint alone gives the accuracy the run logged for it."""
    ds = easy_dataset()
    hist = run(tmp_path, "e", model="cnn-air-small", epochs=2, batch_size=16, ema=0.5, data=ds)
    model, params, meta = checkpoint.load_model(tmp_path / "e/last.npz")
    ema = checkpoint.load_run(tmp_path / "e/last.npz")["ema"]
    for k, v in flatten(ema).items():
        np.testing.assert_array_equal(flatten(params)[k], v, err_msg=k)
    sample = T.stats_images(ds, 0)
    again = flatten(model.population_stats(ema, sample))
    for k, v in flatten(ema).items():
        np.testing.assert_allclose(again[k], v, rtol=1e-4, atol=1e-6, err_msg=k)
    acc, _ = evaluate.evaluate(model, params, *ds["test"], ds["mean"], ds["std"],
                               tta=meta["hparams"]["tta"])
    assert acc == hist[-1]["test_acc"]


def test_the_ema_follows_the_weights_step_by_step(tmp_path):
    ds = easy_dataset()
    recipe = recipe_for("vit-cifar-nano", epochs=1, batch_size=16, ema=0.5)
    state = dict(params=T.models.build("vit-cifar-nano", num_classes=2).init(
        np.random.default_rng(0)), rng=np.random.default_rng(1))
    state["opt"] = optim.init_optimizer("adamw", state["params"])
    start = flatten(state["params"])["head/b"].copy()
    grad_fn = T.make_grad_fn(T.models.build("vit-cifar-nano", num_classes=2), 0.1)
    T.train_epoch(state, ds, recipe, T.Schedule.of(64, recipe), grad_fn, max_steps=1)
    decay = optim.ema_decay(0, 0.5)  # 1/10: warmed up
    np.testing.assert_allclose(state["ema"]["head"]["b"],
                               decay * start + (1 - decay) * state["params"]["head"]["b"],
                               rtol=1e-6)


def test_the_cli_trains_the_strong_recipe_and_says_the_ema_is_tested(tmp_path, capsys):
    make_image_folder(tmp_path / "imgs")
    out = tmp_path / "plain"
    assert main(["train", "--model", "vit-cifar-plain", "--data", str(tmp_path / "imgs"),
                 "--data-dir", str(tmp_path / "cache"), "--epochs", "1", "--batch-size", "8",
                 "--augment", "trivialaugment", "--erasing", "0.25", "--mixup", "0.8",
                 "--cutmix", "1.0", "--ema", "0.999", "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert "test (EMA weights)" in captured.out + captured.err
    hp = checkpoint.load_run(out / "last.npz")["meta"]["hparams"]
    assert hp == recipe_for("vit-cifar-plain", epochs=1, batch_size=8, augment="trivialaugment",
                            erasing=0.25, mixup=0.8, cutmix=1.0, ema=0.999).stored()
    assert main(["eval", str(out / "last.npz"), "--data-dir", str(tmp_path / "cache")]) == 0
    said = capsys.readouterr().out
    assert "vit-cifar-plain (EMA weights): test accuracy" in said
    # shared as a model file (how tinyvit/pretrained/ is made): the average only, read back as
    # the model that was tested, with the same accuracy; a training checkpoint without its
    # average is still refused
    model, params, meta = checkpoint.load_model(out / "last.npz")
    checkpoint.save_model(tmp_path / "shared.npz", params, meta)
    _, again, _ = checkpoint.load_model(tmp_path / "shared.npz")
    for k, v in flatten(params).items():
        np.testing.assert_array_equal(flatten(again)[k], v, err_msg=k)
    assert main(["eval", str(tmp_path / "shared.npz"), "--data-dir", str(tmp_path / "cache")]) == 0
    accuracy = next(line for line in said.splitlines() if "test accuracy" in line)
    assert accuracy in capsys.readouterr().out.splitlines()
    run = dict(np.load(out / "last.npz"))
    np.savez(tmp_path / "cut.npz", **{k: v for k, v in run.items() if not k.startswith("ema/")})
    with pytest.raises(ValueError, match="lacks ema"):
        checkpoint.load_model(tmp_path / "cut.npz")


def test_on_a_device_backend_the_strong_recipe_equals_numpy(tmp_path):
    import fake_cupy
    from tinyvit import device

    try:
        host = run(tmp_path, "host", epochs=1, **STRONG)
        dev = run(tmp_path, "dev", epochs=1, backend=fake_cupy, **STRONG)
    finally:
        device.use_backend("numpy")
    assert strip(host) == strip(dev)
    a, b = (checkpoint.load_run(tmp_path / f"{n}/last.npz") for n in ("host", "dev"))
    fa, fb = flatten({"p": a["params"], "e": a["ema"]}), flatten({"p": b["params"], "e": b["ema"]})
    for k in fa:
        np.testing.assert_array_equal(fa[k], fb[k], err_msg=k)


# ---------------------------------------------------------------------- older checkpoints


def rewrite(path, change_meta=None, drop=None, add=None):
    """The checkpoint at `path` with its metadata changed, arrays dropped (by prefix) or added."""
    arrays = dict(np.load(path))
    meta = json.loads(str(arrays["__extra__/meta"]))
    if change_meta:
        change_meta(meta)
    arrays["__extra__/meta"] = np.array(json.dumps(meta))
    arrays = {k: v for k, v in arrays.items() if not (drop and k.startswith(drop))}
    arrays.update(add or {})
    np.savez(path, **arrays)


def test_older_checkpoints_without_the_new_settings_load_and_resume(tmp_path):
    run(tmp_path, "old", max_steps=4, epochs=2)
    path = tmp_path / "old/last.npz"

    def older(meta):
        for name in NEW:
            del meta["hparams"][name]

    rewrite(path, older)
    r = checkpoint.load_run(path)
    assert r["ema"] is None and {k: r["meta"]["hparams"][k] for k in NEW} == \
        {k: v for k, v in Recipe().stored().items() if k in NEW}
    assert checkpoint.load_model(path)[1].keys() == r["params"].keys()
    assert [h["epoch"] for h in run(tmp_path, "old", resume=True, epochs=2)] == [1, 2]


def test_an_ema_that_the_recipe_does_not_explain_is_refused(tmp_path):
    run(tmp_path, "a", max_steps=4, epochs=2, ema=0.9)
    path = tmp_path / "a/last.npz"
    rewrite(path, drop="ema/")
    with pytest.raises(ValueError, match=r"last.npz: lacks ema/\.\.\. .* ema 0.9 keeps"):
        checkpoint.load_run(path)
    with pytest.raises(ValueError, match="lacks ema"):
        checkpoint.load_model(path)
    run(tmp_path, "b", max_steps=4, epochs=2)
    path = tmp_path / "b/last.npz"
    rewrite(path, add={"ema/head/b": np.zeros(2, np.float32)})
    with pytest.raises(ValueError, match=r"holds ema/\.\.\. .* ema 0.0 does not keep"):
        checkpoint.load_run(path)


# -------------------------------------------------------------------- defaults: unchanged

# `run(tmp, "d", epochs=2)` (vit-cifar-nano, 64 easy images, batches of 16) at the commit
# before these settings existed (1b6d9b9): the generator's state after the run (exact on any
# machine: the same draws), the losses and the sum of |params| (float32 rounding may differ
# between BLAS builds; on the machine that recorded them they are bit for bit the same).
BEFORE = dict(rng=240084878985104879375596771350633289885,
              losses=[0.6871122643351555, 0.6039277166128159], abs_sum=13884.260764216271)


def test_the_defaults_train_as_before(tmp_path, monkeypatch):
    def never(*a, **k):
        raise AssertionError("called with every regulariser off")

    for name in ("rand_augment", "trivial_augment", "random_erasing", "mix_batch"):
        monkeypatch.setattr(data, name, never)
    monkeypatch.setattr(optim, "ema_update", never)
    monkeypatch.setattr(ops, "soft_cross_entropy", never)
    hist = run(tmp_path, "d", epochs=2)
    r = checkpoint.load_run(tmp_path / "d/last.npz")
    assert r["rng"].bit_generator.state["state"]["state"] == BEFORE["rng"]
    np.testing.assert_allclose([h["loss"] for h in hist], BEFORE["losses"], rtol=1e-5)
    total = sum(float(np.abs(v.astype(np.float64)).sum()) for v in flatten(r["params"]).values())
    assert total == pytest.approx(BEFORE["abs_sum"], rel=1e-5)
    assert r["ema"] is None and not [k for k in np.load(tmp_path / "d/last.npz") if "ema" in k]
