"""Is a checkpoint what it claims to be? Every array and every metadata field, checked.

Arrays (`check_arrays`, for tinyvit's own files and Google's): exactly the expected names, each
of the expected shape, floating point, finite. A training checkpoint's metadata is checked
field by field (`check_meta`, `check_run_meta`), the model is rebuilt from it, and the arrays
are checked against that model's freshly initialised parameters (`template`), so metadata that
contradicts the arrays is noticed. Every problem is a one-line ValueError naming the file.
"""
import json
import math
import os

import numpy as np

from ..tree import flatten
from . import models, recipe, validate

def with_added_hparams(meta):
    """meta with its recipe read as today's (`recipe.upgrade`: settings an older checkpoint
    predates, values it wrote in an older form); what `check_run_meta` then checks."""
    hp = meta.get("hparams") if isinstance(meta, dict) else None
    return {**meta, "hparams": recipe.upgrade(hp)} if isinstance(hp, dict) else meta


def few(keys, n=3):
    """'a, b, c (+4 more)': a short list for a one-line message."""
    keys = list(keys)
    more = f" (+{len(keys) - n} more)" if len(keys) > n else ""
    return ", ".join(keys[:n]) + more


# ---------------------------------------------------------------------------------------------
# Arrays
# ---------------------------------------------------------------------------------------------


def check_arrays(path, found, shapes, noun="key", mismatch=None):
    """One-line ValueError unless `found` ({name: array}) holds exactly the names of `shapes`
    ({name: shape}), each of that shape, of a floating-point dtype and finite.

    mismatch(key, want, got): an optional better message for a wrong shape (or None).
    """
    name = os.fspath(path)
    missing = [k for k in shapes if k not in found]
    if missing:
        raise ValueError(f"{name}: missing {len(missing)} {noun}(s): {few(missing)}")
    unexpected = [k for k in found if k not in shapes]
    if unexpected:
        raise ValueError(f"{name}: {len(unexpected)} unexpected {noun}(s): {few(unexpected)}")
    for key, want in shapes.items():
        got = tuple(np.shape(found[key]))
        if got != tuple(want):
            raise ValueError((mismatch and mismatch(key, tuple(want), got))
                             or f"{key}: expected {tuple(want)}, found {got} (in {name})")
    for key in shapes:
        check_finite_floats(name, key, found[key])


def check_finite_floats(name, key, x):
    """One-line ValueError unless x is a floating-point array without NaN or inf."""
    x = np.asarray(x)
    if x.dtype.kind != "f":
        raise ValueError(f"{key}: expected floating-point numbers, found dtype {x.dtype} "
                         f"(in {name})")
    bad = x.size - int(np.isfinite(x).sum())
    if bad:
        raise ValueError(f"{key}: holds {bad} NaN or infinite value(s) (in {name})")


# ---------------------------------------------------------------------------------------------
# The model a checkpoint's metadata describes, and its arrays
# ---------------------------------------------------------------------------------------------


def parse_json(path, extras, key):
    """The JSON value stored as the string extra `key`; one-line errors naming the file."""
    if key not in extras:
        raise ValueError(f"{os.fspath(path)}: not a tinyvit training checkpoint (no {key!r}"
                         f"{'; a Google ViT file? see tinyvit.run.google' if key == 'meta' else ''})")
    x = extras[key]
    if not (x.ndim == 0 and x.dtype.kind == "U"):
        raise ValueError(f"{os.fspath(path)}: {key}: expected a JSON string, found {x.dtype} "
                         f"{x.shape}")
    try:
        return json.loads(str(x))
    except json.JSONDecodeError as e:
        raise ValueError(f"{os.fspath(path)}: {key}: not valid JSON ({e})") from None


def _numbers(v, n):
    """True for a list of n finite numbers."""
    return (isinstance(v, list) and len(v) == n and all(
        isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) for x in v))


def check_meta(path, meta):
    """The Model a checkpoint's metadata describes, after checking what eval/predict read."""
    name = os.fspath(path)
    if not isinstance(meta, dict):
        raise ValueError(f"{name}: meta: expected a JSON object, found {type(meta).__name__}")
    missing = [k for k in ("model", "classes", "mean", "std") if k not in meta]
    if missing:
        raise ValueError(f"{name}: meta: missing {few(missing)}")
    try:
        model = models.from_config_dict(meta["model"])
    except (ValueError, TypeError) as e:
        raise ValueError(f"{name}: meta model: {e}") from None
    k, c, classes = model.cfg.num_classes, model.cfg.channels, meta["classes"]
    if not (isinstance(classes, list) and all(isinstance(x, str) for x in classes)
            and len(set(classes)) == len(classes) == k):
        raise ValueError(f"{name}: meta classes: expected {k} distinct names (the model has "
                         f"{k} classes), found {str(classes)[:60]}")
    if not _numbers(meta["mean"], c):
        raise ValueError(f"{name}: meta mean: expected {c} finite numbers, found "
                         f"{str(meta['mean'])[:60]}")
    if not (_numbers(meta["std"], c) and min(meta["std"]) > 0):
        raise ValueError(f"{name}: meta std: expected {c} finite numbers > 0, found "
                         f"{str(meta['std'])[:60]}")
    return model


def check_run_meta(path, meta):
    """What resuming reads besides `check_meta`: hyper-parameters, train size, seed, data."""
    name = os.fspath(path)
    recipe.from_stored(meta.get("hparams"), label=lambda k: f"{name}: meta hparams"
                       + ("" if k == "recipe" else f" {k}"))
    validate.check_options(label=lambda k: f"{name}: meta {k}", train_size=meta.get("train_size"),
                           seed=meta.get("seed"))
    if not isinstance(meta.get("data"), str) or None in (meta.get("train_size"),
                                                         meta.get("seed")):
        raise ValueError(f"{name}: meta: expected 'data' (a string), 'train_size' and 'seed'")
    if not isinstance(meta.get("train_digest", ""), str):
        raise ValueError(f"{name}: meta train_digest: expected a string")


def template(path, model, found):
    """The model's initialised parameters, flattened: what the arrays `found` must match.

    Its parameter count is compared first, so metadata describing a much larger model than
    the file holds is refused before anything that size is allocated.
    """
    expected, held = models.param_count(model), sum(int(np.size(x)) for x in found.values())
    if expected > 2 * held + 1000:
        raise ValueError(f"{os.fspath(path)}: the metadata describes {model.name} with "
                         f"{expected:,} parameters, the file holds {held:,} (they disagree)")
    return flatten(model.init(np.random.default_rng(0)))


def check_params(path, found, like):
    """{name: array} of the parameters, checked against `like` and cast to its dtypes."""
    check_arrays(path, found, {k: np.shape(x) for k, x in like.items()})
    return {k: found[k].astype(x.dtype, copy=False) for k, x in like.items()}


def check_data_fits(path, model, meta, ds, source):
    """One-line ValueError unless a data set has the checkpoint's classes and image size."""
    classes, want = list(ds["classes"]), meta["classes"]
    if classes != want:
        raise ValueError(f"`source` {source}: its {len(classes)} classes {str(classes)[:40]} are "
                         f"not the {len(want)} of {os.fspath(path)} {str(want)[:40]}")
    cfg = model.cfg
    h, w, c = ds["test"][0].shape[1:]
    if (h, w, c) != (cfg.image_size, cfg.image_size, cfg.channels):
        raise ValueError(f"`source` {source}: its images are {w}x{h}x{c}, {os.fspath(path)} "
                         f"takes {cfg.image_size}x{cfg.image_size}x{cfg.channels}")


# ---------------------------------------------------------------------------------------------
# What resuming needs besides the parameters
# ---------------------------------------------------------------------------------------------


def check_moments(path, v):
    """Adam's second moments {name: array} are squares: one-line ValueError for a negative one."""
    for key, x in v.items():
        if (x < 0).any():
            raise ValueError(f"opt/v/{key}: holds negative second moments (in {os.fspath(path)})")


def counter(path, extras, key, low, high=None):
    """An integer extra (step, epoch) in [low, high]; one-line errors naming the file."""
    x = extras.get(key)
    if (x is None or x.ndim != 0 or x.dtype.kind not in "iu" or int(x) < low
            or (high is not None and int(x) > high)):
        shown = "nothing" if x is None else repr(x.tolist())
        wanted = f"in [{low}, {high}]" if high is not None else f">= {low}"
        raise ValueError(f"{os.fspath(path)}: {key}: expected an integer {wanted}, found {shown}")
    return int(x)


def restore_rng(path, state):
    """A NumPy Generator in the stored bit-generator state (PCG64, as `default_rng` makes)."""
    rng = np.random.default_rng()
    try:
        if not isinstance(state, dict) or state.get("bit_generator") != "PCG64":
            raise ValueError("expected a PCG64 state")
        rng.bit_generator.state = state
    except (ValueError, TypeError, KeyError) as e:
        raise ValueError(f"{os.fspath(path)}: rng: not a usable generator state ({e})") from None
    return rng


def check_history(path, history, epoch):
    """The per-epoch metrics rows stored with the run: one dict per epoch, 1..epoch."""
    if history is None:
        return None
    if not (isinstance(history, list) and all(isinstance(r, dict) for r in history)
            and [r.get("epoch") for r in history] == list(range(1, epoch + 1))):
        raise ValueError(f"{os.fspath(path)}: history: expected the rows of epochs 1..{epoch}")
    return history
