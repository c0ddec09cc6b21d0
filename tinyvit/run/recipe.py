"""The training recipe: every hyper-parameter of a run, in one frozen dataclass.

Each field of `Recipe` is one setting, written once: its name, type, default (the paper's
ViT recipe, Sec. 4.1 / Appendix B.1), allowed values (`validate.Rule` / `Choice`) and
meaning. Everything else is generated from these lines: the command line's flags and their
help (`tinyvit.run.cli`), the one-line refusals of a bad value, what a checkpoint stores
(`stored`), how an older checkpoint's recipe is read (`from_stored`) and what resuming
compares. Adding a setting is adding one line here (and using it where it acts).

A bound can be relative to the run (`Rule.most`): a warmup is at most the run's epochs, a
crop pad at most the image's size (`check_run`, once the data are known).
"""
import dataclasses
from dataclasses import dataclass, field

from .. import configs
from ..data import TTA
from ..support.errors import named
from .validate import Choice, Rule

STORED_BEFORE = "before"  # metadata: the value checkpoints that lack the setting trained with
OLDER_FORMS = "older"  # metadata: {value an older checkpoint wrote: today's value}


def setting(default, rule, meaning, before=None, older=None):
    """One hyper-parameter: its default, allowed values, meaning (the --help text), and for a
    setting added after checkpoints were first written, the value those were trained with
    (`before`) and the older forms they wrote it in (`older`)."""
    return field(default=default, metadata={"rule": rule, "meaning": meaning,
                                            STORED_BEFORE: before, OLDER_FORMS: older or {}})


@dataclass(frozen=True)
class Recipe:
    """How a model trains. warmup is in epochs; crop_pad / crop_mode: random crops of the
    image padded by that many pixels of zeros ("constant") or of its mirror image ("reflect");
    tta: the views `data.TTA` names ("none"; "flip", the mirror images too; "flip-shift",
    and their one-pixel shifts). The regularisers after `tta` are off by default: augment
    (TrivialAugment, Mueller & Hutter 2021; RandAugment, Cubuk et al. 2020), erasing (Zhong
    et al. 2020), mixup (Zhang et al. 2018) or CutMix (Yun et al. 2019) per batch as timm's
    `Mixup` chooses, and ema, the decay of an average of the weights (Polyak & Juditsky 1992;
    `optim.ema_decay` warms it up)."""

    epochs: int = setting(18, Rule(True, 1), "passes over the training images")
    batch_size: int = setting(128, Rule(True, 1), "images per step")
    optimizer: str = setting("adamw", Choice(("adamw", "sgd")),
                             "adamw or sgd (Nesterov momentum 0.9)", before="adamw")
    lr: float = setting(1e-3, Rule(False, 0, low_open=True), "peak learning rate")
    weight_decay: float = setting(0.05, Rule(False, 0), "decoupled weight decay")
    schedule: str = setting("cosine", Choice(("cosine", "linear")),
                            "cosine or linear (a triangle), after a linear warmup",
                            before="cosine")
    warmup: float = setting(2.0, Rule(False, 0, most="epochs"), "warmup length in epochs")
    smoothing: float = setting(0.1, Rule(False, 0, 1), "label smoothing")
    clip: float = setting(1.0, Rule(False, 0), "global gradient norm clip (0: none)")
    crop_pad: int = setting(4, Rule(True, 0, most="image_size"),
                            "random crops of the image padded by this many pixels", before=4)
    crop_mode: str = setting("constant", Choice(("constant", "reflect")),
                             "constant (pad with zeros) or reflect (mirror the border)",
                             before="constant")
    tta: str = setting("none", Choice(tuple(TTA)),
                       "test-time augmentation: none, flip (the mirror images too) or "
                       "flip-shift (and one-pixel shifts)", before="none",
                       older={False: "none", True: "flip"})
    # Small-data regularisers, applied per batch after the crop and flip, in timm's order:
    # augment -> erasing -> mix (tinyvit.data: randaug, erasing, mixing); then the weights' EMA.
    augment: str = setting("none", Choice(("none", "trivialaugment", "randaugment")),
                           "none, trivialaugment (one op per image, wide space) or randaugment "
                           "(randaug_n ops of magnitude randaug_m)", before="none")
    randaug_n: int = setting(2, Rule(True, 0), "randaugment: operations per image", before=2)
    randaug_m: int = setting(9, Rule(True, 0, 30, high_closed=True),
                             "randaugment: magnitude of every operation, 0 to 30", before=9)
    erasing: float = setting(0.0, Rule(False, 0, 1, high_closed=True),
                             "random erasing: probability per image of a noise box",
                             before=0.0)
    mixup: float = setting(0.0, Rule(False, 0), "mixup's Beta(alpha, alpha) (0: none)",
                           before=0.0)
    cutmix: float = setting(0.0, Rule(False, 0), "CutMix's Beta(alpha, alpha) (0: none)",
                            before=0.0)
    mix_switch: float = setting(0.5, Rule(False, 0, 1, high_closed=True),
                                "probability of CutMix rather than mixup when both are on",
                                before=0.5)
    mix_prob: float = setting(1.0, Rule(False, 0, 1, high_closed=True),
                              "probability that a batch is mixed (mixup or CutMix)", before=1.0)
    ema: float = setting(0.0, Rule(False, 0, 1),
                         "decay of an exponential moving average of the weights, which is "
                         "then what is tested and evaluated (0: none)", before=0.0)

    def __post_init__(self):
        check(self.stored())

    def replace(self, **changes):
        """This recipe with the settings given (not None) changed. A shorter run keeps its
        warmup within it: with `epochs` changed and `warmup` not, the warmup is at most the
        new run (what the schedule did with a longer one: warm up over the whole run)."""
        changes = {k: v for k, v in changes.items() if v is not None}
        unknown = sorted(set(changes) - set(NAMES))
        if unknown:
            raise ValueError(f"{named(unknown[0])}: not a setting of the recipe; expected one "
                             f"of {', '.join(NAMES)}")
        if "epochs" in changes and "warmup" not in changes:
            check_value("epochs", changes["epochs"])
            changes["warmup"] = float(min(self.warmup, changes["epochs"]))
        return Recipe(**{**self.stored(), **changes})

    def stored(self):
        """{setting: value}: what a checkpoint stores and resuming compares."""
        return dataclasses.asdict(self)

    def check_run(self, **sizes):
        """One-line ValueError unless every setting bounded by one of `sizes` (image_size=32)
        is within it."""
        check(self.stored(), **sizes)


SETTINGS = dataclasses.fields(Recipe)
NAMES = tuple(f.name for f in SETTINGS)
RULES = {f.name: f.metadata["rule"] for f in SETTINGS}


def check_value(name, value, label=named):
    """One-line ValueError unless `value` follows the rule of the setting `name`."""
    if not RULES[name].allows(value):
        raise ValueError(f"{label(name)} {value!r}: expected {RULES[name].text()}")


def check(values, label=named, **sizes):
    """One-line ValueError naming (`label(name)`) the first setting in `values` that breaks its
    rule, its bound relative to the run (other settings and `sizes`), or lr x weight decay < 1."""
    for name, value in values.items():
        check_value(name, value, label)
    run = {**values, **sizes}
    for name, value in values.items():
        most = getattr(RULES[name], "most", None)
        if most in run and value > run[most]:
            raise ValueError(f"{label(name)} {value!r}: expected at most the run's "
                             f"{most.replace('_', ' ')} ({run[most]!r})")
    lr, wd = values["lr"], values["weight_decay"]
    if lr * wd >= 1:
        raise ValueError(f"{label('weight_decay')} {wd!r} with {label('lr')} {lr!r}: each step "
                         f"multiplies the weights by 1 - lr x weight decay = {1 - lr * wd:g}; "
                         f"expected lr x weight decay < 1")


def upgrade(values):
    """A stored recipe (`Recipe.stored`) as today's: settings it predates set to what it trained
    with, older forms of a value in today's, and a warmup longer than its run cut to the run
    (the schedule warmed up over the whole run). Nothing is checked here (`from_stored`)."""
    values = dict(values)
    for f in SETTINGS:
        if f.name not in values and f.metadata[STORED_BEFORE] is not None:
            values[f.name] = f.metadata[STORED_BEFORE]
        v, older = values.get(f.name), f.metadata[OLDER_FORMS]
        if any(type(v) is type(k) and v == k for k in older):  # True is not 1
            values[f.name] = older[v]
    w, e = values.get("warmup"), values.get("epochs")
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (w, e)) and w > e:
        values["warmup"] = float(e)
    return values


def from_stored(values, label=named):
    """The Recipe a checkpoint stored, `upgrade`d and checked: one-line ValueError naming
    (`label`) what is missing or wrong."""
    if not isinstance(values, dict) or sorted(upgrade(values)) != sorted(NAMES):
        raise ValueError(f"{label('recipe')}: expected {', '.join(NAMES)}, found "
                         f"{str(values)[:80]}")
    values = upgrade(values)
    check(values, label)
    return Recipe(**values)


# ---------------------------------------------------------------------------------------------
# Each model's recipe: its family's, or its preset's own
# ---------------------------------------------------------------------------------------------

# Chosen on this project's 2-core CPU (docs/RESULTS.md): about an hour of training for
# vit-cifar-nano and half an hour for cnn-small.
FAMILY_RECIPES = {
    "vit": Recipe(),
    "cnn": Recipe(epochs=7, lr=2e-3, warmup=1.0),
    "hybrid": Recipe(epochs=13),
}
# The strong baselines' own recipes. airbench's for the CNNs: Nesterov SGD, a triangular
# schedule peaking at 20% of the run, smoothing 0.2, no clipping, lighter crops, flip TTA.
# Nesterov SGD with cosine decay and clipping for the hybrids (it beat AdamW in short trials);
# the paper's AdamW with the CNNs' lighter crops for the plain ViT. hybrid-small and
# vit-cifar-plain train longer, and test with airbench's six views (docs/RESULTS.md).
AIRBENCH = dict(optimizer="sgd", lr=0.2, weight_decay=5e-4, schedule="linear", smoothing=0.2,
                clip=0.0, crop_pad=2, crop_mode="reflect", tta="flip")
AIR_CNN = Recipe(**AIRBENCH, epochs=10, batch_size=256, warmup=2.0)
SGD_HYBRID = Recipe(**{**AIRBENCH, "lr": 0.1, "schedule": "cosine", "clip": 1.0}, epochs=13,
                    warmup=1.0)
PRESET_RECIPES = {
    "cnn-air": AIR_CNN,
    "cnn-air-small": AIR_CNN,
    "hybrid-small": SGD_HYBRID.replace(epochs=20, tta="flip-shift"),
    "hybrid-tiny": SGD_HYBRID,
    "vit-cifar-plain": Recipe(epochs=22, crop_pad=2, crop_mode="reflect", tta="flip-shift"),
    "vit-cifar-sl": Recipe(epochs=18, crop_pad=2, crop_mode="reflect", tta="flip-shift",
                           erasing=0.25, ema=0.999),
}


def recipe_for(model, **changes):
    """The recipe of a model (a preset name or a `models.Model`): its preset's own, else its
    family's, with the settings given (not None) changed (`Recipe.replace`)."""
    name = model if isinstance(model, str) else model.name
    family = configs.family(model if isinstance(model, str) else model.cfg)
    base = PRESET_RECIPES.get(name.lower(), FAMILY_RECIPES[family])
    return base.replace(**changes)
