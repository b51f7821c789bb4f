"""Vectorised parsing of raw cell values, shared by the checks and the typed conversion.

Text is parsed with Arrow compute kernels: a million cells parse in milliseconds, where
``pandas.to_numeric`` on strings takes a second per column.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from pandas.api.types import (
    infer_dtype,
    is_bool_dtype,
    is_datetime64_any_dtype,
    is_numeric_dtype,
)

# a finite decimal number as people write it: 4, 4.0, .5, -1, 1e3 (not inf, nan, 0x10)
_DATE = r"^\d{4}-\d{2}-\d{2}$"
_NUMBER = r"^[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?$"


# What pandas infers for an object column whose every value is one a contract column
# can hold: text, a number, a date or time.
_PLAIN_KINDS = frozenset(
    {
        "string",
        "integer",
        "floating",
        "mixed-integer-float",
        "decimal",
        "date",
        "datetime",
        "datetime64",
        "time",
        "empty",
    }
)
# Values no contract column holds. Turned into text they would pass for what they are
# not: True for 1, b"P001" for "P001", [3] for "[3]".
_NOT_PLAIN_TYPES = (bool, np.bool_, bytes, bytearray, memoryview, list, tuple, set, frozenset)


def is_not_plain(value: object) -> bool:
    """True if ``value`` is true/false, a list, a mapping or bytes (see :func:`not_plain`)."""
    return isinstance(value, (*_NOT_PLAIN_TYPES, Mapping, np.ndarray))


def not_plain(s: pd.Series) -> pd.Series:
    """True where a cell of ``s`` holds true/false, a list, a mapping or bytes.

    Parquet and SQL keep their own types, and no contract column is of those: such a
    cell is reported, never read as the text or number it would print as.
    """
    if isinstance(s.dtype, pd.CategoricalDtype):
        s = s.astype(object)
    if is_bool_dtype(s):
        return s.notna().astype(bool)
    if s.dtype != object or infer_dtype(s, skipna=True) in _PLAIN_KINDS:
        return pd.Series(False, index=s.index)
    # only a column with something odd in it is looked at value by value
    return s.map(is_not_plain).astype(bool)


def _plain(s: pd.Series) -> pd.Series:
    """``s`` with the cells of :func:`not_plain` made missing."""
    odd = not_plain(s)
    return s.astype(object).where(~odd, None) if odd.any() else s


def _arrow_text(s: pd.Series) -> pa.Array:
    return pa.array(_plain(s).astype("string[pyarrow]").array).cast(pa.large_string())


def as_number(s: pd.Series) -> pd.Series:
    """Float values of ``s``; NaN where missing or not a finite number."""
    if is_bool_dtype(s):
        # True is not the number 1 here: the column was meant to hold numbers
        out = pd.Series(np.nan, index=s.index, dtype="float64")
    elif is_numeric_dtype(s):
        out = pd.to_numeric(s, errors="coerce").astype("float64")
    else:
        text = pc.utf8_trim_whitespace(_arrow_text(s))
        ok = pc.match_substring_regex(text, _NUMBER)
        values = pc.cast(pc.if_else(ok, text, None), pa.float64())
        out = pd.Series(values.to_numpy(zero_copy_only=False), index=s.index, dtype="float64")
    return out.where(np.isfinite(out))


def as_date(s: pd.Series) -> pd.Series:
    """Dates of ``s`` (datetime64); NaT where missing or not an ISO 8601 date."""
    if is_datetime64_any_dtype(s):
        return s
    text = pc.utf8_trim_whitespace(_arrow_text(s))
    # only the calendar date the contract asks for: not "2025-01" or "20250106"
    ok = pc.match_substring_regex(text, _DATE)
    kept = pc.if_else(ok, text, None).to_numpy(zero_copy_only=False)
    text = pd.Series(kept, index=s.index, dtype="string")
    return pd.to_datetime(text, format="%Y-%m-%d", errors="coerce")


def as_text(s: pd.Series) -> pd.Series:
    """String values of ``s``, with missing kept missing (and :func:`not_plain` cells
    made missing)."""
    return _plain(s).astype("string")


def full_match(s: pd.Series, pattern: str) -> pd.Series:
    """True where the text of ``s`` matches ``pattern`` in full; missing stays True."""
    hit = pc.match_substring_regex(_arrow_text(s), f"^(?:{pattern})$")
    hit = pc.fill_null(hit, True)
    return pd.Series(hit.to_numpy(zero_copy_only=False), index=s.index, dtype=bool)
