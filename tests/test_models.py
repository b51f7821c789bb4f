"""Models: patient-grouped validation, calibration inside training data, honest scores."""

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from engagekit import ContractError, load_config, simulate_encounters
from engagekit.models import (
    MIN_RECALIBRATION_EVENTS,
    CalibrationStatus,
    EarlyStopping,
    TuningStatus,
    cross_validate,
    fit_model,
    train_model,
)


@pytest.fixture(scope="module")
def service():
    """A simulated service and its truth: 3,000 patients to train, 1,500 others to test."""
    return simulate_encounters(3000, seed=11), simulate_encounters(1500, seed=12)


def _auroc(frame, p, target):
    known = frame[target].notna().to_numpy()
    return roc_auc_score(frame.loc[known, target].astype(int), p[known])


@pytest.mark.parametrize("kind", ["logistic", "gbm"])
@pytest.mark.parametrize("target", ["attended_next", "adherent"])
def test_held_out_auroc_is_close_to_the_oracle(service, kind, target):
    train, test = service
    model = fit_model(train.encounters, target, kind, seed=0)
    p = model.predict_proba(test.encounters)
    oracle = _auroc(test.encounters, test.truth[f"p_{target}"].to_numpy(), target)
    got = _auroc(test.encounters, p, target)
    # 3,000 training patients (~700 re-attendance events): the logistic model (the
    # truth's own family) within 5% of the Bayes limit, the trees, which need more data
    # for an additive truth, within 7%; the 0.5% target at 20,000 patients is measured
    # in benchmarks/bench_models.py
    floor = {"logistic": 0.95, "gbm": 0.93}[kind]
    assert got >= floor * oracle, (got, oracle)


def test_every_row_is_scored_including_rows_without_an_outcome(service):
    train, test = service
    model = fit_model(train.encounters, "attended_next", "logistic")
    p = model.predict_proba(test.encounters)
    assert p.shape == (len(test.encounters),)
    assert np.all((p > 0) & (p < 1))
    assert test.encounters["attended_next"].isna().any()


def test_a_later_session_cannot_change_an_earlier_prediction(service):
    train, test = service
    model = fit_model(train.encounters, "attended_next", "gbm")
    enc = test.encounters
    first = enc.groupby("patient_id").head(1).index
    before = model.predict_proba(enc)[first]
    later = enc.drop(index=first).copy()
    later.loc[:, load_config().attribute_names] = 1.0
    changed = pd.concat([enc.loc[first], later]).sort_index()
    after = model.predict_proba(changed)[first]
    assert np.array_equal(before, after)


def test_cross_validation_predicts_each_labelled_row_once(service):
    train, _ = service
    enc = train.encounters
    cv = cross_validate(enc, "adherent", "logistic", n_splits=3, seed=1)
    labelled = enc["adherent"].notna()
    assert cv.predictions.index.equals(enc.index[labelled])
    assert cv.predictions.notna().all()
    assert sum(d["test_encounters_scored"] for d in cv.details) == labelled.sum()
    assert sum(d["test_patients"] for d in cv.details) == enc["patient_id"].nunique()


def test_train_model_reports_metrics_and_exclusions(service):
    train, _ = service
    small = train.encounters[train.encounters["patient_id"] <= "P0001200"]
    result = train_model(small, "attended_next", "auto", n_splits=3, n_boot=20)
    m = result.metrics
    assert result.selection["chosen"] in ("logistic", "gbm")
    assert set(result.selection["cv_log_loss"]) == {"logistic", "gbm"}
    # the metrics record the same choice
    assert m.selection.model_dump(exclude_none=True) == result.selection
    assert m.model == result.selection["chosen"] == result.model.kind
    assert m.n_excluded_missing_outcome == int(small["attended_next"].isna().sum())
    for name in ("auroc", "auprc", "brier", "log_loss", "calibration_intercept"):
        estimate = m.overall.estimate(name)
        assert estimate.ci_low <= estimate.value <= estimate.ci_high
    # 1,200 patients, ~250 events: some overfitting shows as a slope below 1
    assert 0.6 <= m.overall.calibration_slope.value <= 1.4


def test_the_logistic_model_reports_attribute_by_treatment_terms(service):
    train, _ = service
    model = fit_model(train.encounters, "attended_next", "logistic")
    terms = model.coefficients().set_index("term")
    assert "active_listening:treatment=cbt_online" in terms.index
    # the simulator's truth: better-rated listening, more re-attendance
    assert terms.loc["active_listening", "coefficient"] > 0


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda e: e.drop(columns="adherent"), "no 'adherent' column"),
        (lambda e: e.assign(adherent=pd.array([pd.NA] * len(e), dtype="Int8")), "no encounter"),
        (lambda e: e.assign(adherent=pd.array([1] * len(e), dtype="Int8")), "same value"),
    ],
)
def test_an_outcome_that_cannot_be_modelled_is_refused(service, change, message):
    train, _ = service
    with pytest.raises(ContractError, match=message):
        fit_model(change(train.encounters), "adherent", "logistic")


# --------------------------------------------------------------------------- what ran
def test_a_small_hold_out_leaves_the_model_as_fitted():
    # the case seen: 300 patients, 45 held out with 178 encounters and 18 missed
    # sessions; an unguarded recalibration came out as -7.4 + 3.2 * margin and nearly
    # tripled every risk. The simulator knows the true risks.
    simulated = simulate_encounters(300, seed=1)
    model = fit_model(simulated.encounters, "attended_next", "logistic", seed=0)
    record = model.fit_record
    assert (record.held_out_patients, record.held_out_encounters) == (45, 178)
    assert record.tuning == TuningStatus.TUNED and record.refit_on_all_patients
    recalibration = model.recalibration
    assert recalibration is record.recalibration
    assert recalibration.status == CalibrationStatus.TOO_FEW_EVENTS
    assert recalibration.n_events == 18 and not recalibration.applied
    risk = 1 - model.predict_proba(simulated.encounters)
    true_risk = 1 - simulated.truth["p_attended_next"].to_numpy()
    assert abs(risk.mean() - true_risk.mean()) < 0.015


@pytest.mark.parametrize("kind", ["logistic", "gbm"])
def test_too_few_patients_to_hold_out_is_recorded_and_nothing_pretends_to_run(kind):
    encounters = simulate_encounters(100, seed=4).encounters
    model = fit_model(encounters, "adherent", kind, seed=0)
    record = model.fit_record
    assert (
        record.n_patients == encounters.loc[encounters["adherent"].notna(), "patient_id"].nunique()
    )
    assert (record.held_out_patients, record.held_out_encounters) == (0, 0)
    assert record.recalibration.status == CalibrationStatus.NO_HELD_OUT
    assert not record.recalibration.checked and not model.recalibration.applied
    if kind == "logistic":
        assert record.tuning == TuningStatus.DEFAULT
        assert record.early_stopping == EarlyStopping.NOT_APPLICABLE
        assert not record.refit_on_all_patients
    else:
        assert record.tuning == TuningStatus.FIXED
        assert record.early_stopping == EarlyStopping.NOT_USED
        assert not model.estimator.early_stopping
        assert record.boosting_iterations == model.estimator.n_iter_ == 100
    cv = cross_validate(encounters, "adherent", kind, n_splits=3, seed=0)
    assert [d["fit"]["held_out"] for d in cv.details] == [False] * 3
    assert [d["recalibrated"] for d in cv.details] == [False] * 3
    assert [r.to_dict() for r in cv.fit_records] == [d["fit"] for d in cv.details]


@pytest.mark.parametrize("kind", ["logistic", "gbm"])
def test_enough_patients_hold_out_fifteen_percent_for_every_step(kind):
    encounters = simulate_encounters(700, seed=5).encounters
    model = fit_model(encounters, "adherent", kind, seed=0)
    record = model.fit_record
    assert record.held_out_patients == round(0.15 * record.n_patients)
    # adherence is common: over a hundred of each outcome among 105 patients' encounters
    assert record.recalibration.checked
    assert record.recalibration.n_events >= MIN_RECALIBRATION_EVENTS
    assert record.recalibration.n == record.held_out_encounters
    if kind == "gbm":
        assert record.early_stopping == EarlyStopping.USED
        assert (
            record.boosting_iterations == model.estimator.n_iter_ < record.max_boosting_iterations
        )
    else:
        assert record.tuning == TuningStatus.TUNED
        assert model.tuning["held_out_rows"] == record.held_out_encounters


def test_train_model_judges_fitness_and_records_every_fold():
    encounters = simulate_encounters(300, seed=2).encounters
    result = train_model(encounters, "adherent", "logistic", n_splits=3, n_boot=50)
    m = result.metrics
    assert result.steps.fitness.fit_for_use is result.fit_for_use is m.fit_for_use
    assert result.fit_for_use is (m.overall.auroc.ci_low > 0.5)
    assert m.unfit_reason is (None if result.fit_for_use else result.steps.fitness.reason)
    assert m.training_steps == result.steps
    assert m.to_dict()["training_steps"] == result.steps.to_dict()
    assert m.flag_rule == result.flag_rule
    assert len(result.steps.cross_validation_folds) == 3
    assert result.steps.final_model == result.model.fit_record
    # the decision curve reaches the flag rule's thresholds, so a figure can mark them
    thresholds = [point.threshold for point in m.decision_curve]
    assert result.flag_rule.threshold in thresholds
    assert result.flag_rule.medium_threshold in thresholds
