"""The data-hunger experiment: ViT vs CNN trained on growing subsets of CIFAR-10.

The paper's Fig. 3 / Fig. 4: with little pre-training data, ResNets (strong inductive biases)
beat ViTs; as data grows, ViT catches up and overtakes. In miniature: train a small ViT and a
small CNN on class-balanced subsets of 1k ... 50k CIFAR-10 images, several seeds each, under the
same budget rule, and plot test accuracy against training-set size.

Budget rule (`epochs_for`): both models get the same number of epochs for a given size,
`clip(round(budget_images / N), min_epochs, max_epochs)`, so every run sees about
`budget_images` images (the same compute) and only the amount of distinct data changes. The
default budget of 200k images gives 1k: 200 epochs, 2.5k: 80, 5k: 40, 10k: 20, 25k: 8,
50k: 4 (about 1,500 steps of 128 each) — about 2 hours per seed for both models on one core
of a 2-core CPU. A budget too small for the models to converge hides the effect of data: the
project's first sweep, at 100k images (~780 steps), gave both models about the same 43-46%
from 2.5k to 10k images (lessons/results/). Test accuracy is measured once, after the last
epoch.

Results go to one JSON file, updated atomically after every finished run, so an interrupted
sweep resumes where it stopped (`run_sweep(..., results_path)` skips runs already recorded),
and sweeps of different seeds may run side by side into the same file (each run is merged
into what the file holds when it finishes).
"""
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

from .. import data
from ..figures import charts
from .files import atomic_write
from .progress import format_seconds
from .train import channel_stats, train

DEFAULT_SIZES = (1000, 2500, 5000, 10000, 25000, 50000)
DEFAULT_MODELS = ("vit-cifar-nano", "cnn-tiny")
DEFAULT_SEEDS = (0, 1, 2)


DEFAULT_BUDGET = 200_000


def epochs_for(n, budget_images=DEFAULT_BUDGET, min_epochs=4, max_epochs=200):
    """The budget rule: epochs for a training set of n images (same for every model)."""
    return int(min(max(round(budget_images / n), min_epochs), max_epochs))


def run_key(model, size, seed):
    """The id of one run in the results file."""
    return f"{model}/{size}/{seed}"


def load_results(path):
    """The results dict stored at `path` ({"runs": {}} when there is none yet)."""
    path = Path(path)
    if not path.exists():
        return {"runs": {}}
    try:
        return json.loads(path.read_text())
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


def run_sweep(ds, results_path, models=DEFAULT_MODELS, sizes=DEFAULT_SIZES,
              seeds=DEFAULT_SEEDS, budget_images=DEFAULT_BUDGET, batch_size=128, max_steps=None,
              workdir=None, log=print):
    """Train every (model, size, seed) not yet in `results_path`; returns the results dict.

    `ds` is a data dict (`data.load_data` output). Each run's final test accuracy, epochs,
    steps and seconds are recorded as soon as it finishes. Seeds run one after another
    (every size of seed 0 first), so a partly finished sweep already has a whole curve.
    """
    results = load_results(results_path)
    setup = dict(budget_images=budget_images, batch_size=batch_size, machine=machine())
    old = {k: v for k, v in results.get("setup", {}).items() if k in setup and k != "machine"}
    if any(old[k] != setup[k] for k in old):  # runs of one file must share the budget rule
        raise ValueError(f"{results_path}: holds a sweep with other settings ({old}); "
                         f"use another results file")
    todo = [(m, n, s) for s in seeds for n in sizes for m in models
            if run_key(m, n, s) not in results.get("runs", {})]
    log(f"data-hunger sweep: {len(todo)} of {len(models) * len(sizes) * len(seeds)} runs to do")
    t_start = time.perf_counter()
    for i, (model, n, seed) in enumerate(todo):
        if run_key(model, n, seed) in load_results(results_path).get("runs", {}):
            continue  # a sweep sharing this results file has done it meanwhile
        x, y = data.balanced_subset(*ds["train"], n, seed)
        mean, std = channel_stats(x)
        subset = dict(train=(x, y), test=ds["test"], classes=ds["classes"], mean=mean, std=std)
        epochs = epochs_for(n, budget_images)
        out = Path(workdir or tempfile.mkdtemp(prefix="sweep-")) / run_key(model, n, seed)
        t0 = time.perf_counter()
        hist = train(model, out=out, epochs=epochs, batch_size=min(batch_size, n),
                     seed=seed, dataset=subset, max_steps=max_steps, log=lambda *a: None,
                     eval_every=epochs)
        results = record(results_path, setup, dict(
            model=model, size=n, seed=seed, epochs=epochs, steps=hist[-1]["step"],
            test_acc=hist[-1]["test_acc"], seconds=round(time.perf_counter() - t0, 1)))
        done = time.perf_counter() - t_start
        eta = done / (i + 1) * (len(todo) - i - 1)
        log(f"[{i + 1}/{len(todo)}] {model} on {n} images (seed {seed}, {epochs} epochs): "
            f"test {hist[-1]['test_acc']:.1%}, {format_seconds(time.perf_counter() - t0)}; "
            f"sweep ETA {format_seconds(eta)}")
    return results


def record(results_path, setup, run):
    """Add one finished run to the results file (re-read first: other sweeps may share it)."""
    results = load_results(results_path)
    results["setup"] = setup
    results.setdefault("runs", {})[run_key(run["model"], run["size"], run["seed"])] = run
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


def chart(results, title=None):
    """Accuracy vs training-set size, mean +- std over seeds, log x (a PIL image)."""
    budget = results.get("setup", {}).get("budget_images")
    title = title or ("Data hunger on CIFAR-10 (JPEG copy)"
                      + (f", {budget // 1000}k images seen per run" if budget else ""))
    series = {f"{m} ({int(c.min())}-{int(c.max())} seeds)" if c.min() != c.max()
              else f"{m} ({int(c[0])} seed{'s' if c[0] > 1 else ''})": (n, mu, sd)
              for m, (n, mu, sd, c) in summarize(results).items()}
    return charts.line_chart(series, xlabel="training images", ylabel="test accuracy",
                             title=title, log_x=True, error_bars=True)


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


def table_lines(results):
    """Printable rows: size, then mean +- std per model (and their paired gap, for two)."""
    s = summarize(results)
    models = list(s)
    sizes = sorted({int(n) for m in models for n in s[m][0]})
    gaps = paired_gaps(results, *models) if len(models) == 2 else {}
    gap_head = f"  {'gap (paired by seed)':>22s}" if gaps else ""
    lines = [f"{'images':>8s} " + " ".join(f"{m:>22s}" for m in models) + gap_head]
    for n in sizes:
        cells = []
        for m in models:
            ns, mu, sd, c = s[m]
            hit = np.nonzero(ns == n)[0]
            cells.append(f"{mu[hit[0]]:8.1%} ± {sd[hit[0]]:5.1%} (n={c[hit[0]]})" if len(hit)
                         else f"{'-':>22s}")
        gap = ""
        if gaps:
            g = gaps.get(n)
            gap = (f"  {100 * g[0]:+8.1f} ± {100 * g[1]:4.1f} pt (n={g[2]})" if g
                   else f"  {'-':>22s}")
        lines.append(f"{n:8d} " + " ".join(f"{c:>22s}" for c in cells) + gap)
    return lines
