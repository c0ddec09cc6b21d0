"""The layout keeps the student's path apart from the machine's (README, "What is where").

The model is the core: configs, vit, layers, ops, cnn, hybrid, optim, tree, mpp (masked patch
prediction), and the few-line `arrays` helper. Every folder of tinyvit/ sits in a layer and
imports only from layers below its own, and from itself (docs/CONVENTIONS.md, "Layers"):

    core  <-  support  <-  fast, device, data  <-  run  <-  figures  <-  exercises

Checked on the source, statically, so an import hidden in a function counts too.
"""
import ast
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "tinyvit"
CORE = ["configs", "vit", "layers", "ops", "cnn", "hybrid", "optim", "tree", "arrays", "mpp"]
# Each layer, lowest first: a module may import its own folder and any layer below its own.
ORDER = [CORE, ["support"], ["fast", "device", "data"], ["run"], ["figures"], ["exercises"]]
LAYERS = [name for layer in ORDER[1:] for name in layer]
RANK = {name: rank for rank, layer in enumerate(ORDER) for name in layer}


def tinyvit_imports(path):
    """The tinyvit modules a source file imports, as dotted names below `tinyvit`."""
    module = ".".join(path.relative_to(ROOT).with_suffix("").parts)  # tinyvit.run.train
    package = module.rsplit(".", 1)[0] if path.name != "__init__.py" else module
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "tinyvit"}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[:len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] == "tinyvit":
                names = [f"{target}.{a.name}" for a in node.names]
                found |= {target} | set(names)
    return {name[len("tinyvit."):] for name in found if name.startswith("tinyvit.")}


def test_the_import_walker_sees_relative_and_absolute_imports(tmp_path):
    fake = ROOT / "tinyvit" / "run" / "train.py"
    names = tinyvit_imports(fake)
    assert "fast" in names and "run.checkpoint" in names  # `from .. import fast`, `from . import`


@pytest.mark.parametrize("name", CORE)
def test_core_modules_import_only_the_core(name):
    imported = tinyvit_imports(PACKAGE / f"{name}.py")
    outside = sorted(i for i in imported if i.split(".")[0] not in CORE)
    assert not outside, f"tinyvit/{name}.py imports {outside}: the model may use only {CORE}"


def place(path):
    """The top-level module or folder of tinyvit/ a source file belongs to: 'vit', 'run'..."""
    first = path.relative_to(PACKAGE).parts[0]
    return first[:-len(".py")] if first.endswith(".py") else first


SOURCES = sorted(p for p in PACKAGE.rglob("*.py")
                 if "__pycache__" not in p.parts and p.name != "__main__.py")


def upward(path, imports):
    """The imports of the module at `path` that are not its own folder's (for the core: the
    core's) nor below its layer."""
    mine = place(path)
    own = set(CORE) if mine in CORE else {mine}
    return sorted(i for i in imports
                  if i.split(".")[0] not in own and RANK[i.split(".")[0]] >= RANK[mine])


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: p.relative_to(PACKAGE).as_posix())
def test_every_module_imports_only_its_own_folder_and_the_layers_below(path):
    found = upward(path, tinyvit_imports(path))
    assert not found, (f"tinyvit/{path.relative_to(PACKAGE)} ({place(path)}, layer "
                       f"{RANK[place(path)]}) imports {found}, not below it: {ORDER}")


def test_the_layer_rule_refuses_upward_and_sideways_imports():
    data, fast = PACKAGE / "data" / "cache.py", PACKAGE / "fast" / "ops.py"
    assert upward(data, {"run.files", "support.files", "ops", "data.errors"}) == ["run.files"]
    assert upward(fast, {"data", "device.backend", "fast.blas"}) == ["data", "device.backend"]
    assert upward(PACKAGE / "vit.py", {"fast", "layers"}) == ["fast"]


def test_every_module_is_in_a_named_place():
    top = sorted(p.stem for p in PACKAGE.glob("*.py") if p.stem not in ("__init__", "__main__"))
    assert top == sorted(CORE)
    folders = sorted(p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file())
    assert set(folders) <= set(LAYERS), folders


def test_every_module_is_listed_in_the_readme():
    readme = (ROOT / "README.md").read_text()
    modules = [p.relative_to(ROOT).as_posix() for p in PACKAGE.rglob("*.py")
               if p.name != "__main__.py" and "__pycache__" not in p.parts]
    missing = [m for m in modules
               if f"`{m}`" not in readme and not (m.endswith("__init__.py")
                                                 and f"`{m[:-len('__init__.py')]}`" in readme)]
    assert not missing, f"README's 'What is where' does not list {missing}"


def test_importing_tinyvit_changes_nothing_in_the_process():
    code = ("import tinyvit, tinyvit.fast as f, tinyvit.fast.malloc as m, tinyvit.run.train; "
            "print(m._applied, f.enabled())")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                         text=True, check=True).stdout.split()
    assert out == ["False", "[]"]  # allocator untouched, the model on its formulas


def test_the_package_names_no_path_outside_itself():
    for path in PACKAGE.rglob("*.py"):
        text = path.read_text()
        assert "parents[2]" not in text and "../shared" not in text, path


def test_requirements_install_from_any_folder():
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        assert not line.startswith(("-e", ".", "/")) and "file:" not in line, line


def test_the_package_build_holds_every_module(tmp_path):
    """What pyproject.toml packs (every module, the shipped model as package data), read from
    setuptools' build_py, the step whose output a wheel zips. build_py needs no `wheel` package
    and no download, so this holds in a fresh venv as in a developer's."""
    pytest.importorskip("setuptools")
    src = tmp_path / "src"  # a copy: building writes build/ and *.egg-info next to the sources
    shutil.copytree(PACKAGE, src / "tinyvit", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    lib = tmp_path / "lib"
    r = subprocess.run([sys.executable, "-c", "import setuptools; setuptools.setup()", "-q",
                        "build_py", "--build-lib", str(lib)], cwd=src, capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    inside = {p.relative_to(lib).as_posix() for p in lib.rglob("*") if p.is_file()}
    modules = {p.relative_to(ROOT).as_posix() for p in PACKAGE.rglob("*.py")
               if "__pycache__" not in p.parts}
    assert modules <= inside, sorted(modules - inside)
    assert "tinyvit/pretrained/vit-cifar-nano.npz" in inside  # the shipped model is package data
