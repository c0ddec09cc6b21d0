"""Checking options before anything runs: one rule per option, one line per bad value.

Every option of `python -m tinyvit` (and the same keyword of `train`) has a rule in `RULES`:
an integer or a finite real number with its lowest (and highest) allowed value (`Rule`), or one
of a few names or flags (`Choice`). `check_options` raises a one-line ValueError that names the
option as the command line spells it:

    --batch-size 0: expected an integer >= 1
    --smoothing 2.0: expected a number in [0, 1)
    --optimizer 'adam': expected one of 'adamw', 'sgd'

The same rules check the hyper-parameters stored in a checkpoint (`label=` names the field
there instead of the option). `check_folder_option` refuses an --out or --data-dir that names
a file.
"""
import math
from numbers import Integral, Real
from pathlib import Path
from typing import NamedTuple

from ..data import TTA
from ..io.errors import named


class Rule(NamedTuple):
    """Allowed values: integers or finite reals from `low` (excluded if `low_open`) up to `high`
    (always excluded; inf for none)."""

    integer: bool
    low: float
    high: float = math.inf
    low_open: bool = False

    def allows(self, v):
        if isinstance(v, bool) or not isinstance(v, Integral if self.integer else Real):
            return False
        v = float(v) if not self.integer else v
        above = v > self.low if self.low_open else v >= self.low
        return above and v < self.high and (self.integer or math.isfinite(v))

    def text(self):
        if self.integer:
            return f"an integer >= {int(self.low)}"
        if self.high != math.inf:
            return f"a number in [{self.low:g}, {self.high:g})"
        return f"a finite number {'>' if self.low_open else '>='} {self.low:g}"


class Choice(NamedTuple):
    """Allowed values: exactly these (of the same type: True is not 1)."""

    values: tuple

    def allows(self, v):
        return any(type(v) is type(c) and v == c for c in self.values)

    def text(self):
        return f"one of {', '.join(map(repr, self.values))}"


RULES = {
    # hyper-parameters (train.RECIPES)
    "epochs": Rule(True, 1),
    "batch_size": Rule(True, 1),
    "lr": Rule(False, 0, low_open=True),
    "weight_decay": Rule(False, 0),
    "warmup": Rule(False, 0),
    "smoothing": Rule(False, 0, 1),
    "clip": Rule(False, 0),  # 0: no clipping
    "optimizer": Choice(("adamw", "sgd")),  # tinyvit.optim.update
    "schedule": Choice(("cosine", "linear")),  # tinyvit.optim.schedule
    "crop_pad": Rule(True, 0),  # random crops of the image padded by this many pixels
    "crop_mode": Choice(("constant", "reflect")),  # padded with zeros or mirrored
    "tta": Choice(tuple(TTA)),  # test-time augmentation: the views data.TTA names
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
    lr, wd = values.get("lr"), values.get("weight_decay")
    if lr is not None and wd is not None and lr * wd >= 1:
        name = label or named
        raise ValueError(f"{name('weight_decay')} {wd!r} with {name('lr')} {lr!r}: each step "
                         f"multiplies the weights by 1 - lr x weight decay = {1 - lr * wd:g}; "
                         f"expected lr x weight decay < 1")


def check_folder_option(option, path):
    """One-line ValueError when an option meant to name a folder names a file (or lies under
    one)."""
    if path is None:
        return
    path = Path(path)
    for p in [path, *path.parents]:
        if p.exists() and not p.is_dir():
            where = "is a file" if p == path else f"lies under the file {p}"
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
