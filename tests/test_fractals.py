"""Formula-driven data (tinyvit/data/fractals.py, fractal_sets.py): the vectorised chaos game
equals a plain one, the fill rule keeps what it says, every image is a function of its seed."""
import numpy as np
import pytest

from tinyvit.data import DataError, check_dataset
from tinyvit.data import fractal_sets as fsets
from tinyvit.data import fractals


def reference_chaos_game(system, n_maps, start, picks, burn_in):
    """One chain of one IFS, one point at a time: the textbook chaos game."""
    a, b, c, d = system[:n_maps, 0], system[:n_maps, 1], system[:n_maps, 2], system[:n_maps, 3]
    det = [abs(a[i] * d[i] - b[i] * c[i]) for i in range(n_maps)]
    probs = [v / sum(det) for v in det]
    x, y = start
    points, made_by = [], []
    for t, u in enumerate(picks):
        k, edge = 0, probs[0]
        while k < n_maps - 1 and u >= edge:  # the first map whose cumulative edge exceeds u
            k += 1
            edge += probs[k]
        a_, b_, c_, d_, e_, f_ = system[k]
        x, y = a_ * x + b_ * y + e_, c_ * x + d_ * y + f_
        if t >= burn_in:
            points.append((x, y))
            made_by.append(k)
    return np.array(points), np.array(made_by)


def test_vectorised_chaos_game_equals_the_point_by_point_one():
    rng = np.random.default_rng(0)
    systems, maps = fractals.random_systems(rng, 3)  # (3, 7, 6), three map counts
    starts = rng.uniform(-1, 1, (3, 4, 2))  # 4 chains each
    picks = rng.random((3, 9, 4))  # 9 steps: 3 burn-in, 6 recorded
    x, y, made_by = fractals.chaos_game(systems, maps, starts, picks, burn_in=3)
    assert x.shape == y.shape == made_by.shape == (3, 6, 4)
    points = np.stack([x, y], -1)  # (3, 6, 4, 2)
    for i in range(3):
        for q in range(4):
            ref, ref_k = reference_chaos_game(systems[i], maps[i], starts[i, q], picks[i, :, q], 3)
            np.testing.assert_allclose(points[i, :, q], ref, rtol=1e-12, atol=1e-12)
            np.testing.assert_array_equal(made_by[i, :, q], ref_k)
    assert (made_by < maps[:, None, None]).all()  # never a padded map


def test_maps_are_chosen_in_proportion_to_their_determinants():
    system = np.zeros((1, 7, 6))
    system[0, :2, :4] = [[0.5, 0, 0, 0.5], [0.5, 0, 0, 0.25]]  # |det| 0.25 and 0.125
    probs = fractals.map_probabilities(system)
    np.testing.assert_allclose(probs[0, :3], [2 / 3, 1 / 3, 0])
    k = fractals.map_index(probs, np.array([2]), np.random.default_rng(0).random((1, 30000)))
    assert abs((k == 0).mean() - 2 / 3) < 0.01 and set(np.unique(k)) == {0, 1}


def test_rasterise_shapes_ranges_and_a_known_picture():
    x = np.array([[[0.0], [1.0], [1.0], [0.5]]])  # (1, 4, 1): four points of one image
    y = np.array([[[0.0], [1.0], [1.0], [0.0]]])
    made_by = np.array([[[0], [1], [1], [0]]])  # (1, 4, 1)
    grey = fractals.rasterise(x, y, made_by, 4)
    assert grey.shape == (1, 4, 4, 1) and grey.dtype == np.uint8
    assert grey[0, 3, 3, 0] == 255 and grey[0, 0, 0, 0] == round(255 * np.log(2) / np.log(3))
    assert grey[0, 0, 2, 0] == grey[0, 0, 0, 0] and (grey > 0).sum() == 3  # x 0.5 -> column 2
    colours = np.array([[[1.0, 0, 0], [0, 0, 1.0]]])  # map 0 red, map 1 blue
    rgb = fractals.rasterise(x, y, made_by, 4, colours)
    assert rgb.shape == (1, 4, 4, 3) and tuple(rgb[0, 3, 3]) == (0, 0, 255)
    assert rgb[0, 0, 0, 0] > 0 and rgb[0, 0, 0, 2] == 0
    assert fractals.fill_rate(x, y, 4)[0] == 3 / 16


def test_the_search_keeps_exactly_the_candidates_that_fill_the_canvas():
    both = [fsets.candidates(seed=0, t=t, batch=64) for t in (0, 1)]  # the first 128
    systems, maps, fill = (np.concatenate(a) for a in zip(*both))
    kept, kept_maps = fsets.search_categories(5, seed=0, batch=64)
    keep = fill >= fractals.FILL_THRESHOLD
    assert 0 < keep.mean() < 0.5  # the rule rejects most random IFS (in FractalDB too)
    np.testing.assert_array_equal(kept, systems[keep][:5])
    np.testing.assert_array_equal(kept_maps, maps[keep][:5])
    assert kept.shape == (5, fractals.MAX_MAPS, 6) and (np.abs(kept) <= 1).all()
    assert ((kept_maps >= 2) & (kept_maps <= 7)).all()
    strict = fsets.search_categories(5, seed=0, threshold=0.5, batch=64)[0]
    np.testing.assert_array_equal(strict, systems[fill >= 0.5][:5])
    with pytest.raises(DataError, match="expected 5"):
        fsets.search_categories(5, seed=0, threshold=0.99, batch=64, max_candidates=128)


def test_kept_categories_fill_the_canvas_on_a_fresh_chaos_game_too():
    systems, maps = fsets.search_categories(24, seed=0)
    rng = np.random.default_rng(1)  # another random path than the search's
    q, steps = fractals.CHAINS, fractals.BURN_IN + fractals.STEPS
    x, y, _ = fractals.chaos_game(systems, maps, rng.uniform(-1, 1, (24, q, 2)),
                                  rng.random((24, steps, q)))
    fill = fractals.fill_rate(x, y, 32)
    assert fill.mean() > fractals.FILL_THRESHOLD and (fill > 0.2).all()
    np.testing.assert_array_equal(fsets.search_categories(3, seed=0)[0], systems[:3])


@pytest.fixture(scope="module")
def small():
    return fsets.fractal_set("fractal:5x4,seed=3")


def test_images_are_a_function_of_seed_category_and_instance(small):
    x = fsets.render(small, [0, 1, 2, 0], [0, 0, 0, 1])
    assert x.shape == (4, 32, 32, 3) and x.dtype == np.uint8 and x.max() > 100
    again = fsets.render(fsets.fractal_set("fractal:5x4,seed=3"), [2, 0], [0, 0])
    np.testing.assert_array_equal(again, x[[2, 0]])  # whatever else is in the batch
    other = fsets.render(fsets.fractal_set("fractal:5x4,seed=4"), [0], [0])
    assert not np.array_equal(other[0], x[0])
    assert not np.array_equal(x[0], x[3])  # two instances of one category differ


def test_categories_differ_more_than_instances(small):
    c, i = np.repeat(np.arange(5), 4), np.tile(np.arange(4), 5)
    x = fsets.render(small._replace(colour=False), c, i)[..., 0].astype(float).reshape(5, 4, -1)
    flips = [np.flip(x.reshape(5, 4, 32, 32), axes) for axes in ((), (2,), (3,), (2, 3))]
    within, between = [], []
    for a in range(5):
        for j in range(4):
            for b in range(5):
                # distance to the nearest flip of instance 0 of category b
                d = min(np.abs(f[b, 0].ravel() - x[a, j]).mean() for f in flips)
                if (a, j) != (b, 0):
                    (within if a == b else between).append(d)
    assert np.mean(within) < np.mean(between)
    assert len({small.systems[k].tobytes() for k in range(5)}) == 5


def test_grey_images_have_three_equal_channels():
    x = fsets.render(fsets.fractal_set("fractal:2x2,grey"), [0, 1], [0, 1])
    assert (x[..., 0] == x[..., 1]).all() and (x[..., 1] == x[..., 2]).all()
    assert (x.max((1, 2, 3)) == 255).all()  # each image's densest pixel is white


def test_an_epoch_sees_every_image_once_and_a_resumed_epoch_sees_the_same_batches(small):
    full = list(fsets.batches(small, epoch=0, batch_size=6))
    assert [len(y) for _, y in full] == [6, 6, 6, 2]
    labels = np.concatenate([y for _, y in full])
    assert labels.dtype == np.int64 and np.bincount(labels).tolist() == [4] * 5
    resumed = list(fsets.batches(small, epoch=0, batch_size=6, start=2))
    np.testing.assert_array_equal(resumed[0][0], full[2][0])
    np.testing.assert_array_equal(resumed[1][1], full[3][1])
    kept = list(fsets.batches(small, epoch=0, batch_size=6, drop_last=True))
    assert len(kept) == 3 and all(len(y) == 6 for _, y in kept)
    np.testing.assert_array_equal(kept[2][0], full[2][0])
    c, i = fsets.epoch_order(small, 0)
    assert len(set(zip(c.tolist(), i.tolist()))) == 20
    assert not np.array_equal(fsets.epoch_order(small, 1)[0], c)  # a new order each epoch


def test_one_parameter_fractal_classes_are_small_perturbations_of_one_ifs():
    fs = fsets.fractal_set("1p-frac:4x2,delta=0.1")
    base, maps = fsets.search_categories(1, seed=0)  # the one fractal: seed 0's first
    used = base[0] != 0
    ratio = fs.systems[:, used] / base[0][used]  # (K, used parameters)
    assert ((ratio >= 0.9) & (ratio <= 1.1)).all() and np.abs(ratio - 1).max() > 0.05
    assert (fs.systems[:, ~used] == 0).all() and (fs.maps == maps[0]).all() and fs.jitter == 0
    assert len({s.tobytes() for s in fs.systems}) == 4
    x = fsets.render(fs, [0, 1], [0, 0])
    assert x.shape == (2, 32, 32, 3)


def test_load_fractals_is_a_data_set_with_a_held_out_split():
    ds = fsets.load_fractals("fractal:3x5", test_per_category=2)
    check_dataset(ds, "fractal:3x5")
    (x, y), (xt, yt) = ds["train"], ds["test"]
    assert x.shape == (15, 32, 32, 3) and xt.shape == (6, 32, 32, 3)
    assert ds["classes"] == ["fractal-0", "fractal-1", "fractal-2"]
    assert not any((t == x).all((1, 2, 3)).any() for t in xt)  # no test image in training


@pytest.mark.parametrize("spec", ["fractal", "fractal:10", "fractal:0x5", "fractal:3x3,gray",
                                  "1p-frac:3x3,delta=1.5", "fractal:3x3,seed=1.5", "frac:3x3",
                                  "fractal:3x3,delta=1.2.3", "1p-frac:3x3,delta=0",
                                  "fractal:3x3,seed=-1", "fractal:3x3,seed="])
def test_bad_specs_say_what_was_expected(spec):
    with pytest.raises(DataError, match="expected"):
        fsets.fractal_set(spec)


def test_too_many_images_to_hold_are_refused_before_rendering():
    with pytest.raises(DataError, match="stream them"):
        fsets.load_fractals("fractal:1x200000")


def test_the_category_grid_shows_rows_of_categories_and_columns_of_instances(small):
    from tinyvit.figures.fractal_grid import category_grid, title_of
    img = category_grid(small, rows=3, cols=2, scale=2)
    bigger = category_grid(small, rows=5, cols=4, scale=2)
    assert img.mode == "RGB" and bigger.width >= img.width and bigger.height > img.height
    a = np.asarray(category_grid(small, rows=1, cols=1, scale=1))
    tile = fsets.render(small, [0], [0])[0]  # the one image is in the picture, unscaled
    hits = [(r, c) for r in range(a.shape[0] - 31) for c in range(a.shape[1] - 31)
            if a[r, c, 0] == tile[0, 0, 0] and (a[r:r + 32, c:c + 32] == tile).all()]
    assert hits
    assert "category" in title_of(small, 3, 2) and "instance" in title_of(small, 3, 2)
    assert "ONE fractal" in title_of(fsets.fractal_set("1p-frac:2x2"), 2, 2)
    assert "category" in title_of(fsets.fractal_set("fractal:2x2,delta=0"), 2, 2)


def bench(name):
    """A script of benchmarks/ as a module."""
    import importlib.util
    from pathlib import Path
    path = Path(__file__).resolve().parents[1] / "benchmarks" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"bench_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_rate_benchmark_runs(capsys):
    bench("fractal_rate").main(["--specs", "fractal:3x4", "1p-frac:2x2,grey", "--batch-size",
                                "4", "--seconds", "0"])
    out = capsys.readouterr().out
    assert "fractal:3x4" in out and "1p-frac:2x2,grey" in out and "images/s" in out


def test_the_pretraining_cost_benchmark_adds_up(capsys):
    bench("pretrain_cost").main(["--models", "vit-cifar-nano", "--pretrain", "2000", "--labels",
                                 "1000", "--seeds", "2", "--data", "fractal:2x2",
                                 "--seconds", "0.01"])
    out = capsys.readouterr().out
    assert "pre-training 2,000 formula images" in out and "vit-cifar-nano" in out
    assert "2 starts (1 pre-trained + scratch) x labels [1000]" in out  # 100 epochs of 1k each
    assert "= 200,000 CIFAR images seen" in out
    assert "CPU-hours for 2 seeds (1 pre-training)" in out


def test_the_threshold_calibration_runs(capsys):
    bench("fill_threshold").main(["--systems", "4", "--large", "64", "--points", "8192"])
    out = capsys.readouterr().out
    assert "4 random IFS" in out and "32x32 threshold 0.40: keeps" in out


def test_load_data_reads_a_fractal_spec():
    from tinyvit.data import load_data
    ds = load_data("fractal:2x3,grey,seed=5")
    assert ds["train"][0].shape == (6, 32, 32, 3) and ds["classes"] == ["fractal-0", "fractal-1"]
    np.testing.assert_array_equal(ds["train"][0],
                                  fsets.load_fractals("fractal:2x3,grey,seed=5")["train"][0])
    with pytest.raises(DataError, match="fractal:KxI"):
        load_data("fractal:2y3")


def test_the_pretraining_probe_runs(capsys):
    bench("fractal_probe").main(["--data", "fractal:3x4", "--steps", "2", "--batch-size", "4",
                                 "--model", "cnn-air-small"])
    out = capsys.readouterr().out
    assert "cnn-air-small on fractal:3x4: loss" in out and "chance 0.333" in out
