"""How good a set of predicted probabilities is: point metrics, and all of them at once.

:func:`point_metrics` takes the observed binary outcome ``y`` (0/1) and the predicted
probability ``p`` that ``y == 1``, one value per encounter, and returns numbers; nothing
is read, written or printed. :func:`evaluate_predictions` assembles them, with
patient-bootstrap confidence intervals (:mod:`engagekit.evaluation._bootstrap`), overall
and per subgroup, and the curves (:mod:`engagekit.evaluation._curves`) into
:class:`~engagekit.evaluation.Metrics` (:mod:`engagekit.evaluation._result`), whose
``to_dict()`` is the block engagekit writes to ``metrics.json``.

Metrics that a sample cannot define (AUROC when every outcome is the same, the
calibration slope when the predictions separate the outcomes completely) are returned as
NaN rather than raised or warned about; :func:`undefined_metrics` says why, so the
caller can report it.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy import special

from .._results import Record
from ._bootstrap import (
    _bootstrap_replicates,
    _check_settings,
    _group_codes,
    _percentile_intervals,
)
from ._curves import _as_outcomes_and_probabilities, calibration_curve, decision_curve, roc_curve
from ._result import (
    ESTIMATE_NAMES,
    FLAGGED_AUPRC,
    POINT_METRICS,
    CalibrationBin,
    DecisionCurvePoint,
    Estimate,
    GroupMetrics,
    Metrics,
    RocPoint,
)

__all__ = [
    "evaluate_predictions",
    "point_metrics",
    "undefined_metrics",
]

# Probabilities are kept this far from 0 and 1 before a logit or a log, so a model that
# says exactly 0 or 1 gets a large but finite log loss and logit.
_P_CLIP = 1e-12

# Newton's method stops after a step that moves no coefficient by more than this. It
# converges quadratically, so the error left is of the order of the step squared, far
# below the 1e-6 to which the tests hold it to statsmodels' GLM.
_NEWTON_STEP_TOL = 1e-7
_NEWTON_MAX_ITER = 50


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
