"""The cross-treatment analysis, checked against the simulator's known truth."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from scipy import stats
from scipy.special import expit
from statsmodels.stats.multitest import multipletests

from _cli import assert_no_traceback, run
from engagekit.choices import Adjustment, CovarianceType
from engagekit.config import Config, Margin, config_from_dict, load_config
from engagekit.errors import AnalysisError, ArgumentError, ContractError
from engagekit.heterogeneity import (
    AttributeResult,
    HeterogeneityResult,
    TreatmentEffect,
    fit_gee,
    heterogeneity_analysis,
    slope_name,
)
from engagekit.heterogeneity._analysis import TreatmentDeviation, _design, _rest_equal, _verdict
from engagekit.heterogeneity._closed import wald_subset_test
from engagekit.heterogeneity._plot import forest_plot
from engagekit.simulation import parse_heterogeneity, simulate_encounters

CONFIG = load_config()
DEVIATING = ("active_listening", "cbt_online")


@pytest.fixture(scope="module")
def deviating() -> tuple[pd.DataFrame, HeterogeneityResult]:
    """4,000 patients; online CBT's active-listening effect on adherence is +0.5 log-odds
    per point larger than elsewhere (the issue's acceptance setting)."""
    spec = parse_heterogeneity(f"{DEVIATING[0]}:{DEVIATING[1]}:0.5:adherent", CONFIG)
    encounters = simulate_encounters(4000, seed=11, heterogeneity=[spec]).encounters
    return encounters, heterogeneity_analysis(encounters, "adherent", CONFIG)


@pytest.fixture(scope="module")
def null_result() -> tuple[pd.DataFrame, HeterogeneityResult]:
    encounters = simulate_encounters(1500, seed=12).encounters
    return encounters, heterogeneity_analysis(encounters, "adherent", CONFIG, **COMPLETE_CASE)


#: The analysis of the encounters with every rating, as statsmodels is given them here
COMPLETE_CASE = {"missing": "complete_case"}


def _by_name(result: HeterogeneityResult) -> dict[str, AttributeResult]:
    return {a.attribute: a for a in result.attributes}


def test_the_deviating_attribute_differs_and_no_other_is_flagged(deviating):
    _, result = deviating
    attributes = _by_name(result)
    attribute, treatment = DEVIATING
    assert attributes[attribute].verdict == "differs"
    assert attributes[attribute].p_adjusted < 0.05
    by_treatment = attributes[attribute].by_treatment
    largest = max(by_treatment, key=lambda r: r.odds_ratio)
    assert largest.treatment == treatment
    for name, a in attributes.items():
        if name != attribute:
            assert a.verdict != "differs", (name, a.p_adjusted)
    # the estimate recovers the truth: common slope + 0.5 in online CBT
    slopes = {r.treatment: r.log_odds for r in by_treatment}
    others = np.mean([v for t, v in slopes.items() if t != treatment])
    assert slopes[treatment] - others == pytest.approx(0.5, abs=0.15)
    # the sentence names the treatment by the config's label, never by its code
    sentence = attributes[attribute].sentence
    assert "in Online CBT it is stronger than in the others" in sentence
    assert treatment not in sentence
    assert sentence.startswith("The effect of active listening on adherence differs")
    # the closed tests name online CBT, and only it; the analysis imputed the missing
    # ratings (over 5% of encounters have one) and the complete cases agree
    assert attributes[attribute].deviating == [treatment]
    assert result.method.missing == "mi" and result.method.imputations == 20
    assert attributes[attribute].other_analysis.missing == "complete_case"
    assert attributes[attribute].other_analysis.deviating == [treatment]


def test_with_no_heterogeneity_nothing_differs(null_result):
    _, result = null_result
    for a in result.attributes:
        assert a.verdict in ("equivalent", "inconclusive"), (a.attribute, a.p_adjusted)


def test_the_result_has_the_documented_fields(null_result):
    encounters, result = null_result
    record = json.loads(json.dumps(result.to_dict(), allow_nan=False))  # JSON-ready
    for key in ("target", "n_encounters", "n_patients", "method", "attributes"):
        assert key in record
    for key in ("cov_type", "working_correlation", "margin", "versions", "data_sha256"):
        assert key in record["method"]
    assert result.method.cov_type == "kauermann_carroll"
    first = result.attributes[0]
    for key in ("attribute", "p_value", "p_adjusted", "verdict", "by_treatment"):
        assert key in record["attributes"][0]
    for key in ("treatment", "odds_ratio", "ci_low", "ci_high", "ame"):
        assert key in record["attributes"][0]["by_treatment"][0]
    assert [r.treatment for r in first.by_treatment] == CONFIG.treatment_names
    labels = [t.label for t in CONFIG.treatments]
    assert [r.treatment_label for r in first.by_treatment] == labels
    # every row is accounted for: analysed or counted under one reason
    excluded = sum(v for k, v in record.items() if k.startswith("n_excluded"))
    assert result.n_excluded == excluded
    assert result.n_encounters + excluded == len(encounters)
    assert result.n_excluded_missing_outcome == int(encounters["adherent"].isna().sum())


def test_holm_adjustment_and_verdict_rules(null_result):
    _, result = null_result
    raw = [a.p_value for a in result.attributes]
    expected = multipletests(raw, method="holm")[1]
    assert [a.p_adjusted for a in result.attributes] == pytest.approx(list(expected))
    margin = result.method.margin
    assert margin == pytest.approx(math.log(1.25))
    for a in result.attributes:
        inside = all(-margin < c.ci_low and c.ci_high < margin for c in a.contrasts)
        assert a.equivalence.equivalent == inside
        expected_verdict = (
            "equivalent" if inside else "differs" if a.p_adjusted < 0.05 else "inconclusive"
        )
        assert a.verdict == expected_verdict
        assert len(a.contrasts) == 15  # every pair of six treatments


def _kauermann_carroll_reference(X, y, params, groups):
    """Kauermann-Carroll for an independence binomial GEE, written out from the paper:
    Pearson residuals of each patient scaled by (I - H_i)^-1/2."""
    mu = expit(X @ params)
    root_v = np.sqrt(mu * (1 - mu))
    bread = np.linalg.inv((X * (mu * (1 - mu))[:, None]).T @ X)
    meat = np.zeros_like(bread)
    for patient in np.unique(groups):
        rows = groups == patient
        Z = X[rows] * root_v[rows, None]
        e = (y[rows] - mu[rows]) / root_v[rows]
        values, vectors = np.linalg.eigh(np.eye(rows.sum()) - Z @ bread @ Z.T)
        u = Z.T @ (vectors @ np.diag(values**-0.5) @ vectors.T @ e)
        meat += np.outer(u, u)
    return bread @ meat @ bread


def test_odds_ratios_and_cis_match_statsmodels_and_the_kauermann_carroll_formula(null_result):
    encounters, result = null_result
    rows = encounters.dropna(subset=["adherent", *CONFIG.attribute_names, "age_band"])
    rows = rows.reset_index(drop=True)
    design = _design(rows, CONFIG, CONFIG.treatment_names)
    y = rows["adherent"].to_numpy(float)
    groups = rows["patient_id"].to_numpy()
    order = np.argsort(groups, kind="stable")
    model = sm.GEE(
        y[order], design.iloc[order], groups=groups[order], family=sm.families.Binomial()
    ).fit()
    params = pd.Series(np.asarray(model.params), index=design.columns)
    cov = _kauermann_carroll_reference(design.to_numpy(), y, params.to_numpy(), groups)
    se = pd.Series(np.sqrt(np.diag(cov)), index=design.columns)
    # the correction inflates the plain sandwich, a little with 1,500 patients
    plain = pd.Series(np.sqrt(np.diag(model.cov_robust)), index=design.columns)
    assert (se > plain).all() and (se < 1.2 * plain).all()
    for a in result.attributes:
        for r in a.by_treatment:
            name = slope_name(a.attribute, r.treatment)
            assert r.log_odds == pytest.approx(params[name], abs=1e-8)
            assert r.ci_low == pytest.approx(math.exp(params[name] - 1.959964 * se[name]))
            assert r.ci_high == pytest.approx(math.exp(params[name] + 1.959964 * se[name]))


def test_bias_reduced_option_is_statsmodels_mancl_derouen(null_result):
    encounters, _ = null_result
    result = heterogeneity_analysis(
        encounters, "adherent", CONFIG, cov_type="bias_reduced", **COMPLETE_CASE
    )
    rows = encounters.dropna(subset=["adherent", *CONFIG.attribute_names, "age_band"])
    rows = rows.reset_index(drop=True)
    design = _design(rows, CONFIG, CONFIG.treatment_names)
    groups = rows["patient_id"].to_numpy()
    order = np.argsort(groups, kind="stable")
    model = sm.GEE(
        rows["adherent"].to_numpy(float)[order],
        design.iloc[order],
        groups=groups[order],
        family=sm.families.Binomial(),
    ).fit(cov_type="bias_reduced")
    se = pd.Series(np.sqrt(np.diag(model.cov_robust_bc)), index=design.columns)
    first = result.attributes[0]
    name = slope_name(first.attribute, first.by_treatment[0].treatment)
    assert first.by_treatment[0].se == pytest.approx(se[name], rel=1e-8)
    assert result.method.cov_type == "bias_reduced"


def test_average_marginal_effect_is_the_derivative_of_the_mean_probability(null_result):
    encounters, result = null_result
    rows = encounters.dropna(subset=["adherent", *CONFIG.attribute_names, "age_band"])
    rows = rows.reset_index(drop=True)
    attribute = "support"
    params = pd.Series(
        {
            slope_name(a.attribute, r.treatment): r.log_odds
            for a in result.attributes
            for r in a.by_treatment
        }
    )
    design = _design(rows, CONFIG, CONFIG.treatment_names)
    # the other coefficients are not in the result; refit them the same way
    fit = fit_gee(rows["adherent"].to_numpy(float), design, rows["patient_id"].to_numpy())
    assert fit.params[params.index].to_numpy() == pytest.approx(params.to_numpy(), abs=1e-8)
    h = 1e-5
    for r in _by_name(result)[attribute].by_treatment:
        in_treatment = (rows["treatment"] == r.treatment).to_numpy()
        moved = rows.copy()
        moved.loc[in_treatment, attribute] = moved.loc[in_treatment, attribute] + h
        up = expit(_design(moved, CONFIG, CONFIG.treatment_names).to_numpy() @ fit.params)
        base = expit(design.to_numpy() @ fit.params)
        numeric = (up[in_treatment] - base[in_treatment]).mean() / h
        assert r.ame == pytest.approx(numeric, rel=1e-4)
        assert r.ame_ci_low < r.ame < r.ame_ci_high


def test_a_fit_that_does_not_converge_is_refused():
    encounters = simulate_encounters(300, seed=3).encounters.dropna(subset=["adherent"])
    design = pd.DataFrame(
        {"const": 1.0, "support": encounters["support"].fillna(3).to_numpy(float)}
    )
    with pytest.raises(AnalysisError, match="did not converge"):
        fit_gee(
            encounters["adherent"].to_numpy(float),
            design,
            encounters["patient_id"].to_numpy(),
            working_correlation="exchangeable",
            maxiter=1,
        )


def test_practitioner_clusters_need_the_column(null_result):
    encounters, _ = null_result
    with pytest.raises(ContractError, match="practitioner_id"):
        heterogeneity_analysis(
            encounters.drop(columns="practitioner_id"), "adherent", CONFIG, cluster="practitioner"
        )


def test_practitioner_clusters_give_fewer_clusters(null_result):
    encounters, result = null_result
    by_practitioner = heterogeneity_analysis(
        encounters, "adherent", CONFIG, cluster="practitioner", **COMPLETE_CASE
    )
    assert by_practitioner.n_clusters == encounters["practitioner_id"].nunique()
    assert by_practitioner.n_clusters < result.n_clusters
    # same point estimates (independence working correlation), other standard errors
    a, b = (
        result.attributes[0].by_treatment[0],
        by_practitioner.attributes[0].by_treatment[0],
    )
    assert a.log_odds == pytest.approx(b.log_odds)
    assert a.ci_low != pytest.approx(b.ci_low)


def test_the_score_test_agrees_with_the_wald_test_in_large_samples(null_result):
    encounters, result = null_result
    score = heterogeneity_analysis(encounters, "adherent", CONFIG, test="score", **COMPLETE_CASE)
    for w, s in zip(result.attributes, score.attributes, strict=True):
        assert s.test.kind == "score"
        assert 0 <= s.p_value <= 1
        # both tests of the same hypothesis on 1,500 patients: same conclusion at 5%
        assert (w.p_value < 0.05) == (s.p_value < 0.05) or abs(w.p_value - s.p_value) < 0.05


def test_one_treatment_only_is_refused(null_result):
    encounters, _ = null_result
    only = encounters[encounters["treatment"] == "cbt_online"]
    with pytest.raises(ContractError, match="at least two"):
        heterogeneity_analysis(only, "adherent", CONFIG)


def test_cli_writes_the_json_and_the_forest_plot(tmp_path):
    simulated = run("simulate", "--patients", 600, "--seed", 5, "--out", "e.csv", cwd=tmp_path)
    assert simulated.returncode == 0, simulated.stderr
    result = run(
        "heterogeneity", "e.csv", "--target", "adherent", "--out", "h.json",
        "--plot", "forest.png", cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert_no_traceback(result)
    saved = json.loads((tmp_path / "h.json").read_text())
    assert saved["target"] == "adherent" and len(saved["attributes"]) == 6
    assert (tmp_path / "forest.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # the screen speaks the config's labels; the JSON keeps the codes
    for a in saved["attributes"]:
        assert a["label"] in result.stdout
    assert "Does the effect on adherence differ by treatment?" in result.stdout
    for code in CONFIG.treatment_names:
        assert code not in result.stdout


def test_cli_rejects_a_bad_choice(tmp_path):
    result = run(
        "heterogeneity", "e.csv", "--target", "adherent", "--out", "h.json",
        "--working-correlation", "ar1", cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 2
    assert_no_traceback(result)
    assert "'ar1' is not one of 'independence', 'exchangeable'" in result.stderr


# each option of the analysis that is a choice, and the values it takes
CLI_CHOICES = {
    "--cluster": ("cluster", ("patient", "practitioner")),
    "--working-correlation": ("working_correlation", ("independence", "exchangeable")),
    "--cov-type": ("cov_type", ("kauermann_carroll", "bias_reduced")),
    "--test": ("test", ("wald", "score")),
    "--adjustment": ("adjustment", ("holm", "fdr_bh")),
}


@pytest.fixture
def small_table(tmp_path, null_result):
    null_result[0].to_csv(tmp_path / "e.csv", index=False)
    return tmp_path


@pytest.mark.parametrize(
    ("option", "value"),
    [
        pytest.param(option, value, id=f"{option}={value}")
        for option, (_key, values) in CLI_CHOICES.items()
        for value in values
    ],
)
def test_cli_passes_each_choice_to_the_analysis(small_table, monkeypatch, option, value):
    import engagekit.heterogeneity as package

    seen = {}

    def analysis(encounters, target, config, **options):
        seen.update(config.heterogeneity.model_dump(mode="json"), **options)
        raise AnalysisError("stopped once the options are seen")

    monkeypatch.setattr(package, "heterogeneity_analysis", analysis)
    result = run(
        "heterogeneity", "e.csv", "--target", "adherent", "--out", "h.json", option, value,
        cwd=small_table,
    )  # fmt: skip
    assert result.returncode == 3, result.stderr
    key = CLI_CHOICES[option][0]
    assert seen[key] == value


@pytest.mark.parametrize("option", list(CLI_CHOICES))
def test_cli_refuses_a_choice_not_offered_naming_every_choice(tmp_path, option):
    result = run(
        "heterogeneity", "e.csv", "--target", "adherent", "--out", "h.json", option, "sandwich",
        cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 2
    assert_no_traceback(result)
    first, second = CLI_CHOICES[option][1]
    said = " ".join(result.stderr.replace("│", " ").split())
    assert f"'sandwich' is not one of '{first}', '{second}'" in said, said


@pytest.mark.parametrize("margin", ["-0.2", "0", "nan"])
def test_cli_refuses_a_bad_margin_as_an_argument_before_reading_the_data(tmp_path, margin):
    # nodata.csv does not exist: the margin is refused before the data are read
    result = run(
        "heterogeneity", "nodata.csv", "--target", "adherent", "--out", "h.json",
        "--margin", margin, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 2
    assert_no_traceback(result)
    said = " ".join(result.stderr.split())
    assert "bad analysis option(s): 'margin.value': input should be greater than 0" in said, said
    assert "contract" not in said and "nodata.csv" not in said
    assert not (tmp_path / "h.json").exists()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"margin": -0.2}, "'margin.value': input should be greater than 0"),
        ({"alpha": 1.5}, "'alpha': input should be less than 1"),
        ({"cov_type": "sandwich"}, "'cov_type': input should be 'kauermann_carroll',"),
    ],
)
def test_a_bad_option_is_an_argument_error_not_a_contract_error(null_result, options, message):
    encounters, _ = null_result
    with pytest.raises(ArgumentError, match=message) as refused:
        heterogeneity_analysis(encounters, "adherent", CONFIG, **options)
    assert not isinstance(refused.value, ContractError)


def test_an_unknown_target_is_an_argument_error(null_result):
    with pytest.raises(ArgumentError, match="unknown target 'relapse'"):
        heterogeneity_analysis(null_result[0], "relapse", CONFIG)


def test_the_library_takes_a_choice_as_its_enum_or_its_value(null_result):
    encounters, by_default = null_result
    by_enum = heterogeneity_analysis(
        encounters, "adherent", CONFIG, adjustment=Adjustment.FDR_BH, cov_type="bias_reduced"
    )
    by_value = heterogeneity_analysis(
        encounters, "adherent", CONFIG, adjustment="fdr_bh", cov_type=CovarianceType.BIAS_REDUCED
    )
    assert by_enum == by_value != by_default
    saved = by_value.to_dict()["method"]
    assert (saved["adjustment"], saved["cov_type"]) == ("fdr_bh", "bias_reduced")
    assert type(json.loads(json.dumps(saved))["adjustment"]) is str


def test_cli_says_a_plot_it_cannot_write_is_an_output_error(small_table, monkeypatch, null_result):
    """A --plot that became unwritable after the command tried it (its folder replaced by
    a file) is refused as an output, exit 2, not as an internal error."""
    import engagekit.heterogeneity as package
    import engagekit.io._write as write

    monkeypatch.setattr(package, "heterogeneity_analysis", lambda *a, **k: null_result[1])
    monkeypatch.setattr(write, "check_writable", lambda path, **kwargs: None)
    (small_table / "blocker").write_text("a file where the plot's folder should be")
    result = run(
        "heterogeneity", "e.csv", "--target", "adherent", "--out", "h.json",
        "--plot", "blocker/forest.png", cwd=small_table,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert_no_traceback(result)
    said = " ".join(result.stderr.split())
    assert "error: cannot write 'blocker/forest.png'" in said, said
    assert "internal error" not in said


def test_cli_power_for_a_given_number_of_patients(tmp_path):
    result = run(
        "power", "--patients", 800, "--deviation", 1.5, "--treatment", "cbt_online",
        "--treatments", "cbt_online,listening_visits,usual_care", "--reps", 3, "--jobs", 1,
        "--out", "power.json", cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert_no_traceback(result)
    saved = json.loads((tmp_path / "power.json").read_text())
    assert saved["n_patients"] == 800 and saved["reps"] == 3
    assert saved["settings"]["treatments"] == ["cbt_online", "listening_visits", "usual_care"]
    assert saved["power_differs"] is not None and saved["power_differs"] >= 2 / 3
    said = " ".join(result.stdout.split())
    assert "power to detect the deviation" in said
    named = round(100 * saved["power_named"])
    assert f"the treatment named in {named}%" in said
    assert f"a treatment wrongly named in {round(100 * saved['wrong_name_rate'])}%" in said


def test_cli_power_names_an_unknown_treatment(tmp_path):
    result = run(
        "power", "--patients", 200, "--treatments", "cbt_online,yoga", "--reps", 1,
        cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 2
    assert_no_traceback(result)
    assert "yoga" in result.stderr and "usual_care" in result.stderr


# --------------------------------------------------------------------------- labels
def _relabelled() -> Config:
    """The defaults with a service's own words for adherence and two treatments."""
    blocks = load_config().model_dump(mode="json")
    for outcome in blocks["outcomes"]:
        if outcome["name"] == "adherent":
            outcome["label"] = "Keeping to the plan"
    for treatment in blocks["treatments"]:
        if treatment["name"] == "listening_visits":
            treatment["label"] = "Health-visitor listening"
        if treatment["name"] == "cbt_online":
            treatment["label"] = "Computerised CBT"
    return config_from_dict({k: blocks[k] for k in ("outcomes", "treatments")})


def test_sentences_and_plot_speak_the_configs_labels_not_codes(deviating):
    encounters, _ = deviating
    config = _relabelled()
    result = heterogeneity_analysis(encounters, "adherent", config)
    assert result.target == "adherent"
    assert result.target_label == "Keeping to the plan"
    attributes = _by_name(result)
    assert "in Computerised CBT it is stronger" in attributes[DEVIATING[0]].sentence
    # ("approachability" is a code and, in a sentence, its label too)
    codes = [*config.treatment_names, *config.outcome_names]
    codes += [name for name in config.attribute_names if "_" in name]
    for a in result.attributes:
        assert " on keeping to the plan " in a.sentence, a.sentence
        for code in codes:
            assert code not in a.sentence, (code, a.sentence)
    fig = forest_plot(result)
    assert fig.get_suptitle().endswith("— Keeping to the plan")
    ticks = [t.get_text().split(" (n =")[0] for t in fig.axes[0].get_yticklabels()]
    assert ticks == [t.label for t in config.treatments]
    assert "Health-visitor listening" in ticks


def _effect(treatment: str, log_odds: float) -> TreatmentEffect:
    """An effect of ``log_odds`` per point in ``treatment`` (the rest is not read)."""
    return TreatmentEffect(
        treatment=treatment,
        treatment_label=treatment.upper(),
        log_odds=log_odds,
        se=0.1,
        odds_ratio=math.exp(log_odds),
        ci_low=math.exp(log_odds - 0.2),
        ci_high=math.exp(log_odds + 0.2),
        n_encounters=100,
        ame=log_odds / 4,
        ame_ci_low=log_odds / 4 - 0.05,
        ame_ci_high=log_odds / 4 + 0.05,
        log_odds_per_sd=log_odds * 0.8,
        odds_ratio_per_sd=math.exp(log_odds * 0.8),
        ci_low_per_sd=math.exp((log_odds - 0.2) * 0.8),
        ci_high_per_sd=math.exp((log_odds + 0.2) * 0.8),
    )


_BY_TREATMENT = [_effect("a", -0.6), _effect("b", -0.1), _effect("c", 0.2)]


@pytest.mark.parametrize(
    ("higher_is_better", "expected"),
    [
        (True, "strongest in Gamma (odds ratio 1.22 per point), weakest in Alpha (0.55)."),
        (False, "strongest in Alpha (odds ratio 0.55 per point higher), weakest in Gamma (1.22)."),
    ],
    ids=["higher_is_better", "higher_is_worse"],
)
def test_a_differing_effect_is_strongest_in_the_direction_of_the_scale(higher_is_better, expected):
    verdict, sentence = _verdict(
        "BDI",
        "Re-attendance",
        0.001,
        False,
        0.05,
        "holm",
        _BY_TREATMENT,
        [],
        Margin(),
        math.log(1.25) / 0.8,
        treatment_labels={"a": "Alpha", "b": "Beta", "c": "Gamma"},
        deviating=[],
        higher_is_better=higher_is_better,
    )
    assert verdict == "differs"
    assert sentence.startswith("The effect of BDI on re-attendance differs by treatment")
    assert "no single treatment stands out" in sentence
    assert sentence.endswith(expected)


def test_without_the_treatment_furthest_out_the_others_are_tested_for_equal_slopes():
    test = wald_subset_test(np.array([0.5, 0.3, 0.0, 0.0, 0.0, 0.0]), np.eye(6) * 0.01)
    # independent slopes of variance 0.01: the Wald statistic of equal slopes is the sum
    # of squares about their mean over 0.01, on (number of slopes - 1) df
    # without the first: 0.3 and four zeros, mean 0.06: (0.24^2 + 4 * 0.06^2) / 0.01 = 7.2
    assert _rest_equal(test, 6, 0) == pytest.approx(stats.chi2.sf(7.2, 4), rel=1e-9)
    # without the second: 0.5 and four zeros, mean 0.1: (0.4^2 + 4 * 0.1^2) / 0.01 = 20
    assert _rest_equal(test, 6, 1) == pytest.approx(stats.chi2.sf(20.0, 4), rel=1e-9)
    # two treatments: one left, nothing to compare
    two = wald_subset_test(np.array([0.5, 0.3]), np.eye(2) * 0.01)
    assert _rest_equal(two, 2, 0) is None


def _deviation(treatment: str, value: float) -> TreatmentDeviation:
    return TreatmentDeviation(
        treatment=treatment, treatment_label=treatment.upper(), deviation=value,
        ci_low=value - 0.1, ci_high=value + 0.1, p_value=1e-6, p_closed=1e-5, deviates=True,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("rest_p", "expected"),
    [
        (None, "(-0.15 log-odds per point, 95% CI -0.25 to -0.05)."),
        (0.43, "Without Gamma, the other treatments' effects do not differ from each other "
         "(p = 0.43): the others named may deviate only because Gamma pulls the mean of the "
         "treatments they are compared with."),
        (0.012, "Without Gamma, the other treatments' effects still differ from each other "
         "(p = 0.012)."),
    ],
    ids=["one named", "the rest equal", "the rest differ"],
)  # fmt: skip
def test_with_two_named_the_sentence_says_whether_the_rest_differ_without_the_first(
    rest_p, expected
):
    _, sentence = _verdict(
        "BDI",
        "Re-attendance",
        0.001,
        False,
        0.05,
        "holm",
        _BY_TREATMENT,
        [],
        Margin(),
        math.log(1.25) / 0.8,
        treatment_labels={"a": "Alpha", "b": "Beta", "c": "Gamma"},
        deviating=[_deviation("c", 0.45), _deviation("a", -0.15)],
        rest_equal_p=rest_p,
    )
    assert "in Gamma it is stronger than in the others (+0.45" in sentence
    assert "in Alpha it is weaker than in the others (-0.15" in sentence
    assert sentence.endswith(expected)


def test_the_rest_is_tested_only_where_two_or_more_treatments_are_named(deviating):
    _, result = deviating
    for a in result.attributes:
        assert (a.rest_equal_p is not None) == (len(a.deviating) >= 2), a.attribute
