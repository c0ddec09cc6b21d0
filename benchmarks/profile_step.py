"""Where a training step's time goes: per operation, forward and backward.

    python benchmarks/profile_step.py                         # vit-cifar-nano, batch 128
    python benchmarks/profile_step.py --model cnn-tiny --by layer --top 25
    python benchmarks/profile_step.py --formulas              # the formulas instead of the fast twins

Every autograd primitive the step records is timed: its forward (the time since the previous
recorded operation, so the Python between operations is counted too) and its VJP in the
backward pass. `--by op` groups by operation (matmul, layer_norm, ...), `--by layer` by the
model function that called it and the operation (layers.attention:matmul, ...). The step
runs in this thread on the BLAS threads the process has, without shards: a profile of the
work, not of the threading (benchmarks/step.py times the real step).
"""
import argparse
import os
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import autograd.core as core  # noqa: E402

from tinyvit import fast, optim  # noqa: E402
from tinyvit.run import models  # noqa: E402
from tinyvit.run.train import make_grad_fn  # noqa: E402

MODEL_FILES = {"vit.py", "layers.py", "ops.py", "cnn.py"}


def caller(depth=3):
    """'module.function' of the innermost model function on the stack (or '-')."""
    f = sys._getframe(depth)
    while f is not None:
        name = os.path.basename(f.f_code.co_filename)
        if name in MODEL_FILES and f.f_code.co_name != "<lambda>":
            return f"{name[:-3]}.{f.f_code.co_name}"
        f = f.f_back
    return "-"


class Recorder:
    """Patches autograd's VJPNode to time every recorded operation, forward and backward."""

    def __init__(self, by):
        self.by, self.fwd, self.bwd, self.calls = by, defaultdict(float), defaultdict(float), \
            defaultdict(int)
        self.last = None
        self.original = core.VJPNode.__init__

    def __enter__(self):
        rec = self

        def init(node, value, fun, args, kwargs, parent_argnums, parents):
            now = time.perf_counter()
            op = getattr(fun, "__name__", str(fun))
            key = f"{caller()}:{op}" if rec.by == "layer" else op
            rec.original(node, value, fun, args, kwargs, parent_argnums, parents)
            vjp = node.vjp

            def timed_vjp(g):
                t = time.perf_counter()
                out = vjp(g)
                rec.bwd[key] += time.perf_counter() - t
                return out

            node.vjp = timed_vjp
            end = time.perf_counter()
            rec.fwd[key] += end - (rec.last if rec.last is not None else now)
            rec.calls[key] += 1
            rec.last = end

        core.VJPNode.__init__ = init
        return self

    def __exit__(self, *exc):
        core.VJPNode.__init__ = self.original


def profile(model, batch, steps, by):
    """(per-key forward/backward seconds per step, step parts) averaged over `steps` steps."""
    net = models.build(model)
    rng = np.random.default_rng(0)
    params = net.init(rng)
    state = optim.init_adam(params)
    size, k = net.cfg.image_size, net.cfg.num_classes
    x = rng.standard_normal((batch, size, size, 3)).astype(np.float32)
    y = rng.integers(0, k, batch)
    grad_fn = make_grad_fn(net, 0.1, shards=1)  # one thread: times add up
    grad_fn(params, x, y, rng)  # warm-up
    parts = defaultdict(float)
    with Recorder(by) as rec:
        for _ in range(steps):
            rec.last = time.perf_counter()
            t0 = time.perf_counter()
            grads, _ = grad_fn(params, x, y, rng)
            t1 = time.perf_counter()
            grads, _ = optim.clip_by_global_norm(grads, 1.0)
            params, state = optim.adam_update(params, grads, state, 1e-4, weight_decay=0.05)
            t2 = time.perf_counter()
            parts["forward + backward"] += t1 - t0
            parts["clip + AdamW"] += t2 - t1
    scale = 1.0 / steps
    return ({k: (rec.fwd[k] * scale, rec.bwd[k] * scale, rec.calls[k] // steps)
             for k in rec.fwd}, {k: v * scale for k, v in parts.items()})


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="vit-cifar-nano")
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--by", choices=["op", "layer"], default="op")
    ap.add_argument("--top", type=int, default=20)
    ap.add_argument("--formulas", action="store_true", help="profile the formulas, not the twins")
    args = ap.parse_args(argv)
    (fast.disable if args.formulas else fast.enable)()
    rows, parts = profile(args.model, args.batch_size, args.steps, args.by)
    fwd, bwd = sum(r[0] for r in rows.values()), sum(r[1] for r in rows.values())
    total = sum(parts.values())
    print(f"{args.model}, batch {args.batch_size}, {'formulas' if args.formulas else 'fast twins'}"
          f", mean of {args.steps} steps: {total * 1e3:.1f} ms per step")
    for name, secs in parts.items():
        print(f"  {name:20s} {secs * 1e3:8.1f} ms {secs / total:6.1%}")
    print(f"  (recorded operations: forward {fwd * 1e3:.1f} ms, backward {bwd * 1e3:.1f} ms; the "
          f"rest of forward + backward is autograd's own bookkeeping)")
    print(f"\n{'operation' if args.by == 'op' else 'caller:operation':40s} {'calls':>5s} "
          f"{'fwd ms':>8s} {'bwd ms':>8s} {'total':>8s} {'share':>6s}")
    ranked = sorted(rows.items(), key=lambda kv: -(kv[1][0] + kv[1][1]))
    for key, (f, b, n) in ranked[:args.top]:
        print(f"{key:40s} {n:5d} {f * 1e3:8.2f} {b * 1e3:8.2f} {(f + b) * 1e3:8.2f} "
              f"{(f + b) / total:6.1%}")
    rest = ranked[args.top:]
    if rest:
        f, b = sum(r[1][0] for r in rest), sum(r[1][1] for r in rest)
        print(f"{f'({len(rest)} more)':40s} {'':5s} {f * 1e3:8.2f} {b * 1e3:8.2f} "
              f"{(f + b) * 1e3:8.2f} {(f + b) / total:6.1%}")


if __name__ == "__main__":
    main()
