"""How large a treatment difference the cross-treatment test could have seen.

A test that finds no difference says little unless it could have found one of a size
that matters. From a heterogeneity result's own standard errors this module computes, for
each attribute, the smallest **deviation** of one treatment's slope (log-odds per rating
point, every other treatment's slope equal) that the joint Wald test of equal slopes
would detect with a given power, at the level its multiplicity adjustment asks of the
first rejection (``alpha / m`` over ``m`` attributes, for Holm and Benjamini–Hochberg
alike).

The covariance of the slope differences is rebuilt from the result's pairwise contrasts:
each holds a difference with its 90% CI, hence its standard error, and

``cov(b_k - b_0, b_l - b_0) = (var(b_k - b_0) + var(b_l - b_0) - var(b_k - b_l)) / 2``.

Under a deviation ``delta`` of treatment ``k`` the Wald statistic is non-central
chi-square with ``K - 1`` degrees of freedom and non-centrality ``delta^2 u' M^-1 u``,
where ``M`` is that covariance and ``u`` the contrasts' response to a unit deviation.
This is a large-sample calculation at the estimated covariance, an analytic companion to
the simulation of :mod:`engagekit.heterogeneity._power`, which it does not replace.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy import optimize, stats

if TYPE_CHECKING:
    from ._analysis import HeterogeneityResult

__all__ = ["minimum_detectable_deviation"]

# heterogeneity_analysis gives every contrast a 90% CI (TOST at 0.05 on each side)
_CONTRAST_Z = stats.norm.ppf(0.95)


def _required_noncentrality(df: int, level: float, power: float) -> float:
    """The non-centrality at which a chi-square(df) test at ``level`` has ``power``."""
    critical = stats.chi2.isf(level, df)

    def shortfall(lam: float) -> float:
        return stats.ncx2.sf(critical, df, lam) - power

    upper = 1.0
    while shortfall(upper) < 0:
        upper *= 2
    return float(optimize.brentq(shortfall, 1e-12, upper, xtol=1e-12))


def _difference_covariance(treatments: list[str], contrasts: list[Mapping[str, Any]]) -> np.ndarray:
    """Covariance of ``(b_k - b_0)`` for k = 1..K-1, from the pairwise contrasts' CIs."""
    position = {t: i for i, t in enumerate(treatments)}
    k = len(treatments)
    var = np.full((k, k), np.nan)
    np.fill_diagonal(var, 0.0)
    for c in contrasts:
        i, j = position[c["treatment_a"]], position[c["treatment_b"]]
        se = (float(c["ci_high"]) - float(c["ci_low"])) / (2 * _CONTRAST_Z)
        var[i, j] = var[j, i] = se**2
    if np.isnan(var).any():
        raise ValueError(
            "the result lacks some between-treatment contrasts; pass the dict returned by "
            "heterogeneity_analysis, which holds one per pair of treatments"
        )
    first = var[0, 1:]
    return (first[:, None] + first[None, :] - var[1:, 1:]) / 2


def minimum_detectable_deviation(
    result: HeterogeneityResult | Mapping[str, Any],
    power: float = 0.8,
    alpha: float | None = None,
) -> list[dict[str, Any]]:
    """Smallest deviation of one treatment's slope that the joint test detects with ``power``.

    Parameters
    ----------
    result : HeterogeneityResult or mapping
        A result of :func:`~engagekit.heterogeneity.heterogeneity_analysis`, or the
        JSON it was saved as (only the attributes' treatments and contrasts, and the
        method's ``alpha``, are read).
    power : float, default 0.8
        The power wanted, in (0, 1).
    alpha : float, optional
        The level of the first rejection; by default the result's ``alpha`` divided by
        its number of attributes (what Holm's and Benjamini–Hochberg's adjustments ask
        of the smallest p-value).

    Returns
    -------
    list of dict
        One per attribute, JSON-ready: ``attribute``, ``label``, ``level`` (the test's
        level used), ``power``, ``by_treatment`` (``treatment`` and ``deviation``: the
        log-odds per rating point by which that treatment's slope must differ from the
        others' to be detected), and the ``smallest`` and ``largest`` of those with
        their ``smallest_treatment`` and ``largest_treatment``.

    Raises
    ------
    ValueError
        ``power`` or ``alpha`` outside (0, 1), or a result without its contrasts.

    Examples
    --------
    Two treatments whose difference in slope has a standard error of 0.1 (90% CI
    ±0.1645): at 5% two-sided, 80% power needs about (1.96 + 0.84) × 0.1 = 0.28.

    >>> result = {"method": {"alpha": 0.05}, "attributes": [{
    ...     "attribute": "empathy", "label": "Empathy",
    ...     "by_treatment": [{"treatment": "a"}, {"treatment": "b"}],
    ...     "contrasts": [{"treatment_a": "a", "treatment_b": "b",
    ...                    "ci_low": -0.1644854, "ci_high": 0.1644854}]}]}
    >>> round(minimum_detectable_deviation(result)[0]["smallest"], 3)
    0.28
    >>> minimum_detectable_deviation(result, power=1.2)
    Traceback (most recent call last):
    ...
    ValueError: 'power' must be between 0 and 1; got 1.2
    """
    if not 0 < power < 1:
        raise ValueError(f"'power' must be between 0 and 1; got {power!r}")
    if hasattr(result, "to_dict"):
        result = result.to_dict()
    attributes = list(result.get("attributes") or [])
    if alpha is None:
        alpha = float(result.get("method", {}).get("alpha", 0.05)) / max(len(attributes), 1)
    if not 0 < alpha < 1:
        raise ValueError(f"'alpha' must be between 0 and 1; got {alpha!r}")
    out = []
    for attribute in attributes:
        treatments = [row["treatment"] for row in attribute["by_treatment"]]
        k = len(treatments)
        covariance = _difference_covariance(treatments, attribute["contrasts"])
        needed = _required_noncentrality(k - 1, alpha, power)
        inverse = np.linalg.pinv(covariance)
        rows = []
        for index, treatment in enumerate(treatments):
            # the contrasts b_j - b_0 move by -1 each when b_0 deviates, else b_k's alone
            unit = -np.ones(k - 1) if index == 0 else np.eye(k - 1)[index - 1]
            information = float(unit @ inverse @ unit)
            deviation = math.sqrt(needed / information) if information > 0 else math.inf
            rows.append({"treatment": treatment, "deviation": deviation})
        smallest = min(rows, key=lambda r: r["deviation"])
        largest = max(rows, key=lambda r: r["deviation"])
        out.append(
            {
                "attribute": attribute.get("attribute"),
                "label": attribute.get("label"),
                "level": alpha,
                "power": power,
                "by_treatment": rows,
                "smallest": smallest["deviation"],
                "smallest_treatment": smallest["treatment"],
                "largest": largest["deviation"],
                "largest_treatment": largest["treatment"],
            }
        )
    return out
