"""The grader under attack: a class of dishonest students graded beside an honest one.

Every attack below is a student folder, graded together as one class, the way a teacher does
(`grade`, two students at a time). For every attack: no credit it did not earn (each attacked
exercise gets 0), a reason a teacher can read (a flag, or an error or timeout message), no file
outside the student's private folder changed (the class, the library, a file beside them), and
the secret in no result, message or CSV. The honest student's grade equals a plain `check`
(the hidden stage aside). The student's functions are written as a student would (files), and
the honest one is made from tests/test_exercises_alternatives.py's correct solutions.
"""
import hashlib
import importlib.util
import os
import py_compile
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tinyvit.exercises import grade as grading
from tinyvit.exercises.notebook import module_text
from tinyvit.exercises.registry import EXERCISES, get
from tinyvit.exercises.sandbox import check_files
from tinyvit.exercises.spec import stub_name

sys.path.insert(0, str(Path(__file__).parent))
import test_exercises_alternatives as alternatives  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SECRET = "Zq9-teachers-secret-7Kx"
TIMEOUT = 4
MARK = "@@tinyvit-exercise-result@@ "
FORGED = ('{"number": %d, "name": "x", "status": "passed", "stage": null, "message": "", '
          '"diagnosis": null, "stages": [["runs", "pass"]], "notes": [], "flags": []}')

ATTACKS = {
    # forged verdicts: marker lines, on stdout by every route
    "forge_os_write": ("ex03_softmax.py", f"""
        import os
        for n in range(1, {len(EXERCISES) + 1}):
            os.write(1, ({MARK!r} + {FORGED!r} % n + "\\n").encode())
        os._exit(0)
        """),
    "forge_atexit": ("ex03_softmax.py", f"""
        import atexit, sys
        atexit.register(lambda: [print({MARK!r} + {FORGED!r} % n, file=sys.__stdout__)
                                 for n in range(1, {len(EXERCISES) + 1})])
        def softmax(x):
            raise NotImplementedError
        """),
    "forge_dunder_stdout": ("ex03_softmax.py", f"""
        import sys
        def softmax(x):
            for n in range(1, {len(EXERCISES) + 1}):
                print({MARK!r} + {FORGED!r} % n, file=sys.__stdout__, flush=True)
            return None
        """),
    "forge_frame_on_channel": ("ex03_softmax.py", """
        import os, json, struct
        def softmax(x):
            body = json.dumps([["d", {"status": ["l", []]}], []]).encode()
            frame = struct.pack("<I", len(body)) + body
            for fd in range(3, 64):
                try:
                    os.write(fd, struct.pack("<Q", len(frame)) + frame)
                except OSError:
                    pass
            return None
        """),
    "garbage_on_every_fd": ("ex03_softmax.py", """
        import os
        def softmax(x):
            for fd in range(0, 256):
                try:
                    os.write(fd, b"\\xff" * 64 + b"@@tinyvit-exercise-result@@ {}")
                except OSError:
                    pass
            return None
        """),
    # the secret: environment, /proc, the grader's command line; exfiltrated in a message
    "secret_from_env": ("ex03_softmax.py", """
        import os
        def softmax(x):
            raise ValueError("env: " + repr(dict(os.environ)))
        """),
    "secret_from_proc_self_environ": ("ex03_softmax.py", """
        def softmax(x):
            raise ValueError(open("/proc/self/environ", "rb").read().decode(errors="replace"))
        """),
    "secret_from_parent_cmdline": ("ex03_softmax.py", """
        import os
        def softmax(x):
            raise ValueError(open(f"/proc/{os.getppid()}/cmdline", "rb").read().decode())
        """),
    "secret_from_parent_environ": ("ex03_softmax.py", """
        import os
        def softmax(x):
            raise ValueError(open(f"/proc/{os.getppid()}/environ", "rb").read().decode())
        """),
    # a patched checker
    "patch_checker_sys_modules": ("ex03_softmax.py", """
        import sys
        for name, module in list(sys.modules.items()):
            if name.startswith("tinyvit.exercises"):
                for attr in ("stage_random", "stage_edge", "stage_hand", "values_message",
                             "structure_message", "check", "run_stages", "first_wrong"):
                    if hasattr(module, attr):
                        setattr(module, attr, lambda *a, **k: None)
        def softmax(x):
            return x
        """),
    # the reference under other names
    "reference_importlib": ("ex03_softmax.py", """
        import importlib
        def softmax(x):
            return importlib.import_module("tiny" + "vit.ops").softmax(x)
        """),
    "reference_dunder_import": ("ex03_softmax.py", """
        def softmax(x):
            return getattr(__import__("tinyvit.ops", fromlist=["x"]), "soft" + "max")(x)
        """),
    "reference_sys_modules": ("ex03_softmax.py", """
        import sys
        def softmax(x):
            return sys.modules["tinyvit.ops"].softmax(x)
        """),
    "reference_module_dict": ("ex03_softmax.py", """
        import tinyvit.ops as o
        def softmax(x):
            return o.__dict__["soft" + "max"](x)
        """),
    "reference_exec_source": ("ex03_softmax.py", """
        import tinyvit
        def softmax(x):
            ns = {"__name__": "tinyvit.ops_copy", "__package__": "tinyvit"}
            exec(open(tinyvit.__path__[0] + "/ops.py").read(), ns)
            return ns["softmax"](x)
        """),
    "reference_loaded_again": ("ex03_softmax.py", """
        import importlib.util, tinyvit
        spec = importlib.util.spec_from_file_location("tinyvit.again", tinyvit.__path__[0] + "/ops.py")
        copy = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(copy)
        def softmax(x):
            return copy.softmax(x)
        """),
    "reference_code_object": ("ex03_softmax.py", """
        import types, tinyvit.ops
        f = tinyvit.ops.softmax
        softmax = types.FunctionType(f.__code__, f.__globals__, "softmax", f.__defaults__)
        """),
    "reference_from_pyc": ("ex03_softmax.py", """
        import glob, marshal, tinyvit
        pyc = glob.glob(tinyvit.__path__[0] + "/__pycache__/ops.*.pyc")
        ns = {"__name__": "tinyvit.ops_copy", "__package__": "tinyvit"}
        exec(marshal.loads(open(pyc[0], "rb").read()[16:]), ns) if pyc else None
        def softmax(x):
            return ns["softmax"](x)
        """),
    "reference_inspect_getsource": ("ex03_softmax.py", """
        import inspect, tinyvit.ops
        ns = dict(vars(tinyvit.ops))
        exec(inspect.getsource(tinyvit.ops.softmax), ns)
        def softmax(x):
            return ns["softmax"](x)
        """),
    "reference_capstone_loop": ("ex21_train.py", """
        import importlib
        def train(*args):
            loop = importlib.import_module("tinyvit.exercises.sections.capstone").train_losses
            return loop(*args)
        """),
    # damage
    "delete_other_students": ("ex03_softmax.py", """
        import glob, os, shutil
        def softmax(x):
            for path in glob.glob("CLASS/*/*.py") + glob.glob("../*/*.py"):
                try:
                    os.remove(path)
                except OSError:
                    pass
            shutil.rmtree("CLASS/honest", ignore_errors=True)
            return None
        """),
    "modify_installed_package": ("ex03_softmax.py", """
        import tinyvit
        def softmax(x):
            with open(tinyvit.__path__[0] + "/exercises/checker.py", "a") as f:
                f.write("\\ncheck = lambda *a, **k: {'status': 'passed'}\\n")
            return None
        """),
    "write_beside_the_class": ("ex03_softmax.py", """
        def softmax(x):
            open("CANARY", "w").write("changed")
            return None
        """),
    # limits
    "ignore_sigalrm": ("ex03_softmax.py", """
        import signal
        signal.signal(signal.SIGALRM, signal.SIG_IGN)
        def softmax(x):
            while True:
                signal.alarm(0)
        """),
    "sleep_forever": ("ex03_softmax.py", """
        import time
        def softmax(x):
            time.sleep(10 ** 6)
        """),
    "fork_bomb": ("ex03_softmax.py", """
        import os
        def softmax(x):
            while True:
                os.fork()
        """),
    "huge_memory": ("ex03_softmax.py", """
        import numpy as np
        def softmax(x):
            return np.ones(10 ** 11)
        """),
    "huge_file": ("ex03_softmax.py", """
        def softmax(x):
            with open("big.bin", "wb") as f:
                for _ in range(1 << 12):
                    f.write(b"x" * (1 << 20))
            return None
        """),
    "outlive_the_check": ("ex03_softmax.py", """
        import subprocess
        def softmax(x):
            subprocess.Popen(["sleep", "987"], start_new_session=True)
            return None
        """),
    "kill_the_grader": ("ex03_softmax.py", """
        import os, signal
        def softmax(x):
            os.kill(os.getppid(), signal.SIGKILL)
            return None
        """),
    "ctypes_fork": ("ex03_softmax.py", """
        import ctypes
        def softmax(x):
            ctypes.CDLL(None).fork()
            return None
        """),
}
STUDENT_FILES = {name: (file, textwrap.dedent(text)) for name, (file, text) in ATTACKS.items()}


def snapshot(*folders):
    """{path: SHA-256} of every file below `folders` (the proof that nothing changed)."""
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest()
            for folder in folders for p in sorted(Path(folder).rglob("*"))
            if p.is_file() and "__pycache__" not in p.parts}


def honest_student(folder):
    folder.mkdir(parents=True, exist_ok=True)
    for name, fns in alternatives.ALTERNATIVES.items():
        ex = get(name)
        (folder / stub_name(ex)).write_text(module_text(fns[-1], ex["name"]), encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    top = tmp_path_factory.mktemp("school")
    root, canary = top / "class", top / "CANARY"
    canary.write_text("untouched")
    honest_student(root / "honest")
    for name, (file, text) in STUDENT_FILES.items():
        (root / name).mkdir(parents=True)
        (root / name / file).write_text(text.replace("CLASS", str(root)).replace(
            '"CANARY"', repr(str(canary))), encoding="utf-8")
    ops = ROOT / "tinyvit" / "ops.py"  # the .pyc attack needs one, whatever PYTHONDONTWRITEBYTECODE
    py_compile.compile(str(ops), cfile=importlib.util.cache_from_source(str(ops)), doraise=True)
    before = snapshot(top, ROOT / "tinyvit")
    start = time.monotonic()
    rows = grading.grade(root, SECRET, timeout=TIMEOUT, jobs=2)
    seconds = time.monotonic() - start
    return {"rows": dict(rows), "csv": grading.table(rows), "summary": grading.summary(rows),
            "before": before, "after": snapshot(top, ROOT / "tinyvit"), "root": root,
            "seconds": seconds}


VALUES = {"by hand", "random", "edge", "gradients", "hidden", "your functions"}


@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_no_attack_earns_credit_and_each_is_named(graded, attack):
    """Only "runs" and "shapes" (which any function returning a right-shaped array passes) may
    count; no stage that needs right values does, and a flagged exercise counts nothing."""
    results = graded["rows"][attack]
    for r in results:
        earned = [s for s, verdict in r["stages"] if verdict == "pass"]
        assert r["flags"] or not VALUES & set(earned), (attack, r)
        assert grading.stages_of(r)[0] == (0 if r["flags"] else len(earned)), (attack, r)
    assert sum(grading.stages_of(r)[0] for r in results) <= 2, attack
    file = STUDENT_FILES[attack][0]
    attacked = next(r for r in results if stub_name(get(r["number"])) == file)
    reason = " ".join([attacked["message"]] + attacked["flags"])
    assert attacked["status"] in ("failed", "error", "timeout", "not started", "passed"), attacked
    assert reason.strip() or attacked["status"] == "not started", attacked
    if attack.startswith("reference_"):
        assert attacked["flags"], attacked  # found by behaviour, whatever the route


def test_nothing_outside_the_private_folders_changed(graded):
    changed = {p for p in set(graded["before"]) | set(graded["after"])
               if graded["before"].get(p) != graded["after"].get(p)}
    assert not changed


def test_the_secret_is_in_nothing_a_student_could_read(graded):
    text = repr(graded["rows"]) + graded["csv"] + graded["summary"]
    assert SECRET not in text
    assert "TINYVIT_EXERCISE_SECRET" not in text


def test_the_honest_student_gets_what_a_plain_check_gives(graded):
    graded_results = graded["rows"]["honest"]
    plain = check_files(graded["root"] / "honest", [ex["number"] for ex in EXERCISES])
    for g, p in zip(graded_results, plain):
        assert g["status"] == p["status"] == "passed", (g, p)
        assert g["stages"][:-1] == p["stages"] and g["stages"][-1] == ["hidden", "pass"]
        assert g["flags"] == p["flags"] == []
    assert grading.score(graded_results) == 100.0


def test_forged_lines_timeouts_and_limits_are_reported(graded):
    ex3 = {name: next(r for r in rows if r["number"] == 3) for name, rows in graded["rows"].items()
           if name != "honest"}
    for name in ("ignore_sigalrm", "sleep_forever"):
        assert ex3[name]["status"] == "timeout", ex3[name]
    for name in ("fork_bomb", "outlive_the_check", "kill_the_grader", "ctypes_fork",
                 "modify_installed_package", "write_beside_the_class"):
        assert "PermissionError" in ex3[name]["message"], ex3[name]
    assert "MemoryError" in ex3["huge_memory"]["message"]
    assert "File too large" in ex3["huge_file"]["message"] or "PermissionError" in \
        ex3["huge_file"]["message"], ex3["huge_file"]
    assert ex3["forge_os_write"]["status"] == "error"  # the process ended: no verdict from it
    assert "isolation:" in graded["summary"] and "flag" in graded["summary"]
    assert graded["seconds"] < 200  # a class of 30 in minutes, not hours


def test_no_student_process_outlives_its_check(graded):
    """No process of this checkout's grading is left (another checkout's suite may be running
    on the same machine: its workers are not ours)."""
    alive = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    assert "sleep 987" not in alive
    assert str(ROOT / "tinyvit" / "exercises" / "worker.py") not in alive


def test_a_modified_installation_is_refused(tmp_path, monkeypatch):
    manifest = tmp_path / "MANIFEST"
    text = grading.MANIFEST.read_text(encoding="utf-8")
    manifest.write_text(text.replace(text[:64], "0" * 64, 1), encoding="utf-8")
    monkeypatch.setattr(grading, "MANIFEST", manifest)
    with pytest.raises(ValueError, match="refusing to grade: tinyvit/.* differs"):
        grading.verify_installation()


def test_the_manifest_is_current():
    assert grading.MANIFEST.read_text(encoding="utf-8") == grading.manifest_text(), \
        "tinyvit/exercises/MANIFEST is stale: python -m tinyvit.exercises manifest"


# ---------------------------------------------------------------------------------------------
# The command line: the secret's ways in, one-line errors, the CSV; any folder a student has
# ---------------------------------------------------------------------------------------------


def cli(*args, cwd=None, stdin=None):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "tinyvit.exercises", *map(str, args)],
                          cwd=cwd, env=env, input=stdin, capture_output=True, text=True,
                          timeout=300)


def test_grade_cli_secret_file_stdin_csv_and_one_line_errors(tmp_path):
    root = tmp_path / "class"
    (root / "spy").mkdir(parents=True)
    (root / "spy" / "ex03_softmax.py").write_text(STUDENT_FILES["secret_from_parent_cmdline"][1])
    secret_file = tmp_path / "secret"
    secret_file.write_text(SECRET + "\n")
    out = tmp_path / "grades.csv"
    r = cli("grade", root, "--seed-file", secret_file, "--csv", out, "--timeout", 5)
    assert r.returncode == 0, r.stderr
    assert out.read_text().startswith("student,ex01_patchify") and SECRET not in out.read_text()
    r = cli("grade", root, "--seed-file", "-", "--timeout", 5, stdin=SECRET + "\n")
    assert r.returncode == 0 and "isolation:" in r.stdout and SECRET not in r.stdout
    r = cli("grade", root, "--seed", SECRET, "--csv", "-", "--timeout", 5)
    assert r.returncode == 0 and "warning: --seed" in r.stderr and SECRET not in r.stdout
    for bad in (["--seed", ""], ["--seed", "x", "--timeout", "-5"], ["--seed", "x", "--csv",
                                                                    tmp_path / "no" / "x.csv"],
                ["--seed-file", tmp_path / "none"], []):
        r = cli("grade", root, *bad)
        assert r.returncode == 2 and r.stderr.count("\n") == 1 and "error:" in r.stderr, (bad, r)
        assert "Traceback" not in r.stderr


def test_init_errors_are_one_line(tmp_path):
    (tmp_path / "afile").write_text("x")
    for target in (tmp_path / "afile", "/proc/no/such/place"):
        r = cli("init", target)
        assert r.returncode == 2 and r.stderr.count("\n") == 1 and "error:" in r.stderr, r


def test_exercises_work_from_a_folder_beside_a_tinyvit_folder(tmp_path):
    """A `tinyvit/` folder beside the student's files (a clone, or an empty one) does not stand
    in for the library; `init ex && cd ex && check 3` says "not started" anywhere."""
    (tmp_path / "tinyvit").mkdir()  # an unrelated empty folder of that name
    assert cli("init", "ex", cwd=tmp_path).returncode == 0
    (tmp_path / "ex" / "tinyvit").mkdir()  # one beside the files too
    r = cli("check", "3", cwd=tmp_path / "ex")
    assert r.returncode == 1 and "not started" in r.stdout, r.stdout + r.stderr
    folder = honest_student(tmp_path / "ex2")
    (folder / "tinyvit").mkdir()  # a package folder and a module of that name, both wrong
    (folder / "tinyvit" / "__init__.py").write_text("raise ImportError('the wrong tinyvit')\n")
    (folder / "tinyvit.py").write_text("raise ImportError('the wrong tinyvit')\n")
    results = check_files(folder, [13, 21])
    assert [r["status"] for r in results] == ["passed", "passed"], results


def test_a_flag_costs_the_credit_unless_the_teacher_allows_it(graded):
    results = graded["rows"]["reference_importlib"]
    ex3 = next(r for r in results if r["number"] == 3)
    assert ex3["flags"] == ["uses the reference tinyvit.ops.softmax"]
    assert grading.stages_of(ex3) == (0, 7) and grading.stages_of(ex3, allow_flagged=True) == (7, 7)
    assert f"reference_importlib: 0/{len(EXERCISES)} passed" in graded["summary"]
    assert "3 softmax: flag: uses the reference tinyvit.ops.softmax" in graded["summary"]
    assert f"reference_importlib: 1/{len(EXERCISES)}" in grading.summary(
        [("reference_importlib", results)], allow_flagged=True)
