"""Sec. 4.1 and Appendix B.1: the smoothed cross-entropy and its gradient by hand.

Exercises 13 and 14. Shape legend: B batch, K classes.
"""
import autograd.numpy as np
from autograd import grad

from ... import ops
from ..diagnose import nonfinite, scaled
from ..patching import replace, with_vjp
from ..properties import changed_inputs, mean_over_items, sums_to, unchanged_by
from ..spec import exercise, normal, pick

AXIS = "logits are (B, K): axis 1 and shape[1] are axis -1 and shape[-1]"
OVERFLOW = "exp overflows at large logits: subtract each row's max first (log-sum-exp)"
BATCH = [(lambda d: d["B"], "B: the loss is the mean over the batch, not the sum"),
         (lambda d: 1.0 / d["B"], "1/B: is the mean taken twice?"), (-1.0, "the sign is flipped")]


def row_shift(i):
    """The logits with a constant added to each row (softmax cannot see it)."""
    return {**i, "logits": i["logits"] + 5.0 * np.arange(len(i["logits"]))[:, None]}


def first_example(i):
    return {**i, "logits": i["logits"][:1], "labels": i["labels"][:1]}


def ce_inputs(rng, d, scale=3.0, smoothing=0.1):
    return {"logits": normal(rng, d["B"], d["K"], scale=scale),
            "labels": rng.integers(0, d["K"], d["B"]), "smoothing": smoothing}


def ce_edges():
    return [{"label": "huge logits (±1000)", "inputs": lambda rng, d: ce_inputs(rng, d, 1000.0)},
            {"label": "no smoothing (s = 0)", "inputs": lambda rng, d: ce_inputs(rng, d, 3.0, 0.0)},
            {"label": "full smoothing (s = 1)",
             "inputs": lambda rng, d: ce_inputs(rng, d, 3.0, 1.0)}]


def ce_no_shift(logits, labels, smoothing=0.0):
    q = ops.smoothed_targets(labels, logits.shape[-1], smoothing, logits)  # (B, K)
    p = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)  # (B, K)
    return -(q * np.log(p)).sum() / logits.shape[0]


def other_classes(f):
    """The smoothing s / (K - 1) on the wrong classes only: the library's s' = s K / (K - 1)."""
    return lambda logits, labels, smoothing=0.0: f(
        logits, labels, smoothing * logits.shape[-1] / (logits.shape[-1] - 1))


HAND_CE = {"dims": {"B": 1, "K": 3},
           "inputs": {"logits": np.log(np.array([[1.0, 1.0, 2.0]])), "labels": np.array([2]),
                      "smoothing": 0.0}}
DRAW_CE = lambda rng: {"B": pick(rng, 1, 6), "K": pick(rng, 2, 7)}

CROSS_ENTROPY = exercise(
    number=13, name="cross_entropy", title="Smoothed cross-entropy", section="Sec. 4.1, App. B.1",
    lesson="05_training", signature="cross_entropy(logits, labels, smoothing=0.0)",
    reference=ops.cross_entropy, targets=[ops.cross_entropy, ops.smoothed_targets],
    doc="""Softmax cross-entropy with label smoothing (Szegedy et al. 2016), the mean over the
    batch: loss = -mean_b sum_k q_bk log softmax(z_b)_k, q = (1 - s) onehot(y) + s / K.
    Right for logits of +-1000 too.

    logits (B, K) float, labels (B,) ints in [0, K), smoothing s in [0, 1] -> a scalar.""",
    dims={"B": 4, "K": 5}, draw=DRAW_CE, inputs=ce_inputs, out="",
    hand={**HAND_CE, "note": "softmax(log [1, 1, 2]) = [0.25, 0.25, 0.5], label 2, s = 0: "
                             "loss = -log 0.5 = 0.6931"},
    edges=ce_edges(), grads=("logits",),
    mistakes={
        "sum over the batch instead of the mean": (lambda logits, labels, smoothing=0.0:
            ops.cross_entropy(logits, labels, smoothing) * logits.shape[0],
            "the loss is the mean over the batch: divide by B"),
        "smoothing ignored": (lambda logits, labels, smoothing=0.0: ops.cross_entropy(
            logits, labels, 0.0), "the targets are q = (1 - s) onehot(y) + s / K, not onehot(y)"),
        "smoothing on the other classes only": (other_classes(ops.cross_entropy), "this library "
            "(as the official code) spreads s / K over all K classes, the label's included"),
        "cross-entropy without the max shift": (ce_no_shift, OVERFLOW),
    },
    detectors=[nonfinite(OVERFLOW), scaled(BATCH)],
    properties=[
        unchanged_by("adding a constant to a row of logits changes nothing", row_shift),
        mean_over_items("the loss of a batch is the mean of its examples' losses, each "
                        "computed alone", ("logits", "labels"))],
    equivalent=dict.fromkeys([f"cross_entropy line {n}: unary - dropped" for n in (7, 8, 9)], AXIS),
    hints="""
    log softmax(z) = z - log(sum_k exp(z_k)) per row; take the row max out first,
    z - max, so that no exp overflows (the log-sum-exp trick).

    The targets: a one-hot (B, K) from the labels (labels[:, None] == np.arange(K)), times
    (1 - s), plus s / K everywhere.

    The loss is -(q * log_p).sum() divided by B. The hand case: -log(0.5) = 0.6931.
    """,
    patch=(ops, "cross_entropy", replace),
)


def cross_entropy_grad_formula(logits, labels, smoothing=0.0):
    """The gradient written out: (softmax(z) - q) / B."""
    k = logits.shape[-1]
    z = logits - logits.max(-1, keepdims=True)  # (B, K)
    p = np.exp(z) / np.exp(z).sum(-1, keepdims=True)  # (B, K)
    q = (1.0 - smoothing) * (labels[:, None] == np.arange(k)) + smoothing / k  # (B, K)
    return (p - q) / logits.shape[0]


def cross_entropy_grad(logits, labels, smoothing=0.0):
    """d loss / d logits: autograd's gradient of the formula `ops.cross_entropy`."""
    return grad(ops.cross_entropy)(logits, labels, smoothing)


CROSS_ENTROPY_GRAD = exercise(
    number=14, name="cross_entropy_grad", title="The cross-entropy gradient, by hand",
    section="Sec. 4.1, App. B.1", lesson="05_training",
    signature="cross_entropy_grad(logits, labels, smoothing=0.0)", reference=cross_entropy_grad,
    targets=[cross_entropy_grad, ops.cross_entropy, ops.smoothed_targets],
    formulas=[cross_entropy_grad_formula],
    forbid=["cross_entropy_grad"],
    doc="""d loss / d logits of exercise 13's smoothed cross-entropy (the mean over the batch),
    by hand.

    logits (B, K) float, labels (B,) ints, smoothing s -> (B, K).""",
    dims={"B": 4, "K": 5}, draw=DRAW_CE, inputs=ce_inputs, out="B, K",
    hand={**HAND_CE, "note": "softmax = [0.25, 0.25, 0.5], target onehot(2): the gradient is "
                             "p - q = [0.25, 0.25, -0.5] (B = 1)"},
    edges=ce_edges(),
    fd={"loss": lambda i: ops.cross_entropy(i["logits"], i["labels"], i["smoothing"]),
        "wrt": ("logits",), "grads": lambda found: (found,)},
    mistakes={
        "not divided by the batch size": (lambda logits, labels, smoothing=0.0: cross_entropy_grad(
            logits, labels, smoothing) * logits.shape[0], "the loss is a mean over B examples, so "
            "each row's gradient (p - q) is divided by B"),
        "one-hot targets, smoothing ignored": (lambda logits, labels, smoothing=0.0:
            cross_entropy_grad(logits, labels, 0.0), "the gradient is p - q with the smoothed "
            "targets q = (1 - s) onehot(y) + s / K"),
        "smoothing on the other classes only": (other_classes(cross_entropy_grad), "this library "
            "spreads s / K over all K classes, the label's included"),
        "gradient without the max shift": (grad(ce_no_shift), OVERFLOW),
    },
    detectors=[nonfinite(OVERFLOW), scaled(BATCH)],
    properties=[
        sums_to("every row of the gradient sums to 0 (p and q both sum to 1)", 0.0),
        unchanged_by("adding a constant to a row of logits changes nothing", row_shift),
        changed_inputs("the rows are divided by B: example 0 alone (B = 1) gives B times its "
                       "row", first_example, lambda i, out: out[:1] * len(i["logits"]))],
    equivalent={
        **dict.fromkeys([f"cross_entropy line {n}: unary - dropped" for n in (7, 8, 9)], AXIS),
        "cross_entropy line 8: .sum -> .mean": "log of the mean instead of the sum shifts the loss "
            "by the constant log K, which has no gradient",
    },
    hints="""
    For one row, d/dz of -sum_k q_k log softmax(z)_k is softmax(z) - q, because the q_k sum
    to 1. Write it for the whole batch at once.

    q = (1 - s) onehot(y) + s / K, as in exercise 13.

    The loss is the mean over the batch, so divide by B: (softmax(logits) - q) / B.
    """,
    patch=(ops, "cross_entropy", lambda fn, current: with_vjp(
        current, lambda ans, logits, labels, smoothing=0.0: lambda g: g * fn(logits, labels,
                                                                             smoothing))),
)

EXERCISES = [CROSS_ENTROPY, CROSS_ENTROPY_GRAD]
