"""Tests of engagekit.summary on a table small enough to count by hand."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from _factories import ATTRIBUTES
from engagekit import summarize_encounters
from engagekit.config import config_from_dict

NAN = float("nan")


def _hand_table() -> pd.DataFrame:
    """Patient a: 3 cbt_online sessions; b: 1 cbt_online session; c: 2 usual_care sessions.

    attended_next  a: 1, 1, -   b: 0      c: 1, 0
    adherent       a: 1, 0, -   b: -      c: 1, 1
    empathy        a: 4, -, 5   b: -      c: 3, 2     (2 of 6 empty)
    approachability all rated; the other four attributes are not in the table.
    """
    return pd.DataFrame(
        {
            "patient_id": ["a", "a", "a", "b", "c", "c"],
            "session_number": [1, 2, 3, 1, 1, 2],
            "treatment": ["cbt_online"] * 4 + ["usual_care"] * 2,
            "approachability": [4.0, 4.0, 3.0, 5.0, 2.0, 1.0],
            "empathy": [4.0, NAN, 5.0, NAN, 3.0, 2.0],
            "attended_next": pd.array([1, 1, None, 0, 1, 0], dtype="Int8"),
            "adherent": pd.array([1, 0, None, None, 1, 1], dtype="Int8"),
        }
    )


# treatment -> patients, encounters, sessions mean/median/max, not_attended_next,
# attended_next_empty, adherent, adherent_empty  (counted by hand from _hand_table)
EXPECTED_BY_TREATMENT = {
    "antidepressants": (0, 0, NAN, NAN, 0, NAN, 0, NAN, 0),
    "cbt_face_to_face": (0, 0, NAN, NAN, 0, NAN, 0, NAN, 0),
    "cbt_online": (2, 4, 2.0, 2.0, 3, 1 / 3, 1, 1 / 2, 2),
    "facilitated_physical_activity": (0, 0, NAN, NAN, 0, NAN, 0, NAN, 0),
    "listening_visits": (0, 0, NAN, NAN, 0, NAN, 0, NAN, 0),
    "usual_care": (1, 2, 2.0, 2.0, 2, 1 / 2, 0, 1.0, 0),
    "all": (3, 6, 2.0, 2.0, 3, 2 / 5, 1, 3 / 4, 2),
}
FIELDS = [
    "patients",
    "encounters",
    "sessions_mean",
    "sessions_median",
    "sessions_max",
    "not_attended_next",
    "attended_next_empty",
    "adherent",
    "adherent_empty",
]


def test_counts_of_the_whole_table():
    s = summarize_encounters(_hand_table())
    assert (s.n_patients, s.n_encounters) == (3, 6)


@pytest.mark.parametrize("treatment", list(EXPECTED_BY_TREATMENT))
def test_counts_and_rates_by_treatment(treatment):
    by = summarize_encounters(_hand_table()).by_treatment.set_index("treatment")
    got = by.loc[treatment, FIELDS].tolist()
    for field, value, expected in zip(FIELDS, got, EXPECTED_BY_TREATMENT[treatment], strict=True):
        if math.isnan(expected):
            assert pd.isna(value), field
        else:
            assert value == pytest.approx(expected), field


def test_every_configured_treatment_is_listed_in_order_then_all():
    by = summarize_encounters(_hand_table()).by_treatment
    assert by["treatment"].tolist() == list(EXPECTED_BY_TREATMENT)


def test_missing_ratings_per_attribute():
    m = summarize_encounters(_hand_table()).missing_ratings.set_index("attribute")
    assert m.index.tolist() == list(ATTRIBUTES)
    assert m.loc["approachability", "missing"] == 0
    assert m.loc["empathy", "missing"] == 2
    assert m.loc["empathy", "share_missing"] == pytest.approx(1 / 3)
    # an attribute absent from the table is empty in every encounter
    assert m.loc["support", "missing"] == 6
    assert m.loc["support", "share_missing"] == 1.0


def test_a_config_decides_the_treatments_and_attributes():
    cfg = config_from_dict(
        {
            "treatments": [
                {"name": "usual_care", "label": "Usual care"},
                {"name": "cbt_online", "label": "Online CBT"},
            ],
            "attributes": {
                "scale": {"min": 1, "max": 5},
                "items": [{"name": "empathy", "label": "E", "description": "d", "suggestion": "s"}],
            },
        }
    )
    s = summarize_encounters(_hand_table(), cfg)
    by = s.by_treatment.set_index("treatment")
    assert by.index.tolist() == ["usual_care", "cbt_online", "all"]
    assert by.loc["usual_care", "encounters"] == 2
    assert s.missing_ratings["attribute"].tolist() == ["empathy"]


def test_no_outcome_columns_means_no_outcome_rates():
    table = _hand_table().drop(columns=["attended_next", "adherent"])
    by = summarize_encounters(table).by_treatment
    assert "not_attended_next" not in by.columns
    assert "adherent" not in by.columns
    assert by.set_index("treatment").loc["all", "encounters"] == 6


def test_to_dict_is_json_with_null_for_undefined_rates():
    d = json.loads(json.dumps(summarize_encounters(_hand_table()).to_dict()))
    assert d["n_patients"] == 3
    assert d["n_encounters"] == 6
    rows = {r["treatment"]: r for r in d["by_treatment"]}
    assert rows["antidepressants"]["sessions_mean"] is None
    assert rows["antidepressants"]["not_attended_next"] is None
    assert rows["usual_care"]["adherent"] == 1.0
    assert rows["all"]["sessions_max"] == 3
    assert {r["attribute"]: r["missing"] for r in d["missing_ratings"]}["empathy"] == 2


def test_per_treatment_blocks_add_up_to_all(make_encounters):
    encounters = make_encounters(n_patients=80, seed=4)
    by = summarize_encounters(encounters).by_treatment.set_index("treatment")
    parts, total = by.drop(index="all"), by.loc["all"]
    assert parts["encounters"].sum() == total["encounters"] == len(encounters)
    assert parts["patients"].sum() == total["patients"] == encounters["patient_id"].nunique()
    assert parts["attended_next_empty"].sum() == total["attended_next_empty"]
    assert total["sessions_max"] == encounters.groupby("patient_id").size().max()
    for rate in ("not_attended_next", "adherent"):
        assert 0.0 <= total[rate] <= 1.0
    known = encounters["attended_next"].dropna().to_numpy()
    assert total["not_attended_next"] == pytest.approx(np.mean(known == 0))
