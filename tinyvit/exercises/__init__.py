"""Classroom exercises: write the ViT's functions yourself; the library is the answer key.

Start in a terminal (`python -m tinyvit.exercises init`, then `check 1`, `hint 1`, ...) or
in a notebook (`from tinyvit.exercises import check; check(1, patchify)`). Every exercise
names its paper section and lesson; its reference is a tinyvit function (or a few-line
adapter around one), so the stubs, `solution N` and docs/EXERCISES.md are generated from
the registry and nothing can drift. What is where:

    registry.py, spec.py, sections/    the exercises: one record each, by topic
    stages.py, checker.py              the checker's stages and results
    compare.py, gradients.py           shapes and values compared; finite differences
    diagnose.py, notes.py              typical mistakes named, detectors; notes, errors
    patching.py                        putting functions into the library for a while
    sandbox.py                         the grader's side: a student's functions as stand-ins
                                       that call them in a process of their own
    worker.py                          that process, and the frames of plain data between them
    imports.py                         what a file's imports reach, read without running it
    notebook.py                        check(n, fn) for Jupyter and Colab (the same path)
    grade.py                           teachers: grade SUBMISSIONS --seed-file FILE --csv;
                                       MANIFEST, the library's SHA-256, checked first
    mutants.py                         mutants of the references, the checkers' proof
    docs.py, cli.py                    docs/EXERCISES.md; the commands
"""
from .notebook import check  # noqa: F401  (tinyvit.exercises.check)
from .registry import EXERCISES, get  # noqa: F401
