"""Models of re-attendance and adherence.

An :class:`EngagementModel` turns an encounter table into the probability of the target
outcome for every encounter, from what was known at that encounter only. Each kind of
model (an interpretable logistic regression with attribute × treatment terms, and
gradient-boosted trees) lives in one place, :mod:`engagekit.models.kinds`, registered in
:data:`KINDS`; every kind is fitted, validated by patient-grouped cross-validation and
calibrated inside the training data alike, and ``auto`` chooses among them by
cross-validated log loss. Each fit keeps a
:class:`FitRecord` of the steps that actually ran (with few patients, some cannot), and
a trained model carries the verdict of :func:`judge_fitness`: whether it ranks patients
better than chance at all. A large table is trained on as a patient-level random sample
(:func:`sample_for_training`, drawn by :func:`patient_sample_mask`), and the model is
then also validated on patients outside it (:class:`OutsideSampleValidation`). A model
carried to a new service is updated there by :func:`update_model`, up the
model-updating ladder (recalibration in the large, logistic recalibration, refit) no
further than the new service's data need.
"""

from ._calibration import (
    MIN_RECALIBRATION_EVENTS,
    CalibrationStatus,
    LogitRecalibration,
    SubgroupIntercepts,
    fit_logit_recalibration,
)
from ._estimators import ColumnWeights
from ._fit_record import (
    EarlyStopping,
    FitnessForUse,
    FitRecord,
    TrainingSample,
    TuningStatus,
    judge_fitness,
)
from ._manifest import MODEL_FORMAT_VERSION, ModelManifest, build_manifest
from ._model import EngagementModel
from ._model_metrics import (
    ExternalValidation,
    KindSelection,
    ModelMetrics,
    OutsideSampleValidation,
    TemporalValidation,
)
from ._sample import (
    SAMPLE_ABOVE,
    SAMPLE_ROWS,
    VALIDATION_ROWS,
    HeldOutSample,
    patient_sample_mask,
    sample_for_training,
)
from ._training import (
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
from ._updating import (
    ModelUpdate,
    UpdateMethod,
    UpdateStep,
    build_update_manifest,
    build_update_metrics,
    update_model,
)
from .kinds import KINDS, ModelChoice, ModelKind, ModelKindSpec, kind_spec

# A saved model file (skops) names each class it holds by module and name, and the model
# store trusts exactly those names. Naming the classes by their public package keeps the
# files valid when an implementation module moves or is renamed.
for _cls in (ColumnWeights, EngagementModel, FitRecord, LogitRecalibration, SubgroupIntercepts):
    _cls.__module__ = __name__
del _cls

__all__ = [
    "KINDS",
    "MIN_RECALIBRATION_EVENTS",
    "MODEL_FORMAT_VERSION",
    "SAMPLE_ABOVE",
    "SAMPLE_ROWS",
    "VALIDATION_ROWS",
    "CalibrationStatus",
    "ColumnWeights",
    "CrossValidation",
    "EarlyStopping",
    "EngagementModel",
    "ExternalValidation",
    "FitRecord",
    "FitnessForUse",
    "HeldOutSample",
    "KindSelection",
    "LogitRecalibration",
    "ModelChoice",
    "ModelKind",
    "ModelKindSpec",
    "ModelManifest",
    "ModelMetrics",
    "ModelUpdate",
    "OutsideSampleValidation",
    "SubgroupIntercepts",
    "TemporalValidation",
    "TrainingResult",
    "TrainingSample",
    "TrainingSteps",
    "TuningStatus",
    "UpdateMethod",
    "UpdateStep",
    "auto_bootstrap_reps",
    "build_manifest",
    "build_update_manifest",
    "build_update_metrics",
    "cross_validate",
    "evaluate_model_predictions",
    "fit_logit_recalibration",
    "fit_model",
    "judge_fitness",
    "kind_spec",
    "labelled_rows",
    "patient_sample_mask",
    "sample_for_training",
    "train_model",
    "update_model",
]
