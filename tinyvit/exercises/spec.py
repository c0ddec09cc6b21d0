"""One exercise record: what the student writes, its reference in the library, how to check it.

`exercise(...)` fills in the defaults and builds the checker's stages. The keys:

    number, name, title, section, lesson     where it sits in the paper and the lessons
    signature, doc, imports                  the stub: `def signature:` with its docstring
    reference                                the answer: a tinyvit function, or a few-line adapter
    targets                                  the library functions the answer is made of
                                             (their source is `solution N`; mutants alter them)
    dims, derive, draw, inputs               sizes of the cases, derived sizes, sizes drawn
                                             from a seed (hidden cases), and
                                             inputs(rng, dims) -> {argument: value}
    out                                      the output's shape, "B, N, D", or [(part, shape), ...]
    hand, edges                              {dims, inputs, note}; [{label, dims?, inputs?}, ...]
    grads / fd                               arguments autograd differentiates through the
                                             student's function / for a hand-written gradient,
                                             {loss(inputs), wrt, grads(output)}: the library's
                                             forward and how the output holds its gradient
    mistakes, detectors                      {name: (wrong function, why)}; [detector, ...]
    variants, properties                     {description: wrong function} beyond the
                                             reference's own single edits (variants.py);
                                             [property, ...] every answer has (properties.py)
    formulas                                 the reference written out by hand (when it is
                                             autograd's derivative): its variants are tried
    explain_targets                          library functions inside the reference whose
                                             variants are tried too (not mutated for the proof)
    explain                                  False: a failure says what and where only (the
                                             mutant proof, which needs pass or fail alone)
    explain_cases, explain_variants          how many of the fixed cases a diagnosis runs
                                             (None: all), and whether it tries the
                                             reference's variants (False for a slow one)
    trace                                    trace(ex, fn, case) -> text or None: where a
                                             loop's steps differ first (the capstone)
    hints                                    three paragraphs, from a nudge to nearly the answer
    equivalent                               {mutant id: why that mutant computes the same}
    forbid                                   names whose import from tinyvit a grader flags
    patch                                    (module, attribute, wrap(fn)): how the capstone puts
                                             the student's function into the library
    call, tol, notes, stages                 calling convention, (rtol, atol), notes, stages
"""
import inspect

import numpy as np

from .notes import STANDARD_NOTES
from .stages import standard_stages


def positional(fn, inputs):
    """The default call: the inputs in signature order, as positional arguments."""
    return fn(*inputs.values())


NO_DROPOUT = ("the exercise runs without dropout (rate 0, no rng): dropout's rate, train and rng "
              "arguments change nothing")

DEFAULTS = dict(
    imports="import autograd.numpy as np", derive=lambda d: d, call=positional,
    tol=(1e-6, 1e-9), edges=(), grads=(), fd=None, mistakes={}, detectors=(), equivalent={},
    variants={}, properties=(), explain=True, explain_cases=None, explain_variants=True,
    trace=None, formulas=(), explain_targets=(),
    notes=STANDARD_NOTES, patch=None, stages=None,
)


def exercise(**spec):
    """An exercise record (a plain dict) with its defaults and stages."""
    ex = {**DEFAULTS, **spec}
    ex.setdefault("targets", [ex["reference"]])
    ex.setdefault("forbid", [ex["targets"][0].__name__])
    ex.setdefault("draw", lambda rng: ex["dims"])
    ex["doc"] = inspect.cleandoc(ex["doc"])
    ex["hints"] = [inspect.cleandoc(h) for h in ex["hints"].strip().split("\n\n")]
    if len(ex["hints"]) != 3:
        raise ValueError(f"exercise {ex['name']}: expected 3 hints, found {len(ex['hints'])}")
    ex["stages"] = ex["stages"] or standard_stages(ex)
    return ex


def normal(rng, *shape, scale=1.0):
    """Standard normal float64 draws times `scale`: inputs and randomised parameters."""
    return scale * rng.standard_normal(shape)


def pick(rng, low, high):
    """An int in [low, high], for sizes drawn from a seed."""
    return int(rng.integers(low, high + 1))


def stub_name(ex):
    """The student's file: ex03_softmax.py."""
    return f"ex{ex['number']:02d}_{ex['name']}.py"


def stub(ex):
    """The text of the student's file, generated from the record."""
    doc = "\n    ".join(ex["doc"].splitlines()).replace("\n    \n", "\n\n")
    n = ex["number"]
    return (f'"""Exercise {n}: {ex["title"]} ({ex["section"]}; lesson {ex["lesson"]}).\n\n'
            f"Write `{ex['name']}` below, then:  python -m tinyvit.exercises check {n}\n"
            f"Stuck? Three hints, one at a time:  python -m tinyvit.exercises hint {n}\n"
            f'"""\n{ex["imports"]}\n\n\n'
            f'def {ex["signature"]}:\n    """{doc}\n    """\n'
            f'    raise NotImplementedError("Exercise {n}: {ex["name"]} — not started")\n')


def numbers(values):
    """A list of numbers (learning rates, losses) as a float64 array; anything else in the list
    makes it an object array, which the shapes stage reports ("expected numbers, found ...")."""
    values = list(values) if isinstance(values, (list, tuple, np.ndarray)) else values
    if isinstance(values, list) and all(isinstance(v, (int, float, np.number)) for v in values):
        return np.asarray(values, dtype=np.float64)
    return np.array(values, dtype=object) if isinstance(values, list) else values
