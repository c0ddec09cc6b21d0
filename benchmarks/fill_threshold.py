"""Which fill threshold at 32x32 keeps the fractals that FractalDB's rule keeps on a large canvas?

FractalDB keeps a random IFS when its chaos game lights >= 20% of a large canvas. A shape of
box-counting dimension D < 2 lights about S^(D - 2) of an S x S canvas, so the same shapes light
more of a coarse one: the 32x32 threshold must be higher. This script draws `--systems` random
IFS, plays one long chaos game for each (`--points` points), measures the fill on a `--large`
canvas and, from the first 4096 points (what a training image gets), on 32x32, and prints for
each 32x32 threshold how many IFS it keeps and how often it agrees with the large-canvas rule.

    python benchmarks/fill_threshold.py --systems 400 --large 256 --points 102400
"""
import argparse

import numpy as np

from tinyvit.data import fractals


def fills(systems, maps, large, points, seed, batch=20):
    """(fill on 32x32 from the first CHAINS x STEPS points, fill on large x large from all)."""
    small, big = [], []
    chains = fractals.CHAINS * 16
    steps = max(points // chains, fractals.STEPS)
    for s in range(0, len(systems), batch):
        rng = np.random.default_rng([seed, s])
        b = len(systems[s:s + batch])
        x, y, _ = fractals.chaos_game(systems[s:s + batch], maps[s:s + batch],
                                      rng.uniform(-1, 1, (b, chains, 2)),
                                      rng.random((b, fractals.BURN_IN + steps, chains)))
        big.append(fractals.fill_rate(x, y, large))
        cut = (slice(None), slice(0, fractals.STEPS), slice(0, fractals.CHAINS))
        small.append(fractals.fill_rate(x[cut], y[cut], 32))
    return np.concatenate(small), np.concatenate(big)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--systems", type=int, default=400)
    ap.add_argument("--large", type=int, default=256, help="the large canvas' side")
    ap.add_argument("--points", type=int, default=102_400, help="points on the large canvas")
    ap.add_argument("--rule", type=float, default=0.2, help="FractalDB's threshold there")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    systems, maps = fractals.random_systems(np.random.default_rng(args.seed), args.systems)
    small, big = fills(systems, maps, args.large, args.points, args.seed)
    keep = big >= args.rule
    print(f"{args.systems} random IFS; the rule fill >= {args.rule} on {args.large}x{args.large} "
          f"keeps {keep.mean():.1%}")
    for t in np.arange(0.2, 0.61, 0.05):
        kept = small >= t
        print(f"32x32 threshold {t:.2f}: keeps {kept.mean():6.1%}, agrees with the rule on "
              f"{(kept == keep).mean():6.1%}")


if __name__ == "__main__":
    main()
