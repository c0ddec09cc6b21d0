"""The command line, `python -m tinyvit {info,train,eval,predict} ...` (see README).

Each sub-command is a small function over the library. Every bad input prints one line,
`error: ...`, naming the option or file: exit status 2 for what the user can fix (options,
files, data, checkpoints), 1 for a run that failed (diverged, disk full), and 128 + the
signal's number for a run stopped as by Ctrl-C: 130 Ctrl-C, 129 SIGHUP, 143 SIGTERM
(`signals`). File names are printed as the OS gives them (undecodable bytes as \\xNN).
"""
import argparse
import os
import sys
from pathlib import Path

import numpy as np

from .. import cnn, data, hybrid, vit
from ..data import fractal_sets
from ..configs import (CNN_PRESETS, DEFAULT_MODEL, HYBRID_PRESETS, family, get_cnn_config,
                       get_config, get_hybrid_config, model_names)
from . import (checkpoint, evaluate, recipe, rundata, rundir, signals, train, transfer,
               validate, verify)
from ..support.errors import as_flags, parse_command_line, reader_gone
from ..support.progress import Progress, format_seconds

# A vit-cifar-nano trained on CIFAR-10 (tinyvit/pretrained/README.md says how), used by eval,
# predict and the lessons when no checkpoint is named and none was trained here.
PRETRAINED = Path(__file__).resolve().parents[1] / "pretrained" / "vit-cifar-nano.npz"


def cmd_info(args):
    """Print a model's parameter count, tokens and forward multiply-adds per image."""
    validate.check_options(image_size=args.image_size, num_classes=args.num_classes)
    if family(args.model) == "cnn":
        cfg = get_cnn_config(args.model, num_classes=args.num_classes, image_size=args.image_size)
        macs, params = cnn.flops_per_image(cfg), cnn.param_count(cfg)
        print(f"model         {cfg.name} (CNN: {cnn_text(cfg)}, {convs(cfg.depth)} per stage)")
        print(f"image         {cfg.image_size}x{cfg.image_size}x{cfg.channels}")
    elif family(args.model) == "hybrid":
        cfg = get_hybrid_config(args.model, num_classes=args.num_classes,
                                image_size=args.image_size)
        macs, params = hybrid.flops_per_image(cfg), hybrid.param_count(cfg)
        print(f"model         {cfg.name} (hybrid, paper Sec. 3.1: a CNN's feature map as tokens)")
        print(f"image         {cfg.image_size}x{cfg.image_size}x{cfg.channels}")
        print(f"CNN           {cnn_text(cfg.backbone)}, {convs(cfg.cnn_depth)} per stage, "
              f"{cnn.backbone_param_count(cfg.backbone):,} parameters")
        cls = " + 1 class token" if cfg.pool == "cls" else ""
        print(f"tokens        {cfg.num_tokens} ({cfg.grid}x{cfg.grid} feature-map pixels as 1x1 "
              f"patches of {cfg.patch_dim} channels{cls})")
        print(f"width/depth   D={cfg.width}, L={cfg.depth}, heads={cfg.heads}, MLP={cfg.mlp_dim}")
    else:
        cfg = get_config(args.model, image_size=args.image_size, num_classes=args.num_classes)
        macs, params = vit.flops_per_image(cfg), vit.param_count(cfg)
        print(f"model         {cfg.name}")
        print(f"image         {cfg.image_size}x{cfg.image_size}x{cfg.channels}, "
              f"patch {cfg.patch_size}x{cfg.patch_size}")
        pooling = {"cls": " + 1 class token", "gap": ", global average pooling",
                   "seq": ", sequence pooling"}[cfg.pool]
        print(f"tokens        {cfg.num_tokens} ({cfg.grid}x{cfg.grid} patches{pooling})")
        print(f"positions     {'fixed 2-D sin-cos' if cfg.pos == 'sincos' else 'learned'}")
        small = [k for k, on in (("shifted patch tokens", cfg.spt),
                                 ("locality self-attention", cfg.lsa)) if on]
        if small:
            print(f"small data    {', '.join(small)} (Lee et al. 2021)")
        print(f"width/depth   D={cfg.width}, L={cfg.depth}, heads={cfg.heads}, MLP={cfg.mlp_dim}")
    print(f"classes       {cfg.num_classes}")
    print(f"parameters    {params:,}")
    print(f"forward       {2 * macs / 1e9:.3f} GFLOPs/image ({macs / 1e9:.3f} G multiply-adds)")
    return 0


def cnn_text(cfg):
    """'whitening stem 24, stage widths (64, 128), BatchNorm, GELU' for a CNNConfig."""
    stem = f"whitening stem {cfg.stem}" if cfg.whiten else f"stem {cfg.stem}"
    norm = {"batch": "BatchNorm", "group": f"GroupNorm({cfg.groups})"}.get(cfg.norm, cfg.norm)
    return f"{stem}, stage widths {cfg.widths}, {norm}, {cfg.act.upper()}"


def convs(n):
    return f"{n} conv{'s' if n != 1 else ''}"


def cmd_train(args):
    """python -m tinyvit train ..."""
    if args.out is not None and not args.out.strip():
        raise ValueError(f"--out {args.out!r}: expected a folder name")
    model = args.model or (transfer.pretrained_model(args.init)[0] if args.init
                           else DEFAULT_MODEL)
    chosen = recipe.recipe_for(model, **{k: getattr(args, k) for k in recipe.NAMES})
    out = Path(args.out or f"runs/{model if isinstance(model, str) else model.name}")
    validate.check_folder_option("`data_dir`", args.data_dir)
    if args.resume and args.replace:
        raise ValueError("--resume and --replace: expected one of them (continue the run in "
                         "--out, or start over there)")
    if args.resume and not (out / rundir.CKPT).is_file():
        raise ValueError(f"--resume: no checkpoint {out / rundir.CKPT} to continue (train "
                         f"without --resume to start a run there)")
    history = train.train(model, args.data, chosen, out, data_dir=args.data_dir,
                          train_size=args.train_size, seed=args.seed,
                          augment=not args.no_augment, resume=args.resume, replace=args.replace,
                          max_steps=args.max_steps, backend=args.backend,
                          on_start=args.on_start, init=args.init)
    tested = [h["test_acc"] for h in history if h["test_acc"] is not None]
    if tested:
        print(f"done: final test accuracy {tested[-1]:.1%} (best {max(tested):.1%}), "
              f"training time {format_seconds(sum(h['seconds'] for h in history))}")
    return 0


def eval_source(args, meta, path):
    """--data, else the data the checkpoint names (a CIFAR name, a formula-driven spec or an
    absolute path)."""
    if args.data:
        return args.data
    stored = meta.get("data")
    if not isinstance(stored, str) or not (stored.lower() in data.OFFICIAL_NAMES
                                           or fractal_sets.is_spec(stored)
                                           or os.path.isabs(stored)):
        raise ValueError(f"{path}: names its data as {stored!r}, a path relative to where it "
                         f"was trained; pass --data")
    return stored


def checkpoint_or_default(path):
    """The checkpoint named, else `runs/<default model>/last.npz` when this folder has a
    finished one (what `python -m tinyvit train` writes), else the trained model shipped with
    tinyvit. One line says which, and how far it was trained."""
    if path:
        return path
    mine = Path("runs") / DEFAULT_MODEL / rundir.CKPT
    return rundir.default_checkpoint([mine, PRETRAINED],
                                     say=lambda line: print(line, file=sys.stderr))


TTA_TEXT = {"none": "without test-time augmentation", "flip": "with the flipped images too",
            "flip-shift": "with the flipped and one-pixel shifted images too"}


def tta_note(tta, trained):
    """' (with ...: its recipe tests with X TTA)': how eval tested, beside how training did."""
    if tta == trained == "none":
        return ""
    recipe = f"its recipe tests with {trained} TTA" if trained != "none" else \
        "its recipe tests without TTA"
    asked = "" if tta == trained else ", as asked"
    return f" ({TTA_TEXT[tta]}{asked}{':' if tta == trained else ';'} {recipe})"


def cmd_eval(args):
    """python -m tinyvit eval [CKPT] --data ... [--tta VIEWS]"""
    if args.tta is not None:
        recipe.check_value("tta", args.tta)
    args.checkpoint = checkpoint_or_default(args.checkpoint)
    model, params, meta = checkpoint.load_model(args.checkpoint)
    source = eval_source(args, meta, args.checkpoint)
    ds = rundata.load(source, data_dir=args.data_dir)
    verify.check_data_fits(args.checkpoint, model, meta, ds, source)
    x, y = ds["test"]
    trained = meta.get("hparams", {}).get("tta", "none")  # as it was tested in training
    tta = trained if args.tta is None else args.tta
    tester = Progress(len(y), "testing ")
    acc, cm = evaluate.evaluate(model, params, x, y, np.float32(meta["mean"]),
                                np.float32(meta["std"]), tta=tta, progress=tester)
    tester.clear()
    averaged = meta.get("hparams", {}).get("ema", 0) > 0  # load_model gave the EMA weights
    print(f"{model.name}{' (EMA weights)' if averaged else ''}: test accuracy {acc:.2%} on "
          f"{len(y):,} images{tta_note(tta, trained)}")
    print("\n".join(evaluate.confusion_summary(cm, meta["classes"])))
    return 0


def cmd_predict(args):
    """python -m tinyvit predict [CKPT] image.png"""
    validate.check_options(top=args.top)
    if len(args.paths) > 2:
        raise ValueError(f"predict: expected [CHECKPOINT] IMAGE, found {len(args.paths)} paths")
    ckpt, image = (None, *args.paths) if len(args.paths) == 1 else args.paths
    model, params, meta = checkpoint.load_model(checkpoint_or_default(ckpt))
    for name, prob in evaluate.predict(model, params, meta, image, args.top):
        print(f"{prob:7.2%}  {data.shown(name)}")
    return 0


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a bad command line is one line too (not the usage block)."""

    def error(self, message):
        self.exit(2, f"error: {message} (see {self.prog} --help)\n")


def add_tta_options(parser, default):
    """--tta [VIEWS] and --no-tta, both setting `tta` (None when neither is given)."""
    meaning = next(s for s in recipe.SETTINGS if s.name == "tta").metadata["meaning"]
    parser.add_argument("--tta", nargs="?", const="flip", default=None, metavar="VIEWS",
                        help=f"{meaning} (--tta alone: flip); default: {default}")
    parser.add_argument("--no-tta", dest="tta", action="store_const", const="none",
                        help="same as --tta none")


def add_recipe_options(parser):
    """One flag per setting of the `Recipe` (--epochs, --lr, ...), each defaulting to the
    model's recipe (None: not given)."""
    for setting in recipe.SETTINGS:
        if setting.name == "tta":
            add_tta_options(parser, "the model's recipe")
        else:
            parser.add_argument("--" + setting.name.replace("_", "-"), type=setting.type,
                                default=None, help=setting.metadata["meaning"])


def build_parser():
    """The argparse parser of every sub-command."""
    parser = OneLineParser(prog="python -m tinyvit",
                                     description="The Vision Transformer in NumPy + autograd.")
    sub = parser.add_subparsers(dest="command", required=True)
    info = sub.add_parser("info", help="parameter count, tokens and GFLOPs of a model")
    info.add_argument("model", nargs="?", default=DEFAULT_MODEL,
                      help=f"model name (default {DEFAULT_MODEL}); one of: "
                           f"{', '.join(model_names() + list(CNN_PRESETS) + list(HYBRID_PRESETS))}")
    info.add_argument("--image-size", type=int, default=None)
    info.add_argument("--num-classes", type=int, default=None)
    info.set_defaults(func=cmd_info)

    t = sub.add_parser("train", help="train a ViT, a CNN or a hybrid",
                       description="Train a model; every hyper-parameter not given comes from "
                                   "the model's recipe (tinyvit.run.recipe; docs/RESULTS.md).")
    t.add_argument("--model", default=None,
                   help=f"a ViT preset, a CNN ({', '.join(CNN_PRESETS)}) or a hybrid "
                        f"({', '.join(HYBRID_PRESETS)}); default {DEFAULT_MODEL}, or --init's")
    t.add_argument("--init", default=None, metavar="CKPT",
                   help="fine-tune this checkpoint (any family): its encoder, a zero head for "
                        "--data's classes, a fresh optimiser and schedule (paper Sec. 3.2)")
    t.add_argument("--data", default="cifar10",
                   help="cifar10, cifar100, an ImageFolder directory / .tar.gz / .zip, or "
                        "images made by formula: fractal:KxI or 1p-frac:KxI (K classes, I "
                        "images each; options ,grey ,seed=S ,delta=D; docs/pretraining.md)")
    t.add_argument("--data-dir", default=None, help="download/cache folder ($TINYVIT_DATA)")
    t.add_argument("--out", default=None, help="output folder (default runs/MODEL)")
    add_recipe_options(t)
    for name in ("train-size", "max-steps"):
        t.add_argument(f"--{name}", type=int, default=None)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--no-augment", action="store_true",
                   help="no random crop / flip (--augment, --erasing, --mixup and --cutmix act "
                        "as set)")
    t.add_argument("--resume", action="store_true", help="continue from OUT/last.npz")
    t.add_argument("--replace", action="store_true",
                   help="start over in an OUT holding a run (it is moved to OUT/previous-N/)")
    t.add_argument("--backend", default="numpy", choices=["numpy", "cupy"],
                   help="numpy (CPU) or cupy (GPU; autograd runs on CuPy arrays)")
    t.set_defaults(func=cmd_train)

    e = sub.add_parser("eval", help="test accuracy and confusions of a checkpoint")
    e.add_argument("checkpoint", nargs="?", default=None,
                   help="default: runs/MODEL/last.npz here, else the model shipped with tinyvit")
    e.add_argument("--data", default=None, help="default: the data it was trained on")
    e.add_argument("--data-dir", default=None)
    add_tta_options(e, "as its training tested")
    e.set_defaults(func=cmd_eval)

    p = sub.add_parser("predict", help="top-5 classes of an image file")
    p.add_argument("paths", nargs="+", metavar="[CHECKPOINT] IMAGE",
                   help="the checkpoint (default as for eval) and the image file")
    p.add_argument("--top", type=int, default=5)
    p.set_defaults(func=cmd_predict)
    return parser


def main(argv=None, on_start=None):
    """Entry point; every error prints one line (see the module docstring for exit codes).
    `on_start`: what `train` calls once a run's folder is open (`python -m tinyvit` passes
    `tinyvit.figures.fractal_grid.save_categories`, a layer above this one)."""
    args, status = parse_command_line(build_parser(), argv)
    if args is None:
        return status
    args.on_start = on_start
    for stream in (sys.stdout, sys.stderr):  # names as the OS gives them: never a crash
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    try:
        with signals.as_interrupt():  # SIGTERM, SIGHUP: as Ctrl-C
            return args.func(args)
    except ValueError as e:  # bad input: options, config, shapes, files, data, checkpoints
        return fail(e, 2)
    except RuntimeError as e:  # a run failed: diverged, disk full (the last checkpoint is kept)
        return fail(e, 1)
    except BrokenPipeError:  # the reader of our output left (`... | head`): as `yes | head`
        return reader_gone()
    except OSError as e:  # the system refused a read or write the checks above did not foresee
        return fail(f"{e.filename or ''}{': ' if e.filename else ''}{e.strerror or e}", 1)
    except KeyboardInterrupt as e:  # Ctrl-C, SIGTERM, SIGHUP; training says what it keeps
        return fail(e if str(e) else signals.reason(), signals.exit_status())


def flags(parser=None):
    """{parameter: '--flag'}: every option of every sub-command, by the parameter it sets, and
    the library's names for what the command line calls --data."""
    parser = parser or build_parser()
    found = {"source": "--data", "data_source": "--data"}
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for sub in commands.choices.values():
        for action in sub._actions:
            spelled = "--" + action.dest.replace("_", "-")
            if spelled in action.option_strings:
                found[action.dest] = spelled
    return found


def fail(message, status):
    """Print `error: message` on one line, its parameters spelled as flags; return the exit
    status."""
    print(f"error: {data.shown(' '.join(as_flags(str(message), flags()).split()))}",
          file=sys.stderr)
    return status
