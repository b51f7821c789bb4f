"""Multiple imputation's building blocks: Rubin's rules, the D1 test, and the imputation
of missing ratings, checked by hand arithmetic and against simulated truth."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.special import expit

from engagekit.errors import ArgumentError, ContractError
from engagekit.heterogeneity import _impute as impute_module
from engagekit.heterogeneity._analysis import _wald
from engagekit.heterogeneity._impute import (
    _imputation_design,
    _previous_ratings,
    impute_ratings,
)
from engagekit.heterogeneity._pool import d1_test, rubin_pool

SCALE = (1.0, 7.0)
CENTRE = 4.0


# --------------------------------------------------------------------------- Rubin's rules
# Three imputations of two parameters, small enough to pool by hand.
HAND_ESTIMATES = [np.array([1.0, 0.0]), np.array([2.0, 1.0]), np.array([3.0, 5.0])]
HAND_COVARIANCES = [
    np.array([[0.5, 0.1], [0.1, 1.0]]),
    np.array([[0.6, 0.1], [0.1, 2.0]]),
    np.array([[0.7, 0.1], [0.1, 3.0]]),
]


def test_rubin_pool_by_hand():
    pooled = rubin_pool(HAND_ESTIMATES, HAND_COVARIANCES)
    # mean: ((1 + 2 + 3) / 3, (0 + 1 + 5) / 3)
    assert pooled.estimate == pytest.approx([2.0, 2.0])
    # W: the mean covariance
    assert pooled.within == pytest.approx(np.array([[0.6, 0.1], [0.1, 2.0]]))
    # B: deviations (-1, -2), (0, -1), (1, 3); divisor M - 1 = 2
    #    B11 = (1 + 0 + 1) / 2 = 1, B12 = (2 + 0 + 3) / 2 = 2.5, B22 = (4 + 1 + 9) / 2 = 7
    assert pooled.between == pytest.approx(np.array([[1.0, 2.5], [2.5, 7.0]]))
    # T = W + (1 + 1/3) B
    expected_total = np.array([[0.6 + 4 / 3, 0.1 + 10 / 3], [0.1 + 10 / 3, 2 + 28 / 3]])
    assert pooled.total == pytest.approx(expected_total)
    # lambda = (4/3) B_jj / T_jj: (4/3) / (29/15) = 20/29 and (28/3) / (34/3) = 14/17;
    # df = (M - 1) / lambda^2
    df = np.array([2 * (29 / 20) ** 2, 2 * (17 / 14) ** 2])
    assert pooled.df == pytest.approx(df)  # 4.205, 2.949
    # r = (4/3) B_jj / W_jj: (4/3) / 0.6 = 20/9 and (28/3) / 2 = 14/3
    r = np.array([20 / 9, 14 / 3])
    assert pooled.fmi == pytest.approx((r + 2 / (df + 3)) / (r + 1))
    assert pooled.m == 3
    # the 95% CI uses the t distribution on df
    low, high = pooled.confidence_interval()
    half = stats.t.ppf(0.975, df) * np.sqrt(np.diag(expected_total))
    assert low == pytest.approx(2.0 - half)
    assert high == pytest.approx(2.0 + half)


def test_infinite_complete_data_degrees_of_freedom_give_rubins():
    infinite = rubin_pool(HAND_ESTIMATES, HAND_COVARIANCES, df_complete=np.inf)
    assert np.array_equal(infinite.df, rubin_pool(HAND_ESTIMATES, HAND_COVARIANCES).df)


def test_barnard_rubin_degrees_of_freedom_by_hand():
    pooled = rubin_pool(HAND_ESTIMATES, HAND_COVARIANCES, df_complete=10)
    lam = np.array([20 / 29, 14 / 17])
    old = 2 / lam**2
    observed = (10 + 1) / (10 + 3) * 10 * (1 - lam)  # (11/13) * 10 * (1 - lambda)
    assert pooled.df == pytest.approx(old * observed / (old + observed))
    assert (pooled.df < 10).all()


def _awkward(seed: int, p: int) -> tuple[np.ndarray, np.ndarray]:
    """Estimates and a covariance whose mean over copies is not exact in floating point."""
    rng = np.random.default_rng(seed)
    estimate = rng.normal(size=p) / 3
    root = rng.normal(size=(p, p)) / 7
    return estimate, root @ root.T + np.eye(p) / 3


def test_identical_imputations_give_the_complete_data_results_exactly():
    estimate, cov = _awkward(seed=5, p=4)
    m = 20
    pooled = rubin_pool([estimate.copy() for _ in range(m)], [cov.copy() for _ in range(m)])
    assert np.array_equal(pooled.estimate, estimate)
    assert not pooled.between.any()
    assert np.array_equal(pooled.total, cov)
    assert np.isinf(pooled.df).all()
    assert not pooled.fmi.any()
    low, _ = pooled.confidence_interval()
    assert low == pytest.approx(estimate - stats.norm.ppf(0.975) * np.sqrt(np.diag(cov)))
    # with df_complete the degrees of freedom fall back to Barnard & Rubin's observed ones
    with_df = rubin_pool([estimate] * m, [cov] * m, df_complete=50)
    assert with_df.df == pytest.approx(np.full(4, 51 / 53 * 50))
    assert not with_df.fmi.any()


def test_d1_with_identical_imputations_is_the_wald_test_to_the_last_bit():
    estimate, cov = _awkward(seed=6, p=4)
    R = np.hstack([-np.ones((3, 1)), np.eye(3)])  # the analysis's equal-slopes contrasts
    wald = _wald(estimate, cov, R)
    test = d1_test([estimate] * 20, [cov] * 20, R)
    assert test.p_value == wald.p_value  # exactly
    assert test.r == 0
    assert test.df1 == 3
    assert np.isinf(test.df2)
    assert test.statistic * 3 == pytest.approx(wald.statistic)


def test_d1_by_hand_with_few_degrees_of_freedom():
    # k = 2, M = 3, so t = k (M - 1) = 4: the second form of df2
    test = d1_test(HAND_ESTIMATES, HAND_COVARIANCES, np.eye(2))
    # U = [[0.6, 0.1], [0.1, 2]], det 1.19, U^-1 = [[2, -0.1], [-0.1, 0.6]] / 1.19
    # tr(B U^-1) = (1 * 2 - 2.5 * 0.1 - 2.5 * 0.1 + 7 * 0.6) / 1.19 = 5.7 / 1.19
    r = (4 / 3) * (5.7 / 1.19) / 2  # = 3.8 / 1.19
    # Q' U^-1 Q with Q = (2, 2): (4 * 2 - 2 * 4 * 0.1 + 4 * 0.6) / 1.19 = 9.6 / 1.19
    statistic = (9.6 / 1.19) / (2 * (1 + r))  # = 9.6 / 9.98
    df2 = 4 * (1 + 1 / 2) * (1 + r) ** 2 / 2
    assert test.r == pytest.approx(r)
    assert test.statistic == pytest.approx(9.6 / 9.98)
    assert test.df1 == 2
    assert test.df2 == pytest.approx(df2)
    assert test.p_value == pytest.approx(stats.f.sf(statistic, 2, df2))


def test_d1_by_hand_with_one_contrast():
    # k = 1, M = 6, so t = 5 > 4: the first form of df2
    differences = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    estimates = [np.array([0.0, d]) for d in differences]
    covariances = [np.array([[1.0, 0.5], [0.5, 1.0]])] * 6
    test = d1_test(estimates, covariances, np.array([[-1.0, 1.0]]))
    # Q = 3.5, U = 1 + 1 - 2 * 0.5 = 1, B = var(1..6) = 3.5, r = (7/6) 3.5 = 49/12
    r = 49 / 12
    statistic = 3.5**2 / (1 + r)  # = 147/61
    df2 = 4 + (5 - 4) * (1 + (1 - 2 / 5) / r) ** 2
    assert test.r == pytest.approx(r)
    assert test.statistic == pytest.approx(147 / 61)
    assert test.df2 == pytest.approx(df2)
    assert test.p_value == pytest.approx(stats.f.sf(statistic, 1, df2))


@pytest.mark.parametrize(
    ("estimates", "covariances", "message"),
    [
        ([np.zeros(2)], [np.eye(2)], "at least 2 imputations"),
        ([np.zeros(2)] * 3, [np.eye(2)] * 2, "one covariance per estimate"),
        ([np.zeros(2)] * 3, [np.eye(3)] * 3, "covariances of shape"),
        ([np.zeros(2)] * 3, [np.zeros((2, 2))] * 3, "variance must be positive"),
    ],
)
def test_rubin_pool_refuses(estimates, covariances, message):
    with pytest.raises(ArgumentError, match=message):
        rubin_pool(estimates, covariances)


def test_rubin_pool_refuses_complete_data_degrees_of_freedom_of_0():
    with pytest.raises(ArgumentError, match="df_complete must be above 0"):
        rubin_pool(HAND_ESTIMATES, HAND_COVARIANCES, df_complete=0)


# --------------------------------------------------------------------------- calibration
def _proper_imputation(x, y, missing, m, rng):
    """``m`` proper imputations of the missing ``y`` from the normal linear model on
    ``x``: sigma^2 and the coefficients drawn from their posterior, then y drawn."""
    X = np.column_stack([np.ones_like(x), x])
    observed = ~missing
    Xo, yo = X[observed], y[observed]
    gram_inv = np.linalg.inv(Xo.T @ Xo)
    beta = gram_inv @ Xo.T @ yo
    residual = yo - Xo @ beta
    dof = observed.sum() - 2
    completed = []
    for _ in range(m):
        sigma2 = residual @ residual / rng.chisquare(dof)
        draw = rng.multivariate_normal(beta, sigma2 * gram_inv)
        filled = y.copy()
        filled[missing] = X[missing] @ draw + np.sqrt(sigma2) * rng.normal(size=missing.sum())
        completed.append(filled)
    return completed


def _complete_data_analyses(x, completed):
    """Per completed table: the mean of y with its variance, and the regression of y on
    (1, x) with its covariance."""
    n = len(x)
    X = np.column_stack([np.ones_like(x), x])
    gram_inv = np.linalg.inv(X.T @ X)
    means, regressions = [], []
    for y in completed:
        means.append((np.array([y.mean()]), np.array([[y.var(ddof=1) / n]])))
        beta = gram_inv @ X.T @ y
        residual = y - X @ beta
        regressions.append((beta, residual @ residual / (n - 2) * gram_inv))
    return means, regressions


@pytest.fixture(scope="module")
def calibration():
    """1,000 data sets of 200 from y = 1 + 0.5 x + e, y missing at random given x (about
    38%), each imputed 10 times: the pooled CI of E[y] covers 1, and D1 tests the true
    (intercept, slope) = (1, 0.5)."""
    rng = np.random.default_rng(20261127)
    n, m, replicates, truth = 200, 10, 1000, np.array([1.0, 0.5])
    covered, covered_barnard_rubin, rejected = [], [], []
    for _ in range(replicates):
        x = rng.normal(size=n)
        y = truth[0] + truth[1] * x + rng.normal(size=n)
        missing = rng.random(n) < expit(-0.5 + 1.5 * x)
        completed = _proper_imputation(x, y, missing, m, rng)
        means, regressions = _complete_data_analyses(x, completed)
        for pooled, hits in (
            (rubin_pool(*zip(*means, strict=True)), covered),
            (rubin_pool(*zip(*means, strict=True), df_complete=n - 1), covered_barnard_rubin),
        ):
            low, high = pooled.confidence_interval()
            hits.append(low[0] <= truth[0] <= high[0])
        estimates = [beta - truth for beta, _ in regressions]
        test = d1_test(estimates, [cov for _, cov in regressions], np.eye(2))
        rejected.append(test.p_value < 0.05)
    return np.mean(covered), np.mean(covered_barnard_rubin), np.mean(rejected)


def test_pooled_confidence_intervals_cover_the_truth_95_percent_of_the_time(calibration):
    coverage, coverage_barnard_rubin, _ = calibration
    # 1,000 replicates: a binomial SE of 0.7 points at 95%
    assert 0.935 <= coverage <= 0.965
    assert 0.935 <= coverage_barnard_rubin <= 0.965


def test_d1_rejects_a_true_hypothesis_5_percent_of_the_time(calibration):
    _, _, type_1_error = calibration
    # a binomial SE of 0.7 points at 5%; D1 is a little liberal with small samples
    assert 0.035 <= type_1_error <= 0.07


# --------------------------------------------------------------------------- imputation
def _encounters(
    n_patients: int,
    seed: int,
    *,
    slopes: dict[str, float],
    patient_sd: float = 0.8,
    noise_sd: float = 0.6,
    sessions: int = 4,
    missing: float = 0.3,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Encounters with two ratings (``warmth`` drives the outcome with a slope per
    treatment; ``clarity`` tracks ``warmth``), a covariate, and a share ``missing`` of
    ratings deleted at random; rows shuffled, with an index that is not 0..n-1.

    Returns the table with missing ratings and the same table before the deletion.
    """
    rng = np.random.default_rng(seed)
    treatments = list(slopes)
    patient = np.repeat(np.arange(n_patients), sessions)
    session = np.tile(np.arange(1, sessions + 1), n_patients)
    treatment = np.array(treatments)[rng.integers(len(treatments), size=n_patients)][patient]
    level = CENTRE + rng.normal(scale=patient_sd, size=n_patients)[patient]
    warmth = np.clip(level + rng.normal(scale=noise_sd, size=len(patient)), *SCALE)
    clarity = np.clip(warmth + rng.normal(scale=0.7, size=len(patient)), *SCALE)
    slope = np.array([slopes[t] for t in treatment])
    adherent = (rng.random(len(patient)) < expit(slope * (warmth - CENTRE))).astype(int)
    truth = pd.DataFrame(
        {
            "patient_id": [f"P{p:04d}" for p in patient],
            "session_number": session,
            "treatment": treatment,
            "warmth": warmth,
            "clarity": clarity,
            "age_band": rng.choice(["18-34", "35-64", "65+"], size=len(patient)),
            "adherent": adherent,
        }
    )
    order = rng.permutation(len(truth))
    truth = truth.iloc[order].set_index(pd.Index(1000 + order, name="encounter"))
    rows = truth.copy()
    for rating in ("warmth", "clarity"):
        rows.loc[rng.random(len(rows)) < missing, rating] = np.nan
    return rows, truth


RATINGS = ["warmth", "clarity"]
TWO_TREATMENTS = {"cbt": 2.0, "drug": -2.0}


def _impute(rows: pd.DataFrame, treatments: list[str], **options) -> list[pd.DataFrame]:
    settings = {"imputations": 3, "seed": 7, **options}
    return impute_ratings(
        rows,
        ratings=RATINGS,
        target="adherent",
        treatments=treatments,
        covariates=["age_band"],
        scale=SCALE,
        **settings,
    )


@pytest.fixture(scope="module")
def imputed() -> tuple[pd.DataFrame, pd.DataFrame, list[pd.DataFrame]]:
    rows, truth = _encounters(300, seed=1, slopes={"cbt": 1.0, "drug": 0.0, "ipt": -1.0})
    return rows, truth, _impute(rows, ["cbt", "drug", "ipt"])


def test_observed_cells_and_other_columns_are_unchanged(imputed):
    rows, _, completed = imputed
    for table in completed:
        assert table.index.equals(rows.index)
        assert list(table.columns) == list(rows.columns)
        pd.testing.assert_frame_equal(
            table.drop(columns=RATINGS), rows.drop(columns=RATINGS), check_exact=True
        )
        for rating in RATINGS:
            observed = rows[rating].notna().to_numpy()
            before = rows[rating].to_numpy()[observed]
            after = table[rating].to_numpy()[observed]
            assert np.array_equal(before.view(np.int64), after.view(np.int64))  # bit for bit


def test_every_missing_rating_is_filled_with_a_continuous_value_on_the_scale(imputed):
    rows, _, completed = imputed
    missing = rows[RATINGS].isna().to_numpy()
    assert missing.mean() == pytest.approx(0.3, abs=0.03)
    for table in completed:
        values = table[RATINGS].to_numpy()
        assert not np.isnan(values).any()
        assert (values >= SCALE[0]).all() and (values <= SCALE[1]).all()
        # scikit-learn puts a draw whose predicted mean lies beyond the scale at its end
        filled = values[missing]
        at_an_end = np.isin(filled, SCALE)
        assert at_an_end.mean() < 0.02
        assert (filled[~at_an_end] != np.round(filled[~at_an_end])).all()


def test_the_imputations_differ_where_ratings_were_missing(imputed):
    rows, _, completed = imputed
    missing = rows[RATINGS].isna().to_numpy()
    first, second = (table[RATINGS].to_numpy() for table in completed[:2])
    # ... except where both draws were put at the same end of the scale
    same_end = (first == second) & np.isin(first, SCALE)
    assert ((first != second) | same_end)[missing].all()
    assert same_end[missing].mean() < 0.02
    assert np.array_equal(first[~missing], second[~missing])


def test_the_same_seed_gives_the_same_imputations(imputed):
    rows, _, completed = imputed
    again = _impute(rows, ["cbt", "drug", "ipt"], imputations=2)
    for table, same in zip(completed, again, strict=False):
        pd.testing.assert_frame_equal(table, same, check_exact=True)
    other = _impute(rows, ["cbt", "drug", "ipt"], imputations=1, seed=8)[0]
    assert not other.equals(completed[0])


def test_with_nothing_missing_the_imputations_are_copies():
    _, truth = _encounters(50, seed=2, slopes=TWO_TREATMENTS)
    completed = _impute(truth, ["cbt", "drug"], imputations=2)
    assert len(completed) == 2
    for table in completed:
        assert table is not truth
        pd.testing.assert_frame_equal(table, truth, check_exact=True)
    completed[0].loc[:, "warmth"] = 0.0
    assert (truth["warmth"] >= SCALE[0]).all()


def test_previous_ratings_follow_the_session_number_within_each_patient():
    rows = pd.DataFrame(
        {
            "patient_id": ["b", "a", "a", "b", "a", "b"],
            "session_number": [3, 2, 1, 1, 4, 2],
            "warmth": [5.0, 2.0, 1.0, 4.0, 3.0, np.nan],
        },
        index=[10, 11, 12, 13, 14, 15],
    )
    previous = _previous_ratings(rows, ["warmth"])
    # a: sessions 1, 2, 4 rated 1, 2, 3 (session 3 skipped); b: sessions 1, 2, 3 rated
    # 4, missing, 5
    expected = [np.nan, 1.0, np.nan, np.nan, 2.0, 4.0]
    assert list(previous.columns) == ["warmth@previous"]
    np.testing.assert_array_equal(previous["warmth@previous"].to_numpy(), expected)


def test_the_imputation_design_holds_the_outcome_by_treatment_products():
    rows = pd.DataFrame(
        {
            "patient_id": ["a", "a", "b", "c"],
            "session_number": [1, 2, 1, 1],
            "treatment": ["cbt", "cbt", "drug", "ipt"],
            "warmth": [5.0, np.nan, 3.0, 4.0],
            "adherent": [1, 0, 1, 1],
            "age_band": ["65+", "18-34", "18-34", "35-64"],
        }
    )
    design = _imputation_design(
        rows,
        ratings=["warmth"],
        target="adherent",
        treatments=["cbt", "drug", "ipt"],
        covariates=["age_band"],
    )
    expected = pd.DataFrame(
        {
            "warmth": [5.0, np.nan, 3.0, 4.0],
            "adherent": [1.0, 0.0, 1.0, 1.0],
            "treatment=drug": [0.0, 0.0, 1.0, 0.0],
            "treatment=ipt": [0.0, 0.0, 0.0, 1.0],
            "adherent*treatment=drug": [0.0, 0.0, 1.0, 0.0],
            "adherent*treatment=ipt": [0.0, 0.0, 0.0, 1.0],
            "session_number": [1.0, 2.0, 1.0, 1.0],
            "warmth@previous": [np.nan, 5.0, np.nan, np.nan],
            "first_session": [1.0, 0.0, 1.0, 1.0],
            "age_band=35-64": [0.0, 0.0, 0.0, 1.0],
            "age_band=65+": [1.0, 0.0, 0.0, 0.0],
        }
    )
    pd.testing.assert_frame_equal(design, expected)


def _imputed_cell_means(
    rows: pd.DataFrame, truth: pd.DataFrame, completed: list[pd.DataFrame]
) -> pd.DataFrame:
    """Mean of the deleted true ``warmth`` and of its imputations, by treatment and
    outcome."""
    missing = rows["warmth"].isna()
    cells = truth.loc[missing, ["treatment", "adherent", "warmth"]]
    imputed = np.mean([table.loc[missing, "warmth"].to_numpy() for table in completed], axis=0)
    cells = cells.assign(imputed=imputed)
    return cells.groupby(["treatment", "adherent"])[["warmth", "imputed"]].mean()


@pytest.fixture(scope="module")
def opposite_associations() -> tuple[pd.DataFrame, pd.DataFrame]:
    """1,500 patients: warmer ratings go with adherence under CBT and with
    non-adherence under the drug (slopes +2 and -2 log-odds per point)."""
    return _encounters(1500, seed=3, slopes=TWO_TREATMENTS)


def test_imputations_keep_each_treatments_own_rating_outcome_association(
    opposite_associations,
):
    rows, truth = opposite_associations
    means = _imputed_cell_means(rows, truth, _impute(rows, ["cbt", "drug"], imputations=5))
    # the true conditional means are about 0.5 points apart, in opposite directions
    gap = means["warmth"].xs(1, level="adherent") - means["warmth"].xs(0, level="adherent")
    assert gap["cbt"] > 0.4 and gap["drug"] < -0.4
    assert means["imputed"].to_numpy() == pytest.approx(means["warmth"].to_numpy(), abs=0.1)


def test_the_pooled_model_also_keeps_the_associations_by_its_products(
    opposite_associations,
):
    """Imputing every treatment together (as for small treatments) keeps each
    treatment's association through the outcome x treatment products."""
    rows, truth = opposite_associations
    completed = _impute(rows, ["cbt", "drug"], imputations=5, by_treatment=False)
    means = _imputed_cell_means(rows, truth, completed)
    assert np.abs(means["imputed"] - means["warmth"]).max() < 0.1


def test_without_the_products_the_pooled_imputations_would_blur_the_associations(
    opposite_associations, monkeypatch
):
    """The checks above can fail: one model for both treatments without the outcome x
    treatment products misses the true conditional means."""
    rows, truth = opposite_associations
    full_design = impute_module._imputation_design

    def without_products(*args, **kwargs):
        design = full_design(*args, **kwargs)
        return design.drop(columns=[c for c in design.columns if "*treatment=" in c])

    monkeypatch.setattr(impute_module, "_imputation_design", without_products)
    completed = _impute(rows, ["cbt", "drug"], imputations=5, by_treatment=False)
    means = _imputed_cell_means(rows, truth, completed)
    assert np.abs(means["imputed"] - means["warmth"]).max() > 0.2


def test_a_small_treatment_is_imputed_with_the_others(monkeypatch):
    rows, _ = _encounters(60, seed=4, slopes=TWO_TREATMENTS)
    calls = []
    design = impute_module._imputation_design

    def recorded(frame, **kwargs):
        calls.append(kwargs["treatments"])
        return design(frame, **kwargs)

    monkeypatch.setattr(impute_module, "_imputation_design", recorded)
    _impute(rows, ["cbt", "drug"], imputations=2)
    assert len(rows) < 2 * impute_module.MIN_STRATUM and calls == [["cbt", "drug"]]
    calls.clear()
    monkeypatch.setattr(impute_module, "MIN_STRATUM", 10)
    _impute(rows, ["cbt", "drug"], imputations=2)
    assert calls == [["cbt"], ["drug"]]


def test_a_patients_previous_rating_informs_the_imputation():
    rows, truth = _encounters(
        500, seed=4, slopes={"cbt": 0.0, "drug": 0.0}, patient_sd=1.2, noise_sd=0.2
    )
    completed = _impute(rows, ["cbt", "drug"], imputations=2)
    previous = _previous_ratings(truth, ["warmth"])["warmth@previous"].to_numpy()
    # cells whose previous session's rating is observed: warmth's other predictors here
    # (the outcome, the treatment) carry no information about it
    informed = rows["warmth"].isna().to_numpy() & ~np.isnan(
        _previous_ratings(rows, ["warmth"])["warmth@previous"].to_numpy()
    )
    assert informed.sum() > 200
    true_values = truth["warmth"].to_numpy()[informed]
    assert np.corrcoef(true_values, previous[informed])[0, 1] > 0.9
    for table in completed:
        imputed = table["warmth"].to_numpy()[informed]
        assert np.corrcoef(imputed, true_values)[0, 1] > 0.8


def test_each_row_knows_its_patients_previous_session_row():
    rows = pd.DataFrame(
        {"patient_id": ["b", "a", "a", "b", "a"], "session_number": [2, 3, 1, 1, 2]}
    )
    # a: rows 2 (session 1), 4 (2), 1 (3); b: rows 3 (1), 0 (2)
    assert impute_module._previous_row(rows).tolist() == [3, 4, -1, -1, 2]


@pytest.mark.parametrize(
    ("change", "error", "message"),
    [
        ({"imputations": 0}, ArgumentError, "imputations must be at least 1"),
        ({"scale": (7.0, 1.0)}, ArgumentError, "min < max"),
        ({"treatments": ["cbt"]}, ContractError, r"treatment\(s\) \['drug'\]"),
        ({"warmth": np.nan}, ContractError, r"\['warmth'\] are missing in every row"),
    ],
)
def test_impute_ratings_refuses(change, error, message):
    rows, _ = _encounters(20, seed=6, slopes=TWO_TREATMENTS)
    if "warmth" in change:
        rows["warmth"] = change.pop("warmth")
    arguments = {
        "ratings": RATINGS,
        "target": "adherent",
        "treatments": ["cbt", "drug"],
        "covariates": ["age_band"],
        "scale": SCALE,
        "imputations": 2,
        "seed": 0,
        **change,
    }
    with pytest.raises(error, match=message):
        impute_ratings(rows, **arguments)
