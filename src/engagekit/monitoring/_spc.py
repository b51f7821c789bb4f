"""Statistical process control of a window's observed-minus-expected event rate.

A risk-adjusted p-chart (Shewhart): in a window of ``n`` encounters with predicted
probabilities ``p_i``, the observed rate ``O = mean(y)`` minus the expected rate
``E = mean(p)`` has mean 0 and standard deviation ``sqrt(sum p_i (1 - p_i)) / n`` when
the model is calibrated (the outcomes independent Bernoulli draws of ``p_i``). The
control limits are ``±3`` of those standard deviations (:data:`SIGMA_LIMITS`): narrow in
a large window, wide in a small one, so every window is judged by its own size. A point
outside them happens by chance about 3 times in 1,000 windows.

Examples
--------
>>> limits = observed_minus_expected([1, 1, 0, 1], [0.5, 0.5, 0.5, 0.5])
>>> limits.observed_minus_expected, limits.sigma, limits.upper_limit
(0.25, 0.25, 0.75)
>>> limits.outside
False
>>> observed_minus_expected([1, 0], [0.5])
Traceback (most recent call last):
...
ValueError: 'y' and 'p' must have one value per encounter; got 2 and 1.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["SIGMA_LIMITS", "ControlPoint", "observed_minus_expected"]

#: The width of the control limits, in standard deviations.
SIGMA_LIMITS = 3.0


@dataclass(frozen=True)
class ControlPoint:
    """A window's point on the observed-minus-expected chart, with its limits."""

    n: int
    observed: float
    expected: float
    observed_minus_expected: float
    sigma: float
    lower_limit: float
    upper_limit: float

    @property
    def outside(self) -> bool:
        """True if the point lies outside its control limits."""
        return not self.lower_limit <= self.observed_minus_expected <= self.upper_limit


def observed_minus_expected(y: Any, p: Any, sigmas: float = SIGMA_LIMITS) -> ControlPoint:
    """The observed-minus-expected event rate of a window and its control limits.

    Parameters
    ----------
    y : array-like of 0/1
        The outcomes of the window's encounters.
    p : array-like of float
        Their predicted probabilities that ``y == 1``.
    sigmas : float
        The width of the limits, in standard deviations.

    Returns
    -------
    ControlPoint

    Raises
    ------
    ValueError
        If the lengths differ or there are no encounters.
    """
    y_arr = np.asarray(y, dtype=float)
    p_arr = np.asarray(p, dtype=float)
    if y_arr.shape != p_arr.shape:
        raise ValueError(
            f"'y' and 'p' must have one value per encounter; got {y_arr.size} and {p_arr.size}."
        )
    n = y_arr.size
    if n == 0:
        raise ValueError("a control point needs at least one encounter; got none.")
    observed, expected = float(y_arr.mean()), float(p_arr.mean())
    sigma = math.sqrt(float(np.sum(p_arr * (1 - p_arr)))) / n
    return ControlPoint(
        n=n,
        observed=observed,
        expected=expected,
        observed_minus_expected=observed - expected,
        sigma=sigma,
        lower_limit=-sigmas * sigma,
        upper_limit=sigmas * sigma,
    )
