# %% [markdown]
# # Lesson 10 — Masked patch prediction: pre-training without labels (Sec. 4.6, App. B.1.2)
#
# Every ViT so far learned from labels. Lesson 7 showed the price: with few labelled images
# the ViT loses to a CNN. The paper's Sec. 4.6 tries the trick that made BERT work for text —
# **self-supervision**, learning from the images themselves — in a "preliminary
# exploration":
#
# > we perform a preliminary exploration on masked patch prediction for self-supervision,
# > mimicking the masked language modeling task used in BERT. [...] our smaller ViT-B/16 model
# > achieves 79.9% accuracy on ImageNet, a significant improvement of 2% to training from
# > scratch, but still 4% behind supervised pre-training.
#
# Appendix B.1.2 gives the recipe: "we corrupt 50% of patch embeddings by either replacing
# their embeddings with a learnable [mask] embedding (80%), a random other patch embedding
# (10%) or just keeping them as is (10%). [...] we predict the 3-bit, mean color (i.e., 512
# colors in total) of every corrupted patch using their respective patch representations."
#
# This lesson does exactly that (`tinyvit/mpp.py`, with tests and gradient checks): pre-train
# `vit-cifar-nano` on the 50,000 CIFAR-10 training images **without their labels**, then
# fine-tune it on 1,000 and 5,000 labelled images, against the same model trained from
# scratch with the same recipe. **Does pre-training on unlabelled data reduce data hunger?**
#
# **Running it.** Smoke mode (`--smoke`) runs in seconds on synthetic images; mini mode
# (`--mini`) in about two minutes on real images (pre-training on 5,000 for 2 epochs, one
# fine-tuning pair); full mode shows the measured results (yours, else the project's in
# `lessons/results/mpp/`) unless you run the experiment, which is resumable (re-run the same
# command after an interruption):
#
#     OPENBLAS_NUM_THREADS=1 TINYVIT_SHARDS=1 python lessons/10_masked_patch_prediction.py --run
#
# (pre-training 20 epochs on 50k images, then 2 sizes x 2 inits x 3 seeds fine-tuning runs of
# 200k images each: 90 minutes on one core of this project's machine, measured 2026-12-01).

# %%
import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from autograd import grad_and_aux
from autograd.tracer import getval

import lesson
from tinyvit import data, fast, mpp, ops, optim
from tinyvit.figures import charts, hunger, pictures
from tinyvit.run import checkpoint, models, sweep
from tinyvit.run.recipe import FAMILY_RECIPES
from tinyvit.run.train import SHARDS, Schedule, train_step

LESSON = "10_masked_patch_prediction"
MODE = lesson.mode()
ap = argparse.ArgumentParser(description="Lesson 10: masked patch prediction")
FIRST_SWEEP_BUDGET = 200_000  # images seen per fine-tuning run, at least 4 epochs
ap.add_argument("--run", action="store_true", help="run or resume the experiment")
ap.add_argument("--model", default="vit-cifar-nano")
ap.add_argument("--pretrain-images", type=int, default=50_000, help="unlabelled images")
ap.add_argument("--pretrain-epochs", type=int, default=20)
ap.add_argument("--sizes", type=int, nargs="+", default=[1000, 5000], help="labelled images")
ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
ap.add_argument("--budget", type=int, default=FIRST_SWEEP_BUDGET,
                help="images seen per fine-tuning run (lesson 7's first sweeps' rule)")
ap.add_argument("--results", type=Path, default=lesson.output_dir(LESSON) / "mpp.json")
ap.add_argument("--smoke", action="store_true")
ap.add_argument("--mini", action="store_true")
args, _ = ap.parse_known_args()  # known: notebooks pass their own arguments
if MODE == "mini":
    args.pretrain_images, args.pretrain_epochs, args.sizes, args.seeds, args.budget = (
        5000, 2, [1000], [0], 20_000)
    args.results = lesson.output_dir(LESSON) / "mpp_mini.json"
ds = lesson.with_stats(lesson.cifar10())  # mean and std of all training images
cfg = models.build(args.model).cfg
print(f"{cfg.name}: {cfg.grid}x{cfg.grid} patches of {cfg.patch_size} px; {mpp.num_colors()} "
      f"colour classes; mode {MODE}")

# %% [markdown]
# ## The target: each patch's mean colour, in 3 bits per channel
#
# `mpp.color_targets` averages each patch's pixels per channel and cuts 0–255 into 8 bins
# (3 bits): $(r, g, b) \mapsto 64r + 8g + b$, one of $8^3 = 512$ classes. A coarse target on
# purpose: the model must know roughly what colour belongs where from the *rest* of the image
# (sky above, grass below, the colour of the object's other parts), not reproduce pixels.

# %%
lesson.show_code(mpp.color_targets)
x_test, y_test = ds["test"]
pick = np.array([np.flatnonzero(y_test == c)[0] for c in range(4)])  # 4 test images
imgs = x_test[pick]  # (4, 32, 32, 3) uint8
targets = mpp.color_targets(imgs, cfg.patch_size)  # (4, N) in [0, 512)
S = 5  # display scale: 32 px -> 160 px
tiles = []
for img, t in zip(imgs, targets):
    tiles += [pictures.upscale(img, S), pictures.patch_colors(t, cfg.grid, cfg.patch_size, S)]
lesson.show(pictures.labelled_grid(
    tiles, 4, col_labels=["image", "3-bit mean colour", "image", "3-bit mean colour"],
    title=f"The targets: each {cfg.patch_size}x{cfg.patch_size} patch's mean colour, "
          f"one of 512 classes ({lesson.data_name()})"), "color_targets", LESSON)
all_t = mpp.color_targets(ds["train"][0][:5000], cfg.patch_size)
counts = np.bincount(all_t.ravel(), minlength=512)
print(f"on 5,000 training images: {np.count_nonzero(counts)} of 512 classes occur; the most "
      f"common 10 cover {np.sort(counts)[::-1][:10].sum() / counts.sum():.0%} of patches "
      f"(chance by always guessing the most common: {counts.max() / counts.sum():.1%})")

# %% [markdown]
# ## The corruption: 50% chosen; of those 80% [mask], 10% another patch, 10% kept
#
# `mpp.corruption_plan` chooses exactly half of each image's patches and decides what happens
# to each chosen one; `mpp.corrupt` applies it to the patch embeddings $x_p^i E$ (before the
# position embeddings are added, so a [mask] token still knows *where* it is). Below, the
# same corruption drawn in pixels: grey with a cross = the learned [mask] embedding,
# orange frame = the embedding of another patch of the image, green frame = chosen but kept.
# Right: what the model must predict — the colour of every chosen patch, including the kept
# ones (it cannot tell them apart from unchosen ones, so it must model every patch).

# %%
lesson.show_code(mpp.corruption_plan)
lesson.show_code(mpp.corrupt)
rng = np.random.default_rng(0)
action, source = mpp.corruption_plan(rng, len(imgs), cfg.num_patches)  # (4, N) each
tiles = []
for img, t, a, s in zip(imgs, targets, action, source):
    tiles += [pictures.upscale(img, S),
              pictures.mpp_corruption_view(img, a, s, cfg.patch_size, S),
              pictures.patch_colors(t, cfg.grid, cfg.patch_size, S, chosen=a != mpp.NOT_CHOSEN)]
lesson.show(pictures.labelled_grid(
    tiles, 3, col_labels=["image", "input to the encoder", "target colours"],
    title=f"Masked patch prediction ({lesson.data_name()}): 50% of patches chosen\n"
          "grey x = [mask] (80%), orange = another patch (10%), green = kept (10%)"),
    "corruption", LESSON)
shares = [(action == k).sum() / (action != mpp.NOT_CHOSEN).sum()
          for k in (mpp.MASKED, mpp.REPLACED, mpp.KEPT)]
print(f"chosen per image: {(action != mpp.NOT_CHOSEN).sum(1)} of {cfg.num_patches}; "
      f"masked / replaced / kept: {shares[0]:.0%} / {shares[1]:.0%} / {shares[2]:.0%}")

# %% [markdown]
# ## The objective
#
# The encoder is the ViT's own (Eq. 1–3; `mpp.encode_corrupted` adds the class token and the
# position embeddings to the corrupted embeddings). A linear head maps each chosen patch's
# output token to 512 logits, and the loss is the mean cross-entropy over the chosen patches.
# The head starts at zero, so the loss at initialisation is exactly $\ln 512 = 6.24$.

# %%
lesson.show_code(mpp.mpp_loss)
params0 = mpp.init_mpp(np.random.default_rng(0), cfg)
labels = mpp.pack_labels(targets, action, source)  # (4, N, 3)
loss0 = mpp.mpp_loss(params0, data.normalize(imgs, ds["mean"], ds["std"]), labels, cfg)
print(f"loss at initialisation {float(loss0):.4f} = ln 512 = {np.log(512):.4f}")


# %% [markdown]
# ## Pre-training (no labels)
#
# The loop of lesson 5 with another loss: for each batch, crop + flip, compute the colour
# targets from the augmented pixels, draw a fresh corruption, take an AdamW step of the MPP
# loss (warmup + cosine, clipping at 1, weight decay 0.05; batch 128; the batch in shards,
# one thread per core). The crops pad by reflection, not with zeros as in classification:
# zero padding would make black border patches, a colour the position alone gives away
# (a first try with it scored 0.9% colour accuracy on unpadded held-out images after one
# epoch, against 5% with reflection). After every epoch the loss and the colour accuracy are
# measured on 1,000 test images with a fixed corruption, and the run is saved, so it resumes.

# %%
def mpp_grad_fn():
    """grad_fn(params, x, labels, rng) -> (grads, (loss, correct)) in `train_step`'s format."""

    def loss_and_aux(params, x, labels, rng):
        logits, targets = mpp.mpp_logits(params, x, labels, cfg)  # (S, K), (S,)
        loss = ops.cross_entropy(logits, targets)  # = mpp.mpp_loss, keeping the logits
        correct = (getval(logits).argmax(1) == targets).sum()
        return loss, (getval(loss), np.array([correct, len(targets)]))

    return fast.sharded(grad_and_aux(loss_and_aux), SHARDS)


def mpp_batch(rng, x_uint8):
    """Augment a batch, make its labels: (normalised images, labels (B, N, 3))."""
    xb = data.random_crop_flip(rng, x_uint8, mode="reflect")  # (B, H, W, C) uint8
    action, source = mpp.corruption_plan(rng, len(xb), cfg.num_patches)
    labels = mpp.pack_labels(mpp.color_targets(xb, cfg.patch_size), action, source)
    return data.normalize(xb, ds["mean"], ds["std"]), labels


def mpp_eval(params, x_uint8, seed=123, batch=500):
    """(loss, colour accuracy) on x with a fixed corruption (no augmentation)."""
    rng, losses, right, total = np.random.default_rng(seed), [], 0, 0
    with fast.twins():
        for i in range(0, len(x_uint8), batch):
            xb = x_uint8[i:i + batch]
            action, source = mpp.corruption_plan(rng, len(xb), cfg.num_patches)
            labels = mpp.pack_labels(mpp.color_targets(xb, cfg.patch_size), action, source)
            logits, t = mpp.mpp_logits(params, data.normalize(xb, ds["mean"], ds["std"]),
                                       labels, cfg)
            losses.append(float(ops.cross_entropy(logits, t)) * len(t))
            right, total = right + int((logits.argmax(1) == t).sum()), total + len(t)
    return sum(losses) / total, right / total


def save_pretraining(path, params, opt, rng, epoch, meta):
    """Params, Adam moments, RNG state, epoch and metadata in one .npz, written atomically
    (`checkpoint.save_params`; not a classifier checkpoint: there is no class head)."""
    checkpoint.save_params(path, {"params": params, "opt": {"m": opt["m"], "v": opt["v"]}},
                           step=np.array(opt["step"]), epoch=np.array(epoch),
                           rng=np.array(json.dumps(rng.bit_generator.state)),
                           meta=np.array(json.dumps(meta)))


def load_pretraining(path):
    """Inverse of `save_pretraining`: (params, opt, rng, epoch, meta)."""
    tree, extra = checkpoint.load_params(path), checkpoint.load_extra(path)
    rng = np.random.default_rng()
    rng.bit_generator.state = json.loads(extra["rng"])
    opt = {"m": tree["opt"]["m"], "v": tree["opt"]["v"], "step": int(extra["step"])}
    return tree["params"], opt, rng, int(extra["epoch"]), json.loads(extra["meta"])


def pretrain(x, out, epochs, batch_size=128, seed=0, max_steps=None):
    """MPP pre-training on the unlabelled images x, resumable from out/last.npz.

    Returns (params, history), history one dict per epoch."""
    recipe = FAMILY_RECIPES["vit"].replace(epochs=epochs, batch_size=batch_size, warmup=1.0,
                                           smoothing=0.0)
    hp = dict(recipe.stored(), augment="crop (reflect padding) + flip")
    setup = dict(model=cfg.name, images=len(x), seed=seed, **hp)
    ckpt = out / "last.npz"
    if ckpt.exists():
        params, opt, rng, done, meta = load_pretraining(ckpt)
        if meta["setup"] != json.loads(json.dumps(setup)):
            raise SystemExit(f"{ckpt}: pre-trained with other settings ({meta['setup']}); "
                             f"delete it or use another --results folder")
        print(f"resuming pre-training from {ckpt} at epoch {done}")
    else:
        rng = np.random.default_rng(seed)
        params, done, meta = mpp.init_mpp(rng, cfg), 0, dict(setup=setup, history=[])
        opt = optim.init_adam(params)
    sched, grad_fn = Schedule.of(len(x), recipe), mpp_grad_fn()
    for epoch in range(done, epochs):
        t0, losses, right, total = time.perf_counter(), [], 0, 0
        order = rng.permutation(len(x))
        with fast.twins():
            for i in range(sched.steps_per_epoch):
                if max_steps is not None and opt["step"] >= max_steps:
                    break
                xb, labels = mpp_batch(rng, x[order[i * batch_size:(i + 1) * batch_size]])
                params, opt, loss, counts, _ = train_step(
                    grad_fn, params, opt, xb, labels, rng, sched.lr(opt["step"], hp["lr"]),
                    hp["weight_decay"], hp["clip"])
                losses.append(loss)
                right, total = right + int(counts[0::2].sum()), total + int(counts[1::2].sum())
        test_loss, test_acc = mpp_eval(params, x_test[:200 if MODE == "smoke" else 1000])
        meta["history"].append(dict(epoch=epoch + 1, loss=float(np.mean(losses)),
                                    train_acc=right / max(total, 1), test_loss=test_loss,
                                    test_acc=test_acc,
                                    seconds=round(time.perf_counter() - t0, 1)))
        save_pretraining(ckpt, params, opt, rng, epoch + 1, meta)
        h = meta["history"][-1]
        print(f"pre-training epoch {epoch + 1}/{epochs}: MPP loss {h['loss']:.3f}, colour "
              f"accuracy {h['train_acc']:.1%} (test: loss {test_loss:.3f}, {test_acc:.1%}), "
              f"{h['seconds']:.0f} s")
    return params, meta["history"]


# %% [markdown]
# ## Fine-tuning on few labels, against training from scratch
#
# Sec. 3.2: "we remove the pre-trained prediction head and attach a zero-initialized D × K
# feedforward layer" (`mpp.to_classifier`; the [mask] embedding goes too). Both models then
# train with the recipe and budget rule of lesson 7's first sweeps (AdamW,
# `epochs = clip(budget / N, 4, 200)`, 200k images seen per run)
# on the same class-balanced subsets (same seed, same images) and are tested on all 10,000
# test images. The results file has lesson 7's format: "model" is the initialisation.

# %%
SCRATCH, PRETRAINED = "from scratch", "MPP pre-trained"


def experiment(results_path, max_steps=None):
    """Pre-train (or resume), then every fine-tuning run not yet in results_path."""
    out = results_path.with_suffix("")  # e.g. .../mpp/ holds the pre-training checkpoint
    out.mkdir(parents=True, exist_ok=True)
    x_unlabelled = data.balanced_subset(*ds["train"], args.pretrain_images, 0)[0]
    t0 = time.perf_counter()
    pre, history = pretrain(x_unlabelled, out, args.pretrain_epochs, max_steps=max_steps,
                            batch_size=32 if MODE == "smoke" else 128)
    hp = {k: getattr(FAMILY_RECIPES["vit"], k)
          for k in ("lr", "weight_decay", "warmup", "smoothing", "clip")}
    setup = dict(command=" ".join(["python", *sys.argv]) if MODE != "smoke" else "smoke",
                 machine=sweep.machine(), mode=MODE, model=cfg.name,
                 pretrain_images=len(x_unlabelled), pretrain_epochs=args.pretrain_epochs,
                 budget_images=args.budget, batch_size=128, recipe=hp,
                 date=time.strftime("%Y-%m-%d"))
    results = sweep.load_results(results_path)
    same = ("model", "pretrain_images", "pretrain_epochs", "budget_images", "recipe")
    old = results.get("setup", {})
    if any(k in old and old[k] != json.loads(json.dumps(setup[k])) for k in same):
        raise SystemExit(f"{results_path}: holds runs with other settings "
                         f"({ {k: old.get(k) for k in same} }); use another --results")
    results["pretrain"] = dict(history=history,
                               seconds=round(sum(h["seconds"] for h in history), 1))
    sweep.save_results(results_path, results)
    model = models.build(cfg.name, num_classes=len(ds["classes"]))
    for seed in args.seeds:
        for n in args.sizes:
            for init in (SCRATCH, PRETRAINED):
                if sweep.run_key(init, n, seed) in sweep.load_results(results_path)["runs"]:
                    continue
                x, y = data.balanced_subset(*ds["train"], n, seed)
                subset = dict(train=(x, y), test=ds["test"], mean=ds["mean"], std=ds["std"])
                params = (model.init(np.random.default_rng(seed)) if init == SCRATCH
                          else mpp.to_classifier(pre, len(ds["classes"])))
                epochs, t1 = sweep.epochs_for(n, args.budget, 4), time.perf_counter()
                print(f"fine-tuning {init} on {n:,} labelled images (seed {seed}, {epochs} "
                      f"epochs)")
                _, hist = lesson.fit(model, params, subset, seed=seed, max_steps=max_steps,
                                     test_every=None, epochs=epochs, batch_size=min(128, n),
                                     **hp)
                results = sweep.record(results_path, setup, dict(
                    model=init, size=n, seed=seed, epochs=epochs, steps=hist[-1]["step"],
                    test_acc=hist[-1]["test_acc"], seconds=round(time.perf_counter() - t1, 1)))
                print(f"  test accuracy {hist[-1]['test_acc']:.1%}")
    print(f"experiment: {(time.perf_counter() - t0) / 60:.1f} minutes in this session")
    return sweep.load_results(results_path), pre


COMMITTED = sorted((lesson.REPO / "lessons" / "results" / "mpp").glob("*.json"))
pre = None
if MODE == "smoke":  # into its own folder, never into a real results file
    args.pretrain_images, args.pretrain_epochs, args.sizes, args.seeds = 200, 1, [100], [0]
    shown = {"smoke": experiment(lesson.output_dir(LESSON) / "smoke" / "mpp.json", 2)[0]}
elif MODE == "mini" or args.run:
    results, pre = experiment(args.results)
    shown = {args.results.stem: results}
elif args.results.exists():
    print(f"showing your results from {args.results}")
    shown = {args.results.stem: sweep.load_results(args.results)}
elif COMMITTED:
    print(f"showing the project's measured results ({', '.join(p.name for p in COMMITTED)}); "
          f"run with --run to measure your own")
    shown = {p.stem: sweep.load_results(p) for p in COMMITTED}
else:
    raise SystemExit("no results yet: run `python lessons/10_masked_patch_prediction.py --run`")

# %% [markdown]
# ## What pre-training learned, and what it bought
#
# First the pre-training curve (the colour accuracy on held-out images with a fixed
# corruption; the most common colour alone gets about the share printed above). Then the
# fine-tuned accuracies: mean ± std over seeds, and the pre-trained model's lead over the
# same model from scratch, seed by seed (same training subset).

# %%
for name, results in shown.items():
    setup, hist = results.get("setup", {}), results.get("pretrain", {}).get("history", [])
    if setup:
        print(f"\n{name}: {setup.get('command')}\n  {setup.get('machine')}, {setup.get('date')}; "
              f"pre-training {setup.get('pretrain_epochs')} epochs on "
              f"{setup.get('pretrain_images', 0):,} unlabelled images "
              f"({results['pretrain']['seconds'] / 60:.0f} min), fine-tuning "
              f"{setup.get('budget_images', 0):,} images seen per run "
              f"({results.get('train_seconds', 0) / 60:.0f} min in all)")
    if hist:
        ep = np.array([h["epoch"] for h in hist])
        lesson.show(charts.line_chart(
            {"colour accuracy, training batches (epoch mean)":
                 (ep, np.array([h["train_acc"] for h in hist])),
             "colour accuracy, held-out images": (ep, np.array([h["test_acc"] for h in hist]))},
            xlabel="pre-training epoch", ylabel="chosen patches' colour predicted right",
            title=f"MPP pre-training, {setup.get('pretrain_images', 0):,} unlabelled "
                  f"images ({lesson.data_name() if name == 'smoke' else 'CIFAR-10'})",
            ylim=(0, None), error_bars=False), f"{name}_pretraining", LESSON)
    print("\n".join(sweep.table_lines(results, models=[PRETRAINED, SCRATCH])))
    if len(sweep.summarize(results)) == 2:
        for n, (mu, sd, k) in sweep.paired_gaps(results, PRETRAINED, SCRATCH).items():
            print(f"pre-trained minus scratch at {n:,} labelled images: {100 * mu:+.1f} ± "
                  f"{100 * sd:.1f} points ({k} seed{'s' if k > 1 else ''})")
    title = ("Fine-tuning: after MPP vs from scratch, "
             + ("synthetic (smoke mode)" if name == "smoke" else "CIFAR-10 (JPEG copy)"))
    lesson.show(hunger.chart(results, title=title), f"{name}_finetune", LESSON)

# %% [markdown]
# ### What the pre-trained model predicts
#
# For the pre-trained model of this run (the one just trained, or the checkpoint next to your
# results file): four held-out images, corrupted, with the colours it predicts for the chosen
# patches next to the true ones (hatched: patches not chosen).

# %%
saved = args.results.with_suffix("") / "last.npz"
if pre is None and MODE != "smoke" and saved.exists():
    pre = load_pretraining(saved)[0]
if pre is not None:
    labels = mpp.pack_labels(targets, action, source)
    with fast.twins():
        logits, t = mpp.mpp_logits(pre, data.normalize(imgs, ds["mean"], ds["std"]), labels, cfg)
    guess = np.zeros_like(targets)
    b_idx, p_idx = np.nonzero(action != mpp.NOT_CHOSEN)
    guess[b_idx, p_idx] = np.asarray(logits).argmax(1)
    tiles = []
    for img, t_i, g_i, a, s in zip(imgs, targets, guess, action, source):
        chosen = a != mpp.NOT_CHOSEN
        tiles += [pictures.mpp_corruption_view(img, a, s, cfg.patch_size, S),
                  pictures.patch_colors(t_i, cfg.grid, cfg.patch_size, S, chosen),
                  pictures.patch_colors(g_i, cfg.grid, cfg.patch_size, S, chosen)]
    lesson.show(pictures.labelled_grid(
        tiles, 3, col_labels=["input to the encoder", "true colour", "predicted colour"],
        title=f"After pre-training: colours of the chosen patches ({lesson.data_name()})"),
        "predictions", LESSON)

# %% [markdown]
# ## Reading the result
#
# * **Measured** (`lessons/results/mpp/mpp.json`, the default command above, 2026-12-01,
#   one core of the project's 2-core machine while the other core ran lesson 7's sweep;
#   90 minutes): 20 epochs of pre-training on the 50,000 unlabelled training images
#   (33 min) took the held-out colour accuracy from 21.4% after the first epoch to 53.5%,
#   flat from about epoch 15. Fine-tuned with lesson 7's recipe, 200k images seen per run,
#   3 seeds: at **1,000** labelled images 41.8 ± 1.2% pre-trained against 35.9 ± 0.9% from
#   scratch, **+5.8 ± 1.6 points** paired by seed (+5.5, +4.5, +7.6); at **5,000**
#   55.3 ± 1.0% against 51.2 ± 0.5%, **+4.1 ± 0.9** (+3.8, +5.0, +3.3). Every seed favours
#   pre-training at both sizes, and the lead is smaller with more labels (5.8 -> 4.1, though
#   within the seeds' spread): pre-training on unlabelled images did reduce the data
#   hunger, in the paper's direction.
# * How much of the CNN's lead is that? Lesson 7's redone sweep (its own length rule, so a
#   rough comparison) has cnn-air-small at 51.7% on 1k images and 67.4% on 5k (seed 0): about
#   16 points above this lesson's from-scratch ViT at both sizes. Pre-training closes roughly
#   a third of that gap at 1k and a quarter at 5k; the CNN's built-in locality is still
#   worth more than 50k images' worth of colour prediction.
# * The project's first, smaller run (`mpp_small_10k.json`: 10k unlabelled images for 5
#   epochs, a fifth of the fine-tuning budget, 2 seeds) measured +1.6 ± 0.3 and +1.2 ± 0.4
#   points: more pre-training (5x the images, 4x the epochs) and full fine-tuning tripled
#   the lead.
# * The paper's gain, +2% on ImageNet for ViT-B/16 pre-trained on JFT-300M, is over training
#   from scratch *on ImageNet's 1.3M labelled images*; here the labelled sets are 1k and 5k
#   images, where lesson 7's ViT is weakest. If the colour task teaches the encoder which
#   patches belong together (locality, the 2D layout, what objects look like), fine-tuning
#   should need fewer labels: a lead at 1k that shrinks at 5k, which is what was measured.
# * What this does not settle: the fine-tuning recipe is the from-scratch one (lr 1e-3,
#   warmup, cosine), not tuned for a pre-trained start; one model size (142k parameters);
#   test accuracy after the last epoch only. The paper itself calls its result
#   "preliminary" and leaves better self-supervision to future work (contrastive methods and
#   masked autoencoders, MAE, came later and closed the gap to supervised pre-training).
# * Supervised pre-training would be the third line: the paper's 4% gap. On CIFAR-10 there is
#   no larger labelled set to pre-train on; lesson 9's probes are the in-domain stand-in.
