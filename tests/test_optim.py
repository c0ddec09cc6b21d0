"""Adam/AdamW, SGD-momentum, the decay mask, learning-rate schedules and gradient clipping."""
import math

import numpy as np
import pytest

from tinyvit.configs import ViTConfig
from tinyvit.optim import (adam_update, clip_by_global_norm, default_decay_mask, global_norm,
                           init_adam, init_optimizer, init_sgd, schedule,
                           sgd_momentum_update, update, warmup_cosine,
                           warmup_linear)
from tinyvit.tree import flatten, tree_map
from tinyvit.vit import init_vit

TINY = ViTConfig(name="tiny", image_size=8, patch_size=4, channels=2, width=6, depth=2,
                 heads=2, mlp_dim=5, num_classes=3)


def small_tree(rng, dtype=np.float64):
    """A little params-like tree: matrices, biases, a norm and a list."""
    def r(*shape):
        return rng.standard_normal(shape).astype(dtype)

    return {"lin": {"w": r(4, 3), "b": r(3)}, "norm": {"g": r(3), "b": r(3)},
            "blocks": [{"w": r(3, 2), "b": r(2)}, {"w": r(2, 2), "b": r(2)}], "pos": r(1, 2, 3)}


def reference_adamw(p, grads, lr, b1, b2, eps, wd, decay):
    """The AdamW formulas written out plainly (float64, out of place) for one leaf."""
    m, v, out = np.zeros_like(p), np.zeros_like(p), [p.copy()]
    for t, g in enumerate(grads, start=1):
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g**2
        m_hat, v_hat = m / (1 - b1**t), v / (1 - b2**t)
        w = out[-1]
        w = w - lr * wd * w if decay else w
        out.append(w - lr * m_hat / (np.sqrt(v_hat) + eps))
    return out[-1]


# ---------------------------------------------------------------- Adam / AdamW


@pytest.mark.parametrize("wd", [0.0, 0.1])
def test_adam_matches_hand_computed_formulas(wd):
    rng = np.random.default_rng(0)
    params = small_tree(rng)
    start = tree_map(np.copy, params)
    grads = [tree_map(lambda x: rng.standard_normal(x.shape), params) for _ in range(4)]
    mask = default_decay_mask(params)
    state = init_adam(params)
    for g in grads:
        params, state = adam_update(params, g, state, lr=0.01, weight_decay=wd, decay_mask=mask)
    assert state["step"] == 4
    flat_mask = flatten(mask)
    for key, p0 in flatten(start).items():
        want = reference_adamw(p0, [flatten(g)[key] for g in grads], 0.01, 0.9, 0.999, 1e-8,
                               wd, flat_mask[key])
        np.testing.assert_allclose(flatten(params)[key], want, rtol=1e-12, atol=1e-14)


def test_weight_decay_zero_is_adam_and_decay_shrinks_only_masked():
    rng = np.random.default_rng(1)
    p_adam = small_tree(rng)
    p_adamw = tree_map(np.copy, p_adam)
    g = tree_map(lambda x: rng.standard_normal(x.shape), p_adam)
    p_adam, _ = adam_update(p_adam, g, init_adam(p_adam), lr=0.1, weight_decay=0.0)
    p_adamw, _ = adam_update(p_adamw, g, init_adam(p_adamw), lr=0.1, weight_decay=0.5)
    mask = flatten(default_decay_mask(p_adam))
    for key, a in flatten(p_adam).items():
        b = flatten(p_adamw)[key]
        if mask[key]:
            # w(1 - lr wd) - u  vs  w - u: they differ by lr wd w
            assert not np.allclose(a, b)
        else:
            np.testing.assert_array_equal(a, b)


def test_adam_updates_in_place_and_keeps_float32():
    rng = np.random.default_rng(2)
    params = small_tree(rng, np.float32)
    ids = {k: id(x) for k, x in flatten(params).items()}
    state = init_adam(params)
    for _ in range(3):
        grads = tree_map(lambda x: rng.standard_normal(x.shape), params)  # float64 grads
        params, state = adam_update(params, grads, state, lr=np.float64(1e-3), weight_decay=0.1)
    for key, x in flatten(params).items():
        assert x.dtype == np.float32, key
        assert id(x) == ids[key], key  # updated in place
    for tree in (state["m"], state["v"]):
        assert all(x.dtype == np.float32 for x in flatten(tree).values())


def test_adam_rejects_mismatched_grads():
    rng = np.random.default_rng(3)
    params = small_tree(rng)
    grads = tree_map(np.zeros_like, params)
    del grads["norm"]
    with pytest.raises(ValueError, match="norm/g") as e:
        adam_update(params, grads, init_adam(params), lr=0.1)
    assert "\n" not in str(e.value)


def against_torch(make_optimizer, our_step, state, seed):
    """Five steps of a torch optimiser and of ours on the same float32 tree and gradients;
    `make_optimizer(groups)` gets torch parameter groups, decayed (weight_decay set by it) first."""
    torch = pytest.importorskip("torch")
    torch.set_num_threads(1)
    rng = np.random.default_rng(seed)
    params = small_tree(rng, np.float32)
    mask = flatten(default_decay_mask(params))
    tensors = {k: torch.tensor(x.copy(), requires_grad=True) for k, x in flatten(params).items()}
    opt = make_optimizer([{"params": [t for k, t in tensors.items() if mask[k]]},
                          {"params": [t for k, t in tensors.items() if not mask[k]],
                           "weight_decay": 0.0}])
    state = state(params)
    for _ in range(5):
        grads = tree_map(lambda x: rng.standard_normal(x.shape).astype(np.float32), params)
        for k, g in flatten(grads).items():
            tensors[k].grad = torch.from_numpy(g.copy())
        opt.step()
        params, state = our_step(params, grads, state)
    for k, x in flatten(params).items():
        np.testing.assert_allclose(x, tensors[k].detach().numpy(), rtol=1e-5, atol=1e-6)


def test_adamw_matches_torch():
    against_torch(lambda groups: __import__("torch").optim.AdamW(
        groups, lr=0.01, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.1),
        lambda p, g, s: adam_update(p, g, s, lr=0.01, weight_decay=0.1), init_adam, seed=4)


def test_nesterov_sgd_with_weight_decay_matches_torch():
    against_torch(lambda groups: __import__("torch").optim.SGD(
        groups, lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01),
        lambda p, g, s: update("sgd", p, g, s, 0.05, weight_decay=0.01),
        lambda p: init_optimizer("sgd", p), seed=6)


# ---------------------------------------------------------------- SGD with momentum


@pytest.mark.parametrize("nesterov", [False, True])
def test_sgd_momentum_matches_hand_formulas(nesterov):
    rng = np.random.default_rng(5)
    params = small_tree(rng)
    p, buf = flatten(tree_map(np.copy, params))["lin/w"], 0.0
    state = init_sgd(params)
    for _ in range(3):
        grads = tree_map(lambda x: rng.standard_normal(x.shape), params)
        g = flatten(grads)["lin/w"]
        buf = 0.9 * buf + g
        p = p - 0.1 * ((g + 0.9 * buf) if nesterov else buf)
        params, state = sgd_momentum_update(params, grads, state, lr=0.1, nesterov=nesterov)
    np.testing.assert_allclose(flatten(params)["lin/w"], p, rtol=1e-12)
    assert state["step"] == 3


def test_sgd_weight_decay_only_where_masked_and_grads_untouched():
    rng = np.random.default_rng(7)
    params = small_tree(rng)
    zero = tree_map(np.zeros_like, params)
    before = flatten(tree_map(np.copy, params))
    params, _ = sgd_momentum_update(params, zero, init_sgd(params), lr=0.1, weight_decay=0.5)
    after = flatten(params)
    for k, on in flatten(default_decay_mask(params)).items():
        np.testing.assert_allclose(after[k], before[k] * (0.95 if on else 1.0), rtol=1e-12)
    assert not any(g.any() for g in flatten(zero).values())  # the gradients are not changed


def test_optimizer_and_schedule_by_name():
    params = small_tree(np.random.default_rng(8))
    assert set(init_optimizer("adamw", params)) == {"m", "v", "step"}
    assert set(init_optimizer("sgd", params)) == {"m", "step"}
    assert schedule("linear", 5, 10, 1.0, 2) == warmup_linear(5, 10, 1.0, 2)
    assert schedule("cosine", 5, 10, 1.0, 2) == warmup_cosine(5, 10, 1.0, 2)
    for bad in (lambda: init_optimizer("lamb", params), lambda: schedule("step", 0, 10, 1, 0),
                lambda: update("rmsprop", params, params, {}, 0.1)):
        with pytest.raises(ValueError, match="expected") as e:
            bad()
        assert "\n" not in str(e.value)


# ---------------------------------------------------------------- decay mask


def test_default_decay_mask_on_a_vit():
    params = init_vit(np.random.default_rng(0), TINY)
    decayed = {k for k, on in flatten(default_decay_mask(params)).items() if on}
    want = {"embed/w", "head/w"}
    for i in range(TINY.depth):
        want |= {f"blocks/{i}/attn/qkv/w", f"blocks/{i}/attn/out/w",
                 f"blocks/{i}/mlp/fc1/w", f"blocks/{i}/mlp/fc2/w"}
    assert decayed == want  # not: biases, LayerNorm g/b, cls, pos


# ---------------------------------------------------------------- schedules


@pytest.mark.parametrize("schedule", [warmup_cosine, warmup_linear])
def test_schedule_endpoints_and_monotonicity(schedule):
    total, warm, base, final = 100, 10, 1e-3, 1e-5
    lrs = [schedule(s, total, base, warm, final) for s in range(total + 5)]
    assert lrs[0] == 0.0
    assert lrs[warm] == pytest.approx(base)
    assert lrs[total] == pytest.approx(final)
    assert lrs[total + 4] == pytest.approx(final)  # stays there after the end
    assert all(a < b for a, b in zip(lrs[:warm], lrs[1:warm + 1]))  # rising warmup
    assert all(a >= b for a, b in zip(lrs[warm:], lrs[warm + 1:]))  # non-increasing decay


def test_cosine_midpoint_and_no_warmup():
    assert warmup_cosine(55, 100, 2.0, 10) == pytest.approx(1.0)  # half-way through the decay
    assert warmup_cosine(0, 100, 2.0, 0) == pytest.approx(2.0)
    assert warmup_cosine(25, 100, 2.0, 0) == pytest.approx(1.0 + math.cos(math.pi / 4))
    with pytest.raises(ValueError, match="warmup_steps"):
        warmup_cosine(0, 10, 1.0, 10)


# ---------------------------------------------------------------- clipping


def test_clip_by_global_norm():
    g = {"a": np.array([3.0, 0.0], np.float32), "b": [np.array([[4.0]], np.float32)]}
    clipped, norm = clip_by_global_norm(g, 1.0)
    assert norm == pytest.approx(5.0)
    assert global_norm(clipped) == pytest.approx(1.0, rel=1e-6)
    np.testing.assert_allclose(clipped["a"], [0.6, 0.0], rtol=1e-6)
    assert clipped["a"].dtype == np.float32 and clipped["b"][0].dtype == np.float32
    same, norm = clip_by_global_norm(g, 10.0)  # below the bound: untouched
    assert same is g and norm == pytest.approx(5.0)
