"""The small-data ingredients of the ViT (SPT, LSA, SeqPool: `ViTConfig.spt`, `.lsa`,
pool "seq"): each equals its paper's definition written as a loop, its gradient equals
centred finite differences (float64, h = 1e-6, bound 1e-7), the fast twins give the same
values and gradients, and with the knobs off today's models are exactly what they were."""
import dataclasses
import hashlib

import numpy as np
import pytest
from autograd import grad

from gradcheck import check_tree, leaves, randomize, rel_error
from tinyvit import fast, get_config, hybrid, init_vit, layers
from tinyvit.configs import HybridConfig, ViTConfig
from tinyvit.run import models
from tinyvit.tree import count_params, flatten
from tinyvit.vit import (flops_per_image, loss_fn, param_count, patch_inputs, patchify,
                         shifted_copies, vit)

TINY = ViTConfig(name="tiny", image_size=8, patch_size=4, channels=2, width=6, depth=2,
                 heads=2, mlp_dim=5, num_classes=3)
BOUND = 1e-7  # float64, h = 1e-6: correct gradients measure ~1e-9, wrong ones ~1e-1
INGREDIENTS = [dict(spt=True), dict(lsa=True), dict(pool="seq"),
               dict(spt=True, lsa=True, pool="seq"), dict(spt=True, lsa=True, pool="cls")]


def tiny_batch(cfg, b=3, seed=1):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((b, cfg.image_size, cfg.image_size, cfg.channels))
    return x, rng.integers(0, cfg.num_classes, b)


def _check(f, params, bound=BOUND):
    g = grad(f)(params)
    errors = check_tree(lambda: f(params), params, g)
    assert max(errors.values()) < bound, errors


# ---------------------------------------------------------------- the knobs off: nothing changed


# sha256 over (path, bytes) of init_vit(default_rng(0), cfg) before the knobs existed, and the
# first logits of that model (its zero head redrawn) on a fixed batch
BEFORE = {
    "vit-cifar-nano": ("9dc6a999b61a20215e17f52563ddb5536852511cda8c7a9aee0fcbe39420e105",
                       [0.2695992588996887, -0.23883536458015442, 0.6855252981185913,
                        0.6381626725196838]),
    "vit-cifar-plain": ("6b732367033c5e33becc9e81c3319edec73e4bdd623a0cc4ee645d6b47384d04",
                        [0.6923204064369202, -0.21233396232128143, -0.09425743669271469,
                         -0.7081708908081055]),
}


@pytest.mark.parametrize("name", BEFORE)
def test_defaults_keep_todays_models_bit_identical(name):
    cfg = get_config(name)
    assert (cfg.spt, cfg.lsa) == (False, False) and cfg.pool in ("cls", "gap")
    params = init_vit(np.random.default_rng(0), cfg)
    h = hashlib.sha256()
    for k, v in flatten(params).items():
        h.update(k.encode())
        h.update(np.ascontiguousarray(v).tobytes())
    assert h.hexdigest() == BEFORE[name][0]  # the same leaves, the same draws, bit for bit
    rng = np.random.default_rng(1)
    params["head"]["w"] = (0.1 * rng.standard_normal(params["head"]["w"].shape)).astype(np.float32)
    x = rng.standard_normal((2, 32, 32, 3)).astype(np.float32)
    np.testing.assert_allclose(vit(params, x, cfg)[0, :4], BEFORE[name][1], rtol=1e-5)


def test_each_knob_adds_only_its_own_parameters_drawn_after_the_others():
    for knobs in INGREDIENTS:
        cfg = dataclasses.replace(TINY, **knobs)
        plain = dataclasses.replace(TINY, pool="gap" if cfg.pool == "seq" else cfg.pool)
        base = flatten(init_vit(np.random.default_rng(0), plain))  # "seq" has no class token
        new = flatten(init_vit(np.random.default_rng(0), cfg))
        added = sorted(set(new) - set(base))
        want = (["seqpool/w"] if cfg.pool == "seq" else []) + (
            ["spt_norm/b", "spt_norm/g"] if cfg.spt else []) + (
            [f"blocks/{i}/attn/log_tau" for i in range(TINY.depth)] if cfg.lsa else [])
        assert added == sorted(want) and set(base) <= set(new), knobs
        if not cfg.spt:  # the same draws for every weight both configs have
            for k in set(base) & set(new):
                np.testing.assert_array_equal(base[k], new[k])


# ---------------------------------------------------------------- SPT


def test_shifted_copies_are_the_papers_four_diagonal_shifts():
    x = np.random.default_rng(0).standard_normal((2, 6, 5, 3))
    s = 2
    out = shifted_copies(x, s)
    assert out.shape == (2, 6, 5, 15)
    np.testing.assert_array_equal(out[..., :3], x)  # the image itself first
    # left-up, right-up, left-down, right-down: the view at (i, j) is x[i + dy s, j + dx s]
    for n, (dy, dx) in enumerate([(-1, -1), (-1, 1), (1, -1), (1, 1)]):
        view = out[..., 3 * (n + 1):3 * (n + 2)]
        for i in range(6):
            for j in range(5):
                si, sj = i + dy * s, j + dx * s
                want = x[:, si, sj] if 0 <= si < 6 and 0 <= sj < 5 else 0.0  # zeros shifted in
                np.testing.assert_array_equal(view[:, i, j], want)


def test_spt_tokens_are_a_layer_norm_of_the_shifted_patches_then_the_linear_embedding():
    cfg = dataclasses.replace(TINY, spt=True)
    params = randomize(init_vit(np.random.default_rng(0), cfg, np.float64),
                       np.random.default_rng(1))
    x, _ = tiny_batch(cfg)
    tokens = patch_inputs(params, x, cfg)
    assert tokens.shape == (3, cfg.num_patches, 5 * cfg.patch_dim) == (3, 4, 160)
    raw = patchify(shifted_copies(x, 2), 4)  # (B, N, 5 P^2 C)
    mu, var = raw.mean(-1, keepdims=True), raw.var(-1, keepdims=True)
    want = (raw - mu) / np.sqrt(var + cfg.ln_eps) * params["spt_norm"]["g"] + params["spt_norm"]["b"]
    np.testing.assert_allclose(tokens, want, rtol=1e-10, atol=1e-12)
    assert params["embed"]["w"].shape == (160, cfg.width)  # E is still one linear map


# ---------------------------------------------------------------- LSA


def test_lsa_weights_match_a_per_head_loop_with_the_diagonal_masked():
    rng = np.random.default_rng(2)
    q, k = rng.standard_normal((2, 3, 4, 5)), rng.standard_normal((2, 3, 4, 5))
    log_tau = rng.standard_normal(3)
    a = layers.lsa_weights(q, k, log_tau)
    for b in range(2):
        for h in range(3):
            s = q[b, h] @ k[b, h].T * np.exp(log_tau[h])
            s[np.eye(4, dtype=bool)] = -np.inf
            e = np.exp(s - s.max(1, keepdims=True))
            np.testing.assert_allclose(a[b, h], e / e.sum(1, keepdims=True), rtol=1e-12,
                                       atol=1e-15)
    assert np.all(a[..., np.arange(4), np.arange(4)] == 0.0)  # no token attends to itself
    np.testing.assert_allclose(a.sum(-1), 1.0, rtol=1e-12)


def test_lsa_starts_at_eq6s_temperature_so_only_the_mask_differs():
    rng = np.random.default_rng(3)
    q, k = rng.standard_normal((1, 2, 4, 8)), rng.standard_normal((1, 2, 4, 8))
    log_tau = layers.init_lsa_temperature(2, 16, np.float64)  # hd = 8
    np.testing.assert_allclose(np.exp(log_tau), 8 ** -0.5)
    s = q @ k.transpose(0, 1, 3, 2) / np.sqrt(8)
    s[..., np.arange(4), np.arange(4)] = -np.inf
    e = np.exp(s - s.max(-1, keepdims=True))
    np.testing.assert_allclose(layers.lsa_weights(q, k, log_tau), e / e.sum(-1, keepdims=True),
                               rtol=1e-12)


def test_grad_lsa_attention_params_temperature_and_input(path):
    rng = np.random.default_rng(5)
    p = randomize(layers.init_attention(rng, 6), rng)
    p["log_tau"] = rng.standard_normal(2) * 0.3
    c = rng.standard_normal((2, 4, 6))
    x = rng.standard_normal((2, 4, 6))
    _check(lambda t: (c * layers.attention(t["p"], t["x"], 2)).sum(), {"p": p, "x": x})


# ---------------------------------------------------------------- SeqPool


def test_seq_pool_is_a_softmax_over_tokens_weighted_sum():
    rng = np.random.default_rng(4)
    z, w = rng.standard_normal((3, 5, 4)), rng.standard_normal((4, 1))
    y = layers.seq_pool({"w": w}, z)
    for b in range(3):
        s = z[b] @ w[:, 0]
        a = np.exp(s - s.max()) / np.exp(s - s.max()).sum()
        np.testing.assert_allclose(y[b], a @ z[b], rtol=1e-12)
    np.testing.assert_allclose(layers.seq_pool({"w": 0 * w}, z), z.mean(1), rtol=1e-12)  # w = 0: GAP


def test_grad_seq_pool(path):
    rng = np.random.default_rng(6)
    t = {"p": {"w": rng.standard_normal((4, 1))}, "z": rng.standard_normal((2, 5, 4))}
    c = rng.standard_normal((2, 4))
    _check(lambda t: (c * layers.seq_pool(t["p"], t["z"])).sum(), t)


# ---------------------------------------------------------------- the whole model


@pytest.mark.parametrize("knobs", INGREDIENTS, ids=lambda k: "+".join(f"{a}={b}" for a, b in k.items()))
def test_grad_whole_model_with_ingredients(knobs, path):
    """Every parameter, through the loss, on the formulas and on the fast twins."""
    cfg = dataclasses.replace(TINY, **knobs)
    rng = np.random.default_rng(9)
    params = randomize(init_vit(rng, cfg, np.float64), rng)
    x, y = tiny_batch(cfg)
    _check(lambda p: loss_fn(p, x, y, cfg, 0.1), params)


def test_fast_twins_give_the_formulas_values_and_gradients_with_every_ingredient():
    cfg = dataclasses.replace(TINY, spt=True, lsa=True, pool="seq", dropout=0.1)
    rng = np.random.default_rng(10)
    params = randomize(init_vit(rng, cfg, np.float64), rng)
    x, y = tiny_batch(cfg)
    f = lambda p: loss_fn(p, x, y, cfg, 0.1, True, np.random.default_rng(3))  # noqa: E731
    with fast.formulas():
        v0, g0 = f(params), grad(f)(params)
    with fast.twins():
        v1, g1 = f(params), grad(f)(params)
    assert abs(v0 - v1) < 1e-12
    for (path_, a), (_, b) in zip(leaves(g0), leaves(g1)):
        assert rel_error(a, b) < 1e-12, path_


@pytest.mark.parametrize("knobs", INGREDIENTS)
def test_float32_stays_float32_and_counts_match(knobs):
    cfg = get_config("vit-cifar-nano", **knobs)
    params = init_vit(np.random.default_rng(0), cfg)
    assert count_params(params) == param_count(cfg)
    base = get_config("vit-cifar-nano", pool="gap" if cfg.pool == "seq" else cfg.pool)
    extra = (4 * 64 * 48 * 64 if cfg.spt else 0) + (2 * 64 * 64 if cfg.pool == "seq" else 0)
    assert flops_per_image(cfg) - flops_per_image(base) == extra  # E 5x wider; z w and a z
    x = np.random.default_rng(1).standard_normal((2, 32, 32, 3)).astype(np.float32)
    g = grad(loss_fn)(params, x, np.array([1, 2]), cfg, 0.1)
    assert not [k for k, v in leaves(g) if v.dtype != np.float32]
    assert all(np.isfinite(v).all() for _, v in leaves(g))


def test_the_hybrid_takes_lsa_and_seq_pooling_through_the_shared_encoder():
    cfg = HybridConfig(widths=(8, 8), stem=24, width=8, depth=1, heads=2, mlp_dim=8,
                       pool="seq", lsa=True, image_size=8)
    params = hybrid.init_hybrid(np.random.default_rng(0), cfg)
    assert count_params(params) == hybrid.param_count(cfg)
    assert "log_tau" in params["blocks"][0]["attn"] and "seqpool" in params
    logits, maps = hybrid.attention_maps(params, np.ones((2, 8, 8, 3), np.float32), cfg)
    assert logits.shape == (2, 10) and np.all(maps[0][..., np.arange(4), np.arange(4)] == 0)


def test_checkpoints_written_before_the_knobs_load_with_them_off():
    d = models.config_dict(models.build("vit-cifar-nano"))
    old = {k: v for k, v in d.items() if k not in ("spt", "lsa")}
    assert models.from_config_dict(old).cfg == get_config("vit-cifar-nano")
    d = models.config_dict(models.build("hybrid-tiny"))
    assert models.from_config_dict({k: v for k, v in d.items() if k != "lsa"}).cfg.lsa is False


@pytest.mark.parametrize("kwargs,msg", [
    (dict(spt=True, patch_size=1, image_size=4), "ViTConfig.spt: shifts of half a patch need"),
    (dict(lsa=True, patch_size=8, image_size=8, pool="gap"), "ViTConfig.lsa: masking the diag"),
    (dict(spt=1), "ViTConfig.spt: expected True or False, found 1"),
    (dict(lsa="yes"), "ViTConfig.lsa: expected True or False, found 'yes'"),
    (dict(pool="max"), "pool: expected 'cls', 'gap' or 'seq', found 'max'"),
])
def test_ingredient_config_errors_are_one_line_value_errors(kwargs, msg):
    with pytest.raises(ValueError, match=msg) as e:
        ViTConfig(**kwargs)
    assert "\n" not in str(e.value)


def test_masked_patch_prediction_pretrains_a_vit_with_spt_and_lsa():
    from tinyvit import mpp

    cfg = dataclasses.replace(TINY, patch_size=2, channels=3, spt=True, lsa=True)
    rng = np.random.default_rng(12)
    params = randomize(mpp.init_mpp(rng, cfg, dtype=np.float64), rng)
    images = rng.integers(0, 256, (2, 8, 8, 3), np.uint8)
    action, source = mpp.corruption_plan(rng, 2, cfg.num_patches)
    labels = mpp.pack_labels(mpp.color_targets(images, 2), action, source)
    x = (images - 128.0) / 64.0
    _check(lambda p: mpp.mpp_loss(p, x, labels, cfg), params)


def test_the_small_data_preset_is_a_pure_vit_with_all_three_ingredients():
    from tinyvit.run.recipe import recipe_for
    cfg = get_config("vit-cifar-sl")
    assert (cfg.spt, cfg.lsa, cfg.pool, cfg.pos) == (True, True, "seq", "sincos")
    params = init_vit(np.random.default_rng(0), cfg)
    # a linear patch embedding of the shifted patches, no convolution stem: every weight
    # matrix is 2-D, the embedding's maps 5 P^2 C inputs to D
    assert params["embed"]["w"].shape == (5 * 4 * 4 * 3, 128)
    assert all(v.ndim <= 2 for v in flatten(params).values())
    assert count_params(params) == 827_906
    plain = get_config("vit-cifar-plain")
    assert {f.name: getattr(cfg, f.name) for f in dataclasses.fields(cfg)
            if getattr(cfg, f.name) != getattr(plain, f.name)} == dict(
        name="vit-cifar-sl", pool="seq", spt=True, lsa=True)
    r = recipe_for("vit-cifar-sl")
    assert r == recipe_for("vit-cifar-plain").replace(epochs=18, erasing=0.25, ema=0.999)
