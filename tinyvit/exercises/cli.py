"""`python -m tinyvit.exercises COMMAND`: the student's and the teacher's commands.

    init [DIR]                 write the 22 stubs into DIR (default exercises/); never overwrites
    list [--dir DIR]           every exercise and its status
    check N|all [--dir DIR]    check your file(s), in a subprocess with a timeout
    hint N [LEVEL]             the hints up to LEVEL (1-3; default 1)
    solution N                 the reference: its source, from the library
    grade SUBMISSIONS --seed-file FILE [--csv [FILE]]  (teachers) grade a folder of submissions
    docs                       the exercise list in Markdown (docs/EXERCISES.md)
    mutants [N]                mutants of the references made / killed / equivalent
    manifest                   write tinyvit/exercises/MANIFEST (the library's files' SHA-256)

Every error is one line (`error: ...`, exit status 2).
"""
import argparse
import inspect
import os
import sys
from pathlib import Path

from ..support.errors import parse_command_line, reader_gone
from . import registry
from .checker import check, credit, report
from .grade import default_jobs
from .spec import stub, stub_name


def cmd_init(args):
    folder = Path(args.dir)
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"init {args.dir}: expected a folder, found a file")
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
    from .grade import grade, read_secret, summary, table

    secret = read_secret(args.seed, args.seed_file, sys.stdin)
    if args.csv not in (None, "-"):
        where = Path(args.csv)
        if where.is_dir() or not where.parent.is_dir() or not os.access(where.parent, os.W_OK):
            raise ValueError(f"--csv {args.csv}: expected a file in a writable folder")
    if args.seed_file is None:
        print("warning: --seed puts your secret on the command line, where every process of "
              "this machine can read it (/proc/PID/cmdline): use --seed-file FILE",
              file=sys.stderr)
    rows = grade(Path(args.submissions), secret, args.timeout, args.jobs)  # every process ended
    if args.csv is None:
        print(summary(rows, args.allow_flagged))
    elif args.csv == "-":
        sys.stdout.write(table(rows, args.allow_flagged))
    else:
        from ..support.files import atomic_write

        with atomic_write(args.csv, "w") as f:
            f.write(table(rows, args.allow_flagged))
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


def cmd_manifest(args):
    from .grade import MANIFEST, manifest_text
    from ..support.files import atomic_write

    with atomic_write(MANIFEST, "w") as f:
        f.write(manifest_text())
    print(f"wrote {MANIFEST}")
    return 0


def positive(text):
    """An argparse type: an integer number of seconds above 0."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number of seconds, found {text!r}")
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a number of seconds above 0, found {value}")
    return value


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a bad command line is one line too (not the usage block)."""

    def error(self, message):
        self.exit(2, f"error: {message} (see {self.prog} --help)\n")


def parser():
    p = OneLineParser(prog="python -m tinyvit.exercises",
                      description="Classroom exercises: write the ViT's functions, check them, "
                                  "see them train.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=OneLineParser,
                           metavar="{init,list,check,hint,solution,grade,docs,mutants,manifest}")
    s = sub.add_parser("init", help="write the exercise stubs (never overwrites)")
    s.add_argument("dir", nargs="?", default="exercises")
    for name, helptext in (("check", "check your exercise N (or all)"), ("list", "every status")):
        s = sub.add_parser(name, help=helptext)
        if name == "check":
            s.add_argument("exercise", help="a number, a name, or all")
        s.add_argument("--dir", default="exercises", help="where your files are (exercises/)")
        s.add_argument("--timeout", type=positive, default=60, help="seconds per exercise (60)")
    s = sub.add_parser("hint", help="the hints of exercise N, up to LEVEL")
    s.add_argument("exercise")
    s.add_argument("level", nargs="?", type=int, default=1)
    s = sub.add_parser("solution", help="the reference of exercise N, from the library")
    s.add_argument("exercise")
    s = sub.add_parser("grade", help="(teachers) grade a folder of submissions")
    s.add_argument("submissions", help="a folder of student folders (or one student's folder)")
    s.add_argument("--seed-file", metavar="FILE", help="a file whose first line is your secret "
                   "(it draws the hidden cases); - reads it from stdin")
    s.add_argument("--seed", help="your secret on the command line (other processes can read "
                   "it there: prefer --seed-file)")
    s.add_argument("--csv", nargs="?", const="-", default=None, help="CSV to stdout, or to FILE")
    s.add_argument("--timeout", type=positive, default=60, help="seconds per exercise (60)")
    s.add_argument("--jobs", type=positive, default=default_jobs(),
                   help=f"students graded at once ({default_jobs()})")
    s.add_argument("--allow-flagged", action="store_true",
                   help="give credit to flagged exercises (the reference used) too")
    sub.add_parser("docs", help="the exercise list in Markdown (docs/EXERCISES.md)")
    s = sub.add_parser("mutants", help="mutants of the references: made, killed, equivalent")
    s.add_argument("exercise", nargs="?")
    sub.add_parser("manifest", help="write tinyvit/exercises/MANIFEST from the files as they are")
    return p


def main(argv=None):
    args, status = parse_command_line(parser(), argv)
    if args is None:
        return status
    try:
        return globals()[f"cmd_{args.command}"](args)
    except ValueError as e:  # a user error: one clear line
        return fail(e)
    except BrokenPipeError:  # the reader left (`docs | head`): nothing to report
        return reader_gone()
    except OSError as e:  # the system refused a read or a write
        return fail(f"{e.filename or ''}{': ' if e.filename else ''}{e.strerror or e}")


def fail(message):
    print(f"error: {' '.join(str(message).split())}", file=sys.stderr)
    return 2
