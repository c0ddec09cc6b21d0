"""Errors name parameters as the library spells them; the command line spells its flags.

A library message names a parameter in backquotes, as its caller wrote it:

    `batch_size` 0: expected an integer >= 1

and the command line shows it with its option, `--batch-size 0: ...` (`as_flags`, given the
flags its parser knows). A backquoted name the command line has no flag for stays as written.
A reader that closes the pipe (`... | head`) is not an error (`reader_gone`).
"""
import os
import re
import signal
import sys

PARAMETER = re.compile(r"`([a-z][a-z0-9_]*)`")


def named(name):
    """How a message names the parameter `name`: '`name`'."""
    return f"`{name}`"


def as_flags(message, flags):
    """`message` with every backquoted parameter that `flags` ({name: '--flag'}) holds spelled
    as its flag."""
    return PARAMETER.sub(lambda m: flags.get(m.group(1), m.group(0)), str(message))


def reader_gone():
    """The exit status of a command whose reader closed the pipe (`... | head`): 128 + SIGPIPE,
    as a program killed by the closed pipe would give, and no message, since the reader asked
    for no more output. Standard output goes to the null device so that flushing it at exit
    cannot fail again."""
    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # no file descriptor (a captured stream)
        pass
    return 128 + getattr(signal, "SIGPIPE", 13)  # Windows has no SIGPIPE; POSIX's is 13


def parse_command_line(parser, argv):
    """(args, None), or (None, the exit status) when there is nothing to run: --help (0), a bad
    command line (2, argparse's one line printed) or a reader that closed the pipe."""
    try:
        return parser.parse_args(argv), None
    except SystemExit as e:
        return None, e.code
    except BrokenPipeError:  # `--help | head`
        return None, reader_gone()
