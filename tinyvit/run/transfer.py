"""Fine-tuning from a pre-trained model (paper, Sec. 3.2): keep the encoder, replace the head.

    "When fine-tuning, we remove the pre-trained prediction head and attach a zero-initialized
    D x K feedforward layer, where K is the number of downstream classes."

Every family here (ViT, CNN, hybrid) ends in the same head, params["head"] = {"w": (D, K),
"b": (K,)} on the pooled features (the class token, or the CNN's global average), so one
function serves all three: everything but the head is copied unchanged (the encoder: patch
embedding, position embeddings, blocks, final LayerNorm; the CNN's stem and stages with their
fixed whitening kernel and BatchNorm statistics), and the head becomes zeros of the new size.
A zero head needs no random numbers: at the first step every class has logit 0, and the
encoder's features decide where the gradient takes it.

    model, params, meta = load_pretrained("runs/fractal/ckpt.npz", num_classes=10)

Keep the encoder's fixed parts as they are: do not recompute a whitening kernel from the new
data (`Model.from_data`) after this, since the first learned convolution was trained on the old one.

Shape legend: D features fed to the head, K classes.
"""
import dataclasses

from .. import layers
from ..arrays import array_module
from ..tree import tree_map
from . import checkpoint, models


def transfer(model, params, num_classes):
    """(model with `num_classes` classes, params with the encoder copied and a zero head).

    model: a `models.Model` of any family; params: its parameters. The old params are left
    as they were (the copies share no memory with them, so in-place optimiser updates of the
    new ones cannot reach the pre-trained ones)."""
    if not (isinstance(num_classes, int) and num_classes >= 1):
        raise ValueError(f"transfer: num_classes: expected an integer >= 1, found "
                         f"{num_classes!r}")
    head = params.get("head") if isinstance(params, dict) else None
    if not (isinstance(head, dict) and getattr(head.get("w"), "ndim", 0) == 2):
        raise ValueError(f"transfer: expected params with a head {{'w': (D, K), 'b': (K,)}}, "
                         f"found keys {sorted(params) if isinstance(params, dict) else params}")
    d, old_k = head["w"].shape
    if old_k != model.cfg.num_classes:
        raise ValueError(f"transfer: the params' head has {old_k} classes, the model "
                         f"{model.name!r} {model.cfg.num_classes}: expected the same")
    new_model = models.from_config_dict(
        dataclasses.asdict(dataclasses.replace(model.cfg, num_classes=num_classes)))
    encoder = tree_map(lambda x: x.copy(), {k: v for k, v in params.items() if k != "head"})
    new_head = layers.init_linear(None, d, num_classes, head["w"].dtype, zero=True)
    xp = array_module(head["w"])  # on the device that holds the encoder
    return new_model, {**encoder, "head": {k: xp.asarray(v) for k, v in new_head.items()}}


def load_pretrained(path, num_classes):
    """(model, params, meta) of the checkpoint at `path` (any tinyvit training checkpoint or
    `save_model` file, checked as `checkpoint.load_model` checks it) with its head replaced
    for `num_classes` classes (`transfer`). meta is the pre-trained run's, unchanged."""
    model, params, meta = checkpoint.load_model(path)
    new_model, new_params = transfer(model, params, num_classes)
    return new_model, new_params, meta
