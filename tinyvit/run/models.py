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
PARAM_COUNTS = {"vit": vit.param_count, "cnn": cnn.param_count}  # without allocating


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


def param_count(model):
    """The number of parameters of `model`, computed from its config (nothing allocated)."""
    return PARAM_COUNTS[configs.family(model.cfg)](model.cfg)


# Fields added to the configs after checkpoints were first written, with the value that older
# checkpoints (which lack them) were trained with.
ADDED_FIELDS = {
    "ViTConfig": {"pos": "learned"},
    "CNNConfig": {"norm": "group", "act": "relu", "whiten": False},
}


def from_config_dict(d):
    """Rebuild a Model from `config_dict` output (JSON lists become tuples again).

    One-line ValueError for anything else: not a dict, no name, a field the config class does
    not have or one it has left out, a value it refuses.
    """
    if not isinstance(d, dict) or not isinstance(d.get("name"), str):
        raise ValueError(f"expected a config dict with a 'name', found {str(d)[:60]}")
    config_class = FAMILIES[configs.family(d["name"])][0]
    fields = [f.name for f in dataclasses.fields(config_class)]
    d = {**ADDED_FIELDS.get(config_class.__name__, {}), **d}
    unknown, missing = sorted(set(d) - set(fields)), [f for f in fields if f not in d]
    if unknown:
        raise ValueError(f"{config_class.__name__} has no field {unknown[0]!r} (expected "
                         f"{', '.join(fields)})")
    if missing:
        raise ValueError(f"{config_class.__name__} field(s) missing: {', '.join(missing)}")
    d = {k: tuple(v) if isinstance(v, list) else v for k, v in d.items()}
    return _bind(config_class(**d))
