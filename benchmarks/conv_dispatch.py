"""Which route for which convolution? Every route on every layer shape of the CNNs and hybrids.

    python benchmarks/conv_dispatch.py                       # the CNNs and hybrids, batch 128
    python benchmarks/conv_dispatch.py --save                # ... and keep the times as this
                                                             # machine's table (tinyvit.fast.tuning)
    python benchmarks/conv_dispatch.py --models cnn-small --rounds 5 --repeats 3
    python benchmarks/conv_dispatch.py --errors              # Winograd's float32 error per shape

`tinyvit.fast.conv.convolve` runs each part of a convolution (forward, input gradient, kernel
gradient) by one of four routes: k*k products on row-offset views of the padded image
("taps"), im2col and one product, or Winograd's F(2x2, 3x3) or F(4x4, 3x3). This script
records every convolution one training step of each model runs as training runs it (the batch
in shards, and GroupNorm CNNs' shards in chunks of 32 rows: `tinyvit.run.train.make_grad_fn`),
with the gradients autograd asks for (none for the fixed whitening stem, only the kernel's for
the first learned layer). Then it times each part of each distinct shape by every route
(`tinyvit.fast.tuning.measure`: in as many threads at once as training runs shards, one BLAS
thread each, clocked by each thread's CPU time; the routes take turns for `--rounds` rounds,
median of the per-round minima).

It prints, per shape and part, every route's time, the default rule's choice and the fastest
of the routes a table may pick (not F(4x4): `tinyvit.fast.conv.AUTOMATIC`); per model, the sum
over all the step's convolutions (both shards, each one core's worth of work) under the rule,
the rule without Winograd ("rule - W"), each route alone and the fastest route of each part.
`--save` merges the times into the table the convolution twin reads on this machine (route per
part and shape by measurement; delete the file to go back to the rule). Run it once per
machine, for the models and the batch size you train (a few minutes for all six).

`--errors` runs each shape's forward pass and both gradients in float32 by both Winograds and
by the taps, and prints max |float32 - float64| / max |float64| of each (the float64
reference: the taps in float64, tested equal to the formula).
"""
import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # one shard's BLAS (before NumPy loads)

import numpy as np  # noqa: E402
from autograd.extend import defvjp_argnums  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from step import tinyvit_stepper  # noqa: E402

from tinyvit.fast import conv as fast_conv  # noqa: E402
from tinyvit.fast import shards, tuning  # noqa: E402
from tinyvit.run import models  # noqa: E402

MODELS = ("cnn-tiny", "cnn-small", "cnn-air-small", "cnn-air", "hybrid-tiny", "hybrid-small")


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


def parts_of(argnums):
    """The parts one training step runs of a convolution whose gradients are `argnums`."""
    return ("forward",) + tuple(("input", "kernel")[a] for a in argnums)


def run_route(part, route, x, w, g):
    """One part of the convolution by one route (tinyvit.fast.tuning.measure's `run`)."""
    return fast_conv.IMPLEMENTATIONS[part, route](x, w, g)


def time_routes(shape, rounds, repeats):
    """{part: {route: seconds}} of one recorded (x shape, w shape, argnums), in this machine's
    training setting (SHARDS threads at once), and the tuning context they were measured in."""
    xs, ws, argnums = shape
    parts = parts_of(argnums)
    (ctx, rows), = tuning.measure(run_route, xs, ws, parts, fast_conv.routes_for(ws), rounds,
                                  repeats, threads=shards.SHARDS).items()
    return ctx, {p: rows[tuning.key(p, xs, ws, np.float32)] for p in parts}


def rule_route(shape, part, winograd=True):
    """The route the default rule takes for this part of this shape (without the Winograd
    routes: the taps or im2col where it takes Winograd)."""
    route = fast_conv.default_route(part, shape[0], shape[1])
    if not winograd and route.startswith("winograd"):
        return "taps" if fast_conv.use_taps(shape[0], shape[1]) else "im2col"
    return route


ERROR_ROUTES = ("winograd", "winograd4", "taps")


def fastest(times):
    """The fastest route a measured table may pick (fast_conv.AUTOMATIC) of {route: seconds}."""
    return min((r for r in times if r in fast_conv.AUTOMATIC), key=times.get)


def relative_errors(shape, seed=0):
    """{part: [max |float32 - float64| / max |float64| of each of ERROR_ROUTES]} of one shape."""
    xs, ws, _ = shape
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(xs)
    w = rng.standard_normal(ws) * np.sqrt(2.0 / (9 * ws[2]))  # He-normal, as init_conv
    g = rng.standard_normal((*xs[:3], ws[-1]))
    out = {}
    for part in fast_conv.PARTS:
        exact = run_route(part, "taps", x, w, g)  # float64
        scale = np.abs(exact).max()
        out[part] = tuple(np.abs(run_route(part, r, *(a.astype(np.float32) for a in (x, w, g)))
                                 - exact).max() / scale for r in ERROR_ROUTES)
    return out


def print_errors(shapes):
    print("float32 error, max |float32 - float64| / max |float64|, per part: Winograd F(2x2, 3x3) "
          "/ F(4x4, 3x3) / the taps (for comparison)")
    print(f"{'B':>3} {'H x W':>7} {'C':>4} {'O':>4} "
          + " ".join(f"{p:>25}" for p in fast_conv.PARTS))
    for s in shapes:
        (b, h, w, c), (_, _, _, o), _ = s
        err = relative_errors(s)
        print(f"{b:>3} {h:>3} x{w:>3} {c:>4} {o:>4} "
              + " ".join("/".join(f"{e:7.1e}" for e in err[p]) for p in fast_conv.PARTS))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", nargs="+", default=list(MODELS))
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--save", action="store_true", help="keep the times as this machine's table")
    ap.add_argument("--errors", action="store_true", help="Winograd's float32 error per shape")
    args = ap.parse_args(argv)

    layers = {name: record_convolutions(name, args.batch) for name in args.models}
    shapes = sorted({s for convs in layers.values() for s in convs}, key=lambda s: (-s[0][1], s))
    if args.errors:
        return print_errors([s for s in shapes if s[1][:2] == (3, 3)])
    print(f"{shards.SHARDS} shard threads x 1 BLAS thread, batch {args.batch}, {args.rounds} "
          f"rounds x {args.repeats} repeats; ms per part (grads: x = input, w = kernel); "
          f"rule: TAPS_MIN_PIXELS={fast_conv.TAPS_MIN_PIXELS}, TAPS_MAX_OUT="
          f"{fast_conv.TAPS_MAX_OUT} (Winograd only from a table or a pin)")
    routes = fast_conv.ROUTES
    print(f"{'B':>3} {'H x W':>7} {'C':>4} {'O':>4} {'part':>7} "
          + " ".join(f"{r:>8}" for r in routes)
          + f" {'im2col/taps':>11} {'rule':>8} {'fastest':>8}")
    timed, table = {}, {}
    for s in shapes:
        ctx, t = time_routes(s, args.rounds, args.repeats)
        timed[s] = t
        for part, times in t.items():
            table.setdefault(ctx, {})[tuning.key(part, s[0], s[1], np.float32)] = times
            (b, h, w, c), (_, _, _, o), _ = s
            cells = " ".join(f"{1e3 * times[r]:8.2f}" if r in times else f"{'-':>8}"
                             for r in routes)
            print(f"{b:>3} {h:>3} x{w:>3} {c:>4} {o:>4} {part:>7} {cells} "
                  f"{times['im2col'] / times['taps']:>11.2f} {rule_route(s, part):>8} "
                  f"{fastest(times):>8}", flush=True)
    print("\nper model, ms for all the convolutions of one step (forward + VJP, shards summed):")
    print(f"{'model':>14} {'rule':>8} {'rule - W':>8} " + " ".join(f"{r:>8}" for r in routes)
          + f" {'best':>8} {'rule/best':>9}")
    for name, convs in layers.items():
        def total(pick):
            return 1e3 * sum(t[pick(s, p, t)] for s in convs for p, t in timed[s].items())

        alone = [total(lambda s, p, t, r=r: r if r in t else rule_route(s, p)) for r in routes]
        rule = total(lambda s, p, t: rule_route(s, p))
        no_winograd = total(lambda s, p, t: rule_route(s, p, winograd=False))
        best = total(lambda s, p, t: fastest(t))
        print(f"{name:>14} {rule:>8.1f} {no_winograd:>8.1f} "
              + " ".join(f"{a:>8.1f}" for a in alone)
              + f" {best:>8.1f} {rule / best:>9.2f}")
    if args.save:
        print(f"\nsaved to {tuning.save(table)}")


if __name__ == "__main__":
    main()
