"""Cue-conflict images without a style-transfer network: one image's shape, another's texture.

Geirhos et al. (ICLR 2019) stylise an image of one class (its shape) with the texture of
another (AdaIN style transfer), then ask which class a network names: the shape's or the
texture's. At 32 x 32 pixels we split each image by spatial frequency instead: the LOW
frequencies of the shape image (its coarse layout, silhouette and colour blobs) plus the HIGH
frequencies of a texture made from the other image (its fur, grain, fine detail): its central
8 x 8 crop, tiled with mirrored copies. The high frequencies of the intact image would also
draw its object's outline, which is a shape cue; the tiling keeps only its local detail:

    L(x) = F^-1[ G . F[x] ],   G(f) = exp(-|f|^2 / 2 s^2)    Gaussian low-pass, s in cycles/px
    T = the texture image's central crop, mirror-tiled           its detail, not its layout
    stimulus = L(shape image) + gain (T - L(T))

What the stand-in keeps: one class's cue in each image, separated by frequency (by
construction the stimulus's spectrum is the shape image's where G is near 1 and the shuffled
texture image's where G is near 0: tested), made in NumPy in milliseconds, deterministic.
What it loses: a texture in Geirhos et al.'s sense is a stylised surface that follows the
object's form; ours is a kaleidoscope of one 8 x 8 crop laid over it (mirror-symmetric,
periodic every 16 pixels: a regularity real textures lack); the shape image's edges are
blurred rather than kept sharp; and at 32 px an object's fine detail and its "texture" are not
far apart in frequency, so the split is approximate (pixels are rounded and clipped at the end).

Shape legend: B images, H, W height and width, C channels.
"""
import numpy as np


def lowpass_gain(h, w, cutoff):
    """G(f) = exp(-|f|^2 / (2 cutoff^2)) on the frequency grid of an H x W image (cycles per
    pixel, as `np.fft.fftfreq`). -> (H, W)."""
    fy, fx = np.fft.fftfreq(h)[:, None], np.fft.fftfreq(w)[None, :]
    return np.exp(-(fy**2 + fx**2) / (2.0 * cutoff**2))  # (H, W)


def lowpass(images, cutoff):
    """L(x): each image and channel's low frequencies (periodic borders, as the DFT's).
    images (B, H, W, C) -> float64 (B, H, W, C)."""
    x = np.asarray(images, np.float64)
    g = lowpass_gain(x.shape[1], x.shape[2], cutoff)[None, :, :, None]  # (1, H, W, 1)
    return np.fft.ifft2(np.fft.fft2(x, axes=(1, 2)) * g, axes=(1, 2)).real  # (B, H, W, C)


def texture_of(images, side=8):
    """The texture images as the stimuli use them: each image's central side x side crop,
    tiled over the image with mirrored copies (crop | mirror, then that flipped upside down:
    no seams). Its local detail (fur, bricks, metal) is kept; the outline of its object, a
    shape cue the high frequencies of the intact image would carry, is not.
    (B, H, W, C) -> (B, H, W, C); 2 side must divide H and W."""
    x = np.asarray(images)
    b, h, w, c = x.shape
    if h % (2 * side) or w % (2 * side):
        raise ValueError(f"texture_of: 2 x side ({2 * side}) must divide the image size "
                         f"{h}x{w}")
    top, left = (h - side) // 2, (w - side) // 2
    crop = x[:, top:top + side, left:left + side]  # (B, side, side, C)
    pair = np.concatenate([crop, crop[:, :, ::-1]], axis=2)  # (B, side, 2 side, C)
    unit = np.concatenate([pair, pair[:, ::-1]], axis=1)  # (B, 2 side, 2 side, C)
    return np.tile(unit, (1, h // (2 * side), w // (2 * side), 1))  # (B, H, W, C)


def cue_conflict(shape_images, texture_images, cutoff=0.08, side=8, gain=1.0):
    """L(shape) + gain (T - L(T)) with T = `texture_of(texture_images, side)`, rounded and
    clipped to uint8. shape_images, texture_images uint8 (B, H, W, C) -> uint8 (B, H, W, C)."""
    a, b = np.asarray(shape_images), np.asarray(texture_images)
    if a.shape != b.shape or a.ndim != 4:
        raise ValueError(f"cue_conflict: expected shape and texture images of one shape "
                         f"(B, H, W, C), found {a.shape} and {b.shape}")
    if not 0 < cutoff < 0.5:
        raise ValueError(f"cue_conflict: cutoff must be in (0, 0.5) cycles per pixel, found "
                         f"{cutoff}")
    t = texture_of(b, side)  # (B, H, W, C)
    low = lowpass(a, cutoff)  # (B, H, W, C)
    high = t - lowpass(t, cutoff)  # (B, H, W, C)
    return np.clip(np.round(low + gain * high), 0, 255).astype(np.uint8)


def conflict_pairs(labels, seed=0):
    """Pair every image with one of another class: (shape index, texture index) arrays
    (B,) each; texture images are drawn at random, never of the shape image's class."""
    y = np.asarray(labels)
    rng = np.random.default_rng(seed)
    other = np.empty(len(y), int)
    for i, c in enumerate(y):
        other[i] = rng.choice(np.flatnonzero(y != c))
    return np.arange(len(y)), other
