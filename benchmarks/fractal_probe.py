"""Does a model learn from formula images? A short pre-training probe: the loss and held-out accuracy.

Renders a small formula-driven set in memory (`load_fractals`), trains the model from scratch
with AdamW (lr 1e-3, cosine after a warm-up, weight decay 0.05, clip 1, no augmentation) on
random batches, and prints the loss along the way, the mean loss of the first and last 20 steps
(ln K at the start) and the accuracy on held-out instances (chance 1/K).

    python benchmarks/fractal_probe.py --data fractal:100x40 --steps 300 --batch-size 64
"""
import argparse
import time

import numpy as np

from tinyvit import fast, optim
from tinyvit.data import fractal_sets, normalize
from tinyvit.run import models
from tinyvit.run.train import channel_stats, make_grad_fn, train_step


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="fractal:100x40")
    ap.add_argument("--model", default="vit-cifar-nano")
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    t0 = time.time()
    ds = fractal_sets.load_fractals(args.data, test_per_category=5)
    (x, y), (xt, yt), k = ds["train"], ds["test"], len(ds["classes"])
    print(f"rendered {len(x)} + {len(xt)} held-out images of {k} classes in "
          f"{time.time() - t0:.1f} s", flush=True)
    mean, std = channel_stats(x)
    net = models.build(args.model, num_classes=k)
    rng = np.random.default_rng(args.seed)
    params = net.from_data(net.init(rng), normalize(x[:2000], mean, std))
    opt = optim.init_optimizer("adamw", params)
    grad_fn = make_grad_fn(net, 0.0)
    losses = []
    with fast.twins():
        for s in range(args.steps):
            idx = rng.integers(0, len(x), args.batch_size)
            lr = optim.schedule("cosine", s, args.steps, 1e-3, min(args.warmup, args.steps - 1))
            params, opt, loss, _, _ = train_step(grad_fn, params, opt,
                                                 normalize(x[idx], mean, std), y[idx], rng, lr,
                                                 0.05, 1.0)
            losses.append(loss)
            if s % 25 == 0 or s == args.steps - 1:
                print(f"step {s:4d} loss {loss:.3f} ({time.time() - t0:.0f} s)", flush=True)
        params = net.population_stats(params, normalize(x[:2000], mean, std))
        preds = np.concatenate([np.argmax(net.apply(params, normalize(xt[i:i + 250], mean, std)),
                                          -1) for i in range(0, len(xt), 250)])
    print(f"{args.model} on {args.data}: loss {np.mean(losses[:20]):.3f} (first 20 steps; "
          f"ln {k} = {np.log(k):.3f}) -> {np.mean(losses[-20:]):.3f} (last 20); held-out "
          f"accuracy {np.mean(preds == yt):.3f} (chance {1 / k:.3f}); {time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()
