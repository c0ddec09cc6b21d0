"""One interface over both model families, so training code needn't care which it runs.

`build(name, num_classes, image_size)` returns a `Model`: its config, `init(rng)` and
`apply(params, images, train=False, rng=None) -> logits`. ViT names come from
`tinyvit.configs`' ViT presets, CNN names from its CNN presets (`configs.family` tells which).
"""
import dataclasses
from typing import Any, Callable, NamedTuple

from .. import cnn, configs, vit


class Model(NamedTuple):
    """A model family bound to one config: plain functions, no state."""

    name: str
    cfg: Any
    init: Callable  # init(rng) -> params
    apply: Callable  # apply(params, images, train=False, rng=None) -> logits (B, K)


FAMILIES = {  # family: (config class, init(rng, cfg), apply(params, images, cfg, train, rng))
    "vit": (configs.ViTConfig, vit.init_vit, vit.vit),
    "cnn": (configs.CNNConfig, cnn.init_cnn, cnn.cnn),
}


def _bind(cfg):
    """The Model for a ViTConfig or CNNConfig."""
    _, init, apply = FAMILIES[configs.family(cfg)]
    return Model(cfg.name, cfg, lambda rng: init(rng, cfg),
                 lambda p, x, train=False, rng=None: apply(p, x, cfg, train, rng))


def build(name, num_classes=None, image_size=None, **overrides):
    """The Model called `name` (a ViT preset, a paper ViT, or a CNN preset)."""
    if configs.family(name) == "cnn":
        cfg = configs.get_cnn_config(name, num_classes=num_classes, image_size=image_size)
        cfg = dataclasses.replace(cfg, **overrides) if overrides else cfg
    else:
        cfg = configs.get_config(name, image_size=image_size, num_classes=num_classes,
                                 **overrides)
    return _bind(cfg)


def config_dict(model):
    """The model's config as a JSON-able dict (stored in checkpoints)."""
    return dataclasses.asdict(model.cfg)


def from_config_dict(d):
    """Rebuild a Model from `config_dict` output (JSON lists become tuples again)."""
    d = {k: tuple(v) if isinstance(v, list) else v for k, v in d.items()}
    config_class = FAMILIES[configs.family(d["name"])][0]
    return _bind(config_class(**d))
