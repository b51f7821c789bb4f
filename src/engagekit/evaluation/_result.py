"""The typed records of an evaluation: estimates, per-group metrics, curve points.

:class:`Metrics`, built by :func:`~engagekit.evaluation.evaluate_predictions`, is the
whole metrics block; its ``to_dict()`` is what engagekit writes to ``metrics.json``, a
flat form in which each estimate's interval sits beside its value. The names of the
metrics are defined here too, since the records are laid out by them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field

from .._results import Location, Record, Result

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


# --------------------------------------------------------------------------- the records
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
    >>> from engagekit.evaluation import evaluate_predictions
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
    >>> from engagekit.evaluation import evaluate_predictions
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
