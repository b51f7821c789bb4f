"""``validate`` and ``simulate``: check an encounter table, make one."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from ._app import app, err, out
from ._common import (
    STREAM_CHUNK_ROWS,
    ConfigOption,
    EncodingOption,
    EscapeFormulasOption,
    QueryOption,
    SepOption,
    Source,
    TableOption,
    is_streamed,
    print_validation_report,
    read_config,
    read_table,
    simulate_with_progress,
    with_progress,
)
from ._spark import Engine, EngineOption, MasterOption


# --------------------------------------------------------------------------- validate
def _validate_on_spark(
    data: str,
    cfg,
    local_only: tuple,
    sep: str | None,
    encoding: str,
    master: str | None,
    as_json: bool,
    max_problems: int,
) -> None:
    """``validate --engine spark``: the same report, from the same rules, on Spark."""
    from ..errors import ArgumentError
    from ..spark import validate as spark_validate
    from ..validation import table_coverage
    from ._spark import read_spark_table, spark_session

    if any(option is not None for option in local_only):
        raise ArgumentError(
            "--table, --query, --quarantine and --good are for the local engine; with "
            "--engine spark give a CSV or Parquet file"
        )
    with err.status("Checking the encounter table on Spark…"):
        frame = read_spark_table(spark_session(master), data, sep=sep, encoding=encoding)
        report = spark_validate(frame, cfg)
    columns = frame.columns
    if as_json:
        payload = report.to_dict()
        coverage = table_coverage(columns, cfg)
        payload["cannot_run"] = coverage.blocked()
        payload["notes"] = coverage.notes()
        print(json.dumps(payload, indent=2))
    else:
        print_validation_report(report, max_problems, cfg, columns=columns)
    raise typer.Exit(0 if report.valid else 1)


@app.command()
def validate(
    data: Annotated[
        str,
        typer.Argument(
            help="Encounter table: a CSV or Parquet file, or a SQLAlchemy URL "
            "(sqlite:///service.db) with --table or --query."
        ),
    ],
    config: ConfigOption = None,
    quarantine: Annotated[
        Path | None,
        typer.Option(
            help="Write the offending rows, exactly as read, to this CSV or Parquet "
            "file (with their data row number)."
        ),
    ] = None,
    good: Annotated[
        Path | None,
        typer.Option(help="Write the rows that broke no rule to this CSV or Parquet file."),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the full report as JSON on stdout.")
    ] = False,
    table: TableOption = None,
    query: QueryOption = None,
    encoding: EncodingOption = "utf-8",
    sep: SepOption = None,
    max_problems: Annotated[
        int, typer.Option(help="Problems listed on screen; --json lists all.", min=0)
    ] = 50,
    escape_formulas: EscapeFormulasOption = True,
    engine: EngineOption = Engine.LOCAL,
    master: MasterOption = None,
) -> None:
    """Check an encounter table against the data contract.

    Every problem is reported at once: data row number (the first row below the header
    is row 1), encounter_id, column, value and the rule it breaks. The summary line also
    says what a valid table cannot feed (a rating or outcome column absent). Exit 0 when
    the table is valid, 1 when it breaks the contract, 2 when it cannot be read at all (missing,
    empty, binary, not a table, a required column absent). With --quarantine the
    offending rows are written out and the command says how many rows are good and how
    many were quarantined; good + quarantined = all rows, always. A CSV written keeps
    the cells as read, except that text a spreadsheet would run as a formula gets a
    leading ' (see --no-escape-formulas).

    A Parquet file is read in row groups and checked in buckets of whole patients (in a
    temporary folder), with the memory of one bucket whatever the file's size, and the
    same report; with --good the table is read whole.
    """
    from ..io import write_table
    from ..io._write import check_writable
    from ..validation import split_by_validity, table_coverage, validate_encounters

    for path in (quarantine, good):
        if path is not None:
            check_writable(path)
    cfg = read_config(config)
    if engine is Engine.SPARK:
        _validate_on_spark(data, cfg, (table, query, quarantine, good), sep, encoding,
                           master, as_json, max_problems)  # fmt: skip
    source = Source(data, table, query, encoding, sep)
    if good is None and is_streamed(source):
        columns, report = _validate_streamed(source, cfg, quarantine, escape_formulas)
    else:
        with err.status("Reading and checking the encounter table…"):
            frame = read_table(source)
            report = validate_encounters(frame, cfg)
        columns = frame.columns
        if quarantine is not None or good is not None:
            good_frame, bad_frame = split_by_validity(frame, report)
            if quarantine is not None:
                write_table(bad_frame, quarantine, escape_formulas=escape_formulas)
            if good is not None:
                write_table(good_frame, good, escape_formulas=escape_formulas)
    if as_json:
        payload = report.to_dict()
        if quarantine is not None:
            payload["quarantine"] = str(quarantine)
        coverage = table_coverage(columns, cfg)
        payload["cannot_run"] = coverage.blocked()
        payload["notes"] = coverage.notes()
        print(json.dumps(payload, indent=2))
    else:
        print_validation_report(report, max_problems, cfg, columns=columns)
        if quarantine is not None:
            out.print(
                f"{report.n_good_rows:,} rows good, {report.n_bad_rows:,} quarantined "
                f"to {str(quarantine)!r} ({report.n_rows:,} rows read)."
            )
        if good is not None:
            out.print(f"{report.n_good_rows:,} good rows written to {str(good)!r}.")
    raise typer.Exit(0 if report.valid else 1)


def _validate_streamed(source: Source, cfg, quarantine: Path | None, escape_formulas: bool):
    """``(the columns, the report)`` of a Parquet file checked in buckets of whole
    patients; with ``quarantine``, the offending rows written there as read, in the
    file's order, with their data row number."""
    import numpy as np
    import pandas as pd

    from ..io import write_table
    from ..io._stream import split_parquet, validate_buckets

    with with_progress(split_parquet, source.data, cfg, STREAM_CHUNK_ROWS) as buckets:
        report = with_progress(validate_buckets, buckets, cfg)
        if quarantine is not None:
            parts, rows = [], []
            for k in range(buckets.n_buckets):
                frame, numbers = buckets.raw(k)
                bad = np.isin(numbers, report.bad_rows)
                parts.append(frame[bad])
                rows.append(numbers[bad])
            numbers = np.concatenate(rows) if rows else np.array([], dtype="int64")
            order = np.argsort(numbers, kind="stable")
            bad_frame = pd.concat(parts, ignore_index=True).iloc[order].reset_index(drop=True)
            bad_frame.insert(0, "row", numbers[order] + 1)
            write_table(bad_frame, quarantine, escape_formulas=escape_formulas)
        return buckets.columns, report


@app.command()
def simulate(
    out_file: Annotated[
        Path,
        typer.Option("--out", help="Where to write the encounters (CSV or Parquet)."),
    ],
    patients: Annotated[int, typer.Option("--patients", help="Number of patients.", min=1)] = 2000,
    seed: Annotated[int, typer.Option(help="Random seed; same seed, same file.")] = 0,
    truth: Annotated[
        Path | None,
        typer.Option(
            help="Also write each encounter's true outcome probabilities "
            "(p_attended_next, p_adherent) to this file."
        ),
    ] = None,
    heterogeneity: Annotated[
        list[str] | None,
        typer.Option(
            "--heterogeneity",
            help="ATTRIBUTE:TREATMENT:EXTRA_LOG_ODDS_PER_POINT[:OUTCOME]; the attribute's "
            "effect in that treatment differs by EXTRA per rating point (both outcomes "
            "unless OUTCOME is given). Repeatable.",
        ),
    ] = None,
    intercept_shift: Annotated[
        float,
        typer.Option(
            help="A new service: add this to every true log-odds (after --slope-shift).",
        ),
    ] = 0.0,
    slope_shift: Annotated[
        float,
        typer.Option(
            help="A new service: multiply every true log-odds by this (1: as configured).",
        ),
    ] = 1.0,
    config: ConfigOption = None,
) -> None:
    """Simulate a service's encounter data with known ground truth.

    Realistic episodes for every configured treatment: ratings correlated within patient
    over time and by practitioner, missing ratings, re-attendance and adherence drawn from
    probabilities that depend on the ratings, the treatment, the session number and the
    change in ratings. An episode ends after a missed session, at its planned end or at
    the data cut-off; then the last encounter's attended_next is empty. With
    --intercept-shift or --slope-shift, a new service whose true log-odds are
    INTERCEPT + SLOPE * the configured ones (to try engagekit update on).
    """
    from ..io import write_table
    from ..simulation import parse_heterogeneity, simulate_encounters

    cfg = read_config(config)
    effects = [parse_heterogeneity(spec, cfg) for spec in heterogeneity or []]
    if (intercept_shift, slope_shift) == (0.0, 1.0):
        data = simulate_with_progress(patients, seed, cfg, effects)
    else:
        data = with_progress(
            lambda *, progress: simulate_encounters(
                patients,
                seed=seed,
                config=cfg,
                heterogeneity=effects,
                progress=lambda done, total: progress("Simulating", done, total),
                service_shift=(intercept_shift, slope_shift),
            )
        )
    write_table(data.encounters, out_file)
    if truth is not None:
        write_table(data.truth, truth)
    out.print(
        f"Simulated {data.encounters['patient_id'].nunique():,} patients, "
        f"{len(data.encounters):,} encounters → {str(out_file)!r}"
        + (f"; truth → {str(truth)!r}" if truth is not None else "")
    )
