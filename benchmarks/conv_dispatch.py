"""Taps or im2col? Both routes of the convolution twin on every layer shape of the CNNs.

    python benchmarks/conv_dispatch.py                       # the CNNs and hybrids, batch 128
    python benchmarks/conv_dispatch.py --models cnn-small --rounds 9 --repeats 5

`tinyvit.fast.conv.convolve` runs a 3x3 convolution either as k*k products on row-offset views
of the padded image ("taps") or as im2col and one product; `use_taps` picks taps from
TAPS_MIN_PIXELS = H*W up and below TAPS_MAX_OUT output channels. This script records every
convolution one training step of each model runs as training runs it (the batch in shards, and
GroupNorm CNNs' shards in chunks of 32 rows: `tinyvit.run.train.make_grad_fn`), with the
gradients autograd asks for (none for the fixed whitening stem, only the kernel's for the first
learned layer). Then it times forward + VJP of each distinct shape by both routes on one BLAS
thread, as each shard's thread runs them, the two routes taking turns for `--rounds` rounds so
that machine noise hits both alike (median of the per-round minima). It prints, per shape, both
times and the rule's choice; per model, the sum over all the step's convolutions (both shards:
one core's worth of work each) under the current rule, always-taps, always-im2col and the
faster route of each. Timed alone, a shape misses what the other shard's thread does to the
shared cache and memory.
"""
import argparse
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # one shard's BLAS (before NumPy loads)

import numpy as np  # noqa: E402
from autograd.extend import defvjp_argnums  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from step import tinyvit_stepper  # noqa: E402

from tinyvit.fast import conv as fast_conv  # noqa: E402
from tinyvit.run import models  # noqa: E402

MODELS = ("cnn-tiny", "cnn-small", "cnn-air-small", "cnn-air", "hybrid-tiny", "hybrid-small")
ALWAYS = {"taps": (0, 10**9), "im2col": (10**9, 0)}  # (TAPS_MIN_PIXELS, TAPS_MAX_OUT) per route


def record_convolutions(name, batch):
    """[(x shape, w shape, argnums)] of every convolution in one training step of `name` at
    batch `batch` (each shard's and chunk's); argnums () where autograd does not differentiate."""
    prim, seen, vjps = fast_conv.convolve, [], []

    def forward(x, w):
        seen.append((tuple(x.shape), tuple(w.shape)))
        return prim(x, w)

    def vjp_maker(argnums, ans, args, kwargs):
        vjps.append((tuple(args[0].shape), tuple(args[1].shape), tuple(argnums)))
        return fast_conv._convolve_vjp(argnums, ans, args, kwargs)

    step = tinyvit_stepper(models.build(name), batch)
    fast_conv.convolve = forward
    defvjp_argnums(prim, vjp_maker)
    try:
        step()
    finally:
        fast_conv.convolve = prim
        defvjp_argnums(prim, fast_conv._convolve_vjp)
    differentiated = {(x, w): a for x, w, a in vjps}
    return [(x, w, differentiated.get((x, w), ())) for x, w in seen]


def conv_seconds(x, w, g, argnums, repeats):
    """Fastest of `repeats` forward (+ VJP for `argnums`) passes by the route now chosen."""
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        y = fast_conv.convolve(x, w)
        if argnums:
            fast_conv._convolve_vjp(argnums, y, (x, w), {})(g)
        best = min(best, time.perf_counter() - t)
    return best


def time_routes(shape, rounds, repeats, seed=0):
    """{route: median over rounds of the fastest pass} for one (x shape, w shape, argnums)."""
    xs, ws, argnums = shape
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(xs).astype(np.float32)
    w = rng.standard_normal(ws).astype(np.float32)
    g = rng.standard_normal(xs[:3] + ws[-1:]).astype(np.float32)
    times = {route: [] for route in ALWAYS}
    rule = fast_conv.TAPS_MIN_PIXELS, fast_conv.TAPS_MAX_OUT
    try:
        for r in range(rounds):
            for route in (list(ALWAYS) if r % 2 == 0 else list(ALWAYS)[::-1]):
                fast_conv.TAPS_MIN_PIXELS, fast_conv.TAPS_MAX_OUT = ALWAYS[route]
                times[route].append(conv_seconds(x, w, g, argnums, repeats))
    finally:
        fast_conv.TAPS_MIN_PIXELS, fast_conv.TAPS_MAX_OUT = rule
    return {route: statistics.median(t) for route, t in times.items()}


def rule_route(shape):
    """The route the current rule takes for this shape."""
    return "taps" if fast_conv.use_taps(shape[0], shape[1]) else "im2col"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", nargs="+", default=list(MODELS))
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv)

    layers = {name: record_convolutions(name, args.batch) for name in args.models}
    shapes = sorted({s for convs in layers.values() for s in convs}, key=lambda s: (-s[0][1], s))
    print(f"OPENBLAS_NUM_THREADS={os.environ['OPENBLAS_NUM_THREADS']}, batch {args.batch}, "
          f"TAPS_MIN_PIXELS={fast_conv.TAPS_MIN_PIXELS}, TAPS_MAX_OUT={fast_conv.TAPS_MAX_OUT}, "
          f"{args.rounds} rounds x "
          f"{args.repeats} repeats; ms for forward + VJP (grads: x = input, w = kernel)")
    print(f"{'B':>3} {'H x W':>7} {'C':>4} {'O':>4} {'grads':>5} {'taps':>8} {'im2col':>8} "
          f"{'im2col/taps':>11} {'rule':>6} {'faster':>6}")
    timed = {}
    for s in shapes:
        t = timed[s] = time_routes(s, args.rounds, args.repeats)
        (b, h, w, c), (_, _, _, o), argnums = s
        grads = "".join("xw"[a] for a in argnums) or "-"
        faster = min(t, key=t.get)
        print(f"{b:>3} {h:>3} x{w:>3} {c:>4} {o:>4} {grads:>5} {1e3 * t['taps']:>8.2f} "
              f"{1e3 * t['im2col']:>8.2f} {t['im2col'] / t['taps']:>11.2f} "
              f"{rule_route(s):>6} {faster:>6}")
    print("\nper model, ms for all the convolutions of one step (forward + VJP, shards summed):")
    print(f"{'model':>14} {'rule':>8} {'taps':>8} {'im2col':>8} {'best':>8} {'rule/best':>9}")
    for name, convs in layers.items():
        total = {k: 1e3 * sum(timed[s][k] for s in convs) for k in ALWAYS}
        rule = 1e3 * sum(timed[s][rule_route(s)] for s in convs)
        best = 1e3 * sum(min(timed[s].values()) for s in convs)
        print(f"{name:>14} {rule:>8.1f} {total['taps']:>8.1f} {total['im2col']:>8.1f} "
              f"{best:>8.1f} {rule / best:>9.2f}")


if __name__ == "__main__":
    main()
