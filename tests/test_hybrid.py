"""The paper's hybrid (Sec. 3.1): a CNN feature map in 1x1 patches into the ViT's encoder.
Gradients of the whole model against finite differences (float64, tiny shapes, BatchNorm on
the batch's statistics), float32, counts against a real init, shapes and one-line errors."""
import numpy as np
import pytest
from autograd import grad, value_and_grad

from gradcheck import check_tree, leaves, randomize
from tinyvit import cnn, configs, hybrid, ops, vit
from tinyvit.configs import HybridConfig

# 8x8x2 images -> whitened stem (16 channels) -> 2 stages (8 -> 4 -> 2 pixels): 4 tokens of 6
TINY = dict(image_size=8, channels=2, stem=16, widths=(4, 6), cnn_depth=1, width=8, depth=2,
            heads=2, mlp_dim=10, num_classes=3)
FD_BOUND = 1e-6


def tiny_cfg(**changes):
    return HybridConfig(name="hybrid-test", **{**TINY, **changes})


def batch(cfg, b=3, seed=1):
    r = np.random.default_rng(seed)
    return r.standard_normal((b, cfg.image_size, cfg.image_size, cfg.channels)), r.integers(
        0, cfg.num_classes, b)


@pytest.mark.parametrize("changes", [{}, dict(pool="gap", pos="sincos"),
                                     dict(norm="group", groups=2, whiten=False, act="relu")],
                         ids=["cls-batchnorm-whitened", "gap-sincos", "groupnorm"])
def test_whole_model_gradient_matches_finite_differences(changes, path):
    cfg = tiny_cfg(**changes)
    r = np.random.default_rng(2)
    params = randomize(hybrid.init_hybrid(r, cfg, np.float64), r, 0.5)
    x, y = batch(cfg)
    f = lambda p: ops.cross_entropy(hybrid.hybrid(p, x, cfg, train=True), y, 0.1)
    grads = grad(f)(params)
    errors = check_tree(lambda: f(params), params, grads, max_entries=20)
    assert len(errors) == len(list(leaves(params)))  # every parameter was checked
    if cfg.whiten:  # the fixed whitening kernel passes no gradient (cnn.whiten)
        assert errors.pop("/backbone/stem/fixed") == 1.0
        assert not grads["backbone"]["stem"]["fixed"].any()
    assert max(errors.values()) < FD_BOUND, errors


def test_float32_gradients_and_shapes(path):
    cfg = tiny_cfg(dropout=0.1)
    r = np.random.default_rng(0)
    x, y = batch(cfg, b=4)
    params = hybrid.init_whitening(hybrid.init_hybrid(r, cfg), x.astype(np.float32), cfg)
    loss, g = value_and_grad(lambda p: ops.cross_entropy(
        hybrid.hybrid(p, x.astype(np.float32), cfg, True, np.random.default_rng(1)), y))(params)
    assert np.asarray(loss).dtype == np.float32
    for (k, p), (_, gk) in zip(leaves(params), leaves(g)):
        assert p.dtype == gk.dtype == np.float32 and p.shape == gk.shape, k
    assert params["embed"]["w"].shape == (6, 8)  # E: the feature map's channels -> D
    assert params["pos"].shape == (1, 2 * 2 + 1, 8)  # 2x2 tokens + the class token
    logits, maps = hybrid.attention_maps(params, x.astype(np.float32), cfg)
    assert logits.shape == (4, 3) and maps[0].shape == (4, 2, 5, 5) and len(maps) == 2


def test_tokens_are_the_feature_map_pixels_and_the_rest_is_the_vit():
    cfg = tiny_cfg()
    r = np.random.default_rng(3)
    x, _ = batch(cfg)
    params = hybrid.init_whitening(hybrid.init_hybrid(r, cfg), x, cfg)
    params["head"]["w"] = r.standard_normal(params["head"]["w"].shape)
    fmap = cnn.feature_map(params["backbone"], x, cfg.backbone)  # (B, 2, 2, 6)
    tok = hybrid.tokens(params, x, cfg)
    np.testing.assert_array_equal(tok[:, 3], fmap[:, 1, 1])  # row-major 1x1 patches
    z = vit.transformer(params, vit.embed_patches(params, tok, cfg), cfg)
    np.testing.assert_allclose(hybrid.hybrid(params, x, cfg),
                               z[:, 0] @ params["head"]["w"] + params["head"]["b"])


def test_population_stats_reach_the_backbone():
    cfg = tiny_cfg()
    x, _ = batch(cfg, b=6)
    params = hybrid.init_hybrid(np.random.default_rng(0), cfg)
    params = hybrid.init_whitening(params, x, cfg)
    assert params["backbone"]["stem"]["fixed"].any()
    after = hybrid.population_stats(params, x, cfg)
    assert after["backbone"]["stages"][0][0]["norm"]["var"].any()
    np.testing.assert_allclose(hybrid.hybrid(after, x, cfg), hybrid.hybrid(params, x, cfg, True),
                               rtol=1e-4, atol=1e-5)
    assert not params["backbone"]["stages"][0][0]["norm"]["mean"].any()  # the input is kept


@pytest.mark.parametrize("name", list(configs.HYBRID_PRESETS))
@pytest.mark.parametrize("pos", ["learned", "sincos"])
def test_parameter_counts_equal_a_real_init(name, pos):
    cfg = configs.get_hybrid_config(name, pos=pos)
    params = hybrid.init_hybrid(np.random.default_rng(0), cfg)
    assert hybrid.count_params(params) == hybrid.param_count(cfg)


def test_flops_are_the_backbone_plus_the_encoder():
    cfg = tiny_cfg()
    convs = 4 * 2 * 16 * 64 + 9 * 16 * 4 * 64 + 9 * 4 * 6 * 16  # whitening 2x2, stage convs
    t, d, m = 5, 8, 10
    encoder = 4 * 6 * d + 2 * (t * d * 3 * d + 2 * t * t * d + t * d * d + 2 * t * d * m) + d * 3
    assert hybrid.flops_per_image(cfg) == convs + encoder


def test_family_and_presets():
    assert configs.family("hybrid-small") == "hybrid" and configs.family(tiny_cfg()) == "hybrid"
    assert configs.family("cnn-air") == "cnn" and configs.family("vit-b16") == "vit"
    cfg = configs.get_hybrid_config("hybrid-small", num_classes=7)
    assert cfg.num_classes == 7 and cfg.backbone.norm == "batch"
    d = {**cfg.__dict__, "widths": list(cfg.widths)}  # a config from JSON (lists)
    assert HybridConfig(**d) == cfg


@pytest.mark.parametrize("kwargs, match", [
    (dict(widths=(4, 6, 8, 10)), r"divisible by 16 .*found remainder 8"),
    (dict(width=10, heads=4), r"width 10 must be divisible by heads 4"),
    (dict(pool="max"), r"pool: expected 'cls', 'gap' or 'seq', found 'max'"),
    (dict(stem=8), r"stem: the whitening stem has 2 x 4C = 16 channels, found 8"),
    (dict(depth=0), r"HybridConfig.depth: expected a positive int, found 0"),
])
def test_bad_configs_raise_one_line_errors(kwargs, match):
    with pytest.raises(ValueError, match=match) as e:
        tiny_cfg(**kwargs)
    assert "\n" not in str(e.value)
    with pytest.raises(ValueError,
                       match=r"unknown model 'hybrid-huge'; expected a ViT .* or a hybrid \(hybrid-"):
        configs.get_hybrid_config("hybrid-huge")


@pytest.mark.parametrize("shape", [(2, 8, 8, 3), (2, 16, 16, 2), (8, 8, 2)])
def test_wrong_images_raise_one_line_errors(shape):
    cfg = tiny_cfg()
    params = hybrid.init_hybrid(np.random.default_rng(0), cfg)
    with pytest.raises(ValueError, match=r"hybrid-test: expected images of shape \(B, 8, 8, 2\)"
                       ) as e:
        hybrid.hybrid(params, np.zeros(shape, np.float32), cfg)
    assert "\n" not in str(e.value)
