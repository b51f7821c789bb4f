"""Logistic recalibration of the margin: fitted only when needed, exact when fitted."""

import numpy as np
import pytest
import statsmodels.api as sm
from scipy.special import expit, logit

from engagekit.models import LogitRecalibration, fit_logit_recalibration


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


def test_the_fit_equals_statsmodels(true_logit):
    y = _outcomes(true_logit, seed=3)
    margin = 1.5 * true_logit + 0.2
    recal = fit_logit_recalibration(margin, y)
    glm = sm.GLM(y, sm.add_constant(margin), family=sm.families.Binomial()).fit()
    assert recal.intercept == pytest.approx(glm.params[0], abs=1e-6)
    assert recal.slope == pytest.approx(glm.params[1], abs=1e-6)


def test_recalibration_is_affine_on_the_log_odds_scale():
    recal = LogitRecalibration(intercept=0.3, slope=0.8, applied=True)
    margin = logit(np.array([0.1, 0.5, 0.9]))
    assert np.allclose(recal(margin), 0.3 + 0.8 * margin)


@pytest.mark.parametrize("y", [np.zeros(500), np.ones(500), np.array([0.0, 1.0] * 10)])
def test_too_little_information_gives_the_identity(y):
    recal = fit_logit_recalibration(np.linspace(-2, 2, len(y)), y)
    assert not recal.applied
    assert recal(np.array([1.5]))[0] == 1.5
