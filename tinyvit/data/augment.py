"""From uint8 images and int labels to what the model trains on: normalisation, one-hot labels,
and augmentation of whole batches at once (random crop + flip, mixup), in training and at
test time (flips and one-pixel shifts).

Shape legend: B batch, H, W height and width, C channels (3, RGB), K classes.
"""
import numpy as np

# Per-channel (R, G, B) statistics of the official training sets, in 0-255 pixel units.
CIFAR10_MEAN = np.array([125.307, 122.950, 113.865], np.float32)  # (C,)
CIFAR10_STD = np.array([62.993, 62.089, 66.705], np.float32)  # (C,)
CIFAR100_MEAN = np.array([129.304, 124.070, 112.434], np.float32)  # (C,)
CIFAR100_STD = np.array([68.170, 65.392, 70.418], np.float32)  # (C,)


def normalize(x, mean=CIFAR10_MEAN, std=CIFAR10_STD):
    """uint8 (..., C) -> float32 (x - mean) / std, with mean and std (C,) in 0-255 units."""
    mean, std = np.asarray(mean, np.float32), np.asarray(std, np.float32)
    return (x.astype(np.float32) - mean) / std


def one_hot(y, k, dtype=np.float32):
    """int labels (B,) -> one-hot (B, K)."""
    return np.eye(k, dtype=dtype)[y]


def random_crop_flip(rng, x, pad=4, flip=True, mode="constant"):
    """Random crops of the padded images and random horizontal flips: (B, H, W, C) -> same.

    Each image is padded by `pad` pixels per side (zeros, or `mode="reflect"`), cropped back
    to H x W at a random offset, and mirrored left-right with probability 1/2. One gather,
    no loop over images.
    """
    b, h, w, _ = x.shape
    xp = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)), mode=mode)  # (B, H+2p, W+2p, C)
    dy, dx = rng.integers(0, 2 * pad + 1, size=(2, b))  # (B,) each
    rows = dy[:, None] + np.arange(h)  # (B, H)
    cols = dx[:, None] + np.arange(w)  # (B, W)
    if flip:
        flipped = rng.random(b) < 0.5  # (B,)
        cols = np.where(flipped[:, None], cols[:, ::-1], cols)  # (B, W)
    return xp[np.arange(b)[:, None, None], rows[:, :, None], cols[:, None, :]]  # (B, H, W, C)


def mixup(rng, x, y_onehot, alpha=0.2):
    """Mixup (Zhang et al., 2018): blend each example with another one of the same batch.

    lam ~ Beta(alpha, alpha), one per batch; returns float32 (x, y_onehot) mixes
    lam * a + (1 - lam) * b. alpha <= 0 returns the inputs as float32.
    """
    x, y_onehot = x.astype(np.float32), y_onehot.astype(np.float32)
    if alpha <= 0:
        return x, y_onehot
    lam = np.float32(rng.beta(alpha, alpha))
    perm = rng.permutation(len(x))  # (B,)
    return lam * x + (1 - lam) * x[perm], lam * y_onehot + (1 - lam) * y_onehot[perm]


def flip_tta(logits_fn, x):
    """Test-time augmentation with the training flip: the mean of `logits_fn` over the images
    and their mirror images (airbench's first TTA level). x (B, H, W, C) -> (B, K)."""
    return 0.5 * (logits_fn(x) + logits_fn(x[:, :, ::-1]))


def shift_tta(logits_fn, x):
    """airbench's second test-time augmentation level: half the flip TTA of the images, half
    the mean of the flip TTA of the images shifted by one pixel up-left and down-right (the
    border mirrored, as the training crops are). Six views. x (B, H, W, C) -> (B, K)."""
    h, w = x.shape[1:3]
    padded = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)), mode="reflect")  # (B, H+2, W+2, C)
    shifted = 0.5 * (flip_tta(logits_fn, padded[:, :h, :w])
                     + flip_tta(logits_fn, padded[:, 2:, 2:]))  # (B, K)
    return 0.5 * flip_tta(logits_fn, x) + 0.5 * shifted


# Test-time augmentation, by the name a recipe gives it (`tta`): the views of each test image
# whose logits are averaged.
TTA = {"none": lambda logits_fn, x: logits_fn(x), "flip": flip_tta, "flip-shift": shift_tta}
