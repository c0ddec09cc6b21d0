"""The ladder sweep: validation splits, rungs, the choice made without the test set, resuming,
the cost estimate and the charts."""
import json

import numpy as np
import pytest

from tinyvit import data
from tinyvit.figures import hunger
from tinyvit.run import ladder, sweep

KW = dict(models=("cnn-tiny", "vit-cifar-nano"), sizes=(30, 60), seeds=(0,),
          ladder=(30, 60, 120), batch_size=16)


def tiny_data(seed=0):
    x, y = data.synthetic_images(90, k=3, seed=seed)
    xt, yt = data.synthetic_images(30, k=3, seed=seed + 1)
    return dict(train=(x, y), test=(xt, yt), classes=["a", "b", "c"])


def test_validation_split_is_disjoint_stratified_and_deterministic():
    y = np.repeat(np.arange(4), [30, 20, 10, 40])  # classes of unequal size
    fit, val = data.split_indices(y, 0.2, seed=3)
    assert len(np.intersect1d(fit, val)) == 0
    np.testing.assert_array_equal(np.sort(np.concatenate([fit, val])), np.arange(len(y)))
    assert len(val) == 20 and list(np.bincount(y[val])) == [6, 4, 2, 8]  # 20% of each class
    again = data.split_indices(y, 0.2, seed=3)
    np.testing.assert_array_equal(val, again[1])
    assert not np.array_equal(val, data.split_indices(y, 0.2, seed=4)[1])
    # Rounding: 10% of 3 x 7 images is 2.1 -> 2 images, from the first classes on a tie.
    y3 = np.repeat(np.arange(3), 7)
    assert list(np.bincount(y3[data.split_indices(y3, 0.1, 0)[1]], minlength=3)) == [1, 1, 0]
    x = np.arange(len(y))[:, None] * np.ones((1, 2))
    (xf, yf), (xv, yv) = data.validation_split(x, y, 0.2, 3)
    np.testing.assert_array_equal(xv[:, 0], val)
    np.testing.assert_array_equal(yf, y[fit])
    for bad in (0, 1, 1.5):
        with pytest.raises(data.DataError, match="fraction"):
            data.split_indices(y, bad, 0)
    with pytest.raises(data.DataError, match="keep a training image"):
        data.split_indices(np.array([0, 1, 1, 1]), 0.5, 0)  # class 0 would lose its one image


def test_rungs_epochs_and_the_choice():
    # 1,000 fit images, batch 128: 7 steps of 128 per epoch; 25k -> 25 epochs, ...
    rungs = ladder.rungs_for(1000, (25_000, 50_000, 100_000), 128)
    assert [(r.epochs, r.seen) for r in rungs] == [(25, 22400), (50, 44800), (100, 89600)]
    # On 40,000 images the 25k and 50k budgets are both one epoch: one rung.
    assert [r.images for r in ladder.rungs_for(40_000, (25_000, 50_000, 100_000), 128)] == [
        25_000, 100_000]
    climbed = [dict(val_acc=a, seen=s) for a, s in [(0.5, 1), (0.6, 2), (0.6, 4)]]
    assert ladder.chosen(climbed)["seen"] == 2  # equal accuracy: the shorter
    assert ladder.done_climbing(climbed, patience=1)
    assert not ladder.done_climbing(climbed, patience=2)
    assert not ladder.done_climbing(climbed[:2], patience=1)
    # By default one rung that only ties the best (a small validation split's noise) does not
    # end the climb.
    assert not ladder.done_climbing(climbed[1:], ladder.PATIENCE)


def test_the_choice_never_sees_the_test_set(tmp_path, monkeypatch):
    """Every climbing run is evaluated on images of the training set, never the test set; and
    garbage test labels (and other test images) change no validation accuracy and no choice."""
    calls = []
    real_train = ladder.train

    def spy(model, ds, *args, **kwargs):
        calls.append(ds)
        return real_train(model, ds, *args, **kwargs)

    monkeypatch.setattr(ladder, "train", spy)
    ds = tiny_data()
    clean = ladder.run_ladder_sweep(ds, tmp_path / "a.json", workdir=tmp_path / "a", **KW)
    train_rows = {x.tobytes() for x in ds["train"][0]}
    climbs = [c for c in calls if c["test"] is not ds["test"]]
    refits = [c for c in calls if c["test"] is ds["test"]]
    assert len(refits) == len(clean["runs"]) == 4 and len(climbs) == len(clean["rungs"])
    assert all(x.tobytes() in train_rows for c in climbs for x in c["test"][0])
    assert all(len(c["train"][0]) + len(c["test"][0]) in KW["sizes"] for c in climbs)

    garbage = dict(ds, test=(data.synthetic_images(17, k=3, seed=9)[0],
                             np.random.default_rng(5).integers(0, 3, 17)))
    dirty = ladder.run_ladder_sweep(garbage, tmp_path / "b.json", workdir=tmp_path / "b", **KW)
    assert dirty["rungs"].keys() == clean["rungs"].keys()
    for key, rung in clean["rungs"].items():
        assert dirty["rungs"][key]["val_acc"] == rung["val_acc"], key
    for key, run in clean["runs"].items():
        assert dirty["runs"][key]["chosen_images"] == run["chosen_images"], key


def test_resume_skips_finished_runs_and_rungs(tmp_path, monkeypatch):
    path, work = tmp_path / "ladder.json", tmp_path / "work"
    ds, lines = tiny_data(), []
    kw = dict(KW, models=("cnn-tiny",), workdir=work)
    first = ladder.run_ladder_sweep(ds, path, **kw)
    assert set(first["runs"]) == {"cnn-tiny/30/0", "cnn-tiny/60/0"}
    run = first["runs"]["cnn-tiny/60/0"]
    assert run["seconds"] == pytest.approx(run["climb_seconds"] + run["refit_seconds"], abs=0.2)
    assert 0 <= run["test_acc"] <= 1 and run["rungs_climbed"] >= 2

    trained = []
    real_train = ladder.train
    monkeypatch.setattr(ladder, "train", lambda *a, **k: trained.append(a) or real_train(*a, **k))
    ladder.run_ladder_sweep(ds, path, log=lines.append, **kw)
    assert "0 of 2 runs to do" in lines[0] and not trained
    # A run whose climb was recorded but not its refit: only the refit trains again.
    res = json.loads(path.read_text())
    del res["runs"]["cnn-tiny/60/0"]
    sweep.save_results(path, res)
    again = ladder.run_ladder_sweep(ds, path, **kw)
    assert len(trained) == 1 and len(trained[0][1]["train"][0]) == 60  # the whole subset
    assert again["runs"]["cnn-tiny/60/0"]["chosen_images"] == run["chosen_images"]
    # A ladder claimed by a live process is left to it; a new seed runs.
    trained.clear()
    (work / "cnn-tiny" / "30").mkdir(parents=True, exist_ok=True)
    (work / "cnn-tiny" / "30" / "1.claim").write_text(str(__import__("os").getpid()))
    out = ladder.run_ladder_sweep(ds, path, **{**kw, "seeds": (0, 1)})
    assert "cnn-tiny/30/1" not in out["runs"] and "cnn-tiny/60/1" in out["runs"]
    # Other settings into the same file are refused with a one-line error.
    with pytest.raises(ValueError, match="other settings"):
        ladder.run_ladder_sweep(ds, path, **{**kw, "val_fraction": 0.3})


def test_cost_counts_every_run_of_a_ladder():
    # 1,000 images, 20% validation: 800 fit images, batch 256 (cnn-air-small): 3 steps of 256
    # per epoch; rungs 25k, 50k, 100k -> 31, 62, 125 epochs; the refit on 1,000 images: 3
    # steps of 256 per epoch, the rung's images seen / 1,000 epochs.
    rungs = (25_000, 50_000, 100_000)
    first, second, top = 31 * 768, 62 * 768, 125 * 768

    def seen(budget, patience=1):
        return ladder.images_if_chosen("cnn-air-small", 1000, rungs, 0.2, patience, budget)

    assert seen(25_000) == seen(0) == first + second + round(first / 1000) * 768
    assert seen(50_000) == seen(99_999) == first + second + top + round(second / 1000) * 768
    assert seen(100_000) == first + second + top + round(top / 1000) * 768  # no rung above
    assert seen(25_000, patience=2) == first + second + top + round(first / 1000) * 768
    lines = ladder.cost_lines({"cnn-air-small": 1000.0}, sizes=(1000,), seeds=3, ladder=rungs,
                              patience=1, climb_seeds=3)
    hours = [f"{seen(b) * 3 / 1000 / 3600:.1f}" for b in rungs]
    assert f"{hours[0]} to " in lines[0] and f" {hours[2]} CPU-hours for 3 seeds" in lines[0]
    assert f"if every climb chose 25k: {hours[0]}, 50k: {hours[1]}, 100k: {hours[2]}" in lines[1]
    # One climbing seed (the default): the other two seeds pay only their refits.
    refit = round(top / 1000) * 768
    assert ladder.images_if_chosen("cnn-air-small", 1000, rungs, 0.2, 1, 100_000,
                                   climbs=False) == refit
    one = ladder.cost_lines({"cnn-air-small": 1000.0}, sizes=(1000,), seeds=3, ladder=rungs)
    assert f" {(seen(100_000) + 2 * refit) / 1000 / 3600:.1f} CPU-hours for 3 seeds, 1 " \
           f"climbing" in one[0]


def test_seeds_that_do_not_climb_refit_at_the_climbing_seeds_choice(tmp_path, monkeypatch):
    calls = []
    real_train = ladder.train
    monkeypatch.setattr(ladder, "train", lambda *a, **k: calls.append(a) or real_train(*a, **k))
    kw = dict(KW, models=("cnn-tiny",), sizes=(60,), seeds=(1, 0))  # seed 1 asked for first
    res = ladder.run_ladder_sweep(tiny_data(), tmp_path / "l.json", workdir=tmp_path / "w", **kw)
    assert res["setup"]["climb_seeds"] == [0] and set(res["runs"]) == {"cnn-tiny/60/0",
                                                                        "cnn-tiny/60/1"}
    assert {r["seed"] for r in res["rungs"].values()} == {0}  # only seed 0 climbed
    zero, one = res["runs"]["cnn-tiny/60/0"], res["runs"]["cnn-tiny/60/1"]
    assert one["climb_seed"] == 0 and one["rungs_climbed"] == 0 and one["climb_seconds"] == 0
    assert (one["chosen_images"], one["epochs"]) == (zero["chosen_images"], zero["epochs"])
    assert len(calls) == len(res["rungs"]) + 2  # every rung of seed 0, then two refits
    refit_1 = calls[-1][1]["train"]  # seed 1 refits on its own subset, not seed 0's
    assert not np.array_equal(refit_1[0], calls[-2][1]["train"][0])
    own = ladder.run_ladder_sweep(tiny_data(), tmp_path / "o.json", workdir=tmp_path / "o",
                                  **dict(kw, climb_seeds=(0, 1)))
    assert {r["seed"] for r in own["rungs"].values()} == {0, 1}
    assert own["runs"]["cnn-tiny/60/1"]["climb_seed"] == 1
    with pytest.raises(ValueError, match="climbing seed"):
        ladder.run_ladder_sweep(tiny_data(), tmp_path / "x.json", **dict(kw, climb_seeds=()))


def test_ladder_charts_and_rule_text(tmp_path, monkeypatch):
    ds = tiny_data()
    res = ladder.run_ladder_sweep(ds, tmp_path / "l.json", workdir=tmp_path / "w",
                                  **dict(KW, sizes=(30,)))
    assert "20% validation split, 30 to 120 images seen" in sweep.rule_text(res["setup"])
    budgets = ladder.chosen_budgets(res)
    assert set(budgets) == {("cnn-tiny", 30), ("vit-cifar-nano", 30)}
    assert all(b.rstrip("+") in {"30", "60", "120"} for b in budgets.values())
    fixed = {"runs": {f"{m}/30/0": dict(model=m, size=30, seed=0, test_acc=0.4)
                      for m in KW["models"]}, "setup": dict(min_images=100, min_epochs=1)}
    assert hunger.ladder_chart(res, fixed).size == (800, 560)
    assert hunger.climb_chart(res, "cnn-tiny").size[0] > 100
    seen = {}  # every budget climbed gets a tick named like the budget chart labels
    monkeypatch.setattr(hunger.charts, "line_chart", lambda *a, **k: seen.update(k))
    hunger.climb_chart(res, "cnn-tiny")
    climbed = {r["images"] for r in res["rungs"].values() if r["model"] == "cnn-tiny"}
    assert seen["xtick_names"] == {b: str(b) for b in climbed}
    assert "  30" in "\n".join(sweep.table_lines(res))
    with pytest.raises(ValueError, match="no rungs of vit-cifar-plain"):
        ladder.climb_series(res, "vit-cifar-plain")
