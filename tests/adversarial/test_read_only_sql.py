"""Read-only SQL: no ``--query`` (and no ``--table`` read) can change a database.

``--query 'DROP TABLE other'`` once dropped the table and then reported a read error;
``ATTACH DATABASE`` created a file. Each statement below that writes is refused with exit
2, the database file is byte-identical afterwards and no file appears beside it. Behind
the statement check, the SQLite connection itself cannot write: that guard is tested on
its own by letting the statements through.
"""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import pytest

from _cli import assert_no_traceback, run
from _factories import valid_encounter_rows
from engagekit import read_encounters
from engagekit.errors import DataReadError
from engagekit.io import _read_only_sql
from engagekit.io._read_only_sql import begin_read_only, sqlite_read_only_connection

WRITING = {
    "drop": "DROP TABLE other",
    "drop, odd case and spaces": "  \n DrOp   TaBlE other  ",
    "delete": "DELETE FROM other",
    "update": "UPDATE other SET patient_id = 'x'",
    "insert": "INSERT INTO other (patient_id) VALUES ('x')",
    "replace": "REPLACE INTO other (patient_id) VALUES ('x')",
    "create table as": "CREATE TABLE copied AS SELECT * FROM encounters",
    "create temp table": "CREATE TEMP TABLE t (x)",
    "create view": "CREATE VIEW v AS SELECT 1",
    "alter": "ALTER TABLE other RENAME TO renamed",
    "attach": "ATTACH DATABASE 'attached.db' AS a",
    "attach a URI": "ATTACH DATABASE 'file:attached.db?mode=rwc' AS a",
    "detach": "DETACH DATABASE main",
    "pragma writable_schema": "PRAGMA writable_schema = ON",
    "pragma journal_mode": "PRAGMA journal_mode = WAL",
    "vacuum into": "VACUUM INTO 'copy.db'",
    "vacuum": "VACUUM",
    "reindex": "REINDEX",
    "analyze": "ANALYZE",
    "begin and drop": "BEGIN; DROP TABLE other; COMMIT",
    "a CTE that deletes": "WITH gone AS (DELETE FROM other RETURNING *) SELECT * FROM gone",
    "a CTE that inserts": "WITH n AS (INSERT INTO other (patient_id) VALUES ('x') RETURNING *) "
    "SELECT * FROM n",
    "select into": "SELECT * INTO copied FROM encounters",
    "select for update": "SELECT * FROM encounters FOR UPDATE",
    "two statements": "SELECT * FROM encounters; DROP TABLE other",
    "two statements, no spaces": "SELECT 1;DROP TABLE other;",
    "a statement after a comment line": "SELECT * FROM encounters -- read\n; DROP TABLE other",
    "a write hidden after a block comment": "/* SELECT */ DROP TABLE other",
    "a MySQL executable comment": "SELECT * FROM encounters /*! ; DROP TABLE other */",
    "a string closed early": (
        "SELECT * FROM encounters WHERE patient_id = ''; DROP TABLE other; --'"
    ),
    "a backslash that escapes nothing": "SELECT 'a\\'; DROP TABLE other; --'",
    "a quoted name then a statement": 'SELECT "a;b" FROM encounters; DROP TABLE other',
    "an unclosed quote": "SELECT * FROM encounters WHERE patient_id = 'x; DROP TABLE other",
    "an unclosed comment": "SELECT * FROM encounters /* DROP TABLE other",
    "empty": "   ",
    "only a comment": "-- SELECT * FROM encounters",
}

READING = {
    "select": "SELECT * FROM encounters",
    "with": "WITH e AS (SELECT * FROM encounters) SELECT * FROM e",
    "a trailing semicolon and comments": "/* all rows */ SELECT * FROM encounters; -- done",
    "a literal that looks like a write": (
        "SELECT * FROM encounters WHERE treatment <> 'x''; DROP TABLE other; --'"
    ),
    "a quoted name that is a keyword": 'SELECT *, 1 AS "update" FROM encounters',
    "a replace() call": "SELECT *, replace(patient_id, 'P', 'Q') AS other_id FROM encounters",
}


def _database(folder: Path) -> Path:
    path = folder / "service.db"
    with sqlite3.connect(path) as conn:
        table = valid_encounter_rows(3, 2)
        table.to_sql("encounters", conn, index=False)
        table.to_sql("other", conn, index=False)
    conn.close()
    return path


def _state(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.iterdir()}


@pytest.mark.parametrize("case", list(WRITING))
def test_a_query_that_writes_is_refused_and_changes_nothing(tmp_path, case):
    folder = tmp_path / "db"
    folder.mkdir()
    path = _database(folder)
    before = _state(folder)
    result = run("validate", f"sqlite:///{path}", "--query", WRITING[case], cwd=folder)
    assert result.returncode == 2, result.stdout + result.stderr
    assert_no_traceback(result)
    assert "--query must be one SELECT statement that only reads" in result.stderr
    assert _state(folder) == before


@pytest.mark.parametrize("case", list(READING))
def test_a_query_that_only_reads_still_works(tmp_path, case):
    path = _database(tmp_path)
    before = _state(tmp_path)
    result = run("validate", f"sqlite:///{path}", "--query", READING[case], cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert _state(tmp_path) == before


def test_a_table_read_changes_nothing(tmp_path):
    path = _database(tmp_path)
    before = _state(tmp_path)
    assert len(read_encounters(f"sqlite:///{path}", table="other")) == 6
    assert _state(tmp_path) == before


# --------------------------------------------- the second guard: the connection itself


# what SQLite itself reads as no statement, or as a plain SELECT (the DROP in a comment)
_NOTHING_TO_WRITE_IN_SQLITE = (
    "empty",
    "only a comment",
    "a MySQL executable comment",
    "an unclosed comment",
)


@pytest.mark.parametrize("case", [c for c in WRITING if c not in _NOTHING_TO_WRITE_IN_SQLITE])
def test_the_sqlite_connection_cannot_write_even_if_the_check_is_bypassed(
    tmp_path, monkeypatch, case
):
    folder = tmp_path / "db"
    folder.mkdir()
    path = _database(folder)
    before = _state(folder)
    monkeypatch.setattr(_read_only_sql, "check_single_select", lambda query: None)
    monkeypatch.chdir(folder)  # where ATTACH and VACUUM INTO would create their files
    with pytest.raises(DataReadError, match=r"cannot read from"):
        read_encounters(f"sqlite:///{path}", query=WRITING[case])
    assert _state(folder) == before


def test_the_read_only_connection_refuses_writes_directly(tmp_path, monkeypatch):
    path = _database(tmp_path)
    before = _state(tmp_path)
    monkeypatch.chdir(tmp_path)
    conn = sqlite_read_only_connection(str(path))
    try:
        for statement in ("DROP TABLE other", "ATTACH 'x.db' AS x", "VACUUM INTO 'y.db'"):
            with pytest.raises(sqlite3.DatabaseError):
                conn.execute(statement)
        assert conn.execute("SELECT count(*) FROM other").fetchone() == (6,)
    finally:
        conn.close()
    assert _state(tmp_path) == before


class _Recorder:
    """Stands in for a SQLAlchemy connection: records what it is asked to run."""

    def __init__(self, dialect: str) -> None:
        self.dialect = type("Dialect", (), {"name": dialect})()
        self.statements: list[str] = []

    def execute(self, statement) -> None:
        self.statements.append(str(statement))


@pytest.mark.parametrize(
    ("dialect", "expected"),
    [
        ("postgresql", ["SET TRANSACTION READ ONLY"]),
        ("mysql", ["SET TRANSACTION READ ONLY"]),
        ("sqlite", []),  # the connection is read-only itself
    ],
)
def test_a_server_database_reads_in_a_read_only_transaction(dialect, expected):
    conn = _Recorder(dialect)
    begin_read_only(conn)
    assert conn.statements == expected
