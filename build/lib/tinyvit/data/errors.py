"""The errors a user can cause with data files, and how their messages stay on one line."""


class DataError(ValueError):
    """A data file is missing, corrupt, unsafe or not in the expected layout (one-line message)."""


class DownloadError(DataError):
    """An official archive could not be downloaded (offline, server down)."""


def one_line(e):
    """An exception's message on one line (for messages built from library errors)."""
    return " ".join(str(e).split()) or type(e).__name__
