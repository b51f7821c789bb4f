"""Write results: tables to CSV or Parquet (chosen by the file extension), JSON
documents, and text documents such as an HTML report or a Markdown model card."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from ..errors import OutputError

__all__ = ["write_json", "write_table", "write_text"]


def write_table(frame: pd.DataFrame, path: str | Path) -> Path:
    """Write ``frame`` to ``path``: Parquet for ``.parquet``/``.pq``, else CSV.

    Dates are written as ISO dates and missing values as empty cells.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.suffix.lower() in {".parquet", ".pq"}:
            frame.to_parquet(path, index=False)
        else:
            frame.to_csv(path, index=False, date_format="%Y-%m-%d")
    except OSError as e:
        raise OutputError(f"cannot write {str(path)!r}: {e.strerror or e}") from e
    return path


def write_json(payload: Any, path: str | Path) -> Path:
    """Write a JSON document (results, metrics) with its folder created if needed."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(payload, indent=2) + "\n")
    except OSError as e:
        raise OutputError(f"cannot write {str(path)!r}: {e.strerror or e}") from e
    return path


def write_text(text: str, path: str | Path) -> Path:
    """Write a text document (UTF-8) with its folder created if needed."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    except OSError as e:
        raise OutputError(f"cannot write {str(path)!r}: {e.strerror or e}") from e
    return path
