"""tinyvit: the Vision Transformer (Dosovitskiy et al., ICLR 2021) in readable, vectorised NumPy.

Gradients come from autograd; parameters are plain nested dicts of arrays. The model is
`configs`, `vit`, `layers`, `ops`, `cnn`, `hybrid`, `optim`, `tree` (read these next to the paper);
`fast`, `device`, `data`, `run` and `figures` are layered around it (README, "What is where").
"""
from .configs import ViTConfig, get_config, model_names
from .vit import init_vit, loss_fn, features, attention_maps, patchify, count_params  # tinyvit.vit.vit: logits

__version__ = "0.1.0"
