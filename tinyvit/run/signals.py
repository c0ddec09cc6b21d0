"""Stopping signals handled as Ctrl-C is.

SIGTERM (what `kill`, systemd, Slurm and Docker send) and SIGHUP (a closed terminal or SSH
session) raise `Stopped`, a KeyboardInterrupt, inside `as_interrupt()`: a run unwinds exactly as
after Ctrl-C (temporary files removed, the lock released, the line saying which checkpoint is
kept), and the command line exits with 128 + the signal's number, as a shell reports a process
a signal ended: 130 for Ctrl-C (SIGINT), 129 for SIGHUP, 143 for SIGTERM. A second stopping
signal while unwinding is ignored, so the clean-up finishes.
"""
import signal
import threading
from contextlib import contextmanager

HANDLED = ("SIGTERM", "SIGHUP")  # SIGINT already raises KeyboardInterrupt


class Stopped(KeyboardInterrupt):
    """A stopping signal arrived; `signum` says which."""

    def __init__(self, signum):
        super().__init__()
        self.signum = signum


_received = []  # the signal numbers that arrived inside as_interrupt(), first first


def _stop(signum, frame):
    if not _received:
        _received.append(signum)
        raise Stopped(signum)


@contextmanager
def as_interrupt():
    """Within the block, SIGTERM and SIGHUP raise `Stopped` (main thread only: Python delivers
    signals there; elsewhere, and for signals this OS lacks, nothing changes)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _received.clear()
    numbers = [getattr(signal, n) for n in HANDLED if hasattr(signal, n)]
    old = {n: signal.signal(n, _stop) for n in numbers}
    try:
        yield
    finally:
        for n, handler in old.items():
            signal.signal(n, handler)


def received():
    """The stopping signal's number (SIGINT for Ctrl-C, or when none arrived)."""
    return _received[0] if _received else signal.SIGINT


def reason():
    """'interrupted' (Ctrl-C), or 'stopped by SIGTERM' / 'stopped by SIGHUP'."""
    return "interrupted" if received() == signal.SIGINT else \
        f"stopped by {signal.Signals(received()).name}"


def exit_status():
    """128 + the stopping signal's number: 130 (Ctrl-C), 129 (SIGHUP), 143 (SIGTERM)."""
    return 128 + int(received())
