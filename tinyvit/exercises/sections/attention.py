"""Appendix A, Eq. 5-8: softmax, its VJP, attention weights and multi-head self-attention.

Exercises 3-6. Shape legend: B batch, N tokens (Nq queries, Nk keys), D width, H heads,
hd = D / H head width.
"""
import autograd.numpy as np
from autograd import make_vjp

from ... import layers, ops
from ..diagnose import nonfinite
from ..patching import replace, swapped, with_vjp
from ..properties import changed_inputs, independent_items, sums_to, unchanged_by
from ..spec import exercise, normal, pick

OVERFLOW = "exp overflows at large logits (exp(1000) = inf, inf / inf = nan); subtract each " \
    "row's max before exp"


def draw_rows(rng):
    return {"B": pick(rng, 1, 3), "N": pick(rng, 1, 4), "D": pick(rng, 2, 7)}


def huge(rng, d):
    """Logits in the thousands, and each row far from the others (row offsets +-1000)."""
    x = normal(rng, d["B"], d["N"], d["D"], scale=1000.0)
    return {"x": x + 1000.0 * (-1.0) ** np.arange(d["N"])[:, None]}


def softmax_no_shift(x):
    e = np.exp(x)
    return e / e.sum(-1, keepdims=True)


SOFTMAX = exercise(
    number=3, name="softmax", title="Stable softmax", section="App. A, Eq. 6",
    lesson="03_attention", signature="softmax(x)", reference=ops.softmax,
    doc="""softmax(x)_j = exp(x_j) / sum_k exp(x_k) over the last axis, computed so that exp
    cannot overflow (the answer must be right for logits of +-1000 too).

    x (..., D) float -> (..., D); every row sums to 1.""",
    dims={"B": 2, "N": 3, "D": 5}, draw=draw_rows,
    inputs=lambda rng, d: {"x": normal(rng, d["B"], d["N"], d["D"], scale=3.0)},
    out="B, N, D",
    hand={"dims": {"B": 1, "N": 2, "D": 3},
          "inputs": {"x": np.log(np.array([[[1.0, 2.0, 5.0], [1.0, 1.0, 1.0]]]))},
          "note": "softmax(log [1, 2, 5]) = [1/8, 2/8, 5/8], softmax([0, 0, 0]) = 1/3 each"},
    edges=[{"label": "huge logits (±1000), rows far apart", "inputs": huge},
           {"label": "one logit per row (D = 1)", "dims": {"B": 2, "N": 2, "D": 1}}],
    grads=("x",),
    mistakes={
        "softmax without the max shift": (softmax_no_shift, "exp(1000) overflows to inf and "
            "inf / inf is nan; softmax(x) = softmax(x - c) for any c per row, so subtract each "
            "row's max: every exponent is then <= 0"),
        "shift by the global max": (lambda x: softmax_no_shift(x - x.max()), "a row far below "
            "the largest logit of the whole array underflows to exp(-2000) = 0 and 0 / 0 is nan: "
            "shift each row by its own max (axis=-1, keepdims=True)"),
        "normalised over the whole array": (lambda x: np.exp(x - x.max())
                                            / np.exp(x - x.max()).sum(),
            "each row is a distribution of its own: sum over the last axis only"),
        "softmax over the first axis": (lambda x: np.swapaxes(ops.softmax(np.swapaxes(x, 0, -1)),
                                                              0, -1),
            "softmax runs over the last axis (axis=-1), the logits of one row"),
    },
    detectors=[nonfinite(OVERFLOW)],
    properties=[sums_to("every row (the last axis) sums to 1", 1.0),
                unchanged_by("adding a constant to a row changes nothing",
                             lambda i: {"x": i["x"] + 3.0 * np.arange(i["x"].shape[-2])[:, None]})],
    hints="""
    Write the definition first: exp(x), divided by its sum over the last axis
    (keepdims=True so that the division broadcasts). It works for small logits.

    For logits near 1000, exp overflows. softmax(x) equals softmax(x - c) for any constant c
    per row, so pick c = the row's max: every exponent is then <= 0 and the largest is 1.

    Subtract x.max(-1, keepdims=True). The max's own gradient cancels out (softmax does not
    depend on it), so it may be taken as a constant: autograd.tracer.getval, as the library does.
    """,
    patch=(ops, "softmax", replace),
)


def softmax_vjp(x, g):
    """dL/dx of y = softmax(x) for the upstream gradient g = dL/dy: autograd's VJP of the
    formula `ops.softmax` (the fast twin's hand VJP, tinyvit.fast.ops, equals it)."""
    return make_vjp(ops.softmax)(x)[0](g)


def softmax_vjp_formula(x, g):
    """The softmax VJP written out: J^T g = y * (g - sum(g * y)) over each row."""
    y = ops.softmax(x)  # (..., D)
    return y * (g - (g * y).sum(-1, keepdims=True))  # (..., D)


def vjp_form(formula):
    """A wrong VJP written with y = softmax(x) from the library: formula(y, g, x)."""
    return lambda x, g: formula(ops.softmax(x), g, x)


SOFTMAX_VJP = exercise(
    number=4, name="softmax_vjp", title="The softmax VJP, by hand", section="App. A, Eq. 6",
    lesson="03_attention", signature="softmax_vjp(x, g)", reference=softmax_vjp,
    formulas=[softmax_vjp_formula],
    targets=[softmax_vjp, ops.softmax], forbid=["softmax_vjp"],
    imports="import autograd.numpy as np\n\nfrom tinyvit.ops import softmax  # or paste yours",
    doc="""The vector-Jacobian product of y = softmax(x) over the last axis, by hand (no
    autograd): given g = dL/dy, return dL/dx = J^T g, J the Jacobian of each row's softmax.

    x, g (..., D) float -> dL/dx (..., D).""",
    dims={"B": 2, "N": 3, "D": 5}, draw=draw_rows,
    inputs=lambda rng, d: {"x": normal(rng, d["B"], d["N"], d["D"], scale=3.0),
                           "g": normal(rng, d["B"], d["N"], d["D"])},
    out="B, N, D",
    hand={"dims": {"B": 1, "N": 1, "D": 2},
          "inputs": {"x": np.zeros((1, 1, 2)), "g": np.array([[[1.0, 0.0]]])},
          "note": "y = softmax([0, 0]) = [0.5, 0.5] and g = [1, 0]: dL/dx = [0.25, -0.25]"},
    edges=[{"label": "huge logits (±1000)",
            "inputs": lambda rng, d: {**huge(rng, d), "g": normal(rng, d["B"], d["N"], d["D"])}},
           {"label": "one logit per row (D = 1)", "dims": {"B": 2, "N": 2, "D": 1}}],
    fd={"loss": lambda inp: (inp["g"] * ops.softmax(inp["x"])).sum(), "wrt": ("x",),
        "grads": lambda found: (found,)},
    mistakes={
        "the diagonal of the Jacobian only": (vjp_form(lambda y, g, x: y * g), "softmax's "
            "Jacobian is diag(y) - y y^T: every output of a row depends on every input of that "
            "row, so dL/dx = y * (g - sum(g * y)), the sum over the row"),
        "the sum over the whole array": (vjp_form(lambda y, g, x: y * (g - (g * y).sum())),
            "each row has its own Jacobian: sum g * y over the last axis, keepdims=True"),
        "x in place of y": (vjp_form(lambda y, g, x: x * (g - (g * x).sum(-1, keepdims=True))),
            "the Jacobian is written with the output y = softmax(x), not with the input x"),
        "the sign flipped": (vjp_form(lambda y, g, x: y * ((g * y).sum(-1, keepdims=True) - g)),
            "dy_i/dx_i = y_i (1 - y_i) is positive: dL/dx = y * (g - sum(g * y))"),
        "softmax without the max shift": (lambda x, g: make_vjp(softmax_no_shift)(x)[0](g),
            OVERFLOW),
    },
    detectors=[nonfinite(OVERFLOW)],
    properties=[sums_to("every row of dL/dx sums to 0 (softmax does not change when a row "
                        "moves by a constant)", 0.0),
                unchanged_by("adding a constant to a row of g changes nothing (J^T 1 = 0)",
                             lambda i: {**i, "g": i["g"] + 2.0})],
    hints="""
    Work out one row first: y_i = exp(x_i) / S. Then dy_i/dx_j = y_i (delta_ij - y_j): the
    Jacobian J = diag(y) - y y^T, which is symmetric, so J^T g = J g.

    J g = y * g - y (y . g): multiply elementwise by y, and subtract y times the dot product
    of g and y over the row. No D x D matrix is needed.

    Compute y = softmax(x) (yours or tinyvit.ops.softmax), then y * (g - s) where
    s = (g * y).sum(-1, keepdims=True) is one number per row.
    """,
    patch=(ops, "softmax", lambda fn, current: with_vjp(current, lambda y, x: lambda g: fn(x, g))),
)


def scaled_q(factor):
    """A wrong attention_weights: the library's, with q scaled by factor(hd) first."""
    return lambda q, k: layers.attention_weights(q * factor(q.shape[-1]), k)


ATTENTION_WEIGHTS = exercise(
    number=5, name="attention_weights", title="Scaled dot-product attention weights",
    section="App. A, Eq. 5-6", lesson="03_attention", signature="attention_weights(q, k)",
    reference=layers.attention_weights,
    imports="import autograd.numpy as np\n\nfrom tinyvit.ops import softmax  # or paste yours",
    doc="""Eq. 6: A = softmax(q k^T / sqrt(hd)), over the keys, for every batch and head.

    q (B, H, Nq, hd) queries, k (B, H, Nk, hd) keys -> A (B, H, Nq, Nk); each row of A (one
    query) sums to 1.""",
    dims={"B": 2, "H": 2, "Nq": 4, "Nk": 4, "hd": 3},
    draw=lambda rng: {"B": pick(rng, 1, 2), "H": pick(rng, 1, 3), "Nq": pick(rng, 1, 5),
                      "Nk": pick(rng, 1, 5), "hd": pick(rng, 2, 6)},
    inputs=lambda rng, d: {"q": normal(rng, d["B"], d["H"], d["Nq"], d["hd"]),
                           "k": normal(rng, d["B"], d["H"], d["Nk"], d["hd"])},
    out="B, H, Nq, Nk",
    hand={"dims": {"B": 1, "H": 1, "Nq": 1, "Nk": 2, "hd": 4},
          "inputs": {"q": np.array([[[[2.0, 0, 0, 0]]]]),
                     "k": np.array([[[[2.0, 0, 0, 0], [0, 0, 0, 0]]]])},
          "note": "q.k / sqrt(4) = [2, 0] and softmax([2, 0]) = [0.8808, 0.1192]"},
    edges=[{"label": "Nq ≠ Nk (queries attend to another sequence)",
            "dims": {"B": 1, "H": 2, "Nq": 2, "Nk": 5, "hd": 4}},
           {"label": "one key (Nk = 1)", "dims": {"B": 2, "H": 1, "Nq": 3, "Nk": 1, "hd": 2}}],
    grads=("q", "k"),
    properties=[sums_to("each query's weights over the keys sum to 1", 1.0),
                changed_inputs("with q = 0 every key gets the same weight 1/Nk",
                               lambda i: {**i, "q": 0.0 * i["q"]},
                               lambda i, out: np.full(out.shape, 1.0 / i["k"].shape[-2])),
                changed_inputs("permuting the keys permutes the columns of A the same way",
                               lambda i: {**i, "k": i["k"][..., ::-1, :]},
                               lambda i, out: out[..., ::-1])],
    variants={"A scaled by sqrt(hd) instead of 1/sqrt(hd)": scaled_q(float)},
    mistakes={
        "scaled by 1/hd instead of 1/√hd": (scaled_q(lambda hd: hd ** -0.5), "Eq. 6 divides by "
            "sqrt(D_h): a dot product of two random unit-variance vectors of length D_h has "
            "variance D_h, and 1/sqrt(D_h) brings it back to 1"),
        "no scaling": (scaled_q(lambda hd: hd ** 0.5), "without 1/sqrt(hd) the logits grow with "
            "the head width and the softmax saturates (Eq. 6)"),
        "softmax over the queries": (lambda q, k: layers.attention_weights(k, q).transpose(
            (0, 1, 3, 2)), "each query's weights over the keys sum to 1: softmax over the last "
            "axis of q k^T, which indexes the keys"),
        "queries and keys swapped": (lambda q, k: layers.attention_weights(k, q), "A = softmax(q "
            "k^T): rows are queries, columns keys, so A is (Nq, Nk)"),
        "scaled after the softmax": (lambda q, k: ops.softmax(q @ np.swapaxes(k, -1, -2))
            / np.sqrt(q.shape[-1]), "the scale goes inside the softmax, on the logits q k^T"),
    },
    hints="""
    k^T here means swapping the last two axes of k: np.swapaxes(k, -1, -2) or
    k.transpose((0, 1, 3, 2)), (B, H, hd, Nk). Then q @ k^T is (B, H, Nq, Nk): @ works on
    the last two axes and broadcasts over B and H.

    Scale the logits by hd ** -0.5, hd = q.shape[-1], the head width (not the model width D).

    Then the softmax over the last axis (the keys). Scaling q before the product gives the
    same numbers with fewer multiplications (q is smaller than q k^T when N > hd).
    """,
    patch=(layers, "attention_weights", replace),
)


def qkv_columns(p, d, order=(0, 1, 2), q_scale=1.0):
    """Attention parameters with the [q | k | v] column blocks reordered, q scaled."""
    w, b = np.split(p["qkv"]["w"], 3, axis=1), np.split(p["qkv"]["b"], 3)
    scale = [q_scale, 1.0, 1.0]
    return {**p, "qkv": {"w": np.concatenate([w[i] * scale[i] for i in order], axis=1),
                         "b": np.concatenate([b[i] * scale[i] for i in order])}}


def no_transpose_heads(p, x, heads):
    b, n, d = x.shape
    split = lambda t, h: t.reshape(b, h, n, d // h)  # (B, H, N, hd) tokens and heads mixed
    merge = lambda t: t.reshape(b, n, d)  # (B, N, D)
    with swapped([(layers, "split_heads", split), (layers, "merge_heads", merge)]):
        return layers.attention(p, x, heads)


def msa_inputs(rng, d):
    p = {"qkv": {"w": normal(rng, d["D"], 3 * d["D"], scale=0.5), "b": normal(rng, 3 * d["D"])},
         "out": {"w": normal(rng, d["D"], d["D"], scale=0.5), "b": normal(rng, d["D"])}}
    return {"p": p, "x": normal(rng, d["B"], d["N"], d["D"]), "heads": d["H"]}


def uniform_attention():
    """Hand case: q = k = 0 (every token attends equally), v = x, the output projection I."""
    w = np.concatenate([np.zeros((2, 4)), np.eye(2)], axis=1)  # (D, 3D) [0 | 0 | I]
    return {"p": {"qkv": {"w": w, "b": np.zeros(6)}, "out": {"w": np.eye(2), "b": np.zeros(2)}},
            "x": np.array([[[1.0, 2.0], [3.0, 4.0]]]), "heads": 2}


ATTENTION = exercise(
    number=6, name="attention", title="Multi-head self-attention", section="App. A, Eq. 5-8",
    lesson="03_attention", signature="attention(p, x, heads)", reference=layers.attention,
    targets=[layers.attention, layers.split_heads, layers.merge_heads],
    explain_targets=[layers.attention_weights, layers.linear],
    forbid=["attention", "split_heads", "merge_heads"],
    imports="import autograd.numpy as np\n\n"
            "from tinyvit.layers import attention_weights  # or paste yours",
    doc="""Eq. 5-8, multi-head self-attention of a sequence x.

    Eq. 5: [q | k | v] = x W + b with p["qkv"] {"w": (D, 3D), "b": (3D,)}: the columns hold
    q, then k, then v; inside each, head h owns the hd = D / H columns h*hd ... (h+1)*hd - 1.
    Eq. 6-7: per head, A = softmax(q k^T / sqrt(hd)) and SA = A v.
    Eq. 8: MSA = [SA_1, ..., SA_H] W_out + b_out, p["out"] {"w": (D, D), "b": (D,)}.
    x (B, N, D), heads H (dividing D) -> (B, N, D).""",
    dims={"B": 2, "N": 3, "D": 6, "H": 2}, derive=lambda d: {**d, "hd": d["D"] // d["H"]},
    draw=lambda rng: (lambda h: {"B": pick(rng, 1, 2), "N": pick(rng, 1, 4),
                                 "D": h * pick(rng, 1, 3), "H": h})(pick(rng, 1, 3)),
    inputs=msa_inputs, out="B, N, D",
    hand={"dims": {"B": 1, "N": 2, "D": 2, "H": 2}, "inputs": uniform_attention(),
          "note": ("q = k = 0, so every token attends to both equally; v = x and W_out = I: "
                   "both outputs are the mean token [2, 3]")},
    edges=[{"label": "one head (H = 1)", "dims": {"B": 1, "N": 3, "D": 4, "H": 1}},
           {"label": "head width 1 (H = D)", "dims": {"B": 2, "N": 2, "D": 3, "H": 3}},
           {"label": "one token (N = 1)", "dims": {"B": 2, "N": 1, "D": 4, "H": 2}}],
    grads=("p", "x"),
    properties=[
        changed_inputs("permuting the tokens permutes the output rows the same way",
                       lambda i: {**i, "x": i["x"][:, ::-1]}, lambda i, out: out[:, ::-1]),
        independent_items("each sequence of the batch is attended on its own", ("x",)),
        changed_inputs("with W_out = 0 every output is b_out",
                       lambda i: {**i, "p": {**i["p"], "out": {**i["p"]["out"],
                                                               "w": 0.0 * i["p"]["out"]["w"]}}},
                       lambda i, out: np.broadcast_to(i["p"]["out"]["b"], out.shape))],
    mistakes={
        "heads split without the transpose": (no_transpose_heads, "(B, N, D) -> (B, N, H, hd) is "
            "a reshape, but then the heads axis must move in front of the tokens with a "
            "transpose, (B, H, N, hd); reshaping straight to (B, H, N, hd) mixes tokens and heads"),
        "one head over the whole width": (lambda p, x, heads: layers.attention(p, x, 1),
            "each head computes its own A from its hd = D / H columns of q and k (Eq. 6)"),
        "scaled by 1/√D instead of 1/√hd": (lambda p, x, heads: layers.attention(
            qkv_columns(p, x.shape[-1], q_scale=heads ** -0.5), x, heads),
            "Eq. 6 scales by 1 / sqrt(D_h), D_h = D / H the width of one head"),
        "no output projection": (lambda p, x, heads: layers.attention(
            {**p, "out": {"w": np.eye(x.shape[-1]), "b": np.zeros(x.shape[-1])}}, x, heads),
            "Eq. 8 mixes the heads' outputs with U_msa: [SA_1, ..., SA_H] @ p['out']['w'] + b"),
        "k and v swapped": (lambda p, x, heads: layers.attention(
            qkv_columns(p, x.shape[-1], order=(0, 2, 1)), x, heads),
            "the columns of p['qkv']['w'] are [q | k | v]: k is the middle third"),
    },
    hints="""
    One matmul gives (B, N, 3D); np.split(qkv, 3, axis=-1) gives q, k and v, each (B, N, D).
    Give each a heads axis: reshape to (B, N, H, hd), then transpose to (B, H, N, hd).

    Now every head is a batch entry: A = attention_weights(q, k) is (B, H, N, N) and A @ v is
    (B, H, N, hd). Undo the split: transpose back to (B, N, H, hd), reshape to (B, N, D).

    The last step is the output projection, o @ p["out"]["w"] + p["out"]["b"]. If only the
    random cases fail, check the transposes: the hand case cannot see them (q = k = 0).
    """,
    patch=(layers, "attention", lambda fn, current: lambda p, x, heads, weights_out=None:
           fn(p, x, heads)),
)

EXERCISES = [SOFTMAX, SOFTMAX_VJP, ATTENTION_WEIGHTS, ATTENTION]
