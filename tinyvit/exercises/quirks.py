"""Autograd's quirks, named: errors that come from tracing, not from the student's formula.

autograd traces a function by passing ArrayBoxes through it. A few things NumPy allows do
not work on a box, and the error autograd raises then says little about the cause. `quirk`
reads an error as three strings, its type name, its message and its traceback text (so that
it works the same on an error that crossed a process boundary), and returns what happened
and the one-line fix, or None for an error that is not one of these.

`tolerated()` makes two quirks go away while a check differentiates, because they reject
correct answers: NumPy's `x.transpose(0, 2, 1)` (autograd's ArrayBox.transpose takes the
axes as one tuple) and `np.pad(x, widths)` without a mode (autograd's gradient of pad needs
it). Inside the block both trace, and the block records which was used, so that the check
accepts the answer and says what autograd alone would do with it.
"""
import re
from contextlib import contextmanager

import autograd.numpy as anp
from autograd.numpy.numpy_boxes import ArrayBox

# (pattern on "TypeName: message\ntraceback", what happened, the fix); the first match wins
QUIRKS = (
    (r"pad_vjp\(\) missing 1 required positional argument: 'mode'",
     "autograd's gradient of np.pad needs the mode spelled out", "np.pad(x, widths, 'constant')"),
    (r"TypeError: transpose\(\) takes from 1 to 2 positional arguments",
     "autograd's ArrayBox.transpose takes the axes as one tuple, unlike NumPy's "
     "x.transpose(a, b, ...)", "write x.transpose((a, b, ...)) or np.transpose(x, (a, b, ...))"),
    (r"does not support item assignment",
     "an in-place write (x[...] = value) into an array computed from the inputs: autograd "
     "cannot trace writes into its arrays",
     "build the result from pieces instead (np.concatenate, np.stack, np.where)"),
    (r"ValueError: setting an array element with a sequence",
     "a traced value was written into a plain NumPy array (out[i] = ..., np.float32(...), "
     "np.array(..., dtype=float)): autograd cannot follow a value into an array it did not make",
     "collect the pieces in a list and np.stack them (autograd.numpy), or keep the array "
     "operation whole"),
    (r"argument must be a string or a (real )?number, not 'ArrayBox'|"
     r"int\(\) argument must be .* not 'ArrayBox'",
     "float() or int() of a value autograd traces turns it into a plain number, cutting the "
     "gradient", "keep it an array (leave out float(...) around a computed value)"),
    (r"'ArrayBox' object has no attribute '(\w+)'",
     "autograd's traced arrays have no .{0}() method", "use the function form np.{0}(x) where "
     "NumPy has one, or leave it out (.copy() is not needed without in-place writes; .item() "
     "would cut the gradient)"),
    (r"VJP of (\w+) wrt argnums .* not defined",
     "autograd has no gradient for np.{0} of a traced value",
     "use another function (np.array for np.asarray, arithmetic for the rest)"),
    (r"loop of ufunc does not support argument \d+ of type ArrayBox|"
     r"ArrayBox.* has no callable (\w+) method",
     "plain NumPy was called on a traced array", "import autograd.numpy as np"),
)


def quirk(type_name, message, traceback_text=""):
    """(what happened, fix) for an error autograd's tracing causes, or None."""
    text = f"{type_name}: {message}\n{traceback_text}"
    for pattern, what, fix in QUIRKS:
        found = re.search(pattern, text)
        if found:
            groups = [g for g in found.groups() if g]
            return what.format(*groups), fix.format(*groups)
    return None


def quirk_message(type_name, message, traceback_text="", values_right=True):
    """The gradients stage's message for an error autograd raised while tracing."""
    named = quirk(type_name, message, traceback_text)
    first = (message.strip().splitlines() or [""])[0]
    right = "your values are right on every case, but " if values_right else ""
    if named is None:
        return (f"{right}autograd could not differentiate your function: {type_name}: {first} "
                f"(autograd traces it with arrays of its own: autograd.numpy functions work on "
                f"them, plain NumPy, in-place writes and float(...) do not)")
    what, fix = named
    return f"{right}autograd cannot trace your function: {what}. Fix: {fix}"


class Accepted:
    """What a `tolerated()` block saw: the quirks' names, in the order first used."""

    def __init__(self):
        self.used = []

    def saw(self, name):
        if name not in self.used:
            self.used.append(name)


def _transpose(record, original):
    def transpose(self, *axes):
        if len(axes) > 1:
            record.saw("varargs transpose")
            return anp.transpose(self, axes)
        return original(self, *axes)
    return transpose


def _pad(record, original):
    def pad(array, pad_width, mode=None, **kwargs):
        if mode is None:
            record.saw("pad without a mode")
            mode = "constant"
        return original(array, pad_width, mode, **kwargs)
    return pad


@contextmanager
def tolerated():
    """Inside the block two correct spellings that autograd cannot trace are traced: NumPy's
    x.transpose(a, b, ...) and np.pad(x, widths) without a mode (autograd's gradient of pad
    needs the mode). Yields an `Accepted` that records which were used."""
    record = Accepted()
    changes = [(ArrayBox, "transpose", _transpose(record, ArrayBox.transpose)),
               (anp, "pad", _pad(record, anp.pad))]
    old = [(owner, name, getattr(owner, name)) for owner, name, _ in changes]
    for owner, name, value in changes:
        setattr(owner, name, value)
    try:
        yield record
    finally:
        for owner, name, value in old:
            setattr(owner, name, value)


NOTES = {
    "varargs transpose": "x.transpose(a, b, ...) with the axes as separate arguments is right "
    "NumPy, and the check accepts it; autograd's own ArrayBox.transpose does not (outside the "
    "checker it raises TypeError): x.transpose((a, b, ...)) works in both",
    "pad without a mode": "np.pad(x, widths) is right NumPy, and the check accepts it; "
    "autograd's gradient of np.pad needs the mode (outside the checker it raises TypeError "
    "pad_vjp() missing 'mode'): np.pad(x, widths, 'constant') works in both",
}
