"""Explanations: SHAP values that add up to the prediction, and attribute importance."""

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.ensemble import HistGradientBoostingClassifier
from threadpoolctl import threadpool_limits

from engagekit import (
    AnalysisError,
    ContractError,
    load_config,
    parse_heterogeneity,
    simulate_encounters,
)
from engagekit.explain import attribute_importance, explain_predictions, rank_agreement
from engagekit.models import LogitRecalibration, fit_model
from engagekit.models.kinds import _tree_shap as tree_shap_module

# shap is the reference implementation of TreeSHAP (imported without the matplotlib
# deprecation note its import raises, see import_shap)
shap = tree_shap_module.import_shap()
TARGET = "adherent"
RECALIBRATIONS = {
    "identity": LogitRecalibration(),
    "recalibrated": LogitRecalibration(intercept=-0.4, slope=0.7, applied=True),
}


@pytest.fixture(scope="module", autouse=True)
def one_openmp_thread():
    """HistGradientBoosting's OpenMP threads make these small fits up to 50 times slower
    when the cores are busy with other work; the fitted trees do not depend on it."""
    with threadpool_limits(limits=1, user_api="openmp"):
        yield


@pytest.fixture(scope="module")
def encounters():
    return simulate_encounters(600, seed=3).encounters


@pytest.fixture(scope="module")
def models(encounters):
    return {kind: fit_model(encounters, TARGET, kind, seed=0) for kind in ("logistic", "gbm")}


@pytest.fixture(scope="module")
def explanations(models, encounters):
    return {kind: explain_predictions(model, encounters) for kind, model in models.items()}


@pytest.fixture(scope="module")
def listening_service():
    """Adherence driven strongly by active listening (+1.5 log-odds per point in every
    treatment, against at most 0.35 for any other attribute)."""
    config = load_config()
    extra = [
        parse_heterogeneity(f"active_listening:{t}:1.5:adherent", config)
        for t in config.treatment_names
    ]
    return simulate_encounters(600, seed=5, heterogeneity=extra).encounters


# --- local accuracy ---------------------------------------------------------------------


@pytest.mark.parametrize("calibration", list(RECALIBRATIONS))
@pytest.mark.parametrize("kind", ["logistic", "gbm"])
def test_contributions_add_up_to_the_reported_log_odds_on_every_row(
    models, encounters, kind, calibration
):
    model = dataclasses.replace(models[kind], recalibration=RECALIBRATIONS[calibration])
    explanation = explain_predictions(model, encounters, chunk_rows=500)
    p = model.predict_proba(encounters)
    reported = np.log(p) - np.log1p(-p)
    total = explanation.base_value + explanation.values.to_numpy().sum(axis=1)
    assert np.max(np.abs(total - reported)) <= 1e-6
    # the same log-odds as model.logit, to rounding (the rows are scored in chunks)
    np.testing.assert_allclose(explanation.logit, model.logit(encounters), rtol=0, atol=1e-12)
    assert explanation.check_local_accuracy(tol=1e-6) <= 1e-9


@pytest.mark.parametrize("kind", ["logistic", "gbm"])
def test_a_recalibration_scales_contributions_and_moves_the_base(models, encounters, kind):
    plain = explain_predictions(models[kind], encounters)
    a, b = -0.4, 0.7
    model = dataclasses.replace(models[kind], recalibration=RECALIBRATIONS["recalibrated"])
    recalibrated = explain_predictions(model, encounters)
    assert recalibrated.base_value == pytest.approx(a + b * plain.base_value, abs=1e-12)
    np.testing.assert_allclose(recalibrated.values, b * plain.values, rtol=0, atol=1e-12)


def test_a_local_accuracy_failure_is_reported(explanations):
    broken = dataclasses.replace(
        explanations["gbm"], base_value=explanations["gbm"].base_value + 1e-3
    )
    with pytest.raises(AnalysisError, match="do not add up to the prediction"):
        broken.check_local_accuracy(tol=1e-6)


# --- what the values are -----------------------------------------------------------------


def test_logistic_values_are_beta_times_distance_from_the_training_mean(models, encounters):
    model = models["logistic"]
    X = model.design(encounters)
    # fit_model refits the logistic model on every labelled row of a table this size,
    # so the background is the mean of those rows' features
    mu = X[encounters[TARGET].notna().to_numpy()].mean()
    terms = model.coefficients().set_index("term")["coefficient"]
    beta = terms.drop("(intercept)")
    expected = (X - mu) * beta
    explanation = explain_predictions(model, encounters)
    np.testing.assert_allclose(explanation.values, expected, rtol=0, atol=1e-9)
    margin_at_mean = terms["(intercept)"] + float((beta * mu).sum())
    assert explanation.base_value == pytest.approx(margin_at_mean, abs=1e-9)
    assert explanation.method == "linear"


def test_gbm_values_equal_shap_tree_explainer(models, encounters, explanations):
    model = models["gbm"]
    reference = shap.TreeExplainer(model.estimator)
    X = model.design(encounters).to_numpy()
    expected = reference.shap_values(X, check_additivity=False)
    got = explanations["gbm"]
    np.testing.assert_allclose(got.values.to_numpy(), expected, rtol=0, atol=1e-10)
    assert got.base_value == pytest.approx(float(np.ravel(reference.expected_value)[0]), abs=1e-10)
    assert got.method == "tree_path_dependent"


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("_MAX_CELLS", 1),  # every tree too large to tabulate: shap explains them
        ("_TABLE_BUDGET", 1),  # one tree's table in memory at a time
    ],
)
def test_gbm_values_do_not_depend_on_how_the_trees_are_processed(
    models, encounters, explanations, monkeypatch, setting, value
):
    monkeypatch.setattr(tree_shap_module, setting, value)
    other = explain_predictions(models["gbm"], encounters, n_jobs=2, chunk_rows=500)
    np.testing.assert_allclose(other.values, explanations["gbm"].values, rtol=0, atol=1e-10)
    assert other.base_value == pytest.approx(explanations["gbm"].base_value, abs=1e-10)
    assert other.check_local_accuracy() <= 1e-9


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    levels=st.integers(2, 6),
    leaves=st.integers(2, 15),
    depth=st.integers(1, 4),
)
def test_tree_shap_matches_shap_on_arbitrary_trees_and_threshold_ties(seed, levels, leaves, depth):
    rng = np.random.default_rng(seed)
    X = rng.integers(0, levels, size=(400, 5)).astype(float)
    y = (X[:, 0] + X[:, 1] * X[:, 2] + rng.normal(size=400) > levels).astype(int)
    estimator = HistGradientBoostingClassifier(
        max_iter=8, max_leaf_nodes=leaves, max_depth=depth, min_samples_leaf=5, random_state=0
    ).fit(X, y)
    # rows exactly on the split thresholds: a tie goes left, as in scikit-learn
    assert all(tree_shap_module._tabulable(p[0].nodes) for p in estimator._predictors)
    thresholds = np.concatenate([p[0].nodes["num_threshold"] for p in estimator._predictors])
    X = np.vstack([X, np.tile(thresholds[:, None], (1, 5))])
    base, values = tree_shap_module.tree_shap(estimator, X, n_threads=1, chunk_rows=128)
    reference = shap.TreeExplainer(estimator)
    np.testing.assert_allclose(values, reference.shap_values(X, check_additivity=False), atol=1e-10)
    total = base + values.sum(axis=1)
    np.testing.assert_allclose(total, estimator.decision_function(X), rtol=0, atol=1e-10)


# --- grouping -------------------------------------------------------------------------


def _group_of(name, attributes):
    attribute = name.split(":treatment=")[0].split("__")[0]
    if attribute in attributes:
        return attribute
    if name.startswith("treatment="):
        return "treatment"
    if name in ("session_number", "log_session"):
        return "session"
    if name == "n_missing_ratings":
        return "missingness"
    return name.split("=")[0]


@pytest.mark.parametrize("kind", ["logistic", "gbm"])
def test_grouped_values_sum_each_attributes_features(explanations, kind):
    explanation = explanations[kind]
    attributes = load_config().attribute_names
    assert explanation.attributes == tuple(attributes)
    assert list(explanation.grouped.columns) == [
        *attributes,
        "treatment",
        "session",
        "missingness",
        "age_band",
    ]
    by_group = explanation.values.T.groupby(
        [_group_of(c, attributes) for c in explanation.values.columns]
    ).sum()
    expected = by_group.T[explanation.grouped.columns]
    np.testing.assert_allclose(explanation.grouped, expected, rtol=0, atol=1e-12)
    np.testing.assert_allclose(
        explanation.grouped.sum(axis=1), explanation.values.sum(axis=1), rtol=0, atol=1e-12
    )


@pytest.mark.parametrize("kind", ["logistic", "gbm"])
def test_an_empty_table_has_an_empty_explanation(models, encounters, kind):
    explanation = explain_predictions(models[kind], encounters.iloc[:0])
    assert explanation.values.shape == (0, len(models[kind].feature_names))
    assert explanation.grouped.shape == (0, 10)
    assert explanation.check_local_accuracy() == 0.0


def test_rows_keep_the_encounters_index_in_any_order(models, encounters):
    shuffled = encounters.sample(frac=1.0, random_state=1)
    explanation = explain_predictions(models["gbm"], shuffled)
    assert explanation.values.index.equals(shuffled.index)
    assert explanation.grouped.index.equals(shuffled.index)
    np.testing.assert_array_equal(explanation.logit, models["gbm"].logit(shuffled))


# --- importance ------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["logistic", "gbm"])
def test_the_attribute_that_drives_adherence_is_the_most_important(listening_service, kind):
    model = fit_model(listening_service, TARGET, kind, seed=0)
    explanation = explain_predictions(model, listening_service)
    importance = attribute_importance(explanation, listening_service)
    overall = importance["overall"]["importance"]
    assert max(overall, key=overall.get) == "active_listening"
    runner_up = sorted(overall.values())[-2]
    assert overall["active_listening"] > 2 * runner_up


def test_importance_is_the_mean_absolute_grouped_value(explanations, encounters):
    explanation = explanations["logistic"]
    importance = attribute_importance(explanation, encounters)
    magnitude = explanation.grouped[list(explanation.attributes)].abs()
    overall = importance["overall"]
    assert overall["n_encounters"] == len(encounters)
    assert overall["importance"] == pytest.approx(magnitude.mean().to_dict(), abs=1e-12)
    by_treatment = magnitude.groupby(encounters["treatment"].to_numpy()).mean()
    assert sorted(importance["levels"]) == sorted(by_treatment.index)
    for level, entry in importance["levels"].items():
        assert entry["importance"] == pytest.approx(by_treatment.loc[level].to_dict(), abs=1e-12)
    json.dumps(importance)


def test_rank_agreement_of_every_pair_of_treatments(explanations, encounters):
    explanation = explanations["logistic"]
    pairs = rank_agreement(explanation, encounters, n_boot=200, seed=1)
    treatments = sorted(encounters["treatment"].unique())
    assert [(p["level_a"], p["level_b"]) for p in pairs] == [
        (a, b) for i, a in enumerate(treatments) for b in treatments[i + 1 :]
    ]
    for pair in pairs:
        assert -1 <= pair["ci_low"] <= pair["tau"] <= pair["ci_high"] <= 1
        assert pair["n_boot"] == 200
    assert pairs == rank_agreement(explanation, encounters, n_boot=200, seed=1)
    other_seed = rank_agreement(explanation, encounters, n_boot=200, seed=2)
    assert [p["tau"] for p in other_seed] == [p["tau"] for p in pairs]
    assert [p["ci_low"] for p in other_seed] != [p["ci_low"] for p in pairs]
    json.dumps(pairs)


def test_rank_agreement_tau_is_kendalls_tau_of_the_importances(explanations, encounters):
    from scipy.stats import kendalltau

    explanation = explanations["gbm"]
    levels = attribute_importance(explanation, encounters)["levels"]
    first = rank_agreement(explanation, encounters, n_boot=20)[0]
    a = list(levels[first["level_a"]]["importance"].values())
    b = list(levels[first["level_b"]]["importance"].values())
    assert first["tau"] == pytest.approx(kendalltau(a, b).statistic, abs=1e-12)


@settings(max_examples=50, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 3), st.integers(0, 3)).map(lambda t: (float(t[0]), float(t[1]))),
        min_size=2,
        max_size=7,
    )
)
def test_bootstrap_tau_is_scipys_kendall_tau_b_including_ties(pairs):
    from scipy.stats import kendalltau

    from engagekit.explain._importance import _kendall_tau_b

    x, y = (np.array(v) for v in zip(*pairs, strict=True))
    got = float(_kendall_tau_b(x[None], y[None])[0])
    if np.ptp(x) == 0 or np.ptp(y) == 0:
        assert np.isnan(got)
    else:
        assert got == pytest.approx(kendalltau(x, y).statistic, abs=1e-12)


# --- refusals --------------------------------------------------------------------------


def test_encounters_without_a_column_the_model_needs_are_refused(models, encounters):
    with pytest.raises(ContractError, match=r"lacks column\(s\) 'active_listening', 'age_band'"):
        explain_predictions(
            models["gbm"], encounters.drop(columns=["active_listening", "age_band"])
        )


def test_a_model_whose_estimator_does_not_match_its_features_is_refused(models, encounters):
    mixed = dataclasses.replace(models["logistic"], estimator=models["gbm"].estimator)
    with pytest.raises(ValueError, match="takes 56 features but its feature transformer makes"):
        explain_predictions(mixed, encounters)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda e, enc: attribute_importance(e, enc.iloc[1:]), "not the rows that were explained"),
        (lambda e, enc: attribute_importance(e, enc, by="ward"), "no 'ward' column"),
        (lambda e, enc: rank_agreement(e, enc, ["support"]), "at least two attributes"),
        (lambda e, enc: rank_agreement(e, enc, ["support", "kindness"]), r"\['kindness'\]"),
        (lambda e, enc: rank_agreement(e, enc, n_boot=0), "'n_boot' must be a positive"),
    ],
)
def test_importance_refusals(explanations, encounters, call, message):
    with pytest.raises((ValueError, ContractError), match=message):
        call(explanations["logistic"], encounters)


# --- documentation ----------------------------------------------------------------------


def test_the_explanation_is_a_frame_per_encounter(explanations, encounters, models):
    explanation = explanations["gbm"]
    assert isinstance(explanation.values, pd.DataFrame)
    assert list(explanation.values.columns) == models["gbm"].feature_names
    assert explanation.values.shape == (len(encounters), len(models["gbm"].feature_names))
    assert isinstance(explanation.base_value, float)


def test_the_bca_interval_is_scipys_for_the_same_replicates():
    """Given scipy's own bootstrap replicates of a mean and its jackknife, the BCa
    interval is scipy's BCa interval."""
    from scipy.stats import bootstrap

    from engagekit.explain._importance import _bca_interval

    x = np.random.default_rng(3).exponential(size=60)  # skewed: z0 and a matter
    found = bootstrap(
        (x,), np.mean, method="BCa", confidence_level=0.9, n_resamples=4000, random_state=5
    )
    jackknife = (x.sum() - x) / (len(x) - 1)
    low, high = _bca_interval(found.bootstrap_distribution, float(x.mean()), jackknife, 0.9)
    assert (low, high) == pytest.approx(
        (found.confidence_interval.low, found.confidence_interval.high), rel=1e-9
    )
    plain = np.quantile(found.bootstrap_distribution, [0.05, 0.95])
    assert abs(low - plain[0]) > 1e-3  # the correction moved it


def test_rank_agreement_gives_the_bootstrap_distribution_of_tau(explanations, encounters):
    pairs = rank_agreement(explanations["logistic"], encounters, n_boot=200, seed=1)
    for pair in pairs:
        assert pair["interval"] == "BCa"
        values = [v for v, _ in pair["distribution"]]
        assert values == sorted(values) and all(-1 <= v <= 1 for v in values)
        assert sum(share for _, share in pair["distribution"]) == pytest.approx(1.0)
