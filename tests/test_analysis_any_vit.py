"""The analyses of lessons 8 and 9 (tinyvit/figures/analysis.py) on every kind of ViT the library
builds: a class token with learned positions, global average pooling with fixed sin-cos ones,
and sequence pooling with shifted patch tokens and locality self-attention (vit-cifar-sl's
ingredients). Values are checked against the model's own forward pass."""
import numpy as np
import pytest

from tinyvit import layers, vit
from tinyvit.configs import ViTConfig, replace
from tinyvit.figures import analysis as an

BASE = ViTConfig(name="any", image_size=12, patch_size=4, channels=3, width=8, depth=2, heads=2,
                 mlp_dim=8, num_classes=3)  # 3 x 3 grid of 4-pixel patches
CONFIGS = {
    "cls+learned": BASE,
    "gap+sincos": replace(BASE, pool="gap", pos="sincos"),
    "seq+spt+lsa": replace(BASE, pool="seq", pos="sincos", spt=True, lsa=True),
}
ids = list(CONFIGS)
cfgs = pytest.mark.parametrize("cfg", list(CONFIGS.values()), ids=ids)


def model(cfg, seed=0):
    """float64 parameters, every one random (the head and the class token too, so no value
    is trivially zero), and 4 normalised images."""
    rng = np.random.default_rng(seed)
    params = vit.init_vit(rng, cfg, np.float64)
    params = jitter(params, rng)
    x = rng.standard_normal((4, cfg.image_size, cfg.image_size, cfg.channels))
    return params, x


def jitter(tree, rng):
    if isinstance(tree, dict):
        return {k: jitter(v, rng) for k, v in tree.items()}
    if isinstance(tree, list):
        return [jitter(v, rng) for v in tree]
    return tree + 0.3 * rng.standard_normal(tree.shape)


@cfgs
def test_maps_and_readout_are_the_models_own(cfg):
    params, x = model(cfg)
    logits, maps, w = an.maps_and_readout(params, x, cfg)
    np.testing.assert_allclose(logits, vit.vit(params, x, cfg), rtol=1e-12)
    _, ref = vit.attention_maps(params, x, cfg)
    t = cfg.num_tokens
    assert len(maps) == cfg.depth and all(m.shape == (4, cfg.heads, t, t) for m in maps)
    for m, r in zip(maps, ref):
        np.testing.assert_allclose(m, r, rtol=1e-12)
        np.testing.assert_allclose(m.sum(-1), 1.0, rtol=1e-12)
        diagonal = np.einsum("bhtt->bht", m)  # (B, H, T)
        if cfg.lsa:  # LSA's weights: the diagonal masked, each token attends to others only
            assert np.all(diagonal == 0.0)
        else:
            assert np.all(diagonal > 0.0)


@cfgs
def test_pool_weights_rebuild_the_heads_input(cfg):
    params, x = model(cfg)
    z = vit.encode(params, x, cfg)  # (B, T, D)
    w = an.pool_weights(params, z, cfg)  # (B, T)
    assert w.shape == (4, cfg.num_tokens)
    np.testing.assert_allclose(w.sum(1), 1.0, rtol=1e-12)
    np.testing.assert_allclose(np.einsum("bt,btd->bd", w, z), vit.features(params, x, cfg),
                               rtol=1e-10)
    if cfg.pool == "seq":  # learned, and different for every image
        assert np.ptp(w) > 1e-3 and np.ptp(w[0] - w[1]) > 1e-6


@cfgs
def test_rollout_seen_from_the_head(cfg):
    params, x = model(cfg)
    _, maps, w = an.maps_and_readout(params, x, cfg)
    r = an.attention_rollout(maps)  # (B, T, T)
    np.testing.assert_allclose(r.sum(-1), 1.0, rtol=1e-12)
    heat = an.rollout_to_image(r, cfg, w)  # (B, g, g)
    assert heat.shape == (4, cfg.grid, cfg.grid) and np.all(heat >= 0)
    first = 1 if cfg.pool == "cls" else 0
    np.testing.assert_allclose(heat.reshape(4, -1), np.einsum("bt,bts->bs", w, r)[:, first:],
                               rtol=1e-12)
    if cfg.pool == "cls":  # the class token's row, its own column left out (the paper's Fig. 6)
        np.testing.assert_allclose(heat.reshape(4, -1), r[:, 0, 1:], rtol=1e-12)
        np.testing.assert_allclose(heat.sum((1, 2)), 1 - r[:, 0, 0], rtol=1e-12)
    else:  # no class token: the head's whole input comes from the patches
        np.testing.assert_allclose(heat.sum((1, 2)), 1.0, rtol=1e-12)
    if cfg.pool == "seq":
        with pytest.raises(ValueError, match="weights="):
            an.rollout_to_image(r, cfg)
    else:  # the weights are fixed by the pooling: the default is the same
        np.testing.assert_allclose(an.rollout_to_image(r, cfg), heat, rtol=1e-12)
    with pytest.raises(ValueError, match="weights"):
        an.rollout_to_image(r, cfg, w[:2])


@cfgs
def test_uniform_attention_distance_is_what_a_uniform_head_gets(cfg):
    t, n = cfg.num_tokens, cfg.num_patches
    if cfg.lsa:  # uniform over the other tokens: LSA's best impression of "no preference"
        a = (1 - np.eye(t)) / (t - 1)
    else:
        a = np.full((t, t), 1.0 / t)
    maps = [np.broadcast_to(a, (2, cfg.heads, t, t))] * cfg.depth
    got = an.mean_attention_distance(maps, cfg)
    np.testing.assert_allclose(got, an.uniform_attention_distance(cfg), rtol=1e-12)
    d = an.patch_distances(cfg)
    expected = d.sum() / (n * (n - 1)) if cfg.lsa else d.mean()
    np.testing.assert_allclose(an.uniform_attention_distance(cfg), expected, rtol=1e-12)


@cfgs
def test_position_embeddings_are_what_the_model_adds(cfg):
    params, x = model(cfg)
    pe = an.position_embeddings(params, cfg)  # (1, T, D)
    z0 = vit.embed(params, x, cfg)  # (B, T, D)
    tokens = layers.linear(params["embed"], vit.patch_inputs(params, x, cfg))  # (B, N, D)
    if cfg.pool == "cls":
        tokens = np.concatenate([np.broadcast_to(params["cls"], (4, 1, cfg.width)), tokens], 1)
    np.testing.assert_allclose(z0 - tokens, np.broadcast_to(pe, z0.shape), atol=1e-12)
    if cfg.pos == "learned":
        assert pe is params["pos"] or np.array_equal(pe, params["pos"])
    else:  # fixed: the same for any parameters
        np.testing.assert_array_equal(pe, an.position_embeddings(model(cfg, seed=1)[0], cfg))
    sim = an.position_similarity(pe, cfg)
    np.testing.assert_allclose(np.diag(sim.reshape(cfg.num_patches, -1)), 1.0, rtol=1e-12)


@cfgs
def test_embedding_filters_and_their_views_follow_the_patch_layout(cfg):
    params, x = model(cfg)
    e = an.embedding_filters(params, cfg)  # (P*P*C', D)
    assert e.shape == (cfg.embed_in, cfg.width)
    inputs = vit.patch_inputs(params, x, cfg)  # (B, N, P*P*C')
    if cfg.spt:  # diag(g) E acts on the standardised patches; SPT's offset b adds a constant
        ln = params["spt_norm"]
        standard = layers.layer_norm({"g": np.ones_like(ln["g"]), "b": 0 * ln["b"]},
                                     vit.patchify(vit.shifted_copies(x, 2), 4), cfg.ln_eps)
        np.testing.assert_allclose(inputs @ params["embed"]["w"],
                                   standard @ e + ln["b"] @ params["embed"]["w"], rtol=1e-10)
    else:
        np.testing.assert_array_equal(e, params["embed"]["w"])
    comps, ratio = an.embedding_filters_pca(e, cfg, k=5)
    c5 = cfg.embed_in // cfg.patch_size**2
    assert comps.shape == (5, 4, 4, c5) and np.all(np.diff(ratio) <= 0)
    views = an.filter_views(comps, cfg)  # (k, V, P, P, C)
    v = 5 if cfg.spt else 1
    assert views.shape == (5, v, 4, 4, cfg.channels) and len(an.view_names(cfg)) == v
    # A filter applied to the five-view patch = the sum of each view's pattern applied to
    # that view's pixels (the channel layout of vit.shifted_copies).
    full = vit.shifted_copies(x, 2) if cfg.spt else x  # (B, H, W, C')
    lhs = vit.patchify(full, 4) @ comps[0].ravel()  # (B, N)
    rhs = sum(vit.patchify(full[..., i * cfg.channels:(i + 1) * cfg.channels], 4)
              @ views[0, i].ravel() for i in range(v))
    np.testing.assert_allclose(lhs, rhs, rtol=1e-10)


def test_view_names_name_the_shift_of_each_copy():
    cfg = CONFIGS["seq+spt+lsa"]
    assert an.view_names(cfg) == ["patch", "x[r-2, c-2]", "x[r-2, c+2]", "x[r+2, c-2]",
                                  "x[r+2, c+2]"]
    x = np.zeros((1, 12, 12, 1))
    x[0, 5, 5, 0] = 1.0  # one bright pixel; the copy named x[r-2, c-2] shows it at (7, 7)
    copies = vit.shifted_copies(x, 2)[0]  # (H, W, 5)
    assert copies[7, 7, 1] == 1.0 and copies[5, 5, 0] == 1.0


@cfgs
def test_resize_vit_for_any_positions(cfg):
    params, _ = model(cfg)
    new_params, new_cfg = an.resize_vit(params, cfg, 20)  # 5 x 5 grid
    x = np.random.default_rng(2).standard_normal((2, 20, 20, 3))
    assert np.all(np.isfinite(vit.vit(new_params, x, new_cfg)))
    pe = an.position_embeddings(new_params, new_cfg)
    assert pe.shape == (1, new_cfg.num_tokens, cfg.width)
    if cfg.pos == "sincos":  # a formula of (row, col): nothing changes in the parameters
        assert all(new_params[k] is params[k] for k in params)
        old = an.position_embeddings(params, cfg)[0].reshape(3, 3, -1)
        np.testing.assert_allclose(pe[0].reshape(5, 5, -1)[:3, :3], old, atol=1e-12)
    else:
        assert new_params["pos"].shape == pe.shape


@cfgs
def test_probe_features_are_the_models_features(cfg):
    params, _ = model(cfg)
    rng = np.random.default_rng(3)
    images = rng.integers(0, 256, (7, 12, 12, 3), dtype=np.uint8)
    mean, std = np.float32([120, 110, 100]), np.float32([60, 50, 40])
    got = an.probe_features(params, images, cfg, mean, std, batch=3)  # 3 batches
    from tinyvit.data import normalize
    np.testing.assert_allclose(got, vit.features(params, normalize(images, mean, std), cfg),
                               rtol=1e-10)
