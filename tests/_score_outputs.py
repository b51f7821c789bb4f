"""What ``engagekit score`` left behind, read without engagekit: its file, its database
table and temporary files, for the tests of killed and concurrent runs."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

import pyarrow.csv as pacsv

from _cli import run
from _factories import model_with_manifest, write_csv
from engagekit import load_config, simulate_encounters
from engagekit.io._model_store import save_model

#: The two models of :func:`make_score_service`, of two outcomes (other columns).
MODELS = ("adherent", "attended_next")


def score_args(service: Path, model: str, *extra: str) -> tuple:
    """``engagekit score`` with a model of :func:`make_score_service` into ``scores.csv``
    (and ``scores.sqlite``) of the folder it runs in, in chunks of 30 encounters."""
    return (
        "score", service / model, service / "encounters.csv", "--out", "scores.csv",
        "--chunk-rows", "30", *extra,
    )  # fmt: skip


def make_score_service(folder: Path) -> Path:
    """``encounters.csv`` (80 patients, about 400 encounters); ``adherent/`` and
    ``attended_next/``, logistic models of the two outcomes; and in ``clean_<model>/``
    the complete scores of each, from an uninterrupted run."""
    config = load_config()
    encounters = simulate_encounters(80, seed=17, config=config).encounters
    write_csv(encounters, folder / "encounters.csv")
    for target in MODELS:
        model, manifest = model_with_manifest(encounters, target, "logistic", config, seed=6)
        save_model(model, folder / target, manifest)
        (folder / f"clean_{target}").mkdir()
        result = run(*score_args(folder, target), cwd=folder / f"clean_{target}")
        assert result.returncode == 0, result.stderr
    return folder


@dataclass(frozen=True)
class ScoreTable:
    """The scores table and its bookkeeping as they are in the database."""

    rows_per_chunk: dict[int, int]  # rows found in the scores table, per chunk
    recorded: dict[int, int]  # rows the bookkeeping table says each chunk holds
    run_keys: frozenset[str]
    n_rows: int
    n_encounters: int  # distinct encounter_id
    claims: int  # rows of the writer table: runs holding (or that held) the table


def read_score_table(database: Path) -> ScoreTable:
    """The state of table ``scores``; a table that does not exist reads as empty."""

    def rows(conn, sql):
        try:
            return conn.execute(sql).fetchall()
        except sqlite3.OperationalError as e:  # no such table
            assert "no such table" in str(e), e
            return []

    conn = sqlite3.connect(database)
    try:
        per_chunk = dict(rows(conn, "SELECT score_chunk, count(*) FROM scores GROUP BY 1"))
        recorded = dict(rows(conn, "SELECT score_chunk, n_rows FROM scores_chunks"))
        keys = frozenset(k for (k,) in rows(conn, "SELECT DISTINCT run_key FROM scores_chunks"))
        counted = rows(conn, "SELECT count(*), count(DISTINCT encounter_id) FROM scores")
        claims = rows(conn, "SELECT count(*) FROM scores_writer")
    finally:
        conn.close()
    n_rows, n_encounters = counted[0] if counted else (0, 0)
    return ScoreTable(
        per_chunk, recorded, keys, n_rows, n_encounters, claims[0][0] if claims else 0
    )


def assert_no_mix(table: ScoreTable, run_keys: set[str]) -> None:
    """Every row in the table belongs to a committed chunk of one known run, whole."""
    assert table.rows_per_chunk == table.recorded, table
    assert len(table.run_keys) <= 1 and table.run_keys <= run_keys, table
    assert table.n_rows == table.n_encounters, table  # no encounter twice


def assert_complete(table: ScoreTable, run_key: str, n_encounters: int) -> None:
    """The table holds every encounter once, from the run ``run_key``, and no claim."""
    assert table.run_keys == {run_key}, table
    assert table.rows_per_chunk == table.recorded, table
    assert table.n_rows == table.n_encounters == n_encounters, table
    assert table.claims == 0, table


def run_key(database: Path) -> str:
    with sqlite3.connect(database) as conn:
        (key,) = {k for (k,) in conn.execute("SELECT run_key FROM scores_chunks")}
    return key


def read_scores_file(path: Path) -> int:
    """Parse a scores CSV in full; its number of rows."""
    return pacsv.read_csv(path).num_rows


def partial_files(folder: Path) -> list[Path]:
    """Temporary files of outputs being (or that were being) written in ``folder``."""
    return sorted(folder.glob(".*.partial"))
