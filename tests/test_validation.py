"""Tests of engagekit.validation: every rule of the encounter contract, all problems at
once, and no row ever lost.

Each rule case starts from the small valid table of ``_factories.valid_encounter_rows``
(3 patients x 3 sessions; patient P00k's session s is on data row 3(k-1)+s, its dates one
week apart from 2025-01-06 + (k-1) days) and breaks one cell; the expected problems are
written out by hand.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from _factories import (
    ATTRIBUTES,
    COLUMNS,
    OUTCOMES,
    valid_encounter_rows,
    with_cell,
)
from engagekit import (
    ContractError,
    DataReadError,
    check_encounters,
    coerce_encounters,
    split_by_validity,
    validate_encounters,
)
from engagekit.config import config_from_dict, load_config
from engagekit.validation import PROBLEM_COLUMNS

REQUIRED = ["patient_id", "encounter_id", "session_number", "treatment"]
TREATMENT_RULE = (
    "must be one of the configured treatments: antidepressants, cbt_face_to_face, "
    "cbt_online, facilitated_physical_activity, listening_visits, usual_care"
)
NOT_EARLIER = "must not be earlier than the encounter_date of the same patient's earlier sessions"


def _found(report) -> list[tuple[int, str, str]]:
    p = report.problems
    return list(zip(p["row"].astype(int), p["column"], p["check"], strict=True))


# --------------------------------------------------------------------------- the rules

WHOLE = "must be a whole number"
SESSION_RANGE = "must be between 1 and 2147483647"
ISO = r"must be an ISO date \(YYYY-MM-DD\)"
NUMBER = "must be a number"
BETWEEN = "must be between 1 and 5"
ZERO_ONE = r"must be one of 0, 1 \(or empty\)"
SAME_PATIENT = "must be unique within a patient"


def case(id_: str, row: int, column: str, value, problems, rule: str):
    """One rule case: write ``value`` into data row ``row`` of ``column``; expect
    ``problems`` (a check name for a single problem on that cell, or a list of
    (row, column, check)) whose rule text matches ``rule``."""
    if isinstance(problems, str):
        problems = [(row, column, problems)]
    return pytest.param(row, column, value, problems, rule, id=id_)


RULE_CASES = [
    # required values
    *[
        case(f"{col}-missing", 2, col, None, "not_nullable", "required value is missing")
        for col in REQUIRED
    ],
    case("patient_id-blank", 2, "patient_id", "  ", "not_blank", "must not be blank"),
    case("encounter_id-blank", 2, "encounter_id", " ", "not_blank", "must not be blank"),
    case(
        "encounter_id-duplicate",
        2,
        "encounter_id",
        "E001-1",
        [(1, "encounter_id", "unique_over_table"), (2, "encounter_id", "unique_over_table")],
        "must be unique over the whole table",
    ),
    # session_number
    case("session-not-whole", 2, "session_number", "1.5", "whole_number", WHOLE),
    case("session-not-a-number", 2, "session_number", "two", "whole_number", WHOLE),
    case("session-zero", 1, "session_number", "0", "bounds", SESSION_RANGE),
    case("session-negative", 1, "session_number", "-3", "bounds", SESSION_RANGE),
    case(
        "session-duplicate",
        2,
        "session_number",
        "1",
        [
            (1, "session_number", "unique_within_patient_id"),
            (2, "session_number", "unique_within_patient_id"),
        ],
        SAME_PATIENT,
    ),
    case(
        "session-duplicate-written-1.0",
        2,
        "session_number",
        "1.0",
        [
            (1, "session_number", "unique_within_patient_id"),
            (2, "session_number", "unique_within_patient_id"),
        ],
        SAME_PATIENT,
    ),
    # encounter_date
    case("date-not-iso", 2, "encounter_date", "03/02/2025", "iso_date", ISO),
    case("date-month-13", 2, "encounter_date", "2025-13-01", "iso_date", ISO),
    case("date-year-month-only", 1, "encounter_date", "2025-01", "iso_date", ISO),
    case("date-no-dashes", 1, "encounter_date", "20250106", "iso_date", ISO),
    case("date-with-time", 1, "encounter_date", "2025-01-06T10:00", "iso_date", ISO),
    case(
        "date-backwards",
        2,
        "encounter_date",
        "2025-01-01",
        "non_decreasing_encounter_date",
        NOT_EARLIER,
    ),
    # session 1 moved after sessions 2 and 3: the later sessions are the ones reported
    case(
        "date-first-session-latest",
        1,
        "encounter_date",
        "2025-02-01",
        [
            (2, "encounter_date", "non_decreasing_encounter_date"),
            (3, "encounter_date", "non_decreasing_encounter_date"),
        ],
        NOT_EARLIER,
    ),
    # treatment
    case("treatment-unknown", 1, "treatment", "yoga", "allowed_values", re.escape(TREATMENT_RULE)),
    case(
        "treatment-wrong-case",
        1,
        "treatment",
        "CBT_online",
        "allowed_values",
        re.escape(TREATMENT_RULE),
    ),
    # ratings: one attribute each
    case("rating-abc", 1, "approachability", "abc", "number", NUMBER),
    case("rating-inf", 1, "empathy", "inf", "number", NUMBER),
    case("rating-4.5.", 1, "self_kindness", "4.5.", "number", NUMBER),
    case("rating-0", 1, "support", "0", "bounds", BETWEEN),
    case("rating-6", 1, "active_listening", "6", "bounds", BETWEEN),
    case("rating-minus-1", 1, "decision_making", "-1", "bounds", BETWEEN),
    # outcomes
    *[
        case(f"{outcome}-{value}", 3, outcome, value, "allowed_values", ZERO_ONE)
        for outcome in OUTCOMES
        for value in ("2", "yes", "0.5")
    ],
]


@pytest.mark.parametrize(("row", "column", "value", "expected", "rule"), RULE_CASES)
def test_each_rule_reports_row_column_check_and_rule(row, column, value, expected, rule):
    table = with_cell(valid_encounter_rows(), row, column, value)
    report = validate_encounters(table)

    assert not report.valid
    assert _found(report) == expected
    p = report.problems
    assert list(p.columns) == PROBLEM_COLUMNS
    for text in p["rule"]:
        assert re.search(rule, text), text
    # the offending value is reported as written, with the row's encounter_id
    for _, problem in p[p["row"] == row].iterrows():
        assert problem["value"] == value
        if column == "encounter_id" and value is None:
            assert pd.isna(problem["encounter_id"])
        else:
            assert problem["encounter_id"] == table.at[row - 1, "encounter_id"]
    assert report.n_rows == 9
    assert report.bad_rows.tolist() == sorted({r - 1 for r, _, _ in expected})


@pytest.mark.parametrize(("n_patients", "sessions"), [(1, 1), (3, 3), (6, 4)])
def test_a_valid_table_is_valid(n_patients, sessions):
    report = validate_encounters(valid_encounter_rows(n_patients, sessions, seed=n_patients))
    assert report.valid
    assert len(report.problems) == 0
    assert report.n_rows == n_patients * sessions
    assert report.n_good_rows == n_patients * sessions
    assert report.bad_rows.tolist() == []


def test_empty_ratings_and_outcomes_are_allowed():
    table = valid_encounter_rows()
    table.loc[[0, 4, 8], list(ATTRIBUTES)] = np.nan
    table.loc[[1, 4], list(OUTCOMES)] = np.nan
    table.loc[2, "encounter_date"] = np.nan
    assert validate_encounters(table).valid


def test_only_the_required_columns_is_enough():
    assert validate_encounters(valid_encounter_rows()[REQUIRED]).valid


@pytest.mark.parametrize("missing", [[c] for c in REQUIRED] + [["session_number", "treatment"]])
def test_a_missing_required_column_cannot_be_checked(missing):
    table = valid_encounter_rows().drop(columns=missing)
    with pytest.raises(DataReadError, match="required column") as info:
        validate_encounters(table)
    for col in missing:
        assert repr(col) in str(info.value)


def test_every_problem_of_a_row_is_reported_at_once():
    table = valid_encounter_rows()
    for column, value in [("treatment", "yoga"), ("empathy", "9"), ("adherent", "yes")]:
        table = with_cell(table, 4, column, value)
    table = with_cell(table, 7, "session_number", "0")
    assert _found(validate_encounters(table)) == [
        (4, "treatment", "allowed_values"),
        (4, "empathy", "bounds"),
        (4, "adherent", "allowed_values"),
        (7, "session_number", "bounds"),
    ]


@pytest.mark.parametrize(
    ("copies", "expected_detail"),
    [
        # E001-1 (row 1) copied onto row 5
        ([5], {1: "also on row(s) 5", 5: "also on row(s) 1"}),
        ([5, 9], {1: "also on row(s) 5, 9", 5: "also on row(s) 1, 9", 9: "also on row(s) 1, 5"}),
    ],
)
def test_duplicate_encounter_id_reports_both_rows_naming_the_other(copies, expected_detail):
    table = valid_encounter_rows()
    for row in copies:
        table = with_cell(table, row, "encounter_id", "E001-1")
    p = validate_encounters(table).problems
    assert set(p["check"]) == {"unique_over_table"}
    assert set(p["column"]) == {"encounter_id"}
    assert dict(zip(p["row"].astype(int), p["detail"], strict=True)) == expected_detail
    assert p["rule"].str.contains("must be unique over the whole table").all()


def test_duplicate_session_names_the_other_row():
    table = with_cell(valid_encounter_rows(), 3, "session_number", "2")
    p = validate_encounters(table).problems
    assert dict(zip(p["row"].astype(int), p["detail"], strict=True)) == {
        2: "same value on row(s) 3",
        3: "same value on row(s) 2",
    }


def test_same_session_number_in_two_patients_is_fine():
    # every patient has sessions 1..3: only a repeat within one patient is a problem
    assert validate_encounters(valid_encounter_rows(4, 3)).valid


def test_extra_columns_pass_through_and_are_never_reported():
    table = valid_encounter_rows()
    table["clinic_note"] = ["", "  ", "yoga", "6", "NaN", None, "x" * 300, "é", "1.5"]
    table.insert(0, "site", "north")
    table = with_cell(table, 2, "empathy", "9")
    report = validate_encounters(table)
    assert _found(report) == [(2, "empathy", "bounds")]
    good, bad = split_by_validity(table, report)
    kept = table.drop(index=1).reset_index(drop=True)
    pd.testing.assert_frame_equal(good, kept)
    assert bad["clinic_note"].tolist() == ["  "]
    assert bad["site"].tolist() == ["north"]
    typed = coerce_encounters(good)
    pd.testing.assert_series_equal(typed["clinic_note"], good["clinic_note"])
    pd.testing.assert_series_equal(typed["site"], good["site"])


def _config_with_items(names: list[str], lo: float, hi: float):
    items = [{"name": n, "label": n, "description": n, "suggestion": n} for n in names]
    return config_from_dict({"attributes": {"scale": {"min": lo, "max": hi}, "items": items}})


@pytest.mark.parametrize(
    ("value", "default_ok", "zero_to_ten_ok"),
    [
        ("0", False, True),
        ("6", False, True),
        ("10", False, True),
        ("7.5", False, True),
        ("1", True, True),
        ("5", True, True),
        ("11", False, False),
        ("-1", False, False),
    ],
)
def test_a_config_with_another_scale_changes_the_bounds(value, default_ok, zero_to_ten_ok):
    zero_to_ten = _config_with_items(list(ATTRIBUTES), 0, 10)
    table = with_cell(valid_encounter_rows(), 1, "empathy", value)
    assert validate_encounters(table).valid is default_ok
    report = validate_encounters(table, zero_to_ten)
    assert report.valid is zero_to_ten_ok
    if not zero_to_ten_ok:
        assert _found(report) == [(1, "empathy", "bounds")]
        assert report.problems["rule"].tolist() == ["must be between 0 and 10"]


def test_a_config_with_other_attributes_checks_those_columns_only():
    cfg = _config_with_items(["warmth", "clarity"], 1, 7)
    table = valid_encounter_rows()
    table["warmth"] = "7"
    table["clarity"] = "1"
    table = with_cell(table, 1, "empathy", "99")  # no longer a rated quality: passes through
    table = with_cell(table, 2, "clarity", "8")
    assert _found(validate_encounters(table, cfg)) == [(2, "clarity", "bounds")]


def test_a_config_with_other_treatments_changes_the_treatment_rule():
    cfg = config_from_dict(
        {"treatments": [{"name": "yoga", "label": "Yoga"}, {"name": "cbt", "label": "CBT"}]}
    )
    table = valid_encounter_rows(2, 2)
    table["treatment"] = ["yoga", "yoga", "cbt", "cbt_online"]
    report = validate_encounters(table, cfg)
    assert _found(report) == [(4, "treatment", "allowed_values")]
    assert report.problems["rule"].tolist() == [
        "must be one of the configured treatments: yoga, cbt"
    ]
    assert not validate_encounters(table.iloc[:3]).valid  # the default list has no yoga


def test_typed_columns_are_checked_like_text():
    # the table as Parquet or SQL would give it: native types, not text
    typed = coerce_encounters(valid_encounter_rows())
    assert validate_encounters(typed).valid
    typed["session_number"] = typed["session_number"].astype("float64")
    typed.loc[1, "session_number"] = 1.5
    typed.loc[3, "empathy"] = 6.0
    typed.loc[4, "adherent"] = pd.NA
    typed["attended_next"] = typed["attended_next"].astype("Int64")
    typed.loc[5, "attended_next"] = 2
    typed.loc[7, "encounter_date"] = pd.Timestamp("2024-12-31")
    assert _found(validate_encounters(typed)) == [
        (2, "session_number", "whole_number"),
        (4, "empathy", "bounds"),
        (6, "attended_next", "allowed_values"),
        (8, "encounter_date", "non_decreasing_encounter_date"),
    ]


def test_simulated_encounters_are_valid(make_encounters):
    report = validate_encounters(make_encounters(n_patients=60, seed=3))
    assert report.valid, report.problems.head()


def test_check_encounters_refuses_with_the_full_report():
    table = with_cell(with_cell(valid_encounter_rows(), 1, "treatment", "yoga"), 5, "empathy", "7")
    with pytest.raises(ContractError, match=r"2 problem\(s\) in 2 of 9 rows") as info:
        check_encounters(table)
    assert _found(info.value.report) == [
        (1, "treatment", "allowed_values"),
        (5, "empathy", "bounds"),
    ]


def test_check_encounters_returns_typed_columns():
    typed = check_encounters(valid_encounter_rows())
    assert typed["session_number"].dtype == np.int64
    assert typed["session_number"].tolist() == [1, 2, 3] * 3
    assert typed["empathy"].dtype == np.float64
    assert str(typed["attended_next"].dtype) == "Int8"
    assert typed["attended_next"].tolist() == [1, 1, 0] * 3
    assert typed["encounter_date"].iloc[1] == pd.Timestamp("2025-01-13")


def test_split_by_validity_keeps_row_numbers_of_the_offending_rows():
    table = with_cell(with_cell(valid_encounter_rows(), 8, "treatment", "yoga"), 3, "empathy", "0")
    good, bad = split_by_validity(table, validate_encounters(table))
    assert bad.columns[0] == "row"
    assert bad["row"].tolist() == [3, 8]
    assert bad["encounter_id"].tolist() == ["E001-3", "E003-2"]
    assert good["encounter_id"].tolist() == [
        "E001-1",
        "E001-2",
        "E002-1",
        "E002-2",
        "E002-3",
        "E003-1",
        "E003-3",
    ]


# --------------------------------------------------------------------------- no row lost

_CORRUPTIONS = {
    "patient_id": [None, "  ", "P001", "P002"],
    "encounter_id": [None, " ", "E001-1", "E002-2"],
    "session_number": [None, "0", "1", "2", "3", "1.5", "two", "-1"],
    "encounter_date": [None, "2024-12-31", "2025-01-10", "2025-02-01", "03/02/2025", "2025-13-01"],
    "treatment": [None, "yoga", "cbt_online", "usual_care"],
    **{a: [None, "0", "6", "abc", "inf", "2.5"] for a in ATTRIBUTES},
    **{o: [None, "2", "yes", "0.5", "0"] for o in OUTCOMES},
}
_corruption = st.sampled_from(sorted(_CORRUPTIONS)).flatmap(
    lambda col: st.tuples(st.integers(0, 99), st.just(col), st.sampled_from(_CORRUPTIONS[col]))
)


@settings(
    max_examples=60,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    n_patients=st.integers(1, 4),
    sessions=st.integers(1, 4),
    seed=st.integers(0, 10),
    corruptions=st.lists(_corruption, max_size=6),
    repeat_row=st.none() | st.integers(0, 99),
    note=st.lists(st.text(max_size=5), min_size=16, max_size=16),
)
def test_validation_never_loses_a_row(n_patients, sessions, seed, corruptions, repeat_row, note):
    table = valid_encounter_rows(n_patients, sessions, seed)
    n = len(table)
    table["note"] = note[:n]  # an extra column with anything in it
    for i, column, value in corruptions:
        table = with_cell(table, i % n + 1, column, value)
    if repeat_row is not None:  # a row exported twice
        table = pd.concat([table, table.iloc[[repeat_row % n]]], ignore_index=True)
        n += 1

    report = validate_encounters(table)
    good, bad = split_by_validity(table, report)

    problem_rows = set(report.problems["row"].astype(int))
    assert problem_rows <= set(range(1, n + 1))
    assert set(bad["row"]) == problem_rows
    assert len(bad) == len(problem_rows)
    assert len(good) + len(bad) == n
    assert "note" not in set(report.problems["column"])
    # good and bad rows together are the input, each row once, values unchanged
    good_rows = [r for r in range(1, n + 1) if r not in problem_rows]
    rebuilt = pd.concat([good.assign(row=good_rows), bad]).sort_values("row")
    pd.testing.assert_frame_equal(
        rebuilt.drop(columns="row").reset_index(drop=True), table.reset_index(drop=True)
    )
    # removing the offending rows cannot create a new problem
    assert validate_encounters(good).valid


def test_the_contract_columns_are_the_documented_ones():
    # guards the factory: it must build every column of the contract, no more
    from engagekit import encounter_contract

    assert encounter_contract(load_config()).names == list(COLUMNS)
