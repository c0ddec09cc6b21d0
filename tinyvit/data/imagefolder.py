"""ImageFolder data sets: a folder or archive of `train/<class>/*.png` and `test/<class>/...`.

Layout: `[top/]train/<class>/*.png|jpg|jpeg` and `[top/]test/<class>/...` (or `val/`); the
classes are the train folder names, sorted alphabetically, and must match between the splits.
Folders are walked, archives (.tar, .tar.gz, .tgz, .zip) read in-stream with
`archives.read_archive`; nothing is extracted to disk. All images must have one size. Decoding
has limits: an image of more than MAX_PIXELS pixels (Pillow's decompression-bomb limit), a
member of more than MAX_IMAGE_BYTES, images that together need more than the memory, an image
whose values have no fixed range (32-bit integer, float), and an image name that is not a
regular file (a FIFO, a device) are refused with a line naming the file; 16-bit images keep
their top 8 bits. The decoded arrays are cached (`cache.image_folder_cache`).

Shape legend: N images, H, W height and width, C channels (3, RGB).
"""
import contextlib
import io
import os
import stat
import warnings
from pathlib import Path

import numpy as np

from ..support.progress import Progress
from .archives import read_archive
from .cache import image_folder_cache, load_cache, save_cache
from .errors import DataError, one_line
from .limits import check_bytes
from .paths import kind, kind_of_mode, open_regular, shown, walk

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg")
ARCHIVE_EXTENSIONS = (".tar", ".tar.gz", ".tgz", ".zip")
MAX_PIXELS = 89_478_485  # Pillow's Image.MAX_IMAGE_PIXELS (a 9459 x 9459 image)
MAX_IMAGE_BYTES = 64 << 20  # the largest image file read from an archive
SIXTEEN_BIT_MODES = {"I;16", "I;16L", "I;16B", "I;16N"}  # 16-bit grey (16-bit colour opens as RGB)
EIGHT_BIT_MODES = {"1", "L", "LA", "La", "P", "PA", "RGB", "RGBA", "RGBa", "RGBX", "CMYK", "YCbCr",
                   "LAB", "HSV"}  # modes whose values convert to 8-bit RGB without clipping


def is_image_name(name):
    """True for visible .png/.jpg/.jpeg files."""
    base = name.rsplit("/", 1)[-1]
    return base.lower().endswith(IMAGE_EXTENSIONS) and not base.startswith(".")


def is_archive(path):
    """True when the file name ends like a supported archive."""
    return str(path).lower().endswith(ARCHIVE_EXTENSIONS)


def in_layout(rel):
    """False for a folder below a class folder ('train/cat/sub', 'top/test/dog/x'): the layout
    holds no image there, so it is not walked (a link there to / would walk the whole disk)."""
    return not set(rel.split("/")[:-2]) & {"train", "test", "val"}


def list_folder(root):
    """({relative image path: full path}, {relative folder names}) under a folder (`paths.walk`:
    links followed, loops and unreadable folders refused). An image name that is not a regular
    file (a FIFO, a device, a socket) is refused here, before anything opens it."""
    files, dirs = {}, set()
    for top, entries in walk(root, in_layout):
        rel = Path(top).relative_to(root).as_posix()
        prefix = "" if rel == "." else rel + "/"
        for name, st in entries:
            if stat.S_ISDIR(st.st_mode):
                dirs.add(prefix + name)
            elif is_image_name(name):
                if not stat.S_ISREG(st.st_mode):
                    raise DataError(f"{shown(os.path.join(top, name))}: expected an image file, "
                                    f"found {kind_of_mode(st.st_mode)}")
                files[prefix + name] = os.path.join(top, name)
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
    if len(classes) < 2:  # refused here, before a single image is decoded
        raise DataError(f"{source}: expected at least 2 classes (folders in {prefix}train/), "
                        f"found 1 ('{classes[0]}'): a classifier of one class has nothing to learn")
    extra = sorted(folders[test_split] - folders["train"])
    if extra:
        raise DataError(f"{source}: class folder {prefix}{test_split}/{extra[0]} has no "
                        f"{prefix}train/{extra[0]} (expected the same classes in both)")
    for c in classes:  # a test class folder may be missing or empty (`checks.untested_note`)
        if ("train", c) not in images:
            raise DataError(f"{source}: class folder {prefix}train/{c} is empty "
                            f"(expected .png/.jpg/.jpeg images in it)")
    layout = {s: [(k, p) for k, c in enumerate(classes) for p in images.get((split, c), [])]
              for s, split in (("train", "train"), ("test", test_split))}
    if not layout["test"]:
        raise DataError(f"{source}: {prefix}{test_split}/ holds no images (expected "
                        f".png/.jpg/.jpeg images in its class folders)")
    return layout, classes


# ---------------------------------------------------------------------------------------------
# Decoding
# ---------------------------------------------------------------------------------------------


def decode_image(src, name):
    """uint8 (H, W, C) RGB from image bytes or a file path; `name` is for errors.

    A path is opened only if it is a regular file (`paths.open_regular`: a FIFO would block).
    16-bit images keep their top 8 bits (`to_rgb`). Refused with a one-line DataError: what
    Pillow cannot decode, more than MAX_PIXELS pixels, and 32-bit integer or float images.
    """
    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings(), image_file(src, name) as f:
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(f) as im:
                check_decodable(im, name)
                return to_rgb(im)  # (H, W, C)
    except DataError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise DataError(f"{name}: image too large to decode (more than {MAX_PIXELS:,} "
                        f"pixels)") from None
    except OSError as e:
        if e.errno is None:  # Pillow's own errors: not an image, truncated, ...
            raise DataError(f"{name}: cannot decode image ({one_line(e)})") from None
        raise DataError(f"{name}: cannot read image ({e.strerror})") from None
    except UnidentifiedImageError:
        raise DataError(f"{name}: cannot decode image (not a format Pillow reads; expected "
                        f"PNG or JPEG)") from None
    except (ValueError, SyntaxError) as e:
        raise DataError(f"{name}: cannot decode image ({one_line(e)})") from None


def image_file(src, name):
    """A binary file of the image bytes `src`, or of the path `src` if it is a regular file."""
    if isinstance(src, bytes):
        return contextlib.nullcontext(io.BytesIO(src))
    return open_regular(src, name, "an image file")


def check_decodable(im, name):
    """Refuse an opened (not yet decoded) image that is too large, or whose values have no
    fixed range (32-bit integer, float)."""
    w, h = im.size
    if w * h > MAX_PIXELS:
        raise DataError(f"{name}: image is {w}x{h}, more than {MAX_PIXELS:,} pixels (the "
                        f"decompression-bomb limit)")
    if im.mode not in EIGHT_BIT_MODES | SIXTEEN_BIT_MODES:
        raise DataError(f"{name}: image mode {im.mode} (32-bit integer or float values, of no "
                        f"fixed range) cannot be read as 8-bit RGB; expected 8- or 16-bit images")


def to_rgb(im):
    """uint8 (H, W, 3) of an opened image. 16-bit grey keeps its top 8 bits, as Pillow reads
    16-bit colour images, so every 16-bit image reads alike (0..65535 -> 0..255)."""
    if im.mode in SIXTEEN_BIT_MODES:
        grey = (np.asarray(im).astype(np.uint16) >> 8).astype(np.uint8)  # (H, W)
        return np.repeat(grey[..., None], 3, axis=-1)  # (H, W, C)
    return np.asarray(im.convert("RGB"), np.uint8)  # (H, W, C)


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
            check_bytes(first, n * img.nbytes,
                        f"{n:,} images like this {img.shape[1]}x{img.shape[0]} one")
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
    cache = image_folder_cache(path, data_dir, in_layout)
    ds = load_cache(cache)
    if ds is not None:
        return ds
    if kind(path) == "a folder":
        files, dirs = list_folder(path)
        describe = lambda p: shown(path / p)  # noqa: E731
    else:
        files, dirs = read_archive(path, is_image_name, MAX_IMAGE_BYTES)
        describe = lambda p: f"{shown(path)}:{shown(p)}"  # noqa: E731
    layout, classes = image_folder_layout(path, files, dirs)
    x_train, y_train = decode_images(layout["train"], files, describe, label=f"{path.name} train")
    x_test, y_test = decode_images(layout["test"], files, describe, x_train.shape[1:],
                                   label=f"{path.name} test")
    ds = dict(train=(x_train, y_train), test=(x_test, y_test), classes=classes)
    save_cache(cache, ds)
    return ds
