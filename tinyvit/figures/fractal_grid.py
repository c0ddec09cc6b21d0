"""The picture of a formula-driven data set: rows its categories, columns their instances.

    from tinyvit.data import fractal_sets
    fs = fractal_sets.fractal_set("fractal:1000x100")
    category_grid(fs, rows=8, cols=8).save("fractal_categories.png")

Each row label names the category, its number of affine maps M and how much of the canvas its
images light (their mean); the title says what a row and a column are, so the picture reads
without text.
Shape legend: R rows (categories), Q columns (instances), S canvas side, s scale.
"""
from pathlib import Path

import numpy as np

from ..data import fractal_sets, fractals
from .pictures import labelled_grid, upscale


def title_of(fs, rows, cols):
    """What a row and a column of the grid are, for FractalDB-style sets and for 1p-frac."""
    k, n = len(fs.systems), len(fs.systems) * fs.instances
    looks = "coloured" if fs.colour else "grey"
    shown = f"first {rows} x {cols} shown"
    if fs.kind == "fractal":
        return (f"Formula-driven images ({fs.spec}: {k} categories x {fs.instances} = {n:,}, "
                f"{looks})\nrow = one category: one random IFS, kept because, unperturbed, it "
                f"lights >= {fractals.FILL_THRESHOLD:.0%} of the canvas\ncolumn = one instance: its "
                f"parameters x U[{1 - fs.jitter:g}, {1 + fs.jitter:g}], maybe flipped; {shown}")
    return (f"One fractal, perturbed ({fs.spec}: {k} classes x {fs.instances} = {n:,}, "
            f"{looks})\nrow = one class: the ONE fractal's parameters x its own weights "
            f"(small shape changes)\ncolumn = one instance: another chaos-game path, maybe "
            f"flipped; {shown}")


def category_grid(fs, rows=8, cols=8, scale=3):
    """A labelled grid of the first `rows` categories (rows) x `cols` instances (columns) of
    the FractalSet `fs`, each image enlarged `scale` times. -> PIL image."""
    rows, cols = min(rows, len(fs.systems)), min(cols, fs.instances)
    c = np.repeat(np.arange(rows), cols)  # (R*Q,)
    i = np.tile(np.arange(cols), rows)  # (R*Q,)
    x = fractal_sets.render(fs, c, i)  # (R*Q, S, S, 3)
    fill = (x.max(-1) > 0).reshape(rows, cols, -1).mean((1, 2))  # (R,) pixels lit
    row_labels = [f"{'category' if fs.kind == 'fractal' else 'class'} {r}: {fs.maps[r]} maps, "
                  f"these light {100 * fill[r]:.0f}%" for r in range(rows)]  # the shown ones
    return labelled_grid(list(upscale(x, scale)), cols, row_labels=row_labels,
                         col_labels=[f"inst. {j}" for j in range(cols)],
                         title=title_of(fs, rows, cols))


def save_categories(folder, source, name="categories.png"):
    """Draw the category grid of a formula-driven data source (`fractal:KxI`, `1p-frac:KxI`)
    into `folder`/`name`; any other source draws nothing. What `python -m tinyvit train` does
    at the start of a run (`train(..., on_start=save_categories)`). Returns the path or None."""
    if not fractal_sets.is_spec(str(source)):
        return None
    path = Path(folder) / name
    category_grid(fractal_sets.fractal_set(str(source))).save(path)
    return path
