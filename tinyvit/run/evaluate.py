"""Evaluation and prediction: test accuracy, confusion matrices, the top classes of an image.

The model runs its fast twins here (`tinyvit.fast`), batch by batch (each batch in shards, one
thread per core, as training), on the device that holds its parameters; inputs are normalised as
in training (`tinyvit.data.normalize`). A model trained with a `tta` is evaluated with it.

Shape legend: N images, B batch, H, W, C image, K classes.
"""
import numpy as np

from .. import device
from .. import data, fast, ops


def predict_logits(model, params, x_uint8, mean, std, batch_size=64, tta="none",
                   shards=fast.SHARDS, progress=None):
    """Logits (N, K) of uint8 images (N, H, W, C), in eval mode, batch by batch, each batch
    split into `shards` run side by side (`fast.sharded_map`). Small batches are faster here:
    a CNN's activations of a few dozen images stay in the CPU's caches. `tta`: "none", or the
    mean of the logits of several views of each image (`data.TTA`: "flip" the image and its
    mirror image, "flip-shift" those and their one-pixel shifts). `progress`: a
    `Progress` over the N images, updated after every batch."""
    xp = device.array_module(params["head"]["w"])
    if tta not in data.TTA:
        raise ValueError(f"tta: expected one of {', '.join(data.TTA)}, got {tta!r}")
    views = data.TTA[tta]

    def logits(x):  # host (B, H, W, C) -> (B, K), on the parameters' device
        x = xp.asarray(np.ascontiguousarray(x))  # (B, H, W, C); flips, shifts are strided views
        return fast.sharded_map(lambda xs: model.apply(params, xs), x, shards)

    with fast.twins():
        out = []
        for i in range(0, len(x_uint8), batch_size):
            x = data.normalize(x_uint8[i:i + batch_size], mean, std)  # (B, H, W, C)
            out.append(device.to_host(views(logits, x)))  # (B, K)
            if progress is not None:
                progress.update(i + len(x), "images tested")
    return np.concatenate(out)  # (N, K)


def confusion_matrix(y_true, y_pred, k):
    """(K, K) counts: row = true class, column = predicted class."""
    m = np.zeros((k, k), np.int64)
    np.add.at(m, (y_true, y_pred), 1)
    return m


def evaluate(model, params, x, y, mean, std, batch_size=64, tta="none", progress=None):
    """Accuracy (0-1) and confusion matrix of uint8 images x with labels y (`tta`: the test-time
    augmentation, `progress`: a display, see `predict_logits`)."""
    pred = predict_logits(model, params, x, mean, std, batch_size, tta,
                          progress=progress).argmax(1)  # (N,)
    return float((pred == y).mean()), confusion_matrix(y, pred, model.cfg.num_classes)


def confusion_summary(cm, classes, top=3):
    """Per-class accuracy and the most frequent confusions, as printable lines."""
    lines = ["class            accuracy"]
    for i, name in enumerate(classes):
        lines.append(f"{name:<16} {cm[i, i] / max(cm[i].sum(), 1):7.1%}")
    off = cm - np.diag(np.diag(cm))
    pairs = sorted(((off[i, j], i, j) for i in range(len(cm)) for j in range(len(cm))
                    if off[i, j] > 0), reverse=True)[:top]
    if pairs:
        lines.append("most confused: " + ", ".join(
            f"{classes[i]}->{classes[j]} ({n})" for n, i, j in pairs))
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
