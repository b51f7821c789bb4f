"""Write results: tables to CSV or Parquet (chosen by the file extension), JSON
documents, text documents such as an HTML report or a Markdown model card, and figures.

Every file is written under a temporary name unique to the call, in the same folder,
and renamed into place only when complete (``os.replace``): a write that fails or is
killed leaves the final name as it was (absent, or the previous complete file), never
empty or half-written, and two writers never share a temporary file. The temporary
file (``.NAME.XXXXXXXX.partial``) is locked by its writer while it is open; the next
write of ``NAME`` deletes those that no live writer holds, the leftovers of a run that
was killed (``kill -9``, power loss) before it could clean up.

:func:`check_writable` tries a location at the start of a command, so that an output
that cannot be written is refused in a second, not after minutes of computing.

Text cells a spreadsheet would run as a formula are neutralised in every CSV written
(:func:`escape_formula_cells`, the OWASP rule for CSV injection): a cell beginning with
``=``, ``+``, ``-``, ``@``, a tab or a carriage return gets a leading ``'``, unless it is
a number. Parquet keeps the raw values.
"""

from __future__ import annotations

import contextlib
import csv
import glob
import json
import os
import re
import stat
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ..errors import OutputError

if TYPE_CHECKING:
    from matplotlib.figure import Figure

try:  # POSIX; elsewhere the leftovers of a killed run stay until deleted by hand
    import fcntl
except ImportError:  # pragma: no cover - Windows
    # mypy types the name as the module; None marks it missing, checked before each use
    fcntl = None  # type: ignore[assignment]

__all__ = [
    "atomic_path",
    "check_writable",
    "escape_formula_cells",
    "write_figure",
    "write_json",
    "write_table",
    "write_text",
]

_COMPRESSION = {".gz": "gzip", ".bz2": "bz2", ".zip": "zip", ".xz": "xz", ".zst": "zstd"}
# mkstemp makes files readable by their owner only; the final file gets the usual
# permissions (as open() would give it), read once here
_UMASK = os.umask(0o022)
os.umask(_UMASK)
# what a spreadsheet runs as a formula when a cell begins with it (OWASP, CSV injection)
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
# a cell that is a number ("-5", "+3.5", "-1e-3") is left as it is, though it begins
# with a sign: a spreadsheet reads it as that number
_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")


def _missing_folders(folder: Path) -> list[Path]:
    """``folder`` and those of its parents that do not exist yet, deepest first."""
    missing = []
    while not folder.exists() and folder != folder.parent:
        missing.append(folder)
        folder = folder.parent
    return missing


def _remove_empty(folders: list[Path]) -> None:
    """Remove ``folders`` (deepest first) while they are empty."""
    for folder in folders:
        try:
            folder.rmdir()
        except OSError:  # not empty (another file is in it), already gone, or not a folder
            return


def _file_in_the_way(folder: Path) -> Path | None:
    """The nearest existing ``folder`` or parent of it, if it is not a folder."""
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return None if folder.is_dir() else folder


def _same_file(handle: int, name: str) -> bool:
    try:
        return os.stat(name).st_ino == os.fstat(handle).st_ino
    except OSError:
        return False


def _remove_leftovers(path: Path) -> None:
    """Delete the temporary files of ``path`` that no live writer holds: those of runs
    killed before they could delete them (a writer holds its own locked)."""
    if fcntl is None:  # pragma: no cover - Windows
        return
    pattern = f".{glob.escape(path.name)}.*.partial"
    # never blocks on a pipe, nor follows a link, that merely has such a name
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0)
    for leftover in path.parent.glob(pattern):
        try:
            handle = os.open(leftover, flags)
        except OSError:  # deleted meanwhile, a link, or not ours to read
            continue
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            # unlocked, so its writer is gone; unless it was replaced since it was opened
            if stat.S_ISREG(os.fstat(handle).st_mode) and _same_file(handle, str(leftover)):
                leftover.unlink()
        except OSError:  # held by a live writer, or deleted by another run
            pass
        finally:
            os.close(handle)


def _new_partial(path: Path) -> tuple[Path, int]:
    """A new empty temporary file beside ``path``, with the usual permissions, and an
    open descriptor holding its lock: close it once the file is renamed or deleted.

    Raises ``OSError``.
    """
    _remove_leftovers(path)
    while True:
        handle, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".partial")
        try:
            # mkstemp makes files readable by their owner only
            os.chmod(name, 0o666 & ~_UMASK)
            if fcntl is None:  # pragma: no cover - Windows
                return Path(name), handle
            try:
                fcntl.flock(handle, fcntl.LOCK_EX)
            except OSError:  # a file system without locks: no cleaning can take it
                return Path(name), handle
        except BaseException:
            os.close(handle)
            with contextlib.suppress(OSError):
                os.unlink(name)
            raise
        # another run's cleaning may have taken it for a leftover between mkstemp and
        # the lock: then take another name
        if _same_file(handle, name):
            return Path(name), handle
        os.close(handle)


def check_writable(path: str | Path, *, what: str | None = None) -> None:
    """Refuse now, not after minutes of computing, a file that cannot be written.

    ``path``'s folder is made if needed, a temporary file is created in it and
    deleted, and the folders made for it are removed again (the command makes them
    when it writes), so the file system is left as it was.

    Parameters
    ----------
    path : str or Path
        The file to be written.
    what : str, optional
        How the message names it (default: the path, quoted).

    Raises
    ------
    OutputError
        ``path`` is a folder, a parent of it is a file, or the folder cannot be made
        or written to; the message names ``path``.

    Examples
    --------
    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> check_writable(folder / "new" / "scores.csv")
    >>> sorted(folder.iterdir())
    []
    >>> _ = (folder / "notes.txt").write_text("a file")
    >>> check_writable(folder / "notes.txt" / "scores.csv")
    Traceback (most recent call last):
    ...
    engagekit.errors.OutputError: cannot write '.../notes.txt/scores.csv': '.../notes.txt' is a file, not a folder
    """  # noqa: E501
    path = Path(path)
    what = what or repr(str(path))
    if path.is_dir():
        raise OutputError(f"cannot write {what}: it is a folder; give a file name")
    blocker = _file_in_the_way(path.parent)
    if blocker is not None:
        raise OutputError(f"cannot write {what}: {str(blocker)!r} is a file, not a folder")
    missing = _missing_folders(path.parent)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        probe, handle = _new_partial(path)
        try:
            probe.unlink()
        finally:
            os.close(handle)
    except OSError as e:
        raise OutputError(f"cannot write {what}: {e.strerror or e}") from e
    finally:
        _remove_empty(missing)


def _is_formula(text: str) -> bool:
    """Whether a spreadsheet would run this text cell as a formula."""
    return text.startswith(_FORMULA_START) and _NUMBER.fullmatch(text) is None


def _formula_cells(column: pd.Series) -> np.ndarray:
    """Which cells of ``column`` are text a spreadsheet would run as a formula."""
    values = column.to_numpy(dtype=object)
    if isinstance(column.dtype, pd.StringDtype):
        # most cells begin with none of the characters: find the others at C speed
        starts = column.str.startswith(_FORMULA_START).fillna(False).to_numpy(dtype=bool)
        cells = np.zeros(len(values), dtype=bool)
        cells[starts] = [_is_formula(text) for text in values[starts]]
        return cells
    if column.dtype == object or isinstance(column.dtype, pd.CategoricalDtype):
        # only text: a number held in an object column is written as a number
        return np.array([isinstance(v, str) and _is_formula(v) for v in values], dtype=bool)
    return np.zeros(len(values), dtype=bool)


def escape_formula_cells(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with every text cell a spreadsheet would run as a formula neutralised.

    A text cell (or column name) beginning with ``=``, ``+``, ``-``, ``@``, a tab or a
    carriage return gets a leading ``'`` (the OWASP rule against CSV injection), so a
    spreadsheet shows it as text instead of running it. Numbers are untouched: numeric
    columns, and text that is a number (``"-5"``, ``"+3.5"``, ``"-1e-3"``). Every CSV
    engagekit writes is escaped so, unless asked not to; Parquet files and databases
    keep the raw values.

    Examples
    --------
    >>> frame = pd.DataFrame({"patient_id": ["=1+2", "P1", "-5", "-P2"], "risk": [-0.5, 0, 1, 1]})
    >>> escape_formula_cells(frame)
      patient_id  risk
    0      '=1+2  -0.5
    1         P1   0.0
    2         -5   1.0
    3       '-P2   1.0
    """
    escaped = {}
    for index, (_name, column) in enumerate(frame.items()):
        cells = _formula_cells(column)
        if cells.any():
            values = column.to_numpy(dtype=object, copy=True)
            values[cells] = [f"'{text}" for text in values[cells]]
            escaped[index] = pd.Series(values, index=frame.index, dtype=object)
    names = [
        f"'{name}" if isinstance(name, str) and _is_formula(name) else name
        for name in frame.columns
    ]
    if not escaped and names == list(frame.columns):
        return frame
    out = frame.copy()
    for index, column in escaped.items():
        out.isetitem(index, column)
    out.columns = names
    return out


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """A temporary path beside ``path``; renamed to ``path`` when the block succeeds,
    deleted when it fails.

    Raises
    ------
    OutputError
        The folder cannot be made or the file cannot be written; nothing is left at
        ``path`` that was not there before.

    Examples
    --------
    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> with atomic_path(folder / "a.txt") as partial:
    ...     _ = partial.write_text("complete")
    >>> (folder / "a.txt").read_text(), sorted(p.name for p in folder.iterdir())
    ('complete', ['a.txt'])
    >>> with atomic_path(folder / "b.txt") as partial:
    ...     _ = partial.write_text("half")
    ...     raise RuntimeError("stopped halfway")
    Traceback (most recent call last):
    ...
    RuntimeError: stopped halfway
    >>> sorted(p.name for p in folder.iterdir())
    ['a.txt']
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial, handle = _new_partial(path)
    except OSError as e:
        raise OutputError(f"cannot write {str(path)!r}: {e.strerror or e}") from e
    try:
        yield partial
        os.replace(partial, path)
    except OSError as e:
        partial.unlink(missing_ok=True)
        raise OutputError(f"cannot write {str(path)!r}: {e.strerror or e}") from e
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    finally:
        os.close(handle)


def _write(path: str | Path, write: Callable[[Path], object]) -> Path:
    path = Path(path)
    with atomic_path(path) as partial:
        write(partial)
    return path


def write_table(frame: pd.DataFrame, path: str | Path, *, escape_formulas: bool = True) -> Path:
    """Write ``frame`` to ``path``: Parquet for ``.parquet``/``.pq``, else CSV.

    Dates are written as ISO dates and missing values as empty cells. In a CSV, text
    cells a spreadsheet would run as a formula get a leading ``'``
    (:func:`escape_formula_cells`) unless ``escape_formulas`` is false; Parquet keeps
    the raw values.
    """
    path = Path(path)
    if path.suffix.lower() in {".parquet", ".pq"}:
        return _write(path, lambda partial: frame.to_parquet(partial, index=False))
    if escape_formulas:
        frame = escape_formula_cells(frame)
    compression = _COMPRESSION.get(path.suffix.lower())
    # Python's csv module quotes a cell holding a line feed but not one holding a lone
    # carriage return, which every reader takes for the end of a row: then quote every
    # text cell, as Arrow does
    quoting = csv.QUOTE_NONNUMERIC if _holds_carriage_return(frame) else csv.QUOTE_MINIMAL
    return _write(
        path,
        lambda partial: frame.to_csv(
            partial,
            index=False,
            date_format="%Y-%m-%d",
            compression=compression,
            quoting=quoting,
        ),
    )


def _holds_carriage_return(frame: pd.DataFrame) -> bool:
    if any(isinstance(name, str) and "\r" in name for name in frame.columns):
        return True
    for _name, column in frame.items():
        if isinstance(column.dtype, pd.StringDtype):
            if column.str.contains("\r", regex=False).fillna(False).any():
                return True
        elif column.dtype == object or isinstance(column.dtype, pd.CategoricalDtype):
            if any(isinstance(v, str) and "\r" in v for v in column.to_numpy(dtype=object)):
                return True
    return False


def write_json(payload: Any, path: str | Path) -> Path:
    """Write a JSON document (results, metrics) with its folder created if needed."""
    text = json.dumps(payload, indent=2) + "\n"
    return _write(path, lambda partial: partial.write_text(text, encoding="utf-8"))


def write_text(text: str, path: str | Path) -> Path:
    """Write a text document (UTF-8) with its folder created if needed."""
    return _write(path, lambda partial: partial.write_text(text, encoding="utf-8"))


#: Figure formats :func:`write_figure` writes, by file extension.
FIGURE_FORMATS = {".png": "png", ".svg": "svg", ".pdf": "pdf"}


def write_figure(figure: Figure, path: str | Path, *, dpi: float = 150) -> Path:
    """Save a matplotlib figure, in the format its extension names.

    Parameters
    ----------
    figure : matplotlib.figure.Figure
    path : str or Path
        A ``.png``, ``.svg`` or ``.pdf`` file (the extension in any case).
    dpi : float, default 150
        Resolution of a PNG (and of any raster part of the others).

    Returns
    -------
    Path

    Raises
    ------
    ValueError
        The extension is not one of :data:`FIGURE_FORMATS`.
    OutputError
        ``path`` cannot be written; nothing is left at it that was not there before.

    Examples
    --------
    >>> import tempfile
    >>> from matplotlib.figure import Figure
    >>> folder = Path(tempfile.mkdtemp())
    >>> write_figure(Figure(), folder / "empty.svg").read_bytes()[:5]
    b'<?xml'
    >>> write_figure(Figure(), folder / "empty.jpg")
    Traceback (most recent call last):
    ...
    ValueError: cannot save a figure as '.jpg': use one of '.png', '.svg', '.pdf'
    """
    path = Path(path)
    fmt = FIGURE_FORMATS.get(path.suffix.lower())
    if fmt is None:
        allowed = ", ".join(map(repr, FIGURE_FORMATS))
        found = repr(path.suffix) if path.suffix else f"{path.name!r}, which has no extension"
        raise ValueError(f"cannot save a figure as {found}: use one of {allowed}")
    return _write(path, lambda partial: figure.savefig(partial, dpi=dpi, format=fmt))
