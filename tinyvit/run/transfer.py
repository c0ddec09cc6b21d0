"""Fine-tuning from a pre-trained model (paper, Sec. 3.2): keep the encoder, replace the head.

    "When fine-tuning, we remove the pre-trained prediction head and attach a zero-initialized
    D x K feedforward layer, where K is the number of downstream classes."

Every family here (ViT, CNN, hybrid) ends in the same head, params["head"] = {"w": (D, K),
"b": (K,)} on the pooled features (the class token, or the CNN's global average), so one
function serves all three: everything but the head is copied unchanged (the encoder: patch
embedding, position embeddings, blocks, final LayerNorm; the CNN's stem and stages with their
fixed whitening kernel and BatchNorm statistics), and the head becomes zeros of the new size.
A zero head needs no random numbers: at the first step every class has logit 0, and the
encoder's features decide where the gradient takes it.

    model, params, meta = load_pretrained("runs/fractal/ckpt.npz", num_classes=10)

Keep the encoder's fixed parts as they are: do not recompute a whitening kernel from the new
data (`Model.from_data`) after this, since the first learned convolution was trained on the old one.

`train(..., init=path)` (`python -m tinyvit train --init CKPT`) starts a run this way
(`fine_tune_start`): the encoder of any checkpoint, a zero head for the new data's classes, a
fresh optimiser and schedule, the new data's own mean and std; the checkpoint's whitening
kernel is kept. The run records where it started (`meta["init"]`: path, SHA-1, model, data).

Shape legend: D features fed to the head, K classes.
"""
import dataclasses
import hashlib
import os
from pathlib import Path
from typing import NamedTuple

from .. import layers
from ..arrays import array_module
from ..tree import tree_map
from . import checkpoint, models


def transfer(model, params, num_classes):
    """(model with `num_classes` classes, params with the encoder copied and a zero head).

    model: a `models.Model` of any family; params: its parameters. The old params are left
    as they were (the copies share no memory with them, so in-place optimiser updates of the
    new ones cannot reach the pre-trained ones)."""
    if not (isinstance(num_classes, int) and num_classes >= 1):
        raise ValueError(f"transfer: num_classes: expected an integer >= 1, found "
                         f"{num_classes!r}")
    head = params.get("head") if isinstance(params, dict) else None
    if not (isinstance(head, dict) and getattr(head.get("w"), "ndim", 0) == 2):
        raise ValueError(f"transfer: expected params with a head {{'w': (D, K), 'b': (K,)}}, "
                         f"found keys {sorted(params) if isinstance(params, dict) else params}")
    d, old_k = head["w"].shape
    if old_k != model.cfg.num_classes:
        raise ValueError(f"transfer: the params' head has {old_k} classes, the model "
                         f"{model.name!r} {model.cfg.num_classes}: expected the same")
    new_model = models.from_config_dict(
        dataclasses.asdict(dataclasses.replace(model.cfg, num_classes=num_classes)))
    encoder = tree_map(lambda x: x.copy(), {k: v for k, v in params.items() if k != "head"})
    new_head = layers.init_linear(None, d, num_classes, head["w"].dtype, zero=True)
    xp = array_module(head["w"])  # on the device that holds the encoder
    return new_model, {**encoder, "head": {k: xp.asarray(v) for k, v in new_head.items()}}


def load_pretrained(path, num_classes):
    """(model, params, meta) of the checkpoint at `path` (any tinyvit training checkpoint or
    `save_model` file, checked as `checkpoint.load_model` checks it) with its head replaced
    for `num_classes` classes (`transfer`). meta is the pre-trained run's, unchanged."""
    model, params, meta = checkpoint.load_model(path)
    new_model, new_params = transfer(model, params, num_classes)
    return new_model, new_params, meta


class Start(NamedTuple):
    """Where a fine-tuning run starts: the model (the checkpoint's, with the new classes), its
    parameters (`transfer`ed) and what the run records about it (`meta["init"]`)."""

    model: object
    params: dict
    record: dict


def pretrained_model(path):
    """The model of the checkpoint `path` (as saved, with its own head): one-line ValueError
    naming `init` if it is not a readable tinyvit checkpoint."""
    try:
        return checkpoint.load_model(path)
    except ValueError as e:
        raise ValueError(f"`init` {e}" if os.fspath(path) in str(e) else
                         f"`init` {path}: {e}") from None


def file_sha1(path):
    """The SHA-1 of a file's bytes (hex): which checkpoint a run started from."""
    h = hashlib.sha1()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def same_model(asked, found):
    """Whether the `model` asked for (a preset name or a `models.Model`) is the pre-trained
    one `found`, whatever the number of classes."""
    if isinstance(asked, str):
        return asked.lower() == found.name.lower()
    cfg = dataclasses.replace(asked.cfg, num_classes=found.cfg.num_classes)
    return type(cfg) is type(found.cfg) and cfg == found.cfg


def fine_tune_start(path, model, images, num_classes):
    """The Start of a run fine-tuning the checkpoint at `path` on `num_classes` classes of
    `images` (uint8 (N, H, W, C): only their shape is read). `model` (None: the checkpoint's)
    must be the checkpoint's model, and the images of its size: one-line ValueErrors naming
    `init` and what it holds otherwise."""
    pre, params, meta = pretrained_model(path)
    if model is not None and not same_model(model, pre):
        asked = model if isinstance(model, str) else model.name
        raise ValueError(f"`init` {path}: holds a {pre.name}, not the `model` {asked} asked "
                         f"for (leave `model` out to fine-tune the checkpoint's)")
    cfg, (h, w, c) = pre.cfg, images.shape[1:]
    if (h, w, c) != (cfg.image_size, cfg.image_size, cfg.channels):
        raise ValueError(f"`init` {path}: {pre.name} takes {cfg.image_size}x{cfg.image_size}x"
                         f"{cfg.channels} images, the `data` are {w}x{h}x{c}")
    new_model, new_params = transfer(pre, params, num_classes)
    record = dict(path=str(Path(path).expanduser().resolve()), sha1=file_sha1(path),
                  model=pre.name, data=meta.get("data"), classes=len(meta["classes"]))
    return Start(new_model, new_params, record)
