"""Eq. 2-4: the pre-LN encoder block and the whole forward pass.

Exercises 11 (block) and 12 (vit). Shape legend: B batch, N tokens, D width, H heads,
M MLP width, L blocks, K classes; S image side, P patch, C channels, T tokens.
"""
import autograd.numpy as np

from ... import layers, ops, vit
from ...configs import ViTConfig
from ...tree import tree_map
from ..patching import swapped
from ..properties import changed_inputs, independent_items
from ..spec import NO_DROPOUT, exercise, normal, pick


def random_tree(rng, tree, scale=0.5):
    """Every leaf of a parameter tree redrawn ~ N(0, scale^2) in float64 (no zero inits)."""
    return tree_map(lambda x: normal(rng, *np.shape(x), scale=scale), tree)


def block_inputs(rng, d):
    p = random_tree(rng, layers.init_block(rng, d["D"], d["M"]))
    return {"p": p, "z": normal(rng, d["B"], d["N"], d["D"]), "heads": d["H"], "eps": 1e-6}


def biases_only():
    """Hand case: MSA and MLP weights 0 (LayerNorms g = 1, b = 0): each outputs its last bias."""
    p = layers.init_block(np.random.default_rng(0), 2, 4, np.float64)
    p["attn"], p["mlp"] = tree_map(np.zeros_like, p["attn"]), tree_map(np.zeros_like, p["mlp"])
    p["attn"]["out"]["b"], p["mlp"]["fc2"]["b"] = np.array([1.0, 0.0]), np.array([0.0, 2.0])
    return {"p": p, "z": np.array([[[1.0, 1.0], [3.0, -1.0]]]), "heads": 1, "eps": 1e-6}


def sublayers(p, z, heads, eps):
    """The block's pieces from the library: LN1, MSA, LN2 and MLP as functions."""
    return (lambda t: layers.layer_norm(p["ln1"], t, eps),
            lambda t: layers.attention(p["attn"], t, heads),
            lambda t: layers.layer_norm(p["ln2"], t, eps), lambda t: layers.mlp(p["mlp"], t))


def post_ln(p, z, heads, eps=1e-6):
    ln1, msa, ln2, mlp = sublayers(p, z, heads, eps)
    z = ln1(z + msa(z))
    return ln2(z + mlp(z))


def no_msa_residual(p, z, heads, eps=1e-6):
    ln1, msa, ln2, mlp = sublayers(p, z, heads, eps)
    z = msa(ln1(z))
    return z + mlp(ln2(z))


def no_mlp_residual(p, z, heads, eps=1e-6):
    ln1, msa, ln2, mlp = sublayers(p, z, heads, eps)
    return mlp(ln2(z + msa(ln1(z))))


def residual_of_normalised(p, z, heads, eps=1e-6):
    ln1, msa, ln2, mlp = sublayers(p, z, heads, eps)
    z = ln1(z) + msa(ln1(z))
    return ln2(z) + mlp(ln2(z))


def block_formula(p, z, heads, eps=1e-6):
    """Eq. 2-3 written out, one named value per step."""
    h = layers.layer_norm(p["ln1"], z, eps)  # (B, N, D)
    y = z + layers.attention(p["attn"], h, heads)  # (B, N, D) Eq. 2
    h = layers.layer_norm(p["ln2"], y, eps)  # (B, N, D)
    return y + layers.mlp(p["mlp"], h)  # (B, N, D) Eq. 3


def with_activation(act, after_fc2=False):
    """A wrong block: the library's, its MLP with `act` instead of GELU (or after fc2)."""
    def mlp(p, x, rate=0.0, train=False, rng=None):
        h = layers.linear(p["fc1"], x)  # (B, N, M)
        return act(layers.linear(p["fc2"], h)) if after_fc2 else layers.linear(p["fc2"], act(h))

    def wrong(p, z, heads, eps=1e-6):
        with swapped([(layers, "mlp", mlp)]):
            return layers.block(p, z, heads, eps)
    return wrong


BLOCK = exercise(
    number=11, name="block", title="The pre-LN encoder block", section="Eq. 2-3",
    lesson="04_encoder", signature="block(p, z, heads, eps=1e-6)", reference=layers.block,
    targets=[layers.block, layers.mlp], formulas=[block_formula],
    explain_targets=[layers.attention],
    variants={"ReLU instead of GELU in the MLP": with_activation(lambda h: np.maximum(h, 0.0)),
              "GELU after the MLP's second dense layer (fc2) instead of the first (fc1)":
                  with_activation(ops.gelu, after_fc2=True),
              "no GELU in the MLP": with_activation(lambda h: h)},
    imports=("import autograd.numpy as np\n\n"
             "from tinyvit.layers import attention, layer_norm, mlp  # or paste yours"),
    doc="""Eq. 2-3, one encoder block with LayerNorm before each sub-layer (pre-LN):

        z' = MSA(LN(z)) + z          (Eq. 2)
        z_out = MLP(LN(z')) + z'     (Eq. 3),  MLP(x) = GELU(x W1 + b1) W2 + b2

    p {"ln1": {"g", "b"}, "attn": {"qkv", "out"} (exercise 6), "ln2": {"g", "b"},
       "mlp": {"fc1": {"w": (D, M), "b": (M,)}, "fc2": {"w": (M, D), "b": (D,)}}};
    z (B, N, D), heads H, eps of both LayerNorms -> (B, N, D).""",
    dims={"B": 2, "N": 3, "D": 4, "H": 2, "M": 8},
    draw=lambda rng: {"B": pick(rng, 1, 2), "N": pick(rng, 1, 4), "D": 6, "H": pick(rng, 1, 3),
                      "M": pick(rng, 2, 9)},
    inputs=block_inputs, out="B, N, D",
    hand={"dims": {"B": 1, "N": 2, "D": 2, "H": 1, "M": 4}, "inputs": biases_only(),
          "note": "the weights of MSA and the MLP are 0, so they output their last biases "
                  "[1, 0] and [0, 2]: z_out = z + [1, 0] + [0, 2]"},
    edges=[{"label": "one head, one token", "dims": {"B": 2, "N": 1, "D": 4, "H": 1, "M": 3}}],
    grads=("p", "z"),
    properties=[
        changed_inputs("permuting the tokens permutes the output rows the same way",
                       lambda i: {**i, "z": i["z"][:, ::-1]}, lambda i, out: out[:, ::-1]),
        independent_items("each sequence of the batch goes through the block on its own", ("z",))],
    mistakes={
        "post-LN (the original Transformer's order)": (post_ln, "ViT normalises before each "
            "sub-layer and adds the un-normalised input: z' = MSA(LN(z)) + z, not LN(z + MSA(z))"),
        "no residual around MSA": (no_msa_residual, "Eq. 2 adds z back: z' = MSA(LN(z)) + z"),
        "no residual around the MLP": (no_mlp_residual, "Eq. 3 adds z' back: MLP(LN(z')) + z'"),
        "the residual adds the normalised input": (residual_of_normalised, "the skip connection "
            "carries z itself, not LN(z): z' = MSA(LN(z)) + z"),
        "one LayerNorm for both sub-layers": (lambda p, z, heads, eps=1e-6: layers.block(
            {**p, "ln2": p["ln1"]}, z, heads, eps), "each sub-layer has its own LayerNorm: ln1 "
            "before MSA, ln2 before the MLP"),
    },
    equivalent=dict.fromkeys([
        "block line 3: arguments 3 and 4 swapped", "block line 4: arguments 3 and 4 swapped",
        "block line 4: arguments 4 and 5 swapped", "mlp line 3: statement deleted",
        "mlp line 3: arguments 3 and 4 swapped", "mlp line 4: arguments 3 and 4 swapped"],
        NO_DROPOUT),
    hints="""
    Two lines, one per equation. Eq. 2: z = z + attention(p["attn"], LN_1(z), heads), with
    LN_1(z) = layer_norm(z, p["ln1"]["g"], p["ln1"]["b"], eps).

    Eq. 3 the same way with p["ln2"] and the MLP: h = GELU(LN_2(z) W1 + b1), then h W2 + b2.
    A weight (D, M) times (B, N, D) works with @ over the last axis.

    The skip connections add the block's input itself, not its normalised version; the
    hand case (all weights 0) shows z_out = z + the two last biases.
    """,
    patch=(layers, "block", lambda fn, current: lambda p, z, heads, eps=1e-6, rate=0.0,
           train=False, rng=None, weights_out=None: fn(p, z, heads, eps)),
)


def vit_inputs(rng, d):
    cfg = ViTConfig(image_size=d["S"], patch_size=d["P"], channels=d["C"], width=d["D"],
                    depth=d["L"], heads=d["H"], mlp_dim=d["M"], num_classes=d["K"],
                    pool="cls" if d["cls"] else "gap")
    params = random_tree(rng, vit.init_vit(rng, cfg))
    return {"params": params, "images": normal(rng, d["B"], d["S"], d["S"], d["C"]), "cfg": cfg}


def zero_vit():
    """Hand case: every parameter 0 but the final LayerNorm's offset and the head."""
    cfg = ViTConfig(image_size=2, patch_size=2, channels=1, width=2, depth=1, heads=1,
                    mlp_dim=2, num_classes=3)
    params = tree_map(np.zeros_like, vit.init_vit(np.random.default_rng(0), cfg, np.float64))
    params["norm"]["b"] = np.array([1.0, 2.0])
    params["head"] = {"w": np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 1.0]]), "b": np.array([0.5, 0, 0])}
    return {"params": params, "images": np.ones((1, 2, 2, 1)), "cfg": cfg}


def pooled(pool):
    """A wrong forward: the library's encoder, then pool(z, cfg) (B, D), then the head."""
    return lambda params, images, cfg: layers.linear(
        params["head"], pool(vit.encode(params, images, cfg), cfg))


def norm_after_pooling(params, images, cfg):
    """A wrong forward: the final LayerNorm applied to the pooled vector, not to the tokens."""
    identity = lambda p, z, eps=1e-6: z if p is params["norm"] else ops.layer_norm(
        z, p["g"], p["b"], eps)
    with swapped([(layers, "layer_norm", identity)]):
        y = vit.features(params, images, cfg)  # (B, D)
    y = ops.layer_norm(y, params["norm"]["g"], params["norm"]["b"], cfg.ln_eps)  # (B, D)
    return layers.linear(params["head"], y)  # (B, K)


def without_final_norm(params, images, cfg):
    identity = lambda p, z, eps=1e-6: z if p is params["norm"] else ops.layer_norm(
        z, p["g"], p["b"], eps)
    with swapped([(layers, "layer_norm", identity)]):
        return vit.vit(params, images, cfg)


VIT = exercise(
    number=12, name="vit", title="The whole forward pass", section="Eq. 1-4",
    lesson="04_encoder", signature="vit(params, images, cfg)", reference=vit.vit,
    targets=[vit.vit, vit.features, vit.encode, vit.transformer, vit.pool],
    forbid=["vit", "features", "encode"],
    imports=("import autograd.numpy as np\n\n"
             "from tinyvit.layers import block, layer_norm, linear  # or paste yours\n"
             "from tinyvit.vit import embed  # or paste yours"),
    doc="""Eq. 1-4, images to class logits: z_0 = embed(...) (Eq. 1), the L blocks
    (Eq. 2-3, cfg.heads heads, LayerNorm eps cfg.ln_eps), the final LayerNorm params["norm"],
    then y = the class token's row z_L^0 (Eq. 4) or, when cfg.pool == "gap", the mean over
    the tokens, and the head: logits = y W + b with params["head"] {"w": (D, K), "b": (K,)}.

    params as tinyvit.vit.init_vit makes them (docs/CONVENTIONS.md), params["blocks"] a list;
    images (B, H, W, C) float; cfg a ViTConfig -> logits (B, K).""",
    dims={"B": 2, "S": 8, "P": 4, "C": 2, "D": 4, "L": 2, "H": 2, "M": 6, "K": 3, "cls": 1},
    draw=lambda rng: {"B": pick(rng, 1, 2), "S": 4, "P": 2, "C": 1, "D": 4, "L": pick(rng, 1, 2),
                      "H": 2, "M": pick(rng, 2, 5), "K": pick(rng, 2, 4), "cls": pick(rng, 0, 1)},
    inputs=vit_inputs, out="B, K",
    hand={"dims": {"B": 1, "S": 2, "P": 2, "C": 1, "D": 2, "L": 1, "H": 1, "M": 2, "K": 3,
                   "cls": 1}, "inputs": zero_vit(),
          "note": "every weight is 0: every token is 0 until the final LayerNorm, which outputs "
                  "its offset [1, 2]; the head gives [1, 2] W + b = [1.5, 2, 2]"},
    edges=[{"label": "global average pooling (pool 'gap')",
            "dims": {"B": 2, "S": 4, "P": 2, "C": 1, "D": 6, "L": 1, "H": 2, "M": 4, "K": 2,
                     "cls": 0}}],
    grads=("params", "images"),
    properties=[independent_items("each image's logits depend on that image only", ("images",))],
    variants={"the final LayerNorm applied after the pooling, to (B, D), instead of to every "
              "token before it": norm_after_pooling},
    mistakes={
        "no final LayerNorm": (without_final_norm, "the encoder ends with a LayerNorm (Eq. 4: "
            "y = LN(z_L^0)) before the head"),
        "the mean over tokens instead of the class token": (pooled(
            lambda z, cfg: z.mean(axis=1)), "with a class token (cfg.pool == 'cls') the head "
            "reads its row only, z[:, 0] (Eq. 4)"),
        "the last token instead of the class token": (pooled(lambda z, cfg: z[:, -1]),
            "the class token is the first token, z[:, 0]: Eq. 1 puts it in front"),
        "the head on every token": (lambda params, images, cfg: layers.linear(
            params["head"], vit.encode(params, images, cfg)), "the head reads one vector per "
            "image: pool first (the class token, or the mean for 'gap'), then the head"),
    },
    equivalent={
        **dict.fromkeys(["vit line 2: arguments 4 and 5 swapped",
                         "features line 2: arguments 4 and 5 swapped",
                         "encode line 3: arguments 4 and 5 swapped",
                         "encode line 3: arguments 5 and 6 swapped",
                         "transformer line 2: arguments 3 and 4 swapped",
                         "transformer line 4: arguments 5 and 6 swapped",
                         "transformer line 4: arguments 6 and 7 swapped",
                         "transformer line 4: arguments 7 and 8 swapped"],
                        NO_DROPOUT + " (and weights_out is None)"),
        "encode line 2: statement deleted": "check_images only rejects images of the wrong shape",
        "transformer line 2: statement deleted": NO_DROPOUT + " (the embedding's dropout)",
        "pool line 6: arguments 1 and 2 swapped": "only pool 'seq' (SeqPool) runs that line, "
            "and this exercise's configs pool by 'cls' or 'gap' (tests/test_vit_ingredients.py "
            "checks SeqPool)",
    },
    hints="""
    Embed (exercise 2), then for p in params["blocks"]: z = block(p, z, cfg.heads, cfg.ln_eps),
    then layer_norm(z, params["norm"]["g"], params["norm"]["b"], cfg.ln_eps).

    Pool: with cfg.pool == "cls" the class token's row z[:, 0] (B, D); with "gap" the mean
    over the tokens, z.mean(axis=1).

    The head is a linear layer on the pooled (B, D): @ params["head"]["w"] + params["head"]["b"].
    In the hand case every weight is 0, so only the final LayerNorm's offset reaches the head.
    """,
    patch=(vit, "vit", lambda fn, current: lambda params, images, cfg, train=False, rng=None:
           fn(params, images, cfg)),
)

EXERCISES = [BLOCK, VIT]
