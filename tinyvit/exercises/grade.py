"""Teachers: grade a folder of submissions, with a hidden stage drawn from a secret.

SUBMISSIONS holds one folder per student (the folder `init` wrote, handed in), or is itself
one student's folder. Each student's files are copied into a private folder and run in a
process of their own (`sandbox.py`), which never sees the secret; every stage, comparison,
credit and flag is computed here. One stage more than students see: cases drawn from the secret
at other sizes. The hidden test is a seed, not code, so its feedback reveals nothing that could
be hard-coded. Credit is per stage: a cell "5/7" means five of the exercise's seven stages
passed; a flagged exercise (the reference used, by any route; the answer key imported) earns
none unless the teacher allows it.

Before grading, the library's files are checked against MANIFEST (their SHA-256, committed
with the package): a modified installation (a patched checker, a changed reference) is refused,
and checked again when grading ends. The CSV is written once, atomically, after every
student's process has ended.
"""
import csv
import hashlib
import io
import multiprocessing
import os
from pathlib import Path

from .checker import credit
from .registry import EXERCISES, get
from .sandbox import check_files, isolation

PATTERN = "ex[0-9][0-9]_*.py"
PACKAGE = Path(__file__).resolve().parents[1]  # tinyvit/
MANIFEST = Path(__file__).with_name("MANIFEST")


def students(root):
    """The submission folders below `root` (or `root` itself), sorted by name."""
    if not root.is_dir():
        raise ValueError(f"grade: no folder {root}")
    if any(root.glob(PATTERN)):
        return [root]
    found = sorted(p for p in root.iterdir() if p.is_dir() and any(p.glob(PATTERN)))
    if not found:
        raise ValueError(f"grade: expected folders of exercise files (ex01_patchify.py, ...) in "
                         f"{root}, found none")
    return found


# ---------------------------------------------------------------------------------------------
# The installation's integrity
# ---------------------------------------------------------------------------------------------


def hashes():
    """{path relative to tinyvit/: SHA-256} of the library's Python files, as installed now."""
    return {p.relative_to(PACKAGE).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(PACKAGE.rglob("*.py")) if "__pycache__" not in p.parts}


def manifest_text():
    """The MANIFEST file's text for the files as they are (python -m tinyvit.exercises manifest)."""
    return "".join(f"{digest}  {path}\n" for path, digest in hashes().items())


def verify_installation():
    """The number of files checked; a one-line ValueError naming a file that differs."""
    if not MANIFEST.is_file():
        raise ValueError(f"grade: no {MANIFEST}: the installation has no manifest to check")
    expected = dict(reversed(line.split("  ", 1)) for line in
                    MANIFEST.read_text(encoding="utf-8").splitlines() if "  " in line)
    found = hashes()
    for path in sorted(set(expected) | set(found)):
        if expected.get(path) != found.get(path):
            what = "is missing" if path not in found else "is not in the manifest" \
                if path not in expected else "differs from the manifest"
            raise ValueError(f"grade: refusing to grade: tinyvit/{path} {what} (a modified "
                             f"installation; reinstall tinyvit)")
    return len(found)


# ---------------------------------------------------------------------------------------------
# Grading
# ---------------------------------------------------------------------------------------------


def grade_one(job):
    folder, secret, timeout = job
    results = check_files(folder, [ex["number"] for ex in EXERCISES], secret, timeout)
    try:
        verify_installation()
    except ValueError as e:
        raise ValueError(f"{e}, found after grading {folder.name}") from None
    return folder.name, results


def grade(root, secret, timeout=60, jobs=1):
    """[(student, results)] for every submission folder, `jobs` students at a time."""
    if secret is None or not str(secret):
        raise ValueError("grade: expected a secret (--seed-file FILE), found an empty one")
    verify_installation()
    isolation()  # decided once, before the students' processes start
    work = [(folder, str(secret), timeout) for folder in students(Path(root))]
    if jobs > 1 and len(work) > 1 and "fork" in multiprocessing.get_all_start_methods():
        with multiprocessing.get_context("fork").Pool(min(jobs, len(work))) as pool:
            rows = pool.map(grade_one, work, chunksize=1)
    else:
        rows = [grade_one(job) for job in work]
    verify_installation()  # nothing a student ran changed the grader
    return rows


def flagged(result, allow_flagged=False):
    return bool(result["flags"]) and not allow_flagged


def stages_of(result, allow_flagged=False):
    """(stages passed, the exercise's stages with the hidden one): a missing file, or a flagged
    exercise (unless allowed), gets 0."""
    got = 0 if flagged(result, allow_flagged) else credit(result)[0]
    return got, len(get(result["number"])["stages"])


def passed(results, allow_flagged=False):
    return sum(r["status"] == "passed" and not flagged(r, allow_flagged) for r in results)


def score(results, allow_flagged=False):
    """Stages passed / stages in all, over every exercise, in percent."""
    got, total = (sum(x) for x in zip(*(stages_of(r, allow_flagged) for r in results)))
    return 100.0 * got / max(total, 1)


def table(rows, allow_flagged=False):
    """The CSV text: one row per student, one column per exercise (stages passed/stages)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["student"] + [f"ex{ex['number']:02d}_{ex['name']}" for ex in EXERCISES]
                    + ["passed", "score", "flags"])
    for student, results in rows:
        cells = ["{}/{}".format(*stages_of(r, allow_flagged)) for r in results]
        flags = [f"ex{r['number']:02d}: {f}" for r in results for f in r["flags"]]
        writer.writerow([student] + cells + [passed(results, allow_flagged),
                                             f"{score(results, allow_flagged):.1f}",
                                             "; ".join(flags)])
    return out.getvalue()


def summary(rows, allow_flagged=False):
    """A readable summary: how the students' code ran; per student, what passed, where the rest
    stopped, the flags (and whether they cost the credit)."""
    lines = [f"isolation: {isolation()[1]}",
             "installation: the library's files matched tinyvit/exercises/MANIFEST before "
             "and after every student",
             f"flags: {'allowed (credit kept)' if allow_flagged else 'a flagged exercise earns no credit (--allow-flagged keeps it)'}"]
    for student, results in rows:
        lines.append(f"{student}: {passed(results, allow_flagged)}/{len(results)} passed, "
                     f"{score(results, allow_flagged):.0f}% of stages")
        for r in results:
            if r["status"] in ("failed", "error", "timeout"):
                where = f" at «{r['stage']}»" if r["stage"] else ""
                named = f" ({r['diagnosis']})" if r["diagnosis"] else ""
                lines.append(f"    {r['number']:2d} {r['name']}: {r['status']}{where}{named}")
            lines += [f"    {r['number']:2d} {r['name']}: flag: {f}" for f in r["flags"]]
        for status in ("not started", "missing"):
            numbers = [str(r["number"]) for r in results if r["status"] == status]
            if numbers:
                lines.append(f"    {status}: {' '.join(numbers)}")
    return "\n".join(lines) + "\n"


def read_secret(seed=None, seed_file=None, stdin=None):
    """The teacher's secret from --seed-file FILE (or '-' for stdin), else --seed; one-line
    ValueError when missing or empty."""
    if seed_file is not None:
        if seed_file == "-":
            text = stdin.readline()
        else:
            path = Path(seed_file)
            if not path.is_file():
                raise ValueError(f"--seed-file {seed_file}: expected a file holding your secret, "
                                 f"found {'a folder' if path.is_dir() else 'nothing'}")
            text = path.read_text(encoding="utf-8").splitlines()[0] if path.stat().st_size else ""
        secret = text.strip()
    else:
        secret = seed
    if secret is None:
        raise ValueError("grade: expected your secret: --seed-file FILE (or --seed-file - to "
                         "read it from stdin)")
    if not secret.strip():
        raise ValueError("grade: the secret is empty: expected a non-empty word or number")
    return secret


def default_jobs():
    return max(1, min(4, os.cpu_count() or 1))
