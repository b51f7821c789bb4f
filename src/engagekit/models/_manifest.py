"""A trained model's manifest: what it is, what it was trained on, and how it did.

The manifest travels with the model (``manifest.json`` of a model directory): the
target, the kind, the features, the config, where the training data came from and its
hash, the estimator's settings, the tuning, the flag rule, the calibration map, the
fitting steps that ran, whether the model is fit for use, and the headline metrics.
:func:`build_manifest` builds it from a :class:`~engagekit.models.TrainingResult`; it is
the one place a manifest is made. Saving a model
(:func:`~engagekit.io._model_store.save_model`) stamps it with the creation time, the
library versions and the model file's name and hash. Nothing here reads or writes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Annotated, Any, ClassVar

import pandas as pd
from pydantic import Field, InstanceOf, field_serializer, field_validator

from .._fingerprint import data_fingerprint
from .._results import Record, Result
from ..config import Config, config_from_dict
from ..errors import ConfigError
from ..evaluation._result import Estimate
from ..flags import FlagRule
from ._calibration import LogitRecalibration
from ._fit_record import TrainingSteps

if TYPE_CHECKING:
    from ._training import TrainingResult

__all__ = [
    "MODEL_FORMAT_VERSION",
    "EstimatorRecord",
    "ModelManifest",
    "SubgroupLevelUpdate",
    "SubgroupUpdate",
    "TrainingData",
    "UpdateCurvePoint",
    "UpdatePerformance",
    "UpdateRecord",
    "UpdateTest",
    "build_manifest",
]

#: The format of a model directory and of its manifest. 2: every file of the directory
#: is covered by ``integrity.json`` (1: only the model file's hash, in the manifest).
MODEL_FORMAT_VERSION = 2

Count = Annotated[int, Field(ge=0)]
# what saving stamps on a manifest; absent until it is saved
_STAMPS = ("created", "versions", "model_file", "model_sha256")


class TrainingData(Record):
    """Where the training data came from and the period it covers, for the model card.

    Attributes
    ----------
    source : str or None
        A file, or a database URL without its password (and the table or "a query").
    n_rows : int
        Encounters in the table trained on, with an outcome or not.
    first_encounter_date, last_encounter_date : str or None
        The period covered (ISO dates), when the table has ``encounter_date``.
    simulated : bool or None
        True when the data were made by engagekit's simulator, if that is recorded.
    """

    source: str | None = None
    n_rows: Count
    first_encounter_date: str | None = None
    last_encounter_date: str | None = None
    simulated: bool | None = None

    def _json(self) -> dict[str, Any]:
        return self.model_dump(exclude_none=True)


class EstimatorRecord(Record):
    """The fitted estimator's class and plain-valued settings (``n_iter_``: the
    iterations it used).

    Attributes
    ----------
    estimator_class : str
        Written as ``class``.
    params : dict of str to bool, int, float or str
    """

    estimator_class: str = Field(alias="class")
    params: dict[str, bool | int | float | str]

    def _json(self) -> dict[str, Any]:
        return self.model_dump(by_alias=True)


class UpdateTest(Record):
    """One rung of the model-updating ladder, tested on the new service's data.

    Attributes
    ----------
    step : str
        The step tested (``intercept``, ``logistic``, ``refit``).
    against : str
        The simpler step it is tested against (``none``, ``intercept``, ``logistic``).
    test : str
        The test that decides (see :mod:`engagekit.models._updating`).
    lr_statistic : float or None
        ``2 * (loglik(step) - loglik(against))`` on the updating patients' encounters,
        for the record: encounters of a patient are not independent, so it is not the
        test that decides.
    df : int
        Its degrees of freedom (parameters added by the step).
    lr_p_value : float or None
        Its chi-squared p-value.
    statistic, p_value : float or None
        The deciding test's statistic and p-value.
    rejected : bool
        Whether the deciding test rejects the simpler step at ``alpha``.
    """

    step: str
    against: str
    test: str
    lr_statistic: float | None
    df: Count
    lr_p_value: float | None
    statistic: float | None
    p_value: float | None
    rejected: bool


class UpdatePerformance(Record):
    """A model's performance on the new service's validation patients.

    Attributes
    ----------
    calibration_intercept, calibration_slope, auroc, net_benefit : Estimate
        With patient-bootstrap 95% CIs; ``net_benefit`` is that of flagging the bad
        outcome at risk ``net_benefit_threshold`` or more.
    net_benefit_threshold : float
    """

    calibration_intercept: Estimate
    calibration_slope: Estimate
    auroc: Estimate
    net_benefit: Estimate
    net_benefit_threshold: float


class UpdateCurvePoint(Record):
    """The decision curve of the parent and the updated model at one risk threshold, on
    the validation patients: net benefit of flagging at or above it (Vickers & Elkin).

    Attributes
    ----------
    threshold : float
    before, after : float
        The parent's and the updated model's net benefit.
    flag_all : float
        Flagging every encounter's.
    """

    threshold: float
    before: float
    after: float
    flag_all: float


class SubgroupLevelUpdate(Record):
    """One level of a per-subgroup intercept update, and what the update changed for it.

    Attributes
    ----------
    level : str
    updating_encounters, updating_patients : int
        The level's labelled encounters and patients the offset was fitted on.
    raw_offset, standard_error : float or None
        The level's own intercept on the parent's log-odds (cluster-robust SE); None when
        the level had fewer than the events needed to fit one.
    offset : float
        The offset applied: the raw one shrunk toward the pooled intercept (the pooled
        intercept when there is no raw one).
    calibration_before, calibration_after : Estimate
        The level's calibration in the large on the validation patients, parent and
        updated model (0 is perfect).
    flagged_before, flagged_after : float or None
        The share of the level's validation encounters at or above the flag threshold,
        parent (its threshold) and updated model (the threshold chosen again).
    """

    level: str
    updating_encounters: Count
    updating_patients: Count
    raw_offset: float | None
    standard_error: float | None
    offset: float
    calibration_before: Estimate
    calibration_after: Estimate
    flagged_before: float | None
    flagged_after: float | None


class SubgroupUpdate(Record):
    """A per-subgroup intercept recalibration (``update`` method ``subgroup-intercept``).

    Each level's intercept ``a_g`` of ``logit p = a_g + LP`` (the parent's log-odds
    ``LP`` an offset) is fitted on the updating patients with a cluster-robust SE, and
    shrunk toward the precision-weighted mean ``pooled`` by the empirical-Bayes factor
    ``tau2 / (tau2 + se_g**2)``, ``tau2`` the DerSimonian-Laird between-level variance:
    a level whose intercept is estimated poorly, or levels that do not differ, keep
    (nearly) the pooled intercept.

    Attributes
    ----------
    column : str
    min_events : int
        Fewest encounters of each outcome a level needed for an intercept of its own.
    pooled : float
        The precision-weighted mean intercept, applied to every level without its own.
    tau2 : float
        The between-level variance of the intercepts (0: no level differs beyond chance).
    heterogeneity_q, heterogeneity_df, heterogeneity_p : float, int, float or None
        Cochran's Q test that the levels' intercepts are equal (None with < 2 levels).
    levels : list of SubgroupLevelUpdate
    """

    column: str
    min_events: Count
    pooled: float
    tau2: float
    heterogeneity_q: float | None
    heterogeneity_df: Count
    heterogeneity_p: float | None
    levels: list[SubgroupLevelUpdate]


class UpdateRecord(Record):
    """How a model was updated for a new service (``update`` in its manifest).

    Attributes
    ----------
    parent_model, parent_model_sha256 : str or None
        The model updated: its directory and the SHA-256 of its model file.
    requested, method : str
        The method asked for (``auto``, ``intercept``, ``logistic``, ``refit``) and the
        one applied (also ``none``).
    alpha : float
        Level of the ladder's tests.
    intercept, slope : float or None
        The recalibration ``logit p_new = intercept + slope * LP`` of the parent's
        log-odds ``LP`` (None for ``refit``; 0 and 1 for ``none``).
    updating_patients, updating_encounters, validation_patients, validation_encounters
        The new service's labelled data, split by patient: fitted on, validated on.
    seed : int
    tests : list of UpdateTest
    before, after : UpdatePerformance
        The parent and the updated model on the validation patients.
    subgroup : SubgroupUpdate or None
        The per-subgroup intercepts and what they changed (method
        ``subgroup-intercept``); None otherwise.
    decision_curve : list of UpdateCurvePoint
        Both models' decision curves on the validation patients (the CI is that of
        ``net_benefit`` at the flag threshold, in ``before`` and ``after``).
    """

    parent_model: str | None
    parent_model_sha256: str | None
    requested: str
    method: str
    alpha: float
    intercept: float | None
    slope: float | None
    updating_patients: Count
    updating_encounters: Count
    validation_patients: Count
    validation_encounters: Count
    seed: int
    tests: list[UpdateTest]
    before: UpdatePerformance
    after: UpdatePerformance
    subgroup: SubgroupUpdate | None = None
    decision_curve: list[UpdateCurvePoint] = Field(default_factory=list)


class ModelManifest(Result):
    """The manifest of a trained model (``manifest.json``).

    Build one with :func:`build_manifest`; :func:`~engagekit.io._model_store.save_model`
    writes it, stamped, and the readers of a model directory return it.

    Attributes
    ----------
    target : str
    kind : str
        The kind of model (``logistic``, ``gbm``).
    features : list of str
        The columns the model sees, in order.
    config : dict
        The engagekit config it was trained with (read it with
        :meth:`training_config`).
    training_data_sha256 : str
        SHA-256 of the training table (:func:`~engagekit._fingerprint.data_fingerprint`).
    training_data : TrainingData
    estimator : EstimatorRecord
    n_encounters, n_patients : int
        Encounters with the outcome recorded, and their patients.
    tuning : dict
        The hyperparameters chosen and how (the kind's own record).
    flag_rule : FlagRule
    recalibration : LogitRecalibration
        The calibration check and the map applied.
    fit_for_use : bool
    unfit_reason : str or None
    training_steps : TrainingSteps
    metrics : dict of str to number, str, bool or None
        The headline values of ``metrics.json`` (every entry that is not a list or a
        mapping).
    update : UpdateRecord or None
        For a model made by ``engagekit update``: its parent, the method and the tests
        (absent from a trained model's manifest).
    created, versions, model_file, model_sha256
        Stamped by :func:`~engagekit.io._model_store.save_model`: the creation time, the
        library versions, the model file's name and its SHA-256; None until saved.

    Examples
    --------
    >>> from engagekit import simulate_encounters
    >>> from engagekit.config import load_config
    >>> from engagekit.models import train_model
    >>> encounters = simulate_encounters(200, seed=1).encounters
    >>> trained = train_model(encounters, "adherent", "logistic", n_splits=2, n_boot=0)
    >>> manifest = build_manifest(trained, load_config(), encounters, source="simulated")
    >>> manifest.target, manifest.kind, str(manifest.flag_rule.rule), manifest.model_sha256
    ('adherent', 'logistic', 'top_percent', None)
    >>> ModelManifest.from_dict(manifest.to_dict()) == manifest
    True
    >>> ModelManifest.from_dict({**manifest.to_dict(), "format_version": 1})
    Traceback (most recent call last):
    ...
    engagekit.errors.ResultFormatError: a model manifest is not valid: its 'format_version' is 1; this engagekit reads format_version 2: ...
    """  # noqa: E501

    _what: ClassVar[str] = "a model manifest"
    FORMAT_VERSION: ClassVar[int] = MODEL_FORMAT_VERSION

    target: str
    kind: str
    features: list[str]
    config: dict[str, Any]
    training_data_sha256: str
    training_data: TrainingData
    estimator: EstimatorRecord
    n_encounters: Count
    n_patients: Count
    tuning: dict[str, Any]
    flag_rule: FlagRule
    recalibration: InstanceOf[LogitRecalibration]
    fit_for_use: bool
    unfit_reason: str | None
    training_steps: InstanceOf[TrainingSteps]
    metrics: dict[str, float | int | str | bool | None]
    update: UpdateRecord | None = None
    created: str | None = None
    versions: dict[str, str] | None = None
    model_file: str | None = None
    model_sha256: str | None = None

    @field_validator("flag_rule", mode="before")
    @classmethod
    def _flag_rule(cls, value: Any) -> Any:
        return FlagRule.from_dict(value) if isinstance(value, Mapping) else value

    @field_validator("recalibration", mode="before")
    @classmethod
    def _recalibration(cls, value: Any) -> Any:
        if not isinstance(value, Mapping):
            return value
        try:
            return LogitRecalibration.from_dict(dict(value))
        except TypeError as e:
            raise ValueError(f"not a calibration map: {e}") from e

    @field_validator("training_steps", mode="before")
    @classmethod
    def _training_steps(cls, value: Any) -> Any:
        return TrainingSteps.from_dict(value) if isinstance(value, Mapping) else value

    @field_serializer("flag_rule", "recalibration", "training_steps")
    def _versioned(self, value: Any) -> dict[str, Any]:
        return value.to_dict()

    def training_config(self, model: str = "the model") -> Config:
        """The config the model was trained with, validated.

        Every reader of a manifest's config goes through here, so that one without its
        config, or with one this engagekit cannot read, is refused in the same words
        everywhere.

        Parameters
        ----------
        model : str, default "the model"
            How the message names the model (``"the model 'models/adherent'"``).

        Returns
        -------
        Config

        Raises
        ------
        ConfigError
            The manifest records no config (an empty mapping), or one that is not valid;
            the message names ``model``.

        Examples
        --------
        >>> manifest = ModelManifest.model_construct(config={})
        >>> manifest.training_config("the model 'm'")
        Traceback (most recent call last):
        ...
        engagekit.errors.ConfigError: the manifest of the model 'm' records no config (it is empty)
        """
        if not self.config:
            raise ConfigError(f"the manifest of {model} records no config (it is empty)")
        return config_from_dict(self.config, source=f"of {model}")

    @property
    def saved(self) -> bool:
        """Whether the manifest carries the stamps of saving (time, versions, model
        file and hash)."""
        return all(getattr(self, name) is not None for name in _STAMPS)

    def _json(self) -> dict[str, Any]:
        absent = {n for n in (*_STAMPS, "update") if getattr(self, n) is None}
        out = self.model_dump(exclude=absent)
        out["training_data"] = self.training_data._json()
        out["estimator"] = self.estimator._json()
        return out


def build_manifest(
    training: TrainingResult,
    config: Config,
    encounters: pd.DataFrame,
    *,
    source: str | None = None,
) -> ModelManifest:
    """The manifest of a trained model, from what training returned.

    Parameters
    ----------
    training : TrainingResult
        What :func:`~engagekit.models.train_model` returned.
    config : Config
        The config it was trained with.
    encounters : pandas.DataFrame
        The table it was trained on (hashed, counted and dated for the record).
    source : str, optional
        Where the table came from, for the model card (a file name, or a database URL
        without its password); not recorded when omitted.

    Returns
    -------
    ModelManifest
        Not yet stamped with the saving time, versions and model hash (saving does).

    Examples
    --------
    See :class:`ModelManifest`.
    """
    model, metrics = training.model, training.metrics
    record = metrics.to_dict()
    return ModelManifest(
        target=model.target,
        kind=str(model.kind),
        features=list(model.feature_names),
        config=config.model_dump(mode="json"),
        training_data_sha256=data_fingerprint(encounters),
        training_data=_training_data(encounters, source),
        estimator=_estimator_record(model.estimator),
        n_encounters=metrics.overall.n_encounters,
        n_patients=metrics.overall.n_patients,
        tuning=dict(model.tuning),
        flag_rule=training.flag_rule,
        recalibration=model.recalibration,
        # what train did and its verdict, as metrics.json says it; score, forecast and
        # predict read fit_for_use and unfit_reason
        fit_for_use=metrics.fit_for_use,
        unfit_reason=metrics.unfit_reason,
        training_steps=metrics.training_steps,
        metrics={
            k: v
            for k, v in record.items()
            if k != "format_version" and not isinstance(v, (dict, list))
        },
    )


def _training_data(encounters: pd.DataFrame, source: str | None) -> TrainingData:
    """The source, the rows and the period the training table covers."""
    first = last = None
    if "encounter_date" in encounters.columns and len(encounters):
        dates = pd.to_datetime(encounters["encounter_date"], errors="coerce").dropna()
        if len(dates):
            first = dates.min().date().isoformat()
            last = dates.max().date().isoformat()
    return TrainingData(
        source=source,
        n_rows=len(encounters),
        first_encounter_date=first,
        last_encounter_date=last,
    )


def _estimator_record(estimator: Any) -> EstimatorRecord:
    """The fitted estimator's class and plain-valued settings."""
    import numpy as np

    final = estimator.steps[-1][1] if hasattr(estimator, "steps") else estimator
    params = {
        name: value
        for name, value in sorted(final.get_params(deep=False).items())
        if isinstance(value, (bool, int, float, str))
        and name not in ("verbose", "warm_start")
        and value != "deprecated"
    }
    if hasattr(final, "n_iter_"):
        # boosting iterations kept after early stopping (an array for a linear solver)
        params["n_iter_"] = int(np.max(final.n_iter_))
    return EstimatorRecord.model_validate({"class": type(final).__name__, "params": params})
