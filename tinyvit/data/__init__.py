"""Data: CIFAR-10/100 (official download), ImageFolder folders and archives, subsets, augmentation.

    ds = load_data("cifar10")                      # or "cifar100", a folder, .tar(.gz)/.tgz/.zip
    x, y = ds["train"]                             # uint8 (N, H, W, C), int64 (N,)
    x, y = balanced_subset(x, y, 5000, seed=0)     # 500 images per class
    for xb, yb in iterate_batches(rng, x, y, 128):
        xb = normalize(random_crop_flip(rng, xb), CIFAR10_MEAN, CIFAR10_STD)  # float32

Shape legend: N images in a data set, B batch, H, W height and width, C channels (3, RGB),
K classes. Images are NHWC uint8 in data sets, float32 once normalised; labels are int64.

Modules: `sources` (the entry point `load_data`, the data folder, the offline CIFAR-10 copy),
`cifar` (official archives: download, MD5, batches), `imagefolder` (folders and archives of
images), `cache` (.npz caches), `archives` (safe tar/zip reading, restricted unpickling),
`paths` (what a path is, checked before it is opened: regular files, folders walked with links
followed), `limits` (sizes read from files checked against the memory before anything is
allocated; .npz files read header first), `subsets` (balanced subsets, validation splits,
batches), `augment` (normalisation, crop/flip, mixup, flip and shift TTA), `randaug`
(RandAugment, TrivialAugment), `mixing` (CutMix, mixup-or-CutMix), `erasing` (random erasing),
`corruptions` (CIFAR-10-C's common corruptions in NumPy + Pillow), `cue_conflict` (shape-texture
cue-conflict images by spatial frequency), `errors` (DataError), `checks` (`check_dataset`: what
every loaded, cached or given data set must be), `synthetic` (stand-in images for smoke runs and
tests), `fractals` (IFS fractals drawn by the chaos game, vectorised), `fractal_sets`
(formula-driven data sets: FractalDB-style categories and 1p-frac, streamed by seed, epoch and
batch). Every problem a user can cause (missing or corrupt files, a FIFO or device where a file
belongs, wrong MD5, no network, unsafe or oversized archive members, images too large or of
32-bit/float values, odd image sizes, labels out of range, one class, a class without training
images) raises a one-line `DataError` (a `ValueError`) naming the file.
"""
from .augment import (CIFAR10_MEAN, CIFAR10_STD, CIFAR100_MEAN, CIFAR100_STD, TTA, flip_tta,
                      mixup, normalize, one_hot, random_crop_flip, shift_tta)
from .checks import check_dataset
from .mixing import cutmix, mix_batch
from .erasing import random_erasing
from .randaug import rand_augment, trivial_augment
from .errors import DataError, DownloadError
from .imagefolder import decode_image
from .limits import check_bytes, load_npz, memory_bytes
from .paths import kind, open_regular, read_text, shown
from .sources import OFFICIAL_NAMES, default_data_dir, load_data, local_cifar10_copy
from .subsets import (balanced_subset, iterate_batches, split_indices,
                      validation_split)
from .synthetic import synthetic_images

__all__ = ["load_data", "default_data_dir", "local_cifar10_copy", "DataError", "DownloadError",
           "check_dataset", "decode_image", "OFFICIAL_NAMES", "load_npz", "check_bytes",
           "memory_bytes", "kind", "open_regular", "read_text", "shown",
           "balanced_subset", "iterate_batches", "split_indices", "validation_split",
           "normalize", "one_hot", "random_crop_flip",
           "flip_tta", "shift_tta", "TTA", "mixup", "cutmix", "mix_batch", "rand_augment",
           "trivial_augment", "random_erasing", "synthetic_images", "CIFAR10_MEAN",
           "CIFAR10_STD", "CIFAR100_MEAN", "CIFAR100_STD"]
