"""Fine-tuning from a checkpoint (tinyvit/run/transfer.py): every family keeps its encoder
unchanged and gets a zero head of the new size (paper, Sec. 3.2)."""
import numpy as np
import pytest

from tinyvit.run import checkpoint, models
from tinyvit.run.transfer import load_pretrained, transfer
from tinyvit.tree import flatten, map_with_path

FAMILIES = ["vit-cifar-nano", "cnn-air-small", "hybrid-tiny"]  # ViT, CNN, hybrid


def pretrained(name, classes=7, seed=0):
    """A model of `classes` classes whose every array is moved off its init (so a head left
    at zero, or an encoder array swapped or re-drawn, cannot pass unseen)."""
    net = models.build(name, num_classes=classes)
    rng = np.random.default_rng(seed)
    def moved(path, x):
        y = x + rng.standard_normal(x.shape)
        return (abs(y) + 0.5 if path.endswith("var") else y).astype(x.dtype)  # variances > 0
    return net, map_with_path(moved, net.init(rng))


@pytest.mark.parametrize("name", FAMILIES)
def test_transfer_keeps_the_encoder_and_zeroes_a_head_of_the_new_size(name):
    net, params = pretrained(name)
    new_net, new = transfer(net, params, 10)
    assert new_net.cfg.num_classes == 10 and models.configs.family(new_net.cfg) == \
        models.configs.family(net.cfg)
    old_flat, new_flat = flatten(params), flatten(new)
    assert old_flat.keys() == new_flat.keys()
    for key, x in old_flat.items():
        if key.startswith("head/"):
            continue
        assert new_flat[key].dtype == x.dtype, key
        np.testing.assert_array_equal(new_flat[key], x, err_msg=key)
        assert not np.shares_memory(new_flat[key], x), key
    d = params["head"]["w"].shape[0]
    assert new["head"]["w"].shape == (d, 10) and new["head"]["b"].shape == (10,)
    assert not new["head"]["w"].any() and not new["head"]["b"].any()
    assert new["head"]["w"].dtype == params["head"]["w"].dtype
    # the new params are what the new model expects, and it runs
    like = flatten(new_net.init(np.random.default_rng(1)))
    assert {k: v.shape for k, v in like.items()} == {k: v.shape for k, v in new_flat.items()}
    x = np.random.default_rng(2).standard_normal((2, 32, 32, 3)).astype(np.float32)
    logits = new_net.apply(new, x)
    assert logits.shape == (2, 10) and not logits.any()  # zero head: every logit 0
    # the encoder is the pre-trained one: its features are unchanged
    probe = {**new, "head": params["head"]}
    np.testing.assert_allclose(net.apply(probe, x), net.apply(params, x), rtol=1e-5, atol=1e-5)


def test_the_pretrained_params_stay_as_they_were():
    net, params = pretrained("vit-cifar-nano")
    before = {k: v.copy() for k, v in flatten(params).items()}
    _, new = transfer(net, params, 3)
    for v in flatten(new).values():
        v += 1.0  # an optimiser's in-place update
    for k, v in flatten(params).items():
        np.testing.assert_array_equal(v, before[k], err_msg=k)


def test_load_pretrained_reads_a_checkpoint_of_each_family(tmp_path):
    for name in FAMILIES:
        net, params = pretrained(name, classes=5)
        meta = dict(model=models.config_dict(net), classes=[f"fractal-{i}" for i in range(5)],
                    mean=[10.0, 11.0, 12.0], std=[40.0, 41.0, 42.0])
        path = tmp_path / f"{name}.npz"
        checkpoint.save_model(path, params, meta)
        new_net, new, read_meta = load_pretrained(path, 10)
        assert new_net.cfg.num_classes == 10 and read_meta["classes"] == meta["classes"]
        found = flatten(new)
        for key, x in flatten(params).items():
            if not key.startswith("head/"):
                np.testing.assert_array_equal(found[key], x, err_msg=f"{name} {key}")
        assert new["head"]["w"].shape[1] == 10 and not new["head"]["w"].any()


def test_bad_transfers_say_what_was_expected():
    net, params = pretrained("cnn-air-small")
    for bad in (0, 2.5, "10"):
        with pytest.raises(ValueError, match="num_classes: expected an integer"):
            transfer(net, params, bad)
    with pytest.raises(ValueError, match="expected params with a head"):
        transfer(net, {k: v for k, v in params.items() if k != "head"}, 10)
    other = models.build("cnn-air-small", num_classes=3)
    with pytest.raises(ValueError, match="expected the same"):
        transfer(other, params, 10)
