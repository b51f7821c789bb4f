"""Small statistical formulas used in more than one place.

The logistic function is :func:`scipy.special.expit` everywhere (exact to the last bit
near 0 and 1, and it never overflows); there is no copy of it here.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import stats

__all__ = ["wilson_interval"]


def wilson_interval(successes: Any, n: Any, level: float = 0.95) -> tuple[Any, Any]:
    """The Wilson score interval of a proportion ``successes / n``.

    Unlike the Wald interval it stays inside [0, 1] and is not empty when every trial
    agrees (``successes`` 0 or ``n``).

    Parameters
    ----------
    successes, n : float or array-like
        Successes (a count, or a share of ``n`` counted as a count) and trials, ``n > 0``;
        arrays are taken element by element.
    level : float, default 0.95
        Coverage of the interval.

    Returns
    -------
    (low, high)
        numpy floats, or arrays shaped as the inputs, clipped to [0, 1].

    Examples
    --------
    >>> low, high = wilson_interval(8, 10)
    >>> round(float(low), 3), round(float(high), 3)
    (0.49, 0.943)
    >>> [round(float(x), 3) for x in wilson_interval(0, 10)]
    [0.0, 0.278]
    """
    successes = np.asarray(successes, dtype="float64")
    n = np.asarray(n, dtype="float64")
    z = stats.norm.ppf(0.5 + level / 2)
    rate = successes / n
    centre = (rate + z**2 / (2 * n)) / (1 + z**2 / n)
    half = z / (1 + z**2 / n) * np.sqrt(rate * (1 - rate) / n + z**2 / (4 * n**2))
    return np.clip(centre - half, 0.0, 1.0), np.clip(centre + half, 0.0, 1.0)
