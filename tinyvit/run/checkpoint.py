"""Saving and loading parameters and whole training runs: tinyvit's own `.npz` files.

tinyvit files hold the flattened parameter tree ("blocks/0/attn/qkv/w", see `tinyvit.tree`)
plus optional extras under "__extra__/" (a step count, the optimiser state, ...). They are
plain `np.savez` archives, read with `allow_pickle=False`, and written atomically: to a
temporary file in the same directory, then `os.replace`d over the target, so a crash never
leaves a half-written checkpoint behind.

`save_state` / `load_run` keep a whole training run in one such file (params, the optimiser's
arrays, RNG state, step, epoch, metadata, the per-epoch history, the weights' moving average
when the recipe keeps one); the official Google ViT format is in `tinyvit.run.google`.
Everything read back is checked first (`tinyvit.run.verify`): every array's name, shape, dtype
and values against the model rebuilt from the metadata, and every metadata field.
"""
import json
import os

import numpy as np

from .. import optim
from ..arrays import to_numpy
from ..data import load_npz
from ..tree import flatten, unflatten
from . import recipe, verify
from ..support.files import atomic_write
from .verify import check_arrays

EXTRA = "__extra__"  # extras live under this top-level key, apart from the parameters


# ---------------------------------------------------------------------------------------------
# Files
# ---------------------------------------------------------------------------------------------


def host_array(x):
    """A NumPy array for a NumPy/CuPy array or a Python scalar/string."""
    x = np.asarray(to_numpy(x))
    if x.dtype == object:
        raise ValueError(f"checkpoint: expected numeric/string arrays, found an object array "
                         f"of shape {x.shape}")
    return x


def write_npz(path, arrays):
    """np.savez `arrays` to `path` atomically (never half-written, no pickles)."""
    with atomic_write(path) as f:
        np.savez(f, allow_pickle=False, **arrays)


def read_npz(path):
    """All arrays of an .npz file as {name: array}; one-line ValueError if it is not one
    (`data.load_npz`: a regular file only, every array's declared size checked before it is
    read)."""
    return load_npz(path, os.fspath(path))


# ---------------------------------------------------------------------------------------------
# tinyvit checkpoints
# ---------------------------------------------------------------------------------------------


def save_params(path, params, **extra):
    """Write `params` (and extras: scalars, arrays or trees) to the .npz file `path`, atomically.

    The file name is used as given (no ".npz" is appended). Example:
    `save_params("run/ckpt.npz", params, step=1000, opt=adam_state)`.
    """
    if isinstance(params, dict) and EXTRA in params:
        raise ValueError(f"save_params: the key {EXTRA!r} is reserved for extras")
    arrays = {key: host_array(x) for key, x in flatten(params).items()}
    for name, value in extra.items():
        if isinstance(value, (dict, list, tuple)):
            arrays.update({k: host_array(x) for k, x in flatten(value, f"{EXTRA}/{name}").items()})
        else:
            arrays[f"{EXTRA}/{name}"] = host_array(value)
    write_npz(path, arrays)


def check_like(path, found, expected):
    """One-line ValueError unless the flat dicts `found` and `expected` match in keys and
    shapes, and every array found is floating point and finite."""
    check_arrays(path, found, {k: np.shape(x) for k, x in expected.items()})


def load_params(path, like=None):
    """Read a `save_params` file back into a parameter tree.

    With `like` (a template tree, e.g. `init_vit(rng, cfg)`), the keys and shapes must match
    it exactly (one-line ValueError naming the key otherwise) and each array is cast to the
    template's dtype.
    """
    flat = {k: x for k, x in read_npz(path).items() if not k.startswith(EXTRA + "/")}
    if like is not None:
        template = flatten(like)
        check_like(path, flat, template)
        flat = {k: flat[k].astype(np.asarray(t).dtype, copy=False) for k, t in template.items()}
    return unflatten(flat)


def load_extra(path):
    """The extras of a `save_params` file as a dict (0-d arrays become Python scalars)."""
    cut = len(EXTRA) + 1
    flat = {k[cut:]: (x.item() if x.ndim == 0 else x)
            for k, x in read_npz(path).items() if k.startswith(EXTRA + "/")}
    return unflatten(flat)


# ---------------------------------------------------------------------------------------------
# A whole training run in one file
# ---------------------------------------------------------------------------------------------


def save_state(path, params, opt_state, rng, epoch, meta, history=None, ema=None):
    """Atomically write params, the optimiser's arrays (Adam's moments m and v, SGD's velocity
    m: `optim.SLOTS`), RNG state, step, metadata, the per-epoch metrics rows (`history`) and
    the weights' moving average (`ema`, a tree like params, when the recipe keeps one) to one
    .npz."""
    extra = dict(step=np.array(opt_state["step"]), epoch=np.array(epoch),
                 rng=np.array(json.dumps(rng.bit_generator.state)),
                 meta=np.array(json.dumps(meta)))
    if history is not None:
        extra["history"] = np.array(json.dumps(history))
    slots = {k: opt_state[k] for k in ("m", "v") if k in opt_state}
    averaged = {"ema": ema} if ema is not None else {}
    save_params(path, {"params": params, "opt": slots, **averaged}, **extra)


def save_model(path, params, meta):
    """Write what evaluation needs, params and metadata, to one .npz (no optimiser state):
    a trained model to share; `load_model` reads it. For a run whose recipe keeps a moving
    average of the weights, `params` are that average (what `load_model` gave), and the file
    says so (meta "averaged": true) instead of holding the weights twice."""
    hparams = meta.get("hparams")
    averaged = isinstance(hparams, dict) and hparams.get("ema", 0) > 0
    meta = {**meta, "averaged": True} if averaged else meta
    save_params(path, {"params": params}, meta=np.array(json.dumps(meta)))


def _split(path, arrays):
    """(extras, {prefix: {name: array}}) of a training checkpoint's arrays."""
    cut = len(EXTRA) + 1
    extras = {k[cut:]: x for k, x in arrays.items() if k.startswith(EXTRA + "/")}
    groups = {"params/": {}, "opt/m/": {}, "opt/v/": {}, "ema/": {}}
    for key, x in arrays.items():
        if key.startswith(EXTRA + "/"):
            continue
        prefix = next((p for p in groups if key.startswith(p)), None)
        if prefix is None and key.endswith("embedding/kernel"):
            raise ValueError(f"{os.fspath(path)}: a Google ViT checkpoint, not a tinyvit training "
                             f"checkpoint (read it with tinyvit.run.google.load_google_vit)")
        if prefix is None:
            raise ValueError(f"{os.fspath(path)}: unexpected array {key!r} (expected params/..., "
                             f"opt/m/..., opt/v/..., ema/... and {EXTRA}/...)")
        groups[prefix][key[len(prefix):]] = x
    return extras, groups


def _checked(path, group, like, prefix):
    """{name: array} of one group (params/, opt/m/, opt/v/) checked against the template
    `like` (names, shapes, dtypes, finite values) and cast to its dtypes."""
    flat = verify.check_params(path, {prefix + k: x for k, x in group.items()},
                               {prefix + k: x for k, x in like.items()})
    return {k[len(prefix):]: x for k, x in flat.items()}


def _ema(path, groups, like, meta):
    """The checked moving average of the weights (ema/...) a checkpoint holds exactly when
    its recipe keeps one (hparams ema > 0; older checkpoints, without it, keep none), else None."""
    hparams, name = meta.get("hparams"), os.fspath(path)
    decay = hparams.get("ema", 0) if isinstance(hparams, dict) else 0
    recipe.check_value("ema", decay, label=lambda k: f"{name}: meta hparams {k}")
    keeps = decay > 0
    if keeps != bool(groups["ema/"]):
        raise ValueError(f"{name}: {'lacks' if keeps else 'holds'} ema/... (the weights' moving "
                         f"average), which its recipe's ema {decay!r} "
                         f"{'keeps' if keeps else 'does not keep'}")
    return unflatten(_checked(path, groups["ema/"], like, "ema/")) if keeps else None


def _model_and_params(path, extras, groups):
    """(model rebuilt from the checked metadata, its template, checked params, meta)."""
    meta = verify.with_added_hparams(verify.parse_json(path, extras, "meta"))
    model = verify.check_meta(path, meta)
    like = verify.template(path, model, groups["params/"])
    return model, like, _checked(path, groups["params/"], like, "params/"), meta


def load_run(path):
    """A training checkpoint, every part checked (one-line ValueErrors naming the file):
    dict(model, params, opt (the optimiser's slots and step), rng, epoch, meta, history (None
    in older files), ema (the weights' moving average; None unless the recipe keeps one))."""
    extras, groups = _split(path, read_npz(path))
    model, like, params, meta = _model_and_params(path, extras, groups)
    verify.check_run_meta(path, meta)
    slots = optim.SLOTS[meta["hparams"]["optimizer"]]  # ("m", "v") for AdamW, ("m",) for SGD
    for slot in ("m", "v"):
        if slot not in slots and groups[f"opt/{slot}/"]:
            raise ValueError(f"{os.fspath(path)}: holds opt/{slot}/..., which its optimiser "
                             f"{meta['hparams']['optimizer']!r} does not keep")
    flat = {s: _checked(path, groups[f"opt/{s}/"], like, f"opt/{s}/") for s in slots}
    if "v" in flat:
        verify.check_moments(path, flat["v"])
    opt = {s: unflatten(f) for s, f in flat.items()}
    epoch = verify.counter(path, extras, "epoch", 0, meta["hparams"]["epochs"])
    step = verify.counter(path, extras, "step", 0)
    rng = verify.restore_rng(path, verify.parse_json(path, extras, "rng"))
    history = (verify.check_history(path, verify.parse_json(path, extras, "history"), epoch)
               if "history" in extras else None)
    opt["step"] = step
    return dict(model=model, params=unflatten(params), opt=opt, rng=rng, epoch=epoch, meta=meta,
                history=history, ema=_ema(path, groups, like, meta))


def load_state(path):
    """Inverse of `save_state`: (params, opt_state, rng, epoch, meta), checked (`load_run`)."""
    run = load_run(path)
    return run["params"], run["opt"], run["rng"], run["epoch"], run["meta"]


def load_model(path):
    """(model, params, meta) of a training checkpoint; the model is rebuilt from its metadata.

    Reads only what evaluation needs (parameters, model, classes, normalisation), all checked;
    the optimiser and RNG state may be absent. A run whose recipe keeps a moving average of
    the weights (ema > 0) is tested with it while it trains, so `params` are then the average
    (BatchNorm's statistics computed for it), as its test accuracy was measured.
    """
    extras, groups = _split(path, read_npz(path))
    model, like, params, meta = _model_and_params(path, extras, groups)
    if meta.get("averaged") is True and not groups["ema/"]:  # a `save_model` file
        return model, unflatten(params), meta
    ema = _ema(path, groups, like, meta)
    return model, ema if ema is not None else unflatten(params), meta
