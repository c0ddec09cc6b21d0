"""The student's process, and the frames by which the grader talks to it.

    python -I -B worker.py PACKAGE FD FOLDER

is started by `sandbox.py` in FOLDER (a private copy of one submission), with the folder holding
the library's own PACKAGE (tinyvit/) first on sys.path (a `tinyvit/` folder beside the student's files cannot stand
in for it) and FD, one end of a socket pair: its only way in or out (stdin, stdout and stderr
are /dev/null). It answers frames: `setup`, then `load` a file, `call` a function on inputs,
`vjp` (a function's value and vector-Jacobian product at inputs and a cotangent, computed here
with autograd), `bye`. Errors go back as data: type, message, the student's line, the
traceback's text. It never sees the teacher's secret, an expected output or a verdict.

What it reports, to the grader, the moment it happens: a call of a wired reference function
(each is recompiled from its source with a first statement that raises an audit event, so
whatever name reached it), a read of its code, and its source or .pyc opened, compiled or
executed. All of it is seen by a PEP 578 audit hook set before any student code runs; it
cannot be removed and looks up nothing a student's code could rebind. The hook also refuses
what no exercise needs: new processes, sockets, ctypes, the garbage collector's referrers,
replacing a reference's code, reading outside the Python installation, the library and
FOLDER, opening folders, changing files outside FOLDER, signalling other processes.

A frame is an 8-byte little-endian length, a 4-byte header length, a JSON header and the
arrays' bytes. Values are None, bools, numbers, strings, lists, tuples, dicts with string keys,
NumPy arrays and scalars of numeric dtypes (dtype, shape and bytes: never a pickle), and the
library's configs and models (rebuilt from the config's fields); anything else a student
returns arrives as a placeholder named by its type. What is read is checked before use: sizes
against LIMIT, dtypes, shapes against the bytes that came. The grader imports this file for the
frames; run as a script it imports only the standard library, NumPy and, once set up, tinyvit.
"""
import dataclasses
import importlib
import importlib.util
import json
import os
import select
import struct
import sys
import time
import types

import numpy as np

LIMIT = 1 << 28  # bytes in one frame: far above any exercise's arrays (kilobytes)
KINDS = "biufc"  # bool, int, uint, float, complex: no objects, no structured dtypes


class ChannelError(Exception):
    """The other side sent something that is not a frame, or went away."""


class Deadline(ChannelError):
    """No frame within the time left."""


class Opaque:
    """What arrives for a value that is not plain data: named by its type, holding nothing."""


def pack(value, blobs):
    """The JSON-able tree of `value`, its arrays' bytes appended to `blobs`."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (np.ndarray, np.generic)) and value.dtype.kind in KINDS:
        data = np.ascontiguousarray(value).tobytes()
        blobs.append(data)
        return ["a" if isinstance(value, np.ndarray) else "s", len(blobs) - 1, value.dtype.str,
                list(np.shape(value))]
    if isinstance(value, tuple) and hasattr(value, "_fields") and hasattr(value, "cfg"):
        return ["m", pack(value.cfg, blobs)]  # a tinyvit.run.models.Model: its config
    if isinstance(value, (list, tuple)):
        return ["l" if isinstance(value, list) else "t", [pack(v, blobs) for v in value]]
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        return ["d", {k: pack(v, blobs) for k, v in value.items()}]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return ["c", type(value).__name__, {f.name: pack(getattr(value, f.name), blobs)
                                            for f in dataclasses.fields(value)}]
    name = type(value).__name__ + (" of objects" if isinstance(value, np.ndarray) else "")
    return ["o", name[:80]]


def unpack(tree, blobs, rebuild=None):
    """The value of a packed tree; `rebuild(kind, name, fields)` makes configs and models."""
    if not isinstance(tree, list):
        if tree is None or isinstance(tree, (bool, int, float, str)):
            return tree
        raise ChannelError(f"unexpected {type(tree).__name__} in a frame")
    tag, rest = (tree[0], tree[1:]) if tree else (None, [])
    if tag in ("a", "s") and len(rest) == 3:
        a = unpack_array(*rest, blobs)
        return a[()] if tag == "s" else a
    if tag in ("l", "t") and len(rest) == 1 and isinstance(rest[0], list):
        items = [unpack(v, blobs, rebuild) for v in rest[0]]
        return items if tag == "l" else tuple(items)
    if tag == "d" and len(rest) == 1 and isinstance(rest[0], dict):
        return {k: unpack(v, blobs, rebuild) for k, v in rest[0].items()}
    if tag == "o" and rebuild is None and len(rest) == 1 and isinstance(rest[0], str):
        return type(rest[0], (Opaque,), {})()
    if tag == "m" and rebuild is not None:
        return rebuild("model", None, unpack(rest[0], blobs, rebuild))
    if tag == "c" and rebuild is not None and isinstance(rest[1], dict):
        return rebuild("config", rest[0], {k: unpack(v, blobs, rebuild) for k, v in rest[1].items()})
    raise ChannelError(f"unexpected tag {str(tag)[:20]!r} in a frame")


def unpack_array(index, dtype, shape, blobs):
    try:
        dtype = np.dtype(dtype)
    except TypeError:
        raise ChannelError(f"refused an array of dtype {str(dtype)[:20]!r}") from None
    if dtype.kind not in KINDS or dtype.hasobject:
        raise ChannelError(f"refused an array of dtype {dtype}")
    if not (isinstance(index, int) and 0 <= index < len(blobs)):
        raise ChannelError("an array without its bytes")
    if not (isinstance(shape, list) and all(isinstance(n, int) and n >= 0 for n in shape)):
        raise ChannelError(f"refused an array of shape {str(shape)[:40]}")
    data = blobs[index]
    if int(np.prod(shape, dtype=np.float64)) * dtype.itemsize != len(data):
        raise ChannelError(f"an array of shape {shape} and dtype {dtype} with {len(data)} bytes")
    return np.frombuffer(data, dtype=dtype).reshape(shape).copy()


def encode(value):
    """The bytes of one frame holding `value`."""
    blobs = []
    header = json.dumps([pack(value, blobs), [len(b) for b in blobs]]).encode()
    body = struct.pack("<I", len(header)) + header + b"".join(blobs)
    if len(body) > LIMIT:
        raise ValueError(f"an answer of {len(body)} bytes: over the limit of {LIMIT}")
    return struct.pack("<Q", len(body)) + body


def decode(body, rebuild=None):
    """The value in a frame's body (without its length)."""
    (n,) = struct.unpack("<I", body[:4]) if len(body) >= 4 else (len(body),)
    try:
        tree, sizes = json.loads(body[4:4 + n].decode())
    except (ValueError, UnicodeDecodeError, TypeError, RecursionError) as e:
        raise ChannelError(f"a frame whose header is not JSON: {e}") from None
    if not isinstance(sizes, list) or not all(isinstance(s, int) and s >= 0 for s in sizes):
        raise ChannelError("a frame with bad array sizes")
    blobs, at = [], 4 + n
    for size in sizes:
        blobs.append(body[at:at + size])
        at += size
    if at != len(body):
        raise ChannelError("a frame whose arrays do not fill it")
    try:
        return unpack(tree, blobs, rebuild)
    except (RecursionError, KeyError, TypeError, ValueError) as e:
        raise ChannelError(f"a frame that does not unpack: {type(e).__name__}") from None


def send(fd, value):
    data = memoryview(encode(value))
    while data:
        data = data[os.write(fd, data):]


def read_exactly(fd, n, deadline):
    chunks, left = [], n
    while left:
        if deadline is not None:
            wait = deadline - time.monotonic()
            if wait <= 0 or not select.select([fd], [], [], wait)[0]:
                raise Deadline("no answer in time")
        chunk = os.read(fd, min(left, 1 << 20))
        if not chunk:
            raise ChannelError("the other side closed the channel")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def receive(fd, deadline=None, rebuild=None):
    """The next frame's value; Deadline past `deadline` (time.monotonic), ChannelError if what
    came is not a frame."""
    (n,) = struct.unpack("<Q", read_exactly(fd, 8, deadline))
    if n > LIMIT:
        raise ChannelError(f"a frame of {n} bytes: over the limit of {LIMIT}")
    return decode(read_exactly(fd, n, deadline), rebuild)


# ---------------------------------------------------------------------------------------------
# The student's process: its state, tripwires and audit hook
# ---------------------------------------------------------------------------------------------

LIBRARY, FD, FOLDER = "", -1, ""  # set by main()
FUNCTIONS = {}   # exercise number: the student's function
MARK = "__tinyvit_reference_"  # the name of the marker function in a wired reference


def wire(module, name, key):
    """Rewrite module.name (or an autograd primitive's function) so that its first statement
    reads the `__code__` of a function named MARK + key: an audited event, seen by the hook
    whatever name reached the reference. Its code is recompiled from its own source, so no
    unwired copy of it is left in this process. True when wired."""
    import ast
    import inspect

    fn = getattr(sys.modules.get(module), name, None)
    fn = getattr(fn, "fun", fn)  # an autograd primitive runs .fun
    if not isinstance(fn, types.FunctionType) or fn.__code__.co_freevars:
        return False
    try:
        lines, first = inspect.getsourcelines(fn)
        tree = ast.parse("".join(lines).lstrip() if lines[0][:1].isspace() else "".join(lines))
    except (OSError, TypeError, SyntaxError):
        return False
    node = tree.body[0]
    if not isinstance(node, ast.FunctionDef):
        return False
    node.decorator_list = []
    marker = ast.parse(f"def {MARK}{key}__():\n    pass\n{MARK}{key}__.__code__\n").body
    docstring = ast.get_docstring(node, clean=False) is not None
    node.body[docstring:docstring] = marker
    ast.increment_lineno(tree, first - 1)
    code = compile(ast.fix_missing_locations(tree), fn.__code__.co_filename, "exec")
    fn.__code__ = next(c for c in code.co_consts if isinstance(c, types.CodeType)
                       and c.co_name == fn.__code__.co_name)
    return True


REFUSED = ("os.fork", "os.forkpty", "os.posix_spawn", "os.spawn", "os.exec", "os.system",
           "subprocess.Popen", "pty.", "socket.", "ctypes.", "gc.get_referrers",
           "gc.get_referents", "gc.get_objects", "sys.setprofile", "sys.settrace",
           "resource.setrlimit", "resource.prlimit", "os.setuid", "os.setgid",
           "mmap.", "sys.addaudithook", "_posixsubprocess", "signal.pthread_kill")
CHANGES = ("os.remove", "os.rename", "os.rmdir", "os.mkdir", "os.chmod", "os.chown", "os.link",
           "os.symlink", "os.truncate", "os.utime", "os.chflags", "os.setxattr",
           "os.removexattr", "shutil.rmtree", "shutil.copy", "shutil.move", "os.mkfifo",
           "os.mknod")
WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND


def inside(path, roots):
    return any(path == r or path.startswith(r.rstrip(os.sep) + os.sep) for r in roots)


def readable_roots():
    """Where the student's process may read: its folder, the library, Python and its packages,
    its own /proc entries and a few devices."""
    roots = {FOLDER, os.path.realpath(os.path.join(LIBRARY, "tinyvit")),
             f"/proc/{os.getpid()}", "/dev/null", "/dev/urandom", "/dev/zero", "/sys/devices"}
    for p in sys.path[1:-1] + [sys.prefix, sys.base_prefix, sys.exec_prefix]:
        if p and os.path.isabs(p):
            roots.add(os.path.realpath(p))
    return tuple(sorted(roots))


def audit_hook(readable, folder, pid, fd, uses, sources, wired):
    """The hook (PEP 578): refuses what no exercise needs, and reports the reference's use.

    It holds from the moment it is set and looks nothing up when it runs: every function and
    name it uses (C functions only: no os.path, no builtins a student's code could rebind) is
    bound here, paths are resolved by `resolve` below, and what it reports is a frame made at
    setup: `uses` {key: frame} for a call of a wired reference (or a read of its code),
    `sources` {path: {verb: frame}} for its source (and .pyc) opened, compiled or executed.
    The grader keeps a report when it concerns the exercise being checked. `wired` holds the
    ids of the wired functions: their code cannot be replaced."""
    import stat

    lstat, readlink, getcwd, fspath, is_link, is_dir, os_stat = (
        os.lstat, os.readlink, os.getcwd, os.fspath, stat.S_ISLNK, stat.S_ISDIR, os.stat)
    is_a, text, denied, failure, write_flags = isinstance, str, PermissionError, OSError, WRITE_FLAGS
    refused, changes, paths, code_type = REFUSED, CHANGES, (str, bytes, os.PathLike), types.CodeType
    write, function, ident, mark, sent = os.write, types.FunctionType, id, MARK, set()

    def report(frame):
        if frame not in sent:
            sent.add(frame)
            view = memoryview(frame)
            while view:
                view = view[write(fd, view):]

    def watched(path, verb):
        frames = sources.get(path)
        if frames is not None:
            report(frames[verb])

    def resolve(path):
        """The absolute path with every link followed (as the kernel will)."""
        path = fspath(path)
        path = "".join([bytes.decode(path, "utf-8", "surrogateescape") if is_a(path, bytes)
                        else path])  # a plain str, whatever subclass came
        todo = [p for p in ((path if path.startswith("/") else getcwd() + "/" + path)
                            .split("/")) if p not in ("", ".")]
        done, links = "", 0
        while todo:
            part = todo.pop(0)
            if part == "..":
                done = done[:done.rfind("/")]
                continue
            candidate = done + "/" + part
            try:
                link = is_link(lstat(candidate).st_mode) and links < 40
            except failure:
                link = False
            if link:
                links += 1
                target = readlink(candidate)
                todo = [p for p in target.split("/") if p not in ("", ".")] + todo
                done = "" if target.startswith("/") else done
            else:
                done = candidate
        return done or "/"

    def within(path, roots):
        for r in roots:
            if path == r or path.startswith(r.rstrip("/") + "/"):
                return True
        return False

    def folder_at(path):
        try:
            return is_dir(os_stat(path).st_mode)
        except failure:
            return False

    def audit(event, args):
        if event == "object.__getattr__" and args[1] == "__code__" and is_a(args[0], function):
            name = args[0].__name__
            if is_a(name, text) and name.startswith(mark):
                report(uses.get(name[len(mark):-2], b""))
            elif ident(args[0]) in wired:
                report(uses.get(wired[ident(args[0])], b""))
            return
        if event == "object.__setattr__" and args[1] == "__code__" and ident(args[0]) in wired:
            raise denied("the exercise's process may not replace the reference's code")
        if event == "tinyvit.request":
            sent.clear()
            return
        if event.startswith(refused):
            raise denied(f"the exercise's process may not use {event}")
        if event in ("os.kill", "os.killpg") and not (is_a(args[0], int) and (
                int.__eq__(args[0], pid) is True or int.__eq__(args[0], 0) is True)):
            raise denied("the exercise's process may not signal other processes")
        if event == "open" and is_a(args[0], paths):
            path = resolve(args[0])
            mode = "".join([args[1]]) if is_a(args[1], text) else ""
            writes = "w" in mode or "a" in mode or "x" in mode or "+" in mode or (
                is_a(args[2], int) and int.__and__(args[2], write_flags))
            if writes and not within(path, (folder, "/dev/null")):
                raise denied(f"the exercise's process may write only in its own folder, "
                             f"not {path}")
            if not within(path, readable):
                raise denied(f"the exercise's process may not read {path}")
            if folder_at(path):  # a folder's descriptor would let dir_fd escape this check
                raise denied(f"the exercise's process may not open the folder {path}")
            watched(path, "opened")
        elif event.startswith(changes):
            for p in args[:2]:
                if is_a(p, paths) and not within(resolve(p), (folder,)):
                    raise denied(f"the exercise's process may change files only in its own "
                                 f"folder ({event})")
        elif event == "compile" and is_a(args[1], (str, bytes)):
            watched(resolve(args[1]), "compiled")
        elif event == "exec" and is_a(args[0], code_type):
            watched(resolve(args[0].co_filename), "executed code of")
    return audit


# ---------------------------------------------------------------------------------------------
# The operations
# ---------------------------------------------------------------------------------------------


def rebuild(kind, name, fields):
    """A config from its fields, or a model from its config (looking its forward up when it
    runs, so that the capstone's library swaps reach it)."""
    from tinyvit import cnn, configs, hybrid, vit
    from tinyvit.run import models

    if kind == "config":
        cls = {"ViTConfig": configs.ViTConfig, "CNNConfig": configs.CNNConfig,
               "HybridConfig": configs.HybridConfig}[name]
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in fields.items()})
    cfg = fields
    module, init = {"ViTConfig": (vit, "init_vit"), "CNNConfig": (cnn, "init_cnn"),
                    "HybridConfig": (hybrid, "init_hybrid")}[type(cfg).__name__]
    forward = init.replace("init_", "")
    return models.Model(cfg.name, cfg, lambda rng: getattr(module, init)(rng, cfg),
                        lambda p, x, train=False, rng=None:
                        getattr(module, forward)(p, x, cfg, train, rng))


def error_of(e):
    """An exception as data: type, message, the student's last line, the traceback's text (with
    the lines of the student's files only: reading the library's would count as opening it)."""
    import linecache

    frames, student, tb = [], None, e.__traceback__
    while tb is not None:
        code, lineno, line = tb.tb_frame.f_code, tb.tb_lineno, ""
        if os.path.isabs(code.co_filename) and inside(os.path.realpath(code.co_filename),
                                                      (FOLDER,)):
            line = linecache.getline(code.co_filename, lineno).strip()
            student = [os.path.basename(code.co_filename), lineno]
        frames.append(f'  File "{code.co_filename}", line {lineno}, in {code.co_name}'
                      + (f"\n    {line}" if line else ""))
        tb = tb.tb_next
    try:
        message = str(e) if not isinstance(e, SyntaxError) else \
            f"{e.msg} ({os.path.basename(e.filename or '')}, line {e.lineno})"
    except BaseException:  # noqa: BLE001 (a student's exception whose str() fails)
        message = "(the error's message could not be read)"
    return {"type": type(e).__name__, "message": message[:2000], "where": student,
            "traceback": "\n".join(["Traceback (most recent call last):"] + frames[-20:]
                                   + [f"{type(e).__name__}: {message[:2000]}"])}


def load(msg):
    path = os.path.join(FOLDER, os.path.basename(msg["file"]))
    spec = importlib.util.spec_from_file_location(f"student_{msg['number']}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    fn = getattr(module, msg["name"], None)
    if not callable(fn):
        return {"missing": msg["name"]}
    FUNCTIONS[msg["number"]] = fn
    return {"ok": True}


def library_of(numbers):
    """A context with the student's functions `numbers` in the library (the capstone's)."""
    from contextlib import ExitStack

    if not numbers:
        return ExitStack()
    from tinyvit.exercises.sections.capstone import students

    return students({n: FUNCTIONS[n] for n in numbers if n in FUNCTIONS})


def call(msg):
    fn, args = FUNCTIONS[msg["number"]], list(msg["args"])
    before = [a.copy() if isinstance(a, np.ndarray) else None for a in args]
    with library_of(msg.get("library") or []):
        value = fn(*args, **msg["kwargs"])
    changed = {str(i): a for i, (b, a) in enumerate(zip(before, args))
               if b is not None and not np.array_equal(a, b, equal_nan=True)}
    return {"value": value, "changed": changed}


def place(args, kwargs, paths, leaves):
    """(args, kwargs) with the leaves at `paths` replaced (containers on the way copied)."""
    root = [list(args), dict(kwargs)]
    for path, leaf in zip(paths, leaves):
        node = root
        for key in path[:-1]:
            node[key] = dict(node[key]) if isinstance(node[key], dict) else list(node[key])
            node = node[key]
        node[path[-1]] = leaf
    return root[0], root[1]


def leaf_at(root, path):
    for key in path:
        root = root[key]
    return root


def vjp(msg):
    from autograd import make_vjp

    fn, args, kwargs, paths = FUNCTIONS[msg["number"]], msg["args"], msg["kwargs"], msg["wrt"]
    leaves = [leaf_at([args, kwargs], p) for p in paths]

    def f(xs):
        a, k = place(args, kwargs, paths, [xs[i] for i in range(len(paths))])
        return fn(*a, **k)

    backward, value = make_vjp(f)(leaves)
    return {"value": value, "grads": list(backward(msg["g"]))}


def setup(msg):
    """Import what the exercises need, wire the references, then set the audit hook."""
    for name in msg["preload"]:
        importlib.import_module(name)
    uses, wired = {}, {}
    for key, (module, name) in enumerate(msg["references"]):
        if wire(module, name, key):
            label = f"{module}.{name}"
            uses[str(key)] = encode({"flag": f"uses the reference {label}", "about": label})
            fn = getattr(sys.modules[module], name)
            wired[id(getattr(fn, "fun", fn))] = str(key)
    sources = {}
    for path in msg["sources"]:
        path = os.path.realpath(path)
        about = os.path.relpath(path, LIBRARY)
        frames = {verb: encode({"flag": f"{verb} {about}, the reference's source",
                                "about": about})
                  for verb in ("opened", "compiled", "executed code of")}
        stem, cache = os.path.splitext(os.path.basename(path))[0], os.path.join(
            os.path.dirname(path), "__pycache__")
        sources[path] = frames
        for tag in (sys.implementation.cache_tag, ):
            for opt in ("", ".opt-1", ".opt-2"):
                sources[os.path.join(cache, f"{stem}.{tag}{opt}.pyc")] = frames
    import linecache

    linecache.clearcache()  # the sources read for wiring are not left in memory
    sys.addaudithook(audit_hook(readable_roots(), FOLDER, os.getpid(), FD, uses, sources,
                                wired))
    sys.modules["__main__"] = types.ModuleType("__main__")  # this file is not the student's
    return {"ok": True, "pid": os.getpid(), "uid": os.getuid()}


OPERATIONS = {"setup": setup, "load": load, "call": call, "vjp": vjp}


def main(argv):
    global LIBRARY, FD, FOLDER
    LIBRARY, FD, FOLDER = os.path.dirname(argv[0]), int(argv[1]), os.path.realpath(argv[2])
    sys.path[:] = [LIBRARY] + [p for p in sys.path if p and os.path.realpath(p) != FOLDER] \
        + [FOLDER]
    sys.dont_write_bytecode = True
    os.chdir(FOLDER)
    while True:
        msg = receive(FD, rebuild=rebuild)
        if msg.get("op") == "bye":
            return 0
        sys.audit("tinyvit.request")  # a new request: reports may repeat
        try:
            reply = OPERATIONS[msg["op"]](msg)
        except BaseException as e:  # noqa: BLE001 (the student's error is the answer)
            reply = {"error": error_of(e)}
        try:
            send(FD, reply)
        except ValueError as e:  # an answer over the frame limit
            send(FD, {"error": error_of(e)})


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
