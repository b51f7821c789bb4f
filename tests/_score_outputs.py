"""What ``engagekit score`` left behind, read without engagekit: its file, its database
table with its runs, and temporary files, for the tests of killed and concurrent runs."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

import pyarrow.csv as pacsv

from _cli import run
from _factories import model_with_manifest, write_csv
from engagekit import load_config, simulate_encounters
from engagekit.io._model_store import save_model

#: The two jobs of :func:`make_score_service`: one model, two weekly exports.
JOBS = ("week1", "week2")


def score_args(service: Path, job: str, *extra: str) -> tuple:
    """``engagekit score`` of export ``job`` of :func:`make_score_service` into
    ``scores.csv`` (and ``scores.sqlite``) of the folder it runs in, in chunks of 30
    encounters."""
    return (
        "score", service / "model", service / f"{job}.csv", "--out", "scores.csv",
        "--chunk-rows", "30", *extra,
    )  # fmt: skip


def make_score_service(folder: Path) -> Path:
    """``week1.csv`` (80 patients, about 400 encounters) and ``week2.csv`` (the next
    week's export: the same encounters but one patient's, and 20 new patients);
    ``model/``, a logistic model of adherence; and in ``clean_<job>/`` the complete
    scores of each export, from an uninterrupted run into a database of its own."""
    config = load_config()
    encounters = simulate_encounters(100, seed=17, config=config).encounters
    patients = encounters["patient_id"].drop_duplicates().tolist()
    week1 = encounters[encounters["patient_id"].isin(patients[:80])]
    week2 = encounters[encounters["patient_id"].isin(patients[1:])]
    write_csv(week1, folder / "week1.csv")
    write_csv(week2, folder / "week2.csv")
    model, manifest = model_with_manifest(week1, "adherent", "logistic", config, seed=6)
    save_model(model, folder / "model", manifest)
    for job in JOBS:
        (folder / f"clean_{job}").mkdir()
        result = run(*score_args(folder, job), cwd=folder / f"clean_{job}")
        assert result.returncode == 0, result.stderr
    return folder


@dataclass(frozen=True)
class ScoreTable:
    """The scores table, its bookkeeping and its runs as they are in the database."""

    runs: dict[int, tuple[str, str]]  # run_id: (run_key, status), from score_runs
    rows_per_chunk: dict[tuple[int, int], int]  # rows found per (run_id, chunk)
    recorded: dict[tuple[int, int], int]  # rows the bookkeeping says each chunk holds
    rows: dict[int, tuple[int, int]]  # run_id: (rows, distinct encounter_id)
    claims: int  # rows of the writer table: runs holding (or that held) the table

    def keys(self, status: str | None = None) -> set[str]:
        """The run keys of the runs (of ``status``)."""
        return {key for key, s in self.runs.values() if status in (None, s)}


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
        runs = rows(conn, "SELECT run_id, run_key, status FROM score_runs")
        per_chunk = rows(conn, "SELECT run_id, score_chunk, count(*) FROM scores GROUP BY 1, 2")
        recorded = rows(conn, "SELECT run_id, score_chunk, n_rows FROM scores_chunks")
        counted = rows(
            conn, "SELECT run_id, count(*), count(DISTINCT encounter_id) FROM scores GROUP BY 1"
        )
        claims = rows(conn, "SELECT count(*) FROM scores_writer")
    finally:
        conn.close()
    return ScoreTable(
        runs={run: (key, status) for run, key, status in runs},
        rows_per_chunk={(run, chunk): n for run, chunk, n in per_chunk},
        recorded={(run, chunk): n for run, chunk, n in recorded},
        rows={run: (n, distinct) for run, n, distinct in counted},
        claims=claims[0][0] if claims else 0,
    )


def assert_no_mix(table: ScoreTable, run_keys: set[str], n_encounters: dict[str, int]) -> None:
    """Every row belongs to a committed chunk, whole, of a known run; no run holds an
    encounter twice; at most one run is complete (the runs replace each other), and it
    holds every encounter of its export (``n_encounters`` by run key)."""
    assert table.rows_per_chunk == table.recorded, table
    assert table.keys() <= run_keys, table
    assert all(n == distinct for n, distinct in table.rows.values()), table
    complete = [r for r, (_key, status) in table.runs.items() if status == "complete"]
    assert len(complete) <= 1, table
    for done in complete:
        key = table.runs[done][0]
        assert table.rows[done] == (n_encounters[key], n_encounters[key]), table
    assert set(table.rows) <= set(table.runs), table  # no rows of an unrecorded run


def assert_complete(table: ScoreTable, run_key: str, n_encounters: int) -> None:
    """The table's one complete run is ``run_key``'s, with every encounter once; every
    row belongs to a whole committed chunk; and no run holds the table."""
    (run,) = [r for r, (_key, status) in table.runs.items() if status == "complete"]
    assert table.runs[run][0] == run_key, table
    assert table.rows_per_chunk == table.recorded, table
    assert table.rows[run] == (n_encounters, n_encounters), table
    assert table.claims == 0, table


def run_key(database: Path) -> str:
    """The run key of the one run in a database."""
    with sqlite3.connect(database) as conn:
        (key,) = {k for (k,) in conn.execute("SELECT run_key FROM score_runs")}
    return key


def read_scores_file(path: Path) -> int:
    """Parse a scores CSV in full; its number of rows."""
    return pacsv.read_csv(path).num_rows


def partial_files(folder: Path) -> list[Path]:
    """Temporary files of outputs being (or that were being) written in ``folder``."""
    return sorted(folder.glob(".*.partial"))
