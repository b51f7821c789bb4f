"""Tests of engagekit.io: reading encounter tables from every supported source, refusing
what cannot be read with one clear message, and writing result tables."""

from __future__ import annotations

import gzip
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from _factories import COLUMNS, read_raw_csv, valid_encounter_rows, with_cell, write_csv
from engagekit import (
    DataReadError,
    OutputError,
    read_encounters,
    validate_encounters,
    write_table,
)
from engagekit.io import is_database_url


def _table_with_problems() -> pd.DataFrame:
    """A 12-row table with problems, missing values and awkward text in several rows."""
    table = valid_encounter_rows(4, 3, seed=5)
    for row, column, value in [
        (1, "treatment", "yoga"),
        (2, "empathy", "6"),
        (3, "empathy", None),
        (4, "session_number", "1.5"),
        (6, "encounter_id", "E002-1"),
        (7, "attended_next", None),
        (8, "adherent", "yes"),
        (9, "encounter_date", "03/02/2025"),
        (10, "patient_id", "007"),
        (11, "gender", "a, b"),  # a comma inside a quoted CSV cell
    ]:
        table = with_cell(table, row, column, value)
    return table


def _sqlite(path: Path, frame: pd.DataFrame, table: str) -> str:
    engine = sa.create_engine(f"sqlite:///{path}")
    try:
        frame.to_sql(table, engine, index=False)
    finally:
        engine.dispose()
    return f"sqlite:///{path}"


def _write_csv(tmp: Path, frame: pd.DataFrame):
    return write_csv(frame, tmp / "t.csv"), {}


def _write_csv_gz(tmp: Path, frame: pd.DataFrame):
    path = tmp / "t.csv.gz"
    with gzip.open(path, "wt", encoding="utf-8", newline="") as fh:
        frame.to_csv(fh, index=False)
    return path, {}


def _write_tsv(tmp: Path, frame: pd.DataFrame):
    return write_csv(frame, tmp / "t.tsv", sep="\t"), {}


def _write_csv_with_bom(tmp: Path, frame: pd.DataFrame):
    path = tmp / "t.csv"
    frame.to_csv(path, index=False, encoding="utf-8-sig")  # as Excel saves "CSV UTF-8"
    return path, {}


def _write_parquet(tmp: Path, frame: pd.DataFrame):
    path = tmp / "t.parquet"
    frame.to_parquet(path, index=False)
    return path, {}


def _write_sqlite_default(tmp: Path, frame: pd.DataFrame):
    return _sqlite(tmp / "s.db", frame, "encounters"), {}


def _write_sqlite_table(tmp: Path, frame: pd.DataFrame):
    return _sqlite(tmp / "s.db", frame, "visits"), {"table": "visits"}


def _write_sqlite_query(tmp: Path, frame: pd.DataFrame):
    url = _sqlite(tmp / "s.db", frame, "visits")
    return url, {"query": "SELECT * FROM visits ORDER BY rowid"}


SOURCES = {
    "csv": _write_csv,
    "csv.gz": _write_csv_gz,
    "tsv": _write_tsv,
    "csv-with-bom": _write_csv_with_bom,
    "parquet": _write_parquet,
    "sqlite-default-table": _write_sqlite_default,
    "sqlite-table": _write_sqlite_table,
    "sqlite-query": _write_sqlite_query,
}


@pytest.mark.parametrize("kind", list(SOURCES))
def test_every_source_gives_the_same_table_and_validation(tmp_path, kind):
    table = _table_with_problems()
    source, options = SOURCES[kind](tmp_path, table)
    read = read_encounters(source, **options)

    assert list(read.columns) == list(COLUMNS)
    assert len(read) == 12
    assert read.index.tolist() == list(range(12))
    # cells as written: leading zeros kept, missing cells missing
    assert read.at[9, "patient_id"] == "007"
    assert read.at[10, "gender"] == "a, b"
    assert pd.isna(read.at[2, "empathy"])
    assert read.at[1, "empathy"] == "6"
    # and the same problems as the hand-checked CSV reading
    expected = validate_encounters(read_encounters(write_csv(table, tmp_path / "ref.csv")))
    got = validate_encounters(read)
    pd.testing.assert_frame_equal(got.problems, expected.problems)
    assert list(zip(got.problems["row"], got.problems["column"], strict=True)) == [
        (1, "treatment"),
        (2, "empathy"),
        (4, "encounter_id"),
        (4, "session_number"),
        (6, "encounter_id"),
        (8, "adherent"),
        (9, "encounter_date"),
    ]


def test_na_is_a_missing_value_but_other_text_is_kept(tmp_path):
    path = tmp_path / "t.csv"
    table = valid_encounter_rows(1, 3)
    table.loc[0, "empathy"] = "NA"
    table.loc[1, "empathy"] = "n/a"
    table.loc[2, "gender"] = "None"
    write_csv(table, path)
    read = read_encounters(path)
    assert pd.isna(read.at[0, "empathy"])
    assert read.at[1, "empathy"] == "n/a"
    assert read.at[2, "gender"] == "None"
    problems = validate_encounters(read).problems
    assert problems[["row", "column", "value"]].values.tolist() == [[2, "empathy", "n/a"]]


def test_typed_parquet_gives_the_same_problems_as_text(tmp_path):
    text = valid_encounter_rows(3, 3)
    typed = pd.DataFrame(
        {
            "patient_id": text["patient_id"],
            "encounter_id": text["encounter_id"],
            "session_number": text["session_number"].astype(float),
            "encounter_date": pd.to_datetime(text["encounter_date"]),
            "treatment": text["treatment"],
            "empathy": text["empathy"].astype(float),
            "adherent": pd.array(text["adherent"].astype(int), dtype="Int8"),
        }
    )
    broken = [(2, "session_number", 1.5), (4, "empathy", 6.0), (6, "adherent", 2)]
    for row, column, value in broken:
        typed.loc[row - 1, column] = value
    typed.loc[8, "encounter_date"] = pd.Timestamp("2024-12-31")
    typed.to_parquet(tmp_path / "t.parquet")
    read = read_encounters(tmp_path / "t.parquet")
    assert read["session_number"].dtype == np.float64
    found = validate_encounters(read).problems
    assert list(zip(found["row"], found["column"], found["check"], strict=True)) == [
        (2, "session_number", "whole_number"),
        (4, "empathy", "bounds"),
        (6, "adherent", "allowed_values"),
        (9, "encounter_date", "non_decreasing_encounter_date"),
    ]


def test_a_file_named_otherwise_is_sniffed(tmp_path):
    table = valid_encounter_rows(2, 2)
    write_csv(table, tmp_path / "export.dat")
    table.to_parquet(tmp_path / "export.bin")
    assert read_encounters(tmp_path / "export.dat")["encounter_id"].tolist() == [
        "E001-1",
        "E001-2",
        "E002-1",
        "E002-2",
    ]
    assert read_encounters(str(tmp_path / "export.bin"))["session_number"].tolist() == list("1212")


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("sqlite:///service.db", True),
        ("postgresql://user@host/db", True),
        ("service.db", False),
        ("data/encounters.csv", False),
        (Path("sqlite:/x"), False),
    ],
)
def test_is_database_url(source, expected):
    assert is_database_url(source) is expected


# --------------------------------------------------------------------------- refusals


def _lines(tmp: Path) -> list[str]:
    return write_csv(valid_encounter_rows(2, 3), tmp / "ok.csv").read_text().splitlines()


def _save(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _missing(tmp: Path):
    return tmp / "nope.csv", {}


def _folder(tmp: Path):
    return tmp, {}


def _empty(tmp: Path):
    (tmp / "e.csv").write_bytes(b"")
    return tmp / "e.csv", {}


def _header_only(tmp: Path):
    return _save(tmp / "h.csv", _lines(tmp)[:1]), {}


def _binary(tmp: Path):
    (tmp / "b.csv").write_bytes(b"PK\x03\x04\x00\x00\x08\x00" * 200)
    return tmp / "b.csv", {}


def _latin1(tmp: Path):
    text = "\n".join(_lines(tmp)).replace("P002", "Pé02") + "\n"
    (tmp / "l.csv").write_bytes(text.encode("latin-1"))
    return tmp / "l.csv", {}


def _ragged(tmp: Path, line: int):
    lines = _lines(tmp)
    lines[line] += ",surplus"
    return _save(tmp / "r.csv", lines), {}


def _duplicated_header(tmp: Path):
    lines = _lines(tmp)
    lines[0] = lines[0].replace("gender", "empathy")
    return _save(tmp / "d.csv", lines), {}


def _unnamed_header(tmp: Path):
    lines = _lines(tmp)
    lines[0] = lines[0].replace("gender", "")
    return _save(tmp / "u.csv", lines), {}


def _corrupt_parquet(tmp: Path):
    valid_encounter_rows(2, 2).to_parquet(tmp / "c.parquet")
    data = (tmp / "c.parquet").read_bytes()
    (tmp / "c.parquet").write_bytes(data[: len(data) // 2])
    return tmp / "c.parquet", {}


def _sqlite_without_table(tmp: Path):
    return _sqlite(tmp / "s.db", valid_encounter_rows(1, 1), "visits"), {}


def _sqlite_named_table_absent(tmp: Path):
    return _sqlite(tmp / "s.db", valid_encounter_rows(1, 1), "visits"), {"table": "sessions"}


def _sqlite_bad_query(tmp: Path):
    url = _sqlite(tmp / "s.db", valid_encounter_rows(1, 1), "visits")
    return url, {"query": "SELECT * FROM sessions"}


def _bad_url(tmp: Path):
    return "nosuchdb://host/service", {}


def _table_and_query(tmp: Path):
    url = _sqlite(tmp / "s.db", valid_encounter_rows(1, 1), "visits")
    return url, {"table": "visits", "query": "SELECT * FROM visits"}


def _table_for_a_file(tmp: Path):
    return write_csv(valid_encounter_rows(1, 1), tmp / "t.csv"), {"table": "visits"}


def _gzip_that_is_not(tmp: Path):
    _save(tmp / "t.csv.gz", _lines(tmp))
    return tmp / "t.csv.gz", {}


UNREADABLE: dict[str, tuple[Callable, str]] = {
    "missing file": (_missing, "does not exist"),
    "folder": (_folder, "is a folder, not a data file"),
    "empty file": (_empty, "is empty"),
    "header only": (_header_only, "has a header but no data rows"),
    "binary": (_binary, "looks like a binary file"),
    "latin-1 as utf-8": (_latin1, "is not utf-8 text"),
    "ragged row": (lambda t: _ragged(t, 3), "not a well-formed CSV"),
    "ragged first data row": (lambda t: _ragged(t, 1), "not a well-formed CSV"),
    "duplicated header": (_duplicated_header, "column 'empathy' appears more than once"),
    "unnamed header": (_unnamed_header, "header column 15 has no name"),
    "corrupt parquet": (_corrupt_parquet, "cannot be read as Parquet"),
    "gzip that is not": (_gzip_that_is_not, "cannot be read as CSV"),
    "sqlite without the table": (_sqlite_without_table, "has no table 'encounters'"),
    "sqlite --table absent": (_sqlite_named_table_absent, "has no table 'sessions'"),
    "sqlite bad --query": (_sqlite_bad_query, "sessions"),
    "bad url": (_bad_url, "is not a database URL"),
    "table and query": (_table_and_query, "either --table or --query, not both"),
    "table for a file": (_table_for_a_file, "are for database URLs"),
}


@pytest.mark.parametrize("case", list(UNREADABLE))
def test_unreadable_input_is_one_clear_error_naming_the_file(tmp_path, case):
    make, problem = UNREADABLE[case]
    source, options = make(tmp_path)
    with pytest.raises(DataReadError, match=problem) as info:
        read_encounters(source, **options)
    message = str(info.value)
    assert str(source) in message
    assert "\n" not in message.strip()


def test_a_missing_sqlite_file_is_refused_not_created(tmp_path):
    path = tmp_path / "typo.db"
    with pytest.raises(DataReadError, match=r"typo\.db"):
        read_encounters(f"sqlite:///{path}")
    assert not path.exists()


def test_a_required_column_missing_names_the_columns(tmp_path):
    path = write_csv(valid_encounter_rows(2, 2).drop(columns=["encounter_id"]), tmp_path / "t.csv")
    with pytest.raises(DataReadError, match=r"required column\(s\) 'encounter_id' missing"):
        validate_encounters(read_encounters(path))


# --------------------------------------------------------------------------- writing


def test_write_table_csv_has_iso_dates_and_empty_missing_cells(tmp_path):
    frame = pd.DataFrame(
        {
            "encounter_date": pd.to_datetime(["2025-01-06", "2025-02-01"]),
            "empathy": [4.5, np.nan],
            "attended_next": pd.array([1, None], dtype="Int8"),
            "patient_id": ["007", None],
        }
    )
    path = write_table(frame, tmp_path / "new" / "folder" / "out.csv")
    assert path == tmp_path / "new" / "folder" / "out.csv"
    assert path.read_text().splitlines() == [
        "encounter_date,empathy,attended_next,patient_id",
        "2025-01-06,4.5,1,007",
        "2025-02-01,,,",
    ]


@pytest.mark.parametrize("suffix", [".parquet", ".pq"])
def test_write_table_parquet_keeps_types(tmp_path, suffix):
    frame = pd.DataFrame(
        {
            "session_number": np.array([1, 2], dtype="int64"),
            "adherent": pd.array([1, None], dtype="Int8"),
            "encounter_date": pd.to_datetime(["2025-01-06", "2025-02-01"]),
        }
    )
    back = pd.read_parquet(write_table(frame, tmp_path / f"out{suffix}"))
    assert back["session_number"].tolist() == [1, 2]
    assert str(back["adherent"].dtype) == "Int8"
    assert back["adherent"].isna().tolist() == [False, True]
    assert back["encounter_date"].tolist() == [
        pd.Timestamp("2025-01-06"),
        pd.Timestamp("2025-02-01"),
    ]


def test_a_raw_table_round_trips_through_csv(tmp_path):
    table = _table_with_problems()
    path = write_table(read_encounters(write_csv(table, tmp_path / "in.csv")), tmp_path / "out.csv")
    assert read_raw_csv(path).equals(read_raw_csv(tmp_path / "in.csv"))


@pytest.mark.parametrize(
    "where",
    [
        lambda tmp: tmp,  # a folder
        lambda tmp: tmp / "a_file.txt" / "out.csv",  # inside a file
        lambda tmp: tmp / "a_file.txt" / "sub" / "out.csv",  # a folder under a file
    ],
    ids=["folder", "inside-a-file", "folder-under-a-file"],
)
def test_an_unwritable_path_is_an_output_error(tmp_path, where):
    (tmp_path / "a_file.txt").write_text("x")
    path = where(tmp_path)
    with pytest.raises(OutputError, match="cannot write") as info:
        write_table(pd.DataFrame({"a": [1]}), path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize("name", ["out.csv", "out.csv.gz", "out.parquet", "out.json", "out.md"])
def test_a_write_that_fails_halfway_leaves_the_final_name_as_it_was(tmp_path, monkeypatch, name):
    from engagekit.io import _write as write_module

    frame = valid_encounter_rows(2, 2)
    target = tmp_path / name
    target.write_text("the previous complete file")

    def fail_halfway(partial: Path) -> None:
        partial.write_text("half a fi")
        raise OSError(28, "No space left on device")

    original = write_module._write
    monkeypatch.setattr(write_module, "_write", lambda path, _write: original(path, fail_halfway))
    writers = {
        ".json": lambda: write_module.write_json({"a": 1}, target),
        ".md": lambda: write_module.write_text("text", target),
    }
    with pytest.raises(OutputError, match="No space left on device"):
        writers.get(target.suffix, lambda: write_module.write_table(frame, target))()
    assert target.read_text() == "the previous complete file"
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]  # no partial file left


def test_formula_cells_are_escaped_in_text_only_and_the_frame_is_left_as_it_was():
    from engagekit.io._write import escape_formula_cells

    frame = pd.DataFrame(
        {
            "mixed": pd.Series(["=1+2", -5, None, "-x"], dtype=object),
            "category": pd.Categorical(["@a", "b", "@a", "-1"]),
            "number": [-1.5, 2.0, 3.0, -4.0],
            "=name": ["a", "b", "c", "d"],
        }
    )
    escaped = escape_formula_cells(frame)
    assert escaped["mixed"].tolist() == ["'=1+2", -5, None, "'-x"]
    assert escaped["category"].tolist() == ["'@a", "b", "'@a", "-1"]
    assert escaped["number"].tolist() == [-1.5, 2.0, 3.0, -4.0]
    assert list(escaped.columns) == ["mixed", "category", "number", "'=name"]
    assert frame["mixed"].iloc[0] == "=1+2" and "=name" in frame.columns


def test_a_cell_holding_a_carriage_return_is_quoted_so_the_rows_stay_whole(tmp_path):
    frame = pd.DataFrame({"patient_id": ["P1\rP2", "P3"], "risk": [0.5, 0.25]})
    path = write_table(frame, tmp_path / "out.csv", escape_formulas=False)
    back = pd.read_csv(path, dtype=str, keep_default_na=False)
    assert back["patient_id"].tolist() == ["P1\rP2", "P3"]
    assert back["risk"].tolist() == ["0.5", "0.25"]


def test_the_temporary_file_of_a_killed_writer_is_deleted_by_the_next_write(tmp_path):
    """A writer killed halfway (kill -9) leaves its temporary file; the next write of the
    same name deletes it, but never that of a writer still at work."""
    from engagekit.io._write import write_text

    target = tmp_path / "report.html"
    writer = subprocess.Popen(
        [sys.executable, "-c", _HALF_A_WRITE, str(target)], stdout=subprocess.PIPE, text=True
    )
    try:
        partial = Path(writer.stdout.readline().strip())
        assert partial.parent == tmp_path and partial.read_text() == "half"
        write_text("complete", target)  # the writer is alive: its file is kept
        assert partial.exists() and target.read_text() == "complete"
    finally:
        writer.kill()
        writer.communicate()
    write_text("again", target)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.html"]
    assert target.read_text() == "again"


# writes half a file under its temporary name, says which, and waits to be killed
_HALF_A_WRITE = """
import sys, time
from engagekit.io._write import atomic_path
with atomic_path(sys.argv[1]) as partial:
    partial.write_text("half")
    print(partial, flush=True)
    time.sleep(120)
"""


def test_writes_round_trip_through_their_temporary_name(tmp_path):
    frame = valid_encounter_rows(2, 2)
    for name in ("t.csv", "t.csv.gz", "t.parquet"):
        written = write_table(frame, tmp_path / name)
        back = (
            pd.read_parquet(written)
            if name.endswith("parquet")
            else pd.read_csv(written, dtype=str)
        )
        assert len(back) == len(frame) and list(back.columns) == list(frame.columns)
    assert gzip.open(tmp_path / "t.csv.gz").read(10)  # really gzip-compressed
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.csv", "t.csv.gz", "t.parquet"]
