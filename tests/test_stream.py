"""A Parquet file read in row groups and worked on in buckets of whole patients gives the
report and the scores of the table held whole."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from _cli import assert_no_traceback, run
from _factories import model_with_manifest, valid_encounter_rows, with_cell, write_csv
from engagekit import load_config, read_encounters, simulate_encounters, validate_encounters
from engagekit.flags import choose_flag_rule
from engagekit.io._model_store import save_model
from engagekit.io._stream import bucket_of, split_parquet, validate_buckets
from engagekit.validation import coerce_encounters
from test_spark import _broken_tables, _missing_as_none, _stacked

CONFIG = load_config()


def _same_report(streamed, local, name: str) -> None:
    pd.testing.assert_frame_equal(
        _missing_as_none(streamed.problems), _missing_as_none(local.problems), obj=name
    )
    assert (streamed.n_rows, streamed.bad_rows.tolist(), streamed.absent_columns) == (
        local.n_rows, local.bad_rows.tolist(), local.absent_columns
    ), name  # fmt: skip


@pytest.mark.parametrize("chunk_rows", [3, 40, 100_000])
def test_streamed_validation_finds_what_local_validation_finds(tmp_path, chunk_rows):
    """The broken-file corpus (every rule case, a table with several problems and
    duplicates across patients, a valid table), stacked into one Parquet file of text
    cells: the same problems, row numbers, details and bad rows whether the buckets
    hold one patient or the whole file."""
    cases = _broken_tables()
    corpus = _stacked(cases)
    write_csv(corpus, tmp_path / "corpus.csv")
    read_encounters(tmp_path / "corpus.csv").to_parquet(tmp_path / "corpus.parquet")
    local = validate_encounters(read_encounters(tmp_path / "corpus.parquet"), CONFIG)
    with split_parquet(tmp_path / "corpus.parquet", CONFIG, chunk_rows) as buckets:
        assert buckets.n_buckets == min(512, -(-len(corpus) // chunk_rows))
        streamed = validate_buckets(buckets, CONFIG)
    _same_report(streamed, local, f"chunk_rows {chunk_rows}")
    assert not local.valid and len(local.bad_rows) >= len(cases) - 2
    # a repeated encounter id across two patients' buckets is found and named both ways
    assert (local.problems["check"] == "unique_over_table").any()


def test_a_typed_parquet_file_with_pandas_index_and_dates_gives_the_local_report(tmp_path):
    """Typed columns (floats, nanosecond dates, nullable integers) and a pandas index
    stored as a column: the index is not a data column, as when pandas reads the file."""
    text = valid_encounter_rows(6, 4)
    typed = coerce_encounters(text, CONFIG).set_axis(pd.Index(np.arange(24) * 7, name="idx"))
    typed.loc[typed.index[5], "empathy"] = 9.0
    typed.loc[typed.index[9], "encounter_date"] = pd.Timestamp("2020-01-01")
    typed.loc[typed.index[13], "encounter_id"] = typed["encounter_id"].iloc[2]
    typed.to_parquet(tmp_path / "typed.parquet")  # the index is kept, as a column
    local = validate_encounters(read_encounters(tmp_path / "typed.parquet"), CONFIG)
    with split_parquet(tmp_path / "typed.parquet", CONFIG, 4) as buckets:
        assert "idx" not in buckets.columns
        streamed = validate_buckets(buckets, CONFIG)
    _same_report(streamed, local, "typed")
    assert set(local.problems["column"]) == {"empathy", "encounter_date", "encounter_id"}


def test_each_patient_is_in_one_bucket_in_the_files_order_whatever_the_files_order(tmp_path):
    table = simulate_encounters(300, seed=5, config=CONFIG).encounters
    shuffled = table.sample(frac=1.0, random_state=1).reset_index(drop=True)
    shuffled.to_parquet(tmp_path / "shuffled.parquet", index=False)
    with split_parquet(tmp_path / "shuffled.parquet", CONFIG, 100) as buckets:
        seen, where = [], {}
        for k in range(buckets.n_buckets):
            frame, rows = buckets.raw(k)
            assert (np.diff(rows) > 0).all()  # the file's order within the bucket
            pd.testing.assert_frame_equal(
                frame, shuffled.iloc[rows].reset_index(drop=True), check_dtype=False
            )
            for patient in frame["patient_id"].unique():
                assert where.setdefault(patient, k) == k  # never in two buckets
            seen.append(rows)
        assert buckets.n_buckets == -(-len(table) // 100)
    assert np.sort(np.concatenate(seen)).tolist() == list(range(len(table)))
    # the bucket of a patient does not depend on the other rows
    ids = shuffled["patient_id"]
    assert (bucket_of(ids.iloc[::3], 7) == bucket_of(ids, 7)[::3]).all()


def test_a_broken_or_headless_parquet_file_gets_a_message_and_exit_2(tmp_path):
    (tmp_path / "broken.parquet").write_bytes(b"PAR1 this is not a parquet file PAR1")
    table = simulate_encounters(20, seed=1, config=CONFIG).encounters
    table.drop(columns="patient_id").to_parquet(tmp_path / "nopatient.parquet")
    for name, message in (
        ("broken.parquet", "'broken.parquet' cannot be read as Parquet"),
        ("nopatient.parquet", "required column(s) 'patient_id' missing"),
    ):
        result = run("validate", name, cwd=tmp_path)
        assert result.returncode == 2, result.stdout + result.stderr
        assert_no_traceback(result)
        assert message in " ".join((result.stdout + result.stderr).split()), name


def test_engagekit_validate_of_a_parquet_file_prints_the_report_of_the_csv(tmp_path):
    """``engagekit validate`` streams the Parquet file: the JSON report and the
    quarantined rows are those of the same table given as CSV (read whole)."""
    table = valid_encounter_rows(8, 4)
    for row, column, value in ((3, "empathy", "9"), (11, "session_number", "0"),
                               (20, "encounter_id", "E001-2")):  # fmt: skip
        table = with_cell(table, row, column, value)
    write_csv(table, tmp_path / "t.csv")
    read_encounters(tmp_path / "t.csv").to_parquet(tmp_path / "t.parquet", index=False)
    whole = run("validate", "t.csv", "--json", "--quarantine", "q_whole.csv", cwd=tmp_path)
    streamed = run("validate", "t.parquet", "--json", "--quarantine", "q.csv", cwd=tmp_path)
    assert whole.returncode == streamed.returncode == 1, whole.stderr + streamed.stderr
    assert json.loads(streamed.stdout.replace("q.csv", "q_whole.csv")) == json.loads(whole.stdout)
    quarantined = pd.read_csv(tmp_path / "q.csv", dtype=str)
    rows = sorted({p["row"] for p in json.loads(whole.stdout)["problems"]})
    assert quarantined["row"].tolist() == [str(r) for r in rows]
    assert {"3", "11", "20"} <= set(rows and quarantined["row"])  # the broken cells' rows
    pd.testing.assert_frame_equal(quarantined, pd.read_csv(tmp_path / "q_whole.csv", dtype=str))


@pytest.fixture(scope="module")
def service(tmp_path_factory) -> Path:
    """A gbm model of re-attendance flagging the top 10%, one flagging 3 encounters per
    practitioner, and new patients as CSV and as Parquet, rows shuffled so that
    patients interleave."""
    tmp = tmp_path_factory.mktemp("stream")
    encounters = simulate_encounters(400, seed=31, config=CONFIG).encounters
    model, manifest = model_with_manifest(encounters, "attended_next", "gbm", CONFIG, seed=3)
    save_model(model, tmp / "model", manifest)
    known = encounters["attended_next"].notna()
    rule = choose_flag_rule(
        encounters.loc[known, "attended_next"].astype(int),
        model.predict_proba(encounters[known]),
        "per_practitioner",
        3,
        encounters.loc[known, "practitioner_id"],
    )
    save_model(model, tmp / "per_practitioner", manifest.model_copy(update={"flag_rule": rule}))
    new = simulate_encounters(300, seed=32, config=CONFIG).encounters
    new = new.sample(frac=1.0, random_state=2).reset_index(drop=True)
    write_csv(new, tmp / "new.csv")
    read_encounters(tmp / "new.csv").to_parquet(tmp / "new.parquet", index=False)
    return tmp


@pytest.mark.parametrize("model", ["model", "per_practitioner"])
def test_engagekit_score_of_a_parquet_file_gives_the_scores_of_the_table_held_whole(
    service, tmp_path, model
):
    """The CSV is read whole and scored in chunks of whole patients; the Parquet file is
    split into buckets: every encounter's probability and SHAP values agree, the flags
    (set on the whole table by a capacity rule) and reasons are identical."""
    whole = run("score", service / model, service / "new.csv", "--out", "whole.parquet",
                cwd=tmp_path)  # fmt: skip
    streamed = run("score", service / model, service / "new.parquet", "--out", "s.parquet",
                   "--chunk-rows", "300", cwd=tmp_path)  # fmt: skip
    assert whole.returncode == streamed.returncode == 0, whole.stderr + streamed.stderr
    said = " ".join(streamed.stdout.split())
    assert (
        said.split(" (run")[0].split("Scores written")[0]
        == " ".join(whole.stdout.split()).split("Scores written")[0]
    )  # the same counts of encounters and flags
    here = pd.read_parquet(tmp_path / "whole.parquet")
    there = pd.read_parquet(tmp_path / "s.parquet")
    assert len(there) == len(here) and there["encounter_id"].is_unique
    there = there.set_index("encounter_id").loc[here["encounter_id"]].reset_index()
    assert list(there.columns) == list(here.columns)
    numbers = [c for c in here.columns if here[c].dtype.kind == "f"]
    np.testing.assert_allclose(there[numbers].to_numpy(), here[numbers].to_numpy(), rtol=0,
                               atol=1e-12)  # fmt: skip
    for column in ("flag", "reasons", "patient_id", "treatment", "encounter_date"):
        assert there[column].tolist() == here[column].tolist(), column
    assert set(here["flag"]) == {"high", "medium", "low"}


def test_a_streamed_run_rerun_is_the_same_run(service, tmp_path):
    """The run key of a streamed file is stable: the same command again finds every
    chunk in the database and writes the same file."""
    args = ("score", service / "model", service / "new.parquet", "--out", "s.csv",
            "--chunk-rows", "200")  # fmt: skip
    first = run(*args, cwd=tmp_path)
    again = run(*args, cwd=tmp_path)
    assert first.returncode == again.returncode == 0, first.stderr + again.stderr
    assert "(run 1)" in first.stdout and "(run 1)" in " ".join(again.stdout.split())
    assert "chunks were already in the database" in " ".join(again.stdout.split())


def test_a_streamed_table_missing_practitioners_is_refused_as_the_whole_table(service, tmp_path):
    table = read_encounters(service / "new.parquet")
    table.loc[[3, 50], "practitioner_id"] = None
    table.to_parquet(tmp_path / "gaps.parquet", index=False)
    result = run("score", service / "per_practitioner", "gaps.parquet", "--out", "s.csv",
                 cwd=tmp_path)  # fmt: skip
    assert result.returncode == 1, result.stdout + result.stderr
    assert_no_traceback(result)
    assert "'practitioner_id' is empty in 2 encounter(s)" in " ".join(result.stderr.split())


def test_a_streamed_table_gives_the_training_sample_of_the_table_held_whole(tmp_path):
    """The patients drawn for training and for validation outside the sample, drawn
    bucket by bucket, are those drawn from the table held whole, rows in the file's
    order; a table not above the size is given back whole."""
    from engagekit.io._stream import EncounterChunks, sample_chunks
    from engagekit.models import sample_for_training

    table = simulate_encounters(500, seed=8, config=CONFIG).encounters
    table = table.sample(frac=1.0, random_state=3).reset_index(drop=True)
    table.to_parquet(tmp_path / "t.parquet", index=False)
    whole = coerce_encounters(read_encounters(tmp_path / "t.parquet"), CONFIG)
    sizes = {"sample_above": 1000, "sample_rows": 900, "validation_rows": 700, "seed": 4}
    expected_train, expected_held = sample_for_training(whole, **sizes)
    assert expected_held is not None
    with split_parquet(tmp_path / "t.parquet", CONFIG, 250) as buckets:
        chunks = EncounterChunks(buckets, CONFIG)
        train, held = sample_chunks(chunks, **sizes)
        everything, none = sample_chunks(chunks, **{**sizes, "sample_above": len(table)})
    pd.testing.assert_frame_equal(train, expected_train)
    pd.testing.assert_frame_equal(held.frame(), expected_held.encounters)
    assert (held.n_encounters, held.n_patients) == (
        expected_held.n_encounters, expected_held.n_patients
    )  # fmt: skip
    assert none is None
    pd.testing.assert_frame_equal(everything, whole)


def test_engagekit_train_on_a_parquet_file_fits_the_csvs_sample(tmp_path):
    """A Parquet file above --sample-above is checked in buckets and only its sample and
    held-out patients are gathered: the same model and metrics as from the CSV read
    whole."""
    table = simulate_encounters(600, seed=9, config=CONFIG).encounters
    table = table.sample(frac=1.0, random_state=4).reset_index(drop=True)
    write_csv(table, tmp_path / "t.csv")
    read_encounters(tmp_path / "t.csv").to_parquet(tmp_path / "t.parquet", index=False)
    options = ("--target", "adherent", "--model", "logistic", "--folds", "2", "--bootstrap",
               "0", "--sample-above", "3000", "--sample-rows", "2000")  # fmt: skip
    whole = run("train", "t.csv", *options, "--out", "whole", cwd=tmp_path)
    streamed = run("train", "t.parquet", *options, "--out", "streamed", cwd=tmp_path)
    assert whole.returncode == streamed.returncode == 0, whole.stderr + streamed.stderr
    assert "Fitted on a random sample" in " ".join(streamed.stdout.split())
    assert streamed.stdout.replace("streamed", "whole") == whole.stdout
    metrics = [json.loads((tmp_path / name / "metrics.json").read_text())
               for name in ("whole", "streamed")]  # fmt: skip
    assert metrics[1]["outside_sample_validation"] == metrics[0]["outside_sample_validation"]
    for key in ("auroc", "brier", "n_encounters", "n_patients", "flag_rule", "training_steps"):
        assert metrics[1][key] == metrics[0][key], key
