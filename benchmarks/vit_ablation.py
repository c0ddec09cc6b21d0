"""What each small-data ingredient of a pure ViT is worth here: one short budget, each
ingredient on and off, a few seeds, test accuracy and training time as JSON.

    python benchmarks/vit_ablation.py --smoke                       # seconds: proves it runs
    python benchmarks/vit_ablation.py --epochs 3 --train-size 10000 --seeds 0 1 \
        --data cifar10 --out lessons/results/vit_ablation.json      # a real (long) table

The ingredients (README, issue "a pure ViT that earns its place"):

    spt      shifted patch tokenization (ViTConfig.spt; Lee et al. 2021)
    lsa      locality self-attention (ViTConfig.lsa; Lee et al. 2021)
    seq      sequence pooling (pool "seq"; Hassani et al. 2021)
    augment  TrivialAugment, wide space (tinyvit.data.randaug; Müller & Hutter 2021)
             (--augment randaugment: RandAugment n=2, m=9, Cubuk et al. 2020)
    mix      mixup 0.8 or CutMix 1.0 per batch (tinyvit.data.mixing; Zhang et al. 2018, Yun
             et al. 2019), soft targets and `ops.soft_cross_entropy`
    erasing  random erasing, p 0.25 (tinyvit.data.erasing; Zhong et al. 2020)
    ema      the test accuracy of an exponential moving average of the weights (optim.ema_*)

`--design add` (the default) trains the baseline and the baseline plus each ingredient alone,
then everything; `--design drop` trains everything and everything minus each one. Every
variant of one seed starts from the same data order and crops; the base recipe is
vit-cifar-plain's (AdamW 1e-3, weight decay 0.05, cosine with warmup, clipping at 1, smoothing
0.1, crops of the image padded by 2 mirrored pixels, flips). The loop is this file's own, so
that it measures the ingredients, whatever the training CLI's recipe becomes.
"""
import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from autograd import grad_and_aux
from autograd.tracer import getval

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tinyvit import data, fast, ops, optim  # noqa: E402
from tinyvit.run import models  # noqa: E402
from tinyvit.run.evaluate import evaluate  # noqa: E402

MODEL_KNOBS = {"spt": dict(spt=True), "lsa": dict(lsa=True), "seq": dict(pool="seq")}
INGREDIENTS = ("spt", "lsa", "seq", "augment", "mix", "erasing", "ema")


def variants(design, ingredients):
    """[(name, set of ingredients on)] for an "add" or "drop" ablation."""
    every = set(ingredients)
    if design == "add":
        return ([("baseline", set())] + [(f"+{i}", {i}) for i in ingredients]
                + [("all", every)])
    return [("all", every)] + [(f"-{i}", every - {i}) for i in ingredients]


def load(source, train_size, test_size, seed):
    """(x_train, y_train, x_test, y_test, mean, std): uint8 images, balanced subsets."""
    if source == "synthetic":
        x, y = data.synthetic_images(train_size + test_size, seed=seed)
        return x[:train_size], y[:train_size], x[train_size:], y[train_size:], *_stats(x)
    ds = data.load_data(source)
    x, y = data.balanced_subset(*ds["train"], train_size, seed)
    xt, yt = ds["test"]
    if test_size < len(xt):
        xt, yt = data.balanced_subset(xt, yt, test_size, seed)
    return x, y, xt, yt, *_stats(x)


def _stats(x):
    flat = x.reshape(-1, 3).astype(np.float64)
    return flat.mean(0).astype(np.float32), flat.std(0).astype(np.float32)


def make_grad_fn(model, smoothing):
    """grad_fn(params, x, t, rng) -> (grads, (loss, logits)); t int labels (B,) or soft
    targets (B, K) (mixup / CutMix), the batch in shards (tinyvit.fast.sharded)."""

    def loss_and_aux(params, x, t, rng):
        logits = model.apply(params, x, True, rng)  # (B, K)
        loss = (ops.soft_cross_entropy(logits, t, smoothing) if t.ndim == 2
                else ops.cross_entropy(logits, t, smoothing))
        return loss, (getval(loss), getval(logits))

    return fast.sharded(grad_and_aux(loss_and_aux), fast.SHARDS)


def batch_inputs(rng, xb, yb, on, args, k, mean, std):
    """The training batch of one step: crops and flips, then the data ingredients that are
    on (augment, erasing, mix, in timm's order), normalised. -> (x float32, labels or targets)."""
    xb = data.random_crop_flip(rng, xb, pad=2, mode="reflect")
    if "augment" in on:
        xb = (data.rand_augment(rng, xb, 2, 9) if args.augment == "randaugment"
              else data.trivial_augment(rng, xb))
    if "erasing" in on:
        xb = data.random_erasing(rng, xb, p=args.erasing)
    t = yb
    if "mix" in on:
        xb, t = data.mix_batch(rng, xb, data.one_hot(yb, k), 0.8, 1.0)
    return data.normalize(xb, mean, std), t


def train_variant(name, on, d, seed, args):
    """Train one variant; its test accuracy (the EMA's too, when on) and seconds."""
    x, y, xt, yt, mean, std = d
    knobs = {kk: v for i in on if i in MODEL_KNOBS for kk, v in MODEL_KNOBS[i].items()}
    model = models.build(args.model, **knobs)
    params = model.init(np.random.default_rng(seed))
    state = optim.init_optimizer("adamw", params)
    ema = optim.init_ema(params) if "ema" in on else None
    grad_fn = make_grad_fn(model, 0.1)
    steps_per_epoch = max(len(x) // args.batch_size, 1)
    total = steps_per_epoch * args.epochs
    warmup = min(int(args.warmup * steps_per_epoch), total - 1)
    rng = np.random.default_rng(seed + 1)  # the same data stream for every variant
    step, start, losses = 0, time.perf_counter(), []
    for _ in range(args.epochs):
        for xb, yb in data.iterate_batches(rng, x, y, args.batch_size, drop_last=True):
            xb, t = batch_inputs(rng, xb, yb, on, args, model.cfg.num_classes, mean, std)
            grads, (loss, _) = grad_fn(params, xb, t, rng)
            grads, _ = optim.clip_by_global_norm(grads, 1.0)
            lr = optim.schedule("cosine", step, total, args.lr, warmup)
            params, state = optim.update("adamw", params, grads, state, lr, weight_decay=0.05)
            if ema is not None:
                optim.ema_update(ema, params, optim.ema_decay(step, args.ema_decay))
            losses.append(float(loss))
            step += 1
    seconds = time.perf_counter() - start
    row = dict(variant=name, ingredients=sorted(on), seed=seed, steps=step,
               train_seconds=round(seconds, 1), final_loss=round(float(np.mean(losses[-20:])), 4),
               test_acc=evaluate(model, params, xt, yt, mean, std, 256)[0],
               params=int(models.param_count(model)))
    if ema is not None:
        row["test_acc_ema"] = evaluate(model, ema, xt, yt, mean, std, 256)[0]
    return row


def parse(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default="vit-cifar-plain")
    p.add_argument("--data", default="cifar10", help="cifar10, a folder / archive, or synthetic")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--train-size", type=int, default=10000)
    p.add_argument("--test-size", type=int, default=10000)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--warmup", type=float, default=0.5, help="epochs")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    p.add_argument("--design", choices=("add", "drop"), default="add")
    p.add_argument("--ingredients", nargs="+", choices=INGREDIENTS, default=list(INGREDIENTS))
    p.add_argument("--augment", choices=("trivialaugment", "randaugment"),
                   default="trivialaugment")
    p.add_argument("--erasing", type=float, default=0.25, help="random erasing's probability")
    p.add_argument("--ema-decay", type=float, default=0.999)
    p.add_argument("--out", default=None, help="JSON file (default: print only)")
    p.add_argument("--smoke", action="store_true",
                   help="seconds: vit-cifar-nano on 256 synthetic images, 1 epoch, 1 seed")
    args = p.parse_args(argv)
    if args.smoke:
        args.model, args.data, args.epochs = "vit-cifar-nano", "synthetic", 1
        args.train_size, args.test_size = 256, 128
        args.batch_size, args.seeds, args.warmup = 64, args.seeds[:1], 0.2
    return args


def earlier_rows(out, config):
    """The rows an earlier run of the same configuration wrote to `out` (it resumes there)."""
    if not out or not Path(out).is_file():
        return []
    earlier = json.loads(Path(out).read_text())
    if earlier.get("config") != config:
        raise SystemExit(f"{out}: holds a run of another configuration; name another --out")
    return earlier["rows"]


def main(argv=None):
    args = parse(argv)
    config = {k: v for k, v in vars(args).items() if k != "out"}
    rows = earlier_rows(args.out, config)  # written after every variant: a stopped run resumes
    done = {(r["seed"], r["variant"]) for r in rows}
    for seed in args.seeds:
        d = None
        for name, on in variants(args.design, args.ingredients):
            if (seed, name) in done:
                continue
            d = d or load(args.data, args.train_size, args.test_size, seed)
            with fast.twins():  # as training runs (and the formulas again afterwards)
                rows.append(train_variant(name, on, d, seed, args))
            r = rows[-1]
            print(f"seed {seed} {name:10s} acc {r['test_acc']:.4f}"
                  + (f" (EMA {r['test_acc_ema']:.4f})" if "test_acc_ema" in r else "")
                  + f"  loss {r['final_loss']:.3f}  {r['train_seconds']:.0f} s", flush=True)
            if args.out:
                Path(args.out).parent.mkdir(parents=True, exist_ok=True)
                Path(args.out).write_text(json.dumps(dict(config=config, rows=rows), indent=1)
                                          + "\n")
    return dict(config=config, rows=rows)


if __name__ == "__main__":
    fast.keep_freed_memory()  # as training does; it changes the whole process
    main()
