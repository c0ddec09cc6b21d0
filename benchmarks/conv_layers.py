"""Why the CNNs trail PyTorch, layer by layer: every 3x3 convolution shape of the CNNs, each
part by each route of tinyvit's convolution twin, against PyTorch's conv2d.

    python benchmarks/conv_layers.py                     # cnn-tiny, cnn-small, cnn-air, 2 threads
    python benchmarks/conv_layers.py --threads 1 --rounds 5 --repeats 5
    python benchmarks/conv_layers.py --models cnn-air-small --batch-size 256

The shapes are those the models run (`tinyvit.cnn.conv_shapes`: (Cin, Cout, side) of every
convolution, a stage's first before its pool), at batch `--batch-size`; the parts those a
training step runs (the forward pass, the input gradient "input", the kernel gradient
"kernel"; the first learned layer has no input gradient, the fixed whitening stem none).

tinyvit runs each part as training runs it (`tinyvit.fast.tuning.measure`, as
`benchmarks/conv_dispatch.py` does): the batch in T shards, one thread each with one BLAS
thread, started together, each round counting the slowest thread; by each route a measured
table may pick (`tinyvit.fast.conv.AUTOMATIC`: taps, im2col, winograd). PyTorch runs the
whole batch on T threads (`torch.set_num_threads`, NCHW as in `benchmarks/step.py`):
`F.conv2d`, and `aten.convolution_backward` asked for one gradient at a time. Both by the
wall clock, as the peak: run it on an idle machine. Each library runs in its own process per
shape, the two taking turns for `--rounds` rounds (`step.take_turns`: noise hits both
alike); times are the medians of the per-process bests of `--repeats` calls.

Per shape and part it prints every route's ms, the fastest route's GFLOP/s and its share of
the float32 matmul peak measured in the same run (`step.peak_at`), PyTorch's, the ratio
tinyvit (fastest) / PyTorch, and the matrix products (M x K x N, and how many) the fastest
route issues, so the reason can be read off a row: a product with K = C = 16 reaches a small
share of the peak however it is arranged. FLOPs are the direct convolution's, 2 B H W 9 C O,
whichever route runs (Winograd does fewer multiplies for the same result, so its share of
the peak can pass 100%). Then per model, the sum over its convolutions (with multiplicity)
under the default rule (`default_route`, what training runs without a measured table), with
the fastest route per part, and PyTorch's. Without torch its columns are skipped with a
message. A few minutes at the defaults (two processes per shape and round, each starting
NumPy, tinyvit and torch).
"""
import argparse
import json
import os
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from conv_dispatch import run_route  # noqa: E402
from step import has_torch, peak_at, take_turns, thread_env  # noqa: E402

from tinyvit import cnn  # noqa: E402
from tinyvit.fast import conv as fast_conv  # noqa: E402
from tinyvit.fast import shards, tuning, winograd  # noqa: E402
from tinyvit.run import models  # noqa: E402

MODELS = ("cnn-tiny", "cnn-small", "cnn-air")
ROUTES = fast_conv.AUTOMATIC  # taps, im2col, winograd


def layer_shapes(names, batch):
    """{(B, H, W, C, O): {"parts": the parts training runs, "uses": {model: convolutions}}} of
    every convolution of the models `names` (`cnn.conv_shapes`), in order of first use."""
    shapes = {}
    for name in names:
        cfg = models.build(name).cfg
        first_learned = 1 if cfg.whiten else 0  # its input is a constant: no input gradient
        for i, (cin, cout, side) in enumerate(cnn.conv_shapes(cfg)):
            entry = shapes.setdefault((batch, side, side, cin, cout),
                                      {"parts": set(), "uses": Counter()})
            entry["parts"].update(("forward",) if i < first_learned else
                                  ("forward", "kernel") if i == first_learned else fast_conv.PARTS)
            entry["uses"][name] += 1
    for entry in shapes.values():
        entry["parts"] = [p for p in fast_conv.PARTS if p in entry["parts"]]
    return shapes


def flops(shape):
    """FLOPs of one part of a 3x3 'same' convolution, counted as the direct one: 2 B H W 9 C O."""
    b, h, w, c, o = shape
    return 2 * b * h * w * 9 * c * o


def shard_shapes(shape, threads):
    """(x shape, w shape) of one shard thread's part of the batch (training's split)."""
    b, h, w, c, o = shape
    (lo, hi), *_ = shards.bounds(b, threads)
    return (hi - lo, h, w, c), (3, 3, c, o)


def blas_products(part, route, x_shape, w_shape):
    """Counter {(M, K, N): calls} of the matrix products one part issues by one route: the calls
    of `blas.matmul_into` recorded on a run of zeros (taps, Winograd), im2col's one product."""
    if route == "im2col":
        rows, cols, o = int(np.prod(x_shape[:3])), 9 * x_shape[3], w_shape[-1]
        return Counter({{"forward": (rows, cols, o), "input": (rows, o, cols),
                         "kernel": (cols, rows, o)}[part]: 1})
    calls, real = Counter(), fast_conv.matmul_into

    def recording(a, b, out, accumulate=False):
        calls[a.shape[0], a.shape[1], b.shape[1]] += 1
        return real(a, b, out, accumulate)

    x, w = np.zeros(x_shape, np.float32), np.zeros(w_shape, np.float32)
    g = np.zeros((*x_shape[:3], w_shape[-1]), np.float32)
    fast_conv.matmul_into = winograd.matmul_into = recording
    try:
        run_route(part, route, x, w, g)
    finally:
        fast_conv.matmul_into = winograd.matmul_into = real
    return calls


def describe(products, most=2):
    """'9 x 4224x16x32' for the most frequent product shapes (and how many others)."""
    common = products.most_common()
    text = ", ".join(f"{n} x {m}x{k}x{nn}" for (m, k, nn), n in common[:most])
    return text + (f" (+{len(common) - most} other)" if len(common) > most else "")


# ---------------------------------------------------------------------------------------------
# The two sides, each run in a child process for one shape: a JSON {"part route": seconds}
# ---------------------------------------------------------------------------------------------


def tinyvit_times(shape, parts, threads, repeats):
    """{"part route": seconds} of tinyvit's routes, as a sharded training step runs them."""
    xs, ws = shard_shapes(shape, threads)
    (_, rows), = tuning.measure(run_route, xs, ws, parts, ROUTES, rounds=1, repeats=repeats,
                                threads=threads, clock=time.perf_counter).items()
    return {f"{p} {r}": t for p in parts
            for r, t in rows[tuning.key(p, xs, ws, np.float32)].items()}


def torch_times(shape, parts, threads, repeats):
    """{"part torch": seconds} of PyTorch's conv2d and its two gradients, the whole batch."""
    import torch
    from torch.nn import functional as F

    torch.set_num_threads(threads)
    b, h, w, c, o = shape
    x, wt, g = torch.randn(b, c, h, w), torch.randn(o, c, 3, 3), torch.randn(b, o, h, w)

    def backward(mask):
        return lambda: torch.ops.aten.convolution_backward(
            g, x, wt, None, [1, 1], [1, 1], [1, 1], False, [0, 0], 1, mask)

    run = {"forward": lambda: F.conv2d(x, wt, padding=1),
           "input": backward([True, False, False]), "kernel": backward([False, True, False])}
    out = {}
    with torch.no_grad():
        for p in parts:
            run[p]()  # warm-up
            best = float("inf")
            for _ in range(repeats):
                t = time.perf_counter()
                run[p]()
                best = min(best, time.perf_counter() - t)
            out[f"{p} torch"] = best
    return out


def last_line_json(stdout):
    return json.loads(stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------------------------------------
# The table
# ---------------------------------------------------------------------------------------------


def measure(shapes, threads, rounds, repeats, torch):
    """{shape: {"part route": median seconds}}, tinyvit's and (with `torch`) PyTorch's."""
    times = {}
    for shape, entry in shapes.items():
        args = ["--shape", ",".join(map(str, shape)), "--parts", *entry["parts"],
                "--threads", str(threads), "--repeats", str(repeats)]
        sides = ["tinyvit"] + (["torch"] if torch else [])
        runs = [(side, [__file__, "--child", side, *args], thread_env(threads)) for side in sides]
        med = take_turns(runs, rounds, parse=last_line_json)
        times[shape] = {k: t for side in sides for k, t in med[side].items()}
    return times


def print_shapes(shapes, times, threads, peak):
    """One row per shape and part: routes' ms, the fastest's rate, PyTorch's, the products."""
    print(f"{'B':>3} {'H x W':>7} {'C':>4} {'O':>4} {'part':>7} "
          + " ".join(f"{r:>8}" for r in ROUTES)
          + f" {'GFLOP/s':>8} {'% peak':>6} {'torch':>8} {'GFLOP/s':>8} {'% peak':>6} "
            f"{'ratio':>6}  products of the fastest route (calls x M x K x N)   used by")
    for shape, entry in shapes.items():
        b, h, w, c, o = shape
        xs, ws = shard_shapes(shape, threads)
        uses = ", ".join(f"{m} x{n}" for m, n in entry["uses"].items())
        for p in entry["parts"]:
            t = times[shape]
            best = min(ROUTES, key=lambda r: t[f"{p} {r}"])
            rate = flops(shape) / t[f"{p} {best}"] / 1e9
            cells = " ".join(f"{1e3 * t[f'{p} {r}']:8.2f}" for r in ROUTES)
            torch = t.get(f"{p} torch")
            vs = (f"{1e3 * torch:8.2f} {flops(shape) / torch / 1e9:8.1f} "
                  f"{flops(shape) / torch / 1e9 / peak:6.0%} {t[f'{p} {best}'] / torch:6.2f}"
                  if torch else f"{'-':>8} {'-':>8} {'-':>6} {'-':>6}")
            print(f"{b:>3} {h:>3} x{w:>3} {c:>4} {o:>4} {p:>7} {cells} {rate:8.1f} "
                  f"{rate / peak:6.0%} {vs}  {best}: "
                  f"{describe(blas_products(p, best, xs, ws)):40s} {uses}", flush=True)


def print_models(names, shapes, times, threads):
    """Per model, ms of all its convolutions' parts: the rule's routes, the fastest, PyTorch."""
    print(f"\nper model, ms for one step's convolutions (batch {next(iter(shapes))[0]}, "
          f"{threads} thread{'s' * (threads > 1)}):")
    print(f"{'model':>10} {'rule':>8} {'fastest':>8} {'torch':>8} {'rule/torch':>10} "
          f"{'fastest/torch':>13}   (torch: nan without it)")
    for name in names:
        total = Counter()
        for shape, entry in shapes.items():
            xs, ws = shard_shapes(shape, threads)
            for p in entry["parts"]:
                t, n = times[shape], entry["uses"][name]
                total["rule"] += n * t[f"{p} {fast_conv.default_route(p, xs, ws)}"]
                total["fastest"] += n * min(t[f"{p} {r}"] for r in ROUTES)
                total["torch"] += n * t.get(f"{p} torch", float("nan"))
        rule, best, torch = (1e3 * total[k] for k in ("rule", "fastest", "torch"))
        print(f"{name:>10} {rule:8.1f} {best:8.1f} {torch:8.1f} {rule / torch:10.2f} "
              f"{best / torch:13.2f}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", nargs="+", default=list(MODELS))
    ap.add_argument("--threads", type=int, default=min(os.cpu_count() or 1, 2))
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--repeats", type=int, default=3, help="timed calls per part per process")
    ap.add_argument("--rounds", type=int, default=3, help="processes per library, taking turns")
    ap.add_argument("--child", choices=["tinyvit", "torch"], help=argparse.SUPPRESS)
    ap.add_argument("--shape", help=argparse.SUPPRESS)
    ap.add_argument("--parts", nargs="+", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        shape = tuple(int(v) for v in args.shape.split(","))
        side = tinyvit_times if args.child == "tinyvit" else torch_times
        print(json.dumps(side(shape, args.parts, args.threads, args.repeats)))
        return
    torch = has_torch()
    if not torch:
        print("torch is not installed: timing tinyvit only (pip install -r requirements-dev.txt)")
    shapes = layer_shapes(args.models, args.batch_size)
    peak = peak_at(args.threads)
    print(f"{len(shapes)} convolution shapes of {', '.join(args.models)}, batch "
          f"{args.batch_size}, {args.threads} thread{'s' * (args.threads > 1)}; median of "
          f"{args.rounds} rounds x best of {args.repeats}; ms per part; float32 matmul peak "
          f"{peak:.0f} GFLOP/s at the same threads")
    times = measure(shapes, args.threads, args.rounds, args.repeats, torch)
    print_shapes(shapes, times, args.threads, peak)
    print_models(args.models, shapes, times, args.threads)


if __name__ == "__main__":
    main()
