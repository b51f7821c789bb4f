"""The record of what a fit ran, and the verdict on whether a model is fit for use."""

from __future__ import annotations

import json

import pytest

from engagekit.models import (
    CalibrationStatus,
    FitRecord,
    LogitRecalibration,
    judge_fitness,
)


def block(auroc, low=None, high=None, **extra):
    return {"auroc": auroc, "auroc_ci_low": low, "auroc_ci_high": high, **extra}


@pytest.mark.parametrize(
    ("metrics", "fit", "reason"),
    [
        # the case seen in a real service: worse than chance, and saved as if usable
        (
            block(0.35, 0.22, 0.48),
            False,
            "its cross-validated AUROC is 0.35 (95% CI 0.22 to 0.48): the interval does not "
            "lie above 0.5, so it ranks patients no better than chance",
        ),
        # a point estimate above chance is not enough when the interval reaches it
        (block(0.58, 0.49, 0.67), False, "the interval does not lie above 0.5"),
        (block(0.60, 0.50, 0.70), False, "the interval does not lie above 0.5"),
        (block(0.71, 0.66, 0.76), True, "its cross-validated AUROC is 0.71 (95% CI 0.66"),
        (block(0.71, 0.66, 0.76, ci_level=0.9), True, "(90% CI 0.66 to 0.76)"),
        # no bootstrap: the estimate decides
        (block(0.62), True, "0.62, above 0.5 (no confidence interval)"),
        (block(0.5), False, "0.50, no better than chance"),
        (
            block(None, note="auroc: only one outcome class (every y = 1)"),
            False,
            "could not be measured (auroc: only one outcome class (every y = 1))",
        ),
        # a temporal split must beat chance on the later encounters too
        (
            block(0.71, 0.66, 0.76, temporal_validation=block(0.55, 0.45, 0.65)),
            False,
            "its temporal-validation AUROC is 0.55 (95% CI 0.45 to 0.65)",
        ),
        (
            block(0.71, 0.66, 0.76, temporal_validation=block(0.69, 0.6, 0.78)),
            True,
            "; its temporal-validation AUROC is 0.69",
        ),
    ],
)
def test_a_model_is_fit_for_use_only_when_its_auroc_interval_lies_above_chance(
    metrics, fit, reason
):
    verdict = judge_fitness(metrics)
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
