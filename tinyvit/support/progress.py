"""A one-line progress display with rate and ETA, for long loops (training, sweeps, decoding).

On a terminal the line updates in place (carriage return); in a log file (not a tty) it prints
a full line at most every `every` seconds, so logs stay readable.
"""
import sys
import time


def format_seconds(s):
    """3725 -> '1:02:05', 65 -> '1:05'."""
    s = int(max(s, 0))
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    return f"{h}:{m:02d}:{sec:02d}" if h else f"{m}:{sec:02d}"


class Progress:
    """progress = Progress(total); progress.update(done, "loss 1.23"); progress.close()."""

    def __init__(self, total, prefix="", stream=None, every=10.0, start_done=0):
        self.total, self.prefix = total, prefix
        self.stream = stream or sys.stderr
        self.tty = getattr(self.stream, "isatty", lambda: False)()
        self.every, self.last_print = every, None  # None: the first update always prints
        self.t0, self.done0 = time.perf_counter(), start_done
        self.width = 0

    def eta(self, done):
        """Seconds left, from the average rate since the start (None before any progress)."""
        elapsed = time.perf_counter() - self.t0
        rate = (done - self.done0) / elapsed if elapsed > 0 else 0.0
        return (self.total - done) / rate if rate > 0 else None

    def update(self, done, message=""):
        """Show `done`/total, the message and the ETA."""
        now = time.perf_counter()
        if (not self.tty and self.last_print is not None and now - self.last_print < self.every
                and done < self.total):
            return
        self.last_print = now
        eta = self.eta(done)
        line = (f"{self.prefix}{done}/{self.total} {message + ' ' if message else ''}"
                f"ETA {format_seconds(eta) if eta is not None else '?'}")
        if self.tty:
            self.stream.write("\r" + line.ljust(self.width))
            self.width = len(line)
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def clear(self):
        """Erase the line on a terminal (in a log, the lines printed stay)."""
        if self.tty and self.width:
            self.stream.write("\r" + " " * self.width + "\r")
            self.stream.flush()
            self.width = 0

    def close(self, message=None):
        """End the line (and print a final message on it, if given)."""
        if self.tty:
            self.stream.write("\r" + (message or "").ljust(self.width) + "\n"
                              if message else "\n")
        elif message:
            self.stream.write(message + "\n")
        self.stream.flush()
