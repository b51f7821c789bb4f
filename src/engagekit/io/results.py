"""Read saved results (the JSON documents engagekit's commands write) back in."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..errors import DataReadError

__all__ = ["read_result"]


def read_result(path: str | Path, what: str, required: Sequence[str] = ()) -> dict[str, Any]:
    """A JSON object written by an engagekit command, checked for the keys it must have.

    Parameters
    ----------
    path : str or Path
    what : str
        What the file should be, for messages ("a heterogeneity result").
    required : sequence of str
        Keys the object must have; at least one missing means it is another document.

    Raises
    ------
    DataReadError
        The file is missing, not JSON, not an object, or lacks a required key.
    """
    path = Path(path)
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as e:
        raise DataReadError(f"{str(path)!r} does not exist; it should be {what}") from e
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DataReadError(f"{str(path)!r} is not readable JSON ({what} was expected): {e}") from e
    if not isinstance(record, dict):
        raise DataReadError(f"{str(path)!r} must hold a JSON object; it should be {what}")
    missing = [key for key in required if key not in record]
    if missing:
        raise DataReadError(
            f"{str(path)!r} is not {what}: it lacks {', '.join(repr(k) for k in missing)}"
        )
    return record
