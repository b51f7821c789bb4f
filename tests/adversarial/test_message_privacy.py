"""Privacy in messages: no message prints a whole data row, and quoted values are short.

A header-less CSV once printed a patient's full record, ids included, as "found: …",
because the first line was read as the header. A message shows at most the row number
and the offending column; a value it quotes is cut to a short excerpt.
"""

from __future__ import annotations

import pandas as pd
import pytest

from _cli import assert_no_traceback, run
from _factories import valid_encounter_rows, with_cell, write_csv
from engagekit import read_encounters, validate_encounters
from engagekit.errors import ContractError, DataReadError
from engagekit.features import EncounterFeatures

#: a patient's record as a service exports it, no two values alike
RECORD = {
    "patient_id": "NHS9434765919",
    "encounter_id": "ENC-77310-A",
    "session_number": "3",
    "encounter_date": "2025-03-14",
    "treatment": "cbt_online",
    "practitioner_id": "DR-KOWALSKA",
    "practitioner_role": "psychologist",
    "approachability": "4.5",
    "empathy": "2.5",
    "support": "3.5",
    "active_listening": "1.5",
    "decision_making": "4",
    "self_kindness": "5",
    "age_band": "40-49",
    "gender": "non_binary",
    "next_session_due": "1",
    "attended_next": "0",
}
#: values long enough that finding one in a message means the record leaked
SECRETS = [v for v in RECORD.values() if len(v) >= 4]


def _headerless(path, n_records: int = 3):
    rows = [RECORD] + [
        {**RECORD, "patient_id": f"NHS{k}", "encounter_id": f"ENC-{k}"} for k in range(n_records)
    ]
    path.write_text(
        "\n".join(",".join(row.values()) for row in rows) + "\n",
        encoding="utf-8",
    )
    return path


def _assert_private(text: str) -> None:
    leaked = [s for s in SECRETS if s in text]
    assert not leaked, f"the message quotes {leaked}: {text}"


def test_a_headerless_csv_quotes_none_of_the_first_record(tmp_path):
    # the example
    path = _headerless(tmp_path / "export.csv")
    with pytest.raises(DataReadError) as info:
        validate_encounters(read_encounters(path))
    message = str(info.value)
    _assert_private(message)
    assert "required column(s) 'patient_id', 'encounter_id', 'session_number'" in message
    assert "17 column(s) found" in message and "header row" in message


def test_a_headerless_csv_on_the_command_line(tmp_path):
    _headerless(tmp_path / "export.csv")
    result = run("validate", "export.csv", cwd=tmp_path)
    assert result.returncode == 2
    assert_no_traceback(result)
    _assert_private(result.stdout + result.stderr)


def test_a_headerless_csv_whose_first_record_repeats_a_value(tmp_path):
    # the practitioner's id twice: read as a header, that is a repeated column name
    record = {**RECORD, "age_band": RECORD["practitioner_id"]}
    path = tmp_path / "export.csv"
    path.write_text(",".join(record.values()) + "\n" + ",".join(RECORD.values()) + "\n")
    with pytest.raises(DataReadError, match=r"columns 6 and 14") as info:
        read_encounters(path)
    _assert_private(str(info.value))


def test_a_misspelt_header_is_suggested_not_listed(tmp_path):
    table = valid_encounter_rows(2, 2).rename(columns={"patient_id": "Patient_ID"})
    with pytest.raises(DataReadError, match=r"for 'patient_id' did you mean 'Patient_ID'\?"):
        validate_encounters(read_encounters(write_csv(table, tmp_path / "t.csv")))


@pytest.mark.parametrize(
    ("damage", "expected"),
    [
        (lambda lines: lines.insert(2, ",".join(RECORD.values()) + ",x,y,z"), "fields"),
        (lambda lines: lines.insert(2, '"' + ",".join(RECORD.values())), "CSV"),
        (lambda lines: lines.insert(2, ",".join(list(RECORD.values())[:5])), "fields"),
    ],
    ids=["a row too long", "an unclosed quote", "a row too short"],
)
def test_a_malformed_row_is_named_by_line_not_quoted(tmp_path, damage, expected):
    lines = write_csv(valid_encounter_rows(2, 2), tmp_path / "t.csv").read_text().splitlines()
    damage(lines)
    path = tmp_path / "t.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(DataReadError, match=expected) as info:
        validate_encounters(read_encounters(path))
    _assert_private(str(info.value))


@pytest.mark.parametrize("column", ["empathy", "session_number", "treatment", "encounter_date"])
def test_a_long_cell_is_quoted_as_a_short_excerpt(column):
    table = with_cell(valid_encounter_rows(2, 2), 3, column, "; ".join(SECRETS) * 50)
    report = validate_encounters(table)
    (value,) = report.problems.loc[report.problems["column"] == column, "value"]
    assert len(value) <= 60 and value.endswith("…")


def test_a_long_encounter_id_is_cut_in_the_report():
    table = with_cell(valid_encounter_rows(2, 2), 3, "encounter_id", "E" * 10_000)
    table = with_cell(table, 3, "empathy", "9")
    report = validate_encounters(table)
    assert all(len(e) <= 60 for e in report.problems["encounter_id"].dropna())


def test_a_repeated_session_names_the_row_not_the_patient():
    typed = pd.DataFrame(
        {
            "patient_id": [RECORD["patient_id"]] * 2,
            "session_number": [3, 3],
            "treatment": ["cbt_online"] * 2,
            "empathy": [4.0, 3.0],
        }
    )
    with pytest.raises(ContractError, match=r"first at row 2, session 3") as info:
        EncounterFeatures(("empathy",), ("cbt_online",)).fit_transform(typed)
    _assert_private(str(info.value))


def test_a_parquet_error_is_short(tmp_path):
    # the file's footer holds the column statistics, the record's values among them
    pd.DataFrame([RECORD]).to_parquet(tmp_path / "t.parquet")
    data = (tmp_path / "t.parquet").read_bytes()
    (tmp_path / "t.parquet").write_bytes(data[len(data) // 3 :])
    with pytest.raises(DataReadError, match="cannot be read as Parquet") as info:
        read_encounters(tmp_path / "t.parquet")
    assert len(str(info.value)) <= 300
    _assert_private(str(info.value))


def test_a_database_error_is_short(tmp_path):
    import sqlite3

    with sqlite3.connect(tmp_path / "s.db") as conn:
        valid_encounter_rows(1, 1).to_sql("encounters", conn, index=False)
    conn.close()
    query = f"SELECT * FROM encounters WHERE patient_id = '{'x' * 5000}' AND no_such_column"
    with pytest.raises(DataReadError, match="no such column") as info:
        read_encounters(f"sqlite:///{tmp_path / 's.db'}", query=query)
    assert len(str(info.value)) <= 400
