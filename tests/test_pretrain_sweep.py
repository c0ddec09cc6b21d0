"""The pre-training experiment (tinyvit/run/pretrain_sweep.py): every start fine-tuned from
its own pre-training, recorded at once, skipped when recorded; its tables and charts read the
file as a data-hunger sweep with pre-training images as the size."""
import numpy as np
import pytest
from PIL import Image

from tinyvit.data import synthetic_images
from tinyvit.figures import pretraining
from tinyvit.run import checkpoint
from tinyvit.run import pretrain_sweep as ps
from tinyvit.run import sweep
from tinyvit.support.progress import format_seconds

MODELS = ("cnn-air-small", "vit-cifar-nano")
PLAN = (("fractal:4x16", 1),)


def tiny_cifar():
    x, y = synthetic_images(60, k=3)
    return dict(train=(x, y), test=(x[:30], y[:30]), classes=["a", "b", "c"])


def run(tmp_path, **kw):
    args = dict(models=MODELS, plan=PLAN, labels=(30,), seeds=(0,), max_steps=2,
                workdir=tmp_path / "runs", log=lambda *a: None)
    return ps.run_pretrain_sweep(tiny_cifar(), tmp_path / "p.json", **{**args, **kw})


def test_a_tiny_sweep_pre_trains_then_fine_tunes_each_start_and_skips_what_is_recorded(
        tmp_path, monkeypatch):
    results = run(tmp_path)
    runs = results["runs"]
    assert sorted(runs) == sorted([f"pre/{m}/64/0" for m in MODELS]
                                  + [f"{m}/{i}/30/0" for m in MODELS for i in (0, 64)])
    for m in MODELS:
        tuned = checkpoint.load_run(tmp_path / f"runs/{m}/64/30/0/last.npz")["meta"]
        assert tuned["init"]["path"] == str((tmp_path / f"runs/pre/{m}/64/0/last.npz").resolve())
        assert tuned["init"]["data"] == "fractal:4x16" and tuned["model"]["num_classes"] == 3
        assert "init" not in checkpoint.load_run(tmp_path / f"runs/{m}/0/30/0/last.npz")["meta"]
        assert runs[f"pre/{m}/64/0"]["images"] == 64 and runs[f"{m}/64/30/0"]["epochs"] == 200

    def no_training(*a, **k):
        raise AssertionError("a recorded run was trained again")

    monkeypatch.setattr(ps, "train", no_training)
    assert run(tmp_path)["runs"] == runs  # everything recorded: nothing trains
    with pytest.raises(ValueError, match="other settings"):
        run(tmp_path, labels=(40,))


def fake_results():
    """Two models, scratch and one pre-training, two seeds, 100 labels."""
    acc = {("cnn", 0): (0.60, 0.62), ("cnn", 1000): (0.63, 0.65),
           ("vit", 0): (0.40, 0.40), ("vit", 1000): (0.55, 0.57)}
    runs = {ps.tune_key(m, i, 100, s): dict(model=m, images=i, labels=100, seed=s,
                                            test_acc=a[s])
            for (m, i), a in acc.items() for s in (0, 1)}
    runs["pre/cnn/1000/0"] = dict(model="cnn", spec="fractal:10x20", epochs=5, images=1000,
                                  seed=0, held_out_acc=0.5, seconds=3.0)
    return dict(runs=runs)


def test_the_results_read_as_a_sweep_over_pre_training_images():
    results = fake_results()
    view = ps.as_sweep(results, 100)
    sizes, mean, sd, counts = sweep.summarize(view)["vit"]
    assert sizes.tolist() == [0, 1000] and np.allclose(mean, [0.40, 0.56])
    ratios = ps.lead_ratios(results, "cnn", "vit")  # leads 21 then 8 points
    assert ratios.keys() == {100} and ratios[100][1000] == pytest.approx(0.08 / 0.21)
    assert ps.scratch_x(results) == 100 and ps.labels_run(results) == [100]
    assert any("fractal:10x20" in line for line in ps.pretrain_lines(results))
    assert len(ps.table_lines(results, ["cnn", "vit"])) == 4


def test_the_charts_draw_accuracy_and_the_lead():
    results = fake_results()
    for img in (pretraining.accuracy_chart(results, 100),
                pretraining.lead_chart(results, ["cnn", "vit"])):
        assert isinstance(img, Image.Image) and img.size == (640, 420)
        assert len(np.unique(np.asarray(img).reshape(-1, 3), axis=0)) > 10


def test_other_seeds_fine_tune_from_the_first_pre_training_seed_unless_each_pre_trains(
        tmp_path):
    shared = run(tmp_path / "shared", models=MODELS[:1], seeds=(0, 1))
    m = MODELS[0]
    assert [k for k in shared["runs"] if k.startswith("pre/")] == [f"pre/{m}/64/0"]
    tuned = checkpoint.load_run(tmp_path / f"shared/runs/{m}/64/30/1/last.npz")["meta"]
    assert tuned["init"]["path"] == str((tmp_path / f"shared/runs/pre/{m}/64/0/last.npz")
                                        .resolve())
    assert shared["runs"][f"{m}/64/30/1"]["pre_seed"] == 0
    assert "pre_seed" not in shared["runs"][f"{m}/0/30/1"]  # scratch starts from nothing
    assert shared["setup"]["pre_seeds"] == [0]
    own = run(tmp_path / "own", models=MODELS[:1], seeds=(0, 1), pre_seeds=(0, 1))
    assert sorted(k for k in own["runs"] if k.startswith("pre/")) == [f"pre/{m}/64/0",
                                                                      f"pre/{m}/64/1"]
    assert own["runs"][f"{m}/64/30/1"]["pre_seed"] == 1
    with pytest.raises(ValueError, match="pre_seeds"):
        run(tmp_path / "none", pre_seeds=())


def test_the_progress_line_prices_what_is_left_at_the_recorded_rates():
    todo = [(s, "cnn", pre, i) for s in (0, 1) for pre, i in ((None, 0), (("fractal:10x20", 5),
                                                                          1000))]
    runs = {ps.tune_key("cnn", 0, 100, 0): dict(model="cnn", images=0, labels=100, seed=0,
                                                epochs=10, seconds=50.0, test_acc=0.5),
            "pre/cnn/1000/0": dict(model="cnn", images=1000, seed=0, seconds=20.0)}
    results = dict(runs=runs)
    left = ps.images_left(results, todo, (100,))  # the shared pre-training is recorded
    assert left == [("cnn", "tune", sweep.epochs_for(100) * 100)] * 3
    assert ps.seconds_per_image(results) == {("cnn", "tune"): 50.0 / 1000,
                                             ("cnn", "pre"): 20.0 / 1000}
    line = ps.progress_line(results, todo, (100,))
    seconds = 3 * sweep.epochs_for(100) * 100 * 0.05
    assert "3 of 5 runs left" in line and f"about {format_seconds(seconds)}" in line
    # a pre-training per seed: seed 1's is left too, and priced at the pre-training rate
    assert "4 of 6 runs left" in ps.progress_line(results, todo, (100,), pre_seeds=(0, 1))
    del runs["pre/cnn/1000/0"]
    assert "about ?" in ps.progress_line(results, todo, (100,))  # no pre-training rate yet
