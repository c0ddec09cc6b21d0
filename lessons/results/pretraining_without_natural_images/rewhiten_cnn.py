"""A diagnostic beside lesson 12, not part of its experiment: does cnn-air-small lose accuracy
after formula pre-training because its fixed whitening stem was computed from fractals?

Fine-tunes the pre-trained checkpoint as lesson 12 does (`train(..., init=...)`, the sweep's
length rule and recipe, the same class-balanced labels), but with the stem's whitening kernel
recomputed from the CIFAR-10 labels' images first (`cnn.init_whitening`, airbench's 5,000
images at most). It reads the test set to answer, so it only explains; it chose nothing in the
experiment.

    python lessons/results/pretraining_without_natural_images/rewhiten_cnn.py \\
        PRETRAINED.npz --labels 5000 --seed 0 --data ../shared/data/cifar10-jpeg.tar.gz

PRETRAINED.npz: lesson 12's `pretraining_runs/pre/cnn-air-small/1000000/0/last.npz`.
Prints the whitening kernel's norm before and after, and one JSON line with the test accuracy.
"""
import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from tinyvit import cnn, data
from tinyvit.run import checkpoint, sweep
from tinyvit.run.train import train

ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
ap.add_argument("pretrained", type=Path)
ap.add_argument("--labels", type=int, default=5000)
ap.add_argument("--seed", type=int, default=0)
ap.add_argument("--data", default="cifar10")
ap.add_argument("--out", type=Path, default=None, help="the run folder (default: a temporary one)")
args = ap.parse_args()

model, params, meta = checkpoint.load_model(args.pretrained)
if not getattr(model.cfg, "whiten", False):
    raise SystemExit(f"error: {args.pretrained}: {model.name} has no whitening stem")
sub = sweep.subset_of(data.load_data(args.data), args.labels, args.seed)
x = data.normalize(sub["train"][0][:5000], sub["mean"], sub["std"])  # (<=5000, H, W, C)
new = cnn.init_whitening(params, x, model.cfg)
norms = [np.linalg.norm(p["stem"]["fixed"]) for p in (params, new)]
print(f"whitening kernel norm: from the pre-training data {norms[0]:.2f}, from the "
      f"{args.labels:,} CIFAR-10 images {norms[1]:.2f}")
out = args.out or Path(tempfile.mkdtemp(prefix="rewhiten-"))
init = out / "pretrained-rewhitened.npz"
out.mkdir(parents=True, exist_ok=True)
checkpoint.save_model(init, new, meta)
epochs, t0 = sweep.epochs_for(args.labels), time.perf_counter()
hist = train(model.name, sub, sweep.run_recipe(model.name, args.labels, epochs), out / "run",
             seed=args.seed, eval_every=epochs, init=init, log=lambda *a: None)
print(json.dumps(dict(pretrained=str(args.pretrained), labels=args.labels, seed=args.seed,
                      test_acc=hist[-1]["test_acc"], seconds=round(time.perf_counter() - t0))))
