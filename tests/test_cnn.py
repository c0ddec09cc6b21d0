"""The CNN baseline: every fast primitive equals its plain formula (values and autograd
gradients), gradients match centred finite differences (float64, tiny shapes, fixed seeds),
float32 stays float32, shapes / parameter counts / errors, and parity with torch."""
import dataclasses

import numpy as np
import pytest
from autograd import grad, value_and_grad
from autograd.tracer import getval

from gradcheck import check_tree, leaves, numerical_grad, randomize, rel_error
from tinyvit import cnn, configs
from tinyvit.fast import cnn as fast_cnn
from tinyvit.fast import conv as fast_conv
from tinyvit.run import models

FD_BOUND = 1e-6  # float64, h = 1e-6: a correct gradient gives ~1e-9, a wrong one ~1e-1

# A tiny model for the whole-network checks: 8x8x2 images, two stages (8 -> 4 -> 2 pixels).
TINY = dict(image_size=8, channels=2, stem=4, widths=(4, 8), depth=2, groups=2, num_classes=3)


def tiny_cfg(**changes):
    return configs.CNNConfig(name="cnn-test", **{**TINY, **changes})


def xent(logits, labels):
    """Mean softmax cross-entropy (the tests' own; the library's lives in tinyvit.ops/losses)."""
    z = logits - getval(logits).max(-1, keepdims=True)  # (B, K), the shift is a constant
    log_p = z - np.log(np.exp(z).sum(-1, keepdims=True))  # (B, K)
    onehot = labels[:, None] == np.arange(logits.shape[-1])[None, :]  # (B, K)
    return -(log_p * onehot).sum() * (1.0 / logits.shape[0])


def weighted(f, shape_seed=1):
    """Scalar loss sum(W * f(x)) for a fixed random cotangent W of f's output shape."""
    def loss(*args):
        y = f(*args)
        w = np.random.default_rng(shape_seed).standard_normal(y.shape).astype(getval(y).dtype)
        return (w * y).sum()
    return loss


rng = np.random.default_rng(0)
X = rng.standard_normal((2, 6, 4, 3))  # (B, H, W, C) float64, H != W on purpose
X_MANY = rng.standard_normal((fast_cnn._CHUNK + 3, 3, 2, 2))  # col2im works in chunks of images
X_POOL = rng.standard_normal((2, 6, 4, 3))
G = rng.standard_normal(6)  # GroupNorm scale for 6 channels
BIAS = rng.standard_normal(6)
X_NORM = rng.standard_normal((2, 3, 4, 6)) * 2.0 + 1.0  # (B, H, W, C=6), 3 groups of 2
X_BIG = rng.standard_normal((2, 16, 20, 2))  # H*W >= fast_conv.TAPS_MIN_PIXELS: the taps path
W3 = rng.standard_normal((3, 3, 3, 4))  # kernels (k, k, Cin, Cout) for X (3 channels)
W5 = rng.standard_normal((5, 5, 3, 4))
W_BIG = rng.standard_normal((3, 3, 2, 3))
assert fast_conv.use_taps(X_BIG.shape, W_BIG.shape) and not fast_conv.use_taps(X.shape, W3.shape)

CASES = {  # name: (plain f(x), fast f(x), x)
    "im2col": (cnn.im2col, fast_cnn.im2col, X),
    "im2col/k5": (lambda x: cnn.im2col(x, 5), lambda x: fast_cnn.im2col(x, 5), X),
    "im2col/chunks": (cnn.im2col, fast_cnn.im2col, X_MANY),
    "max_pool": (cnn.max_pool, fast_cnn.max_pool, X_POOL),
    "group_norm/x": (lambda x: cnn.group_norm(x, G, BIAS, 3),
                     lambda x: fast_cnn.group_norm(x, G, BIAS, 3), X_NORM),
    "group_norm/g": (lambda g: cnn.group_norm(X_NORM, g, BIAS, 3),
                     lambda g: fast_cnn.group_norm(X_NORM, g, BIAS, 3), G),
    "group_norm/b": (lambda b: cnn.group_norm(X_NORM, G, b, 3),
                     lambda b: fast_cnn.group_norm(X_NORM, G, b, 3), BIAS),
    "batch_norm/x": (lambda x: cnn.batch_norm(x, G, BIAS),
                     lambda x: fast_cnn.batch_norm(x, G, BIAS), X_NORM),
    "batch_norm/g": (lambda g: cnn.batch_norm(X_NORM, g, BIAS),
                     lambda g: fast_cnn.batch_norm(X_NORM, g, BIAS), G),
    "batch_norm/b": (lambda b: cnn.batch_norm(X_NORM, G, b),
                     lambda b: fast_cnn.batch_norm(X_NORM, G, b), BIAS),
    "conv/x": (lambda x: cnn.conv({"w": W3}, x), lambda x: fast_conv.conv({"w": W3}, x), X),
    "conv/w": (lambda w: cnn.conv({"w": w}, X), lambda w: fast_conv.conv({"w": w}, X), W3),
    "conv/k5": (lambda x: cnn.conv({"w": W5}, x, 5), lambda x: fast_conv.conv({"w": W5}, x, 5),
                X),
    "conv/taps/x": (lambda x: cnn.conv({"w": W_BIG}, x),
                    lambda x: fast_conv.conv({"w": W_BIG}, x), X_BIG),
    "conv/taps/w": (lambda w: cnn.conv({"w": w}, X_BIG),
                    lambda w: fast_conv.conv({"w": w}, X_BIG), W_BIG),
    "conv/taps/k5": (lambda w: cnn.conv({"w": w}, X_BIG, 5),
                     lambda w: fast_conv.conv({"w": w}, X_BIG, 5),
                     rng.standard_normal((5, 5, 2, 3))),
}


# ---------------------------------------------------------------------------------------------
# Primitives
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", CASES)
def test_primitive_vjp_equals_autograd_of_plain(name):
    plain, fast, x = CASES[name]
    np.testing.assert_allclose(fast(x), plain(x), rtol=1e-12, atol=1e-12)  # same function
    assert rel_error(grad(weighted(fast))(x), grad(weighted(plain))(x)) < 1e-12


@pytest.mark.parametrize("name", CASES)
@pytest.mark.parametrize("which", ["plain", "fast"])
def test_primitive_gradient_matches_finite_differences(name, which):
    plain, fast, x = CASES[name]
    f = weighted(plain if which == "plain" else fast)
    x = x.copy()
    num = numerical_grad(lambda: f(x), x, range(x.size))
    assert rel_error(grad(f)(x).ravel(), num) < FD_BOUND


def test_wide_outputs_take_im2col_on_big_images_with_the_same_values_and_gradients():
    w_wide = rng.standard_normal((3, 3, 2, fast_conv.TAPS_MAX_OUT))  # O channels: im2col's
    assert not fast_conv.use_taps(X_BIG.shape, w_wide.shape)
    assert fast_conv.use_taps(X_BIG.shape, w_wide[..., :-1].shape)  # one fewer: the taps
    for w in (w_wide, w_wide[..., :-1]):
        def plain(x, w=w):
            return cnn.conv({"w": w}, x)

        def fast(x, w=w):
            return fast_conv.conv({"w": w}, x)

        np.testing.assert_allclose(fast(X_BIG), plain(X_BIG), rtol=1e-12, atol=1e-12)
        assert rel_error(grad(weighted(fast))(X_BIG), grad(weighted(plain))(X_BIG)) < 1e-12


def test_im2col_rows_are_the_zero_padded_neighbourhoods():
    cols = fast_cnn.im2col(X)  # (B*H*W, 9*C)
    b, h, w, c = X.shape
    xp = np.pad(X, ((0, 0), (1, 1), (1, 1), (0, 0)))
    for bi, y, x in [(0, 0, 0), (1, 5, 3), (0, 2, 1)]:  # corners have zeros from the padding
        row = cols[(bi * h + y) * w + x]
        np.testing.assert_array_equal(row, xp[bi, y:y + 3, x:x + 3, :].reshape(-1))


def test_conv_gradient_matches_finite_differences(path):
    """The whole convolution (im2col -> matmul -> + b) w.r.t. input, kernel and bias."""
    r = np.random.default_rng(3)
    p = {"w": r.standard_normal((3, 3, 3, 5)), "b": r.standard_normal(5)}
    x = r.standard_normal((2, 5, 4, 3))
    f = weighted(lambda p, x: cnn.conv(p, x))
    gp, gx = grad(f, (0, 1))(p, x)
    errors = check_tree(lambda: f(p, x), p, gp, max_entries=1000)
    errors["x"] = rel_error(gx.ravel(), numerical_grad(lambda: f(p, x), x, range(x.size)))
    assert max(errors.values()) < FD_BOUND, errors


def test_max_pool_ties_go_to_one_corner_deterministically():
    x = np.zeros((1, 4, 4, 2), np.float32)
    x[0, 2:, 2:, 1] = [[5.0, 7.0], [7.0, 7.0]]  # a three-way tie for the max of one block
    g = np.arange(1, 9, dtype=np.float32).reshape(1, 2, 2, 2)
    _, vjp_input = value_and_grad(lambda x: (fast_cnn.max_pool(x) * g).sum())(x)
    assert vjp_input.dtype == np.float32
    np.testing.assert_array_equal(vjp_input.sum((1, 2)), g.sum((1, 2)))  # no gradient lost
    # all-equal blocks and the tie: the first maximum in row-major order gets it all
    expect = np.zeros_like(x)
    expect[0, ::2, ::2, 0] = g[0, :, :, 0]
    expect[0, 0:2:2, 0:4:2, 1] = g[0, 0, :, 1]
    expect[0, 2, 0, 1] = g[0, 1, 0, 1]
    expect[0, 2, 3, 1] = g[0, 1, 1, 1]  # block (1, 1): 5 7 / 7 7 -> the corner (0, 1)
    np.testing.assert_array_equal(vjp_input, expect)


def test_primitives_keep_float32():
    x = X.astype(np.float32)
    xn, g, b = X_NORM.astype(np.float32), G.astype(np.float32), BIAS.astype(np.float32)
    w3, w_big = W3.astype(np.float32), W_BIG.astype(np.float32)
    fns = {"im2col": (fast_cnn.im2col, x), "max_pool": (fast_cnn.max_pool, x),
           "group_norm": (lambda x: fast_cnn.group_norm(x, g, b, 3), xn),
           "batch_norm": (lambda x: fast_cnn.batch_norm(x, g, b), xn),
           "conv": (lambda x: fast_conv.convolve(x, w3), x),
           "conv/taps": (lambda x: fast_conv.convolve(x, w_big), X_BIG.astype(np.float32)),
           "conv/taps/w": (lambda w: fast_conv.convolve(X_BIG.astype(np.float32), w), w_big)}
    for name, (f, arg) in fns.items():
        assert f(arg).dtype == np.float32, name
        assert grad(weighted(f))(arg).dtype == np.float32, name
    for norm in (lambda g, b: fast_cnn.group_norm(xn, g, b, 3),
                 lambda g, b: fast_cnn.batch_norm(xn, g, b)):
        dg, db = grad(weighted(norm), (0, 1))(g, b)
        assert dg.dtype == db.dtype == np.float32


# ---------------------------------------------------------------------------------------------
# The whole network
# ---------------------------------------------------------------------------------------------


# BatchNorm trains on the batch's statistics; the whitening stem (8C = 16 channels) is fixed.
BATCHNORM = dict(norm="batch", act="gelu")
WHITENED = dict(BATCHNORM, stem=16, whiten=True)


@pytest.mark.parametrize("changes", [dict(groups=2), dict(groups=0), BATCHNORM, WHITENED],
                         ids=["groupnorm", "no-norm", "batchnorm-gelu", "whitened"])
def test_network_gradient_matches_finite_differences(changes, path):
    cfg = tiny_cfg(**changes)
    r = np.random.default_rng(1)
    params = randomize(cnn.init_cnn(r, cfg), r, 0.5)  # float64, head not zero
    images = r.standard_normal((3, 8, 8, 2))
    labels = np.array([0, 2, 1])
    f = lambda p: xent(cnn.cnn(p, images, cfg, train=True), labels)
    grads = grad(f)(params)
    errors = check_tree(lambda: f(params), params, grads, max_entries=25)
    assert len(errors) == len(list(leaves(params)))  # every parameter was checked
    if cfg.whiten:  # the fixed kernel changes the loss, but by design passes no gradient
        assert errors.pop("/stem/fixed") == 1.0 and not grads["stem"]["fixed"].any()
    assert max(errors.values()) < FD_BOUND, errors


@pytest.mark.parametrize("changes", [{}, WHITENED], ids=["groupnorm", "whitened-batchnorm"])
def test_float32_gradients_for_every_parameter(changes, path):
    cfg = tiny_cfg(dropout=0.1, **changes)
    params = cnn.init_cnn(np.random.default_rng(0), cfg)
    images = np.random.default_rng(1).standard_normal((4, 8, 8, 2)).astype(np.float32)
    f = lambda p: xent(cnn.cnn(p, images, cfg, train=True, rng=np.random.default_rng(2)),
                       np.array([0, 1, 2, 0]))
    loss, grads = value_and_grad(f)(params)
    assert np.asarray(loss).dtype == np.float32
    for (path, p), (_, g) in zip(leaves(params), leaves(grads)):
        assert p.dtype == np.float32 and g.dtype == np.float32, path
        assert g.shape == p.shape, path


def test_output_shape_and_parameter_layout():
    cfg = configs.get_cnn_config("cnn-small", num_classes=7)
    params = cnn.init_cnn(np.random.default_rng(0), cfg)
    logits = cnn.cnn(params, np.zeros((2, 32, 32, 3), np.float32), cfg)
    assert logits.shape == (2, 7) and logits.dtype == np.float32
    assert params["stem"]["w"].shape == (3, 3, 3, 32)
    assert [len(s) for s in params["stages"]] == [cfg.depth] * len(cfg.widths)
    assert params["stages"][1][0]["w"].shape == (3, 3, 32, 64)
    assert params["head"]["w"].shape == (128, 7)
    assert cnn.cnn(params, np.zeros((1, 32, 32, 3), np.float32), cfg, train=True).shape == (1, 7)


@pytest.mark.parametrize("name", list(configs.CNN_PRESETS))
def test_parameter_counts(name):
    cfg = configs.get_cnn_config(name)
    assert cnn.count_params(cnn.init_cnn(np.random.default_rng(0), cfg)) == cnn.param_count(cfg)
    if name == configs.DEFAULT_CNN:
        assert 100_000 <= cnn.param_count(cfg) <= 500_000


# ---------------------------------------------------------------------------------------------
# BatchNorm's population statistics and the whitening stem: constants of the parameters
# ---------------------------------------------------------------------------------------------


def whitened_model(seed=0, n=12):
    """A whitened BatchNorm CNN, its (normalised-like) images and labels, whitening set."""
    cfg = tiny_cfg(**WHITENED)
    r = np.random.default_rng(seed)
    images = (r.standard_normal((n, 8, 8, 2)) * [1.0, 3.0] + 0.5).astype(np.float32)
    params = cnn.init_whitening(cnn.init_cnn(r, cfg), images, cfg)
    params["head"]["w"] += r.standard_normal(params["head"]["w"].shape).astype(np.float32)
    return cfg, params, images, r.integers(0, 3, n)


def test_statistics_and_the_whitening_kernel_get_zero_gradient_and_no_decay():
    from tinyvit.optim import default_decay_mask
    from tinyvit.tree import flatten

    cfg, params, images, labels = whitened_model()
    for train in (True, False):
        grads = flatten(grad(lambda p: xent(cnn.cnn(p, images, cfg, train), labels))(params))
        frozen = [k for k in grads if k.rsplit("/", 1)[-1] in ("mean", "var", "fixed")]
        assert len(frozen) == 2 * 4 + 1  # 4 BatchNorms (2 stages x 2 convs; none in the stem)
        for k in frozen:
            assert not grads[k].any(), k
        assert grads["stages/0/0/norm/g"].any()
    mask = flatten(default_decay_mask(params))
    assert not any(mask[k] for k in frozen) and mask["stages/0/0/w"]


def test_population_stats_are_the_exact_statistics_over_all_images():
    cfg, params, images, _ = whitened_model()
    whole = cnn.population_stats(params, images, cfg, batch_size=len(images))
    parts = cnn.population_stats(params, images, cfg, batch_size=5)  # 5 + 5 + 2: combined
    assert params["stages"][0][0]["norm"]["mean"].any() == False  # noqa: E712 (input kept)
    for s in range(2):
        for i in range(2):
            a, b = whole["stages"][s][i]["norm"], parts["stages"][s][i]["norm"]
            assert a["mean"].dtype == np.float32 and a["var"].any()
            if s == 0 and i == 0:  # the first BatchNorm's input does not depend on the batches
                np.testing.assert_allclose(b["mean"], a["mean"], rtol=1e-5, atol=1e-6)
                np.testing.assert_allclose(b["var"], a["var"], rtol=1e-5, atol=1e-6)
    # the first BatchNorm's statistics are those of its input: the pooled first convolution
    x = cnn.max_pool(cnn.conv(params["stages"][0][0], cnn.act(cnn.whiten(params["stem"], images,
                                                                           cfg), cfg)))
    xr = x.reshape(-1, x.shape[-1]).astype(np.float64)
    np.testing.assert_allclose(whole["stages"][0][0]["norm"]["mean"], xr.mean(0), rtol=1e-5)
    np.testing.assert_allclose(whole["stages"][0][0]["norm"]["var"], xr.var(0), rtol=1e-4)
    # with statistics of exactly this batch, evaluation computes what training computes
    np.testing.assert_allclose(cnn.cnn(whole, images, cfg), cnn.cnn(params, images, cfg, True),
                               rtol=1e-4, atol=1e-5)


def test_population_stats_in_threads_are_the_batches_statistics_combined_in_order(path):
    from tinyvit.fast import map_in_threads
    from tinyvit.tree import flatten

    cfg, params, images, _ = whitened_model(n=23)
    seen = []

    def recorded(f, batches):  # the plain map, remembering which batches it ran
        seen.extend(len(b) for b in batches)
        return map(f, batches)

    one = flatten(cnn.population_stats(params, images, cfg, batch_size=5, map_batches=recorded))
    assert seen == [5, 5, 5, 5, 3]  # the batches the statistics are defined over
    two = flatten(cnn.population_stats(params, images, cfg, batch_size=5,
                                       map_batches=lambda f, b: map_in_threads(f, b, 2)))
    many = np.concatenate([images] * 12)[:260]  # batches of 128, 128, 4
    model = models.from_config(cfg)  # what training calls: the batches in threads
    three = flatten(model.population_stats(params, many))
    whole = flatten(cnn.population_stats(params, many, cfg))
    for k in one:
        np.testing.assert_allclose(two[k], one[k], rtol=1e-6, atol=1e-7)  # BLAS's rounding
        np.testing.assert_allclose(three[k], whole[k], rtol=1e-6, atol=1e-7)
    one_batch = flatten(cnn.population_stats(params, images, cfg, batch_size=23))
    assert not np.allclose(one["stages/1/1/norm/var"], one_batch["stages/1/1/norm/var"])


def test_population_stats_leave_other_models_alone():
    cfg = tiny_cfg()
    params = cnn.init_cnn(np.random.default_rng(0), cfg)
    assert cnn.population_stats(params, np.zeros((2, 8, 8, 2)), cfg) is params
    assert cnn.init_whitening(params, np.zeros((2, 8, 8, 2)), cfg) is params


def test_whitening_decorrelates_the_patches():
    cfg, params, images, _ = whitened_model(n=40)
    kernel = params["stem"]["fixed"]  # (2, 2, C, 8C)
    assert kernel.shape == (2, 2, 2, 16) and kernel.dtype == np.float32
    np.testing.assert_array_equal(kernel[..., 8:], -kernel[..., :8])
    out = cnn.whiten(params["stem"], images, cfg)[:, :-1, :-1, :8]  # valid 2x2 windows only
    flat = out.reshape(-1, 8).astype(np.float64)
    cov = flat.T @ flat / len(flat)  # second moments, as the kernel was computed
    np.testing.assert_allclose(cov, np.eye(8), atol=2e-3)
    # the output pixel (h, w) reads the 2x2 window whose top-left pixel is (h, w)
    window = images[0, 2:4, 3:5].reshape(-1).astype(np.float64)  # (row, col, channel)
    np.testing.assert_allclose(cnn.whiten(params["stem"], images, cfg)[0, 2, 3],
                               window @ kernel.reshape(8, 16), rtol=1e-4, atol=1e-5)


def test_model_registry_builds_the_cnn():
    model = models.build("cnn-small", num_classes=4)
    params = model.init(np.random.default_rng(0))
    assert model.apply(params, np.zeros((2, 32, 32, 3), np.float32)).shape == (2, 4)
    assert models.from_config_dict(models.config_dict(model)).cfg == model.cfg


def test_train_and_eval_agree_without_dropout():
    cfg = tiny_cfg()
    params = cnn.init_cnn(np.random.default_rng(0), cfg)
    params["head"]["w"] += 0.1
    x = np.random.default_rng(1).standard_normal((2, 8, 8, 2)).astype(np.float32)
    np.testing.assert_array_equal(cnn.cnn(params, x, cfg),
                                  cnn.cnn(params, x, cfg, train=True, rng=np.random.default_rng(0)))


@pytest.mark.parametrize("shape, match", [
    ((2, 32, 32), r"expected images of shape \(B, 32, 32, 3\).*found \(2, 32, 32\)"),
    ((2, 32, 32, 1), r"expected .*\(B, 32, 32, 3\).*found \(2, 32, 32, 1\)"),
    ((2, 3, 32, 32), r"expected .*\(NHWC\), found \(2, 3, 32, 32\)"),
    ((2, 28, 28, 3), r"found \(2, 28, 28, 3\)"),
])
def test_wrong_images_raise_one_line_errors(shape, match):
    cfg = configs.get_cnn_config("cnn-tiny")
    params = cnn.init_cnn(np.random.default_rng(0), cfg)
    with pytest.raises(ValueError, match=match) as e:
        cnn.cnn(params, np.zeros(shape, np.float32), cfg)
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("kwargs, match", [
    (dict(image_size=36), r"divisible by 8 .*found remainder 4"),
    (dict(groups=3), r"groups: expected a divisor of stem 16 .*found 3"),
    (dict(kernel=4), r"kernel: expected an odd size, found 4"),
    (dict(widths=()), r"widths: expected positive ints, found \(\)"),
    (dict(dropout=1.0), r"dropout: expected a rate in \[0, 1\), found 1.0"),
    (dict(norm="layer"), r"norm: expected one of 'group', 'batch', found 'layer'"),
    (dict(act="tanh"), r"act: expected one of 'relu', 'gelu', found 'tanh'"),
    (dict(whiten=True), r"stem: the whitening stem has 2 x 4C = 24 channels, found 16"),
])
def test_bad_configs_raise_one_line_errors(kwargs, match):
    with pytest.raises(ValueError, match=match) as e:
        configs.get_cnn_config("cnn-tiny", **kwargs)
    assert "\n" not in str(e.value)


def test_unknown_preset():
    with pytest.raises(ValueError,
                       match=r"unknown model 'cnn-huge'; expected a ViT .*, a CNN \(cnn-tiny"):
        configs.get_cnn_config("cnn-huge")


def test_config_round_trips_through_json_lists():
    cfg = configs.get_cnn_config("cnn-small")
    d = {**dataclasses.asdict(cfg), "widths": [32, 64, 128]}
    assert configs.CNNConfig(**d) == cfg


# ---------------------------------------------------------------------------------------------
# Parity with torch (NCHW, weights (Cout, Cin, kh, kw))
# ---------------------------------------------------------------------------------------------


def test_conv_pool_and_group_norm_match_torch():
    torch = pytest.importorskip("torch")
    r = np.random.default_rng(0)
    x = r.standard_normal((2, 8, 6, 3)).astype(np.float32)  # (B, H, W, Cin)
    p = {"w": r.standard_normal((3, 3, 3, 4)).astype(np.float32),  # (kh, kw, Cin, Cout)
         "b": r.standard_normal(4).astype(np.float32)}
    g, b = r.standard_normal(4).astype(np.float32), r.standard_normal(4).astype(np.float32)

    conv = torch.nn.Conv2d(3, 4, kernel_size=3, padding=1)
    with torch.no_grad():
        conv.weight.copy_(torch.from_numpy(p["w"].transpose(3, 2, 0, 1).copy()))  # (Cout,Cin,kh,kw)
        conv.bias.copy_(torch.from_numpy(p["b"]))
        xt = torch.from_numpy(x.transpose(0, 3, 1, 2).copy())  # NCHW
        yt = conv(xt)  # (B, Cout, H, W)
        pt = torch.nn.functional.max_pool2d(yt, 2)  # (B, Cout, H/2, W/2)
        nt = torch.nn.functional.group_norm(pt, 2, torch.from_numpy(g), torch.from_numpy(b), 1e-5)
    to_nhwc = lambda t: t.numpy().transpose(0, 2, 3, 1)

    y = cnn.conv(p, x)  # (B, H, W, Cout)
    np.testing.assert_allclose(y, to_nhwc(yt), atol=1e-5, rtol=1e-5)
    pooled = fast_cnn.max_pool(y)
    np.testing.assert_allclose(pooled, to_nhwc(pt), atol=1e-5, rtol=1e-5)
    np.testing.assert_allclose(fast_cnn.group_norm(pooled, g, b, 2), to_nhwc(nt), atol=1e-5, rtol=1e-5)
