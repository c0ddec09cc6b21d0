"""The command line, `python -m tinyvit {info,train,eval,predict} ...` (see README).

Each sub-command is a small function over the library; user errors print one line.
"""
import argparse
import sys

import numpy as np

from .. import cnn, data, vit
from ..configs import DEFAULT_MODEL, family, get_cnn_config, get_config, model_names
from . import checkpoint, evaluate, train
from .progress import format_seconds


def cmd_info(args):
    """Print a model's parameter count, tokens and forward multiply-adds per image."""
    if family(args.model) == "cnn":
        cfg = get_cnn_config(args.model, num_classes=args.num_classes, image_size=args.image_size)
        macs, params = cnn.flops_per_image(cfg), cnn.param_count(cfg)
        print(f"model         {cfg.name} (CNN: stem {cfg.stem}, stage widths {cfg.widths}, "
              f"{cfg.depth} convs per stage)")
        print(f"image         {cfg.image_size}x{cfg.image_size}x{cfg.channels}")
    else:
        cfg = get_config(args.model, image_size=args.image_size, num_classes=args.num_classes)
        macs, params = vit.flops_per_image(cfg), vit.param_count(cfg)
        print(f"model         {cfg.name}")
        print(f"image         {cfg.image_size}x{cfg.image_size}x{cfg.channels}, "
              f"patch {cfg.patch_size}x{cfg.patch_size}")
        print(f"tokens        {cfg.num_tokens} ({cfg.grid}x{cfg.grid} patches"
              f"{' + 1 class token' if cfg.pool == 'cls' else ', global average pooling'})")
        print(f"width/depth   D={cfg.width}, L={cfg.depth}, heads={cfg.heads}, MLP={cfg.mlp_dim}")
    print(f"classes       {cfg.num_classes}")
    print(f"parameters    {params:,}")
    print(f"forward       {2 * macs / 1e9:.3f} GFLOPs/image ({macs / 1e9:.3f} G multiply-adds)")
    return 0


def cmd_train(args):
    """python -m tinyvit train ..."""
    hparams = {k: getattr(args, k) for k in train.RECIPES["vit"]}
    history = train.train(args.model, args.data, args.out, data_dir=args.data_dir,
                          train_size=args.train_size, seed=args.seed,
                          augment=not args.no_augment, resume=args.resume,
                          max_steps=args.max_steps, backend=args.backend, **hparams)
    if history:
        best = max(h["test_acc"] for h in history if h["test_acc"] is not None)
        total = sum(h["seconds"] for h in history)
        print(f"done: final test accuracy {history[-1]['test_acc']:.1%} (best {best:.1%}), "
              f"training time {format_seconds(total)}")
    return 0


def cmd_eval(args):
    """python -m tinyvit eval CKPT --data ..."""
    model, params, meta = checkpoint.load_model(args.checkpoint)
    ds = data.load_data(args.data or meta["data"], data_dir=args.data_dir)
    x, y = ds["test"]
    acc, cm = evaluate.evaluate(model, params, x, y, np.float32(meta["mean"]),
                                np.float32(meta["std"]))
    print(f"{model.name}: test accuracy {acc:.2%} on {len(y):,} images")
    print("\n".join(evaluate.confusion_summary(cm, meta["classes"])))
    return 0


def cmd_predict(args):
    """python -m tinyvit predict CKPT image.png"""
    model, params, meta = checkpoint.load_model(args.checkpoint)
    for name, prob in evaluate.predict(model, params, meta, args.image, args.top):
        print(f"{prob:7.2%}  {name}")
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

    t = sub.add_parser("train", help="train a ViT or the CNN")
    t.add_argument("--model", default=DEFAULT_MODEL,
                   help=f"a ViT preset or a CNN (cnn-tiny/small/base); default {DEFAULT_MODEL}")
    t.add_argument("--data", default="cifar10",
                   help="cifar10, cifar100, or an ImageFolder directory / .tar.gz / .zip")
    t.add_argument("--data-dir", default=None, help="download/cache folder ($TINYVIT_DATA)")
    t.add_argument("--out", default=None, help="output folder (default runs/MODEL)")
    for name, typ in (("epochs", int), ("batch-size", int), ("lr", float),
                      ("weight-decay", float), ("warmup", float), ("smoothing", float),
                      ("clip", float), ("train-size", int), ("max-steps", int)):
        t.add_argument(f"--{name}", type=typ, default=None)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--no-augment", action="store_true", help="no random crop / flip")
    t.add_argument("--resume", action="store_true", help="continue from OUT/last.npz")
    t.add_argument("--backend", default="numpy", choices=["numpy", "cupy"],
                   help="numpy (CPU) or cupy (GPU; autograd runs on CuPy arrays)")
    t.set_defaults(func=cmd_train)

    e = sub.add_parser("eval", help="test accuracy and confusions of a checkpoint")
    e.add_argument("checkpoint")
    e.add_argument("--data", default=None, help="default: the data it was trained on")
    e.add_argument("--data-dir", default=None)
    e.set_defaults(func=cmd_eval)

    p = sub.add_parser("predict", help="top-5 classes of an image file")
    p.add_argument("checkpoint")
    p.add_argument("image")
    p.add_argument("--top", type=int, default=5)
    p.set_defaults(func=cmd_predict)
    return parser


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
