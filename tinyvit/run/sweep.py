"""The data-hunger experiment: CNN, ViT and hybrid trained on growing subsets of CIFAR-10.

The paper's Fig. 3 / Fig. 4: with little pre-training data, ResNets (strong inductive biases)
beat ViTs; as data grows, ViT catches up and overtakes. In miniature: train a small CNN, a small
ViT and a small hybrid (a CNN's feature map as the ViT's tokens, Sec. 3.1) on class-balanced
subsets of 1k ... 50k CIFAR-10 images, several seeds each, and plot test accuracy against
training-set size.

Length rule (`epochs_for`): every model gets the same number of epochs for a given size,
`clip(round(min_images / N), min_epochs, max_epochs)`: each run sees at least `min_images`
images and trains at least `min_epochs` epochs. The defaults (100k images, 10 epochs) give
1k: 100 epochs, 2.5k: 40, 5k: 20, 10k to 50k: 10, so the large sizes are not starved (a
fixed number of images seen per run would give 50k images only a few epochs, and a flat tail
there would say more about compute than about data). `benchmarks/sweep_cost.py` says what a
sweep will cost on this machine (docs/RESULTS.md, "The data-hunger sweep"). Each model
trains with its own recipe (`recipe.recipe_for`), its warmup stretched to the same fraction of
the run. Test accuracy is measured once, after the last epoch. (`tinyvit.run.ladder` runs the
same sweep with each run's length chosen on a validation split instead of by this rule.)

Results go to one JSON file, updated atomically after every finished run, so an interrupted
sweep resumes where it stopped (`run_sweep(..., results_path)` skips runs already recorded),
and sweeps of different seeds may run side by side into the same file (each run is merged
into what the file holds when it finishes).
"""
import contextlib
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

from .. import data
from ..configs import family
from ..support.files import atomic_write
from ..support.progress import format_seconds
from .recipe import recipe_for
from .train import channel_stats, train

DEFAULT_SIZES = (1000, 2500, 5000, 10000, 25000, 50000)
DEFAULT_MODELS = ("cnn-air-small", "vit-cifar-nano", "hybrid-tiny")
DEFAULT_SEEDS = (0, 1, 2)
FAMILY_ORDER = ("cnn", "vit", "hybrid")  # the tables' default column order
MIN_IMAGES = 100_000  # every run sees at least this many images ...
MIN_EPOCHS = 10  # ... and trains at least this many epochs (cnn-air's recipe on 50k images)


def epochs_for(n, min_images=MIN_IMAGES, min_epochs=MIN_EPOCHS, max_epochs=200):
    """The length rule: epochs for a training set of n images (the same for every model)."""
    return int(min(max(round(min_images / n), min_epochs), max_epochs))


def run_recipe(model, n, epochs, batch_size=None):
    """The model's recipe for `epochs` epochs on n images: its batch size (or `batch_size`),
    at most n, and its warmup the same fraction of the run as in the recipe."""
    r = recipe_for(model)
    return r.replace(epochs=epochs, batch_size=min(batch_size or r.batch_size, n),
                     warmup=r.warmup * epochs / r.epochs)


def rule_text(setup):
    """'at least 100,000 images and 10 epochs per run' (or an older sweep's budget, or a ladder
    sweep's: `tinyvit.run.ladder`)."""
    if "ladder" in setup:
        return (f"length chosen per run on a {setup['val_fraction']:.0%} validation split, "
                f"{min(setup['ladder']):,} to {max(setup['ladder']):,} images seen")
    if "min_images" in setup:
        return (f"at least {setup['min_images']:,} images and {setup['min_epochs']} epochs "
                f"per run")
    if "budget_images" in setup:
        return f"{setup['budget_images']:,} images seen per run (at least 4 epochs)"
    return "length rule not recorded"


def run_key(model, size, seed):
    """The id of one run in the results file."""
    return f"{model}/{size}/{seed}"


def load_results(path):
    """The results dict stored at `path` ({"runs": {}} when there is none yet)."""
    path = Path(path)
    if not path.exists():
        return {"runs": {}}
    try:
        return json.loads(data.read_text(path))  # a regular file only
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not a valid results file ({e})") from None


def save_results(path, results):
    """Write the results JSON atomically (temp file + rename)."""
    with atomic_write(path, "w") as f:
        json.dump(results, f, indent=1, sort_keys=True)


def machine():
    """A one-line description of this machine (stored with the results)."""
    return f"{platform.machine()} {platform.system()}, {os.cpu_count()} cores, " \
           f"Python {platform.python_version()}, NumPy {np.__version__}"


def workdir_for(results_path):
    """The run folders of the sweep recorded in `results_path`: beside it, named after it, so
    sweeps with other rules (each in its own results file) never resume each other's runs."""
    results_path = Path(results_path)
    return results_path.with_name(f"{results_path.stem}_runs")


def run_sweep(ds, results_path, models=DEFAULT_MODELS, sizes=DEFAULT_SIZES,
              seeds=DEFAULT_SEEDS, min_images=MIN_IMAGES, min_epochs=MIN_EPOCHS, batch_size=None,
              max_steps=None, workdir=None, log=print):
    """Train every (model, size, seed) not yet in `results_path`; returns the results dict.

    `ds` is a data dict (`data.load_data` output). `batch_size` None: each model's recipe's.
    Each run's final test accuracy, epochs, steps and seconds are recorded as soon as it
    finishes. Seeds run one after another
    (every size of seed 0 first), so a partly finished sweep already has a whole curve.
    """
    results = load_results(results_path)
    setup = dict(min_images=min_images, min_epochs=min_epochs, batch_size=batch_size,
                 machine=machine())
    old = {k: v for k, v in results.get("setup", {}).items() if k != "machine"}
    if results.get("runs") and old != {k: v for k, v in setup.items() if k != "machine"}:
        # runs of one file must share the length rule
        raise ValueError(f"{results_path}: holds a sweep with other settings ({old}); "
                         f"use another results file")
    todo = [(m, n, s) for s in seeds for n in sizes for m in models
            if run_key(m, n, s) not in results.get("runs", {})]
    log(f"data-hunger sweep: {len(todo)} of {len(models) * len(sizes) * len(seeds)} runs to do")
    t_start = time.perf_counter()
    for i, (model, n, seed) in enumerate(todo):
        if run_key(model, n, seed) in load_results(results_path).get("runs", {}):
            continue  # a sweep sharing this results file has done it meanwhile
        with claimed(workdir, run_key(model, n, seed)) as mine:
            if not mine:
                continue  # a sweep sharing this workdir is training it now
            results = run_one(ds, results_path, setup, model, n, seed, min_images, min_epochs,
                              batch_size, max_steps, workdir, log)
        done = time.perf_counter() - t_start
        eta = done / (i + 1) * (len(todo) - i - 1)
        log(f"[{i + 1}/{len(todo)}] sweep ETA {format_seconds(eta)}")
    return load_results(results_path)


@contextlib.contextmanager
def claimed(workdir, key):
    """True while this process holds the claim on run `key` in `workdir` (a file naming its
    PID, created exclusively), False when a live process holds it. Without a workdir every
    run is this process's. A claim whose process has died is taken over."""
    if workdir is None:
        yield True
        return
    path = Path(workdir) / f"{key}.claim"
    path.parent.mkdir(parents=True, exist_ok=True)
    for _ in range(2):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            if _alive(path):
                yield False
                return
            path.unlink(missing_ok=True)  # its process is gone: take the run over
            continue
        with os.fdopen(fd, "w") as f:
            f.write(str(os.getpid()))
        try:
            yield True
        finally:
            path.unlink(missing_ok=True)
        return
    yield False


def _alive(claim):
    """Does the process named in a claim file still run?"""
    try:
        pid = int(data.read_text(claim) or 0)
        os.kill(pid, 0)
    except (ValueError, OSError):
        return False
    return pid != 0


def run_one(ds, results_path, setup, model, n, seed, min_images, min_epochs, batch_size,
            max_steps, workdir, log):
    """Train one (model, size, seed) of the sweep and record it; returns the results dict."""
    subset = subset_of(ds, n, seed)
    epochs = epochs_for(n, min_images, min_epochs)
    out = Path(workdir or tempfile.mkdtemp(prefix="sweep-")) / run_key(model, n, seed)
    t0 = time.perf_counter()
    hist = train(model, subset, run_recipe(model, n, epochs, batch_size), out, seed=seed,
                 max_steps=max_steps, log=lambda *a: None, eval_every=epochs,
                 resume=max_steps is None)
    results = record(results_path, setup, dict(
        model=model, size=n, seed=seed, epochs=epochs, steps=hist[-1]["step"],
        test_acc=hist[-1]["test_acc"], seconds=round(sum(h["seconds"] for h in hist), 1)))
    log(f"{model} on {n} images (seed {seed}, {epochs} epochs): "
        f"test {hist[-1]['test_acc']:.1%}, {format_seconds(time.perf_counter() - t0)}")
    return results


def subset_of(ds, n, seed):
    """The seeded class-balanced subset of n of ds's training images, with its own statistics
    (the same subset for every model of a seed)."""
    x, y = data.balanced_subset(*ds["train"], n, seed)
    mean, std = channel_stats(x)
    return dict(train=(x, y), test=ds["test"], classes=ds["classes"], mean=mean, std=std)


def record(results_path, setup, run, key=None):
    """Add one finished run to the results file under `key` (default: its `run_key`), re-read
    first: other sweeps may share it."""
    results = load_results(results_path)
    results["setup"] = setup
    key = key or run_key(run["model"], run["size"], run["seed"])
    results.setdefault("runs", {})[key] = run
    results["train_seconds"] = round(sum(r["seconds"] for r in results["runs"].values()), 1)
    save_results(results_path, results)
    return results


def summarize(results):
    """{model: (sizes, mean accuracy, std over seeds, seed counts)} for plotting."""
    table = {}
    for r in results["runs"].values():
        table.setdefault(r["model"], {}).setdefault(r["size"], []).append(r["test_acc"])
    out = {}
    for model, by_size in table.items():
        sizes = np.array(sorted(by_size))
        accs = [np.array(by_size[n]) for n in sizes]
        out[model] = (sizes, np.array([a.mean() for a in accs]),
                      np.array([a.std(ddof=1) if len(a) > 1 else 0.0 for a in accs]),
                      np.array([len(a) for a in accs]))
    return out


def seeds_label(counts):
    """'3 seeds', '1 seed' or '1-2 seeds': how many seeds a curve's points average."""
    lo, hi = int(min(counts)), int(max(counts))
    return f"{lo}-{hi} seeds" if lo != hi else f"{lo} seed{'s' if lo > 1 else ''}"


def paired_gaps(results, a, b):
    """{size: (mean, std, n)} of acc(a) - acc(b) over the seeds that ran both models.

    Pairing by seed compares runs on the same training subset, so the subset's luck (which
    moves both models alike) cancels out of the difference.
    """
    acc = {(r["model"], r["size"], r["seed"]): r["test_acc"] for r in results["runs"].values()}
    diffs = {}
    for (m, n, seed), v in acc.items():
        if m == a and (b, n, seed) in acc:
            diffs.setdefault(n, []).append(v - acc[(b, n, seed)])
    return {n: (float(np.mean(d)), float(np.std(d, ddof=1)) if len(d) > 1 else 0.0, len(d))
            for n, d in sorted(diffs.items())}


def ordered_models(results, models=None):
    """The models that have runs, in `models`' order (default: CNNs, ViTs, then hybrids)."""
    ran = {r["model"] for r in results["runs"].values()}
    order = models or sorted(ran, key=lambda m: (FAMILY_ORDER.index(family(m)), m))
    return [m for m in order if m in ran]


def gap_series(results, models=None):
    """{"over b (n seeds)": (sizes, mean, std)} of the first model's lead over each other model
    b, paired by seed, in accuracy points (`table_lines`' gap columns; charted by
    `tinyvit.figures.hunger.gap_chart`)."""
    models = ordered_models(results, models)
    if len(models) < 2:
        raise ValueError(f"gap chart: needs runs of two models or more, found {models}")
    series = {}
    for b in models[1:]:
        gaps = paired_gaps(results, models[0], b)
        if gaps:
            seeds = seeds_label([k for _, _, k in gaps.values()])
            series[f"over {b} ({seeds})"] = tuple(np.array(v, float) for v in zip(
                *((n, 100 * mu, 100 * sd) for n, (mu, sd, _) in gaps.items())))
    if not series:
        raise ValueError(f"gap chart: no size and seed ran both {models[0]} and another model")
    return series


def table_lines(results, models=None):
    """Printable rows: size, then mean +- std per model, and the paired gap of the first model
    over each of the others (`models`: their order; default: CNNs, ViTs, then hybrids)."""
    s = summarize(results)
    models = ordered_models(results, models)
    sizes = sorted({int(n) for m in models for n in s[m][0]})
    gaps = {b: paired_gaps(results, models[0], b) for b in models[1:]}
    head = f"{'images':>8s} " + " ".join(f"{m:>22s}" for m in models)
    head += "".join(f"  {'gap - ' + b:>22s}" for b in gaps)
    lines = [head + ("  (gap: the first model's lead, paired by seed)" if gaps else "")]
    for n in sizes:
        cells = []
        for m in models:
            ns, mu, sd, c = s[m]
            hit = np.nonzero(ns == n)[0]
            cells.append(f"{mu[hit[0]]:8.1%} ± {sd[hit[0]]:5.1%} (n={c[hit[0]]})" if len(hit)
                         else f"{'-':>22s}")
        gap_cells = [f"{100 * g[0]:+8.1f} ± {100 * g[1]:4.1f} pt (n={g[2]})" if g
                     else f"{'-':>22s}" for g in (by_size.get(n) for by_size in gaps.values())]
        lines.append(f"{n:8d} " + " ".join(f"{c:>22s}" for c in cells)
                     + "".join(f"  {c:>22s}" for c in gap_cells))
    return lines
