"""The official Google ViT `.npz` checkpoints (github.com/google-research/vision_transformer).

These are the files timm's `_load_weights` reads. They name the same arrays as tinyvit after
the Flax modules (`google_shapes` lists them): query/key/value kernels (D, H, hd) instead of
one fused (D, 3D) qkv, the patch embedding as a (P, P, C, D) convolution kernel. Older files
nest everything under "opt/target/". Every array is checked against the config before use:
names, shapes, floating-point dtype, finite values (`tinyvit.run.verify.check_arrays`).
"""
import math
import os
import re

import numpy as np

from ..configs import ViTConfig
from .checkpoint import read_npz, host_array, write_npz
from .verify import check_arrays

GOOGLE_PREFIXES = ("", "opt/target/")  # older Google files nest everything in "opt/target/"

POS = "Transformer/posembed_input/pos_embedding"


def _block(i):
    """Name prefix of encoder block i in Google's files."""
    return f"Transformer/encoderblock_{i}/"


def google_shapes(cfg: ViTConfig):
    """{Google name: shape} of every array a Google file holds for `cfg` (no prefix)."""
    p, c, d, h, m, k = (cfg.patch_size, cfg.channels, cfg.width, cfg.heads, cfg.mlp_dim,
                        cfg.num_classes)
    shapes = {"embedding/kernel": (p, p, c, d), "embedding/bias": (d,)}
    if cfg.pool == "cls":
        shapes["cls"] = (1, 1, d)
    shapes[POS] = (1, cfg.num_tokens, d)
    for i in range(cfg.depth):
        b, mha = _block(i), _block(i) + "MultiHeadDotProductAttention_1/"
        for ln in ("LayerNorm_0", "LayerNorm_2"):
            shapes.update({f"{b}{ln}/scale": (d,), f"{b}{ln}/bias": (d,)})
        for n in ("query", "key", "value"):
            shapes.update({f"{mha}{n}/kernel": (d, h, d // h), f"{mha}{n}/bias": (h, d // h)})
        shapes.update({f"{mha}out/kernel": (h, d // h, d), f"{mha}out/bias": (d,)})
        mlp = b + "MlpBlock_3/"
        shapes.update({f"{mlp}Dense_0/kernel": (d, m), f"{mlp}Dense_0/bias": (m,),
                       f"{mlp}Dense_1/kernel": (m, d), f"{mlp}Dense_1/bias": (d,)})
    shapes.update({"Transformer/encoder_norm/scale": (d,), "Transformer/encoder_norm/bias": (d,),
                   "head/kernel": (d, k), "head/bias": (k,)})
    return shapes


def to_google(params, cfg: ViTConfig):
    """tinyvit params -> {Google name: array}: split qkv into query/key/value, unfuse heads."""
    p, c, d, h = cfg.patch_size, cfg.channels, cfg.width, cfg.heads
    hd = d // h
    out = {"embedding/kernel": params["embed"]["w"].reshape(p, p, c, d),  # rows (row, col, ch)
           "embedding/bias": params["embed"]["b"]}
    if cfg.pool == "cls":
        out["cls"] = params["cls"]
    out[POS] = params["pos"]
    for i, blk in enumerate(params["blocks"]):
        b, mha = _block(i), _block(i) + "MultiHeadDotProductAttention_1/"
        for ln, ours in (("LayerNorm_0", "ln1"), ("LayerNorm_2", "ln2")):
            out[f"{b}{ln}/scale"], out[f"{b}{ln}/bias"] = blk[ours]["g"], blk[ours]["b"]
        w, bias = blk["attn"]["qkv"]["w"], blk["attn"]["qkv"]["b"]  # (D, 3D), (3D,) = [q|k|v]
        for j, n in enumerate(("query", "key", "value")):
            out[f"{mha}{n}/kernel"] = w[:, j * d:(j + 1) * d].reshape(d, h, hd)  # (D, H, hd)
            out[f"{mha}{n}/bias"] = bias[j * d:(j + 1) * d].reshape(h, hd)  # (H, hd)
        out[f"{mha}out/kernel"] = blk["attn"]["out"]["w"].reshape(h, hd, d)  # (H, hd, D)
        out[f"{mha}out/bias"] = blk["attn"]["out"]["b"]
        for r, fc in enumerate(("fc1", "fc2")):
            out[f"{b}MlpBlock_3/Dense_{r}/kernel"] = blk["mlp"][fc]["w"]
            out[f"{b}MlpBlock_3/Dense_{r}/bias"] = blk["mlp"][fc]["b"]
    out.update({"Transformer/encoder_norm/scale": params["norm"]["g"],
                "Transformer/encoder_norm/bias": params["norm"]["b"],
                "head/kernel": params["head"]["w"], "head/bias": params["head"]["b"]})
    return {key: np.ascontiguousarray(host_array(x)) for key, x in out.items()}


def from_google(arrays, cfg: ViTConfig, dtype=np.float32):
    """{Google name: array} (already checked against `google_shapes`) -> tinyvit params."""
    d = cfg.width

    def get(key, shape=None):
        x = np.asarray(arrays[key], dtype)
        return x.reshape(shape) if shape else x

    def dense(key):
        return {"w": get(key + "/kernel"), "b": get(key + "/bias")}

    def norm(key):
        return {"g": get(key + "/scale"), "b": get(key + "/bias")}

    blocks = []
    for i in range(cfg.depth):
        b, mha = _block(i), _block(i) + "MultiHeadDotProductAttention_1/"
        names = ("query", "key", "value")
        qkv = {"w": np.concatenate([get(f"{mha}{n}/kernel", (d, d)) for n in names], 1),  # (D, 3D)
               "b": np.concatenate([get(f"{mha}{n}/bias", (d,)) for n in names])}  # (3D,)
        out = {"w": get(f"{mha}out/kernel", (d, d)), "b": get(f"{mha}out/bias")}  # rows h*hd+j
        blocks.append({"ln1": norm(b + "LayerNorm_0"), "attn": {"qkv": qkv, "out": out},
                       "ln2": norm(b + "LayerNorm_2"),
                       "mlp": {"fc1": dense(b + "MlpBlock_3/Dense_0"),
                               "fc2": dense(b + "MlpBlock_3/Dense_1")}})
    params = {"embed": {"w": get("embedding/kernel", (cfg.patch_dim, d)),  # (P*P*C, D)
                        "b": get("embedding/bias")},
              "pos": get(POS), "blocks": blocks, "norm": norm("Transformer/encoder_norm"),
              "head": dense("head")}
    if cfg.pool == "cls":
        params["cls"] = get("cls")
    return params


def _strip_google_prefix(path, raw):
    """Drop the "opt/target/" prefix if present; one-line ValueError for unknown layouts."""
    name = os.fspath(path)
    for prefix in GOOGLE_PREFIXES:
        if prefix + "embedding/kernel" in raw:
            return {k[len(prefix):]: x for k, x in raw.items() if k.startswith(prefix)}
    if any(k.startswith("params/") for k in raw):
        raise ValueError(f"{name}: a big_vision checkpoint ('params/...' names) is not supported; "
                         f"expected the google-research/vision_transformer layout")
    raise ValueError(f"{name}: not a Google ViT checkpoint (no 'embedding/kernel' or "
                     f"'opt/target/embedding/kernel' array)")


def _grid_text(tokens, has_cls):
    """'14x14 patch grid' for a position table of `tokens` rows (minus the class token)."""
    n = tokens - (1 if has_cls else 0)
    g = math.isqrt(n)
    return f"{g}x{g} patch grid" if g * g == n else f"{n}-patch sequence"


def _google_depth(arrays):
    """Number of distinct Transformer/encoderblock_{i} in a (prefix-free) Google file."""
    return len({int(m.group(1)) for k in arrays
                if (m := re.match(r"Transformer/encoderblock_(\d+)/", k))})


def check_google(path, arrays, cfg: ViTConfig):
    """One-line ValueError unless a (prefix-free) Google file matches `cfg` in names and shapes."""
    name = os.fspath(path)
    if any(k.startswith("pre_logits/") for k in arrays):
        raise ValueError(f"{name}: has a 'pre_logits' representation layer (some ImageNet-21k "
                         f"checkpoints); not supported by tinyvit")
    if "conv_root/kernel" in arrays:
        raise ValueError(f"{name}: a ResNet+ViT hybrid checkpoint; not supported by tinyvit")
    if cfg.pool == "cls" and "cls" not in arrays:
        raise ValueError(f"{name}: has no class token 'cls' (a classifier='gap' model?) but the "
                         f"config has pool='cls'")
    if cfg.pool == "gap" and "cls" in arrays:
        raise ValueError(f"{name}: has a class token 'cls' (classifier='token') but the config "
                         f"has pool='gap'")
    if any(k.startswith("Transformer/encoderblock/") for k in arrays):
        raise ValueError(f"{name}: stacked ('scanned') encoder blocks are not supported; "
                         f"expected Transformer/encoderblock_0, _1, ...")
    depth = _google_depth(arrays)
    if depth != cfg.depth:
        raise ValueError(f"{name}: the checkpoint has {depth} encoder blocks (encoderblock_0.."
                         f"encoderblock_{depth - 1}), the config depth {cfg.depth}")
    check_arrays(name, arrays, google_shapes(cfg), "array", _explain_shape(name, cfg))


def _explain_shape(name, cfg):
    """A better message than "expected S, found T" for the position table and the head."""

    def explain(key, want, found):
        if key == POS and len(found) == 3 and found[2] == want[2]:
            return (f"{name}: {POS}: the checkpoint's position embeddings are for a "
                    f"{_grid_text(found[1], cfg.pool == 'cls')}, the config's for a "
                    f"{cfg.grid}x{cfg.grid} grid (image_size {cfg.image_size} / patch "
                    f"{cfg.patch_size}); changing resolution needs interpolating them "
                    f"(not done here)")
        if key.startswith("head/") and found:
            return (f"{key}: expected {want}, found {found} (in {name}); the checkpoint has "
                    f"{found[-1]} classes, config {cfg.num_classes}")
        return None

    return explain


def load_google_vit(path, cfg: ViTConfig, dtype=np.float32):
    """Read an official Google ViT .npz (with or without "opt/target/") into tinyvit params.

    Every array is checked against `cfg` (one-line ValueErrors naming the key and both shapes).
    """
    arrays = _strip_google_prefix(path, read_npz(path))
    check_google(path, arrays, cfg)
    return from_google(arrays, cfg, dtype)


def save_google_vit(path, params, cfg: ViTConfig, prefix=""):
    """Write params in the official Google ViT .npz layout ("opt/target/" prefix: old files)."""
    if prefix not in GOOGLE_PREFIXES:
        raise ValueError(f"save_google_vit: prefix expected one of {GOOGLE_PREFIXES}, "
                         f"found {prefix!r}")
    arrays = to_google(params, cfg)
    check_google(path, arrays, cfg)  # params that do not fit cfg fail here, before writing
    write_npz(path, {prefix + k: x for k, x in arrays.items()})


def infer_config_from_google(path, name="google-vit"):
    """Guess the ViTConfig of a Google ViT .npz from its array shapes.

    patch, channels, width from the embedding kernel (P, P, C, D); depth from the number of
    encoder blocks; heads from a query kernel (D, H, hd); mlp_dim from Dense_0 (D, M);
    classes from the head (D, K); pool from whether 'cls' exists; image_size = grid x patch.
    """
    where = os.fspath(path)
    arrays = _strip_google_prefix(path, read_npz(path))
    mha, mlp = _block(0) + "MultiHeadDotProductAttention_1/", _block(0) + "MlpBlock_3/"
    needed = {"embedding/kernel": 4, mha + "query/kernel": 3, mlp + "Dense_0/kernel": 2,
              "head/kernel": 2, POS: 3}
    for key, ndim in needed.items():
        if key not in arrays or arrays[key].ndim != ndim:
            found = f"shape {arrays[key].shape}" if key in arrays else "nothing"
            raise ValueError(f"{where}: cannot infer the config: expected {key} with {ndim} "
                             f"dimensions, found {found}")
    p, _, c, d = arrays["embedding/kernel"].shape
    pool = "cls" if "cls" in arrays else "gap"
    n = arrays[POS].shape[1] - (1 if pool == "cls" else 0)
    grid = math.isqrt(max(n, 0))
    if grid * grid != n:
        raise ValueError(f"{where}: {POS} has {n} patch positions, expected a square grid")
    try:
        return ViTConfig(name=name, image_size=int(grid * p), patch_size=int(p), channels=int(c),
                         width=int(d), depth=_google_depth(arrays),
                         heads=int(arrays[mha + "query/kernel"].shape[1]),
                         mlp_dim=int(arrays[mlp + "Dense_0/kernel"].shape[1]),
                         num_classes=int(arrays["head/kernel"].shape[1]), pool=pool)
    except ValueError as e:
        raise ValueError(f"{where}: cannot infer the config ({e})") from None
