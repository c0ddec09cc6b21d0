"""The diagnosis's mechanisms (issue 26): properties, autograd's quirks, claims on every case.

The corpus (tests/test_diagnosis_corpus.py) measures how often a mistake is named; these
tests prove the pieces: every property holds for the reference and the corpus's right
answers, a quirk is named from the error's text alone, a correct answer autograd cannot trace
is accepted or told exactly that, and a factor or variant is never claimed from one case.
"""
import copy

import autograd.numpy as np
import pytest
from autograd import grad

from tinyvit.exercises import registry
from tinyvit.exercises.checker import check, report
from tinyvit.exercises.quirks import quirk, tolerated
from tinyvit.exercises.stages import diagnosis_cases, observations

from exercise_corpus import RIGHT, cka_feature_by_feature, patches_of, patchify_varargs

EXERCISES = registry.EXERCISES
IDS = [f"{ex['number']:02d}_{ex['name']}" for ex in EXERCISES]


@pytest.mark.parametrize("ex", EXERCISES, ids=IDS)
def test_the_reference_and_the_right_answers_have_every_property(ex):
    for fn in [ex["reference"]] + RIGHT[ex["name"]]:
        for case in diagnosis_cases(ex)[1:4]:  # the random cases
            obs = [o for o in observations(ex, fn, case) if o["case"]["key"] == case["key"]]
            call = lambda inputs, fn=fn: ex["call"](fn, copy.deepcopy(inputs))
            for prop in ex["properties"]:
                assert prop(call, obs) is None, (fn.__name__, prop.label)


@pytest.mark.parametrize("ex", [ex for ex in EXERCISES if ex["formulas"]],
                         ids=[i for ex, i in zip(EXERCISES, IDS) if ex["formulas"]])
def test_every_formula_is_the_reference_written_out(ex):
    for formula in ex["formulas"]:
        assert check(ex, formula)["status"] == "passed", formula.__name__


@pytest.mark.parametrize(("type_name", "message", "words"), [
    ("TypeError", "transpose() takes from 1 to 2 positional arguments but 7 were given",
     "x.transpose((a, b, ...))"),
    ("TypeError", "'ArrayBox' object does not support item assignment", "np.concatenate"),
    ("ValueError", "setting an array element with a sequence.", "np.stack"),
    ("TypeError", "float() argument must be a string or a real number, not 'ArrayBox'", "float"),
    ("AttributeError", "'ArrayBox' object has no attribute 'copy'", ".copy()"),
    ("NotImplementedError", "VJP of asarray wrt argnums (0,) not defined", "np.asarray"),
    ("TypeError", "pad_vjp() missing 1 required positional argument: 'mode'", "'constant'"),
])
def test_a_quirk_is_named_from_the_errors_text_alone(type_name, message, words):
    what, fix = quirk(type_name, message, "Traceback (most recent call last): ...")
    assert words in what + fix
    assert quirk("ValueError", "operands could not be broadcast together") is None


def written_in_place(images, p):
    out = patches_of(images, p) * 1.0
    out[:, 0] = out[:, 0]  # an in-place write into a traced array
    return out


def test_a_right_answer_autograd_cannot_trace_is_accepted_or_told_exactly_that():
    ex = registry.get("patchify")
    result = check(ex, patchify_varargs)
    assert result["status"] == "passed", report(ex, result)
    assert any("x.transpose((a, b, ...))" in n for n in result["notes"])
    result = check(ex, written_in_place)
    assert result["stage"] == "gradients", report(ex, result)
    assert "your values are right on every case, but autograd cannot trace" in result["message"]
    assert "in-place write" in result["message"] and "autograd.numpy (import" not in \
        result["message"]
    varargs = grad(lambda x: (x.transpose(1, 0) * np.arange(2.0)).sum())
    with tolerated() as accepted:
        assert np.allclose(varargs(np.ones((2, 3))), [[0, 0, 0], [1, 1, 1]])
    assert accepted.used == ["varargs transpose"]
    with pytest.raises(TypeError):  # outside the block, autograd as it is
        varargs(np.ones((2, 3)))


def test_a_factor_or_variant_is_claimed_only_when_it_holds_on_every_case():
    ln = registry.get("layer_norm")
    right_on_hand_only = lambda x, g, b, eps=1e-6: ln["reference"](x, g, b, eps) * (
        1.0 if x.shape == (1, 1, 2) else 2.0)
    result = check(ln, right_on_hand_only)
    assert result["status"] == "failed", report(ln, result)
    assert result["diagnosis"] != "scale factor" and "2 times" not in result["message"]
    batch_axis = lambda x, g, b, eps=1e-6: (x - x.mean(0, keepdims=True)) / np.sqrt(
        x.var(0, keepdims=True) + eps) * g + b
    result = check(ln, batch_axis)
    assert "axis 0" in result["message"] and "constant row" not in result["message"]


def test_the_capstone_says_which_part_of_which_step_differs_first():
    from tinyvit import optim
    from tinyvit.run import train as run_train

    def fixed_rate(model, params, images, labels, steps, lr, warmup, weight_decay, clip,
                   smoothing):
        grad_fn, opt, losses = run_train.make_grad_fn(model, smoothing), optim.init_adam(
            params), []
        for step in range(steps):
            grads, (loss, _) = grad_fn(params, images, labels, None)
            grads, _ = optim.clip_by_global_norm(grads, clip) if clip else (grads, 0.0)
            params, opt = optim.adam_update(params, grads, opt, lr, weight_decay=weight_decay)
            losses.append(float(loss))
        return losses

    ex = registry.get("train")
    result = check(ex, fixed_rate)
    assert "step 1: the learning rate passed to optim.adam_update is 0.02, expected 0" in \
        result["message"], report(ex, result)


def test_nan_everywhere_is_no_evidence_for_a_cause():
    """Any edit that breaks the function gives nan too, and so does overflow: neither is
    claimed when the answer is nan on every case."""
    softmax = registry.get("softmax")
    result = check(softmax, lambda x: x * np.nan)
    assert result["status"] == "failed", report(softmax, result)
    assert "overflow" not in result["message"] and not str(result["diagnosis"]).startswith(
        "variant"), report(softmax, result)


def test_a_catalogued_mistake_is_named_from_an_error_only_when_it_fails_alike_on_every_case():
    """X^T X for the Gram matrices raises where F1 != F2 (and both exceed 1) and gives numbers
    elsewhere: the catalogue names it. An answer that raises everywhere, or that raises where
    that mistake does but gives other numbers elsewhere, is told its error alone."""
    ex = registry.get("linear_cka")
    named = "X^T X in place of X X^T"

    def uncentred_features(x, y):
        k, l = x.T @ x, y.T @ y
        return np.sum(k * l) / np.sqrt(np.sum(k * k) * np.sum(l * l))

    def always(x, y):
        raise ValueError("operands could not be broadcast together")

    with np.errstate(invalid="ignore"):
        result = check(ex, cka_feature_by_feature)  # the corpus's, centred by hand
        assert result["diagnosis"] == named and "raised ValueError" in result["message"]
        for fn in (uncentred_features, always):
            result = check(ex, fn)
            assert result["status"] == "failed" and result["diagnosis"] is None, report(ex, result)
            assert "raised ValueError" in result["message"] and named not in result["message"]
