"""Argument parsing for `python -m tinyvit`. Each sub-command is a small function."""
import argparse
import sys

from .configs import DEFAULT_MODEL, get_config, model_names
from .vit import flops_per_image, param_count


def cmd_info(args):
    """Print a model's parameter count, tokens and forward GFLOPs per image."""
    if args.model.lower().startswith("cnn"):
        return _cnn_info(args)
    cfg = get_config(args.model, image_size=args.image_size, num_classes=args.num_classes)
    macs = flops_per_image(cfg)
    print(f"model         {cfg.name}")
    print(f"image         {cfg.image_size}x{cfg.image_size}x{cfg.channels}, "
          f"patch {cfg.patch_size}x{cfg.patch_size}")
    print(f"tokens        {cfg.num_tokens} ({cfg.grid}x{cfg.grid} patches"
          f"{' + 1 class token' if cfg.pool == 'cls' else ', global average pooling'})")
    print(f"width/depth   D={cfg.width}, L={cfg.depth}, heads={cfg.heads}, MLP={cfg.mlp_dim}")
    print(f"classes       {cfg.num_classes}")
    print(f"parameters    {param_count(cfg):,}")
    print(f"forward       {2 * macs / 1e9:.3f} GFLOPs/image ({macs / 1e9:.3f} G multiply-adds)")
    return 0


def _cnn_info(args):
    """`info` for the CNN presets."""
    from . import cnn

    cfg = cnn.get_cnn_config(args.model, num_classes=args.num_classes, image_size=args.image_size)
    macs = cnn.flops_per_image(cfg)
    print(f"model         {cfg.name} (CNN: stem {cfg.stem}, stage widths {cfg.widths}, "
          f"{cfg.depth} convs per stage)")
    print(f"image         {cfg.image_size}x{cfg.image_size}x{cfg.channels}")
    print(f"classes       {cfg.num_classes}")
    print(f"parameters    {cnn.param_count(cfg):,}")
    print(f"forward       {2 * macs / 1e9:.3f} GFLOPs/image ({macs / 1e9:.3f} G multiply-adds)")
    return 0


def build_parser():
    """The argparse parser of every sub-command."""
    parser = argparse.ArgumentParser(prog="python -m tinyvit",
                                     description="The Vision Transformer in NumPy + autograd.")
    sub = parser.add_subparsers(dest="command", required=True)
    info = sub.add_parser("info", help="parameter count, tokens and GFLOPs of a model")
    info.add_argument("model", nargs="?", default=DEFAULT_MODEL,
                      help=f"model name (default {DEFAULT_MODEL}); one of: "
                           f"{', '.join(model_names())}, cnn-tiny, cnn-small, cnn-base")
    info.add_argument("--image-size", type=int, default=None)
    info.add_argument("--num-classes", type=int, default=None)
    info.set_defaults(func=cmd_info)
    _add_training_commands(sub)
    return parser


def _add_training_commands(sub):
    """train / eval / predict live in tinyvit.train (imported lazily)."""
    try:
        from . import train
    except ImportError:  # pragma: no cover - train.py not written yet
        return
    train.add_commands(sub)


def main(argv=None):
    """Entry point; user errors print one line and exit with status 2."""
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except ValueError as e:  # bad input: config, shapes, files, data
        print(f"error: {e}", file=sys.stderr)
        return 2
    except RuntimeError as e:  # e.g. training diverged (the last good checkpoint is kept)
        print(f"error: {e}", file=sys.stderr)
        return 1
