"""Checking options before anything runs: one rule per option, one line per bad value.

A rule is an integer or a finite real number with its lowest (and highest) allowed value, and
perhaps a bound relative to the run (`Rule`), or one of a few names (`Choice`). The
hyper-parameters' rules are written with their settings in `tinyvit.run.recipe`; `RULES` holds
those of the other options of a run (`train`'s train_size, seed, ..., `info`'s, `predict`'s).
`check_options` raises a one-line ValueError naming the parameter (the command line shows
its flag: `tinyvit.support.errors`):

    `train_size` 0: expected an integer >= 1

`label=` names it otherwise (a field of a checkpoint). `check_folder_option` refuses an `out`
or `data_dir` that names a file; `settings_changed` lists how a run asked for differs from the
run saved.
"""
import math
from numbers import Integral, Real
from pathlib import Path
from typing import NamedTuple

from ..data.paths import kind
from ..support.errors import named


class Rule(NamedTuple):
    """Allowed values: integers or finite reals from `low` (excluded if `low_open`) up to `high`
    (excluded unless `high_closed`; inf for none), and at most the size of the run called
    `most` (a recipe's epochs, the images' size: `tinyvit.run.recipe.check`)."""

    integer: bool
    low: float
    high: float = math.inf
    low_open: bool = False
    most: str = None
    high_closed: bool = False

    def allows(self, v):
        if isinstance(v, bool) or not isinstance(v, Integral if self.integer else Real):
            return False
        v = float(v) if not self.integer else v
        above = v > self.low if self.low_open else v >= self.low
        below = v <= self.high if self.high_closed else v < self.high
        return above and below and (self.integer or math.isfinite(v))

    def text(self):
        close = "]" if self.high_closed else ")"
        if self.integer and self.high != math.inf:
            return f"an integer in [{int(self.low)}, {int(self.high)}{close}"
        if self.integer:
            return f"an integer >= {int(self.low)}"
        if self.high != math.inf:
            return f"a number in [{self.low:g}, {self.high:g}{close}"
        return f"a finite number {'>' if self.low_open else '>='} {self.low:g}"


class Choice(NamedTuple):
    """Allowed values: exactly these (of the same type: True is not 1)."""

    values: tuple

    def allows(self, v):
        return any(type(v) is type(c) and v == c for c in self.values)

    def text(self):
        return f"one of {', '.join(map(repr, self.values))}"


RULES = {  # the hyper-parameters' rules are the Recipe's (tinyvit.run.recipe)
    # the rest of a run
    "train_size": Rule(True, 1),
    "max_steps": Rule(True, 1),
    "seed": Rule(True, 0),
    "eval_every": Rule(True, 1),
    # info and predict
    "image_size": Rule(True, 1),
    "num_classes": Rule(True, 1),
    "top": Rule(True, 1),
}


def check_value(name, value, label=None):
    """One-line ValueError unless `value` follows RULES[name]; `label` names it (default: the
    command-line option)."""
    rule = RULES[name]
    if not rule.allows(value):
        raise ValueError(f"{label or named(name)} {value!r}: expected {rule.text()}")


def check_options(label=None, **values):
    """Check every option given (None means "not given"); `label(name)` names them in errors."""
    for name, value in values.items():
        if value is not None:
            check_value(name, value, label(name) if label else None)


def check_folder_option(option, path):
    """One-line ValueError when an option meant to name a folder names a file (or lies under
    one)."""
    if path is None:
        return
    path = Path(path)
    for p in [path, *path.parents]:
        if p.exists() and not p.is_dir():
            what = kind(p)
            what = "a file" if what == "a regular file" else what  # a FIFO, a device, ...
            where = f"is {what}" if p == path else f"lies under {what} {p}"
            raise ValueError(f"{option} {path}: {where}, expected a folder")


# ---------------------------------------------------------------------------------------------
# Resuming: the settings of the run asked for against those of the run saved
# ---------------------------------------------------------------------------------------------

# What must not change for a resumed run to continue the saved one exactly. The data are
# compared by content (its digest, classes, statistics), not by path: a moved folder is fine.
SETTINGS = ("classes", "train_size", "train_digest", "seed", "model", "hparams", "mean", "std")
LABELS = {"train_size": "`train_size`", "seed": "`seed`", "classes": "`data`'s classes",
          "mean": "`data`'s mean", "std": "`data`'s std"}


def _label(key):
    """How a run setting is named in messages: its option where it has one."""
    if key.startswith("hparams."):
        return named(key.split(".", 1)[1])
    return LABELS.get(key, key.replace(".", " "))


def _short(v):
    """A value shortened for a one-line message."""
    text = repr(v)
    return text if len(text) <= 40 else text[:37] + "..."


def settings_changed(saved, now, keys=SETTINGS, prefix=""):
    """['--seed 0 then, 3 now', ...]: every run setting in which `now` differs from `saved`
    (a setting older checkpoints do not store is not compared)."""
    if "train_digest" in saved:  # the digest says more than the statistics
        keys = [k for k in keys if k not in ("mean", "std")]
    changed = []
    for key in keys:
        if key not in saved:
            continue
        a, b = saved[key], now.get(key)
        if key == "train_digest" and a != b:
            changed.append("`data`'s training images differ")
        elif isinstance(a, dict) and isinstance(b, dict):
            changed += settings_changed(a, b, list(b), f"{prefix}{key}.")
        elif a != b:
            changed.append(f"{_label(prefix + key)} {_short(a)} then, {_short(b)} now")
    return changed
