"""tinyvit.device: the same model code and autograd gradients on non-NumPy arrays.

CI has no GPU, so the device path is tested through `fake_cupy`, a strict CPU stand-in for
CuPy (it refuses implicit host conversion and mixing with numpy arrays). Because the stand-in
computes with NumPy underneath, its results must equal the NumPy ones *exactly*; and every
gradient must come back as a device array (nothing silently fell back to the host). The ViT
and CNN run both with their fast primitives and with the plain formulas (`formulas` fixture).
The `gpu` tests do the same with real CuPy (tolerances: a GPU sums in another order); they
skip without CuPy or a device.
"""
import types

import numpy as np
import pytest
from autograd import grad
from autograd.core import primitive_vjps
from autograd.extend import vspace

import autograd.numpy as anp
import autograd.numpy.numpy_vjps as stock_vjps
import autograd.numpy.numpy_wrapper as anp_wrapper
import fake_cupy as fc
from autograd.numpy.numpy_vspaces import ArrayVSpace
from gradcheck import randomize
from tinyvit import cnn, device, fast, ops, vit
from tinyvit.configs import ViTConfig
from tinyvit.device import autograd_cupy
from tinyvit.tree import flatten, tree_map

device.register_array_type(fc.FakeArray, fc)


@pytest.fixture(params=["fast", "plain"])
def formulas(request):
    """The model on its fast twins ("fast", as training runs it) or on the formulas ("plain":
    autograd's generic VJPs, the configuration students run on a GPU)."""
    with (fast.twins() if request.param == "fast" else fast.formulas()):
        yield request.param


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


def cnn_case(groups):
    """A small CNN config and its training loss (label smoothing, dropout on)."""
    cfg = cnn.CNNConfig(image_size=8, channels=3, stem=4, widths=(4, 8), depth=2, groups=groups,
                        num_classes=3, dropout=0.1)

    def loss_fn(p, x, y):
        return ops.cross_entropy(cnn.cnn(p, x, cfg, True, np.random.default_rng(7)), y, 0.1)

    return cfg, loss_fn


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
    """What tinyvit.device fixes: autograd's own vspace, sum VJP, concatenate and reshape VJP."""
    g = fc.ones((2, 1), dtype=np.float32)
    with pytest.raises(TypeError):
        ArrayVSpace(g)  # np.asarray(value)
    with pytest.raises(TypeError):
        stock_vjps.repeat_to_match_shape(g, (2, 3), np.float32, 1, True)  # onp.zeros
    with pytest.raises(TypeError):
        autograd_cupy._ORIGINAL_FORWARDS["concatenate_args"].fun(0, g, g)  # .view(numpy.ndarray)
    cfg = vit_config("gap")
    params = tree_map(fc.asarray, random_params(vit.init_vit, cfg))
    x, y = batch(cfg)
    autograd_cupy.uninstall_autograd_overrides()
    try:
        with pytest.raises(TypeError):
            grad(vit.loss_fn)(params, fc.asarray(x), fc.asarray(y), cfg)
    finally:
        autograd_cupy.install_autograd_overrides()


# ---------------------------------------------------------------- API


def test_array_module_and_vspace():
    a = fc.zeros((2, 3), dtype=np.float32)
    assert device.array_module(np.zeros(3)) is np
    assert device.array_module(a) is fc
    vs = vspace(a)
    for v in (vs.zeros(), vs.ones(), next(vs.standard_basis())):
        assert type(v) is fc.FakeArray and v.shape == (2, 3) and v.dtype == np.float32
    assert vs.size == 6 and vspace(fc.zeros((), np.float64)).size == 1
    seen = []
    grad(lambda x: (seen.append(device.array_module(x)), anp.sum(x * x))[1])(a)
    assert seen == [fc]  # boxes are unwrapped


def test_use_backend_and_moving_trees():
    cfg = vit_config("cls")
    params = vit.init_vit(np.random.default_rng(0), cfg)
    tree = {"params": params, "step": 3, "lr": 0.1, "none": None}
    try:
        assert device.use_backend(fc) is fc and device.current_backend() is fc
        dev = device.to_device(tree)
        assert_all_on(fc.FakeArray, dev["params"])
        assert dev["step"] == 3 and dev["lr"] == 0.1 and dev["none"] is None
        back = device.to_host(dev)
        for (k, a), b in zip(flatten(params).items(), flatten(back["params"]).values()):
            assert type(b) is np.ndarray and b.dtype == a.dtype, k
            np.testing.assert_array_equal(b, a)
        assert device.use_backend("numpy") is np
        assert device.to_device(dev)["params"]["pos"].dtype == np.float32  # numpy = to_host
    finally:
        device.use_backend("numpy")
    with pytest.raises(ValueError, match="expected 'numpy' or 'cupy'"):
        device.use_backend("torch")


def test_use_backend_needs_arrays_that_name_their_module():
    """`array_module` must find the module from its arrays (CuPy's, or `__array_module__`)."""
    host_arrays = types.ModuleType("host_arrays")
    host_arrays.ndarray, host_arrays.empty = np.ndarray, np.empty
    with pytest.raises(ValueError, match="ndarray.__array_module__"):
        device.use_backend(host_arrays)
    assert device.current_backend() is np


def test_use_backend_cupy_without_cupy_is_a_clear_error():
    if device.cupy_available():
        pytest.skip("CuPy and a GPU are present")
    with pytest.raises(ValueError, match="backend 'cupy'"):
        device.use_backend("cupy")
    assert device.current_backend() is np


# ---------------------------------------------------------------- a ViT training step


@pytest.mark.parametrize("pool", ["cls", "gap"])
def test_vit_logits_and_every_gradient_equal_numpy(pool, formulas):
    cfg = vit_config(pool)
    params = random_params(vit.init_vit, cfg)
    x, y = batch(cfg)
    logits, loss, grads = vit_step(params, x, y, cfg)
    d_logits, d_loss, d_grads = vit_step(device.to_device(params, fc), fc.asarray(x),
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
    autograd_cupy.uninstall_autograd_overrides()
    try:
        stock = vit_step(params, x, y, cfg)
    finally:
        autograd_cupy.install_autograd_overrides()
    ours = vit_step(params, x, y, cfg)
    np.testing.assert_array_equal(ours[0], stock[0])
    assert ours[1] == stock[1]
    for k, g in flatten(stock[2]).items():
        np.testing.assert_array_equal(flatten(ours[2])[k], g, err_msg=k)
        assert type(flatten(ours[2])[k]) is np.ndarray


@pytest.mark.parametrize("groups", [2, 0])
def test_cnn_logits_and_every_gradient_equal_numpy(groups, formulas):
    cfg, loss_fn = cnn_case(groups)
    params = random_params(cnn.init_cnn, cfg)
    x, y = batch(cfg, b=2)
    grads = grad(loss_fn)(params, x, y)
    d_params, d_x, d_y = device.to_device(params, fc), fc.asarray(x), fc.asarray(y)
    np.testing.assert_array_equal(cnn.cnn(d_params, d_x, cfg).get(), cnn.cnn(params, x, cfg))
    d_grads = grad(loss_fn)(d_params, d_x, d_y)
    assert_all_on(fc.FakeArray, d_grads)
    for k, g in flatten(grads).items():
        np.testing.assert_array_equal(flatten(d_grads)[k].get(), g, err_msg=k)


# ---------------------------------------------------------------- every override, one by one

OP_CASES = {
    "sum": lambda x: anp.sum(anp.sin(anp.sum(x, axis=1))),
    "sum-all": lambda x: anp.sum(x * x),
    "sum-keepdims": lambda x: anp.sum(anp.sin(x.sum(axis=(0, 1), keepdims=True))),
    "max": lambda x: anp.sum(anp.sin(anp.max(x, axis=1))),
    "max-axes": lambda x: anp.sum(anp.sin(x.reshape(3, 2, 2).max(axis=(0, 2)))),
    "reshape": lambda x: anp.sum(anp.sin(anp.reshape(x, (4, 3))) * anp.reshape(x, (2, 6))[0, 0]),
    "transpose": lambda x: anp.sum(anp.sin(x.T) * anp.transpose(x, (1, 0))),
    "broadcast_to": lambda x: anp.sum(anp.sin(anp.broadcast_to(x[:1], (3, 4)))),
    "getitem-basic": lambda x: anp.sum(anp.sin(x[:, 1:3]) + x[1, :2]),
    "getitem-repeated": lambda x: anp.sum(anp.sin(x[[0, 0, 2]])),
    "concatenate": lambda x: anp.sum(anp.sin(anp.concatenate([x, 2.0 * x], axis=1))),
    "stack-split": lambda x: anp.sum(anp.sin(anp.stack(anp.split(x, 2, axis=1), axis=0))),
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


def test_every_override_is_reached_by_a_model_gradient(monkeypatch):
    """tinyvit.device replaces only what the model needs: the ViT ("cls", "gap") and CNN
    gradients, with the fast primitives and with the plain formulas, reach every override."""
    reached = set()

    def spy(name, f, inputs):
        def spied(*args):
            if autograd_cupy._on_device(inputs(args)):
                reached.add(name)
            return f(*args)
        return spied

    for fun in autograd_cupy._device_vjps():  # vjp_argnums(argnums, ans, args, kwargs)
        monkeypatch.setitem(primitive_vjps, fun,
                            spy(fun.__name__, primitive_vjps[fun], lambda a: a[2]))
    for name in autograd_cupy._FORWARD_TWINS:  # looked up at call time, as the overrides are
        monkeypatch.setattr(anp_wrapper, name, spy(name, getattr(anp_wrapper, name), tuple))
    for switch in (fast.twins, fast.formulas):
        with switch():
            for pool in ("cls", "gap"):
                cfg = vit_config(pool)
                x, y = batch(cfg)
                vit_step(device.to_device(random_params(vit.init_vit, cfg), fc), fc.asarray(x),
                         fc.asarray(y), cfg)
            cfg, loss_fn = cnn_case(2)
            x, y = batch(cfg, b=2)
            grad(loss_fn)(device.to_device(random_params(cnn.init_cnn, cfg), fc), fc.asarray(x),
                          fc.asarray(y))
    assert reached == {fun.__name__ for fun in autograd_cupy._device_vjps()} | \
        set(autograd_cupy._FORWARD_TWINS)


# ---------------------------------------------------------------- real CuPy on a GPU


def _cupy():
    cupy = pytest.importorskip("cupy")
    if not device.cupy_available():
        pytest.skip("CuPy is installed but sees no CUDA device")
    device.register_array_type(cupy.ndarray, cupy)
    return cupy


def _close(dev, ref, what):
    scale = max(float(np.abs(ref).max()), 1e-6)
    np.testing.assert_allclose(dev, ref, rtol=1e-4, atol=1e-5 * scale, err_msg=what)


@pytest.mark.gpu
@pytest.mark.parametrize("pool", ["cls", "gap"])
def test_cupy_vit_logits_and_every_gradient_match_numpy(pool, formulas):
    cupy = _cupy()
    cfg = vit_config(pool)
    params = random_params(vit.init_vit, cfg)
    x, y = batch(cfg)
    logits, loss, grads = vit_step(params, x, y, cfg)
    d_logits, d_loss, d_grads = vit_step(device.to_device(params, cupy), cupy.asarray(x),
                                         cupy.asarray(y), cfg)
    _close(d_logits.get(), logits, "logits")
    _close(float(d_loss), float(loss), "loss")
    assert_all_on(cupy.ndarray, d_grads)
    for k, g in flatten(grads).items():
        dg = flatten(d_grads)[k]
        assert dg.dtype == np.float32, k
        _close(dg.get(), g, k)


@pytest.mark.gpu
@pytest.mark.parametrize("groups", [2, 0])
def test_cupy_cnn_gradients_match_numpy(groups, formulas):
    cupy = _cupy()
    cfg, loss_fn = cnn_case(groups)
    params = random_params(cnn.init_cnn, cfg)
    x, y = batch(cfg, b=2)
    grads = grad(loss_fn)(params, x, y)
    d_grads = grad(loss_fn)(device.to_device(params, cupy), cupy.asarray(x), cupy.asarray(y))
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
