"""What a trained model's validation says: the metrics with the record of training.

:func:`~engagekit.models.train_model` validates a model by patient-grouped
cross-validation and, with a temporal split, on the encounters after it. Its
:class:`ModelMetrics` is the out-of-fold :class:`~engagekit.evaluation.Metrics` with what
training recorded beside them (the kind chosen and why, the flag rule, the fitting steps
that ran, whether the model is fit for use), and its ``to_dict()`` is the
``metrics.json`` that ``engagekit train`` writes beside the model.
:class:`TemporalValidation` is the pre-split model scored after the split,
:class:`OutsideSampleValidation` a model fitted on a sample of a large table scored on
patients outside the sample, and :class:`ExternalValidation` a saved model scored on new
data (``engagekit evaluate``).
Nothing here computes, reads or writes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, ClassVar

from pydantic import Field, InstanceOf, field_serializer, field_validator

from .._results import Location, Record
from ..evaluation._result import Metrics
from ..flags import FlagRule
from ._fit_record import TrainingSteps
from ._manifest import UpdateRecord

__all__ = [
    "ExternalValidation",
    "KindSelection",
    "ModelMetrics",
    "OutsideSampleValidation",
    "TemporalValidation",
]

Count = Annotated[int, Field(ge=0)]


class KindSelection(Record):
    """How :func:`~engagekit.models.train_model` chose the kind of model.

    Attributes
    ----------
    requested : str
        ``auto`` or a kind.
    cv_log_loss : dict of str to float
        The cross-validated log loss of each kind tried.
    selection_rows, selection_folds : int or None
        With many rows, ``auto`` compares the kinds on a subset of patients: its
        labelled rows and folds (None when the kinds were compared on all the data).
    chosen : str
        The kind with the lowest log loss (the one requested, if not ``auto``).
    """

    requested: str
    cv_log_loss: dict[str, float]
    selection_rows: Count | None = None
    selection_folds: Count | None = None
    chosen: str

    def _json(self) -> dict[str, Any]:
        return self.model_dump(exclude_none=True)


class TemporalValidation(Metrics):
    """The model fitted before a temporal split, scored on the encounters from the split
    day on: its :class:`~engagekit.evaluation.Metrics`, and

    Attributes
    ----------
    split_date : str
        The split day (ISO).
    n_training_encounters : int
        Labelled encounters before the split, which trained the model.
    n_excluded_missing_outcome : int
        Encounters from the split day on with no outcome recorded.
    patients_also_in_training : int
        Patients scored after the split who also had encounters before it.
    """

    _what: ClassVar[str] = "a temporal validation"

    split_date: str
    n_training_encounters: Count
    n_excluded_missing_outcome: Count
    patients_also_in_training: Count

    def _json(self) -> dict[str, Any]:
        return {
            **super()._json(),
            "split_date": self.split_date,
            "n_training_encounters": self.n_training_encounters,
            "n_excluded_missing_outcome": self.n_excluded_missing_outcome,
            "patients_also_in_training": self.patients_also_in_training,
        }


class OutsideSampleValidation(Metrics):
    """A model fitted on a patient-level sample of a large table, scored on patients of
    the table outside the sample (see :func:`~engagekit.models.sample_for_training`): its
    :class:`~engagekit.evaluation.Metrics` (``overall.n_encounters`` and
    ``overall.n_patients`` count the labelled encounters scored), and

    Attributes
    ----------
    n_excluded_missing_outcome : int
        Encounters of those patients with no outcome recorded (scored for their history
        only).

    The sizes of the sample and of the table are in ``training_steps.sample``.
    """

    _what: ClassVar[str] = "an outside-sample validation"

    n_excluded_missing_outcome: Count

    def _json(self) -> dict[str, Any]:
        return {**super()._json(), "n_excluded_missing_outcome": self.n_excluded_missing_outcome}


class ExternalValidation(Metrics):
    """A saved model scored on new labelled encounters (``engagekit evaluate``): its
    :class:`~engagekit.evaluation.Metrics`, and

    Attributes
    ----------
    n_excluded_missing_outcome : int
        Encounters scored for their history but with no outcome recorded.
    target : str
    model : str
        The model's kind.
    """

    _what: ClassVar[str] = "an external validation"

    n_excluded_missing_outcome: Count
    target: str
    model: str

    def _json(self) -> dict[str, Any]:
        return {
            **super()._json(),
            "n_excluded_missing_outcome": self.n_excluded_missing_outcome,
            "target": self.target,
            "model": self.model,
        }


class ModelMetrics(Metrics):
    """A trained model's ``metrics.json``: its cross-validated
    :class:`~engagekit.evaluation.Metrics`, and what training recorded.

    Attributes
    ----------
    n_excluded_missing_outcome : int
        Encounters with no outcome recorded (not fitted or scored against).
    cv_folds : int
        Folds of the patient-grouped cross-validation.
    model : str
        The kind of the model.
    target : str
    covariates_left_out : list of str or None
        Configured covariates the table lacked (None when none was left out).
    flag_rule : FlagRule
        The at-risk flag rule, chosen on the out-of-fold predictions.
    temporal_validation : TemporalValidation or None
        With a temporal split, the model scored after it.
    outside_sample_validation : OutsideSampleValidation or None
        When the model was fitted on a sample of a larger table, the model scored on
        patients outside the sample (None otherwise, and not written).
    fit_for_use : bool
    unfit_reason : str or None
        Why the model is not fit for use (None when it is).
    training_steps : TrainingSteps
        Which fitting steps ran, in the final model and in every fold, and the verdict.
    selection : KindSelection
        How the kind was chosen.
    update : UpdateRecord or None
        For a model updated for a new service (``engagekit update``): the parent, the
        method, the tests and the before/after performance. The metrics above are then
        the updated model's on the new service's validation patients, kept out of the
        update, and ``cv_folds`` and ``selection`` are the parent's.

    Examples
    --------
    >>> from engagekit import simulate_encounters
    >>> from engagekit.models import train_model
    >>> encounters = simulate_encounters(200, seed=1).encounters
    >>> metrics = train_model(encounters, "adherent", "logistic", n_splits=2, n_boot=0).metrics
    >>> metrics.target, metrics.cv_folds, metrics.overall.n_patients <= 200
    ('adherent', 2, True)
    >>> ModelMetrics.from_dict(metrics.to_dict()) == metrics
    True
    >>> ModelMetrics.from_dict({**metrics.to_dict(), "cv_folds": "2"})
    Traceback (most recent call last):
    ...
    engagekit.errors.ResultFormatError: a model's metrics record is not valid: 'cv_folds': input should be a valid integer (found '2')
    """  # noqa: E501

    _what: ClassVar[str] = "a model's metrics record"

    n_excluded_missing_outcome: Count
    cv_folds: Annotated[int, Field(ge=2)]
    model: str
    target: str
    covariates_left_out: list[str] | None = None
    flag_rule: FlagRule
    temporal_validation: TemporalValidation | None = None
    outside_sample_validation: OutsideSampleValidation | None = None
    fit_for_use: bool
    unfit_reason: str | None
    training_steps: InstanceOf[TrainingSteps]
    selection: KindSelection
    update: UpdateRecord | None = None

    @field_validator("flag_rule", mode="before")
    @classmethod
    def _flag_rule(cls, value: Any) -> Any:
        return FlagRule.from_dict(value) if isinstance(value, Mapping) else value

    @field_validator("training_steps", mode="before")
    @classmethod
    def _training_steps(cls, value: Any) -> Any:
        return TrainingSteps.from_dict(value) if isinstance(value, Mapping) else value

    @field_serializer("flag_rule", "training_steps")
    def _versioned(self, value: Any) -> dict[str, Any]:
        return value.to_dict()

    def _json(self) -> dict[str, Any]:
        out = {
            **super()._json(),
            "n_excluded_missing_outcome": self.n_excluded_missing_outcome,
            "cv_folds": self.cv_folds,
            "model": self.model,
            "target": self.target,
        }
        if self.covariates_left_out is not None:
            out["covariates_left_out"] = list(self.covariates_left_out)
        out["flag_rule"] = self.flag_rule.to_dict()
        if self.temporal_validation is not None:
            out["temporal_validation"] = self.temporal_validation._json()
        if self.outside_sample_validation is not None:
            out["outside_sample_validation"] = self.outside_sample_validation._json()
        out.update(
            fit_for_use=self.fit_for_use,
            unfit_reason=self.unfit_reason,
            training_steps=self.training_steps.to_dict(),
            selection=self.selection._json(),
        )
        if self.update is not None:
            out["update"] = self.update.model_dump(mode="json")
        return out

    @classmethod
    def _fields(cls, data: dict[str, Any]) -> dict[str, Any]:
        out = super()._fields(data)
        for key, validation in _VALIDATIONS.items():
            block = out.get(key)
            if isinstance(block, Mapping):
                out[key] = validation._fields(dict(block))
        return out

    @classmethod
    def _json_location(cls, location: Location) -> Location:
        validation = _VALIDATIONS.get(str(location[0])) if location else None
        if validation is not None and len(location) > 1:
            return (location[0], *validation._json_location(location[1:]))
        return super()._json_location(location)


# the validations a model's metrics record holds beside the cross-validated metrics
_VALIDATIONS: dict[str, type[Metrics]] = {
    "temporal_validation": TemporalValidation,
    "outside_sample_validation": OutsideSampleValidation,
}
