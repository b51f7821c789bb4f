"""Evaluation: how well predicted probabilities match what patients then did.

A model gives, for every encounter, the probability that the patient attends the next
session (or adheres to treatment). Evaluating it means comparing those probabilities
with the outcomes that followed: discrimination (AUROC and the ROC curve, average
precision), accuracy (Brier score, log loss), calibration (intercept, slope and the
calibration curve) and clinical usefulness (the decision curve's net benefit). Because
one patient contributes many encounters, uncertainty comes from a patient-level
(cluster) bootstrap, and every metric is also reported per treatment and subgroup.

:func:`evaluate_predictions` builds :class:`Metrics`, whose ``to_dict()`` is the whole
metrics block engagekit writes to ``metrics.json``; the pieces it is made of are public
too.
"""

from ._bootstrap import cluster_bootstrap
from ._curves import calibration_curve, decision_curve, decision_thresholds, roc_curve
from ._fairness import Miscalibration, expected_by_chance, miscalibrated_groups
from ._metrics import evaluate_predictions, point_metrics, undefined_metrics
from ._result import (
    ESTIMATE_NAMES,
    FLAGGED_AUPRC,
    POINT_METRICS,
    CalibrationBin,
    DecisionCurvePoint,
    Estimate,
    GroupMetrics,
    Metrics,
    RocPoint,
)

__all__ = [
    "ESTIMATE_NAMES",
    "FLAGGED_AUPRC",
    "POINT_METRICS",
    "CalibrationBin",
    "DecisionCurvePoint",
    "Estimate",
    "GroupMetrics",
    "Metrics",
    "Miscalibration",
    "RocPoint",
    "calibration_curve",
    "cluster_bootstrap",
    "decision_curve",
    "decision_thresholds",
    "evaluate_predictions",
    "expected_by_chance",
    "miscalibrated_groups",
    "point_metrics",
    "roc_curve",
    "undefined_metrics",
]
