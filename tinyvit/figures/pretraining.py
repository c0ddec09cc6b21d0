"""The pre-training experiment's charts (`tinyvit.run.pretrain_sweep` runs it): CIFAR-10
accuracy against formula images seen in pre-training, per model, and the CNN's lead over the
ViT against the same axis, paired by seed. The x axis is logarithmic, so the scratch runs
(0 images) are drawn a decade below the smallest pre-training, under a tick named "scratch"."""
from ..run import pretrain_sweep as ps
from ..run import sweep
from . import charts


X_LABEL = "formula images seen in pre-training (log scale)"


def scratch_tick(results):
    """{where the scratch runs are drawn: "scratch"} for the x axis."""
    return {ps.scratch_x(results): "scratch"}


def accuracy_chart(results, labels, title=None, data="CIFAR-10"):
    """Test accuracy after fine-tuning on `labels` images of `data` against pre-training
    images seen, one line per model, mean +- std over seeds (a PIL image)."""
    view = ps.as_sweep(results, labels)
    series = {f"{m} ({sweep.seeds_label(c)})": (n, mu, sd)
              for m, (n, mu, sd, c) in sweep.summarize(view).items()}
    title = title or (f"Fine-tuned on {labels:,} {data} labels after formula-driven "
                      f"pre-training")
    return charts.line_chart(ps.placed(series, ps.scratch_x(results)), xlabel=X_LABEL,
                             ylabel=f"{data} test accuracy", title=title, log_x=True,
                             error_bars=True, xtick_names=scratch_tick(results))


def lead_chart(results, models=None, title=None):
    """The first model's (the CNN's) lead over each other model, paired by seed, against
    pre-training images seen, one line per (other model, label count); 0 (no lead) always on
    the y axis (a PIL image)."""
    series = {}
    for n in ps.labels_run(results):
        view = ps.as_sweep(results, n)
        for name, s in sweep.gap_series(view, models).items():
            series[f"{n:,} labels: {name}"] = s
    first = sweep.ordered_models(ps.as_sweep(results, ps.labels_run(results)[0]), models)[0]
    lowest = min(float((mu - sd).min()) for _, mu, sd in series.values())
    highest = max(float((mu + sd).max()) for _, mu, sd in series.values())
    title = title or f"How far {first} leads after formula-driven pre-training (paired by seed)"
    return charts.line_chart(ps.placed(series, ps.scratch_x(results)), xlabel=X_LABEL,
                             ylabel=f"{first}'s lead, accuracy points", title=title, log_x=True,
                             error_bars=True, xtick_names=scratch_tick(results),
                             ylim=(min(0.0, lowest), None if highest > 0 else 0.0))
