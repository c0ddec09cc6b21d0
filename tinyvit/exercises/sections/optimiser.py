"""Appendix B.1: AdamW with bias correction, and linear warmup then cosine decay.

Exercises 15 and 16. Shape legend: R, F the two axes of one parameter array; T the steps at
which a schedule is evaluated.
"""
import numpy as np

from ... import optim
from ...tree import flatten
from ..diagnose import ratio_detector
from ..patching import replace, swapped
from ..properties import at_inputs, changed_inputs, output_has
from ..spec import exercise, normal, numbers, pick

SAME_KEYS = "_same_keys only checks that two trees have the same structure (it raises otherwise)"


def adam_step(w, g, m, v, t, lr, b1=0.9, b2=0.999, eps=1e-8, weight_decay=0.0):
    """One AdamW step for one array: `optim.adam_update` on a one-leaf tree, on copies."""
    tree, state = {"a": w.copy()}, {"m": {"a": m.copy()}, "v": {"a": v.copy()}, "step": t - 1}
    tree, state = optim.adam_update(tree, {"a": g}, state, lr, b1, b2, eps, weight_decay,
                                    decay_mask={"a": True})
    return tree["a"], state["m"]["a"], state["v"]["a"]


def adam_formula(w, g, m, v, t, lr, b1=0.9, b2=0.999, eps=1e-8, weight_decay=0.0):
    """One AdamW step written out, on new arrays."""
    m = b1 * m + (1.0 - b1) * g  # (R, F)
    v = b2 * v + (1.0 - b2) * g * g  # (R, F)
    m_hat = m / (1.0 - b1 ** t)
    v_hat = v / (1.0 - b2 ** t)
    return w - lr * (m_hat / (np.sqrt(v_hat) + eps) + weight_decay * w), m, v


def tree_adam(step):
    """`optim.adam_update` made of a student's one-array `step`, for the capstone."""
    def adam_update(params, grads, state, lr, b1=0.9, b2=0.999, eps=1e-8, weight_decay=0.0,
                    decay_mask=None):
        t = state["step"] + 1
        mask = flatten(optim.default_decay_mask(params) if decay_mask is None else decay_mask)
        flat_g, flat_m, flat_v = flatten(grads), flatten(state["m"]), flatten(state["v"])
        for key, w in flatten(params).items():
            olds = (w, flat_m[key], flat_v[key])
            news = step(*(x.copy() for x in (w, flat_g[key]) + olds[1:]), t, lr, b1, b2, eps,
                        weight_decay if mask[key] else 0.0)
            for old, new in zip(olds, news):
                old[...] = new  # in place, as the library's
        return params, {**state, "step": t}
    return adam_update


def adam_inputs(rng, d, t=3, g_scale=1.0, fresh=False, wd=0.1):
    g = normal(rng, d["R"], d["F"], scale=g_scale)
    m = 0 * g if fresh else normal(rng, d["R"], d["F"], scale=0.1 * g_scale)
    v = 0 * g if fresh else normal(rng, d["R"], d["F"], scale=0.1 * g_scale) ** 2
    return {"w": normal(rng, d["R"], d["F"]), "g": g, "m": m, "v": v, "t": t, "lr": 0.01,
            "b1": 0.9, "b2": 0.999, "eps": 1e-8, "weight_decay": wd}


def update_of(o, found, expected):
    """(found w - w, expected w - w) of an observation: the steps taken."""
    w = np.ravel(o["case"]["inputs"]["w"])
    return found[:w.size] - w, expected[:w.size] - w


step_ratio = ratio_detector("step size", [
    (np.sqrt(10.0), "the first Adam step without bias correction: m = 0.1 g and sqrt(v) = "
                    "0.0316 |g| at t = 1")], "your step is", update_of)


ADAM = exercise(
    number=15, name="adam_step", title="AdamW with bias correction", section="App. B.1",
    lesson="05_training", signature=("adam_step(w, g, m, v, t, lr, b1=0.9, b2=0.999, eps=1e-8, "
                                     "weight_decay=0.0)"),
    reference=adam_step, targets=[adam_step, optim.adam_update], formulas=[adam_formula],
    forbid=["adam_step", "adam_update"],
    imports="import numpy as np",
    doc="""One Adam step for one parameter array, with bias correction and decoupled weight
    decay (AdamW, Loshchilov & Hutter 2019; App. B.1 uses Adam with b1 = 0.9, b2 = 0.999):
    update the moments m and v with g, correct their bias for step t = 1, 2, ..., and move
    w by lr * (m_hat / (sqrt(v_hat) + eps) + weight_decay * w).

    w, g, m, v arrays of one shape (R, F); t, lr, b1, b2, eps, weight_decay numbers
    -> (new w, new m, new v).""",
    dims={"R": 3, "F": 4}, draw=lambda rng: {"R": pick(rng, 1, 4), "F": pick(rng, 1, 5)},
    inputs=adam_inputs, out=[("w", "R, F"), ("m", "R, F"), ("v", "R, F")],
    hand={"dims": {"R": 1, "F": 3},
          "inputs": {**adam_inputs(np.random.default_rng(0), {"R": 1, "F": 3}, 1, fresh=True,
                                   wd=0.0), "w": np.ones((1, 3)), "g": np.array([[1.0, -2.0, 0.5]]),
                     "lr": 0.1},
          "note": "the first step (t = 1, m = v = 0): m_hat = g, v_hat = g^2, so each weight "
                  "moves by lr = 0.1 against the sign of g: w = [0.9, 1.1, 0.9]"},
    edges=[{"label": "the first step (t = 1, m = v = 0, no decay)",
            "inputs": lambda rng, d: adam_inputs(rng, d, 1, fresh=True, wd=0.0)},
           {"label": "tiny gradients (|g| ~ 1e-6, where eps matters)",
            "inputs": lambda rng, d: adam_inputs(rng, d, 2, g_scale=1e-6)},
           {"label": "a late step (t = 1000)", "inputs": lambda rng, d: adam_inputs(rng, d, 1000)}],
    mistakes={
        "Adam without bias correction": (lambda w, g, m, v, t, *a: adam_step(w, g, m, v, 10**6, *a),
            "at t = 1, m = 0.1 g and sqrt(v) = 0.0316 |g|, so the first step is sqrt(10) = 3.16x "
            "too big: divide m by 1 - b1^t and v by 1 - b2^t"),
        "L2 in the gradient (Adam, not AdamW)": (
            lambda w, g, m, v, t, lr, b1, b2, eps, wd: adam_step(w, g + wd * w, m, v, t, lr, b1,
                                                                 b2, eps, 0.0),
            "decoupled weight decay shrinks w directly, w -= lr * wd * w, instead of adding wd * w "
            "to the gradient (where Adam would rescale it)"),
        "decay not multiplied by the learning rate": (
            lambda w, g, m, v, t, lr, b1, b2, eps, wd: (lambda r: (r[0] - wd * w,) + r[1:])(
                adam_step(w, g, m, v, t, lr, b1, b2, eps, 0.0)),
            "as PyTorch's AdamW and optax.adamw, the decay step is lr * weight_decay * w"),
        "the step number off by one": (lambda w, g, m, v, t, *a: adam_step(w, g, m, v, t + 1, *a),
            "t is already the step number 1, 2, ...: the bias corrections are 1 - b1^t and "
            "1 - b2^t"),
        "the moments not returned": (lambda w, g, m, v, *a: (adam_step(w, g, m, v, *a)[0], m, v),
            "return the updated m and v too: the next step starts from them"),
    },
    detectors=[step_ratio],
    properties=[
        at_inputs("the first step (t = 1, m = v = 0, no decay) moves every weight by lr, "
                  "against the sign of g", lambda i: {**i, "m": 0 * i["m"], "v": 0 * i["v"],
                                                      "t": 1, "weight_decay": 0.0},
                  lambda i: i["w"] - i["lr"] * np.sign(i["g"])),
        changed_inputs("the moments do not depend on w or lr", lambda i: {
            **i, "w": 2.0 * i["w"] + 1.0, "lr": 3.0 * i["lr"]}, lambda i, out: out, part=1),
        changed_inputs("the moments returned do not depend on t: m and v are kept raw, the bias "
                       "correction is for the step only", lambda i: {**i, "t": i["t"] + 5},
                       lambda i, out: out, part=1),
        changed_inputs("weight decay shrinks w by lr * weight_decay * w, on top of the Adam step",
                       lambda i: {**i, "weight_decay": 0.0},
                       lambda i, out: out + i["lr"] * i["weight_decay"] * i["w"])],
    equivalent=dict.fromkeys([f"adam_update line {n}: {what}" for n in (15, 18) for what in
                              ("statement deleted", "arguments 1 and 2 swapped")], SAME_KEYS),
    hints="""
    Moments first: m = b1 m + (1 - b1) g and v = b2 v + (1 - b2) g * g (new arrays, or in
    place with *= and +=).

    Bias correction: at t = 1 the moments are 10x (m) and 1000x (v) too small, because they
    start at 0; m_hat = m / (1 - b1 ** t) and v_hat = v / (1 - b2 ** t) undo that.

    w_new = w - lr * (m_hat / (np.sqrt(v_hat) + eps) + weight_decay * w): eps outside the
    root, the decay on the old w and multiplied by lr. Return (w_new, m, v).
    """,
    patch=(optim, "adam_update", lambda fn, current: tree_adam(fn)),
)


def schedule(fn, inputs):
    """A schedule's learning rates at the steps 0 .. total_steps + 1 (one step past the end)."""
    return numbers([fn(s, *inputs.values()) for s in range(inputs["total_steps"] + 2)])


def lr_inputs(rng, d, final=0.01):
    return {"total_steps": d["total"], "base_lr": float(rng.uniform(0.1, 1.0)),
            "warmup_steps": d["warmup"], "final_lr": final}


def patched_warmup(lr):
    """A wrong schedule: the library's, with its linear warmup replaced by lr(step, base, w)."""
    def wrong(step, total_steps, base_lr, warmup_steps, final_lr=0.0):
        with swapped([(optim, "_warmup", lr)]):
            return optim.warmup_cosine(step, total_steps, base_lr, warmup_steps, final_lr)
    return wrong


def cosine_from(t):
    """A wrong schedule: the library's warmup, then the cosine at progress t(step, total, w)."""
    def wrong(step, total_steps, base_lr, warmup_steps, final_lr=0.0):
        if step < warmup_steps:
            return optim.warmup_cosine(step, total_steps, base_lr, warmup_steps, final_lr)
        progress = t(step, total_steps, warmup_steps)
        return final_lr + (base_lr - final_lr) * 0.5 * (1.0 + np.cos(np.pi * progress))
    return wrong


def warmup_ends(i, out):
    """The rates with those at step 0 (0, when there is a warmup) and at the end of the
    warmup (base_lr) set right."""
    want, w = out.copy(), i["warmup_steps"]
    want[0] = 0.0 if w else want[0]
    want[w] = i["base_lr"]
    return want


def halfway(i, out):
    """The rates with the one halfway through the decay (when there is one) set right."""
    w, total = i["warmup_steps"], i["total_steps"]
    if (total - w) % 2:
        return out
    want = out.copy()
    want[w + (total - w) // 2] = 0.5 * (i["base_lr"] + i["final_lr"])
    return want


def shaped(decay):
    """A wrong schedule: the library's warmup, then final + (base - final) * decay(t)."""
    def wrong(step, total_steps, base_lr, warmup_steps, final_lr=0.0):
        if step < warmup_steps:
            return optim.warmup_cosine(step, total_steps, base_lr, warmup_steps, final_lr)
        t = min(1.0, (step - warmup_steps) / (total_steps - warmup_steps))
        return final_lr + (base_lr - final_lr) * float(decay(t))
    return wrong


WARMUP_COSINE = exercise(
    number=16, name="warmup_cosine", title="Linear warmup, then cosine decay", section="App. B.1",
    lesson="05_training", signature="warmup_cosine(step, total_steps, base_lr, warmup_steps, "
                                    "final_lr=0.0)",
    reference=optim.warmup_cosine, targets=[optim.warmup_cosine, optim._warmup],
    imports="import math", call=schedule, notes=(),
    doc="""The learning rate at `step` (counted from 0): linear warmup from 0 at step 0 to
    base_lr at step warmup_steps, then cosine decay from base_lr to final_lr at total_steps,
    and final_lr after that. 0 <= warmup_steps < total_steps.

    Numbers -> a float.""",
    dims={"total": 10, "warmup": 3}, derive=lambda d: {**d, "T": d["total"] + 2},
    draw=lambda rng: (lambda t: {"total": t, "warmup": pick(rng, 0, t - 1)})(pick(rng, 2, 20)),
    inputs=lr_inputs, out="T",
    hand={"dims": {"total": 4, "warmup": 2},
          "inputs": {"total_steps": 4, "base_lr": 1.0, "warmup_steps": 2, "final_lr": 0.0},
          "note": "4 steps, 2 of warmup, base 1: the rates at steps 0..5 are "
                  "[0, 0.5, 1, 0.5, 0, 0]"},
    edges=[{"label": "no warmup (warmup_steps = 0)", "dims": {"total": 6, "warmup": 0}},
           {"label": "warmup of all steps but one", "dims": {"total": 5, "warmup": 4}}],
    properties=[
        output_has("the rate is 0 at step 0 (with warmup) and base_lr at the end of the warmup",
                   warmup_ends),
        output_has("the rate is final_lr at total_steps and after",
                   lambda i, out: np.concatenate([out[:i["total_steps"]],
                                                  [i["final_lr"], i["final_lr"]]])),
        output_has("halfway through the decay the rate is (base_lr + final_lr) / 2",
                   halfway)],
    variants={
        "the cosine without (1 + cos) / 2: base_lr + (base_lr - final_lr) cos(pi t)": shaped(
            lambda t: np.cos(np.pi * t)),
        "a linear decay instead of the cosine": shaped(lambda t: 1.0 - t),
        "(1 - cos(pi t)) / 2: the cosine rising instead of falling": shaped(
            lambda t: 0.5 * (1.0 - np.cos(np.pi * t)))},
    mistakes={
        "the cosine over the whole run": (cosine_from(lambda s, total, w: s / total), "the decay "
            "starts when the warmup ends: progress t = (step - warmup) / (total - warmup)"),
        "the warmup off by one": (patched_warmup(lambda s, base, w: base * (s + 1) / w), "the "
            "rate is 0 at step 0 and reaches base_lr at step warmup_steps: "
            "base_lr * step / warmup"),
        "no clamp after total_steps": (cosine_from(lambda s, total, w: (s - w) / (total - w)),
            "after total_steps the rate stays at final_lr: clamp the progress at 1"),
        "final_lr ignored": (lambda step, total, base, w, final=0.0: optim.warmup_cosine(
            step, total, base, w, 0.0), "the cosine goes from base_lr down to final_lr"),
        "the steps counted from 1": (lambda step, *a: optim.warmup_cosine(step + 1, *a),
            "step counts from 0: the rate at step 0 is 0 (warmup) or base_lr (no warmup)"),
    },
    equivalent={
        "warmup_cosine line 2: statement deleted": "_check_schedule only rejects invalid "
            "schedules (warmup_steps outside [0, total_steps))",
        "warmup_cosine line 4: arguments 1 and 2 swapped": "_warmup(step, base_lr, w) is "
            "base_lr * step / w, and the product commutes",
    },
    hints="""
    Two branches. While step < warmup_steps the rate is base_lr * step / warmup_steps.

    After that the progress t = (step - warmup_steps) / (total_steps - warmup_steps) runs
    from 0 to 1; clamp it with min(1.0, t) so that the rate stays at final_lr afterwards.

    The rate is final_lr + (base_lr - final_lr) * 0.5 * (1 + cos(pi t)): base_lr at t = 0,
    final_lr at t = 1. The hand case: [0, 0.5, 1, 0.5, 0, 0].
    """,
    patch=(optim, "warmup_cosine", replace),
)

EXERCISES = [ADAM, WARMUP_COSINE]
