"""Small helpers shared by the lessons in this folder: smoke mode, where pictures go, sample data.

Lessons import it as `import lesson` (Python puts a script's own folder on the path, and a
notebook opened here runs in this folder).

* Smoke mode (`TINYVIT_SMOKE=1` or `--smoke` on the command line) makes every lesson run in
  seconds on tiny synthetic data; `tests/test_lessons.py` runs every lesson that way.
* `show(image, name)` saves a PIL image as PNG under the lesson's output folder
  (`lessons/output/<lesson>/`, or `$TINYVIT_OUT/<lesson>/`) and, inside a notebook,
  displays it inline.
* `show_code(f)` prints the source of the library function that defines a formula, and
  `show_twin(name)` says which fast twin training runs in its place (from `tinyvit.fast`).
* `cifar10(...)` loads real CIFAR-10: `$TINYVIT_LESSON_DATA` if set (any `--data` source),
  else `tinyvit.data.load_data("cifar10")`: the official download, or offline the local copy
  named by `$TINYVIT_CIFAR10_COPY`.
* `trained_vit(lesson)` finds (or, once, trains) the trained ViT that lessons 8 and 9 analyse.
"""
import inspect
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # lessons run from any folder without installing tinyvit
    sys.path.insert(0, str(REPO))

from tinyvit import data  # noqa: E402
from tinyvit.configs import DEFAULT_MODEL  # noqa: E402

CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
                   "ship", "truck"]


def smoke():
    """True when the lesson should run in seconds on tiny data."""
    return os.environ.get("TINYVIT_SMOKE", "") not in ("", "0") or "--smoke" in sys.argv


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
    """Save a PIL image as `<output_dir(lesson)>/<name>.png`; display it in a notebook."""
    path = output_dir(lesson) / f"{name}.png"
    image.save(path)
    if in_notebook():
        from IPython.display import display

        display(image)
    else:
        print(f"saved {path.relative_to(REPO) if path.is_relative_to(REPO) else path}")
    return path


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


NANO_EPOCHS = 3  # the fallback model of `trained_vit`: vit-cifar-nano, 3 epochs, ~9 minutes


def vit_checkpoints():
    """Where `trained_vit` looks for a trained ViT, in order (they need not exist)."""
    env = os.environ.get("TINYVIT_CKPT")
    return ([Path(env)] if env else []) + [
        REPO / "runs" / DEFAULT_MODEL / "last.npz",  # `python -m tinyvit train` in the repo
        output_root() / "05_training" / "run" / "last.npz",  # lesson 5
    ]


def trained_vit(lesson):
    """(model, params, meta) of a trained ViT for the analysis lessons (8 and 9).

    Smoke mode: `vit-cifar-nano` trained for 3 steps on the synthetic data. Otherwise the
    first existing checkpoint of `vit_checkpoints()`; failing that, `vit-cifar-nano` trained
    for NANO_EPOCHS epochs on CIFAR-10 into `lessons/output/trained_vit` (shared by lessons 8
    and 9, reused next time, resumed if interrupted).
    """
    from tinyvit.run import checkpoint, train

    if smoke():
        ds = cifar10()
        ds["mean"], ds["std"] = train.channel_stats(ds["train"][0])
        out = output_dir(lesson) / "smoke_vit"
        train.train("vit-cifar-nano", out=out, dataset=ds, epochs=1, batch_size=32, max_steps=3)
        return checkpoint.load_model(out / "last.npz")
    path = next((p for p in vit_checkpoints() if p.is_file()), None)
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
            train.train("vit-cifar-nano", out=out, dataset=ds, epochs=NANO_EPOCHS,
                        warmup=1.0, resume=True)
    model, params, meta = checkpoint.load_model(path)
    if "pos" not in params:
        raise ValueError(f"{path}: expected a ViT checkpoint, found {model.name}")
    epochs = checkpoint.load_extra(path)["epoch"]
    print(f"using {model.name} from {path} ({epochs} of {meta['hparams']['epochs']} epochs "
          f"trained, {meta['train_size']:,} training images)")
    return model, params, meta
