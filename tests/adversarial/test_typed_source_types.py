"""Wrong types from typed sources fail validation, naming the column.

Parquet and SQL keep their own column types. A list, a mapping, bytes or true/false
where an id, a number or a date belongs is reported as a problem of its row and column:
not an internal error, and never silently read as the text or number it would print as
(``True`` as 1, ``b"P001"`` as ``"P001"``).
"""

from __future__ import annotations

import datetime as dt
import sqlite3

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from _cli import assert_no_traceback, run
from _factories import COLUMNS, valid_encounter_rows
from engagekit import read_encounters, validate_encounters
from engagekit.errors import ContractError, DataReadError

N_ROWS = 4

#: typed values that no contract column holds, one Arrow column of N_ROWS each
WRONG = {
    "bool": pa.array([True, False, True, False]),
    "list": pa.array([[1], [2, 3], [], [4]], pa.list_(pa.int64())),
    "struct": pa.array([{"a": 1}, {"a": 2}, {"a": 3}, {"a": 4}]),
    "bytes": pa.array([b"P001", b"1", b"4", b"2025-01-06"], pa.binary()),
    "map": pa.array([[("k", 1)]] * N_ROWS, pa.map_(pa.string(), pa.int64())),
}
COLUMNS_TRIED = (
    "patient_id",
    "encounter_id",
    "session_number",
    "encounter_date",
    "treatment",
    "practitioner_id",
    "empathy",
    "next_session_due",
    "attended_next",
)


def _parquet(path, replace: dict[str, pa.Array]):
    table = pa.Table.from_pandas(valid_encounter_rows(2, 2), preserve_index=False)
    for column, array in replace.items():
        table = table.set_column(table.schema.get_field_index(column), column, array)
    pq.write_table(table, path)
    return path


@pytest.mark.parametrize("kind", list(WRONG))
@pytest.mark.parametrize("column", COLUMNS_TRIED)
def test_a_wrongly_typed_parquet_column_is_reported_on_every_row(tmp_path, column, kind):
    path = _parquet(tmp_path / "t.parquet", {column: WRONG[kind]})
    report = validate_encounters(read_encounters(path))
    problems = report.problems
    assert set(problems["column"]) == {column}, problems
    assert problems["row"].tolist() == list(range(1, N_ROWS + 1))
    assert all(len(v) <= 60 for v in problems["value"].dropna())


def test_true_is_not_read_as_one(tmp_path):
    # every value below would pass as 1 or 0 once converted to a number
    path = _parquet(
        tmp_path / "t.parquet",
        {
            "session_number": pa.array([True, True, True, True]),
            "attended_next": pa.array([True, False, True, False]),
            "empathy": pa.array([True, True, True, True]),
        },
    )
    report = validate_encounters(read_encounters(path))
    assert set(report.problems["column"]) == {"session_number", "attended_next", "empathy"}
    assert set(report.problems["value"]) == {"True", "False"}


def _sqlite(path, schema: str, rows: list[tuple]) -> str:
    with sqlite3.connect(path) as conn:
        conn.execute(f"CREATE TABLE encounters ({schema})")
        conn.executemany(f"INSERT INTO encounters VALUES ({', '.join('?' * len(rows[0]))})", rows)
    conn.close()
    return f"sqlite:///{path}"


SQL_SCHEMA = (
    "patient_id BLOB, encounter_id TEXT, session_number BOOLEAN, treatment TEXT, empathy BLOB"
)
SQL_ROWS = [
    (b"P001", "E1", 1, "cbt_online", b"4"),
    (b"P001", "E2", 0, "cbt_online", 3.5),
]


@pytest.mark.parametrize("how", ["table", "query"])
def test_wrong_types_from_sqlite_name_the_column(tmp_path, how):
    url = _sqlite(tmp_path / "s.db", SQL_SCHEMA, SQL_ROWS)
    options = {"table": "encounters"} if how == "table" else {"query": "SELECT * FROM encounters"}
    report = validate_encounters(read_encounters(url, **options))
    found = {(r.row, r.column) for r in report.problems.itertuples()}
    # the BLOB ids and the BLOB rating on both rows; a BOOLEAN session number read
    # through the table's declared type is true/false, through a query the stored 1/0
    expected = {(1, "patient_id"), (2, "patient_id"), (1, "empathy")}
    expected |= {(1, "session_number"), (2, "session_number")} if how == "table" else set()
    expected |= {(2, "session_number")} if how == "query" else set()  # 0 is below 1
    assert found == expected, report.problems


def test_validate_on_the_command_line_names_the_column(tmp_path):
    url = _sqlite(tmp_path / "s.db", SQL_SCHEMA, SQL_ROWS)
    result = run("validate", url, "--table", "encounters", cwd=tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert_no_traceback(result)
    assert "patient_id" in result.stdout and "not true/false, a list" in result.stdout


def test_a_column_selected_twice_is_refused_not_an_internal_error(tmp_path):
    url = _sqlite(tmp_path / "s.db", SQL_SCHEMA, SQL_ROWS)
    query = "SELECT patient_id, patient_id, encounter_id, session_number, treatment FROM encounters"
    with pytest.raises(DataReadError, match=r"column 'patient_id' appears more than once"):
        validate_encounters(read_encounters(url, query=query))


# ------------------------------------------------------------------ property test

_TYPES = {
    "bool": (pa.bool_(), st.booleans()),
    "int64": (pa.int64(), st.integers(-(2**63), 2**63 - 1)),
    "uint64": (pa.uint64(), st.integers(0, 2**64 - 1)),
    "float64": (pa.float64(), st.floats()),
    "float16": (pa.float16(), st.sampled_from([1.0, 4.0, float("inf"), float("nan")])),
    "list": (pa.list_(pa.int64()), st.lists(st.integers(-5, 5), max_size=3)),
    "struct": (pa.struct([("a", pa.int64())]), st.fixed_dictionaries({"a": st.integers(-5, 5)})),
    "binary": (pa.binary(), st.binary(max_size=8)),
    "string": (pa.string(), st.text(max_size=12)),
    "decimal": (
        pa.decimal128(38, 2),
        st.decimals(-(10**30), 10**30, places=2, allow_nan=False, allow_infinity=False),
    ),
    "date": (pa.date32(), st.dates()),
    "timestamp": (pa.timestamp("us"), st.datetimes()),
    "duration": (pa.duration("s"), st.timedeltas(dt.timedelta(0), dt.timedelta(days=999))),
    "null": (pa.null(), st.none()),
}


@st.composite
def _typed_tables(draw) -> pa.Table:
    base = valid_encounter_rows(2, 2)
    retyped = draw(st.lists(st.sampled_from(COLUMNS), min_size=1, max_size=4, unique=True))
    arrays = []
    for column in COLUMNS:
        if column in retyped:
            arrow_type, values = _TYPES[draw(st.sampled_from(sorted(_TYPES)))]
            cells = draw(st.lists(values | st.none(), min_size=N_ROWS, max_size=N_ROWS))
            arrays.append(pa.array(cells, arrow_type))
        else:
            arrays.append(pa.array(base[column].tolist(), pa.string()))
    return pa.Table.from_arrays(arrays, names=list(COLUMNS))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(table=_typed_tables())
def test_any_typed_parquet_gives_a_report_or_one_clear_error(tmp_path_factory, table):
    path = tmp_path_factory.mktemp("typed") / "t.parquet"
    pq.write_table(table, path)
    try:
        report = validate_encounters(read_encounters(path))
    except (DataReadError, ContractError) as e:
        assert len(str(e)) < 1000
        return
    assert report.n_rows == N_ROWS
    assert set(report.problems["column"]) <= set(COLUMNS)
    assert all(len(v) <= 60 for v in report.problems["value"].dropna())
