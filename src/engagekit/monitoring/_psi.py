"""The population stability index (PSI): how far a distribution has moved from a
reference.

``PSI = sum over bins of (c - r) * ln(c / r)``, with ``r`` and ``c`` the shares of the
reference and current samples in each bin. It is 0 for identical shares and grows with
the shift; the usual reading (Siddiqi, *Credit Risk Scorecards*, 2006) is below 0.1
stable, 0.1 to 0.25 a shift worth a look (:data:`PSI_WARN`), 0.25 and above a shift to act
on (:data:`PSI_ALERT`).

Bins: a rating has few distinct values (a 1 to 5 scale), so when the two samples hold at
most ``bins`` distinct values together each value is its own bin; otherwise the bins are
the reference's quantiles. Missing values are a bin of their own when either sample has
one, so a rating that stops being recorded shifts the index too. A share of 0 is raised
to :data:`PSI_FLOOR` (a bin empty on one side would make the index infinite).

Examples
--------
>>> round(population_stability_index([1, 2], [1, 2, 2, 2]), 4)
0.2747
>>> population_stability_index([1, 2, 3], [3, 2, 1])
0.0
>>> population_stability_index([], [1.0])
Traceback (most recent call last):
...
ValueError: 'reference' has no values; the PSI needs values on both sides.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

__all__ = ["PSI_ALERT", "PSI_FLOOR", "PSI_WARN", "population_stability_index", "psi_level"]

#: A PSI at or above this is a shift worth a look.
PSI_WARN = 0.1
#: A PSI at or above this is a shift to act on: an alert.
PSI_ALERT = 0.25
#: The least share a bin counts with.
PSI_FLOOR = 1e-4


def _shares(codes: np.ndarray, n_bins: int) -> np.ndarray:
    counts = np.bincount(codes, minlength=n_bins).astype(float)
    return np.maximum(counts / counts.sum(), PSI_FLOOR)


def population_stability_index(reference: Any, current: Any, bins: int = 10) -> float:
    """The PSI of ``current`` against ``reference``.

    Parameters
    ----------
    reference, current : array-like of float
        The two samples (NaN: missing).
    bins : int
        The most bins: quantile bins of ``reference`` when the samples hold more
        distinct values than this.

    Returns
    -------
    float
        0 or more; see the module's docstring for its reading.

    Raises
    ------
    ValueError
        If either sample is empty or ``bins < 2``.
    """
    if bins < 2:
        raise ValueError(f"'bins' must be at least 2; got {bins}.")
    ref = pd.to_numeric(pd.Series(reference, dtype="float64"))
    cur = pd.to_numeric(pd.Series(current, dtype="float64"))
    for name, sample in (("reference", ref), ("current", cur)):
        if sample.empty:
            raise ValueError(f"{name!r} has no values; the PSI needs values on both sides.")
    values = np.unique(np.concatenate([ref.dropna(), cur.dropna()]))
    if len(values) <= bins:
        edges = (values[:-1] + values[1:]) / 2
    else:
        edges = np.unique(np.nanquantile(ref, np.linspace(0, 1, bins + 1))[1:-1])
    # bin len(edges) + 1 holds the missing values
    n_bins = len(edges) + 2

    def codes(sample: pd.Series) -> np.ndarray:
        out = np.searchsorted(edges, sample.to_numpy(), side="right")
        out[sample.isna().to_numpy()] = n_bins - 1
        return out

    r, c = _shares(codes(ref), n_bins), _shares(codes(cur), n_bins)
    return float(max(np.sum((c - r) * np.log(c / r)), 0.0))


def psi_level(psi: float | None) -> str:
    """``"stable"``, ``"warn"`` or ``"alert"`` by :data:`PSI_WARN` and :data:`PSI_ALERT`
    (``"n/a"`` for an undefined index).

    Examples
    --------
    >>> [psi_level(v) for v in (0.02, 0.1, 0.3, None)]
    ['stable', 'warn', 'alert', 'n/a']
    """
    if psi is None or not np.isfinite(psi):
        return "n/a"
    return "alert" if psi >= PSI_ALERT else "warn" if psi >= PSI_WARN else "stable"
