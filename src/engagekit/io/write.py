"""Write results: tables to CSV or Parquet (chosen by the file extension), JSON
documents, and text documents such as an HTML report or a Markdown model card.

Every file is written under a temporary name unique to the call, in the same folder,
and renamed into place only when complete (``os.replace``): a write that fails or is
killed leaves the final name as it was (absent, or the previous complete file), never
empty or half-written, and two writers never share a temporary file.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd

from ..errors import OutputError

__all__ = ["atomic_path", "write_json", "write_table", "write_text"]

_COMPRESSION = {".gz": "gzip", ".bz2": "bz2", ".zip": "zip", ".xz": "xz", ".zst": "zstd"}
# mkstemp makes files readable by their owner only; the final file gets the usual
# permissions (as open() would give it), read once here
_UMASK = os.umask(0o022)
os.umask(_UMASK)


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
        handle, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".partial")
        os.close(handle)
        os.chmod(name, 0o666 & ~_UMASK)
    except OSError as e:
        raise OutputError(f"cannot write {str(path)!r}: {e.strerror or e}") from e
    partial = Path(name)
    try:
        yield partial
        os.replace(partial, path)
    except OSError as e:
        partial.unlink(missing_ok=True)
        raise OutputError(f"cannot write {str(path)!r}: {e.strerror or e}") from e
    except BaseException:
        partial.unlink(missing_ok=True)
        raise


def _write(path: str | Path, write: Callable[[Path], None]) -> Path:
    path = Path(path)
    with atomic_path(path) as partial:
        write(partial)
    return path


def write_table(frame: pd.DataFrame, path: str | Path) -> Path:
    """Write ``frame`` to ``path``: Parquet for ``.parquet``/``.pq``, else CSV.

    Dates are written as ISO dates and missing values as empty cells.
    """
    path = Path(path)
    if path.suffix.lower() in {".parquet", ".pq"}:
        return _write(path, lambda partial: frame.to_parquet(partial, index=False))
    compression = _COMPRESSION.get(path.suffix.lower())
    return _write(
        path,
        lambda partial: frame.to_csv(
            partial, index=False, date_format="%Y-%m-%d", compression=compression
        ),
    )


def write_json(payload: Any, path: str | Path) -> Path:
    """Write a JSON document (results, metrics) with its folder created if needed."""
    text = json.dumps(payload, indent=2) + "\n"
    return _write(path, lambda partial: partial.write_text(text, encoding="utf-8"))


def write_text(text: str, path: str | Path) -> Path:
    """Write a text document (UTF-8) with its folder created if needed."""
    return _write(path, lambda partial: partial.write_text(text, encoding="utf-8"))
