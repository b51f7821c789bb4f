"""What a pydantic check found wrong, in words: one line per field at fault.

Two readers see these lines. A person editing a YAML config reads
:func:`config_problems`: dotted keys as they are written in the file, "unknown key" and
"required key is missing" in place of pydantic's terms, every part quoted briefly (a key
may be as long as the file). A saved result or record engagekit wrote is named by
:func:`field_problems`: each field quoted as the JSON file names it, with pydantic's
message and what was found.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import ValidationError

from ._excerpt import excerpt, excerpt_lines

__all__ = ["Location", "config_problems", "field_problems"]

Location = tuple[str | int, ...]

#: At most this many fields at fault are named in one message about a saved record.
MAX_FIELD_PROBLEMS = 10
#: At most this many problems are listed in one message about a config.
MAX_CONFIG_PROBLEMS = 20


def _same(location: Location) -> Location:
    return location


def _field(location: Location) -> str:
    """A field as a saved record names it (``'attributes.0.label'``); a check of the whole
    record is at ``(top level)``."""
    return repr(".".join(str(p) for p in location)) if location else "(top level)"


def field_problems(
    error: ValidationError,
    where: Callable[[Location], Location] = _same,
    *,
    limit: int = MAX_FIELD_PROBLEMS,
) -> list[str]:
    """One line per field a pydantic check found at fault: where (as ``where`` maps the
    location), what was wrong and what was found (unless it is missing, or a part whose
    own reader says what is wrong in it).

    Examples
    --------
    >>> from pydantic import BaseModel, ConfigDict
    >>> class Tally(BaseModel):
    ...     model_config = ConfigDict(extra="forbid")
    ...     n: int
    >>> try:
    ...     Tally.model_validate({"n": "three", "m": 1})
    ... except ValidationError as e:
    ...     field_problems(e)
    ["'n': input should be a valid integer, unable to parse string as an integer (found 'three')", "'m': extra inputs are not permitted (found 1)"]
    """  # noqa: E501
    problems = [
        f"{_field(where(tuple(problem['loc'])))}: {problem['msg'].lower()}"
        + (
            ""
            if problem["type"] in ("missing", "value_error")
            else f" (found {problem['input']!r:.40})"
        )
        for problem in error.errors()[:limit]
    ]
    if error.error_count() > limit:
        problems[-1] += f" and {error.error_count() - limit} more"
    return problems


def _config_key(location: Location) -> str:
    # a key may be as long as the file: quote every part of its path briefly
    return (
        ".".join(str(p) if isinstance(p, int) else excerpt(str(p), 40)[1:-1] for p in location)
        or "(top level)"
    )


def config_problems(error: ValidationError, *, limit: int = MAX_CONFIG_PROBLEMS) -> list[str]:
    """One indented ``- key: problem (found value)`` line per key of a config at fault,
    and a last line counting those left out beyond ``limit``.

    Examples
    --------
    >>> from pydantic import BaseModel, ConfigDict
    >>> class Scale(BaseModel):
    ...     model_config = ConfigDict(extra="forbid")
    ...     min: float
    ...     max: float
    >>> try:
    ...     Scale.model_validate({"min": "low", "mid": 3})
    ... except ValidationError as e:
    ...     print("\\n".join(config_problems(e)))
      - min: Input should be a valid number, unable to parse string as a number (found 'low')
      - max: required key is missing
      - mid: unknown key (check the spelling against configs/default.yaml) (found 3)
    """
    lines = []
    errors = error.errors()
    for e in errors[:limit]:
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            msg = "unknown key (check the spelling against configs/default.yaml)"
        elif e["type"] == "missing":
            msg = "required key is missing"
        found: Any = e.get("input")
        shown = (
            ""
            if e["type"] == "missing" or isinstance(found, dict)
            else f" (found {excerpt(found)})"
        )
        said = excerpt_lines(msg, width=300, max_lines=1)
        lines.append(f"  - {_config_key(tuple(e['loc']))}: {said}{shown}")
    if len(errors) > limit:
        lines.append(f"  ... and {len(errors) - limit} more problem(s)")
    return lines
