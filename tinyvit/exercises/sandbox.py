"""The grader's side of a check: a student's functions run in a process of their own.

`check_files(folder, numbers)` copies the submission's files into a fresh private folder,
starts `worker.py` there (its own session, resource limits, no secret, as an unprivileged
user when the grader is root) and checks each exercise with `checker.check` in THIS process,
the student's function being a stand-in that sends the inputs over a socket pair and returns
the outputs (arrays and plain data, never a pickle). When autograd traces through the stand-in
(the gradients stage, the capstone's backward pass), it is an autograd primitive whose
vector-Jacobian product is computed in the student's process. An exercise that runs past
`timeout` seconds of wall clock is stopped by killing the student's whole process group, and
the next exercise gets a fresh process. Stages, comparisons, finite differences, diagnosis,
credit and flags are all computed here; the student's process only ever answers calls.

Flags: `imports.flags` reads a file's imports (the reference imported, the answer key, autograd
in a hand-written gradient); the student's process adds what it saw happen.
"""
import ast
import builtins
import linecache
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from autograd.extend import defvjp_argnums, primitive
from autograd.tracer import Box

from . import worker
from .checker import check, new_result
from .imports import flags
from .spec import stub_name

PACKAGE = Path(__file__).resolve().parents[1]  # tinyvit/: the library the child imports
NOBODY = 65534
MEMORY = 4 << 30  # bytes of address space for the student's process
FILE_SIZE = 64 << 20  # bytes: the largest file it may write (in its own folder)
PRELOAD = ("autograd", "autograd.numpy", "tinyvit", "tinyvit.ops", "tinyvit.layers",
           "tinyvit.vit", "tinyvit.cnn", "tinyvit.hybrid", "tinyvit.optim", "tinyvit.tree",
           "tinyvit.configs", "tinyvit.run.models", "tinyvit.run.train")


class Timeout(BaseException):
    """The exercise ran past its time: a BaseException, so no stage can catch it."""


class Ended(BaseException):
    """The student's process ended (or broke the channel) in the middle of a check."""


# ---------------------------------------------------------------------------------------------
# Isolation: who the student's process runs as, and its limits
# ---------------------------------------------------------------------------------------------

_LEVEL = {}


def isolation():
    """(uid to run as or None, one line saying the isolation level), decided once."""
    if "level" not in _LEVEL:
        if os.geteuid() != 0:
            _LEVEL["level"] = (None, f"same user (uid {os.geteuid()}): resource limits, a "
                                     f"private folder, audit hook; files of this user are "
                                     f"protected from Python's file functions only")
        else:
            try:
                runs = subprocess.run([sys.executable, "-I", "-c", "import numpy, autograd"],
                                      preexec_fn=lambda: drop(NOBODY), capture_output=True,
                                      timeout=120).returncode == 0
            except OSError:
                runs = False
            _LEVEL["level"] = (NOBODY, f"separate user (uid {NOBODY}): the student's process "
                                       f"cannot write the grader's files, read its memory or "
                                       f"signal it") if runs else \
                (None, f"same user (root): uid {NOBODY} cannot run {sys.executable} (its "
                       f"folders are not readable to other users); audit hook and limits only")
    return _LEVEL["level"]


def drop(uid):
    os.setgroups([])
    os.setgid(uid)
    os.setuid(uid)


def limited(uid, cpu_seconds):
    """The student's process's preexec: limits it cannot raise, then its user."""
    def preexec():
        for name, value in ((resource.RLIMIT_CPU, cpu_seconds), (resource.RLIMIT_AS, MEMORY),
                            (resource.RLIMIT_FSIZE, FILE_SIZE), (resource.RLIMIT_CORE, 0),
                            (resource.RLIMIT_NPROC, 0)):
            try:
                resource.setrlimit(name, (value, value))
            except (ValueError, OSError):  # a limit this OS will not lower (macOS's RLIMIT_AS)
                pass
        if uid is not None:
            drop(uid)
    return preexec


def private_copy(folder):
    """A fresh temporary folder holding copies of the submission's .py files (regular files
    only: links and folders stay behind)."""
    where = Path(tempfile.mkdtemp(prefix="tinyvit-check-"))
    for path in sorted(Path(folder).glob("*.py")):
        if path.is_file() and not path.is_symlink() and path.stat().st_size < FILE_SIZE:
            shutil.copyfile(path, where / path.name)
    uid = isolation()[0]
    if uid is not None:
        for p in [where, *where.iterdir()]:
            os.chown(p, uid, uid)
    return where


# ---------------------------------------------------------------------------------------------
# A session: one student's process and the calls it answers
# ---------------------------------------------------------------------------------------------


def references(ex):
    """[(module, name)] of the library functions whose use the exercise flags (their fast
    twins too)."""
    import importlib

    out = []
    for target in ex["targets"]:
        module = sys.modules.get(getattr(target, "__module__", ""))
        for name in ex["forbid"]:
            if module is not None and callable(getattr(module, name, None)):
                out.append((module.__name__, name))
                twin = f"tinyvit.fast.{module.__name__.rsplit('.', 1)[-1]}"
                if importlib.util.find_spec(twin) and callable(
                        getattr(importlib.import_module(twin), name, None)):
                    out.append((twin, name))
    return sorted(set(out))


class Session:
    """A student's process for the exercises `numbers` of a private folder."""

    def __init__(self, folder, numbers, timeout):
        from .registry import get

        self.folder, self.timeout, self.flags, self.watching = Path(folder), timeout, [], set()
        self.exercises = [get(n) for n in numbers]
        self.process, self.sock, self.deadline, self.loaded = None, None, None, set()
        capstone = any(ex["name"] == "train" for ex in self.exercises)
        refs = {ex["number"]: [r for r in references(ex) if capstone or ".exercises" not in r[0]]
                for ex in self.exercises}
        files = {n: {sys.modules[m].__file__ for m, _ in r} for n, r in refs.items()}
        self.about = {n: {f"{m}.{name}" for m, name in refs[n]}
                      | {os.path.relpath(f, PACKAGE.parent) for f in files[n]} for n in refs}
        self.setup = {"op": "setup", "references": sorted({r for rs in refs.values() for r in rs}),
                      "sources": sorted({f for fs in files.values() for f in fs}),
                      "preload": sorted(set(PRELOAD) | {m for rs in refs.values() for m, _ in rs}
                                        | ({"tinyvit.exercises.sections.capstone"} if capstone
                                           else set()))}

    def start(self):
        uid, _ = isolation()
        mine, theirs = socket.socketpair()
        env = {"PATH": os.defpath, "HOME": str(self.folder), "TMPDIR": str(self.folder),
               "LANG": "C.UTF-8", "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1",
               "MKL_NUM_THREADS": "1"}
        cpu = int(self.timeout * (len(self.exercises) + 2)) + 30
        self.process = subprocess.Popen(
            [sys.executable, "-I", "-B", worker.__file__, str(PACKAGE), str(theirs.fileno()),
             str(self.folder)], cwd=self.folder, env=env, stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, pass_fds=[theirs.fileno()],
            start_new_session=True, preexec_fn=limited(uid, cpu))
        theirs.close()
        self.sock, self.loaded = mine, set()
        try:
            answer = self.request(self.setup, deadline=time.monotonic() + max(60, self.timeout))
        except (Ended, Timeout) as e:  # no student code has run yet: the installation's fault
            answer = {"error": {"type": type(e).__name__, "message": str(e) or "no answer"}}
        if "error" in answer:
            self.stop()
            raise ValueError(f"the checking process did not start ({sys.executable} "
                             f"{worker.__file__}): {answer['error']['type']}: "
                             f"{first_line(answer['error']['message'])}")

    def request(self, msg, deadline=None):
        """The answer to `msg`; flags sent meanwhile are kept. Timeout past the deadline."""
        try:
            worker.send(self.sock.fileno(), msg)
            while True:
                answer = worker.receive(self.sock.fileno(), deadline or self.deadline)
                if not isinstance(answer, dict):
                    raise worker.ChannelError("an answer that is not a frame of ours")
                if "flag" not in answer:
                    return answer
                if answer.get("about") in self.watching:  # about the exercise being checked
                    self.flags.append(str(answer["flag"])[:300])
        except worker.Deadline:
            self.stop()
            raise Timeout() from None
        except (worker.ChannelError, OSError, TypeError, ValueError) as e:
            raise self.broken(e) from None

    def broken(self, why):
        """Ended, after stopping the process: it crashed, exited, or wrote on the channel."""
        code = self.stop()
        return Ended(f"your code ended or broke the checking process (exit status {code}; "
                     f"os._exit, a crash, memory over {MEMORY >> 30} GiB, or writing on its "
                     f"channel?): {why}")

    def stop(self):
        """Kill the student's process group; its exit status."""
        if self.process is None:
            return None
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        code = self.process.wait()
        self.sock.close()
        self.process = None
        return code

    def begin(self, ex):
        """Start the exercise's clock (and a process, if none is running)."""
        self.deadline, self.flags = time.monotonic() + self.timeout, []
        self.watching = self.about.get(ex["number"], set())
        if self.process is None:
            self.start()

    def load(self, ex):
        """The student's function of `ex` as a stand-in, or a result saying why there is none."""
        answer = self.request({"op": "load", "number": ex["number"], "file": stub_name(ex),
                               "name": ex["name"]})
        if "error" in answer:
            e = answer["error"]
            return new_result(ex, "error", f"your file {stub_name(ex)} does not run: "
                                           f"{e['type']}: {first_line(e['message'])}"
                                           + (f" (line {e['where'][1]})" if e["where"] else ""))
        if "missing" in answer:
            return new_result(ex, "error", f"{stub_name(ex)} defines no function {ex['name']}")
        self.loaded.add(ex["number"])
        return stand_in(self, ex)

    def call(self, number, args, kwargs, library=()):
        paths = boxed((list(args), dict(kwargs)))
        if paths:
            return self.traced(number, list(args), dict(kwargs), paths)
        answer = self.request({"op": "call", "number": number, "args": list(args),
                               "kwargs": dict(kwargs), "library": list(library)})
        raise_if_error(answer, self.folder)
        if "value" not in answer or not isinstance(answer.get("changed", {}), dict):
            raise self.broken("an answer without a value")
        for i, found in answer.get("changed", {}).items():  # written in place, there and here
            mine = args[int(i)] if int(i) < len(args) else None
            if isinstance(mine, np.ndarray) and isinstance(found, np.ndarray) and \
                    mine.shape == found.shape and mine.flags.writeable:
                np.copyto(mine, found, casting="unsafe")
        return answer["value"]

    def traced(self, number, args, kwargs, paths):
        """The call as an autograd primitive over the traced leaves: its VJP comes from the
        student's process."""
        def forward(*leaves):
            a, k = worker.place(args, kwargs, paths, leaves)
            return self.call(number, a, k)

        def vjp_maker(argnums, ans, leaves, _):
            def vjp(g):
                a, k = worker.place(args, kwargs, paths, leaves)
                answer = self.request({"op": "vjp", "number": number, "args": a, "kwargs": k,
                                       "wrt": [list(p) for p in paths], "g": g})
                raise_if_error(answer, self.folder)
                grads = answer.get("grads")
                if not isinstance(grads, list) or len(grads) != len(paths):
                    raise self.broken("an answer without its gradients")
                return tuple(grads[i] for i in argnums)
            return vjp

        f = primitive(forward)
        defvjp_argnums(f, vjp_maker)
        return f(*[worker.leaf_at([args, kwargs], p) for p in paths])

    def close(self):
        if self.process is not None:
            try:
                worker.send(self.sock.fileno(), {"op": "bye"})
            except OSError:
                pass
        self.stop()


def boxed(root, path=()):
    """Paths to the autograd boxes in nested lists, tuples and dicts."""
    if isinstance(root, Box):
        return [path]
    items = root.items() if isinstance(root, dict) else \
        enumerate(root) if isinstance(root, (list, tuple)) else ()
    return [p for k, v in items for p in boxed(v, path + (k,))]


def first_line(text):
    return (str(text).strip().splitlines() or [""])[0]


def raise_if_error(answer, folder):
    """Raise the student's exception here, at the student's line (for `raised`), as its own
    type when that is a built-in one (for the diagnosis, which compares types)."""
    if "error" not in answer:
        return
    e = answer["error"]
    kind = getattr(builtins, str(e["type"]), None)
    try:
        assert isinstance(kind, type) and issubclass(kind, Exception)
        error = kind(e["message"])
    except (AssertionError, TypeError):
        error = type(str(e["type"])[:80], (Exception,), {"__module__": "student"})(e["message"])
    error.type_name, error.message, error.traceback_text = e["type"], e["message"], e["traceback"]
    if e.get("where"):
        name, lineno = e["where"]
        path = str(Path(folder) / Path(str(name)).name)
        exec(compile("\n" * (int(lineno) - 1) + "raise error", path, "exec"), {"error": error})
    raise error


def stand_in(session, ex):
    """A function that calls the student's `ex` in the session; inspect finds the student's
    source for it (the file's text, read here, never imported)."""
    number = ex["number"]
    capstone = ex["name"] == "train"

    def student(*args, **kwargs):
        return session.call(number, args, kwargs, in_library(session) if capstone else ())

    path = session.folder / stub_name(ex)
    try:
        text = path.read_text(encoding="utf-8")
        line = next(n.lineno for n in ast.parse(text).body
                    if isinstance(n, ast.FunctionDef) and n.name == ex["name"])
        linecache.cache[str(path)] = (len(text), None, text.splitlines(True), str(path))
        student.__code__ = student.__code__.replace(co_filename=str(path), co_firstlineno=line)
    except (OSError, SyntaxError, ValueError, StopIteration):
        pass
    student.__name__ = student.__qualname__ = ex["name"]
    student.__module__ = f"student_{number}"
    return student


def in_library(session):
    """The exercises whose stand-ins the capstone has put into the library right now: the
    student's process puts the student's own functions in the same places."""
    from .registry import EXERCISES

    out = []
    for ex in EXERCISES:
        if ex["patch"] and ex["number"] in session.loaded:
            current = getattr(ex["patch"][0], ex["patch"][1])
            if getattr(getattr(current, "fun", current), "__module__", "").startswith(
                    "tinyvit.exercises"):
                out.append(ex["number"])
    return out


# ---------------------------------------------------------------------------------------------
# Checking a folder
# ---------------------------------------------------------------------------------------------


def check_files(folder, numbers, secret=None, timeout=60):
    """Results for the exercises `numbers`, from the student's files in `folder`."""
    if not Path(folder).is_dir():
        raise ValueError(f"no folder {folder}: python -m tinyvit.exercises init {folder} "
                         f"writes the exercises there")
    from .registry import EXERCISES, get

    capstone = [ex["number"] for ex in EXERCISES if ex["name"] == "train"]
    order = [ex["number"] for ex in EXERCISES] if set(numbers) & set(capstone) else list(numbers)
    where = private_copy(folder)
    session, passed, results = Session(where, order, timeout), {}, {}
    try:
        for number in order:
            ex = get(number)
            if ex["name"] == "train":
                reload(session, ex, passed)
            result, fn = check_one(session, ex, secret, passed, where)
            if result["status"] == "passed" or result["stage"] == "hidden":
                passed[number] = fn  # what the student sees pass (the hidden stage aside)
            results[number] = result
    finally:
        session.close()
        shutil.rmtree(where, ignore_errors=True)
    return [plain(results[n]) for n in numbers]


def reload(session, capstone, passed):
    """Before the capstone: the passed functions loaded in the (maybe fresh) process."""
    from .registry import get

    try:
        session.begin(capstone)
        for number in sorted(passed):
            if number not in session.loaded:
                passed[number] = session.load(get(number))
    except (Timeout, Ended):
        pass
    for number in [n for n, fn in passed.items() if not callable(fn)]:
        del passed[number]


def check_one(session, ex, secret, passed, where):
    """(result, the stand-in or None) for one exercise."""
    path = where / stub_name(ex)
    if not path.exists():
        return new_result(ex, "missing", f"no file {path.name} here: python -m tinyvit.exercises "
                                         f"init writes it"), None
    source = path.read_text(encoding="utf-8", errors="replace")  # before the student's code runs
    try:
        session.begin(ex)
        fn = session.load(ex)
        if isinstance(fn, dict):  # a result: the file did not load
            fn["flags"] = sorted(set(session.flags))
            return fn, None
        result = check(ex, fn, secret, passed)
    except Timeout:
        return new_result(ex, "timeout", f"stopped after {session.timeout} s: an endless loop, "
                                         f"or a very slow function?"), None
    except Ended as e:
        return new_result(ex, "error", str(e)), None
    result["flags"] = sorted(set(flags(source, ex)) | set(session.flags))
    return result, fn


def plain(result):
    """A result as plain data (stage pairs as lists), as the CSV and the reports read it."""
    return {**result, "stages": [list(s) for s in result["stages"]]}
