"""Each fast twin (tinyvit.fast: a primitive with a hand-written VJP) equals its formula in
tinyvit.ops, values and autograd's gradient, and both equal centred finite differences
(float64, tiny shapes, fixed seeds). The CNN's twins are checked in test_cnn.py; the switch
(enable / disable / formulas / twins) at the end."""
import numpy as np
import pytest
from autograd import grad

from gradcheck import numerical_grad, rel_error
from tinyvit import ops
from tinyvit.fast import ops as fast_ops

rng = np.random.default_rng(0)
X = rng.standard_normal((2, 3, 5)) * 2.0  # (B, N, D), float64
G = rng.standard_normal(5)  # LayerNorm scale
B = rng.standard_normal(5)  # LayerNorm offset
W = rng.standard_normal((2, 3, 5))  # a random cotangent: loss = sum(W * f(x))
LOGITS = rng.standard_normal((4, 6)) * 3.0  # (B, K)
LABELS = np.array([0, 5, 2, 2])

CASES = {  # name: (plain f(x), fast f(x), x)
    "layer_norm/x": (lambda x: ops.layer_norm(x, G, B), lambda x: fast_ops.layer_norm(x, G, B), X),
    "layer_norm/g": (lambda g: ops.layer_norm(X, g, B), lambda g: fast_ops.layer_norm(X, g, B), G),
    "layer_norm/b": (lambda b: ops.layer_norm(X, G, b), lambda b: fast_ops.layer_norm(X, G, b), B),
    "softmax": (ops.softmax, fast_ops.softmax, X),
    "gelu": (ops.gelu, fast_ops.gelu, X),
    "first_token": (ops.first_token, fast_ops.first_token, X),
}


def weighted(f):
    """Scalar loss sum(W * f(x)) with W cropped to f's output shape."""
    def loss(x):
        y = f(x)
        return (W.reshape(-1)[: y.size].reshape(y.shape) * y).sum()
    return loss


@pytest.mark.parametrize("name", CASES)
def test_fast_vjp_equals_autograd_of_plain(name):
    plain, fast, x = CASES[name]
    np.testing.assert_allclose(fast(x), plain(x), rtol=1e-12, atol=1e-12)  # same function
    g_plain = grad(weighted(plain))(x)
    g_fast = grad(weighted(fast))(x)
    assert rel_error(g_fast, g_plain) < 1e-12  # same gradient up to rounding


@pytest.mark.parametrize("name", CASES)
@pytest.mark.parametrize("which", ["plain", "fast"])
def test_gradient_matches_finite_differences(name, which):
    plain, fast, x = CASES[name]
    f = weighted(plain if which == "plain" else fast)
    x = x.copy()
    num = numerical_grad(lambda: f(x), x, range(x.size))
    assert rel_error(grad(f)(x).ravel(), num) < 1e-8  # float64, h=1e-6: expect ~1e-10


@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_cross_entropy(smoothing):
    z = LOGITS.copy()
    f_plain = lambda z: ops.cross_entropy(z, LABELS, smoothing)
    f_fast = lambda z: fast_ops.cross_entropy(z, LABELS, smoothing)
    assert abs(f_fast(z) - f_plain(z)) < 1e-12
    # A reference by hand: -mean log p[label] when smoothing is 0.
    if smoothing == 0.0:
        p = np.exp(z) / np.exp(z).sum(1, keepdims=True)
        assert abs(f_fast(z) + np.log(p[np.arange(4), LABELS]).mean()) < 1e-12
    assert rel_error(grad(f_fast)(z), grad(f_plain)(z)) < 1e-12
    num = numerical_grad(lambda: f_fast(z), z, range(z.size))
    assert rel_error(grad(f_fast)(z).ravel(), num) < 1e-8


def test_softmax_is_stable_for_huge_logits():
    y = fast_ops.softmax(np.array([[1000.0, 1000.0, -1000.0]]))
    np.testing.assert_allclose(y, [[0.5, 0.5, 0.0]])
    assert np.isfinite(fast_ops.cross_entropy(np.array([[1e4, -1e4]]), np.array([1]))).all()


@pytest.mark.parametrize("name", CASES)
def test_float32_in_float32_out(name):
    """No silent float64: value and gradient keep the input's float32 dtype."""
    plain, fast, x = CASES[name]
    if name.startswith("layer_norm/"):
        g32, b32 = G.astype(np.float32), B.astype(np.float32)
        plain = lambda x: ops.layer_norm(x, g32, b32)
        fast = lambda x: fast_ops.layer_norm(x, g32, b32)
        x = X
    x32 = x.astype(np.float32)
    for f in (plain, fast):
        assert f(x32).dtype == np.float32, name
        assert grad(lambda x: f(x).sum())(x32).dtype == np.float32, name
    z = LOGITS.astype(np.float32)
    assert grad(lambda z: fast_ops.cross_entropy(z, LABELS, 0.1))(z).dtype == np.float32


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gelu_tails_are_exact_and_warning_free(dtype):
    """Far left GELU and its slope are 0 (exp overflows to inf there: no warning, no NaN);
    far right they are x and 1. The fast form (x * sigmoid(2u)) agrees with the tanh form."""
    x = np.array([-1e4, -100.0, -12.0, 0.0, 12.0, 100.0, 1e4], dtype)
    with np.errstate(over="raise", invalid="raise", divide="raise"):  # underflow is fine
        y = fast_ops.gelu(x)
        dy = grad(lambda x: fast_ops.gelu(x).sum())(x)
    assert y.dtype == dy.dtype == dtype
    np.testing.assert_allclose(y, [0, 0, 0, 0, 12, 100, 1e4], atol=1e-20)
    np.testing.assert_allclose(dy, [0, 0, 0, 0.5, 1, 1, 1], atol=1e-20)
    np.testing.assert_allclose(fast_ops.gelu(x[1:-1]), ops.gelu(x[1:-1]), rtol=1e-6, atol=1e-30)


# ---------------------------------------------------------------------------------------------
# The switch between formulas and fast twins
# ---------------------------------------------------------------------------------------------


def test_every_twin_is_tested_and_the_model_starts_on_the_formulas():
    from tinyvit import cnn, fast

    tested = {name.split("/")[0] for name in CASES} | {"cross_entropy"}
    assert set(fast.VIT_TWINS) <= tested
    assert set(fast.TWINS) == set(fast.VIT_TWINS) | set(fast.CNN_TWINS)
    assert fast.enabled() == []  # importing tinyvit changes nothing
    for name, (module, formula, twin) in fast.TWINS.items():
        assert module in (ops, cnn) and getattr(module, name) is formula and twin is not formula


def test_enable_disable_and_the_context_managers_restore_what_was_on():
    from tinyvit import fast

    try:
        fast.enable(["gelu"])
        assert fast.enabled() == ["gelu"] and ops.gelu is fast_ops.gelu
        with fast.twins():
            assert set(fast.enabled()) == set(fast.TWINS)
            with fast.formulas(["softmax"]):
                assert "softmax" not in fast.enabled() and ops.softmax is not fast_ops.softmax
            assert set(fast.enabled()) == set(fast.TWINS)
        assert fast.enabled() == ["gelu"]
        with pytest.raises(ValueError, match="unknown operation 'gleu'"):
            fast.enable("gleu")
    finally:
        fast.disable()
    assert fast.enabled() == []


# ---------------------------------------------------------------------------------------------
# Sharded steps: one shard of the batch per thread
# ---------------------------------------------------------------------------------------------


def _step_case(dropout=0.0, b=7):
    from tinyvit.configs import ViTConfig
    from tinyvit.run import models

    cfg = ViTConfig(name="shards", image_size=8, patch_size=4, width=16, depth=2, heads=2,
                    mlp_dim=32, num_classes=3, dropout=dropout)
    net = models.from_config(cfg)
    r = np.random.default_rng(3)
    params = net.init(r)
    params["head"]["w"] = r.standard_normal(params["head"]["w"].shape).astype(np.float32)
    x = r.standard_normal((b, 8, 8, 3)).astype(np.float32)  # odd B: shards of 4 and 3
    return net, params, x, r.integers(0, 3, b)


def test_shard_bounds_cover_the_batch_in_order():
    from tinyvit.fast.shards import bounds

    assert bounds(7, 2) == [(0, 4), (4, 7)] and bounds(1, 2) == [(0, 1)]
    assert bounds(128, 3) == [(0, 43), (43, 85), (85, 128)]


def test_a_sharded_step_equals_the_single_threaded_one_to_float32_rounding():
    from tinyvit.run.train import make_grad_fn
    from tinyvit.tree import flatten

    net, params, x, y = _step_case()
    one, (loss1, logits1) = make_grad_fn(net, 0.1, shards=1)(params, x, y, None)
    two, (loss2, logits2) = make_grad_fn(net, 0.1, shards=2)(params, x, y, None)
    assert abs(float(loss1) - loss2) < 1e-6 * abs(float(loss1))
    np.testing.assert_allclose(logits2, logits1, rtol=1e-5, atol=1e-6)
    a, b = flatten(one), flatten(two)
    for key in a:
        assert b[key].dtype == np.float32, key
        assert rel_error(b[key], a[key]) < 1e-5, key
    again, _ = make_grad_fn(net, 0.1, shards=2)(params, x, y, None)
    for key, g in flatten(again).items():
        np.testing.assert_array_equal(g, b[key], err_msg=key)  # deterministic run to run


def test_sharded_dropout_draws_per_shard_streams_from_the_step_rng():
    from tinyvit.run.train import make_grad_fn
    from tinyvit.tree import flatten

    net, params, x, y = _step_case(dropout=0.3)
    grad_fn = make_grad_fn(net, 0.0, shards=2)
    g1, _ = grad_fn(params, x, y, np.random.default_rng(5))
    g2, _ = grad_fn(params, x, y, np.random.default_rng(5))
    g3, _ = grad_fn(params, x, y, np.random.default_rng(6))
    for key in flatten(g1):
        np.testing.assert_array_equal(flatten(g1)[key], flatten(g2)[key], err_msg=key)
    assert any(not np.array_equal(flatten(g1)[k], flatten(g3)[k]) for k in flatten(g1))


def test_sharding_a_sharded_step_runs_it_once_instead_of_deadlocking():
    from tinyvit.fast import sharded
    from tinyvit.run.train import make_grad_fn

    net, params, x, y = _step_case()
    grads, (loss, _) = sharded(make_grad_fn(net, 0.1, shards=2), 2)(params, x, y, None)
    assert np.isfinite(loss)


def test_sharded_map_is_the_same_forward_pass_in_order():
    from tinyvit.fast import sharded_map

    net, params, x, _ = _step_case()
    params["head"]["b"] = np.arange(3, dtype=np.float32)
    one = net.apply(params, x)
    two = sharded_map(lambda xs: net.apply(params, xs), x, 2)  # shards of 4 and 3 rows
    assert two.dtype == np.float32
    np.testing.assert_allclose(two, one, rtol=1e-5, atol=1e-6)
    assert sharded_map(lambda xs: xs * 2, x[:1], 2).shape == (1, 8, 8, 3)  # one row: no threads


def test_map_in_threads_keeps_the_items_order_whichever_thread_finishes_first():
    import threading
    import time

    from tinyvit.fast import map_in_threads

    names = []

    def slow_first(i):  # item 0 finishes last
        time.sleep(0.05 if i == 0 else 0.0)
        names.append(threading.current_thread().name)
        return i * i

    assert map_in_threads(slow_first, range(5), 2) == [0, 1, 4, 9, 16]
    assert any(n.startswith("tinyvit-shard") for n in names)  # it did use the threads
    assert map_in_threads(slow_first, [3], 2) == [9]  # one item: this thread
    assert map_in_threads(slow_first, [], 2) == []


@pytest.mark.parametrize("name", ["cnn-tiny", "vit-cifar-nano"])
def test_chunked_gradient_equals_the_whole_batch(name):
    """fast.chunked: chunks of 3 rows of a batch of 8 (3 + 3 + 2), weighted by their sizes,
    give the whole batch's gradient and loss (float32 rounding), and the same logits."""
    from tinyvit.fast import chunked
    from tinyvit.run import models
    from tinyvit.run.train import make_grad_fn
    from tinyvit.tree import flatten

    net = models.build(name)
    rng = np.random.default_rng(0)
    params = net.init(rng)
    params["head"]["w"] = rng.standard_normal(params["head"]["w"].shape).astype(np.float32)
    x = rng.standard_normal((8, 32, 32, 3)).astype(np.float32)
    y = np.arange(8) % 10
    whole = make_grad_fn(net, 0.1, shards=1)
    g1, (l1, z1) = whole(params, x, y, None)
    g2, (l2, z2) = chunked(whole, 3)(params, x, y, None)
    assert abs(l1 - l2) < 1e-5 and z2.shape == z1.shape
    np.testing.assert_allclose(z2, z1, rtol=1e-4, atol=1e-5)
    a, b = flatten(g1), flatten(g2)
    for k in a:
        assert b[k].dtype == a[k].dtype == np.float32, k
        scale = float(np.abs(a[k]).max()) or 1.0  # float32 rounding, relative to the leaf
        np.testing.assert_allclose(b[k], a[k], rtol=1e-4, atol=1e-5 * scale, err_msg=k)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("route", ["blas", "numpy"])
def test_matmul_into_writes_and_adds_the_product_in_place(dtype, route, monkeypatch):
    """out = a @ b or out += a @ b, into a view of a bigger array, for row-major operands, their
    transposes and a strided one (which BLAS cannot read in place); the rest of the array
    untouched. "numpy": as where no OpenBLAS is found."""
    from tinyvit.fast import blas

    calls = []
    if route == "numpy":
        monkeypatch.setattr(blas, "_gemm", lambda dtype: None)
    elif blas._gemm(np.dtype(dtype)) is None:
        pytest.skip("NumPy's BLAS here is not an OpenBLAS with cblas_?gemm")
    else:  # count the BLAS calls, to know this route was taken
        gemm = blas._gemm(np.dtype(dtype))
        monkeypatch.setitem(blas._GEMM, np.dtype(dtype),
                            lambda *args: calls.append(1) or gemm(*args))
    rng = np.random.default_rng(0)
    a = rng.standard_normal((40, 6)).astype(dtype)
    b = rng.standard_normal((6, 5)).astype(dtype)
    eps = 1e-5 if dtype == np.float32 else 1e-12
    tol = dict(rtol=eps, atol=eps)
    # row-major; a column-major a; a column-major b; every other row of a (a longer row
    # stride); every other column (BLAS cannot read it in place: the NumPy route)
    for a_, b_ in [(a, b), (a.T.copy().T, b), (a, b.T.copy().T), (a[::2], b),
                   (np.repeat(a, 2, axis=1)[:, ::2], b)]:
        big = rng.standard_normal((len(a_) + 7, 5)).astype(dtype)
        before = big.copy()
        out = big[3:3 + len(a_)]
        blas.matmul_into(a_, b_, out)
        np.testing.assert_allclose(out, a_ @ b_, **tol)
        blas.matmul_into(a_, b_, out, accumulate=True)
        np.testing.assert_allclose(out, 2 * (a_ @ b_), **tol)
        assert out.dtype == dtype
        np.testing.assert_array_equal(big[:3], before[:3])  # rows outside the view: untouched
        np.testing.assert_array_equal(big[3 + len(a_):], before[3 + len(a_):])
    # the first four pairs are BLAS-readable in place (2 calls each), the last one is not
    assert len(calls) == (8 if route == "blas" else 0)
