"""RandAugment (Cubuk et al. 2020) and TrivialAugment (Müller & Hutter 2021) on uint8 images,
in NumPy, a whole batch at once.

Both draw operations from one table of 14 (`OP_NAMES`): identity, auto-contrast, equalize,
rotate, solarize, color, posterize, contrast, brightness, sharpness, shear x / y and
translate x / y. How far each goes is its magnitude, one of 31 bins (0 ... 30), mapped to a
value by the op's range in a search space (`SPACES`, as torchvision's `_augmentation_space`):
"standard" is RandAugment's, "wide" TrivialAugment's; ops with a sign get a random one.

    rand_augment(rng, x, n=2, magnitude=9)   n ops per image, each drawn uniformly, all at
                                             the same magnitude (RandAugment, Sec. 3)
    trivial_augment(rng, x)                  one op per image, drawn uniformly, at a uniformly
                                             drawn magnitude (TrivialAugment, Sec. 3)

Each op follows the Pillow function that torchvision and timm call (`ImageOps`,
`ImageEnhance`, `Image.transform` with nearest-neighbour sampling), so the tests compare them
with Pillow; each runs once per batch on the images that drew it. Everything random comes
from `rng` (a numpy.random.Generator): the same seed gives the same images.

Shape legend: B batch (b: the images that drew one op), H, W height and width, C channels.
"""
import numpy as np

BINS = 31  # magnitudes 0 ... 30
OP_NAMES = ("identity", "auto_contrast", "equalize", "rotate", "solarize", "color", "posterize",
            "contrast", "brightness", "sharpness", "shear_x", "shear_y", "translate_x",
            "translate_y")
# op: (value at the top magnitude, signed); translate in pixels (a function of the image side),
# posterize in bits removed from 8 (the value is 8 - round(...)), solarize from 255 down to 0
SPACES = {
    "standard": {"rotate": (30.0, True), "shear_x": (0.3, True), "shear_y": (0.3, True),
                 "translate_x": (lambda side: 150.0 / 331.0 * side, True),
                 "translate_y": (lambda side: 150.0 / 331.0 * side, True),
                 "brightness": (0.9, True), "color": (0.9, True), "contrast": (0.9, True),
                 "sharpness": (0.9, True), "posterize": (4, False)},
    "wide": {"rotate": (135.0, True), "shear_x": (0.99, True), "shear_y": (0.99, True),
             "translate_x": (lambda side: 32.0, True), "translate_y": (lambda side: 32.0, True),
             "brightness": (0.99, True), "color": (0.99, True), "contrast": (0.99, True),
             "sharpness": (0.99, True), "posterize": (6, False)},
}


# ---------------------------------------------------------------------------------------------
# Pixel operations: x (b, H, W, C) uint8, v (b,) one value per image -> (b, H, W, C) uint8
# ---------------------------------------------------------------------------------------------


def grey(x):
    """Pillow's RGB -> L: (19595 R + 38470 G + 7471 B + 2^15) >> 16. (b, H, W, 3) -> (b, H, W)."""
    r, g, b = (x[..., i].astype(np.int64) for i in range(3))
    return ((r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16).astype(np.uint8)


def blend(degenerate, x, factor):
    """Pillow's Image.blend(degenerate, x, factor) = degenerate + factor (x - degenerate),
    clipped to 0 ... 255 and truncated (ImageEnhance's formula; factor (b,))."""
    f = np.asarray(factor, np.float32)[:, None, None, None]  # (b, 1, 1, 1)
    d = degenerate.astype(np.float32)
    out = d + f * (x.astype(np.float32) - d)  # (b, H, W, C)
    return np.clip(out, 0.0, 255.0).astype(np.uint8)


def brightness(x, v):
    """ImageEnhance.Brightness(1 + v): blended with black."""
    return blend(np.zeros_like(x), x, 1.0 + v)


def color(x, v):
    """ImageEnhance.Color(1 + v): blended with the image's grey version (saturation)."""
    return blend(np.repeat(grey(x)[..., None], x.shape[-1], -1), x, 1.0 + v)


def contrast(x, v):
    """ImageEnhance.Contrast(1 + v): blended with the mean grey level (rounded) of the image."""
    mean = np.floor(grey(x).reshape(len(x), -1).mean(1) + 0.5)  # (b,)
    return blend(np.broadcast_to(mean[:, None, None, None], x.shape), x, 1.0 + v)


def sharpness(x, v):
    """ImageEnhance.Sharpness(1 + v): blended with ImageFilter.SMOOTH, the 3x3 kernel
    [[1, 1, 1], [1, 5, 1], [1, 1, 1]] / 13 (rounded) inside, the border pixels unchanged."""
    f = x.astype(np.float32)
    h, w = x.shape[1:3]
    s = 4.0 * f[:, 1:-1, 1:-1]  # (b, H-2, W-2, C) the centre weight 5 = 1 + 4
    for dy in range(3):
        for dx in range(3):
            s = s + f[:, dy:dy + h - 2, dx:dx + w - 2]
    smooth = x.copy()
    smooth[:, 1:-1, 1:-1] = np.clip(np.floor(s / 13.0 + 0.5), 0, 255).astype(np.uint8)
    return blend(smooth, x, 1.0 + v)


def posterize(x, v):
    """ImageOps.posterize: keep the top v bits of every channel value."""
    bits = np.asarray(v, np.int64)
    keep = (~((1 << (8 - bits)) - 1) & 0xFF).astype(np.uint8)  # (b,)
    return x & keep[:, None, None, None]


def solarize(x, v):
    """ImageOps.solarize: every value at or above the threshold v inverted (255 - value)."""
    return np.where(x >= np.asarray(v)[:, None, None, None], 255 - x, x)


def auto_contrast(x, v=None):
    """ImageOps.autocontrast: each channel stretched so that its darkest value becomes 0 and
    its brightest 255 (lut int(i * scale + offset)); a flat channel is left as is."""
    lo = x.min((1, 2), keepdims=True).astype(np.float64)  # (b, 1, 1, C)
    hi = x.max((1, 2), keepdims=True).astype(np.float64)
    scale = 255.0 / np.maximum(hi - lo, 1.0)
    out = np.clip(np.trunc(x * scale - lo * scale), 0, 255).astype(np.uint8)
    return np.where(hi > lo, out, x)


def equalize(x, v=None):
    """ImageOps.equalize: each channel through the lut (step // 2 + #pixels below i) // step,
    step = (#pixels - #pixels of the brightest value present) // 255 (step 0: unchanged)."""
    b, h, w, c = x.shape
    planes = x.transpose(0, 3, 1, 2).reshape(b * c, h * w).astype(np.int64)  # (bC, HW)
    hist = np.zeros((b * c, 256), np.int64)
    np.add.at(hist, (np.arange(b * c)[:, None], planes), 1)  # (bC, 256)
    top = 255 - np.argmax(hist[:, ::-1] > 0, axis=1)  # (bC,) the brightest value present
    step = (h * w - hist[np.arange(b * c), top]) // 255  # (bC,)
    below = np.cumsum(hist, axis=1) - hist  # (bC, 256) pixels darker than each value
    lut = (step[:, None] // 2 + below) // np.maximum(step, 1)[:, None]
    lut = np.where(step[:, None] > 0, np.minimum(lut, 255), np.arange(256))  # (bC, 256)
    out = np.take_along_axis(lut, planes, axis=1).astype(np.uint8)  # (bC, HW)
    return out.reshape(b, c, h, w).transpose(0, 2, 3, 1)


def identity(x, v=None):
    return x


# ---------------------------------------------------------------------------------------------
# Geometric operations: an affine map of each image, nearest-neighbour, `fill` outside
# ---------------------------------------------------------------------------------------------


def affine(x, m, fill=128):
    """Pillow's Image.transform(AFFINE, NEAREST): output pixel (col, row) takes the input
    pixel floor(m @ (col + 1/2, row + 1/2, 1)), or `fill` when that falls outside.
    x (b, H, W, C), m (b, 2, 3) -> (b, H, W, C)."""
    b, h, w, _ = x.shape
    rows, cols = np.mgrid[:h, :w] + 0.5  # (H, W) pixel centres
    grid = np.stack([cols.ravel(), rows.ravel(), np.ones(h * w)])  # (3, HW)
    src = np.floor(m @ grid).astype(np.int64)  # (b, 2, HW): input column, row
    sx, sy = src[:, 0], src[:, 1]  # (b, HW) each
    inside = (sx >= 0) & (sx < w) & (sy >= 0) & (sy < h)  # (b, HW)
    picked = x[np.arange(b)[:, None], np.clip(sy, 0, h - 1), np.clip(sx, 0, w - 1)]  # (b, HW, C)
    out = np.where(inside[..., None], picked, np.asarray(fill, x.dtype))
    return out.reshape(x.shape)


def _matrices(a, b, c, d, e, f):
    """(n, 2, 3) affine matrices from six (n,) arrays (or scalars) [[a, b, c], [d, e, f]]."""
    n = max(np.size(t) for t in (a, b, c, d, e, f))
    return np.stack([np.broadcast_to(t, (n,)).astype(np.float64)
                     for t in (a, b, c, d, e, f)], 1).reshape(n, 2, 3)


def shear_x(x, v, fill=128):
    """Each row shifted by v times its height (timm's shear_x: AFFINE (1, v, 0, 0, 1, 0))."""
    return affine(x, _matrices(1.0, v, 0.0, 0.0, 1.0, 0.0), fill)


def shear_y(x, v, fill=128):
    """Each column shifted by v times its abscissa (AFFINE (1, 0, 0, v, 1, 0))."""
    return affine(x, _matrices(1.0, 0.0, 0.0, v, 1.0, 0.0), fill)


def translate_x(x, v, fill=128):
    """The picture moved right by v pixels (left for v < 0): AFFINE (1, 0, -v, 0, 1, 0)."""
    return affine(x, _matrices(1.0, 0.0, -np.asarray(v), 0.0, 1.0, 0.0), fill)


def translate_y(x, v, fill=128):
    """The picture moved down by v pixels (up for v < 0): AFFINE (1, 0, 0, 0, 1, -v)."""
    return affine(x, _matrices(1.0, 0.0, 0.0, 0.0, 1.0, -np.asarray(v)), fill)


def rotate(x, v, fill=128):
    """Image.rotate(v): v degrees counter-clockwise about the image centre (W/2, H/2)."""
    h, w = x.shape[1:3]
    a = -np.radians(np.asarray(v, np.float64))  # (b,) Pillow's inverse map
    cos, sin = np.cos(a), np.sin(a)
    cx, cy = w / 2.0, h / 2.0
    return affine(x, _matrices(cos, sin, cx - cos * cx - sin * cy,
                               -sin, cos, cy + sin * cx - cos * cy), fill)


GEOMETRIC = {"rotate": rotate, "shear_x": shear_x, "shear_y": shear_y,
             "translate_x": translate_x, "translate_y": translate_y}
OPS = {"identity": identity, "auto_contrast": auto_contrast, "equalize": equalize,
       "solarize": solarize, "color": color, "posterize": posterize, "contrast": contrast,
       "brightness": brightness, "sharpness": sharpness, **GEOMETRIC}


# ---------------------------------------------------------------------------------------------
# Magnitudes, and the two policies
# ---------------------------------------------------------------------------------------------


def op_values(rng, names, magnitudes, space, side):
    """The value of op `names[i]` at magnitude bin `magnitudes[i]` (0 ... 30) in `space`, with
    a random sign for signed ops. names (B,) str, magnitudes (B,) -> (B,) float64."""
    if space not in SPACES:
        raise ValueError(f"augmentation space: expected one of {', '.join(SPACES)}, "
                         f"found {space!r}")
    t = np.asarray(magnitudes, np.float64) / (BINS - 1)  # (B,) in [0, 1]
    signs = np.where(rng.random(len(t)) < 0.5, -1.0, 1.0)  # (B,) drawn for every image
    values = np.zeros(len(t))
    for i, name in enumerate(names):
        if name == "solarize":
            values[i] = 255.0 * (1.0 - t[i])
        elif name == "posterize":
            values[i] = 8 - np.round(t[i] * SPACES[space]["posterize"][0])
        elif name in SPACES[space]:
            top, signed = SPACES[space][name]
            top = top(side) if callable(top) else top
            values[i] = top * t[i] * (signs[i] if signed else 1.0)
    return values


def apply_ops(x, ops, values, fill=128):
    """Image i through op OP_NAMES[ops[i]] with value values[i]; each op runs once, on the
    images that drew it. x (B, H, W, C) uint8, ops (B,) int, values (B,) -> (B, H, W, C)."""
    out = x.copy()
    for k, name in enumerate(OP_NAMES):
        rows = np.flatnonzero(ops == k)
        if rows.size:
            fn = OPS[name]
            out[rows] = (fn(x[rows], values[rows], fill) if name in GEOMETRIC
                         else fn(x[rows], values[rows]))
    return out


def _check_images(x, what):
    if not (isinstance(x, np.ndarray) and x.dtype == np.uint8 and x.ndim == 4
            and x.shape[-1] == 3):
        raise ValueError(f"{what}: expected uint8 RGB images (B, H, W, 3), found "
                         f"{getattr(x, 'dtype', type(x).__name__)} "
                         f"{getattr(x, 'shape', '')}")


def rand_augment(rng, x, n=2, magnitude=9, space="standard", fill=128):
    """RandAugment (Cubuk et al. 2020): n rounds; in each, every image takes one op drawn
    uniformly from the 14, all at the same `magnitude` (0 ... 30). uint8 (B, H, W, 3) -> same."""
    _check_images(x, "rand_augment")
    if not (isinstance(n, int) and n >= 0 and 0 <= magnitude <= BINS - 1):
        raise ValueError(f"rand_augment: expected n >= 0 and a magnitude in [0, {BINS - 1}], "
                         f"found n={n!r}, magnitude={magnitude!r}")
    for _ in range(n):
        ops = rng.integers(0, len(OP_NAMES), len(x))  # (B,)
        names = [OP_NAMES[k] for k in ops]
        x = apply_ops(x, ops, op_values(rng, names, np.full(len(x), magnitude), space,
                                        x.shape[2]), fill)
    return x


def trivial_augment(rng, x, space="wide", fill=128):
    """TrivialAugment (Müller & Hutter 2021): every image takes one op drawn uniformly from the
    14 at a magnitude drawn uniformly from the 31 bins. uint8 (B, H, W, 3) -> same."""
    _check_images(x, "trivial_augment")
    ops = rng.integers(0, len(OP_NAMES), len(x))  # (B,)
    magnitudes = rng.integers(0, BINS, len(x))  # (B,)
    values = op_values(rng, [OP_NAMES[k] for k in ops], magnitudes, space, x.shape[2])
    return apply_ops(x, ops, values, fill)

