"""How numbers read in the report and the model card: one dash for "undefined"."""

from __future__ import annotations

import math
import numbers
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..evaluation import Estimate

#: What an undefined value reads as (an en dash), with its reason beside it when known.
DASH = "–"


def is_number(value: Any) -> bool:
    """A finite real number (a bool is not one)."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def number(value: Any, digits: int = 3) -> str:
    """``value`` with ``digits`` decimals, or the dash."""
    return f"{value:.{digits}f}" if is_number(value) else DASH


def signed(value: Any, digits: int = 3) -> str:
    """``value`` with its sign and ``digits`` decimals, or the dash."""
    return f"{value:+.{digits}f}" if is_number(value) else DASH


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


def interval(low: Any, high: Any, digits: int = 3, fmt=None) -> str:
    """``low to high``, or the dash when either end is undefined."""
    if not (is_number(low) and is_number(high)):
        return DASH
    fmt = fmt or (lambda v: number(v, digits))
    return f"{fmt(low)} to {fmt(high)}"


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
