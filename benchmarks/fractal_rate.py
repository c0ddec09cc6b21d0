"""How fast formula-driven images are made: the category search, then images rendered per second.

For each data source spec it times `fractal_set` (the fill-rate search for the categories) and
then `fractal_sets.batches` streaming epoch 0 for `--seconds`, in one process (NumPy runs the
chaos game on one core). Prints the machine, its load, and images per second of wall time
and per CPU-second of this process (on a busy host the first falls, the second much less).

    python benchmarks/fractal_rate.py
    python benchmarks/fractal_rate.py --specs fractal:1000x1000 "fractal:1000x1000,grey" \
        --batch-size 256 --seconds 20
"""
import argparse
import os
import platform
import time

from tinyvit.data import fractal_sets
from tinyvit.run.speed import per_cpu_second

DEFAULT_SPECS = ["fractal:1000x100", "fractal:1000x100,grey", "1p-frac:1000x100,delta=0.1"]


def cpu_name():
    """The CPU's model name (Linux /proc/cpuinfo), else what `platform` says."""
    try:
        with open("/proc/cpuinfo") as f:
            names = [line.split(":", 1)[1].strip() for line in f if line.startswith("model name")]
        return names[0] if names else platform.processor() or platform.machine()
    except OSError:
        return platform.processor() or platform.machine()


def images_per_second(fs, batch_size, seconds):
    """Images of epoch 0 streamed per second (at least one batch)."""
    t0, seen = time.perf_counter(), 0
    for x, _ in fractal_sets.batches(fs, 0, batch_size):
        seen += len(x)
        if time.perf_counter() - t0 >= seconds:
            break
    return seen / (time.perf_counter() - t0)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--specs", nargs="+", default=DEFAULT_SPECS)
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--seconds", type=float, default=10.0, help="streaming time per spec")
    args = ap.parse_args(argv)
    load = ", ".join(f"{v:.2f}" for v in os.getloadavg())
    print(f"{cpu_name()}, {os.cpu_count()} cores, load average {load} (1, 5, 15 min)")
    for spec in args.specs:
        t0 = time.perf_counter()
        fs = fractal_sets.fractal_set(spec)
        search = time.perf_counter() - t0
        wall, cpu = per_cpu_second(images_per_second, fs, args.batch_size, args.seconds)
        print(f"{spec:32s} categories in {search:5.1f} s, then {wall:6.0f} images/s "
              f"({cpu:6.0f} per CPU-second; batch {args.batch_size})")


if __name__ == "__main__":
    main()
