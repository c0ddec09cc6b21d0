"""tinyvit/figures/analysis.py on hand-checkable inputs (fast, plain NumPy)."""
import numpy as np
import pytest

from tinyvit.figures import analysis as an
from tinyvit import init_vit
from tinyvit.configs import ViTConfig, replace
from tinyvit.vit import attention_maps, vit

# 2 x 2 grid of 4-pixel patches (+ class token: T = 5).
TINY = ViTConfig(name="tiny", image_size=8, patch_size=4, channels=2, width=6, depth=2,
                 heads=2, mlp_dim=5, num_classes=3)
TINY_GAP = replace(TINY, pool="gap")


def random_maps(cfg, b=2, seed=0):
    """L softmax-normalised attention arrays (B, H, T, T)."""
    rng = np.random.default_rng(seed)
    t = cfg.num_tokens
    maps = []
    for _ in range(cfg.depth):
        s = np.exp(rng.standard_normal((b, cfg.heads, t, t)))
        maps.append(s / s.sum(-1, keepdims=True))
    return maps


def identity_maps(cfg, b=2):
    eye = np.eye(cfg.num_tokens)
    return [np.broadcast_to(eye, (b, cfg.heads) + eye.shape) for _ in range(cfg.depth)]


# ---------------------------------------------------------------- attention rollout


@pytest.mark.parametrize("residual", [True, False])
def test_rollout_of_identity_attention_is_identity(residual):
    r = an.attention_rollout(identity_maps(TINY), residual)
    np.testing.assert_allclose(r, np.broadcast_to(np.eye(5), (2, 5, 5)), atol=1e-15)


def test_rollout_rows_sum_to_one_and_match_the_formula():
    maps = random_maps(TINY)
    for residual in (True, False):
        r = an.attention_rollout(maps, residual)
        assert r.shape == (2, 5, 5)
        np.testing.assert_allclose(r.sum(-1), 1.0, rtol=1e-12)
    a1, a2 = (m.mean(1) for m in maps)  # heads averaged
    np.testing.assert_allclose(an.attention_rollout(maps, residual=False), a2 @ a1, rtol=1e-12)
    r1, r2 = ((a + np.eye(5)) / 2 for a in (a1, a2))  # rows of A sum to 1, of A + I to 2
    np.testing.assert_allclose(an.attention_rollout(maps), r2 @ r1, rtol=1e-12)


def test_rollout_to_image_takes_the_class_row_or_the_query_mean():
    r = an.attention_rollout(random_maps(TINY))
    np.testing.assert_array_equal(an.rollout_to_image(r, TINY), r[:, 0, 1:].reshape(2, 2, 2))
    rg = an.attention_rollout(random_maps(TINY_GAP))
    np.testing.assert_allclose(an.rollout_to_image(rg, TINY_GAP), rg.mean(1).reshape(2, 2, 2))
    with pytest.raises(ValueError, match="rollout"):
        an.rollout_to_image(rg, TINY)


# ---------------------------------------------------------------- mean attention distance


def test_mean_attention_distance_identity_is_zero():
    for cfg in (TINY, TINY_GAP):
        d = an.mean_attention_distance(identity_maps(cfg), cfg)
        assert d.shape == (cfg.depth, cfg.heads)
        np.testing.assert_allclose(d, 0.0, atol=1e-15)


def test_mean_attention_distance_uniform_2x2_by_hand():
    # Each patch centre is 4 px from two patches and 4*sqrt(2) px from the diagonal one.
    for cfg in (TINY, TINY_GAP):
        t = cfg.num_tokens
        uniform = [np.full((3, cfg.heads, t, t), 1.0 / t)] * cfg.depth
        np.testing.assert_allclose(an.mean_attention_distance(uniform, cfg),
                                   (0 + 4 + 4 + 4 * np.sqrt(2)) / 4, rtol=1e-12)
    uniform = [np.full((3, 2, 5, 5), 0.2)] * 2  # class token keeps 1/5, counted as distance 0
    np.testing.assert_allclose(an.mean_attention_distance(uniform, TINY, renormalize=False),
                               (8 + 4 * np.sqrt(2)) / 5, rtol=1e-12)


def test_mean_attention_distance_of_a_real_model():
    cfg = TINY
    params = init_vit(np.random.default_rng(0), cfg, np.float64)
    x = np.random.default_rng(1).standard_normal((2, 8, 8, 2))
    _, maps = attention_maps(params, x, cfg)
    d = an.mean_attention_distance(maps, cfg)
    assert d.shape == (2, 2) and np.all(d > 0) and np.all(d < 4 * np.sqrt(2))


# ---------------------------------------------------------------- position similarity, PCA


def test_position_similarity_diagonal_one_and_symmetric():
    cfg = replace(TINY, image_size=12)  # 3 x 3 grid
    pos = np.random.default_rng(0).standard_normal((1, cfg.num_tokens, cfg.width))
    s = an.position_similarity(pos, cfg)
    assert s.shape == (3, 3, 3, 3)
    flat = s.reshape(9, 9)
    np.testing.assert_allclose(np.diag(flat), 1.0, rtol=1e-12)
    np.testing.assert_allclose(flat, flat.T, rtol=1e-12)
    assert np.all(np.abs(flat) <= 1 + 1e-12)
    e = pos[0, 1:]  # the class token's row is dropped
    cos = e[1] @ e[8] / (np.linalg.norm(e[1]) * np.linalg.norm(e[8]))
    np.testing.assert_allclose(s[0, 1, 2, 2], cos)  # patch (0, 1) vs patch (2, 2)


def test_embedding_pca_orthonormal_sorted_and_finds_a_planted_filter():
    cfg = ViTConfig(name="pca", image_size=8, patch_size=4, channels=3, width=40, depth=1,
                    heads=2, mlp_dim=4)
    rng = np.random.default_rng(0)
    pattern = rng.standard_normal(cfg.patch_dim)
    pattern /= np.linalg.norm(pattern)
    w = np.outer(pattern, rng.standard_normal(cfg.width) * 5) + 0.01 * rng.standard_normal(
        (cfg.patch_dim, cfg.width))  # (P*P*C, D): every filter ~ a multiple of the pattern
    comps, ratio = an.embedding_filters_pca(w, cfg, k=10)
    assert comps.shape == (10, 4, 4, 3) and ratio.shape == (10,)
    flat = comps.reshape(10, -1)
    np.testing.assert_allclose(flat @ flat.T, np.eye(10), atol=1e-10)
    assert np.all(np.diff(ratio) <= 0) and ratio.sum() <= 1 + 1e-12
    assert ratio[0] > 0.99 and abs(flat[0] @ pattern) > 0.999
    assert an.embedding_filters_pca(w, cfg, k=100)[0].shape[0] == 40  # capped at min(D, PPC)
    with pytest.raises(ValueError, match="embedding"):
        an.embedding_filters_pca(w.T, cfg)


# ---------------------------------------------------------------- position-embedding resize


def test_interpolation_to_the_same_grid_is_exact():
    pos = np.random.default_rng(0).standard_normal((1, 17, 6)).astype(np.float32)
    out = an.interpolate_pos_embed(pos, 4, 4, has_cls=True)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, pos)


@pytest.mark.parametrize("old,new", [(2, 4), (4, 7), (7, 3), (3, 12)])
def test_interpolation_matches_torch_bilinear(old, new):
    torch = pytest.importorskip("torch")
    pos = np.random.default_rng(old * new).standard_normal((1, 1 + old * old, 5))
    out = an.interpolate_pos_embed(pos, old, new, has_cls=True)
    assert out.shape == (1, 1 + new * new, 5)
    np.testing.assert_array_equal(out[:, 0], pos[:, 0])  # class token passed through
    grid = torch.from_numpy(pos[0, 1:].reshape(old, old, 5).transpose(2, 0, 1)[None].copy())
    want = torch.nn.functional.interpolate(grid, size=(new, new), mode="bilinear",
                                           align_corners=False)
    want = want[0].numpy().transpose(1, 2, 0).reshape(1, new * new, 5)
    np.testing.assert_allclose(out[:, 1:], want, rtol=1e-12, atol=1e-12)


def test_interpolation_preserves_a_linear_ramp():
    old, new = 4, 10
    r, c = np.meshgrid(np.arange(old), np.arange(old), indexing="ij")
    ramp = np.stack([2 * r - 3 * c + 1, r + 0.5 * c], -1).reshape(1, old * old, 2)  # (1, N, 2)
    out = an.interpolate_pos_embed(ramp, old, new, has_cls=False).reshape(new, new, 2)
    x = np.clip((np.arange(new) + 0.5) * old / new - 0.5, 0, old - 1)  # sample positions
    xr, xc = np.meshgrid(x, x, indexing="ij")
    np.testing.assert_allclose(out[..., 0], 2 * xr - 3 * xc + 1, atol=1e-12)
    np.testing.assert_allclose(out[..., 1], xr + 0.5 * xc, atol=1e-12)


def test_interpolation_rejects_a_wrong_grid():
    with pytest.raises(ValueError, match="position embedding"):
        an.interpolate_pos_embed(np.zeros((1, 16, 3)), 4, 5, has_cls=True)


@pytest.mark.parametrize("cfg", [TINY, TINY_GAP])
def test_resize_vit_runs_at_the_new_resolution(cfg):
    params = init_vit(np.random.default_rng(0), cfg)
    new_params, new_cfg = an.resize_vit(params, cfg, 16)
    assert new_cfg.image_size == 16 and new_cfg.grid == 4
    assert new_params["pos"].shape == (1, new_cfg.num_tokens, cfg.width)
    assert new_params["pos"].dtype == np.float32 and params["pos"].shape[1] == cfg.num_tokens
    x = np.random.default_rng(1).standard_normal((2, 16, 16, 2)).astype(np.float32)
    assert vit(new_params, x, new_cfg).shape == (2, 3)
    _, maps = attention_maps(new_params, x, new_cfg)
    assert maps[0].shape == (2, 2, new_cfg.num_tokens, new_cfg.num_tokens)
    with pytest.raises(ValueError, match="patch size"):
        an.resize_vit(params, cfg, 10)


# ---------------------------------------------------------------- linear probe, few-shot


def clusters(n_per_class, k=3, f=5, seed=0, spread=0.3):
    """k well-separated Gaussian clusters in f dimensions (linearly separable)."""
    rng = np.random.default_rng(seed)
    centres = 4 * np.eye(k, f)
    y = np.repeat(np.arange(k), n_per_class)
    return centres[y] + spread * rng.standard_normal((len(y), f)), y


def reference_ridge(x, y, k, l2):
    """Ridge on standardised features with an unpenalised bias, by augmented normal equations."""
    mean, std = x.mean(0), x.std(0) + 1e-5
    xs = np.concatenate([(x - mean) / std, np.ones((len(x), 1))], 1)
    t = 2.0 * np.eye(k)[y] - 1
    penalty = l2 * np.diag(np.r_[np.ones(x.shape[1]), 0.0])
    wb = np.linalg.solve(xs.T @ xs + penalty, xs.T @ t)
    return lambda f: np.concatenate([(f - mean) / std, np.ones((len(f), 1))], 1) @ wb


@pytest.mark.parametrize("n,f", [(20, 5), (3, 20)])  # primal (S >= F) and dual (S < F) forms
def test_linear_probe_is_the_ridge_solution(n, f):
    x, y = clusters(n, f=f, seed=1)
    w, b = an.linear_probe(x, y, 3, l2=0.7)
    assert w.shape == (f, 3) and b.shape == (3,)
    test = np.random.default_rng(2).standard_normal((7, f))
    np.testing.assert_allclose(test @ w + b, reference_ridge(x, y, 3, 0.7)(test), atol=1e-8)


def test_linear_probe_separates_a_toy_problem():
    x, y = clusters(30)
    xt, yt = clusters(50, seed=1)
    w, b = an.linear_probe(x, y)
    assert an.probe_accuracy(w, b, xt, yt) == 1.0
    assert an.few_shot_accuracy(xt, yt, shots=5, seed=0) == 1.0
    assert an.few_shot_accuracy(x, y, 5, 3, test_features=xt, test_labels=yt) == 1.0


def test_few_shot_sampling_is_balanced_and_seeded():
    y = np.random.default_rng(0).integers(0, 4, 200)
    idx = an.sample_shots(y, 5, seed=3)
    assert len(idx) == 20 and len(set(idx)) == 20
    np.testing.assert_array_equal(np.bincount(y[idx], minlength=4), [5, 5, 5, 5])
    np.testing.assert_array_equal(idx, an.sample_shots(y, 5, seed=3))
    assert not np.array_equal(idx, an.sample_shots(y, 5, seed=4))
    with pytest.raises(ValueError, match="class"):
        an.sample_shots(np.array([0, 0, 1]), 2)
