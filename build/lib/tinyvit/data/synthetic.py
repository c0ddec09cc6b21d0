"""Synthetic stand-in data: a few hundred images any model can tell apart, made in milliseconds.

Smoke runs of the lessons and the tests use it instead of CIFAR-10. Images are uint8
(N, H, W, 3) NHWC, labels int64 (N,), K classes.
"""
import numpy as np


def synthetic_images(n, size=32, k=10, seed=0):
    """Stand-in data for smoke mode: class c is a noisy image with a bright stripe at row 3c."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % k
    x = rng.integers(0, 90, (n, size, size, 3)).astype(np.int64)
    rows = (3 * y) % (size - 2)
    for i in range(n):
        x[i, rows[i]:rows[i] + 2, :, y[i] % 3] += 160
    return np.clip(x, 0, 255).astype(np.uint8), y
