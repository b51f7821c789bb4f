"""The minimum detectable deviation of the cross-treatment test.

Checked against the closed form of a two-treatment z test and against a Monte Carlo
simulation of the Wald statistic under a known covariance of the slopes; the
covariance the code rebuilds from the contrasts is never used by the checks.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy import stats

from engagekit.heterogeneity._detectable import minimum_detectable_deviation

Z90 = stats.norm.ppf(0.95)  # the contrasts of heterogeneity_analysis carry 90% CIs


def result_from_covariance(cov: np.ndarray, alpha: float = 0.05, n_attributes: int = 1) -> dict:
    """A heterogeneity result whose slopes have covariance ``cov`` (estimates all 0)."""
    treatments = [f"t{i}" for i in range(cov.shape[0])]
    contrasts = []
    for i, j in itertools.combinations(range(len(treatments)), 2):
        se = np.sqrt(cov[i, i] + cov[j, j] - 2 * cov[i, j])
        contrasts.append(
            {
                "treatment_a": treatments[i],
                "treatment_b": treatments[j],
                "difference": 0.0,
                "ci_low": -Z90 * se,
                "ci_high": Z90 * se,
            }
        )
    attribute = {
        "attribute": "empathy",
        "label": "Empathy",
        "by_treatment": [{"treatment": t} for t in treatments],
        "contrasts": contrasts,
    }
    return {"method": {"alpha": alpha}, "attributes": [attribute] * n_attributes}


@pytest.mark.parametrize(("n_attributes", "power"), [(1, 0.8), (6, 0.8), (6, 0.9)])
def test_two_treatments_match_the_z_test(n_attributes, power):
    se = 0.12
    cov = np.diag([se**2 / 2, se**2 / 2])  # var(b_1 - b_0) = se^2
    out = minimum_detectable_deviation(result_from_covariance(cov, 0.05, n_attributes), power)
    level = 0.05 / n_attributes
    # a two-sided z test's power ignores the far tail, below 1e-6 here
    expected = (stats.norm.isf(level / 2) + stats.norm.ppf(power)) * se
    assert out[0]["level"] == pytest.approx(level)
    for row in out[0]["by_treatment"]:
        assert row["deviation"] == pytest.approx(expected, rel=1e-5)


def test_power_at_the_deviation_is_the_power_asked_for():
    rng = np.random.default_rng(3)
    k = 4
    a = rng.normal(size=(k, k)) * 0.05
    cov = a @ a.T + np.diag(rng.uniform(0.005, 0.03, k))
    out = minimum_detectable_deviation(result_from_covariance(cov), power=0.8)[0]
    R = np.hstack([-np.ones((k - 1, 1)), np.eye(k - 1)])
    inverse = np.linalg.inv(R @ cov @ R.T)
    critical = stats.chi2.isf(0.05, k - 1)
    draws = rng.multivariate_normal(np.zeros(k), cov, size=40_000)
    for index, row in enumerate(out["by_treatment"]):
        shift = np.zeros(k)
        shift[index] = row["deviation"]
        differences = (draws + shift) @ R.T
        wald = np.einsum("ni,ij,nj->n", differences, inverse, differences)
        # Monte Carlo SE of a share near 0.8 with 40,000 draws: 0.002
        assert np.mean(wald > critical) == pytest.approx(0.8, abs=0.01), row["treatment"]
    deviations = [r["deviation"] for r in out["by_treatment"]]
    assert out["smallest"] == min(deviations) and out["largest"] == max(deviations)
    assert (
        out["by_treatment"][deviations.index(min(deviations))]["treatment"]
        == (out["smallest_treatment"])
    )


def test_more_precise_estimates_detect_smaller_deviations():
    cov = np.diag([0.01, 0.02, 0.04])
    wide = minimum_detectable_deviation(result_from_covariance(cov))[0]
    narrow = minimum_detectable_deviation(result_from_covariance(cov / 4))[0]
    for a, b in zip(wide["by_treatment"], narrow["by_treatment"], strict=True):
        assert b["deviation"] == pytest.approx(a["deviation"] / 2, rel=1e-6)
    # the treatment with the least precise slope is the hardest to see deviate
    assert wide["largest_treatment"] == "t2"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"power": 0.0}, "'power' must be between 0 and 1"),
        ({"alpha": 1.5}, "'alpha' must be between 0 and 1"),
        ({"drop_contrast": True}, "lacks some between-treatment contrasts"),
    ],
)
def test_refusals(change, message):
    result = result_from_covariance(np.diag([0.01, 0.01, 0.01]))
    if change.pop("drop_contrast", False):
        result["attributes"][0]["contrasts"] = result["attributes"][0]["contrasts"][1:]
    with pytest.raises(ValueError, match=message):
        minimum_detectable_deviation(result, **change)
