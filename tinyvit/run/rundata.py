"""What a run trains on: a data set given in code checked like a loaded one, the model sized
for its images and classes, and how a checkpoint records its data (by name or absolute path,
and by a digest of the training images, so a resumed run is compared by content, not path).
"""
import hashlib
from pathlib import Path

import numpy as np

from .. import data
from . import models


def given_dataset(ds):
    """A data dict passed to `train` in code, checked like a loaded one."""
    data.check_dataset(ds, "dataset")
    for key in ("mean", "std"):
        if np.shape(ds.get(key)) != (ds["train"][0].shape[-1],):
            raise ValueError(f"dataset: expected '{key}', one value per channel (see prepare)")
    return ds


def data_name(source):
    """What a checkpoint records as its data: a CIFAR name, else the absolute path."""
    name = str(source)
    return name.lower() if name.lower() in data.OFFICIAL_NAMES else str(
        Path(name).expanduser().resolve())


def build_for(model, ds, source, batch_size=None):
    """The model (a preset name, sized for a data set's images and classes, or a
    `models.Model`, which must fit them); one line naming both if it cannot, or if training it
    would need more than the memory (`training_bytes`, with `batch_size`)."""
    _, h, w, c = ds["train"][0].shape
    k = len(ds["classes"])
    name = model if isinstance(model, str) else model.name
    try:
        if h != w:
            raise ValueError(f"tinyvit models take square images, found {w}x{h}")
        if isinstance(model, str):
            net = models.build(model, num_classes=k, image_size=h)
        else:
            net = model
            cfg = model.cfg
            if (cfg.image_size, cfg.channels, cfg.num_classes) != (h, c, k):
                raise ValueError(f"it takes {cfg.image_size}x{cfg.image_size}x{cfg.channels} "
                                 f"images of {cfg.num_classes} classes")
        data.check_bytes("training", training_bytes(net, batch_size or 1), f"its parameters, "
                         f"gradients, optimiser moments and a batch of logits over {k:,} classes")
        return net
    except ValueError as e:
        raise ValueError(f"`model` {name} on `data` {source} ({w}x{h} images, "
                         f"{k:,} classes): {e}") from None


def training_bytes(net, batch_size):
    """A lower bound of the memory a training step needs: float32 parameters, gradients and two
    Adam moments (4 copies), and a batch's logits, their softmax and gradient (3 x (B, K))."""
    return 4 * (4 * models.param_count(net) + 3 * batch_size * net.cfg.num_classes)


def digest(x, y):
    """A short SHA-1 of training images and labels: which data a run saw, wherever it lies."""
    h = hashlib.sha1(np.ascontiguousarray(x).data)
    h.update(np.ascontiguousarray(y, np.int64).data)
    return h.hexdigest()[:16]
