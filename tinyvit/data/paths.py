"""What a path is, checked before it is opened: a regular file is opened only as one, a folder
is walked only as one, and every refusal names the path and what it is instead.

    with open_regular("imgs/train/cat/0.png") as f: ...   # never blocks on a FIFO or device
    for folder, entries in walk("imgs"): ...              # links to folders followed, loops,
                                                          # unreadable folders named

A FIFO opened for reading waits for a writer forever, and a device can be endless, so a file is
opened without blocking and its kind read from the open descriptor (no gap between the check
and the open). Symbolic links are followed: a data set assembled from links to images or to
class folders is common (torchvision's ImageFolder follows them too); a broken link, a link
that loops back to a folder above it, and a folder that cannot be listed are one-line errors.
File names stay as the OS gives them (bytes that are not UTF-8 included, as Python's
surrogate escapes); `shown` writes them printably on one line, with \\xNN for such bytes.
"""
import os
import stat

from .errors import DataError

KINDS = [(stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
         (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a character device"),
         (stat.S_ISBLK, "a block device"), (stat.S_ISREG, "a regular file")]


def shown(text):
    """`text` (a path, a name or a message) printable on one line in UTF-8: undecodable bytes of
    a file name as \\xNN, control characters (a newline in a folder name) as \\n, \\x1b, ..."""
    text = os.fspath(text) if isinstance(text, os.PathLike) else str(text)
    try:
        raw = text.encode("utf-8", "surrogateescape")  # the bytes the OS gave
    except UnicodeEncodeError:  # a lone surrogate that no file name decodes to
        raw = text.encode("utf-8", "backslashreplace")
    return "".join(c if c.isprintable() else repr(c)[1:-1]
                   for c in raw.decode("utf-8", "backslashreplace"))


def kind_of_mode(mode):
    """'a folder', 'a FIFO (named pipe)', ... for an st_mode."""
    return next((text for test, text in KINDS if test(mode)), "a special file")


def kind(path):
    """What is at `path`, in words: 'a regular file', 'a folder', 'a FIFO (named pipe)', 'a
    broken symbolic link', 'nothing there', ... (symbolic links followed)."""
    try:
        return kind_of_mode(os.stat(path).st_mode)
    except FileNotFoundError:
        return "a broken symbolic link" if os.path.islink(path) else "nothing there"
    except OSError as e:
        return f"a path that cannot be examined ({e.strerror})"


def open_regular(path, name=None, expected="a regular file"):
    """Open `path` for reading in binary mode if it is a regular file (links followed), else a
    one-line DataError naming it (`name`, default the path) and what it is instead."""
    name = shown(path if name is None else name)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    except FileNotFoundError:
        raise DataError(f"{name}: expected {expected}, found {kind(path)}") from None
    except OSError as e:
        raise DataError(f"{name}: cannot read ({e.strerror})") from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise DataError(f"{name}: expected {expected}, found {kind_of_mode(mode)}")
    return os.fdopen(fd, "rb")


def read_text(path, name=None):
    """The text of a regular file (`open_regular`), bytes that are not UTF-8 replaced."""
    with open_regular(path, name) as f:
        return f.read().decode("utf-8", "replace")


def list_folder(folder):
    """[(name, os.stat_result)] of a folder's entries, links followed; a one-line DataError for a
    folder that cannot be listed and for a broken link."""
    try:
        entries = list(os.scandir(folder))
    except OSError as e:
        raise DataError(f"{shown(folder)}: cannot list this folder ({e.strerror})") from None
    found = []
    for entry in entries:
        try:
            found.append((entry.name, entry.stat()))
        except OSError as e:
            link = "; a broken symbolic link" if entry.is_symlink() else ""
            raise DataError(f"{shown(entry.path)}: cannot read ({e.strerror}{link})") from None
    return found


def walk(root, descend=lambda rel: True):
    """Yield (folder, [(name, os.stat_result)] of its entries) for `root` and the folders below
    it whose path relative to `root` ('a/b') passes `descend`, top-down, following links to
    folders; a link back to a folder above it is refused."""
    root = os.fspath(root)
    stack = [(root, ())]
    while stack:
        folder, above = stack.pop()
        st = os.stat(folder)
        here = above + ((st.st_dev, st.st_ino),)
        if here[-1] in above:
            raise DataError(f"{shown(folder)}: a symbolic link back to a folder above it (a "
                            f"loop); expected links to folders outside it")
        entries = list_folder(folder)
        yield folder, entries
        stack.extend((os.path.join(folder, n), here) for n, st in reversed(entries)
                     if stat.S_ISDIR(st.st_mode) and descend(os.path.relpath(
                         os.path.join(folder, n), root).replace(os.sep, "/")))
