"""Training: the paper's recipe in miniature, `python -m tinyvit train`.

Sec. 4.1 / Appendix B.1: AdamW (beta1 0.9, beta2 0.999, decoupled weight decay), linear
warmup then cosine decay, global-norm gradient clipping at 1, label smoothing; plus random
crop + flip augmentation, which small data sets need. The strong baselines (`PRESET_RECIPES`)
take airbench's recipe instead: Nesterov SGD, a triangular schedule, smoothing 0.2, and
flip test-time augmentation. A model with a whitening stem gets its fixed kernel from the
training images before the first step, and one with BatchNorm its population statistics
before every evaluation and checkpoint (`models.Model.from_data`, `.population_stats`), so
a saved model is a pure function. The model runs its fast twins here (`tinyvit.fast`; the
same functions as the formulas, with hand VJPs). One run writes to `out`:

    last.npz        params + optimiser state + RNG state + step + the metrics of every epoch,
                    rewritten atomically each epoch
    metrics.jsonl   one JSON object per epoch (loss, train/test accuracy, seconds, lr),
                    rewritten from the checkpoint after it is saved

The folder is locked while a run writes there, and a run already in it is never lost: it is
resumed, moved aside, or the new run is refused (`tinyvit.run.rundir`). Every option is checked
first (`tinyvit.run.validate`), and so are the data (`tinyvit.data.check_dataset`) and, on
resume, every part of the checkpoint against the run asked for.

Read top to bottom: the recipe, one optimisation step, starting or resuming a run, one
epoch, and `train`, which strings them together.

Shape legend: B batch, H, W, C image, K classes.
"""
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
from ..configs import DEFAULT_MODEL, family
from ..tree import count_params
from . import checkpoint, models, rundir, validate
from .rundata import build_for, data_name, digest, given_dataset
from .evaluate import evaluate
from ..io.progress import Progress, format_seconds

# Defaults per model family, chosen on this project's 2-core CPU (see README "Results"): about
# an hour of training for vit-cifar-nano and half an hour for cnn-small. warmup is in epochs;
# crop_pad / crop_mode: random crops of the image padded by that many pixels of zeros
# ("constant") or of its mirror image ("reflect"); tta: test-time augmentation (`data.TTA`:
# "none"; "flip", the mirror images too; "flip-shift", and their one-pixel shifts).
PAPER = dict(optimizer="adamw", lr=1e-3, weight_decay=0.05, schedule="cosine", warmup=2.0,
             smoothing=0.1, clip=1.0, crop_pad=4, crop_mode="constant", tta="none")
AIRBENCH = dict(optimizer="sgd", lr=0.2, weight_decay=5e-4, schedule="linear", smoothing=0.2,
                clip=0.0, crop_pad=2, crop_mode="reflect", tta="flip")
RECIPES = {
    "vit": dict(PAPER, epochs=18, batch_size=128),
    "cnn": dict(PAPER, epochs=7, batch_size=128, lr=2e-3, warmup=1.0),
    "hybrid": dict(PAPER, epochs=13, batch_size=128),
}
# Presets with a recipe of their own (issue #13's strong baselines), over their family's:
# airbench's (Nesterov SGD, triangular lr peaking at 20% of the run, no clipping) for the CNNs;
# Nesterov SGD with cosine decay and clipping for the hybrids (beat AdamW in short trials,
# README "Strong baselines"); the paper's AdamW for the plain ViT, with the CNNs' lighter crops
# (+0.7 points over 22 epochs). hybrid-small and vit-cifar-plain train longer, to about an hour
# on the project's 2-core CPU, and both test with airbench's six views (+0.6 and +1.9 points
# over flip TTA on their final checkpoints; README).
AIR_CNN = dict(AIRBENCH, epochs=10, batch_size=256, warmup=2.0)
SGD_HYBRID = dict(AIRBENCH, epochs=13, lr=0.1, schedule="cosine", warmup=1.0, clip=1.0)
PRESET_RECIPES = {
    "cnn-air": AIR_CNN,
    "cnn-air-small": AIR_CNN,
    "hybrid-small": dict(SGD_HYBRID, epochs=20, tta="flip-shift"),
    "hybrid-tiny": SGD_HYBRID,
    "vit-cifar-plain": dict(epochs=22, crop_pad=2, crop_mode="reflect", tta="flip-shift"),
}
STATS_IMAGES = 2000  # training images for the whitening kernel and BatchNorm's statistics

SHARDS = fast.SHARDS  # shards of each batch, one thread each (tinyvit.fast.shards)
# Rows per chunk inside a shard for CNNs without BatchNorm (`chunk_rows`); TINYVIT_CHUNK=0 runs
# each shard whole.
CHUNK_ROWS = int(os.environ.get("TINYVIT_CHUNK") or 32)


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite."""


class Interrupted(KeyboardInterrupt):
    """Ctrl-C during training; the message says which checkpoint is kept."""


def recipe(model_name, **overrides):
    """The default hyper-parameters for a model (its family's `RECIPES`, then its own
    `PRESET_RECIPES`), with the given (non-None) overrides."""
    r = {**RECIPES[family(model_name)], **PRESET_RECIPES.get(model_name.lower(), {})}
    unknown = sorted(set(overrides) - set(r))
    if unknown:
        raise ValueError(f"train: unknown hyper-parameter {unknown[0]!r}; expected one of "
                         f"{', '.join(r)}")
    r.update({k: v for k, v in overrides.items() if v is not None})
    return r


# ---------------------------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------------------------


MIN_STD = 1.0  # grey levels: a channel that (almost) never changes is centred, not blown up


def channel_stats(x):
    """Per-channel mean and std of uint8 images (N, H, W, C), in 0-255 units (std >= MIN_STD)."""
    flat = x.reshape(-1, x.shape[-1]).astype(np.float64)  # (N*H*W, C)
    return flat.mean(0).astype(np.float32), np.maximum(flat.std(0), MIN_STD).astype(np.float32)


def prepare(source, train_size=None, seed=0, data_dir=None):
    """Load a data set, take the seeded class-balanced subset, compute normalisation."""
    ds = data.load_data(source, data_dir=data_dir)
    x, y = ds["train"]
    if train_size is not None:
        x, y = data.balanced_subset(x, y, train_size, seed)
    mean, std = channel_stats(x)
    return dict(train=(x, y), test=ds["test"], classes=list(ds["classes"]), mean=mean, std=std)


# ---------------------------------------------------------------------------------------------
# One optimisation step
# ---------------------------------------------------------------------------------------------


def chunk_rows(model):
    """Rows per chunk of a shard (`fast.chunked`): `CHUNK_ROWS` for a CNN without BatchNorm,
    whose activations of a few dozen images stay in cache (README, speed); 0, whole shards,
    for BatchNorm (the chunk would become the batch it normalises over) and for ViTs and
    hybrids, which gained too little to change their runs' numbers."""
    return CHUNK_ROWS if family(model.cfg) == "cnn" and model.cfg.norm != "batch" else 0


def make_grad_fn(model, smoothing, shards=SHARDS):
    """grad_fn(params, x, y, rng) -> (grads, (loss, logits)) via autograd, the batch split into
    `shards` run side by side in threads, each as chunks of `chunk_rows(model)` rows (the same
    gradient up to float32 rounding)."""

    def loss_and_aux(params, x, y, rng):
        logits = model.apply(params, x, True, rng)  # (B, K)
        loss = ops.cross_entropy(logits, y, smoothing)
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
    def of(cls, n_train, hp):
        per_epoch = max(n_train // hp["batch_size"], 1)
        total = per_epoch * hp["epochs"]
        return cls(per_epoch, total, min(int(hp["warmup"] * per_epoch), total - 1),
                   hp.get("schedule", "cosine"))

    def lr(self, step, base_lr):
        return optim.schedule(self.shape, step, self.total_steps, base_lr, self.warmup_steps)


def run_metadata(net, ds, hp, seed, data_source):
    """What a checkpoint records about its run (JSON-able, as it reads back)."""
    meta = dict(model=models.config_dict(net), classes=ds["classes"],
                mean=ds["mean"].tolist(), std=ds["std"].tolist(), hparams=hp,
                train_size=len(ds["train"][0]), train_digest=digest(*ds["train"]), seed=seed,
                data=data_name(data_source))
    return json.loads(json.dumps(meta))  # tuples become lists


def stats_images(ds, seed, n=STATS_IMAGES):
    """`n` training images drawn at random (the CIFAR copy is sorted by class), normalised: what
    the whitening kernel and BatchNorm's population statistics are computed from. Its own
    generator, so the training stream (and resuming) does not depend on it. (n, H, W, C)."""
    x = ds["train"][0]
    idx = np.sort(np.random.default_rng([seed, 1]).permutation(len(x))[:n])  # (n,)
    return data.normalize(x[idx], ds["mean"], ds["std"])


def start(net, seed, optimizer, images):
    """A fresh run: (params, opt_state, rng, epoch 0, empty history). `images`: normalised
    training images for a whitening stem's fixed kernel (`Model.from_data`)."""
    rng = np.random.default_rng(seed)
    params = net.from_data(net.init(rng), images)
    return params, optim.init_optimizer(optimizer, params), rng, 0, []


def resume_from(folder, meta, sched, log):
    """The run saved in folder.ckpt, if it was trained with the same settings and can continue
    exactly; its log is rewritten from the checkpoint's history."""
    ckpt = folder.ckpt
    run = checkpoint.load_run(ckpt)
    changed = validate.settings_changed(run["meta"], meta)
    if changed:
        raise ValueError(f"{ckpt}: was trained with other settings ({'; '.join(changed[:3])}); "
                         f"`resume` needs the same ones")
    epoch, step = run["epoch"], run["opt"]["step"]
    if step != epoch * sched.steps_per_epoch:
        raise ValueError(f"{ckpt}: stopped inside epoch {epoch} (step {step}, by `max_steps`?); "
                         f"resuming would not match an uninterrupted run: start it again "
                         f"with `replace`")
    history = run["history"] if run["history"] is not None else folder.read_log(epoch)
    folder.saved_epoch = epoch
    folder.write_log(history)
    log(f"resuming from {ckpt} at epoch {epoch}")
    return run["params"], run["opt"], run["rng"], epoch, history


# ---------------------------------------------------------------------------------------------
# One epoch
# ---------------------------------------------------------------------------------------------


def train_epoch(state, epoch, ctx):
    """Train one epoch in place of `state` (a dict); returns (mean loss, train acc, lr, seconds)."""
    hp, sched, xp, (x_train, y_train) = ctx["hp"], ctx["schedule"], ctx["xp"], ctx["train"]
    t0, losses, correct, seen, lr = time.perf_counter(), [], 0, 0, float("nan")
    order = state["rng"].permutation(len(x_train))
    for i in range(sched.steps_per_epoch):
        step = state["opt"]["step"]
        if ctx["max_steps"] is not None and step >= ctx["max_steps"]:
            break
        idx = order[i * hp["batch_size"]:(i + 1) * hp["batch_size"]]  # (B,)
        xb = (data.random_crop_flip(state["rng"], x_train[idx], hp["crop_pad"],
                                    mode=hp["crop_mode"]) if ctx["augment"] else x_train[idx])
        x = xp.asarray(data.normalize(xb, ctx["mean"], ctx["std"]))  # (B, H, W, C) float32
        lr = sched.lr(step, hp["lr"])
        try:
            state["params"], state["opt"], loss, logits, _ = train_step(
                ctx["grad_fn"], state["params"], state["opt"], x, xp.asarray(y_train[idx]),
                state["rng"], lr, hp["weight_decay"], hp["clip"], hp["optimizer"])
        except TrainingDiverged as e:
            ctx["progress"].close()
            raise TrainingDiverged(f"training stopped at epoch {epoch + 1}, step {step}: "
                                   f"{e} (try a lower `lr`); "
                                   f"{ctx['folder'].last_checkpoint(good=True)}") from None
        losses.append(loss)
        correct += int((device.to_host(logits).argmax(1) == y_train[idx]).sum())
        seen += len(idx)
        ctx["progress"].update(step + 1, f"epoch {epoch + 1}/{hp['epochs']} loss {loss:.3f} "
                                         f"acc {correct / seen:.1%} "
                                         f"{seen / (time.perf_counter() - t0):.0f} img/s")
    mean_loss = float(np.mean(losses)) if losses else float("nan")
    return mean_loss, correct / max(seen, 1), float(lr), time.perf_counter() - t0


# ---------------------------------------------------------------------------------------------
# The whole run
# ---------------------------------------------------------------------------------------------


def train(model=DEFAULT_MODEL, data_source="cifar10", out=None, *, dataset=None, data_dir=None,
          train_size=None, seed=0, augment=True, resume=False, replace=True, max_steps=None,
          eval_every=1, backend="numpy", log=print, progress_stream=None, **hparams):
    """Train `model` on `data_source`; returns the list of per-epoch metrics dicts.

    hparams: epochs, batch_size, optimizer, lr, weight_decay, schedule, warmup (in epochs),
    smoothing, clip, crop_pad, crop_mode, tta; missing ones come from `recipe(model)`.
    `out`: the run's folder (default `runs/<model>`).
    `dataset` may pass an already prepared dict (see `prepare`) instead of loading.
    `resume`: continue the run in `out` if it has a checkpoint (same settings required).
    A run already in `out` is otherwise moved to `out/previous-N/` (`replace`, said in the log)
    or, with replace=False, the new run is refused. `max_steps` stops early (tests, smoke
    runs). `eval_every`: test accuracy every this many epochs and after the last one (other
    rows have `test_acc` None). `backend`: "numpy" (CPU), "cupy" (GPU) or an array module;
    augmentation and checkpoints stay on the host, parameters, optimiser state and batches
    live on the device. Every option is checked first (one-line ValueErrors naming it).
    """
    hp = recipe(model, **hparams)
    validate.check_options(train_size=train_size, seed=seed, max_steps=max_steps,
                           eval_every=eval_every, **hp)
    models.build(model)  # an unknown model name fails here, before any data is read
    xp = device.use_backend(backend)
    with rundir.open_run(Path(out or f"runs/{model}"), resume, replace, log) as folder:
        ds = given_dataset(dataset) if dataset is not None else prepare(
            data_source, train_size, seed, data_dir)
        net = build_for(model, ds, data_source if dataset is None else "(dataset)")
        sched = Schedule.of(len(ds["train"][0]), hp)
        meta = run_metadata(net, ds, hp, seed, data_source)
        sample = stats_images(ds, seed)
        if resume and folder.ckpt.exists():
            params, opt_state, rng, start_epoch, history = resume_from(folder, meta, sched, log)
        else:
            params, opt_state, rng, start_epoch, history = start(net, seed, hp["optimizer"],
                                                                 sample)
        state = dict(params=device.to_device(params, xp), opt=device.to_device(opt_state, xp),
                     rng=rng)
        log(f"{net.name}: {count_params(params):,} parameters; {len(ds['train'][0]):,} "
            f"training images, {hp['epochs']} epochs x {sched.steps_per_epoch} steps of "
            f"{hp['batch_size']}")
        fast.keep_freed_memory()
        progress = Progress(sched.total_steps, "step ", progress_stream,
                            start_done=start_epoch * sched.steps_per_epoch)
        ctx = dict(hp=hp, schedule=sched, xp=xp, train=ds["train"], mean=ds["mean"],
                   std=ds["std"], augment=augment, max_steps=max_steps,
                   stats_images=xp.asarray(sample),
                   grad_fn=make_grad_fn(net, hp["smoothing"]), progress=progress, folder=folder)
        try:
            run_epochs(net, state, ctx, ds, start_epoch, history, meta, eval_every)
        except KeyboardInterrupt:
            progress.close()
            raise Interrupted(f"interrupted; {folder.last_checkpoint()}"
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


def run_epochs(net, state, ctx, ds, start_epoch, history, meta, eval_every):
    """Train, test, save and report epoch after epoch, appending to `history`."""
    hp, max_steps, folder, progress = ctx["hp"], ctx["max_steps"], ctx["folder"], ctx["progress"]
    with fast.twins():
        for epoch in range(start_epoch, hp["epochs"]):
            loss, train_acc, lr, seconds = train_epoch(state, epoch, ctx)
            t0 = time.perf_counter()
            state["params"] = net.population_stats(state["params"], ctx["stats_images"])
            seconds += time.perf_counter() - t0  # part of training: a model needs them
            last = epoch + 1 == hp["epochs"] or (max_steps is not None
                                                 and state["opt"]["step"] >= max_steps)
            test_acc = (epoch_test_accuracy(net, state["params"], ds, hp["tta"], progress)
                        if last or (epoch + 1) % eval_every == 0 else None)
            row = dict(epoch=epoch + 1, step=int(state["opt"]["step"]), lr=lr, loss=loss,
                       train_acc=train_acc, test_acc=test_acc, seconds=round(seconds, 2))
            history.append(row)
            folder.save(state, epoch + 1, meta, history)
            tested = f", test {test_acc:.1%}" if test_acc is not None else ""
            progress.close(f"epoch {epoch + 1}/{hp['epochs']}: loss {loss:.3f}, train "
                           f"{train_acc:.1%}{tested}, {format_seconds(seconds)}")
            if last:
                break
