"""Logistic recalibration of a model's log-odds margin.

``logit(p) = a + b * margin`` keeps explanations additive on the log-odds scale: every
contribution of the margin is multiplied by ``b`` and the base value becomes
``a + b * base``. Isotonic regression would not.

A recalibration is estimated on a few held-out patients, so it can do more harm than
good: fitted on the 178 encounters of 45 held-out patients, 18 of them missed
sessions, one came out as ``-7.4 + 3.2 * margin`` and flagged half of all encounters.
Three guards follow the literature on updating prediction models with small samples
(Steyerberg et al., Stat Med 2004;23:2567-86; Steyerberg, *Clinical Prediction Models*,
2nd ed. 2019, ch. 20):

1. **Enough events, or no check.** Calibration is judged only when the held-out
   encounters hold at least :data:`MIN_RECALIBRATION_EVENTS` (100) of *each* outcome:
   Vergouwe et al. (J Clin Epidemiol 2005;58:475-83) found about 100 events and 100
   non-events the least for a validation sample to estimate calibration. With fewer, the
   map is the identity and the record says why.
2. **Only when needed.** The map is fitted only if a test of ``(a, b) = (0, 1)``
   rejects at ``alpha`` (1%). A patient's encounters are not independent, so when the
   patients are given (training always gives them) the test is a Wald test with a
   cluster-robust (by patient) covariance, 2 df; a likelihood-ratio test treating the
   encounters as independent is anti-conservative. It made the demo's model of 8,000
   simulated patients "correct" a calibration that was fine (LR p = 0.0008 on 223
   events, slope 1.24 applied), which left it too extreme on new patients of the same
   service (calibration slope 0.80). Without the patients, the likelihood-ratio test is
   used, and the record names the test.
3. **Shrunk toward the identity.** The fitted ``(a, b - 1)`` is multiplied by van
   Houwelingen and le Cessie's heuristic factor ``(chi2 - 2) / chi2`` (Stat Med
   1990;9:1303-25), ``chi2`` being the test's statistic: a correction the data support
   strongly is kept almost whole, a marginal one is damped.
4. **Confirmed by cross-validation.** One 15% hold-out is a small sample: in the demo
   (223 events) it showed a calibration slope of 1.28 where 20,000 new patients of the
   same service show 1.03. So the final model of :func:`~engagekit.models.train_model`
   keeps its correction only if the same test on the cross-validation's out-of-fold
   margins (every labelled patient, each scored by a fold model that never saw them,
   before that model's own correction; about six times the events) also rejects;
   otherwise nothing is changed and the status says ``not_confirmed``. The out-of-fold
   margins confirm rather than replace: a fold model is fitted on fewer patients than
   the final model (more shrunk, for a penalised one), so a map fitted on them would
   over-correct the final model.

The slope is not bounded: a heavily penalised logistic model can need a slope of 2 or
more, and with 100 events of each outcome the test and the shrinkage already keep
noise out.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from enum import StrEnum
from typing import Any, TypedDict

import numpy as np
from scipy import stats
from scipy.special import expit

__all__ = [
    "MIN_RECALIBRATION_EVENTS",
    "MISSING_LEVEL",
    "CalibrationStatus",
    "LogitRecalibration",
    "SubgroupIntercepts",
    "confirmed_by_cross_validation",
    "fit_logit_recalibration",
    "subgroup_offsets",
]

#: Fewest held-out encounters of each outcome (0 and 1) on which calibration is judged
#: and a recalibration fitted (see the module docstring).
MIN_RECALIBRATION_EVENTS = 100

_FORMAT_VERSION = 1


class CalibrationStatus(StrEnum):
    """What became of a model's calibration check on held-out training patients."""

    #: no patients were held out, so calibration was not checked
    NO_HELD_OUT = "no_held_out"
    #: held-out patients existed but had too few of one outcome to judge calibration
    TOO_FEW_EVENTS = "too_few_events"
    #: checked; the likelihood-ratio test found no miscalibration, so nothing was changed
    NOT_NEEDED = "not_needed"
    #: checked and corrected by a (shrunk) logistic recalibration
    CORRECTED = "corrected"
    #: the held-out test rejected, the cross-validation's out-of-fold margins did not
    #: confirm it, so nothing was changed (the final model of train_model)
    NOT_CONFIRMED = "not_confirmed"


@dataclass(frozen=True)
class LogitRecalibration:
    """``logit(p) = intercept + slope * margin``; identity when not applied.

    Attributes
    ----------
    intercept, slope : float
        The map applied (after shrinkage); 0 and 1 when not applied.
    applied : bool
        Whether the map differs from the identity.
    p_value : float or None
        Test of ``(0, 1)`` on the held-out encounters (``test``); None when the test was
        not run.
    n : int
        Held-out encounters.
    status : str
        A :class:`CalibrationStatus` value.
    n_events : int
        Held-out encounters of the rarer outcome.
    min_events : int
        The fewest of each outcome the check needed.
    raw_intercept, raw_slope : float or None
        The maximum-likelihood fit before shrinkage; None when not fitted.
    shrinkage : float or None
        The factor applied to ``(raw_intercept, raw_slope - 1)``; None when not applied.
    test : str or None
        ``"cluster-robust Wald"`` (by patient) or ``"likelihood-ratio"`` (encounters
        taken as independent; also any recalibration recorded before engagekit named
        its test); None when no test was run.
    out_of_fold_p_value : float or None
        The same test on the cross-validation's out-of-fold margins, run when the
        held-out test rejected for the final model of
        :func:`~engagekit.models.train_model` (guard 4); None when not run.
    out_of_fold_n : int or None
        The out-of-fold encounters it ran on.

    Examples
    --------
    >>> LogitRecalibration(intercept=0.5, slope=2.0, applied=True)([0.0, 1.0])
    array([0.5, 2.5])
    >>> LogitRecalibration(status="unheard_of")
    Traceback (most recent call last):
    ...
    ValueError: 'unheard_of' is not a valid CalibrationStatus
    """

    intercept: float = 0.0
    slope: float = 1.0
    applied: bool = False
    p_value: float | None = None
    n: int = 0
    status: str = CalibrationStatus.NO_HELD_OUT.value
    n_events: int = 0
    min_events: int = MIN_RECALIBRATION_EVENTS
    raw_intercept: float | None = None
    raw_slope: float | None = None
    shrinkage: float | None = None
    test: str | None = None
    out_of_fold_p_value: float | None = None
    out_of_fold_n: int | None = None

    def __post_init__(self) -> None:
        # kept as a plain str: the saved model may hold only trusted builtin types
        object.__setattr__(self, "status", CalibrationStatus(self.status).value)

    def __call__(self, margin: np.ndarray) -> np.ndarray:
        return self.intercept + self.slope * np.asarray(margin, dtype=float)

    @property
    def checked(self) -> bool:
        """Whether calibration was judged on the held-out encounters."""
        return self.status in (
            CalibrationStatus.NOT_NEEDED,
            CalibrationStatus.CORRECTED,
            CalibrationStatus.NOT_CONFIRMED,
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping (a non-finite number as None) with a ``format_version``.

        >>> recal = LogitRecalibration(intercept=0.2, slope=0.9, applied=True, p_value=0.001)
        >>> LogitRecalibration.from_dict(recal.to_dict()) == recal
        True
        """
        record = {
            k: (None if isinstance(v, float) and not np.isfinite(v) else v)
            for k, v in asdict(self).items()
        }
        return {"format_version": _FORMAT_VERSION, **record, "checked": self.checked}

    @classmethod
    def from_dict(cls, record: dict[str, Any]) -> LogitRecalibration:
        """The recalibration :meth:`to_dict` wrote."""
        return cls(**{k: v for k, v in record.items() if k not in ("format_version", "checked")})


def _newton_logistic(x: np.ndarray, y: np.ndarray, iters: int = 100) -> tuple[np.ndarray, float]:
    """Two-parameter logistic regression of y on x by Newton's method; (beta, loglik).

    Steps that lower the likelihood are halved: from the identity ``(0, 1)``, a plain
    Newton step on a strongly overconfident margin overshoots and diverges.
    """
    design = np.column_stack([np.ones_like(x), x])
    beta = np.array([0.0, 1.0])
    current = _loglik(design @ beta, y)
    for _ in range(iters):
        p = expit(design @ beta)
        w = np.clip(p * (1 - p), 1e-12, None)
        grad = design.T @ (y - p)
        hess = design.T @ (design * w[:, None])
        try:
            step = np.linalg.solve(hess, grad)
        except np.linalg.LinAlgError:
            return np.full(2, np.nan), float("nan")
        for _halving in range(50):
            candidate = _loglik(design @ (beta + step), y)
            if candidate >= current:
                break
            step = step / 2
        beta, current = beta + step, max(candidate, current)
        if np.max(np.abs(step)) < 1e-10:
            break
    return beta, current


def _loglik(eta: np.ndarray, y: np.ndarray) -> float:
    # log(1 + exp(eta)) computed stably
    return float(np.sum(y * eta - np.logaddexp(0.0, eta)))


class _Counts(TypedDict):
    """The counts every :class:`LogitRecalibration` records."""

    n: int
    n_events: int
    min_events: int


class _RawFit(TypedDict):
    """The calibration intercept and slope fitted on the held-out patients."""

    raw_intercept: float
    raw_slope: float


def fit_logit_recalibration(
    margin: np.ndarray,
    y: np.ndarray,
    alpha: float = 0.01,
    min_events: int = MIN_RECALIBRATION_EVENTS,
    groups: np.ndarray | None = None,
) -> LogitRecalibration:
    """Judge the calibration of held-out margins, and correct it only if needed.

    With fewer than ``min_events`` encounters of either outcome, nothing is judged or
    changed (status ``too_few_events``). Otherwise ``logit(p) = a + b * margin`` is
    fitted, and applied only if the test of ``(a, b) = (0, 1)`` rejects at ``alpha``
    (cluster-robust Wald by ``groups``, else likelihood-ratio), shrunk toward the
    identity by ``(chi2 - 2) / chi2`` (see the module docstring).

    Parameters
    ----------
    margin : array of float
        The model's log-odds on data it was not fitted on.
    y : array of 0/1
    alpha : float
        Level of the test.
    min_events : int
        Fewest encounters of each outcome on which calibration is judged.
    groups : array, optional
        Each encounter's patient: the test is then a cluster-robust Wald test.

    Returns
    -------
    LogitRecalibration
        The map and the record of what was done: ``status`` is a
        :class:`CalibrationStatus` value.

    Examples
    --------
    A hold-out with 9 encounters of the rarer outcome is not used, however far off:

    >>> import numpy as np
    >>> y = np.r_[np.zeros(9), np.ones(169)]
    >>> recal = fit_logit_recalibration(np.linspace(0, 6, 178), y)
    >>> recal.status, recal.applied, recal.n_events
    ('too_few_events', False, 9)
    """
    margin = np.asarray(margin, dtype=float)
    y = np.asarray(y, dtype=float)
    if y.size == 0:
        return LogitRecalibration(min_events=min_events)
    n_events = int(min(y.sum(), y.size - y.sum()))
    record: _Counts = {"n": int(y.size), "n_events": n_events, "min_events": min_events}
    if n_events < max(1, min_events):
        return LogitRecalibration(status=CalibrationStatus.TOO_FEW_EVENTS, **record)
    beta, ll_fit = _newton_logistic(margin, y)
    if groups is None:
        test = _LIKELIHOOD_RATIO
        chi2 = max(0.0, 2 * (ll_fit - _loglik(margin, y)))
    else:
        test = _ROBUST_WALD
        chi2 = _robust_wald(margin, y, beta, np.asarray(groups))
    p_value = float(stats.chi2.sf(chi2, df=2)) if np.isfinite(chi2) else 1.0
    fitted: _RawFit = {"raw_intercept": float(beta[0]), "raw_slope": float(beta[1])}
    if not np.all(np.isfinite(beta)) or not p_value < alpha:
        return LogitRecalibration(
            p_value=p_value, status=CalibrationStatus.NOT_NEEDED, test=test, **record, **fitted
        )
    # van Houwelingen & le Cessie's heuristic shrinkage, 2 parameters fitted; the test
    # rejected, so chi2 > 2 and the factor lies in (0, 1)
    shrinkage = (chi2 - 2.0) / chi2
    return LogitRecalibration(
        intercept=shrinkage * float(beta[0]),
        slope=1.0 + shrinkage * (float(beta[1]) - 1.0),
        applied=True,
        p_value=p_value,
        status=CalibrationStatus.CORRECTED,
        shrinkage=shrinkage,
        test=test,
        **record,
        **fitted,
    )


def confirmed_by_cross_validation(
    recalibration: LogitRecalibration,
    margins: np.ndarray,
    y: np.ndarray,
    groups: np.ndarray,
    alpha: float = 0.01,
) -> LogitRecalibration:
    """``recalibration`` if the out-of-fold ``margins`` confirm it (guard 4 of the
    module), else the identity with status ``not_confirmed``; a recalibration not
    applied is returned as it is.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> z = rng.normal(-1, 1, 2000)
    >>> y = (rng.random(2000) < 1 / (1 + np.exp(-z))).astype(float)
    >>> fluke = LogitRecalibration(intercept=-0.4, slope=1.2, applied=True, n=300,
    ...                            status="corrected", p_value=0.004)
    >>> kept = confirmed_by_cross_validation(fluke, z, y, np.arange(2000))
    >>> kept.status, kept.applied, (kept.intercept, kept.slope), kept.out_of_fold_n
    ('not_confirmed', False, (0.0, 1.0), 2000)
    """
    if not recalibration.applied:
        return recalibration
    check = fit_logit_recalibration(margins, y, alpha=alpha, groups=groups)
    n = int(np.size(y))
    if check.status == CalibrationStatus.CORRECTED:
        return replace(recalibration, out_of_fold_p_value=check.p_value, out_of_fold_n=n)
    return replace(
        recalibration,
        intercept=0.0,
        slope=1.0,
        applied=False,
        shrinkage=None,
        status=CalibrationStatus.NOT_CONFIRMED.value,
        out_of_fold_p_value=check.p_value,
        out_of_fold_n=n,
    )


_LIKELIHOOD_RATIO = "likelihood-ratio"
_ROBUST_WALD = "cluster-robust Wald"


def _robust_wald(margin: np.ndarray, y: np.ndarray, beta: np.ndarray, groups: np.ndarray) -> float:
    """Wald statistic of ``beta == (0, 1)`` with a cluster-robust (sandwich) covariance,
    the clusters ``groups``, and the small-sample factor ``G / (G - 1)``."""
    import pandas as pd

    if not np.all(np.isfinite(beta)):
        return float("nan")
    design = np.column_stack([np.ones_like(margin), margin])
    p = expit(design @ beta)
    bread = design.T @ (design * (p * (1 - p))[:, None])
    scores = design * (y - p)[:, None]
    codes, uniques = pd.factorize(groups)
    n_groups = len(uniques)
    if n_groups < 2:
        return float("nan")
    summed = np.zeros((n_groups, 2))
    np.add.at(summed, codes, scores)
    meat = summed.T @ summed * (n_groups / (n_groups - 1))
    try:
        inverse = np.linalg.inv(bread)
        covariance = inverse @ meat @ inverse
        delta = beta - np.array([0.0, 1.0])
        return float(delta @ np.linalg.solve(covariance, delta))
    except np.linalg.LinAlgError:
        return float("nan")


#: The level of a subgroup column's empty cells, as the subgroup metrics name it.
MISSING_LEVEL = "(missing)"


@dataclass(frozen=True)
class SubgroupIntercepts:
    """Per-subgroup intercepts added to a model's calibrated log-odds.

    ``logit p = model's log-odds + offsets[level]`` with ``level`` the encounter's value of
    ``column`` as text (``"(missing)"`` when empty, as the subgroup metrics name it). A
    level without an offset of its own (unseen when the offsets were fitted, or too few
    of an outcome) gets ``default``. Made by ``engagekit update --method
    subgroup-intercept`` (:func:`~engagekit.models.update_model`).

    Attributes
    ----------
    column : str
        The subgroup column (``treatment``, ``age_band``, ``gender`` or a configured
        subgroup).
    levels, offsets : tuple
        Each level with an offset of its own, and the offset (log-odds).
    default : float
        The offset of every other level.

    Examples
    --------
    >>> import pandas as pd
    >>> shift = SubgroupIntercepts("gender", ("female", "male"), (0.1, -0.4), default=0.0)
    >>> shift(pd.DataFrame({"gender": ["male", "female", None, "non_binary"]}))
    array([-0.4,  0.1,  0. ,  0. ])
    >>> shift(pd.DataFrame({"age_band": ["60+"]}))
    Traceback (most recent call last):
    ...
    engagekit.errors.ContractError: the encounter table lacks the column 'gender', which \
the model's per-subgroup intercepts need; score a table with the model's subgroup column
    """

    column: str
    levels: tuple[str, ...]
    offsets: tuple[float, ...]
    default: float = 0.0

    def __post_init__(self) -> None:
        # kept as builtins: the saved model may hold only trusted types
        object.__setattr__(self, "levels", tuple(str(v) for v in self.levels))
        object.__setattr__(self, "offsets", tuple(float(v) for v in self.offsets))
        object.__setattr__(self, "default", float(self.default))
        if len(self.levels) != len(self.offsets):
            raise ValueError(
                f"{len(self.levels)} levels but {len(self.offsets)} offsets; give one "
                "offset per level"
            )

    def __call__(self, encounters: Any) -> np.ndarray:
        """The offset of every row of ``encounters`` (a DataFrame with ``column``)."""
        import pandas as pd

        from ..errors import ContractError

        if self.column not in encounters.columns:
            raise ContractError(
                f"the encounter table lacks the column {self.column!r}, which the model's "
                "per-subgroup intercepts need; score a table with the model's subgroup "
                "column"
            )
        text = encounters[self.column].astype("string").fillna(MISSING_LEVEL)
        offsets = pd.Series(self.offsets, index=pd.Index(self.levels, dtype="string"))
        return text.map(offsets).astype("float64").fillna(self.default).to_numpy(dtype="float64")

    def scaled(self, factor: float) -> SubgroupIntercepts:
        """The offsets multiplied by ``factor`` (a later recalibration's slope)."""
        return SubgroupIntercepts(
            self.column,
            self.levels,
            tuple(factor * v for v in self.offsets),
            factor * self.default,
        )


def subgroup_offsets(intercepts: tuple[SubgroupIntercepts, ...], encounters: Any) -> np.ndarray:
    """The summed offsets of ``intercepts`` for every row of ``encounters`` (0 without)."""
    total = np.zeros(len(encounters))
    for shift in intercepts:
        total += shift(encounters)
    return total
