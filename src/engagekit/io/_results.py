"""Read saved results (the JSON documents engagekit's commands write) back in.

A result read back is the typed object that wrote it: :func:`read_heterogeneity_result`
gives a :class:`~engagekit.heterogeneity.HeterogeneityResult` and
:func:`read_power_result` a :class:`~engagekit.heterogeneity.PowerResult` or
:class:`~engagekit.heterogeneity.PatientsForPowerResult`, and :func:`read_monitor_result`
a :class:`~engagekit.monitoring.MonitorResult`, each checked field by field
(with its JSON type) by the type's ``from_dict``, so that a result edited by hand, cut
short, written by something else or by another format version is refused with a message
naming the file and the fields, not met halfway through building a report.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import DataReadError, ResultFormatError

if TYPE_CHECKING:
    from ..heterogeneity import HeterogeneityResult, PatientsForPowerResult, PowerResult
    from ..monitoring import MonitorResult

__all__ = [
    "read_heterogeneity_result",
    "read_monitor_result",
    "read_power_result",
    "read_result",
]

#: The most a result file may be, in bytes; a larger one (or a device) is refused unread.
RESULT_SIZE_LIMIT = 64 << 20


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
    from .._files import NotARegularFileError, open_regular_file

    path = Path(path)
    try:
        with open_regular_file(path) as handle:
            data = handle.read(RESULT_SIZE_LIMIT + 1)
        if len(data) > RESULT_SIZE_LIMIT:
            raise DataReadError(
                f"{str(path)!r} is more than {RESULT_SIZE_LIMIT:,} bytes; it cannot be {what}"
            )
        record = json.loads(data.decode("utf-8"))
    except FileNotFoundError as e:
        raise DataReadError(f"{str(path)!r} does not exist; it should be {what}") from e
    except NotARegularFileError as e:
        raise DataReadError(f"{e}; it should be {what}") from e
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


def _read_as(kind: type[Any], record: dict[str, Any], path: Path, what: str) -> Any:
    """``record`` read as a ``kind`` (its ``from_dict``), or refused naming the file and
    each field at fault (at most ten)."""
    try:
        return kind.from_dict(record)
    except ResultFormatError as e:
        raise DataReadError(
            f"{str(path)!r} is not {what}: {'; '.join(e.problems)}. Write it again with the "
            "engagekit command, or leave it out"
        ) from None


def read_heterogeneity_result(path: str | Path) -> HeterogeneityResult:
    """A result of ``engagekit heterogeneity``, read back as the type that wrote it.

    Raises
    ------
    DataReadError
        The file is missing, not JSON, not an object, of another format version, or a
        field is missing, unknown or of the wrong type; the message names the file and
        the fields.

    Examples
    --------
    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "heterogeneity.json"
    >>> _ = path.write_text('{"target": "adherent", "attributes": [], "method": {}, '
    ...                     '"format_version": 3}')
    >>> read_heterogeneity_result(path)
    Traceback (most recent call last):
    ...
    engagekit.errors.DataReadError: '.../heterogeneity.json' is not a result of engagekit heterogeneity: its 'format_version' is 3; this engagekit reads format_version 2: write it again with this engagekit. Write it again with the engagekit command, or leave it out
    """  # noqa: E501
    from ..heterogeneity import HeterogeneityResult

    what = "a result of engagekit heterogeneity"
    record = read_result(path, what, required=("target", "attributes", "method"))
    return _read_as(HeterogeneityResult, record, Path(path), what)


def read_power_result(path: str | Path) -> PowerResult | PatientsForPowerResult:
    """A result of ``engagekit power``, read back as the type that wrote it: a
    :class:`~engagekit.heterogeneity.PatientsForPowerResult` when it holds
    ``target_power`` (a search for the number of patients), else a
    :class:`~engagekit.heterogeneity.PowerResult`.

    Raises
    ------
    DataReadError
        The file is missing, not JSON, not an object, has neither ``power_differs`` nor
        ``target_power``, is of another format version, or a field is missing, unknown
        or of the wrong type; the message names the file and the fields.
    """
    from ..heterogeneity import PatientsForPowerResult, PowerResult

    what = "a result of engagekit power"
    record = read_result(path, what)
    if "power_differs" not in record and "target_power" not in record:
        raise DataReadError(
            f"{str(path)!r} is not {what}: it has neither 'power_differs' nor 'target_power'"
        )
    kind = PatientsForPowerResult if "target_power" in record else PowerResult
    return _read_as(kind, record, Path(path), what)


def read_monitor_result(path: str | Path) -> MonitorResult:
    """A result of ``engagekit monitor`` (``--out FILE.json`` or ``--json``), read back as
    the type that wrote it.

    Raises
    ------
    DataReadError
        The file is missing, not JSON, not an object, lacks the keys of a monitoring
        result, is of another format version, or a field is missing, unknown or of the
        wrong type; the message names the file and the fields.

    Examples
    --------
    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "monitoring.json"
    >>> _ = path.write_text('{"target": "adherent", "attributes": [], "method": {}}')
    >>> read_monitor_result(path)
    Traceback (most recent call last):
    ...
    engagekit.errors.DataReadError: '.../monitoring.json' is not a result of engagekit monitor: it lacks 'window', 'windows', 'alerts'
    """  # noqa: E501
    from ..monitoring import MonitorResult

    what = "a result of engagekit monitor"
    record = read_result(path, what, required=("target", "window", "windows", "alerts"))
    return _read_as(MonitorResult, record, Path(path), what)
