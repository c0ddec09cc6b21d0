"""A training run's folder: one run at a time, nothing lost, the log always from the checkpoint.

    last.npz        the checkpoint: params, optimiser, RNG, epoch, metadata and the history
                    (the per-epoch metrics rows), replaced atomically after every epoch
    metrics.jsonl   the history as one JSON row per epoch, rewritten from the checkpoint's
                    history right after it is saved (and when a run resumes), never appended to
    .lock           held (fcntl.flock) while a run writes here; removed when it ends
    .last.npz.*.tmp temporary files of a write killed half-way: removed by the next write
    previous-N/     an older run that a new one replaced, moved aside (never deleted)

Because the checkpoint is written first and the log is rebuilt from it, a crash or a full disk
at any moment leaves a log that is the checkpoint's history or one epoch short of it, and the
next `--resume` repairs it. `RunFolder` is the one place that knows this layout.
"""
import json
import os
import stat
from contextlib import contextmanager
from pathlib import Path

from .. import data
from . import checkpoint
from ..support.files import atomic_write
from .validate import check_folder_option

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; runs are then not guarded against each other
    fcntl = None

CKPT, LOG, LOCK = "last.npz", "metrics.jsonl", ".lock"


class RunError(RuntimeError):
    """A run could not write its folder (disk full, permissions); the message names the file."""


class RunFolder:
    """The files of one run folder and what may be done to them."""

    def __init__(self, out):
        self.path = Path(out)
        self.ckpt, self.log, self.lock = (self.path / n for n in (CKPT, LOG, LOCK))
        self.saved_epoch = 0  # the epoch of the checkpoint this run wrote or resumed from

    def holds_run(self):
        """True when a checkpoint or a non-empty metrics log is here."""
        return self.ckpt.exists() or (self.log.exists() and self.log.stat().st_size > 0)

    def move_aside(self):
        """Move the run held here into a new previous-N/ folder; returns that folder."""
        n = 1
        while (self.path / f"previous-{n}").exists():
            n += 1
        dest = self.path / f"previous-{n}"
        dest.mkdir()
        for p in (self.ckpt, self.log):
            if p.exists():
                os.replace(p, dest / p.name)
        return dest

    def save(self, state, epoch, meta, history):
        """Checkpoint first, then the log rewritten from the same history."""
        try:
            checkpoint.save_state(self.ckpt, state["params"], state["opt"], state["rng"], epoch,
                                  meta, history, ema=state.get("ema"))
        except OSError as e:
            raise RunError(f"{self.ckpt}: cannot write ({e.strerror or e}); "
                           f"{self.last_checkpoint()}") from None
        self.saved_epoch = epoch
        self.write_log(history)

    def write_log(self, history):
        """metrics.jsonl := the history, atomically."""
        try:
            with atomic_write(self.log, "w") as f:
                f.writelines(json.dumps(row) + "\n" for row in history)
        except OSError as e:
            raise RunError(f"{self.log}: cannot write ({e.strerror or e}); the checkpoint "
                           f"{self.ckpt} holds the same history (`resume` rewrites the log)") \
                from None

    def read_log(self, epoch):
        """The rows of epochs 1..epoch of metrics.jsonl: for checkpoints older than the history
        they store. Missing rows are left out; a line that is not JSON is an error."""
        if not self.log.exists():
            return []
        rows = []
        for i, line in enumerate(data.read_text(self.log).splitlines(), 1):  # no FIFO
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise ValueError(f"{self.log}:{i}: not a JSON row ({e})") from None
        by_epoch = {r.get("epoch"): r for r in rows if isinstance(r, dict)}
        return [by_epoch[e] for e in range(1, epoch + 1) if e in by_epoch]

    def last_checkpoint(self, good=False):
        """'the last checkpoint is runs/x/last.npz (epoch 3)', or that there is none yet."""
        if self.saved_epoch:
            return (f"the last {'good ' if good else ''}checkpoint is {self.ckpt} "
                    f"(epoch {self.saved_epoch})")
        return f"no checkpoint was written to {self.path}"


def create(path):
    """mkdir -p an --out folder; one-line errors for a file in the way or no permission."""
    check_folder_option("`out`", path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ValueError(f"`out` {path}: cannot create it ({e.strerror or e})") from None


@contextmanager
def locked(folder: RunFolder):
    """Hold the folder's lock file for the `with` block; one-line error when another run does."""
    if fcntl is None:
        yield
        return
    while True:
        try:
            fd = os.open(folder.lock, os.O_RDWR | os.O_CREAT | getattr(os, "O_NONBLOCK", 0),
                         0o644)
        except OSError as e:
            raise ValueError(f"`out` {folder.path}: cannot write there ({e.strerror})") from None
        if not stat.S_ISREG(os.fstat(fd).st_mode):  # a FIFO or device where the lock goes
            os.close(fd)
            raise ValueError(f"`out` {folder.path}: its lock file {LOCK} is "
                             f"{data.kind(folder.lock)}, expected a regular file (remove it)")
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise ValueError(f"`out` {folder.path}: in use by another run (process {holder}); "
                             f"wait for it to end or choose another `out`") from None
        if os.path.exists(folder.lock) and os.path.samestat(os.fstat(fd), os.stat(folder.lock)):
            break
        os.close(fd)  # the file was removed by a run that just ended: lock the new one
    try:
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        yield
    finally:
        folder.lock.unlink(missing_ok=True)
        os.close(fd)


@contextmanager
def open_run(out, resume, replace, log):
    """with open_run(out, ...) as folder: the run folder, created and locked, with a run
    already in it kept: resumed, moved aside (`replace`), or the new run refused (one line
    naming the folder)."""
    folder = RunFolder(out)
    made = [p for p in [folder.path, *folder.path.parents] if not p.exists()]  # deepest first
    create(folder.path)
    try:
        with locked(folder):
            if folder.holds_run() and not (resume and folder.ckpt.exists()):
                if not replace:
                    raise ValueError(f"`out` {folder.path}: holds a run ({describe(folder)}); "
                                     f"use `resume` to continue it, `replace` to start over "
                                     f"(the old run is moved to {folder.path}/previous-N/), or "
                                     f"another `out`")
                log(f"note: moved the run in {folder.path} to {folder.move_aside()}")
            yield folder
    finally:
        for p in made:  # a run that failed before writing leaves no folder it made
            if p.is_dir() and not any(p.iterdir()):
                p.rmdir()


def describe(folder):
    """'last.npz at epoch 3' or 'metrics.jsonl with 3 rows': what a folder holds, briefly."""
    if folder.ckpt.exists():
        try:
            return f"{CKPT} at epoch {checkpoint.load_extra(folder.ckpt).get('epoch', '?')}"
        except ValueError:
            return f"an unreadable {CKPT}"
    return f"{LOG} with {len(data.read_text(folder.log).splitlines())} rows"



def progress_of(path):
    """(finished, 'vit-cifar-nano, epoch 3 of 18, test 61.2%') for a checkpoint file: a run's
    last.npz is finished when it holds every epoch of its recipe; a model file (save_model,
    no epoch stored) is finished. The accuracy is the last epoch's test accuracy, when the
    history (or a `<name>.metrics.jsonl` beside a model file) has one."""
    extra = checkpoint.load_extra(path)
    meta = json.loads(extra["meta"]) if isinstance(extra.get("meta"), str) else {}
    planned = meta.get("hparams", {}).get("epochs")
    name = meta.get("model", {}).get("name", "a model")
    if "epoch" in extra:
        done = int(extra["epoch"])
        rows = json.loads(extra["history"]) if isinstance(extra.get("history"), str) else []
        words = f"epoch {done} of {planned}" if planned else f"epoch {done}"
    else:  # a trained model to share: the log, when there is one, sits beside it
        done = planned
        log = Path(path).with_suffix(".metrics.jsonl")
        rows = [json.loads(line) for line in data.read_text(log).splitlines() if line.strip()] \
            if log.is_file() else []
        words = f"{planned} epochs" if planned else "trained"
    accs = [r.get("test_acc") for r in rows if isinstance(r, dict)]
    if accs and accs[-1] is not None:
        words += f", test {accs[-1]:.1%}"
    finished = planned is None or done is None or done >= planned
    return finished, f"{name}, {words}"


def default_checkpoint(candidates, say):
    """The first finished checkpoint among `candidates` (paths that need not exist), saying in
    one line (through `say`) which one and how far it was trained. An unfinished run (stopped
    by Ctrl-C, say) is passed over, with a line saying so and how to finish or use it: a
    default that silently became a one-epoch model would mislead every later command."""
    for path in map(Path, candidates):
        if not path.is_file():
            continue
        finished, words = progress_of(path)
        if finished:
            say(f"using {path} ({words}; name a checkpoint to use another)")
            return path
        say(f"not using {path}: its run is unfinished ({words}); `python -m tinyvit train "
            f"--resume` finishes it, or name it to use it as it is")
    raise ValueError(f"no finished checkpoint found (looked for "
                     f"{', '.join(map(str, candidates))})")
