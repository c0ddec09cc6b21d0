"""`python -m tinyvit.exercises COMMAND`: the student's and the teacher's commands.

    init [DIR]                 write the 21 stubs into DIR (default exercises/); never overwrites
    list [--dir DIR]           every exercise and its status
    check N|all [--dir DIR]    check your file(s), in a subprocess with a timeout
    hint N [LEVEL]             the hints up to LEVEL (1-3; default 1)
    solution N                 the reference: its source, from the library
    grade SUBMISSIONS --seed SECRET [--csv [FILE]]   (teachers) grade a folder of submissions
    docs                       the exercise list in Markdown (docs/EXERCISES.md)
    mutants [N]                mutants of the references made / killed / equivalent
"""
import argparse
import inspect
import os
import sys
from pathlib import Path

from . import registry
from .checker import check, credit, report
from .spec import stub, stub_name


def cmd_init(args):
    folder = Path(args.dir)
    folder.mkdir(parents=True, exist_ok=True)
    written, kept = [], []
    for ex in registry.EXERCISES:
        path = folder / stub_name(ex)
        if path.exists():
            kept.append(path.name)
        else:
            path.write_text(stub(ex), encoding="utf-8")
            written.append(path.name)
    print(f"{folder}/: wrote {len(written)} exercise files" +
          (f", kept {len(kept)} that were there (init never overwrites)" if kept else ""))
    print(f"next: open {folder / stub_name(registry.EXERCISES[0])}, then "
          f"python -m tinyvit.exercises check 1 --dir {folder}")
    return 0


def numbers_of(what):
    """ "all" -> every number; "3" or "softmax" -> [3]."""
    return [ex["number"] for ex in registry.EXERCISES] if what == "all" \
        else [registry.get(what)["number"]]


def folder_of(args):
    """--dir, or the current folder when it holds the exercise files (and exercises/ does not
    exist): `check 3` works from inside the folder `init` wrote."""
    here = any(Path().glob("ex[0-9][0-9]_*.py"))
    return "." if args.dir == "exercises" and not Path(args.dir).is_dir() and here else args.dir


def cmd_check(args):
    from .sandbox import check_files

    results = check_files(folder_of(args), numbers_of(args.exercise), timeout=args.timeout)
    for result in results:
        print(report(registry.get(result["number"]), result))
    return 0 if all(r["status"] == "passed" for r in results) else 1


def cmd_list(args):
    from .sandbox import check_files

    folder = folder_of(args)
    results = check_files(folder, numbers_of("all"), timeout=args.timeout)
    for ex, r in zip(registry.EXERCISES, results):
        status = r["status"] if r["status"] != "failed" else f"failed at «{r['stage']}»"
        got, total = credit(r)
        print(f"{ex['number']:3d}  {ex['name']:22s} {ex['section']:26s} {status}"
              + (f" ({got}/{total})" if total else ""))
    done = sum(r["status"] == "passed" for r in results)
    print(f"{done} of {len(results)} passed in {folder}/")
    return 0


def cmd_hint(args):
    ex = registry.get(args.exercise)
    level = min(max(args.level, 1), 3)
    print(f"Exercise {ex['number']} · {ex['name']} ({ex['section']})")
    for i, hint in enumerate(ex["hints"][:level], 1):
        print(f"\nHint {i} of 3:\n" + "\n".join("  " + line for line in hint.splitlines()))
    if level < 3:
        print(f"\nmore: python -m tinyvit.exercises hint {ex['number']} {level + 1}")
    return 0


def cmd_solution(args):
    ex = registry.get(args.exercise)
    print(f"# Exercise {ex['number']} · {ex['name']}: the reference, from the library")
    for fn in ex["targets"]:
        where = fn.__module__.replace(".", "/") + ".py"
        print(f"\n# {fn.__module__}.{fn.__name__}  ({where}, line {inspect.getsourcelines(fn)[1]})")
        print(inspect.getsource(fn), end="")
    return 0


def cmd_grade(args):
    from .grade import grade, summary, table

    rows = grade(Path(args.submissions), args.seed, args.timeout)
    if args.csv is None:
        print(summary(rows))
    elif args.csv == "-":
        sys.stdout.write(table(rows))
    else:
        from ..run.files import atomic_write

        with atomic_write(args.csv) as f:
            f.write(table(rows))
        print(f"wrote {args.csv}: {len(rows)} submissions")
    return 0


def cmd_docs(args):
    from .docs import markdown

    sys.stdout.write(markdown())
    return 0


def cmd_mutants(args):
    from .mutants import mutation_report

    chosen = registry.EXERCISES if args.exercise is None else [registry.get(args.exercise)]
    for ex in chosen:
        r = mutation_report(ex, check)
        print(f"{ex['number']:3d} {ex['name']:22s} made {r['made']:3d}  killed {r['killed']:3d}  "
              f"equivalent {r['equivalent']:2d}"
              + "".join(f"\n      not killed, not listed: {m}" for m in r["unexplained"]))
        for mid in ex["equivalent"] if args.exercise is not None else []:
            print(f"      equivalent: {mid}: {ex['equivalent'][mid]}")
    return 0


def cmd_worker(args):
    from .worker import main

    return main(Path(args.dir), [int(n) for n in args.numbers.split(",")],
                os.environ.get("TINYVIT_EXERCISE_SECRET"), args.timeout)


def parser():
    p = argparse.ArgumentParser(prog="python -m tinyvit.exercises",
                                description="Classroom exercises: write the ViT's functions, "
                                            "check them, see them train.")
    sub = p.add_subparsers(dest="command", required=True,
                           metavar="{init,list,check,hint,solution,grade,docs,mutants}")
    s = sub.add_parser("init", help="write the exercise stubs (never overwrites)")
    s.add_argument("dir", nargs="?", default="exercises")
    for name, helptext in (("check", "check your exercise N (or all)"), ("list", "every status")):
        s = sub.add_parser(name, help=helptext)
        if name == "check":
            s.add_argument("exercise", help="a number, a name, or all")
        s.add_argument("--dir", default="exercises", help="where your files are (exercises/)")
        s.add_argument("--timeout", type=int, default=60, help="seconds per exercise (60)")
    s = sub.add_parser("hint", help="the hints of exercise N, up to LEVEL")
    s.add_argument("exercise")
    s.add_argument("level", nargs="?", type=int, default=1)
    s = sub.add_parser("solution", help="the reference of exercise N, from the library")
    s.add_argument("exercise")
    s = sub.add_parser("grade", help="(teachers) grade a folder of submissions")
    s.add_argument("submissions", help="a folder of student folders (or one student's folder)")
    s.add_argument("--seed", required=True, help="your secret: it draws the hidden cases")
    s.add_argument("--csv", nargs="?", const="-", default=None, help="CSV to stdout, or to FILE")
    s.add_argument("--timeout", type=int, default=60, help="seconds per exercise (60)")
    sub.add_parser("docs", help="the exercise list in Markdown (docs/EXERCISES.md)")
    s = sub.add_parser("mutants", help="mutants of the references: made, killed, equivalent")
    s.add_argument("exercise", nargs="?")
    s = sub.add_parser("worker")  # internal: started by `check`, `list` and `grade`
    s.add_argument("dir")
    s.add_argument("numbers")
    s.add_argument("--timeout", type=int, default=60)
    return p


def main(argv=None):
    args = parser().parse_args(argv)
    try:
        return globals()[f"cmd_{args.command}"](args)
    except ValueError as e:  # a user error: one clear line
        print(f"error: {e}", file=sys.stderr)
        return 2
