"""``engagekit score`` as a user runs it, including a run killed halfway and rerun."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import numpy as np
import pyarrow.csv as pacsv
import pytest
import sqlalchemy as sa

from _cli import ENGAGEKIT, assert_no_traceback, run
from _factories import model_with_manifest, read_raw_csv, with_cell, write_csv
from engagekit import load_config, simulate_encounters
from engagekit.flags import choose_flag_rule
from engagekit.io._model_store import load_model, save_model

CONFIG = load_config()
# small chunks, so that a run has many commits to be killed between
CHUNK_ROWS = "150"


@pytest.fixture(scope="module")
def service(tmp_path_factory) -> Path:
    """A directory with ``encounters.csv`` and a gbm model of attended_next in ``model/``."""
    tmp = tmp_path_factory.mktemp("score")
    encounters = simulate_encounters(700, seed=31, config=CONFIG).encounters
    write_csv(encounters, tmp / "encounters.csv")
    model, manifest = model_with_manifest(encounters, "attended_next", "gbm", CONFIG, seed=3)
    save_model(model, tmp / "model", manifest)
    return tmp


def _score(service: Path, out: str, *extra: str):
    return run(
        "score",
        "model",
        "encounters.csv",
        "--out",
        out,
        "--chunk-rows",
        CHUNK_ROWS,
        *extra,
        cwd=service,
    )


def _committed_chunks(database: Path) -> int:
    try:
        with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=0.05) as conn:
            return conn.execute("SELECT count(*) FROM scores_chunks").fetchone()[0]
    except sqlite3.Error:  # not created yet, or locked by a commit in progress
        return 0


def test_score_writes_every_encounter_with_explanations_that_add_up(service):
    result = _score(service, "full/scores.csv")
    assert result.returncode == 0, result.stderr
    assert_no_traceback(result)
    table = pacsv.read_csv(service / "full" / "scores.csv").to_pandas()
    encounters = pacsv.read_csv(service / "encounters.csv").to_pandas()
    assert sorted(table["encounter_id"]) == sorted(encounters["encounter_id"].astype(str))
    shap = table.filter(regex="^shap_").sum(axis=1).to_numpy()
    p = table["p_attended_next"].to_numpy()
    assert np.abs(shap - (np.log(p) - np.log1p(-p))).max() < 1e-6
    assert f"{len(table):,} encounters scored and explained" in result.stdout
    assert "full/scores.sqlite" in result.stdout
    # the model's rule is "the top 10%": of the encounters scored, side by side
    high = int((table["flag"] == "high").sum())
    assert 0.09 < high / len(table) < 0.11
    assert (
        f"{high:,} flagged high ({high / len(table):.1%} of encounters; the rule promises "
        "the top 10%)"
    ) in result.stdout
    flagged = int((table["flag"] != "low").sum())
    assert f"({flagged / len(table):.1%} high or medium; promised 20.0%)" in result.stdout
    # the encounter's context, to filter a caseload by
    assert list(table.columns[:6]) == [
        "encounter_id",
        "patient_id",
        "treatment",
        "practitioner_id",
        "session_number",
        "encounter_date",
    ]
    by_id = encounters.set_index("encounter_id").loc[table["encounter_id"]]
    assert table["practitioner_id"].tolist() == by_id["practitioner_id"].tolist()
    assert table["session_number"].tolist() == by_id["session_number"].tolist()
    assert (
        table["encounter_date"].astype(str).tolist() == by_id["encounter_date"].astype(str).tolist()
    )


def test_a_run_killed_halfway_and_rerun_gives_the_uninterrupted_output(service):
    clean = _score(service, "clean/scores.csv")
    assert clean.returncode == 0, clean.stderr
    n_chunks = _committed_chunks(service / "clean" / "scores.sqlite")
    assert n_chunks > 15

    database = service / "killed" / "scores.sqlite"
    env = {**os.environ, "NO_COLOR": "1"}
    process = subprocess.Popen(
        [ENGAGEKIT, "score", "model", "encounters.csv", "--out", "killed/scores.csv",
         "--chunk-rows", CHUNK_ROWS],
        cwd=service, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while _committed_chunks(database) < 3 and process.poll() is None:
        assert time.monotonic() < deadline, "the run never committed a chunk"
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL, "the run ended before it could be killed"
    killed_at = _committed_chunks(database)
    assert 3 <= killed_at < n_chunks
    assert not (service / "killed" / "scores.csv").exists()
    with sqlite3.connect(database) as conn:
        per_chunk = dict(conn.execute("SELECT score_chunk, count(*) FROM scores GROUP BY 1"))
        recorded = dict(conn.execute("SELECT score_chunk, n_rows FROM scores_chunks"))
        runs = conn.execute("SELECT run_id, status FROM score_runs").fetchall()
    assert per_chunk == recorded  # no half chunk: every row belongs to a committed chunk
    assert runs == [(1, "running")]

    rerun = _score(service, "killed/scores.csv")
    assert rerun.returncode == 0, rerun.stderr
    assert f"({killed_at} of {n_chunks} chunks were already in the database" in rerun.stdout
    assert (service / "killed" / "scores.csv").read_bytes() == (
        service / "clean" / "scores.csv"
    ).read_bytes()
    with sqlite3.connect(database) as conn:
        rows, distinct = conn.execute(
            "SELECT count(*), count(DISTINCT encounter_id) FROM scores WHERE run_id = 1"
        ).fetchone()
        runs = conn.execute("SELECT run_id, status, n_encounters FROM score_runs").fetchall()
    n_encounters = len(pacsv.read_csv(service / "encounters.csv"))
    assert rows == distinct == n_encounters
    assert runs == [(1, "complete", n_encounters)]  # the same run, resumed and complete


@pytest.fixture(scope="module")
def exports(service, tmp_path_factory) -> Path:
    """Two weekly exports of a small part of the service: ``week1.csv`` (100 patients)
    and ``week2.csv`` (the same and 20 more)."""
    tmp = tmp_path_factory.mktemp("exports")
    encounters = read_raw_csv(service / "encounters.csv")  # the cells as they are
    patients = encounters["patient_id"].drop_duplicates().tolist()
    for name, n in (("week1.csv", 100), ("week2.csv", 120)):
        write_csv(encounters[encounters["patient_id"].isin(patients[:n])], tmp / name)
    return tmp


def _runs(url: str) -> list[tuple]:
    """``(run_id, status, n_encounters, n_patients)`` of every run, and the rows of each
    run in the scores table with their distinct encounters."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            runs = conn.execute(
                sa.text(
                    "SELECT r.run_id, r.status, r.n_encounters, r.n_patients, "
                    "(SELECT count(*) FROM scores s WHERE s.run_id = r.run_id), "
                    "(SELECT count(DISTINCT encounter_id) FROM scores s WHERE s.run_id = r.run_id) "
                    "FROM score_runs r ORDER BY r.run_id"
                )
            )
            return [tuple(row) for row in runs]
    finally:
        engine.dispose()


def test_each_export_appends_a_run_and_replace_marks_the_wrong_one_replaced(
    service, exports, tmp_path, database_url
):
    def score(export: str, *extra: str):
        return run(
            "score", service / "model", exports / export, "--out", "scores.csv",
            "--chunk-rows", "5000", "--db", database_url, *extra, cwd=tmp_path,
        )  # fmt: skip

    sizes = {
        name: (len(table), table["patient_id"].nunique())
        for name in ("week1.csv", "week2.csv")
        for table in [pacsv.read_csv(exports / name).to_pandas()]
    }
    (n1, p1), (n2, p2) = sizes["week1.csv"], sizes["week2.csv"]
    first = score("week1.csv")
    assert first.returncode == 0, first.stderr
    assert "(run 1)." in " ".join(first.stdout.split())
    second = score("week2.csv")
    assert second.returncode == 0, second.stderr
    assert "(run 2)." in " ".join(second.stdout.split())
    assert pacsv.read_csv(tmp_path / "scores.csv").num_rows == n2  # this run's scores only
    assert _runs(database_url) == [(1, "complete", n1, p1, n1, n1), (2, "complete", n2, p2, n2, n2)]
    # the same command again: that run, nothing computed
    again = score("week2.csv")
    assert again.returncode == 0, again.stderr
    assert "(1 of 1 chunks were already in the database" in again.stdout
    # the second week was wrong (say, scored with other settings): replace it
    fixed = score("week2.csv", "--top-reasons", "1", "--replace")
    assert fixed.returncode == 0, fixed.stderr
    assert_no_traceback(fixed)
    assert "(run 3; it replaced run 2)." in " ".join(fixed.stdout.split())
    assert _runs(database_url) == [
        (1, "complete", n1, p1, n1, n1),
        (2, "replaced", n2, p2, 0, 0),
        (3, "complete", n2, p2, n2, n2),
    ]


def test_another_models_scores_are_refused_naming_the_table(service, refusing, tmp_path):
    scored = run("score", "model", "encounters.csv", "--out", tmp_path / "scores.parquet",
                 "--chunk-rows", "5000", cwd=service)  # fmt: skip
    assert scored.returncode == 0, scored.stderr
    args = ("score", refusing / "adherent", service / "encounters.csv", "--out", "adherent.csv")
    for extra in ((), ("--replace",)):
        refused = run(*args, "--db", f"sqlite:///{tmp_path / 'scores.sqlite'}", *extra,
                      cwd=tmp_path)  # fmt: skip
        assert refused.returncode == 2
        assert_no_traceback(refused)
        message = " ".join(refused.stderr.split())
        assert "the table 'scores' in 'sqlite:///" in message
        assert "holds scores with other columns than this model's" in message
        assert "score into another table with --db-table NAME" in message
        assert not (tmp_path / "adherent.csv").exists()
    elsewhere = run(*args, "--db", f"sqlite:///{tmp_path / 'scores.sqlite'}", "--db-table",
                    "scores_adherent", cwd=tmp_path)  # fmt: skip
    assert elsewhere.returncode == 0, elsewhere.stderr


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--out", "scores.txt"], 2, "use a .csv, .csv.gz or .parquet file"),
        (["--out", "s.csv", "--db", "nosuchdb://u:pw@host/x"], 2, "not a database URL"),
        (["--out", "s.csv", "--chunk-rows", "0"], 2, "--chunk-rows"),
        (["--out", "s.csv", "--db-table", ""], 2, "the scores table's name is empty"),
        (["--out", "s.csv", "--db-table", "t" * 60], 2, "is 60 bytes long, more than 56"),
    ],
)
def test_bad_options_are_refused_with_a_message(service, args, code, message):
    result = run("score", "model", "encounters.csv", *args, cwd=service)
    assert result.returncode == code, result.stdout + result.stderr
    assert_no_traceback(result)
    assert message in result.stdout + result.stderr
    assert "pw@" not in result.stdout + result.stderr


def test_data_breaking_the_contract_is_reported_and_nothing_written(service, tmp_path):
    encounters = pacsv.read_csv(service / "encounters.csv").to_pandas()
    bad = with_cell(encounters, 4, "empathy", 9)
    write_csv(bad, tmp_path / "bad.csv")
    result = run("score", service / "model", "bad.csv", "--out", "scores.csv", cwd=tmp_path)
    assert result.returncode == 1
    assert_no_traceback(result)
    assert "breaks the data contract; nothing was computed or written" in result.stdout
    assert not (tmp_path / "scores.csv").exists() and not (tmp_path / "scores.sqlite").exists()


@pytest.fixture(scope="module")
def refusing(service, tmp_path_factory) -> Path:
    """Models that score refuses to use on some tables, and those tables: ``unfit/`` (marked
    unfit for use), ``per_practitioner/`` (a rule of 3 flags per practitioner) with
    ``no_practitioner.csv`` (no practitioner_id) and ``practitioner_gaps.csv`` (some
    empty), and ``bad.csv`` (breaks the contract)."""
    tmp = tmp_path_factory.mktemp("refusing")
    model, manifest = load_model(service / "model")
    unfit = manifest.model_copy(update={"fit_for_use": False, "unfit_reason": "AUROC 0.5"})
    save_model(model, tmp / "unfit", unfit)
    encounters = simulate_encounters(700, seed=31, config=CONFIG).encounters
    known = encounters["attended_next"].notna()
    rule = choose_flag_rule(
        encounters.loc[known, "attended_next"].astype(int),
        model.predict_proba(encounters[known]),
        "per_practitioner",
        3,
        encounters.loc[known, "practitioner_id"],
    )
    save_model(model, tmp / "per_practitioner", manifest.model_copy(update={"flag_rule": rule}))
    write_csv(encounters.drop(columns="practitioner_id"), tmp / "no_practitioner.csv")
    gaps = encounters["practitioner_id"].mask(encounters.index < 5)
    write_csv(encounters.assign(practitioner_id=gaps), tmp / "practitioner_gaps.csv")
    write_csv(with_cell(encounters, 4, "empathy", 9), tmp / "bad.csv")
    # a model of another outcome: other score columns
    other, other_manifest = model_with_manifest(encounters, "adherent", "logistic", CONFIG, 3)
    save_model(other, tmp / "adherent", other_manifest)
    return tmp


def _folder(path: Path) -> list[str]:
    return sorted(str(p.relative_to(path)) for p in path.rglob("*"))


@pytest.mark.parametrize(
    ("model", "data", "extra", "code", "message"),
    [
        ("model", "encounters.csv", ["--out", "new/scores.txt"], 2, "use a .csv"),
        ("unfit", "encounters.csv", [], 2, "marked unfit for use: AUROC 0.5"),
        ("model", "bad.csv", [], 1, "breaks the data contract; nothing was computed"),
        (
            "per_practitioner",
            "no_practitioner.csv",
            [],
            1,
            "flags 3 encounters per practitioner, but the encounter table has no "
            "'practitioner_id' column",
        ),
        (
            "per_practitioner",
            "practitioner_gaps.csv",
            [],
            1,
            "'practitioner_id' is empty in 5 encounter(s); fill it in",
        ),
        ("model", "encounters.csv", ["--db", "nosuchdb://u:pw@host/x"], 2, "not a database URL"),
        (
            "model",
            "encounters.csv",
            ["--db", "sqlite:///blocker/scores.sqlite"],
            2,
            # refused before the model is loaded or the data read
            "cannot write the database 'sqlite:///blocker/scores.sqlite': 'blocker' is a "
            "file, not a folder",
        ),
        # the database can be made, the file cannot: the database goes too
        (
            "model",
            "encounters.csv",
            ["--out", "blocker/scores.csv", "--db", "sqlite:///newdb/scores.sqlite"],
            2,
            "cannot write 'blocker/scores.csv'",
        ),
    ],
)
def test_a_refused_or_failed_score_leaves_the_folder_as_it_was(
    service, refusing, tmp_path, model, data, extra, code, message
):
    for name in ("encounters.csv",):
        (tmp_path / name).write_bytes((service / name).read_bytes())
    for name in ("bad.csv", "no_practitioner.csv", "practitioner_gaps.csv"):
        (tmp_path / name).write_bytes((refusing / name).read_bytes())
    (tmp_path / "blocker").write_text("a file where a folder would go\n")
    model_dir = service / "model" if model == "model" else refusing / model
    before = _folder(tmp_path)
    extra = extra if "--out" in extra else ["--out", "new/scores.csv", *extra]
    result = run("score", model_dir, data, *extra, cwd=tmp_path)
    assert result.returncode == code, result.stdout + result.stderr
    assert_no_traceback(result)
    assert message in result.stdout + result.stderr
    assert _folder(tmp_path) == before
