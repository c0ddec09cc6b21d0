"""Pictures of images and of the paper's figures, drawn with `charts.py` (Pillow only).

Every function returns a `PIL.Image.Image` (RGB), so a notebook shows it inline and a lesson
saves it with `.save("name.png")`. The arrays they draw come from `analysis.py`.

    image_grid, patch_grid                   images; an image cut into its 16x16 "words"
    labelled_grid                            tiles with a title, column / row labels,
                                             captions and a colour bar: a picture that
                                             explains itself
    heatmap, matrix_heatmap                  2-D arrays (a matrix with axes, ticks, scale)
    overlay, attention_mask                  attention maps laid over images (Fig. 6)
    similarity_grid                          position-embedding similarity (Fig. 7 centre)
    filters_grid                             embedding filters / their principal components
                                             (Fig. 7 left)
    attention_distance_chart                 mean attention distance per head (Fig. 7 right)
    patch_colors, mpp_corruption_view        masked patch prediction (Sec. 4.6): the 3-bit
                                             colour targets, the corrupted input
    tile, upscale, as_rgb                    the array helpers under them

Shape legend: B images, H, W height / width in pixels, C channels (1 or 3), P patch size,
N patches, g grid (patches per side), k filters; in `attention_distance_chart` L layers,
H heads.
"""
import numpy as np
from PIL import Image, ImageDraw

from ..mpp import KEPT, MASKED, REPLACED, color_of_class
from ..vit import patchify
from .charts import (PALETTE, WHITE, colorize, draw_text, draw_title, draw_vertical_text, font,
                     normalize, scatter_chart, text_size)
from .charts import colorbar as charts_colorbar


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


def patch_grid(image, patch, gap=2, scale=1, ncol=None, background=255, numbers=False):
    """The "16x16 words" picture: an image cut into its patches, `gap` pixels between them.

    image (H, W, C) uint8. By default the patches keep their places: the result is
    (W*s + (W/P - 1)*gap) wide and (H*s + (H/P - 1)*gap) high (s = scale). With `ncol` they are
    re-flowed in raster order, `ncol` per row: ncol = N shows the sequence the Transformer reads.
    `numbers`: each patch's position in that sequence (0, 1, ...) in its top-left corner.
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
    out = Image.fromarray(tile(patches, ncol, gap, 0, background))
    if numbers:
        draw, fnt = ImageDraw.Draw(out), font(max(9, min(14, p // 4)))
        for i in range(n):
            x, y = (i % ncol) * (p + gap) + 2, (i // ncol) * (p + gap) + 1
            draw.text((x, y), str(i), font=fnt, fill=WHITE, stroke_width=1, stroke_fill="#000000")
    return out


def labelled_grid(tiles, ncol, col_labels=None, row_labels=None, captions=None, title="",
                  colorbar=None, gap=6):
    """Equal-sized tiles in rows of `ncol`, with the words that make the picture readable alone.

    tiles: a list of (h, w, 3) uint8 arrays or PIL images. col_labels: one per column, above
    it; row_labels: one per row, at its left; captions: one per tile, under it; title: on top
    (lines split at "\n").
    colorbar = (vmin, vmax, colormap, label) adds a colour bar at the right (the one absolute
    scale shared by every tile: draw them with the same vmin / vmax).
    """
    cells = [np.asarray(t.convert("RGB") if isinstance(t, Image.Image) else as_rgb(t))
             for t in tiles]
    if not cells or len({c.shape for c in cells}) != 1:
        raise ValueError(f"labelled_grid: expected tiles of one shape, found "
                         f"{sorted({c.shape for c in cells})}")
    h, w = cells[0].shape[:2]
    rows = -(-len(cells) // ncol)
    cols = min(ncol, len(cells))
    fnt, big = font(13), font(15)
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    left = 8 + (max(text_size(probe, r, fnt)[0] for r in row_labels) + 10 if row_labels else 0)
    lines = title.split("\n") if title else []
    top = 8 + 20 * len(lines) + (6 if lines else 0) + (20 if col_labels else 0)
    cap = 18 if captions else 0
    right = 78 if colorbar else 8
    width = max([left + cols * w + (cols - 1) * gap + right]
                + [text_size(probe, line, big)[0] + 32 for line in lines])
    img = Image.new("RGB", (width, top + rows * (h + cap) + (rows - 1) * gap + 8), WHITE)
    draw = ImageDraw.Draw(img)
    for i, cell in enumerate(cells):
        r, c = divmod(i, ncol)
        x, y = left + c * (w + gap), top + r * (h + cap + gap)
        img.paste(Image.fromarray(cell), (x, y))
        if captions:
            draw_text(draw, (x + w / 2, y + h + 2), captions[i], font(12), "mt")
    for i, line in enumerate(lines):
        draw_text(draw, (width / 2, 8 + 20 * i), line, big, "mt")
    for c, label in enumerate(col_labels or []):
        draw_text(draw, (left + c * (w + gap) + w / 2, top - 4), label, fnt, "mb")
    for r, label in enumerate(row_labels or []):
        draw_text(draw, (left - 8, top + r * (h + cap + gap) + h / 2), label, fnt, "rm")
    if colorbar:
        vmin, vmax, colormap, label = colorbar
        x0 = left + cols * w + (cols - 1) * gap + 12
        charts_colorbar(img, (x0, top, x0 + 12, top + rows * (h + cap + gap) - gap - cap),
                        vmin, vmax, colormap, label, fnt)
    return img


def matrix_heatmap(a, xlabel, ylabel, title="", vmin=None, vmax=None, label="",
                   annotate=False, colormap="viridis", cell=None, tick_labels=None,
                   row_labels=None):
    """A matrix as a colour image with what a reader needs: row and column numbers, axis
    titles (x: the column index, y: the row index), a colour bar for the scale and, with
    `annotate`, each value printed in its cell. a (R, C) -> PIL image.

    vmin / vmax fix the scale (default: the matrix's min and max); tick_labels: names for
    the rows and columns instead of 0, 1, ... (e.g. "cls", "1", ...); row_labels: other
    names for the rows (then tick_labels name the columns).
    """
    a = np.asarray(a, float)
    if a.ndim != 2:
        raise ValueError(f"matrix_heatmap: expected a 2-D array, found shape {a.shape}")
    r, c = a.shape
    cell = cell or max(14, min(48, 320 // max(r, c)))
    vmin = float(a.min()) if vmin is None else vmin
    vmax = float(a.max()) if vmax is None else vmax
    grid = upscale(colorize(normalize(a, vmin, vmax), colormap)[None], cell)[0]  # (R*c, C*c, 3)
    fnt = font(12)
    names = tick_labels or [str(i) for i in range(max(r, c))]
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    widest = max(text_size(probe, n, fnt)[0] for n in (row_labels or names)[:r])
    left, top, right, bottom = max(58, widest + 34), 34 if title else 10, 92, 46
    img = Image.new("RGB", (left + c * cell + right, top + r * cell + bottom), WHITE)
    img.paste(Image.fromarray(grid), (left, top))
    draw = ImageDraw.Draw(img)
    every = max(1, -(-max(r, c) * 16 // (cell * max(r, c))))  # skip ticks that would overlap
    for i in range(0, c, every):
        draw_text(draw, (left + (i + 0.5) * cell, top + r * cell + 3), names[i], fnt, "mt")
    for i in range(0, r, every):
        draw_text(draw, (left - 4, top + (i + 0.5) * cell), (row_labels or names)[i], fnt, "rm")
    if annotate:
        for i in range(r):
            for j in range(c):
                bright = normalize(a[i, j], vmin, vmax) > 0.6
                draw_text(draw, (left + (j + 0.5) * cell, top + (i + 0.5) * cell),
                          f"{a[i, j]:.2f}", font(11), "mm", "#000000" if bright else WHITE)
    draw_text(draw, (left + c * cell / 2, top + r * cell + 22), xlabel, font(13), "mt")
    draw_vertical_text(img, (14, top + r * cell / 2), ylabel, font(13))
    if title:
        draw_title(draw, img.width, img.width / 2, 16, title, size=15)
    charts_colorbar(img, (left + c * cell + 12, top, left + c * cell + 24, top + r * cell),
                    vmin, vmax, colormap, label, fnt)
    return img


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


def _smooth_to(image_rgb, heat, vmin=None, vmax=None):
    """Upsample a (g, g) map bilinearly to the image's (H, W) and scale it to [0, 1]
    (vmin -> 0, vmax -> 1; default: the map's own min and max)."""
    h, w = image_rgb.shape[:2]
    big = Image.fromarray(np.asarray(heat, np.float32), mode="F").resize((w, h), Image.BILINEAR)
    return normalize(np.asarray(big), vmin, vmax)  # (H, W)


def overlay(image, heat, alpha=0.5, colormap="inferno", scale=1, vmin=None, vmax=None):
    """An attention map laid over its image: (1 - alpha) * image + alpha * colour(heat).

    image (H, W, C) uint8, heat (g, g) (e.g. `analysis.rollout_to_image(...)[i]`),
    upsampled bilinearly. -> (H*scale, W*scale) RGB. Tiles that are compared need one
    absolute scale: pass the same vmin / vmax to all (by default each map is stretched to
    its own min and max, so a nearly flat map looks as contrasted as a peaked one).
    """
    img = upscale(as_rgb(image), scale).astype(np.float64)  # (H*s, W*s, 3)
    colour = colorize(_smooth_to(img, heat, vmin, vmax), colormap)  # (H*s, W*s, 3)
    return Image.fromarray(((1 - alpha) * img + alpha * colour).round().astype(np.uint8))


def attention_mask(image, heat, scale=1, vmin=None, vmax=None):
    """Fig. 6's style: the image multiplied by its attention map (scaled to [0, 1] by
    vmin / vmax, default the map's own range)."""
    img = upscale(as_rgb(image), scale).astype(np.float64)  # (H*s, W*s, 3)
    mask = _smooth_to(img, heat, vmin, vmax)[..., None]  # (H*s, W*s, 1)
    return Image.fromarray((img * mask).round().astype(np.uint8))


def filters_grid(filters, nrow=7, scale=None, pad=2, captions=None, title="", col_labels=None,
                 row_labels=None, share=1):
    """Fig. 7 left: filters (k, P, P, C), each stretched to its own [0, 1], on a grid of
    `nrow` columns; with `share` > 1 each run of `share` consecutive filters (e.g. the five
    views of one SPT filter) is stretched by one common scale, so their contrasts compare.

    scale: pixels per filter weight (default: about 48 pixels per filter side). With
    `captions` (one per filter, e.g. the variance each component explains), a `title` or
    column / row labels, they are written under the tiles / above / beside the grid.
    """
    f = np.asarray(filters, np.float64)
    if f.ndim != 4:
        raise ValueError(f"filters_grid: expected (k, P, P, C), found shape {f.shape}")
    scale = max(1, 48 // f.shape[1]) if scale is None else scale
    if len(f) % share:
        raise ValueError(f"filters_grid: expected a multiple of share={share} filters, "
                         f"found {len(f)}")
    groups = f.reshape((-1, share) + f.shape[1:])  # (k / share, share, P, P, C)
    lo = np.repeat(groups.min(axis=(1, 2, 3, 4)), share)[:, None, None, None]  # (k, 1, 1, 1)
    hi = np.repeat(groups.max(axis=(1, 2, 3, 4)), share)[:, None, None, None]  # (k, 1, 1, 1)
    f = (f - lo) / np.where(hi > lo, hi - lo, 1.0)  # (k, P, P, C) in [0, 1]
    pixels = (f * 255).round().astype(np.uint8)  # (k, P, P, C)
    if captions is None and not title and not col_labels and not row_labels:
        return image_grid(pixels, nrow, pad, scale)
    return labelled_grid(list(upscale(as_rgb(pixels), scale)), nrow, col_labels, row_labels,
                         captions=captions, title=title, gap=max(pad, 6))


def similarity_grid(sim, cell=6, gap=2, colormap="viridis", labels=True, title=""):
    """Fig. 7 centre: tile [i, j] shows patch (i, j)'s cosine similarity to every patch.

    sim (g, g, g, g) from `analysis.position_similarity`, colours fixed to [-1, 1].
    Each similarity is a `cell` x `cell` square; with `labels`, axis titles, patch numbers,
    a colour bar and the `title` are added around the grid.
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
    left, top, right, bottom = 48, 34 if title else 12, 86, 44
    side = grid.shape[0]
    img = Image.new("RGB", (max(left + side + right, 16 + 8 * len(title)), top + side + bottom),
                    WHITE)
    img.paste(Image.fromarray(grid), (left, top))
    draw = ImageDraw.Draw(img)
    step = g * cell + gap  # one tile and its gap
    for i in range(g):  # 1-based patch numbers under columns and beside rows
        centre = i * step + g * cell / 2
        draw_text(draw, (left + centre, top + side + 4), str(i + 1), fnt, "mt")
        draw_text(draw, (left - 5, top + centre), str(i + 1), fnt, "rm")
    draw_text(draw, (left + side / 2, top + side + 24), "Input patch column", fnt, "mt")
    draw_vertical_text(img, (14, top + side / 2), "Input patch row", fnt)
    charts_colorbar(img, (left + side + 12, top, left + side + 24, top + side), -1, 1, colormap,
                    "Cosine similarity", fnt)
    if title:
        draw_text(draw, (img.width / 2, 9), title, font(15), "mt")
    return img


def attention_distance_chart(distances, title="Mean attention distance", size=(640, 420),
                             uniform=None, uniform_label="uniform attention"):
    """Fig. 7 right: one dot per head at every layer. distances (L, H) pixels, from
    `analysis.mean_attention_distance`; `uniform` (pixels): the distance of a head that
    attends to all patches alike (`analysis.uniform_attention_distance`), drawn as a dashed
    reference line named `uniform_label`. Legend only up to 10 heads (the palette's size)."""
    d = np.asarray(distances, float)
    if d.ndim != 2:
        raise ValueError(f"attention_distance_chart: expected (L, H), found shape {d.shape}")
    layers = np.arange(1, d.shape[0] + 1)  # (L,) 1-based like the paper
    series = {f"Head {h + 1}": (layers, d[:, h]) for h in range(d.shape[1])}
    hlines = {f"{uniform_label}: {uniform:.1f} px": uniform} if uniform is not None else None
    return scatter_chart(series, "Network depth (layer)", "Mean attention distance (pixels)",
                         title, ylim=(0, None), size=size, legend=d.shape[1] <= len(PALETTE),
                         hlines=hlines)


# ---------------------------------------------------------------------------------------------
# Masked patch prediction (Sec. 4.6): what the encoder is given, and what it must predict
# ---------------------------------------------------------------------------------------------

MPP_FRAMES = {"replaced": "#f28e2b", "kept": "#59a14f"}  # frame colours of corrupted patches
MASK_GREY = 128


def patch_colors(classes, grid, patch, scale=1, chosen=None):
    """Each patch painted in the colour its 3-bit class stands for (`mpp.color_of_class`).

    classes (N,) ints, N = grid^2; `chosen` (N,) bool: only those are painted, the others
    are white with grey diagonal hatching (no class colour is white or hatched).
    -> (grid*patch*scale,) * 2 RGB uint8 array.
    """
    rgb = upscale(color_of_class(np.asarray(classes)).reshape(grid, grid, 3), patch * scale)
    if chosen is not None:
        side = rgb.shape[0]
        i, j = np.indices((side, side))  # (S, S) pixel rows and columns
        hatch = np.where(((i + j) % 6 == 0)[..., None], np.uint8(190), np.uint8(255))
        keep = upscale(np.asarray(chosen).reshape(grid, grid, 1), patch * scale)  # (S, S, 1)
        rgb = np.where(keep, rgb, hatch)  # (S, S, 3)
    return rgb  # (g*P*s, g*P*s, 3)


def mpp_corruption_view(image, action, source, patch, scale=1):
    """The corruption of `tinyvit.mpp`, drawn in pixels (the model corrupts embeddings).

    MASKED patches are flat grey with a cross, REPLACED ones show the pixels of their source
    patch in an orange frame, chosen-but-KEPT ones a green frame; unchosen patches are as
    they were. image (H, W, C) uint8, action / source (N,) -> (H*scale, W*scale, 3) uint8.
    """
    img = as_rgb(image)
    g = img.shape[0] // patch
    p = patchify(img[None], patch)[0].reshape(g * g, patch, patch, 3)  # (N, P, P, 3)
    action, source = np.asarray(action), np.asarray(source)
    p = np.where((action == REPLACED)[:, None, None, None], p[source], p)  # (N, P, P, 3)
    p = np.where((action == MASKED)[:, None, None, None], np.uint8(MASK_GREY), p)
    big = upscale(p, scale)  # (N, P*s, P*s, 3)
    out = Image.fromarray(tile(big, g, 0, 0))
    draw, q = ImageDraw.Draw(out), patch * scale
    for i, a in enumerate(action):
        x, y = (i % g) * q, (i // g) * q
        if a == MASKED:
            draw.line([(x + 2, y + 2), (x + q - 3, y + q - 3)], fill="#5a5a5a", width=1)
            draw.line([(x + 2, y + q - 3), (x + q - 3, y + 2)], fill="#5a5a5a", width=1)
        elif a in (REPLACED, KEPT):
            colour = MPP_FRAMES["replaced" if a == REPLACED else "kept"]
            draw.rectangle((x, y, x + q - 1, y + q - 1), outline=colour, width=2)
    return np.asarray(out)
