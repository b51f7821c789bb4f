"""Tests of engagekit.evaluation: metrics, calibration, decision curve, patient bootstrap.

Expected values come from hand calculation (in the comments), from an independent
computation in this file (pairs counted in a double loop, sums written out), or from other
software computed on the spot (scikit-learn's metrics, statsmodels' GLM and Wilson
interval); never from the code under test.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from scipy.special import expit, logit
from sklearn import metrics as skm
from statsmodels.stats.proportion import proportion_confint

from engagekit.evaluation import (
    FLAGGED_AUPRC,
    POINT_METRICS,
    calibration_curve,
    cluster_bootstrap,
    decision_curve,
    decision_thresholds,
    evaluate_predictions,
    point_metrics,
    roc_curve,
    undefined_metrics,
)

NAN = math.nan
RANKING_AND_CALIBRATION = ("auroc", "auprc", "calibration_intercept", "calibration_slope")


# --------------------------------------------------------------------------- factories
@pytest.fixture
def make_clustered() -> Callable[..., tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Factory of clustered predictions: ``make(n_patients, patient_sd, seed, ...)``.

    Each patient has 1-8 encounters and a random effect ``u ~ N(0, patient_sd)`` shared by
    all of them, so outcomes are correlated within patient; ``y ~ Bernoulli(expit(x + u))``
    and the prediction is ``expit(x)``, a model that does not know the patient effect.
    Returns ``(y, p, groups)``.
    """

    def make(
        n_patients: int = 200, patient_sd: float = 1.0, seed: int = 0, max_rows: int = 8
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        rng = np.random.default_rng(seed)
        sizes = rng.integers(1, max_rows + 1, n_patients)
        groups = np.repeat(np.arange(n_patients), sizes)
        u = rng.normal(0.0, patient_sd, n_patients)[groups]
        x = rng.normal(-0.5, 1.0, groups.size)
        y = rng.binomial(1, expit(x + u)).astype(float)
        return y, expit(x), groups

    return make


# --------------------------------------------------------------------------- independent routes
def auroc_by_pairs(y, p) -> float:
    """Share of (y = 1, y = 0) pairs in which the y = 1 row has the higher p; ties 1/2."""
    pairs = concordant = 0.0
    for p_pos in [pi for yi, pi in zip(y, p, strict=True) if yi == 1]:
        for p_neg in [pi for yi, pi in zip(y, p, strict=True) if yi == 0]:
            pairs += 1
            concordant += 1.0 if p_pos > p_neg else 0.5 if p_pos == p_neg else 0.0
    return concordant / pairs


def average_precision_by_thresholds(y, p) -> float:
    """sum over distinct thresholds t (high to low) of recall gained at t x precision at t."""
    positives = sum(y)
    total, recall_before = 0.0, 0.0
    for t in sorted(set(p), reverse=True):
        flagged = [yi for yi, pi in zip(y, p, strict=True) if pi >= t]
        recall = sum(flagged) / positives
        total += (recall - recall_before) * sum(flagged) / len(flagged)
        recall_before = recall
    return total


def brier_by_formula(y, p) -> float:
    return sum((pi - yi) ** 2 for yi, pi in zip(y, p, strict=True)) / len(y)


def log_loss_by_formula(y, p) -> float:
    terms = [math.log(pi) if yi == 1 else math.log(1 - pi) for yi, pi in zip(y, p, strict=True)]
    return -sum(terms) / len(y)


def same(a: float, b: float, tol: float) -> bool:
    """Equal within ``tol``, or both NaN."""
    return (math.isnan(a) and math.isnan(b)) or abs(a - b) <= tol


# --------------------------------------------------------------------------- golden numbers
# name -> (y, p, AUROC, average precision, Brier), worked by hand:
#   no_ties: positives 0.4, 0.8 vs negatives 0.1, 0.6: pairs won 1 + 0 + 1 + 1 = 3 of 4.
#     Flagging from the top: 0.8 (y=1) precision 1; 0.6 (y=0); 0.4 (y=1) precision 2/3;
#     AP = (1 + 2/3) / 2 = 5/6. Brier = (0.01 + 0.36 + 0.36 + 0.04) / 4 = 0.1925.
#   ties: positives 0.2, 0.5, 0.9 vs negatives 0.2, 0.5, 0.1: pairs won
#     (1/2 + 0 + 1) + (1 + 1/2 + 1) + 3 = 7 of 9. Thresholds 0.9: precision 1, 0.5: 2/3,
#     0.2: 3/5, each gaining recall 1/3: AP = (1 + 2/3 + 3/5) / 3 = 34/45.
#     Brier = (0.04 + 0.64 + 0.25 + 0.25 + 0.01 + 0.01) / 6 = 0.2.
GOLDEN = {
    "no_ties": ([0, 0, 1, 1], [0.1, 0.6, 0.4, 0.8], 3 / 4, 5 / 6, 0.1925),
    "ties": ([0, 1, 0, 1, 1, 0], [0.2, 0.2, 0.5, 0.5, 0.9, 0.1], 7 / 9, 34 / 45, 0.2),
}


@pytest.mark.parametrize("name", GOLDEN)
def test_point_metrics_match_hand_calculation(name):
    y, p, auroc, auprc, brier = GOLDEN[name]
    m = point_metrics(y, p)
    assert m["auroc"] == pytest.approx(auroc, abs=1e-12)
    assert m["auprc"] == pytest.approx(auprc, abs=1e-12)
    assert m["brier"] == pytest.approx(brier, abs=1e-12)
    assert m["log_loss"] == pytest.approx(log_loss_by_formula(y, p), abs=1e-12)
    assert m["prevalence"] == pytest.approx(sum(y) / len(y), abs=1e-12)
    assert m["n"] == len(y)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_point_metrics_match_independent_routes(seed):
    rng = np.random.default_rng(seed)
    # rounded to two decimals so that ties occur
    p = np.round(rng.uniform(0.01, 0.99, 60), 2)
    y = rng.binomial(1, p).astype(float)
    m = point_metrics(y, p)
    assert m["auroc"] == pytest.approx(auroc_by_pairs(y, p), abs=1e-12)
    assert m["auprc"] == pytest.approx(average_precision_by_thresholds(y, p), abs=1e-12)
    assert m["brier"] == pytest.approx(brier_by_formula(y, p), abs=1e-12)
    assert m["log_loss"] == pytest.approx(log_loss_by_formula(y, p), abs=1e-12)


probability = st.one_of(
    st.sampled_from([0.05, 0.2, 0.5, 0.8]),  # repeated values make ties
    st.floats(0.001, 0.999),
)


@st.composite
def weighted_predictions(draw):
    n = draw(st.integers(2, 30))
    y = draw(st.lists(st.integers(0, 1), min_size=n, max_size=n))
    p = draw(st.lists(probability, min_size=n, max_size=n))
    w = draw(st.lists(st.integers(0, 3), min_size=n, max_size=n))
    assume(sum(w) > 0)
    return np.array(y, float), np.array(p), np.array(w, float)


@settings(deadline=None, max_examples=150)
@given(weighted_predictions())
def test_integer_weights_equal_repeated_rows(data):
    """A weight k is exactly k copies of the row: what the patient bootstrap relies on."""
    y, p, w = data
    reps = w.astype(int)
    weighted = point_metrics(y, p, sample_weight=w)
    repeated = point_metrics(np.repeat(y, reps), np.repeat(p, reps))
    for name in POINT_METRICS:
        tol = 1e-6 if name.startswith("calibration") else 1e-9
        assert same(weighted[name], repeated[name], tol), name


@settings(deadline=None, max_examples=100)
@given(weighted_predictions())
def test_point_metrics_agree_with_scikit_learn(data):
    y, p, w = data
    assume(0 < np.sum(w * y) < np.sum(w))
    m = point_metrics(y, p, sample_weight=w)
    assert m["auroc"] == pytest.approx(skm.roc_auc_score(y, p, sample_weight=w), abs=1e-9)
    assert m["auprc"] == pytest.approx(skm.average_precision_score(y, p, sample_weight=w), abs=1e-9)
    assert m["brier"] == pytest.approx(skm.brier_score_loss(y, p, sample_weight=w), abs=1e-9)
    assert m["log_loss"] == pytest.approx(skm.log_loss(y, p, sample_weight=w), abs=1e-9)


@settings(deadline=None, max_examples=100)
@given(weighted_predictions(), st.randoms(use_true_random=False))
def test_point_metrics_ignore_row_order(data, random):
    y, p, w = data
    order = list(range(y.size))
    random.shuffle(order)
    before = point_metrics(y, p, sample_weight=w)
    after = point_metrics(y[order], p[order], sample_weight=w[order])
    for name in POINT_METRICS:
        tol = 1e-6 if name.startswith("calibration") else 1e-9
        assert same(before[name], after[name], tol), name


# --------------------------------------------------------------------------- calibration fit
def statsmodels_calibration(y, p, w=None) -> tuple[float, float]:
    """(intercept with logit(p) as offset, slope of logit(p)) from statsmodels' GLM."""
    x = logit(np.clip(p, 1e-12, 1 - 1e-12))
    weights = np.ones_like(y) if w is None else w
    binomial = sm.families.Binomial()
    in_the_large = sm.GLM(y, np.ones_like(x), family=binomial, offset=x, freq_weights=weights)
    slope = sm.GLM(y, sm.add_constant(x), family=binomial, freq_weights=weights)
    return (
        float(in_the_large.fit(tol=1e-13, maxiter=200).params[0]),
        float(slope.fit(tol=1e-13, maxiter=200).params[1]),
    )


# name -> (true logit -> model logit, weighted?)
CALIBRATION_CASES = {
    "calibrated": (lambda z: z, False),
    "overconfident": (lambda z: 2.5 * z - 0.3, False),
    "underconfident": (lambda z: 0.4 * z + 0.8, False),
    "weighted": (lambda z: 1.3 * z + 0.5, True),
    "extreme_probabilities": (lambda z: 12 * z, False),
}


@pytest.mark.parametrize("case", CALIBRATION_CASES)
@pytest.mark.parametrize("seed", [0, 1])
def test_calibration_fit_equals_statsmodels_glm(case, seed):
    transform, weighted = CALIBRATION_CASES[case]
    rng = np.random.default_rng(seed)
    z = rng.normal(-1.0, 1.0, 2000)
    y = rng.binomial(1, expit(z)).astype(float)
    p = expit(transform(z))
    w = rng.integers(0, 4, z.size).astype(float) if weighted else None
    intercept, slope = statsmodels_calibration(y, p, w)
    m = point_metrics(y, p, sample_weight=w)
    assert m["calibration_intercept"] == pytest.approx(intercept, abs=1e-6)
    assert m["calibration_slope"] == pytest.approx(slope, abs=1e-6)


def fisher_se(q: np.ndarray, x: np.ndarray) -> tuple[float, float]:
    """Standard errors at the truth: of the offset model's intercept, and of the slope.

    ``q`` is the true probability, ``x`` the logit of the prediction.
    """
    v = q * (1 - q)
    info = np.array([[v.sum(), v @ x], [v @ x, v @ x**2]])
    return 1 / math.sqrt(v.sum()), math.sqrt(np.linalg.inv(info)[1, 1])


# name -> (true logit -> model logit, true calibration intercept, true slope)
# intercept: a such that mean expit(a + model logit) matches; exact where stated
LARGE_SAMPLE_CASES = {
    "calibrated": (lambda z: z, 0.0, 1.0),
    # logit p' = 2 logit p, so logit p = 0.5 logit p': slope 0.5
    "overconfident": (lambda z: 2 * z, None, 0.5),
    # logit p' = logit p + 1, so logit p = logit p' - 1: intercept -1, slope 1
    "too_high": (lambda z: z + 1, -1.0, 1.0),
}


@pytest.mark.parametrize("case", LARGE_SAMPLE_CASES)
def test_calibration_recovers_truth_in_large_sample(case):
    transform, intercept, slope = LARGE_SAMPLE_CASES[case]
    rng = np.random.default_rng(20240601)
    z = rng.normal(-1.0, 1.0, 200_000)
    q = expit(z)
    y = rng.binomial(1, q).astype(float)
    x = transform(z)
    se_intercept, se_slope = fisher_se(q, x)
    # both standard errors are about 0.006 here: 4 of them leave a 1 in 15,000 chance of a
    # false failure and still tell 1 from 0.98
    m = point_metrics(y, expit(x))
    assert abs(m["calibration_slope"] - slope) < 4 * se_slope
    if intercept is not None:
        assert abs(m["calibration_intercept"] - intercept) < 4 * se_intercept


# --------------------------------------------------------------------------- undefined metrics
# name -> (y, p, metrics that are NaN, words in the reason)
UNDEFINED = {
    "all_attended": ([1, 1, 1], [0.2, 0.5, 0.9], RANKING_AND_CALIBRATION, "every y = 1"),
    "none_attended": ([0, 0, 0, 0], [0.2, 0.5, 0.9, 0.1], RANKING_AND_CALIBRATION, "every y = 0"),
    "separated": ([0, 0, 1, 1], [0.1, 0.2, 0.7, 0.9], ("calibration_slope",), "separate"),
    "reversed": ([1, 1, 0, 0], [0.1, 0.2, 0.7, 0.9], ("calibration_slope",), "separate"),
    "touching": ([0, 0, 1, 1], [0.1, 0.5, 0.5, 0.9], ("calibration_slope",), "separate"),
    "constant": ([0, 1, 0, 1], [0.3, 0.3, 0.3, 0.3], ("calibration_slope",), "the same"),
}


@pytest.mark.parametrize("name", UNDEFINED)
def test_undefined_metrics_are_nan_with_a_reason(name):
    y, p, undefined, words = UNDEFINED[name]
    m = point_metrics(y, p)
    reasons = undefined_metrics(y, p)
    assert set(reasons) == set(undefined)
    for metric in POINT_METRICS:
        assert math.isnan(m[metric]) == (metric in undefined), metric
    assert all(words in why for why in reasons.values())


def test_no_reason_when_every_metric_is_defined():
    assert undefined_metrics([0, 1, 0, 1], [0.3, 0.4, 0.5, 0.6]) == {}


# --------------------------------------------------------------------------- refusals
BAD_INPUTS = {
    "y_not_binary": (dict(y=[0, 2, 1], p=[0.1, 0.2, 0.3]), r"'y' must be 0 or 1"),
    "y_missing": (dict(y=[0, NAN, 1], p=[0.1, 0.2, 0.3]), r"'y' must be 0 or 1"),
    "p_above_one": (dict(y=[0, 1], p=[0.1, 1.2]), r"'p' must be probabilities"),
    "p_missing": (dict(y=[0, 1], p=[0.1, NAN]), r"'p' must be probabilities"),
    "lengths": (dict(y=[0, 1, 1], p=[0.1, 0.2]), r"3 outcomes and 2 probabilities"),
    "empty": (dict(y=[], p=[]), r"empty"),
    "negative_weight": (
        dict(y=[0, 1], p=[0.1, 0.2], sample_weight=[1, -1]),
        r"'sample_weight' must be finite, non-negative",
    ),
    "zero_weights": (
        dict(y=[0, 1], p=[0.1, 0.2], sample_weight=[0, 0]),
        r"not all zero",
    ),
}


@pytest.mark.parametrize("name", BAD_INPUTS)
def test_point_metrics_refuse_bad_input(name):
    kwargs, message = BAD_INPUTS[name]
    with pytest.raises(ValueError, match=message):
        point_metrics(**kwargs)


Y4, P4, G4 = [0, 1, 0, 1], [0.1, 0.4, 0.6, 0.8], ["a", "a", "b", "b"]


def mean_outcome(y, p, sample_weight=None):
    return {"rate": float(np.average(y, weights=sample_weight))}


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: cluster_bootstrap(Y4, P4, G4[:3], mean_outcome), r"3 group ids for 4 rows"),
        (lambda: cluster_bootstrap(Y4, P4, ["a", None, "b", "b"], mean_outcome), r"1 missing"),
        (lambda: cluster_bootstrap(Y4, P4, G4, mean_outcome, n_boot=-1), r"'n_boot'"),
        (lambda: cluster_bootstrap(Y4, P4, G4, mean_outcome, ci=1.0), r"'ci'"),
        (lambda: cluster_bootstrap(Y4, P4, G4, mean_outcome, n_jobs=0), r"'n_jobs'"),
        (lambda: calibration_curve(Y4, P4, strategy="deciles"), r"'strategy'"),
        (lambda: calibration_curve(Y4, P4, n_bins=0), r"'n_bins'"),
        (lambda: decision_curve(Y4, P4, thresholds=[0.1, 0.0]), r"strictly between 0 and 1"),
        (lambda: evaluate_predictions(Y4, P4, G4[:2]), r"2 patient ids for 4 encounters"),
        (
            lambda: evaluate_predictions(Y4, P4, G4, by=pd.DataFrame({"t": ["x"]})),
            r"'by' must have one row per encounter",
        ),
        (lambda: evaluate_predictions(Y4, P4, G4, flagged_outcome=2), r"'flagged_outcome'"),
        (lambda: evaluate_predictions(Y4, P4, G4, n_boot=-5), r"'n_boot'"),
        (lambda: evaluate_predictions(Y4, P4, G4, ci=95), r"'ci'"),
    ],
)
def test_refusals_name_the_argument(call, message):
    with pytest.raises(ValueError, match=message):
        call()


# --------------------------------------------------------------------------- calibration curve
def test_calibration_curve_by_hand():
    # quantile bins of 3: p 0.1, 0.2, 0.3 (one event) and 0.6, 0.7, 0.8 (two events)
    curve = calibration_curve([0, 0, 1, 0, 1, 1], [0.1, 0.2, 0.3, 0.6, 0.7, 0.8], n_bins=2)
    assert list(curve.columns) == [
        "bin",
        "mean_predicted",
        "observed_rate",
        "n",
        "ci_low",
        "ci_high",
    ]
    assert curve["bin"].tolist() == [1, 2]
    assert curve["n"].tolist() == [3, 3]
    np.testing.assert_allclose(curve["mean_predicted"], [0.2, 0.7])
    np.testing.assert_allclose(curve["observed_rate"], [1 / 3, 2 / 3])


@pytest.mark.parametrize("ci", [0.9, 0.95])
def test_calibration_curve_interval_is_wilson(ci, make_clustered):
    y, p, _ = make_clustered(n_patients=300, seed=3)
    curve = calibration_curve(y, p, n_bins=7, ci=ci)
    events = np.round(curve["observed_rate"] * curve["n"]).astype(int)
    low, high = proportion_confint(events, curve["n"], alpha=1 - ci, method="wilson")
    np.testing.assert_allclose(curve["ci_low"], low, atol=1e-12)
    np.testing.assert_allclose(curve["ci_high"], high, atol=1e-12)


@pytest.mark.parametrize(
    ("strategy", "expected_n"),
    [
        # 20 evenly spread predictions in 4 quantile bins: 5 each
        ("quantile", [5, 5, 5, 5]),
        # p = 0.025, 0.075, ..., 0.975 on [0, 0.25), [0.25, 0.5), ...: 5 each as well
        ("uniform", [5, 5, 5, 5]),
    ],
)
def test_calibration_curve_bins(strategy, expected_n):
    p = (np.arange(20) + 0.5) / 20
    y = (np.arange(20) % 2).astype(float)
    curve = calibration_curve(y, p, n_bins=4, strategy=strategy)
    assert curve["n"].tolist() == expected_n


def test_calibration_curve_drops_empty_bins():
    # every prediction in the lowest tenth: nine uniform bins are empty
    curve = calibration_curve([0, 1, 0, 1], [0.01, 0.02, 0.03, 0.04], strategy="uniform")
    assert curve["n"].tolist() == [4]


@settings(deadline=None, max_examples=100)
@given(weighted_predictions(), st.integers(1, 12), st.sampled_from(["quantile", "uniform"]))
def test_calibration_curve_invariants(data, n_bins, strategy):
    y, p, _ = data
    curve = calibration_curve(y, p, n_bins=n_bins, strategy=strategy)
    assert curve["n"].sum() == y.size
    assert len(curve) <= n_bins
    assert np.all(np.diff(curve["mean_predicted"]) > 0)
    assert np.all((curve["ci_low"] >= 0) & (curve["ci_high"] <= 1))
    assert np.all(curve["ci_low"] <= curve["observed_rate"] + 1e-12)
    assert np.all(curve["observed_rate"] <= curve["ci_high"] + 1e-12)


# --------------------------------------------------------------------------- ROC curve
def trapezoid_area(x, y) -> float:
    x, y = np.asarray(x, float), np.asarray(y, float)
    return float(np.sum((x[1:] - x[:-1]) * (y[1:] + y[:-1]) / 2))


def test_roc_curve_by_hand():
    # positives 0.2, 0.5, 0.9 and negatives 0.1, 0.2, 0.5 (3 of each). Flag p >= t:
    #   t = 0.9: TP 1, FP 0; t = 0.5: TP 2, FP 1 (the tie moves both); t = 0.2: TP 3, FP 2;
    #   t = 0.1: TP 3, FP 3.
    y, p = GOLDEN["ties"][:2]
    curve = roc_curve(y, p, max_points=None)
    assert list(curve.columns) == ["false_positive_rate", "true_positive_rate", "threshold"]
    np.testing.assert_allclose(curve["false_positive_rate"], [0, 0, 1 / 3, 2 / 3, 1])
    np.testing.assert_allclose(curve["true_positive_rate"], [0, 1 / 3, 2 / 3, 1, 1])
    assert curve["threshold"].tolist() == [math.inf, 0.9, 0.5, 0.2, 0.1]


@settings(deadline=None, max_examples=100)
@given(weighted_predictions())
def test_roc_curve_area_is_the_auroc_and_matches_scikit_learn(data):
    y, p, _ = data
    assume(0 < y.sum() < y.size)
    curve = roc_curve(y, p, max_points=None)
    area = trapezoid_area(curve["false_positive_rate"], curve["true_positive_rate"])
    assert area == pytest.approx(auroc_by_pairs(y, p), abs=1e-12)
    fpr, tpr, _ = skm.roc_curve(y, p, drop_intermediate=False)
    np.testing.assert_allclose(curve["false_positive_rate"], fpr, atol=1e-12)
    np.testing.assert_allclose(curve["true_positive_rate"], tpr, atol=1e-12)


def test_roc_curve_downsampled_keeps_the_ends_and_the_area(make_clustered):
    y, p, _ = make_clustered(n_patients=3000, seed=8)
    full = roc_curve(y, p, max_points=None)
    assert len(full) > 5000
    small = roc_curve(y, p)
    assert 150 <= len(small) <= 200
    assert small.iloc[0].tolist() == [0.0, 0.0, math.inf]
    assert small.iloc[-1][["false_positive_rate", "true_positive_rate"]].tolist() == [1.0, 1.0]
    assert np.all(np.diff(small["false_positive_rate"]) >= 0)
    assert np.all(np.diff(small["true_positive_rate"]) >= 0)
    # kept points lie on the full curve, so the area can only shrink, and barely does
    full_area = trapezoid_area(full["false_positive_rate"], full["true_positive_rate"])
    small_area = trapezoid_area(small["false_positive_rate"], small["true_positive_rate"])
    assert full_area - 2e-3 < small_area <= full_area + 1e-12
    assert full_area == pytest.approx(point_metrics(y, p)["auroc"], abs=1e-12)


@pytest.mark.parametrize(
    ("y", "max_points", "message"),
    [
        ([1, 1, 1], 200, "needs both outcome classes; every y = 1"),
        ([0, 0, 0], 200, "needs both outcome classes; every y = 0"),
        ([0, 1, 1], 1, "'max_points' must be an integer of at least 2"),
        ([0, 1, 1], 2.5, "'max_points' must be an integer of at least 2"),
    ],
)
def test_roc_curve_refusals(y, max_points, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        roc_curve(y, [0.2, 0.5, 0.9], max_points=max_points)


# --------------------------------------------------------------------------- decision curve
def test_decision_curve_by_hand():
    # 10 patients, 4 events; a patient is flagged when p >= t, so p = 0.2 is at t = 0.2
    y = [1, 1, 0, 1, 0, 0, 1, 0, 0, 0]
    p = [0.9, 0.7, 0.6, 0.5, 0.4, 0.25, 0.2, 0.1, 0.05, 0.2]
    # t = 0.2: flagged p >= 0.2: events 0.9, 0.7, 0.5, 0.2 (TP 4); non-events 0.6, 0.4,
    #   0.25, 0.2 (FP 4). NB = 4/10 - 4/10 * 0.25 = 0.3.
    # t = 0.5: flagged: events 0.9, 0.7, 0.5 (TP 3); non-events 0.6 (FP 1); odds 1.
    #   NB = 3/10 - 1/10 = 0.2.
    # treat all: prevalence 0.4; t = 0.2: 0.4 - 0.6 / 4 = 0.25; t = 0.5: 0.4 - 0.6 = -0.2.
    curve = decision_curve(y, p, thresholds=[0.2, 0.5])
    assert list(curve.columns) == [
        "threshold",
        "net_benefit_model",
        "net_benefit_all",
        "net_benefit_none",
    ]
    np.testing.assert_allclose(curve["net_benefit_model"], [0.3, 0.2], atol=1e-12)
    np.testing.assert_allclose(curve["net_benefit_all"], [0.25, -0.2], atol=1e-12)
    np.testing.assert_array_equal(curve["net_benefit_none"], [0.0, 0.0])


def test_decision_curve_default_thresholds_and_treat_all(make_clustered):
    y, p, _ = make_clustered(seed=4)
    curve = decision_curve(y, p)
    np.testing.assert_array_equal(curve["threshold"], [k / 100 for k in range(1, 51)])
    prevalence = y.mean()
    t = curve["threshold"].to_numpy()
    np.testing.assert_allclose(
        curve["net_benefit_all"], prevalence - (1 - prevalence) * t / (1 - t), atol=1e-12
    )
    assert (curve["net_benefit_none"] == 0).all()
    # a model that flags everyone at every threshold is the treat-all strategy
    everyone = decision_curve(y, np.ones_like(p))
    np.testing.assert_allclose(everyone["net_benefit_model"], curve["net_benefit_all"])


# --------------------------------------------------------------------------- cluster bootstrap
def without_weights(y, p):
    """point_metrics as a statistic cluster_bootstrap must resample row by row."""
    return point_metrics(y, p)


def test_weights_equal_explicit_resampling(make_clustered):
    y, p, groups = make_clustered(n_patients=40, seed=5)
    by_weights = cluster_bootstrap(y, p, groups, point_metrics, n_boot=60, seed=11)
    by_rows = cluster_bootstrap(y, p, groups, without_weights, n_boot=60, seed=11)
    assert by_weights.keys() == by_rows.keys()
    for key, value in by_weights.items():
        tol = 1e-6 if key.startswith("calibration") else 1e-9
        assert same(value, by_rows[key], tol), key


def test_resampling_keeps_patients_whole():
    # p carries a row id, so the statistic can see which rows each replicate holds
    groups = np.array(["a", "a", "a", "b", "c", "c", "d", "e", "e", "e", "e"])
    row_id = np.arange(groups.size) / 100
    seen: list[np.ndarray] = []

    def record(y, p):
        seen.append(np.round(p * 100).astype(int))
        return {"rows": float(len(p))}

    cluster_bootstrap(np.zeros(groups.size), row_id, groups, record, n_boot=30, seed=1)
    assert len(seen) == 31  # the original data, then 30 replicates
    n_patients = len(set(groups))
    for rows in seen[1:]:
        times = np.bincount(rows, minlength=groups.size)
        for patient in set(groups):
            # every row of a patient is drawn as often as the others
            assert len(set(times[groups == patient])) == 1
        drawn = sum(times[groups == g][0] for g in set(groups))
        assert drawn == n_patients


def test_result_does_not_depend_on_threads(make_clustered):
    y, p, groups = make_clustered(n_patients=60, seed=6)
    one = cluster_bootstrap(y, p, groups, point_metrics, n_boot=40, seed=3, n_jobs=1)
    two = cluster_bootstrap(y, p, groups, point_metrics, n_boot=40, seed=3, n_jobs=2)
    assert one == pytest.approx(two, nan_ok=True, abs=0, rel=0)


def test_seed_fixes_the_intervals(make_clustered):
    y, p, groups = make_clustered(n_patients=60, seed=6)
    first = cluster_bootstrap(y, p, groups, mean_outcome, n_boot=50, seed=3)
    again = cluster_bootstrap(y, p, groups, mean_outcome, n_boot=50, seed=3)
    other = cluster_bootstrap(y, p, groups, mean_outcome, n_boot=50, seed=4)
    assert first == again
    assert first["rate_ci_low"] != other["rate_ci_low"]


def test_undefined_replicates_are_dropped_and_counted():
    # only patient "f" ever attends: replicates that miss f have one outcome class
    groups = np.repeat(list("abcdef"), 3)
    y = (groups == "f").astype(float)
    y[groups == "f"] = [1, 1, 0]
    p = np.linspace(0.1, 0.9, y.size)
    out = cluster_bootstrap(y, p, groups, point_metrics, n_boot=200, seed=0)
    # P(f not drawn in 6 draws) = (5/6)^6 = 0.33: about 134 of 200 usable
    assert 100 < out["auroc_n_boot"] < 170
    assert out["prevalence_n_boot"] == 200
    assert out["auroc_ci_low"] <= out["auroc_ci_high"]


def test_no_replicates_give_nan_intervals():
    out = cluster_bootstrap(Y4, P4, G4, mean_outcome, n_boot=0)
    assert out["rate"] == 0.5
    assert math.isnan(out["rate_ci_low"]) and math.isnan(out["rate_ci_high"])
    assert out["rate_n_boot"] == 0


def test_intervals_cover_the_truth_about_95_percent():
    """Patient effects u ~ N(0, 1.5) are symmetric, so E[y] = E[expit(u)] = 1/2 exactly."""
    covered = 0
    repetitions = 200
    for rep in range(repetitions):
        rng = np.random.default_rng(1000 + rep)
        sizes = rng.integers(1, 9, 40)
        groups = np.repeat(np.arange(40), sizes)
        y = rng.binomial(1, expit(rng.normal(0, 1.5, 40)))[groups].astype(float)
        y = np.where(rng.uniform(size=y.size) < 0.3, 1 - y, y)  # not every visit alike
        out = cluster_bootstrap(y, np.zeros_like(y), groups, mean_outcome, n_boot=200, seed=rep)
        covered += out["rate_ci_low"] <= 0.5 <= out["rate_ci_high"]
    # binomial sd of the coverage over 200 repetitions is 0.015: 0.90-0.99 is about 3 sd
    assert 0.90 <= covered / repetitions <= 0.99


@pytest.mark.parametrize(
    ("patient_sd", "lowest", "highest"),
    [
        # outcomes strongly correlated within patient (about 4.5 encounters each): the
        # design effect widens patient-level intervals of the outcome rate, and of
        # calibration-in-the-large which follows it, by about 1.7-2.0 (seeds 8-12)
        (3.0, 1.4, 3.0),
        # no patient effect: rows are independent and the two intervals agree (1.0-1.13)
        (0.0, 0.8, 1.25),
    ],
)
def test_patient_intervals_wider_than_row_intervals_when_correlated(
    make_clustered, patient_sd, lowest, highest
):
    y, p, groups = make_clustered(n_patients=300, patient_sd=patient_sd, seed=8)
    by_patient = cluster_bootstrap(y, p, groups, point_metrics, n_boot=300, seed=1)
    by_row = cluster_bootstrap(y, p, np.arange(y.size), point_metrics, n_boot=300, seed=1)
    for name in ("prevalence", "calibration_intercept"):
        width = by_patient[f"{name}_ci_high"] - by_patient[f"{name}_ci_low"]
        naive = by_row[f"{name}_ci_high"] - by_row[f"{name}_ci_low"]
        assert lowest < width / naive < highest, name


# --------------------------------------------------------------------------- evaluate_predictions
def walk(value, path="out"):
    """Every leaf of a nested dict/list with its path."""
    if isinstance(value, dict):
        for key, item in value.items():
            assert isinstance(key, str), path
            yield from walk(item, f"{path}[{key!r}]")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from walk(item, f"{path}[{i}]")
    else:
        yield path, value


@pytest.fixture
def evaluated(make_clustered):
    y, p, groups = make_clustered(n_patients=150, seed=9)
    rng = np.random.default_rng(9)
    patient_treatment = rng.choice(["cbt_online", "antidepressants"], 150)
    treatment = patient_treatment[groups].astype(object)
    # a small treatment whose patients all attended: one outcome class
    last = groups >= 125
    treatment[last] = "listening_visits"
    y[last] = 1.0
    gender = np.where(rng.uniform(size=y.size) < 0.05, None, "female").astype(object)
    # an index that is not 0..n-1 must not matter: rows are matched by position
    by = pd.DataFrame({"treatment": treatment, "gender": gender}, index=np.arange(y.size)[::-1])
    out = evaluate_predictions(y, p, groups, by=by, n_boot=60, seed=2)
    return out, (y, p, groups, treatment)


def test_evaluate_predictions_top_level(evaluated):
    out, (y, p, groups, _) = evaluated
    for name in POINT_METRICS[:-1]:
        estimate = out.overall.estimate(name)
        for value in (estimate.value, estimate.ci_low, estimate.ci_high):
            assert isinstance(value, float), name
        assert estimate.ci_low <= estimate.value <= estimate.ci_high, name
    assert out.overall.n_encounters == y.size
    assert out.overall.n_patients == len(set(groups))
    assert out.overall.auroc.value == pytest.approx(auroc_by_pairs(y, p), abs=1e-12)
    assert len(out.calibration_curve) == 10
    assert out.to_dict()["calibration_curve"][0].keys() == {
        "bin",
        "mean_predicted",
        "observed_rate",
        "n",
        "ci_low",
        "ci_high",
    }
    # the ROC curve is of p for y = 1, as the AUROC, and its full-resolution area is it
    roc = pd.DataFrame(out.to_dict()["roc_curve"])
    assert out.roc_curve[0].threshold is None  # inf is not JSON
    fpr, tpr, _ = skm.roc_curve(y, p)
    assert roc["true_positive_rate"].iloc[-1] == 1.0 and len(roc) <= 200
    assert trapezoid_area(roc["false_positive_rate"], roc["true_positive_rate"]) == pytest.approx(
        trapezoid_area(fpr, tpr), abs=2e-3
    )
    # the flagged event is the bad outcome, y = 0, with risk 1 - p
    expected = decision_curve(1 - y, 1 - p)
    got = pd.DataFrame(out.to_dict()["decision_curve"])
    np.testing.assert_allclose(got["net_benefit_model"], expected["net_benefit_model"])
    assert out.decision_curve_flagged_outcome == 0


def test_evaluate_predictions_equals_cluster_bootstrap(evaluated):
    out, (y, p, groups, _) = evaluated
    reference = cluster_bootstrap(y, p, groups, without_weights, n_boot=60, seed=2)
    for name in POINT_METRICS[:-1]:
        estimate = out.overall.estimate(name)
        tol = 1e-6 if name.startswith("calibration") else 1e-9
        assert same(estimate.value, reference[name], tol), name
        assert same(estimate.ci_low, reference[f"{name}_ci_low"], tol), name
        assert same(estimate.ci_high, reference[f"{name}_ci_high"], tol), name
        assert estimate.n_boot == reference[f"{name}_n_boot"]


def test_evaluate_predictions_subgroups(evaluated):
    out, (y, p, groups, treatment) = evaluated
    by_treatment = out.by_group["treatment"]
    assert set(by_treatment) == {"cbt_online", "antidepressants", "listening_visits"}
    cbt = by_treatment["cbt_online"]
    rows = treatment == "cbt_online"
    assert cbt.n_encounters == rows.sum()
    assert cbt.n_patients == len(set(groups[rows]))
    assert cbt.auroc.value == pytest.approx(auroc_by_pairs(y[rows], p[rows]), abs=1e-12)
    assert cbt.note is None

    one_class = by_treatment["listening_visits"]
    assert one_class.note.startswith("metrics not computed: only one outcome class")
    for name in POINT_METRICS[:-1]:
        assert one_class.estimate(name).value is None
        assert one_class.estimate(name).ci_low is None
    assert set(out.by_group["gender"]) == {"female", "(missing)"}
    assert "fewer than" in out.by_group["gender"]["(missing)"].note


def test_evaluate_predictions_is_plain_json(evaluated):
    out, _ = evaluated
    record = out.to_dict()
    json.dumps(record, allow_nan=False)
    for path, value in walk(record):
        assert value is None or type(value) in (str, int, float, bool), path


def test_evaluate_predictions_with_one_class_overall():
    y = np.ones(60)
    p = np.linspace(0.3, 0.9, 60)
    groups = np.repeat(np.arange(20), 3)
    out = evaluate_predictions(y, p, groups, n_boot=20)
    assert out.overall.auroc.value is None and out.overall.calibration_slope.value is None
    assert out.roc_curve is None
    assert "only one outcome class" in out.overall.note
    assert out.overall.prevalence.value == 1.0
    json.dumps(out.to_dict(), allow_nan=False)


# --------------------------------------------------------------------------- the flagged outcome
def flagged_average_precision(y, p):
    """scikit-learn's average precision of y = 0, ranked by the risk 1 - p."""
    if y.min() == y.max():
        return {FLAGGED_AUPRC: NAN}
    return {FLAGGED_AUPRC: skm.average_precision_score(1 - y, 1 - p)}


@pytest.mark.parametrize("decimals", [None, 1])
def test_flagged_auprc_is_the_average_precision_of_the_bad_outcome(make_clustered, decimals):
    y, p, groups = make_clustered(n_patients=120, seed=21)
    if decimals is not None:
        p = np.round(p, decimals)  # many ties
    by = pd.DataFrame({"half": np.where(groups < 60, "first", "second")})
    out = evaluate_predictions(y, p, groups, by=by, n_boot=60, seed=4)
    expected = skm.average_precision_score(1 - y, 1 - p)
    flagged = out.overall.estimate(FLAGGED_AUPRC)
    assert flagged.value == pytest.approx(expected, abs=1e-12)
    # not the AUPRC of y = 1, which sits near the base rate of the common outcome
    assert out.overall.auprc.value == pytest.approx(skm.average_precision_score(y, p), abs=1e-12)
    # its interval: the same replicates, each scored by scikit-learn
    reference = cluster_bootstrap(y, p, groups, flagged_average_precision, n_boot=60, seed=4)
    assert flagged.ci_low == pytest.approx(reference[f"{FLAGGED_AUPRC}_ci_low"], abs=1e-9)
    assert flagged.ci_high == pytest.approx(reference[f"{FLAGGED_AUPRC}_ci_high"], abs=1e-9)
    assert flagged.n_boot == reference[f"{FLAGGED_AUPRC}_n_boot"]
    first = groups < 60
    assert out.by_group["half"]["first"].estimate(FLAGGED_AUPRC).value == pytest.approx(
        skm.average_precision_score(1 - y[first], 1 - p[first]), abs=1e-12
    )
    # flagging the outcome coded 1 instead makes it the usual AUPRC
    other = evaluate_predictions(y, p, groups, n_boot=0, flagged_outcome=1)
    assert other.overall.estimate(FLAGGED_AUPRC).value == other.overall.auprc.value


def test_flagged_auprc_is_undefined_with_one_outcome_class():
    out = evaluate_predictions(np.ones(60), np.linspace(0.3, 0.9, 60), np.arange(60) // 3)
    flagged = out.overall.estimate(FLAGGED_AUPRC)
    assert flagged.value is None and flagged.ci_low is None
    assert f"{FLAGGED_AUPRC}: only one outcome class" in out.overall.note


# --------------------------------------------------------------------------- decision thresholds
@pytest.mark.parametrize(
    ("marks", "lowest", "highest"),
    [
        ((), 0.01, 0.50),
        ((None, float("nan"), 0.0, 1.0), 0.01, 0.50),
        ((0.3,), 0.01, 0.50),
        # the adherence threshold that fell off a 0-0.5 axis
        ((0.56, 0.48), 0.01, 0.61),
        ((0.004,), 0.004, 0.50),
        ((0.97,), 0.01, 0.99),
    ],
)
def test_decision_thresholds_reach_every_mark(marks, lowest, highest):
    t = decision_thresholds(*marks)
    assert t.min() == pytest.approx(lowest) and t.max() == pytest.approx(highest)
    assert np.all(np.diff(t) > 0) and np.all((t > 0) & (t < 1))
    for mark in marks:
        if mark is not None and 0 < mark < 1:
            assert mark in t
    # the default grid is always there, exactly
    assert set(np.arange(1, 51) / 100) <= set(t)


def test_evaluate_predictions_computes_the_curve_at_the_thresholds_given(make_clustered):
    y, p, groups = make_clustered(n_patients=80, seed=3)
    thresholds = decision_thresholds(0.56)
    out = evaluate_predictions(y, p, groups, n_boot=0, decision_thresholds=thresholds)
    got = pd.DataFrame(out.to_dict()["decision_curve"])
    expected = decision_curve(1 - y, 1 - p, thresholds)
    np.testing.assert_allclose(got["threshold"], thresholds)
    np.testing.assert_allclose(got["net_benefit_model"], expected["net_benefit_model"])
