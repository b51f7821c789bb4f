"""Bulk scoring to a database and a file (``engagekit.io.scores``): chunks, one
transaction each, resuming after a failure without duplicating a row."""

from __future__ import annotations

import doctest

import pandas as pd
import pyarrow.csv as pacsv
import pytest
import sqlalchemy as sa

from _factories import model_with_flag_rule
from engagekit import load_config, simulate_encounters
from engagekit.errors import DataReadError, OutputError
from engagekit.io import scores as scores_module
from engagekit.io.scores import _ScoreStore, default_database_url, write_scores
from engagekit.scoring import patient_chunks, score_encounters

CONFIG = load_config()
CHUNK_ROWS = 300


@pytest.fixture(scope="module")
def service():
    """``(model, manifest, encounters)``: a logistic model with its flag rule."""
    encounters = simulate_encounters(300, seed=21, config=CONFIG).encounters
    model, rule = model_with_flag_rule(encounters, "adherent", "logistic", CONFIG, seed=2)
    manifest = {"model_sha256": "a" * 64, "flag_rule": rule.to_dict()}
    return model, manifest, encounters


@pytest.fixture(scope="module")
def expected(service):
    """The scores of every encounter, chunk by chunk as bulk scoring computes them (the
    last bits of a float can depend on how many rows a matrix product had)."""
    model, manifest, encounters = service
    from engagekit.flags import FlagRule

    rule = FlagRule.from_dict(manifest["flag_rule"])
    chunks = patient_chunks(encounters["patient_id"], CHUNK_ROWS)
    parts = [score_encounters(model, encounters.iloc[rows], CONFIG, rule) for rows in chunks]
    return pd.concat(parts, ignore_index=True)


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
    # pandas' CSV parser may miss a double's last bit; Arrow's reads it exactly, and
    # keeps an empty reason as ""
    written = pd.read_parquet(out) if name.endswith(".parquet") else pacsv.read_csv(out).to_pandas()
    pd.testing.assert_frame_equal(written, expected, check_dtype=False, rtol=0, atol=0)
    assert not list(tmp_path.glob(".*partial"))


def test_the_database_holds_the_same_rows_and_a_record_of_each_chunk(service, expected, tmp_path):
    run = _write(service, tmp_path / "scores.parquet")
    url = default_database_url(tmp_path / "scores.parquet")
    assert run.database == url
    table = _read_db(url).sort_values(["score_chunk"], kind="stable")
    pd.testing.assert_frame_equal(
        table.drop(columns="score_chunk").reset_index(drop=True), expected, rtol=0, atol=0
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


def test_a_model_without_a_flag_rule_is_refused(service, tmp_path):
    model, _manifest, encounters = service
    with pytest.raises(DataReadError, match=r"no stored flag rule.*retrain"):
        write_scores(model, {"model_sha256": "b" * 64}, encounters, CONFIG, tmp_path / "s.csv")


def test_docstring_examples():
    result = doctest.testmod(scores_module)
    assert result.attempted > 0
    assert result.failed == 0
