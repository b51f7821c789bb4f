"""Values the contract cannot hold fail validation, naming the row and the column.

A ``session_number`` of 1e23 once passed ``validate`` as valid, then wrapped round in
``predict``. The contract now bounds it (2^31 - 1, held exactly by every integer and
floating-point type), and numbers that are not finite fail wherever a number belongs.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from _cli import assert_no_traceback, run
from _factories import valid_encounter_rows, with_cell, write_csv
from engagekit import check_encounters, read_encounters, validate_encounters
from engagekit.features import EncounterFeatures

SESSION_MAX = 2**31 - 1

# (column, value as a CSV cell): each is a row-2 problem of that column
TEXT = [
    ("session_number", "1e23"),
    ("session_number", "-1e23"),
    ("session_number", str(SESSION_MAX + 1)),
    ("session_number", str(2**63)),
    ("session_number", "9" * 400),
    ("session_number", "1e308"),
    ("session_number", "1e400"),
    ("session_number", "inf"),
    ("session_number", "nan"),
    ("session_number", "2147483647.5"),
    ("empathy", "inf"),
    ("empathy", "-inf"),
    ("empathy", "Infinity"),
    ("empathy", "nan"),
    ("empathy", "NaN"),
    ("empathy", "1e309"),
    ("empathy", "4e-400x"),
    ("attended_next", "1e23"),
    ("attended_next", "nan"),
    ("attended_next", "1.0000000001"),
    ("adherent", "inf"),
    ("next_session_due", "-0.5"),
    ("encounter_date", "99999-01-01"),
    ("encounter_date", "0000-01-01"),
    ("encounter_date", "2025-02-30"),
]


@pytest.mark.parametrize(("column", "value"), TEXT)
def test_a_value_out_of_reach_in_csv_text_is_a_problem_of_its_row_and_column(
    tmp_path, column, value
):
    table = with_cell(valid_encounter_rows(2, 3), 2, column, value)
    report = validate_encounters(read_encounters(write_csv(table, tmp_path / "t.csv")))
    assert not report.valid
    problems = report.problems[report.problems["column"] == column]
    assert set(problems["row"]) == {2}, report.problems
    assert set(report.problems["column"]) <= {column, "encounter_date"}


def test_the_largest_session_number_is_valid_and_kept_exactly():
    table = with_cell(valid_encounter_rows(1, 2), 2, "session_number", str(SESSION_MAX))
    typed = check_encounters(table)
    assert typed["session_number"].tolist() == [1, SESSION_MAX]
    features = EncounterFeatures(("empathy",), ("antidepressants",)).fit_transform(typed)
    assert features["session_number"].tolist() == [1.0, float(SESSION_MAX)]
    assert np.isfinite(features["log_session"]).all()


def _parquet(path, column: str, array: pa.Array):
    table = pa.Table.from_pandas(valid_encounter_rows(2, 2), preserve_index=False)
    table = table.set_column(table.schema.get_field_index(column), column, array)
    pq.write_table(table, path)
    return path


# (column, the column as typed, the data row holding the value out of reach)
TYPED = {
    "int64 2^62": ("session_number", pa.array([1, 2**62, 1, 2], pa.int64()), 2),
    "int64 2^31": ("session_number", pa.array([1, 2, 2**31, 2], pa.int64()), 3),
    "uint64 max": ("session_number", pa.array([1, 2, 1, 2**64 - 1], pa.uint64()), 4),
    "float 1e23": ("session_number", pa.array([1.0, 1e23, 1.0, 2.0]), 2),
    "float inf": ("session_number", pa.array([1.0, 2.0, float("inf"), 2.0]), 3),
    "float -inf": ("session_number", pa.array([float("-inf"), 2.0, 1.0, 2.0]), 1),
    "rating inf": ("empathy", pa.array([4.0, float("inf"), 3.0, 2.0]), 2),
    "rating -inf": ("empathy", pa.array([4.0, 3.0, float("-inf"), 2.0]), 3),
    "rating float16 inf": ("empathy", pa.array(np.array([4, np.inf, 3, 2], np.float16)), 2),
    "rating decimal 1e30": (
        "empathy",
        pa.array([None, 10**30, None, None], pa.decimal128(38, 0)),
        2,
    ),
    "outcome int64 2^40": ("attended_next", pa.array([0, 1, 2**40, 1], pa.int64()), 3),
    "outcome float inf": ("adherent", pa.array([0.0, 1.0, 1.0, float("inf")]), 4),
}


@pytest.mark.parametrize("case", list(TYPED))
def test_a_typed_parquet_value_out_of_reach_is_a_problem_of_its_row_and_column(tmp_path, case):
    column, array, bad_row = TYPED[case]
    report = validate_encounters(read_encounters(_parquet(tmp_path / "t.parquet", column, array)))
    problems = report.problems
    assert set(problems["column"]) <= {column, "encounter_date"}, problems
    assert problems.loc[problems["column"] == column, "row"].tolist() == [bad_row], problems
    assert all(len(v) <= 60 for v in problems["value"].dropna())


def test_validate_on_the_command_line_names_row_and_column(tmp_path):
    table = with_cell(valid_encounter_rows(2, 3), 2, "session_number", "1e23")
    write_csv(table, tmp_path / "t.csv")
    result = run("validate", "t.csv", cwd=tmp_path)
    assert result.returncode == 1
    assert_no_traceback(result)
    assert "session_number" in result.stdout and "2147483647" in result.stdout
