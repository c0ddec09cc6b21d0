"""Sec. 3.1 and Eq. 1: an image becomes a sequence of patch embeddings.

Exercises 1 (patchify) and 2 (embed). Shape legend: B batch, H, W image, C channels, P patch,
N patches, T tokens (N, +1 with the class token), D width.
"""
import autograd.numpy as np

from ... import layers, vit
from ...configs import ViTConfig
from ..diagnose import reordered
from ..patching import replace
from ..properties import changed_inputs, independent_items, output_has
from ..spec import exercise, normal, pick


def patch_order(axes):
    """A wrong patchify: the reshape right, the transpose `axes` instead of (0, 1, 3, 2, 4, 5)."""
    def wrong(images, p):
        b, h, w, c = images.shape
        x = images.reshape(b, h // p, p, w // p, p, c).transpose(axes)  # (B, ., ., ., ., .)
        return x.reshape(b, (h // p) * (w // p), p * p * c)  # (B, N, P*P*C)
    return wrong


def no_transpose(images, p):
    b, h, w, c = images.shape
    return images.reshape(b, (h // p) * (w // p), p * p * c)  # (B, N, P*P*C) pixels mixed


def blocks(inputs, out):
    """Patch n of the output is the image block at grid row n // (W/P), column n % (W/P)."""
    images, p = inputs["images"], inputs["p"]
    b, h, w, c = images.shape
    return np.stack([images[:, i:i + p, j:j + p].reshape(b, p * p * c)
                     for i in range(0, h, p) for j in range(0, w, p)], axis=1)


PATCHIFY = exercise(
    number=1, name="patchify", title="Patchify by reshape", section="Sec. 3.1",
    lesson="01_patches", signature="patchify(images, p)", reference=vit.patchify,
    doc="""Cut images into non-overlapping P x P patches, each flattened in (row, column,
    channel) order, the patches in reading order (row by row).

    images (B, H, W, C) float; p the patch size P, which divides H and W.
    -> (B, N, P*P*C) with N = (H/P)(W/P). No loops: reshape, transpose, reshape.""",
    dims={"B": 2, "H": 8, "W": 8, "C": 3, "P": 4},
    derive=lambda d: {**d, "N": (d["H"] // d["P"]) * (d["W"] // d["P"])},
    draw=lambda rng: {"B": pick(rng, 1, 3), "H": 3 * pick(rng, 1, 3), "W": 3 * pick(rng, 1, 4),
                      "C": pick(rng, 1, 3), "P": 3},
    inputs=lambda rng, d: {"images": normal(rng, d["B"], d["H"], d["W"], d["C"]), "p": d["P"]},
    out="B, N, P*P*C",
    hand={"dims": {"B": 1, "H": 4, "W": 4, "C": 1, "P": 2},
          "inputs": {"images": np.arange(16.0).reshape(1, 4, 4, 1), "p": 2},
          "note": "the 4x4 image of the numbers 0..15, patch 2: the first patch is [0, 1, 4, 5]"},
    edges=[{"label": "non-square grid (H ≠ W)",
            "dims": {"B": 2, "H": 4, "W": 12, "C": 2, "P": 2}},
           {"label": "one patch (P = H = W)", "dims": {"B": 3, "H": 4, "W": 4, "C": 1, "P": 4}}],
    grads=("images",),
    mistakes={
        "patchify without the transpose": (no_transpose, "reshaping (B, H, W, C) straight to "
            "(B, N, P·P·C) puts P consecutive pixels of a row into each patch, mixing rows of "
            "neighbouring patches; reshape to (B, H/P, P, W/P, P, C) and transpose the two patch "
            "axes together first"),
        "patches in column order": (patch_order((0, 3, 1, 2, 4, 5)), "the patches go in "
            "reading order, row by row: the patch-row axis H/P comes before the patch-column "
            "axis W/P"),
        "channels first inside a patch": (patch_order((0, 1, 3, 5, 2, 4)), "a patch is "
            "flattened in (row, column, channel) order, as the kernel (P, P, C, D) of the "
            "official code: the channel axis goes last"),
        "rows and columns swapped inside a patch": (patch_order((0, 1, 3, 4, 2, 5)), "inside "
            "a patch the pixel row comes before the pixel column"),
    },
    detectors=[reordered],
    properties=[output_has("patch n holds the image's P x P block at grid row n // (W/P), "
                           "column n % (W/P), read in (row, column, channel) order", blocks)],
    equivalent={
        "patchify line 6: arguments 1 and 2 swapped": "axes 0 and 1 (B and H/P) are never "
            "transposed, so swapping their sizes leaves the memory order, and the result, as is",
        "patchify line 6: arguments 5 and 6 swapped": "axes 4 and 5 (P and C) are never "
            "transposed, so swapping their sizes leaves the result as is",
    },
    hints="""
    An image is a grid of (H/P) x (W/P) patches. Reshape (B, H, W, C) to
    (B, H/P, P, W/P, P, C): axes 1 and 3 say which patch, axes 2 and 4 which pixel inside it.

    Reshaping straight to (B, N, P*P*C) mixes pixels of neighbouring patches, because the
    P rows of one patch are not next to each other in memory. Transpose first, so that the
    two patch axes are together and the pixel axes follow: (B, H/P, W/P, P, P, C).

    The transpose is (0, 1, 3, 2, 4, 5); a last reshape merges H/P and W/P into N and the
    pixel axes P, P, C into P*P*C. Check the hand case: the first patch is [0, 1, 4, 5].
    """,
    patch=(vit, "patchify", replace),
)


def tokens(params, images, cfg):
    """The parts of Eq. 1 from the library: the class tokens (B, 1, D) and x_p E (B, N, D)."""
    x = layers.linear(params["embed"], vit.patchify(images, cfg.patch_size))  # (B, N, D)
    b, _, d = x.shape
    cls = np.broadcast_to(params.get("cls", np.zeros((1, 1, d))), (b, 1, d))  # (B, 1, D)
    return cls, x


def assemble(order):
    """A wrong embed from the library's parts: `order(cls, x, pos) -> z_0`."""
    def wrong(params, images, cfg):
        cls, x = tokens(params, images, cfg)
        if cfg.pool != "cls":
            return order(None, x, params["pos"])
        return order(cls, x, params["pos"])
    return wrong


def embed_inputs(rng, d):
    cfg = ViTConfig(image_size=d["S"], patch_size=d["P"], channels=d["C"], width=d["D"],
                    depth=1, heads=1, mlp_dim=2, num_classes=2, pool="cls" if d["cls"] else "gap")
    params = {"embed": {"w": normal(rng, d["P"] * d["P"] * d["C"], d["D"]),
                        "b": normal(rng, d["D"])},
              "pos": normal(rng, 1, d["T"], d["D"])}
    if d["cls"]:
        params["cls"] = normal(rng, 1, 1, d["D"])
    return {"params": params, "images": normal(rng, d["B"], d["S"], d["S"], d["C"]), "cfg": cfg}


def last_position(inputs):
    """The inputs with 1.5 added to the last row of params["pos"]."""
    pos = inputs["params"]["pos"]
    return {**inputs, "params": {**inputs["params"], "pos": pos + 1.5 * (
        np.arange(pos.shape[1]) == pos.shape[1] - 1)[:, None]}}


def class_row(inputs, out):
    """The output with its row 0 set to x_class + E_pos[0] (when there is a class token)."""
    params = inputs["params"]
    if "cls" not in params:
        return out
    return np.concatenate([np.broadcast_to(params["cls"] + params["pos"][:, :1],
                                           (len(out), 1, out.shape[-1])), out[:, 1:]], axis=1)


EMBED = exercise(
    number=2, name="embed", title="Patch, class-token and position embeddings", section="Eq. 1",
    lesson="02_embeddings", signature="embed(params, images, cfg)", reference=vit.embed,
    targets=[vit.embed, vit.embed_patches], explain_targets=[vit.patchify, layers.linear],
    imports="import autograd.numpy as np\n\nfrom tinyvit.vit import patchify  # or paste yours",
    doc="""Eq. 1: z_0 = [x_class; x_p^1 E; ...; x_p^N E] + E_pos.

    params["embed"] {"w": (P*P*C, D), "b": (D,)}: the patch projection E, with a bias;
    params["cls"] (1, 1, D): the class token x_class, only when cfg.pool == "cls";
    params["pos"] (1, T, D): the position embeddings E_pos, T = N (+1 with a class token).
    images (B, H, W, C) float; cfg a tinyvit ViTConfig (patch_size, pool).
    -> z_0 (B, T, D): the class token first, then the N patches.""",
    dims={"B": 2, "S": 8, "P": 4, "C": 3, "D": 5, "cls": 1},
    derive=lambda d: {**d, "N": (d["S"] // d["P"]) ** 2, "T": (d["S"] // d["P"]) ** 2 + d["cls"]},
    draw=lambda rng: {"B": pick(rng, 1, 3), "S": 2 * pick(rng, 1, 3), "P": 2,
                      "C": pick(rng, 1, 3), "D": pick(rng, 2, 6), "cls": 1},
    inputs=embed_inputs, out="B, T, D",
    hand={"dims": {"B": 1, "S": 2, "P": 2, "C": 1, "D": 2, "cls": 1},
          "inputs": {"params": {"embed": {"w": np.eye(4, 2), "b": np.zeros(2)},
                                "pos": np.array([[[0.5, 0.5], [1.0, 2.0]]]),
                                "cls": np.array([[[10.0, 20.0]]])},
                     "images": np.arange(1.0, 5.0).reshape(1, 2, 2, 1),
                     "cfg": ViTConfig(image_size=2, patch_size=2, channels=1, width=2, depth=1,
                                      heads=1, mlp_dim=2, num_classes=2)},
          "note": ("one 2x2 patch [1, 2, 3, 4], E keeps its first two pixels, class token "
                   "[10, 20], E_pos [[0.5, 0.5], [1, 2]]: z_0 = [[10.5, 20.5], [2, 4]]")},
    edges=[{"label": "no class token (pool 'gap')", "dims": {"B": 2, "S": 4, "P": 2, "C": 2,
                                                             "D": 3, "cls": 0}},
           {"label": "one image, patch 1", "dims": {"B": 1, "S": 3, "P": 1, "C": 1, "D": 2,
                                                   "cls": 1}}],
    grads=("params", "images"),
    properties=[
        independent_items("each image's tokens depend on that image only", ("images",)),
        changed_inputs("adding c to the last position embedding adds c to the last token only",
                       last_position, lambda i, out: out + 1.5 * (
                           np.arange(out.shape[1]) == out.shape[1] - 1)[:, None]),
        output_has("with a class token, token 0 is x_class + E_pos[0], the same for every image",
                   class_row)],
    mistakes={
        "class token at the end": (assemble(lambda cls, x, pos: np.concatenate(
            [x] + ([cls] if cls is not None else []), axis=1) + pos),
            "Eq. 1 puts x_class first: the head reads token 0 (Eq. 4)"),
        "no position embedding": (assemble(lambda cls, x, pos: np.concatenate(
            ([cls] if cls is not None else []) + [x], axis=1)),
            "without E_pos the Transformer cannot tell where a patch came from: add "
            "params['pos'] to the whole sequence"),
        "position embedding on the patches only": (assemble(lambda cls, x, pos: np.concatenate(
            ([cls] if cls is not None else []) + [x + pos[:, pos.shape[1] - x.shape[1]:]], axis=1)),
            "E_pos has a row for the class token too (T = N + 1): add it after the concatenation"),
        "no bias in the patch projection": (
            lambda params, images, cfg: vit.embed(
                {**params, "embed": {**params["embed"], "b": 0 * params["embed"]["b"]}},
                images, cfg),
            "the patch projection is a dense layer with a bias: x W + b"),
    },
    hints="""
    Three steps: patchify the images (exercise 1) to (B, N, P*P*C), project every patch with
    x @ params["embed"]["w"] + params["embed"]["b"] to (B, N, D), add params["pos"].

    With a class token (cfg.pool == "cls"), put it in front of the patches before adding the
    position embeddings: its (1, 1, D) must become (B, 1, D) first (np.broadcast_to or
    np.repeat), then np.concatenate along the token axis, 1.

    params["pos"] has T = N + 1 rows, the first for the class token, so it is added to the
    whole (B, N + 1, D) sequence at once, broadcasting over the batch.
    """,
    patch=(vit, "embed", replace),
)

EXERCISES = [PATCHIFY, EMBED]
