"""Linear CKA (Kornblith et al. 2019) and its minibatch form (Nguyen et al. 2021), and the
per-layer representations they compare (tinyvit/figures/similarity.py)."""
import itertools

import numpy as np
import pytest

from tinyvit import cnn, hybrid, vit
from tinyvit.configs import get_cnn_config, get_config, get_hybrid_config
from tinyvit.figures import similarity as sim
from tinyvit.run import models


def features(s=200, f=12, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((s, f)) @ rng.standard_normal((f, f))  # correlated features


def orthogonal(f, seed=1):
    q, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((f, f)))
    return q


def test_cka_of_a_representation_with_itself_is_one():
    x = features()
    assert sim.linear_cka(x, x) == pytest.approx(1.0, abs=1e-12)
    assert sim.minibatch_cka([x], [x], batch_size=50)[0, 0] == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("kind", ["biased", "minibatch"])
def test_cka_is_invariant_to_orthogonal_maps_and_isotropic_scaling(kind):
    x = features(seed=0)
    y = np.tanh(x[:, :7]) + np.random.default_rng(5).standard_normal((200, 7))  # related
    cka = (sim.linear_cka if kind == "biased"
           else lambda a, b: sim.minibatch_cka([a], [b], batch_size=40)[0, 0])
    base = cka(x, y)
    assert 0.05 < base < 0.95  # two related representations: neither 0 nor 1
    assert cka(x @ orthogonal(12), y) == pytest.approx(base, rel=1e-10)
    assert cka(3.7 * x, 0.01 * y) == pytest.approx(base, rel=1e-10)
    assert cka(x @ orthogonal(12), y @ orthogonal(7, seed=2)) == pytest.approx(base, rel=1e-10)


def test_cka_is_not_invariant_to_an_arbitrary_invertible_linear_map():
    x = np.random.default_rng(0).standard_normal((300, 10))
    a = np.diag([1.0] * 9 + [30.0])  # invertible, stretches one direction
    assert np.linalg.matrix_rank(a) == 10
    assert sim.linear_cka(x, x @ a) < 0.5
    assert sim.minibatch_cka([x], [x @ a], batch_size=100)[0, 0] < 0.5


def test_linear_cka_equals_the_feature_space_formula():
    """Kornblith et al. Eq. 5: with centred columns, ||Y^T X||_F^2 / (||X^T X||_F ||Y^T Y||_F)."""
    x, y = features(seed=3), features(seed=4)[:, :5]
    xc, yc = x - x.mean(0), y - y.mean(0)
    want = (np.linalg.norm(yc.T @ xc) ** 2
            / (np.linalg.norm(xc.T @ xc) * np.linalg.norm(yc.T @ yc)))
    assert sim.linear_cka(x, y) == pytest.approx(want, rel=1e-10)


def test_unbiased_hsic_equals_its_u_statistic():
    """Song et al. 2012: the closed form equals the mean over ordered quadruples of distinct
    examples of h = 1/24 sum over their orderings (t,u,v,w) of k_tu l_tu + k_tu l_vw - 2 k_tu l_tv."""
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((6, 3)), rng.standard_normal((6, 4))
    k, l = sim.gram(x), sim.gram(y)
    quads = list(itertools.permutations(range(6), 4))
    total = 0.0
    for q in quads:
        for t, u, v, w in itertools.permutations(q):
            total += k[t, u] * l[t, u] + k[t, u] * l[v, w] - 2 * k[t, u] * l[t, v]
    assert sim.hsic_unbiased(k, l) == pytest.approx(total / 24 / len(quads), rel=1e-10)


def test_minibatch_cka_approaches_the_full_cka_on_many_examples():
    x = features(s=4000, seed=7)
    y = np.tanh(x[:, :6]) + 0.5 * np.random.default_rng(8).standard_normal((4000, 6))
    assert sim.minibatch_cka([x], [y], batch_size=500)[0, 0] == pytest.approx(
        sim.linear_cka(x, y), abs=0.02)


def test_cka_refuses_different_examples_and_tiny_minibatches():
    with pytest.raises(ValueError, match="same examples"):
        sim.linear_cka(np.ones((5, 2)), np.ones((6, 2)))
    with pytest.raises(ValueError, match="at least 4"):
        sim.hsic_unbiased(np.eye(3), np.eye(3))


# ---------------------------------------------------------------------------------------------
# The representations: the core's own blocks, replayed layer by layer
# ---------------------------------------------------------------------------------------------


def images(b=3, seed=0):
    return np.random.default_rng(seed).standard_normal((b, 32, 32, 3)).astype(np.float32)


KNOBS = [dict(pool="cls"), dict(pool="gap"), dict(pool="seq", spt=True, lsa=True)]


@pytest.mark.parametrize("knobs", KNOBS)
def test_vit_layers_end_where_vit_encode_ends(knobs):
    cfg = get_config("vit-cifar-nano", **knobs)
    params = vit.init_vit(np.random.default_rng(0), cfg)
    out = sim.vit_layers(params, images(), cfg)
    assert len(out) == cfg.depth + 2 == len(sim.layer_names(cfg))
    np.testing.assert_allclose(out[-1], vit.encode(params, images(), cfg), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out[0], vit.embed(params, images(), cfg), rtol=1e-6)


def test_cnn_layers_end_where_the_feature_map_ends():
    cfg = get_cnn_config("cnn-air-small")
    model = models.build("cnn-air-small")
    params = model.from_data(model.init(np.random.default_rng(0)), images(8))
    out = sim.cnn_layers(params, images(), cfg)
    assert len(out) == len(sim.layer_names(cfg)) == 1 + len(cfg.widths) * cfg.depth
    np.testing.assert_allclose(out[-1], cnn.feature_map(params, images(), cfg), rtol=1e-5,
                               atol=1e-6)
    assert [o.shape[1] for o in out] == [32, 16, 16, 8, 8, 4, 4]


def test_hybrid_representations_cover_backbone_and_transformer():
    cfg = get_hybrid_config("hybrid-tiny")
    model = models.build("hybrid-tiny")
    params = model.init(np.random.default_rng(0))
    reps = sim.layer_representations(model, params, images(), "tokens")
    names = sim.layer_names(cfg)
    assert len(reps) == len(names) and names[0] == "c1.1" and names[-1] == "LN"
    z = hybrid.encode(params, images(), cfg)  # (B, 1 + N, D)
    np.testing.assert_allclose(reps[-1], z[:, 1:].reshape(3, -1), rtol=1e-5, atol=1e-6)


def test_representation_kinds():
    cfg = get_config("vit-cifar-nano")
    z = np.random.default_rng(0).standard_normal((2, cfg.num_tokens, cfg.width))
    assert sim.as_features(z, "tokens", cfg).shape == (2, cfg.num_patches * cfg.width)
    np.testing.assert_allclose(sim.as_features(z, "pooled", cfg), z[:, 1:].mean(1))
    np.testing.assert_allclose(sim.as_features(z, "cls", cfg), z[:, 0])
    fmap = np.random.default_rng(1).standard_normal((2, 4, 4, 5))
    np.testing.assert_allclose(sim.as_features(fmap, "cls", cfg), fmap.mean((1, 2)))
    with pytest.raises(ValueError, match="no class token"):
        sim.as_features(z, "cls", get_config("vit-cifar-plain"))
    with pytest.raises(ValueError, match="representation kind"):
        sim.as_features(z, "all", cfg)


def test_cka_matrices_compare_every_layer_pair_once_per_minibatch():
    x = np.random.default_rng(0).standard_normal((103, 6))
    calls = []

    def extract(batch):
        calls.append(len(batch))
        return [batch, np.tanh(batch @ orthogonal(6)), batch[:, :2]]

    out = sim.cka_matrices({"a": extract}, [("a", "a")], x, batch_size=50)
    m = out[("a", "a")]
    assert calls == [50, 50]  # each minibatch once; the last 3 images (< 4) are left out
    assert m.shape == (3, 3)
    np.testing.assert_allclose(np.diag(m), 1.0)
    np.testing.assert_allclose(m, m.T)
    want = sim.minibatch_cka(extract(x[:100]), extract(x[:100]), batch_size=50)
    np.testing.assert_allclose(m, want)
    assert sim.mean_off_diagonal(m) == pytest.approx(m[~np.eye(3, dtype=bool)].mean())


def test_a_constant_representation_has_cka_zero_not_nan():
    x = np.random.default_rng(0).standard_normal((40, 5))
    m = sim.minibatch_cka([np.ones((40, 3)), x], [x], batch_size=20)
    assert m[0, 0] == 0.0 and m[1, 0] == pytest.approx(1.0)
