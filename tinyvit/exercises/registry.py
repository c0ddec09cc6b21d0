"""All exercises, in order: the single source of the stubs, the docs, hints and solutions.

Each topic module in `sections/` holds a list `EXERCISES` of records (see `spec.py`); they are
numbered 1, 2, ... in the order of the paper and the lessons. A later exercise takes the next
number (linear CKA, 22, after the capstone): a student's files are named by their numbers.
"""
import importlib

TOPICS = ("patches", "attention", "norms", "encoder", "loss", "optimiser", "convolution",
          "analysis", "capstone")


def load():
    """The exercise records of every topic in the order of their numbers, checked to be
    numbered 1..n with unique names."""
    exercises = sorted((ex for topic in TOPICS for ex in importlib.import_module(
        f".sections.{topic}", __package__).EXERCISES), key=lambda ex: ex["number"])
    numbers = [ex["number"] for ex in exercises]
    if numbers != list(range(1, len(exercises) + 1)):
        raise ValueError(f"exercises: expected the numbers 1..{len(exercises)}, found {numbers}")
    names = [ex["name"] for ex in exercises]
    if len(set(names)) != len(names):
        raise ValueError(f"exercises: expected unique names, found {names}")
    return exercises


EXERCISES = load()


def get(key):
    """The exercise with this number (int or digits) or function name; one-line ValueError."""
    text = str(key).strip()
    for ex in EXERCISES:
        if text == str(ex["number"]) or text == ex["name"]:
            return ex
    raise ValueError(f"no exercise {key!r}: expected a number 1-{len(EXERCISES)} or a name "
                     f"such as 'softmax' (python -m tinyvit.exercises list)")
