"""Saving and loading parameters and whole training runs: tinyvit's own `.npz` files.

tinyvit files hold the flattened parameter tree ("blocks/0/attn/qkv/w", see `tinyvit.tree`)
plus optional extras under "__extra__/" (a step count, the optimiser state, ...). They are
plain `np.savez` archives, read with `allow_pickle=False`, and written atomically: to a
temporary file in the same directory, then `os.replace`d over the target, so a crash never
leaves a half-written checkpoint behind.

`save_state` / `load_state` keep a whole training run in one such file (params, Adam moments,
RNG state, step, epoch, metadata); the official Google ViT format is in `tinyvit.run.google`.
"""
import json
import os
import zipfile

import numpy as np

from ..arrays import to_numpy
from ..tree import flatten, unflatten
from .files import atomic_write

EXTRA = "__extra__"  # extras live under this top-level key, apart from the parameters
_READ_ERRORS = (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError)


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
    """All arrays of an .npz file as {name: array}; one-line ValueError if it is not one."""
    name = os.fspath(path)
    try:
        data = np.load(name, allow_pickle=False)
    except FileNotFoundError:
        raise
    except _READ_ERRORS as e:
        raise ValueError(f"{name}: not a readable .npz file ({type(e).__name__})") from e
    if not isinstance(data, np.lib.npyio.NpzFile):
        raise ValueError(f"{name}: expected an .npz archive, found a single .npy array")
    try:
        with data:
            return {key: data[key] for key in data.files}
    except _READ_ERRORS as e:
        raise ValueError(f"{name}: corrupt .npz file ({type(e).__name__}: "
                         f"{str(e).splitlines()[0] if str(e) else ''})") from e


def few(keys, n=3):
    """'a, b, c (+4 more)': a short list for a one-line message."""
    keys = list(keys)
    more = f" (+{len(keys) - n} more)" if len(keys) > n else ""
    return ", ".join(keys[:n]) + more


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
    """One-line ValueError unless the flat dicts `found` and `expected` match in keys and shapes."""
    name = os.fspath(path)
    missing = [k for k in expected if k not in found]
    if missing:
        raise ValueError(f"{name}: missing {len(missing)} key(s): {few(missing)}")
    unexpected = [k for k in found if k not in expected]
    if unexpected:
        raise ValueError(f"{name}: {len(unexpected)} unexpected key(s): {few(unexpected)}")
    for key, want in expected.items():
        if tuple(np.shape(found[key])) != tuple(np.shape(want)):
            raise ValueError(f"{key}: expected {tuple(np.shape(want))}, "
                             f"found {tuple(np.shape(found[key]))} (in {name})")


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


def save_state(path, params, opt_state, rng, epoch, meta):
    """Atomically write params, Adam moments, RNG state, step and metadata to one .npz."""
    save_params(path, {"params": params, "opt": {"m": opt_state["m"], "v": opt_state["v"]}},
                step=np.array(opt_state["step"]), epoch=np.array(epoch),
                rng=np.array(json.dumps(rng.bit_generator.state)),
                meta=np.array(json.dumps(meta)))


def load_state(path):
    """Inverse of `save_state`: (params, opt_state, rng, epoch, meta)."""
    extra = load_extra(path)
    missing = [k for k in ("step", "epoch", "rng", "meta") if k not in extra]
    if missing:
        raise ValueError(f"{path}: not a training checkpoint (missing {', '.join(missing)})")
    tree = load_params(path)
    rng = np.random.default_rng()
    rng.bit_generator.state = json.loads(extra["rng"])
    opt_state = {"m": tree["opt"]["m"], "v": tree["opt"]["v"], "step": int(extra["step"])}
    return tree["params"], opt_state, rng, int(extra["epoch"]), json.loads(extra["meta"])


def load_model(path):
    """(model, params, meta) of a training checkpoint; the model is rebuilt from its metadata."""
    from .models import from_config_dict

    params, _, _, _, meta = load_state(path)
    return from_config_dict(meta["model"]), params, meta
