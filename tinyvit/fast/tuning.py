"""A table of timings measured on this machine: which route runs a layer shape fastest.

The convolution twin (`tinyvit.fast.conv`) can run each part of a convolution (forward, input
gradient, kernel gradient) by several routes; which is fastest depends on the CPU, on how many
threads share it and on the shape. Rather than a constant tuned on one CPU, the routes are
timed once per machine (`measure`, run for the CNNs' and hybrids' layer shapes by
`python benchmarks/conv_dispatch.py --save`) and the times kept in a small JSON file:

    $XDG_CACHE_HOME/tinyvit/conv_routes.json     (else ~/.cache/tinyvit/conv_routes.json)
    {"<CPU model> | <S> shards x <T> BLAS threads":
        {"forward 64x32x32x24 3x3x24x64 float32": {"taps": 0.0123, "im2col": ..., ...}, ...}}

`fastest` reads it (once per process; `forget` rereads it) and answers None where it holds no
entry for this machine, thread setting, shape and dtype; the caller then uses its own
deterministic rule. The file is only a cache: deleting it loses nothing but the timings, and
an unreadable one is ignored with a warning, never overwritten by `save` (which merges new
entries into what is there, through a temporary file and a rename).

The key's thread setting is the one the caller runs under: inside a shard thread of a sharded
training step (`tinyvit.fast.shards`) "<SHARDS> shards x 1 BLAS thread", elsewhere "1 shard x
<OpenBLAS's threads> BLAS threads". `measure` times in the same setting it records.
"""
import functools
import json
import os
import platform
import statistics
import threading
import time
import warnings
from pathlib import Path

import numpy as np

from . import blas, shards

_LOADED = {}  # (XDG_CACHE_HOME, HOME) -> the table read there ({} where unreadable)


def cache_path():
    """The table's file: $XDG_CACHE_HOME/tinyvit/conv_routes.json, else under ~/.cache."""
    root = os.environ.get("XDG_CACHE_HOME") or os.path.join(Path.home(), ".cache")
    return Path(root) / "tinyvit" / "conv_routes.json"


@functools.lru_cache(maxsize=None)
def cpu_model():
    """The CPU's model name (/proc/cpuinfo on Linux, else what `platform` knows); read once."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def context(n_shards=None, n_blas=None):
    """This machine and a thread setting, by default the calling thread's:
    "<CPU> | S shards x T BLAS threads"."""
    if n_shards is None:
        in_shard = threading.current_thread().name.startswith("tinyvit-shard")
        n_shards, n_blas = (shards.SHARDS, 1) if in_shard else (1, blas.threads())
    return (f"{cpu_model()} | {n_shards} shard{'s' * (n_shards > 1)} x {n_blas} BLAS "
            f"thread{'s' * (n_blas > 1)}")


def key(part, x_shape, w_shape, dtype):
    """The entry of one part of one layer: "forward 64x32x32x24 3x3x24x64 float32"."""
    return (f"{part} {'x'.join(map(str, x_shape))} {'x'.join(map(str, w_shape))} "
            f"{np.dtype(dtype).name}")


def _read(path):
    """The table in `path`, {} when there is none; ValueError when it is unreadable."""
    try:
        table = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as e:
        raise ValueError(f"{path} is not a readable table ({e})") from None
    if not isinstance(table, dict):
        raise ValueError(f"{path} is not a readable table (not a JSON object)")
    return table


def table():
    """The measured table of this process (read on first use from `cache_path()`; an
    unreadable file is ignored with a warning)."""
    where = os.environ.get("XDG_CACHE_HOME"), os.environ.get("HOME")  # what cache_path reads
    if where not in _LOADED:
        path = cache_path()
        try:
            _LOADED[where] = _read(path)
        except ValueError as e:
            warnings.warn(f"tinyvit.fast.tuning: ignoring {e}; the convolution uses its "
                          f"default rule. Delete the file or rerun benchmarks/conv_dispatch.py "
                          f"--save to measure again.")
            _LOADED[where] = {}
    return _LOADED[where]


def forget():
    """Reread the file on next use."""
    _LOADED.clear()


def fastest(part, x_shape, w_shape, dtype, routes):
    """The fastest of `routes` measured for this part, shape and dtype in this context, or None
    when the table has no time for any of them."""
    measured = table()
    if not measured:  # no table: nothing to look up (every convolution asks, so answer fast)
        return None
    times = measured.get(context(), {}).get(key(part, x_shape, w_shape, dtype), {})
    times = {r: t for r, t in times.items() if r in routes}
    return min(times, key=times.get) if times else None


def save(entries, where=None):
    """Merge {context: {key: {route: seconds}}} into the table file (created if absent);
    returns its path. An unreadable file is left alone (ValueError)."""
    path = Path(where) if where else cache_path()
    try:
        old = _read(path)
    except ValueError as e:
        raise ValueError(f"tinyvit.fast.tuning: {e}; move it away to save new timings") from None
    for ctx, rows in entries.items():
        for k, times in rows.items():
            old.setdefault(ctx, {}).setdefault(k, {}).update(times)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(old, indent=1, sort_keys=True))
    os.replace(tmp, path)
    forget()
    return path


def measure(run, x_shape, w_shape, parts, routes, rounds=3, repeats=2, threads=1, seed=0,
            clock=None):
    """{context: {key: {route: seconds}}} for each part of one layer shape (float32).

    `run(part, route, x, w, g)` computes one part. Each time is the median over `rounds` of the
    fastest of `repeats` calls; the routes take turns within each round so that noise hits
    them alike. With `threads` > 1 the same timings run at once in that many shard threads
    (one BLAS thread each, on their own arrays, started together), as a sharded training step
    runs them, and each round counts the slowest thread. Where each thread does all its work
    itself (one BLAS thread) the clock is the thread's CPU time, which other programs on a busy
    machine do not inflate as they do the wall-clock time; else the wall clock. `clock` sets
    it (time.perf_counter where times are compared with another library's wall clock)."""
    if clock is None:
        clock = time.thread_time if threads > 1 or blas.threads() == 1 else time.perf_counter

    def one_thread(barrier):
        rng = np.random.default_rng(seed)
        x = rng.standard_normal(x_shape).astype(np.float32)
        w = rng.standard_normal(w_shape).astype(np.float32)
        g = rng.standard_normal((*x_shape[:3], w_shape[-1])).astype(np.float32)
        times = {(p, r): [] for p in parts for r in routes}
        for i in range(rounds):
            for p in parts:
                for r in (routes if i % 2 == 0 else routes[::-1]):
                    barrier.wait()
                    best = float("inf")
                    for _ in range(repeats):
                        t = clock()
                        run(p, r, x, w, g)
                        best = min(best, clock() - t)
                    times[p, r].append(best)
        return times

    barrier = threading.Barrier(threads, timeout=600)
    if threads > 1:
        results = list(shards._pool(threads).map(one_thread, [barrier] * threads))
    else:
        results = [one_thread(barrier)]
    ctx = context(threads, 1) if threads > 1 else context()
    out = {}
    for p in parts:
        for r in routes:
            per_round = [max(t[p, r][i] for t in results) for i in range(rounds)]
            out.setdefault(key(p, x_shape, w_shape, np.float32), {})[r] = (
                statistics.median(per_round))
    return {ctx: out}
