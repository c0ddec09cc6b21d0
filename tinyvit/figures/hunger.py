"""The data-hunger sweeps' charts (`tinyvit.run.sweep` runs the fixed-length one,
`tinyvit.run.ladder` the one whose lengths are chosen on validation): test accuracy against
training-set size per model, one model's lead over the others, paired by seed, the two sweeps
side by side, and the ladder's climbs."""
from ..run import ladder, sweep
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


def ladder_chart(results, fixed=None, title=None):
    """Test accuracy vs training-set size of the ladder sweep (`tinyvit.run.ladder`: each run's
    length chosen on validation), solid, each point labelled with the images seen chosen
    there; beside the fixed-length sweep's `fixed` results, dashed, one colour per model
    (a PIL image)."""
    models = sweep.ordered_models(results)
    colour = {m: charts.PALETTE[i % len(charts.PALETTE)] for i, m in enumerate(models)}
    series, notes, colours, dashed = {}, {}, {}, []
    budgets = ladder.chosen_budgets(results)
    for source, style in ((results, "length chosen on validation"), (fixed, "fixed length rule")):
        summary = sweep.summarize(source) if source else {}
        for m in models:
            if m not in summary:
                continue
            n, mu, sd, c = summary[m]
            name = f"{m}, {style} ({sweep.seeds_label(c)})"
            series[name], colours[name] = (n, mu, sd), colour[m]
            if source is results:
                notes[name] = [budgets[(m, int(k))] for k in n]
            else:
                dashed.append(name)
    if title is None:
        title = "CIFAR-10 (JPEG copy): each run's length chosen on validation"
        title += (f" (solid) or {sweep.rule_text(fixed.get('setup', {}))} (dashed)" if fixed
                  else "")
    lows = [mu - sd for _, mu, sd in series.values()]
    lo, hi = min(v.min() for v in lows), max((mu + sd).max() for _, mu, sd in series.values())
    return charts.line_chart(series, xlabel="training images (class-balanced subset); labels: "
                             "the images seen chosen, + at the ladder's top",
                             ylabel="test accuracy", title=title, log_x=True, error_bars=True,
                             notes=notes, dashed=dashed, colours=colours, size=(800, 560),
                             ylim=(max(0.0, lo - 0.5 * (hi - lo)), None))  # room for the legend


def climb_chart(results, model, title=None):
    """Validation accuracy along the ladder for `model`, one line per training-set size
    (mean over seeds; a line ends where its climb stopped), log x with a tick at every budget
    climbed (a PIL image)."""
    title = title or (f"{model}: validation accuracy against training length, per "
                      f"training-set size (the ladder's climbs)")
    series = ladder.climb_series(results, model)
    return charts.line_chart(series, xlabel="images seen in training (the ladder's budgets)",
                             ylabel="validation accuracy (held-out training images)",
                             title=title, log_x=True, error_bars=False,
                             xtick_names={b: ladder.budget_text(b)
                                          for budgets, _ in series.values() for b in budgets})
