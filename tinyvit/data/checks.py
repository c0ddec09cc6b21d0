"""Is a data set what tinyvit trains on? The one check every loader, cache and caller passes.

A data set is dict(train=(x, y), test=(x, y), classes=[str]): x uint8 (N, H, W, 3) with N >= 1,
y integer labels (N,) in 0..K-1 for K >= 2 distinct class names, every class with training
images, and test images of the train images' size. `check_dataset` raises a one-line DataError
naming the source otherwise, so a tampered cache or a hostile archive cannot train silently on
wrong labels or crash later, and a data set a classifier cannot learn from (one class: loss 0
and 100% accuracy at once; a class never seen in training) is refused. A class without test
images can be meant (a class trained on but not measured); `untested_note` says so in one line.
"""
import numpy as np

from .errors import DataError
from .paths import shown


def check_dataset(ds, source, image_shape=None, num_classes=None):
    """Return `ds` if it is a valid data set; one-line DataError naming `source` otherwise.

    image_shape (H, W, C) and num_classes: what this source must hold, when known (CIFAR).
    """
    classes = ds.get("classes") if isinstance(ds, dict) else None
    if not (isinstance(classes, (list, tuple)) and classes and len(set(classes)) == len(classes)
            and all(isinstance(c, str) and c for c in classes)):
        raise DataError(f"{source}: expected a list of distinct class names, found "
                        f"{str(classes)[:60]}")
    if num_classes is not None and len(classes) != num_classes:
        raise DataError(f"{source}: expected {num_classes} classes, found {len(classes)}")
    if len(classes) < 2:
        raise DataError(f"{source}: expected at least 2 classes, found 1 ('{shown(classes[0])}'): "
                        f"a classifier of one class has nothing to learn")
    shape = image_shape
    for split in ("train", "test"):
        x, y = _split(ds, split, source)
        _check_images(x, split, source, shape)
        _check_labels(y, len(x), len(classes), split, source)
        shape = x.shape[1:]
    unseen = missing_classes(ds, "train")
    if unseen:
        raise DataError(f"{source}: {_few(unseen)} no training images (expected every class "
                        f"in the train split)")
    return ds


def missing_classes(ds, split):
    """The names of the classes with no image in `split` of a checked data set."""
    counts = np.bincount(ds[split][1], minlength=len(ds["classes"]))  # (K,)
    return [ds["classes"][k] for k in np.flatnonzero(counts == 0)]


def _few(names, n=3):
    """"class 'a' has" / "3 classes ('a', 'b', 'c') have" / "5 classes ('a', ... ) have"."""
    if len(names) == 1:
        return f"class '{shown(names[0])}' has"
    listed = ", ".join(f"'{shown(c)}'" for c in names[:n]) + (", ..." if len(names) > n else "")
    return f"{len(names):,} classes ({listed}) have"


def untested_note(ds, source):
    """A one-line note when some classes have no test images (their accuracy is not measured),
    else None."""
    untested = missing_classes(ds, "test")
    if untested:
        return (f"note: {shown(source)}: {_few(untested)} no test images: trained on, but not "
                f"measured by the test accuracy")
    return None


def _split(ds, split, source):
    """(x, y) of one split, or a DataError."""
    pair = ds.get(split)
    if not (isinstance(pair, (tuple, list)) and len(pair) == 2
            and all(isinstance(a, np.ndarray) for a in pair)):
        raise DataError(f"{source}: expected a {split} split of (images, labels) arrays")
    return pair


def _check_images(x, split, source, shape):
    """uint8 (N, H, W, 3), N >= 1, of `shape` (H, W, C) when given."""
    if x.dtype != np.uint8 or x.ndim != 4 or x.shape[-1] != 3 or len(x) == 0:
        raise DataError(f"{source}: {split} images: expected uint8 (N, H, W, 3) with N >= 1, "
                        f"found {x.dtype} {x.shape}")
    if shape is not None and tuple(x.shape[1:]) != tuple(shape):
        raise DataError(f"{source}: {split} images are {x.shape[1:]}, expected {tuple(shape)}")


def _check_labels(y, n, k, split, source):
    """Integer labels (n,) in 0..k-1."""
    if y.dtype.kind not in "iu" or y.shape != (n,):
        raise DataError(f"{source}: {split} labels: expected {n} integers (one per image), "
                        f"found {y.dtype} {y.shape}")
    lo, hi = int(y.min()), int(y.max())
    if lo < 0 or hi >= k:
        raise DataError(f"{source}: {split} labels go from {lo} to {hi}, expected 0..{k - 1} "
                        f"({k} classes)")
