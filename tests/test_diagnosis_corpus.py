"""Diagnosis that generalises (issue 26), proven on tests/exercise_corpus.py.

Every alternative correct answer passes; every wrong answer fails. A failure is
    named        a verdict (result["diagnosis"] set) whose message holds one of the entry's
                 `right` words and none of its `wrong` ones
    misleading   a verdict holding a `wrong` word, or a verdict from a variant, the catalogue
                 or a detector (not a property, which is a fact) holding no `right` word
    shown        neither: the worked case and, at most, a question
Required: 0 misleading, named >= 80% of the corpus. The table is printed (pytest -s).
"""
import time

import pytest

from tinyvit.exercises import registry
from tinyvit.exercises.checker import check, report

from exercise_corpus import RIGHT, WRONG

NAMES = [ex["name"] for ex in registry.EXERCISES]
CASES = [(name, fn) for name, fns in RIGHT.items() for fn in fns]


FACTS = ("property:", "where:")  # a violated property, the capstone's first differing step


def diagnosis_text(message):
    """The message's diagnosis: the lines after the first, up to the worked case's inputs."""
    lines = message.splitlines()[1:]
    return "\n".join(lines[:next((i for i, line in enumerate(lines)
                                  if line.startswith("the case:")), len(lines))]).lower()


def verdict(result, item):
    """'named', 'misleading' or 'shown' for a failed result of a corpus entry."""
    text = diagnosis_text(result["message"])
    says = lambda words: any(w.lower() in text for w in words)
    if result["diagnosis"] is None:
        return "shown"
    if says(item["wrong"]):
        return "misleading"
    if says(item["right"]):
        return "named"
    return "shown" if result["diagnosis"].startswith(FACTS) else "misleading"


def test_the_corpus_covers_every_exercise():
    assert sorted(WRONG) == sorted(NAMES) and sorted(RIGHT) == sorted(NAMES)
    assert all(len(WRONG[n]) >= 3 for n in NAMES)


@pytest.mark.parametrize(("name", "fn"), CASES, ids=[fn.__name__ for _, fn in CASES])
def test_every_alternative_passes(name, fn):
    ex = registry.get(name)
    result = check(ex, fn, secret="corpus")
    assert result["status"] == "passed", report(ex, result)


def test_every_wrong_answer_fails_none_misleads_and_most_are_named(capsys):
    rows, kinds, seconds, lines = [], [], [], []
    for name in NAMES:
        ex, counts = registry.get(name), {"named": 0, "shown": 0, "misleading": 0}
        for item in WRONG[name]:
            start = time.perf_counter()
            result = check(ex, item["fn"])
            seconds.append(time.perf_counter() - start)
            assert result["status"] == "failed", (item["label"], report(ex, result))
            kind = verdict(result, item)
            counts[kind] += 1
            kinds.append(kind)
            if kind != "named":
                lines.append(f"[{kind}] {name}: {item['label']}\n{report(ex, result)}")
        rows.append((ex["number"], name, counts))
    with capsys.disabled():
        print("\n  #  exercise               named shown misleading")
        for number, name, c in rows:
            print(f"  {number:2d} {name:22s} {c['named']:5d} {c['shown']:5d} {c['misleading']:10d}")
        named = kinds.count("named")
        print(f"  all: {named}/{len(kinds)} named ({named / len(kinds):.0%}), "
              f"{kinds.count('shown')} shown, {kinds.count('misleading')} misleading; a check "
              f"of a wrong answer takes {sum(seconds) / len(seconds):.2f} s on average, "
              f"{max(seconds):.2f} s at most")
        for line in lines:
            print(line)
    assert kinds.count("misleading") == 0
    assert kinds.count("named") >= 0.8 * len(kinds)
