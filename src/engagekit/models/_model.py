"""A fitted engagement model: features, estimator and recalibration for one outcome."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import expit

from ._calibration import LogitRecalibration, SubgroupIntercepts, subgroup_offsets
from ._estimators import add_interactions
from ._fit_record import FitRecord
from .kinds import kind_spec

__all__ = ["EngagementModel"]


@dataclass
class EngagementModel:
    """Predicts the probability that ``target`` is 1 for each encounter.

    Attributes
    ----------
    target : str
        ``attended_next`` or ``adherent``.
    kind : str
        A :class:`~engagekit.choices.ModelKind` value (a plain string, so that a saved
        model holds only trusted types).
    features : EncounterFeatures
        Fitted feature transformer (history features per patient, no later sessions).
    estimator : sklearn estimator
        Fitted on the feature matrix.
    recalibration : LogitRecalibration
        Applied to the estimator's log-odds margin.
    subgroup_intercepts : tuple of SubgroupIntercepts
        Per-subgroup intercepts added to the recalibrated log-odds (``engagekit update
        --method subgroup-intercept``); empty for most models.
    interaction_attributes, interaction_treatments : tuple of str
        Attribute × treatment terms added to the design matrix (empty for a kind
        without them, see ``ModelKindSpec.interaction_terms``).
    tuning : dict
        Hyperparameters chosen on held-out training patients, and how (empty for a kind
        with fixed settings).
    fit_record : FitRecord or None
        Which fitting steps ran (held-out patients, tuning, early stopping, calibration
        check); None for a model saved before engagekit recorded them.
    """

    target: str
    kind: str
    features: Any
    estimator: Any
    recalibration: LogitRecalibration = field(default_factory=LogitRecalibration)
    interaction_attributes: tuple[str, ...] = ()
    interaction_treatments: tuple[str, ...] = ()
    tuning: dict[str, Any] = field(default_factory=dict)
    fit_record: FitRecord | None = None
    # last, with a class-level default: a model saved before it existed loads without it
    subgroup_intercepts: tuple[SubgroupIntercepts, ...] = ()

    def design(self, encounters: pd.DataFrame) -> pd.DataFrame:
        """The feature matrix the estimator sees, one row per encounter."""
        X = self.features.transform(encounters)
        if self.interaction_attributes:
            X = add_interactions(
                X,
                self.interaction_attributes,
                self.interaction_treatments,
                self.features.imputation_,
            )
        return X

    @property
    def feature_names(self) -> list[str]:
        names = list(self.features.feature_names_)
        for attribute in self.interaction_attributes:
            names += [f"{attribute}:treatment={t}" for t in self.interaction_treatments[1:]]
        return names

    def margin(self, encounters: pd.DataFrame) -> np.ndarray:
        """The estimator's log-odds before recalibration."""
        return self.estimator.decision_function(self.design(encounters).to_numpy())

    def logit(self, encounters: pd.DataFrame) -> np.ndarray:
        """Calibrated log-odds that the target is 1 (per-subgroup intercepts included)."""
        return self.calibrated(self.margin(encounters), encounters)

    def calibrated(self, margin: np.ndarray, encounters: pd.DataFrame) -> np.ndarray:
        """The calibrated log-odds of ``margin``, this model's margin of ``encounters``
        (for a caller that needs both, without building the features twice)."""
        logit = self.recalibration(margin)
        if self.subgroup_intercepts:
            logit += subgroup_offsets(self.subgroup_intercepts, encounters)
        return logit

    def predict_proba(self, encounters: pd.DataFrame) -> np.ndarray:
        """Calibrated probability that the target is 1, for every row of ``encounters``.

        Rows are scored from their own session and the patient's earlier sessions in
        ``encounters`` only; rows whose outcome is empty are scored too.
        """
        return expit(self.logit(encounters))

    def coefficients(self) -> pd.DataFrame:
        """The model's terms on the features' scale (log-odds per unit, odds ratio).

        Raises
        ------
        ValueError
            The model's kind has no coefficients (trees); explain it instead.
        """
        return kind_spec(self.kind).coefficients(self.estimator, self.feature_names)
