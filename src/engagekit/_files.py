"""Open an input only if it is a regular file.

Opening a named pipe (FIFO) with no writer blocks for ever, ``/dev/zero`` never ends and
``/dev/random`` gives noise: none of them is a data or config file. Every input path is
checked with ``os.stat`` before it is opened, and opened without blocking, so that such a
path is refused at once with a message instead of hanging a command.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import BinaryIO

from .errors import NotARegularFileError

__all__ = ["NotARegularFileError", "file_kind", "open_regular_file", "refuse_special_file"]


def file_kind(mode: int) -> str:
    """What a ``st_mode`` describes, in words ("a regular file", "a named pipe (FIFO)", ...).

    Examples
    --------
    >>> import os
    >>> file_kind(os.stat(".").st_mode)
    'a folder'
    """
    kinds = (
        (stat.S_ISREG, "a regular file"),
        (stat.S_ISDIR, "a folder"),
        (stat.S_ISFIFO, "a named pipe (FIFO)"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    )
    return next((kind for test, kind in kinds if test(mode)), "a special file")


def refuse_special_file(path: Path) -> os.stat_result:
    """``os.stat(path)`` if ``path`` is a regular file (links followed).

    Raises
    ------
    FileNotFoundError
        ``path`` does not exist.
    NotARegularFileError
        ``path`` is a folder, named pipe, device, socket or other special file.
    OSError
        ``path`` cannot be looked at (permissions, a loop of links...).
    """
    info = os.stat(path)
    if not stat.S_ISREG(info.st_mode):
        raise NotARegularFileError(path, file_kind(info.st_mode))
    return info


def open_regular_file(path: Path) -> BinaryIO:
    """Open ``path`` for reading bytes if it is a regular file, never blocking.

    The path is checked before it is opened (opening some devices has effects) and the
    opened file again (the path may have been replaced in between); the open itself does
    not block, so a named pipe swapped in at that moment is refused too.

    Raises
    ------
    FileNotFoundError, NotARegularFileError, OSError
        As :func:`refuse_special_file`.
    """
    refuse_special_file(path)
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise NotARegularFileError(path, file_kind(mode))
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise
