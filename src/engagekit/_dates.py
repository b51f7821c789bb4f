"""Days given by a user (a temporal split, a monitoring window): ISO ``YYYY-MM-DD`` only.

``05/06/2025`` is 5 June in the UK and 6 May in the US; a parser that guesses takes one
of them silently. engagekit takes neither and says how to write the day.
"""

from __future__ import annotations

import datetime
import re

__all__ = ["parse_iso_date"]

_ISO_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


def parse_iso_date(value: str | datetime.date) -> datetime.date:
    """The day ``value`` names, written ``YYYY-MM-DD``.

    Parameters
    ----------
    value : str or datetime.date
        A date object is returned as it is (a datetime as its day).

    Raises
    ------
    ValueError
        ``value`` is not written ``YYYY-MM-DD``, or names no real day.

    Examples
    --------
    >>> parse_iso_date("2025-06-05")
    datetime.date(2025, 6, 5)
    >>> parse_iso_date("05/06/2025")
    Traceback (most recent call last):
    ...
    ValueError: '05/06/2025' is not a day written YYYY-MM-DD (e.g. 2025-06-05); \
other forms such as 05/06/2025 mean different days in different countries
    """
    if isinstance(value, datetime.datetime):
        return value.date()
    if isinstance(value, datetime.date):
        return value
    text = str(value).strip()
    if not _ISO_DAY.fullmatch(text):
        raise ValueError(
            f"{str(value)!r} is not a day written YYYY-MM-DD (e.g. 2025-06-05); other "
            "forms such as 05/06/2025 mean different days in different countries"
        )
    try:
        return datetime.date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a real day (YYYY-MM-DD)") from None
