"""Read saved results (the JSON documents engagekit's commands write) back in.

A result read back is checked for what its reader uses: :func:`read_heterogeneity_result`
and :func:`read_power_result` check every field the report reads, with its JSON type, so
that a result edited by hand, cut short or written by something else is refused with a
message naming the file and the field, not met halfway through building a report.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NotRequired

from pydantic import ConfigDict, TypeAdapter, ValidationError

# pydantic reads typing's TypedDict only from Python 3.12; typing_extensions comes with it
from typing_extensions import TypedDict

from ..errors import DataReadError

__all__ = ["read_heterogeneity_result", "read_power_result", "read_result"]

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


# What the report reads of a result, with the JSON type of each field: a TypedDict per
# object, checked strictly (a number is not a string, a bool is not a number). Fields the
# report does not read are not checked, and may be anything.
_STRICT = ConfigDict(strict=True)
_Number = float | None


class _TreatmentEffect(TypedDict):
    __pydantic_config__ = _STRICT
    treatment: NotRequired[str]
    treatment_label: NotRequired[str | None]
    log_odds: NotRequired[_Number]
    odds_ratio: NotRequired[_Number]
    ci_low: NotRequired[_Number]
    ci_high: NotRequired[_Number]
    n_encounters: NotRequired[_Number]


class _Equivalence(TypedDict):
    __pydantic_config__ = _STRICT
    p_value: NotRequired[_Number]
    largest_abs_difference: NotRequired[_Number]


class _AttributeResult(TypedDict):
    __pydantic_config__ = _STRICT
    attribute: str
    label: NotRequired[str | None]
    higher_is_better: NotRequired[bool | None]
    verdict: NotRequired[str | None]
    sentence: NotRequired[str | None]
    p_value: NotRequired[_Number]
    p_adjusted: NotRequired[_Number]
    common_log_odds: NotRequired[_Number]
    equivalence: NotRequired[_Equivalence]
    by_treatment: NotRequired[list[_TreatmentEffect]]
    contrasts: NotRequired[list[dict[str, Any]]]


class _Method(TypedDict):
    __pydantic_config__ = _STRICT
    margin: NotRequired[_Number]
    margin_odds_ratio: NotRequired[_Number]
    alpha: NotRequired[_Number]
    adjustment: NotRequired[str | None]
    covariates: NotRequired[list[str] | None]
    cluster: NotRequired[str | None]
    working_correlation: NotRequired[str | None]
    cov_type: NotRequired[str | None]
    test: NotRequired[str | None]
    reference_distribution: NotRequired[str | None]


class _HeterogeneityResult(TypedDict):
    __pydantic_config__ = _STRICT
    target: str
    target_label: NotRequired[str | None]
    attributes: list[_AttributeResult]
    method: _Method
    treatments: NotRequired[list[str]]
    n_patients: NotRequired[_Number]
    n_encounters: NotRequired[_Number]
    n_clusters: NotRequired[_Number]
    n_excluded_missing_outcome: NotRequired[_Number]
    n_excluded_missing_rating: NotRequired[_Number]
    n_excluded_missing_covariate: NotRequired[_Number]
    n_excluded_missing_cluster: NotRequired[_Number]


class _PowerSettings(TypedDict):
    __pydantic_config__ = _STRICT
    target: NotRequired[str]
    attribute: NotRequired[str]
    treatment: NotRequired[str]
    deviation: NotRequired[_Number]


class _PowerPoint(TypedDict):
    __pydantic_config__ = _STRICT
    n_patients: NotRequired[_Number]
    power_differs: NotRequired[_Number]
    power_differs_ci_low: NotRequired[_Number]
    power_differs_ci_high: NotRequired[_Number]
    false_flag_rate: NotRequired[_Number]
    power_equivalence: NotRequired[_Number]
    failed: NotRequired[_Number]


class _PowerResult(_PowerPoint):
    settings: NotRequired[_PowerSettings]
    target_power: NotRequired[_Number]
    points: NotRequired[list[_PowerPoint]]
    sentence: NotRequired[str | None]
    succeeded: NotRequired[_Number]
    false_flag_rate_ci_low: NotRequired[_Number]
    false_flag_rate_ci_high: NotRequired[_Number]
    power_equivalence_ci_low: NotRequired[_Number]
    power_equivalence_ci_high: NotRequired[_Number]


_HETEROGENEITY = TypeAdapter(_HeterogeneityResult)
_POWER = TypeAdapter(_PowerResult)


def _field_problems(error: ValidationError, limit: int = 10) -> str:
    """The fields a pydantic check found at fault, each with what was wrong and found."""
    problems = [
        f"{'.'.join(str(p) for p in problem['loc'])!r}: {problem['msg'].lower()}"
        + ("" if problem["type"] == "missing" else f" (found {problem['input']!r:.40})")
        for problem in error.errors()[:limit]
    ]
    more = f" and {error.error_count() - limit} more" if error.error_count() > limit else ""
    return "; ".join(problems) + more


def _check_fields(record: dict[str, Any], adapter: TypeAdapter, path: Path, what: str) -> None:
    """Refuse ``record`` naming every field of the wrong type (at most ten)."""
    try:
        adapter.validate_python(record)
    except ValidationError as e:
        raise DataReadError(
            f"{str(path)!r} is not {what}: {_field_problems(e)}. Write it again with the "
            "engagekit command, or leave it out"
        ) from None


def read_heterogeneity_result(path: str | Path) -> dict[str, Any]:
    """A result of ``engagekit heterogeneity``, checked for every field the report reads.

    Raises
    ------
    DataReadError
        The file is missing, not JSON, not an object, or a field the report reads is
        missing or of the wrong type; the message names the file and the fields.

    Examples
    --------
    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "heterogeneity.json"
    >>> _ = path.write_text('{"target": "adherent", "attributes": [{"label": 5}], "method": {}}')
    >>> read_heterogeneity_result(path)
    Traceback (most recent call last):
    ...
    engagekit.errors.DataReadError: '.../heterogeneity.json' is not a result of engagekit heterogeneity: 'attributes.0.attribute': field required; 'attributes.0.label': input should be a valid string (found 5). Write it again with the engagekit command, or leave it out
    """  # noqa: E501
    what = "a result of engagekit heterogeneity"
    record = read_result(path, what, required=("target", "attributes", "method"))
    _check_fields(record, _HETEROGENEITY, Path(path), what)
    return record


def read_power_result(path: str | Path) -> dict[str, Any]:
    """A result of ``engagekit power``, checked for every field the report reads.

    Raises
    ------
    DataReadError
        The file is missing, not JSON, not an object, has neither ``power_differs`` nor
        ``target_power``, or a field the report reads is of the wrong type; the message
        names the file and the fields.
    """
    what = "a result of engagekit power"
    record = read_result(path, what)
    if "power_differs" not in record and "target_power" not in record:
        raise DataReadError(
            f"{str(path)!r} is not {what}: it has neither 'power_differs' nor 'target_power'"
        )
    _check_fields(record, _POWER, Path(path), what)
    return record
