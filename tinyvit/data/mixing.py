"""CutMix (Yun et al. 2019), and one of mixup or CutMix per batch (as timm's `Mixup`), with
the labels mixed the way `augment.mixup` mixes them: soft targets, rows summing to 1.

    x, t = cutmix(rng, x, one_hot(y, K), alpha=1.0)     a box of the batch's images pasted
                                                        into each image; t its soft targets
    x, t = mix_batch(rng, x, one_hot(y, K), 0.8, 1.0)   mixup (alpha 0.8) or CutMix (alpha 1)

Shape legend: B batch, H, W height and width, C channels, K classes.
"""
import numpy as np

from .augment import mixup


def cut_box(rng, h, w, lam):
    """CutMix's box (Yun et al. 2019, Eq. 2): r_w = W sqrt(1 - lam), r_h = H sqrt(1 - lam),
    its centre uniform over the image, clipped to it. -> (top, bottom, left, right)."""
    cut = np.sqrt(1.0 - lam)
    ch, cw = int(h * cut), int(w * cut)
    cy, cx = rng.integers(0, h), rng.integers(0, w)
    return (int(np.clip(cy - ch // 2, 0, h)), int(np.clip(cy + ch // 2, 0, h)),
            int(np.clip(cx - cw // 2, 0, w)), int(np.clip(cx + cw // 2, 0, w)))


def cutmix(rng, x, y_onehot, alpha=1.0):
    """CutMix: lam ~ Beta(alpha, alpha), one per batch, and one box (`cut_box`) where every
    image gets the pixels of another image of the batch (a random permutation); the targets
    are lam' a + (1 - lam') b with lam' = 1 - box area / image area, the share of pixels each
    image keeps. Returns (x in its own dtype, float32 targets (B, K)); alpha <= 0 returns the
    inputs (the targets as float32)."""
    y_onehot = y_onehot.astype(np.float32)
    if alpha <= 0:
        return x, y_onehot
    b, h, w = x.shape[:3]
    top, bottom, left, right = cut_box(rng, h, w, rng.beta(alpha, alpha))
    perm = rng.permutation(b)  # (B,)
    out = x.copy()
    out[:, top:bottom, left:right] = x[perm, top:bottom, left:right]
    lam = np.float32(1.0 - (bottom - top) * (right - left) / (h * w))
    return out, lam * y_onehot + (1 - lam) * y_onehot[perm]


def mix_batch(rng, x, y_onehot, mixup_alpha=0.8, cutmix_alpha=1.0, switch_prob=0.5, prob=1.0):
    """With probability `prob` (else the batch as it is), one of mixup (`augment.mixup`, alpha
    `mixup_alpha`) or CutMix (alpha `cutmix_alpha`) for the whole batch, CutMix with
    probability `switch_prob` when both alphas are > 0 (timm's `Mixup`, as DeiT and Compact
    Transformers use it). Returns (x, float32 targets (B, K)); x is float32 after mixup
    (blended pixels), its own dtype otherwise."""
    for name, v in (("switch_prob", switch_prob), ("prob", prob)):
        if not 0.0 <= v <= 1.0:
            raise ValueError(f"mix_batch: expected {name} in [0, 1], found {v!r}")
    if rng.random() >= prob:
        return x, y_onehot.astype(np.float32)
    use_cutmix = cutmix_alpha > 0 and (mixup_alpha <= 0 or rng.random() < switch_prob)
    if use_cutmix:
        return cutmix(rng, x, y_onehot, cutmix_alpha)
    return mixup(rng, x, y_onehot, mixup_alpha)
