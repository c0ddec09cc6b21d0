"""Sec. 3.1: "Layernorm (LN) is applied before every block", and the MLP's GELU.

Exercises 7-10: LayerNorm and its VJP by hand, GELU and its derivative by hand.
Shape legend: B batch, N tokens, D features (the last axis).
"""
import autograd.numpy as np
from autograd import elementwise_grad, make_vjp

from ... import ops
from ..diagnose import nonfinite, scaled
from ..patching import replace, with_vjp
from ..properties import at_inputs, changed_inputs, sums_to, unchanged_by
from ..spec import exercise, normal, pick

TOKENS = {"B": 2, "N": 3, "D": 5}
FLAT = "nearly constant rows (variance 1e-8, far below eps = 1e-6)"


def erf(x):
    """erf to within 1.5e-7 (Abramowitz & Stegun 7.1.26), traceable by autograd and needing no
    scipy: enough to tell the exact GELU from the tanh form, which differ by up to 1e-3."""
    t = 1.0 / (1.0 + 0.3275911 * np.abs(x))
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027
                                                                         + t * 1.061405429))))
    return np.sign(x) * (1.0 - poly * np.exp(-x * x))


def draw_tokens(rng):
    return {"B": pick(rng, 1, 3), "N": pick(rng, 1, 4), "D": pick(rng, 2, 8)}


def ln_inputs(rng, d, spread=2.0, eps=0.3):
    """x with an offset (the mean matters), random g and b (ones and zeros hide bugs)."""
    return {"x": 1.5 + normal(rng, d["B"], d["N"], d["D"], scale=spread),
            "g": normal(rng, d["D"]), "b": normal(rng, d["D"]), "eps": eps}


def flat_rows(rng, d):
    return ln_inputs(rng, d, spread=1e-4, eps=1e-6)


def with_dy(make):
    """LayerNorm inputs plus an upstream gradient dy, in the VJP's argument order."""
    def inputs(rng, d):
        i = make(rng, d)
        return {"x": i["x"], "g": i["g"], "b": i["b"],
                "dy": normal(rng, d["B"], d["N"], d["D"]), "eps": i["eps"]}
    return inputs


def stats(x, ddof=0):
    """Mean and variance over the last axis (keepdims)."""
    mean = x.mean(-1, keepdims=True)
    return mean, ((x - mean) ** 2).sum(-1, keepdims=True) / (x.shape[-1] - ddof)


def ln_with(denominator, ddof=0):
    """A wrong LayerNorm: (x - mean) / denominator(var, eps) * g + b."""
    def wrong(x, g, b, eps=1e-6):
        mean, var = stats(x, ddof)
        return (x - mean) / denominator(var, eps) * g + b
    return wrong


def standardised(x):
    """Each token with mean 0 and variance 1 over its features (what LN is before g and b)."""
    mean, var = stats(x)
    return (x - mean) / np.sqrt(var)


LAYER_NORM = exercise(
    number=7, name="layer_norm", title="LayerNorm", section="Sec. 3.1", lesson="04_encoder",
    signature="layer_norm(x, g, b, eps=1e-6)", reference=ops.layer_norm,
    doc="""LayerNorm (Ba et al. 2016) over the last axis: each row is normalised on its own,
    LN(x) = (x - mean) / sqrt(var + eps) * g + b, var the biased variance (divide by D).

    x (..., D) float, g (D,) scale, b (D,) offset, eps > 0 -> (..., D).""",
    dims=TOKENS, draw=draw_tokens, inputs=ln_inputs, out="B, N, D",
    hand={"dims": {"B": 1, "N": 1, "D": 2},
          "inputs": {"x": np.array([[[0.0, 4.0]]]), "g": np.array([2.0, 1.0]),
                     "b": np.array([0.0, 10.0]), "eps": 0.0},
          "note": "x = [0, 4]: mean 2, variance 4, x_hat = [-1, 1]; times g = [2, 1] plus "
                  "b = [0, 10] gives [-2, 11] (eps = 0 here)"},
    edges=[{"label": FLAT, "inputs": flat_rows},
           {"label": "one feature (D = 1): every row is constant",
            "dims": {"B": 2, "N": 2, "D": 1}}],
    grads=("x", "g", "b"),
    mistakes={
        "unbiased variance": (ln_with(lambda var, eps: np.sqrt(var + eps), ddof=1), "LayerNorm "
            "divides by D (the biased variance, np.var's default ddof=0), not by D - 1"),
        "eps outside the square root": (ln_with(lambda var, eps: np.sqrt(var) + eps),
            "eps goes inside the root, sqrt(var + eps): when the variance is below eps (a nearly "
            "constant row) the two differ by far"),
        "no eps": (ln_with(lambda var, eps: np.sqrt(var)), "a constant row has variance 0 "
            "and 0 / 0 is nan: add eps inside the square root"),
        "the standard deviation under the root": (ln_with(lambda var, eps: np.sqrt(np.sqrt(var)
            + eps)), "divide by sqrt(var + eps), the standard deviation: the variance goes under "
            "the root, not the standard deviation"),
        "statistics over the whole array": (
            lambda x, g, b, eps=1e-6: (x - x.mean()) / np.sqrt(x.var() + eps) * g + b,
            "each token is normalised on its own, over its D features: axis=-1, keepdims=True"),
    },
    detectors=[nonfinite("the variance of a constant row is 0: eps keeps the division finite")],
    properties=[
        changed_inputs("with g = 1, b = 0 and eps ~ 0 each token has mean 0 and variance 1 "
                       "over its D features", lambda i: {**i, "g": np.ones_like(i["g"]),
                                                         "b": np.zeros_like(i["b"]), "eps": 1e-12},
                       lambda i, out: standardised(i["x"])),
        unchanged_by("adding a constant to a token changes nothing",
                     lambda i: {**i, "x": i["x"] + np.arange(i["x"].shape[-2])[:, None]})],
    hints="""
    Mean and variance over the last axis, keepdims=True so that (..., 1) broadcasts against
    (..., D): x.mean(-1, keepdims=True), and the mean of the squared centred values.

    The variance divides by D (not D - 1), and eps goes inside the square root:
    (x - mean) / sqrt(var + eps). Then the per-feature scale g and offset b.

    The library writes means as sums times 1.0 / D (a Python float), which keeps float32
    float32 through autograd; np.mean and np.var are correct too, but their gradients upcast.
    """,
    patch=(ops, "layer_norm", replace),
)


def layer_norm_vjp(x, g, b, dy, eps=1e-6):
    """(dx, dg, db) for the upstream gradient dy: autograd's VJP of the formula
    `ops.layer_norm` (the fast twin's hand VJP, tinyvit.fast.ops, equals it)."""
    vjp, _ = make_vjp(lambda xgb: ops.layer_norm(*xgb, eps))((x, g, b))
    return tuple(vjp(dy))


def ln_parts(x, g, b, dy, eps):
    """x_hat, 1/std and dxh = dy * g, for the wrong VJPs below."""
    mean, var = stats(x)
    rstd = 1.0 / np.sqrt(var + eps)
    return (x - mean) * rstd, rstd, dy * g


def vjp_with(dx_formula, summed=True):
    """A wrong LayerNorm VJP: dx = dx_formula(x_hat, rstd, dxh); dg, db summed over rows."""
    def wrong(x, g, b, dy, eps=1e-6):
        x_hat, rstd, dxh = ln_parts(x, g, b, dy, eps)
        rows = tuple(range(x.ndim - 1)) if summed else ()
        return dx_formula(x_hat, rstd, dxh), (dy * x_hat).sum(rows), dy.sum(rows)
    return wrong


def mean(t):
    return t.mean(-1, keepdims=True)


def layer_norm_vjp_formula(x, g, b, dy, eps=1e-6):
    """The LayerNorm VJP written out (x_hat, 1/std and dxh = dy g, means over the row)."""
    mu = x.mean(-1, keepdims=True)  # (..., 1)
    rstd = 1.0 / np.sqrt(((x - mu) ** 2).mean(-1, keepdims=True) + eps)  # (..., 1)
    x_hat = (x - mu) * rstd  # (..., D)
    dxh = dy * g  # (..., D)
    dx = rstd * (dxh - dxh.mean(-1, keepdims=True) - x_hat * (dxh * x_hat).mean(-1, keepdims=True))
    rows = tuple(range(x.ndim - 1))
    return dx, (dy * x_hat).sum(rows), dy.sum(rows)


def gelu_formula(x):
    """The tanh GELU with its constants written out."""
    return 0.5 * x * (1.0 + np.tanh(np.sqrt(2.0 / np.pi) * (x + 0.044715 * x ** 3)))


def gelu_grad_formula(x):
    """The GELU derivative written out: product rule, then the chain rule through u."""
    t = np.tanh(np.sqrt(2.0 / np.pi) * (x + 0.044715 * x ** 3))  # tanh(u)
    return 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * np.sqrt(2.0 / np.pi) * (
        1.0 + 3.0 * 0.044715 * x * x)


LAYER_NORM_VJP = exercise(
    number=8, name="layer_norm_vjp", title="The LayerNorm VJP, by hand", section="Sec. 3.1",
    lesson="04_encoder", signature="layer_norm_vjp(x, g, b, dy, eps=1e-6)",
    reference=layer_norm_vjp, targets=[layer_norm_vjp, ops.layer_norm], forbid=["layer_norm_vjp"],
    formulas=[layer_norm_vjp_formula],
    doc="""The gradients of y = LN(x) * g + b (exercise 7) by hand, given dy = dL/dy: the mean
    and the variance depend on x too.

    x (..., D), g (D,), b (D,), dy (..., D), eps -> (dx (..., D), dg (D,), db (D,)); dg and
    db sum over every row.""",
    dims=TOKENS, draw=draw_tokens,
    inputs=with_dy(ln_inputs),
    out=[("dx", "B, N, D"), ("dg", "D"), ("db", "D")],
    hand={"dims": {"B": 1, "N": 1, "D": 2},
          "inputs": {"x": np.array([[[0.0, 4.0]]]), "g": np.ones(2), "b": np.zeros(2),
                     "dy": np.array([[[1.0, 0.0]]]), "eps": 0.0},
          "note": "with two features LN(x) is [-1, 1] whatever x is, so dx = [0, 0]; "
                  "x_hat = [-1, 1]: dg = dy * x_hat = [-1, 0] and db = dy = [1, 0]"},
    edges=[{"label": FLAT, "inputs": with_dy(flat_rows)}],
    fd={"loss": lambda i: (i["dy"] * ops.layer_norm(i["x"], i["g"], i["b"], i["eps"])).sum(),
        "wrt": ("x", "g", "b"), "grads": lambda found: found},
    properties=[
        sums_to("each row of dx sums to 0 (LayerNorm does not change when a row moves by a "
                "constant)", 0.0),
        changed_inputs("db is dy summed over every row", lambda i: i,
                       lambda i, out: i["dy"].sum(tuple(range(i["dy"].ndim - 1))), part=2)],
    mistakes={
        "mean and variance taken as constants": (vjp_with(lambda x_hat, rstd, dxh: dxh * rstd),
            "the mean and the variance are functions of x: dx = rstd (dxh - mean(dxh) - x_hat "
            "mean(dxh x_hat)), means over the row"),
        "the mean's path only": (vjp_with(lambda x_hat, rstd, dxh: (dxh - mean(dxh)) * rstd),
            "the variance depends on x too: subtract x_hat * mean(dxh * x_hat) as well"),
        "the variance's path only": (vjp_with(
            lambda x_hat, rstd, dxh: (dxh - x_hat * mean(dxh * x_hat)) * rstd),
            "the mean depends on x too: subtract mean(dxh) as well"),
        "dg and db not summed over the rows": (vjp_with(
            lambda x_hat, rstd, dxh: rstd * (dxh - mean(dxh) - x_hat * mean(dxh * x_hat)),
            summed=False), "g and b are shared by every row, so their gradients add up over the "
            "rows: sum over every axis but the last"),
    },
    hints="""
    Name the pieces: x_hat = (x - mean) * rstd with rstd = 1 / sqrt(var + eps), y = x_hat g + b.
    Then db = dy and dg = dy * x_hat, each summed over the rows (every axis but the last).

    For dx, start from dxh = dy * g, the gradient with respect to x_hat. x_hat depends on x
    directly, through the mean, and through the variance: three terms.

    dx = rstd * (dxh - mean(dxh) - x_hat * mean(dxh * x_hat)), the means over the last axis,
    keepdims=True. The hand case is a good test: with D = 2, dx is exactly 0.
    """,
    patch=(ops, "layer_norm", lambda fn, current: with_vjp(current, *(
        lambda ans, x, g, b, eps=1e-6, i=i: lambda dy: fn(x, g, b, dy, eps)[i] for i in range(3)))),
)


def gelu_with(c=ops.GELU_C, a=ops.GELU_A, power=3, half=0.5):
    """A wrong GELU: the tanh form with one of its constants changed."""
    return lambda x: half * x * (1.0 + np.tanh(c * (x + a * x ** power)))


GELU = exercise(
    number=9, name="gelu", title="GELU", section="Sec. 3.1", lesson="04_encoder",
    signature="gelu(x)", reference=ops.gelu, formulas=[gelu_formula],
    doc="""GELU (Hendrycks & Gimpel 2016), the MLP's non-linearity, in its tanh form as the
    official JAX ViT (flax's nn.gelu):

        gelu(x) = 0.5 x (1 + tanh(sqrt(2 / pi) (x + 0.044715 x^3)))

    x (..., D) float -> (..., D).""",
    dims=TOKENS, draw=draw_tokens,
    inputs=lambda rng, d: {"x": normal(rng, d["B"], d["N"], d["D"], scale=3.0)},
    out="B, N, D",
    hand={"dims": {"B": 1, "N": 1, "D": 4}, "inputs": {"x": np.array([[[-1.0, 0.0, 1.0, 2.0]]])},
          "note": "gelu([-1, 0, 1, 2]) = [-0.1588, 0, 0.8412, 1.955]"},
    edges=[{"label": "large |x| (±20): tanh saturates",
            "inputs": lambda rng, d: {"x": 20.0 * np.sign(normal(rng, d["B"], d["N"], d["D"]))}}],
    grads=("x",),
    mistakes={
        "the exact erf form": (lambda x: 0.5 * x * (1.0 + erf(x / np.sqrt(2.0))), "this library "
            "(like the official JAX ViT) uses the tanh approximation of x Phi(x); the exact erf "
            "form differs from it by up to 1e-3"),
        "x² instead of x³": (gelu_with(power=2), "the cubic term is 0.044715 x^3"),
        "sqrt(2π) instead of sqrt(2/π)": (gelu_with(c=np.sqrt(2.0 * np.pi)), "the constant is "
            "sqrt(2 / pi) = 0.7979"),
        "without the 0.5": (gelu_with(half=1.0), "gelu(x) tends to x for large x: 0.5 x (1 + 1)"),
        "the sigmoid approximation": (lambda x: x / (1.0 + np.exp(-1.702 * x)), "x sigmoid(1.702 "
            "x) is another approximation; the library uses the tanh form"),
    },
    detectors=[scaled([(2.0, "gelu(x) = 0.5 x (1 + tanh(...)): is the 0.5 missing?")])],
    variants={"x sigmoid(x) (SiLU, Swish) instead of GELU": lambda x: x / (1.0 + np.exp(-x)),
              "ReLU instead of GELU": lambda x: np.maximum(x, 0.0),
              "tanh(u) without 0.5 x (1 + ...)": lambda x: np.tanh(ops.GELU_C * (
                  x + ops.GELU_A * x ** 3))},
    properties=[at_inputs("gelu(0) = 0", lambda i: {"x": 0.0 * i["x"]}, lambda i: 0.0),
                at_inputs("gelu(x) -> x for large x (gelu(10) = 10)",
                          lambda i: {"x": np.full_like(i["x"], 10.0)}, lambda i: 10.0),
                at_inputs("gelu(x) -> 0 for very negative x (gelu(-10) = 0)",
                          lambda i: {"x": np.full_like(i["x"], -10.0)}, lambda i: 0.0)],
    hints="""
    Write the formula as it stands, with np.tanh and np.sqrt(2 / np.pi) (a Python float).

    x * x * x is x cubed; x ** 3 is correct too (autograd differentiates both).

    Check the hand case: gelu(1) = 0.8412 (the exact erf form gives 0.8413: the tanh form is
    what this library and the official ViT use).
    """,
    patch=(ops, "gelu", replace),
)


def gelu_grad(x):
    """d gelu / dx, elementwise: autograd's derivative of the formula `ops.gelu`."""
    return elementwise_grad(ops.gelu)(x)


def gelu_grad_with(product=True, chain=True, sech2=lambda t: 1.0 - t * t, three=3.0):
    """A wrong GELU derivative: one term of the product or chain rule dropped or changed."""
    def wrong(x):
        c, a = ops.GELU_C, ops.GELU_A
        t = np.tanh(c * (x + a * x * x * x))
        du = c * (1.0 + three * a * x * x) if chain else 1.0
        return 0.5 * (1.0 + t) + (0.5 * x * sech2(t) * du if product else 0.0)
    return wrong


GELU_GRAD = exercise(
    number=10, name="gelu_grad", title="The GELU derivative, by hand", section="Sec. 3.1",
    lesson="04_encoder", signature="gelu_grad(x)", reference=gelu_grad,
    formulas=[gelu_grad_formula],
    targets=[gelu_grad, ops.gelu], forbid=["gelu_grad"],
    doc="""d gelu(x) / dx elementwise, by hand, for the tanh form of exercise 9:
    gelu(x) = 0.5 x (1 + tanh(u)), u = sqrt(2 / pi) (x + 0.044715 x^3).

    x (..., D) float -> (..., D).""",
    dims=TOKENS, draw=draw_tokens,
    inputs=lambda rng, d: {"x": normal(rng, d["B"], d["N"], d["D"], scale=3.0)},
    out="B, N, D",
    hand={"dims": {"B": 1, "N": 1, "D": 2}, "inputs": {"x": np.array([[[0.0, 1.0]]])},
          "note": "gelu'(0) = 0.5 (tanh(0) = 0), gelu'(1) = 1.083"},
    fd={"loss": lambda i: ops.gelu(i["x"]).sum(), "wrt": ("x",), "grads": lambda found: (found,)},
    properties=[at_inputs("gelu'(0) = 0.5", lambda i: {"x": 0.0 * i["x"]}, lambda i: 0.5),
                at_inputs("gelu'(x) -> 1 for large x (gelu'(10) = 1)",
                          lambda i: {"x": np.full_like(i["x"], 10.0)}, lambda i: 1.0),
                at_inputs("gelu'(x) -> 0 for very negative x (gelu'(-10) = 0)",
                          lambda i: {"x": np.full_like(i["x"], -10.0)}, lambda i: 0.0)],
    variants={"the derivative of x sigmoid(x) (SiLU)": lambda x: (lambda s: s + x * s * (1 - s))(
        1.0 / (1.0 + np.exp(-x)))},
    mistakes={
        "the product rule forgotten": (gelu_grad_with(product=False), "gelu is x times "
            "0.5 (1 + tanh u): its derivative is 0.5 (1 + tanh u) + 0.5 x tanh'(u) du/dx"),
        "the chain rule through u forgotten": (gelu_grad_with(chain=False), "tanh is applied to "
            "u(x), so multiply by du/dx = sqrt(2 / pi) (1 + 3 * 0.044715 x^2)"),
        "1 + tanh² instead of 1 - tanh²": (gelu_grad_with(sech2=lambda t: 1.0 + t * t),
            "tanh'(u) = 1 - tanh(u)^2"),
        "du/dx without the 3": (gelu_grad_with(three=1.0), "d(x^3)/dx = 3 x^2"),
    },
    hints="""
    Product rule first: gelu(x) = x * s(x) with s = 0.5 (1 + tanh u), so
    gelu'(x) = s + x s'(x).

    s'(x) = 0.5 tanh'(u) du/dx: the chain rule through u(x).

    tanh'(u) = 1 - tanh(u)^2 and du/dx = sqrt(2 / pi) (1 + 3 * 0.044715 x^2). Reuse t = tanh(u).
    """,
    patch=(ops, "gelu", lambda fn, current: with_vjp(current, lambda ans, x: lambda g: g * fn(x))),
)

EXERCISES = [LAYER_NORM, LAYER_NORM_VJP, GELU, GELU_GRAD]
