"""Command line: `python -m tinyvit {info,train,eval,predict} ...` (see README).

A training run on a formula-driven set draws its categories into the run's folder
(`fractal_grid.save_categories`): a picture the run layer below cannot draw itself."""
import sys

from .figures.fractal_grid import save_categories
from .run.cli import main

if __name__ == "__main__":
    sys.exit(main(on_start=save_categories))
