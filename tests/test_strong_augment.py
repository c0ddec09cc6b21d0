"""RandAugment / TrivialAugment (tinyvit/data/randaug.py), CutMix (mixing.py) and random
erasing (erasing.py): every op equals the Pillow function torchvision and timm call, shapes /
dtypes / ranges, determinism by the rng, and the labels' weights sum to 1."""
import numpy as np
import pytest
from PIL import Image, ImageEnhance, ImageOps

from tinyvit.data import augment, erasing, mixing, randaug

RNG = np.random.default_rng(0)
X = RNG.integers(0, 256, (5, 12, 10, 3), dtype=np.uint8)  # (B, H, W, C), non-square
X[1] = X[1] // 4 + 50  # a low-contrast image
FILL = (128, 128, 128)


def pillow(fn, x=X):
    return np.stack([np.asarray(fn(Image.fromarray(im))) for im in x])


def full(v, x=X):
    return np.full(len(x), v, np.float64)


ENHANCE = {"brightness": ImageEnhance.Brightness, "color": ImageEnhance.Color,
           "contrast": ImageEnhance.Contrast, "sharpness": ImageEnhance.Sharpness}
AFFINE = lambda m: lambda im: im.transform(im.size, Image.AFFINE, m,  # noqa: E731
                                           resample=Image.NEAREST, fillcolor=FILL)


@pytest.mark.parametrize("name", ENHANCE)
@pytest.mark.parametrize("factor", [0.1, 0.6, 1.0, 1.9])
def test_enhance_ops_equal_pillows(name, factor):
    got = randaug.OPS[name](X, full(factor - 1.0))
    np.testing.assert_array_equal(got, pillow(lambda im: ENHANCE[name](im).enhance(factor)))


@pytest.mark.parametrize("name,pil", [
    ("auto_contrast", ImageOps.autocontrast), ("equalize", ImageOps.equalize)])
def test_auto_contrast_and_equalize_equal_pillows(name, pil):
    flat = np.full((1, 12, 10, 3), 77, np.uint8)  # a flat image: both leave it as it is
    for x in (X, flat):
        np.testing.assert_array_equal(randaug.OPS[name](x, None), pillow(pil, x))


@pytest.mark.parametrize("bits", [1, 4, 8])
def test_posterize_equals_pillows(bits):
    got = randaug.posterize(X, full(bits))
    np.testing.assert_array_equal(got, pillow(lambda im: ImageOps.posterize(im, bits)))
    assert len(np.unique(got)) <= 2 ** bits


@pytest.mark.parametrize("threshold", [0, 128, 256])
def test_solarize_inverts_at_and_above_the_threshold_as_pillow(threshold):
    got = randaug.solarize(X, full(threshold))
    np.testing.assert_array_equal(got, pillow(lambda im: ImageOps.solarize(im, threshold)))
    np.testing.assert_array_equal(randaug.solarize(X, full(256)), X)  # nothing that high
    np.testing.assert_array_equal(randaug.solarize(X, full(0)), 255 - X)  # everything


@pytest.mark.parametrize("angle", [30.0, 90.0, -45.0, 135.0])
def test_rotate_equals_pillows_rotate_about_the_centre(angle):
    got = randaug.rotate(X, full(angle), 128)
    want = pillow(lambda im: im.rotate(angle, resample=Image.NEAREST, fillcolor=FILL))
    np.testing.assert_array_equal(got, want)


def test_a_quarter_turn_of_a_square_image_is_rot90():
    x = X[:, :10]  # (B, 10, 10, C)
    np.testing.assert_array_equal(randaug.rotate(x, full(90.0, x), 0), np.rot90(x, 1, (1, 2)))


@pytest.mark.parametrize("v", [0.3, -0.99])
def test_shears_equal_pillows_affine(v):
    np.testing.assert_array_equal(randaug.shear_x(X, full(v), 128), pillow(AFFINE((1, v, 0, 0, 1, 0))))
    np.testing.assert_array_equal(randaug.shear_y(X, full(v), 128), pillow(AFFINE((1, 0, 0, v, 1, 0))))


@pytest.mark.parametrize("v", [3, -5])
def test_translations_move_the_picture_and_fill_the_rest(v):
    tx, ty = randaug.translate_x(X, full(v), 128), randaug.translate_y(X, full(v), 128)
    if v > 0:
        np.testing.assert_array_equal(tx[:, :, v:], X[:, :, :-v])
        np.testing.assert_array_equal(ty[:, v:], X[:, :-v])
        assert (tx[:, :, :v] == 128).all() and (ty[:, :v] == 128).all()
    else:
        np.testing.assert_array_equal(tx[:, :, :v], X[:, :, -v:])
        assert (ty[:, v:] == 128).all()
    np.testing.assert_array_equal(tx, pillow(AFFINE((1, 0, -v, 0, 1, 0))))


def test_identity_and_zero_magnitudes_change_nothing():
    for name in randaug.OP_NAMES:
        if name in ("identity",) or name in randaug.SPACES["standard"]:
            values = randaug.op_values(np.random.default_rng(0), [name] * 5, np.zeros(5),
                                       "standard", 10)
            ops = np.full(5, randaug.OP_NAMES.index(name))
            np.testing.assert_array_equal(randaug.apply_ops(X, ops, values), X, err_msg=name)


def test_magnitudes_map_to_torchvisions_ranges():
    rng = np.random.default_rng(0)
    v = lambda name, m, space="standard": randaug.op_values(  # noqa: E731
        rng, [name], np.array([m]), space, 32)[0]
    assert abs(v("rotate", 30)) == 30.0 and abs(v("rotate", 30, "wide")) == 135.0
    assert abs(v("shear_x", 15)) == pytest.approx(0.15)
    assert abs(v("translate_x", 30)) == pytest.approx(150 / 331 * 32)
    assert abs(v("translate_y", 30, "wide")) == 32.0
    assert [v("posterize", m) for m in (0, 30)] == [8, 4]
    assert v("posterize", 30, "wide") == 2
    assert [v("solarize", m) for m in (0, 30)] == [255.0, 0.0]
    signs = {np.sign(v("brightness", 30)) for _ in range(20)}
    assert signs == {-1.0, 1.0}  # a random sign per image


@pytest.mark.parametrize("policy", ["rand", "trivial"])
def test_policies_keep_shape_dtype_and_are_deterministic_by_the_rng(policy):
    x = np.random.default_rng(1).integers(0, 256, (64, 32, 32, 3), dtype=np.uint8)
    f = (lambda r: randaug.rand_augment(r, x, 2, 9)) if policy == "rand" else (
        lambda r: randaug.trivial_augment(r, x))
    a, b, c = f(np.random.default_rng(5)), f(np.random.default_rng(5)), f(np.random.default_rng(6))
    assert a.shape == x.shape and a.dtype == np.uint8
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    changed = (a != x).reshape(64, -1).any(1).mean()
    assert 0.5 < changed < 1.0  # most images change; identity (and small magnitudes) keep some


def test_policy_errors_are_one_line():
    with pytest.raises(ValueError, match="rand_augment: expected uint8 RGB images"):
        randaug.rand_augment(np.random.default_rng(0), X.astype(np.float32))
    with pytest.raises(ValueError, match=r"expected n >= 0 and a magnitude in \[0, 30\]"):
        randaug.rand_augment(np.random.default_rng(0), X, 2, 31)
    with pytest.raises(ValueError, match="augmentation space: expected one of standard, wide"):
        randaug.trivial_augment(np.random.default_rng(0), X, space="huge")


# ---------------------------------------------------------------- CutMix


def test_cutmix_pastes_one_box_and_its_targets_are_the_pixel_shares():
    x = np.arange(8)[:, None, None, None].repeat(12, 1).repeat(10, 2).repeat(3, 3).astype(np.uint8)
    y = augment.one_hot(np.arange(8) % 4, 4)
    for seed in range(20):
        out, t = mixing.cutmix(np.random.default_rng(seed), x, y, 1.0)
        assert out.dtype == np.uint8 and out.shape == x.shape and t.dtype == np.float32
        np.testing.assert_allclose(t.sum(1), 1.0, rtol=1e-6)  # the weights sum to 1
        for i in range(8):
            own = (out[i, ..., 0] == i).mean()  # each image shows its own value or one other
            other = set(np.unique(out[i])) - {i}
            assert len(other) <= 1
            if other:  # the box: a rectangle, and the targets are the pixel shares
                rows, cols = np.nonzero(out[i, ..., 0] != i)
                assert (rows.max() - rows.min() + 1) * (cols.max() - cols.min() + 1) == len(rows)
                j = other.pop()
                assert t[i, i % 4] == pytest.approx(own + (i % 4 == j % 4) * (1 - own), abs=1e-6)


def test_cutmix_is_deterministic_and_alpha_zero_is_the_identity():
    y = augment.one_hot(np.arange(5), 5)
    a = mixing.cutmix(np.random.default_rng(3), X, y)
    b = mixing.cutmix(np.random.default_rng(3), X, y)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    x0, t0 = mixing.cutmix(np.random.default_rng(3), X, y, alpha=0.0)
    assert x0 is X and t0.dtype == np.float32 and np.array_equal(t0, y)


def test_mix_batch_picks_mixup_or_cutmix_with_the_switch_probability():
    y = augment.one_hot(np.arange(5), 5)
    kinds = [mixing.mix_batch(np.random.default_rng(s), X, y, 0.8, 1.0, 0.5)[0].dtype
             for s in range(200)]
    share = np.mean([k == np.uint8 for k in kinds])  # CutMix keeps uint8, mixup blends
    assert 0.35 < share < 0.65
    assert mixing.mix_batch(np.random.default_rng(0), X, y, 0.0, 1.0)[0].dtype == np.uint8
    assert mixing.mix_batch(np.random.default_rng(0), X, y, 0.8, 0.0)[0].dtype == np.float32
    for s in range(10):
        np.testing.assert_allclose(mixing.mix_batch(np.random.default_rng(s), X, y)[1].sum(1), 1,
                                   rtol=1e-6)
    kept = [mixing.mix_batch(np.random.default_rng(s), X, y, prob=0.3) for s in range(100)]
    plain = np.mean([k[0] is X and np.array_equal(k[1], y) for k in kept])
    assert 0.55 < plain < 0.85  # left as they are with probability 1 - prob
    with pytest.raises(ValueError, match="mix_batch: expected prob in"):
        mixing.mix_batch(np.random.default_rng(0), X, y, prob=-0.1)
    with pytest.raises(ValueError, match="mix_batch: expected switch_prob in"):
        mixing.mix_batch(np.random.default_rng(0), X, y, switch_prob=2.0)


# ---------------------------------------------------------------- random erasing


def test_random_erasing_replaces_one_rectangle_of_the_allowed_size_with_noise():
    x = np.zeros((400, 32, 32, 3), np.uint8)
    out = erasing.random_erasing(np.random.default_rng(0), x, p=0.5)
    assert out.shape == x.shape and out.dtype == np.uint8
    erased = (out != 0).any(-1)  # (B, H, W): noise is 0 in all three channels 1 in 16.7M
    hit = erased.reshape(400, -1).any(1)
    assert 0.4 < hit.mean() < 0.6  # with probability p
    for m in erased[hit]:
        rows, cols = np.nonzero(m.any(1))[0], np.nonzero(m.any(0))[0]
        h, w = rows.max() - rows.min() + 1, cols.max() - cols.min() + 1
        assert m.sum() >= 0.98 * h * w  # one filled rectangle
        assert 0.02 * 1024 * 0.8 <= h * w <= 0.4 * 1024 * 1.2  # its area, up to rounding
        assert 0.3 * 0.6 <= h / w <= (1 / 0.3) / 0.6  # its aspect ratio, up to rounding
    noise = out[erased].astype(np.float64)  # (pixels, C) inside the rectangles
    assert abs(noise.mean() - 127.5) < 2 and abs(noise.std() - 73.9) < 2  # uniform 0 ... 255


def test_random_erasing_is_deterministic_and_p_zero_or_one():
    a = erasing.random_erasing(np.random.default_rng(2), X)
    np.testing.assert_array_equal(a, erasing.random_erasing(np.random.default_rng(2), X))
    np.testing.assert_array_equal(erasing.random_erasing(np.random.default_rng(2), X, p=0.0), X)
    z = np.zeros((50, 32, 32, 3), np.uint8)
    assert (erasing.random_erasing(np.random.default_rng(1), z, p=1.0) != 0).reshape(50, -1).any(1).all()
    with pytest.raises(ValueError, match="random_erasing: expected p in"):
        erasing.random_erasing(np.random.default_rng(0), X, p=1.5)


# ---------------------------------------------------------------- the loss of soft targets


def test_soft_cross_entropy_is_cross_entropy_on_one_hots_and_its_gradient_checks():
    from autograd import grad

    from gradcheck import numerical_grad, rel_error
    from tinyvit import ops

    rng = np.random.default_rng(7)
    z, y = rng.standard_normal((4, 5)) * 3, np.array([0, 4, 2, 2])
    for s in (0.0, 0.1):
        assert ops.soft_cross_entropy(z, augment.one_hot(y, 5, np.float64), s) == pytest.approx(
            ops.cross_entropy(z, y, s), rel=1e-12)
    _, t = mixing.cutmix(np.random.default_rng(1), X[:4], augment.one_hot(y, 5), 1.0)
    f = lambda z: ops.soft_cross_entropy(z, t.astype(np.float64), 0.1)  # noqa: E731
    zc = z.copy()
    num = numerical_grad(lambda: f(zc), zc, range(zc.size))
    assert rel_error(grad(f)(z).ravel(), num) < 1e-8  # float64, h = 1e-6
    assert ops.soft_cross_entropy(z.astype(np.float32), t).dtype == np.float32
