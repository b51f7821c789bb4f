"""How good a set of predicted probabilities is: point metrics, calibration, net benefit.

Every function takes the observed binary outcome ``y`` (0/1) and the predicted
probability ``p`` that ``y == 1``, one value per encounter, and returns numbers or a
table; nothing is read, written or printed. :func:`evaluate_predictions` assembles them,
with patient-bootstrap confidence intervals (:mod:`engagekit.evaluation._bootstrap`),
overall and per subgroup, into :class:`Metrics`, whose ``to_dict()`` is the block
engagekit writes to ``metrics.json``.

Metrics that a sample cannot define (AUROC when every outcome is the same, the
calibration slope when the predictions separate the outcomes completely) are returned as
NaN rather than raised or warned about; :func:`undefined_metrics` says why, so the
caller can report it.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Annotated, Any, ClassVar, Literal

import numpy as np
import pandas as pd
from pydantic import Field
from scipy import special

from .._checks import check_outcomes, check_probabilities
from .._results import Location, Record, Result
from .._stats import wilson_interval
from ._bootstrap import (
    _bootstrap_replicates,
    _check_settings,
    _group_codes,
    _percentile_intervals,
)

__all__ = [
    "ESTIMATE_NAMES",
    "FLAGGED_AUPRC",
    "POINT_METRICS",
    "CalibrationBin",
    "DecisionCurvePoint",
    "Estimate",
    "GroupMetrics",
    "Metrics",
    "RocPoint",
    "calibration_curve",
    "decision_curve",
    "decision_thresholds",
    "evaluate_predictions",
    "point_metrics",
    "roc_curve",
    "undefined_metrics",
]

#: Names of the values :func:`point_metrics` returns, in order.
POINT_METRICS = (
    "auroc",
    "auprc",
    "brier",
    "log_loss",
    "calibration_intercept",
    "calibration_slope",
    "prevalence",
    "n",
)

#: Name, in :func:`evaluate_predictions`' block, of the average precision of the outcome
#: a flag is meant to catch (by default ``y == 0``, ranked by the risk ``1 - p``). For
#: engagekit's targets ``auprc`` is that of the good, usually common outcome, which says
#: little: at a base rate of 0.96 any ranking scores near 0.96.
FLAGGED_AUPRC = "auprc_flagged"

# Probabilities are kept this far from 0 and 1 before a logit or a log, so a model that
# says exactly 0 or 1 gets a large but finite log loss and logit.
_P_CLIP = 1e-12

# Newton's method stops after a step that moves no coefficient by more than this. It
# converges quadratically, so the error left is of the order of the step squared, far
# below the 1e-6 to which the tests hold it to statsmodels' GLM.
_NEWTON_STEP_TOL = 1e-7
_NEWTON_MAX_ITER = 50


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


# --------------------------------------------------------------------------- point metrics
def point_metrics(y: Any, p: Any, sample_weight: Any = None) -> dict[str, float]:
    """Discrimination, accuracy and calibration of predicted probabilities.

    Parameters
    ----------
    y : array-like of 0/1
        Observed outcomes, one per encounter.
    p : array-like of float
        Predicted probability that ``y == 1``, one per encounter.
    sample_weight : array-like of float, optional
        Non-negative weights; an integer weight ``k`` counts a row ``k`` times, exactly as
        if it were repeated (this is how :func:`~engagekit.evaluation.cluster_bootstrap`
        resamples patients).

    Returns
    -------
    dict of str to float
        ``auroc``
            Area under the ROC curve (ties count one half).
        ``auprc``
            Average precision, the step-wise area under the precision-recall curve
            (as scikit-learn's ``average_precision_score``).
        ``brier``
            Mean squared difference between ``p`` and ``y``.
        ``log_loss``
            Mean negative log-likelihood, with ``p`` clipped to ``[1e-12, 1 - 1e-12]``.
        ``calibration_intercept``
            Calibration-in-the-large: the intercept ``a`` of the logistic regression
            ``logit P(y = 1) = a + logit(p)`` (slope fixed at 1 by an offset). 0 is
            ideal; negative means the predictions are too high on average.
        ``calibration_slope``
            The slope ``b`` of ``logit P(y = 1) = a + b logit(p)``. 1 is ideal; below 1
            means the predictions are too extreme (overfitting).
        ``prevalence``
            Share of ``y == 1``.
        ``n``
            Number of encounters (sum of the weights).

        Metrics the data cannot define are NaN; :func:`undefined_metrics` says why.
        AUROC, AUPRC and both calibration metrics need both outcome classes; the slope
        also needs predictions that do not separate the classes completely.

    Raises
    ------
    ValueError
        If ``y`` is not 0/1, ``p`` is not in [0, 1], lengths differ or there are no rows.

    Notes
    -----
    The calibration regressions (Van Calster et al., J Clin Epidemiol 2016;
    Steyerberg, *Clinical Prediction Models*, 2019) use ``logit(p)`` with ``p`` clipped
    to ``[1e-12, 1 - 1e-12]``, and are fitted by Newton's method; the tests check them
    against statsmodels' ``GLM(family=Binomial())`` (with ``offset=`` for the
    intercept) to 1e-6.

    Examples
    --------
    >>> from engagekit.evaluation import point_metrics
    >>> m = point_metrics([0, 0, 1, 1], [0.1, 0.6, 0.4, 0.8])
    >>> m["auroc"], m["brier"], m["prevalence"]
    (0.75, 0.1925, 0.5)

    With one outcome class, AUROC is undefined; it is NaN, and the reason is available:

    >>> point_metrics([1, 1, 1], [0.2, 0.5, 0.9])["auroc"]
    nan
    >>> undefined_metrics([1, 1, 1], [0.2, 0.5, 0.9])["auroc"]
    'only one outcome class (every y = 1)'
    """
    values, _ = _point_metrics_and_notes(y, p, sample_weight)
    return values


def undefined_metrics(y: Any, p: Any, sample_weight: Any = None) -> dict[str, str]:
    """Why each metric that :func:`point_metrics` returns as NaN is undefined.

    Parameters
    ----------
    y, p, sample_weight
        As for :func:`point_metrics`.

    Returns
    -------
    dict of str to str
        Metric name to reason, only for the metrics that are NaN; empty when every
        metric is defined.

    Examples
    --------
    >>> from engagekit.evaluation import undefined_metrics
    >>> undefined_metrics([0, 1, 0, 1], [0.3, 0.4, 0.5, 0.6])
    {}
    >>> undefined_metrics([0, 0, 1, 1], [0.1, 0.2, 0.7, 0.9])["calibration_slope"]
    'the predictions separate the outcome classes completely, so the slope is infinite'
    """
    _, notes = _point_metrics_and_notes(y, p, sample_weight)
    return notes


def _point_metrics_and_notes(
    y: Any, p: Any, sample_weight: Any
) -> tuple[dict[str, float], dict[str, str]]:
    y_arr, p_arr, w = _as_outcomes_and_probabilities(y, p, sample_weight)
    engine = _PointMetricsEngine(y_arr, p_arr)
    return engine(np.ones_like(y_arr) if w is None else w[engine.order])


def _dot(a: np.ndarray, b: np.ndarray) -> float:
    # einsum's own loop, not BLAS: on vectors, waking BLAS threads costs more than the
    # product, and a bootstrap takes tens of thousands of these
    return float(np.einsum("i,i->", a, b))


_ONE_CLASS_UNDEFINED = ("auroc", "auprc", "calibration_intercept", "calibration_slope")


class _PointMetricsEngine:
    """:func:`point_metrics` of fixed outcomes and predictions, under changing row weights.

    Sorting, clipping and logs are done once, at construction; each call with new
    weights then costs a few passes over the rows, in work arrays reused from call to
    call, since fresh arrays cost page faults that can outweigh the arithmetic. So one
    engine serves all the replicates of a bootstrap; it is not thread-safe (each thread
    needs its own :meth:`copy`).

    Parameters
    ----------
    y, p : numpy.ndarray
        Checked outcomes and predictions.
    flagged_outcome : {0, 1} or None
        If given, the values also hold :data:`FLAGGED_AUPRC`, the average precision of
        this outcome (``y == 0`` ranked by ``1 - p``).
    """

    def __init__(self, y: np.ndarray, p: np.ndarray, flagged_outcome: int | None = None):
        self._flagged = flagged_outcome
        self.names = POINT_METRICS + ((FLAGGED_AUPRC,) if flagged_outcome is not None else ())
        #: row order the engine works in (by increasing p); weights come in this order
        self.order = np.argsort(p, kind="stable")
        y, p = y[self.order], p[self.order]
        self._y = y
        self._clipped = np.clip(p, _P_CLIP, 1 - _P_CLIP)
        self._one_minus = 1 - self._clipped
        log_p, log_1mp = np.log(self._clipped), np.log(self._one_minus)
        self._logit = log_p - log_1mp
        self._row_log_loss = -np.where(y == 1, log_p, log_1mp)
        self._row_brier = (p - y) ** 2
        # first row of each run of equal predictions, when there are ties
        starts = np.flatnonzero(np.r_[True, p[1:] != p[:-1]])
        self._starts = starts if starts.size < p.size else None
        # where Newton's method starts: (calibration intercept, slope fit's intercept,
        # slope); (0, 0, 1) is the answer for calibrated predictions
        self._start = (0.0, 0.0, 1.0)
        self._fitted = self._start
        self._allocate()

    def _allocate(self) -> None:
        self._work = np.empty((8, self._y.size))

    def copy(self) -> _PointMetricsEngine:
        """An engine sharing the prepared arrays, with work arrays of its own."""
        twin = copy.copy(self)
        twin._allocate()
        return twin

    def warm_start(self) -> None:
        """Start later fits from those of the last call (where they were defined).

        Replicates of a bootstrap lie a few Newton steps from the estimates on all data;
        starting there saves steps, and the answer is the same to well within 1e-9.
        """
        self._start = self._fitted

    def __call__(self, w: np.ndarray) -> tuple[dict[str, float], dict[str, str]]:
        """Metrics and notes for weights ``w``, given in the engine's :attr:`order`."""
        values = dict.fromkeys(self.names, math.nan)
        notes: dict[str, str] = {}
        w_pos, w_neg = self._work[0], self._work[1]
        np.multiply(w, self._y, out=w_pos)  # a row's weight if y = 1, else 0
        np.subtract(w, w_pos, out=w_neg)
        total = float(w.sum())
        positives = float(w_pos.sum())
        values["n"] = total
        values["prevalence"] = positives / total
        values["brier"] = _dot(w, self._row_brier) / total
        values["log_loss"] = _dot(w, self._row_log_loss) / total
        if positives == 0 or positives == total:
            reason = f"only one outcome class (every y = {0 if positives == 0 else 1})"
            undefined = _ONE_CLASS_UNDEFINED + self.names[len(POINT_METRICS) :]
            notes.update(dict.fromkeys(undefined, reason))
            return values, notes

        auroc, auprc, auprc_of_0, concordant, discordant = self._ranking(w_pos, w_neg)
        values["auroc"], values["auprc"] = auroc, auprc
        if self._flagged is not None:
            values[FLAGGED_AUPRC] = auprc if self._flagged == 1 else auprc_of_0

        # the regressions go faster without the rows of weight 0 (in a bootstrap
        # replicate, the third of patients not drawn)
        fit_rows: tuple[np.ndarray, ...] = (w, self._y, self._logit, self._clipped, self._one_minus)
        if not np.all(w):
            kept = np.flatnonzero(w)
            fit_rows = tuple(
                np.take(a, kept, out=self._work[i, : kept.size]) for i, a in enumerate(fit_rows)
            )
        w, y, x, clipped, one_minus = fit_rows
        work = self._work[5:, : w.size]

        intercept = self._calibration_intercept(w, clipped, one_minus, positives, work)
        values["calibration_intercept"] = intercept
        if math.isfinite(intercept):
            self._fitted = (intercept, *self._fitted[1:])
        else:
            notes["calibration_intercept"] = "the calibration-in-the-large fit did not converge"

        # pair weights are sums of products of weights: allow for rounding in "zero"
        negligible = 1e-12 * positives * (total - positives)
        if concordant <= negligible and discordant <= negligible:
            notes["calibration_slope"] = "every prediction is the same, so the slope is not defined"
        elif concordant <= negligible or discordant <= negligible:
            # complete or quasi-complete separation: the likelihood rises for ever with b
            notes["calibration_slope"] = (
                "the predictions separate the outcome classes completely, so the slope is infinite"
            )
        else:
            beta = _newton_logistic(w, y, x, np.array(self._start[1:]), work)
            if beta is None:
                beta = _newton_logistic(w, y, x, np.array([0.0, 1.0]), work, damped=True)
            if beta is None:
                notes["calibration_slope"] = "the calibration slope fit did not converge"
            else:
                values["calibration_slope"] = float(beta[1])
                self._fitted = (self._fitted[0], float(beta[0]), float(beta[1]))
        return values, notes

    def _ranking(
        self, w_pos: np.ndarray, w_neg: np.ndarray
    ) -> tuple[float, float, float, float, float]:
        """AUROC, average precision of y = 1 (by p) and of y = 0 (by 1 - p), and the
        weights of concordant and discordant pairs.

        Tied predictions are handled as scikit-learn's ``roc_auc_score`` and
        ``average_precision_score`` handle them.
        """
        cum_neg, cum_pos, pos, neg = self._work[2], self._work[3], w_pos, w_neg
        if self._starts is not None:
            k = self._starts.size
            cum_neg, cum_pos = cum_neg[:k], cum_pos[:k]
            pos = np.add.reduceat(w_pos, self._starts, out=self._work[4, :k])
            neg = np.add.reduceat(w_neg, self._starts, out=self._work[5, :k])
        # pos, neg: weight of y = 1 and of y = 0 at each distinct p, ascending
        np.cumsum(neg, out=cum_neg)
        np.cumsum(pos, out=cum_pos)
        total_pos, total_neg = float(cum_pos[-1]), float(cum_neg[-1])

        # a y = 1 row beats every y = 0 row with a lower p and ties with those at its p
        ties = _dot(pos, neg)
        concordant = _dot(pos, cum_neg) - ties
        discordant = total_pos * total_neg - concordant - ties
        auroc = (concordant + ties / 2) / (total_pos * total_neg)

        # average precision of y = 0 ranked by 1 - p: flagging every p at or below each
        # distinct value (ascending p is descending risk), weighted by the y = 0 recall
        # gained there; before the cumulative sums are overwritten below
        flags_of_0 = np.add(cum_neg, cum_pos, out=self._work[6, : cum_neg.size])
        # rows of weight 0 (not drawn in a bootstrap replicate) can lead: avoid 0 / 0
        np.maximum(flags_of_0, np.finfo(float).tiny, out=flags_of_0)
        precision_of_0 = np.divide(cum_neg, flags_of_0, out=flags_of_0)
        auprc_of_0 = _dot(neg, precision_of_0) / total_neg

        # average precision: the precision of flagging every p at or above each distinct
        # value, weighted by the recall gained there
        true_flags = np.subtract(total_pos, cum_pos, out=cum_pos)
        true_flags += pos
        all_flags = np.subtract(total_neg, cum_neg, out=cum_neg)
        all_flags += neg
        all_flags += true_flags
        # where nothing is flagged, no recall is gained either: avoid 0 / 0
        np.maximum(all_flags, np.finfo(float).tiny, out=all_flags)
        precision = np.divide(true_flags, all_flags, out=true_flags)
        auprc = _dot(pos, precision) / total_pos
        return auroc, auprc, auprc_of_0, concordant, discordant

    def _calibration_intercept(
        self,
        w: np.ndarray,
        clipped: np.ndarray,
        one_minus: np.ndarray,
        positives: float,
        work: np.ndarray,
    ) -> float:
        """Intercept ``a`` of ``logit P(y=1) = a + logit(p)``: the root of sum w (y - q(a))."""
        q, spread = work[0], work[1]

        def excess(a: float) -> tuple[float, float]:
            # with the slope fixed at 1, q(a) = p / (p + exp(-a) (1 - p)): no exp per row
            np.multiply(one_minus, math.exp(-a), out=q)
            np.add(q, clipped, out=q)
            np.divide(clipped, q, out=q)
            np.subtract(1, q, out=spread)
            np.multiply(spread, q, out=spread)
            return positives - _dot(w, q), _dot(w, spread)

        # the root lies within these bounds, wider than any clipped logit
        lo, hi = -80.0, 80.0
        a = self._start[0]
        for _ in range(4 * _NEWTON_MAX_ITER):
            g, derivative = excess(a)
            # g falls as a rises: keep a bracket so that a wild step becomes a bisection
            if g > 0:
                lo = a
            else:
                hi = a
            new = a + g / derivative if derivative > 0 else math.inf
            if not lo < new < hi:
                new = (lo + hi) / 2
            if abs(new - a) < _NEWTON_STEP_TOL:
                return new
            a = new
        return math.nan


def _newton_logistic(
    w: np.ndarray,
    y: np.ndarray,
    x: np.ndarray,
    beta: np.ndarray,
    work: np.ndarray,
    damped: bool = False,
) -> np.ndarray | None:
    """(a, b) maximising sum w [y log q + (1 - y) log(1 - q)], q = expit(a + b x).

    Plain Newton from ``beta`` converges in a few steps unless the data are nearly
    separated; ``damped=True`` halves steps that lower the likelihood, slower but safe.
    ``work`` holds three rows as long as ``x``. None if it does not converge.
    """
    q, resid, v = work[0], work[1], work[2]

    def loglik(b: np.ndarray) -> float:
        eta = b[0] + b[1] * x
        return _dot(w, y * eta - np.logaddexp(0, eta))

    # near separation, a step can send b * x past the float range: expit maps that to 0
    # or 1, and a step that is not finite ends the fit (None), so the overflow is harmless
    with np.errstate(over="ignore", invalid="ignore"):
        return _newton_iterations(w, y, x, beta, q, resid, v, loglik, damped)


def _newton_iterations(w, y, x, beta, q, resid, v, loglik, damped):
    current = loglik(beta) if damped else 0.0
    for _ in range(_NEWTON_MAX_ITER * (4 if damped else 1)):
        np.multiply(x, beta[1], out=q)
        np.add(q, beta[0], out=q)
        special.expit(q, out=q)
        np.subtract(y, q, out=resid)
        np.multiply(resid, w, out=resid)
        np.subtract(1, q, out=v)
        np.multiply(v, q, out=v)
        np.multiply(v, w, out=v)
        v_x = _dot(v, x)
        v_xx = _dot(np.multiply(v, x, out=q), x)
        grad = np.array([resid.sum(), _dot(resid, x)])
        hess = np.array([[v.sum(), v_x], [v_x, v_xx]])
        try:
            step = np.linalg.solve(hess, grad)
        except np.linalg.LinAlgError:
            return None
        if not np.all(np.isfinite(step)):
            return None
        if damped:
            for _halving in range(60):
                candidate = loglik(beta + step)
                if candidate >= current:
                    break
                step = step / 2
            current = candidate
        beta = beta + step
        if np.max(np.abs(step)) < _NEWTON_STEP_TOL:
            return beta
    return None


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


# --------------------------------------------------------------------------- the result
#: Metrics with bootstrap CIs in :func:`evaluate_predictions` (``n`` is a count, reported
#: as ``n_encounters``).
_ESTIMATED = tuple(name for name in POINT_METRICS if name != "n")
#: Names of the estimates of a :class:`GroupMetrics`, in the order ``metrics.json`` holds
#: them.
ESTIMATE_NAMES = (*_ESTIMATED, FLAGGED_AUPRC)
# the parts of an estimate besides its value, and the suffix of each in the JSON form
_ESTIMATE_PARTS = ("ci_low", "ci_high", "n_boot")
_BY = "by_"


class Estimate(Record):
    """A metric on all the data, with its patient-bootstrap percentile interval.

    Attributes
    ----------
    value : float or None
        The metric on all the data; None where the data cannot define it.
    ci_low, ci_high : float or None
        The interval (at :attr:`Metrics.ci_level`); None where no replicate defined it.
    n_boot : int
        The bootstrap replicates in which the metric was defined, that the interval
        rests on.

    Examples
    --------
    >>> Estimate(value=0.71, ci_low=0.69, ci_high=0.73, n_boot=1000).ci_high
    0.73
    """

    value: float | None
    ci_low: float | None
    ci_high: float | None
    n_boot: Annotated[int, Field(ge=0)]


class GroupMetrics(Record):
    """Every metric of one set of encounters (all of them, or one subgroup level), with
    the counts and a note; :attr:`Metrics.overall` and each level of
    :attr:`Metrics.by_group`.

    Attributes
    ----------
    auroc, auprc, brier, log_loss, calibration_intercept, calibration_slope, prevalence
        The :func:`point_metrics` of these encounters, each an :class:`Estimate`.
    auprc_flagged : Estimate
        The average precision of the flagged outcome (:data:`FLAGGED_AUPRC`).
    n_encounters, n_patients : int
    note : str or None
        Why a metric is undefined and which intervals rest on fewer than every
        replicate, or, for a subgroup level too small to measure, why no metric was
        computed; None if there is nothing to say.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> p = rng.uniform(0.2, 0.9, 200)
    >>> y = (rng.uniform(size=200) < p).astype(int)
    >>> overall = evaluate_predictions(y, p, np.repeat(np.arange(50), 4), n_boot=20).overall
    >>> overall.n_patients, overall.estimate("auroc") == overall.auroc
    (50, True)
    """

    auroc: Estimate
    auprc: Estimate
    brier: Estimate
    log_loss: Estimate
    calibration_intercept: Estimate
    calibration_slope: Estimate
    prevalence: Estimate
    auprc_flagged: Estimate
    n_encounters: Annotated[int, Field(ge=0)]
    n_patients: Annotated[int, Field(ge=0)]
    note: str | None

    def estimate(self, name: str) -> Estimate:
        """The estimate of metric ``name`` (one of :data:`ESTIMATE_NAMES`).

        Raises
        ------
        ValueError
            ``name`` is not a metric with an estimate.
        """
        if name not in ESTIMATE_NAMES:
            raise ValueError(f"unknown metric {name!r}; expected one of {list(ESTIMATE_NAMES)}")
        return getattr(self, name)

    def _json(self) -> dict[str, Any]:
        """The JSON form: ``name``, ``name_ci_low``, ``name_ci_high`` and ``name_n_boot`` of
        each estimate, then the counts and the note."""
        out: dict[str, Any] = {}
        for name in ESTIMATE_NAMES:
            estimate = getattr(self, name)
            out[name] = estimate.value
            out.update({f"{name}_{part}": getattr(estimate, part) for part in _ESTIMATE_PARTS})
        out.update(n_encounters=self.n_encounters, n_patients=self.n_patients, note=self.note)
        return out

    @classmethod
    def _fields(cls, data: Any) -> Any:
        if not isinstance(data, Mapping):
            return data
        out = {k: v for k, v in data.items() if k not in _estimate_keys()}
        for name in ESTIMATE_NAMES:
            parts = {p: data[f"{name}_{p}"] for p in _ESTIMATE_PARTS if f"{name}_{p}" in data}
            if name in data:
                parts["value"] = data[name]
            if parts:
                out[name] = parts
        return out


def _estimate_keys() -> frozenset[str]:
    return frozenset(
        key
        for name in ESTIMATE_NAMES
        for key in (name, *(f"{name}_{part}" for part in _ESTIMATE_PARTS))
    )


def _group_location(location: Location) -> Location:
    """Where a field of a :class:`GroupMetrics` is in its JSON form (an estimate's
    parts are flattened: ``auroc_ci_low``)."""
    if len(location) >= 2 and location[0] in ESTIMATE_NAMES and location[1] != "value":
        return (f"{location[0]}_{location[1]}", *location[2:])
    if len(location) >= 2 and location[0] in ESTIMATE_NAMES:
        return (location[0], *location[2:])
    return location


class CalibrationBin(Record):
    """One bin of the calibration curve (a row of :func:`calibration_curve`)."""

    bin: int
    mean_predicted: float
    observed_rate: float
    n: int
    ci_low: float | None
    ci_high: float | None


class RocPoint(Record):
    """One point of the ROC curve (a row of :func:`roc_curve`); the first point's
    threshold, infinite, is None."""

    false_positive_rate: float
    true_positive_rate: float
    threshold: float | None


class DecisionCurvePoint(Record):
    """Net benefits at one risk threshold (a row of :func:`decision_curve`)."""

    threshold: float
    net_benefit_model: float
    net_benefit_all: float
    net_benefit_none: float


class Metrics(Result):
    """Every metric of a set of predictions, overall and by group, with the curves.

    Built by :func:`evaluate_predictions`. Like fairlearn's ``MetricFrame``,
    :attr:`overall` holds the metrics on all the encounters and :attr:`by_group` those of
    each level of each subgroup column; each metric is an :class:`Estimate` with its
    patient-bootstrap interval.

    Attributes
    ----------
    overall : GroupMetrics
        Every encounter.
    n_boot : int
        Bootstrap replicates asked for (an estimate's ``n_boot`` says how many defined
        it).
    ci_level : float
        Level of the percentile intervals.
    seed : int
        Seed of the bootstrap.
    calibration_curve : list of CalibrationBin
    roc_curve : list of RocPoint or None
        At most 200 points; None with a single outcome class.
    decision_curve : list of DecisionCurvePoint
        Net benefit of flagging the outcome ``decision_curve_flagged_outcome``.
    decision_curve_flagged_outcome : {0, 1}
        The outcome a flag is meant to catch (also that of ``auprc_flagged``).
    by_group : dict of str to dict of str to GroupMetrics
        Per subgroup column (``treatment``, ``age_band``, …), per level (``"(missing)"``
        for missing values), the metrics of its encounters; a level too small or with
        one outcome class has none, and its note says why.

    Notes
    -----
    The JSON form (:meth:`to_dict`, ``metrics.json``) is flat: each estimate ``name`` of
    :attr:`overall` is written as ``name``, ``name_ci_low``, ``name_ci_high`` and
    ``name_n_boot``, followed by ``n_encounters``, ``n_patients`` and ``note``; the
    settings and curves; and each subgroup column ``c`` as ``by_<c>``, a mapping of
    level to the same flat block.

    Examples
    --------
    >>> import numpy as np
    >>> import pandas as pd
    >>> rng = np.random.default_rng(0)
    >>> p = rng.uniform(0.2, 0.9, 400)
    >>> y = (rng.uniform(size=400) < p).astype(int)
    >>> patients = np.repeat(np.arange(100), 4)
    >>> by = pd.DataFrame({"treatment": np.where(patients < 90, "cbt_online", "usual_care")})
    >>> metrics = evaluate_predictions(y, p, patients, by=by, n_boot=50)
    >>> auroc = metrics.overall.auroc
    >>> bool(auroc.ci_low < auroc.value < auroc.ci_high), sorted(metrics.by_group["treatment"])
    (True, ['cbt_online', 'usual_care'])
    >>> record = metrics.to_dict()
    >>> record["auroc_ci_low"] == metrics.overall.auroc.ci_low, "by_treatment" in record
    (True, True)
    >>> Metrics.from_dict(record) == metrics
    True
    >>> Metrics.from_dict({**record, "format_version": 2})
    Traceback (most recent call last):
    ...
    engagekit.errors.ResultFormatError: metrics is not valid: its 'format_version' is 2; ...
    """

    _what: ClassVar[str] = "metrics"

    overall: GroupMetrics
    n_boot: Annotated[int, Field(ge=0)]
    ci_level: Annotated[float, Field(gt=0, lt=1)]
    seed: int
    calibration_curve: list[CalibrationBin]
    roc_curve: list[RocPoint] | None
    decision_curve: list[DecisionCurvePoint]
    decision_curve_flagged_outcome: Literal[0, 1]
    by_group: dict[str, dict[str, GroupMetrics]] = Field(default_factory=dict)

    def _json(self) -> dict[str, Any]:
        return {
            **self.overall._json(),
            "n_boot": self.n_boot,
            "ci_level": self.ci_level,
            "seed": self.seed,
            "calibration_curve": [point.model_dump() for point in self.calibration_curve],
            "roc_curve": (
                None if self.roc_curve is None else [p.model_dump() for p in self.roc_curve]
            ),
            "decision_curve": [point.model_dump() for point in self.decision_curve],
            "decision_curve_flagged_outcome": self.decision_curve_flagged_outcome,
            **{
                f"{_BY}{column}": {level: block._json() for level, block in levels.items()}
                for column, levels in self.by_group.items()
            },
        }

    @classmethod
    def _fields(cls, data: dict[str, Any]) -> dict[str, Any]:
        estimates = _estimate_keys() | {"n_encounters", "n_patients", "note"}
        out = {k: v for k, v in data.items() if k not in estimates and not k.startswith(_BY)}
        out["overall"] = GroupMetrics._fields({k: v for k, v in data.items() if k in estimates})
        out["by_group"] = {
            key[len(_BY) :]: (
                {level: GroupMetrics._fields(block) for level, block in levels.items()}
                if isinstance(levels, Mapping)
                else levels
            )
            for key, levels in data.items()
            if key.startswith(_BY)
        }
        return out

    @classmethod
    def _json_location(cls, location: Location) -> Location:
        if location[:1] == ("overall",):
            return _group_location(location[1:])
        if location[:1] == ("by_group",) and len(location) >= 2:
            column = f"{_BY}{location[1]}"
            if len(location) == 2:
                return (column,)
            return (column, location[2], *_group_location(location[3:]))
        return location


# --------------------------------------------------------------------------- the metrics block
def _json_value(value: Any) -> Any:
    """A plain Python value for json.dumps(allow_nan=False): NaN becomes None."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _records(frame: pd.DataFrame, record: type[Record]) -> list[Any]:
    return [
        record(**{key: _json_value(value) for key, value in row.items()})
        for row in frame.to_dict(orient="records")
    ]


def _metrics_block(
    y: np.ndarray,
    p: np.ndarray,
    groups: np.ndarray,
    n_boot: int,
    seed: int,
    ci: float,
    n_jobs: int,
    flagged_outcome: int = 0,
) -> GroupMetrics:
    """Point metrics with patient-bootstrap CIs, counts and a note on what is undefined.

    The same as ``cluster_bootstrap(y, p, groups, point_metrics, ...)`` without ``n``,
    plus :data:`FLAGGED_AUPRC`, but one prepared engine per thread serves every
    replicate.
    """
    codes, n_groups = _group_codes(groups)
    engine = _PointMetricsEngine(y, p, flagged_outcome)
    values, notes = engine(np.ones_like(y))
    # replicates start Newton's method from the estimates on all data, a few steps away
    engine.warm_start()
    codes_sorted = codes[engine.order]

    def make_replicate() -> Callable[[np.ndarray], dict[str, float]]:
        own = engine.copy()

        def replicate(drawn: np.ndarray) -> dict[str, float]:
            weights = np.bincount(drawn, minlength=n_groups)[codes_sorted].astype(float)
            return own(weights)[0]

        return replicate

    replicates = _bootstrap_replicates(
        list(ESTIMATE_NAMES), n_groups, make_replicate, n_boot=n_boot, seed=seed, n_jobs=n_jobs
    )
    estimates = {
        name: Estimate(
            value=_json_value(float(values[name])),
            ci_low=_json_value(low),
            ci_high=_json_value(high),
            n_boot=usable,
        )
        for name, (low, high, usable) in zip(
            ESTIMATE_NAMES, _percentile_intervals(replicates, ci), strict=True
        )
    }
    remarks = [f"{name}: {why}" for name, why in notes.items()]
    remarks += [
        f"{name}: CI from the {estimate.n_boot} of {n_boot} replicates in which it was defined"
        for name, estimate in estimates.items()
        if name not in notes and 0 < estimate.n_boot < n_boot
    ]
    return GroupMetrics(
        **estimates,
        n_encounters=int(y.size),
        n_patients=n_groups,
        note="; ".join(remarks) or None,
    )


def _skipped_block(
    y: np.ndarray, groups: np.ndarray, min_encounters: int, min_patients: int
) -> GroupMetrics | None:
    """The block of a subgroup too small or one-sided to measure, or None if it is fine."""
    n_patients = int(pd.unique(groups).size)
    positives = int(y.sum())
    if y.size < min_encounters:
        why = f"only {y.size} encounters (fewer than {min_encounters})"
    elif n_patients < min_patients:
        why = f"only {n_patients} patients (fewer than {min_patients})"
    elif positives in (0, y.size):
        why = f"only one outcome class (every y = {int(positives > 0)} in {y.size} encounters)"
    else:
        return None
    unmeasured = Estimate(value=None, ci_low=None, ci_high=None, n_boot=0)
    return GroupMetrics(
        **dict.fromkeys(ESTIMATE_NAMES, unmeasured),
        n_encounters=int(y.size),
        n_patients=n_patients,
        note=f"metrics not computed: {why}",
    )


def evaluate_predictions(
    y: Any,
    p: Any,
    groups: Any,
    by: pd.DataFrame | None = None,
    n_boot: int = 1000,
    seed: int = 0,
    *,
    ci: float = 0.95,
    flagged_outcome: Literal[0, 1] = 0,
    min_encounters: int = 50,
    min_patients: int = 10,
    n_bins: int = 10,
    n_jobs: int = 1,
    decision_thresholds: Sequence[float] | None = None,
) -> Metrics:
    """Every metric of a set of predictions, with patient-bootstrap CIs, overall and by group.

    Parameters
    ----------
    y : array-like of 0/1
        Observed outcomes, one per encounter (rows with no recorded outcome left out).
    p : array-like of float
        Predicted probability that ``y == 1``.
    groups : array-like
        Patient of each encounter; the bootstrap resamples patients, so CIs allow for
        the correlation of a patient's encounters.
    by : pandas.DataFrame, optional
        Subgroup columns (treatment, age band, …), one row per encounter, matched to
        ``y`` by position (the index is ignored).
    n_boot : int
        Bootstrap replicates; 0 gives no CIs.
    seed : int
        Seed of the bootstrap.
    ci : float
        Level of the percentile CIs.
    flagged_outcome : {0, 1}
        The outcome a flag is meant to catch, for the decision curve and
        ``auprc_flagged``. engagekit's targets code the good outcome (attended,
        adherent) as 1 and flag the bad one, so by default both are for ``y == 0`` with
        risk ``1 - p``.
    min_encounters, min_patients : int
        A subgroup level with fewer encounters or patients than this gets null metrics
        and a note, as does one with a single outcome class.
    n_bins : int
        Quantile bins of the calibration curve.
    n_jobs : int
        Threads sharing the bootstrap replicates (-1: one per core); the result does
        not depend on it.
    decision_thresholds : sequence of float, optional
        Risks at which the decision curve is computed; by default those of
        :func:`decision_curve`. Pass :func:`decision_thresholds` of a flag rule's
        thresholds so that the curve reaches them.

    Returns
    -------
    Metrics
        :attr:`~Metrics.overall`: for each of ``auroc``, ``auprc``, ``brier``,
        ``log_loss``, ``calibration_intercept``, ``calibration_slope``, ``prevalence``,
        and ``auprc_flagged`` (:data:`FLAGGED_AUPRC`: the average precision of the
        flagged outcome, ranked by its risk; its chance level is that outcome's rate),
        an :class:`Estimate`: the value on all data (None where undefined), its
        interval and the replicates in which it was defined; ``n_encounters``,
        ``n_patients`` and ``note`` (why a metric is undefined, and which CIs rest on
        fewer than ``n_boot`` replicates). The settings ``n_boot``, ``ci_level`` and
        ``seed``; the calibration, ROC (at most 200 points; None with a single outcome
        class) and decision curves; and :attr:`~Metrics.by_group`, the same metrics per
        level of each column of ``by`` (missing levels as ``"(missing)"``).
        :meth:`Metrics.to_dict` is the block engagekit writes to ``metrics.json``.

    Raises
    ------
    ValueError
        Bad ``y``/``p`` (see :func:`point_metrics`), ``groups`` or ``by`` of another
        length, missing patient ids, or bootstrap settings as refused by
        :func:`~engagekit.evaluation.cluster_bootstrap`.

    Examples
    --------
    >>> import json
    >>> import numpy as np
    >>> import pandas as pd
    >>> from engagekit.evaluation import evaluate_predictions
    >>> rng = np.random.default_rng(0)
    >>> p = rng.uniform(0.2, 0.9, 400)
    >>> y = (rng.uniform(size=400) < p).astype(int)
    >>> patients = np.repeat(np.arange(100), 4)
    >>> by = pd.DataFrame({"treatment": np.where(patients < 90, "cbt_online", "usual_care")})
    >>> out = evaluate_predictions(y, p, patients, by=by, n_boot=50)
    >>> out.overall.n_patients, sorted(out.by_group["treatment"])
    (100, ['cbt_online', 'usual_care'])
    >>> out.by_group["treatment"]["usual_care"].note
    'metrics not computed: only 40 encounters (fewer than 50)'
    >>> _ = json.dumps(out.to_dict(), allow_nan=False)
    """
    y_arr, p_arr, _ = _as_outcomes_and_probabilities(y, p)
    groups_arr = np.asarray(groups).ravel()
    if groups_arr.size != y_arr.size:
        raise ValueError(
            f"'groups' must give the patient of every encounter; got {groups_arr.size} "
            f"patient ids for {y_arr.size} encounters."
        )
    if flagged_outcome not in (0, 1):
        raise ValueError(f"'flagged_outcome' must be 0 or 1; got {flagged_outcome!r}.")
    _check_settings(n_boot, ci, n_jobs)
    if by is not None and len(by) != y_arr.size:
        raise ValueError(
            f"'by' must have one row per encounter; got {len(by)} rows for {y_arr.size} encounters."
        )

    overall = _metrics_block(y_arr, p_arr, groups_arr, n_boot, seed, ci, n_jobs, flagged_outcome)
    positives = y_arr.sum()
    roc = _records(roc_curve(y_arr, p_arr), RocPoint) if 0 < positives < y_arr.size else None
    if flagged_outcome == 1:
        curve = decision_curve(y_arr, p_arr, decision_thresholds)
    else:
        curve = decision_curve(1 - y_arr, 1 - p_arr, decision_thresholds)

    by_group: dict[str, dict[str, GroupMetrics]] = {}
    if by is not None:
        for column in by.columns:
            levels = pd.Series(by[column].to_numpy(), dtype=object)
            missing = levels.isna()
            labels = levels.astype(str).where(~missing, "(missing)")
            blocks: dict[str, GroupMetrics] = {}
            for label in sorted(labels.unique()):
                rows = np.flatnonzero((labels == label).to_numpy())
                y_level, p_level, g_level = y_arr[rows], p_arr[rows], groups_arr[rows]
                skipped = _skipped_block(y_level, g_level, min_encounters, min_patients)
                blocks[label] = (
                    skipped
                    if skipped is not None
                    else _metrics_block(
                        y_level, p_level, g_level, n_boot, seed, ci, n_jobs, flagged_outcome
                    )
                )
            by_group[str(column)] = blocks
    return Metrics(
        overall=overall,
        n_boot=int(n_boot),
        ci_level=float(ci),
        seed=int(seed),
        calibration_curve=_records(calibration_curve(y_arr, p_arr, n_bins=n_bins), CalibrationBin),
        roc_curve=roc,
        decision_curve=_records(curve, DecisionCurvePoint),
        # 0 or 1 as a plain int (checked above; a numpy integer or a bool becomes one)
        decision_curve_flagged_outcome=1 if flagged_outcome == 1 else 0,
        by_group=by_group,
    )
