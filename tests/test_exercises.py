"""The classroom exercises (issue 11): every checker proven both ways, and the commands.

For every exercise: (a) the reference passes, hidden stage included; (b) the generated stub
reports "not started" and trivial bodies fail; (c) every catalogued mistake fails, diagnosed
by its own name; (e) every mutant of the reference fails, except those the exercise lists
as equivalent (and none listed is stale); (f) the stubs `init` writes are the registry's.
(d), other correct solutions, is tests/test_exercises_alternatives.py. Then the students'
and teachers' commands: files in a subprocess with a timeout, grading with a hidden seed,
the notebook's check(n, fn), hints and solutions, and docs/EXERCISES.md being current.
"""
import ast
import inspect
import textwrap
from pathlib import Path

import numpy as np
import pytest

from tinyvit.exercises import notebook, registry
from tinyvit.exercises.checker import check, report
from tinyvit.exercises.cli import main
from tinyvit.exercises.docs import markdown
from tinyvit.exercises.grade import grade, table
from tinyvit.exercises.mutants import mutants, mutation_report
from tinyvit.exercises.imports import flags
from tinyvit.exercises.sandbox import check_files
from tinyvit.exercises.spec import stub, stub_name

ROOT = Path(__file__).resolve().parents[1]
EXERCISES = registry.EXERCISES
IDS = [f"{ex['number']:02d}_{ex['name']}" for ex in EXERCISES]
REPORTS = {}  # mutation reports, made once: (e) and the docs test share them


def mutation(ex):
    if ex["number"] not in REPORTS:
        REPORTS[ex["number"]] = mutation_report(ex, check)
    return REPORTS[ex["number"]]


def stub_function(ex):
    """The function of the generated stub, as a student's file would define it."""
    namespace = {}
    exec(compile(stub(ex), stub_name(ex), "exec"), namespace)  # noqa: S102
    return namespace[ex["name"]]


def test_there_are_about_fifteen_exercises_along_the_paper_and_a_capstone():
    """The capstone trains with the exercises the library can take (a `patch`): they come
    before it. A later exercise takes the next number, so that no student's file is renamed."""
    capstone = registry.get("train")["number"]
    assert len(EXERCISES) >= 15 and capstone >= 21
    assert all(ex["number"] < capstone for ex in EXERCISES if ex["patch"])
    for ex in EXERCISES:
        assert ex["section"] and (ROOT / "lessons" / f"{ex['lesson']}.py").exists(), ex["name"]
        assert len(ex["hints"]) == 3 and ex["mistakes"] or ex["name"] == "train"


@pytest.mark.parametrize("ex", EXERCISES, ids=IDS)
def test_a_the_reference_passes(ex):
    result = check(ex, ex["reference"], secret="ci")
    assert result["status"] == "passed", report(ex, result)
    assert [s for _, s in result["stages"]] == ["pass"] * len(ex["stages"])


@pytest.mark.parametrize("ex", EXERCISES, ids=IDS)
def test_b_the_stub_is_not_started_and_trivial_bodies_fail(ex):
    result = check(ex, stub_function(ex))
    assert result["status"] == "not started" and result["stage"] == "runs"
    first = lambda *args: args[0]
    zeros = lambda *args: np.zeros_like(args[0]) if isinstance(args[0], np.ndarray) else 0.0
    for body in (lambda *args: None, first, zeros):
        result = check(ex, body)
        assert result["status"] == "failed", report(ex, result)


MISTAKES = [(ex, name) for ex in EXERCISES for name in ex["mistakes"]]


@pytest.mark.parametrize(("ex", "name"), MISTAKES,
                         ids=[f"{ex['number']:02d}-{name}" for ex, name in MISTAKES])
def test_c_every_catalogued_mistake_fails_diagnosed_by_its_name(ex, name):
    result = check(ex, ex["mistakes"][name][0])
    assert result["status"] == "failed", report(ex, result)
    assert result["diagnosis"] == name and f"«{name}»" in result["message"], report(ex, result)


def test_c_detectors_name_what_no_catalogue_entry_matches():
    ce, patchify = registry.get("cross_entropy"), registry.get("patchify")
    result = check(ce, lambda logits, labels, s=0.0: 3.0 * ce["reference"](logits, labels, s))
    assert result["diagnosis"] == "scale factor" and "3 times" in result["message"]
    columns_then_swap = lambda images, p: patchify["reference"](
        np.swapaxes(images, 1, 2), p)  # column-major patches with (col, row) pixels
    result = check(patchify, columns_then_swap)
    assert result["diagnosis"] == "values in the wrong places", report(patchify, result)
    adam = registry.get("adam_step")
    step = adam["reference"]
    triple = lambda w, g, m, v, t, *a: (lambda r: (w + 3.0 * (r[0] - w),) + r[1:])(
        step(w, g, m, v, t, *a))
    result = check(adam, triple)
    assert result["diagnosis"] == "step size" and "step is 3 times" in result["message"]
    first = {"case": {"inputs": {"w": np.ones(3)}, "dims": {}, "label": "t = 1"},
             "found": (np.ones(3) - np.sqrt(10.0),), "expected": (np.zeros(3),), "wrong": True}
    text, _ = adam["detectors"][0]([first])
    assert "3.162 times" in text and "without bias correction" in text  # the first step, 3.16x
    softmax = registry.get("softmax")
    nan_at_large = lambda x: softmax["reference"](x) + (np.nan if np.abs(x).max() > 100 else 0)
    result = check(softmax, nan_at_large)  # unlike every catalogued mistake: nan everywhere
    assert result["diagnosis"] == "nan or inf", report(softmax, result)


def test_c_a_factor_fitted_on_one_case_is_not_claimed_as_the_cause():
    """The ratio of two wrong losses differs from case to case: no "constant factor" verdict."""
    ce = registry.get("cross_entropy")
    fancy = lambda logits, labels, s=0.0: -np.mean(  # logp[:, labels] is (B, B), not (B,)
        (logits - np.log(np.exp(logits).sum(-1, keepdims=True)))[:, labels])
    result = check(ce, fancy)
    assert result["status"] == "failed"
    assert result["diagnosis"] != "scale factor" and "constant factor" not in result["message"]


@pytest.mark.parametrize("ex", EXERCISES, ids=IDS)
def test_e_every_mutant_fails_unless_listed_equivalent(ex):
    r = mutation(ex)
    assert r["made"] >= 5, r
    assert not r["unexplained"], f"mutants that pass the checker: {r['unexplained']}"
    assert not r["stale"], f"listed as equivalent, but killed or gone: {r['stale']}"


def test_e_the_mutant_generator_makes_every_kind_of_change():
    def sample(x, y, eps=1e-6):
        z = -x.max(-1, keepdims=True) + x * 2.0
        z += y if not eps < 0 else z
        return np.sum([z, y], axis=0) @ y.T

    labels = [mid for mid, _ in mutants(sample)]
    for kind in ("+ -> -", "* -> /", "@ -> *", "2.0 -> 4.0", "1 -> 2", "unary - dropped",
                 "keepdims dropped", ".max -> .min", ".sum -> .mean", "Lt -> LtE", "not dropped",
                 "if-else branches swapped", "elements 1 and 2 swapped", "statement deleted"):
        assert any(kind in label for label in labels), kind
    assert not any("1e-06" in label for label in labels)  # defaults are left alone


def test_f_init_writes_the_registrys_stubs_and_never_overwrites(tmp_path, capsys):
    assert main(["init", str(tmp_path)]) == 0
    for ex in EXERCISES:
        assert (tmp_path / stub_name(ex)).read_text(encoding="utf-8") == stub(ex)
    results = check_files(tmp_path, [ex["number"] for ex in EXERCISES])
    assert {r["status"] for r in results} == {"not started"}
    mine = tmp_path / stub_name(EXERCISES[2])
    mine.write_text("def softmax(x):\n    return x  # my work\n")
    assert main(["init", str(tmp_path)]) == 0
    assert "my work" in mine.read_text() and f"kept {len(EXERCISES)}" in capsys.readouterr().out


@pytest.mark.parametrize("ex", EXERCISES, ids=IDS)
def test_f_the_stub_has_the_registrys_signature_and_the_references_parameters(ex):
    tree = ast.parse(stub(ex))
    fn = [n for n in tree.body if isinstance(n, ast.FunctionDef)]
    assert [f.name for f in fn] == [ex["name"]]
    assert ast.get_docstring(fn[0]) == ex["doc"]
    student = list(inspect.signature(stub_function(ex)).parameters)
    reference = inspect.signature(ex["reference"]).parameters
    assert student == list(reference)[:len(student)]
    assert all(p.default is not p.empty for p in list(reference.values())[len(student):])
    assert f"Exercise {ex['number']}: {ex['name']} — not started" in stub(ex)


def test_docs_exercises_md_is_current():
    text = markdown({ex["number"]: mutation(ex) for ex in EXERCISES})
    path = ROOT / "docs" / "EXERCISES.md"
    assert path.read_text(encoding="utf-8") == text, \
        "docs/EXERCISES.md is stale: python -m tinyvit.exercises docs > docs/EXERCISES.md"


# ---------------------------------------------------------------------------------------------
# The commands
# ---------------------------------------------------------------------------------------------

GOOD_SOFTMAX = """
import autograd.numpy as np


def softmax(x):
    print("students print things")
    m = np.max(x, axis=-1, keepdims=True)
    return np.exp(x - m - np.log(np.sum(np.exp(x - m), axis=-1, keepdims=True)))
"""
NO_SHIFT = """
import numpy as np


def softmax(x):
    return np.exp(x) / np.exp(x).sum(-1, keepdims=True)
"""
REFERENCE_LN = "from tinyvit.ops import layer_norm  # the library's own\n"


def write(folder, files):
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(textwrap.dedent(text))
    return folder


def test_files_are_checked_in_a_subprocess_with_a_timeout(tmp_path):
    folder = write(tmp_path / "me", {
        "ex03_softmax.py": GOOD_SOFTMAX,
        "ex04_softmax_vjp.py": "def softmax_vjp(x, g):\n    while True:\n        pass\n",
        "ex05_attention_weights.py": "def attention_weights(q, k)\n    return q\n",
        "ex09_gelu.py": "import sys\n\ndef gelu(x):\n    sys.exit(3)\n",
    })
    results = check_files(folder, [3, 4, 5, 9, 10], timeout=2)
    assert [r["status"] for r in results] == ["passed", "timeout", "error", "failed", "missing"]
    assert "SyntaxError" in results[2]["message"]
    assert "SystemExit" in results[3]["message"]


def test_grade_adds_a_hidden_stage_gives_credit_per_stage_and_flags_the_reference(tmp_path):
    root = tmp_path / "submissions"
    write(root / "alice", {"ex03_softmax.py": GOOD_SOFTMAX, "ex07_layer_norm.py": REFERENCE_LN})
    write(root / "bob", {"ex03_softmax.py": NO_SHIFT})
    rows = grade(root, secret="s3cret", timeout=20)
    assert [student for student, _ in rows] == ["alice", "bob"]
    alice, bob = (dict((r["number"], r) for r in results) for _, results in rows)
    assert alice[3]["status"] == "passed" and alice[3]["stages"][-1] == ["hidden", "pass"]
    assert alice[7]["flags"] == ["uses the reference tinyvit.ops.layer_norm"]
    assert bob[3]["stage"] == "edge" and bob[3]["diagnosis"] == "softmax without the max shift"
    lines = table(rows).splitlines()
    header, first, second = (line.split(",") for line in lines[:3])
    column = header.index("ex03_softmax")
    assert first[column] == "7/7" and second[column] == "4/7"
    assert "ex07: uses the reference tinyvit.ops.layer_norm" in lines[1]


def test_the_hidden_stage_draws_other_cases_from_the_secret():
    from tinyvit.exercises.stages import edge_cases, random_cases

    ex = registry.get("softmax")
    seen = {c["dims"]["D"] for c in random_cases(ex) + edge_cases(ex)} | {ex["hand"]["dims"]["D"]}
    fitted = lambda x: ex["reference"](x) if x.shape[-1] in seen else x  # right where it was seen
    assert check(ex, fitted)["status"] == "passed"
    hidden = [check(ex, fitted, secret=s) for s in ("a", "b", "c", "d")]
    assert any(r["stage"] == "hidden" for r in hidden)


def test_flags_name_the_reference_the_answer_key_and_autograd_in_hand_gradients():
    vjp = registry.get("softmax_vjp")
    assert flags("from tinyvit.ops import softmax\n", vjp) == []  # allowed: y = softmax(x)
    assert flags("from autograd import grad\n", vjp) == [
        "differentiates with autograd.grad instead of by hand"]
    assert flags("import tinyvit.exercises\n", vjp) == [
        "imports tinyvit.exercises: the exercises' answer key"]
    vit = registry.get("vit")
    assert flags("from tinyvit import vit\nfrom tinyvit.vit import embed\n", vit) == []
    assert flags("from tinyvit import vit\ndef vit_(p, i, c):\n    return vit.vit(p, i, c)\n",
                 vit) == ["uses the reference tinyvit.vit.vit"]


def endless(x):
    while True:
        pass


def test_notebook_check_reports_and_never_raises(capsys):
    softmax = registry.get("softmax")
    assert notebook.check(99, print)["status"] == "error"
    assert notebook.check(3, 42)["status"] == "error"
    assert notebook.check(3, lambda x: 1 / 0)["status"] == "failed"
    assert notebook.check(3, lambda x: exit(1))["status"] == "failed"
    assert notebook.check(3, endless, timeout=1)["status"] == "timeout"
    result = notebook.check("softmax", softmax["reference"])
    assert result["status"] == "passed" and "library's own function" in result["flags"][0]
    assert repr(result).startswith("Exercise 3 · softmax: passed")
    assert notebook.PASSED[3] is softmax["reference"]
    out = capsys.readouterr().out
    assert "no exercise 99" in out and "ZeroDivisionError" in out


def test_the_capstone_names_a_passed_function_that_trains_differently():
    ex = registry.get("train")
    unbiased = registry.get("layer_norm")["mistakes"]["unbiased variance"][0]
    result = check(ex, ex["reference"], passed={7: unbiased})
    assert result["stage"] == "your functions", report(ex, result)
    assert "with only your layer_norm" in result["message"]


def test_hints_come_one_at_a_time_and_solution_prints_the_library(capsys):
    assert main(["hint", "3"]) == 0
    out = capsys.readouterr().out
    assert "Hint 1 of 3" in out and "Hint 2" not in out and "hint 3 2" in out
    assert main(["hint", "softmax", "3"]) == 0 and "Hint 3 of 3" in capsys.readouterr().out
    assert main(["solution", "4"]) == 0
    out = capsys.readouterr().out
    assert "def softmax_vjp" in out and "tinyvit/ops.py" in out and inspect.getsource(
        registry.get(4)["targets"][1]) in out
    assert main(["hint", "99"]) == 2
    assert capsys.readouterr().err.count("\n") == 1  # one clear line


def test_lesson_1_says_how_to_start_the_exercises():
    text = (ROOT / "lessons" / "01_patches.py").read_text()
    head = text[:text.index("# %%\n")]
    assert "python -m tinyvit.exercises init" in head and "check(1, patchify)" in head
