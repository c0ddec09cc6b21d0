"""Robustness summaries: corruption errors (Hendrycks & Dietterich 2019) and shape bias
(Geirhos et al. 2019), as plain NumPy on accuracies and predictions.

    corruption_error       CE_c^f = sum_s E_{s,c}^f / sum_s E_{s,c}^ref         (H&D Sec. 4)
    mean_corruption_error  mCE: the mean of CE_c over corruptions; `relative` subtracts the
                           clean error first (relative mCE)
    shape_bias             shape decisions / (shape + texture decisions)      (Geirhos Sec. 3)

Hendrycks & Dietterich normalise by AlexNet's errors; here the reference is our CNN, so a
model's mCE is 1 when it errs as often as the CNN under corruption, below 1 when less.

Shape legend: S severities, Q corruptions, B images.
"""
import numpy as np


def corruption_error(err, ref_err):
    """CE = sum over severities of `err` / the same sum for the reference model.
    err, ref_err (S,) or (Q, S) top-1 errors -> a float or (Q,)."""
    return np.asarray(err).sum(-1) / np.asarray(ref_err).sum(-1)


def mean_corruption_error(err, ref_err, clean=None, ref_clean=None):
    """mCE: the mean over corruptions of `corruption_error` (err, ref_err (Q, S) errors).
    With `clean` and `ref_clean` (the clean errors) the relative mCE: each error minus the
    model's clean error first (how much the corruption adds; inf or nan when the reference's
    errors do not grow under some corruption)."""
    err, ref = np.asarray(err, float), np.asarray(ref_err, float)
    if clean is not None:
        err, ref = err - clean, ref - ref_clean
    with np.errstate(divide="ignore", invalid="ignore"):  # a reference that loses nothing
        return float(corruption_error(err, ref).mean())  # under a corruption: inf or nan


def shape_bias(predictions, shape_labels, texture_labels):
    """Geirhos et al.: among the decisions naming the shape's class or the texture's class,
    the share naming the shape's. Returns dict(shape_bias, shape, texture): the bias and the
    shares of all decisions that follow each cue (pairs of equal classes are left out)."""
    p, s, t = (np.asarray(a) for a in (predictions, shape_labels, texture_labels))
    conflict = s != t  # (B,)
    shape, texture = (p == s) & conflict, (p == t) & conflict
    either = shape.sum() + texture.sum()
    n = max(int(conflict.sum()), 1)
    return dict(shape_bias=float(shape.sum() / either) if either else float("nan"),
                shape=float(shape.sum() / n), texture=float(texture.sum() / n))
