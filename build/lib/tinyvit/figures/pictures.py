"""Pictures of images and of the paper's figures, drawn with `charts.py` (Pillow only).

Every function returns a `PIL.Image.Image` (RGB), so a notebook shows it inline and a lesson
saves it with `.save("name.png")`. The arrays they draw come from `analysis.py`.

    image_grid, patch_grid                   images; an image cut into its 16x16 "words"
    heatmap, overlay, attention_mask         attention maps (Fig. 6) and other 2-D arrays
    similarity_grid                          position-embedding similarity (Fig. 7 centre)
    filters_grid                             embedding filters / their principal components
                                             (Fig. 7 left)
    attention_distance_chart                 mean attention distance per head (Fig. 7 right)
    tile, upscale, as_rgb                    the array helpers under them

Shape legend: B images, H, W height / width in pixels, C channels (1 or 3), P patch size,
N patches, g grid (patches per side), k filters; in `attention_distance_chart` L layers,
H heads.
"""
import numpy as np
from PIL import Image, ImageDraw

from ..vit import patchify
from .charts import (PALETTE, WHITE, colorbar, colorize, draw_text, draw_vertical_text, font,
                     normalize, scatter_chart)


def as_rgb(images):
    """uint8 (..., H, W, C) with C = 1 or 3 -> (..., H, W, 3). One-line ValueError otherwise."""
    a = np.asarray(images)
    if a.dtype != np.uint8 or a.ndim < 3 or a.shape[-1] not in (1, 3):
        raise ValueError(f"images: expected uint8 (..., H, W, C) with C = 1 or 3, found "
                         f"{a.dtype} {a.shape} (see charts.to_uint8)")
    return np.repeat(a, 3, axis=-1) if a.shape[-1] == 1 else a  # (..., H, W, 3)


def upscale(images, scale):
    """Nearest-neighbour enlargement by an integer factor (pixel art stays crisp).

    (..., H, W, C) -> (..., H*scale, W*scale, C).
    """
    return np.repeat(np.repeat(images, scale, axis=-3), scale, axis=-2)


def tile(images, ncol, gap, border, background=255):
    """Lay equal-sized images out in rows of `ncol`, `gap` pixels apart, inside a border.

    (B, H, W, 3) uint8 -> (R*H + (R-1)*gap + 2*border, Q*W + (Q-1)*gap + 2*border, 3),
    Q = min(ncol, B) columns, R = ceil(B / Q) rows; empty slots are background.
    """
    b, h, w, c = images.shape
    q = min(ncol, b)
    r = -(-b // q)
    blank = np.full((r * q - b, h, w, c), background, np.uint8)  # (R*Q - B, H, W, 3)
    cells = np.concatenate([images, blank]).reshape(r, q, h, w, c)  # (R, Q, H, W, 3)
    cells = np.pad(cells, ((0, 0), (0, 0), (0, gap), (0, gap), (0, 0)),
                   constant_values=background)  # (R, Q, H+gap, W+gap, 3)
    sheet = cells.transpose(0, 2, 1, 3, 4).reshape(r * (h + gap), q * (w + gap), c)
    sheet = sheet[:sheet.shape[0] - gap, :sheet.shape[1] - gap]  # no gap after the last
    return np.pad(sheet, ((border, border), (border, border), (0, 0)),
                  constant_values=background)  # (R*H + (R-1)*gap + 2*border, ..., 3)


def image_grid(images, nrow=8, pad=2, scale=1, background=255):
    """A contact sheet of uint8 NHWC images, `nrow` images per row, `pad` pixels around each.

    (B, H, W, C) -> an image (Q*W*s + (Q+1)*pad) wide and (R*H*s + (R+1)*pad) high, where
    Q = min(nrow, B), R = ceil(B / Q), s = scale (nearest-neighbour).
    """
    images = upscale(as_rgb(images), scale)  # (B, H*s, W*s, 3)
    return Image.fromarray(tile(images, nrow, pad, pad, background))


def patch_grid(image, patch, gap=2, scale=1, ncol=None, background=255):
    """The "16x16 words" picture: an image cut into its patches, `gap` pixels between them.

    image (H, W, C) uint8. By default the patches keep their places: the result is
    (W*s + (W/P - 1)*gap) wide and (H*s + (H/P - 1)*gap) high (s = scale). With `ncol` they are
    re-flowed in raster order, `ncol` per row: ncol = N shows the sequence the Transformer reads.
    """
    image = as_rgb(image)  # (H, W, 3)
    h, w = image.shape[:2]
    if h % patch or w % patch:
        raise ValueError(f"patch_grid: patch {patch} must divide the image size, found {h}x{w}")
    image = upscale(image, scale)  # (H*s, W*s, 3)
    p = patch * scale
    n = (h // patch) * (w // patch)
    patches = patchify(image[None], p)[0]  # (N, P*s*P*s*3), the order the Transformer reads
    patches = patches.reshape(n, p, p, 3)  # (N, P*s, P*s, 3)
    ncol = image.shape[1] // p if ncol is None else ncol
    return Image.fromarray(tile(patches, ncol, gap, 0, background))


def heatmap(array2d, size=256, colormap="viridis", vmin=None, vmax=None, smooth=False):
    """A 2-D array as a colour image: `normalize` to [0, 1], then a colour map.

    size: the longer side in pixels (int) or (width, height). Cells stay sharp squares unless
    `smooth` (bilinear interpolation of the values, not of the colours).
    """
    a = np.asarray(array2d, dtype=np.float32)
    if a.ndim != 2:
        raise ValueError(f"heatmap: expected a 2-D array, found shape {a.shape}")
    if isinstance(size, int):
        f = size / max(a.shape)
        size = (max(1, round(a.shape[1] * f)), max(1, round(a.shape[0] * f)))
    resample = Image.BILINEAR if smooth else Image.NEAREST
    big = np.asarray(Image.fromarray(a, mode="F").resize(size, resample))  # (h, w)
    return Image.fromarray(colorize(normalize(big, vmin, vmax), colormap))  # (h, w, 3)


def _smooth_to(image_rgb, heat):
    """Upsample a (g, g) map bilinearly to the image's (H, W) and scale it to [0, 1]."""
    h, w = image_rgb.shape[:2]
    big = Image.fromarray(np.asarray(heat, np.float32), mode="F").resize((w, h), Image.BILINEAR)
    return normalize(np.asarray(big))  # (H, W)


def overlay(image, heat, alpha=0.5, colormap="inferno", scale=1):
    """An attention map laid over its image: (1 - alpha) * image + alpha * colour(heat).

    image (H, W, C) uint8, heat (g, g) (e.g. `analysis.rollout_to_image(...)[i]`),
    upsampled bilinearly. -> (H*scale, W*scale) RGB.
    """
    img = upscale(as_rgb(image), scale).astype(np.float64)  # (H*s, W*s, 3)
    colour = colorize(_smooth_to(img, heat), colormap)  # (H*s, W*s, 3)
    return Image.fromarray(((1 - alpha) * img + alpha * colour).round().astype(np.uint8))


def attention_mask(image, heat, scale=1):
    """Fig. 6's style: the image multiplied by its attention map (scaled to [0, 1])."""
    img = upscale(as_rgb(image), scale).astype(np.float64)  # (H*s, W*s, 3)
    mask = _smooth_to(img, heat)[..., None]  # (H*s, W*s, 1)
    return Image.fromarray((img * mask).round().astype(np.uint8))


def filters_grid(filters, nrow=7, scale=None, pad=2):
    """Fig. 7 left: filters (k, P, P, C), each stretched to its own [0, 1], on a grid.

    scale: pixels per filter weight (default: about 48 pixels per filter side).
    """
    f = np.asarray(filters, np.float64)
    if f.ndim != 4:
        raise ValueError(f"filters_grid: expected (k, P, P, C), found shape {f.shape}")
    scale = max(1, 48 // f.shape[1]) if scale is None else scale
    lo = f.min(axis=(1, 2, 3), keepdims=True)  # (k, 1, 1, 1)
    hi = f.max(axis=(1, 2, 3), keepdims=True)  # (k, 1, 1, 1)
    f = (f - lo) / np.where(hi > lo, hi - lo, 1.0)  # (k, P, P, C) in [0, 1]
    return image_grid((f * 255).round().astype(np.uint8), nrow, pad, scale)


def similarity_grid(sim, cell=6, gap=2, colormap="viridis", labels=True):
    """Fig. 7 centre: tile [i, j] shows patch (i, j)'s cosine similarity to every patch.

    sim (g, g, g, g) from `analysis.position_similarity`, colours fixed to [-1, 1].
    Each similarity is a `cell` x `cell` square; with `labels`, axis titles, patch numbers
    and a colour bar are added around the grid.
    """
    s = np.asarray(sim)
    if s.ndim != 4 or len(set(s.shape)) != 1:
        raise ValueError(f"similarity_grid: expected (g, g, g, g), found shape {s.shape}")
    g = s.shape[0]
    tiles = upscale(colorize(normalize(s, -1.0, 1.0), colormap), cell)  # (g, g, g*c, g*c, 3)
    grid = tile(tiles.reshape(g * g, g * cell, g * cell, 3), g, gap, 0)  # (S, S, 3)
    if not labels:
        return Image.fromarray(grid)
    fnt = font(13)
    left, top, right, bottom = 48, 12, 86, 44
    side = grid.shape[0]
    img = Image.new("RGB", (left + side + right, top + side + bottom), WHITE)
    img.paste(Image.fromarray(grid), (left, top))
    draw = ImageDraw.Draw(img)
    step = g * cell + gap  # one tile and its gap
    for i in range(g):  # 1-based patch numbers under columns and beside rows
        centre = i * step + g * cell / 2
        draw_text(draw, (left + centre, top + side + 4), str(i + 1), fnt, "mt")
        draw_text(draw, (left - 5, top + centre), str(i + 1), fnt, "rm")
    draw_text(draw, (left + side / 2, top + side + 24), "Input patch column", fnt, "mt")
    draw_vertical_text(img, (14, top + side / 2), "Input patch row", fnt)
    colorbar(img, (left + side + 12, top, left + side + 24, top + side), -1, 1, colormap,
             "Cosine similarity", fnt)
    return img


def attention_distance_chart(distances, title="Mean attention distance", size=(640, 420)):
    """Fig. 7 right: one dot per head at every layer. distances (L, H) pixels, from
    `analysis.mean_attention_distance`. Legend only up to 10 heads (the palette's size)."""
    d = np.asarray(distances, float)
    if d.ndim != 2:
        raise ValueError(f"attention_distance_chart: expected (L, H), found shape {d.shape}")
    layers = np.arange(1, d.shape[0] + 1)  # (L,) 1-based like the paper
    series = {f"Head {h + 1}": (layers, d[:, h]) for h in range(d.shape[1])}
    return scatter_chart(series, "Network depth (layer)", "Mean attention distance (pixels)",
                         title, ylim=(0, None), size=size, legend=d.shape[1] <= len(PALETTE))
