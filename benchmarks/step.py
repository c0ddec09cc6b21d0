"""Time one training step (forward + backward + AdamW) of tinyvit against PyTorch eager.

    python benchmarks/step.py              # the four models at all cores and at 1 thread
    python benchmarks/step.py --models vit-cifar-nano --threads 2 --repeats 10 --rounds 5

Both run the same model on the same threads, each library in its own process, the two taking
turns for `--rounds` rounds so machine noise hits both alike (not in one process: there their
thread pools spin against each other; see `bench`). For each thread count T the processes
get OPENBLAS_NUM_THREADS=T, torch.set_num_threads(T), and tinyvit T shards per step
(TINYVIT_SHARDS=T: one thread per shard, as `python -m tinyvit train` runs on T cores). The
script prints median ms/step, the ratio tinyvit/PyTorch, and achieved GFLOP/s as a share of
the float32 matmul peak at T threads, measured in the same run; then what the extra cores buy
each library.
The PyTorch side is skipped with a message when torch is not installed. `--baseline DIR` also
times the tinyvit of another checkout (e.g. `git worktree add /tmp/before HEAD~1`) in the same
turns, and prints each model's time there and the ratio this tree / that one.
Training FLOPs are counted as 3x the forward matmul FLOPs (forward + two backward products).
"""
import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tinyvit import cnn, fast, optim, vit  # noqa: E402
from tinyvit.configs import family  # noqa: E402
from tinyvit.run import models  # noqa: E402
from tinyvit.run.train import make_grad_fn, train_step  # noqa: E402


def blas_threads():
    """Threads NumPy's BLAS uses (OpenBLAS reads OPENBLAS_NUM_THREADS, default: all cores)."""
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        if os.environ.get(var):
            return int(os.environ[var])
    return os.cpu_count()


def matmul_peak(n=2048, repeats=5):
    """Best float32 GFLOP/s of an n x n matmul in NumPy (and in torch, if present)."""
    a = np.random.default_rng(0).standard_normal((n, n)).astype(np.float32)
    best = 0.0
    for _ in range(repeats):
        t = time.perf_counter()
        a @ a
        best = max(best, 2 * n**3 / (time.perf_counter() - t) / 1e9)
    try:
        import torch

        torch.set_num_threads(blas_threads())  # the peak of the threads the steps get
        ta = torch.from_numpy(a)
        for _ in range(repeats):
            t = time.perf_counter()
            ta @ ta
            best = max(best, 2 * n**3 / (time.perf_counter() - t) / 1e9)
    except ImportError:
        pass
    return best


# ---------------------------------------------------------------------------------------------
# tinyvit side
# ---------------------------------------------------------------------------------------------


def tinyvit_stepper(net, batch, seed=0):
    """A closure running one tinyvit training step on a fixed random batch, as training runs
    it: the fast twins on (`tinyvit.fast`) and the malloc setting training turns on."""
    fast.enable()
    fast.keep_freed_memory()
    rng = np.random.default_rng(seed)
    params = net.init(rng)
    state = optim.init_adam(params)
    size, k = net.cfg.image_size, net.cfg.num_classes
    x = rng.standard_normal((batch, size, size, 3)).astype(np.float32)
    y = rng.integers(0, k, batch)
    grad_fn = make_grad_fn(net, 0.1)

    def step():
        nonlocal params, state
        params, state, _, _, _ = train_step(grad_fn, params, state, x, y, rng, 1e-4, 0.05, 1.0)

    return step


# ---------------------------------------------------------------------------------------------
# PyTorch eager side: the same architectures written with torch.nn
# ---------------------------------------------------------------------------------------------


def torch_vit(cfg):
    """ViT of `cfg` in PyTorch eager (pre-LN blocks, fused qkv, SDPA, tanh GELU)."""
    import torch
    from torch import nn
    from torch.nn import functional as F

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            d = cfg.width
            self.ln1, self.ln2 = nn.LayerNorm(d, eps=1e-6), nn.LayerNorm(d, eps=1e-6)
            self.qkv, self.out = nn.Linear(d, 3 * d), nn.Linear(d, d)
            self.fc1, self.fc2 = nn.Linear(d, cfg.mlp_dim), nn.Linear(cfg.mlp_dim, d)

        def forward(self, z):
            b, n, d = z.shape
            qkv = self.qkv(self.ln1(z)).reshape(b, n, 3, cfg.heads, d // cfg.heads)
            q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)
            a = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(b, n, d)
            z = z + self.out(a)
            return z + self.fc2(F.gelu(self.fc1(self.ln2(z)), approximate="tanh"))

    class ViT(nn.Module):
        def __init__(self):
            super().__init__()
            d, p = cfg.width, cfg.patch_size
            self.embed = nn.Conv2d(cfg.channels, d, p, stride=p)
            self.cls = nn.Parameter(torch.zeros(1, 1, d))
            self.pos = nn.Parameter(torch.randn(1, cfg.num_tokens, d) * 0.02)
            self.blocks = nn.ModuleList(Block() for _ in range(cfg.depth))
            self.norm, self.head = nn.LayerNorm(d, eps=1e-6), nn.Linear(d, cfg.num_classes)

        def forward(self, x):
            z = self.embed(x).flatten(2).transpose(1, 2)  # (B, N, D)
            z = torch.cat([self.cls.expand(len(z), -1, -1), z], 1) + self.pos
            for blk in self.blocks:
                z = blk(z)
            return self.head(self.norm(z)[:, 0])

    return ViT()


def torch_cnn(cfg):
    """The tinyvit CNN mirrored in torch.nn: conv -> (max-pool) -> GroupNorm -> ReLU blocks."""
    from torch import nn

    def block(cin, cout, pool):
        mods = [nn.Conv2d(cin, cout, cfg.kernel, padding=cfg.kernel // 2, bias=not cfg.groups)]
        mods += [nn.MaxPool2d(2)] if pool else []
        mods += [nn.GroupNorm(cfg.groups, cout, eps=cfg.norm_eps)] if cfg.groups else []
        return mods + [nn.ReLU()]

    mods, cin = block(cfg.channels, cfg.stem, False), cfg.stem
    for width in cfg.widths:
        mods += block(cin, width, True)
        for _ in range(cfg.depth - 1):
            mods += block(width, width, False)
        cin = width
    mods += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(cin, cfg.num_classes)]
    return nn.Sequential(*mods)


def torch_stepper(net, batch, seed=0):
    """A closure running one PyTorch eager training step (AdamW, label smoothing, clipping)."""
    import torch
    from torch.nn import functional as F

    torch.manual_seed(seed)
    module = (torch_cnn if family(net.cfg) == "cnn" else torch_vit)(net.cfg)
    opt = torch.optim.AdamW(module.parameters(), lr=1e-4, weight_decay=0.05)
    size = net.cfg.image_size
    x = torch.randn(batch, 3, size, size)
    y = torch.randint(0, net.cfg.num_classes, (batch,))

    def step():
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(module(x), y, label_smoothing=0.1)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(module.parameters(), 1.0)
        opt.step()

    return step


def train_flops(net, batch):
    """3 x forward matmul FLOPs of one batch."""
    macs = (cnn if family(net.cfg) == "cnn" else vit).flops_per_image(net.cfg)
    return 3 * 2 * macs * batch


def time_steps(step, repeats, warmup=2):
    """Median seconds of `repeats` calls of `step` after `warmup` untimed ones."""
    for _ in range(warmup):
        step()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        step()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def child(side, name, batch, repeats):
    """Run in a subprocess: print the median seconds per step of one library (or the peak)."""
    if side == "peak":
        print(matmul_peak())
        return
    net = models.build(name)
    if side == "pytorch":
        import torch

        torch.set_num_threads(blas_threads())
        print(time_steps(torch_stepper(net, batch), repeats))
    else:
        print(time_steps(tinyvit_stepper(net, batch), repeats))


def has_torch():
    import importlib.util

    return importlib.util.find_spec("torch") is not None


def take_turns(runs, rounds, parse=None):
    """{label: median seconds} of commands that each print seconds as their last word.

    `runs` is a list of (label, argv, extra environment). Each command runs in its own process,
    `rounds` times, in the list's order and then reversed, so machine noise hits all alike.
    `parse(stdout) -> {name: seconds}` reads a command that prints several timings; then
    {label: {name: median seconds}}.
    """
    times = {label: [] for label, _, _ in runs}
    for r in range(rounds):
        for label, argv, env in (runs if r % 2 == 0 else runs[::-1]):
            out = subprocess.run([sys.executable, *argv], env={**os.environ, **env},
                                 capture_output=True, text=True)
            if out.returncode:
                raise SystemExit(f"{label} failed:\n{out.stderr[-2000:]}")
            times[label].append(parse(out.stdout) if parse else float(out.stdout.split()[-1]))
    if parse:
        return {label: {k: statistics.median(d[k] for d in t) for k in t[0]}
                for label, t in times.items()}
    return {label: statistics.median(t) for label, t in times.items()}


def bench(name, batch, repeats, rounds, env, baseline=None):
    """Median seconds per step for tinyvit and torch (absent when torch is missing).

    Each library runs in its own process, the two taking turns for `rounds` rounds (noise hits
    both alike). In one process they slow each other down: after each operation, OpenBLAS's
    and PyTorch's worker threads keep spinning for a while, on the same two cores (measured:
    tinyvit's steps 18-28% slower next to torch than alone).
    """
    sides = ["tinyvit"] + (["pytorch"] if has_torch() else [])
    args = ["--models", name, "--batch-size", str(batch), "--repeats", str(repeats)]
    runs = [(side, [__file__, "--child", side, *args], env) for side in sides]
    if baseline:
        script = str(Path(baseline) / "benchmarks" / "step.py")
        runs.append(("baseline", [script, "--child", "tinyvit", *args], env))
    return models.build(name), take_turns(runs, rounds)


def thread_env(threads):
    """The environment of a child process that may use `threads` cores."""
    t = str(threads)
    return {"OPENBLAS_NUM_THREADS": t, "OMP_NUM_THREADS": t, "MKL_NUM_THREADS": t,
            "TINYVIT_SHARDS": t}


def peak_at(threads):
    """The float32 matmul peak (GFLOP/s) of a process with `threads` BLAS threads."""
    out = subprocess.run([sys.executable, __file__, "--child", "peak"], capture_output=True,
                         text=True, env={**os.environ, **thread_env(threads)}, check=True)
    return float(out.stdout.split()[-1])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", nargs="+",
                    default=["vit-cifar-tiny", "cnn-small", "vit-cifar-nano", "cnn-tiny"])
    ap.add_argument("--threads", type=int, nargs="+", default=sorted({os.cpu_count(), 1})[::-1])
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--repeats", type=int, default=5, help="timed steps per process")
    ap.add_argument("--rounds", type=int, default=3, help="processes per library, taking turns")
    ap.add_argument("--baseline", help="another tinyvit checkout to time side by side")
    ap.add_argument("--child", choices=["tinyvit", "pytorch", "peak"], help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        return child(args.child, args.models[0], args.batch_size, args.repeats)
    if not has_torch():
        print("torch is not installed: timing tinyvit only (pip install -r requirements-dev.txt)")
    print(f"batch {args.batch_size}; median of {args.rounds} rounds x {args.repeats} steps; "
          f"peak = float32 matmul 2048^2, best of 5, at the same threads")
    print(f"{'model':16s} {'threads':>7s} {'tinyvit ms':>10s} {'torch ms':>9s} {'ratio':>6s} "
          f"{'tinyvit GFLOP/s':>15s} {'% peak':>6s} {'torch % peak':>12s}")
    times = {}
    for threads in args.threads:
        peak = peak_at(threads)
        for name in args.models:
            net, med = bench(name, args.batch_size, args.repeats, args.rounds,
                             thread_env(threads), args.baseline)
            times[name, threads] = med
            flops = train_flops(net, args.batch_size)
            tv, pt = med["tinyvit"], med.get("pytorch")
            ratio = f"{tv / pt:6.2f}" if pt else "     -"
            pt_ms = f"{pt * 1e3:9.0f}" if pt else "        -"
            pt_peak = f"{flops / pt / 1e9 / peak:12.0%}" if pt else "           -"
            print(f"{name:16s} {threads:7d} {tv * 1e3:10.0f} {pt_ms} {ratio} "
                  f"{flops / tv / 1e9:15.1f} {flops / tv / 1e9 / peak:6.0%} {pt_peak}  "
                  f"(peak {peak:.0f} GFLOP/s)", flush=True)
            if "baseline" in med:
                print(f"{'':16s} {'':7s} baseline {med['baseline'] * 1e3:.0f} ms, this tree / "
                      f"baseline {tv / med['baseline']:.2f}", flush=True)
    if len(args.threads) > 1:
        hi, lo = max(args.threads), min(args.threads)
        print(f"\nwhat {hi} threads buy over {lo} (time at {lo} / time at {hi}):")
        for name in args.models:
            a, b = times[name, lo], times[name, hi]
            buys = "  ".join(f"{side} {a[side] / b[side]:.2f}x" for side in a)
            print(f"{name:16s} {buys}")


if __name__ == "__main__":
    main()
