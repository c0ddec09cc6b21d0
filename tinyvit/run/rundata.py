"""What a run trains on: a data set given in code checked like a loaded one, the model sized
for its images and classes, and how a checkpoint records its data (by name or absolute path,
and by a digest of the training images, so a resumed run is compared by content, not path).

A formula-driven set (`fractal:KxI`, `1p-frac:KxI`) is recorded by its spec, verbatim. One too
large to hold in memory is streamed (`load`): the run draws its batches from
`fractal_sets.batches`, tests on `held_out`, takes its statistics from a fixed sample and its
digest from the spec and the categories' formulas.
"""
import hashlib
from pathlib import Path

import numpy as np

from .. import data
from ..data import fractal_sets
from . import models

SAMPLE_IMAGES = 2000  # a streamed set's fixed sample: the first images of its epoch 0
HELD_OUT_IMAGES = 10_000  # a streamed set's test split: at most this many images
STREAM_KEYS = ("stream", "images", "digest")  # what a streamed data dict adds (`streamed`)
IN_MEMORY = fractal_sets.MAX_IN_MEMORY  # a formula-driven set of more images is streamed


def given_dataset(ds):
    """A data dict passed to `train` in code, checked like a loaded one."""
    data.check_dataset(ds, "dataset")
    for key in ("mean", "std"):
        if np.shape(ds.get(key)) != (ds["train"][0].shape[-1],):
            raise ValueError(f"dataset: expected '{key}', one value per channel (see prepare)")
    return ds


def data_name(source):
    """What a checkpoint records as its data: a CIFAR name or a formula-driven spec (verbatim),
    else the absolute path."""
    name = str(source)
    if fractal_sets.is_spec(name):
        return name.strip()
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


# ---------------------------------------------------------------------------------------------
# Formula-driven sets too large for memory: streamed
# ---------------------------------------------------------------------------------------------


def streams(source):
    """Whether `source` is a formula-driven set of more than IN_MEMORY images (with its
    held-out split), streamed rather than held."""
    if not fractal_sets.is_spec(source):
        return False
    f = fractal_sets.parse_spec(str(source))
    k, i = f["categories"], f["instances"]
    return k * (i + max(1, i // 5)) > IN_MEMORY


def streamed(spec):
    """A formula-driven set as a run streams it: dict(train=a fixed sample (the first
    SAMPLE_IMAGES of epoch 0: the statistics' images), test=`held_out` (a fifth of I per
    category, at most HELD_OUT_IMAGES in all), classes, stream=the FractalSet, images=K*I,
    digest=`formula_digest`)."""
    fs = fractal_sets.fractal_set(str(spec))
    k, i = len(fs.systems), fs.instances
    sample = next(fractal_sets.batches(fs, 0, min(SAMPLE_IMAGES, k * i)))
    per_category = max(1, min(i // 5, HELD_OUT_IMAGES // k))
    width = len(str(k - 1))
    return dict(train=sample, test=fractal_sets.held_out(fs, per_category),
                classes=[f"{fs.kind}-{c:0{width}d}" for c in range(k)], stream=fs,
                images=k * i, digest=formula_digest(fs))


def load(source, data_dir=None):
    """The data set `source` names: `data.load_data`'s, or a streamed formula-driven set
    (`streamed`) when it is too large for memory (`streams`)."""
    if streams(source):
        return streamed(source)
    return data.load_data(source, data_dir=data_dir)


def formula_digest(fs):
    """A short SHA-1 of a formula-driven set: its spec and every category's IFS, which with the
    seed in the spec fix every image (hashing a million images would take minutes)."""
    h = hashlib.sha1(fs.spec.encode())
    h.update(np.ascontiguousarray(fs.systems, np.float64).data)
    h.update(np.ascontiguousarray(fs.maps, np.int64).data)
    return h.hexdigest()[:16]
