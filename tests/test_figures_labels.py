"""The pictures that explain themselves (tinyvit/figures): labelled grids, matrix heatmaps,
shared absolute scales, reference lines, numbered patches, the masked-patch views."""
import numpy as np
import pytest
from PIL import Image

from tinyvit import mpp
from tinyvit.figures import analysis, charts, pictures


def tiles(n=6, h=20, w=30, seed=0):
    return list(np.random.default_rng(seed).integers(0, 256, (n, h, w, 3), dtype=np.uint8))


def test_labelled_grid_places_tiles_and_grows_for_its_words():
    t = tiles()
    plain = pictures.labelled_grid(t, 3, gap=4)
    assert plain.size == (8 + 3 * 30 + 2 * 4 + 8, 8 + 2 * 20 + 4 + 8)
    a = np.asarray(plain)
    np.testing.assert_array_equal(a[8:28, 8:38], t[0])  # first tile at the margin
    np.testing.assert_array_equal(a[32:52, 42:72], t[4])  # second row, second column
    words = pictures.labelled_grid(t, 3, col_labels=["a", "b", "c"], row_labels=["row 1", "2"],
                                   captions=list("abcdef"), title="one\ntwo",
                                   colorbar=(0, 1, "viridis", "v"), gap=4)
    assert words.width > plain.width and words.height > plain.height
    assert isinstance(words, Image.Image) and words.mode == "RGB"


def test_labelled_grid_rejects_tiles_of_different_shapes():
    with pytest.raises(ValueError, match="one shape"):
        pictures.labelled_grid(tiles(2) + tiles(1, h=10), 3)


def test_matrix_heatmap_uses_the_given_scale():
    a = np.array([[0.0, 0.5], [1.0, 0.25]])
    img = np.asarray(pictures.matrix_heatmap(a, "key", "query", vmin=0, vmax=1, cell=20))
    top_left = img[10 + 10, 58 + 10]  # centre of cell (0, 0): the colour map's bottom
    assert tuple(top_left) == tuple(charts.colorize(np.array(0.0)))
    assert tuple(img[10 + 30, 58 + 10]) == tuple(charts.colorize(np.array(1.0)))
    with pytest.raises(ValueError, match="2-D"):
        pictures.matrix_heatmap(np.zeros(3), "x", "y")


def test_overlays_share_an_absolute_scale():
    img = np.full((8, 8, 3), 100, np.uint8)
    flat, peaked = np.full((2, 2), 0.01), np.array([[0.0, 0.0], [0.0, 0.02]])
    own = np.asarray(pictures.overlay(img, flat + [[0, 0], [0, 1e-4]]))  # own min-max
    shared = np.asarray(pictures.overlay(img, flat, vmin=0, vmax=0.02))
    assert own.std() > shared.std()  # a nearly flat map stays flat on the shared scale
    assert np.asarray(pictures.overlay(img, peaked, vmin=0, vmax=0.02)).std() > shared.std()
    dark = np.asarray(pictures.attention_mask(img, flat, vmin=0, vmax=0.02))
    assert (dark == 50).all()  # half of the scale: the image at half brightness


def test_attention_distance_chart_draws_the_uniform_reference():
    d = np.array([[3.0, 10.0], [12.0, 14.0]])
    without = np.asarray(pictures.attention_distance_chart(d))
    with_line = np.asarray(pictures.attention_distance_chart(d, uniform=13.0))
    grey = np.all(with_line == charts.hex_rgb("#777777"), axis=-1).sum()
    assert grey > 100 and np.all(without == charts.hex_rgb("#777777"), axis=-1).sum() < grey


def test_similarity_by_distance_drops_thin_bins():
    sim = np.random.default_rng(0).uniform(-1, 1, (8, 8, 8, 8))
    d, mean, pairs = analysis.similarity_by_distance(sim, min_pairs=50)
    assert d[0] == 1 and (pairs >= 50).all() and 10 not in d  # 4 corner pairs at ~9.9
    d_all, _, pairs_all = analysis.similarity_by_distance(sim, min_pairs=1)
    assert pairs_all.sum() == 64 * 64 - 64 and d_all.max() == 10


def test_patch_grid_numbers_change_only_the_corners():
    x = np.full((8, 8, 3), 90, np.uint8)
    plain = np.asarray(pictures.patch_grid(x, 4, gap=0, scale=8))
    numbered = np.asarray(pictures.patch_grid(x, 4, gap=0, scale=8, numbers=True))
    assert plain.shape == numbered.shape and (plain != numbered).any()
    assert (plain[48:, 48:] == numbered[48:, 48:]).all()  # the last patch's lower right


def test_filters_grid_with_captions_and_title():
    f = np.random.default_rng(0).standard_normal((4, 4, 4, 3))
    assert pictures.filters_grid(f, nrow=2, captions=["1%"] * 4, title="PCA").height > \
        pictures.filters_grid(f, nrow=2).height


def test_mpp_pictures_show_the_plan():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (8, 8, 3), np.uint8)
    action = np.array([mpp.MASKED, mpp.REPLACED, mpp.KEPT, mpp.NOT_CHOSEN])
    source = np.array([1, 3, 0, 0])
    v = pictures.mpp_corruption_view(img, action, source, 4, scale=4)  # (32, 32, 3)
    assert v.shape == (32, 32, 3)
    assert (v[4:12, 4:12] == pictures.MASK_GREY).mean() > 0.5  # masked: grey (and a cross)
    np.testing.assert_array_equal(v[20:28, 20:28], pictures.upscale(img[4:, 4:], 4)[4:12, 4:12])
    np.testing.assert_array_equal(v[4:12, 20:28], pictures.upscale(img[4:, 4:], 4)[4:12, 4:12])
    c = pictures.patch_colors(np.array([0, 511, 7, 64]), 2, 4, chosen=action != 0)
    assert tuple(c[0, 0]) == (16, 16, 16) and tuple(c[0, 4]) == (240, 240, 240)
    assert tuple(c[7, 7]) == (255, 255, 255) and tuple(c[6, 6]) == (190, 190, 190)  # hatched


def test_a_long_chart_title_is_shrunk_to_fit_not_cut_off():
    """The title's ink stays inside the image, away from both edges, however long it is."""
    from tinyvit.figures import charts

    xs, ys = np.array([1.0, 2.0]), np.array([0.1, 0.2])
    for title in ["short", "Data hunger on CIFAR-10 (JPEG copy), at least 100,000 images and "
                           "10 epochs per run, and then some more words"]:
        img = np.asarray(charts.line_chart({"a": (xs, ys)}, title=title).convert("L"))
        band = img[:34]  # the title's strip above the plot
        ink = np.nonzero((band < 128).any(0))[0]
        assert len(ink) and ink.min() >= 4 and ink.max() <= img.shape[1] - 5, title
