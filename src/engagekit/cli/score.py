"""``score``: predictions, explanations, flags and reasons for every encounter, in bulk."""

from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path
from typing import Annotated

import typer

from ._app import app, err, out
from ._common import (
    AllowUnfitOption,
    EncodingOption,
    EscapeFormulasOption,
    ModelConfigOption,
    QueryOption,
    SepOption,
    Source,
    TableOption,
    is_streamed,
    open_model,
    read_valid_table,
    refuse_unfit,
    streamed_valid_table,
    with_progress,
)
from ._spark import Engine, EngineOption, MasterOption


@app.command()
def score(
    model_dir: Annotated[Path, typer.Argument(help="A model directory written by train.")],
    data: Annotated[str, typer.Argument(help="Encounters (CSV, Parquet or database URL).")],
    out_file: Annotated[
        Path, typer.Option("--out", help="Scores file: .csv, .csv.gz or .parquet.")
    ],
    db: Annotated[
        str | None,
        typer.Option(
            help="SQLAlchemy URL of the database the scores also go to (default: a SQLite "
            "file next to --out, e.g. scores.sqlite)."
        ),
    ] = None,
    db_table: Annotated[
        str, typer.Option(help="Table of scores in the database: one per model (its columns).")
    ] = "scores",
    chunk_rows: Annotated[
        int,
        typer.Option(
            help="Encounters per chunk (whole patients); rerun with the same value.", min=1
        ),
    ] = 50_000,
    top_reasons: Annotated[int, typer.Option(help="Qualities named per flag.", min=1)] = 2,
    replace: Annotated[
        bool,
        typer.Option(
            "--replace",
            help="The table's latest complete run was wrong: when this run completes, mark "
            "that run replaced and delete its scores (this same job: score it again).",
        ),
    ] = False,
    escape_formulas: EscapeFormulasOption = True,
    fhir: Annotated[
        Path | None,
        typer.Option(
            help="Also export each patient's latest encounter as FHIR R4 resources to this "
            "NDJSON file, when the run completes: a RiskAssessment per patient, a Flag per "
            "patient flagged high (identifier systems: the config's fhir block).",
        ),
    ] = None,
    table: TableOption = None,
    query: QueryOption = None,
    encoding: EncodingOption = "utf-8",
    sep: SepOption = None,
    config: ModelConfigOption = None,
    allow_unfit_model: AllowUnfitOption = False,
    engine: EngineOption = Engine.LOCAL,
    master: MasterOption = None,
) -> None:
    """Score, explain and flag every encounter, into a file and a database.

    One row per encounter: encounter_id, patient_id, the encounter's treatment,
    practitioner_id, session_number and encounter_date (those the table has, to filter
    a caseload by), p_<target>, risk (of the bad outcome), flag (high, medium, low by the
    model's stored rule), reasons (the qualities that raise the risk most, with what to
    try), shap_base_value and shap_<feature> for every feature (they add up to the
    log-odds of p_<target>), and grouped_<quality>: the contributions summed per
    quality, treatment and history.

    A capacity rule is a share of the encounters being scored: "the top 10%" flags high
    the 10% of the encounters in DATA at highest risk (every encounter, not each
    patient's latest: to flag 10% of a caseload, score its latest encounters), and
    medium the next 10%; "N per practitioner" flags N times the practitioners in DATA.
    A sensitivity rule keeps the risk thresholds chosen at training.

    Each run is appended to the database table (a new export every week, a retrained
    model) and recorded in the database's score_runs table; the table's rows are keyed
    by run_id and encounter_id, and the file holds this run's scores only. A table of
    another model's columns (another outcome or kind) is refused: give each model its
    own --db-table.

    A Parquet file is read in row groups and split into buckets of whole patients of
    about --chunk-rows encounters (in a temporary folder), so a file of ten million
    encounters is checked and scored in the memory of one bucket; the scores then come
    bucket by bucket, each bucket's patients in the file's order.

    Works in chunks of whole patients, each committed to the database in one
    transaction. If a run is stopped, run the same command again: it keeps the chunks
    already committed, scores the rest and writes the whole file, with no row twice.
    One run writes to a database table at a time: a second run into the same table
    stops at once with a message.

    With --engine spark the table (a CSV or Parquet file, or a folder of Parquet files)
    is checked and scored on Apache Spark, in buckets of whole patients, with the same
    numbers, flags and reasons; --out is then a new folder of Parquet files, and no
    database is written.

    With --fhir OUT.ndjson, each patient's latest encounter (by session_number, then
    encounter_date) is also exported as FHIR R4 resources, one per line, once the run
    completes: a RiskAssessment (the risk of the bad outcome, the flag as qualitative
    risk, the model as method, the reasons as mitigation) and, for a high flag, a Flag.
    Patients and encounters are referred to by identifier, under the systems of the
    config's fhir block. The file holds the patients' identifiers: keep it as the scores.
    """
    from ..errors import ArgumentError
    from ..io._scores import check_score_outputs, default_database_url, write_scores
    from ..io._write import check_writable

    if engine is Engine.SPARK:
        if fhir is not None:
            raise ArgumentError(
                "--fhir is for the local engine; with --engine spark, score to Parquet and "
                "export with the local engine (engagekit score ... --fhir OUT.ndjson)"
            )
        local_only = (db, table, query)
        _score_on_spark(model_dir, data, out_file, config, top_reasons, sep, encoding, master,
                        allow_unfit_model, local_only)  # fmt: skip
        return
    suffixes = [s.lower() for s in out_file.suffixes][-2:]
    if not suffixes or (
        suffixes[-1] not in (".csv", ".parquet", ".pq") and suffixes != [".csv", ".gz"]
    ):
        raise typer.BadParameter("use a .csv, .csv.gz or .parquet file", param_hint="--out")
    check_score_outputs(out_file, db, db_table)  # in a second, not after the scoring
    if fhir is not None:
        if fhir.resolve() == out_file.resolve():
            raise ArgumentError("--fhir must be another file than --out")
        check_writable(fhir, what=f"the FHIR export {str(fhir)!r}")
    model, manifest, cfg = open_model(model_dir, config)
    refuse_unfit(manifest, model_dir, allow_unfit_model)
    source = Source(data, table, query, encoding, sep)
    features = model.feature_names
    with (
        streamed_valid_table(source, cfg, chunk_rows, model_features=features)
        if is_streamed(source)
        else nullcontext(read_valid_table(source, cfg, model_features=features))
    ) as (encounters, cfg):
        run = with_progress(
            write_scores,
            model,
            manifest,
            encounters,
            cfg,
            out_file,
            database=db,
            table=db_table,
            chunk_rows=chunk_rows,
            top_reasons=top_reasons,
            replace=replace,
            escape_formulas=escape_formulas,
            n_jobs=-1,
            model_name=model_dir.resolve().name,
        )
    resumed = (
        f" ({run.chunks_resumed} of {run.n_chunks} chunks were already in the database "
        "from an earlier attempt of this run)"
        if run.chunks_resumed
        else ""
    )
    flagged, rule = run.n_flagged, run.flag_rule
    out.print(
        f"{run.n_rows:,} encounters scored and explained{resumed}: "
        f"{flagged['high']:,} flagged high ({run.high_share:.1%} of encounters; the rule "
        f"promises {rule.promise}), {flagged['medium']:,} medium "
        f"({run.high_or_medium_share:.1%} high or medium; promised "
        f"{rule.promised_high_or_medium_share:.1%}).",
        highlight=False,
        soft_wrap=True,
    )
    replaced = f"; it replaced run {run.replaced_run}" if run.replaced_run is not None else ""
    out.print(
        f"Scores written to {str(run.out)!r} and to table {run.table!r} of {run.database!r} "
        f"(run {run.run_id}{replaced}).",
        highlight=False,
        soft_wrap=True,
    )
    if fhir is not None:
        from ..io._fhir import fhir_resources, latest_encounters, read_score_run, write_fhir

        with err.status("Exporting each patient's latest encounter as FHIR R4…"):
            latest = latest_encounters(
                read_score_run(
                    db or default_database_url(out_file), db_table, run.run_id,
                    chunk_rows=chunk_rows,
                )
            )  # fmt: skip
            export = write_fhir(fhir, fhir_resources(latest, manifest, cfg))
        # counts only: the identifiers go into the file, never into a message
        out.print(
            f"FHIR R4 export written to {str(export.path)!r}: {export.n_risk_assessments:,} "
            f"RiskAssessment (one per patient, its latest encounter) and {export.n_flags:,} "
            "Flag (patients flagged high).",
            highlight=False,
            soft_wrap=True,
        )


def _score_on_spark(
    model_dir: Path,
    data: str,
    out_dir: Path,
    config: Path | None,
    top_reasons: int,
    sep: str | None,
    encoding: str,
    master: str | None,
    allow_unfit_model: bool,
    local_only: tuple,
) -> None:
    """``score --engine spark``: the same checks and scores, written as a folder of
    Parquet files."""
    from ..errors import ArgumentError, OutputError
    from ..spark import score as spark_score
    from ..spark import validate as spark_validate
    from ._common import checked_coverage, usable_config
    from ._spark import read_spark_table, spark_session

    if any(option is not None for option in local_only):
        raise ArgumentError(
            "--db, --table and --query are for the local engine; --engine spark reads a "
            "CSV or Parquet file and writes a folder of Parquet files (--out)"
        )
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise OutputError(
            f"{str(out_dir)!r} exists and is not an empty folder; --engine spark writes a "
            "new folder of Parquet files: give a new path"
        )
    model, manifest, cfg = open_model(model_dir, config)
    refuse_unfit(manifest, model_dir, allow_unfit_model)
    session = spark_session(master)
    frame = read_spark_table(session, data, sep=sep, encoding=encoding)
    with err.status("Checking the encounter table on Spark…"):
        report = spark_validate(frame, cfg)
    checked_coverage(report, cfg, frame.columns)
    from pyspark.sql import functions

    # the notes of the local engine; a covariate the model uses scored as unknown
    for covariate in usable_config(cfg, frame.columns, model.feature_names)[1]:
        frame = frame.withColumn(covariate, functions.lit(None).cast("string"))
    with err.status("Scoring, explaining and flagging on Spark…"):
        scores = spark_score(frame, model_dir, config=cfg, top_reasons=top_reasons)
        where = str(out_dir.resolve())  # the JVM has its own working folder
        scores.write.parquet(where)
        counts = {
            row["flag"]: int(row["count"])
            for row in session.read.parquet(where).groupBy("flag").count().collect()
        }
    total = sum(counts.values())
    high, medium = counts.get("high", 0), counts.get("medium", 0)
    rule = manifest.flag_rule
    out.print(
        f"{total:,} encounters scored and explained on Spark: {high:,} flagged high "
        f"({high / max(total, 1):.1%} of encounters; flag rule {rule.rule.value}:"
        f"{rule.value:g}), {medium:,} medium. Scores written to {str(out_dir)!r} (a folder "
        "of Parquet files).",
        highlight=False,
        soft_wrap=True,
    )
