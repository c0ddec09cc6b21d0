"""docs/EXERCISES.md, generated from the registry: `python -m tinyvit.exercises docs`.

tests/test_exercises.py regenerates it and compares, so the list in the docs cannot drift
from the exercises (the mutant counts included: they are run, not written down).
"""
from .checker import check
from .mutants import mutation_report
from .registry import EXERCISES

INTRO = """\
# Exercises

<!-- Generated from the registry (tinyvit/exercises/) by
     `python -m tinyvit.exercises docs > docs/EXERCISES.md`; tests/test_exercises.py checks
     that it is current. Edit the exercises, not this file. -->

Write the Vision Transformer's functions yourself, from cutting an image into patches to a
training loop that trains on your own code. The library is the answer key: every exercise's
reference is a tinyvit function, or a few-line adapter around one.

```
python -m tinyvit.exercises init          # writes exercises/ex01_patchify.py ... (never overwrites)
python -m tinyvit.exercises check 1       # your exercise 1; `check all`; `list` for the status
python -m tinyvit.exercises hint 1        # hint 1 of 3; then `hint 1 2`, `hint 1 3`
python -m tinyvit.exercises solution 1    # the reference, from the library
```

In Jupyter or Colab, `from tinyvit.exercises import check; check(1, patchify)` checks a
function defined in a cell and never raises. Teachers grade a folder of submissions with
`python -m tinyvit.exercises grade SUBMISSIONS --seed-file SECRET_FILE --csv grades.csv`: one
more stage, cases drawn from the secret at other sizes, credit per stage, and flags for the
reference used (see "Grading: what it guarantees" below).

A check runs stages and stops at the first failure: **runs** (`NotImplementedError` means
not started), **shapes** (type, float dtype, shape, naming the axes), **by hand** (a case
small enough for pencil and paper), **random** (seeded cases; inputs are passed as copies),
**edge** (huge logits, N_q ≠ N_k, non-square grids, eps that matters, ...), **gradients**
(centred finite differences in float64, parameters randomised), and, when grading,
**hidden**. Notes (float32 kept, Python loops) never fail. The capstone puts every function
you have passed into the library and trains: the losses must equal the library's.

A failure is explained from your numbers on every case at once. Your outputs are compared
with those of the catalogue's typical mistakes and of up to hundreds of single edits of the
reference (another axis, a term or factor left out, eps inside or outside the root, a
transposed operand, another variable, a decimal point moved, ...): an edit that reproduces
your outputs on every case is named, with the reference's line it changes. Otherwise a
property every right answer has (rows sum to 1, GELU(0) = 0, the first Adam step has size
lr, ...) that yours breaks is named; a cause is never claimed from one case, and the
closest edit is offered as a question only. For example, a LayerNorm over the batch axis:

```
by hand: 2 of 2 values differ; at [0, 0, 0] expected -2, found nan (2 are nan or inf)
your values equal the reference's with one change, every axis -1 (reductions and shape[-1])
  changed to axis 0, in layer_norm (tinyvit/ops.py):
  the reference: inv_d = 1.0 / x.shape[-1]
                 xc = x - x.sum(-1, keepdims=True) * inv_d
                 var = (xc * xc).sum(-1, keepdims=True) * inv_d
  yours acts as: inv_d = 1.0 / x.shape[0]
                 xc = x - x.sum(0, keepdims=True) * inv_d
                 var = (xc * xc).sum(0, keepdims=True) * inv_d
```

Errors of autograd's tracing are named with their one-line fix (an in-place write, a traced
value written into a NumPy array, float() of a traced value, ...), and two correct NumPy
spellings autograd cannot trace, `x.transpose(0, 2, 1)` and `np.pad(x, widths)`, are
accepted with a note. The capstone's mismatch says which part of which step differs first:
the learning rate, the optimiser's state (re-initialised every step?), the gradient of a
parameter, or the loss.

Every checker is proven both ways in the test suite (`tests/test_exercises.py`): it passes
the reference and other correct solutions, and fails the stub, trivial bodies, every
catalogued mistake (by its name) and every mutant of the reference, except the mutants
listed below as equivalent, each with its reason.
"""

GRADING = """## Grading: what it guarantees

`check`, `check()` in a notebook and `grade` take one path: the student's file (or the
cell's function, written as a file) is copied into a fresh private folder and imported only
by a process of its own (`tinyvit/exercises/worker.py`); the grader's process never imports
it. The grader sends inputs and receives outputs over a socket pair (NumPy arrays as dtype,
shape and bytes; plain data; never a pickle), and computes every stage, comparison, finite
difference, diagnosis, credit, flag and the CSV itself. Where autograd differentiates
through the student's function, the student's process returns the vector-Jacobian product.
The CSV is written once, atomically, after every student's process has ended.

At every isolation level:

- **The secret** never reaches the student's process: not its environment, arguments,
  files or descriptors; the hidden cases' inputs are all it sees. Pass it with
  `--seed-file FILE` (first line) or `--seed-file -` (stdin); `--seed SECRET` still works,
  with a warning, since any process of the machine can read a command line.
- **Verdicts cannot be forged**: the student's stdout and stderr go nowhere; what it writes
  on its channel is only ever taken as its function's output (anything malformed ends that
  exercise with an error).
- **Limits it cannot raise**: CPU time, 4 GiB of memory, 64 MiB per file, no new processes
  (`RLIMIT_NPROC` and the audit hook), and a wall-clock limit per exercise (`--timeout`)
  after which its whole process group is killed; no process of a student outlives its check.
- **Files**: the student's originals and other students' folders are only ever read (copied);
  the private folder is removed after the check. Before and after grading, the library's
  files are compared with `tinyvit/exercises/MANIFEST` (SHA-256 of each; a test keeps it
  current): a modified installation is refused.
- **The reference, by any route**: in the student's process each exercise's reference
  functions (and their fast twins) are recompiled from their source with a first statement
  that raises a PEP 578 audit event, and an audit hook (which cannot be removed, and looks
  nothing up that a student's code could rebind) reports it to the grader: a call is
  flagged whatever name reached the function (`importlib`, `__import__`, `sys.modules`, a
  module's `__dict__`, a copy of its code object); reading its code is flagged, replacing
  it is refused, and opening, compiling or executing its source or `.pyc` is flagged. The
  grader keeps the reports that concern the exercise it is checking (a student's attention
  may call the library's softmax). Imports of the reference and of the answer key are
  flagged from the file's text too. A flagged exercise earns no credit unless you pass
  `--allow-flagged`; the summary and the CSV say which flag fired.

The isolation level is the first line of `grade`'s summary:

- **separate user** (the grader runs as root, and Python and the library are readable by
  other users): the student's process runs as uid 65534 (nobody), so the operating system
  itself keeps it from writing your files, reading your other processes' memory or
  environment, or signalling them.
- **same user** (anything else, including root when the interpreter lives in a folder only
  root can read): the student's process runs as you. Then the audit hook is the barrier for
  files and processes: it refuses, in Python, writing outside the private folder, reading
  outside it, the library and Python's own folders, folders' descriptors, new processes,
  sockets, `ctypes` and signals to other processes. That stops Python code, not a compiled
  program or a bug in CPython: grade untrusted classes as root (a container or CI job) for
  the separate-user level.

What it does not guarantee: a student who copies the reference's text into their own
files (it is one `solution N` away) is not flagged by behaviour; that is yours to judge.
At the same-user level, the audit hook stops Python code only: the student's process gets
no way to start another program or load a compiled one, but a bug in CPython itself is
outside what it can stop. Limits are per exercise and per student, not a quota for the
whole class. Network access is refused at the Python level only.
"""


def reference_of(ex):
    """The reference in words: `tinyvit.ops.softmax`, or an adapter around library functions."""
    first, rest = ex["targets"][0], ex["targets"][1:]
    if first.__module__.startswith("tinyvit.exercises"):
        return f"`{first.__name__}` around " + ", ".join(f"`{f.__module__}.{f.__name__}`"
                                                         for f in rest)
    return ", ".join(f"`{f.__module__}.{f.__name__}`" for f in ex["targets"])


def table(reports):
    rows = ["| # | exercise | paper | lesson | you write | reference | mistakes named | "
            "mutants made / killed / equivalent |", "|---|---|---|---|---|---|---|---|"]
    for ex in EXERCISES:
        r = reports[ex["number"]]
        rows.append(f"| {ex['number']} | {ex['title']} | {ex['section']} | {ex['lesson']} | "
                    f"`{ex['name']}` | {reference_of(ex)} | {len(ex['mistakes'])} | "
                    f"{r['made']} / {r['killed']} / {r['equivalent']} |")
    total = [sum(r[k] for r in reports.values()) for k in ("made", "killed", "equivalent")]
    mistakes = sum(len(ex["mistakes"]) for ex in EXERCISES)
    rows.append(f"| | **all** | | | | | {mistakes} | {total[0]} / {total[1]} / {total[2]} |")
    return "\n".join(rows)


def section(ex):
    lines = [f"## {ex['number']}. {ex['title']}", "",
             f"`{ex['signature']}`: {ex['section']}, lesson `{ex['lesson']}`; the reference is "
             f"{reference_of(ex)}.", "", "```", ex["doc"], "```", ""]
    if ex["edges"]:
        lines += ["Edge cases: " + "; ".join(e["label"] for e in ex["edges"]) + ".", ""]
    if ex["mistakes"]:
        lines += ["Mistakes it names: " + "; ".join(f"«{m}»" for m in ex["mistakes"]) + ".", ""]
    if ex["properties"]:
        lines += ["Properties every answer must have: " + "; ".join(
            p.label for p in ex["properties"]) + ".", ""]
    if ex["equivalent"]:
        lines += ["Equivalent mutants:", ""]
        lines += [f"- `{mid}`: {why}" for mid, why in ex["equivalent"].items()] + [""]
    return "\n".join(lines)


def markdown(reports=None):
    """The whole of docs/EXERCISES.md; `reports` {number: mutation_report} if already run."""
    reports = reports or {ex["number"]: mutation_report(ex, check) for ex in EXERCISES}
    return INTRO + "\n" + GRADING + "\n" + table(reports) + "\n\n" + "\n".join(section(ex) for ex in EXERCISES)
