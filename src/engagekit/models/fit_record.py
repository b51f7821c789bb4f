"""What fitting a model actually did, step by step, and whether the model is fit for use.

:func:`~engagekit.models.fit_model` holds out a share of the training patients to tune
the logistic model's penalty, to stop the trees early and to judge calibration; with too
few patients it holds none out, and each of those steps falls back or is left out. A
:class:`FitRecord` says which steps ran, so that the model card, ``metrics.json`` and
the command line describe only what was done. :class:`FitnessForUse` is the verdict on
whether the validated model ranks patients better than chance at all.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from .calibration import LogitRecalibration

__all__ = [
    "CHANCE_AUROC",
    "FITNESS_RULE",
    "EarlyStopping",
    "FitRecord",
    "FitnessForUse",
    "TuningStatus",
    "judge_fitness",
]

_FORMAT_VERSION = 1

#: The AUROC of a model that ranks patients no better than a coin.
CHANCE_AUROC = 0.5


class TuningStatus(StrEnum):
    """How the logistic model's penalty was set."""

    #: chosen by the lowest log loss on held-out training patients
    TUNED = "tuned"
    #: too few patients to hold some out: the package's default penalty
    DEFAULT = "default"
    #: the kind has no tuned hyperparameter (the trees' settings are fixed)
    FIXED = "fixed"


class EarlyStopping(StrEnum):
    """Whether the trees stopped adding iterations by their held-out loss."""

    #: monitored on held-out training patients
    USED = "used"
    #: too few patients to hold some out: a fixed number of iterations
    NOT_USED = "not_used"
    #: a logistic model has no iterations to stop
    NOT_APPLICABLE = "not_applicable"


@dataclass(frozen=True)
class FitRecord:
    """The steps one :func:`~engagekit.models.fit_model` call ran.

    Attributes
    ----------
    kind : str
        ``logistic`` or ``gbm``.
    n_patients, n_encounters : int
        Patients and encounters with the outcome recorded.
    held_out_patients, held_out_encounters : int
        Training patients held out (and their labelled encounters); 0 when none were.
    held_out_share : float
        The share of patients held out when there are enough of them.
    min_held_out_patients : int
        Fewest patients a held-out set may have; below it none is held out.
    tuning : str
        A :class:`TuningStatus` value.
    early_stopping : str
        An :class:`EarlyStopping` value.
    boosting_iterations : int
        Iterations the trees kept (0 for a logistic model).
    max_boosting_iterations : int
        The most they could have used (0 for a logistic model).
    refit_on_all_patients : bool
        Whether the logistic model was refitted on every patient, held-out ones included,
        after tuning and the calibration check.
    recalibration : LogitRecalibration
        The calibration check and the map applied (see
        :mod:`engagekit.models.calibration`).

    Examples
    --------
    >>> record = FitRecord(kind="logistic", n_patients=100, n_encounters=430,
    ...                    held_out_patients=0, held_out_encounters=0,
    ...                    tuning="default", early_stopping="not_applicable")
    >>> record.held_out, record.recalibration.checked
    (False, False)
    >>> FitRecord.from_dict(record.to_dict()) == record
    True
    >>> FitRecord(kind="gbm", n_patients=1, n_encounters=1, held_out_patients=0,
    ...           held_out_encounters=0, tuning="guessed", early_stopping="used")
    Traceback (most recent call last):
    ...
    ValueError: 'guessed' is not a valid TuningStatus
    """

    kind: str
    n_patients: int
    n_encounters: int
    held_out_patients: int
    held_out_encounters: int
    tuning: str
    early_stopping: str
    held_out_share: float = 0.15
    min_held_out_patients: int = 30
    boosting_iterations: int = 0
    max_boosting_iterations: int = 0
    refit_on_all_patients: bool = False
    recalibration: LogitRecalibration = field(default_factory=LogitRecalibration)

    def __post_init__(self) -> None:
        # plain str values: a saved model may hold only trusted builtin types
        object.__setattr__(self, "tuning", TuningStatus(self.tuning).value)
        object.__setattr__(self, "early_stopping", EarlyStopping(self.early_stopping).value)

    @property
    def held_out(self) -> bool:
        """Whether any training patients were held out."""
        return self.held_out_patients > 0

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping with a ``format_version``; :meth:`from_dict` reads it."""
        record = {
            name: getattr(self, name)
            for name in self.__dataclass_fields__
            if name != "recalibration"
        }
        return {
            "format_version": _FORMAT_VERSION,
            **record,
            "held_out": self.held_out,
            "recalibration": self.recalibration.to_dict(),
        }

    @classmethod
    def from_dict(cls, record: Mapping[str, Any]) -> FitRecord:
        """The record :meth:`to_dict` wrote."""
        fields = {k: v for k, v in record.items() if k not in ("format_version", "held_out")}
        fields["recalibration"] = LogitRecalibration.from_dict(fields["recalibration"])
        return cls(**fields)


@dataclass(frozen=True)
class FitnessForUse:
    """Whether a validated model ranks patients better than chance.

    Attributes
    ----------
    fit_for_use : bool
    reason : str
        One sentence: why the model is, or is not, fit for use.
    rule : str
        The rule applied, in words.
    """

    fit_for_use: bool
    reason: str
    rule: str

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping with a ``format_version``."""
        return {
            "format_version": _FORMAT_VERSION,
            "fit_for_use": self.fit_for_use,
            "reason": self.reason,
            "rule": self.rule,
        }

    @property
    def unfit_reason(self) -> str | None:
        """The reason, when the model is unfit for use; None otherwise."""
        return None if self.fit_for_use else self.reason


#: The rule of :func:`judge_fitness`, in words, for the record and the model card.
FITNESS_RULE = (
    "a model is fit for use when the lower end of its validated AUROC's confidence "
    "interval lies above 0.5, the AUROC of chance (the point estimate when no interval "
    "was computed); with a temporal split, on the later encounters too"
)


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None


def _verdict(block: Mapping[str, Any], what: str) -> tuple[bool, str]:
    auroc = _number(block.get("auroc"))
    low, high = _number(block.get("auroc_ci_low")), _number(block.get("auroc_ci_high"))
    level = _number(block.get("ci_level")) or 0.95
    if auroc is None:
        note = block.get("note")
        return False, f"its {what} AUROC could not be measured" + (f" ({note})" if note else "")
    if low is not None and high is not None:
        ci = f"{auroc:.2f} ({100 * level:.0f}% CI {low:.2f} to {high:.2f})"
        if low > CHANCE_AUROC:
            return True, f"its {what} AUROC is {ci}, above 0.5 (chance)"
        return False, (
            f"its {what} AUROC is {ci}: the interval does not lie above 0.5, so it ranks "
            "patients no better than chance"
        )
    if auroc > CHANCE_AUROC:
        return True, f"its {what} AUROC is {auroc:.2f}, above 0.5 (no confidence interval)"
    return False, f"its {what} AUROC is {auroc:.2f}, no better than chance (0.5)"


def judge_fitness(metrics: Mapping[str, Any]) -> FitnessForUse:
    """Is a validated model fit for use? (see :data:`FITNESS_RULE`).

    The lower end of the CI, not the estimate, decides: with a few hundred patients an
    AUROC estimate of 0.6 is often chance plus noise, and a flag threshold set on such a
    model would pick patients at random. A model whose CI lies wholly below 0.5 is
    unfit too (it ranks the wrong way round).

    Parameters
    ----------
    metrics : mapping
        The cross-validated metrics of :func:`~engagekit.models.train_model`, with
        ``auroc``, ``auroc_ci_low``, ``auroc_ci_high`` and, after a temporal split,
        ``temporal_validation`` holding the same.

    Returns
    -------
    FitnessForUse

    Examples
    --------
    >>> judge_fitness({"auroc": 0.71, "auroc_ci_low": 0.66, "auroc_ci_high": 0.76}).fit_for_use
    True
    >>> judge_fitness({"auroc": 0.35, "auroc_ci_low": 0.22, "auroc_ci_high": 0.48}).reason
    'its cross-validated AUROC is 0.35 (95% CI 0.22 to 0.48): the interval does not lie above 0.5, so it ranks patients no better than chance'
    """  # noqa: E501
    fit, reason = _verdict(metrics, "cross-validated")
    temporal = metrics.get("temporal_validation")
    if isinstance(temporal, Mapping):
        later_fit, later = _verdict(temporal, "temporal-validation")
        if fit and not later_fit:
            fit, reason = False, later
        elif fit:
            reason = f"{reason}; {later}"
    return FitnessForUse(fit_for_use=fit, reason=reason, rule=FITNESS_RULE)
