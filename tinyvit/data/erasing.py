"""Random erasing (Zhong et al. 2020, "Random Erasing Data Augmentation", Algorithm 1) on
uint8 images, a batch at once.

Each image, with probability p, gets one rectangle of random area S_e ~ U(s_l, s_h) S and
aspect ratio r_e ~ U(r_1, 1 / r_1) (H_e = sqrt(S_e r_e), W_e = sqrt(S_e / r_e)) at a random
top-left corner, redrawn until it fits inside the image; its pixels become random values in
0 ... 255. Here every image draws `TRIES` candidate rectangles at once and takes the first
that fits (none fits: the image stays as it is, as timm's `RandomErasing` after its 10 tries).

Shape legend: B batch, H, W height and width, C channels, T tries.
"""
import numpy as np

TRIES = 10


def random_erasing(rng, x, p=0.5, area=(0.02, 0.4), ratio=0.3):
    """Random erasing with probability p, area fraction in [s_l, s_h] = `area` and aspect ratio
    in [r_1, 1 / r_1], r_1 = `ratio`; the paper's defaults. uint8 (B, H, W, C) -> same."""
    if not (0.0 <= p <= 1.0 and 0.0 < area[0] <= area[1] <= 1.0 and 0.0 < ratio <= 1.0):
        raise ValueError(f"random_erasing: expected p in [0, 1], 0 < area[0] <= area[1] <= 1 "
                         f"and ratio in (0, 1], found p={p!r}, area={area!r}, ratio={ratio!r}")
    b, h, w, c = x.shape
    s_e = rng.uniform(area[0], area[1], (b, TRIES)) * (h * w)  # (B, T) areas in pixels
    r_e = rng.uniform(ratio, 1.0 / ratio, (b, TRIES))  # (B, T)
    he = np.round(np.sqrt(s_e * r_e)).astype(np.int64)  # (B, T)
    we = np.round(np.sqrt(s_e / r_e)).astype(np.int64)
    top = (rng.random((b, TRIES)) * h).astype(np.int64)  # (B, T) corners anywhere
    left = (rng.random((b, TRIES)) * w).astype(np.int64)
    fits = (top + he <= h) & (left + we <= w) & (he > 0) & (we > 0)  # (B, T)
    first = np.argmax(fits, axis=1)  # (B,) the first try that fits
    chosen = (rng.random(b) < p) & fits.any(1)  # (B,) images that get a rectangle
    pick = lambda a: a[np.arange(b), first][:, None]  # noqa: E731  (B, 1)
    rows, cols = np.arange(h)[None], np.arange(w)[None]  # (1, H), (1, W)
    in_rows = (rows >= pick(top)) & (rows < pick(top) + pick(he))  # (B, H)
    in_cols = (cols >= pick(left)) & (cols < pick(left) + pick(we))  # (B, W)
    mask = in_rows[:, :, None] & in_cols[:, None, :] & chosen[:, None, None]  # (B, H, W)
    noise = rng.integers(0, 256, x.shape, dtype=np.uint8)  # (B, H, W, C)
    return np.where(mask[..., None], noise, x)
