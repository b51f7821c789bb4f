"""The calendar windows a score history is monitored in: weeks, months or quarters of the
encounter date.

A window is named by its period (``2025-03``, ``2025Q1``, ``2025-W02``, an ISO week) and
covers the encounters dated in it, whenever they were scored.

Examples
--------
>>> import pandas as pd
>>> dates = pd.Series(pd.to_datetime(["2025-01-06", "2025-03-31", "2025-04-01"]))
>>> list(window_labels(dates, MonitorWindow.MONTH))
['2025-01', '2025-03', '2025-04']
>>> list(window_labels(dates, MonitorWindow.QUARTER))
['2025Q1', '2025Q1', '2025Q2']
>>> list(window_labels(dates, MonitorWindow.WEEK))
['2025-W02', '2025-W14', '2025-W14']
>>> MonitorWindow("fortnight")
Traceback (most recent call last):
...
ValueError: 'fortnight' is not a valid MonitorWindow
"""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["MonitorWindow", "window_bounds", "window_labels"]


class MonitorWindow(StrEnum):
    """The length of a monitoring window: a calendar week (ISO), month or quarter."""

    WEEK = "week"
    MONTH = "month"
    QUARTER = "quarter"


_FREQUENCY = {MonitorWindow.WEEK: "W-SUN", MonitorWindow.MONTH: "M", MonitorWindow.QUARTER: "Q"}


def _periods(dates: pd.Series, window: MonitorWindow) -> pd.Series:
    import pandas as pd

    return pd.to_datetime(dates).dt.to_period(_FREQUENCY[MonitorWindow(window)])


def _label(period: pd.Period, window: MonitorWindow) -> str:
    if window is MonitorWindow.WEEK:
        year, week, _ = period.start_time.isocalendar()
        return f"{year}-W{week:02d}"
    return str(period)


def window_labels(dates: pd.Series, window: MonitorWindow) -> pd.Series:
    """The window of each date, named as the module says (sortable as text).

    Parameters
    ----------
    dates : Series of datetime64 or ISO date text
    window : MonitorWindow

    Returns
    -------
    Series of str, aligned with ``dates``
    """
    window = MonitorWindow(window)
    periods = _periods(dates, window)
    names = {p: _label(p, window) for p in periods.dropna().unique()}
    return periods.map(names).astype(object)


def window_bounds(dates: pd.Series, window: MonitorWindow) -> dict[str, tuple[str, str]]:
    """``{window label: (first day, last day)}`` of the windows ``dates`` fall in.

    Examples
    --------
    >>> import pandas as pd
    >>> window_bounds(pd.Series(pd.to_datetime(["2024-02-10"])), MonitorWindow.MONTH)
    {'2024-02': ('2024-02-01', '2024-02-29')}
    """
    window = MonitorWindow(window)
    return {
        _label(p, window): (
            p.start_time.strftime("%Y-%m-%d"),
            p.end_time.strftime("%Y-%m-%d"),
        )
        for p in _periods(dates, window).dropna().unique()
    }
