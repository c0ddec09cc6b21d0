"""What lesson 7's data-hunger sweep will cost on this machine, before you start it.

Measures each model's training speed on one thread (as the sweep runs: one single-threaded
process per core, `OPENBLAS_NUM_THREADS=1 TINYVIT_SHARDS=1`), at its recipe's batch size, on
random images, then prints the images each run sees under the length rule
(`tinyvit.run.sweep.epochs_for`) and the CPU-hours of the whole sweep.

    OPENBLAS_NUM_THREADS=1 TINYVIT_SHARDS=1 python benchmarks/sweep_cost.py
    python benchmarks/sweep_cost.py --seconds 5 --models cnn-tiny vit-cifar-nano \
        --min-images 200000 --min-epochs 4          # the first sweeps' rule

Run it on an idle machine; it only times training steps (tests are a small extra).
"""
import argparse
import os
import platform

from tinyvit.run import sweep
from tinyvit.run.speed import images_per_second


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=list(sweep.DEFAULT_MODELS))
    ap.add_argument("--sizes", type=int, nargs="+", default=list(sweep.DEFAULT_SIZES))
    ap.add_argument("--seeds", type=int, default=len(sweep.DEFAULT_SEEDS))
    ap.add_argument("--min-images", type=int, default=sweep.MIN_IMAGES)
    ap.add_argument("--min-epochs", type=int, default=sweep.MIN_EPOCHS)
    ap.add_argument("--seconds", type=float, default=20.0, help="timing per model")
    args = ap.parse_args()
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', 'unset')}, "
          f"TINYVIT_SHARDS={os.environ.get('TINYVIT_SHARDS', 'unset')}")
    seen = sum(sweep.epochs_for(n, args.min_images, args.min_epochs) * n for n in args.sizes)
    print(f"length rule: {sweep.rule_text(vars(args))}; images seen per model and seed "
          f"over sizes {args.sizes}: {seen:,}")
    total = 0.0
    for name in args.models:
        batch = sweep.run_recipe(name, max(args.sizes), 1).batch_size
        rate = images_per_second(name, batch, args.seconds)
        hours = seen * args.seeds / rate / 3600
        total += hours
        print(f"{name:16s} batch {batch:4d}: {rate:6.0f} images/s on one thread -> "
              f"{hours:4.1f} CPU-hours for {args.seeds} seeds")
    print(f"the sweep: {total:.1f} CPU-hours, about {total / 2:.1f} h on 2 cores "
          f"(training steps only)")


if __name__ == "__main__":
    main()
