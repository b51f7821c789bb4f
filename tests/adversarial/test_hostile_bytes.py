"""Hostile bytes through the readers: a table and a report, or one clear error.

Whatever bytes a file holds, ``read_encounters`` followed by ``validate_encounters``
either gives a table and a report that loses no row, or raises ``DataReadError`` or
``ContractError`` with a bounded message: never another exception, never a hang, never
a quoted value longer than an excerpt.
"""

from __future__ import annotations

import io
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from _factories import COLUMNS, valid_encounter_rows
from engagekit import read_encounters, validate_encounters
from engagekit.errors import ContractError, DataReadError

#: no message about a file is longer than this, whatever the file holds
MESSAGE_LIMIT = 1_000
#: the longest value the problem table quotes
VALUE_LIMIT = 60

_HEADER = ",".join(COLUMNS).encode()
_VALID = valid_encounter_rows(2, 2).to_csv(index=False).encode()


def _examples(n: int) -> settings:
    # no per-example deadline: on two shared cores the timings are too noisy for one
    return settings(
        max_examples=n, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
    )


#: cells that have broken readers somewhere: numbers out of reach, separators, quotes,
#: line breaks, NULs, formula starts and long runs
_NASTY_CELLS = st.sampled_from(
    [
        "1e23",
        "-1e23",
        "inf",
        "-Infinity",
        "nan",
        "1e309",
        "0x10",
        "9" * 400,
        "",
        " ",
        "NA",
        '"',
        '""',
        '"a,b"',
        "a\nb",
        "a\rb",
        "\x00",
        ";",
        "\t",
        "|",
        "=cmd()",
        "\ufeff",
        "x" * 5000,
        "2025-02-30",
        "True",
        "[1, 2]",
    ]
)


def _read_and_validate(path: Path) -> None:
    """The property: a report losing no row, or one of the two errors, short."""
    try:
        table = read_encounters(path)
        report = validate_encounters(table)
    except (DataReadError, ContractError) as e:
        assert len(str(e)) <= MESSAGE_LIMIT, str(e)[:MESSAGE_LIMIT]
        return
    assert report.n_rows == len(table)
    assert report.n_good_rows + report.n_bad_rows == len(table)
    assert all(len(v) <= VALUE_LIMIT for v in report.problems["value"].dropna())
    assert all(len(e) <= VALUE_LIMIT for e in report.problems["encounter_id"].dropna())


def _write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


@_examples(200)
@given(data=st.binary(max_size=2_000))
def test_random_bytes_as_csv(tmp_path, data):
    _read_and_validate(_write(tmp_path, "random.csv", data))


@_examples(200)
@given(data=st.binary(max_size=2_000))
def test_a_valid_header_then_random_bytes(tmp_path, data):
    _read_and_validate(_write(tmp_path, "header.csv", _HEADER + b"\n" + data))


@_examples(100)
@given(at=st.integers(0, len(_VALID)), data=st.binary(min_size=1, max_size=40))
def test_random_bytes_spliced_into_a_valid_table(tmp_path, at, data):
    _read_and_validate(_write(tmp_path, "spliced.csv", _VALID[:at] + data + _VALID[at:]))


@_examples(50)
@given(
    changes=st.lists(
        st.tuples(
            st.integers(0, 3),
            st.sampled_from(COLUMNS),
            _NASTY_CELLS | st.text(max_size=30),
        ),
        min_size=1,
        max_size=6,
    ),
    sep=st.sampled_from([",", ";", "\t", "|"]),
)
def test_hostile_cells_in_a_valid_table(tmp_path, changes, sep):
    table = valid_encounter_rows(2, 2)
    for row, column, value in changes:
        table.loc[row, column] = value
    text = io.StringIO()
    table.to_csv(text, index=False, sep=sep)
    data = text.getvalue().encode("utf-8", "surrogatepass")
    _read_and_validate(_write(tmp_path, "cells.csv", data))


@_examples(100)
@given(body=st.binary(max_size=600), name=st.sampled_from(["t.parquet", "t.pq", "t.csv"]))
def test_parquet_like_garbage(tmp_path, body, name):
    # the magic number at both ends, as a Parquet file has, and anything between
    _read_and_validate(_write(tmp_path, name, b"PAR1" + body + b"PAR1"))


@_examples(60)
@given(cut=st.integers(1, 2_000), flip=st.integers(0, 255))
def test_a_damaged_parquet_file(tmp_path, cut, flip):
    valid = tmp_path / "valid.parquet"
    valid_encounter_rows(2, 2).to_parquet(valid)
    data = bytearray(valid.read_bytes())
    data[cut % len(data)] ^= flip
    _read_and_validate(_write(tmp_path, "damaged.parquet", bytes(data[: len(data) - cut // 4])))
