"""Both cores for the whole training step: the batch in shards, one thread each.

NumPy releases the GIL inside its ufunc loops and BLAS calls, so two Python threads, each
running forward + backward of half the batch on one BLAS thread, keep two cores busy for the
whole step, where one thread keeps the second core busy only inside the large matrix products.

The gradient of a mean loss over the batch is the size-weighted sum of the shards' gradients,

    grad = sum_i (n_i / n) grad_i,        loss = sum_i (n_i / n) loss_i,

the same numbers up to float32 summation order. Shards are fixed contiguous slices and are
added in their order, so a run is deterministic. Dropout (when the model has any) draws from
one stream per shard, seeded from the step's generator.

`sharded(grad_fn, shards)` wraps a `grad_fn(params, x, y, rng) -> (grads, (loss, logits))`
(tinyvit.run.train.make_grad_fn) into one with the same signature. `sharded_map(fn, x, shards)`
does the same for a forward pass (evaluation): fn of each shard of x, concatenated;
`map_in_threads(fn, items, shards)` fn of each item, `shards` at a time, in order.
`SHARDS`, how many training and evaluation use: one per core, at most two (this project's
machines have two); the environment variable TINYVIT_SHARDS=1 runs everything in one thread.
`chunked(grad_fn, rows)` runs a batch as consecutive chunks of at most `rows` rows, for models
without BatchNorm (training does so for such CNNs: `tinyvit.run.train.chunk_rows`).
"""
import atexit
import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from ..arrays import array_module
from ..tree import tree_map
from . import blas

SHARDS = int(os.environ.get("TINYVIT_SHARDS") or min(os.cpu_count() or 1, 2))
_POOLS = {}


def _pool(n):
    """A persistent pool of n worker threads, each with one BLAS thread."""
    if n not in _POOLS:
        _POOLS[n] = ThreadPoolExecutor(n, thread_name_prefix="tinyvit-shard",
                                       initializer=blas.set_thread_local, initargs=(1,))
        atexit.register(_POOLS[n].shutdown)
    return _POOLS[n]


def bounds(n, shards):
    """Contiguous (start, stop) slices splitting n rows into `shards` near-equal parts."""
    cuts = np.linspace(0, n, min(shards, n) + 1).round().astype(int)
    return [(int(a), int(b)) for a, b in zip(cuts[:-1], cuts[1:])]


def _one_thread(x, shards):
    """True when x is better done in this thread: one shard, one row, a GPU array (it gains
    nothing from threads), or already inside a shard (a nested pool would wait on itself)."""
    return (shards < 2 or len(x) < 2 or array_module(x).__name__ == "cupy"
            or threading.current_thread().name.startswith("tinyvit-shard"))


def sharded(grad_fn, shards=2, dropout=False):
    """grad_fn over `shards` threads; `dropout`: give each shard its own random stream."""
    if shards < 2:
        return grad_fn

    def run(params, x, y, rng):
        if _one_thread(x, shards):
            return grad_fn(params, x, y, rng)
        parts = bounds(len(x), shards)
        if dropout and rng is not None:  # one stream per shard, from the step's generator
            seeds = rng.integers(0, 2**63, len(parts))
            rngs = [np.random.default_rng(s) for s in seeds]
        else:
            rngs = [rng] * len(parts)
        futures = [_pool(shards).submit(grad_fn, params, x[a:b], y[a:b], r)
                   for (a, b), r in zip(parts, rngs)]
        return _combine([f.result() for f in futures], parts)  # in order: deterministic sums

    return run


def _combine(results, parts):
    """One (grads, (loss, logits)) from those of contiguous parts of a batch, in order:
    grad = sum_i (n_i / n) grad_i, loss likewise, logits concatenated (B, K)."""
    n = parts[-1][1] - parts[0][0]
    weights = [(b - a) / n for a, b in parts]
    grads = tree_map(lambda *gs: _weighted_sum(gs, weights), *[g for g, _ in results])
    loss = sum(w * float(l) for w, (_, (l, _)) in zip(weights, results))
    logits = array_module(results[0][1][1]).concatenate([lg for _, (_, lg) in results])
    return grads, (loss, logits)


def chunked(grad_fn, rows):
    """grad_fn run on consecutive chunks of at most `rows` rows of the batch, one after
    another, their gradients summed with weights n_i / n: the same gradient up to float32
    rounding, for a model that treats rows independently (no BatchNorm: there, the chunk
    would become the batch its statistics come from). A CNN's activations of a few dozen
    images stay in the CPU's caches, so small chunks run faster. Dropout draws from the
    step's generator chunk after chunk (deterministic)."""
    if not rows:
        return grad_fn

    def run(params, x, y, rng):
        if len(x) <= rows:
            return grad_fn(params, x, y, rng)
        parts = [(a, min(a + rows, len(x))) for a in range(0, len(x), rows)]
        return _combine([grad_fn(params, x[a:b], y[a:b], rng) for a, b in parts], parts)

    return run


def sharded_map(fn, x, shards=2):
    """fn(x) computed as fn of `shards` contiguous slices of x, each in a thread with one BLAS
    thread, concatenated in order: the same rows (fn must treat rows independently, as a model
    at evaluation does). x (B, ...) -> fn's output (B, ...)."""
    if _one_thread(x, shards):
        return fn(x)
    futures = [_pool(shards).submit(fn, x[a:b]) for a, b in bounds(len(x), shards)]
    return array_module(x).concatenate([f.result() for f in futures])


def map_in_threads(fn, items, shards=SHARDS):
    """[fn(item) for item in items], run `shards` at a time in threads with one BLAS thread
    each, the results in the items' order (BatchNorm's population statistics: one batch per
    core, `tinyvit.cnn.population_stats`). fn must not depend on which thread runs it."""
    items = list(items)
    if _one_thread(items, shards) or array_module(items[0]).__name__ == "cupy":
        return [fn(item) for item in items]
    return list(_pool(shards).map(fn, items))


def _weighted_sum(arrays, weights):
    """sum_i w_i a_i in the arrays' dtype (weights are Python floats: float32 stays float32)."""
    out = arrays[0] * weights[0]
    for a, w in zip(arrays[1:], weights[1:]):
        out += a * w
    return out
