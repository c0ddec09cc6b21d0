"""The array backend: the same model code and autograd gradients on non-NumPy arrays.

CI has no GPU, so the device path is tested through `fake_cupy`, a strict CPU stand-in for
CuPy (it refuses implicit host conversion and mixing with numpy arrays). Because the stand-in
computes with NumPy underneath, its results must equal the NumPy ones *exactly*; and every
gradient must come back as a device array (nothing silently fell back to the host).
The `gpu` tests do the same with real CuPy (tolerances: a GPU sums in another order); they
skip without CuPy or a device.
"""
import numpy as np
import pytest
from autograd import grad
from autograd.extend import vspace

import autograd.numpy as anp
import autograd.numpy.numpy_vjps as stock_vjps
import fake_cupy as fc
from autograd.numpy.numpy_vspaces import ArrayVSpace
from gradcheck import randomize
from tinyvit import backend, ops, vit
from tinyvit.configs import ViTConfig
from tinyvit.tree import flatten, tree_map

backend.register_array_type(fc.FakeArray, fc)


def vit_config(pool):
    return ViTConfig(image_size=8, patch_size=4, channels=3, width=8, depth=2, heads=2,
                     mlp_dim=16, num_classes=3, pool=pool, dropout=0.1)


def random_params(init, cfg, seed=0):
    """Parameters with every leaf random (the zero head would zero every other gradient)."""
    rng = np.random.default_rng(seed)
    return tree_map(lambda a: a.astype(np.float32), randomize(init(rng, cfg), rng, 0.5))


def batch(cfg, b=4, seed=1):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((b, cfg.image_size, cfg.image_size, cfg.channels)).astype(np.float32)
    return x, rng.integers(0, cfg.num_classes, b)


def vit_step(params, x, y, cfg):
    """Logits (eval) and the training loss's value and gradients (label smoothing, dropout on)."""
    logits = vit.vit(params, x, cfg)
    loss = vit.loss_fn(params, x, y, cfg, 0.1, True, np.random.default_rng(7))
    grads = grad(vit.loss_fn)(params, x, y, cfg, 0.1, True, np.random.default_rng(7))
    return logits, loss, grads


def assert_all_on(xp_type, tree):
    bad = {k: type(v).__name__ for k, v in flatten(tree).items() if type(v) is not xp_type}
    assert not bad, f"gradients that fell back to the host: {bad}"


# ---------------------------------------------------------------- the stand-in is strict


def test_fake_cupy_refuses_host_arrays_and_implicit_transfers():
    a = fc.asarray(np.arange(6.0).reshape(2, 3))  # explicit transfer in: fine
    h = np.ones((2, 3))
    with pytest.raises(TypeError):
        a + h  # mixing in a ufunc, either order
    with pytest.raises(TypeError):
        h * a
    with pytest.raises(TypeError):
        a + np.array(2.0)  # CuPy refuses 0-d host arrays in arithmetic too
    with pytest.raises(TypeError):
        np.concatenate([a, h])  # mixing in an array function
    with pytest.raises(TypeError):
        np.asarray(a)  # implicit device-to-host copy
    with pytest.raises(TypeError):
        np.zeros((2, 3)) + a.sum(0, keepdims=True)
    with pytest.raises(TypeError):
        a[0] = np.ones(3)
    with pytest.raises(TypeError):
        a.view(np.ndarray)  # what autograd's concatenate does
    with pytest.raises(TypeError):
        np.reshape(a, (3, 2), order=None)  # what autograd's reshape VJP does
    # what works, as on CuPy: scalars, numpy scalars, explicit transfers, 0-d reductions
    s = (a * 2.0 + np.float32(1.0)).sum()
    assert type(s) is fc.FakeArray and s.shape == () and float(s) == 36.0
    np.testing.assert_array_equal(a.get(), np.arange(6.0).reshape(2, 3))
    assert type(a.get()) is np.ndarray and fc.asnumpy(a).shape == (2, 3)
    assert type(np.exp(a)) is fc.FakeArray and type(np.split(a, 3, axis=1)[0]) is fc.FakeArray


def test_stock_autograd_falls_back_to_the_host_on_the_stand_in():
    """What the backend fixes: autograd's own vspace, sum VJP, concatenate and reshape VJP."""
    g = fc.ones((2, 1), dtype=np.float32)
    with pytest.raises(TypeError):
        ArrayVSpace(g)  # np.asarray(value)
    with pytest.raises(TypeError):
        stock_vjps.repeat_to_match_shape(g, (2, 3), np.float32, 1, True)  # onp.zeros
    with pytest.raises(TypeError):
        backend._ORIGINAL_CONCATENATE_ARGS.fun(0, g, g)  # .view(numpy.ndarray)
    cfg = vit_config("gap")
    params = tree_map(fc.asarray, random_params(vit.init_vit, cfg))
    x, y = batch(cfg)
    backend.uninstall_autograd_overrides()
    try:
        with pytest.raises(TypeError):
            grad(vit.loss_fn)(params, fc.asarray(x), fc.asarray(y), cfg)
    finally:
        backend.install_autograd_overrides()


# ---------------------------------------------------------------- API


def test_array_module_and_vspace():
    a = fc.zeros((2, 3), dtype=np.float32)
    assert backend.array_module(np.zeros(3)) is np
    assert backend.array_module(a) is fc
    vs = vspace(a)
    for v in (vs.zeros(), vs.ones(), next(vs.standard_basis())):
        assert type(v) is fc.FakeArray and v.shape == (2, 3) and v.dtype == np.float32
    assert vs.size == 6 and vspace(fc.zeros((), np.float64)).size == 1
    seen = []
    grad(lambda x: (seen.append(backend.array_module(x)), anp.sum(x * x))[1])(a)
    assert seen == [fc]  # boxes are unwrapped


def test_use_backend_and_moving_trees():
    cfg = vit_config("cls")
    params = vit.init_vit(np.random.default_rng(0), cfg)
    tree = {"params": params, "step": 3, "lr": 0.1, "none": None}
    try:
        assert backend.use_backend(fc) is fc and backend.current_backend() is fc
        dev = backend.to_device(tree)
        assert_all_on(fc.FakeArray, dev["params"])
        assert dev["step"] == 3 and dev["lr"] == 0.1 and dev["none"] is None
        back = backend.to_host(dev)
        for (k, a), b in zip(flatten(params).items(), flatten(back["params"]).values()):
            assert type(b) is np.ndarray and b.dtype == a.dtype, k
            np.testing.assert_array_equal(b, a)
        assert backend.use_backend("numpy") is np
        assert backend.to_device(dev)["params"]["pos"].dtype == np.float32  # numpy = to_host
    finally:
        backend.use_backend("numpy")
    with pytest.raises(ValueError, match="expected 'numpy' or 'cupy'"):
        backend.use_backend("torch")


def test_use_backend_cupy_without_cupy_is_a_clear_error():
    if backend.cupy_available():
        pytest.skip("CuPy and a GPU are present")
    with pytest.raises(ValueError, match="backend 'cupy'"):
        backend.use_backend("cupy")
    assert backend.current_backend() is np


# ---------------------------------------------------------------- a ViT training step


@pytest.mark.parametrize("pool", ["cls", "gap"])
def test_vit_logits_and_every_gradient_equal_numpy(pool):
    cfg = vit_config(pool)
    params = random_params(vit.init_vit, cfg)
    x, y = batch(cfg)
    logits, loss, grads = vit_step(params, x, y, cfg)
    d_logits, d_loss, d_grads = vit_step(backend.to_device(params, fc), fc.asarray(x),
                                         fc.asarray(y), cfg)
    assert type(d_logits) is fc.FakeArray and type(d_loss) is fc.FakeArray
    np.testing.assert_array_equal(d_logits.get(), logits)
    assert float(d_loss) == float(loss)
    assert_all_on(fc.FakeArray, d_grads)
    for k, g in flatten(grads).items():
        dg = flatten(d_grads)[k]
        assert dg.dtype == g.dtype == np.float32, k
        assert np.abs(g).max() > 0, k  # a real test: no all-zero gradient
        np.testing.assert_array_equal(dg.get(), g, err_msg=k)


def test_numpy_gradients_are_bit_identical_with_the_overrides_installed():
    cfg = vit_config("gap")
    params = random_params(vit.init_vit, cfg)
    x, y = batch(cfg)
    backend.uninstall_autograd_overrides()
    try:
        stock = vit_step(params, x, y, cfg)
    finally:
        backend.install_autograd_overrides()
    ours = vit_step(params, x, y, cfg)
    np.testing.assert_array_equal(ours[0], stock[0])
    assert ours[1] == stock[1]
    for k, g in flatten(stock[2]).items():
        np.testing.assert_array_equal(flatten(ours[2])[k], g, err_msg=k)
        assert type(flatten(ours[2])[k]) is np.ndarray


def test_cnn_logits_and_every_gradient_equal_numpy():
    cnn = pytest.importorskip("tinyvit.cnn")
    cfg = cnn.CNNConfig(image_size=8, channels=3, stem=4, widths=(4, 8), depth=2, groups=2,
                        num_classes=3, dropout=0.1)

    def loss_fn(p, x, y):
        return ops.cross_entropy(cnn.cnn(p, x, cfg, True, np.random.default_rng(7)), y, 0.1)

    params = random_params(cnn.init_cnn, cfg)
    x, y = batch(cfg, b=2)
    grads = grad(loss_fn)(params, x, y)
    d_params, d_x, d_y = backend.to_device(params, fc), fc.asarray(x), fc.asarray(y)
    np.testing.assert_array_equal(cnn.cnn(d_params, d_x, cfg).get(), cnn.cnn(params, x, cfg))
    d_grads = grad(loss_fn)(d_params, d_x, d_y)
    assert_all_on(fc.FakeArray, d_grads)
    for k, g in flatten(grads).items():
        np.testing.assert_array_equal(flatten(d_grads)[k].get(), g, err_msg=k)


# ---------------------------------------------------------------- every replaced VJP, one by one

OP_CASES = {
    "sum": lambda x: anp.sum(anp.sin(anp.sum(x, axis=1))),
    "sum-all": lambda x: anp.sum(x * x),
    "sum-keepdims": lambda x: anp.sum(anp.sin(x.sum(axis=(0, 1), keepdims=True))),
    "mean": lambda x: anp.sum(anp.sin(anp.mean(x, axis=0))),
    "prod": lambda x: anp.sum(anp.prod(x, axis=1)),
    "var": lambda x: anp.sum(anp.var(x, axis=1)),
    "std": lambda x: anp.sum(anp.std(x, axis=0)),
    "max": lambda x: anp.sum(anp.sin(anp.max(x, axis=1))),
    "min-all": lambda x: anp.min(x) * 3.0,
    "reshape": lambda x: anp.sum(anp.sin(anp.reshape(x, (4, 3))) * anp.reshape(x, (2, 6))[0, 0]),
    "ravel": lambda x: anp.sum(anp.sin(anp.ravel(x)) * 2.0),
    "transpose": lambda x: anp.sum(anp.sin(x.T) * anp.transpose(x, (1, 0))),
    "broadcast_to": lambda x: anp.sum(anp.sin(anp.broadcast_to(x[:1], (3, 4)))),
    "where": lambda x: anp.sum(anp.where(x > 0, x * x, 0.5 * x)),
    "dot": lambda x: anp.sum(anp.sin(anp.dot(x, x.T))),
    "dot-vec": lambda x: anp.sum(anp.dot(x, x[0]) * anp.dot(x[0], x.T)),
    "tensordot": lambda x: anp.sum(anp.sin(anp.tensordot(x, x, axes=([1], [1])))),
    "tensordot-int": lambda x: anp.sum(anp.tensordot(x, anp.sin(x), axes=2)),
    "inner": lambda x: anp.sum(anp.sin(anp.inner(x, x))),
    "einsum": lambda x: anp.sum(anp.sin(anp.einsum("ij,kj->ik", x, x))),
    "einsum-summed": lambda x: anp.sum(anp.sin(anp.einsum("ij->i", x))),
    "getitem-basic": lambda x: anp.sum(anp.sin(x[:, 1:3]) + x[1, :2]),
    "getitem-repeated": lambda x: anp.sum(anp.sin(x[[0, 0, 2]])),
    "concatenate": lambda x: anp.sum(anp.sin(anp.concatenate([x, 2.0 * x], axis=1))),
    "stack-split": lambda x: anp.sum(anp.sin(anp.stack(anp.split(x, 2, axis=1), axis=0))),
    "array-of-rows": lambda x: anp.sum(anp.sin(anp.array([x[0], 2.0 * x[2]]))),
    "astype": lambda x: anp.sum(anp.sin(x.astype(np.float32))),
}


@pytest.mark.parametrize("name", sorted(OP_CASES))
def test_each_device_vjp_equals_numpy(name):
    f = OP_CASES[name]
    x = np.random.default_rng(3).standard_normal((3, 4))
    g = grad(f)(x)
    dg = grad(f)(fc.asarray(x))
    assert type(dg) is fc.FakeArray and dg.dtype == g.dtype
    np.testing.assert_array_equal(dg.get(), g)


# ---------------------------------------------------------------- real CuPy on a GPU


def _cupy():
    cupy = pytest.importorskip("cupy")
    if not backend.cupy_available():
        pytest.skip("CuPy is installed but sees no CUDA device")
    backend.register_array_type(cupy.ndarray, cupy)
    return cupy


def _close(dev, ref, what):
    scale = max(float(np.abs(ref).max()), 1e-6)
    np.testing.assert_allclose(dev, ref, rtol=1e-4, atol=1e-5 * scale, err_msg=what)


@pytest.mark.gpu
@pytest.mark.parametrize("pool", ["cls", "gap"])
def test_cupy_vit_logits_and_every_gradient_match_numpy(pool):
    cupy = _cupy()
    cfg = vit_config(pool)
    params = random_params(vit.init_vit, cfg)
    x, y = batch(cfg)
    logits, loss, grads = vit_step(params, x, y, cfg)
    d_logits, d_loss, d_grads = vit_step(backend.to_device(params, cupy), cupy.asarray(x),
                                         cupy.asarray(y), cfg)
    _close(d_logits.get(), logits, "logits")
    _close(float(d_loss), float(loss), "loss")
    assert_all_on(cupy.ndarray, d_grads)
    for k, g in flatten(grads).items():
        dg = flatten(d_grads)[k]
        assert dg.dtype == np.float32, k
        _close(dg.get(), g, k)


@pytest.mark.gpu
def test_cupy_cnn_gradients_match_numpy():
    cupy = _cupy()
    cnn = pytest.importorskip("tinyvit.cnn")
    cfg = cnn.CNNConfig(image_size=8, channels=3, stem=4, widths=(4, 8), depth=2, groups=2,
                        num_classes=3, dropout=0.1)

    def loss_fn(p, x, y):
        return ops.cross_entropy(cnn.cnn(p, x, cfg, True, np.random.default_rng(7)), y, 0.1)

    params = random_params(cnn.init_cnn, cfg)
    x, y = batch(cfg, b=2)
    grads = grad(loss_fn)(params, x, y)
    d_grads = grad(loss_fn)(backend.to_device(params, cupy), cupy.asarray(x), cupy.asarray(y))
    assert_all_on(cupy.ndarray, d_grads)
    for k, g in flatten(grads).items():
        _close(flatten(d_grads)[k].get(), g, k)


@pytest.mark.gpu
@pytest.mark.parametrize("name", sorted(OP_CASES))
def test_cupy_each_device_vjp_matches_numpy(name):
    cupy = _cupy()
    x = np.random.default_rng(3).standard_normal((3, 4))
    dg = grad(OP_CASES[name])(cupy.asarray(x))
    assert type(dg) is cupy.ndarray
    np.testing.assert_allclose(dg.get(), grad(OP_CASES[name])(x), rtol=1e-9, atol=1e-12)
