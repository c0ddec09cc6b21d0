"""What BatchNorm's population statistics cost a training run: the pass over the statistics
images (`tinyvit.cnn.population_stats`) against one epoch of training steps.

    python benchmarks/stats_cost.py                        # cnn-air-small, 1,000 images
    python benchmarks/stats_cost.py --model cnn-air --images 50000 --steps 3
    OPENBLAS_NUM_THREADS=1 TINYVIT_SHARDS=1 python benchmarks/stats_cost.py    # as sweeps run

A run computes the statistics of a model it tests or saves (`tinyvit.run.train.run_epochs`)
from up to `STATS_IMAGES` of its training images. This times `--steps` training steps of the
model's recipe on random images (the epoch is their time scaled to the epoch's steps) and the
pass with its batches one after another (`map`) and one per core (`fast.map_in_threads`, what
training runs), each in wall-clock and in CPU seconds, the same process, the fast twins on.
"""
import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tinyvit import cnn, fast  # noqa: E402
from tinyvit.run import models  # noqa: E402
from tinyvit.run import train as T  # noqa: E402
from tinyvit.run.recipe import recipe_for  # noqa: E402


def clocked(f):
    """(result, wall seconds, CPU seconds of the process) of f()."""
    wall, cpu = time.perf_counter(), time.process_time()
    out = f()
    return out, time.perf_counter() - wall, time.process_time() - cpu


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="cnn-air-small")
    ap.add_argument("--images", type=int, default=1000, help="training images")
    ap.add_argument("--steps", type=int, default=None, help="timed steps (default: an epoch)")
    args = ap.parse_args(argv)
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (args.images, 32, 32, 3), dtype=np.uint8)  # (N, H, W, C)
    y = np.arange(args.images) % 10
    mean, std = T.channel_stats(x)
    ds = dict(train=(x, y), test=(x[:10], y[:10]), classes=list("abcdefghij"), mean=mean,
              std=std)
    net, recipe = models.build(args.model), recipe_for(args.model)
    recipe = recipe.replace(batch_size=min(recipe.batch_size, args.images))
    sched = T.Schedule.of(args.images, recipe)
    sample = T.stats_images(ds, 0)  # (min(N, STATS_IMAGES), H, W, C)
    params, opt, r, _, _ = T.start(net, 0, recipe.optimizer, sample)
    state = dict(params=params, opt=opt, rng=r, ema=None)
    grad_fn = T.make_grad_fn(net, recipe.smoothing)
    fast.keep_freed_memory()
    cfg = net.cfg.backbone if hasattr(net.cfg, "backbone") else net.cfg
    if getattr(cfg, "norm", None) != "batch":
        raise SystemExit(f"--model {args.model}: has no BatchNorm, so no statistics pass; "
                         f"expected a CNN or hybrid with norm='batch' (e.g. cnn-air-small)")
    print(f"{args.model}, {args.images:,} training images, {fast.SHARDS} shard(s); statistics "
          f"over {len(sample):,} images in batches of 128; seconds wall / CPU")
    with fast.twins():
        net.population_stats(params, sample[:256])  # warm-up
        _, wall, cpu = clocked(lambda: T.train_epoch(state, ds, recipe, sched, grad_fn,
                                                     max_steps=args.steps))
        scale = sched.steps_per_epoch / state["opt"]["step"]
        epoch = wall * scale, cpu * scale
        print(f"epoch ({sched.steps_per_epoch} steps of {recipe.batch_size}): "
              f"{epoch[0]:.2f} / {epoch[1]:.2f}")
        tree = params["backbone"] if "backbone" in params else params
        for label, mapper in (("one after another", map), ("one per core", fast.map_in_threads)):
            _, wall, cpu = clocked(lambda: cnn.population_stats(tree, sample, cfg,
                                                                map_batches=mapper))
            print(f"statistics pass, batches {label}: {wall:.2f} / {cpu:.2f}, "
                  f"{wall / (epoch[0] + wall):.1%} / {cpu / (epoch[1] + cpu):.1%} of "
                  f"epoch + pass")


if __name__ == "__main__":
    main()
