"""The data-hunger sweep: budget rule, resuming, summary statistics."""
import json

import numpy as np
import pytest

from tinyvit.figures import hunger
from tinyvit.run import sweep
from tinyvit.data import synthetic_images


def test_length_rule():
    assert [sweep.epochs_for(n) for n in sweep.DEFAULT_SIZES] == [100, 40, 20, 10, 10, 10]
    # the first sweeps' rule: a fixed 200k images seen, at least 4 epochs
    assert [sweep.epochs_for(n, 200_000, 4) for n in sweep.DEFAULT_SIZES] == [200, 80, 40, 20,
                                                                              8, 4]


def test_each_model_keeps_its_recipe_with_its_warmup_stretched_to_the_run():
    from tinyvit.run.recipe import recipe_for

    hp = sweep.run_recipe("cnn-air-small", 1000, 150)
    r = recipe_for("cnn-air-small")
    assert hp == r.replace(epochs=150, warmup=r.warmup * 150 / r.epochs)
    assert sweep.run_recipe("vit-cifar-nano", 100, 4).batch_size == 100  # at most n
    assert sweep.run_recipe("vit-cifar-nano", 1000, 4, batch_size=32).batch_size == 32


def test_sweep_records_every_run_and_resumes(tmp_path):
    x, y = synthetic_images(60, k=3)
    ds = dict(train=(x, y), test=(x[:30], y[:30]), classes=["a", "b", "c"])
    path = tmp_path / "results.json"
    calls = []
    kw = dict(models=("vit-cifar-nano", "cnn-tiny"), sizes=(30, 60), seeds=(0,),
              batch_size=16, max_steps=1, workdir=tmp_path / "work", log=calls.append)
    sweep.run_sweep(ds, path, **kw)
    res = json.loads(path.read_text())
    assert set(res["runs"]) == {"vit-cifar-nano/30/0", "cnn-tiny/30/0",
                                "vit-cifar-nano/60/0", "cnn-tiny/60/0"}
    assert all(0 <= r["test_acc"] <= 1 and r["steps"] == 1 for r in res["runs"].values())
    # A second call finds nothing to do; a wider one does only the new runs.
    calls.clear()
    sweep.run_sweep(ds, path, **kw)
    assert "0 of 4 runs to do" in calls[0]
    sweep.run_sweep(ds, path, **{**kw, "seeds": (0, 1)})
    res = json.loads(path.read_text())
    assert len(res["runs"]) == 8
    assert res["train_seconds"] == round(sum(r["seconds"] for r in res["runs"].values()), 1)
    # A run that another sweep records into the same file meanwhile is kept, not overwritten.
    other = dict(model="cnn-tiny", size=60, seed=7, epochs=1, steps=1, test_acc=0.5, seconds=1.0)

    def other_sweep_finishes_a_run(line):
        if line.startswith("[1/"):
            sweep.record(path, res["setup"], other)

    sweep.run_sweep(ds, path, **{**kw, "seeds": (2,), "log": other_sweep_finishes_a_run})
    runs = json.loads(path.read_text())["runs"]
    assert runs["cnn-tiny/60/7"] == other and len(runs) == 13
    # Other settings into the same file are refused with a one-line error.
    with pytest.raises(ValueError, match="other settings"):
        sweep.run_sweep(ds, path, **{**kw, "min_images": 5})


def test_summary_mean_and_std_over_seeds():
    runs = {f"m/{n}/{s}": dict(model="m", size=n, seed=s, test_acc=a)
            for (n, s, a) in [(10, 0, 0.5), (10, 1, 0.7), (20, 0, 0.9)]}
    (sizes, mean, std, count), = sweep.summarize({"runs": runs}).values()
    np.testing.assert_array_equal(sizes, [10, 20])
    np.testing.assert_allclose(mean, [0.6, 0.9])
    np.testing.assert_allclose(std, [np.std([0.5, 0.7], ddof=1), 0.0])
    assert list(count) == [2, 1]
    assert hunger.chart({"runs": runs}).size[0] > 100
    assert "60.0%" in sweep.table_lines({"runs": runs})[1]


def test_gap_is_paired_by_seed():
    """acc(a) - acc(b) per seed; a seed that ran only one model is left out."""
    rows = [("a", 10, 0, 0.50), ("b", 10, 0, 0.40), ("a", 10, 1, 0.80), ("b", 10, 1, 0.60),
            ("a", 10, 2, 0.99), ("b", 20, 0, 0.70), ("a", 20, 0, 0.75)]
    runs = {f"{m}/{n}/{s}": dict(model=m, size=n, seed=s, test_acc=v) for m, n, s, v in rows}
    gaps = sweep.paired_gaps({"runs": runs}, "a", "b")
    assert list(gaps) == [10, 20]
    mean, std, n = gaps[10]
    assert n == 2 and abs(mean - 0.15) < 1e-12 and abs(std - np.std([0.1, 0.2], ddof=1)) < 1e-12
    assert gaps[20][2] == 1 and abs(gaps[20][0] - 0.05) < 1e-12
    lines = sweep.table_lines({"runs": runs})
    assert "gap" in lines[0] and "+15.0 ±  7.1 pt (n=2)" in lines[1]


def test_table_gives_the_first_models_lead_over_each_other_model():
    """With three models in a given order: one gap column per other model, each paired by seed."""
    rows = [("cnn", 10, 0, 0.60), ("vit", 10, 0, 0.40), ("hyb", 10, 0, 0.50),
            ("cnn", 20, 0, 0.70), ("vit", 20, 0, 0.65)]  # no hybrid at 20
    runs = {f"{m}/{n}/{s}": dict(model=m, size=n, seed=s, test_acc=v) for m, n, s, v in rows}
    head, row10, row20 = sweep.table_lines({"runs": runs}, models=["cnn", "vit", "hyb"])
    assert head.index("vit") < head.index("hyb") < head.index("gap - vit") < head.index("gap - hyb")
    assert row10.split()[-10:] == ["+20.0", "±", "0.0", "pt", "(n=1)",
                                   "+10.0", "±", "0.0", "pt", "(n=1)"]
    assert "+5.0" in row20 and row20.rstrip().endswith("-")  # the missing hybrid's cells


def test_gap_chart_plots_the_paired_leads_in_points():
    rows = [("cnn", 10, 0, 0.60), ("vit", 10, 0, 0.40), ("hyb", 10, 0, 0.50),
            ("cnn", 10, 1, 0.70), ("vit", 10, 1, 0.45), ("hyb", 10, 1, 0.66),
            ("cnn", 20, 0, 0.70), ("vit", 20, 0, 0.75)]  # no hybrid at 20; the ViT leads there
    runs = {f"{m}/{n}/{s}": dict(model=m, size=n, seed=s, test_acc=v) for m, n, s, v in rows}
    series = sweep.gap_series({"runs": runs}, models=["cnn", "vit", "hyb"])
    assert list(series) == ["over vit (1-2 seeds)", "over hyb (2 seeds)"]
    n, mu, sd = series["over vit (1-2 seeds)"]
    np.testing.assert_allclose(n, [10, 20])
    np.testing.assert_allclose(mu, [22.5, -5.0])  # (20 + 25) / 2 points, then -5
    np.testing.assert_allclose(sd, [np.std([20, 25], ddof=1), 0.0])
    np.testing.assert_allclose(series["over hyb (2 seeds)"][1], [7.0])
    assert hunger.gap_chart({"runs": runs}, models=["cnn", "vit", "hyb"]).size[0] > 100
    with pytest.raises(ValueError, match="two models"):
        sweep.gap_series({"runs": {k: v for k, v in runs.items() if k.startswith("cnn")}})


@pytest.mark.parametrize("shared", [False, True])
def test_sweeps_with_other_rules_keep_their_runs_apart(tmp_path, shared):
    """Two results files with two length rules: in their own run folders (workdir_for) the
    second sweep trains its own run; in one shared folder it finds the first's checkpoint."""
    x, y = synthetic_images(30, k=3)
    ds = dict(train=(x, y), test=(x[:10], y[:10]), classes=["a", "b", "c"])
    for epochs in (1, 2):
        path = tmp_path / f"rule{epochs}.json"
        work = tmp_path / "runs" if shared else sweep.workdir_for(path)
        run = lambda: sweep.run_sweep(ds, path, models=("cnn-tiny",), sizes=(30,), seeds=(0,),
                                      min_images=30, min_epochs=epochs, batch_size=16,
                                      workdir=work, log=lambda *a: None)
        if shared and epochs == 2:
            with pytest.raises(ValueError, match="other settings"):
                run()
        else:
            assert run()["runs"]["cnn-tiny/30/0"]["epochs"] == epochs
    assert sweep.workdir_for(tmp_path / "a.json") == tmp_path / "a_runs"


def test_two_sweeps_sharing_a_workdir_split_the_runs(tmp_path):
    """A run claimed by a live process is left to it; a dead process's claim is taken over."""
    import os

    x, y = synthetic_images(60, k=3)
    ds = dict(train=(x, y), test=(x[:30], y[:30]), classes=["a", "b", "c"])
    work = tmp_path / "work"
    (work / "cnn-tiny/30").mkdir(parents=True)
    (work / "cnn-tiny/30/0.claim").write_text(str(os.getpid()))  # "another sweep", alive
    (work / "cnn-tiny/60").mkdir(parents=True)
    (work / "cnn-tiny/60/0.claim").write_text("999999999")  # a sweep that died
    res = sweep.run_sweep(ds, tmp_path / "r.json", models=("cnn-tiny",), sizes=(30, 60),
                          seeds=(0,), batch_size=16, max_steps=1, workdir=work,
                          log=lambda *a: None)
    assert set(res["runs"]) == {"cnn-tiny/60/0"}
    assert (work / "cnn-tiny/30/0.claim").exists() and not (work / "cnn-tiny/60/0.claim").exists()
