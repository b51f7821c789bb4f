"""Curves of predicted probabilities: calibration, ROC and decision (net benefit).

Every function takes the observed binary outcome ``y`` (0/1) and the predicted
probability ``p`` that ``y == 1``, one value per encounter, and returns a table; nothing
is read, written or printed. :func:`~engagekit.evaluation.evaluate_predictions` stores
them in :class:`~engagekit.evaluation.Metrics` as lists of records.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd

from .._checks import check_outcomes, check_probabilities
from .._stats import wilson_interval

__all__ = [
    "calibration_curve",
    "decision_curve",
    "decision_thresholds",
    "roc_curve",
]


# --------------------------------------------------------------------------- inputs
def _as_outcomes_and_probabilities(
    y: Any, p: Any, sample_weight: Any = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Float arrays of ``y`` (0/1), ``p`` (in [0, 1]) and weights, or a ValueError."""
    y_arr = np.asarray(y, dtype=float).ravel()
    p_arr = np.asarray(p, dtype=float).ravel()
    if y_arr.shape != p_arr.shape:
        raise ValueError(
            f"'y' and 'p' must have one value per encounter; got {y_arr.size} outcomes and "
            f"{p_arr.size} probabilities."
        )
    if y_arr.size == 0:
        raise ValueError("'y' and 'p' are empty; there is nothing to evaluate.")
    check_outcomes(y_arr, "'y'", hint="leave out encounters whose outcome is empty")
    check_probabilities(p_arr, "'p'")
    if sample_weight is None:
        return y_arr, p_arr, None
    w = np.asarray(sample_weight, dtype=float).ravel()
    if w.shape != y_arr.shape:
        raise ValueError(
            f"'sample_weight' must have one value per encounter; got {w.size} for "
            f"{y_arr.size} encounters."
        )
    if not np.all((w >= 0) & np.isfinite(w)) or not w.sum() > 0:
        raise ValueError("'sample_weight' must be finite, non-negative and not all zero.")
    return y_arr, p_arr, w


# --------------------------------------------------------------------------- calibration curve
def calibration_curve(
    y: Any,
    p: Any,
    n_bins: int = 10,
    strategy: Literal["quantile", "uniform"] = "quantile",
    ci: float = 0.95,
) -> pd.DataFrame:
    """Observed outcome rate against mean predicted probability, bin by bin.

    Parameters
    ----------
    y : array-like of 0/1
    p : array-like of float
        Predicted probability that ``y == 1``.
    n_bins : int
        Number of bins asked for; bins left empty (tied quantiles, or an empty stretch
        of ``[0, 1]``) are dropped, so fewer rows may come back.
    strategy : {"quantile", "uniform"}
        ``quantile``: bins hold about equal numbers of encounters; ``uniform``: bins
        of equal width on ``[0, 1]``. A bin holds ``lower <= p < upper``; the last bin
        also holds its upper edge.
    ci : float
        Level of the Wilson score interval of each observed rate.

    Returns
    -------
    pandas.DataFrame
        One row per non-empty bin, lowest predictions first: ``bin`` (1, 2, …),
        ``mean_predicted``, ``observed_rate``, ``n``, ``ci_low``, ``ci_high``.

    Raises
    ------
    ValueError
        Bad ``y``/``p`` (see :func:`point_metrics`), ``n_bins < 1``, an unknown
        ``strategy`` or ``ci`` outside (0, 1).

    Examples
    --------
    >>> from engagekit.evaluation import calibration_curve
    >>> calibration_curve([0, 0, 1, 0, 1, 1], [0.1, 0.2, 0.3, 0.6, 0.7, 0.8], n_bins=2)
       bin  mean_predicted  observed_rate  n    ci_low   ci_high
    0    1             0.2       0.333333  3  0.061492  0.792340
    1    2             0.7       0.666667  3  0.207660  0.938508
    >>> calibration_curve([0, 1], [0.2, 0.8], strategy="deciles")
    Traceback (most recent call last):
    ...
    ValueError: 'strategy' must be 'quantile' or 'uniform'; got 'deciles'.
    """
    y_arr, p_arr, _ = _as_outcomes_and_probabilities(y, p)
    if strategy not in ("quantile", "uniform"):
        raise ValueError(f"'strategy' must be 'quantile' or 'uniform'; got {strategy!r}.")
    if int(n_bins) != n_bins or n_bins < 1:
        raise ValueError(f"'n_bins' must be a positive integer; got {n_bins!r}.")
    if not 0 < ci < 1:
        raise ValueError(f"'ci' must be between 0 and 1; got {ci!r}.")
    n_bins = int(n_bins)
    if strategy == "quantile":
        edges = np.quantile(p_arr, np.linspace(0, 1, n_bins + 1))
    else:
        edges = np.linspace(0, 1, n_bins + 1)
    which = np.searchsorted(edges[1:-1], p_arr, side="right")
    n = np.bincount(which, minlength=n_bins)
    kept = n > 0
    n = n[kept]
    events = np.bincount(which, weights=y_arr, minlength=n_bins)[kept]
    mean_p = np.bincount(which, weights=p_arr, minlength=n_bins)[kept] / n
    low, high = wilson_interval(events, n, ci)
    return pd.DataFrame(
        {
            "bin": np.arange(1, kept.sum() + 1),
            "mean_predicted": mean_p,
            "observed_rate": events / n,
            "n": n,
            "ci_low": low,
            "ci_high": high,
        }
    )


# --------------------------------------------------------------------------- ROC curve
def roc_curve(y: Any, p: Any, max_points: int | None = 200) -> pd.DataFrame:
    """True against false positive rate of flagging ``p >= threshold``, threshold by threshold.

    As for the AUROC of :func:`point_metrics`, a positive is ``y == 1`` and ``p`` is its
    predicted probability: for engagekit's targets, the good outcome (attended,
    adherent). The full curve has one point per distinct value of ``p`` (highest first)
    after a first point ``(0, 0)`` at threshold ``inf``; tied predictions make one
    diagonal step, so the trapezoid area under the full curve is exactly the AUROC, ties
    counting one half.

    Parameters
    ----------
    y : array-like of 0/1
    p : array-like of float
        Predicted probability that ``y == 1``.
    max_points : int or None, default 200
        At most this many points are kept (at least 2), spread evenly along the curve's
        length and always including both ends, so that a plot of a million encounters
        stays small; the area under the kept points is then at most the AUROC, and
        close to it. None keeps every point.

    Returns
    -------
    pandas.DataFrame
        ``false_positive_rate``, ``true_positive_rate`` and ``threshold`` (the lowest
        ``p`` flagged at that point; ``inf`` at the first point, where none is), from
        ``(0, 0)`` to ``(1, 1)``.

    Raises
    ------
    ValueError
        Bad ``y``/``p`` (see :func:`point_metrics`), a single outcome class (a rate
        would divide by zero), or ``max_points`` below 2.

    Examples
    --------
    >>> from engagekit.evaluation import roc_curve
    >>> curve = roc_curve([0, 0, 1, 1], [0.1, 0.6, 0.4, 0.8])
    >>> curve
       false_positive_rate  true_positive_rate  threshold
    0                  0.0                 0.0        inf
    1                  0.0                 0.5        0.8
    2                  0.5                 0.5        0.6
    3                  0.5                 1.0        0.4
    4                  1.0                 1.0        0.1
    >>> roc_curve([1, 1], [0.2, 0.9])
    Traceback (most recent call last):
    ...
    ValueError: the ROC curve needs both outcome classes; every y = 1.
    """
    y_arr, p_arr, _ = _as_outcomes_and_probabilities(y, p)
    if max_points is not None and (int(max_points) != max_points or max_points < 2):
        raise ValueError(f"'max_points' must be an integer of at least 2; got {max_points!r}.")
    positives = float(y_arr.sum())
    if positives in (0.0, float(y_arr.size)):
        raise ValueError(
            f"the ROC curve needs both outcome classes; every y = {int(positives > 0)}."
        )
    order = np.argsort(-p_arr, kind="stable")
    p_desc, y_desc = p_arr[order], y_arr[order]
    # the last row of each run of equal predictions: flagging p >= t flags the whole run
    ends = np.flatnonzero(np.r_[p_desc[1:] != p_desc[:-1], True])
    true_flags = np.cumsum(y_desc)[ends]
    false_flags = ends + 1 - true_flags
    tpr = np.r_[0.0, true_flags / positives]
    fpr = np.r_[0.0, false_flags / (y_arr.size - positives)]
    threshold = np.r_[np.inf, p_desc[ends]]
    if max_points is not None and tpr.size > max_points:
        # even steps along the curve's length (a monotone path of length 2 at most)
        length = np.r_[0.0, np.cumsum(np.diff(fpr) + np.diff(tpr))]
        wanted = np.linspace(0.0, length[-1], int(max_points))
        kept = np.unique(np.searchsorted(length, wanted, side="left").clip(0, tpr.size - 1))
        kept = np.unique(np.r_[0, kept, tpr.size - 1])
        fpr, tpr, threshold = fpr[kept], tpr[kept], threshold[kept]
    return pd.DataFrame(
        {"false_positive_rate": fpr, "true_positive_rate": tpr, "threshold": threshold}
    )


# --------------------------------------------------------------------------- decision curve
def decision_curve(y: Any, p: Any, thresholds: Sequence[float] | None = None) -> pd.DataFrame:
    """Net benefit of acting on the predictions, of acting on everyone, and on no one.

    A patient is flagged when ``p >= threshold``. Following Vickers & Elkin (Med Decis
    Making 2006), the net benefit at threshold ``t`` is ``TP/n - FP/n * t / (1 - t)``:
    true flags, less false flags weighted by the odds at which one would be indifferent
    to acting. Acting on everyone gives ``prevalence - (1 - prevalence) * t / (1 - t)``;
    acting on no one gives 0.

    The event is whatever ``y == 1`` means. engagekit flags patients at risk of the bad
    outcome (not attending the next session, not adhering), while its targets code the
    good outcome as 1; :func:`evaluate_predictions` therefore passes ``1 - y`` and
    ``1 - p`` by default.

    Parameters
    ----------
    y : array-like of 0/1
        1 for the event a flag should catch.
    p : array-like of float
        Predicted probability of that event.
    thresholds : sequence of float, optional
        Risk thresholds strictly between 0 and 1; by default 0.01, 0.02, …, 0.50.

    Returns
    -------
    pandas.DataFrame
        ``threshold``, ``net_benefit_model``, ``net_benefit_all``, ``net_benefit_none``.

    Raises
    ------
    ValueError
        Bad ``y``/``p`` (see :func:`point_metrics`) or a threshold outside (0, 1).

    Examples
    --------
    >>> from engagekit.evaluation import decision_curve
    >>> decision_curve([1, 0, 1, 0], [0.8, 0.6, 0.4, 0.1], thresholds=[0.5])
       threshold  net_benefit_model  net_benefit_all  net_benefit_none
    0        0.5                0.0              0.0               0.0
    >>> decision_curve([1, 0], [0.8, 0.6], thresholds=[1.0])
    Traceback (most recent call last):
    ...
    ValueError: 'thresholds' must lie strictly between 0 and 1; found [1.0].
    """
    y_arr, p_arr, _ = _as_outcomes_and_probabilities(y, p)
    # integer hundredths, so the default thresholds are exactly 0.01, 0.02, ...
    t = np.arange(1, 51) / 100 if thresholds is None else np.asarray(thresholds, dtype=float)
    t = t.ravel()
    outside = t[~((t > 0) & (t < 1))]
    if outside.size:
        raise ValueError(
            f"'thresholds' must lie strictly between 0 and 1; found {outside[:5].tolist()}."
        )
    n = y_arr.size
    events = np.sort(p_arr[y_arr == 1])
    non_events = np.sort(p_arr[y_arr == 0])
    true_flags = events.size - np.searchsorted(events, t, side="left")
    false_flags = non_events.size - np.searchsorted(non_events, t, side="left")
    odds = t / (1 - t)
    prevalence = events.size / n
    return pd.DataFrame(
        {
            "threshold": t,
            "net_benefit_model": true_flags / n - false_flags / n * odds,
            "net_benefit_all": prevalence - (1 - prevalence) * odds,
            "net_benefit_none": np.zeros_like(t),
        }
    )


def decision_thresholds(*marks: float | None) -> np.ndarray:
    """The risk thresholds of :func:`decision_curve`, widened to reach every mark.

    The default grid is 0.01, 0.02, …, 0.50. Each mark strictly between 0 and 1 (a flag
    rule's thresholds) is added to the grid, and a mark above 0.50 extends the grid in
    hundredths to 0.05 beyond it (at most 0.99), so that a figure of the curve can show
    where the rule stands. Other marks (None, NaN, 0, 1) are ignored.

    Parameters
    ----------
    *marks : float or None
        Risks that the curve must reach.

    Returns
    -------
    numpy.ndarray
        Sorted, distinct thresholds strictly between 0 and 1.

    Examples
    --------
    >>> t = decision_thresholds(0.56)
    >>> float(t.min()), float(t.max()), 0.56 in t
    (0.01, 0.61, True)
    >>> float(decision_thresholds(0.004).min()), len(decision_thresholds(None))
    (0.004, 50)
    """
    kept = [float(m) for m in marks if m is not None and 0.0 < float(m) < 1.0]
    top = max([0.50, *kept])
    # integer hundredths, so the grid is exactly 0.01, 0.02, ...
    last = 50 if top <= 0.50 else min(99, math.ceil(round(top * 100, 6)) + 5)
    return np.union1d(np.arange(1, last + 1) / 100, kept)
