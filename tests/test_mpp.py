"""Masked patch prediction (tinyvit/mpp.py): colour targets, the corruption, the objective,
float64 finite-difference gradients of every parameter, float32 dtypes, one-line errors."""
import numpy as np
import pytest
from autograd import grad

from gradcheck import check_tree, randomize
from tinyvit import layers, mpp, ops
from tinyvit.configs import ViTConfig
from tinyvit.vit import init_vit, patchify, vit

TINY = ViTConfig(name="tiny", image_size=8, patch_size=2, channels=3, width=6, depth=2,
                 heads=2, mlp_dim=5, num_classes=3)
BOUND = 1e-7  # float64, h = 1e-6: correct gradients ~1e-9, wrong ones ~1e-1


def tiny_labels(cfg=TINY, b=3, seed=1):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (b, cfg.image_size, cfg.image_size, cfg.channels), np.uint8)
    action, source = mpp.corruption_plan(rng, b, cfg.num_patches)
    labels = mpp.pack_labels(mpp.color_targets(images, cfg.patch_size), action, source)
    return images, labels


# ---------------------------------------------------------------- colour targets


def test_color_targets_match_a_loop_and_have_512_classes():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (2, 8, 8, 3), np.uint8)
    t = mpp.color_targets(x, 4)  # (2, 4)
    assert t.shape == (2, 4) and mpp.num_colors() == 512
    for b in range(2):
        for i in range(2):
            for j in range(2):
                mean = x[b, 4 * i:4 * i + 4, 4 * j:4 * j + 4].reshape(-1, 3).mean(0)  # (3,)
                r, g, bl = (int(m // 32) for m in mean)  # 8 bins of 32 levels
                assert t[b, i * 2 + j] == r * 64 + g * 8 + bl


def test_color_targets_extremes_and_class_colours():
    black, white = np.zeros((1, 4, 4, 3), np.uint8), np.full((1, 4, 4, 3), 255, np.uint8)
    assert mpp.color_targets(black, 4)[0, 0] == 0
    assert mpp.color_targets(white, 4)[0, 0] == 511
    red = np.zeros((1, 4, 4, 3), np.uint8)
    red[..., 0] = 200  # level 6 of 8
    assert mpp.color_targets(red, 4)[0, 0] == 6 * 64
    # The class's colour sits in its bin, so quantising it again gives the class back.
    k = np.arange(512)
    colours = mpp.color_of_class(k)  # (512, 3)
    img = np.broadcast_to(colours[:, None, None, :], (512, 2, 2, 3)).copy()
    np.testing.assert_array_equal(mpp.color_targets(img, 2)[:, 0], k)


def test_color_targets_reject_float_images():
    with pytest.raises(ValueError, match="uint8"):
        mpp.color_targets(np.zeros((1, 4, 4, 3), np.float32), 4)


# ---------------------------------------------------------------- the corruption


def test_plan_chooses_exactly_half_and_splits_80_10_10():
    rng = np.random.default_rng(0)
    action, source = mpp.corruption_plan(rng, 400, 64)
    chosen = action != mpp.NOT_CHOSEN
    assert (chosen.sum(1) == 32).all()  # exactly 50% of every image
    share = np.array([(action == a).sum() for a in (mpp.MASKED, mpp.REPLACED, mpp.KEPT)])
    share = share / chosen.sum()
    np.testing.assert_allclose(share, [0.8, 0.1, 0.1], atol=0.01)  # 12,800 chosen patches
    assert (source != np.arange(64)).all() and source.min() >= 0 and source.max() < 64
    assert len(np.unique(source)) == 64  # every other patch can be the source


def test_plan_is_seeded():
    a = mpp.corruption_plan(np.random.default_rng(3), 2, 16)
    b = mpp.corruption_plan(np.random.default_rng(3), 2, 16)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("kwargs", [dict(ratio=0.0), dict(ratio=1.5), dict(probs=(0.5, 0.5)),
                                    dict(probs=(0.8, 0.3, 0.1)), dict(n=1)])
def test_plan_errors_are_one_line_value_errors(kwargs):
    args = {**dict(rng=np.random.default_rng(0), batch=2, n=16), **kwargs}
    with pytest.raises(ValueError) as e:
        mpp.corruption_plan(**args)
    assert "\n" not in str(e.value)


def test_corrupt_replaces_exactly_the_planned_rows():
    rng = np.random.default_rng(0)
    tokens = rng.standard_normal((5, 16, 4))  # (B, N, D)
    mask = rng.standard_normal((1, 1, 4))
    action, source = mpp.corruption_plan(rng, 5, 16)
    out = mpp.corrupt(tokens, mask, action, source)
    for b in range(5):
        for i in range(16):
            want = {mpp.MASKED: mask[0, 0], mpp.REPLACED: tokens[b, source[b, i]]}.get(
                action[b, i], tokens[b, i])  # KEPT and NOT_CHOSEN stay
            np.testing.assert_array_equal(out[b, i], want)


def test_corrupt_rejects_a_plan_of_another_shape():
    with pytest.raises(ValueError, match="expected action and source of shape"):
        mpp.corrupt(np.zeros((2, 4, 3)), np.zeros((1, 1, 3)), np.zeros((2, 5), int),
                    np.zeros((2, 5), int))


# ---------------------------------------------------------------- the model and the objective


def test_nothing_chosen_is_the_plain_encoder():
    """With no corruption, encode_corrupted is the ViT's own encoder (its head on top gives
    the ViT's logits): the pre-training model is the ViT, not another network."""
    rng = np.random.default_rng(0)
    params = randomize(mpp.init_mpp(rng, TINY), rng)
    x = rng.standard_normal((2, 8, 8, 3))
    none = np.zeros((2, TINY.num_patches), int)
    z = mpp.encode_corrupted(params, x, none, none + 1, TINY)  # (2, T, D)
    head = {"w": rng.standard_normal((6, 3)), "b": rng.standard_normal(3)}
    logits = vit({**params, "head": head}, x, TINY)
    np.testing.assert_allclose(layers.linear(head, z[:, 0]), logits, rtol=1e-12)


def test_loss_is_the_cross_entropy_of_the_chosen_patches():
    rng = np.random.default_rng(0)
    params = randomize(mpp.init_mpp(rng, TINY), rng)
    images, labels = tiny_labels()
    x = images.astype(np.float64) / 255
    z = mpp.encode_corrupted(params, x, labels[..., 1], labels[..., 2], TINY)  # (B, T, D)
    rows, losses = 0, []
    for b in range(3):
        for i in range(TINY.num_patches):
            if labels[b, i, 1] != mpp.NOT_CHOSEN:
                logit = layers.linear(params["mpp_head"], z[b, 1 + i])  # (512,)
                losses.append(-np.log(ops.softmax(logit)[labels[b, i, 0]]))
                rows += 1
    assert rows == 3 * TINY.num_patches // 2
    np.testing.assert_allclose(mpp.mpp_loss(params, x, labels, TINY), np.mean(losses),
                               rtol=1e-10)


def test_init_and_to_classifier():
    params = mpp.init_mpp(np.random.default_rng(0), TINY)
    assert "head" not in params and params["mask"].shape == (1, 1, 6)
    assert params["mpp_head"]["w"].shape == (6, 512) and params["mask"].dtype == np.float32
    clf = mpp.to_classifier(params, 10)
    assert set(clf) == set(init_vit(np.random.default_rng(0), TINY))
    assert clf["head"]["w"].shape == (6, 10) and not clf["head"]["w"].any()  # zero head
    assert clf["blocks"] is params["blocks"]  # shared, not copied


def test_gap_pooling_has_no_class_token_offset():
    cfg = ViTConfig(**{**TINY.__dict__, "pool": "gap"})
    rng = np.random.default_rng(0)
    params = randomize(mpp.init_mpp(rng, cfg), rng)
    images, labels = tiny_labels(cfg)
    rows, _ = mpp.chosen_rows(labels, cfg)
    assert rows.max() < 3 * cfg.num_patches
    assert np.isfinite(mpp.mpp_loss(params, images / 255.0, labels, cfg))


@pytest.mark.parametrize("pool", ["cls", "gap"])
def test_grad_mpp_loss_every_parameter(pool, path):
    """h = 1e-5: the loss is about log(512) = 6, so rounding (~1e-16 * 6 / h) stays far below
    the bound; with h = 1e-6 the 512-column head's small entries measure ~1.5e-7."""
    cfg = ViTConfig(**{**TINY.__dict__, "pool": pool})
    rng = np.random.default_rng(0)
    params = randomize(mpp.init_mpp(rng, cfg), rng)
    images, labels = tiny_labels(cfg)
    x = images.astype(np.float64) / 128 - 1
    g = grad(mpp.mpp_loss)(params, x, labels, cfg)
    errors = check_tree(lambda: mpp.mpp_loss(params, x, labels, cfg), params, g, h=1e-5)
    assert set(errors) >= {"/mask", "/mpp_head/w", "/embed/w", "/pos"}
    assert max(errors.values()) < BOUND, errors


def test_grad_reaches_the_mask_token_only_through_masked_rows():
    rng = np.random.default_rng(0)
    params = randomize(mpp.init_mpp(rng, TINY), rng)
    images, labels = tiny_labels()
    labels[..., 1] = np.where(labels[..., 1] == mpp.MASKED, mpp.KEPT, labels[..., 1])
    g = grad(mpp.mpp_loss)(params, images / 255.0, labels, TINY)
    assert not np.asarray(g["mask"]).any()  # no MASKED row: the [mask] embedding is unused


def test_float32_gradients(path):
    params = mpp.init_mpp(np.random.default_rng(0), TINY)
    images, labels = tiny_labels()
    x = (images / 255.0).astype(np.float32)
    g = grad(mpp.mpp_loss)(params, x, labels, TINY)
    assert g["mask"].dtype == np.float32 and g["mpp_head"]["w"].dtype == np.float32
    assert g["blocks"][0]["attn"]["qkv"]["w"].dtype == np.float32


def test_labels_of_the_wrong_shape_are_one_line_errors():
    params = mpp.init_mpp(np.random.default_rng(0), TINY)
    images, labels = tiny_labels()
    for bad in (labels[..., :2], labels[:, :5]):
        with pytest.raises(ValueError, match="mpp labels: expected") as e:
            mpp.mpp_loss(params, images / 255.0, bad, TINY)
        assert "\n" not in str(e.value)


def test_targets_are_computed_on_patches_in_the_models_order():
    images, labels = tiny_labels()
    flat = patchify(images.astype(np.float64), 2).reshape(3, 16, 4, 3).mean(2)  # (B, N, C)
    np.testing.assert_array_equal(labels[..., 0], (flat // 32).astype(int) @ [64, 8, 1])
