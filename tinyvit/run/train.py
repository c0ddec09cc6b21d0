"""Training: the paper's recipe in miniature, `python -m tinyvit train`.

Sec. 4.1 / Appendix B.1: AdamW (beta1 0.9, beta2 0.999, decoupled weight decay), linear
warmup then cosine decay, global-norm gradient clipping at 1, label smoothing; plus random
crop + flip augmentation, which small data sets need; and, when the recipe asks, the small-data
regularisers of DeiT and Compact Transformers on each batch (`regularised`: TrivialAugment or
RandAugment, random erasing, mixup or CutMix against soft targets) and a moving average of the
weights (`averaged`), which is then what is tested. Every setting is a field of a `Recipe`
(`tinyvit.run.recipe`, which also holds each model's own: the strong baselines take
airbench's, Nesterov SGD, a triangular schedule, smoothing 0.2, flip test-time augmentation).
A model with a whitening stem gets its fixed kernel from the training images before the first
step, and one with BatchNorm its population statistics before every evaluation and checkpoint
(`models.Model.from_data`, `.population_stats`), so a saved model is a pure function. The model runs its fast twins here (`tinyvit.fast`; the
same functions as the formulas, with hand VJPs). One run writes to `out`:

    last.npz        params + optimiser state + RNG state + step + the metrics of every epoch
                    (+ the weights' moving average), rewritten atomically after each tested
                    epoch (every epoch by default) and at least every minute (`run_epochs`)
    metrics.jsonl   one JSON object per epoch (loss, train/test accuracy, seconds, lr),
                    rewritten from the checkpoint after it is saved

The folder is locked while a run writes there, and a run already in it is never lost: it is
resumed, moved aside, or the new run is refused (`tinyvit.run.rundir`). Every setting is
checked first (`Recipe`, `tinyvit.run.validate`; a crop pad against the images' size), and
so are the data (`tinyvit.data.check_dataset`) and, on resume, every part of the checkpoint
against the run asked for.

Read top to bottom: the data, one optimisation step, starting or resuming a run, one epoch
(`train_epoch`, also what the sweeps and the lessons' `fit` train with), and `train`, which
strings them together.

Shape legend: B batch, H, W, C image, K classes.
"""
import itertools
import json
import math
import os
import time
from pathlib import Path
from typing import NamedTuple

import numpy as np
from autograd import grad_and_aux
from autograd.tracer import getval

from .. import device
from .. import data, fast, ops, optim
from ..data import fractal_sets
from ..configs import DEFAULT_MODEL, family
from ..support.errors import named
from ..support.progress import Progress, format_seconds
from ..tree import count_params
from . import checkpoint, models, rundata, rundir, signals, validate
from .evaluate import evaluate
from .recipe import Recipe, recipe_for
from .transfer import fine_tune_start, pretrained_model
from .rundata import build_for, data_name, digest, given_dataset

STATS_IMAGES = 2000  # training images for the whitening kernel and BatchNorm's statistics
CHECKPOINT_SECONDS = 60.0  # an epoch that is not tested is saved this long after the last save

SHARDS = fast.SHARDS  # shards of each batch, one thread each (tinyvit.fast.shards)
# Rows per chunk inside a shard for CNNs without BatchNorm (`chunk_rows`); TINYVIT_CHUNK=0 runs
# each shard whole.
CHUNK_ROWS = int(os.environ.get("TINYVIT_CHUNK") or 32)


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite."""


class Interrupted(KeyboardInterrupt):
    """Ctrl-C during training; the message says which checkpoint is kept."""


# ---------------------------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------------------------


MIN_STD = 1.0  # grey levels: a channel that (almost) never changes is centred, not blown up


def channel_stats(x):
    """Per-channel mean and std of uint8 images (N, H, W, C), in 0-255 units (std >= MIN_STD)."""
    flat = x.reshape(-1, x.shape[-1]).astype(np.float64)  # (N*H*W, C)
    return flat.mean(0).astype(np.float32), np.maximum(flat.std(0), MIN_STD).astype(np.float32)


def prepare(source, train_size=None, seed=0, data_dir=None):
    """Load a data set, take the seeded class-balanced subset, compute normalisation. A
    formula-driven set too large for memory streams (`rundata.load`): ds["train"] is its fixed
    sample, which the statistics come from, and ds["stream"] what the epochs draw from."""
    ds = rundata.load(source, data_dir=data_dir)
    x, y = ds["train"]
    if train_size is not None and "stream" in ds:
        raise ValueError(f"`train_size` {train_size}: `data` {source} is streamed whole "
                         f"({ds['images']:,} images); expected none (choose I in the spec)")
    if train_size is not None:
        x, y = data.balanced_subset(x, y, train_size, seed)
    mean, std = channel_stats(x)
    return dict(train=(x, y), test=ds["test"], classes=list(ds["classes"]), mean=mean, std=std,
                **{k: ds[k] for k in rundata.STREAM_KEYS if k in ds})


def train_images(ds):
    """How many training images an epoch passes over (a streamed set's K x I)."""
    return ds.get("images", len(ds["train"][0]))


# ---------------------------------------------------------------------------------------------
# One optimisation step
# ---------------------------------------------------------------------------------------------


def chunk_rows(model):
    """Rows per chunk of a shard (`fast.chunked`): `CHUNK_ROWS` for a CNN without BatchNorm,
    whose activations of a few dozen images stay in cache (docs/RESULTS.md, "Speed"); 0, whole shards,
    for BatchNorm (the chunk would become the batch it normalises over) and for ViTs and
    hybrids, which gained too little to change their runs' numbers."""
    return CHUNK_ROWS if family(model.cfg) == "cnn" and model.cfg.norm != "batch" else 0


def batch_loss(logits, y, smoothing):
    """The smoothed cross-entropy of a batch: y labels (B,), or the soft targets (B, K) of a
    mixed batch (mixup, CutMix: `ops.soft_cross_entropy`)."""
    if y.ndim == 2:
        return ops.soft_cross_entropy(logits, y, smoothing)
    return ops.cross_entropy(logits, y, smoothing)


def make_grad_fn(model, smoothing, shards=SHARDS):
    """grad_fn(params, x, y, rng) -> (grads, (loss, logits)) via autograd (`batch_loss`), the
    batch split into `shards` run side by side in threads, each as chunks of `chunk_rows(model)`
    rows (the same gradient up to float32 rounding)."""

    def loss_and_aux(params, x, y, rng):
        logits = model.apply(params, x, True, rng)  # (B, K)
        loss = batch_loss(logits, y, smoothing)
        return loss, (getval(loss), getval(logits))

    grad_fn = fast.chunked(grad_and_aux(loss_and_aux), chunk_rows(model))
    return fast.sharded(grad_fn, shards, dropout=model.cfg.dropout > 0)


def train_step(grad_fn, params, opt_state, x, y, rng, lr, weight_decay, clip,
               optimizer="adamw"):
    """Forward, backward, clip, one step of `optimizer` (AdamW, or Nesterov SGD: `optim.update`).
    Returns (params, opt_state, loss, logits, grad_norm)."""
    grads, (loss, logits) = grad_fn(params, x, y, rng)
    if not math.isfinite(float(loss)):
        raise TrainingDiverged(f"loss is {float(loss)}")
    grads, norm = optim.clip_by_global_norm(grads, clip) if clip else (grads, float("nan"))
    params, opt_state = optim.update(optimizer, params, grads, opt_state, lr,
                                     weight_decay=weight_decay)
    return params, opt_state, float(loss), logits, norm


# ---------------------------------------------------------------------------------------------
# Starting or resuming a run
# ---------------------------------------------------------------------------------------------


class Schedule(NamedTuple):
    """How many steps: per epoch, in all, of warmup; and the shape of the decay after it."""

    steps_per_epoch: int
    total_steps: int
    warmup_steps: int
    shape: str = "cosine"  # or "linear" (`optim.schedule`)

    @classmethod
    def of(cls, n_train, recipe):
        """The schedule of `recipe` over n_train training images."""
        per_epoch = max(n_train // recipe.batch_size, 1)
        total = per_epoch * recipe.epochs
        return cls(per_epoch, total, min(int(recipe.warmup * per_epoch), total - 1),
                   recipe.schedule)

    def lr(self, step, base_lr):
        return optim.schedule(self.shape, step, self.total_steps, base_lr, self.warmup_steps)


def run_metadata(net, ds, recipe, seed, data_source):
    """What a checkpoint records about its run (JSON-able, as it reads back)."""
    meta = dict(model=models.config_dict(net), classes=ds["classes"],
                mean=ds["mean"].tolist(), std=ds["std"].tolist(), hparams=recipe.stored(),
                train_size=train_images(ds), seed=seed, data=data_name(data_source),
                train_digest=ds.get("digest") or digest(*ds["train"]))
    return json.loads(json.dumps(meta))  # tuples become lists


def stats_images(ds, seed, n=STATS_IMAGES):
    """`n` training images drawn at random (the CIFAR copy is sorted by class), normalised: what
    the whitening kernel and BatchNorm's population statistics are computed from. Its own
    generator, so the training stream (and resuming) does not depend on it. (n, H, W, C)."""
    x = ds["train"][0]
    idx = np.sort(np.random.default_rng([seed, 1]).permutation(len(x))[:n])  # (n,)
    return data.normalize(x[idx], ds["mean"], ds["std"])


def start(net, seed, optimizer, images, params=None):
    """A fresh run: (params, opt_state, rng, epoch 0, empty history). `images`: normalised
    training images for a whitening stem's fixed kernel (`Model.from_data`). `params`: a
    fine-tuning run's (`transfer.fine_tune_start`), taken as they are: a pre-trained
    whitening kernel is kept, since the first learned convolution was trained on it."""
    rng = np.random.default_rng(seed)
    params = net.from_data(net.init(rng), images) if params is None else params
    return params, optim.init_optimizer(optimizer, params), rng, 0, []


def resume_from(folder, meta, sched, log):
    """The run saved in folder.ckpt, if it was trained with the same settings and can continue
    exactly: (params, opt_state, rng, epoch, history, ema or None); its log is rewritten from
    the checkpoint's history."""
    ckpt = folder.ckpt
    run = checkpoint.load_run(ckpt)
    changed = validate.settings_changed(run["meta"], meta)
    if changed:
        raise ValueError(f"{ckpt}: was trained with other settings ({'; '.join(changed[:3])}); "
                         f"`resume` needs the same ones")
    check_same_init(ckpt, run["meta"].get("init"), meta)
    epoch, step = run["epoch"], run["opt"]["step"]
    if step != epoch * sched.steps_per_epoch:
        raise ValueError(f"{ckpt}: stopped inside epoch {epoch} (step {step}, by `max_steps`?); "
                         f"resuming would not match an uninterrupted run: start it again "
                         f"with `replace`")
    history = run["history"] if run["history"] is not None else folder.read_log(epoch)
    folder.saved_epoch = epoch
    folder.write_log(history)
    log(f"resuming from {ckpt} at epoch {epoch}")
    return run["params"], run["opt"], run["rng"], epoch, history, run["ema"]


def check_same_init(ckpt, saved, meta):
    """Resuming continues from the run's own checkpoint: an `init` asked for (meta["init"])
    must be the file the run started from (by SHA-1); the run's record is kept in `meta`."""
    asked = meta.get("init")
    if saved is not None and not (isinstance(saved, dict) and isinstance(saved.get("sha1"), str)
                                  and isinstance(saved.get("path"), str)):
        raise ValueError(f"{ckpt}: meta init: expected its start's path and sha1, found "
                         f"{str(saved)[:60]}")
    if asked is not None and (saved or {}).get("sha1") != asked["sha1"]:
        began = f"fine-tuned from {saved['path']}" if saved else "trained from scratch"
        raise ValueError(f"{ckpt}: was {began}; `init` {asked['path']} is another start "
                         f"(resume with the same `init` or none)")
    if saved is not None:
        meta["init"] = saved


# ---------------------------------------------------------------------------------------------
# One epoch
# ---------------------------------------------------------------------------------------------


def no_report(step, message):
    """What `train_epoch` does after a step when nobody watches."""


def regularised(rng, xb, yb, recipe, classes):
    """The recipe's regularisers on a batch of uint8 images xb (B, H, W, C), cropped and
    flipped, in timm's order: augment, erasing, then mixup or CutMix. Every draw is from `rng`
    and a setting that is off draws nothing. -> (images, labels yb (B,) or soft targets (B, K)
    of `classes` classes when the batch is mixed)."""
    if recipe.augment == "randaugment":
        xb = data.rand_augment(rng, xb, recipe.randaug_n, recipe.randaug_m)
    elif recipe.augment == "trivialaugment":
        xb = data.trivial_augment(rng, xb)
    if recipe.erasing > 0:
        xb = data.random_erasing(rng, xb, p=recipe.erasing)
    if recipe.mixup > 0 or recipe.cutmix > 0:
        return data.mix_batch(rng, xb, data.one_hot(yb, classes), recipe.mixup, recipe.cutmix,
                              recipe.mix_switch, recipe.mix_prob)  # (B, H, W, C), (B, K)
    return xb, yb


def averaged(state, recipe, step):
    """After optimiser step `step` (from 0), state["ema"] := the recipe's moving average of
    state["params"] (`optim.ema_update`, its decay warmed up by `optim.ema_decay`)."""
    if recipe.ema > 0:
        optim.ema_update(state["ema"], state["params"], optim.ema_decay(step, recipe.ema))


def epoch_batches(rng, ds, batch_size, steps, epoch):
    """The `steps` batches of an epoch, uint8 images (B, H, W, C) and labels (B,): ds["train"]
    in an order drawn from `rng`, or a streamed set's batches of `epoch` (its own order,
    `fractal_sets.batches`)."""
    if "stream" in ds:
        return itertools.islice(fractal_sets.batches(ds["stream"], epoch, batch_size,
                                                     drop_last=True), steps)
    x_train, y_train = ds["train"]
    order = rng.permutation(len(x_train))
    return ((x_train[idx], y_train[idx])
            for idx in (order[i * batch_size:(i + 1) * batch_size] for i in range(steps)))


def train_epoch(state, ds, recipe, sched, grad_fn, *, epoch=0, augment=True, max_steps=None,
                xp=np, report=no_report):
    """Train one epoch of `recipe` on ds["train"], or a streamed set's epoch (`epoch_batches`),
    normalised with ds["mean"], ds["std"], in place of `state` (a dict: params, opt, rng; and
    ema, the weights' average, when the recipe keeps one: started from params if absent);
    stops early at step `max_steps`. After each step, report(step, message). Returns (mean
    loss, train accuracy against the unmixed labels, last lr, seconds)."""
    t0, losses, correct, seen, lr = time.perf_counter(), [], 0, 0, float("nan")
    if recipe.ema > 0 and state.get("ema") is None:
        state["ema"] = optim.init_ema(state["params"])
    classes = len(ds["classes"]) if recipe.mixup > 0 or recipe.cutmix > 0 else None
    for xb, yb in epoch_batches(state["rng"], ds, recipe.batch_size, sched.steps_per_epoch,
                                epoch):
        step = state["opt"]["step"]
        if max_steps is not None and step >= max_steps:
            break
        xb = (data.random_crop_flip(state["rng"], xb, recipe.crop_pad,
                                    mode=recipe.crop_mode) if augment else xb)
        xb, targets = regularised(state["rng"], xb, yb, recipe, classes)
        x = xp.asarray(data.normalize(xb, ds["mean"], ds["std"]))  # (B, H, W, C) float32
        lr = sched.lr(step, recipe.lr)
        try:
            state["params"], state["opt"], loss, logits, _ = train_step(
                grad_fn, state["params"], state["opt"], x, xp.asarray(targets),
                state["rng"], lr, recipe.weight_decay, recipe.clip, recipe.optimizer)
        except TrainingDiverged as e:
            raise TrainingDiverged(f"training stopped at epoch {epoch + 1}, step {step}: {e} "
                                   f"(try a lower `lr`)") from None
        averaged(state, recipe, step)
        losses.append(loss)
        correct += int((device.to_host(logits).argmax(1) == yb).sum())
        seen += len(yb)
        report(step + 1, f"epoch {epoch + 1}/{recipe.epochs} loss {loss:.3f} "
                         f"acc {correct / seen:.1%} {seen / (time.perf_counter() - t0):.0f} img/s")
    mean_loss = float(np.mean(losses)) if losses else float("nan")
    return mean_loss, correct / max(seen, 1), float(lr), time.perf_counter() - t0


# ---------------------------------------------------------------------------------------------
# The whole run
# ---------------------------------------------------------------------------------------------


def checked_arguments(model, recipe, out, **options):
    """The recipe to train with (the model's when None), after checking the arguments of
    `train` that need no data: one-line ValueErrors naming the parameter."""
    recipe = recipe if recipe is not None else recipe_for(model)
    if not isinstance(recipe, Recipe):
        raise ValueError(f"{named('recipe')}: expected a Recipe, found {type(recipe).__name__}")
    validate.check_options(**options)
    if isinstance(model, str):
        models.build(model)  # an unknown model name fails here, before any data is read
    if out is not None and not str(out).strip():
        raise ValueError(f"{named('out')} {str(out)!r}: expected a folder name")
    return recipe


def train(model=None, data="cifar10", recipe=None, out=None, *, data_dir=None,
          train_size=None, seed=0, augment=True, resume=False, replace=True, max_steps=None,
          eval_every=1, backend="numpy", log=print, progress_stream=None, on_start=None,
          init=None):
    """Train `model` on `data` with `recipe`; returns the list of per-epoch metrics dicts.

    `model`: a preset name (sized to the data's images and classes) or a `models.Model`
    (None: `init`'s model, else the default).
    `data`: a source for `tinyvit.data.load_data` ("cifar10", a folder, an archive; its
    `train_size` images, class-balanced, and `data_dir` for downloads and caches), or a dict
    already prepared (see `prepare`). `recipe`: a `Recipe` (default: the model's,
    `recipe_for`). `out`: the run's folder (default `runs/<model>`).
    `resume`: continue the run in `out` if it has a checkpoint (same settings required).
    A run already in `out` is otherwise moved to `out/previous-N/` (`replace`, said in the log)
    or, with replace=False, the new run is refused. `max_steps` stops early (tests, smoke
    runs). `eval_every`: test accuracy every this many epochs and after the last one (other
    rows have `test_acc` None; those epochs are saved only every CHECKPOINT_SECONDS).
    `backend`: "numpy" (CPU), "cupy" (GPU) or an array module; augmentation and checkpoints
    stay on the host, parameters, optimiser state and batches live on the device. Every
    option is checked first (one-line ValueErrors naming it).
    `on_start(folder, data)`: called once the run's folder is open and its data loaded (the
    command line draws a formula-driven set's categories there:
    `tinyvit.figures.fractal_grid.save_categories`).
    `init`: a checkpoint to fine-tune (any family; `transfer.fine_tune_start`): its encoder, a
    zero head for the data's classes, a fresh optimiser and schedule, the data's own mean and
    std; `model`, if given, must be its model. Not a setting of the `Recipe` (how a model
    trains) but where it starts, like `model`: recorded as meta["init"]; resuming keeps it.
    """
    if model is None:
        model = pretrained_model(init)[0] if init is not None else DEFAULT_MODEL
    recipe = checked_arguments(model, recipe, out, train_size=train_size, seed=seed,
                               max_steps=max_steps, eval_every=eval_every)
    name = model if isinstance(model, str) else model.name
    xp = device.use_backend(backend)
    given = isinstance(data, dict)
    with rundir.open_run(Path(out or f"runs/{name}"), resume, replace, log) as folder:
        ds = given_dataset(data) if given else prepare(data, train_size, seed, data_dir)
        began = (fine_tune_start(init, model, ds["train"][0], len(ds["classes"]))
                 if init is not None else None)
        net = build_for(began.model if began else model, ds, "(dataset)" if given else data,
                        recipe.batch_size)
        recipe.check_run(image_size=ds["train"][0].shape[1])
        sched = Schedule.of(train_images(ds), recipe)
        meta = run_metadata(net, ds, recipe, seed, "(dataset)" if given else data)
        if began:
            meta["init"] = began.record
            log(f"fine-tuning {began.record['model']} from {init} (pre-trained on "
                f"{began.record['data']}), a zero head of {len(ds['classes'])} classes")
        sample = stats_images(ds, seed)
        if on_start is not None:
            on_start(folder.path, "(dataset)" if given else data)
        params, opt_state, rng, start_epoch, history, ema = (
            resume_from(folder, meta, sched, log) if resume and folder.ckpt.exists()
            else (*start(net, seed, recipe.optimizer, sample, began and began.params), None))
        state = dict(params=device.to_device(params, xp), opt=device.to_device(opt_state, xp),
                     rng=rng, ema=device.to_device(ema, xp) if ema is not None else None)
        log(f"{net.name}: {count_params(params):,} parameters; {train_images(ds):,} "
            f"training images, {recipe.epochs} epochs x {sched.steps_per_epoch} steps of "
            f"{recipe.batch_size}")
        fast.keep_freed_memory()
        progress = Progress(sched.total_steps, "step ", progress_stream,
                            start_done=start_epoch * sched.steps_per_epoch)
        run = Run(meta, folder, progress, xp.asarray(sample), xp, augment, max_steps, eval_every)
        try:
            run_epochs(net, state, ds, recipe, sched, range(start_epoch, recipe.epochs), history,
                       run)
        except TrainingDiverged as e:
            progress.close()
            raise TrainingDiverged(f"{e}; {folder.last_checkpoint(good=True)}") from None
        except KeyboardInterrupt:
            progress.close()
            raise Interrupted(f"{signals.reason()}; {folder.last_checkpoint()}"
                              f"{' (continue with `resume`)' if folder.saved_epoch else ''}") \
                from None
    return history


def epoch_test_accuracy(net, params, ds, tta, progress):
    """Test accuracy after an epoch, shown as a progress line of its own in place of the
    steps' line `progress` (on a terminal, both are erased; the epoch's summary follows)."""
    progress.clear()
    tester = Progress(len(ds["test"][1]), "testing ", progress.stream)
    acc = evaluate(net, params, *ds["test"], ds["mean"], ds["std"], tta=tta, progress=tester)[0]
    tester.clear()
    return acc


class Run(NamedTuple):
    """What `run_epochs` needs of a run besides the model, its state, data and recipe."""

    meta: dict  # what each checkpoint records (`run_metadata`)
    folder: rundir.RunFolder
    progress: Progress
    stats: object  # normalised training images for BatchNorm's statistics (`stats_images`)
    xp: object  # the array module parameters and batches live in
    augment: bool
    max_steps: int
    eval_every: int


def run_epochs(net, state, ds, recipe, sched, epochs, history, run):
    """Train each of `epochs`, appending its row to `history`; test, save and report.

    Every `eval_every`-th epoch and the last are tested; an epoch is saved (checkpoint, then
    log) when it is tested or when CHECKPOINT_SECONDS have passed since the last save. Only a
    tested or saved model needs BatchNorm's population statistics, so only those epochs pay
    for their pass over `run.stats` (a forward pass over up to STATS_IMAGES images: for a
    small training set, a large share of an epoch). Training never reads them (it normalises
    by batch statistics; they get no gradient and no decay) and the pass sets them from the
    weights alone, so the training, every test and every checkpoint are the same whichever
    epochs are saved; resuming starts from the last saved epoch and repeats the same steps.
    """
    folder, progress, max_steps = run.folder, run.progress, run.max_steps
    grad_fn = make_grad_fn(net, recipe.smoothing)
    saved_at = time.perf_counter()
    with fast.twins():
        for epoch in epochs:
            loss, train_acc, lr, seconds = train_epoch(
                state, ds, recipe, sched, grad_fn, epoch=epoch, augment=run.augment,
                max_steps=max_steps, xp=run.xp, report=progress.update)
            last = epoch + 1 == recipe.epochs or (max_steps is not None
                                                  and state["opt"]["step"] >= max_steps)
            tested = last or (epoch + 1) % run.eval_every == 0
            save = tested or time.perf_counter() - saved_at >= CHECKPOINT_SECONDS
            if save:
                t0 = time.perf_counter()
                for key in ("params", "ema") if recipe.ema > 0 else ("params",):
                    state[key] = net.population_stats(state[key], run.stats)
                seconds += time.perf_counter() - t0  # part of training: a model needs them
            tested_weights = state["ema"] if recipe.ema > 0 else state["params"]
            test_acc = (epoch_test_accuracy(net, tested_weights, ds, recipe.tta, progress)
                        if tested else None)
            row = dict(epoch=epoch + 1, step=int(state["opt"]["step"]), lr=lr, loss=loss,
                       train_acc=train_acc, test_acc=test_acc, seconds=round(seconds, 2))
            history.append(row)
            if save:
                folder.save(state, epoch + 1, run.meta, history)
                saved_at = time.perf_counter()
            ema = " (EMA weights)" if recipe.ema > 0 else ""
            shown = f", test{ema} {test_acc:.1%}" if test_acc is not None else ""
            progress.close(f"epoch {epoch + 1}/{recipe.epochs}: loss {loss:.3f}, train "
                           f"{train_acc:.1%}{shown}, {format_seconds(seconds)}")
            if last:
                break
