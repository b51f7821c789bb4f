"""How numbers read where people read them (the report, the model card, the command
line): one dash for "undefined", and one way to write an interval.

An interval reads ``low to high`` (``0.612 to 0.701``); a value with its interval reads
``value (95% CI low to high)``. Either is the dash when an end is undefined, so that a
missing bootstrap never prints ``nan to nan``.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeGuard

if TYPE_CHECKING:
    from .evaluation import Estimate

__all__ = [
    "DASH",
    "count",
    "estimate",
    "interval",
    "is_number",
    "number",
    "p_value",
    "percent",
    "plain",
    "with_ci",
]

#: What an undefined value reads as (an en dash), with its reason beside it when known.
DASH = "–"


def is_number(value: Any) -> TypeGuard[float]:
    """A finite real number (a bool is not one)."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def number(value: Any, digits: int = 3) -> str:
    """``value`` with ``digits`` decimals, or the dash."""
    return f"{value:.{digits}f}" if is_number(value) else DASH


def count(value: Any) -> str:
    """A whole number with thousands separators, or the dash."""
    return f"{int(value):,}" if is_number(value) else DASH


def percent(share: Any, digits: int = 1) -> str:
    """A share in [0, 1] as a percentage, or the dash."""
    return f"{100 * share:.{digits}f}%" if is_number(share) else DASH


def p_value(value: Any) -> str:
    """A p-value: three significant digits, "< 0.001" below that, or the dash."""
    if not is_number(value):
        return DASH
    return "< 0.001" if value < 0.001 else f"{value:.3g}"


def interval(low: Any, high: Any, digits: int = 3, fmt: Callable[[Any], str] | None = None) -> str:
    """``low to high`` (each end written by ``fmt``), or the dash when an end is undefined.

    Examples
    --------
    >>> interval(0.6123, 0.7011), interval(0.2, None)
    ('0.612 to 0.701', '–')
    >>> interval(0.75, 0.86, fmt=lambda share: percent(share, 0))
    '75% to 86%'
    """
    if not (is_number(low) and is_number(high)):
        return DASH
    fmt = fmt or (lambda v: number(v, digits))
    return f"{fmt(low)} to {fmt(high)}"


def with_ci(
    value: Any,
    low: Any,
    high: Any,
    digits: int = 3,
    fmt: Callable[[Any], str] | None = None,
    level: float = 0.95,
) -> str:
    """``value (95% CI low to high)``; the value alone when its interval is undefined, and
    the dash when the value is.

    Examples
    --------
    >>> with_ci(0.81, 0.75, 0.86, fmt=lambda share: percent(share, 0))
    '81% (95% CI 75% to 86%)'
    >>> with_ci(0.713, 0.69, 0.73, digits=2, level=0.9), with_ci(0.5, None, None)
    ('0.71 (90% CI 0.69 to 0.73)', '0.500')
    >>> with_ci(float("nan"), 0.1, 0.2)
    '–'
    """
    fmt = fmt or (lambda v: number(v, digits))
    if not is_number(value):
        return DASH
    ci = interval(low, high, fmt=fmt)
    return fmt(value) if ci == DASH else f"{fmt(value)} ({percent(level, 0)} CI {ci})"


def estimate(metric: Estimate, digits: int = 3) -> str:
    """``value (low to high)`` of a metric with its CI, or the dash."""
    value = number(metric.value, digits)
    if value == DASH:
        return DASH
    ci = interval(metric.ci_low, metric.ci_high, digits)
    return value if ci == DASH else f"{value} ({ci})"


def plain(value: Any) -> str:
    """A setting as written: a float in its shortest form, anything else as text."""
    return f"{value:g}" if isinstance(value, float) else str(value)
