"""Every lesson runs in smoke mode (tiny synthetic data, seconds): as a plain script, and as a
notebook (converted with jupytext, executed with nbconvert; skipped when they are absent)."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LESSONS = sorted((ROOT / "lessons").glob("[0-9][0-9]_*.py"))


def smoke_env(tmp_path):
    env = dict(os.environ, TINYVIT_SMOKE="1", TINYVIT_OUT=str(tmp_path), PYTHONUNBUFFERED="1")
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    env.pop("TINYVIT_MINI", None)
    return env


def check_outputs(tmp_path):
    assert list(tmp_path.rglob("*.png")), "a lesson should draw at least one picture"
    # Smoke runs never write where full runs keep their results (lessons 8-9 load lesson 5's
    # "run" folder; lessons 7 and 10 show their results files).
    assert not (tmp_path / "05_training" / "run").exists()
    assert not (tmp_path / "07_data_hunger" / "data_hunger.json").exists()
    assert not (tmp_path / "07_data_hunger" / "data_hunger_ladder.json").exists()
    assert not (tmp_path / "10_masked_patch_prediction" / "mpp.json").exists()


def test_there_are_lessons():
    assert len(LESSONS) >= 10


@pytest.mark.parametrize("path", LESSONS, ids=[p.stem for p in LESSONS])
def test_lesson_runs_in_smoke_mode(path, tmp_path):
    r = subprocess.run([sys.executable, str(path)], cwd=tmp_path, env=smoke_env(tmp_path),
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    check_outputs(tmp_path)


def notebook_tools():
    """Skip unless jupytext, nbconvert and a Python kernel are installed (requirements-dev)."""
    for module in ("jupytext", "nbconvert", "ipykernel"):
        pytest.importorskip(module, reason=f"{module} not installed (requirements-dev.txt)")


@pytest.mark.parametrize("path", LESSONS, ids=[p.stem for p in LESSONS])
def test_lesson_runs_as_a_notebook_in_smoke_mode(path, tmp_path):
    """What a student opening the lesson in Jupyter gets: every cell executes, in order, with
    `import lesson` found (a notebook opened in lessons/ runs there; here lessons/ is on the
    kernel's path), and every picture is shown once."""
    notebook_tools()
    import jupytext
    import nbformat

    nb = jupytext.read(path)
    ipynb = tmp_path / f"{path.stem}.ipynb"
    nbformat.write(nb, ipynb)
    env = smoke_env(tmp_path)
    env["PYTHONPATH"] = os.pathsep.join([str(path.parent), env["PYTHONPATH"]])
    r = subprocess.run([sys.executable, "-m", "nbconvert", "--to", "notebook", "--execute",
                        "--ExecutePreprocessor.timeout=300",
                        "--ExecutePreprocessor.kernel_name=python3", "--output",
                        str(ipynb.with_suffix(".out.ipynb")), str(ipynb)],
                       cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-4000:]
    check_outputs(tmp_path)
    done = nbformat.read(ipynb.with_suffix(".out.ipynb"), as_version=4)
    outputs = [o for c in done.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) == len(list(tmp_path.rglob("*.png"))), "each picture shown once"
    assert not any("image/jpeg" in o.get("data", {}) for o in outputs), "PNG only, not twice"
    assert not any("PosixPath" in str(o.get("data", {}).get("text/plain", "")) for o in outputs)


@pytest.mark.parametrize("path", LESSONS, ids=[p.stem for p in LESSONS])
def test_lesson_is_jupytext_percent_format(path):
    text = path.read_text()
    assert text.startswith("# %% [markdown]"), "lessons open with a markdown cell"
    assert text.count("# %%") >= 4


@pytest.mark.parametrize("path", LESSONS, ids=[p.stem for p in LESSONS])
def test_markdown_cells_hold_no_code(path):
    """In percent format a markdown cell runs to the next `# %%`: a code line left inside one
    (a forgotten `# %%`) runs as a script but vanishes, unrun, from the notebook."""
    cell, start = None, 0
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if line.startswith("# %%"):
            cell, start = ("markdown" if "[markdown]" in line else "code"), n
        elif cell == "markdown" and line.strip() and not line.startswith("#"):
            pytest.fail(f"{path.name}:{n}: code inside the markdown cell of line {start} "
                        f"(add `# %%` before it): {line.strip()[:60]}")


ANY_VIT = [p for p in LESSONS if p.stem[:2] in ("08", "09", "11")]  # the ViT analyses


@pytest.mark.parametrize("path", ANY_VIT, ids=[p.stem for p in ANY_VIT])
def test_vit_analyses_run_on_a_vit_with_every_ingredient(path, tmp_path):
    """Lessons 8, 9 and 11 on vit-cifar-sl (sequence pooling, no class token, fixed sin-cos
    positions, shifted patch tokens, locality self-attention) instead of vit-cifar-nano."""
    env = dict(smoke_env(tmp_path), TINYVIT_SMOKE_VIT="vit-cifar-sl")
    r = subprocess.run([sys.executable, str(path)], cwd=tmp_path, env=env,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    check_outputs(tmp_path)
    assert "vit-cifar-sl" in r.stdout
    if path.stem.startswith("08"):  # the sequence-pooling weights get their own picture
        assert (tmp_path / path.stem / "seq_pool_weights.png").is_file()
        assert "the head reads the tokens weighted by sequence pooling" in r.stdout


def test_smoke_vit_names_a_vit_preset(monkeypatch):
    sys.path.insert(0, str(ROOT / "lessons"))
    import lesson

    monkeypatch.setenv("TINYVIT_SMOKE_VIT", "vit-cifar-sl")
    assert lesson.smoke_vit() == "vit-cifar-sl"
    monkeypatch.delenv("TINYVIT_SMOKE_VIT")
    assert lesson.smoke_vit() == "vit-cifar-nano"
    monkeypatch.setenv("TINYVIT_SMOKE_VIT", "cnn-air")
    with pytest.raises(ValueError, match="TINYVIT_SMOKE_VIT: expected a ViT preset"):
        lesson.smoke_vit()
