"""Training, evaluation and prediction: `python -m tinyvit train | eval | predict`.

The training step is the paper's recipe in miniature (Sec. 4.1 / Appendix B.1): AdamW
(beta1 0.9, beta2 0.999, decoupled weight decay), linear warmup then cosine decay,
global-norm gradient clipping at 1, label smoothing; plus random-crop + flip augmentation,
which small data sets need. One run writes to `--out`:

    metrics.jsonl   one JSON object per epoch (loss, train/test accuracy, seconds, lr)
    last.npz        params + optimiser state + RNG state + step, rewritten atomically each epoch

Shape legend: B batch, H, W, C image, K classes.
"""
import json
import math
import time
from pathlib import Path

import numpy as np
from autograd import grad
from autograd.tracer import getval

from . import device
from . import checkpoint, data, models, ops, optim
from .configs import DEFAULT_MODEL
from .run.progress import Progress, format_seconds
from .tree import flatten

# Defaults per model family, chosen on this project's 2-core CPU (see README "Results"): about
# an hour of training for vit-cifar-nano (~3 min/epoch) and half an hour for cnn-small.
RECIPES = {
    "vit": dict(epochs=18, batch_size=128, lr=1e-3, weight_decay=0.05, warmup=2.0,
                smoothing=0.1, clip=1.0),
    "cnn": dict(epochs=7, batch_size=128, lr=2e-3, weight_decay=0.05, warmup=1.0,
                smoothing=0.1, clip=1.0),
}


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite."""


def recipe(model_name, **overrides):
    """The default hyper-parameters for a model, with the given (non-None) overrides."""
    r = dict(RECIPES["cnn" if models.is_cnn(model_name) else "vit"])
    r.update({k: v for k, v in overrides.items() if v is not None})
    return r


# ---------------------------------------------------------------------------------------------
# Data preparation
# ---------------------------------------------------------------------------------------------


def channel_stats(x):
    """Per-channel mean and std of uint8 images (N, H, W, C), in 0-255 units."""
    flat = x.reshape(-1, x.shape[-1]).astype(np.float64)  # (N*H*W, C)
    return flat.mean(0).astype(np.float32), flat.std(0).astype(np.float32)


def to_input(x_uint8, mean, std):
    """uint8 (B, H, W, C) -> normalised float32 (B, H, W, C)."""
    return (x_uint8.astype(np.float32) - mean) / std


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


def make_grad_fn(model, smoothing):
    """grad_fn(params, x, y, rng) -> (grads, (loss, logits)) via autograd."""

    def loss_and_aux(params, x, y, rng):
        logits = model.apply(params, x, True, rng)  # (B, K)
        loss = ops.cross_entropy(logits, y, smoothing)
        return loss, (getval(loss), getval(logits))

    from autograd import grad_and_aux

    return grad_and_aux(loss_and_aux)


def train_step(grad_fn, params, opt_state, x, y, rng, lr, weight_decay, clip):
    """Forward, backward, clip, AdamW. Returns (params, opt_state, loss, logits, grad_norm)."""
    grads, (loss, logits) = grad_fn(params, x, y, rng)
    if not math.isfinite(float(loss)):
        raise TrainingDiverged(f"loss is {float(loss)}")
    grads, norm = optim.clip_by_global_norm(grads, clip) if clip else (grads, float("nan"))
    params, opt_state = optim.adam_update(params, grads, opt_state, lr,
                                          weight_decay=weight_decay)
    return params, opt_state, float(loss), logits, norm


# ---------------------------------------------------------------------------------------------
# Evaluation
# ---------------------------------------------------------------------------------------------


def predict_logits(model, params, x_uint8, mean, std, batch_size=500):
    """Logits (N, K) of uint8 images, in eval mode, batch by batch (on the params' device)."""
    xp = device.array_module(params["head"]["w"])
    out = [device.to_host(model.apply(params, xp.asarray(to_input(x_uint8[i:i + batch_size],
                                                                    mean, std))))
           for i in range(0, len(x_uint8), batch_size)]
    return np.concatenate(out)


def confusion_matrix(y_true, y_pred, k):
    """(K, K) counts: row = true class, column = predicted class."""
    m = np.zeros((k, k), np.int64)
    np.add.at(m, (y_true, y_pred), 1)
    return m


def evaluate(model, params, x, y, mean, std, batch_size=500):
    """Accuracy (0-1) and confusion matrix of uint8 images x with labels y."""
    pred = predict_logits(model, params, x, mean, std, batch_size).argmax(1)
    k = model.cfg.num_classes
    return float((pred == y).mean()), confusion_matrix(y, pred, k)


def confusion_summary(cm, classes, top=3):
    """Per-class accuracy and the most frequent confusions, as printable lines."""
    lines = ["class            accuracy"]
    for i, name in enumerate(classes):
        lines.append(f"{name:<16} {cm[i, i] / max(cm[i].sum(), 1):7.1%}")
    off = cm - np.diag(np.diag(cm))
    pairs = sorted(((off[i, j], i, j) for i in range(len(cm)) for j in range(len(cm))
                    if off[i, j] > 0), reverse=True)[:top]
    if pairs:
        lines.append("most confused: " + ", ".join(
            f"{classes[i]}->{classes[j]} ({n})" for n, i, j in pairs))
    return lines


# ---------------------------------------------------------------------------------------------
# Checkpoints of the whole training state
# ---------------------------------------------------------------------------------------------


def save_state(path, params, opt_state, rng, epoch, meta):
    """Atomically write params, Adam moments, RNG state, step and metadata to one .npz."""
    checkpoint.save_params(
        path, device.to_host({"params": params, "opt": {"m": opt_state["m"],
                                                        "v": opt_state["v"]}}),
        step=np.array(opt_state["step"]), epoch=np.array(epoch),
        rng=np.array(json.dumps(rng.bit_generator.state)), meta=np.array(json.dumps(meta)))


def load_state(path):
    """Inverse of `save_state`: (params, opt_state, rng, epoch, meta)."""
    extra = checkpoint.load_extra(path)
    missing = [k for k in ("step", "epoch", "rng", "meta") if k not in extra]
    if missing:
        raise ValueError(f"{path}: not a training checkpoint (missing {', '.join(missing)})")
    tree = checkpoint.load_params(path)
    rng = np.random.default_rng()
    rng.bit_generator.state = json.loads(extra["rng"])
    opt_state = {"m": tree["opt"]["m"], "v": tree["opt"]["v"], "step": int(extra["step"])}
    return tree["params"], opt_state, rng, int(extra["epoch"]), json.loads(extra["meta"])


def load_model(path):
    """(model, params, meta) from a training checkpoint or a plain params checkpoint + meta."""
    params, _, _, _, meta = load_state(path)
    model = models.from_config_dict(meta["model"])
    return model, params, meta


# ---------------------------------------------------------------------------------------------
# The training loop
# ---------------------------------------------------------------------------------------------


def train(model=DEFAULT_MODEL, data_source="cifar10", out=None, epochs=None,
          batch_size=None, lr=None, weight_decay=None, warmup=None, smoothing=None, clip=None,
          train_size=None, seed=0, augment=True, resume=False, data_dir=None, dataset=None,
          max_steps=None, log=print, progress_stream=None, backend="numpy", eval_every=1):
    """Train `model` on `data_source`; returns the list of per-epoch metrics dicts.

    `out`: the run's folder (default `runs/<model>`).
    `dataset` may pass an already prepared dict (see `prepare`) instead of loading.
    `max_steps` stops early (for tests and smoke runs). `warmup` is in epochs.
    `eval_every`: measure test accuracy every this many epochs and after the last one
    (other rows of the metrics log have `test_acc` None); sweeps of many runs use a large value.
    `backend`: "numpy" (CPU), "cupy" (GPU) or an array module; data augmentation and
    checkpoints stay on the host, parameters, optimiser state and batches live on the device.
    """
    xp = device.use_backend(backend)
    hp = recipe(model, epochs=epochs, batch_size=batch_size, lr=lr, weight_decay=weight_decay,
                warmup=warmup, smoothing=smoothing, clip=clip)
    ds = dataset or prepare(data_source, train_size, seed, data_dir)
    (x_train, y_train), (x_test, y_test) = ds["train"], ds["test"]
    k, size = len(ds["classes"]), x_train.shape[1]
    net = models.build(model, num_classes=k, image_size=size)
    out = Path(out or f"runs/{model}")
    out.mkdir(parents=True, exist_ok=True)
    ckpt_path, log_path = out / "last.npz", out / "metrics.jsonl"

    steps_per_epoch = max(len(x_train) // hp["batch_size"], 1)
    total_steps = steps_per_epoch * hp["epochs"]
    warmup_steps = min(int(hp["warmup"] * steps_per_epoch), total_steps - 1)
    meta = dict(model=models.config_dict(net), classes=ds["classes"],
                mean=ds["mean"].tolist(), std=ds["std"].tolist(), hparams=hp,
                train_size=len(x_train), seed=seed, data=str(data_source))

    start_epoch, history = 0, []
    if resume and ckpt_path.exists():
        params, opt_state, rng, start_epoch, saved = load_state(ckpt_path)
        same = json.loads(json.dumps([hp, meta["model"]]))  # as stored: tuples become lists
        if [saved["hparams"], saved["model"]] != same:
            raise ValueError(f"{ckpt_path}: was trained with other settings; resume needs the "
                             f"same model and hyper-parameters (saved {saved['hparams']})")
        history = [json.loads(line) for line in log_path.read_text().splitlines()][:start_epoch]
        log(f"resuming from {ckpt_path} at epoch {start_epoch}")
    else:
        rng = np.random.default_rng(seed)
        params = net.init(rng)
        opt_state = optim.init_adam(params)
        log_path.write_text("")
    params, opt_state = device.to_device(params, xp), device.to_device(opt_state, xp)
    n_params = sum(v.size for v in flatten(params).values())
    log(f"{net.name}: {n_params:,} parameters; {len(x_train):,} training images, "
        f"{hp['epochs']} epochs x {steps_per_epoch} steps of {hp['batch_size']}")

    grad_fn = make_grad_fn(net, hp["smoothing"])
    mean, std = ds["mean"], ds["std"]
    progress = Progress(total_steps, "step ", progress_stream,
                        start_done=start_epoch * steps_per_epoch)
    for epoch in range(start_epoch, hp["epochs"]):
        t0, losses, correct, seen = time.perf_counter(), [], 0, 0
        order = rng.permutation(len(x_train))
        for i in range(steps_per_epoch):
            step = opt_state["step"]
            if max_steps is not None and step >= max_steps:
                break
            idx = order[i * hp["batch_size"]:(i + 1) * hp["batch_size"]]
            xb = data.random_crop_flip(rng, x_train[idx]) if augment else x_train[idx]
            lr_now = optim.warmup_cosine(step, total_steps, hp["lr"], warmup_steps)
            try:
                params, opt_state, loss, logits, _ = train_step(
                    grad_fn, params, opt_state, xp.asarray(to_input(xb, mean, std)),
                    xp.asarray(y_train[idx]), rng, lr_now, hp["weight_decay"], hp["clip"])
            except TrainingDiverged as e:
                progress.close()
                kept = f"; the last good checkpoint is {ckpt_path}" if ckpt_path.exists() else ""
                raise TrainingDiverged(f"training stopped at epoch {epoch + 1}, step {step}: "
                                       f"{e} (try a lower --lr){kept}") from None
            losses.append(loss)
            correct += int((device.to_host(logits).argmax(1) == y_train[idx]).sum())
            seen += len(idx)
            rate = seen / (time.perf_counter() - t0)
            progress.update(step + 1, f"epoch {epoch + 1}/{hp['epochs']} loss {loss:.3f} "
                                      f"acc {correct / seen:.1%} {rate:.0f} img/s")
        seconds = time.perf_counter() - t0
        last = epoch + 1 == hp["epochs"] or (max_steps is not None
                                             and opt_state["step"] >= max_steps)
        test_acc = (evaluate(net, params, x_test, y_test, mean, std)[0]
                    if last or (epoch + 1) % eval_every == 0 else None)
        row = dict(epoch=epoch + 1, step=int(opt_state["step"]), lr=float(lr_now),
                   loss=float(np.mean(losses)) if losses else float("nan"),
                   train_acc=correct / max(seen, 1), test_acc=test_acc,
                   seconds=round(seconds, 2))
        history.append(row)
        with open(log_path, "a") as f:
            f.write(json.dumps(row) + "\n")
        save_state(ckpt_path, params, opt_state, rng, epoch + 1, meta)
        tested = f", test {test_acc:.1%}" if test_acc is not None else ""
        progress.close(f"epoch {epoch + 1}/{hp['epochs']}: loss {row['loss']:.3f}, train "
                       f"{row['train_acc']:.1%}{tested}, {format_seconds(seconds)}")
        if last:
            break
    return history


# ---------------------------------------------------------------------------------------------
# Prediction on one image file
# ---------------------------------------------------------------------------------------------


def load_image(path, size):
    """An image file as uint8 (1, size, size, 3), resized with Pillow."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            im = im.convert("RGB").resize((size, size), Image.BICUBIC)
            return np.asarray(im, np.uint8)[None]
    except (OSError, UnidentifiedImageError) as e:
        raise ValueError(f"{path}: cannot read image ({e})") from None


def predict(ckpt, image_path, top=5):
    """[(class name, probability)] of the top classes for one image file."""
    model, params, meta = load_model(ckpt)
    x = load_image(image_path, model.cfg.image_size)
    logits = predict_logits(model, params, x, np.float32(meta["mean"]), np.float32(meta["std"]))
    p = ops.softmax(logits[0].astype(np.float64))
    best = np.argsort(-p)[:top]
    return [(meta["classes"][i], float(p[i])) for i in best]


# ---------------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------------


def cmd_train(args):
    """python -m tinyvit train ..."""
    history = train(args.model, args.data, args.out, args.epochs,
                    args.batch_size, args.lr, args.weight_decay, args.warmup, args.smoothing,
                    args.clip, args.train_size, args.seed, not args.no_augment, args.resume,
                    args.data_dir, max_steps=args.max_steps, backend=args.backend)
    if history:
        best = max(h["test_acc"] for h in history if h["test_acc"] is not None)
        total = sum(h["seconds"] for h in history)
        print(f"done: final test accuracy {history[-1]['test_acc']:.1%} (best {best:.1%}), "
              f"training time {format_seconds(total)}")
    return 0


def cmd_eval(args):
    """python -m tinyvit eval CKPT --data ..."""
    model, params, meta = load_model(args.checkpoint)
    ds = data.load_data(args.data or meta["data"], data_dir=args.data_dir)
    x, y = ds["test"]
    acc, cm = evaluate(model, params, x, y, np.float32(meta["mean"]), np.float32(meta["std"]))
    print(f"{model.name}: test accuracy {acc:.2%} on {len(y):,} images")
    print("\n".join(confusion_summary(cm, meta["classes"])))
    return 0


def cmd_predict(args):
    """python -m tinyvit predict CKPT image.png"""
    for name, prob in predict(args.checkpoint, args.image, args.top):
        print(f"{prob:7.2%}  {name}")
    return 0


def add_commands(sub):
    """Register train / eval / predict on an argparse sub-parser collection."""
    t = sub.add_parser("train", help="train a ViT or the CNN")
    t.add_argument("--model", default=DEFAULT_MODEL,
                   help=f"a ViT preset or a CNN (cnn-tiny/small/base); default {DEFAULT_MODEL}")
    t.add_argument("--data", default="cifar10",
                   help="cifar10, cifar100, or an ImageFolder directory / .tar.gz / .zip")
    t.add_argument("--data-dir", default=None, help="download/cache folder ($TINYVIT_DATA)")
    t.add_argument("--out", default=None, help="output folder (default runs/MODEL)")
    for name, typ in (("epochs", int), ("batch-size", int), ("lr", float),
                      ("weight-decay", float), ("warmup", float), ("smoothing", float),
                      ("clip", float), ("train-size", int), ("max-steps", int)):
        t.add_argument(f"--{name}", type=typ, default=None)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--no-augment", action="store_true", help="no random crop / flip")
    t.add_argument("--resume", action="store_true", help="continue from OUT/last.npz")
    t.add_argument("--backend", default="numpy", choices=["numpy", "cupy"],
                   help="numpy (CPU) or cupy (GPU; autograd runs on CuPy arrays)")
    t.set_defaults(func=cmd_train)
    e = sub.add_parser("eval", help="test accuracy and confusions of a checkpoint")
    e.add_argument("checkpoint")
    e.add_argument("--data", default=None, help="default: the data it was trained on")
    e.add_argument("--data-dir", default=None)
    e.set_defaults(func=cmd_eval)
    p = sub.add_parser("predict", help="top-5 classes of an image file")
    p.add_argument("checkpoint")
    p.add_argument("image")
    p.add_argument("--top", type=int, default=5)
    p.set_defaults(func=cmd_predict)
