"""The pre-training experiment: formula-driven pre-training of growing size, then CIFAR-10.

The paper's Fig. 3 in miniature (Sec. 4.3): does more pre-training data help the ViT more than
the CNN? Pre-training here is on images made by formula (`fractal:KxI`, FractalDB-style;
`tinyvit.data.fractal_sets`): each model of `models` pre-trains on every set of `plan` (a spec
and its epochs: images seen = K x I x epochs), then each pre-trained model, and the same model
from scratch (the zero point, 0 images seen), is fine-tuned (`train(..., init=...)`: the
encoder kept, a zero head) on class-balanced subsets of `labels` CIFAR-10 images, for every
seed. Fine-tuning follows the data-hunger sweep's length rule and recipes
(`sweep.epochs_for`, `sweep.run_recipe`), so the scratch runs are lesson 7's.

One JSON file holds it all, rewritten atomically after every finished run (a pre-training is
recorded as `pre/<model>/<images>/<seed>`, a fine-tuning as `<model>/<images>/<labels>/<seed>`),
so an interrupted sweep resumes where it stopped: recorded runs are skipped, and a run cut off
mid-way resumes from its last epoch's checkpoint (its folder in `sweep.workdir_for(results)`).
Processes may share a results file and workdir, one seed each (`sweep.claimed`).

Pre-training is the costly part (a million formula images per model), so by default only
seed 0 pre-trains (`pre_seeds`), and the fine-tunings of the other seeds start from it: their
spread over seeds is then the fine-tuning's (its class-balanced label subset, its
initialisation of the head and its batch order), not the pre-training's. Pass
`pre_seeds=seeds` for a pre-training per seed.
"""
import time
from pathlib import Path

import numpy as np

from ..data import fractal_sets
from ..support.progress import format_seconds
from . import sweep
from .train import train

PLAN = (("fractal:100x20", 5), ("fractal:1000x20", 5), ("fractal:1000x200", 5))  # 10k-1M seen
LABELS = (1000, 5000)
PRE_SEEDS = (0,)  # the seeds that pre-train; the other seeds fine-tune from the first of them


def images_seen(spec, epochs):
    """Formula images a pre-training on `spec` for `epochs` epochs sees: K x I x epochs."""
    f = fractal_sets.parse_spec(spec)
    return f["categories"] * f["instances"] * epochs


def pre_key(model, images, seed):
    return f"pre/{model}/{images}/{seed}"


def tune_key(model, images, labels, seed):
    """A fine-tuning's id: images 0 is the scratch run."""
    return f"{model}/{images}/{labels}/{seed}"


def pre_seed_for(seed, pre_seeds):
    """The pre-training a fine-tuning of `seed` starts from: its own seed's if that seed
    pre-trains, else the first pre-training seed's."""
    return seed if seed in pre_seeds else pre_seeds[0]


def check_setup(results, setup, path):
    """One-line ValueError when the file holds runs of another plan, labels or length rule."""
    old = {k: v for k, v in results.get("setup", {}).items() if k != "machine"}
    new = {k: v for k, v in setup.items() if k != "machine"}
    if results.get("runs") and old != new:
        raise ValueError(f"{path}: holds a pre-training sweep with other settings ({old}); "
                         f"use another results file")


def run_pretrain_sweep(cifar, results_path, models=sweep.DEFAULT_MODELS, plan=PLAN,
                       labels=LABELS, seeds=sweep.DEFAULT_SEEDS, pre_seeds=PRE_SEEDS,
                       max_steps=None, workdir=None, log=print):
    """Pre-train and fine-tune every (model, plan entry or scratch, labels, seed) not yet in
    `results_path`; returns the results dict. `cifar`: the fine-tuning data (`data.load_data`
    output). Seed by seed, scratch first, then each pre-training size with its fine-tunings,
    so a partial sweep already holds whole curves. `pre_seeds`: the seeds that pre-train (the
    others fine-tune from the first of them). `max_steps`: stop every run there (smoke)."""
    results_path = Path(results_path)
    if not pre_seeds:
        raise ValueError("`pre_seeds` is empty: expected at least one seed that pre-trains")
    workdir = Path(workdir or sweep.workdir_for(results_path))
    setup = dict(plan=[list(p) for p in plan], labels=list(labels),
                 min_images=sweep.MIN_IMAGES, min_epochs=sweep.MIN_EPOCHS,
                 pre_seeds=sorted(pre_seeds), machine=sweep.machine())
    pre_seeds = setup["pre_seeds"]
    check_setup(sweep.load_results(results_path), setup, results_path)
    starts = [(None, 0)] + [((spec, epochs), images_seen(spec, epochs)) for spec, epochs in plan]
    todo = [(seed, model, pre, images) for seed in seeds for pre, images in starts
            for model in models]
    log(progress_line(sweep.load_results(results_path), todo, labels, pre_seeds))
    for seed, model, pre, images in todo:
        t0, init, pre_seed = time.perf_counter(), None, pre_seed_for(seed, pre_seeds)
        if pre is not None:
            init = pretrained(results_path, setup, workdir, model, *pre, images, pre_seed,
                              max_steps, log)
            if init is None:
                continue  # another process pre-trains it now (and fine-tunes from it after)
        for n in labels:
            fine_tuned(cifar, results_path, setup, workdir, model, images, n, seed, init,
                       None if init is None else pre_seed, max_steps, log)
        if time.perf_counter() - t0 > 1:  # this process trained something (not all skipped)
            log(progress_line(sweep.load_results(results_path), todo, labels, pre_seeds))
    return sweep.load_results(results_path)


def images_left(results, todo, labels, pre_seeds=PRE_SEEDS):
    """[(model, "pre" | "tune", images to train)] of the runs of `todo` not yet recorded:
    a pre-training (once, however many seeds start from it) trains its images seen, a
    fine-tuning `epochs_for(n)` epochs of n."""
    runs, out, pres = results.get("runs", {}), [], set()
    for seed, model, pre, images in todo:
        key = pre_key(model, images, pre_seed_for(seed, pre_seeds))
        if pre is not None and key not in runs and key not in pres:
            pres.add(key)
            out.append((model, "pre", images))
        out += [(model, "tune", sweep.epochs_for(n) * n) for n in labels
                if tune_key(model, images, n, seed) not in runs]
    return out


def seconds_per_image(results):
    """{(model, "pre" | "tune"): training seconds per image} of the recorded runs."""
    spent = {}
    for key, r in results.get("runs", {}).items():
        kind = "pre" if key.startswith("pre/") else "tune"
        images = r["images"] if kind == "pre" else r["epochs"] * r["labels"]
        s, i = spent.get((r["model"], kind), (0.0, 0))
        spent[(r["model"], kind)] = (s + r["seconds"], i + images)
    return {k: s / i for k, (s, i) in spent.items() if i}


def progress_line(results, todo, labels, pre_seeds=PRE_SEEDS):
    """'pre-training sweep: 7 of 36 runs left, about 2:10:00 of training ...': the training
    time of the runs not yet recorded at the recorded runs' rates, each model's own ('?' until
    every model has a recorded run of each kind). Skipped and shared runs do not skew it: it
    reads the results file, not this process's clock."""
    left, rate = images_left(results, todo, labels, pre_seeds), seconds_per_image(results)
    total = len(images_left({}, todo, labels, pre_seeds))  # every run, none recorded
    if not left:
        return f"pre-training sweep: all {total} runs recorded"
    if any((m, kind) not in rate for m, kind, _ in left):
        eta = "?"
    else:
        eta = format_seconds(sum(rate[(m, kind)] * i for m, kind, i in left))
    return (f"pre-training sweep: {len(left)} of {total} runs left, about {eta} of training "
            f"at the recorded runs' rates (shared by the processes running it)")


def pretrained(results_path, setup, workdir, model, spec, epochs, images, seed, max_steps,
               log):
    """The checkpoint of `model` pre-trained on `spec` for `epochs` epochs with `seed`:
    trained (or resumed) unless recorded; None while another process trains it."""
    key = pre_key(model, images, seed)
    out = workdir / key
    if key in sweep.load_results(results_path).get("runs", {}):
        return out / "last.npz"
    with sweep.claimed(workdir, key) as mine:
        if not mine:
            return None
        t0 = time.perf_counter()
        f = fractal_sets.parse_spec(spec)
        hist = train(model, spec, sweep.run_recipe(model, f["categories"] * f["instances"],
                                                   epochs),
                     out, seed=seed, max_steps=max_steps, eval_every=epochs,
                     resume=max_steps is None, log=lambda *a: None)
        sweep.record(results_path, setup, key=key, run=dict(
            model=model, spec=spec, epochs=epochs, images=images, seed=seed,
            steps=hist[-1]["step"], held_out_acc=hist[-1]["test_acc"],
            seconds=round(sum(h["seconds"] for h in hist), 1)))
        log(f"{model} pre-trained on {spec} x {epochs} epochs ({images:,} images, seed {seed}):"
            f" held-out {hist[-1]['test_acc']:.1%}, {format_seconds(time.perf_counter() - t0)}")
    return out / "last.npz"


def fine_tuned(cifar, results_path, setup, workdir, model, images, n, seed, init, pre_seed,
               max_steps, log):
    """Fine-tune `model` from `init` (None: from scratch; else the pre-training of
    `pre_seed`) on n CIFAR-10 labels, unless recorded or claimed by another process."""
    key = tune_key(model, images, n, seed)
    if key in sweep.load_results(results_path).get("runs", {}):
        return
    with sweep.claimed(workdir, key) as mine:
        if not mine:
            return
        epochs = sweep.epochs_for(n)
        hist = train(model, sweep.subset_of(cifar, n, seed), sweep.run_recipe(model, n, epochs),
                     workdir / key, seed=seed, max_steps=max_steps, eval_every=epochs,
                     resume=max_steps is None, init=init, log=lambda *a: None)
        sweep.record(results_path, setup, key=key, run=dict(
            model=model, images=images, labels=n, seed=seed, epochs=epochs,
            steps=hist[-1]["step"], test_acc=hist[-1]["test_acc"],
            seconds=round(sum(h["seconds"] for h in hist), 1),
            **({} if init is None else dict(pre_seed=pre_seed))))
        start = ("from scratch" if init is None else
                 f"after {images:,} formula images (pre-training seed {pre_seed})")
        log(f"{model} on {n} labels {start} (seed {seed}): test {hist[-1]['test_acc']:.1%}")


# ---------------------------------------------------------------------------------------------
# Reading the results
# ---------------------------------------------------------------------------------------------


def as_sweep(results, labels):
    """The fine-tunings on `labels` CIFAR-10 images as a data-hunger sweep's results, with the
    formula images seen in pre-training as the "size" (0: scratch), so `sweep.summarize` and
    `sweep.paired_gaps` read them."""
    runs = {k: dict(model=r["model"], size=r["images"], seed=r["seed"], test_acc=r["test_acc"])
            for k, r in results.get("runs", {}).items()
            if not k.startswith("pre/") and r["labels"] == labels}
    return dict(runs=runs, setup=results.get("setup", {}))


def labels_run(results):
    """The CIFAR-10 label counts the results hold fine-tunings of, smallest first."""
    return sorted({r["labels"] for k, r in results.get("runs", {}).items()
                   if not k.startswith("pre/")})


def table_lines(results, models=None):
    """Printable rows per label count and start (scratch, then each pre-training size): mean
    +- std per model over seeds, and the first model's lead over each other model, paired by
    seed (`sweep.table_lines` of `as_sweep`)."""
    lines = []
    for n in labels_run(results):
        lines.append(f"fine-tuned on {n:,} CIFAR-10 labels; rows: formula images seen in "
                     f"pre-training (0 = from scratch)")
        lines += sweep.table_lines(as_sweep(results, n), models)
    return lines


def lead_ratios(results, a, b):
    """{labels: {images: lead / lead from scratch}}: how much of `a`'s lead over `b` (paired by
    seed) is left after each pre-training size (the issue's goal: 0.5 or less)."""
    out = {}
    for n in labels_run(results):
        gaps = sweep.paired_gaps(as_sweep(results, n), a, b)
        if 0 in gaps and gaps[0][0] != 0:
            out[n] = {images: g[0] / gaps[0][0] for images, g in gaps.items() if images}
    return out


def pretrain_lines(results):
    """Printable rows of the pre-trainings: model, images seen, held-out accuracy, time."""
    runs = sorted((r for k, r in results.get("runs", {}).items() if k.startswith("pre/")),
                  key=lambda r: (r["model"], r["images"], r["seed"]))
    return [f"{r['model']:16s} {r['spec']:>18s} x {r['epochs']} = {r['images']:>9,} images, "
            f"seed {r['seed']}: held-out {r['held_out_acc']:6.1%}, "
            f"{format_seconds(r['seconds'])}" for r in runs]


def scratch_x(results):
    """Where the charts' log x axis draws the scratch runs (0 images): a decade below the
    smallest pre-training."""
    seen = [r["images"] for r in results.get("runs", {}).values() if r.get("images")]
    return max(min(seen) // 10, 1) if seen else 1


def placed(series, x0):
    """The series of `sweep.summarize` / `gap_series` with the scratch point moved to x0."""
    return {name: (np.where(np.asarray(xs) == 0, x0, xs), *rest)
            for name, (xs, *rest) in series.items()}
