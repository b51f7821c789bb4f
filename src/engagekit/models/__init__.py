"""Models of re-attendance and adherence.

An :class:`EngagementModel` turns an encounter table into the probability of the target
outcome for every encounter, from what was known at that encounter only. Two kinds are
fitted (an interpretable logistic regression with attribute × treatment terms, and
gradient-boosted trees), validated by patient-grouped cross-validation, calibrated inside
the training data, and chosen by cross-validated log loss.
"""

from .calibration import LogitRecalibration, fit_logit_recalibration
from .estimators import MODEL_KINDS, make_estimator
from .model import EngagementModel
from .training import (
    CrossValidation,
    TrainingResult,
    auto_bootstrap_reps,
    cross_validate,
    evaluate_model_predictions,
    fit_model,
    labelled_rows,
    train_model,
)

__all__ = [
    "MODEL_KINDS",
    "CrossValidation",
    "EngagementModel",
    "LogitRecalibration",
    "TrainingResult",
    "auto_bootstrap_reps",
    "cross_validate",
    "evaluate_model_predictions",
    "fit_logit_recalibration",
    "fit_model",
    "labelled_rows",
    "make_estimator",
    "train_model",
]
