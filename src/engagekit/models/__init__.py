"""Models of re-attendance and adherence.

An :class:`EngagementModel` turns an encounter table into the probability of the target
outcome for every encounter, from what was known at that encounter only. Two kinds are
fitted (an interpretable logistic regression with attribute × treatment terms, and
gradient-boosted trees), validated by patient-grouped cross-validation, calibrated inside
the training data, and chosen by cross-validated log loss. Each fit keeps a
:class:`FitRecord` of the steps that actually ran (with few patients, some cannot), and
a trained model carries the verdict of :func:`judge_fitness`: whether it ranks patients
better than chance at all.
"""

from .calibration import (
    MIN_RECALIBRATION_EVENTS,
    CalibrationStatus,
    LogitRecalibration,
    fit_logit_recalibration,
)
from .estimators import MODEL_KINDS, make_estimator
from .fit_record import (
    EarlyStopping,
    FitnessForUse,
    FitRecord,
    TuningStatus,
    judge_fitness,
)
from .model import EngagementModel
from .training import (
    CrossValidation,
    TrainingResult,
    TrainingSteps,
    auto_bootstrap_reps,
    cross_validate,
    evaluate_model_predictions,
    fit_model,
    labelled_rows,
    train_model,
)

__all__ = [
    "MIN_RECALIBRATION_EVENTS",
    "MODEL_KINDS",
    "CalibrationStatus",
    "CrossValidation",
    "EarlyStopping",
    "EngagementModel",
    "FitRecord",
    "FitnessForUse",
    "LogitRecalibration",
    "TrainingResult",
    "TrainingSteps",
    "TuningStatus",
    "auto_bootstrap_reps",
    "cross_validate",
    "evaluate_model_predictions",
    "fit_logit_recalibration",
    "fit_model",
    "judge_fitness",
    "labelled_rows",
    "make_estimator",
    "train_model",
]
