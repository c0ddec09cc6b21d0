"""Small helpers shared by the lessons in this folder: modes, where pictures go, data, training.

Lessons import it as `import lesson` (Python puts a script's own folder on the path, and a
notebook opened here runs in this folder).

* Three modes. **Smoke** (`TINYVIT_SMOKE=1` or `--smoke`): every lesson in seconds on tiny
  synthetic data; `tests/test_lessons.py` runs every lesson that way, as a script and as a
  notebook. **Mini** (`TINYVIT_MINI=1` or `--mini`): real CIFAR-10, but every training run
  cut to about a minute on a few thousand images, so a model visibly learns. **Full** (the
  default): the lesson as written. In a notebook, set the mode in its first cell with
  `%env TINYVIT_SMOKE=1` or `%env TINYVIT_MINI=1` (before `import lesson`).
* Knobs: short experiments with a question to predict first. `knob(question)` prints the
  question; `knob_data()` is their data (a few thousand real images; synthetic in smoke mode)
  and `compare(runs, ds)` trains each variant for about a minute and charts them.
* `show(image, name)` saves a PIL image as PNG under the lesson's output folder
  (`lessons/output/<lesson>/`, or `$TINYVIT_OUT/<lesson>/`) and, inside a notebook,
  displays it inline (once, as PNG).
* `show_code(f)` prints the source of the library function that defines a formula, and
  `show_twin(name)` says which fast twin training runs in its place (from `tinyvit.fast`).
* `cifar10(...)` loads real CIFAR-10: `$TINYVIT_LESSON_DATA` if set (any `--data` source),
  else `tinyvit.data.load_data("cifar10")`: the official download, or offline the local copy
  named by `$TINYVIT_CIFAR10_COPY`.
* `fit(model, params, ds, recipe, ...)` trains given parameters with a `Recipe` (default
  `FIT`: AdamW, warmup + cosine, clipping, crop + flip), by `tinyvit.run.train`'s own
  `train_epoch`, and tests after every epoch.
* `trained_vit(lesson)` finds (or, once, trains) the trained ViT that lessons 8 and 9 analyse.
  In smoke mode `$TINYVIT_SMOKE_VIT` names the ViT preset that is trained for 3 steps in its
  place (default vit-cifar-nano; e.g. `vit-cifar-sl` to run the analyses on a ViT with
  sequence pooling, sin-cos positions, shifted patch tokens and locality self-attention);
  lesson 11 uses it as its smoke stand-in for vit-cifar-sl.
"""
import inspect
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # lessons run from any folder without installing tinyvit
    sys.path.insert(0, str(REPO))

from tinyvit import data  # noqa: E402
from tinyvit.configs import DEFAULT_MODEL, family  # noqa: E402

CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
                   "ship", "truck"]


def _flag(env, arg):
    return os.environ.get(env, "") not in ("", "0") or arg in sys.argv


def smoke():
    """True when the lesson should run in seconds on tiny synthetic data."""
    return _flag("TINYVIT_SMOKE", "--smoke")


def mini():
    """True when training runs should take about a minute each on real data (not in smoke)."""
    return not smoke() and _flag("TINYVIT_MINI", "--mini")


def mode():
    """"smoke", "mini" or "full"."""
    return "smoke" if smoke() else "mini" if mini() else "full"


def data_name():
    """What the pictures' titles call the data: "CIFAR-10", or "synthetic, smoke mode"."""
    return "synthetic, smoke mode" if smoke() else "CIFAR-10"


def notebook_hint():
    """In a notebook in full mode, say once how to get the faster modes."""
    if in_notebook() and mode() == "full":
        print("full mode (real CIFAR-10). Faster: put `%env TINYVIT_SMOKE=1` (seconds, synthetic "
              "data) or `%env TINYVIT_MINI=1` (a minute per training run) in the first cell "
              "and restart the kernel.")


def output_root():
    """Where every lesson's output folder lives: `$TINYVIT_OUT` or `lessons/output/`."""
    return Path(os.environ.get("TINYVIT_OUT", REPO / "lessons" / "output"))


def output_dir(lesson):
    """The folder this lesson writes its pictures and results to (created)."""
    d = output_root() / lesson
    d.mkdir(parents=True, exist_ok=True)
    return d


def in_notebook():
    """True inside Jupyter / VS Code notebooks (an IPython kernel is running)."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and "IPKernelApp" in getattr(shell, "config", {})


def show(image, name, lesson):
    """Save a PIL image as `<output_dir(lesson)>/<name>.png`; display it in a notebook.

    Displayed as the PNG file itself (a PIL image would be embedded twice, as PNG and JPEG);
    returns nothing, so a notebook cell ending in `lesson.show(...)` echoes nothing.
    """
    path = output_dir(lesson) / f"{name}.png"
    image.save(path)
    if in_notebook():
        from IPython.display import Image, display

        display(Image(data=path.read_bytes(), format="png"))
    else:
        print(f"saved {path.relative_to(REPO) if path.is_relative_to(REPO) else path}")


def show_code(fn):
    """Print the source of a library function: the code the model runs, as the lesson shows it."""
    print(f"# {fn.__module__}.{fn.__qualname__}\n{inspect.getsource(fn).rstrip()}\n")


def show_twin(name):
    """Say which fast twin training uses instead of the formula `name`, and what it does."""
    from tinyvit import fast

    twin = fast.TWINS[name][2]
    doc = " ".join(inspect.getdoc(twin).split("\n\n")[0].split())
    where = getattr(twin, "fun", twin).__module__  # an autograd primitive wraps the function
    print(f"training runs {where}.{name} instead (tested equal, values and gradients): {doc}")


def cifar_source():
    """Where to read CIFAR-10 from: an ImageFolder path or 'cifar10' (the official download)."""
    return os.environ.get("TINYVIT_LESSON_DATA") or "cifar10"


def cifar10(train_size=None, seed=0):
    """dict(train=(x, y), test=(x, y), classes=[...]) of real CIFAR-10 (synthetic in smoke mode)."""
    if smoke():
        xtr, ytr = data.synthetic_images(200, seed=seed)
        xte, yte = data.synthetic_images(100, seed=seed + 1)
        return dict(train=(xtr, ytr), test=(xte, yte), classes=CIFAR10_CLASSES)
    ds = data.load_data(cifar_source())
    if train_size is not None:
        ds["train"] = data.balanced_subset(*ds["train"], train_size, seed)
    return ds


notebook_hint()  # runs once, when a lesson imports this module

NANO_EPOCHS = 3  # the fallback model of `trained_vit`: vit-cifar-nano, 3 epochs, ~9 minutes


def smoke_vit():
    """The ViT preset smoke mode trains for 3 steps in place of a trained ViT:
    `$TINYVIT_SMOKE_VIT` (any ViT preset), default vit-cifar-nano."""
    from tinyvit.configs import get_config

    name = os.environ.get("TINYVIT_SMOKE_VIT") or DEFAULT_MODEL
    try:
        get_config(name)  # ViT presets only
    except (KeyError, ValueError) as e:
        raise ValueError(f"$TINYVIT_SMOKE_VIT: expected a ViT preset, found {name!r} ({e})") \
            from None
    return name


def vit_checkpoints():
    """Where `trained_vit` looks for a trained ViT, in order (they need not exist)."""
    env = os.environ.get("TINYVIT_CKPT")
    return ([Path(env)] if env else []) + [
        REPO / "runs" / DEFAULT_MODEL / "last.npz",  # `python -m tinyvit train` in the repo
        output_root() / "05_training" / "run" / "last.npz",  # lesson 5
        REPO / "tinyvit" / "pretrained" / "vit-cifar-nano.npz",  # shipped: 18 epochs, 67.8%
    ]


def trained_vit(lesson):
    """(model, params, meta) of a trained ViT for the analysis lessons (8 and 9).

    Smoke mode: `smoke_vit()` (vit-cifar-nano unless `$TINYVIT_SMOKE_VIT` names another)
    trained for 3 steps on the synthetic data. Otherwise
    `$TINYVIT_CKPT` as it is, or the first finished checkpoint of `vit_checkpoints()` (an
    unfinished run is named and passed over; the last is the model shipped in
    `tinyvit/pretrained/`, trained for 18 epochs: 67.8% on CIFAR-10); failing that,
    `vit-cifar-nano` trained for NANO_EPOCHS epochs on CIFAR-10 into
    `lessons/output/trained_vit` (shared by lessons 8 and 9, reused next time, resumed if
    interrupted).
    """
    from tinyvit.run import checkpoint, rundir, train
    from tinyvit.run.recipe import recipe_for

    if smoke():
        ds = cifar10()
        ds["mean"], ds["std"] = train.channel_stats(ds["train"][0])
        name = smoke_vit()
        out = output_dir(lesson) / f"smoke_{name}"
        train.train(name, ds, recipe_for(name, epochs=1, batch_size=32), out, max_steps=3)
        return checkpoint.load_model(out / "last.npz")
    named = os.environ.get("TINYVIT_CKPT")
    try:  # one named by $TINYVIT_CKPT as it is; else the first finished one
        path = Path(named) if named and Path(named).is_file() else \
            rundir.default_checkpoint(vit_checkpoints(), say=print)
    except ValueError:
        path = None
    if path is None:
        out = output_root() / "trained_vit"  # shared: lesson 9 reuses what lesson 8 trained
        path = out / "last.npz"
        done = checkpoint.load_extra(path)["epoch"] if path.is_file() else 0
        if done < NANO_EPOCHS:
            print(f"no trained ViT found (looked for {', '.join(map(str, vit_checkpoints()))}; "
                  f"set $TINYVIT_CKPT for another): training "
                  f"vit-cifar-nano for {NANO_EPOCHS} epochs on CIFAR-10 into {out} (about 9 "
                  f"minutes on 2 cores; reused next time)")
            ds = cifar10()
            ds["mean"], ds["std"] = train.channel_stats(ds["train"][0])
            train.train("vit-cifar-nano", ds,
                        recipe_for("vit-cifar-nano", epochs=NANO_EPOCHS, warmup=1.0), out,
                        resume=True)
    model, params, meta = checkpoint.load_model(path)
    if family(model.cfg) != "vit":
        raise ValueError(f"{path}: expected a ViT checkpoint, found {model.name}")
    print(f"({model.name} was trained on {meta['train_size']:,} images)")
    return model, params, meta


# ---------------------------------------------------------------------------------------------
# Training given parameters, and the knobs
# ---------------------------------------------------------------------------------------------


def with_stats(ds):
    """ds with the training images' channel mean and std (what training normalises with)."""
    from tinyvit.run.train import channel_stats

    ds["mean"], ds["std"] = channel_stats(ds["train"][0])
    return ds


def fit(model, params, ds, recipe=None, seed=0, max_steps=None, test_every=1, log=print,
        **settings):
    """Train `params` of `model` on ds["train"] with `recipe` (default: the paper's, one epoch
    with one epoch of warmup; keywords change its settings: `fit(..., epochs=5, lr=3e-4)`);
    test on ds["test"] every `test_every` epochs and after the last (test_every=None: only
    after the last; other rows' test_acc is None).

    Each epoch is `tinyvit.run.train.train_epoch`, the one the command line trains with:
    autograd gradient of the smoothed cross-entropy, the batch in shards, clipping, the
    recipe's optimiser and schedule, random crop + flip. `model` is a
    `tinyvit.run.models.Model` or anything with `.cfg` and `.apply(params, images, train,
    rng)`. `params` is not changed (a copy is trained).
    Returns (params, history): one dict per epoch (epoch, step, loss, test_acc, seconds).
    """
    import time

    import numpy as np

    from tinyvit import fast, optim
    from tinyvit.run.evaluate import evaluate
    from tinyvit.run.recipe import Recipe
    from tinyvit.run.train import Schedule, make_grad_fn, train_epoch
    from tinyvit.tree import tree_map

    recipe = (recipe or Recipe(epochs=1, warmup=1.0)).replace(**settings)
    recipe.check_run(image_size=ds["train"][0].shape[1])
    state = dict(params=tree_map(np.copy, params), rng=np.random.default_rng(seed))
    state["opt"] = optim.init_optimizer(recipe.optimizer, state["params"])
    sched, grad_fn, history = Schedule.of(len(ds["train"][0]), recipe), make_grad_fn(
        model, recipe.smoothing), []
    with fast.twins():
        for epoch in range(recipe.epochs):
            t0 = time.perf_counter()
            loss, _, _, _ = train_epoch(state, ds, recipe, sched, grad_fn, epoch=epoch,
                                              max_steps=max_steps)
            last = epoch + 1 == recipe.epochs or (max_steps is not None
                                                  and state["opt"]["step"] >= max_steps)
            acc = (evaluate(model, state["params"], *ds["test"], ds["mean"], ds["std"],
                            tta=recipe.tta)[0]
                   if last or (test_every and (epoch + 1) % test_every == 0) else None)
            history.append(dict(epoch=epoch + 1, step=int(state["opt"]["step"]), loss=loss,
                                test_acc=acc, seconds=time.perf_counter() - t0))
            if acc is not None:
                log(f"  epoch {epoch + 1}/{recipe.epochs}: loss {loss:.3f}, test {acc:.1%} "
                    f"({history[-1]['seconds']:.0f} s)")
            if last:
                break
    return state["params"], history


KNOB_TRAIN, KNOB_TEST, KNOB_EPOCHS = 5000, 2000, 5  # about a minute per variant on 2 cores


def knob(question):
    """Print a knob's question: write your prediction down before running the next cell."""
    print(f"KNOB ({mode()} mode): {question}\n  -> predict first, then run.")


def knob_data(seed=0):
    """The knobs' data: KNOB_TRAIN class-balanced CIFAR-10 training images and KNOB_TEST test
    images, with their channel statistics (synthetic stand-ins in smoke mode)."""
    ds = cifar10()
    if not smoke():
        ds["train"] = data.balanced_subset(*ds["train"], KNOB_TRAIN, seed)
        ds["test"] = data.balanced_subset(*ds["test"], KNOB_TEST, seed)
    return with_stats(ds)


def knob_steps():
    """How long a knob's variant trains: KNOB_EPOCHS epochs (smoke mode: 2 steps of 64)."""
    return dict(epochs=1, max_steps=2, batch_size=64) if smoke() else dict(epochs=KNOB_EPOCHS)


def compare(runs, ds, title, lesson=None, name=None, **fit_args):
    """Train each variant {label: (model, params)} with the same recipe (`knob_steps`), print
    a table, chart test accuracy against epochs. Returns {label: (trained params, history)}."""
    import numpy as np

    from tinyvit.figures import charts

    steps = {**knob_steps(), **fit_args}
    print(f"{len(ds['train'][0]):,} training images, {len(ds['test'][0]):,} test images, "
          f"{steps['epochs']} epochs per variant")
    out = {}
    for label, (model, params) in runs.items():
        print(f"{label}:")
        out[label] = fit(model, params, ds, **steps)
    print(f"{'variant':34s} {'test accuracy':>13s} {'seconds':>8s}")
    for label, (_, h) in out.items():
        print(f"{label:34s} {h[-1]['test_acc']:13.1%} {sum(r['seconds'] for r in h):8.0f}")
    series = {label: (np.array([r["epoch"] for r in h]), np.array([r["test_acc"] for r in h]))
              for label, (_, h) in out.items()}
    epochs = next(iter(series.values()))[0]
    series["chance (10 classes)"] = (epochs, np.full(len(epochs), 0.1))
    chart = charts.line_chart(series, xlabel="epoch", ylabel="test accuracy",
                              title=f"{title} ({len(ds['train'][0]):,} training images, "
                                    f"{data_name()})",
                              ylim=(0, None), error_bars=False)
    if lesson:
        show(chart, name, lesson)
    return out


# ---------------------------------------------------------------------------------------------
# Trained models of every family (lesson 11)
# ---------------------------------------------------------------------------------------------

SMOKE_STAND_INS = {"vit-cifar-sl": "vit-cifar-nano", "vit-cifar-plain": "vit-cifar-nano",
                   "hybrid-small": "hybrid-tiny",
                   "cnn-air": "cnn-air-small"}  # smoke mode trains these small ones instead


def trained_model(name, lesson):
    """(model, params, meta) of the preset `name` trained with its own recipe.

    Smoke mode: `SMOKE_STAND_INS[name]` (or `name`; for a ViT stand-in `smoke_vit()`)
    trained for 3 steps on the synthetic data.
    Mini mode: `name` trained for 2 epochs on KNOB_TRAIN images (in the lesson's folder).
    Full: the first existing of `$TINYVIT_CKPT_<NAME>` (e.g. TINYVIT_CKPT_CNN_AIR),
    `runs/<name>/last.npz` (`python -m tinyvit train --model <name>` run in the repository),
    `lessons/output/trained/<name>/last.npz` and the model shipped in `tinyvit/pretrained/`
    (vit-cifar-nano and vit-cifar-sl);
    failing those, `name` trained with its recipe (`tinyvit.run.recipe.recipe_for`) into
    `lessons/output/trained/<name>` (resumed if interrupted, reused next time).
    """
    from tinyvit.run import checkpoint, train
    from tinyvit.run.recipe import recipe_for

    if smoke() or mini():
        ds = with_stats(knob_data()) if mini() else with_stats(cifar10())
        stand_ins = {k: smoke_vit() if v == "vit-cifar-nano" else v
                     for k, v in SMOKE_STAND_INS.items()}
        small = stand_ins.get(name, name) if smoke() else name
        out = output_dir(lesson) / f"{mode()}_{small}"
        recipe = recipe_for(small, epochs=1, batch_size=32) if smoke() else recipe_for(small,
                                                                                       epochs=2)
        train.train(small, ds, recipe, out, max_steps=3 if smoke() else None,
                    log=lambda *_: None)
        return checkpoint.load_model(out / "last.npz")
    env = os.environ.get("TINYVIT_CKPT_" + name.upper().replace("-", "_"))
    out = output_root() / "trained" / name
    found = [Path(env)] if env else []
    found += [REPO / "runs" / name / "last.npz", out / "last.npz"]
    found.append(REPO / "tinyvit" / "pretrained" / f"{name}.npz")  # shipped, if it is
    epochs = recipe_for(name).epochs
    path = next((p for p in found if p.is_file()
                 and checkpoint.load_extra(p).get("epoch", epochs) >= epochs), None)
    if path is None:
        print(f"no trained {name} found (looked for {', '.join(map(str, found))}): training it "
              f"with its recipe ({epochs} epochs) into {out}; resumed if interrupted")
        ds = with_stats(cifar10())
        train.train(name, ds, out=out, resume=True)
        path = out / "last.npz"
    model, params, meta = checkpoint.load_model(path)
    print(f"using {model.name} from {path} ({meta['train_size']:,} training images)")
    return model, params, meta
