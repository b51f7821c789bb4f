"""Logistic recalibration of the margin: judged only on enough events, fitted only when
needed, exact when fitted, and shrunk toward the identity."""

import numpy as np
import pytest
import statsmodels.api as sm
from scipy.special import expit, logit

from engagekit.models import (
    MIN_RECALIBRATION_EVENTS,
    CalibrationStatus,
    LogitRecalibration,
    fit_logit_recalibration,
)


def _outcomes(true_logit, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.random(len(true_logit)) < expit(true_logit)).astype(float)


@pytest.fixture
def true_logit():
    return np.random.default_rng(1).normal(-1.0, 1.2, size=40_000)


def test_a_calibrated_margin_is_left_alone(true_logit):
    y = _outcomes(true_logit)
    recal = fit_logit_recalibration(true_logit, y)
    assert not recal.applied
    assert (recal.intercept, recal.slope) == (0.0, 1.0)
    assert recal.p_value > 0.01


@pytest.mark.parametrize(
    ("distort", "intercept", "slope"),
    [
        # an overconfident model: margin twice the truth → slope 0.5
        (lambda z: 2.0 * z, 0.0, 0.5),
        # a model that overestimates the risk in the large
        (lambda z: z + 0.7, -0.7, 1.0),
        (lambda z: 0.5 * z - 0.3, 0.6, 2.0),
    ],
)
def test_a_miscalibrated_margin_is_corrected(true_logit, distort, intercept, slope):
    y = _outcomes(true_logit)
    margin = distort(true_logit)
    recal = fit_logit_recalibration(margin, y)
    assert recal.applied
    # tolerance: a few standard errors at n = 40,000
    assert recal.intercept == pytest.approx(intercept, abs=0.06)
    assert recal.slope == pytest.approx(slope, abs=0.06 * max(1.0, slope))


def test_the_fit_equals_statsmodels_and_is_shrunk_by_its_own_test(true_logit):
    y = _outcomes(true_logit, seed=3)
    margin = 1.5 * true_logit + 0.2
    recal = fit_logit_recalibration(margin, y)
    family = sm.families.Binomial()
    glm = sm.GLM(y, sm.add_constant(margin), family=family).fit()
    assert recal.raw_intercept == pytest.approx(glm.params[0], abs=1e-6)
    assert recal.raw_slope == pytest.approx(glm.params[1], abs=1e-6)
    # van Houwelingen-le Cessie: (chi2 - df) / chi2, chi2 the likelihood ratio against
    # the identity map, df = 2
    chi2 = 2 * (glm.llf - family.loglike(y, expit(margin)))
    shrinkage = (chi2 - 2) / chi2
    assert recal.status == CalibrationStatus.CORRECTED and recal.checked
    assert recal.shrinkage == pytest.approx(shrinkage, rel=1e-6)
    assert recal.intercept == pytest.approx(shrinkage * glm.params[0], abs=1e-6)
    assert recal.slope == pytest.approx(1 + shrinkage * (glm.params[1] - 1), abs=1e-6)


@pytest.mark.parametrize("seed", range(5))
def test_a_small_hold_out_cannot_distort_the_model(seed):
    # the case seen: 178 held-out encounters of a model whose margin sits around 3
    # (p = 0.95), outcomes that an unguarded fit reads as about -7.4 + 3.2 * margin
    rng = np.random.default_rng(seed)
    margin = rng.normal(3.0, 0.6, 178)
    y = _outcomes(-7.4 + 3.2 * margin, seed=seed)
    unguarded = fit_logit_recalibration(margin, y, min_events=0)
    assert unguarded.applied and unguarded.raw_slope > 2.5  # what the guard prevents
    recal = fit_logit_recalibration(margin, y)
    assert not recal.applied and not recal.checked
    assert recal.status == CalibrationStatus.TOO_FEW_EVENTS
    n_events = int(min(y.sum(), y.size - y.sum()))
    assert n_events < MIN_RECALIBRATION_EVENTS
    assert (recal.n, recal.n_events, recal.min_events) == (178, n_events, MIN_RECALIBRATION_EVENTS)
    assert np.array_equal(recal(margin), margin)
    assert recal.p_value is None and recal.raw_slope is None


@pytest.mark.parametrize(
    ("n_events", "checked"),
    [(MIN_RECALIBRATION_EVENTS - 1, False), (MIN_RECALIBRATION_EVENTS, True)],
)
@pytest.mark.parametrize("rare", [0, 1])
def test_calibration_is_judged_from_the_minimum_events_of_either_outcome(n_events, checked, rare):
    rng = np.random.default_rng(n_events)
    margin = rng.normal(0.0, 1.0, 2_000)
    y = np.full(margin.size, 1.0 - rare)
    y[rng.choice(margin.size, n_events, replace=False)] = rare
    recal = fit_logit_recalibration(margin, y)
    assert recal.checked is checked
    assert recal.n_events == n_events
    expected = {False: {CalibrationStatus.TOO_FEW_EVENTS}, True: set(CalibrationStatus)}
    assert recal.status in expected[checked] - {CalibrationStatus.NO_HELD_OUT}


def test_a_large_miscalibrated_hold_out_is_still_corrected_toward_the_truth():
    # 600 encounters, about 150 of the rarer outcome: just over the minimum, and an
    # overconfident model (margin three times the true log-odds)
    rng = np.random.default_rng(5)
    truth = rng.normal(1.6, 1.0, 600)
    y = _outcomes(truth, seed=6)
    assert MIN_RECALIBRATION_EVENTS <= min(y.sum(), y.size - y.sum()) <= 200
    margin = 3.0 * truth
    recal = fit_logit_recalibration(margin, y)
    assert recal.status == CalibrationStatus.CORRECTED
    # shrunk toward the identity, yet most of the way to the truth's slope of 1/3
    assert 0.0 < recal.shrinkage < 1.0
    assert recal.raw_slope < recal.slope < 0.6
    loss = {
        name: -np.mean(y * eta - np.logaddexp(0, eta))
        for name, eta in (("before", margin), ("after", recal(margin)))
    }
    assert loss["after"] < loss["before"]


def test_no_hold_out_is_recorded_as_such():
    recal = fit_logit_recalibration(np.array([]), np.array([]))
    assert recal.status == CalibrationStatus.NO_HELD_OUT and not recal.applied
    assert LogitRecalibration.from_dict(recal.to_dict()) == recal


def test_recalibration_is_affine_on_the_log_odds_scale():
    recal = LogitRecalibration(intercept=0.3, slope=0.8, applied=True)
    margin = logit(np.array([0.1, 0.5, 0.9]))
    assert np.allclose(recal(margin), 0.3 + 0.8 * margin)


@pytest.mark.parametrize("y", [np.zeros(500), np.ones(500), np.array([0.0, 1.0] * 10)])
def test_too_little_information_gives_the_identity(y):
    recal = fit_logit_recalibration(np.linspace(-2, 2, len(y)), y)
    assert not recal.applied
    assert recal(np.array([1.5]))[0] == 1.5


def test_the_test_by_patient_does_not_count_a_patients_repeats_as_new_evidence():
    """Each patient's encounters repeated five times: the likelihood-ratio test takes
    the repeats as five times the evidence and 'corrects' a calibration the patients do
    not show to be off; the cluster-robust test by patient sees the patients' evidence."""
    rng = np.random.default_rng(11)
    truth = rng.normal(-1.0, 1.0, size=400)
    y_once = _outcomes(truth, seed=12)
    margin_once = 1.3 * truth  # overconfident, but not significantly so on 400 patients
    once = fit_logit_recalibration(margin_once, y_once, min_events=0)
    assert once.status == CalibrationStatus.NOT_NEEDED and once.test == "likelihood-ratio"
    margin, y = np.repeat(margin_once, 5), np.repeat(y_once, 5)
    patients = np.repeat(np.arange(400), 5)
    naive = fit_logit_recalibration(margin, y, min_events=0)
    by_patient = fit_logit_recalibration(margin, y, min_events=0, groups=patients)
    assert naive.status == CalibrationStatus.CORRECTED and naive.p_value < 0.01
    assert by_patient.status == CalibrationStatus.NOT_NEEDED
    assert by_patient.test == "cluster-robust Wald"
    # the same fit, and about the evidence of the 400 patients
    assert by_patient.raw_slope == pytest.approx(naive.raw_slope)
    assert by_patient.p_value == pytest.approx(once.p_value, abs=0.05)


def test_the_robust_wald_statistic_is_statsmodels_cluster_covariance(true_logit):
    y = _outcomes(true_logit, seed=5)
    margin = 1.3 * true_logit - 0.1
    patients = np.arange(len(y)) // 4
    recal = fit_logit_recalibration(margin, y, groups=patients)
    glm = sm.GLM(y, sm.add_constant(margin), family=sm.families.Binomial()).fit(
        cov_type="cluster", cov_kwds={"groups": patients, "use_correction": False}
    )
    delta = glm.params - np.array([0.0, 1.0])
    n_groups = len(np.unique(patients))
    wald = delta @ np.linalg.solve(glm.cov_params() * n_groups / (n_groups - 1), delta)
    from scipy import stats

    assert recal.p_value == pytest.approx(float(stats.chi2.sf(wald, 2)), rel=1e-6)


def test_a_correction_the_out_of_fold_margins_confirm_is_kept(true_logit):
    from engagekit.models._calibration import confirmed_by_cross_validation

    y = _outcomes(true_logit, seed=8)
    patients = np.arange(len(y)) // 4
    margin = 2.0 * true_logit  # overconfident everywhere: the hold-out and the folds agree
    held_out = fit_logit_recalibration(margin[:6000], y[:6000], groups=patients[:6000])
    assert held_out.applied
    kept = confirmed_by_cross_validation(held_out, margin, y, patients)
    assert kept.status == CalibrationStatus.CORRECTED and kept.applied
    assert (kept.intercept, kept.slope) == (held_out.intercept, held_out.slope)
    assert kept.out_of_fold_p_value < 0.01 and kept.out_of_fold_n == len(y)
    # a calibrated out-of-fold margin does not confirm the same held-out correction
    dropped = confirmed_by_cross_validation(held_out, true_logit, y, patients)
    assert dropped.status == CalibrationStatus.NOT_CONFIRMED and not dropped.applied
    assert (dropped.intercept, dropped.slope) == (0.0, 1.0)
    assert dropped.raw_slope == held_out.raw_slope  # what the hold-out found is kept
    # nothing to confirm: returned as it is
    calibrated = fit_logit_recalibration(true_logit, y, groups=patients)
    assert confirmed_by_cross_validation(calibrated, margin, y, patients) is calibrated
