"""The data-hunger sweep without the compute confound: every run trains as long as its own
validation split says.

The fixed-length sweep (`tinyvit.run.sweep`) gives every model the same length rule, so a flat
curve may say "too few steps" as well as "too few images". Here, at each training-set size,
each model's length is chosen from a ladder of budgets (images seen: 25k, 50k, 100k, ...)
on a validation split of its own training subset, and only then is it tested:

1. The seeded class-balanced subset of n images (`sweep.subset_of`'s, the same one the
   fixed sweep trains on) is split, stratified by class, into a fit part and a validation
   part of `val_fraction` of it (`data.validation_split`, seeded by the run's seed).
2. Climb: for each rung, lowest first, a run of its own, with its own schedule (warmup and
   cosine or linear decay stretched to that length, `sweep.run_recipe`), trains on the fit
   part and is evaluated on the validation part. One long run with checkpoints at the rungs
   would be cheaper, but its checkpoints would be taken mid-schedule, at a high learning rate,
   so each rung would look worse than a run of that length and the choice would lean to the
   top rung. The climb stops once `patience` rungs in a row fail to beat the best validation
   accuracy so far (or at the top of the ladder). Since each rung doubles the last, stopping
   early saves most of the cost: with `patience` 2 a climb costs about seven to eight times
   its chosen rung (less where the ladder's top cuts it short).
3. Choose the rung of the best validation accuracy (ties: the shorter one). The test set is
   never handed to steps 1-3: they see only the training subset.
   Climbing is most of the cost, so by default only seed 0 climbs (`climb_seeds`): the other
   seeds take the length its climb chose at that size and go straight to step 4, on their
   own subset. The length is then chosen once per (model, size), like any hyperparameter
   tuned on one seed, and the spread over seeds is the refits'. `climb_seeds=seeds` climbs
   for every seed.
4. Refit: train on the whole subset (fit + validation images) for the chosen number of
   images seen, with that length's schedule, and test it once on the test set. So a point at
   n images is trained on n images, like the fixed sweep's point it is compared with.

A budget is a number of images seen; a run of it on m images trains
`max(1, round(images / m))` epochs (at a size, rungs that round to the same epochs are one
rung). The record keeps the images each run really saw (whole batches per epoch).

Resumable like the fixed sweep: every finished rung and every finished (model, size, seed)
is written to the results file at once (`rungs/...` and `runs/...`; a rerun skips them and a
half-trained rung resumes from its checkpoint in `sweep.workdir_for(results)`), and processes
may share a results file and workdir, each claiming a whole (model, size, seed) ladder
(`sweep.claimed`). The `runs` entries have the fixed sweep's fields (model, size, seed,
test_acc, ...), so `sweep.table_lines`, `summarize` and the hunger charts read them as they are.
"""
import time
from pathlib import Path
from typing import NamedTuple

from .. import data
from ..support.progress import format_seconds
from . import speed, sweep
from .train import channel_stats, train

LADDER = (25_000, 50_000, 100_000, 200_000, 400_000, 800_000, 1_600_000)  # images seen
VAL_FRACTION = 0.2  # of each training subset, held out to choose the length
# Rungs in a row without a better validation accuracy before the climb stops. Two, because a
# small validation split is noisy (200 images at 1k: a standard error of about 3 points), so
# one rung that fails to improve may be noise: vit-cifar-nano on 1k images scores 30.0% at 25k
# and at 50k images seen (fitting 41% of its training images at 25k), then 40.5% at 100k
# (lessons/results/data_hunger_ladder.json).
PATIENCE = 2
CLIMB_SEEDS = (0,)  # the seeds that climb; the others refit at their first climb's choice


class Rung(NamedTuple):
    """One budget at one training-set size: its nominal images seen, the epochs that are on
    m images, and the images those epochs really see."""

    images: int
    epochs: int
    seen: int


def epochs_of(images, m):
    """Epochs a budget of `images` images seen takes on m images (at least one)."""
    return max(1, round(images / m))


def seen_of(m, epochs, batch_size):
    """Images `epochs` epochs on m images see: whole batches only (`train.Schedule`)."""
    return epochs * max(m // batch_size, 1) * batch_size


def rungs_for(m, ladder, batch_size):
    """The ladder's rungs on m training images, lowest first, one per distinct epoch count."""
    out = []
    for images in sorted(ladder):
        epochs = epochs_of(images, m)
        if not out or epochs > out[-1].epochs:
            out.append(Rung(images, epochs, seen_of(m, epochs, batch_size)))
    return out


def chosen(climbed):
    """The climbed rung (a dict with val_acc and seen) of the best validation accuracy; of
    equal ones, the shortest."""
    return max(climbed, key=lambda r: (r["val_acc"], -r["seen"]))


def done_climbing(climbed, patience):
    """True when the last `patience` rungs climbed all failed to beat the best before them."""
    best = climbed.index(chosen(climbed))
    return len(climbed) - 1 - best >= patience


def rung_key(model, size, seed, images):
    return f"{sweep.run_key(model, size, seed)}/{images}"


def check_setup(results, setup, path):
    """One-line ValueError when the results file holds ladders of other settings."""
    old, new = ({k: v for k, v in s.items() if k != "machine"}
                for s in (results.get("setup", {}), setup))
    if (results.get("runs") or results.get("rungs")) and old != new:
        raise ValueError(f"{path}: holds a ladder sweep with other settings ({old}); use "
                         f"another results file")


def record_rung(results_path, setup, rung):
    """Add one climbed rung to the results file (re-read first: other sweeps may share it)."""
    results = sweep.load_results(results_path)
    results["setup"] = setup
    key = rung_key(rung["model"], rung["size"], rung["seed"], rung["images"])
    results.setdefault("rungs", {})[key] = rung
    sweep.save_results(results_path, results)


class Ladder(NamedTuple):
    """What every (model, size, seed) of one sweep shares."""

    results_path: Path
    setup: dict  # recorded in the results file; a rerun must match it
    workdir: Path  # the runs' folders (checkpoints) and claims
    ladder: tuple
    patience: int
    batch_size: int  # None: each model's recipe's
    climb_seeds: list  # the seeds that climb (the others take the first one's choice)
    log: object


def trained(lad, model, ds, epochs, out, seed):
    """Train `model` on ds["train"] for `epochs` epochs of its recipe, test on ds["test"]
    once at the end (resumed if a checkpoint is in `out`). Returns (the run's last metrics
    row, its training seconds: every epoch's, resumed ones too)."""
    n = len(ds["train"][0])
    hist = train(model, ds, sweep.run_recipe(model, n, epochs, lad.batch_size), out, seed=seed,
                 eval_every=epochs, resume=True, log=lambda *a: None)
    return hist[-1], round(sum(h["seconds"] for h in hist), 1)


def climb(lad, model, fit_val, size, seed):
    """Climb the ladder for `model` on fit_val (train: the fit part of the subset of `size`
    images, test: its validation part; the test set is not in it): one run per rung, lowest
    first, until `done_climbing`. Each rung is recorded as it finishes and taken from the
    record on a rerun. Returns the climbed rungs' records."""
    n_fit = len(fit_val["train"][0])
    batch = sweep.run_recipe(model, n_fit, 1, lad.batch_size).batch_size
    climbed = []
    for rung in rungs_for(n_fit, lad.ladder, batch):
        key = rung_key(model, size, seed, rung.images)
        rec = sweep.load_results(lad.results_path).get("rungs", {}).get(key)
        if rec is None:
            row, seconds = trained(lad, model, fit_val, rung.epochs, lad.workdir / key, seed)
            rec = dict(model=model, size=size, seed=seed, images=rung.images,
                       epochs=rung.epochs, seen=rung.seen, steps=row["step"],
                       val_acc=row["test_acc"], val_images=len(fit_val["test"][1]),
                       seconds=seconds)
            record_rung(lad.results_path, lad.setup, rec)
            lad.log(f"  {model} on {size} images (seed {seed}), rung {rung.images:,} images "
                    f"seen ({rung.epochs} epochs on {n_fit}): validation {rec['val_acc']:.1%}")
        climbed.append(rec)
        if done_climbing(climbed, lad.patience):
            break
    return climbed


def climb_seed_for(seed, climb_seeds):
    """The seed whose climb chooses `seed`'s length: its own if it climbs, else the first
    climbing seed's."""
    return seed if seed in climb_seeds else climb_seeds[0]


def ladder_one(lad, ds, model, n, seed, val_fraction):
    """Climb (if `seed` climbs; else take the choice of its climbing seed, which must be
    recorded), choose and refit one (model, size, seed); record it. Returns its record."""
    source = climb_seed_for(seed, lad.climb_seeds)
    x, y = data.balanced_subset(*ds["train"], n, source)
    (xf, yf), (xv, yv) = data.validation_split(x, y, val_fraction, source)
    if source == seed:
        fit_val = dict(train=(xf, yf), test=(xv, yv), classes=ds["classes"])
        fit_val["mean"], fit_val["std"] = channel_stats(xf)
        climbed = climb(lad, model, fit_val, n, seed)
        best = chosen(climbed)
    else:  # the climbing seed's choice, from its rungs (its run is recorded first)
        results = sweep.load_results(lad.results_path)
        picked = results["runs"][sweep.run_key(model, n, source)]["chosen_images"]
        climbed, best = [], results["rungs"][rung_key(model, n, source, picked)]
    top = best["images"] == rungs_for(len(xf), lad.ladder, 1)[-1].images
    whole = sweep.subset_of(ds, n, seed)  # the fit and validation images together
    batch = sweep.run_recipe(model, n, 1, lad.batch_size).batch_size
    epochs = epochs_of(best["seen"], n)
    out = lad.workdir / sweep.run_key(model, n, seed) / "refit"
    row, refit_seconds = trained(lad, model, whole, epochs, out, seed)
    climb_seconds = sum(r["seconds"] for r in climbed)
    run = dict(model=model, size=n, seed=seed, chosen_images=best["images"],
               chosen_val_acc=best["val_acc"], climb_seed=source, top_rung=top, epochs=epochs,
               seen=seen_of(n, epochs, batch), steps=row["step"], test_acc=row["test_acc"],
               rungs_climbed=len(climbed), climb_seconds=round(climb_seconds, 1),
               refit_seconds=round(refit_seconds, 1),
               seconds=round(climb_seconds + refit_seconds, 1))
    sweep.record(lad.results_path, lad.setup, run)
    by = "" if source == seed else f" by seed {source}'s climb"
    lad.log(f"{model} on {n} images (seed {seed}): chose {best['images']:,} images seen{by} "
            f"(validation {best['val_acc']:.1%}{', the top rung' if top else ''}); refit "
            f"{epochs} epochs on all {n}: test {row['test_acc']:.1%}")
    return run


def run_ladder_sweep(ds, results_path, models=sweep.DEFAULT_MODELS, sizes=sweep.DEFAULT_SIZES,
                     seeds=sweep.DEFAULT_SEEDS, ladder=LADDER, val_fraction=VAL_FRACTION,
                     patience=PATIENCE, batch_size=None, climb_seeds=CLIMB_SEEDS, workdir=None,
                     log=print):
    """Climb, choose and refit every (model, size, seed) not yet in `results_path`; returns
    the results dict. `ds`: a data dict (`data.load_data` output); its test set is used only
    by the refits. Seed by seed, so a partial sweep already holds whole curves. A seed not in
    `climb_seeds` refits at the length the first climbing seed chose (climbed first if need
    be)."""
    results_path = Path(results_path)
    if patience < 1 or not ladder or not climb_seeds:
        raise ValueError(f"`patience` {patience}, `ladder` {ladder}, `climb_seeds` "
                         f"{climb_seeds}: expected patience >= 1, at least one rung and at "
                         f"least one climbing seed")
    setup = dict(ladder=sorted(int(b) for b in ladder), val_fraction=val_fraction,
                 patience=patience, batch_size=batch_size, climb_seeds=sorted(climb_seeds),
                 machine=sweep.machine())
    check_setup(sweep.load_results(results_path), setup, results_path)
    lad = Ladder(results_path, setup, Path(workdir or sweep.workdir_for(results_path)),
                 tuple(setup["ladder"]), patience, batch_size, setup["climb_seeds"], log)
    todo = [(m, n, s) for s in seeds for n in sizes for m in models
            if sweep.run_key(m, n, s) not in sweep.load_results(results_path).get("runs", {})]
    log(f"ladder sweep: {len(todo)} of {len(models) * len(sizes) * len(seeds)} runs to do")
    t0, ran = time.perf_counter(), 0
    for i, (model, n, seed) in enumerate(todo):
        for s in dict.fromkeys((climb_seed_for(seed, lad.climb_seeds), seed)):  # climb first
            if sweep.run_key(model, n, s) in sweep.load_results(results_path).get("runs", {}):
                continue  # done (by a sweep sharing this results file, maybe)
            with sweep.claimed(lad.workdir, sweep.run_key(model, n, s)) as mine:
                if not mine:
                    break  # another process runs it; a refit waiting on its climb is its too
                ladder_one(lad, ds, model, n, s, val_fraction)
                ran += 1
        if ran:  # the rate of the ladders this process ran, not of those it skipped
            eta = (time.perf_counter() - t0) / ran * (len(todo) - i - 1)
            log(f"[{i + 1}/{len(todo)}] ladder sweep ETA {format_seconds(eta)} (at this "
                f"process's rate so far; climbs cost more than refits)")
    return sweep.load_results(results_path)


# ---------------------------------------------------------------------------------------------
# Reading the results
# ---------------------------------------------------------------------------------------------


def budget_text(images):
    """25000 -> '25k', 1600000 -> '1.6M', 640 -> '640'."""
    if images >= 1_000_000:
        return f"{images / 1e6:g}M"
    return f"{images / 1e3:g}k" if images >= 1000 else str(images)


def chosen_budgets(results):
    """{(model, size): 'text'}: the budgets chosen over the seeds ('200k', or '100k-200k'),
    a '+' after one that was the top rung (the ladder may have stopped it short)."""
    by = {}
    for r in results["runs"].values():
        by.setdefault((r["model"], r["size"]), []).append((r["chosen_images"], r["top_rung"]))
    out = {}
    for key, picks in by.items():
        lo, hi = min(picks), max(picks)
        text = [budget_text(b) + ("+" if top else "") for b, top in (lo, hi)]
        out[key] = text[0] if lo == hi else f"{text[0]}-{text[1]}"
    return out


def climb_series(results, model):
    """{"n images (k seeds)": (images seen, mean validation accuracy)} of `model`'s climbs:
    the rungs climbed at each size, averaged over the seeds that climbed them."""
    by = {}
    for r in results.get("rungs", {}).values():
        if r["model"] == model:
            by.setdefault(r["size"], {}).setdefault(r["images"], []).append(r["val_acc"])
    if not by:
        raise ValueError(f"climb chart: no rungs of {model} in the results")
    series = {}
    for n, rungs in sorted(by.items()):
        images = sorted(rungs)
        seeds = sweep.seeds_label([len(rungs[b]) for b in images])
        series[f"{n:,} images ({seeds})"] = (
            images, [sum(rungs[b]) / len(rungs[b]) for b in images])
    return series


# ---------------------------------------------------------------------------------------------
# What a sweep will cost
# ---------------------------------------------------------------------------------------------


def images_if_chosen(model, n, ladder, val_fraction, patience, budget, batch_size=None,
                     climbs=True):
    """Images one (model, size n, seed) ladder trains on if its climb chooses the rung of
    `budget` images seen (at n, the highest rung at or below it): every rung up to that one
    and `patience` more (the ladder allowing; none if not `climbs`: a seed that takes another
    seed's choice), then the refit at that budget on all n images."""
    n_val = round(val_fraction * n)
    batch = sweep.run_recipe(model, n - n_val, 1, batch_size).batch_size
    rungs = rungs_for(n - n_val, ladder, batch)
    k = max([i for i, r in enumerate(rungs) if r.images <= budget] or [0])
    refit_batch = sweep.run_recipe(model, n, 1, batch_size).batch_size
    refit = seen_of(n, epochs_of(rungs[k].seen, n), refit_batch)
    return sum(r.seen for r in rungs[:k + 1 + patience]) * climbs + refit


def measured_rates(models, batch_size=None, seconds=10.0, size=max(sweep.DEFAULT_SIZES)):
    """{model: training images per CPU-second of one thread} at its batch size on `size`
    images (`speed.images_per_second`, `speed.per_cpu_second`)."""
    return {m: speed.per_cpu_second(speed.images_per_second, m,
                                    sweep.run_recipe(m, size, 1, batch_size).batch_size,
                                    seconds)[1] for m in models}


def cost_lines(rates, sizes=sweep.DEFAULT_SIZES, seeds=len(sweep.DEFAULT_SEEDS), ladder=LADDER,
               val_fraction=VAL_FRACTION, patience=PATIENCE, batch_size=None,
               climb_seeds=len(CLIMB_SEEDS)):
    """Printable lines: the CPU-hours of a ladder sweep at `rates` ({model: training images per
    CPU-second}), per model from fewest (every climb chooses the lowest rung) to most (every
    climb goes to the top), beside the fixed sweep's length rule at the same rates; then the
    whole sweep's if every climb chose one budget, for each budget of the ladder (where the
    climbs stop is only known once they have run). Training steps only: evaluation is a small
    extra."""
    climb_seeds = min(climb_seeds, seeds)

    def hours(model, budget):
        return sum(images_if_chosen(model, n, ladder, val_fraction, patience, budget,
                                    batch_size, climbs) * k for n in sizes
                   for climbs, k in ((True, climb_seeds), (False, seeds - climb_seeds))
                   ) / rates[model] / 3600

    lines, fixed = [], 0.0
    for m, rate in rates.items():
        rule = sum(sweep.epochs_for(n) * n for n in sizes) * seeds / rate / 3600
        fixed += rule
        lines.append(f"{m:16s} {rate:5.0f} images per CPU-second: {hours(m, 0):5.1f} to "
                     f"{hours(m, max(ladder)):6.1f} CPU-hours for {seeds} seeds, {climb_seeds} "
                     f"climbing (the fixed "
                     f"rule: {rule:4.1f})")
    each = {b: sum(hours(m, b) for m in rates) for b in sorted(ladder)}
    lines.append(f"the ladder sweep ({len(rates)} models x {len(sizes)} sizes x {seeds} seeds), "
                 f"if every climb chose " + ", ".join(f"{budget_text(b)}: {h:.1f}"
                                                      for b, h in each.items())
                 + f" CPU-hours (the fixed length rule: {fixed:.1f}); on 2 cores, half that "
                   f"in hours; training steps only")
    return lines
