"""The exponential moving average of the weights (`tinyvit.optim.init_ema`, `ema_update`,
`ema_decay`): the formula, in place, dtypes kept, the warmup rule, errors."""
import numpy as np
import pytest

from tinyvit.configs import ViTConfig
from tinyvit.optim import ema_decay, ema_update, init_ema
from tinyvit.tree import flatten, tree_map
from tinyvit.vit import init_vit

CFG = ViTConfig(image_size=8, patch_size=4, width=8, depth=1, heads=2, mlp_dim=8)


def test_init_is_a_copy_and_update_is_the_formula_in_place():
    params = init_vit(np.random.default_rng(0), CFG)
    ema = init_ema(params)
    flat_e, flat_p = flatten(ema), flatten(params)
    assert all(flat_e[k] is not flat_p[k] and np.array_equal(flat_e[k], flat_p[k])
               for k in flat_p)
    new = tree_map(lambda p: p + 1.0, params)
    before = tree_map(np.copy, ema)
    out = ema_update(ema, new, 0.9)
    assert out is ema  # in place, as the optimisers
    for k, e in flatten(ema).items():
        np.testing.assert_allclose(e, 0.9 * flatten(before)[k] + 0.1 * flatten(new)[k],
                                   rtol=1e-6, atol=1e-7)
        assert e.dtype == np.float32
        assert flatten(params)[k] is flat_p[k]  # the params are left alone


def test_the_average_of_a_constant_converges_to_it_and_decay_zero_copies():
    ema = {"w": np.zeros(3)}
    for _ in range(200):
        ema_update(ema, {"w": np.ones(3)}, 0.95)
    np.testing.assert_allclose(ema["w"], 1.0 - 0.95 ** 200)
    np.testing.assert_array_equal(ema_update(ema, {"w": np.full(3, 7.0)}, 0.0)["w"], 7.0)


def test_ema_of_a_sequence_is_the_closed_form_weighted_sum():
    xs = np.random.default_rng(1).standard_normal((6, 2))
    ema, d = {"w": xs[0].copy()}, 0.7
    for x in xs[1:]:
        ema_update(ema, {"w": x}, d)
    want = d ** 5 * xs[0] + sum((1 - d) * d ** (5 - i) * xs[i] for i in range(1, 6))
    np.testing.assert_allclose(ema["w"], want, rtol=1e-12)


def test_the_decay_warms_up_then_stays():
    assert ema_decay(0, 0.999) == pytest.approx(0.1)
    assert ema_decay(90, 0.999) == pytest.approx(0.91)
    assert ema_decay(10 ** 6, 0.999) == 0.999
    assert ema_decay(0, 0.999, warmup=False) == 0.999


@pytest.mark.parametrize("decay", [1.0, -0.1, 1.5])
def test_a_decay_outside_0_1_is_a_one_line_error(decay):
    with pytest.raises(ValueError, match=r"ema decay: expected a number in \[0, 1\)"):
        ema_decay(0, decay)


def test_a_different_structure_is_a_one_line_error():
    with pytest.raises(ValueError, match="ema_update params: expected the parameters' structure"):
        ema_update({"a": np.zeros(1)}, {"b": np.zeros(1)}, 0.5)
