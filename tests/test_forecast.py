"""Aggregate forecasts: exact Poisson-binomial counts, their approximation, coverage."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from engagekit.forecast import (
    EXACT_MAX_ENCOUNTERS,
    _refined_normal_cdf,
    forecast_dropout,
    pending_encounters,
    poisson_binomial_pmf,
    poisson_binomial_quantiles,
)


def _brute_force_pmf(p):
    """P(count = k) by summing over all 2^n outcomes."""
    pmf = np.zeros(len(p) + 1)
    for outcome in itertools.product((0, 1), repeat=len(p)):
        x = np.array(outcome)
        pmf[x.sum()] += np.prod(np.where(x == 1, p, 1.0 - p))
    return pmf


def _heterogeneous_p(rng, n):
    """Probabilities of not attending: Beta with a random mean (2-30%) and spread."""
    mean = rng.uniform(0.02, 0.30)
    shape = rng.uniform(0.3, 3.0)
    return rng.beta(shape, shape * (1.0 - mean) / mean, n)


@pytest.mark.parametrize("n", [1, 2, 5, 9, 12])
def test_pmf_matches_brute_force_enumeration(n):
    rng = np.random.default_rng(n)
    p = rng.uniform(0.0, 1.0, n)
    p[0] = 0.0 if n > 3 else p[0]  # a certain non-event and a certain event
    p[-1] = 1.0 if n > 3 else p[-1]
    np.testing.assert_allclose(poisson_binomial_pmf(p), _brute_force_pmf(p), rtol=0, atol=1e-14)


@pytest.mark.parametrize("n", [1, 7, 64, 65, 1000, EXACT_MAX_ENCOUNTERS])
@pytest.mark.parametrize("prob", [0.03, 0.5])
def test_equal_probabilities_give_the_binomial(n, prob):
    pmf = poisson_binomial_pmf(np.full(n, prob))
    np.testing.assert_allclose(pmf, stats.binom.pmf(np.arange(n + 1), n, prob), atol=1e-13)
    probs = [0.001, 0.05, 0.5, 0.95, 0.999]
    expected = stats.binom.ppf(probs, n, prob).astype(int)
    assert poisson_binomial_quantiles(np.full(n, prob), probs).tolist() == expected.tolist()


def test_pmf_edge_cases():
    assert poisson_binomial_pmf([]).tolist() == [1.0]
    assert poisson_binomial_pmf([0.0, 0.0, 0.0]).tolist() == [1.0, 0.0, 0.0, 0.0]
    assert poisson_binomial_pmf([1.0, 1.0, 0.0]).tolist() == [0.0, 0.0, 1.0, 0.0]
    pmf = poisson_binomial_pmf(np.random.default_rng(0).uniform(0, 0.1, 5000))
    assert pmf.shape == (5001,)
    assert np.all(pmf >= 0.0)
    assert pmf.sum() == pytest.approx(1.0, abs=1e-12)


# Beta shapes of the probabilities: mean counts from 20 to 5,000 in 10,000 encounters
SWITCH_SHAPES = [(0.5, 250.0), (0.5, 20.0), (1.0, 15.0), (0.3, 30.0), (2.0, 2.0)]


@pytest.mark.parametrize("shape", SWITCH_SHAPES)
def test_normal_approximation_agrees_with_exact_at_the_switch(shape):
    rng = np.random.default_rng(int(shape[1]))
    p = rng.beta(*shape, EXACT_MAX_ENCOUNTERS)
    probs = [0.005, 0.025, 0.05, 0.5, 0.95, 0.975, 0.995]
    exact = poisson_binomial_quantiles(p, probs, method="exact")
    normal = poisson_binomial_quantiles(p, probs, method="normal")
    assert np.max(np.abs(exact - normal)) <= 1, (exact, normal)


@pytest.mark.parametrize("shape", SWITCH_SHAPES)
def test_refined_normal_cdf_is_close_to_exact_at_the_switch(shape):
    rng = np.random.default_rng(int(shape[1]))
    p = rng.beta(*shape, EXACT_MAX_ENCOUNTERS)
    exact = np.cumsum(poisson_binomial_pmf(p))
    approximate = _refined_normal_cdf(p, np.arange(len(p) + 1))
    # measured at most 0.0012 (mean count 20), 0.0002 from a mean of 100; without the
    # continuity correction the error is 0.004-0.02, without the skewness term up to 0.006
    assert np.max(np.abs(exact - approximate)) <= 0.002


def test_forecast_switches_method_above_the_limit_without_a_jump():
    rng = np.random.default_rng(5)
    p = rng.beta(0.5, 12.0, EXACT_MAX_ENCOUNTERS)
    # one more encounter that surely attends: the same distribution, the other method
    p_bad = np.concatenate([p, p, [0.0]])
    groups = ["at_limit"] * len(p) + ["above"] * (len(p) + 1)
    forecast = forecast_dropout(p_bad, groups)
    at, above = forecast.loc["at_limit"], forecast.loc["above"]
    assert (at["method"], above["method"]) == ("exact", "normal")
    assert abs(at["interval_low"] - above["interval_low"]) <= 1
    assert abs(at["interval_high"] - above["interval_high"]) <= 1


def _simulated_periods(n_periods, seed):
    """``n_periods`` periods of 100-1,500 encounters each, with heterogeneous
    probabilities of the bad outcome and outcomes drawn from them."""
    rng = np.random.default_rng(seed)
    sizes = rng.integers(100, 1501, n_periods)
    p = [_heterogeneous_p(rng, n) for n in sizes]
    outcomes = [(rng.random(n) < q).astype(float) for n, q in zip(sizes, p, strict=True)]
    period = np.repeat(np.arange(n_periods), sizes)
    return p, np.concatenate(p), np.concatenate(outcomes), period


def _expected_coverage(p_by_period, forecast):
    """Mean over periods of P(low <= count <= high) under the exact distribution."""
    coverage = []
    for q, (low, high) in zip(
        p_by_period, forecast[["interval_low", "interval_high"]].to_numpy(), strict=True
    ):
        pmf = poisson_binomial_pmf(q)
        coverage.append(pmf[low : high + 1].sum())
    return np.array(coverage)


@pytest.mark.parametrize("level", [0.9, 0.5])
def test_interval_covers_the_realised_count_at_its_level(level):
    n_periods = 2000
    p_by_period, p_bad, outcomes, period = _simulated_periods(n_periods, seed=2024)
    forecast = forecast_dropout(p_bad, period, level, observed_bad=outcomes)
    assert set(forecast["method"]) == {"exact"}
    covered = forecast["observed"].between(forecast["interval_low"], forecast["interval_high"])
    coverage = covered.mean()
    expected = _expected_coverage(p_by_period, forecast)
    # whole-number counts: each period's interval holds its count with probability at
    # least the level, a little more where counts are small
    assert np.all(expected >= level - 1e-12)
    # The realised coverage is a mean of 2,000 independent indicators: its binomial
    # standard error is sqrt(0.9 * 0.1 / 2000) = 0.0067 at the 90% level, so +/- 0.04 is
    # six standard errors on either side. Discrete intervals cover a little more than
    # the level (here 0.913 expected), which uses two of the six on the upper side; the
    # lower side needs no such allowance. Within 4 SE of the exact expectation is the
    # tighter check (measured at 90%: 0.8975 realised, 0.9132 expected, 2.5 SE; over 30
    # other seeds the mean deviation was +0.2 SE).
    se = np.sqrt(expected.mean() * (1 - expected.mean()) / n_periods)
    assert abs(coverage - expected.mean()) <= 4 * se, (coverage, expected.mean())
    assert level - 0.04 <= coverage <= level + 0.04, coverage


def test_forecast_table_sums_per_group():
    p_bad = pd.Series([0.1, 0.2, 0.3, 0.4, 0.5])
    groups = pd.Series(["cbt", "gp", "cbt", None, "gp"], name="treatment")
    observed = [1, 0, np.nan, 1, 1]
    forecast = forecast_dropout(p_bad, groups, observed_bad=observed)
    assert forecast.index.name == "treatment"
    assert list(forecast.index) == ["(missing)", "cbt", "gp"]
    assert list(forecast.columns) == [
        "n_encounters",
        "expected",
        "variance",
        "interval_low",
        "interval_high",
        "method",
        "observed",
        "n_observed",
    ]
    assert forecast["n_encounters"].tolist() == [1, 2, 2]
    np.testing.assert_allclose(forecast["expected"], [0.4, 0.4, 0.7])
    np.testing.assert_allclose(forecast["variance"], [0.24, 0.09 + 0.21, 0.16 + 0.25])
    assert forecast["observed"].tolist() == [1, 1, 1]
    assert forecast["n_observed"].tolist() == [1, 1, 2]
    # cbt: P(0) = 0.9 * 0.7 = 0.63 >= 0.05, P(<= 1) = 0.97 >= 0.95, so [0, 1]
    assert forecast.loc["cbt", ["interval_low", "interval_high"]].tolist() == [0, 1]
    assert forecast.attrs["level"] == 0.9


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"level": 1.0}, r"level is the interval's coverage in \(0, 1\)"),
        ({"level": 0.0}, r"level is the interval's coverage in \(0, 1\)"),
        ({"p_bad": [0.1, 1.2, 0.3]}, r"p_bad must be probabilities in \[0, 1\].*1\.2"),
        ({"p_bad": [0.1, np.nan, 0.3]}, r"p_bad must be probabilities in \[0, 1\]"),
        ({"groups": ["a", "b"]}, "groups has 2 values but p_bad has 3"),
        ({"observed_bad": [1, 0]}, "one outcome per encounter"),
        ({"observed_bad": [1, 0, 2]}, "1 \\(bad outcome\\), 0 or missing"),
        ({"method": "poisson"}, "unknown method 'poisson'"),
    ],
)
def test_forecast_refuses_bad_input(kwargs, message):
    arguments = {"p_bad": [0.1, 0.2, 0.3], "groups": ["a", "a", "b"], **kwargs}
    with pytest.raises(ValueError, match=message):
        forecast_dropout(**arguments)


def test_quantiles_refuse_probabilities_outside_0_1():
    with pytest.raises(ValueError, match=r"probs must be in \(0, 1\)"):
        poisson_binomial_quantiles([0.1, 0.2], [0.0, 0.5])


@pytest.mark.parametrize(
    ("patients", "sessions", "outcomes", "expected"),
    [
        # rows in any order: the latest session of each patient counts, if still empty
        (["a", "a", "b", "b"], [2, 1, 1, 2], [None, 1, 1, 0], [True, False, False, False]),
        # an earlier empty outcome is not a session ahead
        (["a", "a"], [1, 2], [None, 1], [False, False]),
        (["a", "b", "c"], [1, 3, 2], [None, None, 1], [True, True, False]),
    ],
)
def test_pending_encounters_are_each_patients_latest_empty_outcome(
    patients, sessions, outcomes, expected
):
    table = pd.DataFrame(
        {
            "patient_id": patients,
            "session_number": sessions,
            "attended_next": pd.array(outcomes, dtype="Int8"),
        }
    )
    assert pending_encounters(table, "attended_next").tolist() == expected
