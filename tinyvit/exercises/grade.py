"""Teachers: grade a folder of submissions, with a hidden stage drawn from a secret seed.

SUBMISSIONS holds one folder per student (the folder `init` wrote, handed in), or is itself
one student's folder. Every exercise is checked in a subprocess with a timeout, with one
more stage than students see: cases drawn from `--seed` at other sizes. The hidden test is a
seed, not code, so its feedback reveals nothing that could be hard-coded. Credit is per
stage: a cell "5/7" means five of the exercise's seven stages passed. Flags name files that
import the reference, or the answer key.
"""
import csv
import io

from .checker import credit
from .registry import EXERCISES, get
from .sandbox import check_files

PATTERN = "ex[0-9][0-9]_*.py"


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


def grade(root, secret, timeout=60):
    """[(student, results)] for every submission folder."""
    numbers = [ex["number"] for ex in EXERCISES]
    return [(folder.name, check_files(folder, numbers, secret, timeout))
            for folder in students(root)]


def stages_of(result):
    """(stages passed, the exercise's stages with the hidden one): a missing file gets 0."""
    return credit(result)[0], len(get(result["number"])["stages"])


def score(results):
    """Stages passed / stages in all, over every exercise, in percent."""
    got, total = (sum(x) for x in zip(*(stages_of(r) for r in results)))
    return 100.0 * got / max(total, 1)


def table(rows):
    """The CSV text: one row per student, one column per exercise (stages passed/stages)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["student"] + [f"ex{ex['number']:02d}_{ex['name']}" for ex in EXERCISES]
                    + ["passed", "score", "flags"])
    for student, results in rows:
        cells = ["{}/{}".format(*stages_of(r)) for r in results]
        flags = [f"ex{r['number']:02d}: {f}" for r in results for f in r["flags"]]
        writer.writerow([student] + cells + [sum(r["status"] == "passed" for r in results),
                                             f"{score(results):.1f}", "; ".join(flags)])
    return out.getvalue()


def summary(rows):
    """A readable summary: per student, what passed, where the rest stopped, the flags."""
    lines = []
    for student, results in rows:
        passed = sum(r["status"] == "passed" for r in results)
        lines.append(f"{student}: {passed}/{len(results)} passed, {score(results):.0f}% of stages")
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
