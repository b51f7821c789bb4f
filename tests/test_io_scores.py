"""Bulk scoring to a database and a file (``engagekit.io._scores``): chunks, one
transaction each, resuming after a failure without duplicating a row."""

from __future__ import annotations

import math
import os
import shutil
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
from engagekit.errors import ContractError, OutputError, UntrustedModelError
from engagekit.flags import choose_flag_rule
from engagekit.io import _scores as scores_module
from engagekit.io._scores import _ScoreFile, _ScoreStore, default_database_url, write_scores
from engagekit.scoring import encounter_flag_thresholds, patient_chunks, score_encounters

CONFIG = load_config()
CHUNK_ROWS = 300


@pytest.fixture(scope="module")
def service():
    """``(model, manifest, encounters)``: a logistic model with its flag rule."""
    encounters = simulate_encounters(300, seed=21, config=CONFIG).encounters
    model, manifest = model_with_manifest(encounters, "adherent", "logistic", CONFIG, seed=2)
    return model, manifest.model_copy(update={"model_sha256": "a" * 64}), encounters


@pytest.fixture(scope="module")
def expected(service):
    """The scores of every encounter, chunk by chunk as bulk scoring computes them (the
    last bits of a float can depend on how many rows a matrix product had), flagged by
    the thresholds the rule sets on the whole table."""
    model, manifest, encounters = service
    risk = 1.0 - model.predict_proba(encounters)
    applied = encounter_flag_thresholds(manifest.flag_rule, risk, encounters)
    chunks = patient_chunks(encounters["patient_id"], CHUNK_ROWS)
    parts = [score_encounters(model, encounters.iloc[rows], CONFIG, applied) for rows in chunks]
    return pd.concat(parts, ignore_index=True)


def _read_file(out) -> pd.DataFrame:
    """A scores file as written: Arrow reads a CSV's doubles exactly and keeps an empty
    reason as "" (pandas' parser may miss a double's last bit); dates stay ISO text."""
    if out.name.endswith(".parquet"):
        return pd.read_parquet(out)
    types = pacsv.ConvertOptions(column_types={"encounter_date": pa.string()})
    return pacsv.read_csv(out, convert_options=types).to_pandas()


def _write(service, out, **kwargs):
    model, manifest, encounters = service
    return write_scores(model, manifest, encounters, CONFIG, out, chunk_rows=CHUNK_ROWS, **kwargs)


def _read_db(url: str, table: str = "scores") -> pd.DataFrame:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return pd.read_sql_table(table, conn)
    finally:
        engine.dispose()


@pytest.mark.parametrize("name", ["scores.csv", "scores.csv.gz", "scores.parquet"])
def test_the_file_holds_every_encounter_once_with_exact_values(service, expected, tmp_path, name):
    out = tmp_path / name
    run = _write(service, out)
    assert run.n_rows == len(expected) and run.chunks_computed == run.n_chunks > 3
    pd.testing.assert_frame_equal(_read_file(out), expected, check_dtype=False, rtol=0, atol=0)
    assert not list(tmp_path.glob(".*partial"))


def test_the_database_holds_the_same_rows_and_a_record_of_each_chunk(service, expected, tmp_path):
    run = _write(service, tmp_path / "scores.parquet")
    url = default_database_url(tmp_path / "scores.parquet")
    assert run.database == url
    table = _read_db(url).sort_values(["score_chunk"], kind="stable")
    table["encounter_date"] = table["encounter_date"].dt.strftime("%Y-%m-%d")
    pd.testing.assert_frame_equal(
        table.drop(columns="score_chunk").reset_index(drop=True),
        expected,
        check_dtype=False,
        rtol=0,
        atol=0,
    )
    chunks = _read_db(url, "scores_chunks")
    assert chunks["score_chunk"].tolist() == list(range(run.n_chunks))
    assert chunks["n_rows"].tolist() == table.groupby("score_chunk").size().tolist()
    assert chunks["run_key"].eq(run.run_key).all()


def test_a_failure_inside_a_chunk_loses_no_committed_chunk_and_leaves_no_half_chunk(
    service, tmp_path, monkeypatch
):
    out = tmp_path / "scores.csv"
    clean = tmp_path / "clean" / "scores.csv"
    _write(service, clean)
    real_insert = _ScoreStore._insert
    calls = {"n": 0}

    def insert_then_fail(self, conn, frame):
        calls["n"] += 1
        if calls["n"] == 3:  # the third chunk: half its rows go in, then the run dies
            real_insert(self, conn, frame.iloc[: len(frame) // 2])
            raise KeyboardInterrupt
        real_insert(self, conn, frame)

    monkeypatch.setattr(_ScoreStore, "_insert", insert_then_fail)
    with pytest.raises(KeyboardInterrupt):
        _write(service, out)
    monkeypatch.undo()

    url = default_database_url(out)
    table = _read_db(url)
    assert sorted(table["score_chunk"].unique().tolist()) == [0, 1]
    assert _read_db(url, "scores_chunks")["score_chunk"].tolist() == [0, 1]
    assert not out.exists() and not list(tmp_path.glob(".*partial"))

    rerun = _write(service, out)
    assert (rerun.chunks_resumed, rerun.chunks_computed) == (2, rerun.n_chunks - 2)
    assert out.read_bytes() == clean.read_bytes()
    final = _read_db(url)
    assert len(final) == rerun.n_rows
    assert final["encounter_id"].is_unique


def test_rerunning_a_finished_job_computes_nothing_and_writes_the_same_file(service, tmp_path):
    out = tmp_path / "scores.parquet"
    first = _write(service, out)
    before = pd.read_parquet(out)
    again = _write(service, out)
    assert again.chunks_computed == 0 and again.chunks_resumed == first.n_chunks
    pd.testing.assert_frame_equal(pd.read_parquet(out), before, rtol=0, atol=0)
    assert len(_read_db(default_database_url(out))) == first.n_rows


def test_scores_of_another_run_are_refused_unless_replaced(service, tmp_path):
    model, manifest, encounters = service
    out = tmp_path / "scores.csv"
    _write(service, out)
    other = encounters[encounters["patient_id"] != encounters["patient_id"].iloc[0]]
    with pytest.raises(OutputError, match=r"holds scores of another run.*--replace"):
        write_scores(model, manifest, other, CONFIG, out, chunk_rows=CHUNK_ROWS)
    run = write_scores(model, manifest, other, CONFIG, out, chunk_rows=CHUNK_ROWS, replace=True)
    assert len(_read_db(default_database_url(out))) == run.n_rows == len(other)


def test_a_table_engagekit_did_not_write_is_refused(service, tmp_path):
    url = f"sqlite:///{tmp_path / 'service.sqlite'}"
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE scores (x INTEGER)")
    engine.dispose()
    with pytest.raises(OutputError, match=r"'scores'.*was not written by engagekit score"):
        _write(service, tmp_path / "scores.csv", database=url)


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


def test_scores_carry_the_encounters_context_with_their_types(service, tmp_path):
    _model, _manifest, encounters = service
    out = tmp_path / "scores.parquet"
    _write(service, out)
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
    engine = sa.create_engine(default_database_url(out))
    try:
        types = {c["name"]: c["type"] for c in sa.inspect(engine).get_columns("scores")}
    finally:
        engine.dispose()
    assert isinstance(types["session_number"], sa.Integer)
    assert isinstance(types["encounter_date"], sa.Date)
    assert isinstance(types["practitioner_id"], sa.Text)


def test_a_table_without_the_optional_context_is_scored_without_it(service, tmp_path):
    model, manifest, encounters = service
    bare = encounters.drop(columns=["practitioner_id", "encounter_date"])
    out = tmp_path / "scores.csv"
    write_scores(model, manifest, bare, CONFIG, out, chunk_rows=CHUNK_ROWS)
    header = out.read_text().splitlines()[0].split(",")
    assert header[:5] == ['"encounter_id"', '"patient_id"', '"treatment"', '"session_number"',
                          '"p_adherent"']  # fmt: skip


def test_a_missing_practitioner_is_an_empty_cell_and_reads_back(service, tmp_path):
    model, manifest, encounters = service
    gaps = encounters.assign(
        practitioner_id=encounters["practitioner_id"].mask(encounters.index % 7 == 0)
    )
    out = tmp_path / "scores.parquet"
    first = write_scores(model, manifest, gaps, CONFIG, out, chunk_rows=CHUNK_ROWS)
    before = out.read_bytes()
    # the rerun reads every chunk back from the database: the same bytes
    again = write_scores(model, manifest, gaps, CONFIG, out, chunk_rows=CHUNK_ROWS)
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


def test_a_database_that_was_there_is_kept_as_it_was_when_a_run_fails(
    service, tmp_path, monkeypatch
):
    database = tmp_path / "service.sqlite"
    engine = sa.create_engine(f"sqlite:///{database}")
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE clinic (x INTEGER)")
    engine.dispose()

    def fail(self, index, frame):
        raise OutputError("disk full")

    monkeypatch.setattr(_ScoreStore, "write_chunk", fail)
    with pytest.raises(OutputError):
        _write(service, tmp_path / "scores.csv", database=f"sqlite:///{database}")
    engine = sa.create_engine(f"sqlite:///{database}")
    try:
        assert sa.inspect(engine).get_table_names() == ["clinic"]
    finally:
        engine.dispose()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["service.sqlite"]


def test_another_flag_rule_makes_another_run(service, tmp_path):
    model, manifest, encounters = service
    out = tmp_path / "scores.csv"
    _write(service, out)
    known = encounters["adherent"].notna()
    wider = choose_flag_rule(
        encounters.loc[known, "adherent"].astype(int),
        model.predict_proba(encounters[known]),
        "top_percent",
        20,
    )
    other = manifest.model_copy(update={"flag_rule": wider})
    with pytest.raises(OutputError, match="holds scores of another run"):
        write_scores(model, other, encounters, CONFIG, out, chunk_rows=CHUNK_ROWS)


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
            conn.exec_driver_sql(
                "INSERT INTO scores_writer VALUES ('scores', 'another run', ?, ?, "
                "'2026-01-01T00:00:00+00:00', ?)",
                (host, pid, time.time() - age),
            )
    finally:
        engine.dispose()


def _claims(url: str) -> list[tuple]:
    return list(_read_db(url, "scores_writer").itertuples(index=False, name=None))


@pytest.fixture(scope="module")
def scored(service, tmp_path_factory):
    """``(run, file bytes)`` of a complete run into ``scores.csv`` and its database."""
    run = _write(service, tmp_path_factory.mktemp("scored") / "scores.csv")
    return run, run.out.read_bytes()


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
    service, scored, tmp_path, dead_pid, where, alive, silent, taken_over
):
    first, before = scored
    shutil.copy(first.out.with_suffix(".sqlite"), tmp_path / "scores.sqlite")
    out = tmp_path / "scores.csv"
    url = default_database_url(out)
    host = socket.gethostname() if where == "here" else "another-host.example"
    _claim_as(url, host=host, pid=os.getpid() if alive else dead_pid, age=silent)
    if taken_over:
        again = _write(service, out)
        assert again.chunks_resumed == first.n_chunks and out.read_bytes() == before
        assert _claims(url) == []  # released at the end
        return
    with pytest.raises(OutputError) as refusal:
        _write(service, out)
    message = str(refusal.value)
    assert f"another run is writing to table 'scores' of {url!r}" in message
    assert f"on {host!r}" in message and "wait for it to finish, then run again" in message
    assert not out.exists() and not list(tmp_path.glob(".*partial"))
    assert len(_read_db(url)) == first.n_rows  # untouched
    assert [c[1] for c in _claims(url)] == ["another run"]


def test_a_run_whose_table_was_taken_over_stops_without_writing_to_it_again(
    service, tmp_path, monkeypatch
):
    out = tmp_path / "scores.csv"
    url = default_database_url(out)
    real = _ScoreStore.write_chunk

    def taken_over_after_the_first_chunk(self, index, frame):
        if index == 1:
            _claim_as(url, host="another-host.example", pid=1, age=0)
        real(self, index, frame)

    monkeypatch.setattr(_ScoreStore, "write_chunk", taken_over_after_the_first_chunk)
    with pytest.raises(OutputError, match="another run took over table 'scores'"):
        _write(service, out)
    assert _read_db(url, "scores_chunks")["score_chunk"].tolist() == [0]
    assert not out.exists() and not list(tmp_path.glob(".*partial"))
    assert [c[1] for c in _claims(url)] == ["another run"]  # the other run's, kept


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
