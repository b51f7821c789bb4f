"""Bulk scoring to a database and a file (``engagekit.io._scores``): chunks, one
transaction each, resuming after a failure without duplicating a row; runs that
accumulate in one table, each recorded in ``score_runs``.

The tests that touch a database run on SQLite and on PostgreSQL (the ``database_url``
fixture); those about a SQLite file of their own (left behind or not) on SQLite only.
"""

from __future__ import annotations

import json
import math
import os
import socket
import subprocess
import sys
import time

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pytest
import sqlalchemy as sa

from _factories import model_with_manifest
from engagekit import load_config, simulate_encounters
from engagekit.db import METADATA, VERSION_TABLE
from engagekit.errors import ArgumentError, ContractError, OutputError, UntrustedModelError
from engagekit.flags import choose_flag_rule
from engagekit.io import _scores as scores_module
from engagekit.io._scores import _ScoreFile, _ScoreStore, default_database_url, write_scores
from engagekit.scoring import (
    encounter_flag_thresholds,
    patient_chunks,
    score_columns,
    score_encounters,
)

CONFIG = load_config()
CHUNK_ROWS = 300
#: engagekit's own tables, which the first run creates in a database (by its migrations)
ENGAGEKIT_TABLES = {*METADATA.tables, VERSION_TABLE}


@pytest.fixture(scope="module")
def service():
    """``(model, manifest, encounters)``: a logistic model with its flag rule."""
    encounters = simulate_encounters(300, seed=21, config=CONFIG).encounters
    model, manifest = model_with_manifest(encounters, "adherent", "logistic", CONFIG, seed=2)
    return model, manifest.model_copy(update={"model_sha256": "a" * 64}), encounters


@pytest.fixture(scope="module")
def weeks(service):
    """Two weekly exports of the same service: the first, up to a day, and the next,
    with the sessions since (the same encounters again, and new ones)."""
    _model, _manifest, encounters = service
    day = encounters["encounter_date"].quantile(0.7)
    first = encounters[encounters["encounter_date"] <= day].reset_index(drop=True)
    assert 0 < len(first) < len(encounters)
    return first, encounters


def _expected(service, encounters: pd.DataFrame) -> pd.DataFrame:
    """The scores of every encounter, chunk by chunk as bulk scoring computes them (the
    last bits of a float can depend on how many rows a matrix product had), flagged by
    the thresholds the rule sets on the whole table."""
    model, manifest, _encounters = service
    risk = 1.0 - model.predict_proba(encounters)
    applied = encounter_flag_thresholds(manifest.flag_rule, risk, encounters)
    chunks = patient_chunks(encounters["patient_id"], CHUNK_ROWS)
    parts = [score_encounters(model, encounters.iloc[rows], CONFIG, applied) for rows in chunks]
    return pd.concat(parts, ignore_index=True)


@pytest.fixture(scope="module")
def expected(service):
    return _expected(service, service[2])


def _read_file(out) -> pd.DataFrame:
    """A scores file as written: Arrow reads a CSV's doubles exactly and keeps an empty
    reason as "" (pandas' parser may miss a double's last bit); dates stay ISO text."""
    if out.name.endswith(".parquet"):
        return pd.read_parquet(out)
    types = pacsv.ConvertOptions(column_types={"encounter_date": pa.string()})
    return pacsv.read_csv(out, convert_options=types).to_pandas()


def _write(service, out, encounters=None, **kwargs):
    model, manifest, every = service
    table = every if encounters is None else encounters
    return write_scores(model, manifest, table, CONFIG, out, chunk_rows=CHUNK_ROWS, **kwargs)


def _query(url: str, sql: str) -> list[tuple]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return [tuple(row) for row in conn.execute(sa.text(sql))]
    finally:
        engine.dispose()


def _read_db(url: str, table: str = "scores") -> pd.DataFrame:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return pd.read_sql_table(table, conn)
    finally:
        engine.dispose()


def _tables(url: str) -> set[str]:
    engine = sa.create_engine(url)
    try:
        return set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()


def _runs(url: str) -> pd.DataFrame:
    """``score_runs``, by run_id."""
    return _read_db(url, "score_runs").set_index("run_id").sort_index()


def _run_rows(url: str, run_id: int, order: pd.Series) -> pd.DataFrame:
    """The score rows of run ``run_id`` in the order of the encounter ids ``order``,
    without ``run_id`` and ``score_chunk``, dates as ISO text."""
    rows = _read_db(url).query(f"run_id == {run_id}")
    assert rows["encounter_id"].is_unique
    rows = rows.set_index("encounter_id", drop=False).loc[order]
    rows["encounter_date"] = pd.to_datetime(rows["encounter_date"]).dt.strftime("%Y-%m-%d")
    return rows.drop(columns=["run_id", "score_chunk"]).reset_index(drop=True)


def _rows_per_run(url: str) -> dict[int, tuple[int, int]]:
    """Rows and distinct encounters of each run in the scores table."""
    counted = _query(
        url, "SELECT run_id, count(*), count(DISTINCT encounter_id) FROM scores GROUP BY run_id"
    )
    return {int(run): (int(n), int(distinct)) for run, n, distinct in counted}


def _fail_at_chunk(monkeypatch, number: int) -> None:
    """The ``number``-th chunk written gets half its rows in, then the run dies."""
    real_insert = _ScoreStore._insert
    calls = {"n": 0}

    def insert_then_fail(self, conn, frame):
        calls["n"] += 1
        if calls["n"] == number:
            real_insert(self, conn, frame.iloc[: len(frame) // 2])
            raise KeyboardInterrupt
        real_insert(self, conn, frame)

    monkeypatch.setattr(_ScoreStore, "_insert", insert_then_fail)


@pytest.mark.parametrize("name", ["scores.csv", "scores.csv.gz", "scores.parquet"])
def test_the_file_holds_every_encounter_once_with_exact_values(service, expected, tmp_path, name):
    out = tmp_path / name
    run = _write(service, out)
    assert run.n_rows == len(expected) and run.chunks_computed == run.n_chunks > 3
    pd.testing.assert_frame_equal(_read_file(out), expected, check_dtype=False, rtol=0, atol=0)
    assert not list(tmp_path.glob(".*partial"))


def test_the_database_holds_the_same_rows_a_record_of_each_chunk_and_of_the_run(
    service, expected, tmp_path, database_url
):
    _model, _manifest, encounters = service
    run = _write(service, tmp_path / "scores.parquet", database=database_url, model_name="m1")
    assert run.run_id == 1 and run.replaced_run is None
    pd.testing.assert_frame_equal(
        _run_rows(database_url, run.run_id, expected["encounter_id"]),
        expected,
        check_dtype=False,
        rtol=0,
        atol=0,
    )
    table = _read_db(database_url)
    assert table.columns[0] == "run_id" and table.columns[-1] == "score_chunk"
    chunks = _read_db(database_url, "scores_chunks").sort_values("score_chunk")
    assert chunks["score_chunk"].tolist() == list(range(run.n_chunks))
    assert chunks["run_id"].eq(run.run_id).all()
    assert chunks["n_rows"].tolist() == table.groupby("score_chunk").size().tolist()
    (record,) = _runs(database_url).reset_index().to_dict(orient="records")
    assert {k: record[k] for k in ("run_id", "scores_table", "run_key", "status", "model")} == {
        "run_id": run.run_id,
        "scores_table": "scores",
        "run_key": run.run_key,
        "status": "complete",
        "model": "m1",
    }
    assert (record["model_sha256"], record["target"]) == ("a" * 64, "adherent")
    assert len(record["data_sha256"]) == 64
    assert json.loads(record["flag_rule"])["rule"] == "top_percent"
    assert (record["n_encounters"], record["n_patients"]) == (
        len(encounters),
        encounters["patient_id"].nunique(),
    )
    assert (record["n_high"], record["n_medium"]) == (
        run.n_flagged["high"],
        run.n_flagged["medium"],
    )
    assert record["started_at"] < record["finished_at"]
    assert record["finished_at"].endswith("+00:00")


def test_a_failure_inside_a_chunk_loses_no_committed_chunk_and_leaves_no_half_chunk(
    service, tmp_path, monkeypatch, database_url
):
    out = tmp_path / "scores.csv"
    clean = tmp_path / "clean" / "scores.csv"
    _write(service, clean)  # its own SQLite database, next to it
    _fail_at_chunk(monkeypatch, 3)
    with pytest.raises(KeyboardInterrupt):
        _write(service, out, database=database_url)
    monkeypatch.undo()

    assert sorted(_read_db(database_url)["score_chunk"].unique().tolist()) == [0, 1]
    assert sorted(_read_db(database_url, "scores_chunks")["score_chunk"].tolist()) == [0, 1]
    assert _runs(database_url)["status"].tolist() == ["running"]
    assert not out.exists() and not list(tmp_path.glob(".*partial"))

    rerun = _write(service, out, database=database_url)
    assert (rerun.chunks_resumed, rerun.chunks_computed) == (2, rerun.n_chunks - 2)
    assert rerun.run_id == 1  # the same run, resumed
    assert out.read_bytes() == clean.read_bytes()
    assert _rows_per_run(database_url) == {1: (rerun.n_rows, rerun.n_rows)}
    runs = _runs(database_url)
    assert runs["status"].tolist() == ["complete"]
    assert runs["n_encounters"].tolist() == [rerun.n_rows]


def test_rerunning_a_finished_job_computes_nothing_and_writes_the_same_file(
    service, tmp_path, database_url
):
    out = tmp_path / "scores.parquet"
    first = _write(service, out, database=database_url)
    before = pd.read_parquet(out)
    finished = _runs(database_url)
    again = _write(service, out, database=database_url)
    assert again.chunks_computed == 0 and again.chunks_resumed == first.n_chunks
    assert again.run_id == first.run_id
    pd.testing.assert_frame_equal(pd.read_parquet(out), before, rtol=0, atol=0)
    assert _rows_per_run(database_url) == {first.run_id: (first.n_rows, first.n_rows)}
    pd.testing.assert_frame_equal(_runs(database_url), finished)  # its record kept


def test_weekly_exports_append_runs_each_holding_every_encounter_once(
    service, weeks, tmp_path, database_url
):
    first_week, second_week = weeks
    one = _write(service, tmp_path / "week1.csv", first_week, database=database_url)
    two = _write(service, tmp_path / "week2.parquet", second_week, database=database_url)
    assert (one.run_id, two.run_id) == (1, 2) and one.run_key != two.run_key
    assert two.chunks_resumed == 0
    # each run: every encounter of its export once; the file, this run's scores only
    assert _rows_per_run(database_url) == {
        1: (len(first_week), len(first_week)),
        2: (len(second_week), len(second_week)),
    }
    expected_two = _expected(service, second_week)
    pd.testing.assert_frame_equal(
        _read_file(tmp_path / "week2.parquet"), expected_two, check_dtype=False, rtol=0, atol=0
    )
    pd.testing.assert_frame_equal(
        _run_rows(database_url, 2, expected_two["encounter_id"]),
        expected_two,
        check_dtype=False,
        rtol=0,
        atol=0,
    )
    assert len(_read_file(tmp_path / "week1.csv")) == len(first_week)
    runs = _runs(database_url)
    assert runs["status"].tolist() == ["complete", "complete"]
    assert runs["n_encounters"].tolist() == [len(first_week), len(second_week)]
    assert runs["n_patients"].tolist() == [
        first_week["patient_id"].nunique(),
        second_week["patient_id"].nunique(),
    ]
    assert runs["n_high"].tolist() == [one.n_flagged["high"], two.n_flagged["high"]]
    assert runs["n_medium"].tolist() == [one.n_flagged["medium"], two.n_flagged["medium"]]
    assert runs["data_sha256"].nunique() == 2
    # each run is flagged on its own export: the top 10% of it
    shares = runs["n_high"] / runs["n_encounters"]
    assert shares.between(0.1, 0.1 + 3 / len(first_week)).all(), shares
    # rerunning the first week's job is still that run: nothing computed
    again = _write(service, tmp_path / "week1.csv", first_week, database=database_url)
    assert (again.run_id, again.chunks_computed) == (1, 0)


def test_replace_marks_the_latest_complete_run_replaced_once_the_new_run_completes(
    service, weeks, tmp_path, monkeypatch, database_url
):
    first_week, second_week = weeks
    wrong = second_week[second_week["patient_id"] != second_week["patient_id"].iloc[0]]
    out = tmp_path / "scores.csv"
    _write(service, out, first_week, database=database_url)  # run 1
    _write(service, out, wrong, database=database_url)  # run 2: a wrong export
    # the corrected export, stopped halfway: it has replaced nothing yet
    _fail_at_chunk(monkeypatch, 2)
    with pytest.raises(KeyboardInterrupt):
        _write(service, out, second_week, database=database_url, replace=True)
    monkeypatch.undo()
    assert _runs(database_url)["status"].tolist() == ["complete", "complete", "running"]
    assert set(_rows_per_run(database_url)) == {1, 2, 3}

    # run again with --replace: it resumes, and replaces run 2 (never run 1)
    fixed = _write(service, out, second_week, database=database_url, replace=True)
    assert (fixed.run_id, fixed.replaced_run, fixed.chunks_resumed) == (3, 2, 1)
    runs = _runs(database_url)
    assert runs["status"].tolist() == ["complete", "replaced", "complete"]
    assert runs.loc[2, "n_encounters"] == len(wrong)  # the record of what it was
    assert _rows_per_run(database_url) == {
        1: (len(first_week), len(first_week)),
        3: (len(second_week), len(second_week)),
    }
    assert _read_db(database_url, "scores_chunks")["run_id"].isin([1, 3]).all()
    assert len(_read_file(out)) == len(second_week)

    # the replaced job, run again, is scored again from scratch under its own run_id
    revived = _write(service, out, wrong, database=database_url)
    assert (revived.run_id, revived.chunks_computed) == (2, revived.n_chunks)
    assert _runs(database_url)["status"].tolist() == ["complete"] * 3
    assert _rows_per_run(database_url)[2] == (len(wrong), len(wrong))


def test_replacing_the_latest_run_with_the_same_job_scores_it_again(
    service, weeks, tmp_path, database_url
):
    first_week, second_week = weeks
    out = tmp_path / "scores.parquet"
    _write(service, out, first_week, database=database_url)
    first = _write(service, out, second_week, database=database_url)
    before = out.read_bytes()
    again = _write(service, out, second_week, database=database_url, replace=True)
    assert (again.run_id, again.replaced_run) == (first.run_id, None)
    assert again.chunks_computed == again.n_chunks  # from scratch
    assert out.read_bytes() == before
    assert _runs(database_url)["status"].tolist() == ["complete", "complete"]
    assert _rows_per_run(database_url) == {
        1: (len(first_week), len(first_week)),
        2: (len(second_week), len(second_week)),
    }


def test_another_models_scores_are_refused_naming_the_table(service, tmp_path, database_url):
    _model, _manifest, encounters = service
    _write(service, tmp_path / "scores.csv", database=database_url)
    other, other_manifest = model_with_manifest(encounters, "attended_next", "logistic", CONFIG, 2)
    other_manifest = other_manifest.model_copy(update={"model_sha256": "b" * 64})
    assert score_columns(other) != score_columns(service[0])
    for replace in (False, True):
        with pytest.raises(OutputError) as refusal:
            write_scores(
                other, other_manifest, encounters, CONFIG, tmp_path / "other.csv",
                database=database_url, chunk_rows=CHUNK_ROWS, replace=replace,
            )  # fmt: skip
        message = str(refusal.value)
        assert "\n" not in message
        assert message.startswith("the table 'scores' in ")
        assert "holds scores with other columns than this model's" in message
        assert "--db-table NAME" in message
    assert not (tmp_path / "other.csv").exists()
    assert _runs(database_url)["status"].tolist() == ["complete"]  # untouched
    # into a table of its own
    elsewhere = write_scores(
        other, other_manifest, encounters, CONFIG, tmp_path / "other.csv",
        database=database_url, table="scores_attended_next", chunk_rows=CHUNK_ROWS,
    )  # fmt: skip
    assert elsewhere.run_id == 2
    assert _runs(database_url)["scores_table"].tolist() == ["scores", "scores_attended_next"]


@pytest.mark.parametrize("table", ["scores", "score_runs", "audit_log"])
def test_a_table_engagekit_score_did_not_write_is_refused(service, tmp_path, database_url, table):
    if table == "scores":
        engine = sa.create_engine(database_url)
        with engine.begin() as conn:
            conn.exec_driver_sql("CREATE TABLE scores (x INTEGER)")
        engine.dispose()
    with pytest.raises(OutputError, match=rf"'{table}'.*was not written by engagekit score"):
        _write(service, tmp_path / "scores.csv", database=database_url, table=table)
    assert not (tmp_path / "scores.csv").exists()


def test_a_table_of_an_older_engagekit_is_refused(service, tmp_path):
    """One run per table, no run_id: engagekit before score runs."""
    model, _manifest, encounters = service
    url = f"sqlite:///{tmp_path / 'scores.sqlite'}"
    metadata = sa.MetaData()
    names = score_columns(model, encounter_columns=encounters.columns)
    sa.Table("scores", metadata, *(sa.Column(n, sa.Text) for n in [*names, "score_chunk"]))
    sa.Table(
        "scores_chunks",
        metadata,
        *(sa.Column(n, sa.Text) for n in ("score_chunk", "run_key", "n_rows", "committed_at")),
    )
    engine = sa.create_engine(url)
    metadata.create_all(engine)
    engine.dispose()
    with pytest.raises(OutputError, match=r"other columns .*an older engagekit's layout"):
        _write(service, tmp_path / "scores.csv")


def test_a_database_a_newer_engagekit_upgraded_is_refused(service, tmp_path, database_url):
    from engagekit.db import upgrade_database

    engine = sa.create_engine(database_url)
    upgrade_database(engine)
    with engine.begin() as conn:
        conn.execute(sa.text(f"UPDATE {VERSION_TABLE} SET version_num = '9999'"))
    engine.dispose()
    with pytest.raises(OutputError) as refusal:
        _write(service, tmp_path / "scores.csv", database=database_url)
    message = str(refusal.value)
    assert "'9999'" in message and "upgrade engagekit to use this database" in message
    assert "\n" not in message and not (tmp_path / "scores.csv").exists()


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ("", "the scores table's name is empty: name it with --db-table"),
        ("s" * 57, "the scores table's name is 57 bytes long, more than 56"),
    ],
)
def test_a_table_name_no_database_can_hold_is_refused_before_anything(
    service, tmp_path, table, message
):
    with pytest.raises(ArgumentError, match=message):
        _write(service, tmp_path / "scores.csv", table=table)
    assert list(tmp_path.iterdir()) == []


def test_an_unsaved_model_is_refused(service, tmp_path):
    model, manifest, encounters = service
    unsaved = manifest.model_copy(update={"model_sha256": None})
    with pytest.raises(ArgumentError, match=r"has no model_sha256.*save it"):
        write_scores(model, unsaved, encounters, CONFIG, tmp_path / "scores.csv")
    assert list(tmp_path.iterdir()) == []


def test_an_unusable_database_url_is_refused(service, tmp_path):
    with pytest.raises(OutputError, match="not a database URL"):
        _write(service, tmp_path / "scores.csv", database="nosuchdb://x")


@pytest.mark.parametrize(
    "url",
    [
        "sqlite://user:secret@//no/such.sqlite",  # not a valid SQLite URL
        "nosuchdriver://user:secret@localhost/service",
        "postgresql+nosuchdriver://user:secret@localhost/service",
    ],
)
def test_a_password_never_appears_in_a_refusal(service, tmp_path, url):
    with pytest.raises(OutputError) as refusal:
        _write(service, tmp_path / "s.csv", database=url)
    message = str(refusal.value)
    assert "secret" not in message and "user:***@" in message
    assert refusal.value.__cause__ is None  # the driver's own text may hold the URL


def test_a_password_never_appears_when_the_server_refuses(service, tmp_path):
    from _databases import missing_postgres_message, postgres_required, postgres_url

    base = postgres_url()
    if base is None:
        if postgres_required():
            pytest.fail(missing_postgres_message(), pytrace=False)
        pytest.skip(missing_postgres_message())
    wrong = sa.make_url(base).set(password="not-the-secret-pw")
    with pytest.raises(OutputError) as refusal:
        _write(service, tmp_path / "s.csv", database=wrong.render_as_string(hide_password=False))
    message = str(refusal.value)
    assert "not-the-secret-pw" not in message and ":***@" in message and "\n" not in message
    assert not (tmp_path / "s.csv").exists()


def test_a_model_without_a_flag_rule_is_refused_as_it_is_read(service, tmp_path):
    from _model_dirs import edit_json, reseal
    from engagekit.io._model_store import load_model, save_model

    model, manifest, _encounters = service
    save_model(model, tmp_path / "model", manifest)
    edit_json(tmp_path / "model" / "manifest.json", lambda m: m.pop("flag_rule"))
    reseal(tmp_path / "model")
    with pytest.raises(UntrustedModelError, match=r"'flag_rule': field required.*Retrain"):
        load_model(tmp_path / "model")


def test_the_run_records_the_rule_and_flags_the_top_10_percent_of_the_table(service, tmp_path):
    out = tmp_path / "scores.parquet"
    run = _write(service, out)
    written = pd.read_parquet(out)
    # the 10% of encounters at highest risk (and any tied with the last of them)
    risk = written["risk"].sort_values(ascending=False).to_numpy()
    cut = risk[math.ceil(0.1 * len(risk)) - 1]
    assert written["flag"].eq("high").tolist() == (written["risk"] >= cut).tolist()
    cut_medium = risk[math.ceil(0.2 * len(risk)) - 1]
    assert written["flag"].ne("low").tolist() == (written["risk"] >= cut_medium).tolist()
    assert run.n_flagged["high"] == int((written["flag"] == "high").sum())
    assert run.high_share == pytest.approx(0.1, abs=2 / len(risk))
    assert run.high_or_medium_share == pytest.approx(0.2, abs=2 / len(risk))
    applied = run.flag_rule
    assert (applied.rule, applied.set_on, applied.n_encounters) == (
        "top_percent",
        "scored",
        len(risk),
    )
    assert (applied.promised_high_share, applied.promised_high_or_medium_share) == (0.1, 0.2)
    assert applied.promise == "the top 10%"


def test_scores_carry_the_encounters_context_with_their_types(service, tmp_path, database_url):
    _model, _manifest, encounters = service
    out = tmp_path / "scores.parquet"
    _write(service, out, database=database_url)
    written = pd.read_parquet(out).set_index("encounter_id")
    assert list(written.columns[:5]) == [
        "patient_id",
        "treatment",
        "practitioner_id",
        "session_number",
        "encounter_date",
    ]
    source = encounters.set_index("encounter_id").loc[written.index]
    assert written["treatment"].tolist() == source["treatment"].tolist()
    assert written["practitioner_id"].tolist() == source["practitioner_id"].tolist()
    assert written["session_number"].dtype == "int64"
    assert written["session_number"].tolist() == source["session_number"].tolist()
    assert written["encounter_date"].tolist() == [
        f"{d.year:04d}-{d.month:02d}-{d.day:02d}" for d in source["encounter_date"]
    ]
    engine = sa.create_engine(database_url)
    try:
        inspector = sa.inspect(engine)
        types = {c["name"]: c["type"] for c in inspector.get_columns("scores")}
        key = inspector.get_pk_constraint("scores")["constrained_columns"]
    finally:
        engine.dispose()
    assert isinstance(types["run_id"], sa.Integer)
    assert isinstance(types["session_number"], sa.Integer)
    assert isinstance(types["encounter_date"], sa.Date)
    assert isinstance(types["practitioner_id"], sa.Text)
    assert key == ["run_id", "encounter_id"]


def test_a_table_without_the_optional_context_is_scored_without_it(service, tmp_path):
    model, manifest, encounters = service
    bare = encounters.drop(columns=["practitioner_id", "encounter_date"])
    out = tmp_path / "scores.csv"
    write_scores(model, manifest, bare, CONFIG, out, chunk_rows=CHUNK_ROWS)
    header = out.read_text().splitlines()[0].split(",")
    assert header[:5] == ['"encounter_id"', '"patient_id"', '"treatment"', '"session_number"',
                          '"p_adherent"']  # fmt: skip


def test_a_missing_practitioner_is_an_empty_cell_and_reads_back(service, tmp_path, database_url):
    model, manifest, encounters = service
    gaps = encounters.assign(
        practitioner_id=encounters["practitioner_id"].mask(encounters.index % 7 == 0)
    )
    out = tmp_path / "scores.parquet"
    options = {"chunk_rows": CHUNK_ROWS, "database": database_url}
    first = write_scores(model, manifest, gaps, CONFIG, out, **options)
    before = out.read_bytes()
    # the rerun reads every chunk back from the database: the same bytes
    again = write_scores(model, manifest, gaps, CONFIG, out, **options)
    assert again.chunks_resumed == first.n_chunks and out.read_bytes() == before
    written = pd.read_parquet(out)
    assert written["practitioner_id"].isna().sum() == gaps["practitioner_id"].isna().sum() > 0


@pytest.mark.parametrize("failure", [OutputError("disk full"), KeyboardInterrupt()])
def test_a_run_failing_before_any_commit_leaves_no_database_file_or_folder(
    service, tmp_path, monkeypatch, failure
):
    def fail(self, index, frame):
        raise failure

    monkeypatch.setattr(_ScoreStore, "write_chunk", fail)
    with pytest.raises(type(failure)):
        _write(service, tmp_path / "new" / "folder" / "scores.csv")
    assert list(tmp_path.iterdir()) == []


def test_a_file_that_cannot_be_opened_leaves_no_database_it_created(service, tmp_path, monkeypatch):
    def fail(self):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(_ScoreFile, "_open", fail)
    url = f"sqlite:///{tmp_path / 'db' / 'scores.sqlite'}"
    with pytest.raises(OutputError, match="No space left on device"):
        _write(service, tmp_path / "out" / "scores.parquet", database=url)
    assert list(tmp_path.iterdir()) == []


def test_a_database_that_was_there_keeps_its_tables_and_runs_when_a_run_fails(
    service, weeks, tmp_path, monkeypatch, database_url
):
    """The service's own tables stay as they were; a run that failed before committing
    a chunk leaves no scores table and no run of its own (engagekit's tables, created
    by their migrations, stay: they are the database's engagekit schema)."""
    first_week, second_week = weeks
    engine = sa.create_engine(database_url)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE clinic (x INTEGER)")
        conn.exec_driver_sql("INSERT INTO clinic VALUES (7)")
    engine.dispose()

    def fail(self, index, frame):
        raise OutputError("disk full")

    with monkeypatch.context() as patched:
        patched.setattr(_ScoreStore, "write_chunk", fail)
        with pytest.raises(OutputError, match="disk full"):
            _write(service, tmp_path / "scores.csv", database=database_url)
    assert _tables(database_url) == {"clinic", *ENGAGEKIT_TABLES}
    assert _query(database_url, "SELECT x FROM clinic") == [(7,)]
    assert _runs(database_url).empty

    # with a run there before: it stays, alone, whole
    kept = _write(service, tmp_path / "scores.csv", first_week, database=database_url)
    with monkeypatch.context() as patched:
        patched.setattr(_ScoreStore, "write_chunk", fail)
        with pytest.raises(OutputError, match="disk full"):
            _write(service, tmp_path / "scores.csv", second_week, database=database_url)
    assert _runs(database_url)["status"].to_dict() == {kept.run_id: "complete"}
    assert _rows_per_run(database_url) == {kept.run_id: (len(first_week), len(first_week))}
    assert not list(tmp_path.glob(".*partial"))


def test_another_flag_rule_makes_another_run(service, tmp_path, database_url):
    model, manifest, encounters = service
    out = tmp_path / "scores.csv"
    first = _write(service, out, database=database_url)
    known = encounters["adherent"].notna()
    wider = choose_flag_rule(
        encounters.loc[known, "adherent"].astype(int),
        model.predict_proba(encounters[known]),
        "top_percent",
        20,
    )
    other = manifest.model_copy(update={"flag_rule": wider})
    second = write_scores(
        model, other, encounters, CONFIG, out, chunk_rows=CHUNK_ROWS, database=database_url
    )
    assert second.run_key != first.run_key and (first.run_id, second.run_id) == (1, 2)
    assert second.chunks_computed == second.n_chunks
    runs = _runs(database_url)
    assert runs["n_high"].tolist() == [first.n_flagged["high"], second.n_flagged["high"]]
    assert first.n_flagged["high"] < second.n_flagged["high"]


def test_a_per_practitioner_rule_without_practitioners_is_refused_before_writing(service, tmp_path):
    model, manifest, encounters = service
    known = encounters["adherent"].notna()
    rule = choose_flag_rule(
        encounters.loc[known, "adherent"].astype(int),
        model.predict_proba(encounters[known]),
        "per_practitioner",
        3,
        encounters.loc[known, "practitioner_id"],
    )
    per_practitioner = manifest.model_copy(update={"flag_rule": rule})
    with pytest.raises(ContractError, match=r"3 encounters per practitioner.*'practitioner_id'"):
        write_scores(
            model,
            per_practitioner,
            encounters.drop(columns="practitioner_id"),
            CONFIG,
            tmp_path / "out" / "scores.csv",
        )
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------- one run per table
def _claim_as(url: str, *, host: str, pid: int, age: float) -> None:
    """Put another run's claim on table 'scores', in the writer table's documented form."""
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql(
                "CREATE TABLE IF NOT EXISTS scores_writer (scores_table VARCHAR(255) PRIMARY "
                "KEY, run_id VARCHAR(32) NOT NULL, host VARCHAR(255) NOT NULL, pid INTEGER "
                "NOT NULL, claimed_at VARCHAR(32) NOT NULL, renewed_at FLOAT NOT NULL)"
            )
            conn.exec_driver_sql("DELETE FROM scores_writer")
            conn.execute(
                sa.text(
                    "INSERT INTO scores_writer VALUES ('scores', 'another run', :host, :pid, "
                    "'2026-01-01T00:00:00+00:00', :renewed)"
                ),
                {"host": host, "pid": pid, "renewed": time.time() - age},
            )
    finally:
        engine.dispose()


def _claims(url: str) -> list[tuple]:
    return list(_read_db(url, "scores_writer").itertuples(index=False, name=None))


@pytest.fixture(scope="module")
def dead_pid() -> int:
    """The id of a process of this machine that has ended (and was reaped)."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


@pytest.mark.parametrize(
    ("where", "alive", "silent", "taken_over"),
    [
        ("here", True, 0, False),
        ("here", False, 0, True),  # its process is gone: at once
        ("elsewhere", True, 5, False),
        ("elsewhere", True, scores_module.LEASE_STALE_SECONDS + 5, True),  # silent too long
    ],
    ids=["live-here", "dead-here", "live-elsewhere", "silent-elsewhere"],
)
def test_a_table_claimed_by_another_run_is_refused_unless_the_claim_is_abandoned(
    service, weeks, tmp_path, dead_pid, database_url, where, alive, silent, taken_over
):
    first_week, second_week = weeks
    out = tmp_path / "scores.csv"
    first = _write(service, out, first_week, database=database_url)
    before = out.read_bytes()
    host = socket.gethostname() if where == "here" else "another-host.example"
    _claim_as(database_url, host=host, pid=os.getpid() if alive else dead_pid, age=silent)
    if taken_over:
        again = _write(service, out, first_week, database=database_url)
        assert again.chunks_resumed == first.n_chunks and out.read_bytes() == before
        assert _claims(database_url) == []  # released at the end
        return
    # the same job, or the next export: refused, and nothing changed
    for export in (first_week, second_week):
        with pytest.raises(OutputError) as refusal:
            _write(service, out, export, database=database_url)
        message = str(refusal.value)
        shown = sa.make_url(database_url).render_as_string(hide_password=True)
        assert f"another run is writing to table 'scores' of {shown!r}" in message
        assert f"on {host!r}" in message and "wait for it to finish, then run again" in message
        assert out.read_bytes() == before and not list(tmp_path.glob(".*partial"))
        assert _rows_per_run(database_url) == {1: (first.n_rows, first.n_rows)}  # untouched
        assert _runs(database_url)["status"].tolist() == ["complete"]
        assert [c[1] for c in _claims(database_url)] == ["another run"]


def test_a_run_whose_table_was_taken_over_stops_without_writing_to_it_again(
    service, tmp_path, monkeypatch, database_url
):
    out = tmp_path / "scores.csv"
    real = _ScoreStore.write_chunk

    def taken_over_after_the_first_chunk(self, index, frame):
        if index == 1:
            _claim_as(database_url, host="another-host.example", pid=1, age=0)
        real(self, index, frame)

    monkeypatch.setattr(_ScoreStore, "write_chunk", taken_over_after_the_first_chunk)
    with pytest.raises(OutputError, match="another run took over table 'scores'"):
        _write(service, out, database=database_url)
    assert _read_db(database_url, "scores_chunks")["score_chunk"].tolist() == [0]
    assert _runs(database_url)["status"].tolist() == ["running"]
    assert not out.exists() and not list(tmp_path.glob(".*partial"))
    assert [c[1] for c in _claims(database_url)] == ["another run"]  # the other run's, kept


def test_the_claim_is_renewed_while_a_long_chunk_is_scored(service, tmp_path, monkeypatch):
    monkeypatch.setattr(scores_module, "LEASE_RENEW_SECONDS", 0.02)
    out = tmp_path / "scores.csv"
    url = default_database_url(out)
    real = scores_module.score_encounters
    renewals = []

    def slow_first_chunk(*args, **kwargs):
        if not renewals:
            renewals.append(_read_db(url, "scores_writer")["renewed_at"].iloc[0])
            time.sleep(0.3)
            renewals.append(_read_db(url, "scores_writer")["renewed_at"].iloc[0])
        return real(*args, **kwargs)

    monkeypatch.setattr(scores_module, "score_encounters", slow_first_chunk)
    _write(service, out)
    assert renewals[1] - renewals[0] > 0.15  # renewed during the chunk, with no commit


def test_the_scores_table_is_indexed_for_the_clinicians_page(service, tmp_path, database_url):
    """A patient's sessions and a practitioner's patients, within a run, are found by an
    index: without one, every caseload page reads the whole table (bench_serve.py)."""
    _write(service, tmp_path / "scores.parquet", database=database_url)
    engine = sa.create_engine(database_url)
    try:
        indexed = {tuple(ix["column_names"]) for ix in sa.inspect(engine).get_indexes("scores")}
        # an index dropped from an existing table is made again by the next run
        with engine.begin() as connection:
            name = next(
                ix["name"]
                for ix in sa.inspect(connection).get_indexes("scores")
                if ix["column_names"] == ["run_id", "practitioner_id"]
            )
            connection.execute(sa.text(f'DROP INDEX "{name}"'))
    finally:
        engine.dispose()
    assert {
        ("run_id", "score_chunk"),
        ("run_id", "patient_id", "session_number"),
        ("run_id", "practitioner_id"),
    } <= indexed
    _write(service, tmp_path / "again.parquet", database=database_url)
    engine = sa.create_engine(database_url)
    try:
        again = {tuple(ix["column_names"]) for ix in sa.inspect(engine).get_indexes("scores")}
    finally:
        engine.dispose()
    assert ("run_id", "practitioner_id") in again
