"""A small chart engine drawn with Pillow only (no matplotlib): colours, text, ticks, axes,
legends, and on top of them `line_chart` and `scatter_chart`. It knows nothing of ViTs; the
pictures of images and of the paper's figures are `pictures.py`.

Every chart is a `PIL.Image.Image` (RGB), so a notebook shows it inline and a lesson saves it
with `.save("name.png")`.

    PALETTE, COLORMAPS, hex_rgb, normalize,   arrays to colours
    colorize, to_uint8
    font, text_size, draw_text, colorbar      text and the colour bar
    nice_ticks, log_ticks, tick_label         axis ticks (linear and log)
    line_chart                                lines (solid or dashed), markers, notes on the
                                              points, +-1 std error bars, log x axis
    scatter_chart, draw_hline                 dots, one colour per series; reference lines

Shape legend: ... any leading shape (colours are added as a last axis of 3); A anchor colours
of a colour map; n, m points.
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


# ---------------------------------------------------------------------------------------------
# Text and the colour bar
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
    draw_title(draw, img.width, (x0 + x1) / 2, y0 / 2, title)


def draw_title(draw, width, cx, cy, title, size=16, margin=8):
    """A title centred on (cx, cy) as far as the image allows, its font shrunk (down to 10 px)
    until it fits within the image's width: a long title is never cut off at the edge."""
    fnt = font(size)
    while size > 10 and text_size(draw, title, fnt)[0] > width - 2 * margin:
        size -= 1
        fnt = font(size)
    w = text_size(draw, title, fnt)[0]
    cx = min(max(cx, margin + w / 2), width - margin - w / 2)  # inside the image if it can be
    draw_text(draw, (cx, cy), title, fnt, "mm")


def legend_box(img, entries, box, points):
    """Where the legend goes: the inside corner of `box` covering fewest data `points`.
    Returns (x, y, width, height, the points it covers there)."""
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
    return cx, cy, w, h, int(covered((cx, cy)))


def draw_legend(img, entries, box, points, style, dashed=()):
    """A framed legend: a short line with a dot ('line') or a dot ('dot') per series name; the
    line dashed for the names in `dashed`. Returns how many data points it covers."""
    cx, cy, w, h, hidden = legend_box(img, entries, box, points)
    draw = ImageDraw.Draw(img)
    draw.rectangle((cx, cy, cx + w, cy + h), fill=WHITE, outline="#bbbbbb")
    for i, (name, colour) in enumerate(entries):
        y = cy + 13 + 18 * i
        if style == "line" and name in dashed:
            dashed_line(draw, [(cx + 4, y), (cx + 28, y)], colour, on=5, off=3)
        elif style == "line":
            draw.line([(cx + 6, y), (cx + 26, y)], fill=colour, width=2)
        draw.ellipse((cx + 12, y - 4, cx + 20, y + 4), fill=colour)
        draw_text(draw, (cx + 32, y), name, font(12), "lm")
    return hidden


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


def integer_valued(xs):
    """True when every x is a whole number (the x axis then gets whole-number ticks)."""
    return bool(np.all(np.mod(xs, 1) == 0))


def chart_frame(size, labels, xs, ys, log_x, xlim, ylim, xtick_names=None):
    """A canvas with its axes drawn to fit the values xs and ys (`xlim` / `ylim` fix an end).

    labels = (xlabel, ylabel, title); `xtick_names`: {x value: text} written under that x
    instead of its number (and a tick put there). Returns (image, plot box, x scale, y scale),
    the scales mapping data values to pixels.
    """
    img, box = chart_canvas(size, *labels)
    xaxis = axis_limits(xs, log_x, integer_valued(xs), xlim)
    if xtick_names:
        named = {float(t): str(name) for t, name in xtick_names.items()}
        kept = [(t, lab) for t, lab in zip(xaxis[2], xaxis[3]) if float(t) not in named]
        ticks = sorted(kept + list(named.items()))
        xaxis = (*xaxis[:2], [t for t, _ in ticks], [lab for _, lab in ticks])
    yaxis = axis_limits(ys, False, False, ylim)
    sx = make_scale(xaxis[0], xaxis[1], box[0] + INSET, box[2] - INSET, log_x)
    sy = make_scale(yaxis[0], yaxis[1], box[3] - INSET, box[1] + INSET)
    draw_axes(img, box, xaxis, yaxis, sx, sy, *labels)
    return img, box, sx, sy


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
               xlim=(None, None), ylim=(None, None), size=(640, 420), legend=True,
               notes=None, dashed=(), colours=None, xtick_names=None):
    """Lines with markers and +-1 std error bars: learning curves, accuracy vs data size.

    series: {name: (xs, means, stds)} (stds may be left out or None). `log_x` puts x on a log
    scale (the data-hunger chart: accuracy vs training-set size). xlim / ylim fix either end
    of an axis (None: fit the data). The legend goes in the emptiest corner; where every
    corner would hide data, the y axis is raised (unless its top is fixed) to make room for
    it above the lines. `notes`: {name: a text per point} written above that series' points;
    `dashed`: names drawn as dashed lines; `colours`: {name: colour} (default: the palette in
    order); `xtick_names`: {x: text} under those x values instead of numbers.
    """
    data = _as_series(series, (2, 3))
    lows = [y - (s if error_bars and s is not None else 0) for _, _, y, s in data]
    highs = [y + (s if error_bars and s is not None else 0) for _, _, y, s in data]
    xs_all, ys_all = np.concatenate([x for _, x, _, _ in data]), np.concatenate(lows + highs)
    img, box, sx, sy = chart_frame(size, (xlabel, ylabel, title), xs_all, ys_all, log_x, xlim,
                                   ylim, xtick_names)
    draw = ImageDraw.Draw(img)
    points, notes = [], notes or {}
    colour_of = {name: (colours or {}).get(name, PALETTE[i % len(PALETTE)])
                 for i, (name, *_) in enumerate(data)}
    for name, xs, ys, sd in data:
        colour = colour_of[name]
        keep = np.isfinite(xs) & np.isfinite(ys)
        pts = [(sx(x), sy(y)) for x, y in zip(xs[keep], ys[keep])]
        points += along(pts)
        tops = ys + (sd if error_bars and sd is not None else 0)  # above the error bar
        for px, top, text in zip([p[0] for p in pts], tops[keep],
                                 np.asarray(notes.get(name, []), object)[keep]
                                 if name in notes else []):
            draw_text(draw, (px, sy(top) - 6), str(text), font(11), "mb", colour)
            points.append((px, sy(top) - 12))
        if error_bars and sd is not None:
            for (px, _), y, s in zip(pts, ys[keep], sd[keep]):
                top, bot = sy(y + s), sy(y - s)
                draw.line([(px, top), (px, bot)], fill=colour, width=2)
                draw.line([(px - 4, top), (px + 4, top)], fill=colour, width=2)
                draw.line([(px - 4, bot), (px + 4, bot)], fill=colour, width=2)
        if len(pts) > 1 and name in dashed:
            dashed_line(draw, pts, colour)
        elif len(pts) > 1:
            draw.line(pts, fill=colour, width=2, joint="curve")
        for px, py in pts:
            draw.ellipse((px - 4, py - 4, px + 4, py + 4), fill=colour, outline=WHITE)
    entries = list(colour_of.items())
    if not legend:
        return img
    *_, height, hidden = legend_box(img, entries, box, points)
    if hidden and ylim[1] is None:  # every corner hides data: raise the y axis once
        ys = ys_all[np.isfinite(ys_all)]
        lo, hi = (float(ys.min()) if ylim[0] is None else ylim[0]), float(ys.max())
        need = (height + 16) / (box[3] - box[1] - 2 * INSET)  # the legend's share of the plot
        top = hi + (hi - lo) * need / max(1 - need, 0.2)  # room above the data for it
        return line_chart(series, xlabel, ylabel, title, log_x, error_bars, xlim,
                          (ylim[0], top), size, legend, notes, dashed, colours, xtick_names)
    draw_legend(img, entries, box, points, "line", dashed)
    return img


def dashed_line(draw, pts, colour, on=7, off=5):
    """A polyline drawn in dashes of `on` pixels with gaps of `off` (the pattern runs on across
    the corners)."""
    p = np.asarray(pts, float)  # (m, 2)
    ends = np.concatenate([[0.0], np.cumsum(np.hypot(*(p[1:] - p[:-1]).T))])  # (m,) arc length
    for start in np.arange(0.0, ends[-1], on + off):
        cuts = np.array([start, min(start + on, ends[-1])])  # (2,)
        xy = [(float(np.interp(c, ends, p[:, 0])), float(np.interp(c, ends, p[:, 1])))
              for c in cuts]
        draw.line(xy, fill=colour, width=2)


def draw_hline(img, box, sy, y, label, colour=INK):
    """A dashed horizontal reference line at data value y across the plot, labelled at its
    right end (above the line)."""
    draw = ImageDraw.Draw(img)
    x0, _, x1, _ = box
    py = sy(y)
    for x in range(int(x0) + 2, int(x1) - 2, 10):
        draw.line([(x, py), (min(x + 5, x1 - 2), py)], fill=colour, width=2)
    draw_text(draw, (x1 - 6, py - 3), label, font(12), "rb", colour)
    return [(x, py) for x in np.linspace(x1 - 8 - 7 * len(label), x1, 8)]  # where the label is


def scatter_chart(points_by_series, xlabel="", ylabel="", title="", log_x=False,
                  xlim=(None, None), ylim=(None, None), size=(640, 420), legend=True,
                  hlines=None):
    """Dots, one colour per series: {name: (xs, ys)}. Axes and legend as `line_chart`.

    hlines: {label: y} dashed horizontal reference lines (e.g. the value of a uniform
    baseline), inside the y range.
    """
    data = _as_series(points_by_series, (2,))
    hlines = hlines or {}
    xs_all = np.concatenate([x for _, x, _, _ in data])
    if not log_x and integer_valued(xs_all) and tuple(xlim) == (None, None):  # e.g. layers:
        xlim = (xs_all.min() - 0.5, xs_all.max() + 0.5)  # room at the ends
    ys_all = np.concatenate([y for _, _, y, _ in data] + [np.array(list(hlines.values()), float)])
    img, box, sx, sy = chart_frame(size, (xlabel, ylabel, title), xs_all, ys_all, log_x, xlim,
                                   ylim)
    draw = ImageDraw.Draw(img)
    points = []
    for label, y in hlines.items():
        points += draw_hline(img, box, sy, y, label, "#777777")
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
