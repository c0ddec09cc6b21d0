"""Every lesson runs, in smoke mode (tiny synthetic data, seconds), as a plain script."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

LESSONS = sorted((Path(__file__).resolve().parents[1] / "lessons").glob("[0-9][0-9]_*.py"))


def test_there_are_lessons():
    assert len(LESSONS) >= 4


@pytest.mark.parametrize("path", LESSONS, ids=[p.stem for p in LESSONS])
def test_lesson_runs_in_smoke_mode(path, tmp_path):
    env = dict(os.environ, TINYVIT_SMOKE="1", TINYVIT_OUT=str(tmp_path), PYTHONUNBUFFERED="1")
    env["PYTHONPATH"] = os.pathsep.join([str(path.parents[1]), env.get("PYTHONPATH", "")])
    r = subprocess.run([sys.executable, str(path)], cwd=tmp_path, env=env,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    assert list(tmp_path.rglob("*.png")), "a lesson should draw at least one picture"
    # Smoke runs never write where full runs keep their results (lessons 8-9 load lesson 5's
    # "run" folder; lesson 7 shows its results file).
    assert not (tmp_path / "05_training" / "run").exists()
    assert not (tmp_path / "07_data_hunger" / "data_hunger.json").exists()


@pytest.mark.parametrize("path", LESSONS, ids=[p.stem for p in LESSONS])
def test_lesson_is_jupytext_percent_format(path):
    text = path.read_text()
    assert text.startswith("# %% [markdown]"), "lessons open with a markdown cell"
    assert text.count("# %%") >= 4
