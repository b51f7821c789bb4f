"""``engagekit monitor`` records its result in the database it read (``monitor_results``,
made by migration 0002), unless told ``--no-record``; ``--out`` writes the result JSON.

Each test scores a small simulated service into an empty database (SQLite, and
PostgreSQL where one is given: ``_databases``) with ``engagekit score`` and monitors it,
the outcomes being the scored encounters' own.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from _cli import assert_no_traceback, run
from _factories import model_with_manifest, write_csv
from engagekit import load_config, simulate_encounters
from engagekit.db import HEAD, MONITOR_RESULTS, database_revision, upgrade_database
from engagekit.errors import OutputError
from engagekit.io._model_store import read_manifest, save_model
from engagekit.io._monitor_store import latest_monitor_result
from engagekit.io._results import read_monitor_result
from engagekit.monitoring import MonitorResult

CONFIG = load_config()
#: Few replicates: the recording is tested here, not the intervals.
N_BOOT = "20"


@pytest.fixture(scope="module")
def service(tmp_path_factory) -> Path:
    """A folder with ``model/`` (re-attendance, logistic) and ``encounters.csv``, a later
    export of the encounters it scores (their outcomes known)."""
    folder = tmp_path_factory.mktemp("record")
    training = simulate_encounters(400, seed=7, config=CONFIG).encounters
    model, manifest = model_with_manifest(training, "attended_next", "logistic", CONFIG, seed=1)
    save_model(model, folder / "model", manifest)
    write_csv(
        simulate_encounters(300, seed=11, config=CONFIG).encounters, folder / "encounters.csv"
    )
    return folder


@pytest.fixture
def scored(service, database_url) -> str:
    """The database URL, once ``engagekit score`` has written the service's scores there."""
    done = run(
        "score", "model", "encounters.csv", "--out", "scores.csv", "--db", database_url,
        cwd=service,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return database_url


def monitor(service: Path, url: str, *extra: str):
    return run(
        "monitor", "model", "--db", url, "--outcomes", "encounters.csv", "--n-boot", N_BOOT,
        *extra, cwd=service,
    )  # fmt: skip


def model_sha256(service: Path) -> str:
    sha = read_manifest(service / "model").model_sha256
    assert sha is not None
    return sha


def rows(url: str) -> list[dict]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            if not sa.inspect(connection).has_table(MONITOR_RESULTS.name):
                return []
            query = sa.select(MONITOR_RESULTS).order_by(MONITOR_RESULTS.c.monitor_id)
            return [dict(r) for r in connection.execute(query).mappings()]
    finally:
        engine.dispose()


def downgrade_to_0001(url: str) -> None:
    """The database as an engagekit before monitor_results left it."""
    from alembic import command

    from engagekit.db._migrate import _alembic_config

    engine = sa.create_engine(url)
    try:
        with engine.begin() as connection:
            command.downgrade(_alembic_config(connection), "0001")
        assert database_revision(engine) == "0001"
    finally:
        engine.dispose()


def revision(url: str) -> str | None:
    """The database's revision, having checked that ``monitor_results`` is there exactly
    when the revision is 0002."""
    engine = sa.create_engine(url)
    try:
        found = database_revision(engine)
        assert sa.inspect(engine).has_table(MONITOR_RESULTS.name) == (found == "0002")
        return found
    finally:
        engine.dispose()


def test_the_latest_result_read_back_is_the_one_printed(service, scored):
    printed = monitor(service, scored, "--json")
    assert printed.returncode == 0, printed.stderr
    result = MonitorResult.from_dict(json.loads(printed.stdout))
    [row] = rows(scored)
    assert "Recorded as monitoring result" in printed.stderr  # stdout holds the JSON only
    assert (row["model_sha256"], row["scores_table"], row["target"], row["window"]) == (
        model_sha256(service),
        "scores",
        "attended_next",
        "month",
    )
    created = datetime.fromisoformat(row["created_at"])
    assert created.utcoffset().total_seconds() == 0
    assert abs((datetime.now(UTC) - created).total_seconds()) < 600
    engine = sa.create_engine(scored)
    try:
        latest = latest_monitor_result(engine, model_sha256=model_sha256(service))
        assert latest is not None and latest.monitor_id == row["monitor_id"]
        assert latest.result == result
        assert latest_monitor_result(engine, model_sha256="e" * 64) is None

        # a second run, by quarter: the latest is now that one, the first is kept
        again = monitor(service, scored, "--window", "quarter")
        assert again.returncode == 0, again.stderr
        assert "Recorded as monitoring result" in " ".join(again.stdout.split())
        newest = latest_monitor_result(engine, model_sha256=model_sha256(service))
        assert newest is not None and newest.monitor_id > latest.monitor_id
        assert newest.result.window.value == "quarter"
        assert [r["window"] for r in rows(scored)] == ["month", "quarter"]
    finally:
        engine.dispose()


def _sqlite_digest(url: str) -> str | None:
    parsed = sa.make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return None
    return hashlib.sha256(Path(parsed.database).read_bytes()).hexdigest()


def test_no_record_writes_nothing(service, scored):
    before = _sqlite_digest(scored)
    done = monitor(service, scored, "--no-record")
    assert done.returncode == 0, done.stderr
    assert "Recorded" not in done.stdout + done.stderr
    assert rows(scored) == []
    assert _sqlite_digest(scored) == before  # not a byte of the file changed


def test_an_older_database_is_upgraded_before_the_insert_and_only_then(service, scored):
    downgrade_to_0001(scored)
    assert revision(scored) == "0001"
    # reading stays read-only: a run that does not record upgrades nothing
    assert monitor(service, scored, "--no-record").returncode == 0
    assert revision(scored) == "0001"
    done = monitor(service, scored)
    assert done.returncode == 0, done.stderr
    assert revision(scored) == HEAD
    assert len(rows(scored)) == 1


def test_the_migration_creates_the_table_and_its_downgrade_drops_it(database_url):
    engine = sa.create_engine(database_url)
    try:
        assert upgrade_database(engine) == HEAD == "0002"
        columns = [c["name"] for c in sa.inspect(engine).get_columns("monitor_results")]
        assert columns == [
            "monitor_id",
            "model_sha256",
            "scores_table",
            "target",
            "window",
            "created_at",
            "result",
        ]
        indexes = sa.inspect(engine).get_indexes("monitor_results")
        assert [i["column_names"] for i in indexes] == [["model_sha256"]]
    finally:
        engine.dispose()
    downgrade_to_0001(database_url)
    assert rows(database_url) == []
    engine = sa.create_engine(database_url)
    try:
        assert not sa.inspect(engine).has_table("monitor_results")
        assert sa.inspect(engine).has_table("score_runs")  # 0001's tables stay
        assert upgrade_database(engine) == HEAD
        assert sa.inspect(engine).has_table("monitor_results")
    finally:
        engine.dispose()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_out_writes_the_result_json_as_printed(service, scored, tmp_path):
    out = tmp_path / "results" / "monitoring.json"
    done = monitor(service, scored, "--json", "--no-record", "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert json.loads(out.read_text(encoding="utf-8")) == json.loads(done.stdout)
    assert read_monitor_result(out) == MonitorResult.from_dict(json.loads(done.stdout))
    assert f"Result written to {str(out)!r}" in " ".join(done.stderr.split())


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_database_that_cannot_be_written_says_how_to_do_without(service, scored, monkeypatch):
    """The upgrade is refused (as for a user who may only read): the command stops at
    once, before monitoring, and names --no-record."""

    def refused(engine):
        raise OutputError(
            "cannot create or upgrade engagekit's tables in the database: "
            "OperationalError: attempt to write a readonly database"
        )

    monkeypatch.setattr("engagekit.db.upgrade_database", refused)
    done = monitor(service, scored, "--out", "monitoring.json")
    assert done.returncode == 2
    assert_no_traceback(done)
    said = " ".join(done.stderr.split())
    assert "cannot record the monitoring result" in said and "pass --no-record" in said
    assert not (service / "monitoring.json").exists()
    assert rows(scored) == []
