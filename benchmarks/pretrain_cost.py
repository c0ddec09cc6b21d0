"""What the pre-training experiment (formula images, then CIFAR-10) will cost, before it runs.

Measures each model's training images per CPU-second on one thread (as a sweep runs: one
single-threaded process per core, `OPENBLAS_NUM_THREADS=1 TINYVIT_SHARDS=1`) with
`sweep_cost.images_per_second`, and the fractal images rendered per CPU-second (wall rates
scaled by this process's wall / CPU time, so a busy host shares out less time but not less
speed; both are printed), then prints the
CPU-hours of: pre-training each model on each number of formula images seen, fine-tuning every
pre-trained model (and a scratch one, the zero point) on each CIFAR-10 label count under the
sweep's length rule (`tinyvit.run.sweep.epochs_for`), for every seed; the pre-training only
for `--pre-seeds` of them (the sweep's default: one; the other seeds fine-tune from it).

    OPENBLAS_NUM_THREADS=1 TINYVIT_SHARDS=1 python benchmarks/pretrain_cost.py
    python benchmarks/pretrain_cost.py --pretrain 10000 100000 1000000 --labels 1000 5000 \
        --seeds 3 --pre-seeds 1 --seconds 10

Training steps and rendering only; evaluation and the category search are small extras.
"""
import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the sibling benchmark scripts

from fractal_rate import cpu_name, per_cpu_second  # noqa: E402
from fractal_rate import images_per_second as render_rate  # noqa: E402
from sweep_cost import images_per_second as train_rate  # noqa: E402

from tinyvit.data import fractal_sets  # noqa: E402
from tinyvit.run import sweep  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=["vit-cifar-nano", "hybrid-tiny",
                                                    "cnn-air-small"])
    ap.add_argument("--pretrain", type=int, nargs="+", default=[10_000, 100_000, 1_000_000],
                    help="formula images seen in pre-training, one run each")
    ap.add_argument("--labels", type=int, nargs="+", default=[1000, 5000],
                    help="CIFAR-10 training images each model is fine-tuned on")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--pre-seeds", type=int, default=1,
                    help="how many of the seeds pre-train (the others fine-tune from the first)")
    ap.add_argument("--data", default="fractal:1000x1000", help="the formula-driven set")
    ap.add_argument("--seconds", type=float, default=10.0, help="timing per model")
    args = ap.parse_args(argv)
    print(f"{cpu_name()}, {os.cpu_count()} cores, load average "
          f"{', '.join(f'{v:.2f}' for v in os.getloadavg())}, OPENBLAS_NUM_THREADS="
          f"{os.environ.get('OPENBLAS_NUM_THREADS', 'unset')}, TINYVIT_SHARDS="
          f"{os.environ.get('TINYVIT_SHARDS', 'unset')}")
    runs = len(args.pretrain) + 1  # each pre-training, and scratch
    tune = sum(sweep.epochs_for(n) * n for n in args.labels)  # images seen per fine-tuning row
    pre = sum(args.pretrain)
    print(f"per model and seed: pre-training {pre:,} formula images seen; fine-tuning "
          f"{runs} starts ({len(args.pretrain)} pre-trained + scratch) x labels {args.labels} "
          f"under the length rule = {runs * tune:,} CIFAR images seen")
    wall, rendered = per_cpu_second(render_rate, fractal_sets.fractal_set(args.data), 256,
                                    args.seconds)
    pre_seeds = min(args.pre_seeds, args.seeds)
    render_hours = pre * pre_seeds * len(args.models) / rendered / 3600
    print(f"rendering {args.data}: {rendered:.0f} images per CPU-second ({wall:.0f} per wall "
          f"second) -> {render_hours:.1f} CPU-hours (every pre-training renders its own)")
    total = render_hours
    for name in args.models:
        batch = sweep.run_recipe(name, max(args.labels), 1).batch_size
        wall, rate = per_cpu_second(train_rate, name, batch, args.seconds)
        hours = (pre * pre_seeds + runs * tune * args.seeds) / rate / 3600
        total += hours
        print(f"{name:16s} batch {batch:4d}: {rate:4.0f} images per CPU-second ({wall:4.0f} per "
              f"wall second) -> "
              f"{pre * pre_seeds / rate / 3600:5.1f} h pre-training + "
              f"{runs * tune * args.seeds / rate / 3600:5.1f} h fine-tuning = {hours:5.1f} "
              f"CPU-hours for {args.seeds} seeds ({pre_seeds} pre-training)")
    print(f"the experiment: {total:.1f} CPU-hours, about {total / 2:.1f} h on 2 cores")


if __name__ == "__main__":
    main()
