"""ImageFolder data sets: a folder or archive of `train/<class>/*.png` and `test/<class>/...`.

Layout: `[top/]train/<class>/*.png|jpg|jpeg` and `[top/]test/<class>/...` (or `val/`); the
classes are the train folder names, sorted alphabetically, and must match between the splits.
Folders are walked, archives (.tar, .tar.gz, .tgz, .zip) read in-stream with
`archives.read_archive`; nothing is extracted to disk. All images must have one size. Decoding
has limits: an image of more than MAX_PIXELS pixels (Pillow's decompression-bomb limit), a
member of more than MAX_IMAGE_BYTES, or an image whose values 8-bit RGB cannot hold (16-bit,
float) is refused with a line naming the file. The decoded arrays are cached
(`cache.image_folder_cache`).

Shape legend: N images, H, W height and width, C channels (3, RGB).
"""
import io
import os
import warnings
from pathlib import Path

import numpy as np

from ..support.progress import Progress
from .archives import read_archive
from .cache import image_folder_cache, load_cache, save_cache
from .errors import DataError, one_line

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg")
ARCHIVE_EXTENSIONS = (".tar", ".tar.gz", ".tgz", ".zip")
MAX_PIXELS = 89_478_485  # Pillow's Image.MAX_IMAGE_PIXELS (a 9459 x 9459 image)
MAX_IMAGE_BYTES = 64 << 20  # the largest image file read from an archive
EIGHT_BIT_MODES = {"1", "L", "LA", "La", "P", "PA", "RGB", "RGBA", "RGBa", "RGBX", "CMYK", "YCbCr",
                   "LAB", "HSV"}  # modes whose values convert to 8-bit RGB without clipping


def is_image_name(name):
    """True for visible .png/.jpg/.jpeg files."""
    base = name.rsplit("/", 1)[-1]
    return base.lower().endswith(IMAGE_EXTENSIONS) and not base.startswith(".")


def is_archive(path):
    """True when the file name ends like a supported archive."""
    return str(path).lower().endswith(ARCHIVE_EXTENSIONS)


def list_folder(root):
    """({relative image path: full path}, {relative folder names}) under a folder."""
    files, dirs = {}, set()
    for top, subdirs, names in os.walk(root):
        rel = Path(top).relative_to(root).as_posix()
        prefix = "" if rel == "." else rel + "/"
        dirs.update(prefix + d for d in subdirs)
        files.update((prefix + n, os.path.join(top, n)) for n in names if is_image_name(n))
    return files, dirs


# ---------------------------------------------------------------------------------------------
# The layout: which image belongs to which split and class
# ---------------------------------------------------------------------------------------------


def is_ignored(part):
    """Hidden entries and macOS zip debris are not part of a layout."""
    return part.startswith(".") or part == "__MACOSX"


def top_entries(paths, prefix):
    """The visible names directly under `prefix` among `paths`."""
    tops = {p[len(prefix):].split("/")[0] for p in paths if p.startswith(prefix)}
    return {t for t in tops if t and not is_ignored(t)}


def find_root(paths):
    """The prefix holding `train/`: '' or 'top/' (descending through single top folders, but
    not into a split folder)."""
    prefix = ""
    while True:
        tops = top_entries(paths, prefix)
        if "train" in tops or len(tops) != 1 or tops & {"test", "val"}:
            return prefix
        prefix += tops.pop() + "/"


def image_folder_layout(source, files, dirs):
    """{'train': [(class, path)], 'test': [...]} and the sorted class names of an ImageFolder.

    `files` maps relative image paths to their data (bytes or a file path); `dirs` lists the
    folders (to find empty class folders).
    """
    prefix = find_root(set(files) | dirs)
    folders, images = {}, {}  # split -> {class}, (split, class) -> [path]
    for path in sorted(set(files) | dirs):
        parts = path[len(prefix):].split("/") if path.startswith(prefix) else []
        if len(parts) < 2 or parts[0] not in ("train", "test", "val") or is_ignored(parts[1]):
            continue
        folders.setdefault(parts[0], set()).add(parts[1])
        if len(parts) == 3 and path in files:
            images.setdefault((parts[0], parts[1]), []).append(path)
    if "train" not in folders:
        tops = sorted(top_entries(set(files) | dirs, prefix))[:5]
        raise DataError(f"{source}: expected {prefix}train/<class>/ image folders, found "
                        f"{', '.join(tops) or 'nothing'} in {prefix or 'the top level'}")
    test_split = "test" if "test" in folders else "val" if "val" in folders else None
    if test_split is None:
        raise DataError(f"{source}: expected a {prefix}test/ (or val/) split next to "
                        f"{prefix}train/, found none")
    classes = sorted(folders["train"])
    for split in ("train", test_split):
        for c in sorted(folders[split]):
            if c not in folders["train"]:
                raise DataError(f"{source}: class folder {prefix}{split}/{c} has no "
                                f"{prefix}train/{c} (expected the same classes in both)")
            if (split, c) not in images:
                raise DataError(f"{source}: class folder {prefix}{split}/{c} is empty "
                                f"(expected .png/.jpg/.jpeg images in it)")
    layout = {s: [(classes.index(c), p) for c in classes for p in images.get((split, c), [])]
              for s, split in (("train", "train"), ("test", test_split))}
    return layout, classes


# ---------------------------------------------------------------------------------------------
# Decoding
# ---------------------------------------------------------------------------------------------


def decode_image(src, name):
    """uint8 (H, W, C) RGB from image bytes or a file path; `name` is for errors.

    Refused with a one-line DataError: what Pillow cannot decode, more than MAX_PIXELS pixels,
    and modes whose values do not fit 8-bit RGB (16-bit, 32-bit integer, float).
    """
    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(src) if isinstance(src, bytes) else src) as im:
                check_decodable(im, name)
                return np.asarray(im.convert("RGB"), np.uint8)  # (H, W, C)
    except DataError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise DataError(f"{name}: image too large to decode (more than {MAX_PIXELS:,} "
                        f"pixels)") from None
    except OSError as e:
        if e.errno is None:  # Pillow's own errors: not an image, truncated, ...
            raise DataError(f"{name}: cannot decode image ({one_line(e)})") from None
        raise DataError(f"{name}: cannot read image ({e.strerror})") from None
    except (UnidentifiedImageError, ValueError, SyntaxError) as e:
        raise DataError(f"{name}: cannot decode image ({one_line(e)})") from None


def check_decodable(im, name):
    """Refuse an opened (not yet decoded) image that is too large or not 8-bit."""
    w, h = im.size
    if w * h > MAX_PIXELS:
        raise DataError(f"{name}: image is {w}x{h}, more than {MAX_PIXELS:,} pixels (the "
                        f"decompression-bomb limit)")
    if im.mode not in EIGHT_BIT_MODES:
        raise DataError(f"{name}: image mode {im.mode} (16-bit or float values) cannot be "
                        f"read as 8-bit RGB without clipping; expected 8-bit images")


def decode_images(items, files, describe, size=None, label=""):
    """(x uint8 (N, H, W, C), y int64 (N,)) of [(class index, path)]; all of one size."""
    n = len(items)
    x, first = None, None
    progress = Progress(n, f"decoding {label} ", every=10.0)
    for i, (_, path) in enumerate(items):
        img = decode_image(files[path], describe(path))  # (H, W, C)
        if x is None:
            first = describe(path)
            if size is not None and img.shape != size:
                raise DataError(f"{first}: image is {img.shape[1]}x{img.shape[0]}, expected "
                                f"{size[1]}x{size[0]} like the training images")
            x = np.empty((n,) + img.shape, np.uint8)  # (N, H, W, C)
        elif img.shape != x.shape[1:]:
            raise DataError(f"{describe(path)}: image is {img.shape[1]}x{img.shape[0]}, "
                            f"expected {x.shape[2]}x{x.shape[1]} like {first} "
                            f"(all images must have one size)")
        x[i] = img
        if i % 1000 == 999:
            progress.update(i + 1)
    progress.close()
    return x, np.array([c for c, _ in items], np.int64)


def load_image_folder(path, data_dir):
    """dict(train, test, classes) of an ImageFolder folder or archive (cached as .npz)."""
    path = Path(path).resolve()
    cache = image_folder_cache(path, data_dir)
    ds = load_cache(cache)
    if ds is not None:
        return ds
    if path.is_dir():
        files, dirs = list_folder(path)
        describe = lambda p: str(path / p)  # noqa: E731
    else:
        files, dirs = read_archive(path, is_image_name, MAX_IMAGE_BYTES)
        describe = lambda p: f"{path}:{p}"  # noqa: E731
    layout, classes = image_folder_layout(path, files, dirs)
    x_train, y_train = decode_images(layout["train"], files, describe, label=f"{path.name} train")
    x_test, y_test = decode_images(layout["test"], files, describe, x_train.shape[1:],
                                   label=f"{path.name} test")
    ds = dict(train=(x_train, y_train), test=(x_test, y_test), classes=classes)
    save_cache(cache, ds)
    return ds
