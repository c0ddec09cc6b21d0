"""What a ViT learns, and what it transfers: Fig. 6, Sec. 3.2, Sec. 4.1 and Raghu et al. 2021.

Exercises 18 (attention rollout), 19 (position-embedding interpolation), 20 (the few-shot
linear probe) and 22 (linear CKA, lesson 11; numbered after the capstone, which came first).
Plain NumPy: no gradients are needed. Shape legend: L layers, B batch, H heads, T tokens;
g, G the old and new grid sides; D width; S examples, F features (F1, F2 of x and y),
K classes.
"""
import numpy as np

from ...figures import analysis, similarity
from ..diagnose import nonfinite, scaled
from ..patching import swapped
from ..properties import (at_inputs, changed_inputs, first_difference, output_has, parts, prop,
                          random_case, sums_to, unchanged_by)
from ..spec import exercise, normal, pick


def softmax_rows(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def rollout_inputs(rng, d, residual=True):
    maps = [softmax_rows(normal(rng, d["B"], d["H"], d["T"], d["T"], scale=2.0))
            for _ in range(d["L"])]
    return {"maps": maps, "residual": residual}


HAND_MAPS = [np.array([[[[1.0, 0.0], [0.5, 0.5]]]]), np.array([[[[0.0, 1.0], [1.0, 0.0]]]])]

ROLLOUT = exercise(
    number=18, name="attention_rollout", title="Attention rollout", section="Fig. 6, App. D.8",
    lesson="08_what_vit_learns", signature="attention_rollout(maps, residual=True)",
    reference=analysis.attention_rollout, targets=[analysis.attention_rollout],
    imports="import numpy as np", notes=(),
    doc="""Attention rollout (Abnar & Zuidema 2020; Fig. 6): how much each output token draws on
    each input token through all L layers. Per layer, average the heads; with `residual`,
    account for the skip connection: A <- (A + I) / (its row sums). Then multiply through the
    layers, the first layer rightmost: R = A_L ... A_2 A_1.

    maps: a list of L arrays (B, H, T, T) whose rows sum to 1 -> R (B, T, T).""",
    dims={"L": 3, "B": 2, "H": 2, "T": 4},
    draw=lambda rng: {"L": pick(rng, 1, 4), "B": pick(rng, 1, 2), "H": pick(rng, 1, 3),
                      "T": pick(rng, 2, 5)},
    inputs=rollout_inputs, out="B, T, T",
    hand={"dims": {"L": 2, "B": 1, "H": 1, "T": 2},
          "inputs": {"maps": HAND_MAPS, "residual": False},
          "note": "no residual, A_1 = [[1, 0], [0.5, 0.5]], A_2 = [[0, 1], [1, 0]]: "
                  "R = A_2 A_1 = [[0.5, 0.5], [1, 0]]"},
    edges=[{"label": "one layer (L = 1)", "dims": {"L": 1, "B": 2, "H": 3, "T": 3}},
           {"label": "residual=False", "inputs": lambda rng, d: rollout_inputs(rng, d, False)}],
    mistakes={
        "layers multiplied in the wrong order": (lambda maps, residual=True:
            analysis.attention_rollout(maps[::-1], residual), "layer 1 acts first, so it is "
            "the rightmost factor: R = A_L ... A_1 (R <- A_l R, layer by layer)"),
        "the skip connection ignored": (lambda maps, residual=True: analysis.attention_rollout(
            maps, False), "with residual=True the identity is added: z + MSA(z) passes each token "
            "on to itself"),
        "rows not renormalised": (lambda maps, residual=True: analysis.attention_rollout(
            [m + np.eye(m.shape[-1]) * residual for m in maps], False), "A + I has rows summing "
            "to 2: divide by the row sums so that R stays a mixing matrix"),
        "the max over heads instead of the mean": (lambda maps, residual=True:
            analysis.attention_rollout([m.max(axis=1, keepdims=True) for m in maps], residual),
            "rollout averages the heads: A = mean_h A_h"),
    },
    properties=[
        sums_to("every row of R sums to 1 (a product of mixing matrices)", 1.0),
        changed_inputs("one layer without the residual is the mean of the heads",
                       lambda i: {"maps": i["maps"][:1], "residual": False},
                       lambda i, out: i["maps"][0].mean(axis=1))],
    equivalent={"attention_rollout line 10: 1 -> 2": "the maps are square (T, T): shape[-2] is "
                                                     "shape[-1]"},
    hints="""
    np.stack the list to (L, B, H, T, T) and average over the heads axis: (L, B, T, T).

    With residual: add np.eye(T) (it broadcasts) and divide by .sum(-1, keepdims=True).

    Start from R = A_1 and, for each later layer, R = A_l @ R (matmul over the last two axes,
    batched over B). The hand case has R = A_2 A_1.
    """,
)


def grid_inputs(rng, d):
    return {"pos": normal(rng, 1, d["g"] ** 2 + d["cls"], d["D"]), "old_grid": d["g"],
            "new_grid": d["G"], "has_cls": bool(d["cls"])}


def resampled(sample):
    """A wrong interpolation: the library's, with its 1-D matrix built by sample(old, new)."""
    def wrong(pos, old_grid, new_grid, has_cls):
        with swapped([(analysis, "bilinear_matrix", sample)]):
            return analysis.interpolate_pos_embed(pos, old_grid, new_grid, has_cls)
    return wrong


def matrix_at(points):
    """The (new, old) linear-interpolation matrix at input coordinates points(old, new)."""
    return lambda old, new: np.stack([np.interp(points(old, new), np.arange(old), e)
                                      for e in np.eye(old)], axis=1)


def transposed_grid(pos, old_grid, new_grid, has_cls):
    first, d = int(has_cls), pos.shape[-1]
    grid = pos[:, first:].reshape(old_grid, old_grid, d).transpose(1, 0, 2)  # (g, g, D) cols first
    flipped = np.concatenate([pos[:, :first], grid.reshape(1, -1, d)], axis=1)
    return analysis.interpolate_pos_embed(flipped, old_grid, new_grid, has_cls)


INTERPOLATE = exercise(
    number=19, name="interpolate_pos_embed", title="Position embeddings at a new resolution",
    section="Sec. 3.2", lesson="09_finetune_and_probe",
    signature="interpolate_pos_embed(pos, old_grid, new_grid, has_cls)",
    reference=analysis.interpolate_pos_embed,
    targets=[analysis.interpolate_pos_embed, analysis.bilinear_matrix],
    imports="import numpy as np", notes=(),
    doc="""Sec. 3.2: fine-tuning at a higher resolution keeps the patch size, so the grid of
    patches grows; "we perform 2D interpolation of the pre-trained position embeddings".
    Lay the old_grid^2 patch embeddings out as the (g, g, D) image they index, resample it
    bilinearly to (G, G, D), with align_corners=False as torch's F.interpolate: output index i
    sits at input coordinate (i + 0.5) * g / G - 0.5, clamped to [0, g - 1]. The class token's
    embedding (when has_cls) is passed through, first.

    pos (1, g*g (+1), D), old_grid g, new_grid G, has_cls -> (1, G*G (+1), D).""",
    dims={"g": 3, "G": 5, "D": 4, "cls": 1},
    derive=lambda d: {**d, "Tn": d["G"] ** 2 + d["cls"]},
    draw=lambda rng: {"g": pick(rng, 2, 4), "G": pick(rng, 2, 6), "D": pick(rng, 1, 4),
                      "cls": pick(rng, 0, 1)},
    inputs=grid_inputs, out="1, Tn, D",
    hand={"dims": {"g": 2, "G": 3, "D": 1, "cls": 0},
          "inputs": {"pos": np.arange(4.0).reshape(1, 4, 1), "old_grid": 2, "new_grid": 3,
                     "has_cls": False},
          "note": "the 2x2 grid [[0, 1], [2, 3]] to 3x3 is [[0, 0.5, 1], [1, 1.5, 2], "
                  "[2, 2.5, 3]] (the corner samples are clamped)"},
    edges=[{"label": "shrinking (5x5 -> 3x3)", "dims": {"g": 5, "G": 3, "D": 2, "cls": 1}},
           {"label": "the same grid (nothing to do)", "dims": {"g": 3, "G": 3, "D": 2, "cls": 1}},
           {"label": "no class token", "dims": {"g": 2, "G": 4, "D": 3, "cls": 0}}],
    properties=[
        changed_inputs("at the same grid size (G = g) nothing changes",
                       lambda i: {**i, "new_grid": i["old_grid"]}, lambda i, out: i["pos"]),
        output_has("the class token's embedding is passed through unchanged, first",
                   lambda i, out: np.concatenate([i["pos"][:, :int(i["has_cls"])],
                                                  out[:, int(i["has_cls"]):]], axis=1)),
        changed_inputs("a constant grid stays constant", lambda i: {
            **i, "pos": np.broadcast_to(i["pos"][:, -1:], i["pos"].shape).copy()},
            lambda i, out: np.broadcast_to(i["pos"][:, -1:], out.shape))],
    mistakes={
        "align_corners=True": (resampled(matrix_at(lambda old, new: np.arange(new) * (old - 1)
                                                   / max(new - 1, 1))),
            "the official code and torch's default align pixel centres, not corners: sample i "
            "sits at (i + 0.5) * g / G - 0.5"),
        "nearest neighbour": (resampled(lambda old, new: np.eye(old)[np.clip(np.round(
            (np.arange(new) + 0.5) * old / new - 0.5), 0, old - 1).astype(int)]),
            "Sec. 3.2 interpolates: each new embedding mixes its two nearest old ones in each "
            "direction, by distance"),
        "the grid read column by column": (transposed_grid, "the patches are numbered row by "
            "row (reading order): pos[0, first:].reshape(g, g, D) is indexed [row, col]"),
        "the class token dropped": (lambda pos, old_grid, new_grid, has_cls:
            analysis.interpolate_pos_embed(pos, old_grid, new_grid, has_cls)[:, int(has_cls):],
            "keep the class token's embedding, unchanged, in front"),
    },
    equivalent={
        "interpolate_pos_embed line 7: statement deleted": "to_numpy copies device arrays to the "
            "host; these inputs are NumPy arrays already",
        "bilinear_matrix line 8: arguments 1 and 2 swapped": "np.clip(0, x, hi) = min(max(0, x), "
            "hi) = np.clip(x, 0, hi): max commutes",
        "bilinear_matrix line 8: - -> +": "a clamp at old + 1: past the last sample lo and hi are "
            "both old - 1 (hi is clamped), so the last sample gets weight 1 either way",
        "bilinear_matrix line 10: - -> +": "x is clamped to old - 1, so when lo + 1 passes the end "
            "x = lo and its weight frac is 0",
    },
    hints="""
    Build the (G, g) matrix M of 1-D linear interpolation: row i has weight 1 - f at
    floor(x_i) and f at floor(x_i) + 1 (the last index clamped), x_i the input coordinate.

    Separable: the new grid is M @ grid @ M^T for every channel, e.g.
    np.einsum("ij,jkd,lk->ild", M, grid, M) on the (g, g, D) grid.

    Reshape the result to (1, G*G, D) and put the class token's row, pos[:, :1], back in front.
    The hand case: the corners stay, [0, 0.5, 1] on the first row.
    """,
)


def probe_inputs(rng, d, l2=1.0, spread=2.0):
    labels = rng.permutation(np.arange(d["S"]) % d["K"])
    features = 1.0 + normal(rng, d["S"], d["F"], scale=spread) + labels[:, None]
    return {"features": features, "labels": labels, "k": d["K"], "l2": l2}


def constant_feature(rng, d):
    inputs = probe_inputs(rng, d)
    inputs["features"][:, 0] = 3.0  # std 0: only the + 1e-5 keeps the division finite
    return inputs


def targets(labels, k):
    """2 onehot(y) - 1, (S, K), K = k or max(labels) + 1."""
    return 2.0 * (labels[:, None] == np.arange(labels.max() + 1 if k is None else k)) - 1.0


def ridge(x, t, l2):
    """(X^T X + l2 I)^-1 X^T T."""
    return np.linalg.solve(x.T @ x + l2 * np.eye(x.shape[1]), x.T @ t)


def raw_ridge(features, labels, k=None, l2=1.0):
    """Centred but not standardised features."""
    mean = features.mean(0)
    t = targets(labels, k)
    w = ridge(features - mean, t - t.mean(0), l2)
    return w, t.mean(0) - mean @ w


def regularised_bias(features, labels, k=None, l2=1.0):
    """The bias as one more (regularised) feature of ones."""
    std = features.std(0) + 1e-5
    x = np.concatenate([(features - features.mean(0)) / std, np.ones((len(features), 1))], axis=1)
    wb = ridge(x, targets(labels, k), l2)
    w = wb[:-1] / std[:, None]
    return w, wb[-1] - features.mean(0) @ w


@prop("at the mean feature vector the prediction is the mean target")
def mean_prediction(call, obs):
    """mean(features) @ w + b = mean(2 onehot(y) - 1): the bias is not regularised."""
    o = random_case(obs)
    w, b, i = parts(o["found"], 0), parts(o["found"], 1), o["case"]["inputs"]
    if w is None or b is None or w.shape != (i["features"].shape[1], b.size):
        return None
    k = b.size if i["k"] is None else i["k"]
    diff = first_difference(i["features"].mean(0) @ w + b, targets(i["labels"], k).mean(0))
    return f"{mean_prediction.label} (mean(features) @ w + b = mean(2 onehot - 1)); yours: " \
           f"{diff}" if diff else None


PROBE = exercise(
    number=20, name="linear_probe", title="The few-shot linear probe", section="Sec. 4.1",
    lesson="09_finetune_and_probe", signature="linear_probe(features, labels, k=None, l2=1.0)",
    reference=analysis.linear_probe, imports="import numpy as np", notes=(),
    doc="""Sec. 4.1's few-shot evaluation, in closed form as the official evaluator: standardise
    each feature with the training mean and std (+ 1e-5), take the targets 2 onehot(y) - 1 in
    {-1, 1}^K, and solve the ridge regression W = (X^T X + l2 I)^-1 X^T Y for the centred X
    with an unregularised bias. Fold the standardisation into the weights, so that
    predictions are features @ w + b.

    features (S, F) float, labels (S,) ints < k, k classes K (None: max(labels) + 1),
    l2 > 0 -> (w (F, K), b (K,)).""",
    dims={"S": 12, "F": 5, "K": 3},
    draw=lambda rng: {"S": pick(rng, 4, 15), "F": pick(rng, 1, 6), "K": pick(rng, 2, 4)},
    inputs=probe_inputs, out=[("w", "F, K"), ("b", "K")],
    hand={"dims": {"S": 2, "F": 1, "K": 2},
          "inputs": {"features": np.array([[-1.0], [1.0]]), "labels": np.array([0, 1]), "k": 2,
                     "l2": 1.0},
          "note": "features -1 and +1 (mean 0, std 1), targets [1, -1] and [-1, 1]: "
                  "w = (2 + 1)^-1 [-2, 2] = [-0.6667, 0.6667], b = [0, 0]"},
    edges=[{"label": "fewer examples than features (S < F)", "dims": {"S": 4, "F": 7, "K": 2}},
           {"label": "a constant feature (std 0)", "inputs": constant_feature},
           {"label": "a strong ridge (l2 = 100)",
            "inputs": lambda rng, d: probe_inputs(rng, d, 100.0)},
           {"label": "k=None: the classes counted from the labels",
            "inputs": lambda rng, d: {**probe_inputs(rng, d), "k": None}}],
    mistakes={
        "no standardisation": (raw_ridge, "the official evaluator standardises each feature "
            "first (train mean and std), so that l2 penalises every feature alike"),
        "{0, 1} targets instead of {-1, 1}": (lambda *a: (lambda w, b: (w / 2, (b + 1) / 2))(
            *analysis.linear_probe(*a)), "the targets are 2 onehot(y) - 1, in {-1, 1}"),
        "the bias regularised too": (regularised_bias, "the bias is not penalised: with centred "
            "X it is exactly the mean target, t.mean(0)"),
        "l2 ignored": (lambda features, labels, k=None, l2=1.0: analysis.linear_probe(
            features, labels, k, 1e-9), "the ridge term l2 I keeps the solve well-posed with "
            "few shots (S < F)"),
    },
    detectors=[nonfinite("a constant feature has std 0: add 1e-5 to the std"), scaled()],
    properties=[
        mean_prediction,
        unchanged_by("shifting every feature by a constant leaves w as it is",
                     lambda i: {**i, "features": i["features"] + 7.0})],
    equivalent={
        **dict.fromkeys(["linear_probe line 20: statement deleted", "linear_probe line 20: - -> +"],
                        "X is centred (X^T 1 = 0), so a constant added to a column of t changes "
                        "neither X^T t (primal) nor X^T (X X^T + l2 I)^-1 t (dual): the same W"),
        "linear_probe line 22: GtE -> Gt": "at S = F the primal and the dual solve give the same W",
    },
    hints="""
    Standardise: mean and std over the examples (axis 0), x = (features - mean) / (std + 1e-5).
    Targets t = 2 * (labels[:, None] == np.arange(k)) - 1.

    Because x is centred, the unregularised bias is the mean target, t.mean(0); solve the
    ridge for the centred targets: np.linalg.solve(x.T @ x + l2 * np.eye(F), x.T @ t_centred).

    Fold the standardisation back: w_raw = w / std[:, None] and b = bias - mean @ w_raw.
    (With S < F the dual form x.T @ solve(x @ x.T + l2 I, t) gives the same w, faster.)
    """,
)



def cka_inputs(rng, d, same=False):
    """x (S, F1) and y (S, F2) = tanh(x W) + noise: related, but not by a linear map."""
    x = normal(rng, d["S"], d["F1"])
    y = np.tanh(x @ normal(rng, d["F1"], d["F2"])) + normal(rng, d["S"], d["F2"], scale=0.3)
    return {"x": x, "y": x.copy() if same else y}


def cka_of(hsic_cross, hsic_self):
    """A wrong CKA: HSIC's of the Gram matrices X X^T, Y Y^T by other formulas."""
    def wrong(x, y):
        k, l = x @ x.T, y @ y.T  # (S, S)
        return hsic_cross(k, l) / np.sqrt(hsic_self(k, k) * hsic_self(l, l))
    return wrong


def centred_features_cka(axis):
    """CKA in the feature-space form ||Y^T X||_F^2 / (||X^T X||_F ||Y^T Y||_F), the features
    centred along `axis` (0, the examples, is right)."""
    def cka(x, y):
        x, y = x - x.mean(axis, keepdims=True), y - y.mean(axis, keepdims=True)
        return np.sum((y.T @ x) ** 2) / (np.linalg.norm(x.T @ x) * np.linalg.norm(y.T @ y))
    return cka


def feature_grams(x, y):
    """A wrong CKA: the feature-by-feature matrices X^T X (F1, F1), Y^T Y (F2, F2) centred as
    if Gram matrices (they only meet when F1 = F2, or one is 1 x 1: centred, 0, and 0 / 0)."""
    k = similarity.centre_gram(x.T @ x)  # (F1, F1)
    l = similarity.centre_gram(y.T @ y)  # (F2, F2)
    with np.errstate(invalid="ignore"):
        return np.sum(k * l) / np.sqrt(np.sum(k * k) * np.sum(l * l))


def rotated(i):
    """x times an orthogonal Q (F1, F1), from a QR decomposition."""
    q, _ = np.linalg.qr(np.random.default_rng(0).standard_normal((i["x"].shape[1],) * 2))
    return {**i, "x": i["x"] @ q}


HSIC_SAME_FACTOR = "HSIC's factor 1 / (S - 1)^2 is common to the three HSICs and cancels in CKA"
HAND_X = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, -1.0]])

CKA = exercise(
    number=22, name="linear_cka", title="Linear CKA",
    section="Raghu et al. 2021; Kornblith et al. 2019 Eq. 3-4", lesson="11_how_vits_see",
    signature="linear_cka(x, y)", reference=similarity.linear_cka,
    targets=[similarity.linear_cka, similarity.hsic, similarity.centre_gram, similarity.gram],
    imports="import numpy as np", notes=(),
    doc="""Linear centred kernel alignment (Kornblith et al. 2019), how Raghu et al. 2021
    compare the layers of a ViT and a CNN: how alike two representations of the same S
    examples are. Take the Gram matrices K = X X^T and L = Y Y^T (S, S), centre them with
    H = I - 1 1^T / S, and
    HSIC(K, L) = tr(K H L H) / (S - 1)^2                              (Eq. 3)
    CKA = HSIC(K, L) / sqrt(HSIC(K, K) HSIC(L, L))                    (Eq. 4)

    x (S, F1), y (S, F2) float (the widths may differ) -> a scalar in [0, 1].""",
    dims={"S": 6, "F1": 4, "F2": 3},
    draw=lambda rng: {"S": pick(rng, 4, 8), "F1": pick(rng, 1, 5), "F2": pick(rng, 1, 5)},
    inputs=cka_inputs, out="",
    hand={"dims": {"S": 4, "F1": 2, "F2": 1}, "inputs": {"x": HAND_X, "y": HAND_X[:, :1]},
          "note": "x the four points (+-1, 0), (0, +-1), y its first coordinate: centred "
                  "already, X^T X = 2 I, Y^T X = [2, 0], so CKA = ||Y^T X||^2 / (||X^T X|| "
                  "||Y^T Y||) = 4 / (2 sqrt(2) * 2) = 1 / sqrt(2) = 0.7071"},
    edges=[{"label": "y = x (CKA = 1)", "inputs": lambda rng, d: cka_inputs(rng, d, True)},
           {"label": "one feature in x (F1 = 1)", "dims": {"S": 5, "F1": 1, "F2": 3}},
           {"label": "two examples (S = 2: CKA = 1)", "dims": {"S": 2, "F1": 3, "F2": 2}}],
    mistakes={
        "Gram matrices not centred": (cka_of(lambda k, l: np.sum(k * l),
                                             lambda k, l: np.sum(k * l)),
            "HSIC is tr(K H L H), not tr(K L): centre the rows and the columns of each Gram "
            "matrix (H K H), or CKA depends on where the features' origin is"),
        "a Gram matrix centred on one side only": (cka_of(
            lambda k, l: np.sum((k - k.mean(0)) * l), lambda k, l: np.sum((k - k.mean(0)) * l)),
            "tr(H K L) centres K's rows only: HSIC is tr(K H L H), both sides of both matrices "
            "(H K H: subtract the column means, then the row means)"),
        "features centred over the feature axis": (centred_features_cka(1),
            "centring subtracts each feature's mean over the S examples (axis 0), which is "
            "what H K H does to K = X X^T, not each example's mean over its features"),
        "no square root in the denominator": (cka_of(similarity.hsic, lambda k, l: np.sqrt(
            similarity.hsic(k, l))), "Eq. 4 divides by sqrt(HSIC(K, K) HSIC(L, L)), a "
            "geometric mean, so that CKA(X, X) = 1 and scaling X changes nothing"),
        "X^T X in place of X X^T": (feature_grams,
            "the Gram matrix compares examples: K = X X^T is (S, S), the same size for x and y "
            "whatever their widths; X^T X (F1, F1) compares features, and meets Y^T Y (F2, F2) "
            "only when F1 = F2"),
        "(S - 1)^2 in the cross HSIC, S^2 in the self HSICs": (lambda x, y: similarity.linear_cka(
            x, y) * len(x) ** 2 / (len(x) - 1) ** 2, "use the same HSIC, with the same "
            "1 / (S - 1)^2, in the numerator and the denominator: then the factor cancels"),
        "y ignored": (lambda x, y: similarity.linear_cka(x, x), "compare x with y: CKA(X, Y) "
            "uses L = Y Y^T in the numerator and in the denominator"),
    },
    properties=[
        at_inputs("CKA(X, X) = 1", lambda i: {**i, "y": i["x"]}, lambda i: 1.0),
        unchanged_by("an orthogonal transform of x (x Q) changes nothing", rotated),
        unchanged_by("scaling x (3.7 x) changes nothing", lambda i: {**i, "x": 3.7 * i["x"]}),
        changed_inputs("CKA is symmetric: CKA(Y, X) = CKA(X, Y)",
                       lambda i: {"x": i["y"], "y": i["x"]}, lambda i, out: out),
        output_has("CKA is in [0, 1]", lambda i, out: np.clip(out, 0.0, 1.0))],
    equivalent={
        "linear_cka line 8: elements 1 and 2 swapped": "CKA is symmetric: K and L swapped "
            "give the same tr(K H L H) and the same product of the self HSICs",
        "linear_cka line 9: arguments 1 and 2 swapped": "HSIC is symmetric: tr(L H K H) = "
            "tr(K H L H)",
        **dict.fromkeys([f"hsic line 3: {m}" for m in ("/ -> *", "** -> *", "- -> +", "2 -> 3",
                                                       ".sum -> .mean")], HSIC_SAME_FACTOR),
        **dict.fromkeys(["centre_gram line 2: keepdims dropped", "centre_gram line 2: True -> "
                         "False"], "the means over axis 0 without keepdims have the shape (S,), "
                        "which broadcasts as the row (1, S) that keepdims=True makes"),
        "gram line 2: statement deleted": "the exercise's x and y are float64 NumPy arrays of "
            "two axes already: the conversion and the reshape change nothing",
        "gram line 2: 1 -> 2": "NumPy's reshape reads any negative size as the rest: "
            "reshape(S, -2) is reshape(S, -1)",
    },
    hints="""
    K = x @ x.T and L = y @ y.T are both (S, S), whatever F1 and F2. Centre one: subtract the
    mean of each column (axis 0), then the mean of each row (axis 1); that is H K H.

    HSIC(K, L) = tr(Kc Lc) / (S - 1)^2 with Kc, Lc centred; for symmetric matrices
    tr(Kc Lc) = (Kc * Lc).sum(). The factor 1 / (S - 1)^2 cancels in CKA, but keep it the
    same in all three HSICs.

    CKA = hsic(K, L) / np.sqrt(hsic(K, K) * hsic(L, L)). The hand case: the points (+-1, 0),
    (0, +-1) against their first coordinate give 1 / sqrt(2) = 0.7071.
    """,
)

EXERCISES = [ROLLOUT, INTERPOLATE, PROBE, CKA]
