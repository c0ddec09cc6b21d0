"""Occlusion, patch shuffles and token dropping (tinyvit/figures/occlusion.py); cue-conflict
stimuli (tinyvit/data/cue_conflict.py); corruption errors and shape bias
(tinyvit/figures/robustness.py)."""
import numpy as np
import pytest

from tinyvit import vit
from tinyvit.configs import get_config
from tinyvit.data import cue_conflict as cc
from tinyvit.figures import occlusion as occ
from tinyvit.figures import robustness


@pytest.mark.parametrize("order", occ.ORDERS)
@pytest.mark.parametrize("fraction", [0.0, 0.1, 0.5, 0.8, 1.0])
def test_masks_drop_exactly_the_share_asked(order, fraction):
    ranks = occ.patch_order(np.random.default_rng(0), 8, order, 5)
    assert sorted(ranks[0]) == list(range(64))  # a permutation of the blocks
    m = occ.drop_masks(ranks, fraction, 8)
    assert m.shape == (5, 8, 8) and (m.sum(axis=(1, 2)) == round(fraction * 64)).all()


def test_centre_first_and_border_first_drop_the_right_blocks():
    rng = np.random.default_rng(0)
    centre = occ.drop_masks(occ.patch_order(rng, 4, "centre", 3), 0.25, 4)
    want = np.zeros((4, 4), bool)
    want[1:3, 1:3] = True  # the four middle blocks of a 4 x 4 grid
    assert (centre == want).all()
    border = occ.drop_masks(occ.patch_order(rng, 4, "border", 3), 0.75, 4)
    assert (border == ~want).all()  # the 12 border blocks
    random = occ.drop_masks(occ.patch_order(rng, 4, "random", 50), 0.25, 4)
    assert len({m.tobytes() for m in random}) > 40  # a fresh draw per image
    with pytest.raises(ValueError, match="patch order"):
        occ.patch_order(rng, 4, "spiral", 1)


def test_fill_patches_sets_exactly_the_dropped_pixels():
    x = np.random.default_rng(0).integers(0, 256, (2, 32, 32, 3)).astype(np.uint8)
    masks = np.zeros((2, 4, 4), bool)
    masks[0, 1, 2] = masks[1, 3, 0] = True
    out = occ.fill_patches(x, masks, [125.3, 123, 114])
    assert out.dtype == np.uint8
    assert (out[0, 8:16, 16:24] == [125, 123, 114]).all()
    assert (out[1, 24:32, 0:8] == [125, 123, 114]).all()
    changed = out != x
    changed[0, 8:16, 16:24] = changed[1, 24:32, 0:8] = False
    assert not changed.any(), "pixels outside the dropped blocks are untouched"


def test_shuffle_moves_whole_blocks():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (3, 32, 32, 3)).astype(np.uint8)
    np.testing.assert_array_equal(occ.shuffle_patches(rng, x, 1), x)
    for g in (2, 4, 8):
        out = occ.shuffle_patches(rng, x, g)
        blocks_in, blocks_out = vit.patchify(x, 32 // g), vit.patchify(out, 32 // g)
        for a, b in zip(blocks_in, blocks_out):
            assert sorted(map(bytes, a)) == sorted(map(bytes, b))  # the same blocks
        assert not np.array_equal(out, x)


def vit_and_images(pool):
    knobs = dict(pool="seq", spt=True, lsa=True) if pool == "seq+spt+lsa" else dict(pool=pool)
    cfg = get_config("vit-cifar-nano", depth=2, **knobs)
    params = vit.init_vit(np.random.default_rng(0), cfg)
    rng = np.random.default_rng(1)
    params["head"]["w"] = rng.standard_normal(params["head"]["w"].shape).astype(np.float32)
    return cfg, params, rng.standard_normal((3, 32, 32, 3)).astype(np.float32)


@pytest.mark.parametrize("pool", ["cls", "gap", "seq+spt+lsa"])
def test_dropping_no_token_is_the_vit(pool):
    cfg, params, x = vit_and_images(pool)
    masks = np.zeros((3, cfg.grid, cfg.grid), bool)
    np.testing.assert_allclose(occ.vit_logits_without(params, x, cfg, masks),
                               vit.vit(params, x, cfg), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("pool", ["cls", "gap", "seq+spt+lsa"])
def test_dropped_tokens_are_removed_from_the_sequence(pool):
    """Against a per-image loop: Eq. 1 for all patches, then the kept rows only."""
    cfg, params, x = vit_and_images(pool)
    masks = occ.drop_masks(occ.patch_order(np.random.default_rng(2), cfg.grid, "random", 3),
                           0.5, cfg.grid)
    got = occ.vit_logits_without(params, x, cfg, masks)
    first = 1 if pool == "cls" else 0
    if cfg.spt:  # shifted patch tokens would read the dropped pixels: they are zeroed first
        x = occ.fill_patches(x, masks, np.zeros(3))
    for i in range(3):
        z = vit.embed(params, x[i:i + 1], cfg)  # (1, T, D)
        kept = [0] * first + [first + j for j in np.flatnonzero(~masks[i].ravel())]
        z = vit.transformer(params, z[:, kept], cfg)
        want = vit.layers.linear(params["head"], vit.pool(z, cfg, params))
        np.testing.assert_allclose(got[i:i + 1], want, rtol=1e-5, atol=1e-5)
    uneven = masks.copy()
    uneven[0, 0, 0] = ~uneven[0, 0, 0]
    with pytest.raises(ValueError, match="same number kept"):
        occ.vit_logits_without(params, x, cfg, uneven)


@pytest.mark.parametrize("pool", ["cls", "gap", "seq+spt+lsa"])
def test_removed_patches_leave_no_trace(pool):
    """Whatever the dropped patches hold, the logits are the same: with shifted patch tokens
    too, whose kept tokens reach half a patch into their neighbours."""
    cfg, params, x = vit_and_images(pool)
    masks = occ.drop_masks(occ.patch_order(np.random.default_rng(2), cfg.grid, "centre", 3),
                           0.5, cfg.grid)
    other = occ.fill_patches(x, masks, np.full(3, 5.0, np.float32))  # dropped pixels changed
    assert not np.array_equal(other, x)
    np.testing.assert_allclose(occ.vit_logits_without(params, other, cfg, masks),
                               occ.vit_logits_without(params, x, cfg, masks), rtol=1e-5,
                               atol=1e-6)


def test_curves_measure_accuracy():
    x = np.random.default_rng(0).integers(0, 256, (20, 32, 32, 3)).astype(np.uint8)
    y = np.arange(20) % 2
    # a "model" that reads the top-left pixel: dropping its block makes it say class 1
    def logits(b):
        dark = b[:, 0, 0, 0] < 128
        return np.stack([dark, ~dark], 1).astype(float)
    base = occ.accuracy(logits, x, y)
    curve = occ.drop_curve(logits, x, y, [0.0, 1.0], "random", 4, [200, 200, 200])
    assert curve[0] == base and curve[1] == np.mean(y == 1)
    assert occ.shuffle_curve(logits, x, y, grids=(1,))[0] == base


# ---------------------------------------------------------------------------------------------
# Cue-conflict stimuli: the spectra carry what they claim
# ---------------------------------------------------------------------------------------------


def photo_like(b, seed):
    rng = np.random.default_rng(seed)
    x = cc.lowpass(rng.uniform(0, 255, (b, 32, 32, 3)), 0.1) * 3 - 255  # smooth structure
    x = x + rng.normal(0, 20, x.shape)  # and fine detail
    return np.clip(x, 20, 235).round().astype(np.uint8)


def test_cue_conflict_spectra_are_shape_low_and_texture_high():
    """Spectrum of the stimulus = G . F[shape] + (1 - G) . F[texture] (up to rounding); so it is
    the shape image's where G is near 1 and the texture image's where G is near 0 (the mean,
    frequency 0, left out: every image has much of it)."""
    a, b = photo_like(8, 0), photo_like(8, 1)
    cutoff = 0.08
    s = cc.cue_conflict(a, b, cutoff, side=8)
    assert s.dtype == np.uint8
    b = cc.texture_of(b, side=8)  # the texture the stimulus carries: a crop, mirror-tiled
    g = cc.lowpass_gain(32, 32, cutoff)[None, :, :, None]  # (1, H, W, 1)
    fa, fb, fs = (np.fft.fft2(v.astype(float), axes=(1, 2)) for v in (a, b, s))
    g2 = np.broadcast_to(g, fs.shape)
    not_dc = np.ones(fs.shape, bool)
    not_dc[:, 0, 0] = False
    low, high = (g2 > 0.9) & not_dc, g2 < 0.1

    def off(v, band):  # how far the stimulus's spectrum is from v's in a band, relatively
        return np.linalg.norm((fs - v)[band]) / np.linalg.norm(fs[band])

    assert off(g * fa + (1 - g) * fb, not_dc) < 0.02  # the construction, on the spectrum
    assert off(fa, low) < 0.15 and off(fb, high) < 0.1  # shape low, texture high
    assert off(fb, low) > 0.5 and off(fa, high) > 0.5  # not the other way round


def test_texture_is_the_central_crop_mirror_tiled():
    x = photo_like(2, 0)
    t = cc.texture_of(x, side=8)
    crop = x[:, 12:20, 12:20]
    np.testing.assert_array_equal(t[:, :8, :8], crop)
    np.testing.assert_array_equal(t[:, :8, 8:16], crop[:, :, ::-1])  # mirrored: no seam
    np.testing.assert_array_equal(t[:, 8:16, :16], t[:, :8, :16][:, ::-1])
    np.testing.assert_array_equal(t[:, 16:, 16:], t[:, :16, :16])  # periodic
    with pytest.raises(ValueError, match="must divide"):
        cc.texture_of(x, side=12)


def test_conflict_pairs_never_share_a_class():
    y = np.arange(50) % 10
    i, j = cc.conflict_pairs(y, seed=0)
    assert (y[i] != y[j]).all() and len(set(j)) > 20


def test_cue_conflict_errors():
    a = photo_like(2, 0)
    with pytest.raises(ValueError, match="one shape"):
        cc.cue_conflict(a, a[:1])
    with pytest.raises(ValueError, match="cutoff"):
        cc.cue_conflict(a, a, cutoff=0.7)


def test_shape_bias_is_geirhos_definition():
    shape = np.array([0, 1, 2, 3, 4, 5])
    texture = np.array([1, 2, 3, 4, 5, 5])  # the last pair agrees: left out
    pred = np.array([0, 1, 3, 9, 5, 5])  # shape, shape, texture, neither, texture
    r = robustness.shape_bias(pred, shape, texture)
    assert r["shape_bias"] == pytest.approx(2 / 4)
    assert r["shape"] == pytest.approx(2 / 5) and r["texture"] == pytest.approx(2 / 5)


def test_mean_corruption_error_relative_to_a_reference():
    err = np.array([[0.2, 0.4], [0.3, 0.3]])
    ref = np.array([[0.3, 0.5], [0.3, 0.3]])
    assert robustness.mean_corruption_error(err, ref) == pytest.approx((0.6 / 0.8 + 1) / 2)
    rel = robustness.mean_corruption_error(err, ref, clean=0.1, ref_clean=0.2)
    assert rel == pytest.approx(((0.1 + 0.3) / (0.1 + 0.3) + (0.2 + 0.2) / (0.1 + 0.1)) / 2)
