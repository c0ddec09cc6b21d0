# %% [markdown]
# # Lesson 5 — Training a tiny ViT on CIFAR-10
#
# The paper pre-trains with Adam ($\beta_1 = 0.9$, $\beta_2 = 0.999$), weight decay 0.1, batch
# 4096, a linear learning-rate warmup followed by decay (Sec. 4.1, Appendix B.1), and
# fine-tunes with SGD + momentum. We train from scratch on CIFAR-10, at 32 px, with the same
# ingredients scaled down:
#
# * **AdamW** (Loshchilov & Hutter): Adam plus *decoupled* weight decay $w \leftarrow w(1 - \eta\lambda)$,
#   applied to weight matrices only (not to biases, LayerNorm, class token or position embeddings);
# * **warmup + cosine**: $\eta_t = \eta\, t / T_w$ for $t < T_w$, then
#   $\eta\,\tfrac12(1 + \cos(\pi\,\tfrac{t - T_w}{T - T_w}))$;
# * **global-norm clipping** at 1 (as the paper);
# * **label smoothing** 0.1 and **random crop + flip** — small data sets need them.
#
# Full mode trains `vit-cifar-nano` (142k parameters) on all 50,000 training images for 5
# epochs: about 2 minutes an epoch on 2 CPU cores (measured 2026-11-24: 10.4 minutes for the
# whole lesson, 56.2% test accuracy after the 5th epoch). `--mini` trains on 5,000 of the
# images for 5 epochs (about a minute: a model that visibly learns, far from converged);
# `--smoke` trains on 200 synthetic images in seconds. (`python -m tinyvit train` trains
# the same model for 18 epochs.)

# %%
import numpy as np

import lesson
from tinyvit import optim
from tinyvit.figures import charts
from tinyvit.run.recipe import recipe_for
from tinyvit.run.train import channel_stats, train

LESSON = "05_training"
SMOKE, MINI = lesson.smoke(), lesson.mini()
ds = lesson.cifar10(train_size=lesson.KNOB_TRAIN if MINI else None)
ds["mean"], ds["std"] = channel_stats(ds["train"][0])
print("training images:", ds["train"][0].shape, " test images:", ds["test"][0].shape)

# %% [markdown]
# ## The learning-rate schedule
# `optim.warmup_cosine(step, total_steps, base_lr, warmup_steps)`: one epoch of warmup, then a
# half cosine down to zero.

# %%
epochs, batch = (2, 32) if SMOKE else (5, 128)  # mini: 5 epochs of the 5,000 images
steps_per_epoch = len(ds["train"][0]) // batch
total = epochs * steps_per_epoch
steps = np.arange(total)
lrs = [optim.warmup_cosine(s, total, 1e-3, steps_per_epoch) for s in steps]
lesson.show(charts.line_chart({"learning rate": (steps, np.array(lrs), None)}, xlabel="step",
                              ylabel="learning rate",
                              title=f"Linear warmup ({steps_per_epoch} steps), cosine decay "
                                    f"({total} steps)", error_bars=False),
            "lr_schedule", LESSON)

# %% [markdown]
# ## Train
# `tinyvit.run.train.train` is the loop: for each batch, augment, normalise, `autograd` gradient
# of the smoothed cross-entropy, clip, AdamW step. Every setting is a field of a `Recipe`
# (`tinyvit.run.recipe`): the model's own, with the ones we change here. It prints a progress
# line with an ETA and writes `metrics.jsonl` and a checkpoint to the output folder after every
# epoch.

# %%
out = lesson.output_dir(LESSON) / ("smoke_run" if SMOKE else "mini_run" if MINI
                                   else "run")  # lessons 8-9 use "run"
recipe = recipe_for("vit-cifar-nano", epochs=epochs, batch_size=batch, lr=1e-3, warmup=1.0)
history = train("vit-cifar-nano", ds, recipe, out)

# %% [markdown]
# ## Learning curves
# Training accuracy is a running average over the epoch, on randomly cropped and flipped
# images, while the weights still change; test accuracy is measured on clean images at the
# end of the epoch. So early on training accuracy can sit below test accuracy.

# %%
ep = np.array([h["epoch"] for h in history])
chart = charts.line_chart({"train (augmented)": (ep, np.array([h["train_acc"] for h in history]), None),
                           "test": (ep, np.array([h["test_acc"] for h in history]), None)},
                          xlabel="epoch", ylabel="accuracy",
                          title=f"vit-cifar-nano, {len(ds['train'][0]):,} training images "
                                f"({lesson.data_name()})",
                          ylim=(0, None), error_bars=False)
lesson.show(chart, "learning_curves", LESSON)
print(f"final test accuracy {history[-1]['test_acc']:.1%} after "
      f"{sum(h['seconds'] for h in history) / 60:.1f} minutes of training")
