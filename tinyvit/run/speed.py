"""How fast a model trains on this machine: what the sweeps' cost estimates are made of.

Each sweep runs one single-threaded process per core (`OPENBLAS_NUM_THREADS=1
TINYVIT_SHARDS=1`), so the rate that counts is one thread's: `images_per_second` times
training steps of one shard on random images at a given batch size, and `per_cpu_second`
turns a wall-clock rate into one per CPU-second of this process (on a busy host the first
falls, the second much less). Used by `benchmarks/sweep_cost.py`, `benchmarks/pretrain_cost.py`
and the ladder sweep's estimate (`tinyvit.run.ladder.cost_lines`).

Shape legend: B batch, H, W, C image.
"""
import time

import numpy as np

from .. import fast
from . import models
from .train import make_grad_fn


def images_per_second(name, batch_size, seconds, seed=0):
    """Training images per wall second of one thread (one shard) of model `name` on random
    32 x 32 images, timed for about `seconds` after one warm-up step."""
    net = models.build(name)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch_size, 32, 32, 3)).astype(np.float32)  # (B, H, W, C)
    y = np.arange(batch_size) % net.cfg.num_classes  # (B,)
    params = net.from_data(net.init(rng), x)
    step = make_grad_fn(net, 0.1, shards=1)
    with fast.twins():
        step(params, x, y, rng)  # warm-up
        t0, seen = time.perf_counter(), 0
        while time.perf_counter() - t0 < seconds:
            step(params, x, y, rng)
            seen += batch_size
    return seen / (time.perf_counter() - t0)


def per_cpu_second(measure, *args):
    """(images per wall second, per CPU-second of this process) of `measure(*args)`, a function
    returning images per wall second; the CPU rate scales it by the call's wall / CPU time."""
    w0, c0 = time.perf_counter(), time.process_time()
    rate = measure(*args)
    wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    return rate, rate * wall / max(cpu, 1e-9)
