"""CIFAR-10-C style corruptions (tinyvit/data/corruptions.py): deterministic by seed, uint8 in
range, each severity stronger than the last on a measured quantity, and the closed forms
checked against independent ones."""
import colorsys

import numpy as np
import pytest

from tinyvit.data import corruptions as C


def smooth_images(b=96, seed=0):
    """Photo-like test images: a smooth random field (7x7 noise, upsampled by a factor that
    aligns with no pixelation grid) and a square of one colour."""
    rng = np.random.default_rng(seed)
    coarse = rng.uniform(30, 220, (b, 7, 7, 3))
    t = np.arange(32) * 6 / 31
    x = C.bilinear(coarse, np.broadcast_to(t[:, None], (b, 32, 32)),
                   np.broadcast_to(t[None, :], (b, 32, 32)))  # (B, 32, 32, 3)
    r, c = rng.integers(4, 18, (2, b))
    for i in range(b):
        x[i, r[i]:r[i] + 10, c[i]:c[i] + 10] = rng.uniform(0, 255, 3)
    return x.round().astype(np.uint8)


X = smooth_images()


def rmse(a, b):
    return float(np.sqrt(np.mean((a.astype(float) - b.astype(float)) ** 2)))


def test_there_are_at_least_twelve_of_the_fifteen():
    assert len(C.CORRUPTIONS) >= 12 and set(C.APPROXIMATE) <= set(C.CORRUPTIONS)
    assert all(len(C.PARAMS[name]) == 5 for name in C.CORRUPTIONS)


@pytest.mark.parametrize("name", list(C.CORRUPTIONS))
def test_uint8_in_range_same_shape_and_deterministic_by_seed(name):
    for s in (1, 5):
        a = C.corrupt(X[:6], name, s, seed=3)
        assert a.dtype == np.uint8 and a.shape == X[:6].shape
        np.testing.assert_array_equal(a, C.corrupt(X[:6], name, s, seed=3))
        assert not np.array_equal(a, X[:6]), "a corruption changes the images"
    random = name not in ("defocus_blur", "zoom_blur", "brightness", "contrast", "pixelate",
                          "jpeg_compression")
    if random:
        assert not np.array_equal(C.corrupt(X[:6], name, 3, seed=3),
                                  C.corrupt(X[:6], name, 3, seed=4))


MONOTONE = [n for n in C.CORRUPTIONS if n not in ("glass_blur", "elastic_transform",
                                                  "motion_blur")]


@pytest.mark.parametrize("name", MONOTONE)
def test_distance_from_the_clean_image_grows_with_severity(name):
    d = [rmse(C.corrupt(X, name, s, seed=0), X) for s in range(1, 6)]
    assert all(a < b for a, b in zip(d, d[1:])), f"{name}: RMSE by severity {np.round(d, 2)}"


def test_motion_blur_kernel_spreads_with_severity():
    """Severities 3 and 4 differ only in radius (6 -> 8 px at sigma 2), nearly nothing on the
    image; the kernel's spread (its weighted distance from the centre) never shrinks."""
    def spread(radius, sigma):
        k = C.motion_kernel(radius, sigma, 0.0)
        r = len(k) // 2
        cols = np.arange(len(k)) - r
        return float((k.sum(0) * np.abs(cols)).sum())
    s = [spread(*p) for p in C.PARAMS["motion_blur"]]
    assert all(a < b for a, b in zip(s, s[1:])), s
    d = [rmse(C.corrupt(X, "motion_blur", sev, seed=0), X) for sev in (1, 2, 3, 5)]
    assert all(a < b for a, b in zip(d, d[1:])), d


def test_glass_blur_follows_its_two_parameters():
    """CIFAR-10-C's glass blur raises sigma within 1 iteration (severities 1-3) and within 2
    (4-5): more blur means less fine detail; a second iteration of pixel moves (4 vs 2, 5 vs
    3) means farther from the clean image. (Across the two, it is not ordered on one axis.)"""
    g = {s: C.corrupt(X, "glass_blur", s, seed=0).astype(float) for s in range(1, 6)}
    detail = {s: np.abs(np.diff(g[s], axis=2)).mean() for s in g}
    assert detail[1] > detail[2] > detail[3] and detail[4] > detail[5]
    assert rmse(g[4], X) > rmse(g[2], X) and rmse(g[5], X) > rmse(g[3], X)


def test_brightness_equals_the_hsv_round_trip():
    x = np.random.default_rng(0).integers(0, 256, (1, 4, 4, 3)).astype(np.uint8)
    x[0, 0, 0] = 0  # a black pixel: S = 0, it becomes grey
    got = C.corrupt(x, "brightness", 5)
    c = C.PARAMS["brightness"][4]
    for (i, j) in np.ndindex(4, 4):
        h, s, v = colorsys.rgb_to_hsv(*(x[0, i, j] / 255.0))
        want = np.array(colorsys.hsv_to_rgb(h, s, min(v + c, 1.0)))
        np.testing.assert_array_equal(got[0, i, j], (np.clip(want, 0, 1) * 255).astype(np.uint8))


def test_contrast_scales_the_deviation_from_the_mean():
    x = np.full((1, 8, 8, 3), 128, np.uint8)
    x[0, :4] = 168  # rows 0-3 +20 above the mean, rows 4-7 20 below
    out = C.corrupt(x, "contrast", 2).astype(float)  # c = 0.5
    np.testing.assert_allclose(out[0, :4], 158, atol=1)
    np.testing.assert_allclose(out[0, 4:], 138, atol=1)


def test_gaussian_filter_matches_the_closed_form_on_an_impulse():
    x = np.zeros((1, 21, 21, 1))
    x[0, 10, 10, 0] = 1.0
    out = C.gaussian_filter(x, 1.5)[0, :, :, 0]
    t = np.arange(-10, 11)
    g = np.exp(-t**2 / (2 * 1.5**2))
    want = np.outer(g, g) / g.sum() ** 2  # normalised inside 4 sigma = 6 px; all of it here
    want[np.abs(t) > 6] = 0
    want[:, np.abs(t) > 6] = 0
    np.testing.assert_allclose(out, want / want.sum(), atol=1e-12)


def test_reflect_index_matches_numpy_padding():
    for mode in ("symmetric", "reflect"):
        row = np.arange(7.0)
        padded = np.pad(row, 9, mode=mode)
        np.testing.assert_array_equal(C.reflect_index(np.arange(-9, 16), 7, mode), padded)


def test_clear_errors():
    with pytest.raises(ValueError, match="unknown corruption 'frost'"):
        C.corrupt(X, "frost", 1)
    with pytest.raises(ValueError, match="severity"):
        C.corrupt(X, "fog", 0)
    with pytest.raises(ValueError, match="uint8"):
        C.corrupt(X.astype(np.float32), "fog", 1)
