"""What each speed lever buys: a training step with one lever switched off at a time.

    python benchmarks/levers.py                          # vit-cifar-nano and cnn-tiny, batch 128
    python benchmarks/levers.py --models vit-cifar-tiny --rounds 5 --steps 5

The levers (see tinyvit/fast/ for why each one helps):

    layer_norm, softmax, gelu,       the fast twins (hand-derived VJPs, float32, one fused pass)
    cross_entropy, first_token       instead of autograd's generic VJPs of the formulas in
                                     tinyvit/ops.py (ViT), switched with `tinyvit.fast.disable`
    im2col, max_pool, group_norm     the same for the CNN's formulas in tinyvit/cnn.py
    einsum dense layers              `np.einsum("...i,io->...o", x, w)` in every dense layer of
                                     the ViT instead of a 2-D `@` (tinyvit.layers.linear)
    Winograd                         the conv twin's Winograd routes, F(2x2, 3x3) and F(4x4, 3x3)
                                     (`tinyvit.fast.winograd`), where this machine's table or the
                                     rule picks them; "no Winograd": the taps or im2col there
    BLAS accumulation                the conv twin's taps added into the output by sgemm's
                                     beta = 1 (`tinyvit.fast.blas.matmul_into`) instead of
                                     `np.matmul` into a temporary and `out += part`
    malloc                           glibc keeps freed activations instead of returning them
                                     to the OS (`tinyvit.fast.keep_freed_memory`; TINYVIT_NO_MALLOPT=1 switches it off)
    shards                           each batch as 2 shards, one thread each (tinyvit.fast.shards)
                                     against one thread with 2 BLAS threads (TINYVIT_SHARDS=1)
    1 BLAS thread                    one core for everything (1 shard, OPENBLAS_NUM_THREADS=1)

Every variant runs in its own process (malloc settings and BLAS threads are fixed when a
process starts), `--steps` timed steps after two warm-up steps. Variants take turns for
`--rounds` rounds so that machine noise hits all alike; the table shows the median of the
per-round medians, and the slowdown of each variant against "all on" measured in the same run.
"""
import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from step import take_turns, time_steps, tinyvit_stepper  # noqa: E402

from tinyvit import fast  # noqa: E402
from tinyvit.configs import family  # noqa: E402

VIT_LEVERS = list(fast.VIT_TWINS)
CNN_LEVERS = list(fast.CNN_TWINS)


PSEUDO = ("einsum", "numpy products", "winograd")  # levers that are not fast twins


def switch_off(names):
    """The formulas instead of the named fast twins (einsum dense layers for "einsum", NumPy's
    matmul and an add for "numpy products", the convolution without its Winograd routes for
    "winograd")."""
    if "einsum" in names:
        use_einsum_dense_layers()
    if "winograd" in names:
        from tinyvit.fast import conv
        conv.ROUTES = tuple(r for r in conv.ROUTES if not r.startswith("winograd"))
    if "numpy products" in names:
        from tinyvit.fast import blas
        blas._gemm = lambda dtype: None  # matmul_into takes its NumPy route
    fast.disable([n for n in names if n not in PSEUDO])


def use_einsum_dense_layers():
    """Dense layers as one einsum over (..., D_in) instead of a reshape to 2-D and `@`."""
    import autograd.numpy as anp
    from tinyvit import layers

    layers.linear = lambda p, x: anp.einsum("...i,io->...o", x, p["w"]) + p["b"]


def child(model, plain, steps, batch):
    """Run in a subprocess: print the median seconds per step of one variant."""
    from tinyvit.run import models
    step = tinyvit_stepper(models.build(model), batch)  # turns every fast twin on
    switch_off(plain)
    print(time_steps(step, steps))


def variants(model, threads):
    """(label, plain ops, extra environment) for every variant of `model`, "all on" first."""
    on = {"OPENBLAS_NUM_THREADS": str(threads), "TINYVIT_SHARDS": str(threads)}
    levers = CNN_LEVERS if family(model) == "cnn" else VIT_LEVERS
    out = [("all on", [], on)]
    out += [(f"plain {name}", [name], on) for name in levers]
    out.append(("all plain ops", levers, on))
    if family(model) == "vit":
        out.append(("einsum dense layers", ["einsum"], on))
    out.append(("no malloc tuning", [], {**on, "TINYVIT_NO_MALLOPT": "1"}))
    if family(model) == "cnn":  # chunks of 32 rows inside each shard (train.chunk_rows)
        out.append(("no Winograd", ["winograd"], on))
        out.append(("no BLAS accumulation", ["numpy products"], on))
        out.append(("no chunks", [], {**on, "TINYVIT_CHUNK": "0"}))
    if threads > 1:
        out.append(("no shards", [], {**on, "TINYVIT_SHARDS": "1"}))
        out.append(("1 BLAS thread", [], {"OPENBLAS_NUM_THREADS": "1", "TINYVIT_SHARDS": "1"}))
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", nargs="+", default=["vit-cifar-nano", "cnn-tiny"])
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--steps", type=int, default=3, help="timed steps per process")
    ap.add_argument("--threads", type=int, default=os.cpu_count(), help="BLAS threads, 'all on'")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--plain", nargs="*", default=[], help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        return child(args.child, args.plain, args.steps, args.batch_size)
    print(f"batch {args.batch_size}, {args.threads} BLAS threads unless stated, median of "
          f"{args.rounds} rounds x {args.steps} steps, each variant in its own process")
    for model in args.models:
        t0 = time.perf_counter()
        runs = [(label, [__file__, "--child", model, "--steps", str(args.steps), "--batch-size",
                         str(args.batch_size), "--plain", *plain], env)
                for label, plain, env in variants(model, args.threads)]
        med = take_turns(runs, args.rounds)
        base = med["all on"]
        print(f"\n{model} ({time.perf_counter() - t0:.0f} s)\n{'variant':20s} {'ms/step':>8s} "
              f"{'vs all on':>9s}")
        for label, seconds in med.items():
            print(f"{label:20s} {seconds * 1e3:8.0f} {seconds / base:8.2f}x")


if __name__ == "__main__":
    main()
