"""``monitor``: a model's score history, window by window: performance on the patients
whose flags were not acted on and on all, rating drift, case mix and control limits;
the result recorded in the database it was read from, for the analyst's service page."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ..monitoring._windows import MonitorWindow
from ._app import app, err, out
from ._common import (
    EncodingOption,
    ModelConfigOption,
    SepOption,
    Source,
    open_model,
    read_valid_table,
)

if TYPE_CHECKING:
    import pandas as pd
    import sqlalchemy as sa

    from ..monitoring._result import MonitorResult


def _estimate(e) -> str:
    if e.value is None:
        return "–"
    interval = "" if e.ci_low is None else f" [{e.ci_low:.2f}, {e.ci_high:.2f}]"
    return f"{e.value:.2f}{interval}"


def _o_minus_e(point) -> str:
    if point.observed_minus_expected is None:
        return "–"
    mark = (
        " ALERT"
        if not point.lower_limit <= point.observed_minus_expected <= point.upper_limit
        else ""
    )
    return f"{point.observed_minus_expected:+.3f} (±{point.upper_limit:.3f}){mark}"


def _print_tables(result: MonitorResult) -> None:
    from rich.table import Table

    from ..monitoring._psi import psi_level

    performance = Table(
        title=f"Performance of the {result.target} model by {result.window.value}: "
        "not acted on | all patients (calibration intercept > 0: more "
        f"{result.target} than predicted)",
        title_justify="left",
    )
    for name in (
        "Window",
        "Encounters",
        "Acted on",
        "N",
        "AUROC",
        "Cal. intercept",
        "Cal. slope",
        "O − E (3σ)",
        "N all",
        "Cal. intercept all",
        "O − E all (3σ)",
    ):
        performance.add_column(name, justify="left" if name == "Window" else "right")
    for w in result.windows:
        mine, every = w.not_acted_on, w.all_patients
        performance.add_row(
            w.window,
            f"{w.n_encounters:,}",
            f"{w.n_acted_on:,}",
            f"{mine.n_encounters:,}",
            _estimate(mine.auroc),
            _estimate(mine.calibration_intercept),
            _estimate(mine.calibration_slope),
            _o_minus_e(mine),
            f"{every.n_encounters:,}",
            _estimate(every.calibration_intercept),
            _o_minus_e(every),
        )
    out.print(performance)
    ratings = sorted({name for w in result.windows for name in w.psi})
    treatments = sorted({name for w in result.windows for name in w.case_mix})
    drift = Table(
        title=f"Drift: PSI of each rating against {result.psi_reference} (warn ≥ "
        f"{result.psi_warn:g}, alert ≥ {result.psi_alert:g}); treatment shares",
        title_justify="left",
    )
    drift.add_column("Window")
    for name in ratings:
        drift.add_column(name.removeprefix("rating_"), justify="right")
    for name in treatments:
        drift.add_column(f"% {name}", justify="right")
    for w in result.windows:
        cells = []
        for name in ratings:
            value = w.psi.get(name)
            level = psi_level(value)
            cells.append(
                "ref"
                if value is None
                else f"{value:.3f}" + ("" if level == "stable" else f" {level}")
            )
        cells += [f"{w.case_mix.get(name, 0.0):.0%}" for name in treatments]
        drift.add_row(w.window, *cells)
    out.print(drift)
    if result.alerts:
        out.print(f"{len(result.alerts)} alert(s):", highlight=False)
        for alert in result.alerts:
            out.print(f"  ALERT {alert.message}", highlight=False, soft_wrap=True)
    else:
        out.print("No alert: every figure is within its limits.", highlight=False)
    if result.miscalibrated:
        out.print(
            "Fair calibration, over the whole period, on the encounters not acted on: "
            "calibration is off in",
            highlight=False,
        )
        for group in result.miscalibrated:
            out.print(f"  {group.sentence}", highlight=False, markup=False, soft_wrap=True)
    if result.chance_sentence:
        out.print(result.chance_sentence, highlight=False, soft_wrap=True)


@app.command()
def monitor(
    model_dir: Annotated[Path, typer.Argument(help="The model directory that scored the history.")],
    db: Annotated[
        str,
        typer.Option(help="SQLAlchemy URL of the database engagekit score wrote to."),
    ],
    outcomes: Annotated[
        str,
        typer.Option(
            help="Encounter table (CSV, Parquet or database URL) exported after the scored "
            "encounters, whose outcome columns say what happened; joined on encounter_id."
        ),
    ],
    window: Annotated[
        MonitorWindow, typer.Option(help="Windows of the encounter date.")
    ] = MonitorWindow.MONTH,
    db_table: Annotated[str, typer.Option(help="Table of scores in the database.")] = "scores",
    n_boot: Annotated[
        int, typer.Option(help="Patient-bootstrap replicates for the 95% CIs.", min=0)
    ] = 200,
    seed: Annotated[int, typer.Option(help="Seed of the bootstrap.")] = 0,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the full result as JSON on stdout.")
    ] = False,
    plot: Annotated[
        Path | None,
        typer.Option(help="Draw the control charts to this PNG (or .svg, .pdf) file."),
    ] = None,
    out_file: Annotated[
        Path | None,
        typer.Option(
            "--out",
            help="Write the result JSON (as --json prints it) to this file, e.g. for "
            "engagekit report --monitoring.",
        ),
    ] = None,
    record: Annotated[
        bool,
        typer.Option(
            help="Record the result in the --db database (engagekit's monitor_results "
            "table, created or upgraded first), where the analyst's service page of "
            "engagekit serve shows it; --no-record writes nothing there (a user who may "
            "only read the database)."
        ),
    ] = True,
    encoding: EncodingOption = "utf-8",
    sep: SepOption = None,
    config: ModelConfigOption = None,
) -> None:
    """Monitor a model's score history by window of encounter date, and record the result.

    Reads the complete runs of this model (its model_sha256) in the scores table, and
    uses each encounter's earliest score: the one the service acted on. The outcomes come
    from --outcomes, a later export of the encounter table (checked against the data
    contract like any input), since the scores table holds predictions only; an encounter
    whose outcome is not known yet counts in the drift, not in the performance.

    Per window: AUROC, calibration intercept (in the large) and slope with patient-
    bootstrap 95% CIs on the encounters whose flags were not acted on (no 'reviewed'
    row in flag_reviews for the encounter, nor for the patient between the encounter and
    their next one), beside the calibration of all encounters: a gap between the two is
    the effect of the contacts on the outcome. The observed-minus-expected rate is
    charted with 3-sigma limits from the window's size; each rating's PSI is measured
    against the first window (0.1 warn, 0.25 alert), and the treatment shares are
    listed. Every figure outside its limits is an alert, named with its window.

    The result is recorded in the --db database (a new row of engagekit's
    monitor_results table: the model's model_sha256, the scores table, outcome, window,
    time and the result JSON), where the service page of engagekit serve shows the
    latest to analysts. The history is read through a read-only connection; recording
    is a separate write, skipped with --no-record.
    """
    if plot is not None and plot.suffix.lower() not in (".png", ".svg", ".pdf"):
        raise typer.BadParameter("use a .png, .svg or .pdf file", param_hint="--plot")
    result, recorded = monitor_and_record(
        model_dir,
        db,
        Source(outcomes, None, None, encoding, sep),
        window=window,
        db_table=db_table,
        n_boot=n_boot,
        seed=seed,
        out_file=out_file,
        record=record,
        config=config,
    )
    if plot is not None:
        from ..errors import OutputError
        from ..monitoring._plot import control_chart

        try:
            plot.parent.mkdir(parents=True, exist_ok=True)
            control_chart(result).savefig(plot)
        except OSError as e:
            raise OutputError(f"cannot write {str(plot)!r}: {e.strerror or e}") from e
    said = []
    if recorded is not None:
        said.append(
            f"Recorded as monitoring result {recorded.monitor_id} in the database "
            "(monitor_results), for the service page."
        )
    if out_file is not None:
        said.append(f"Result written to {str(out_file)!r}.")
    if plot is not None:
        said.append(f"Control charts drawn to {str(plot)!r}.")
    if as_json:
        out.print_json(json.dumps(result.to_dict()))
        for line in said:  # stdout holds the JSON only
            err.print(line, highlight=False, soft_wrap=True)
        return
    _print_tables(result)
    for line in said:
        out.print(line, highlight=False, soft_wrap=True)


def monitor_and_record(
    model_dir: Path,
    db: str,
    outcomes: Source,
    *,
    window: MonitorWindow = MonitorWindow.MONTH,
    db_table: str = "scores",
    n_boot: int = 200,
    seed: int = 0,
    out_file: Path | None = None,
    record: bool = True,
    config: Path | None = None,
):
    """``(MonitorResult, the recorded row or None)``: the work of ``monitor`` without its
    printing (the demo monitors with it too)."""
    from ..io._scores import read_score_history
    from ..monitoring._monitor import monitor as monitor_scores

    if out_file is not None:
        from ..io._write import check_writable

        check_writable(out_file)
    model, manifest, cfg = open_model(model_dir, config)
    target = model.target
    model_sha256 = manifest.model_sha256 or ""
    scores, reviews = read_score_history(db, db_table, model_sha256, target)
    encounters, _ = read_valid_table(outcomes, cfg)
    if target not in encounters.columns:
        raise typer.BadParameter(
            f"the outcome table lacks the column {target!r} the model predicts",
            param_hint="--outcomes",
        )
    # the database is made ready for the record before minutes of computing, so that a
    # user who may not write to it learns so at once
    engine = _open_record(db) if record else None
    try:
        subgroups = ("treatment", *(c for c in cfg.subgroups if c != "treatment"))
        with err.status("Monitoring the score history…"):
            result = monitor_scores(
                scores,
                _outcome_rows(encounters, target, subgroups),
                reviews,
                target=target,
                window=window,
                n_boot=n_boot,
                seed=seed,
                subgroups=subgroups,
            )
        recorded = None
        if engine is not None:
            from ..io._monitor_store import record_monitor_result

            recorded = record_monitor_result(
                engine, result, model_sha256=model_sha256, scores_table=db_table
            )
    finally:
        if engine is not None:
            engine.dispose()
    if out_file is not None:
        from ..io._write import write_json

        write_json(result.to_dict(), out_file)
    return result, recorded


def _open_record(db: str) -> sa.Engine:
    """The database made ready to record a result, or a message saying how to do without."""
    from ..errors import OutputError
    from ..io._monitor_store import open_monitor_database

    try:
        return open_monitor_database(db)
    except OutputError as e:
        raise OutputError(
            f"cannot record the monitoring result: {e}; to monitor without recording it, "
            "pass --no-record"
        ) from e


def _outcome_rows(
    encounters: pd.DataFrame, target: str, subgroups: tuple[str, ...]
) -> pd.DataFrame:
    """The outcome of each encounter, and its subgroup columns the scores lack (age band,
    gender, configured subgroups) for the fair-calibration check."""
    kept = [c for c in subgroups if c in encounters.columns and c != "treatment"]
    return encounters[["encounter_id", target, *kept]].astype({"encounter_id": str})
