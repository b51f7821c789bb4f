"""The record of what a fit ran, and the verdict on whether a model is fit for use."""

from __future__ import annotations

import json
import re

import pytest

from engagekit.evaluation import ESTIMATE_NAMES, Estimate, GroupMetrics, Metrics
from engagekit.models import (
    CalibrationStatus,
    FitnessForUse,
    FitRecord,
    LogitRecalibration,
    TrainingSteps,
    judge_fitness,
)


def block(auroc, low=None, high=None, *, ci_level=0.95, note=None) -> Metrics:
    """Metrics whose AUROC is ``auroc`` with the interval ``low`` to ``high`` (the other
    metrics undefined, as they play no part in the verdict)."""
    unmeasured = Estimate(value=None, ci_low=None, ci_high=None, n_boot=0)
    estimates = dict.fromkeys(ESTIMATE_NAMES, unmeasured)
    n_boot = 0 if low is None else 200
    estimates["auroc"] = Estimate(value=auroc, ci_low=low, ci_high=high, n_boot=n_boot)
    overall = GroupMetrics(**estimates, n_encounters=400, n_patients=100, note=note)
    return Metrics(
        overall=overall,
        n_boot=n_boot,
        ci_level=ci_level,
        seed=0,
        calibration_curve=[],
        roc_curve=None,
        decision_curve=[],
        decision_curve_flagged_outcome=0,
    )


@pytest.mark.parametrize(
    ("metrics", "temporal", "fit", "reason"),
    [
        # the case seen in a real service: worse than chance, and saved as if usable
        (
            block(0.35, 0.22, 0.48),
            None,
            False,
            "its cross-validated AUROC is 0.35 (95% CI 0.22 to 0.48): the interval does not "
            "lie above 0.5, so it ranks patients no better than chance",
        ),
        # a point estimate above chance is not enough when the interval reaches it
        (block(0.58, 0.49, 0.67), None, False, "the interval does not lie above 0.5"),
        (block(0.60, 0.50, 0.70), None, False, "the interval does not lie above 0.5"),
        (block(0.71, 0.66, 0.76), None, True, "its cross-validated AUROC is 0.71 (95% CI 0.66"),
        (block(0.71, 0.66, 0.76, ci_level=0.9), None, True, "(90% CI 0.66 to 0.76)"),
        # no bootstrap: the estimate decides
        (block(0.62), None, True, "0.62, above 0.5 (no confidence interval)"),
        (block(0.5), None, False, "0.50, no better than chance"),
        (
            block(None, note="auroc: only one outcome class (every y = 1)"),
            None,
            False,
            "could not be measured (auroc: only one outcome class (every y = 1))",
        ),
        # a temporal split must beat chance on the later encounters too
        (
            block(0.71, 0.66, 0.76),
            block(0.55, 0.45, 0.65),
            False,
            "its temporal-validation AUROC is 0.55 (95% CI 0.45 to 0.65)",
        ),
        (
            block(0.71, 0.66, 0.76),
            block(0.69, 0.6, 0.78),
            True,
            "; its temporal-validation AUROC is 0.69",
        ),
    ],
)
def test_a_model_is_fit_for_use_only_when_its_auroc_interval_lies_above_chance(
    metrics, temporal, fit, reason
):
    verdict = judge_fitness(metrics, temporal)
    assert verdict.fit_for_use is fit
    assert reason in verdict.reason
    assert verdict.unfit_reason == (None if fit else verdict.reason)
    assert "lies above 0.5" in verdict.rule
    assert json.loads(json.dumps(verdict.to_dict()))["fit_for_use"] is fit


def test_a_fit_record_round_trips_through_json():
    record = FitRecord(
        kind="gbm",
        n_patients=700,
        n_encounters=3123,
        held_out_patients=105,
        held_out_encounters=467,
        tuning="fixed",
        early_stopping="used",
        boosting_iterations=61,
        max_boosting_iterations=500,
        recalibration=LogitRecalibration(
            p_value=0.4, n=467, status=CalibrationStatus.NOT_NEEDED, n_events=180
        ),
    )
    written = json.loads(json.dumps(record.to_dict(), allow_nan=False))
    assert written["held_out"] is True and written["recalibration"]["checked"] is True
    assert written["recalibration"]["status"] == "not_needed"
    assert FitRecord.from_dict(written) == record
    # plain strings, not enum members: a saved model may hold only trusted builtin types
    assert type(record.tuning) is str and type(record.recalibration.status) is str


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"tuning": "guessed"}, "'guessed' is not a valid TuningStatus"),
        ({"early_stopping": "sometimes"}, "'sometimes' is not a valid EarlyStopping"),
    ],
)
def test_a_fit_record_refuses_an_unknown_step(change, message):
    fields = {
        "kind": "logistic",
        "n_patients": 100,
        "n_encounters": 430,
        "held_out_patients": 0,
        "held_out_encounters": 0,
        "tuning": "default",
        "early_stopping": "not_applicable",
    }
    with pytest.raises(ValueError, match=message):
        FitRecord(**(fields | change))


def _steps() -> TrainingSteps:
    final = FitRecord(
        kind="logistic",
        n_patients=700,
        n_encounters=3123,
        held_out_patients=105,
        held_out_encounters=467,
        tuning="tuned",
        early_stopping="not_applicable",
        refit_on_all_patients=True,
    )
    fold = FitRecord(
        kind="logistic",
        n_patients=560,
        n_encounters=2500,
        held_out_patients=0,
        held_out_encounters=0,
        tuning="default",
        early_stopping="not_applicable",
    )
    return TrainingSteps(final, (fold, fold), FitnessForUse(True, "its AUROC is 0.7", "rule"))


def test_training_steps_round_trip_through_json():
    steps = _steps()
    written = json.loads(json.dumps(steps.to_dict(), allow_nan=False))
    assert written["format_version"] == 1 and len(written["cross_validation_folds"]) == 2
    assert TrainingSteps.from_dict(written) == steps


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda r: r.update(format_version=2), "format_version 2 is not supported"),
        (lambda r: r["fitness"].update(format_version=3), "format_version 3 is not supported"),
        (lambda r: r.pop("final_model"), "'final_model' is missing"),
        (lambda r: r.update(cross_validation_folds=5), "'cross_validation_folds' must be a list"),
        (lambda r: r["cross_validation_folds"][1].pop("kind"), "'cross_validation_folds.1'"),
        (lambda r: r.update(extra=1), "unknown key(s) ['extra']"),
    ],
    ids=["version", "fitness-version", "no-final-model", "folds-a-number", "fold-no-kind", "extra"],
)
def test_training_steps_of_another_form_are_refused_naming_the_part(edit, message):
    written = json.loads(json.dumps(_steps().to_dict()))
    edit(written)
    with pytest.raises(ValueError, match=re.escape(message)):
        TrainingSteps.from_dict(written)
