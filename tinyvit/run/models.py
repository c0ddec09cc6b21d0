"""One interface over the model families (ViT, CNN, hybrid), so training code needn't care
which it runs.

`build(name, num_classes, image_size)` returns a `Model`: its config, `init(rng)`,
`apply(params, images, train=False, rng=None) -> logits`, and the two steps a model with a
whitening stem or BatchNorm takes on data: `from_data(params, images)` before training (the
fixed whitening kernel) and `population_stats(params, images)` before evaluating (BatchNorm's
statistics, its batches one per core: `fast.map_in_threads`); both return the params
unchanged for a model without them. Names come from `tinyvit.configs`' presets; a config's
type says which family it is (`configs.family`).
"""
import dataclasses
from typing import Any, Callable, NamedTuple

from .. import cnn, configs, fast, hybrid, vit


def unchanged(params, images):
    """A model without a whitening stem or BatchNorm needs nothing from data."""
    return params


class Model(NamedTuple):
    """A model family bound to one config: plain functions, no state."""

    name: str
    cfg: Any
    init: Callable  # init(rng) -> params
    apply: Callable  # apply(params, images, train=False, rng=None) -> logits (B, K)
    from_data: Callable = unchanged  # (params, images) -> params with the whitening kernel set
    population_stats: Callable = unchanged  # (params, images) -> params with BatchNorm's set


class Family(NamedTuple):
    """The functions of one model family, each taking the config last but one or last."""

    config: type
    get_config: Callable  # get_config(name, num_classes=, image_size=, **overrides)
    init: Callable  # init(rng, cfg)
    apply: Callable  # apply(params, images, cfg, train, rng)
    from_data: Callable  # from_data(params, images, cfg)
    population_stats: Callable  # population_stats(params, images, cfg, map_batches=map)
    param_count: Callable  # param_count(cfg), without allocating


def _unchanged(params, images, cfg, **_):
    return params


FAMILIES = {
    "vit": Family(configs.ViTConfig, configs.get_config, vit.init_vit, vit.vit, _unchanged,
                  _unchanged, vit.param_count),
    "cnn": Family(configs.CNNConfig, configs.get_cnn_config, cnn.init_cnn, cnn.cnn,
                  cnn.init_whitening, cnn.population_stats, cnn.param_count),
    "hybrid": Family(configs.HybridConfig, configs.get_hybrid_config, hybrid.init_hybrid,
                     hybrid.hybrid, hybrid.init_whitening, hybrid.population_stats,
                     hybrid.param_count),
}


def from_config(cfg):
    """The Model for a ViTConfig, CNNConfig or HybridConfig."""
    f = FAMILIES[configs.family(cfg)]
    return Model(cfg.name, cfg, lambda rng: f.init(rng, cfg),
                 lambda p, x, train=False, rng=None: f.apply(p, x, cfg, train, rng),
                 lambda p, x: f.from_data(p, x, cfg),
                 lambda p, x: f.population_stats(p, x, cfg, map_batches=fast.map_in_threads))


def build(name, num_classes=None, image_size=None, **overrides):
    """The Model called `name` (a ViT preset, a paper ViT, a CNN or a hybrid preset)."""
    get_config = FAMILIES[configs.family(name)].get_config
    cfg = get_config(name, num_classes=num_classes, image_size=image_size, **overrides)
    return from_config(cfg)


def config_dict(model):
    """The model's config as a JSON-able dict (stored in checkpoints): its fields and, under
    "type", the config class that says which family the model is."""
    return {"type": type(model.cfg).__name__, **dataclasses.asdict(model.cfg)}


def param_count(model):
    """The number of parameters of `model`, computed from its config (nothing allocated)."""
    return FAMILIES[configs.family(model.cfg)].param_count(model.cfg)


# Fields added to the configs after checkpoints were first written, with the value that older
# checkpoints (which lack them) were trained with.
ADDED_FIELDS = {
    "ViTConfig": {"pos": "learned", "spt": False, "lsa": False},
    "CNNConfig": {"norm": "group", "act": "relu", "whiten": False},
    "HybridConfig": {"lsa": False},
}


CONFIG_CLASSES = {f.config.__name__: f.config for f in FAMILIES.values()}


def legacy_config_class(name):
    """The config class of a checkpoint written before configs stored their "type": files
    were then written only for preset-like names, cnn-* and hybrid-* for those families."""
    return next((FAMILIES[f].config for f in ("cnn", "hybrid") if name.lower().startswith(f)),
                configs.ViTConfig)


def from_config_dict(d):
    """Rebuild a Model from `config_dict` output (JSON lists become tuples again).

    One-line ValueError for anything else: not a dict, no name, an unknown type, a field the
    config class does not have or one it has left out, a value it refuses.
    """
    if not isinstance(d, dict) or not isinstance(d.get("name"), str):
        raise ValueError(f"expected a config dict with a 'name', found {str(d)[:60]}")
    d = dict(d)
    kind = d.pop("type", None)
    if kind is None:
        config_class = legacy_config_class(d["name"])
    elif kind in CONFIG_CLASSES:
        config_class = CONFIG_CLASSES[kind]
    else:
        raise ValueError(f"type: expected one of {', '.join(CONFIG_CLASSES)}, found {kind!r}")
    fields = [f.name for f in dataclasses.fields(config_class)]
    d = {**ADDED_FIELDS.get(config_class.__name__, {}), **d}
    unknown, missing = sorted(set(d) - set(fields)), [f for f in fields if f not in d]
    if unknown:
        raise ValueError(f"{config_class.__name__} has no field {unknown[0]!r} (expected "
                         f"{', '.join(fields)})")
    if missing:
        raise ValueError(f"{config_class.__name__} field(s) missing: {', '.join(missing)}")
    d = {k: tuple(v) if isinstance(v, list) else v for k, v in d.items()}
    return from_config(config_class(**d))
