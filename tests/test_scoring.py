"""Scores of encounters (``engagekit.scoring``): prediction, explanation, flag, reasons."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from _factories import model_with_flag_rule
from engagekit import load_config, simulate_encounters
from engagekit.flags import NO_ATTRIBUTE_REASON
from engagekit.scoring import (
    GROUPED_PREFIX,
    RATING_PREFIX,
    SHAP_PREFIX,
    encounter_flag_thresholds,
    patient_chunks,
    score_columns,
    score_encounters,
)

CONFIG = load_config()


@pytest.fixture(scope="module")
def encounters() -> pd.DataFrame:
    return simulate_encounters(500, seed=11, config=CONFIG).encounters


@pytest.fixture(scope="module", params=["logistic", "gbm"])
def scored(request, encounters):
    """``(model, rule, scores of every encounter)`` for each model kind."""
    model, rule = model_with_flag_rule(encounters, "attended_next", request.param, CONFIG, seed=1)
    return model, rule, score_encounters(model, encounters, CONFIG, rule)


def _logit(p: pd.Series) -> np.ndarray:
    p = p.to_numpy()
    return np.log(p) - np.log1p(-p)


def test_columns_are_ids_context_prediction_flag_then_every_features_contribution(
    scored, encounters
):
    model, _rule, scores = scored
    assert list(scores.columns) == score_columns(model, encounter_columns=encounters.columns)
    assert list(scores.columns[:11]) == [
        "encounter_id",
        "patient_id",
        "treatment",
        "practitioner_id",
        "session_number",
        "encounter_date",
        "p_attended_next",
        "risk",
        "flag",
        "reasons",
        "shap_base_value",
    ]
    shap = [c for c in scores.columns if c.startswith(SHAP_PREFIX)][1:]
    assert shap == [SHAP_PREFIX + name for name in model.feature_names]
    grouped = [c for c in scores.columns if c.startswith(GROUPED_PREFIX)]
    assert grouped[:6] == [GROUPED_PREFIX + name for name in CONFIG.attribute_names]
    assert scores["encounter_id"].tolist() == encounters["encounter_id"].tolist()
    assert scores["patient_id"].tolist() == encounters["patient_id"].tolist()
    for name in ("treatment", "practitioner_id", "session_number"):
        assert scores[name].tolist() == encounters[name].tolist()
    assert scores["encounter_date"].tolist() == [
        d.strftime("%Y-%m-%d") for d in encounters["encounter_date"]
    ]


def test_the_context_columns_are_those_the_table_has(scored, encounters):
    model, rule, _scores = scored
    bare = encounters.drop(columns=["practitioner_id", "encounter_date"]).head(50)
    scores = score_encounters(model, bare, CONFIG, rule)
    assert list(scores.columns) == score_columns(model, encounter_columns=bare.columns)
    assert list(scores.columns[:5]) == [
        "encounter_id",
        "patient_id",
        "treatment",
        "session_number",
        "p_attended_next",
    ]


def test_the_ratings_come_last_and_equal_the_encounters_nan_where_not_rated(scored, encounters):
    model, _rule, scores = scored
    names = [RATING_PREFIX + name for name in CONFIG.attribute_names]
    assert list(scores.columns[-len(names) :]) == names
    assert list(model.features.attributes) == list(CONFIG.attribute_names)
    for name in CONFIG.attribute_names:
        rating = scores[RATING_PREFIX + name]
        assert rating.dtype == np.float64
        expected = encounters[name].astype("float64").to_numpy()
        assert np.array_equal(rating.to_numpy(), expected, equal_nan=True)
    missing = encounters[list(CONFIG.attribute_names)].isna().to_numpy()
    assert missing.any()  # the simulator leaves some qualities unrated
    assert np.array_equal(scores[names].isna().to_numpy(), missing)


def test_local_accuracy_on_every_row(scored):
    _model, _rule, scores = scored
    total = scores.filter(regex=f"^{SHAP_PREFIX}").sum(axis=1).to_numpy()
    gap = np.abs(total - _logit(scores["p_attended_next"]))
    assert gap.max() < 1e-9


def test_grouped_contributions_sum_to_the_same_total(scored):
    _model, _rule, scores = scored
    features = scores.filter(regex=f"^{SHAP_PREFIX}").drop(columns="shap_base_value").sum(axis=1)
    grouped = scores.filter(regex=f"^{GROUPED_PREFIX}").sum(axis=1)
    np.testing.assert_allclose(grouped, features, atol=1e-9)


def test_probability_risk_and_flags_follow_the_model_and_its_rule(scored, encounters):
    model, rule, scores = scored
    np.testing.assert_allclose(scores["p_attended_next"], model.predict_proba(encounters))
    np.testing.assert_allclose(scores["risk"], 1.0 - scores["p_attended_next"])
    # "the top 10%" of these encounters high, the next 10% medium (ties at a cut flagged)
    assert rule.rule == "top_percent" and rule.value == 10
    ranked = np.sort(scores["risk"].to_numpy())[::-1]
    high_cut = ranked[math.ceil(0.1 * len(ranked)) - 1]
    medium_cut = ranked[math.ceil(0.2 * len(ranked)) - 1]
    expected = np.where(
        scores["risk"] >= high_cut,
        "high",
        np.where(scores["risk"] >= medium_cut, "medium", "low"),
    )
    assert scores["flag"].tolist() == expected.tolist()


def test_flagged_rows_have_reasons_and_the_others_none(scored):
    _model, _rule, scores = scored
    flagged = scores["flag"].isin(["high", "medium"])
    assert flagged.any() and (~flagged).any()
    assert (scores.loc[~flagged, "reasons"] == "").all()
    reasons = scores.loc[flagged, "reasons"]
    assert (reasons != "").all()
    labels = [CONFIG.attribute(name).label for name in CONFIG.attribute_names]
    named = reasons.map(lambda text: text == NO_ATTRIBUTE_REASON or text.startswith(tuple(labels)))
    assert named.all()


def test_scoring_in_chunks_of_whole_patients_equals_scoring_the_table(scored, encounters):
    model, rule, scores = scored
    chunks = patient_chunks(encounters["patient_id"], 400)
    assert len(chunks) > 3
    # each chunk flagged with the thresholds the rule set on the whole table
    applied = encounter_flag_thresholds(rule, scores["risk"], encounters)
    parts = [score_encounters(model, encounters.iloc[rows], CONFIG, applied) for rows in chunks]
    order = np.concatenate(chunks)
    pd.testing.assert_frame_equal(
        pd.concat(parts, ignore_index=True), scores.iloc[order].reset_index(drop=True)
    )


def test_an_empty_table_gives_an_empty_score_table(scored, encounters):
    model, rule, _scores = scored
    empty = score_encounters(model, encounters.head(0), CONFIG, rule)
    assert empty.empty and list(empty.columns) == score_columns(model)


@settings(max_examples=200, deadline=None)
@given(
    patients=st.lists(st.integers(0, 12), min_size=0, max_size=60),
    chunk_rows=st.integers(1, 15),
)
def test_patient_chunks_hold_every_row_once_and_never_split_a_patient(patients, chunk_rows):
    chunks = patient_chunks(np.array(patients, dtype=object), chunk_rows)
    rows = np.concatenate(chunks) if chunks else np.array([], dtype=int)
    assert sorted(rows.tolist()) == list(range(len(patients)))
    owner: dict[int, int] = {}
    ids = np.array(patients)
    for k, chunk in enumerate(chunks):
        assert np.all(np.diff(chunk) > 0)
        for patient in set(ids[chunk].tolist()):
            assert owner.setdefault(patient, k) == k
        if k < len(chunks) - 1:
            assert len(chunk) >= chunk_rows
        # a chunk closes as soon as it reaches the size: without the patient who came
        # last (by first appearance in the table) it was still below it
        if len(chunk):
            first_seen = {p: patients.index(p) for p in set(ids[chunk].tolist())}
            last_patient = max(first_seen, key=first_seen.get)
            assert len(chunk) - int(np.sum(ids[chunk] == last_patient)) < chunk_rows


def test_patient_chunks_are_the_same_for_the_same_table():
    ids = np.random.default_rng(0).integers(0, 50, 300).astype(str)
    first = patient_chunks(ids, 37)
    second = patient_chunks(ids, 37)
    assert [c.tolist() for c in first] == [c.tolist() for c in second]


@pytest.mark.parametrize("chunk_rows", [0, -3, 2.5, "10"])
def test_patient_chunks_refuse_a_bad_size(chunk_rows):
    with pytest.raises(ValueError, match="chunk_rows must be a whole number of rows"):
        patient_chunks(["a", "b"], chunk_rows)
