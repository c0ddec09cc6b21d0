"""The ViT's layers and whole model: shapes, reference values, gradients, dtypes, errors."""
import numpy as np
import pytest
from autograd import grad

from gradcheck import check_tree, leaves, numerical_grad, randomize, rel_error
from tinyvit import get_config, init_vit, layers, ops
from tinyvit.configs import ViTConfig, model_names
from tinyvit.vit import attention_maps, count_params, embed, flops_per_image, param_count, loss_fn, patchify, sincos_2d, unpatchify, vit

TINY = ViTConfig(name="tiny", image_size=8, patch_size=4, channels=2, width=6, depth=2,
                 heads=2, mlp_dim=5, num_classes=3)
BOUND = 1e-7  # float64, h = 1e-6: correct gradients measure ~1e-9, wrong ones ~1e-1


def tiny_batch(cfg=TINY, b=3, seed=1):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((b, cfg.image_size, cfg.image_size, cfg.channels))
    return x, rng.integers(0, cfg.num_classes, b)


# ---------------------------------------------------------------- patchify


def test_patchify_matches_a_loop_and_inverts():
    x = np.random.default_rng(0).standard_normal((2, 8, 12, 3))
    p = patchify(x, 4)  # (2, 6, 48)
    assert p.shape == (2, 6, 48)
    for b in range(2):
        for i in range(2):
            for j in range(3):
                want = x[b, 4 * i:4 * i + 4, 4 * j:4 * j + 4, :].reshape(-1)  # (row, col, ch)
                np.testing.assert_array_equal(p[b, i * 3 + j], want)
    sq = x[:, :, :8]
    np.testing.assert_array_equal(unpatchify(patchify(sq, 4), 4, 3), sq)


# ---------------------------------------------------------------- reference forward values


def test_attention_matches_a_per_head_loop():
    rng = np.random.default_rng(2)
    d, h, n = 6, 3, 4
    p = randomize(layers.init_attention(rng, d), rng)
    x = rng.standard_normal((2, n, d))
    out = layers.attention(p, x, h)
    w, bias = p["qkv"]["w"], p["qkv"]["b"]
    hd = d // h
    for b in range(2):
        heads = []
        for i in range(h):
            cols = slice(i * hd, (i + 1) * hd)
            q = x[b] @ w[:, :d][:, cols] + bias[:d][cols]
            k = x[b] @ w[:, d:2 * d][:, cols] + bias[d:2 * d][cols]
            v = x[b] @ w[:, 2 * d:][:, cols] + bias[2 * d:][cols]
            s = q @ k.T / np.sqrt(hd)
            a = np.exp(s - s.max(1, keepdims=True))
            heads.append((a / a.sum(1, keepdims=True)) @ v)
        want = np.concatenate(heads, 1) @ p["out"]["w"] + p["out"]["b"]
        np.testing.assert_allclose(out[b], want, rtol=1e-12, atol=1e-12)


def test_layer_norm_and_gelu_reference_values():
    x = np.array([[1.0, 2.0, 3.0, 4.0]])
    y = layers.layer_norm({"g": np.ones(4), "b": np.zeros(4)}, x, eps=0.0)
    np.testing.assert_allclose(y, (x - 2.5) / np.sqrt(1.25))
    # GELU(x) ~ x Phi(x); tanh form within 1e-3 of the exact erf form at these points.
    from math import erf, sqrt
    for v in (-3.0, -1.0, 0.0, 0.5, 2.0):
        assert abs(ops.gelu(np.array(v)) - v * 0.5 * (1 + erf(v / sqrt(2)))) < 1e-3


# ---------------------------------------------------------------- gradient checks per component


def _check(f, params, bound=BOUND):
    g = grad(f)(params)
    errors = check_tree(lambda: f(params), params, g)
    assert max(errors.values()) < bound, errors


def test_grad_linear():
    rng = np.random.default_rng(3)
    p, x = randomize(layers.init_linear(rng, 4, 3), rng), rng.standard_normal((2, 5, 4))
    _check(lambda p: (layers.linear(p, x) ** 2).sum(), p)


def test_grad_layer_norm(path):
    rng = np.random.default_rng(4)
    p, x = randomize(layers.init_layer_norm(5), rng), rng.standard_normal((2, 3, 5))
    c = rng.standard_normal((2, 3, 5))
    _check(lambda p: (c * layers.layer_norm(p, x)).sum(), p)


def test_grad_attention_params_and_input(path):
    rng = np.random.default_rng(5)
    p = randomize(layers.init_attention(rng, 6), rng)
    c = rng.standard_normal((2, 4, 6))
    x = rng.standard_normal((2, 4, 6))
    _check(lambda t: (c * layers.attention(t["p"], t["x"], 2)).sum(), {"p": p, "x": x})


def test_grad_mlp(path):
    rng = np.random.default_rng(6)
    p, x = randomize(layers.init_mlp(rng, 4, 7), rng), rng.standard_normal((2, 3, 4))
    c = rng.standard_normal((2, 3, 4))
    _check(lambda t: (c * layers.mlp(t["p"], t["x"])).sum(), {"p": p, "x": x})


def test_grad_block(path):
    rng = np.random.default_rng(7)
    p, x = randomize(layers.init_block(rng, 6, 5), rng), rng.standard_normal((2, 3, 6))
    c = rng.standard_normal((2, 3, 6))
    _check(lambda t: (c * layers.block(t["p"], t["x"], 3)).sum(), {"p": p, "x": x})


def test_grad_dropout_uses_the_same_mask_each_call():
    x = np.random.default_rng(8).standard_normal((3, 4))
    f = lambda x: (layers.dropout(np.random.default_rng(0), x, 0.5, True) ** 2).sum()
    num = numerical_grad(lambda: f(x), x, range(x.size))
    assert rel_error(grad(f)(x).ravel(), num) < BOUND
    y = layers.dropout(np.random.default_rng(0), x, 0.5, True)
    assert set(np.unique(np.round(y / x, 12))) <= {0.0, 2.0}  # dropped or scaled by 1/(1-p)
    assert layers.dropout(None, x, 0.5, False) is x  # identity at test time


@pytest.mark.parametrize("pool", ["cls", "gap"])
@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_grad_whole_model_loss(pool, smoothing, path):
    """Every parameter of the whole ViT, through the loss (the fast VJPs included)."""
    cfg = ViTConfig(**{**TINY.__dict__, "pool": pool})
    rng = np.random.default_rng(9)
    params = randomize(init_vit(rng, cfg, np.float64), rng)
    x, y = tiny_batch(cfg)
    _check(lambda p: loss_fn(p, x, y, cfg, smoothing), params)


@pytest.mark.parametrize("pool", ["cls", "gap"])
def test_grad_whole_model_with_sincos_positions(pool, path):
    cfg = ViTConfig(**{**TINY.__dict__, "width": 8, "pool": pool, "pos": "sincos"})
    rng = np.random.default_rng(11)
    params = randomize(init_vit(rng, cfg, np.float64), rng)
    assert "pos" not in params
    x, y = tiny_batch(cfg)
    _check(lambda p: loss_fn(p, x, y, cfg, 0.1), params)


def test_sincos_positions_are_big_visions_formula():
    """posemb_sincos_2d of big_vision (Beyer et al. 2022), written out per patch."""
    grid, d = 3, 8
    pe = sincos_2d(grid, d)
    assert pe.shape == (grid * grid, d)
    omega = 1.0 / 10000.0 ** (np.arange(2) / 1.0)  # D/4 = 2 frequencies: 1 and 1e-4
    for y in range(grid):
        for x in range(grid):
            want = np.concatenate([np.sin(x * omega), np.cos(x * omega), np.sin(y * omega),
                                   np.cos(y * omega)])
            np.testing.assert_allclose(pe[y * grid + x], want, rtol=1e-12, atol=1e-15)
    cfg = ViTConfig(**{**TINY.__dict__, "width": 8, "pos": "sincos"})
    z = embed(init_vit(np.random.default_rng(0), cfg), np.zeros((1, 8, 8, 2), np.float32), cfg)
    assert z.dtype == np.float32  # zero images: E x = 0, so z_0 = [class token; E_pos]
    np.testing.assert_allclose(z[0, 1:], sincos_2d(2, 8), rtol=1e-6)
    np.testing.assert_array_equal(z[0, 0], 0.0)  # the class token (0) gets position 0


def test_grad_whole_model_with_dropout(path):
    cfg = ViTConfig(**{**TINY.__dict__, "dropout": 0.2})
    rng = np.random.default_rng(10)
    params = randomize(init_vit(rng, cfg, np.float64), rng)
    x, y = tiny_batch(cfg)
    _check(lambda p: loss_fn(p, x, y, cfg, 0.1, True, np.random.default_rng(5)), params)


# ---------------------------------------------------------------- dtypes, shapes, counts


@pytest.mark.parametrize("pool", ["cls", "gap"])
def test_float32_gradients_at_every_parameter(pool, path):
    cfg = ViTConfig(**{**TINY.__dict__, "pool": pool, "dropout": 0.1})
    params = init_vit(np.random.default_rng(0), cfg)  # float32
    x, y = tiny_batch(cfg)
    g = grad(loss_fn)(params, x.astype(np.float32), y, cfg, 0.1, True, np.random.default_rng(1))
    bad = [(k, v.dtype) for k, v in leaves(g) if v.dtype != np.float32]
    assert not bad
    assert loss_fn(params, x.astype(np.float32), y, cfg).dtype == np.float32


def test_logits_shape_and_attention_maps():
    cfg = TINY
    params = init_vit(np.random.default_rng(0), cfg)
    x, _ = tiny_batch(cfg, b=5)
    logits, maps = attention_maps(params, x.astype(np.float32), cfg)
    assert logits.shape == (5, 3) and len(maps) == cfg.depth
    assert maps[0].shape == (5, cfg.heads, cfg.num_tokens, cfg.num_tokens)
    np.testing.assert_allclose(maps[0].sum(-1), 1.0, rtol=1e-5)


@pytest.mark.parametrize("name,count", [
    ("vit-ti16", 5_717_416), ("vit-s16", 22_050_664), ("vit-b16", 86_567_656),
    ("vit-b32", 88_224_232), ("vit-l16", 304_326_632), ("vit-h14", 632_045_800)])
def test_parameter_counts_match_the_official_models(name, count):
    """Counts of the official ImageNet-1k models (224 px, 1000 classes), as timm reports them."""
    assert param_count(get_config(name)) == count


@pytest.mark.parametrize("name", ["vit-ti16", "vit-s32", "vit-cifar-tiny"])
@pytest.mark.parametrize("pool", ["cls", "gap"])
@pytest.mark.parametrize("pos", ["learned", "sincos"])
def test_param_count_formula_equals_a_real_init(name, pool, pos):
    cfg = get_config(name, pool=pool, pos=pos)
    assert count_params(init_vit(np.random.default_rng(0), cfg)) == param_count(cfg)


def test_flops_of_vit_b16():
    # ViT-B/16 at 224 px: 17.6 G multiply-adds (as reported by timm / fvcore "GFLOPs").
    assert abs(flops_per_image(get_config("vit-b16")) / 1e9 - 17.56) < 0.05


# ---------------------------------------------------------------- errors


def test_config_errors_are_one_line_value_errors():
    cases = [
        (dict(image_size=30, patch_size=4), "patch size 4 must divide image size 30"),
        (dict(width=10, heads=4), "width 10 must be divisible by heads 4"),
        (dict(pool="max"), "pool"),
        (dict(depth=0), "depth"),
        (dict(pos="rope"), "pos: expected one of 'learned', 'sincos', found 'rope'"),
        (dict(width=6, heads=2, pos="sincos"), "pos 'sincos': expected a width divisible by 4"),
    ]
    for kwargs, msg in cases:
        with pytest.raises(ValueError, match=msg) as e:
            ViTConfig(**kwargs)
        assert "\n" not in str(e.value)
    with pytest.raises(ValueError, match="unknown model 'vit-q16'") as e:
        get_config("vit-q16")
    assert "vit-b16" in str(e.value) and "\n" not in str(e.value)
    assert "vit-cifar-tiny" in model_names()


@pytest.mark.parametrize("name", ["no-such-model", "cnn-nope", "hybrid-nope", "vit-q16"])
def test_an_unknown_model_lists_every_family(name):
    """Whichever family the name looks like, the error names every family's presets."""
    from tinyvit.configs import CNN_PRESETS, HYBRID_PRESETS
    from tinyvit.run import models

    with pytest.raises(ValueError) as e:
        models.build(name)
    text = str(e.value)
    assert text.startswith(f"unknown model {name!r}") and "\n" not in text
    for preset in [*model_names(), *CNN_PRESETS, *HYBRID_PRESETS]:
        assert preset in text, preset


@pytest.mark.parametrize("shape", [(2, 16, 16, 2), (2, 8, 8, 3), (8, 8, 2), (2, 2, 8, 8)])
def test_wrong_image_shapes_are_one_line_value_errors(shape):
    params = init_vit(np.random.default_rng(0), TINY)
    with pytest.raises(ValueError, match=r"expected images of shape \(B, 8, 8, 2\)") as e:
        vit(params, np.zeros(shape, np.float32), TINY)
    assert "found" in str(e.value) and "\n" not in str(e.value)
