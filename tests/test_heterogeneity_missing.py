"""Missing ratings, the margin per SD and the plain sandwich in the cross-treatment
analysis: multiple imputation is the default when over 5% of encounters would be left
out, it is the complete-case analysis exactly when nothing is missing, the verdicts do
not depend on the rating scale under the per-SD margin, and the plain sandwich is noted
as too small with few clusters."""

from __future__ import annotations

import math

import pytest

from engagekit.config import config_from_dict, load_config
from engagekit.heterogeneity import heterogeneity_analysis
from engagekit.simulation import simulate_encounters

CONFIG = load_config()


@pytest.fixture(scope="module")
def encounters():
    return simulate_encounters(1200, seed=21).encounters


def _summary(result):
    return [
        (a.attribute, a.verdict, a.deviating, a.p_value, a.equivalence.equivalent)
        for a in result.attributes
    ]


def test_multiple_imputation_is_the_default_when_over_5_percent_would_be_left_out(encounters):
    result = heterogeneity_analysis(encounters, "adherent", CONFIG, imputations=3)
    share = result.n_with_missing_rating / result.n_encounters
    assert share > 0.05
    assert result.method.missing == "mi" and result.method.imputations == 3
    assert result.method.imputation_seeds == [0, 1, 2]
    assert result.n_excluded_missing_rating == 0  # imputed, not left out
    for a in result.attributes:
        assert a.other_analysis is not None and a.other_analysis.missing == "complete_case"
        assert 0 < a.fraction_missing_information < 1
        assert all(r.df is not None and r.df > 0 for r in a.by_treatment)
    assert result.attributes[0].test.df[1] > 0  # D1: an F test over imputations


def test_complete_cases_are_the_default_when_few_would_be_left_out(encounters):
    rated = encounters.copy()
    names = CONFIG.attribute_names
    # keep a rating missing in only 2% of the encounters
    complete = rated[names].notna().all(axis=1)
    keep = complete | (rated.index.to_series() % 50 == 0)
    few = rated[keep.to_numpy()].reset_index(drop=True)
    result = heterogeneity_analysis(few, "adherent", CONFIG, imputations=3)
    assert 0 < result.n_with_missing_rating / len(few) <= 0.05
    assert result.method.missing == "complete_case" and result.method.imputations is None
    assert result.n_excluded_missing_rating == result.n_with_missing_rating
    assert all(a.other_analysis.missing == "mi" for a in result.attributes)


def test_with_nothing_missing_imputation_is_the_complete_case_analysis_exactly(encounters):
    complete = encounters[encounters[CONFIG.attribute_names].notna().all(axis=1)]
    complete = complete.reset_index(drop=True)
    mi = heterogeneity_analysis(complete, "adherent", CONFIG, missing="mi")
    cc = heterogeneity_analysis(complete, "adherent", CONFIG, missing="complete_case")
    assert mi.method.missing == "mi" and mi.method.imputations is None
    assert any("nothing to impute" in note for note in mi.method.notes)
    assert mi.attributes == cc.attributes  # every number, to the last bit
    assert all(a.other_analysis is None for a in mi.attributes)


def test_the_per_sd_margin_gives_the_same_verdicts_on_a_0_to_100_scale(encounters):
    """The same ratings on 1-5 and rescaled to 0-100: under the per-SD margin every
    verdict, p-value and odds ratio per SD is the same; per point they are not."""
    hundred = config_from_dict(
        {"attributes": {**CONFIG.attributes.model_dump(), "scale": {"min": 0, "max": 100}}}
    )
    rescaled = encounters.copy()
    for name in CONFIG.attribute_names:
        rescaled[name] = (rescaled[name] - 1) * 25.0
    options = {"missing": "complete_case"}
    five = heterogeneity_analysis(encounters, "adherent", CONFIG, **options)
    wide = heterogeneity_analysis(rescaled, "adherent", hundred, **options)
    for a, b in zip(five.attributes, wide.attributes, strict=True):
        assert (a.verdict, a.deviating) == (b.verdict, b.deviating)
        assert a.p_value == pytest.approx(b.p_value, rel=1e-6)
        assert a.rating_sd * 25 == pytest.approx(b.rating_sd, rel=1e-9)
        assert a.margin_per_sd == pytest.approx(b.margin_per_sd, rel=1e-9)
        for r, s in zip(a.by_treatment, b.by_treatment, strict=True):
            assert r.odds_ratio_per_sd == pytest.approx(s.odds_ratio_per_sd, rel=1e-6)
            assert r.log_odds == pytest.approx(s.log_odds * 25, rel=1e-6)
    # per point the 0-100 scale's margin would be 25 times too loose
    per_point = heterogeneity_analysis(rescaled, "adherent", hundred, margin_per="point", **options)
    assert per_point.attributes[0].margin == pytest.approx(math.log(1.25))
    assert wide.attributes[0].margin == pytest.approx(math.log(1.25) / wide.attributes[0].rating_sd)
    assert all(a.verdict == "equivalent" for a in per_point.attributes)  # the old failure
    assert not all(a.verdict == "equivalent" for a in wide.attributes)


def test_a_bare_number_margin_in_a_config_is_per_rating_point():
    config = config_from_dict({"heterogeneity": {"margin": 0.3}})
    assert (config.heterogeneity.margin.value, config.heterogeneity.margin.per) == (0.3, "point")
    assert load_config().heterogeneity.margin.per == "sd"


def test_the_plain_sandwich_is_noted_as_too_small_under_200_clusters(encounters):
    few = encounters[encounters["patient_id"].isin(encounters["patient_id"].unique()[:190])]
    result = heterogeneity_analysis(
        few.reset_index(drop=True), "adherent", CONFIG, cov_type="robust", missing="complete_case"
    )
    assert result.n_clusters < 200
    assert any("too small" in note for note in result.method.notes)
    corrected = heterogeneity_analysis(
        few.reset_index(drop=True), "adherent", CONFIG, missing="complete_case"
    )
    assert not any("too small" in note for note in corrected.method.notes)
    # the plain sandwich's SEs are the smaller
    plain = result.attributes[0].by_treatment[0].se
    assert plain < corrected.attributes[0].by_treatment[0].se
