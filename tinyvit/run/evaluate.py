"""Evaluation and prediction: test accuracy, confusion matrices, the top classes of an image.

The model runs its fast twins here (`tinyvit.fast`), batch by batch (each batch in shards, one
thread per core, as training), on the device that holds its parameters; inputs are normalised as
in training (`tinyvit.data.normalize`). A model trained with a `tta` is evaluated with it.

Shape legend: N images, B batch, H, W, C image, K classes.
"""
from typing import NamedTuple

import numpy as np

from .. import device
from .. import data, fast, ops
from ..data import shown


def batch_logits(model, params, x_uint8, mean, std, batch_size=64, tta="none",
                 shards=fast.SHARDS, progress=None):
    """Yield the logits (B, K) of uint8 images (N, H, W, C) batch by batch, in eval mode, each
    batch split into `shards` run side by side (`fast.sharded_map`). Small batches are faster
    here: a CNN's activations of a few dozen images stay in the CPU's caches. `tta`: "none",
    or the mean of the logits of several views of each image (`data.TTA`: "flip" the image and
    its mirror image, "flip-shift" those and their one-pixel shifts). `progress`: a
    `Progress` over the N images, updated after every batch."""
    xp = device.array_module(params["head"]["w"])
    if tta not in data.TTA:
        raise ValueError(f"tta: expected one of {', '.join(data.TTA)}, got {tta!r}")
    views = data.TTA[tta]

    def logits(x):  # host (B, H, W, C) -> (B, K), on the parameters' device
        x = xp.asarray(np.ascontiguousarray(x))  # (B, H, W, C); flips, shifts are strided views
        return fast.sharded_map(lambda xs: model.apply(params, xs), x, shards)

    with fast.twins():
        for i in range(0, len(x_uint8), batch_size):
            x = data.normalize(x_uint8[i:i + batch_size], mean, std)  # (B, H, W, C)
            yield device.to_host(views(logits, x))  # (B, K)
            if progress is not None:
                progress.update(i + len(x), "images tested")


def predict_logits(model, params, x_uint8, mean, std, batch_size=64, tta="none",
                   shards=fast.SHARDS, progress=None):
    """Logits (N, K) of uint8 images (N, H, W, C): `batch_logits` of every batch, together."""
    return np.concatenate(list(batch_logits(model, params, x_uint8, mean, std, batch_size, tta,
                                            shards, progress)))  # (N, K)


def confusion_matrix(y_true, y_pred, k):
    """(K, K) counts: row = true class, column = predicted class."""
    m = np.zeros((k, k), np.int64)
    np.add.at(m, (y_true, y_pred), 1)
    return m


class Confusions(NamedTuple):
    """The non-zero cells of a (K, K) confusion matrix, (M,) each with M <= N images: a
    confusion matrix of 100,000 classes would take 80 GB, its non-zero cells a few MB."""

    true: np.ndarray  # true class of each cell (M,)
    pred: np.ndarray  # predicted class (M,)
    count: np.ndarray  # images in the cell (M,)
    k: int  # classes

    @classmethod
    def of(cls, y_true, y_pred, k):
        codes, counts = np.unique(np.asarray(y_true, np.int64) * k + y_pred,
                                  return_counts=True)  # (M,)
        return cls(codes // k, codes % k, counts, k)

    @classmethod
    def from_matrix(cls, cm):
        i, j = np.nonzero(cm)  # (M,) each
        return cls(i, j, np.asarray(cm)[i, j], len(cm))


def evaluate(model, params, x, y, mean, std, batch_size=64, tta="none", progress=None):
    """Accuracy (0-1) and `Confusions` of uint8 images x with labels y (`tta`: the test-time
    augmentation, `progress`: a display, see `batch_logits`). Only each image's predicted
    class is kept, never all logits: memory grows with N + K, not N x K."""
    pred = np.empty(len(y), np.int64)  # (N,)
    done = 0
    for logits in batch_logits(model, params, x, mean, std, batch_size, tta, progress=progress):
        pred[done:done + len(logits)] = logits.argmax(1)  # (B,)
        done += len(logits)
    return float((pred == y).mean()), Confusions.of(y, pred, model.cfg.num_classes)


def confusion_summary(cm, classes, top=3):
    """Per-class accuracy and the most frequent confusions, as printable lines; `cm`: a
    `Confusions` or a (K, K) matrix. A class without test images says so (no 0.0%)."""
    c = cm if isinstance(cm, Confusions) else Confusions.from_matrix(cm)
    total = np.bincount(c.true, c.count, minlength=c.k)  # (K,)
    hit = c.true == c.pred  # (M,)
    correct = np.bincount(c.true[hit], c.count[hit], minlength=c.k)  # (K,)
    lines = ["class            accuracy"]
    for i, name in enumerate(classes):
        lines.append(f"{shown(name):<16} {correct[i] / total[i]:7.1%}" if total[i] else
                     f"{shown(name):<16} {'-':>7} (no test images)")
    pairs = sorted(zip(c.count[~hit].tolist(), c.true[~hit].tolist(), c.pred[~hit].tolist()),
                   reverse=True)[:top]
    if pairs:
        lines.append("most confused: " + ", ".join(
            f"{shown(classes[i])}->{shown(classes[j])} ({n})" for n, i, j in pairs))
    return lines


def load_image(path, size):
    """An image file as uint8 (1, size, size, 3), decoded with the data loaders' limits
    (`tinyvit.data.decode_image`: one-line errors naming the file), resized with Pillow."""
    from PIL import Image

    img = data.decode_image(str(path), str(path))  # (H, W, 3)
    im = Image.fromarray(img).resize((size, size), Image.BICUBIC)
    return np.asarray(im, np.uint8)[None]  # (1, H, W, 3)


def predict(model, params, meta, image_path, top=5):
    """[(class name, probability)] of the top classes for one image file."""
    x = load_image(image_path, model.cfg.image_size)
    logits = predict_logits(model, params, x, np.float32(meta["mean"]), np.float32(meta["std"]))
    p = ops.softmax(logits[0].astype(np.float64))  # (K,)
    best = np.argsort(-p)[:top]
    return [(meta["classes"][i], float(p[i])) for i in best]
