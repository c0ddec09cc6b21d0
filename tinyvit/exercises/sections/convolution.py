"""Sec. 3.1, "Inductive bias": the CNN baseline's convolution is patchify with stride 1.

Exercise 17 (im2col). Shape legend: B batch, H, W height and width, C channels, k kernel size.
"""
import autograd.numpy as np

from ... import cnn
from ..diagnose import reordered
from ..patching import replace
from ..properties import at_inputs, output_has
from ..spec import exercise, normal, pick


def columns(order):
    """A wrong im2col: the library's rows, their (i, j, channel) columns reordered by `order`."""
    def wrong(x, k=3):
        rows = cnn.im2col(x, k)  # (B*H*W, k*k*C)
        c = x.shape[-1]
        return rows.reshape(-1, k, k, c).transpose((0,) + order).reshape(rows.shape)
    return wrong


def unpadded(x, k=3):
    """The windows that fit inside the image only (a 'valid' convolution)."""
    r = k // 2
    b, h, w, c = x.shape
    rows = cnn.im2col(x, k).reshape(b, h, w, k * k * c)  # (B, H, W, k*k*C)
    return rows[:, r:h - r, r:w - r].reshape(-1, k * k * c)  # (B*(H-2r)*(W-2r), k*k*C)


def padded_after(x, k=3):
    """Zeros after the image only: windows start at the pixel instead of centring on it."""
    r = k // 2
    shifted = np.pad(x, ((0, 0), (0, r), (0, r), (0, 0)))[:, r:, r:]  # (B, H, W, C)
    return cnn.im2col(shifted, k)


def centre_is_pixel(i, out):
    """The rows with their centre block (i = j = r, every channel) set to the pixel."""
    x, k = i["x"], i["k"]
    c, r = x.shape[-1], k // 2
    want = out.reshape(-1, k, k, c).copy()
    want[:, r, r] = x.reshape(-1, c)
    return want.reshape(out.shape)


IM2COL = exercise(
    number=17, name="im2col", title="im2col: convolution as patchify with stride 1",
    section="Sec. 3.1 (inductive bias)", lesson="06_cnn", signature="im2col(x, k=3)",
    reference=cnn.im2col, targets=[cnn.im2col, cnn.pad],
    doc="""Every pixel's k x k neighbourhood as one row, the image zero-padded by r = k // 2
    on each side (a 'same' convolution): row (b, h, w) holds the pixels (h + i - r, w + j - r)
    for i, j < k, in (i, j, channel) order. A convolution is then one matmul,
    im2col(x, k) @ w.reshape(k * k * C, C_out), as in tinyvit.cnn.conv.

    x (B, H, W, C) float, k odd -> (B*H*W, k*k*C).""",
    dims={"B": 2, "H": 4, "W": 5, "C": 2, "k": 3},
    draw=lambda rng: {"B": pick(rng, 1, 2), "H": pick(rng, 2, 5), "W": pick(rng, 2, 5),
                      "C": pick(rng, 1, 3), "k": 3},
    inputs=lambda rng, d: {"x": normal(rng, d["B"], d["H"], d["W"], d["C"]), "k": d["k"]},
    out="B*H*W, k*k*C",
    hand={"dims": {"B": 1, "H": 2, "W": 2, "C": 1, "k": 3},
          "inputs": {"x": np.array([[[[1.0], [2.0]], [[3.0], [4.0]]]]), "k": 3},
          "note": "the 2x2 image [[1, 2], [3, 4]], k = 3: the first row (pixel 1's neighbourhood, "
                  "zeros outside) is [0, 0, 0, 0, 1, 2, 0, 3, 4]"},
    edges=[{"label": "k = 1 (a 1x1 convolution: one row per pixel)",
            "dims": {"B": 2, "H": 3, "W": 2, "C": 3, "k": 1}},
           {"label": "k = 5 on a non-square image",
            "dims": {"B": 1, "H": 3, "W": 6, "C": 1, "k": 5}}],
    grads=("x",),
    mistakes={
        "no zero padding": (unpadded, "a 'same' convolution keeps H x W: pad by r = k // 2 zeros "
            "on each side first, so that border pixels have full windows"),
        "channels first in a row": (columns((3, 1, 2)), "a row is read in (i, j, channel) order, "
            "as the kernel (k, k, C, C_out) reshaped to (k*k*C, C_out)"),
        "window columns before rows": (columns((2, 1, 3)), "the window offset i (rows) comes "
            "before j (columns)"),
        "padding after the image only": (padded_after, "the window is centred on the pixel: pad "
            "r zeros before and r after, on both H and W"),
    },
    detectors=[reordered],
    properties=[
        output_has("the centre of each row's window, offset (r, r), is the pixel itself",
                   centre_is_pixel),
        at_inputs("outside the image a window holds zeros (the padding): for an image of ones, "
                  "1 inside and 0 outside", lambda i: {**i, "x": np.ones_like(i["x"])},
                  lambda i: cnn.im2col(i["x"], i["k"]))],
    hints="""
    Pad first: np.pad(x, ((0, 0), (r, r), (r, r), (0, 0))) with r = k // 2 makes
    (B, H + 2r, W + 2r, C), so every pixel has a full k x k window.

    The window at offset (i, j) of every pixel at once is one slice of the padded image,
    padded[:, i:i + H, j:j + W, :], (B, H, W, C): k * k slices in all.

    Stack the k * k slices on a new axis 3, in (i, j) order: (B, H, W, k*k, C), then
    reshape to (B*H*W, k*k*C). Check the hand case's first row [0, 0, 0, 0, 1, 2, 0, 3, 4].
    """,
    patch=(cnn, "im2col", replace),
)

EXERCISES = [IM2COL]
