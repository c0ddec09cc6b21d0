"""Occlusion and order: how much of an image, and which arrangement of it, a model needs.

Naseer et al. 2021 ("Intriguing Properties of Vision Transformers", Sec. 3.1) drop a growing
share of an image's patches and shuffle the patches of a grid; DeiT keeps ~60% ImageNet top-1
with 80% of its patches gone, where CNNs collapse. Here:

    patch_order         which patches go first: "random", "centre" (centre-first, nearest the
                        middle first) or "border" (border-first, farthest first)
    drop_masks          which patches are dropped at a share f of the grid: (B, g, g) bools
    fill_patches        dropping as pixels: the dropped patches' pixels set to a fill (the data
                        mean), the same operation for every model
    vit_logits_without  dropping as tokens (what Naseer et al. did to the ViT): the dropped
                        patches' tokens removed from the sequence after Eq. 1, the class
                        token and the kept tokens' position embeddings kept (with shifted
                        patch tokens the dropped pixels are zeroed first: nothing of them
                        reaches a kept token through its shifted copies)
    shuffle_patches     the g x g blocks of each image in a random order (g = 2, 4, 8)

Shape legend: B images, H, W height and width, C channels, g grid (blocks per side), N = g^2
blocks, P block side in pixels (H / g), T tokens, D width, K classes, M kept patches.
"""
import numpy as np

from .. import layers, vit

ORDERS = ("random", "centre", "border")


def block_distances(grid):
    """Distance of each block's centre from the image centre, in blocks, row-major. -> (N,)"""
    c = np.arange(grid) - (grid - 1) / 2  # (g,)
    return np.sqrt(c[:, None] ** 2 + c[None, :] ** 2).ravel()  # (N,)


def patch_order(rng, grid, order, b):
    """The order in which the N blocks of each of b images are dropped. -> (b, N) ints.

    "random": a fresh permutation per image; "centre": nearest the centre first; "border":
    farthest first (ties of equal distance in a random order per image).
    """
    n = grid * grid
    noise = rng.random((b, n))  # (b, N) random keys: a permutation, or the tie-breaker
    if order == "random":
        return np.argsort(noise, axis=1)
    if order not in ORDERS:
        raise ValueError(f"patch order: expected one of {', '.join(ORDERS)}, found {order!r}")
    d = block_distances(grid) * (1 if order == "centre" else -1)  # (N,) ascending = first
    return np.lexsort((noise, np.broadcast_to(d, (b, n))), axis=1)  # (b, N) by d, then noise


def drop_masks(order, fraction, grid):
    """True where a block is dropped: the first round(fraction N) blocks of each row of
    `order` (b, N). -> (b, g, g) bools, exactly that many True per image."""
    b, n = order.shape
    k = int(round(fraction * n))
    mask = np.zeros((b, n), bool)
    np.put_along_axis(mask, order[:, :k], True, axis=1)  # (b, N)
    return mask.reshape(b, grid, grid)


def fill_patches(images, masks, fill):
    """The images with every dropped block's pixels set to `fill` (C,) (e.g. the training
    mean). images (B, H, W, C), masks (B, g, g) -> same dtype as images."""
    b, h, w, c = images.shape
    g = masks.shape[1]
    pixels = np.repeat(np.repeat(masks, h // g, axis=1), w // g, axis=2)[..., None]  # (B,H,W,1)
    fill = np.asarray(fill, np.float64).reshape(1, 1, 1, c)  # (1, 1, 1, C)
    out = np.where(pixels, fill, images)  # (B, H, W, C)
    return out.round().astype(images.dtype) if images.dtype == np.uint8 else out.astype(
        images.dtype)


def vit_logits_without(params, images, cfg, masks):
    """Class logits of a ViT whose dropped patches' tokens are removed from the sequence
    (Naseer et al.): Eq. 1 for every patch (its E_pos included), keep the class token and the
    kept patch tokens, then the encoder, pooling and head on the shorter sequence.
    With shifted patch tokens (cfg.spt) a token reads half a patch into its neighbours, so
    the dropped patches' pixels are set to 0 first (the training mean, in normalised images;
    SPT shifts in zeros at the border too): what is dropped is gone, as for a plain ViT.
    images (B, H, W, C) normalised, masks (B, g, g) on the patch grid, the same number of
    dropped patches in every image. -> (B, K)."""
    b = len(images)
    keep = ~masks.reshape(b, -1)  # (B, N)
    m = keep.sum(axis=1)
    if masks.shape[1] != cfg.grid or len(set(m.tolist())) != 1:
        raise ValueError(f"token drop: expected masks (B, {cfg.grid}, {cfg.grid}) with the same "
                         f"number kept per image, found {masks.shape} keeping {sorted(set(m))}")
    if cfg.spt:
        images = fill_patches(images, masks, np.zeros(images.shape[-1]))  # (B, H, W, C)
    z = vit.embed(params, images, cfg)  # (B, T, D)
    first = 1 if cfg.pool == "cls" else 0
    idx = np.sort(np.argsort(~keep, axis=1, kind="stable")[:, :m[0]], axis=1) + first  # (B, M)
    idx = np.concatenate([np.zeros((b, first), int), idx], axis=1)  # (B, first + M)
    z = z[np.arange(b)[:, None], idx]  # (B, first + M, D)
    z = vit.transformer(params, z, cfg)  # (B, first + M, D)
    return layers.linear(params["head"], vit.pool(z, cfg, params))  # (B, K)


def shuffle_patches(rng, images, grid):
    """Each image's g x g blocks put back in a random order (one permutation per image).
    (B, H, W, C) -> same; grid 1 leaves the images unchanged."""
    b, h, w, c = images.shape
    p = h // grid
    blocks = vit.patchify(images, p)  # (B, N, P*P*C)
    perm = np.argsort(rng.random((b, grid * grid)), axis=1)  # (B, N)
    return vit.unpatchify(blocks[np.arange(b)[:, None], perm], p, c)  # (B, H, W, C)


def accuracy(logits_fn, images, labels, batch_size=500):
    """Share of images whose argmax of `logits_fn(batch)` (B, K) equals the label."""
    right = 0
    for i in range(0, len(images), batch_size):
        right += int((np.asarray(logits_fn(images[i:i + batch_size])).argmax(1)
                      == labels[i:i + batch_size]).sum())
    return right / len(images)


def drop_curve(logits_fn, images, labels, fractions, order, grid, fill, seed=0):
    """Accuracy with a growing share of blocks dropped as pixels (`fill_patches`) in `order`.
    logits_fn: uint8 images (B, H, W, C) -> (B, K). -> (len(fractions),) accuracies."""
    ranks = patch_order(np.random.default_rng(seed), grid, order, len(images))  # (B, N)
    return np.array([accuracy(logits_fn, fill_patches(images, drop_masks(ranks, f, grid), fill),
                              labels) for f in fractions])


def token_drop_curve(params, cfg, images, labels, fractions, order, normalise, seed=0,
                     batch_size=100):
    """As `drop_curve`, the patches dropped as tokens (`vit_logits_without`) on the ViT's own
    patch grid. normalise: uint8 images -> the model's float input."""
    ranks = patch_order(np.random.default_rng(seed), cfg.grid, order, len(images))  # (B, N)
    out = []
    for f in fractions:
        masks = drop_masks(ranks, f, cfg.grid)  # (B, g, g)
        right = 0
        for i in range(0, len(images), batch_size):
            logits = vit_logits_without(params, normalise(images[i:i + batch_size]), cfg,
                                        masks[i:i + batch_size])  # (b, K)
            right += int((np.asarray(logits).argmax(1) == labels[i:i + batch_size]).sum())
        out.append(right / len(images))
    return np.array(out)


def shuffle_curve(logits_fn, images, labels, grids=(1, 2, 4, 8), seed=0):
    """Accuracy with each image's g x g blocks shuffled, for each g. -> (len(grids),)."""
    rng = np.random.default_rng(seed)
    return np.array([accuracy(logits_fn, shuffle_patches(rng, images, g), labels)
                     for g in grids])
