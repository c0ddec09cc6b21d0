"""The model family follows the config's type, never its name: a CNN called "my-resnet" is a
CNN and a ViT called "cnn-lookalike" a ViT, through init, a training step and a checkpoint."""
import numpy as np
import pytest

from tinyvit import configs, optim
from tinyvit.run import checkpoint, models
from tinyvit.run import train as T

CASES = [
    (configs.CNNConfig(name="my-resnet", widths=(8, 16), stem=8, depth=1), "cnn", "stages"),
    (configs.ViTConfig(name="cnn-lookalike", width=16, depth=1, heads=2, mlp_dim=32), "vit",
     "blocks"),
    (configs.ViTConfig(name="hybrid-lookalike", width=16, depth=1, heads=2, mlp_dim=32,
                       pos="sincos"), "vit", "blocks"),
    (configs.HybridConfig(name="vit-lookalike", widths=(8, 16), width=16, depth=1, heads=2,
                          mlp_dim=32), "hybrid", "backbone"),
]


@pytest.mark.parametrize("cfg, family, key", CASES, ids=lambda c: getattr(c, "name", None))
def test_a_config_is_of_the_family_of_its_type(tmp_path, cfg, family, key):
    assert configs.family(cfg) == family
    net = models.from_config(cfg)
    params = net.init(np.random.default_rng(0))
    assert key in params  # the family's own parameter tree
    x = np.random.default_rng(1).normal(size=(4, 32, 32, 3)).astype(np.float32)
    y = np.array([0, 1, 2, 3])
    grad_fn = T.make_grad_fn(net, 0.1, shards=1)
    params, opt, loss, logits, _ = T.train_step(grad_fn, params, optim.init_adam(params), x, y,
                                                np.random.default_rng(2), 1e-3, 0.05, 1.0)
    assert np.isfinite(loss) and logits.shape == (4, 10)
    meta = dict(model=models.config_dict(net), classes=[str(i) for i in range(10)],
                mean=[0.0] * 3, std=[1.0] * 3)
    checkpoint.save_model(tmp_path / "m.npz", params, meta)
    back, loaded, _ = checkpoint.load_model(tmp_path / "m.npz")
    assert back.cfg == cfg and configs.family(back.cfg) == family
    np.testing.assert_array_equal(back.apply(loaded, x), net.apply(params, x))


def test_checkpoints_without_a_stored_type_read_as_they_were_written():
    d = models.config_dict(models.build("cnn-tiny"))
    del d["type"]  # written before configs stored their type
    assert configs.family(models.from_config_dict(d).cfg) == "cnn"
    with pytest.raises(ValueError, match="type: expected one of ViTConfig"):
        models.from_config_dict({**d, "type": "ResNetConfig"})


def test_preset_names_are_found_in_their_tables():
    assert [configs.family(n) for n in ("cnn-air", "hybrid-tiny", "vit-b16")] == \
        ["cnn", "hybrid", "vit"]
    with pytest.raises(ValueError, match="unknown model 'cnn-huge'.*cnn-tiny"):
        models.build("cnn-huge")
