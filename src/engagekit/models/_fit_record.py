"""What fitting a model actually did, step by step, and whether the model is fit for use.

:func:`~engagekit.models.fit_model` holds out a share of the training patients to tune
the logistic model's penalty, to stop the trees early and to judge calibration; with too
few patients it holds none out, and each of those steps falls back or is left out. A
:class:`FitRecord` says which steps ran, so that the model card, ``metrics.json`` and
the command line describe only what was done. :class:`FitnessForUse` is the verdict on
whether the validated model ranks patients better than chance at all, and
:class:`TrainingSteps` gathers what one training did: the final model's record, each
fold's, the verdict and, when a large table was sampled, the :class:`TrainingSample`
the model was fitted on.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from ._calibration import LogitRecalibration

if TYPE_CHECKING:
    from ..evaluation._result import Metrics

__all__ = [
    "CHANCE_AUROC",
    "FITNESS_RULE",
    "EarlyStopping",
    "FitRecord",
    "FitnessForUse",
    "TrainingSample",
    "TrainingSteps",
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
        :mod:`engagekit.models._calibration`).

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
        _check_version(record, "fit record")
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
        """A JSON-ready mapping with a ``format_version``; :meth:`from_dict` reads it."""
        return {
            "format_version": _FORMAT_VERSION,
            "fit_for_use": self.fit_for_use,
            "reason": self.reason,
            "rule": self.rule,
        }

    @classmethod
    def from_dict(cls, record: Mapping[str, Any]) -> FitnessForUse:
        """The verdict :meth:`to_dict` wrote."""
        _check_version(record, "fitness")
        return cls(**{k: v for k, v in record.items() if k != "format_version"})

    @property
    def unfit_reason(self) -> str | None:
        """The reason, when the model is unfit for use; None otherwise."""
        return None if self.fit_for_use else self.reason


@dataclass(frozen=True)
class TrainingSample:
    """The patient-level random sample of a large table a model was fitted on (see
    :func:`~engagekit.models.sample_for_training`), and the patients outside it that
    validated it.

    Every count is of encounters with an outcome recorded or not, and of their patients.

    Attributes
    ----------
    sample_encounters, sample_patients : int
        In the sample: everything training did (selection, cross-validation,
        calibration, the flag rule, the final fit) used these only.
    table_encounters, table_patients : int
        In the whole table the sample was drawn from.
    seed : int
        The seed of the draws (whether a patient is drawn depends on its id and the
        seed only).
    validation_encounters, validation_patients : int
        Of patients outside the sample, on whose labelled encounters the final model was
        validated (``outside_sample_validation`` of ``metrics.json``).
    sample_above : int or None
        The table size above which a sample is drawn, when a rule drew it.

    Examples
    --------
    >>> sample = TrainingSample(sample_encounters=1_000_312, sample_patients=41_203,
    ...                         table_encounters=10_000_000, table_patients=412_000, seed=0,
    ...                         validation_encounters=98_000, validation_patients=4_000)
    >>> TrainingSample.from_dict(sample.to_dict()) == sample
    True
    >>> TrainingSample.from_dict({**sample.to_dict(), "sample_patients": 500_000})
    Traceback (most recent call last):
    ...
    ValueError: a sample of 500000 patients cannot be drawn from a table of 412000
    """

    sample_encounters: int
    sample_patients: int
    table_encounters: int
    table_patients: int
    seed: int
    validation_encounters: int
    validation_patients: int
    sample_above: int | None = None

    def __post_init__(self) -> None:
        for what in ("encounters", "patients"):
            drawn, table = getattr(self, f"sample_{what}"), getattr(self, f"table_{what}")
            validating = getattr(self, f"validation_{what}")
            if not 0 <= drawn <= table:
                raise ValueError(
                    f"a sample of {drawn} {what} cannot be drawn from a table of {table}"
                )
            if not 0 <= validating <= table - drawn:
                raise ValueError(
                    f"{validating} {what} outside a sample of {drawn} cannot be drawn from "
                    f"a table of {table}"
                )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping with a ``format_version``; :meth:`from_dict` reads it."""
        return {
            "format_version": _FORMAT_VERSION,
            **{name: getattr(self, name) for name in self.__dataclass_fields__},
        }

    @classmethod
    def from_dict(cls, record: Mapping[str, Any]) -> TrainingSample:
        """The record :meth:`to_dict` wrote."""
        _check_version(record, "training sample")
        return cls(**{k: v for k, v in record.items() if k != "format_version"})


@dataclass(frozen=True)
class TrainingSteps:
    """What :func:`~engagekit.models.train_model` did: the steps each model's fit ran,
    the verdict and, from a large table, the sample it was fitted on.

    Attributes
    ----------
    final_model : FitRecord
        The steps of the fit of the model that is returned and saved.
    cross_validation_folds : tuple of FitRecord
        The steps of each fold's fit, in fold order.
    fitness : FitnessForUse
        Whether the validated model ranks patients better than chance.
    sample : TrainingSample or None
        When training ran on a patient-level random sample of a larger table: its size,
        the table's and the validation's outside it (None when the table was used whole;
        ``to_dict`` then writes no ``sample``).

    Examples
    --------
    >>> record = FitRecord(kind="logistic", n_patients=100, n_encounters=430,
    ...                    held_out_patients=0, held_out_encounters=0,
    ...                    tuning="default", early_stopping="not_applicable")
    >>> steps = TrainingSteps(record, (record, record), FitnessForUse(True, "ranks", "rule"))
    >>> TrainingSteps.from_dict(steps.to_dict()) == steps
    True
    >>> TrainingSteps.from_dict({**steps.to_dict(), "cross_validation_folds": 5})
    Traceback (most recent call last):
    ...
    ValueError: 'cross_validation_folds' must be a list of fit records, found int
    """

    final_model: FitRecord
    cross_validation_folds: tuple[FitRecord, ...]
    fitness: FitnessForUse
    sample: TrainingSample | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping with a ``format_version`` (``metrics.json`` and the
        manifest hold it as ``training_steps``); :meth:`from_dict` reads it."""
        out = {
            "format_version": _FORMAT_VERSION,
            "final_model": self.final_model.to_dict(),
            "cross_validation_folds": [f.to_dict() for f in self.cross_validation_folds],
            "fitness": self.fitness.to_dict(),
        }
        if self.sample is not None:
            out["sample"] = self.sample.to_dict()
        return out

    @classmethod
    def from_dict(cls, record: Mapping[str, Any]) -> TrainingSteps:
        """The steps :meth:`to_dict` wrote.

        Raises
        ------
        ValueError
            A part is missing or not of its form; the message names it.
        """
        _check_version(record, "record of training steps")
        unknown = sorted(set(record) - {"format_version", *cls.__dataclass_fields__})
        if unknown:
            raise ValueError(f"unknown key(s) {unknown} in the training steps")
        folds = record.get("cross_validation_folds")
        if not isinstance(folds, list):
            raise ValueError(
                "'cross_validation_folds' must be a list of fit records, found "
                f"{type(folds).__name__}"
            )
        return cls(
            final_model=_part(FitRecord, record, "final_model"),
            cross_validation_folds=tuple(
                _part(FitRecord, {"fold": fold}, "fold", f"cross_validation_folds.{k}")
                for k, fold in enumerate(folds)
            ),
            fitness=_part(FitnessForUse, record, "fitness"),
            sample=(
                None if record.get("sample") is None else _part(TrainingSample, record, "sample")
            ),
        )


def _check_version(record: Any, what: str) -> None:
    if not isinstance(record, Mapping):
        raise ValueError(f"a {what} must be a mapping, found {type(record).__name__}")
    found = record.get("format_version", _FORMAT_VERSION)
    if found != _FORMAT_VERSION:
        raise ValueError(
            f"{what} format_version {found!r} is not supported; this engagekit reads "
            f"format_version {_FORMAT_VERSION}"
        )


def _part(cls: Any, record: Mapping[str, Any], key: str, where: str | None = None) -> Any:
    """``cls.from_dict(record[key])``, or a ValueError naming ``where`` (the key)."""
    where = where or key
    if key not in record:
        raise ValueError(f"{where!r} is missing")
    try:
        return cls.from_dict(record[key])
    except (KeyError, TypeError, ValueError) as e:
        detail = f"{e.args[0]!r} is missing" if isinstance(e, KeyError) else str(e)
        raise ValueError(f"{where!r} is not a {cls.__name__}: {detail}") from e


#: The rule of :func:`judge_fitness`, in words, for the record and the model card.
FITNESS_RULE = (
    "a model is fit for use when the lower end of its validated AUROC's confidence "
    "interval lies above 0.5, the AUROC of chance (the point estimate when no interval "
    "was computed); with a temporal split, on the later encounters too"
)


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None


def _verdict(metrics: Metrics, what: str) -> tuple[bool, str]:
    estimate = metrics.overall.auroc
    auroc, low, high = _number(estimate.value), _number(estimate.ci_low), _number(estimate.ci_high)
    level = metrics.ci_level
    if auroc is None:
        note = metrics.overall.note
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


def judge_fitness(metrics: Metrics, temporal: Metrics | None = None) -> FitnessForUse:
    """Is a validated model fit for use? (see :data:`FITNESS_RULE`).

    The lower end of the CI, not the estimate, decides: with a few hundred patients an
    AUROC estimate of 0.6 is often chance plus noise, and a flag threshold set on such a
    model would pick patients at random. A model whose CI lies wholly below 0.5 is
    unfit too (it ranks the wrong way round).

    Parameters
    ----------
    metrics : Metrics
        The cross-validated metrics of :func:`~engagekit.models.train_model`.
    temporal : Metrics, optional
        After a temporal split, the metrics of the encounters after it.

    Returns
    -------
    FitnessForUse

    Examples
    --------
    >>> import numpy as np
    >>> from engagekit.evaluation import evaluate_predictions
    >>> rng = np.random.default_rng(0)
    >>> p = rng.uniform(0.1, 0.9, 600)
    >>> y = (rng.uniform(size=600) < p).astype(int)
    >>> patients = np.repeat(np.arange(200), 3)
    >>> judge_fitness(evaluate_predictions(y, p, patients, n_boot=200)).fit_for_use
    True
    >>> judge_fitness(evaluate_predictions(y, rng.uniform(size=600), patients, n_boot=200))
    FitnessForUse(fit_for_use=False, reason='its cross-validated AUROC is ... (95% CI ... to ...): the interval does not lie above 0.5, so it ranks patients no better than chance', rule=...)
    """  # noqa: E501
    fit, reason = _verdict(metrics, "cross-validated")
    if temporal is not None:
        later_fit, later = _verdict(temporal, "temporal-validation")
        if fit and not later_fit:
            fit, reason = False, later
        elif fit:
            reason = f"{reason}; {later}"
    return FitnessForUse(fit_for_use=fit, reason=reason, rule=FITNESS_RULE)
