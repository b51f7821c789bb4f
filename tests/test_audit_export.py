"""``engagekit audit export`` and :mod:`engagekit.web`'s audit log: rows written one at
a time, read back in time order with every column, from a day on; on SQLite and
PostgreSQL. (That the log refuses edits is tested in test_db.py.)"""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest
import sqlalchemy as sa

from _cli import assert_no_traceback, run
from engagekit.db import AUDIT_LOG, upgrade_database
from engagekit.web import AUDIT_COLUMNS, export_audit, record_audit

# written out of time order, so that the export's order is the times', not the keys'
ROWS = [
    {"at": "2026-02-01T09:00:00.000000+00:00", "username": "ana", "role": "clinician",
     "action": "view", "route": "/patients/{patient_id}", "patient_id": "P002",
     "allowed": True, "detail": None},
    {"at": "2026-01-01T23:59:59.999999+00:00", "username": "mo", "role": "team_lead",
     "action": "view", "route": "/patients/{patient_id}", "patient_id": "P001",
     "allowed": False, "detail": "not in the team's caseload"},
    {"at": "2026-01-02T00:00:00.000000+00:00", "username": "cli", "role": "admin",
     "action": "user_change", "route": "cli:users add", "patient_id": None,
     "allowed": True, "detail": 'added user "kim", a note;\nwith a comma, a quote and a line'},
    {"at": "2026-01-15T10:30:00.000000+00:00", "username": "kim", "role": "analyst",
     "action": "flag_review", "route": "/flags/{encounter_id}", "patient_id": "=P003",
     "allowed": True, "detail": "=HYPERLINK(\"http://example.com\")"},
]  # fmt: skip
IN_TIME_ORDER = sorted(ROWS, key=lambda row: row["at"])


@pytest.fixture
def audited(database_url) -> str:
    """The URL of a database whose audit log holds :data:`ROWS`."""
    engine = sa.create_engine(database_url)
    upgrade_database(engine)
    with engine.begin() as connection:
        for row in ROWS:
            connection.execute(AUDIT_LOG.insert(), row)
    engine.dispose()
    return database_url


def _expected(rows: list[dict]) -> list[dict]:
    return [{**row, "detail": row["detail"] or ""} for row in rows]


def _read_csv(path) -> list[dict]:
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    assert list(frame.columns) == list(AUDIT_COLUMNS)
    frame["allowed"] = frame["allowed"].map({"True": True, "False": False})
    return frame.drop(columns="audit_id").to_dict("records")


def test_export_writes_every_column_in_time_order_from_a_day_on(audited, tmp_path):
    result = run(
        "audit", "export", "--db", audited, "--since", "2026-01-02", "--out", "log.csv",
        "--no-escape-formulas", cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "Exported 3 audit log rows from 2026-01-02 on to 'log.csv'" in result.stdout
    expected = [row for row in IN_TIME_ORDER if row["at"] >= "2026-01-02"]
    assert _read_csv(tmp_path / "log.csv") == [
        {**row, "patient_id": row["patient_id"] or ""} for row in _expected(expected)
    ]


def test_export_without_since_writes_the_whole_log_to_parquet(audited, tmp_path):
    result = run("audit", "export", "--db", audited, "--out", "log.parquet", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    frame = pd.read_parquet(tmp_path / "log.parquet")
    assert list(frame.columns) == list(AUDIT_COLUMNS)
    assert frame["at"].tolist() == [row["at"] for row in IN_TIME_ORDER]
    assert frame["audit_id"].tolist() == [2, 3, 4, 1]
    # Parquet keeps the raw values: a formula-like cell is not escaped
    records = frame.drop(columns="audit_id").astype(object).where(frame.notna(), None)
    assert records.to_dict("records") == IN_TIME_ORDER


def test_a_csv_export_escapes_formulas_by_default(audited, tmp_path):
    result = run("audit", "export", "--db", audited, "--out", "log.csv", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    rows = _read_csv(tmp_path / "log.csv")
    flagged = next(row for row in rows if row["username"] == "kim")
    assert flagged["patient_id"] == "'=P003"
    assert flagged["detail"].startswith("'=HYPERLINK")


def test_record_audit_appends_one_row_now_and_export_audit_filters_by_day(database_url):
    engine = sa.create_engine(database_url)
    upgrade_database(engine)
    before = dt.datetime.now(dt.UTC)
    with engine.begin() as connection:
        record_audit(
            connection, username="ana", role="clinician", action="view",
            route="/patients/{patient_id}", patient_id="P001", allowed=False,
        )  # fmt: skip
    log = export_audit(engine)
    today = export_audit(engine, since=before.date())
    tomorrow = export_audit(engine, since=before.date() + dt.timedelta(days=1))
    engine.dispose()
    assert len(log) == 1 and len(today) == 1 and tomorrow.empty
    assert list(tomorrow.columns) == list(AUDIT_COLUMNS)
    row = log.iloc[0]
    assert (row["username"], row["patient_id"], bool(row["allowed"])) == ("ana", "P001", False)
    assert pd.isna(row["detail"])
    at = dt.datetime.fromisoformat(row["at"])
    assert at.utcoffset() == dt.timedelta(0)
    assert before <= at <= dt.datetime.now(dt.UTC)


def test_a_rolled_back_transaction_leaves_no_audit_row(database_url):
    engine = sa.create_engine(database_url)
    upgrade_database(engine)
    with pytest.raises(RuntimeError), engine.begin() as connection:
        record_audit(
            connection, username="ana", role="clinician", action="view",
            route="/patients/{patient_id}", patient_id="P001", allowed=True,
        )  # fmt: skip
        raise RuntimeError("what the row recorded failed")
    assert export_audit(engine).empty
    engine.dispose()


@pytest.mark.parametrize("since", ["01/02/2026", "2026-02-30", "yesterday"])
def test_a_bad_since_is_refused_naming_the_option(tmp_path, since):
    url = f"sqlite:///{tmp_path / 'engagekit.db'}"
    upgrade_database(engine := sa.create_engine(url))
    engine.dispose()
    result = run("audit", "export", "--db", url, "--since", since, "--out", "x.csv", cwd=tmp_path)
    assert result.returncode == 2
    assert_no_traceback(result)
    assert "--since" in result.stderr
    assert not (tmp_path / "x.csv").exists()


def test_a_database_without_the_log_is_refused_in_one_line(tmp_path):
    url = f"sqlite:///{tmp_path / 'service.db'}"
    sa.create_engine(url).connect().close()  # a database, without engagekit's tables
    for db, message in [
        (url, "has no engagekit tables, so no audit log"),
        ("sqlite:///missing.db", "the database file 'missing.db' does not exist"),
        ("postgresql+psycopg://ana:s3cret@127.0.0.1:9/x", "cannot read the audit log"),
    ]:
        result = run("audit", "export", "--db", db, "--out", "x.csv", cwd=tmp_path)
        assert result.returncode == 2, result.stderr
        assert_no_traceback(result)
        assert message in result.stderr and "s3cret" not in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "x.csv").exists()
    assert not (tmp_path / "missing.db").exists()
