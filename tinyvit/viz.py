"""Pictures and charts for the lessons, drawn with Pillow only (no matplotlib).

Every function returns a `PIL.Image.Image` (RGB), so a notebook shows it inline and a lesson
saves it with `.save("name.png")`.

    image_grid, patch_grid                   images; an image cut into its 16x16 "words"
    heatmap, overlay, attention_mask         attention maps (Fig. 6) and other 2-D arrays
    similarity_grid                          position-embedding similarity (Fig. 7 centre)
    filters_grid                             embedding filters / their principal components
                                             (Fig. 7 left)
    line_chart                               accuracy vs training-set size (Fig. 3/4), learning
                                             curves: lines, markers, error bars, log x axis
    scatter_chart, attention_distance_chart  mean attention distance per head (Fig. 7 right)

Shape legend: B images, H, W height / width in pixels, C channels (1 or 3), P patch size,
g grid (patches per side), k filters.
"""
import functools
import math

import numpy as np
from PIL import Image, ImageDraw, ImageFont

# Tableau 10: distinct, colour-blind-friendlier than pure RGB. Series take them in order.
PALETTE = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1",
           "#ff9da7", "#9c755f", "#bab0ac"]
INK, GRID, WHITE = "#333333", "#e3e3e3", "#ffffff"
INSET = 8  # pixels between the plot frame and the axis limits, so end markers are whole

# Colour maps as a few evenly spaced anchor colours, linearly interpolated.
COLORMAPS = {
    "viridis": ["#440154", "#472c7a", "#3b518b", "#2c718e", "#21908d", "#27ad81", "#5cc863",
                "#aadc32", "#fde725"],
    "inferno": ["#000004", "#1f0c48", "#550f6d", "#88226a", "#ba3655", "#e35933", "#f98e09",
                "#f9c932", "#fcffa4"],
    "coolwarm": ["#3b4cc0", "#6889ee", "#9abbff", "#c9d7f0", "#edd1c2", "#f7a889", "#e26952",
                 "#b40426"],
    "gray": ["#000000", "#ffffff"],
}


# ---------------------------------------------------------------------------------------------
# Arrays to colours
# ---------------------------------------------------------------------------------------------


def hex_rgb(colour):
    """'#4e79a7' -> (78, 121, 167)."""
    return tuple(int(colour[i:i + 2], 16) for i in (1, 3, 5))


def normalize(a, vmin=None, vmax=None):
    """Rescale to [0, 1]: vmin -> 0, vmax -> 1 (default: the array's min and max), clipped."""
    a = np.asarray(a, dtype=np.float64)
    lo = a.min() if vmin is None else vmin
    hi = a.max() if vmax is None else vmax
    return np.clip((a - lo) / (hi - lo), 0, 1) if hi > lo else np.zeros_like(a)


def colorize(values, colormap="viridis"):
    """Values in [0, 1] -> uint8 RGB through a colour map. (...) -> (..., 3)."""
    if colormap not in COLORMAPS:
        raise ValueError(f"colormap: expected one of {sorted(COLORMAPS)}, found {colormap!r}")
    anchors = np.array([hex_rgb(c) for c in COLORMAPS[colormap]], float)  # (A, 3)
    at = np.linspace(0, 1, len(anchors))  # (A,)
    v = np.asarray(values, float)
    rgb = [np.interp(v, at, anchors[:, i]) for i in range(3)]  # 3 x (...)
    return np.stack(rgb, axis=-1).round().astype(np.uint8)  # (..., 3)


def to_uint8(a, vmin=None, vmax=None):
    """Any numeric array as uint8 pixels: uint8 unchanged, others rescaled by `normalize`."""
    a = np.asarray(a)
    return a if a.dtype == np.uint8 else (normalize(a, vmin, vmax) * 255).round().astype(np.uint8)


def as_rgb(images):
    """uint8 (..., H, W, C) with C = 1 or 3 -> (..., H, W, 3). One-line ValueError otherwise."""
    a = np.asarray(images)
    if a.dtype != np.uint8 or a.ndim < 3 or a.shape[-1] not in (1, 3):
        raise ValueError(f"images: expected uint8 (..., H, W, C) with C = 1 or 3, found "
                         f"{a.dtype} {a.shape} (see viz.to_uint8)")
    return np.repeat(a, 3, axis=-1) if a.shape[-1] == 1 else a  # (..., H, W, 3)


def upscale(images, scale):
    """Nearest-neighbour enlargement by an integer factor (pixel art stays crisp).

    (..., H, W, C) -> (..., H*scale, W*scale, C).
    """
    return np.repeat(np.repeat(images, scale, axis=-3), scale, axis=-2)


# ---------------------------------------------------------------------------------------------
# Images and patches
# ---------------------------------------------------------------------------------------------


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


def cut_patches(image, patch):
    """An image as its P x P patches in raster order. (H, W, C) -> (N, P, P, C)."""
    h, w, c = image.shape
    if h % patch or w % patch:
        raise ValueError(f"patch_grid: patch {patch} must divide the image size, found {h}x{w}")
    x = image.reshape(h // patch, patch, w // patch, patch, c)  # (H/P, P, W/P, P, C)
    return x.transpose(0, 2, 1, 3, 4).reshape(-1, patch, patch, c)  # (N, P, P, C)


def patch_grid(image, patch, gap=2, scale=1, ncol=None, background=255):
    """The "16x16 words" picture: an image cut into its patches, `gap` pixels between them.

    image (H, W, C) uint8. By default the patches keep their places: the result is
    (W*s + (W/P - 1)*gap) wide and (H*s + (H/P - 1)*gap) high (s = scale). With `ncol` they are
    re-flowed in raster order, `ncol` per row: ncol = N shows the sequence the Transformer reads.
    """
    image = upscale(as_rgb(image), scale)  # (H*s, W*s, 3)
    p = patch * scale
    patches = cut_patches(image, p)  # (N, P*s, P*s, 3)
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


# ---------------------------------------------------------------------------------------------
# Text
# ---------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=None)
def font(size=13):
    """Pillow's built-in font at `size` pixels (a fixed small bitmap font on Pillow < 10.1)."""
    try:
        return ImageFont.load_default(size=size)
    except TypeError:
        return ImageFont.load_default()


def text_size(draw, text, fnt):
    """(width, height) of `text` in pixels."""
    x0, y0, x1, y1 = draw.textbbox((0, 0), text, font=fnt)
    return x1 - x0, y1 - y0


def draw_text(draw, xy, text, fnt, anchor="mm", fill=INK):
    """Text placed by its anchor ("mm" centre, "rm" right-middle, "mt" middle-top, ...)."""
    draw.text(xy, text, font=fnt, fill=fill, anchor=anchor)


def draw_vertical_text(img, xy, text, fnt, fill=INK):
    """Text turned 90 degrees anticlockwise (a y-axis label), centred on xy."""
    w, h = text_size(ImageDraw.Draw(img), text, fnt)
    stamp = Image.new("L", (w + 4, h + 8), 0)
    ImageDraw.Draw(stamp).text(((w + 4) // 2, (h + 8) // 2), text, font=fnt, fill=255,
                               anchor="mm")
    stamp = stamp.rotate(90, expand=True)
    corner = (round(xy[0] - stamp.width / 2), round(xy[1] - stamp.height / 2))
    img.paste(Image.new("RGB", stamp.size, fill), corner, stamp)


# ---------------------------------------------------------------------------------------------
# Position-embedding similarity (Fig. 7 centre)
# ---------------------------------------------------------------------------------------------


def colorbar(img, box, vmin, vmax, colormap, label, fnt):
    """A vertical colour bar in box = (x0, y0, x1, y1) with its end values and a label."""
    x0, y0, x1, y1 = box
    ramp = colorize(np.linspace(1, 0, y1 - y0)[:, None].repeat(x1 - x0, 1), colormap)
    img.paste(Image.fromarray(ramp), (x0, y0))  # (y1-y0, x1-x0, 3)
    draw = ImageDraw.Draw(img)
    draw.rectangle(box, outline=INK)
    draw_text(draw, (x1 + 4, y0), f"{vmax:g}", fnt, "lm")
    draw_text(draw, (x1 + 4, y1), f"{vmin:g}", fnt, "lm")
    draw_vertical_text(img, (x1 + 32, (y0 + y1) / 2), label, fnt)


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


# ---------------------------------------------------------------------------------------------
# Charts: axes, ticks, legend; then line_chart and scatter_chart on top of them
# ---------------------------------------------------------------------------------------------


def nice_ticks(lo, hi, target=6, integer=False):
    """Round tick values covering [lo, hi]: steps 1, 2, 2.5 or 5 x 10^e, about `target` ticks.

    Returns (ticks, decimals to print them with).
    """
    if hi <= lo:
        lo, hi = lo - 1, hi + 1
    e = math.floor(math.log10((hi - lo) / max(1, target - 1)))
    mantissas = (1, 2, 5) if integer else (1, 2, 2.5, 5)
    candidates = [(m, e + de) for de in (0, 1) for m in mantissas
                  if not integer or e + de >= 0]  # integer axes: steps of at least 1
    m, e = min(candidates, key=lambda c: abs((hi - lo) / (c[0] * 10**c[1]) + 1 - target))
    step = m * 10**e
    decimals = max(0, -e + (1 if m == 2.5 else 0))
    first, last = math.floor(lo / step + 1e-9), math.ceil(hi / step - 1e-9)
    return [round(i * step, decimals) for i in range(first, last + 1)], decimals


def log_ticks(lo, hi):
    """Ticks for a log axis over [lo, hi]: powers of 10, with 2x and 5x when too few fit."""
    e0, e1 = math.floor(math.log10(lo)), math.ceil(math.log10(hi))
    for mantissas in ((1,), (1, 2, 5), (1, 2, 3, 4, 5, 6, 7, 8, 9)):
        ticks = [m * 10.0**e for e in range(e0, e1 + 1) for m in mantissas]
        ticks = [t for t in ticks if lo * (1 - 1e-9) <= t <= hi * (1 + 1e-9)]
        if len(ticks) >= 3:
            return ticks
    return ticks


def tick_label(v, decimals=None):
    """12000 -> '12k', 1e6 -> '1M', 0.25 -> '0.25' (fixed decimals when given)."""
    if abs(v) >= 1000 and decimals in (None, 0):
        for div, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
            if abs(v) >= div:
                return f"{v / div:g}{suffix}"
    return f"{v:.{decimals}f}" if decimals is not None else f"{v:g}"


def axis_limits(values, log=False, integer=False, fixed=(None, None)):
    """Limits and ticks for one axis: a little room around the data; `fixed` overrides an end.

    Returns (lo, hi, ticks, labels).
    """
    v = np.asarray([x for x in values if np.isfinite(x)], float)
    if log:
        if (v <= 0).any():
            raise ValueError(f"log axis: expected positive values, found min {v.min()}")
        lo, hi = np.log10(v.min()), np.log10(v.max())
        margin = max(0.05 * (hi - lo), 0.05)
        lo, hi = 10 ** (lo - margin), 10 ** (hi + margin)
        lo = lo if fixed[0] is None else fixed[0]
        hi = hi if fixed[1] is None else fixed[1]
        ticks = log_ticks(lo, hi)
        return lo, hi, ticks, [tick_label(t) for t in ticks]
    lo = v.min() if fixed[0] is None else fixed[0]
    hi = v.max() if fixed[1] is None else fixed[1]
    ticks, decimals = nice_ticks(lo, hi, integer=integer)
    lo = min(lo, ticks[0]) if fixed[0] is None else lo
    hi = max(hi, ticks[-1]) if fixed[1] is None else hi
    ticks = [t for t in ticks if lo - 1e-9 <= t <= hi + 1e-9]
    return lo, hi, ticks, [tick_label(t, decimals) for t in ticks]


def make_scale(lo, hi, p0, p1, log=False):
    """A function mapping data values in [lo, hi] to pixels in [p0, p1]."""
    f = math.log10 if log else float
    a, b = f(lo), f(hi)
    return lambda v: p0 + (f(v) - a) / (b - a) * (p1 - p0)


def draw_axes(img, box, xaxis, yaxis, sx, sy, xlabel, ylabel, title):
    """Grid lines, frame, ticks and their labels, axis titles and the chart title."""
    draw = ImageDraw.Draw(img)
    x0, y0, x1, y1 = box
    small, big = font(12), font(14)
    for t, label in zip(xaxis[2], xaxis[3]):
        px = sx(t)
        draw.line([(px, y0), (px, y1)], fill=GRID)
        draw.line([(px, y1), (px, y1 + 4)], fill=INK)
        draw_text(draw, (px, y1 + 7), label, small, "mt")
    for t, label in zip(yaxis[2], yaxis[3]):
        py = sy(t)
        draw.line([(x0, py), (x1, py)], fill=GRID)
        draw.line([(x0 - 4, py), (x0, py)], fill=INK)
        draw_text(draw, (x0 - 7, py), label, small, "rm")
    draw.rectangle(box, outline=INK)
    draw_text(draw, ((x0 + x1) / 2, y1 + 26), xlabel, big, "mt")
    draw_vertical_text(img, (16, (y0 + y1) / 2), ylabel, big)
    draw_text(draw, ((x0 + x1) / 2, y0 / 2), title, font(16), "mm")


def legend_box(img, entries, box, points):
    """Where the legend goes: the inside corner of `box` covering fewest data `points`."""
    draw = ImageDraw.Draw(img)
    fnt = font(12)
    w = 34 + max(text_size(draw, name, fnt)[0] for name, _ in entries)
    h = 8 + 18 * len(entries)
    x0, y0, x1, y1 = box
    corners = [(x0 + 8, y0 + 8), (x1 - 8 - w, y0 + 8), (x1 - 8 - w, y1 - 8 - h),
               (x0 + 8, y1 - 8 - h)]  # upper left, upper right, lower right, lower left
    pts = np.asarray(points, float).reshape(-1, 2)  # (n, 2) pixel positions

    def covered(corner):
        cx, cy = corner
        inside = ((pts[:, 0] >= cx - 6) & (pts[:, 0] <= cx + w + 6)
                  & (pts[:, 1] >= cy - 6) & (pts[:, 1] <= cy + h + 6))
        return inside.sum()

    cx, cy = min(corners, key=covered)  # first corner wins ties
    return cx, cy, w, h


def draw_legend(img, entries, box, points, style):
    """A framed legend: a short line with a dot ('line') or a dot ('dot') per series name."""
    cx, cy, w, h = legend_box(img, entries, box, points)
    draw = ImageDraw.Draw(img)
    draw.rectangle((cx, cy, cx + w, cy + h), fill=WHITE, outline="#bbbbbb")
    for i, (name, colour) in enumerate(entries):
        y = cy + 13 + 18 * i
        if style == "line":
            draw.line([(cx + 6, y), (cx + 26, y)], fill=colour, width=2)
        draw.ellipse((cx + 12, y - 4, cx + 20, y + 4), fill=colour)
        draw_text(draw, (cx + 32, y), name, font(12), "lm")


def along(pts, n=10):
    """Points every 1/n of the way along a polyline (so the legend avoids lines too)."""
    if len(pts) < 2:
        return list(pts)
    p = np.asarray(pts, float)  # (m, 2)
    f = np.linspace(0, 1, n, endpoint=False)[:, None, None]  # (n, 1, 1)
    inner = p[:-1] + f * (p[1:] - p[:-1])  # (n, m-1, 2)
    return [tuple(q) for q in inner.reshape(-1, 2)] + [tuple(p[-1])]


def chart_canvas(size, xlabel, ylabel, title):
    """A white canvas and the plot area inside its margins: (image, (x0, y0, x1, y1))."""
    w, h = size
    left, right = 74, 18
    top = 38 if title else 16
    bottom = 52 if xlabel else 30
    return Image.new("RGB", (w, h), WHITE), (left, top, w - right, h - bottom)


def _as_series(series, need):
    """{name: (xs, ys[, stds])} -> [(name, xs, ys, stds or None)] as float arrays."""
    if not series:
        raise ValueError("chart: expected at least one series, found none")
    out = []
    for name, values in series.items():
        if len(values) not in need:
            want = " or ".join(map(str, need))
            raise ValueError(f"chart series {name!r}: expected {want} arrays (xs, ys[, stds]), "
                             f"found {len(values)}")
        xs, ys = (np.asarray(v, float).ravel() for v in values[:2])
        has_sd = len(values) > 2 and values[2] is not None
        sd = np.asarray(values[2], float).ravel() if has_sd else None
        if xs.shape != ys.shape or (sd is not None and sd.shape != ys.shape):
            raise ValueError(f"chart series {name!r}: xs, ys (and stds) must have the same "
                             f"length, found {xs.shape}, {ys.shape}")
        out.append((name, xs, ys, sd))
    return out


def line_chart(series, xlabel="", ylabel="", title="", log_x=False, error_bars=True,
               xlim=(None, None), ylim=(None, None), size=(640, 420), legend=True):
    """Lines with markers and +-1 std error bars: learning curves, accuracy vs data size.

    series: {name: (xs, means, stds)} (stds may be left out or None). `log_x` puts x on a log
    scale (the data-hunger chart: accuracy vs training-set size). xlim / ylim fix either end
    of an axis (None: fit the data). The legend goes in the emptiest corner.
    """
    data = _as_series(series, (2, 3))
    lows = [y - (s if error_bars and s is not None else 0) for _, _, y, s in data]
    highs = [y + (s if error_bars and s is not None else 0) for _, _, y, s in data]
    xs_all = np.concatenate([x for _, x, _, _ in data])
    integer_x = bool(np.all(np.mod(xs_all, 1) == 0))
    img, box = chart_canvas(size, xlabel, ylabel, title)
    xaxis = axis_limits(xs_all, log_x, integer_x, xlim)
    yaxis = axis_limits(np.concatenate(lows + highs), False, False, ylim)
    sx = make_scale(xaxis[0], xaxis[1], box[0] + INSET, box[2] - INSET, log_x)
    sy = make_scale(yaxis[0], yaxis[1], box[3] - INSET, box[1] + INSET)
    draw_axes(img, box, xaxis, yaxis, sx, sy, xlabel, ylabel, title)
    draw = ImageDraw.Draw(img)
    points = []
    for i, (name, xs, ys, sd) in enumerate(data):
        colour = PALETTE[i % len(PALETTE)]
        keep = np.isfinite(xs) & np.isfinite(ys)
        pts = [(sx(x), sy(y)) for x, y in zip(xs[keep], ys[keep])]
        points += along(pts)
        if error_bars and sd is not None:
            for (px, _), y, s in zip(pts, ys[keep], sd[keep]):
                top, bot = sy(y + s), sy(y - s)
                draw.line([(px, top), (px, bot)], fill=colour, width=2)
                draw.line([(px - 4, top), (px + 4, top)], fill=colour, width=2)
                draw.line([(px - 4, bot), (px + 4, bot)], fill=colour, width=2)
        if len(pts) > 1:
            draw.line(pts, fill=colour, width=2, joint="curve")
        for px, py in pts:
            draw.ellipse((px - 4, py - 4, px + 4, py + 4), fill=colour, outline=WHITE)
    if legend:
        entries = [(name, PALETTE[i % len(PALETTE)]) for i, (name, *_) in enumerate(data)]
        draw_legend(img, entries, box, points, "line")
    return img


def scatter_chart(points_by_series, xlabel="", ylabel="", title="", log_x=False,
                  xlim=(None, None), ylim=(None, None), size=(640, 420), legend=True):
    """Dots, one colour per series: {name: (xs, ys)}. Axes and legend as `line_chart`."""
    data = _as_series(points_by_series, (2,))
    xs_all = np.concatenate([x for _, x, _, _ in data])
    integer_x = bool(np.all(np.mod(xs_all, 1) == 0))
    img, box = chart_canvas(size, xlabel, ylabel, title)
    if not log_x and integer_x and tuple(xlim) == (None, None):  # e.g. layers: room at ends
        xlim = (xs_all.min() - 0.5, xs_all.max() + 0.5)
    xaxis = axis_limits(xs_all, log_x, integer_x, xlim)
    yaxis = axis_limits(np.concatenate([y for _, _, y, _ in data]), False, False, ylim)
    sx = make_scale(xaxis[0], xaxis[1], box[0] + INSET, box[2] - INSET, log_x)
    sy = make_scale(yaxis[0], yaxis[1], box[3] - INSET, box[1] + INSET)
    draw_axes(img, box, xaxis, yaxis, sx, sy, xlabel, ylabel, title)
    draw = ImageDraw.Draw(img)
    points = []
    for i, (name, xs, ys, _) in enumerate(data):
        colour = PALETTE[i % len(PALETTE)]
        for x, y in zip(xs, ys):
            if np.isfinite(x) and np.isfinite(y):
                px, py = sx(x), sy(y)
                points.append((px, py))
                draw.ellipse((px - 4, py - 4, px + 4, py + 4), fill=colour, outline=WHITE)
    if legend:
        entries = [(name, PALETTE[i % len(PALETTE)]) for i, (name, *_) in enumerate(data)]
        draw_legend(img, entries, box, points, "dot")
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
