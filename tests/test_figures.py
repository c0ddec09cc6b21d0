"""tinyvit/figures/pictures.py and charts.py: every picture is a PIL image of the expected size
and mode, with content."""
import numpy as np
import pytest
from PIL import Image

from tinyvit.figures import charts, pictures
from tinyvit.vit import patchify


def colours_in(img):
    """The set of RGB colours present in an image."""
    return {tuple(int(v) for v in c) for c in np.unique(np.asarray(img).reshape(-1, 3), axis=0)}


def images(b=5, h=8, w=6, c=3, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (b, h, w, c), dtype=np.uint8)


# ---------------------------------------------------------------- images and patches


def test_image_grid_size_and_placement():
    x = images()  # 5 images 8 x 6
    img = pictures.image_grid(x, nrow=3, pad=2, scale=2)
    assert isinstance(img, Image.Image) and img.mode == "RGB"
    assert img.size == (3 * 12 + 4 * 2, 2 * 16 + 3 * 2)  # (width, height): 3 columns, 2 rows
    a = np.asarray(img)
    np.testing.assert_array_equal(a[2:18:2, 2:14:2], x[0])  # first image, nearest upscaled
    np.testing.assert_array_equal(a[20:36:2, 16:28:2], x[4])  # second row, second column
    assert (a[20:36, 30:42] == 255).all()  # the empty sixth slot
    gray = pictures.image_grid(images(c=1), nrow=5, pad=0)
    assert gray.mode == "RGB" and gray.size == (30, 8)
    with pytest.raises(ValueError, match="uint8"):
        pictures.image_grid(x.astype(np.float32))


def test_patch_grid_size_arithmetic():
    x = images(1, 12, 8)[0]  # 12 x 8 image, patch 4: 3 rows x 2 columns of patches
    img = pictures.patch_grid(x, 4, gap=3, scale=2)
    assert img.size == (16 + 1 * 3, 24 + 2 * 3)
    a = np.asarray(img)
    np.testing.assert_array_equal(a[11:19:2, 11:19:2], x[4:8, 4:8])  # patch (row 1, col 1)
    seq = pictures.patch_grid(x, 4, gap=1, ncol=6)  # the sequence of 6 "words"
    assert seq.size == (6 * 4 + 5, 4)
    np.testing.assert_array_equal(np.asarray(seq)[:, 15:19], x[4:8, 4:8])  # 4th patch
    with pytest.raises(ValueError, match="divide"):
        pictures.patch_grid(x, 5)


def test_patch_grid_reads_the_patches_in_patchify_order():
    x = images(1, 12, 8)[0]  # 3 x 2 patches of 4 x 4
    seq = np.asarray(pictures.patch_grid(x, 4, gap=0, ncol=6))  # (4, 6*4, 3) the sequence
    cells = seq.reshape(4, 6, 4, 3).transpose(1, 0, 2, 3)  # (N, P, P, C) left to right
    np.testing.assert_array_equal(cells.reshape(6, -1), patchify(x[None], 4)[0])  # (N, P*P*C)
    grid = np.asarray(pictures.patch_grid(x, 4, gap=0, scale=2))  # in place: the image itself
    np.testing.assert_array_equal(grid, pictures.upscale(x, 2))


# ---------------------------------------------------------------- maps


def test_heatmap_size_mode_and_colours():
    a = np.arange(15.0).reshape(3, 5)
    img = pictures.heatmap(a, size=100)
    assert img.mode == "RGB" and img.size == (100, 60)
    px = np.asarray(img)
    assert tuple(px[0, 0]) == charts.hex_rgb(charts.COLORMAPS["viridis"][0])  # min -> first
    assert tuple(px[-1, -1]) == charts.hex_rgb(charts.COLORMAPS["viridis"][-1])  # max -> last
    assert pictures.heatmap(np.ones((4, 4)), size=(30, 20), smooth=True).size == (30, 20)
    with pytest.raises(ValueError, match="colormap"):
        pictures.heatmap(a, colormap="jet")


def test_overlay_and_mask():
    x = images(1, 8, 8)[0]
    heat = np.array([[0.0, 1.0], [0.5, 0.25]])
    img = pictures.overlay(x, heat, alpha=0.5, scale=3)
    assert img.mode == "RGB" and img.size == (24, 24)
    np.testing.assert_array_equal(np.asarray(pictures.overlay(x, heat, alpha=0.0)), x)
    m = pictures.attention_mask(x, heat, scale=2)
    assert m.size == (16, 16) and (np.asarray(m) <= np.asarray(pictures.upscale(x, 2))).all()


def test_similarity_grid_sizes():
    g, cell, gap = 3, 4, 2
    sim = np.random.default_rng(0).uniform(-1, 1, (g, g, g, g))
    bare = pictures.similarity_grid(sim, cell=cell, gap=gap, labels=False)
    side = g * g * cell + (g - 1) * gap
    assert bare.size == (side, side) and bare.mode == "RGB"
    labelled = pictures.similarity_grid(sim, cell=cell, gap=gap)
    assert labelled.width > side and labelled.height > side
    with pytest.raises(ValueError, match="g, g, g, g"):
        pictures.similarity_grid(np.zeros((3, 3, 9)))


def test_filters_grid_size():
    f = np.random.default_rng(0).standard_normal((10, 4, 4, 3))
    img = pictures.filters_grid(f, nrow=5, scale=3, pad=1)
    assert img.mode == "RGB" and img.size == (5 * 12 + 6, 2 * 12 + 3)


# ---------------------------------------------------------------- charts


def test_line_chart_draws_every_series_in_its_colour():
    xs = [500, 1000, 5000, 10000]
    series = {"ViT": (xs, [0.3, 0.4, 0.6, 0.7], [0.02, 0.02, 0.01, 0.01]),
              "CNN": (xs, [0.4, 0.5, 0.65, 0.72], [0.01, 0.01, 0.01, 0.01])}
    img = charts.line_chart(series, "Training images", "Accuracy", "Data hunger", log_x=True,
                         size=(500, 300))
    assert isinstance(img, Image.Image) and img.mode == "RGB" and img.size == (500, 300)
    a = np.asarray(img)
    assert (a != 255).any(axis=-1).mean() > 0.02  # something was drawn
    seen = colours_in(img)
    assert (charts.hex_rgb(charts.PALETTE[0]) in seen
            and charts.hex_rgb(charts.PALETTE[1]) in seen)
    curves = charts.line_chart({"loss": (np.arange(1, 11), np.linspace(2, 0.5, 10))},
                            "Epoch", "Loss", error_bars=False)
    assert curves.size == (640, 420) and charts.hex_rgb(charts.PALETTE[0]) in colours_in(curves)


def test_line_chart_errors():
    with pytest.raises(ValueError, match="positive"):
        charts.line_chart({"a": ([0, 1], [1, 2])}, log_x=True)
    with pytest.raises(ValueError, match="same length"):
        charts.line_chart({"a": ([1, 2, 3], [1, 2])})
    with pytest.raises(ValueError, match="at least one"):
        charts.line_chart({})


def test_scatter_and_attention_distance_chart():
    d = np.random.default_rng(0).uniform(1, 20, (4, 3))  # (L, H)
    img = pictures.attention_distance_chart(d, size=(400, 300))
    assert img.size == (400, 300) and img.mode == "RGB"
    seen = colours_in(img)
    assert all(charts.hex_rgb(c) in seen for c in charts.PALETTE[:3])  # one colour per head
    img = charts.scatter_chart({"a": ([1.5, 2.5], [3, 4])}, "x", "y", "t")
    assert charts.hex_rgb(charts.PALETTE[0]) in colours_in(img)


def test_ticks():
    assert charts.nice_ticks(0, 1) == ([0.0, 0.2, 0.4, 0.6, 0.8, 1.0], 1)
    assert charts.nice_ticks(0.5, 4.5, integer=True)[0] == [0, 1, 2, 3, 4, 5]
    assert charts.log_ticks(300, 60000) == [500, 1000, 2000, 5000, 10000, 20000, 50000]
    assert charts.log_ticks(50, 2e5) == [100, 1000, 10000, 100000]
    assert [charts.tick_label(v) for v in (500, 1000, 20000, 3e6)] == ["500", "1k", "20k", "3M"]


def test_a_legend_that_would_hide_data_gets_room_above_the_lines(monkeypatch):
    hidden = []
    real = charts.draw_legend
    monkeypatch.setattr(charts, "draw_legend", lambda *a, **k: hidden.append(real(*a, **k))
                        or hidden[-1])
    cross = {"rising": ([1, 2, 3, 4], [0.1, 0.4, 0.6, 0.9]),  # an X: data in every corner
             "falling": ([1, 2, 3, 4], [0.9, 0.6, 0.4, 0.1])}
    charts.line_chart(cross, "x", "y", "an X")
    assert hidden == [0]  # drawn on the raised chart, where it hides nothing
    hidden.clear()
    charts.line_chart(cross, "x", "y", "an X, its top fixed", ylim=(None, 1.0))
    assert len(hidden) == 1 and hidden[0] > 0  # a fixed top is kept: the legend covers data
    hidden.clear()
    charts.line_chart({"rising": cross["rising"]}, "x", "y", "one line")
    assert hidden == [0]  # an empty corner: drawn once


def test_named_x_ticks_replace_numbers():
    series = {"a": ([10, 100, 1000], [0.1, 0.2, 0.3])}
    plain = np.asarray(charts.line_chart(series, "x", "y", "t", log_x=True))
    named = np.asarray(charts.line_chart(series, "x", "y", "t", log_x=True,
                                         xtick_names={10: "scratch"}))
    changed = np.argwhere((plain != named).any(axis=2))
    assert len(changed) and changed[:, 0].min() > 420 - 52  # only under the plot: tick labels
