"""The convolution twin's routes (taps, im2col, Winograd F(2x2, 3x3)) each equal the formula
`tinyvit.cnn.conv` in values and gradients (float64 to rounding, float32 to float32 rounding),
Winograd's gradients equal centred finite differences, and the route is chosen by the pin, then
by this machine's measured table (in a temporary $XDG_CACHE_HOME here), then by the rule."""
import json
import warnings

import numpy as np
import pytest
from autograd import grad

from gradcheck import leaves, numerical_grad, rel_error
from tinyvit import cnn, configs
from tinyvit.fast import conv as fast_conv
from tinyvit.fast import tuning, winograd

SHAPES = [  # (x shape (B, H, W, C), kernel (3, 3, C, O)): sides that are and are not
    ((2, 6, 4, 3), (3, 3, 3, 4)),  # multiples of 2 and 4, 1 x 1, many channels
    ((2, 5, 7, 3), (3, 3, 3, 2)),
    ((1, 1, 1, 2), (3, 3, 2, 3)),
    ((3, 8, 8, 5), (3, 3, 5, 6)),
    ((2, 9, 13, 4), (3, 3, 4, 3)),
    ((1, 3, 2, 33), (3, 3, 33, 34)),
]


@pytest.fixture(autouse=True)
def empty_cache(tmp_path, monkeypatch):
    """No test reads or writes the user's timing table: a fresh cache directory each."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.delenv("TINYVIT_CONV_ROUTE", raising=False)
    tuning.forget()
    yield
    tuning.forget()


def arrays(x_shape, w_shape, dtype=np.float64, seed=0):
    r = np.random.default_rng(seed)
    x, w = r.standard_normal(x_shape), r.standard_normal(w_shape)
    g = r.standard_normal((*x_shape[:3], w_shape[-1]))  # a cotangent for the output
    return x.astype(dtype), w.astype(dtype), g.astype(dtype)


def formula_and_grads(x, w, g):
    """y and (dL/dx, dL/dw) of L = sum(g * conv(x, w)) by autograd of the formula."""
    loss = lambda x, w: (g * cnn.conv({"w": w}, x)).sum()
    return cnn.conv({"w": w}, x), grad(loss, (0, 1))(x, w)


@pytest.mark.parametrize("route", fast_conv.ROUTES)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_every_route_equals_the_formula_in_float64(route, shape):
    x, w, g = arrays(*shape)
    y, (dx, dw) = formula_and_grads(x, w, g)
    with fast_conv.pinned(route):
        assert fast_conv.route("forward", x.shape, w.shape, x.dtype) == route
        y_fast = fast_conv.conv({"w": w}, x)
        dx_fast, dw_fast = grad(lambda x, w: (g * fast_conv.conv({"w": w}, x)).sum(),
                                (0, 1))(x, w)
    np.testing.assert_allclose(y_fast, y, rtol=1e-12, atol=1e-12)
    assert rel_error(dx_fast, dx) < 1e-12 and rel_error(dw_fast, dw) < 1e-12


@pytest.mark.parametrize("route", ["winograd", "winograd4"])
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_winograd_in_float32_stays_float32_within_float32_rounding(route, shape):
    x, w, g = arrays(*shape)
    y, (dx, dw) = formula_and_grads(x, w, g)
    x32, w32, g32 = (a.astype(np.float32) for a in (x, w, g))
    with fast_conv.pinned(route):
        y32 = fast_conv.convolve(x32, w32)
        dx32, dw32 = grad(lambda x, w: (g32 * fast_conv.convolve(x, w)).sum(), (0, 1))(x32, w32)
    for fast, exact in ((y32, y), (dx32, dx), (dw32, dw)):
        assert fast.dtype == np.float32
        assert np.abs(fast - exact).max() < 1e-5 * np.abs(exact).max()  # float32: ~1e-7


@pytest.mark.parametrize("f", [winograd.F2, winograd.F4], ids=["F2", "F4"])
def test_winograd_parts_match_the_formula_in_chunks_of_images(f, monkeypatch):
    """The module's own functions, without the primitive, one image per chunk (the sums of
    the kernel gradient over chunks): forward, input and kernel gradient."""
    x, w, g = arrays((3, 7, 5, 3), (3, 3, 3, 4), seed=1)
    y, (dx, dw) = formula_and_grads(x, w, g)
    monkeypatch.setattr(winograd, "CHUNK_BYTES", 1)
    assert len(winograd.chunks(x.shape, 3, 4, 8, f)) == 3
    np.testing.assert_allclose(winograd.forward(x, w, f), y, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(winograd.input_grad(g, w, f), dx, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(winograd.kernel_grad(x, g, f), dw, rtol=1e-12, atol=1e-12)
    # 16 element-wise products per 2x2 outputs: U = G g G^T of a one-tap kernel
    one = np.zeros((3, 3, 1, 1))
    one[1, 1] = 1.0
    np.testing.assert_allclose(winograd.kernel_transform(one).reshape(4, 4),
                               np.outer([0, 0.5, -0.5, 0], [0, 0.5, -0.5, 0]))


@pytest.mark.parametrize("route", ["winograd", "winograd4"])
@pytest.mark.parametrize("wrt", ["x", "w"])
def test_winograd_gradients_match_finite_differences(route, wrt):
    x, w, g = arrays((2, 5, 4, 3), (3, 3, 3, 2), seed=2)
    with fast_conv.pinned(route):
        f = lambda x, w: (g * fast_conv.convolve(x, w)).sum()
        arg = x if wrt == "x" else w
        analytic = grad(f, 0 if wrt == "x" else 1)(x, w)
        num = numerical_grad(lambda: f(x, w), arg, range(arg.size))
    assert rel_error(analytic.ravel(), num) < 1e-8


@pytest.mark.parametrize("route", ["winograd", "winograd4"])
def test_a_whole_cnn_step_with_winograd_equals_the_formulas(route):
    """A tiny CNN (GroupNorm, two stages) in float64: loss gradients through every layer."""
    cfg = configs.CNNConfig(name="cnn-test", image_size=8, channels=2, stem=4, widths=(4, 8),
                            depth=2, groups=2, num_classes=3)
    r = np.random.default_rng(4)
    params = cnn.init_cnn(r, cfg, np.float64)
    params["head"]["w"] = r.standard_normal(params["head"]["w"].shape)
    x = r.standard_normal((3, 8, 8, 2))
    loss = lambda p: (cnn.cnn(p, x, cfg) ** 2).sum()
    g_formula, formula = grad(loss)(params), cnn.conv
    try:
        cnn.conv = fast_conv.conv  # only the convolution swapped for its twin
        with fast_conv.pinned(route):
            g_twin = grad(loss)(params)
    finally:
        cnn.conv = formula
    for (path, a), (_, b) in zip(leaves(g_formula), leaves(g_twin)):
        assert rel_error(b, a) < 1e-11, path


# ---------------------------------------------------------------------------------------------
# Which route: the pin, the measured table, the rule
# ---------------------------------------------------------------------------------------------


X_SHAPE, W_SHAPE = (4, 16, 16, 8), (3, 3, 8, 8)


def test_without_a_table_the_rule_decides_and_nothing_is_written(tmp_path):
    for part in fast_conv.PARTS:
        assert (fast_conv.route(part, X_SHAPE, W_SHAPE, np.float32)
                == fast_conv.default_route(part, X_SHAPE, W_SHAPE) == "taps")
    wide = (3, 3, 64, 64)  # where Winograd saves the most multiplies: still not the rule's
    assert fast_conv.default_route("forward", X_SHAPE, wide) == "taps"
    assert fast_conv.default_route("forward", X_SHAPE, wide[:3] + (128,)) == "im2col"
    small = (4, 7, 9, 64)  # 63 pixels: below TAPS_MIN_PIXELS
    assert fast_conv.default_route("forward", small, wide) == "im2col"
    assert not any(tmp_path.rglob("*"))  # reading an absent table creates nothing


def test_a_measured_table_picks_the_fastest_route_for_its_machine_and_shape():
    ctx = tuning.context()
    key = tuning.key("input", X_SHAPE, W_SHAPE, np.float32)
    path = tuning.save({ctx: {key: {"taps": 3.0, "im2col": 2.0, "winograd": 1.0,
                                    "winograd4": 0.5}},  # F(4x4): only where pinned
                        "another CPU | 1 shard x 1 BLAS thread": {
                            tuning.key("forward", X_SHAPE, W_SHAPE, np.float32): {"im2col": 1.0}}})
    assert path == tuning.cache_path() and path.parent.name == "tinyvit"
    assert fast_conv.route("input", X_SHAPE, W_SHAPE, np.float32) == "winograd"
    assert fast_conv.route("forward", X_SHAPE, W_SHAPE, np.float32) == "taps"  # not measured here
    assert fast_conv.route("input", X_SHAPE, W_SHAPE, np.float64) == "taps"  # another dtype
    assert fast_conv.route("input", (5,) + X_SHAPE[1:], W_SHAPE, np.float32) == "taps"
    with fast_conv.pinned("rule"):
        assert fast_conv.route("input", X_SHAPE, W_SHAPE, np.float32) == "taps"
    with fast_conv.pinned("im2col"):
        assert fast_conv.route("input", X_SHAPE, W_SHAPE, np.float32) == "im2col"
    # saving merges: the other entries stay, a route's time is replaced
    tuning.save({ctx: {key: {"winograd": 9.0}}})
    table = json.loads(path.read_text())
    assert table[ctx][key] == {"taps": 3.0, "im2col": 2.0, "winograd": 9.0, "winograd4": 0.5}
    assert len(table) == 2
    assert fast_conv.route("input", X_SHAPE, W_SHAPE, np.float32) == "im2col"


def test_an_unreadable_table_is_ignored_with_a_warning_and_never_overwritten():
    path = tuning.cache_path()
    path.parent.mkdir(parents=True)
    path.write_text("{not json")
    with pytest.warns(UserWarning, match="conv_routes.json"):
        assert fast_conv.route("forward", X_SHAPE, W_SHAPE, np.float32) == "taps"
    with pytest.raises(ValueError, match="move it away"):
        tuning.save({"x": {"y": {"taps": 1.0}}})
    assert path.read_text() == "{not json"


def test_pins_nest_apply_where_they_can_and_wrong_names_fail(monkeypatch):
    with fast_conv.pinned("im2col"):
        with fast_conv.pinned("winograd"):
            assert fast_conv.route("kernel", X_SHAPE, W_SHAPE, np.float32) == "winograd"
            # a 5x5 kernel cannot go by Winograd: the rule
            assert fast_conv.route("kernel", X_SHAPE, (5, 5, 8, 8), np.float32) == "taps"
        assert fast_conv.route("kernel", X_SHAPE, W_SHAPE, np.float32) == "im2col"
    monkeypatch.setenv("TINYVIT_CONV_ROUTE", "winograd")
    assert fast_conv.route("forward", X_SHAPE, W_SHAPE, np.float32) == "winograd"
    monkeypatch.setenv("TINYVIT_CONV_ROUTE", "fft")
    with pytest.raises(ValueError, match="TINYVIT_CONV_ROUTE.*'fft'"):
        fast_conv.route("forward", X_SHAPE, W_SHAPE, np.float32)
    with pytest.raises(ValueError, match="expected one of taps, im2col, winograd, winograd4, rule"):
        with fast_conv.pinned("Winograd"):
            pass


@pytest.mark.parametrize("threads", [1, 2])
def test_measure_times_every_part_and_route_in_its_context(threads):
    parts, routes = ("forward", "kernel"), fast_conv.routes_for(W_SHAPE)
    calls = []

    def run(part, route, x, w, g):
        calls.append((part, route))
        assert x.dtype == w.dtype == g.dtype == np.float32
        return fast_conv.IMPLEMENTATIONS[part, route](x, w, g)

    out = tuning.measure(run, (2, 4, 4, 8), W_SHAPE, parts, routes, rounds=2, repeats=1,
                         threads=threads)
    (ctx, rows), = out.items()
    assert ctx.startswith(tuning.cpu_model()) and (f"{threads} shard" in ctx)
    assert set(rows) == {tuning.key(p, (2, 4, 4, 8), W_SHAPE, np.float32) for p in parts}
    assert all(set(t) == set(routes) and min(t.values()) > 0 for t in rows.values())
    assert len(calls) == threads * 2 * len(parts) * len(routes)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert tuning.fastest("forward", (2, 4, 4, 8), W_SHAPE, np.float32, routes) is None


def test_winograd_runs_on_device_arrays_without_a_host_copy():
    """With the strict CuPy stand-in (tests/fake_cupy.py: mixing in or converting to a host
    array raises), both Winograds give the host's numbers, as device arrays."""
    import fake_cupy as fc

    x, w, g = arrays((2, 6, 5, 3), (3, 3, 3, 4), np.float32, seed=5)
    dev = [fc.asarray(a) for a in (x, w, g)]
    for route in ("winograd", "winograd4"):
        for part in fast_conv.PARTS:
            host = fast_conv.run_part(part, x, w, g, by=route)
            on_device = fast_conv.run_part(part, *dev, by=route)
            assert isinstance(on_device, fc.FakeArray), (route, part)
            np.testing.assert_allclose(on_device.get(), host, rtol=1e-6, atol=1e-6)
