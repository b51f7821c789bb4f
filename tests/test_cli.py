"""Tests of the ``engagekit`` command, run as a user runs it: the console script in a
subprocess. Exit codes: 0 success, 1 the data breaks the contract, 2 unusable input or
config. A traceback on stderr is always a bug."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest

from _cli import assert_no_traceback, run
from _factories import ATTRIBUTES, COLUMNS, read_raw_csv, valid_encounter_rows, with_cell, write_csv
from engagekit import read_encounters, validate_encounters

# --------------------------------------------------------------------------- the ten problems

# 10 patients x 3 sessions (patient k's session s on row 3(k-1)+s); one kind of problem
# per patient, so no problem spills over onto another row of the same patient.
TEN_PROBLEMS = [
    (1, "patient_id", "  ", "not_blank"),
    (5, "encounter_id", None, "not_nullable"),
    (9, "session_number", "2.5", "whole_number"),
    (10, "session_number", "0", "bounds"),
    (14, "encounter_id", "E004-2", "unique_over_table"),  # also reported on row 11
    (18, "encounter_date", "03/02/2025", "iso_date"),
    (20, "encounter_date", "2024-12-01", "non_decreasing_encounter_date"),
    (22, "treatment", "yoga", "allowed_values"),
    (26, "empathy", "6", "bounds"),
    (30, "adherent", "yes", "allowed_values"),
]
EXPECTED_PROBLEMS = {(row, column, check) for row, column, _, check in TEN_PROBLEMS} | {
    (11, "encounter_id", "unique_over_table")
}
EXPECTED_BAD_ROWS = [1, 5, 9, 10, 11, 14, 18, 20, 22, 26, 30]


@pytest.fixture
def ten_problem_file(tmp_path) -> Path:
    table = valid_encounter_rows(10, 3)
    for row, column, value, _ in TEN_PROBLEMS:
        table = with_cell(table, row, column, value)
    return write_csv(table, tmp_path / "ten_problems.csv")


def test_the_ten_problem_file_is_reported_in_full(ten_problem_file, tmp_path):
    result = run("validate", ten_problem_file, cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    assert_no_traceback(result)
    assert "11 problem(s) in 11 of 30 rows" in result.stdout
    lines = result.stdout.splitlines()
    for row, column, _ in sorted(EXPECTED_PROBLEMS):
        pattern = re.compile(rf"^\W*{row}\W+[^│|]*[│|]\s*{column}\s*[│|]")
        assert any(pattern.match(line) for line in lines), f"row {row} {column} not shown"


def test_quarantine_holds_exactly_the_offending_rows(ten_problem_file, tmp_path):
    quarantine, good = tmp_path / "Q.csv", tmp_path / "G.csv"
    result = run(
        "validate", ten_problem_file, "--quarantine", quarantine, "--good", good, cwd=tmp_path
    )
    assert result.returncode == 1, result.stderr
    assert_no_traceback(result)
    assert re.search(r"\b19 rows good, 11 quarantined\b", result.stdout), result.stdout

    source = read_raw_csv(ten_problem_file)
    bad = read_raw_csv(quarantine)
    kept = read_raw_csv(good)
    assert list(bad.columns) == ["row", *COLUMNS]
    assert list(kept.columns) == list(COLUMNS)
    assert bad["row"].astype(int).tolist() == EXPECTED_BAD_ROWS
    # every input row exactly once across good and quarantine, values as written
    good_rows = [r for r in range(1, 31) if r not in EXPECTED_BAD_ROWS]
    rebuilt = pd.concat([kept.assign(row=[str(r) for r in good_rows]), bad])
    rebuilt = rebuilt.sort_values("row", key=lambda r: r.astype(int)).drop(columns="row")
    pd.testing.assert_frame_equal(rebuilt.reset_index(drop=True), source)
    assert bad.loc[0, "patient_id"] == "  "


def test_json_lists_every_problem(ten_problem_file, tmp_path):
    result = run("validate", ten_problem_file, "--json", "--max-problems", "3", cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    assert_no_traceback(result)
    report = json.loads(result.stdout)
    assert report["valid"] is False
    assert (report["n_rows"], report["n_good_rows"], report["n_bad_rows"]) == (30, 19, 11)
    assert report["n_problems"] == 11
    found = {(p["row"], p["column"], p["check"]) for p in report["problems"]}
    assert found == EXPECTED_PROBLEMS
    by_row = {p["row"]: p for p in report["problems"]}
    assert by_row[22]["value"] == "yoga"
    assert by_row[22]["encounter_id"] == "E008-1"
    assert by_row[5]["value"] is None
    assert by_row[14]["detail"] == "also on row(s) 11"


# --------------------------------------------------------------------------- exit codes


def _valid(tmp: Path) -> Path:
    return write_csv(valid_encounter_rows(4, 3), tmp / "valid.csv")


def _no_treatment_column(tmp: Path) -> Path:
    return write_csv(valid_encounter_rows(2, 2).drop(columns="treatment"), tmp / "t.csv")


def _binary(tmp: Path) -> Path:
    (tmp / "b.csv").write_bytes(b"\x00\x01PK" * 100)
    return tmp / "b.csv"


@pytest.mark.parametrize(
    ("make", "extra", "code", "message"),
    [
        (_valid, [], 0, "Valid: 12 rows meet the encounter contract"),
        (lambda t: t / "missing.csv", [], 2, "does not exist"),
        (_binary, [], 2, "binary"),
        (_no_treatment_column, [], 2, "required column(s) 'treatment' missing"),
    ],
    ids=["valid", "missing-file", "binary", "missing-column"],
)
def test_validate_exit_codes(tmp_path, make, extra, code, message):
    result = run("validate", make(tmp_path), *extra, cwd=tmp_path)
    assert result.returncode == code, result.stderr
    assert_no_traceback(result)
    assert message in " ".join((result.stdout + result.stderr).split())


def test_validate_a_database_with_a_bad_query_is_unreadable(tmp_path):
    import sqlalchemy as sa

    engine = sa.create_engine(f"sqlite:///{tmp_path / 's.db'}")
    valid_encounter_rows(1, 2).to_sql("visits", engine, index=False)
    engine.dispose()
    url = f"sqlite:///{tmp_path / 's.db'}"
    result = run("validate", url, "--query", "SELECT * FROM sessions", cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert_no_traceback(result)
    assert "internal error" not in result.stderr


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("attributes:\n  scale: {min: 5, max: 1}\n  items: []\n", "attributes.scale"),
        ("- treatments\n", "must be a YAML mapping"),
    ],
    ids=["scale-reversed", "yaml-list"],
)
def test_a_bad_config_exits_2_with_a_short_message(tmp_path, text, key):
    (tmp_path / "bad.yaml").write_text(text)
    data = _valid(tmp_path)
    result = run("validate", data, "--config", tmp_path / "bad.yaml", cwd=tmp_path)
    assert result.returncode == 2
    assert_no_traceback(result)
    assert key in result.stderr
    assert "bad.yaml" in " ".join(result.stderr.split())
    assert len(result.stderr.strip().splitlines()) <= 8
    assert result.stdout.strip() == ""


def test_duplicate_session_number_does_not_print_the_patient_id(tmp_path):
    table = valid_encounter_rows(2, 2)
    table["patient_id"] = ["PATIENT-SECRET-9", "PATIENT-SECRET-9", "P2", "P2"]
    table = with_cell(table, 2, "session_number", "1")
    path = write_csv(table, tmp_path / "t.csv")
    for args in ([], ["--json"]):
        result = run("validate", path, *args, cwd=tmp_path)
        assert result.returncode == 1
        assert_no_traceback(result)
        assert "same value on row(s) 1" in result.stdout
        assert "PATIENT-SECRET-9" not in result.stdout + result.stderr


# --------------------------------------------------------------------------- help


@pytest.mark.parametrize(
    ("command", "words"),
    [
        ("validate", ["data contract", "--quarantine", "--json", "--table", "--query"]),
        ("simulate", ["ground truth", "--patients", "--seed", "--truth", "--heterogeneity"]),
    ],
)
def test_help_explains_each_command(tmp_path, command, words):
    result = run(command, "--help", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    text = " ".join(result.stdout.split())
    for word in words:
        assert word in text


# --------------------------------------------------------------------------- simulate, demo


def test_simulate_twice_gives_identical_files(tmp_path):
    outputs = []
    for attempt in ("a", "b"):
        out, truth = tmp_path / f"x_{attempt}.csv", tmp_path / f"t_{attempt}.csv"
        result = run(
            "simulate",
            "--patients",
            "50",
            "--seed",
            "1",
            "--out",
            out,
            "--truth",
            truth,
            cwd=tmp_path,
        )
        assert result.returncode == 0, result.stderr
        assert "Simulated 50 patients" in result.stdout
        outputs.append((out.read_bytes(), truth.read_bytes()))
    assert outputs[0] == outputs[1]
    encounters = read_encounters(tmp_path / "x_a.csv")
    assert encounters["patient_id"].nunique() == 50
    assert validate_encounters(encounters).valid
    truth = pd.read_csv(tmp_path / "t_a.csv")
    assert len(truth) == len(encounters)
    assert {"p_attended_next", "p_adherent"} <= set(truth.columns)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("empathy:yoga:0.5", "unknown treatment 'yoga'"),
        ("empathy:cbt_online:lots", "'lots' (part 3) is not a number"),
    ],
)
def test_simulate_with_a_bad_heterogeneity_exits_2(tmp_path, spec, message):
    out = tmp_path / "x.csv"
    result = run("simulate", "--patients", "5", "--out", out, "--heterogeneity", spec, cwd=tmp_path)
    assert result.returncode == 2
    assert_no_traceback(result)
    assert message in " ".join(result.stderr.split())
    assert not out.exists()


@pytest.mark.parametrize(
    ("dropped", "summary", "note"),
    [
        ([], None, None),
        (
            ["empathy"],
            "but training, the cross-treatment analysis and scoring cannot run (rating "
            "column(s) 'empathy' absent",
            None,
        ),
        (
            list(ATTRIBUTES),
            "cannot run (rating column(s) 'approachability', 'empathy'",
            "none of the configured rating columns is in the table",
        ),
        (["adherent"], "but no model or analysis of 'adherent' (the column is absent)", None),
    ],
)
def test_validate_says_in_its_summary_line_what_cannot_run(tmp_path, dropped, summary, note):
    path = write_csv(valid_encounter_rows(3, 2).drop(columns=dropped), tmp_path / "r.csv")
    result = run("validate", path, cwd=tmp_path)
    assert result.returncode == 0
    line = next(line for line in result.stdout.splitlines() if line.startswith("Valid:"))
    if summary is None:
        assert "cannot run" not in line and "but" not in line
    else:
        assert summary in line
    if note is None:
        assert "none of the configured" not in result.stdout
    else:
        assert note in result.stdout


def test_validate_json_lists_what_cannot_run(tmp_path):
    path = write_csv(valid_encounter_rows(3, 2).drop(columns=["empathy"]), tmp_path / "r.csv")
    result = run("validate", path, "--json", cwd=tmp_path)
    assert result.returncode == 0
    payload = json.loads(result.stdout)
    assert len(payload["cannot_run"]) == 1 and "'empathy'" in payload["cannot_run"][0]


def test_the_command_starts_without_the_heavy_stack(tmp_path):
    """``engagekit --help`` (a real process) loads neither pandas nor scikit-learn: they
    cost over a second of start-up (benchmarks/bench_startup.py has the timings)."""
    import subprocess
    import sys

    probe = (
        "import sys, runpy; sys.argv = ['engagekit', '--help']\n"
        "try:\n"
        "    runpy.run_module('engagekit', run_name='__main__')\n"
        "except SystemExit as e:\n"
        "    assert e.code == 0, e.code\n"
        "heavy = sorted(m for m in ('pandas', 'sklearn', 'statsmodels', 'matplotlib', 'numpy')"
        " if m in sys.modules)\n"
        "print('HEAVY', heavy, file=sys.stderr)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, cwd=tmp_path, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert "Usage: engagekit" in done.stdout
    assert "HEAVY []" in done.stderr


def test_output_cut_short_by_its_reader_ends_quietly(tmp_path):
    """``engagekit validate BIG --json | head -1``: the reader leaves early, and engagekit
    stops without a traceback or an 'internal error' (a real process and a real pipe)."""
    import subprocess

    from _cli import ENGAGEKIT

    table = valid_encounter_rows(400, 3)
    table["empathy"] = "9"  # 1,200 problems: far more JSON than a pipe's buffer holds
    path = write_csv(table, tmp_path / "big.csv")
    with subprocess.Popen(
        [ENGAGEKIT, "validate", str(path), "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as process:
        assert process.stdout.readline().strip() == "{"
        process.stdout.close()  # as head does after its line
        stderr = process.stderr.read()
        process.wait(timeout=60)
    assert process.returncode == 1
    assert "Traceback" not in stderr and "internal error" not in stderr, stderr
