"""Sec. 4.1 and Appendix B.1 together: the training loop, trained with the student's own code.

Exercise 21. The student writes the loop; the check runs it with the library's functions
(stages runs .. edge), then with every function the student has passed put into the library
(`patch` of each exercise, as `tinyvit.fast` switches its twins): the losses must equal the
library's, to float32 rounding. With im2col passed, the CNN baseline trains too.
"""
from contextlib import ExitStack, contextmanager

import numpy as np

from ... import cnn, fast, optim, vit
from ...configs import CNNConfig, ViTConfig
from ...data import synthetic_images
from ...run import models, train
from ...tree import flatten
from ..compare import num, values_message
from ..patching import swapped
from ..quirks import tolerated
from ..spec import NO_DROPOUT, exercise, numbers, pick
from ..stages import expected_of, make_case, run

VIT_CFG = ViTConfig(name="capstone", image_size=8, patch_size=4, width=8, depth=1, heads=2,
                    mlp_dim=16, num_classes=3)
CNN_CFG = CNNConfig(name="cnn-capstone", image_size=8, stem=4, widths=(4,), depth=1, groups=2,
                    num_classes=3)
YOURS_TOL = (2e-5, 1e-7)  # float32 rounding (other correct solutions differ by ~1e-7)
TRACE_TOL = (1e-4, 1e-6)  # a step's arrays: float32 rounding of a sharded gradient passes


def model_of(cfg):
    """A tinyvit.run.models.Model whose forward looks vit.vit / cnn.cnn up when it runs."""
    if isinstance(cfg, CNNConfig):
        return models.Model(cfg.name, cfg, lambda rng: cnn.init_cnn(rng, cfg),
                            lambda p, x, train=False, rng=None: cnn.cnn(p, x, cfg, train, rng))
    return models.Model(cfg.name, cfg, lambda rng: vit.init_vit(rng, cfg),
                        lambda p, x, train=False, rng=None: vit.vit(p, x, cfg, train, rng))


def loop_inputs(rng, d, cfg=VIT_CFG, clip=1.0, weight_decay=0.05, warmup=1):
    """A float32 model (its zero head redrawn: zero inits hide backward bugs) and one batch."""
    model = model_of(cfg)
    params = model.init(rng)
    params["head"]["w"] = (0.3 * rng.standard_normal(params["head"]["w"].shape)).astype(np.float32)
    x, y = synthetic_images(6, size=8, k=3, seed=int(rng.integers(1000)))
    images = ((x / 255.0 - 0.5) / 0.25).astype(np.float32)  # (6, 8, 8, 3)
    return {"model": model, "params": params, "images": images, "labels": y,
            "steps": d["steps"], "lr": 0.02, "warmup": min(warmup, d["steps"] - 1),
            "weight_decay": weight_decay, "clip": clip, "smoothing": 0.1}


def train_losses(model, params, images, labels, steps, lr, warmup, weight_decay, clip,
                 smoothing):
    """The capstone's loop: `run.train`'s step (forward, backward, clip, AdamW) under warmup +
    cosine; the loss of every step, before its update. One shard: a batch of 6 gains nothing
    from threads (a loop with the default shards differs by float32 rounding only)."""
    grad_fn = train.make_grad_fn(model, smoothing, shards=1)
    opt, losses = optim.init_adam(params), []
    for step in range(steps):
        rate = optim.warmup_cosine(step, steps, lr, warmup)
        params, opt, loss, _, _ = train.train_step(grad_fn, params, opt, images, labels, None,
                                                   rate, weight_decay, clip)
        losses.append(loss)
    return losses


def on_formulas(fn, inputs):
    """The loop's losses, with the model on its formulas (the fast twins switched off, if on;
    switching would also undo a student's function put in place of a formula)."""
    with fast.formulas() if fast.enabled() else ExitStack():
        return numbers(fn(*inputs.values()))


def students(passed):
    """`with students(passed):` every passed function {number: fn} put into the library.

    Inside the student's own function the attribute it replaced is the library's again, so
    that a function which calls the library (a reference adapter does) cannot call itself.
    """
    from ..registry import get  # the registry imports this module

    stack = ExitStack()
    for number in sorted(passed):
        patch = get(number)["patch"]
        if patch:
            module, name, wrap = patch
            current = getattr(module, name)
            stack.enter_context(swapped([(module, name, wrap(guarded(passed[number], module, name,
                                                                     current), current))]))
    return stack


def guarded(fn, module, name, current):
    """fn, run with module.name set back to `current` while it runs."""
    def call(*args, **kwargs):
        with swapped([(module, name, current)]):
            return fn(*args, **kwargs)
    return call


def culprits(ex, case, passed, expected):
    """The passed functions that, alone in the library, change the library loop's losses."""
    from ..registry import get

    out = []
    for number in sorted(passed):
        with fast.formulas(), students({number: passed[number]}):
            if values_message(run(ex, ex["reference"], case), expected, YOURS_TOL):
                out.append(get(number)["name"])
    return out


def stage_yours(ex, fn, ctx):
    """Your loop, with your passed functions in the library, against the library's loop."""
    from ..registry import get

    passed = {n: f for n, f in ctx["passed"].items() if get(n)["patch"]}
    names = [get(n)["name"] for n in sorted(passed)]
    runs = [("ViT", make_case(ex, 7))]
    if get("im2col")["number"] in passed:
        runs.append(("CNN", make_case(ex, 8, inputs=lambda rng, d: loop_inputs(rng, d, CNN_CFG))))
    for model, case in runs:
        expected = expected_of(ex, case)
        with fast.formulas(), students(passed), tolerated():
            found = run(ex, fn, case)
        problem = values_message(found, expected, YOURS_TOL)
        if problem:
            guilty = culprits(ex, case, passed, expected)
            blame = (f"with only your {', '.join(guilty)} in the library the losses differ too"
                     if guilty else "each of your functions alone matches: their combination, "
                                    "or your loop with them, does not")
            return f"your functions ({model}): the losses differ from the library's: {problem}; " \
                   f"{blame}", None
        used = f"your {', '.join(names)}" if names else "the library's functions (none of your " \
            "exercises 1-17 has passed yet: pass them to train with your own code)"
        ctx["notes"].append(f"{model}: {len(found)} steps trained with {used}: losses "
                            f"{' '.join(num(v) for v in found)}, equal to the library's")
    return None


def with_schedule(rate):
    """A wrong loop: the library's, with its learning rate at a step given by rate(...)."""
    def wrong(*args):
        original = optim.warmup_cosine
        with swapped([(optim, "warmup_cosine", lambda s, *a: rate(original, s, *a))]):
            return train_losses(*args)
    return wrong


def changed(**fixed):
    """A wrong loop: the library's, with some of its arguments ignored (fixed to a value)."""
    names = ["model", "params", "images", "labels", "steps", "lr", "warmup", "weight_decay",
             "clip", "smoothing"]
    return lambda *args: train_losses(**{**dict(zip(names, args)), **fixed})


def reinitialised(model, params, images, labels, steps, lr, warmup, weight_decay, clip,
                  smoothing):
    """A wrong loop: the library's step, with a fresh optimiser state at every step."""
    grad_fn = train.make_grad_fn(model, smoothing, shards=1)
    losses = []
    for step in range(steps):
        rate = optim.warmup_cosine(step, steps, lr, warmup)
        params, _, loss, _, _ = train.train_step(grad_fn, params, optim.init_adam(params), images,
                                                 labels, None, rate, weight_decay, clip)
        losses.append(loss)
    return losses


def snapshot(tree):
    """{path: float64 copy} of a tree's arrays (adam_update changes them in place)."""
    return {k: np.array(v, dtype=np.float64) for k, v in flatten(tree).items()}


@contextmanager
def recorded():
    """`with recorded() as calls:` every optim.adam_update call's inputs, in order."""
    calls, original = [], optim.adam_update

    def adam_update(params, grads, state, lr, *args, **kwargs):
        decay = kwargs.get("weight_decay", args[3] if len(args) > 3 else 0.0)
        calls.append({"parameters": snapshot(params), "gradient": snapshot(grads),
                      "m": snapshot(state["m"]), "v": snapshot(state["v"]),
                      "step count": state["step"], "learning rate": float(lr),
                      "weight decay": float(decay)})
        return original(params, grads, state, lr, *args, **kwargs)

    with swapped([(optim, "adam_update", adam_update)]):
        yield calls


SCALARS = ("learning rate", "weight decay", "step count")
ARRAYS = {"parameters": "the parameters at the start of the step (the previous update differs)",
          "gradient": "the gradient", "m": "the optimiser's m", "v": "the optimiser's v"}


def close(a, b):
    """Equal to float32 rounding, relative to the whole array: Adam's step turns the noise of
    a gradient that is 0 in theory (a key's bias) into a full step, elementwise."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return a.shape == b.shape and np.linalg.norm(a - b) <= TRACE_TOL[0] * np.linalg.norm(b) \
        + TRACE_TOL[1]


def scalar_difference(mine, theirs):
    """The first step whose learning rate, weight decay or step count differs, or None."""
    for i, (got, want) in enumerate(zip(mine, theirs)):
        if i and got["step count"] == 0 and not any(v.any() for v in got["m"].values()):
            return (f"step {i + 1}: the optimiser state is a fresh optim.init_adam (step count 0, "
                    f"m = 0): the optimiser is re-initialised every step; create it once, "
                    f"before the loop")
        for part in SCALARS:
            if not close(got[part], want[part]):
                return (f"step {i + 1}: the {part} passed to optim.adam_update is "
                        f"{num(got[part])}, expected {num(want[part])}")
    return None


def array_difference(i, got, want):
    """The first array of step i that differs: the parameters, gradient, m or v, or None."""
    if got["gradient"].keys() == want["gradient"].keys():
        ratio = uniform_ratio(got["gradient"], want["gradient"])
        if ratio is not None:
            return (f"step {i + 1}: your gradient is {num(ratio)} times the library's on every "
                    f"parameter: is it clipped differently (global norm `clip`)?")
    for part, what in ARRAYS.items():
        for path in want[part]:
            if path not in got[part] or not close(got[part][path], want[part][path]):
                return f"step {i + 1}: {what} differs first, for {path}"
    return None


def step_difference(mine, theirs, losses, expected_losses):
    """Where a loop's steps differ first: the schedule's numbers, then step by step the
    arrays passed to optim.adam_update and the loss recorded; None when all agree."""
    if len(mine) != len(theirs):
        return f"your loop made {len(mine)} optimiser updates, the library's {len(theirs)}"
    found = scalar_difference(mine, theirs)
    for i, (got, want) in enumerate(zip(mine, theirs)):
        found = found or array_difference(i, got, want)
        if not found and i < min(len(losses), len(expected_losses)) \
                and not close(losses[i], expected_losses[i]):
            found = (f"step {i + 1}: the loss you record differs, while the parameters and "
                     f"everything passed to optim.adam_update agree: is it computed at other "
                     f"parameters (after the update?) or by another loss?")
    return found


def uniform_ratio(mine, theirs):
    """c when every array of `mine` is c times the same array of `theirs` (c != 1), else None."""
    a = np.concatenate([np.ravel(mine[k]) for k in theirs])
    b = np.concatenate([np.ravel(theirs[k]) for k in theirs])
    if not b.any():
        return None
    c = float(a @ b / (b @ b))
    return c if close(a, c * b) and not np.isclose(c, 1.0, 1e-3) else None


def step_trace(ex, fn, case):
    """Which part of which step differs first, from the optim.adam_update calls of the
    student's loop and of the library's (None when the loop does not call it)."""
    runs = []
    for f in (fn, ex["reference"]):
        with recorded() as calls:
            try:
                losses = run(ex, f, case)
            except Exception:  # noqa: BLE001 (the values stage reports the error)
                return None
        runs.append((calls, np.ravel(np.asarray(losses, dtype=np.float64))))
    (mine, losses), (theirs, expected) = runs
    if not mine:
        return None
    found = step_difference(mine, theirs, losses, expected)
    return found and f"where it differs first: {found}"


CAPSTONE = exercise(
    number=21, name="train", title="Capstone: train with your own code",
    section="Sec. 4.1, App. B.1",
    lesson="05_training", reference=train_losses, call=on_formulas, notes=(), tol=(1e-5, 1e-7),
    targets=[train_losses, train.train_step, train.make_grad_fn, optim.clip_by_global_norm],
    signature="train(model, params, images, labels, steps, lr, warmup, weight_decay, clip, "
              "smoothing)",
    imports="from tinyvit import ops, optim\nfrom tinyvit.run import train as run_train",
    doc="""Train `model` for `steps` steps on one batch and return the loss of every step,
    computed before that step's update. Each step: the loss of model.apply(params, images,
    True) by ops.cross_entropy with `smoothing` and its gradient (run_train.make_grad_fn does
    both), the gradients clipped at global norm `clip` (0: no clipping), and AdamW from a fresh
    optim.init_adam(params) at the rate optim.warmup_cosine(step, steps, lr, warmup), with
    weight_decay. Call the library through its modules (optim.adam_update, not `from
    tinyvit.optim import adam_update`): the check puts your passed exercises into those
    modules, so that this loop trains with your code.

    model a tinyvit.run.models.Model; params its parameters -> a list of `steps` floats.""",
    dims={"steps": 4}, draw=lambda rng: {"steps": pick(rng, 2, 5)}, inputs=loop_inputs, out="steps",
    hand={"dims": {"steps": 1}, "inputs": loop_inputs(np.random.default_rng(0), {"steps": 1}),
          "note": "one step: its loss is the cross-entropy at the initial parameters, before "
                  "any update"},
    edges=[{"label": "clipping on (clip = 0.05)",
            "inputs": lambda rng, d: loop_inputs(rng, d, clip=0.05)},
           {"label": "no clipping (clip = 0)",
            "inputs": lambda rng, d: loop_inputs(rng, d, clip=0.0)},
           {"label": "strong weight decay, no warmup",
            "inputs": lambda rng, d: loop_inputs(rng, d, weight_decay=0.5, warmup=0)}],
    variants={"the optimiser re-initialised at every step (optim.init_adam inside the loop)":
              reinitialised},
    trace=step_trace, explain_cases=4, explain_variants=False,
    mistakes={
        "a constant learning rate": (with_schedule(lambda f, s, total, base, *a: base),
            "the rate follows optim.warmup_cosine(step, steps, lr, warmup): 0 at step 0"),
        "the schedule one step ahead": (with_schedule(lambda f, s, *a: f(s + 1, *a)),
            "steps count from 0: the first update uses warmup_cosine(0, ...)"),
        "no gradient clipping": (changed(clip=0.0), "clip the gradients at global norm `clip` "
            "before AdamW (optim.clip_by_global_norm)"),
        "weight decay ignored": (changed(weight_decay=0.0), "pass weight_decay to AdamW"),
        "label smoothing ignored": (changed(smoothing=0.0), "the loss is the smoothed "
            "cross-entropy: make_grad_fn(model, smoothing)"),
    },
    equivalent={
        **dict.fromkeys(["make_grad_fn line 6: arguments 3 and 4 swapped",
                         "make_grad_fn line 6: True -> False"], NO_DROPOUT),
        **dict.fromkeys(["make_grad_fn line 11: Gt -> GtE", "make_grad_fn line 11: 0 -> 1"],
                        "the loop runs one shard, so fast.sharded returns the gradient function "
                        "as it is, whatever its dropout flag says"),
        "train_losses line 5: 1 -> 2": "two shards (fast.sharded) give the same gradient up "
            "to float32 rounding, well inside the check's tolerance",
        "train_step line 10: elements 4 and 5 swapped": "the loop keeps only the parameters, the "
            "optimiser state and the loss of train_step's result",
        "clip_by_global_norm line 7: LtE -> Lt": "it differs only when the norm equals max_norm "
            "exactly, where scaling by 1 changes nothing",
    },
    hints="""
    grad_fn = run_train.make_grad_fn(model, smoothing); grad_fn(params, images, labels, None)
    returns (grads, (loss, logits)). Start the optimiser with opt = optim.init_adam(params).

    For step in range(steps): the rate optim.warmup_cosine(step, steps, lr, warmup); clip the
    gradients if clip (optim.clip_by_global_norm returns (grads, norm)); then
    params, opt = optim.adam_update(params, grads, opt, rate, weight_decay=weight_decay).

    run_train.train_step(grad_fn, params, opt, images, labels, None, rate, weight_decay, clip)
    does forward, backward, clipping and AdamW in one call; its third value is the loss.
    """,
)
CAPSTONE["stages"].insert(-1, ("your functions", stage_yours))

EXERCISES = [CAPSTONE]
