"""Model configurations: the paper's ViT-Ti/S/B/L/H (Table 1), small CIFAR presets, the CNN.

ViT names are `vit-{ti,s,b,l,h}{8,14,16,32}` (e.g. `vit-b16` is ViT-B/16) at 224 px with 1000
classes unless overridden, and `vit-cifar-*` presets at 32 px with 10 classes. CNN names are
`cnn-tiny`, `cnn-small`, `cnn-base` (the baseline of `tinyvit.cnn`). `family(cfg)` tells
which family a config belongs to, by its type.
"""
import dataclasses
import math
from dataclasses import dataclass


def _positive_int(v):
    return isinstance(v, int) and not isinstance(v, bool) and v >= 1


def _number(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def check_fields(cfg, ints, rate, eps):
    """One-line ValueError unless the fields `ints` are positive ints, `rate` a dropout rate in
    [0, 1) and `eps` a small positive number, and the name a string (values from JSON too)."""
    kind = type(cfg).__name__
    if not isinstance(cfg.name, str):
        raise ValueError(f"{kind}.name: expected a string, found {cfg.name!r}")
    for field in ints:
        if not _positive_int(getattr(cfg, field)):
            raise ValueError(f"{kind}.{field}: expected a positive int, "
                             f"found {getattr(cfg, field)!r}")
    v = getattr(cfg, rate)
    if not (_number(v) and 0.0 <= v < 1.0):
        raise ValueError(f"{rate}: expected a rate in [0, 1), found {v!r}")
    v = getattr(cfg, eps)
    if not (_number(v) and 0.0 < v < 1.0):
        raise ValueError(f"{kind}.{eps}: expected a small positive number, found {v!r}")


def check_divides(n, by, message):
    """One-line ValueError `message (found remainder r)` unless `by` divides n."""
    if n % by:
        raise ValueError(f"{message} (found remainder {n % by})")


def check_choice(cfg, field, choices):
    """One-line ValueError unless a config's field is one of `choices`."""
    v = getattr(cfg, field)
    if v not in choices:
        raise ValueError(f"{type(cfg).__name__}.{field}: expected one of "
                         f"{', '.join(map(repr, choices))}, found {v!r}")


def check_encoder(cfg):
    """One-line ValueErrors for the Transformer fields of a ViTConfig or HybridConfig."""
    if cfg.width % cfg.heads:
        raise ValueError(f"width {cfg.width} must be divisible by heads {cfg.heads}")
    if cfg.pool not in ("cls", "gap", "seq"):
        raise ValueError(f"pool: expected 'cls', 'gap' or 'seq', found {cfg.pool!r}")
    check_choice(cfg, "pos", ("learned", "sincos"))
    if cfg.pos == "sincos" and (cfg.width % 4 or cfg.width < 8):
        raise ValueError(f"pos 'sincos': expected a width divisible by 4 and >= 8, found "
                         f"{cfg.width}")
    check_flags(cfg, ("spt", "lsa"))
    if cfg.lsa and cfg.num_tokens < 2:
        raise ValueError(f"{type(cfg).__name__}.lsa: masking the diagonal needs 2 or more "
                         f"tokens, found {cfg.num_tokens}")


def check_flags(cfg, fields):
    """One-line ValueError unless the fields `fields` are bools (JSON's true / false too)."""
    for field in fields:
        if not isinstance(getattr(cfg, field), bool):
            raise ValueError(f"{type(cfg).__name__}.{field}: expected True or False, found "
                             f"{getattr(cfg, field)!r}")


class Tokens:
    """The sequence a config's encoder sees (ViTConfig and HybridConfig define `grid`)."""

    spt = False  # shifted patch tokenization: a ViTConfig field (a hybrid's tokens are a CNN's)

    @property
    def embed_in(self):
        """Inputs of the patch embedding E: one flattened patch, or (SPT) the patches of the
        image and its four shifted copies side by side, 5 P^2 C."""
        return self.patch_dim * (5 if self.spt else 1)

    @property
    def num_patches(self):
        """N = HW / P^2 patches (for the hybrid: feature-map pixels)."""
        return self.grid**2

    @property
    def num_tokens(self):
        """Sequence length seen by the encoder: N patches (+1 [class] token)."""
        return self.num_patches + (1 if self.pool == "cls" else 0)


@dataclass(frozen=True)
class ViTConfig(Tokens):
    """Hyper-parameters of one Vision Transformer.

    image_size, patch_size: pixels (square); tokens N = (image_size / patch_size)^2.
    width D, depth L (blocks), heads H, mlp_dim M, num_classes K, channels C.
    pool: "cls" (Eq. 4, head on the [class] token) or "gap" (global average pooling of the
    encoder output; no class token, as in the official code's `classifier="gap"`).
    pos: "learned" (the paper's E_pos, a parameter) or "sincos" (fixed 2-D sin-cos position
    embeddings, as in "Better plain ViT baselines"; no parameter; the class token gets 0).
    dropout: rate after the position embedding and after every dense layer but qkv.
    Ingredients for small data sets (all off by default):
    pool "seq": sequence pooling (Hassani et al. 2021, "Escaping the Big Data Paradigm with
    Compact Transformers"): the tokens averaged with learned weights softmax(z w).
    spt: shifted patch tokenization (Lee et al. 2021, "Vision Transformer for Small-Size
    Datasets"): each patch sees the image and its four diagonal half-patch shifts, then a
    LayerNorm and E (still a linear patch embedding; no convolution).
    lsa: locality self-attention (same paper): a learned temperature per head and no attention
    of a token to itself (the diagonal of the logits masked out).
    """

    name: str = "custom"
    image_size: int = 32
    patch_size: int = 4
    channels: int = 3
    width: int = 64
    depth: int = 4
    heads: int = 4
    mlp_dim: int = 128
    num_classes: int = 10
    pool: str = "cls"
    dropout: float = 0.0
    ln_eps: float = 1e-6
    pos: str = "learned"
    spt: bool = False
    lsa: bool = False

    def __post_init__(self):
        check_fields(self, ("image_size", "patch_size", "channels", "width", "depth", "heads",
                            "mlp_dim", "num_classes"), "dropout", "ln_eps")
        check_encoder(self)
        check_divides(self.image_size, self.patch_size, f"patch size {self.patch_size} must "
                      f"divide image size {self.image_size}")
        if self.spt and self.patch_size < 2:
            raise ValueError(f"ViTConfig.spt: shifts of half a patch need a patch size >= 2, "
                             f"found {self.patch_size}")

    @property
    def grid(self):
        """Patches per side."""
        return self.image_size // self.patch_size

    @property
    def patch_dim(self):
        """P^2 C: the length of one flattened patch."""
        return self.patch_size**2 * self.channels


# Table 1 of the paper (+ ViT-Ti and ViT-S from DeiT / "How to train your ViT").
PAPER_MODELS = {
    "ti": dict(width=192, depth=12, heads=3, mlp_dim=768),
    "s": dict(width=384, depth=12, heads=6, mlp_dim=1536),
    "b": dict(width=768, depth=12, heads=12, mlp_dim=3072),
    "l": dict(width=1024, depth=24, heads=16, mlp_dim=4096),
    "h": dict(width=1280, depth=32, heads=16, mlp_dim=5120),
}
PAPER_PATCHES = (8, 14, 16, 32)

# Small models for CIFAR (32 px, 10 classes). Patch 4 gives 64 tokens (+1 class token).
# Parameters / forward multiply-adds per image:
CIFAR_PRESETS = {
    "vit-cifar-nano": dict(patch_size=4, width=64, depth=4, heads=4, mlp_dim=128),  # 142k, 10.9M
    "vit-cifar-tiny": dict(patch_size=4, width=128, depth=6, heads=4, mlp_dim=256),  # 811k, 58.0M
    "vit-cifar-small": dict(patch_size=4, width=192, depth=6, heads=6,
                            mlp_dim=384),  # 1.81M, 125.3M
    # vit-cifar-tiny with two changes of "Better plain ViT baselines" (Beyer et al. 2022):
    # global average pooling instead of the class token, fixed 2-D sin-cos positions
    "vit-cifar-plain": dict(patch_size=4, width=128, depth=6, heads=4, mlp_dim=256,
                            pool="gap", pos="sincos"),  # 803k, 57.0M
    # vit-cifar-plain with the small-data ingredients that measured well (docs/RESULTS.md):
    # shifted patch tokens and locality self-attention (Lee et al. 2021), sequence pooling
    # (Hassani et al. 2021); still a linear patch embedding, no convolution
    "vit-cifar-sl": dict(patch_size=4, width=128, depth=6, heads=4, mlp_dim=256,
                         pool="seq", pos="sincos", spt=True, lsa=True),
}
DEFAULT_MODEL = "vit-cifar-nano"  # its recipe (tinyvit.run.recipe) fits ~1 h on 2 cores


def model_names():
    """Every name `get_config` accepts."""
    paper = [f"vit-{s}{p}" for s in PAPER_MODELS for p in PAPER_PATCHES]
    return list(CIFAR_PRESETS) + paper


def get_config(name, image_size=None, num_classes=None, **overrides):
    """The config called `name`, with optional image size / classes / field overrides."""
    key = name.lower().replace("/", "")
    if key in CIFAR_PRESETS:
        base = dict(image_size=32, num_classes=10, **CIFAR_PRESETS[key])
    elif key.startswith("vit-") and _split_paper_name(key[4:]) is not None:
        size, patch = _split_paper_name(key[4:])
        base = dict(image_size=224, num_classes=1000, patch_size=patch, **PAPER_MODELS[size])
    else:
        raise unknown_model(name)
    return ViTConfig(name=key, **with_overrides(base, image_size, num_classes, overrides))


def with_overrides(preset, image_size, num_classes, overrides):
    """A preset's fields with the image size, classes and other fields given (not None)."""
    fields = dict(preset, **{k: v for k, v in (("image_size", image_size),
                                               ("num_classes", num_classes)) if v is not None})
    return {**fields, **overrides}


def _split_paper_name(s):
    """'b16' -> ('b', 16); None when it is not a paper model."""
    for size in sorted(PAPER_MODELS, key=len, reverse=True):
        if s.startswith(size) and s[len(size):].isdigit():
            patch = int(s[len(size):])
            return (size, patch) if patch in PAPER_PATCHES else None
    return None


def replace(cfg, **changes):
    """A copy of `cfg` with some fields changed (validated again)."""
    return dataclasses.replace(cfg, **changes)


def family(name_or_cfg):
    """"vit", "cnn" or "hybrid": the model family of a config, by its type (`FAMILIES`), or of
    a preset name, by the table of presets that holds it (a name no table holds is left to
    `get_config`, which refuses it)."""
    if isinstance(name_or_cfg, str):
        key = name_or_cfg.lower()
        return "cnn" if key in CNN_PRESETS else "hybrid" if key in HYBRID_PRESETS else "vit"
    for config_class, name in FAMILIES.items():
        if isinstance(name_or_cfg, config_class):
            return name
    raise TypeError(f"family: expected a model name or a ViTConfig, CNNConfig or HybridConfig, "
                    f"found {type(name_or_cfg).__name__}")


def check_images(images, cfg):
    """One-line ValueError unless images are (B, image_size, image_size, channels) (NHWC)."""
    shape = getattr(images, "shape", None)
    want = (cfg.image_size, cfg.image_size, cfg.channels)
    if shape is None or len(shape) != 4 or tuple(shape[1:]) != want:
        raise ValueError(f"{cfg.name}: expected images of shape (B, {want[0]}, {want[1]}, "
                         f"{want[2]}) (NHWC), found {tuple(shape) if shape else type(images)}")


# ---------------------------------------------------------------------------------------------
# The CNN baseline (tinyvit.cnn)
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CNNConfig:
    """Hyper-parameters of the CNN.

    stem S: channels of the first convolution (full resolution). widths: output channels of
    each stage; every stage halves H and W, so image_size must be divisible by 2^len(widths).
    depth: convolutions per stage. norm: "group" (GroupNorm with `groups` G groups, which must
    divide S and every width; groups 0 for no normalisation) or "batch" (BatchNorm).
    act: "relu" or "gelu". whiten: the stem is a fixed 2x2 patch-whitening convolution
    (airbench) instead of a learned one; it has S = 2 * 4C channels (24 for RGB).
    dropout: rate before the head (training only).
    """

    name: str = "cnn-small"
    image_size: int = 32
    channels: int = 3
    stem: int = 32
    widths: tuple = (32, 64, 128)
    depth: int = 2
    groups: int = 8
    kernel: int = 3
    num_classes: int = 10
    dropout: float = 0.0
    norm_eps: float = 1e-5
    norm: str = "group"
    act: str = "relu"
    whiten: bool = False

    def __post_init__(self):
        if isinstance(self.widths, (list, tuple)):
            object.__setattr__(self, "widths", tuple(self.widths))  # a list from JSON is fine
        check_fields(self, ("image_size", "channels", "stem", "depth", "kernel", "num_classes"),
                     "dropout", "norm_eps")
        if not isinstance(self.widths, tuple) or not self.widths or not all(
                _positive_int(w) for w in self.widths):
            raise ValueError(f"CNNConfig.widths: expected positive ints, found {self.widths!r}")
        if self.kernel % 2 == 0:
            raise ValueError(f"CNNConfig.kernel: expected an odd size, found {self.kernel}")
        check_choice(self, "norm", ("group", "batch"))
        check_choice(self, "act", ("relu", "gelu"))
        if isinstance(self.groups, bool) or not isinstance(self.groups, int) or self.groups < 0:
            raise ValueError(f"CNNConfig.groups: expected an int >= 0, found {self.groups!r}")
        if (self.norm == "group" and self.groups
                and any(c % self.groups for c in (self.stem,) + self.widths)):
            raise ValueError(f"CNNConfig.groups: expected a divisor of stem {self.stem} and "
                             f"widths {self.widths}, found {self.groups}")
        if self.whiten and self.stem != 8 * self.channels:
            raise ValueError(f"CNNConfig.stem: the whitening stem has 2 x 4C = "
                             f"{8 * self.channels} channels, found {self.stem}")
        check_divides(self.image_size, self.reduction, f"image size {self.image_size} must be "
                      f"divisible by {self.reduction} (2^{len(self.widths)} stages of 2x2 "
                      f"pooling)")

    @property
    def reduction(self):
        """How much the stages shrink each side: 2^(number of stages)."""
        return 2 ** len(self.widths)

    @property
    def normalised(self):
        """Whether the convolutions feed a norm (BatchNorm, or GroupNorm with groups > 0)."""
        return self.norm == "batch" or self.groups > 0


# Presets for 32 x 32 images, 10 classes. Parameters / forward multiply-adds per image:
CNN_PRESETS = {
    "cnn-tiny": dict(stem=16, widths=(16, 32, 64), depth=2, groups=4),  # 75k, 6.9M
    "cnn-small": dict(stem=32, widths=(32, 64, 128), depth=2, groups=8),  # 298k, 26.8M
    "cnn-base": dict(stem=32, widths=(48, 96, 144), depth=2, groups=8),  # 474k, 47.2M
    # airbench-style (Keller Jordan's cifar10-airbench): fixed 2x2 whitening stem (24
    # channels), conv -> pool -> BatchNorm -> GELU blocks; sized for ~30 min on 2 cores
    "cnn-air": dict(stem=24, whiten=True, widths=(64, 128, 128), depth=2, norm="batch",
                    act="gelu"),  # 571k (1.6k not trained), 64.0M
    "cnn-air-small": dict(stem=24, whiten=True, widths=(32, 64, 64), depth=2, norm="batch",
                          act="gelu"),  # 147k (0.9k not trained), 19.8M
}
DEFAULT_CNN = "cnn-small"


def get_cnn_config(name=DEFAULT_CNN, num_classes=None, image_size=None, **overrides):
    """The CNN preset called `name`, with optional classes / image size / field overrides."""
    return from_presets(CNNConfig, CNN_PRESETS, name, image_size, num_classes, overrides)


def unknown_model(name):
    """The one-line error for a model name no family has, naming every family's presets."""
    return ValueError(f"unknown model {name!r}; expected a ViT ({', '.join(model_names())}), "
                      f"a CNN ({', '.join(CNN_PRESETS)}) or a hybrid "
                      f"({', '.join(HYBRID_PRESETS)})")


def from_presets(config_class, presets, name, image_size, num_classes, overrides):
    """`config_class` built from the preset called `name` (one-line error when unknown)."""
    key = name.lower()
    if key not in presets:
        raise unknown_model(name)
    return config_class(name=key, **with_overrides(presets[key], image_size, num_classes,
                                                   overrides))


# ---------------------------------------------------------------------------------------------
# The paper's hybrid (tinyvit.hybrid): a CNN feature map as the Transformer's input
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HybridConfig(Tokens):
    """Hyper-parameters of a hybrid (paper, Sec. 3.1 "Hybrid Architecture").

    The CNN part (a `CNNConfig`, `backbone`): stem, widths (one 2x2 pool per stage), cnn_depth
    convolutions per stage, norm / groups / act / whiten / kernel / norm_eps as in CNNConfig.
    Its feature map, (image_size / 2^stages)^2 pixels of widths[-1] channels, is cut into 1x1
    patches: the tokens. The Transformer part, as in ViTConfig: width D, depth L, heads,
    mlp_dim, pool, pos, dropout, ln_eps, lsa; num_classes K.
    """

    name: str = "hybrid-custom"
    image_size: int = 32
    channels: int = 3
    # the CNN (CNNConfig's fields; depth is cnn_depth)
    stem: int = 24
    widths: tuple = (64, 128)
    cnn_depth: int = 1
    norm: str = "batch"
    groups: int = 8
    act: str = "gelu"
    whiten: bool = True
    kernel: int = 3
    norm_eps: float = 1e-5
    # the Transformer (ViTConfig's fields)
    width: int = 128
    depth: int = 4
    heads: int = 4
    mlp_dim: int = 256
    pool: str = "cls"
    pos: str = "learned"
    num_classes: int = 10
    dropout: float = 0.0
    ln_eps: float = 1e-6
    lsa: bool = False

    def __post_init__(self):
        object.__setattr__(self, "widths", tuple(self.widths))  # a list from JSON is fine
        check_fields(self, ("width", "depth", "heads", "mlp_dim", "num_classes"), "dropout",
                     "ln_eps")
        self.backbone  # validates the CNN's fields (one-line errors of CNNConfig)
        check_encoder(self)

    @property
    def backbone(self):
        """The CNN part as a CNNConfig (its head and classes unused)."""
        return CNNConfig(name=f"{self.name}/backbone", image_size=self.image_size,
                         channels=self.channels, stem=self.stem, widths=self.widths,
                         depth=self.cnn_depth, groups=self.groups, kernel=self.kernel,
                         num_classes=self.num_classes, norm_eps=self.norm_eps, norm=self.norm,
                         act=self.act, whiten=self.whiten)

    @property
    def grid(self):
        """Feature-map pixels per side: 1x1 patches per side."""
        return self.image_size // 2 ** len(self.widths)

    @property
    def patch_dim(self):
        """The length of one 1x1 patch: the feature map's channels."""
        return self.widths[-1]


# Presets for 32 x 32 images, 10 classes. Parameters / forward multiply-adds per image:
HYBRID_PRESETS = {
    # whitening stem, one conv -> pool -> BatchNorm -> GELU block per stage, 8x8 = 64 tokens
    "hybrid-tiny": dict(widths=(32, 64), width=64, depth=2, heads=4,
                        mlp_dim=128),  # 102k, 17.7M (12.1M in the CNN)
    "hybrid-small": dict(widths=(64, 128), width=128, depth=4, heads=4,
                         mlp_dim=256),  # 645k, 72.8M (33.4M in the CNN)
}
DEFAULT_HYBRID = "hybrid-small"


def get_hybrid_config(name=DEFAULT_HYBRID, num_classes=None, image_size=None, **overrides):
    """The hybrid preset called `name`, with optional classes / image size / field overrides."""
    return from_presets(HybridConfig, HYBRID_PRESETS, name, image_size, num_classes, overrides)


FAMILIES = {ViTConfig: "vit", CNNConfig: "cnn", HybridConfig: "hybrid"}  # config type -> family
