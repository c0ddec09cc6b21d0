"""The data-hunger sweep's charts (`tinyvit.run.sweep` runs it): test accuracy against
training-set size per model, and one model's lead over the others, paired by seed."""
from ..run import sweep
from . import charts


def chart(results, title=None):
    """Accuracy vs training-set size, mean +- std over seeds, log x (a PIL image)."""
    rule = sweep.rule_text(results.get("setup", {}))
    title = title or f"Data hunger on CIFAR-10 (JPEG copy), {rule}"
    series = {f"{m} ({sweep.seeds_label(c)})": (n, mu, sd)
              for m, (n, mu, sd, c) in sweep.summarize(results).items()}
    return charts.line_chart(series, xlabel="training images", ylabel="test accuracy",
                             title=title, log_x=True, error_bars=True)


def gap_chart(results, models=None, title=None):
    """The first model's lead over each of the others against training-set size, mean +- std
    over seeds, log x, 0 (no lead) always on the y axis (a PIL image)."""
    series, a = sweep.gap_series(results, models), sweep.ordered_models(results, models)[0]
    lowest = min(float((mu - sd).min()) for _, mu, sd in series.values())
    highest = max(float((mu + sd).max()) for _, mu, sd in series.values())
    ylim = (min(0.0, lowest), None if highest > 0 else 0.0)  # 0, no lead, always in view
    rule = sweep.rule_text(results.get("setup", {}))
    title = title or f"How far {a} leads, paired by seed ({rule})"
    return charts.line_chart(series, xlabel="training images",
                             ylabel=f"{a}'s lead, accuracy points", title=title, log_x=True,
                             error_bars=True, ylim=ylim)
