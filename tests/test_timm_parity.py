"""tinyvit and timm give the same logits for the same official-format (Google .npz) weights.

Random tinyvit parameters are written with `save_google_vit`, loaded into timm's
VisionTransformer with timm's own Google loader (`_load_weights`) and back into tinyvit with
`load_google_vit`; both models then classify one random batch.

GELU: Google's Flax ViT calls `nn.gelu`, whose default is the tanh approximation; timm
uses the exact erf form for the same weights (they differ by < 1e-3 per activation).
The test gives timm the form tinyvit uses, so it checks the weight layout and architecture.
"""
import functools
import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")
timm_vit = pytest.importorskip("timm.models.vision_transformer")

from tinyvit import ops  # noqa: E402
from tinyvit.run.google import load_google_vit, save_google_vit  # noqa: E402
from tinyvit.configs import ViTConfig, get_config  # noqa: E402
from tinyvit.tree import tree_map  # noqa: E402
from tinyvit.vit import init_vit, vit  # noqa: E402

CONFIGS = {
    "cifar-cls": ViTConfig(name="cifar-cls", image_size=32, patch_size=4, width=64, depth=2,
                           heads=4, mlp_dim=128, num_classes=10, pool="cls"),
    "cifar-gap": ViTConfig(name="cifar-gap", image_size=32, patch_size=4, width=64, depth=2,
                           heads=4, mlp_dim=128, num_classes=10, pool="gap"),
    "ti16-64px": get_config("vit-ti16", image_size=64, num_classes=10),
}


def tinyvit_gelu_is_tanh():
    """True when tinyvit's GELU is the tanh approximation, False when it is exact (erf)."""
    x = np.array([-1.5, 0.7, 2.0])
    tanh_form = 0.5 * x * (1.0 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)))
    erf_form = np.array([0.5 * v * (1.0 + math.erf(v / math.sqrt(2))) for v in x])
    got = np.asarray(ops.gelu(x))
    assert np.allclose(got, tanh_form, atol=1e-12) or np.allclose(got, erf_form, atol=1e-12)
    return bool(np.allclose(got, tanh_form, atol=1e-12))


def timm_model(cfg: ViTConfig):
    """timm's VisionTransformer shaped like `cfg`; for gap: final norm on all tokens, then mean."""
    gelu = (functools.partial(torch.nn.GELU, approximate="tanh") if tinyvit_gelu_is_tanh()
            else torch.nn.GELU)
    model = timm_vit.VisionTransformer(
        img_size=cfg.image_size, patch_size=cfg.patch_size, in_chans=cfg.channels,
        embed_dim=cfg.width, depth=cfg.depth, num_heads=cfg.heads,
        mlp_ratio=cfg.mlp_dim / cfg.width, num_classes=cfg.num_classes,
        class_token=cfg.pool == "cls", global_pool="token" if cfg.pool == "cls" else "avg",
        fc_norm=False,  # LayerNorm before pooling, as Google's Encoder(encoder_norm) + mean
        no_embed_class=False, qkv_bias=True, act_layer=gelu)
    return model.eval()


@pytest.mark.parametrize("prefix", ["", "opt/target/"], ids=["plain", "opt-target"])
@pytest.mark.parametrize("name", list(CONFIGS))
def test_logits_match_timm(tmp_path, name, prefix, path):
    torch.set_num_threads(1)
    cfg = CONFIGS[name]
    rng = np.random.default_rng(0)
    # Move every array (biases, LayerNorm scales/offsets, the zero head, ...) off its init.
    params = tree_map(lambda x: (x + 0.1 * rng.standard_normal(x.shape)).astype(np.float32),
                      init_vit(rng, cfg))
    path = tmp_path / "vit.npz"
    save_google_vit(path, params, cfg, prefix=prefix)

    model = timm_model(cfg)
    timm_vit._load_weights(model, str(path))
    images = rng.standard_normal((4, cfg.image_size, cfg.image_size, cfg.channels))
    images = images.astype(np.float32)  # (B, H, W, C)
    with torch.no_grad():
        want = model(torch.from_numpy(images).permute(0, 3, 1, 2).contiguous()).numpy()  # NCHW

    got = vit(load_google_vit(path, cfg), images, cfg)  # (B, K)
    assert got.dtype == np.float32 and got.shape == want.shape
    diff = float(np.abs(got - want).max())
    print(f"{name} {prefix or 'plain'}: max |logit diff| = {diff:.2e} "
          f"(max |logit| {np.abs(want).max():.2f})")
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-4)
