"""At-risk flags: stated threshold rules, levels, and reasons in plain words."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engagekit import load_config, simulate_encounters
from engagekit.config import config_from_dict
from engagekit.flags import (
    NO_ATTRIBUTE_REASON,
    FlagRule,
    choose_flag_rule,
    flag_levels,
    flag_reasons,
    risk_raising_attributes,
)
from engagekit.models import fit_model

CONFIG = load_config()
ATTRIBUTES = CONFIG.attribute_names


@pytest.fixture
def make_validation():
    """Factory of validation predictions: ``(y, p, practitioners, patients)``.

    ``p`` (the good outcome's probability) is Beta distributed around 0.85, ``y`` is drawn
    from it, and encounters are spread over ``n_practitioners`` practitioners and four
    encounters per patient. ``decimals`` rounds ``p`` to make tied risks.
    """

    def make(n=4000, seed=0, n_practitioners=40, decimals=None):
        rng = np.random.default_rng(seed)
        p = rng.beta(8.0, 1.5, n)
        if decimals is not None:
            p = np.round(p, decimals)
        y = rng.binomial(1, p)
        practitioners = rng.integers(0, n_practitioners, n).astype(str)
        patients = np.arange(n) // 4
        return y, p, practitioners, patients

    return make


def _sensitivity(risk, y, cut):
    bad = y == 0
    return np.mean(risk[bad] >= cut)


# --- threshold rules ------------------------------------------------------------------


@pytest.mark.parametrize("target", [0.5, 0.8, 0.95, 1.0])
@pytest.mark.parametrize("decimals", [None, 2])
def test_sensitivity_rule_is_the_highest_cut_reaching_the_target(make_validation, target, decimals):
    y, p, _, _ = make_validation(decimals=decimals)
    risk = 1.0 - p
    rule = choose_flag_rule(y, p, "sensitivity", target)
    assert rule.threshold in set(risk[y == 0])
    assert _sensitivity(risk, y, rule.threshold) >= target
    assert rule.operating_point.sensitivity == _sensitivity(risk, y, rule.threshold)
    # the next risk above the cut (fewer flags) misses the target
    above = risk[risk > rule.threshold]
    if above.size:
        assert _sensitivity(risk, y, above.min()) < target


@pytest.mark.parametrize("percent", [1, 10, 25, 100])
def test_top_percent_flags_k_percent(make_validation, percent):
    y, p, _, _ = make_validation()
    rule = choose_flag_rule(y, p, "top_percent", percent)
    expected = math.ceil(percent / 100 * len(p))
    # continuous risks: no ties, so exactly the ceil(k% of n) highest risks
    assert rule.operating_point.n_flagged == expected
    assert int(np.sum(1.0 - p >= rule.threshold)) == expected


def test_top_percent_with_tied_risks_flags_at_least_k_percent(make_validation):
    y, p, _, _ = make_validation(decimals=2)
    rule = choose_flag_rule(y, p, "top_percent", 10)
    risk = 1.0 - p
    assert np.mean(risk >= rule.threshold) >= 0.10
    assert np.mean(risk > rule.threshold) < 0.10


@pytest.mark.parametrize("per_practitioner", [1, 2.5, 10])
def test_per_practitioner_flags_n_per_practitioner_on_average(make_validation, per_practitioner):
    y, p, practitioners, _ = make_validation(n_practitioners=40)
    rule = choose_flag_rule(y, p, "per_practitioner", per_practitioner, practitioners)
    n_practitioners = len(set(practitioners))
    flagged = int(np.sum(1.0 - p >= rule.threshold))
    assert flagged == math.ceil(per_practitioner * n_practitioners)
    assert rule.operating_point.flags_per_practitioner == pytest.approx(
        per_practitioner, abs=1 / n_practitioners
    )


def test_medium_threshold_widens_the_net_as_documented(make_validation):
    y, p, practitioners, _ = make_validation()
    risk = 1.0 - p
    by_sensitivity = choose_flag_rule(y, p, "sensitivity", 0.6)
    assert by_sensitivity.medium_threshold <= by_sensitivity.threshold
    assert by_sensitivity.medium_threshold == choose_flag_rule(y, p, "sensitivity", 0.8).threshold
    assert by_sensitivity.medium_operating_point.sensitivity >= 0.8
    by_capacity = choose_flag_rule(y, p, "top_percent", 10)
    assert np.mean(risk >= by_capacity.medium_threshold) == pytest.approx(0.20)
    everyone = choose_flag_rule(y, p, "top_percent", 60)
    assert everyone.medium_threshold == risk.min()
    per_practitioner = choose_flag_rule(y, p, "per_practitioner", 2, practitioners)
    n_practitioners = len(set(practitioners))
    assert np.sum(risk >= per_practitioner.medium_threshold) == 4 * n_practitioners


def test_operating_point_matches_a_direct_count(make_validation):
    y, p, practitioners, patients = make_validation()
    rule = choose_flag_rule(y, p, "top_percent", 15, practitioners, patients=patients)
    flagged = 1.0 - p >= rule.threshold
    bad = y == 0
    point = rule.operating_point
    assert point.sensitivity == pytest.approx(np.mean(flagged[bad]))
    assert point.specificity == pytest.approx(np.mean(~flagged[~bad]))
    assert point.ppv == pytest.approx(np.mean(bad[flagged]))
    assert point.flags_per_100_encounters == pytest.approx(100 * flagged.mean())
    assert point.flags_per_100_patients == pytest.approx(100 * flagged.sum() / len(set(patients)))
    assert (point.n_encounters, point.n_bad_outcomes) == (len(y), int(bad.sum()))


def test_rule_round_trips_through_json(make_validation):
    y, p, practitioners, patients = make_validation()
    rule = choose_flag_rule(
        y, p, "per_practitioner", 3, practitioners, patients=patients, target="attended_next"
    )
    text = json.dumps(rule.to_dict())
    again = FlagRule.from_dict(json.loads(text))
    assert again == rule
    assert again.threshold == rule.threshold  # bit for bit, so new data flag alike
    assert json.loads(text)["format_version"] == 1


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"format_version": 99}, "format_version 99 is not supported"),
        ({"rule": "top_k"}, "rule"),
        ({"medium_threshold": 0.99}, "must not exceed threshold"),
        ({"value": 1.5}, r"sensitivity must be in \(0, 1\]"),
        ({"surprise": 1}, "surprise"),
    ],
)
def test_from_dict_refuses_a_broken_rule(make_validation, change, message):
    y, p, _, _ = make_validation()
    data = {**choose_flag_rule(y, p, "sensitivity", 0.8).to_dict(), **change}
    with pytest.raises(ValueError, match=message):
        FlagRule.from_dict(data)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"rule": "top_k", "value": 10}, "unknown flag rule 'top_k'"),
        ({"rule": "sensitivity", "value": 0.0}, r"sensitivity must be in \(0, 1\]"),
        ({"rule": "sensitivity", "value": 80}, r"sensitivity must be in \(0, 1\]"),
        ({"rule": "top_percent", "value": 150}, r"percentage of encounters in \(0, 100\]"),
        ({"rule": "top_percent", "value": float("nan")}, "finite value"),
        ({"rule": "per_practitioner", "value": -1}, "above 0"),
        ({"rule": "per_practitioner", "value": 2}, "needs practitioners"),
        ({"rule": "per_practitioner", "value": 50, "practitioners": ["a"] * 6}, "more than"),
        ({"p": [0.9] * 5}, "p has 5 values but y has 6"),
        ({"p": [0.9, 0.8, 1.2, 0.5, 0.5, 0.5]}, r"probabilities in \[0, 1\].*1\.2"),
        ({"p": [0.9, 0.8, np.nan, 0.5, 0.5, 0.5]}, r"probabilities in \[0, 1\]"),
        ({"y": [1, 1, 2, 0, 0, 1]}, "0 or 1"),
        ({"y": [1, 1, np.nan, 0, 0, 1]}, "drop encounters whose outcome is empty"),
        ({"y": [1] * 6}, r"no bad \(0\) outcome"),
        ({"practitioners": ["a", "b"]}, "practitioners has 2 values but y has 6"),
    ],
)
def test_choose_flag_rule_refuses_bad_input(kwargs, message):
    arguments = {
        "y": [1, 1, 1, 0, 0, 1],
        "p": [0.9, 0.8, 0.7, 0.4, 0.6, 0.95],
        "rule": "top_percent",
        "value": 20,
        **kwargs,
    }
    with pytest.raises(ValueError, match=message):
        choose_flag_rule(**arguments)


# --- levels ---------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.floats(0.0, 1.0), min_size=1, max_size=50),
    st.floats(0.0, 1.0),
    st.floats(0.0, 1.0),
)
def test_levels_never_fall_as_risk_rises(risks, cut_a, cut_b):
    y, p = np.array([1, 0, 1, 0]), np.array([0.9, 0.3, 0.8, 0.6])
    base = choose_flag_rule(y, p, "top_percent", 50)
    medium, high = sorted((cut_a, cut_b))
    rule = base.model_copy(update={"threshold": high, "medium_threshold": medium})
    risk = np.sort(np.asarray(risks))
    rank = {"low": 0, "medium": 1, "high": 2}
    levels = np.array([rank[level] for level in flag_levels(risk, rule)])
    assert np.all(np.diff(levels) >= 0)
    assert np.array_equal(levels == 2, risk >= high)


def test_levels_at_the_thresholds(make_validation):
    y, p, _, _ = make_validation()
    rule = choose_flag_rule(y, p, "top_percent", 10)
    risks = [rule.threshold, np.nextafter(rule.threshold, 0), rule.medium_threshold, 0.0]
    assert flag_levels(risks, rule).tolist() == ["high", "medium", "medium", "low"]


@pytest.mark.parametrize("risk", [[0.2, np.nan], [0.2, -0.1], [1.5]])
def test_levels_refuse_a_risk_outside_0_1(make_validation, risk):
    y, p, _, _ = make_validation()
    rule = choose_flag_rule(y, p, "top_percent", 10)
    with pytest.raises(ValueError, match=r"risk must be in \[0, 1\]"):
        flag_levels(risk, rule)


# --- reasons --------------------------------------------------------------------------


def _suggestion(name):
    return CONFIG.attribute(name).suggestion


def _label(name):
    return CONFIG.attribute(name).label


@pytest.fixture
def one_patient():
    """Patient "a" with sessions 1-4 given out of order, and patient "b" with one session.

    active_listening goes 4, 2, 2, missing; empathy 1, 3, missing, 5; decision_making
    5, 4, 4, 4; the other qualities are all 4.
    """
    encounters = pd.DataFrame(
        {
            "patient_id": ["a", "b", "a", "a", "a"],
            "session_number": [3, 1, 1, 4, 2],
            **{name: [4.0] * 5 for name in ATTRIBUTES},
        }
    )
    encounters["active_listening"] = [2.0, 2.0, 4.0, np.nan, 2.0]
    encounters["empathy"] = [np.nan, 4.0, 1.0, 5.0, 3.0]
    encounters["decision_making"] = [4.0, 4.0, 5.0, 4.0, 4.0]
    encounters.index = [10, 11, 12, 13, 14]
    return encounters


def _grouped(rows, index):
    """Contributions: zero except the given {attribute: value} per row."""
    frame = pd.DataFrame(0.0, index=index, columns=[*ATTRIBUTES, "treatment", "session"])
    for position, values in enumerate(rows):
        for name, value in values.items():
            frame.iloc[position, frame.columns.get_loc(name)] = value
    return frame


def test_reasons_name_the_most_risk_raising_qualities_with_ratings(one_patient):
    grouped = _grouped(
        [
            {"active_listening": -0.9, "empathy": -0.2, "support": 0.5, "treatment": -3.0},
            {"active_listening": -0.1, "self_kindness": -0.4},
            {"empathy": -0.5},
            {"active_listening": -0.3, "empathy": -0.6},
            {"empathy": -0.7, "active_listening": -0.2, "support": -0.1},
        ],
        one_patient.index,
    )
    reasons = flag_reasons(grouped, one_patient, CONFIG, top=2)
    al, em, sk = "active_listening", "empathy", "self_kindness"
    assert reasons == [
        # session 3: rated 2 after 2; empathy missing, was 3 at session 2
        f"{_label(al)} was rated low (2/5, same as last time): {_suggestion(al)} | "
        f"{_label(em)} was not rated this session (3/5 last time): {_suggestion(em)}",
        # patient b's first session: no previous rating
        f"{_label(sk)} was rated 4/5: {_suggestion(sk)} | "
        f"{_label(al)} was rated low (2/5): {_suggestion(al)}",
        f"{_label(em)} was rated low (1/5): {_suggestion(em)}",
        # session 4: empathy after a missing rating (no comparison); listening missing
        f"{_label(em)} was rated 5/5: {_suggestion(em)} | "
        f"{_label(al)} was not rated this session (2/5 last time): {_suggestion(al)}",
        # session 2: empathy up from 1, listening down from 4
        f"{_label(em)} was rated low (3/5, up from 1): {_suggestion(em)} | "
        f"{_label(al)} was rated low (2/5, down from 4): {_suggestion(al)}",
    ]


def test_a_rating_above_the_midpoint_is_not_called_low(one_patient):
    grouped = _grouped(
        [{"decision_making": -0.2, "support": -0.1}, {}, {}, {}, {"decision_making": -0.2}],
        one_patient.index,
    )
    reasons = flag_reasons(grouped, one_patient, CONFIG, flagged=[True, False, False, False, True])
    dm, su = "decision_making", "support"
    assert reasons[0] == (
        f"{_label(dm)} was rated 4/5 (same as last time): {_suggestion(dm)} | "
        f"{_label(su)} was rated 4/5 (same as last time): {_suggestion(su)}"
    )
    assert reasons[4] == f"{_label(dm)} was rated 4/5 (down from 5): {_suggestion(dm)}"


def test_the_issue_example_sentence(one_patient):
    grouped = _grouped([{}, {}, {}, {}, {"active_listening": -1.0}], one_patient.index)
    reasons = flag_reasons(grouped, one_patient, CONFIG, top=1)
    assert reasons[4] == (
        "Active listening was rated low (2/5, down from 4): give undivided attention, "
        "avoid watching the clock, be thoughtful and attend to detail"
    )


def test_unflagged_rows_get_nothing_and_flagged_rows_without_a_quality_a_sentence(
    one_patient,
):
    grouped = _grouped(
        [{"active_listening": -0.5}, {"support": 0.4}, {}, {"empathy": -0.1}, {}],
        one_patient.index,
    )
    grouped["treatment"] = -2.0  # risk from the treatment is not a rated quality
    flagged = [True, True, True, False, False]
    reasons = flag_reasons(grouped, one_patient, CONFIG, flagged=flagged)
    assert reasons[0].startswith("Active listening was rated low (2/5")
    assert " | " not in reasons[0]  # only one quality raises the risk
    assert reasons[1:3] == [NO_ATTRIBUTE_REASON, NO_ATTRIBUTE_REASON]
    assert reasons[3:] == ["", ""]


def test_risk_raising_attributes_orders_negatives_only():
    grouped = pd.DataFrame(
        {
            "a": [-0.1, 0.2, np.nan, -0.3],
            "b": [-0.5, 0.1, -0.2, -0.3],
            "c": [0.4, -0.0, 0.0, -0.1],
        },
        index=["x", "y", "z", "w"],
    )
    reasons = risk_raising_attributes(grouped, ["a", "b", "c"], top=4)
    assert list(reasons.columns) == ["reason_1", "reason_2", "reason_3", "reason_4"]
    assert list(reasons.index) == ["x", "y", "z", "w"]
    assert reasons.to_numpy().tolist() == [
        ["b", "a", None, None],
        [None, None, None, None],
        ["b", None, None, None],
        ["a", "b", "c", None],  # a tie keeps the config's order
    ]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"drop_grouped": "support"}, r"lack the attribute column\(s\) \['support'\]"),
        ({"grouped_rows": 3}, "grouped has 3 rows but encounters has 5"),
        ({"drop_encounters": "session_number"}, "session_number"),
        ({"drop_encounters": "active_listening"}, "active_listening"),
        ({"flagged": [True, False]}, "one true/false per encounter"),
        ({"top": 0}, "at least 1"),
    ],
)
def test_reasons_refuse_mismatched_input(one_patient, change, message):
    grouped = _grouped([{"active_listening": -1.0}] * 5, one_patient.index)
    encounters = one_patient
    if "drop_grouped" in change:
        grouped = grouped.drop(columns=change["drop_grouped"])
    if "grouped_rows" in change:
        grouped = grouped.iloc[: change["grouped_rows"]]
    if "drop_encounters" in change:
        encounters = encounters.drop(columns=change["drop_encounters"])
    with pytest.raises(ValueError, match=message):
        flag_reasons(
            grouped, encounters, CONFIG, top=change.get("top", 2), flagged=change.get("flagged")
        )


# --- the done-means check: simulated data where active listening drives dropout -------


def _listening_config():
    """The default config with active listening's effect on re-attendance made large
    (1.2 log-odds per rating point) and the other qualities' nearly nil (0.02)."""
    attributes = CONFIG.model_dump(mode="json")["attributes"]
    for item in attributes["items"]:
        strong = item["name"] == "active_listening"
        item["simulated"] = {"attended_next": 1.2 if strong else 0.02, "adherent": 0.1}
    return config_from_dict({"attributes": attributes})


def _logistic_grouped(model, encounters):
    """SHAP values of a logistic model (beta_j (x_j - mean_j), mean over the training
    rows), summed per attribute and per other feature group; checked to add up to the
    margin, so this test does not depend on engagekit.explain."""
    X = model.design(encounters).to_numpy()
    terms = model.coefficients()
    beta = terms["coefficient"].to_numpy()[1:]
    mean = model.estimator.named_steps["scale"].mean_
    contributions = (X - mean) * beta
    groups = [
        model.features.feature_groups_.get(name, name.split(":")[0]) for name in model.feature_names
    ]
    grouped = pd.DataFrame(
        {
            group: contributions[:, [g == group for g in groups]].sum(axis=1)
            for group in dict.fromkeys(groups)
        },
        index=encounters.index,
    )
    base = terms["coefficient"].iloc[0] + float(beta @ mean)
    np.testing.assert_allclose(grouped.sum(axis=1) + base, model.margin(encounters), atol=1e-8)
    return grouped


def test_flagged_patients_mostly_have_active_listening_as_top_reason():
    config = _listening_config()
    train, validation, new = (
        simulate_encounters(3000, seed=seed, config=config).encounters for seed in (21, 22, 23)
    )
    model = fit_model(train, "attended_next", "logistic", config)
    labelled = validation["attended_next"].notna().to_numpy()
    rule = choose_flag_rule(
        validation.loc[labelled, "attended_next"].to_numpy(dtype=int),
        model.predict_proba(validation)[labelled],
        "top_percent",
        10,
    )
    flagged = flag_levels(1.0 - model.predict_proba(new), rule) == "high"
    grouped = _logistic_grouped(model, new)
    top_reason = risk_raising_attributes(grouped, config, top=1)["reason_1"].to_numpy()
    reasons = np.array(flag_reasons(grouped, new, config, flagged=flagged), dtype=object)

    share = np.mean(top_reason[flagged] == "active_listening")
    # measured: 0.927 of the 1,405 flagged encounters (seeds 21-23)
    assert flagged.sum() > 500
    assert share > 0.5, share
    listening = flagged & (top_reason == "active_listening")
    expected_start = "Active listening was "
    suggestion = config.attribute("active_listening").suggestion
    assert all(r.startswith(expected_start) for r in reasons[listening])
    assert all(r.split(" | ")[0].endswith(": " + suggestion) for r in reasons[listening])
    assert set(reasons[~flagged]) == {""}
