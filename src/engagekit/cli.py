"""The ``engagekit`` command: a thin layer over the library.

Each command parses its options, calls library functions and prints. Expected errors
(bad config, unreadable data, data breaking the contract) end with one clear message and
an exit code; a traceback would mean a bug, and even then the user gets a one-line
message unless ENGAGEKIT_DEBUG=1 asks for the traceback.

Exit codes: 0 success, 1 the data breaks the contract, 2 the input or config cannot be
used at all (or the command line is wrong), 70 an internal error.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated

import numpy as np
import pandas as pd
import typer
from rich.console import Console
from rich.table import Table

from . import __version__
from .config import Config, load_config
from .errors import ContractError, EngagekitError
from .io import write_json

app = typer.Typer(
    name="engagekit",
    help=(
        "Predict re-attendance and adherence in depression treatment from patients' "
        "session-by-session ratings of their practitioner."
    ),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode="rich",
)

# Rich assumes 80 columns when output is piped; tables of treatment names need more.
out = Console(width=None if sys.stdout.isatty() else 120)
err = Console(stderr=True, width=None if sys.stderr.isatty() else 120)

EXIT_INTERNAL = 70

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        "-c",
        help="YAML config; its top-level blocks replace the defaults (configs/default.yaml).",
        dir_okay=False,
    ),
]


def _config(path: Path | None) -> Config:
    return load_config(path)


def _version(value: bool) -> None:
    if value:
        out.print(f"engagekit {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Show the version."),
    ] = False,
) -> None:
    """engagekit: practitioner qualities, re-attendance and adherence."""


def _with_progress(fn, *args, **kwargs):
    """Call ``fn(*args, progress=..., **kwargs)`` with a bar per named step on stderr."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    ) as bar:
        tasks: dict[str, int] = {}

        def progress(step: str, done: int, total: int) -> None:
            if step not in tasks:
                tasks[step] = bar.add_task(step, total=total)
            bar.update(tasks[step], completed=done, total=total)

        return fn(*args, progress=progress, **kwargs)


# --------------------------------------------------------------------------- validate
def _problem_table(problems, limit: int) -> Table:
    table = Table(title=None, show_lines=False, header_style="bold")
    for col in ("row", "encounter_id", "column", "value", "rule"):
        table.add_column(col, overflow="fold")
    for r in problems.head(limit).itertuples(index=False):
        rule = r.rule + (f" ({r.detail})" if r.detail else "")
        table.add_row(
            str(r.row),
            "" if pd.isna(r.encounter_id) else str(r.encounter_id),
            r.column,
            "(empty)" if pd.isna(r.value) else repr(r.value),
            rule,
        )
    return table


def _summary_table(report) -> Table:
    table = Table(header_style="bold")
    for col in ("column", "rule", "problems", "first rows"):
        table.add_column(col, overflow="fold")
    for r in report.summary().itertuples(index=False):
        table.add_row(r.column, r.rule, f"{r.n_problems:,}", r.first_rows)
    return table


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
    table: Annotated[
        str | None, typer.Option(help="Database table to read (default: encounters).")
    ] = None,
    query: Annotated[str | None, typer.Option(help="SQL query to read instead of a table.")] = None,
    encoding: Annotated[str, typer.Option(help="Text encoding of a CSV file.")] = "utf-8",
    max_problems: Annotated[
        int, typer.Option(help="Problems listed on screen; --json lists all.", min=0)
    ] = 50,
) -> None:
    """Check an encounter table against the data contract.

    Every problem is reported at once: data row number (the first row below the header
    is row 1), encounter_id, column, value and the rule it breaks. Exit 0 when the table
    is valid, 1 when it breaks the contract, 2 when it cannot be read at all (missing,
    empty, binary, not a table, a required column absent). With --quarantine the
    offending rows are written out and the command says how many rows are good and how
    many were quarantined; good + quarantined = all rows, always.
    """
    from .io import read_encounters, write_table
    from .validation import split_by_validity, validate_encounters

    cfg = _config(config)
    with err.status("Reading and checking the encounter table…"):
        frame = read_encounters(data, table=table, query=query, encoding=encoding)
        report = validate_encounters(frame, cfg)
    bad_frame = None
    if quarantine is not None or good is not None:
        good_frame, bad_frame = split_by_validity(frame, report)
        if quarantine is not None:
            write_table(bad_frame, quarantine)
        if good is not None:
            write_table(good_frame, good)
    if as_json:
        payload = report.to_dict()
        if quarantine is not None:
            payload["quarantine"] = str(quarantine)
        print(json.dumps(payload, indent=2))
    else:
        _print_report(report, max_problems, cfg.attribute_names)
        if quarantine is not None:
            out.print(
                f"{report.n_good_rows:,} rows good, {report.n_bad_rows:,} quarantined "
                f"to {str(quarantine)!r} ({report.n_rows:,} rows read)."
            )
        if good is not None:
            out.print(f"{report.n_good_rows:,} good rows written to {str(good)!r}.")
    raise typer.Exit(0 if report.valid else 1)


def _print_report(report, max_problems: int, attributes: list[str]) -> None:
    absent = [c for c in attributes if c in report.absent_columns]
    if absent:
        every = len(absent) == len(attributes)
        what = (
            "none of the configured rating columns is in the table"
            if every
            else "some configured rating columns are not in the table"
        )
        out.print(
            f"[yellow]Note:[/yellow] {what} (absent: {', '.join(absent)})."
            + (" Does --config match the service's instrument?" if every else "")
        )
    if report.valid:
        out.print(f"[green]Valid:[/green] {report.n_rows:,} rows meet the encounter contract.")
        return
    out.print(
        f"[red]Invalid:[/red] {len(report.problems):,} problem(s) in "
        f"{report.n_bad_rows:,} of {report.n_rows:,} rows."
    )
    out.print(_summary_table(report))
    if max_problems:
        out.print(_problem_table(report.problems, max_problems))
        hidden = len(report.problems) - max_problems
        if hidden > 0:
            out.print(f"… and {hidden:,} more; --json lists every problem.")


# --------------------------------------------------------------------------- simulate
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
    config: ConfigOption = None,
) -> None:
    """Simulate a service's encounter data with known ground truth.

    Realistic episodes for every configured treatment: ratings correlated within patient
    over time and by practitioner, missing ratings, re-attendance and adherence drawn from
    probabilities that depend on the ratings, the treatment, the session number and the
    change in ratings. An episode ends after a missed session, at its planned end or at
    the data cut-off; then the last encounter's attended_next is empty.
    """
    from .io import write_table
    from .simulation import parse_heterogeneity

    cfg = _config(config)
    effects = [parse_heterogeneity(spec, cfg) for spec in heterogeneity or []]
    data = _simulate_with_progress(patients, seed, cfg, effects)
    write_table(data.encounters, out_file)
    if truth is not None:
        write_table(data.truth, truth)
    out.print(
        f"Simulated {data.encounters['patient_id'].nunique():,} patients, "
        f"{len(data.encounters):,} encounters → {str(out_file)!r}"
        + (f"; truth → {str(truth)!r}" if truth is not None else "")
    )


def _simulate_with_progress(patients: int, seed: int, cfg: Config, effects=()):
    from .simulation import simulate_encounters

    def run(progress):
        return simulate_encounters(
            patients,
            seed=seed,
            config=cfg,
            heterogeneity=effects,
            progress=lambda done, total: progress("Simulating", done, total),
        )

    return _with_progress(run)


# --------------------------------------------------------------------------- demo
@app.command()
def demo(
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for the demo's files.")] = Path(
        "engagekit-demo"
    ),
    patients: Annotated[int, typer.Option(help="Patients to simulate.", min=1)] = 3000,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 2026,
    config: ConfigOption = None,
) -> None:
    """Run the main job on the embedded default data (a simulated service).

    Simulates a service's encounter export, checks it against the data contract and
    summarises it: patients, encounters and sessions per patient by treatment, outcome
    rates and missing ratings. Leaves encounters.csv, truth.csv, validation.json and
    summary.json in the --out folder.
    """
    from .io import read_encounters, write_table
    from .summary import summarize_encounters
    from .validation import coerce_encounters, validate_encounters

    cfg = _config(config)
    out_dir.mkdir(parents=True, exist_ok=True)
    data = _simulate_with_progress(patients, seed, cfg)
    enc_path = write_table(data.encounters, out_dir / "encounters.csv")
    write_table(data.truth, out_dir / "truth.csv")
    out.print(
        f"[bold]1. Simulated[/bold] {len(data.encounters):,} encounters of "
        f"{patients:,} patients → {enc_path!s}"
    )
    # read the export back as any service file would be, so the demo checks the file
    raw = read_encounters(enc_path)
    report = validate_encounters(raw, cfg)
    write_json(report.to_dict(), out_dir / "validation.json")
    out.print("[bold]2. Validated[/bold] against the encounter contract: ", end="")
    _print_report(report, max_problems=10, attributes=cfg.attribute_names)
    if not report.valid:
        raise typer.Exit(1)
    summary = summarize_encounters(coerce_encounters(raw, cfg), cfg)
    write_json(summary.to_dict(), out_dir / "summary.json")
    out.print("[bold]3. Summary[/bold]")
    _print_summary(summary)
    out.print(f"Files are in {str(out_dir)!r}.")


def _pct(x: float) -> str:
    return "–" if x != x else f"{100 * x:.1f}%"


def _print_summary(summary) -> None:
    t = Table(header_style="bold")
    for col in (
        "treatment",
        "patients",
        "encounters",
        "sessions/patient\nmean (max)",
        "missed next\n(encounters)",
        "dropped out\n(patients)",
        "adherent\n(encounters)",
    ):
        t.add_column(col, justify="left" if col == "treatment" else "right")
    for r in summary.by_treatment.itertuples(index=False):
        t.add_row(
            r.treatment,
            f"{r.patients:,}",
            f"{r.encounters:,}",
            f"{r.sessions_mean:.1f} ({r.sessions_max})",
            _pct(r.not_attended_next),
            _pct(r.dropped_out),
            _pct(r.adherent),
        )
    out.print(t)
    m = Table(header_style="bold")
    m.add_column("attribute")
    m.add_column("ratings missing", justify="right")
    for r in summary.missing_ratings.itertuples(index=False):
        m.add_row(r.attribute, f"{r.missing:,} ({_pct(r.share_missing)})")
    out.print(m)


# --------------------------------------------------------------------------- models
TargetOption = Annotated[
    str,
    typer.Option(
        "--target",
        help="Outcome to predict: attended_next (re-attendance) or adherent (adherence).",
    ),
]


def _check_target(target: str) -> None:
    from .config import OUTCOME_NAMES

    if target not in OUTCOME_NAMES:
        raise typer.BadParameter(
            f"{target!r} is not an outcome; choose one of {', '.join(OUTCOME_NAMES)}",
            param_hint="--target",
        )


def _read_valid(data: str, cfg: Config, table: str | None, query: str | None):
    """Read and check a table; on contract problems print the report and exit 1."""
    from .io import read_encounters
    from .validation import coerce_encounters, validate_encounters

    with err.status("Reading and checking the encounter table…"):
        raw = read_encounters(data, table=table, query=query)
        report = validate_encounters(raw, cfg)
    if not report.valid:
        out.print("The encounter table breaks the data contract; nothing was computed or written.")
        _print_report(report, max_problems=50, attributes=cfg.attribute_names)
        raise typer.Exit(1)
    return coerce_encounters(raw, cfg)


def _metric_table(metrics: dict, title: str | None = None) -> Table:
    t = Table(title=title, header_style="bold")
    for col in ("metric", "value", "95% CI"):
        t.add_column(col, justify="left" if col == "metric" else "right")
    from .evaluation import POINT_METRICS

    for name in POINT_METRICS[:6]:  # the scores; prevalence and n are not estimates
        value = metrics.get(name)
        low, high = metrics.get(f"{name}_ci_low"), metrics.get(f"{name}_ci_high")
        ci = "–" if low is None or high is None else f"{low:.3f} to {high:.3f}"
        t.add_row(name, "–" if value is None else f"{value:.3f}", ci)
    return t


@app.command()
def train(
    data: Annotated[str, typer.Argument(help="Encounter table (CSV, Parquet or database URL).")],
    target: TargetOption,
    out_dir: Annotated[Path, typer.Option("--out", help="Model directory to write.")],
    model: Annotated[
        str,
        typer.Option(
            help="auto (the kind with the lower cross-validated log loss), logistic or gbm."
        ),
    ] = "auto",
    folds: Annotated[int, typer.Option(help="Patient-grouped CV folds.", min=2)] = 5,
    bootstrap: Annotated[
        int | None,
        typer.Option(
            help="Patient-bootstrap replicates for the 95% CIs (default: 1000, fewer "
            "above 200,000 encounters, never under 200).",
            min=0,
        ),
    ] = None,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    temporal_split: Annotated[
        str | None,
        typer.Option(
            help="YYYY-MM-DD: train and cross-validate on encounters before this day, "
            "and also validate the model on those from this day on.",
        ),
    ] = None,
    flag_rule: Annotated[
        str,
        typer.Option(
            help="How at-risk flags are set, chosen on the cross-validated predictions: "
            "top_percent:K (the K% at highest risk), sensitivity:S (catch at least S of "
            "the bad outcomes) or per_practitioner:N.",
        ),
    ] = "top_percent:10",
    table: Annotated[str | None, typer.Option(help="Database table to read.")] = None,
    query: Annotated[str | None, typer.Option(help="SQL query to read.")] = None,
    config: ConfigOption = None,
) -> None:
    """Train and validate a model of re-attendance or adherence.

    Validates the table first (refusing data that breaks the contract), leaves out rows
    whose outcome is empty (and says how many), cross-validates grouped by patient,
    calibrates inside the training data, and writes the model (secure skops format),
    manifest.json and metrics.json (with patient-bootstrap 95% CIs, per treatment and
    per subgroup) to --out.
    """
    from .io.model_store import data_fingerprint, save_model
    from .models import train_model

    _check_target(target)
    if model not in ("auto", "logistic", "gbm"):
        raise typer.BadParameter("choose auto, logistic or gbm", param_hint="--model")
    rule = _parse_flag_rule(flag_rule)
    cfg = _config(config)
    encounters = _read_valid(data, cfg, table, query)
    result = _with_progress(
        train_model,
        encounters,
        target,
        model,
        cfg,
        n_splits=folds,
        seed=seed,
        n_boot=bootstrap,
        n_jobs=-1,
        temporal_split=temporal_split,
        flag_rule=rule,
    )
    metrics = {**result.metrics, "selection": result.selection}
    save_model(
        result.model,
        out_dir,
        {
            "target": target,
            "kind": result.model.kind,
            "features": result.model.feature_names,
            "config": cfg.model_dump(mode="json"),
            "training_data_sha256": data_fingerprint(encounters),
            "n_encounters": metrics.get("n_encounters"),
            "n_patients": metrics.get("n_patients"),
            "tuning": result.model.tuning,
            "flag_rule": result.flag_rule.to_dict(),
            "recalibration": {
                "applied": result.model.recalibration.applied,
                "intercept": result.model.recalibration.intercept,
                "slope": result.model.recalibration.slope,
            },
            "metrics": {k: v for k, v in metrics.items() if not isinstance(v, (dict, list))},
        },
    )
    write_json(metrics, out_dir / "metrics.json")
    out.print(
        f"[bold]{target}[/bold]: {result.model.kind} model chosen "
        f"(cross-validated log loss: "
        + ", ".join(f"{k} {v:.4f}" for k, v in result.selection["cv_log_loss"].items())
        + ")"
    )
    out.print(
        f"{metrics['n_encounters']:,} encounters of {metrics['n_patients']:,} patients; "
        f"{metrics['n_excluded_missing_outcome']:,} left out (no {target} recorded)."
    )
    out.print(_metric_table(metrics, "patient-grouped cross-validation"))
    temporal = metrics.get("temporal_validation")
    if temporal is not None:
        out.print(
            _metric_table(
                temporal,
                f"temporal validation: {temporal['n_encounters']:,} encounters from "
                f"{temporal['split_date']} on",
            )
        )
    point = result.flag_rule.operating_point
    out.print(
        f"At-risk flags ({flag_rule}): risk of {_bad_outcome(cfg, target)} at or above "
        f"{result.flag_rule.threshold:.3f}; on the cross-validated predictions "
        f"sensitivity {point.sensitivity:.2f}, PPV {point.ppv:.2f}, "
        f"{point.flags_per_100_encounters:.1f} flags per 100 encounters.",
        highlight=False,
    )
    out.print(f"Model and metrics written to {str(out_dir)!r}.")


def _bad_outcome(cfg: Config, target: str) -> str:
    return next((o.bad_outcome for o in cfg.outcomes if o.name == target), f"not {target}")


def _parse_flag_rule(text: str) -> tuple[str, float]:
    rule, _, value = text.partition(":")
    if rule not in ("top_percent", "sensitivity", "per_practitioner"):
        raise typer.BadParameter(
            f"{text!r}: the rule must be top_percent, sensitivity or per_practitioner",
            param_hint="--flag-rule",
        )
    try:
        number = float(value)
    except ValueError:
        raise typer.BadParameter(
            f"{text!r}: write RULE:VALUE, e.g. top_percent:10 or sensitivity:0.8",
            param_hint="--flag-rule",
        ) from None
    upper = {"top_percent": 100.0, "sensitivity": 1.0, "per_practitioner": float("inf")}[rule]
    if not 0 < number <= upper:
        raise typer.BadParameter(
            f"{text!r}: the value must be above 0 and at most {upper:g}", param_hint="--flag-rule"
        )
    return rule, number


def _load(model_dir: Path):
    import warnings

    from .config import config_from_dict
    from .io.model_store import ModelVersionWarning, load_model

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ModelVersionWarning)
        model, manifest = load_model(model_dir)
    for w in caught:
        err.print(f"[yellow]warning:[/yellow] {w.message}", highlight=False)
    cfg = config_from_dict(manifest["config"], source=f"of the model {str(model_dir)!r}")
    return model, manifest, cfg


@app.command()
def predict(
    model_dir: Annotated[Path, typer.Argument(help="A model directory written by train.")],
    data: Annotated[str, typer.Argument(help="Encounters to score (CSV, Parquet, database URL).")],
    out_file: Annotated[Path, typer.Option("--out", help="Predictions file (CSV or Parquet).")],
    table: Annotated[str | None, typer.Option(help="Database table to read.")] = None,
    query: Annotated[str | None, typer.Option(help="SQL query to read.")] = None,
) -> None:
    """Score every encounter: encounter_id, patient_id and p_<target>.

    Every row gets a probability, including rows whose outcome is empty; each is
    computed from that session and the patient's earlier sessions in DATA only. The
    model is refused if its file was altered or holds anything engagekit did not write.
    """
    from .io import write_table

    model, _manifest, cfg = _load(model_dir)
    encounters = _read_valid(data, cfg, table, query)
    p = model.predict_proba(encounters)
    column = f"p_{model.target}"
    frame = pd.DataFrame(
        {
            "encounter_id": encounters["encounter_id"],
            "patient_id": encounters["patient_id"],
            column: p,
        }
    )
    write_table(frame, out_file)
    out.print(f"{len(frame):,} encounters scored → {str(out_file)!r} ({column}).")


@app.command()
def evaluate(
    model_dir: Annotated[Path, typer.Argument(help="A model directory written by train.")],
    data: Annotated[str, typer.Argument(help="New labelled encounters.")],
    out_file: Annotated[Path, typer.Option("--out", help="metrics JSON to write.")],
    bootstrap: Annotated[
        int | None,
        typer.Option(
            help="Patient-bootstrap replicates for the 95% CIs (default: 1000, fewer "
            "above 200,000 encounters, never under 200).",
            min=0,
        ),
    ] = None,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    table: Annotated[str | None, typer.Option(help="Database table to read.")] = None,
    query: Annotated[str | None, typer.Option(help="SQL query to read.")] = None,
) -> None:
    """External validation: the trained model's metrics on new labelled data.

    Rows whose outcome is empty are scored for their history but left out of the metrics
    (and counted); the CIs resample patients.
    """
    from .models import evaluate_model_predictions, labelled_rows

    model, _manifest, cfg = _load(model_dir)
    encounters = _read_valid(data, cfg, table, query)
    labelled = labelled_rows(encounters, model.target)
    if not labelled.any():
        raise ContractError(f"no encounter in {data!r} has {model.target!r} recorded")
    p = model.predict_proba(encounters)[labelled]
    metrics = evaluate_model_predictions(
        encounters[labelled], model.target, p, cfg, n_boot=bootstrap, seed=seed, n_jobs=-1
    )
    metrics["n_excluded_missing_outcome"] = int((~labelled).sum())
    metrics["target"] = model.target
    metrics["model"] = model.kind
    write_json(metrics, out_file)
    out.print(_metric_table(metrics, "external validation"))
    out.print(f"Metrics written to {str(out_file)!r}.")


@app.command()
def heterogeneity(
    data: Annotated[str, typer.Argument(help="Encounter table (CSV, Parquet or database URL).")],
    target: TargetOption,
    out_file: Annotated[Path, typer.Option("--out", help="Result JSON to write.")],
    margin: Annotated[
        float | None,
        typer.Option(
            help="Equivalence margin, log-odds per rating point (default from the config: "
            "log(1.25) = 0.223).",
        ),
    ] = None,
    cluster: Annotated[
        str | None, typer.Option(help="Clusters: patient (default) or practitioner.")
    ] = None,
    working_correlation: Annotated[
        str | None,
        typer.Option(help="independence (default) or exchangeable (checked for convergence)."),
    ] = None,
    test: Annotated[
        str | None, typer.Option(help="Joint test of treatment differences: wald or score.")
    ] = None,
    adjustment: Annotated[
        str | None, typer.Option(help="Across attributes: holm (default) or fdr_bh.")
    ] = None,
    cov_type: Annotated[
        str | None,
        typer.Option(
            help="Small-sample corrected robust covariance: kauermann_carroll (default) or "
            "bias_reduced (Mancl-DeRouen)."
        ),
    ] = None,
    plot: Annotated[
        Path | None, typer.Option(help="Forest plot to write (.png, .svg or .pdf).")
    ] = None,
    table: Annotated[str | None, typer.Option(help="Database table to read.")] = None,
    query: Annotated[str | None, typer.Option(help="SQL query to read.")] = None,
    config: ConfigOption = None,
) -> None:
    """Does each quality's effect differ by treatment? GEE test, equivalence, verdicts.

    For every attribute: a joint test that its effect is the same in every treatment
    (small-sample corrected robust covariance, Holm-adjusted), a TOST equivalence test of every
    between-treatment difference against --margin, per-treatment odds ratios per rating
    point with 95% CIs, average marginal effects, and a verdict: differs, equivalent or
    inconclusive.
    """
    from .heterogeneity import heterogeneity_analysis

    _check_target(target)
    choices = {
        "--cluster": (cluster, ("patient", "practitioner")),
        "--working-correlation": (working_correlation, ("independence", "exchangeable")),
        "--test": (test, ("wald", "score")),
        "--adjustment": (adjustment, ("holm", "fdr_bh")),
        "--cov-type": (cov_type, ("kauermann_carroll", "bias_reduced")),
    }
    for hint, (value, allowed) in choices.items():
        if value is not None and value not in allowed:
            raise typer.BadParameter(f"choose {' or '.join(allowed)}", param_hint=hint)
    if plot is not None and plot.suffix.lower() not in (".png", ".svg", ".pdf"):
        raise typer.BadParameter(
            "the plot file must end in .png, .svg or .pdf", param_hint="--plot"
        )
    cfg = _config(config)
    encounters = _read_valid(data, cfg, table, query)
    with err.status("fitting the GEE …"):
        result = heterogeneity_analysis(
            encounters,
            target,
            cfg,
            margin=margin,
            cluster=cluster,
            working_correlation=working_correlation,
            test=test,
            adjustment=adjustment,
            cov_type=cov_type,
        )
    write_json(result, out_file)
    if plot is not None:
        from .heterogeneity.plot import forest_plot

        forest_plot(result, plot)
    method = result["method"]
    t = Table(
        title=f"Does the effect on {target} differ by treatment? "
        f"({result['n_patients']:,} patients, {result['n_encounters']:,} encounters)",
        header_style="bold",
    )
    for col in ("attribute", "p", "adjusted p", "verdict", "odds ratio per point by treatment"):
        t.add_column(col, justify="right" if "p" == col.split()[-1] else "left")
    for a in result["attributes"]:
        ors = ", ".join(f"{r['treatment']} {r['odds_ratio']:.2f}" for r in a["by_treatment"])
        t.add_row(
            a["attribute"], f"{a['p_value']:.3g}", f"{a['p_adjusted']:.3g}", a["verdict"], ors
        )
    out.print(t)
    for a in result["attributes"]:
        out.print(f"- {a['sentence']}", highlight=False)
    excluded = sum(v for k, v in result.items() if k.startswith("n_excluded"))
    out.print(
        f"GEE ({method['working_correlation']} working correlation, clusters: "
        f"{method['cluster']}s, {method['cov_type']} covariance, margin "
        f"{method['margin']:.3f}); {excluded:,} encounters left out for missing values "
        f"(counts in the JSON). Result written to {str(out_file)!r}"
        + (f", forest plot to {str(plot)!r}." if plot is not None else "."),
        highlight=False,
    )


@app.command()
def power(
    patients: Annotated[
        int | None,
        typer.Option(help="Patients per study. Omit to find how many give --power.", min=20),
    ] = None,
    target: Annotated[str, typer.Option(help="attended_next or adherent.")] = "adherent",
    attribute: Annotated[
        str, typer.Option(help="The quality whose effect deviates.")
    ] = "active_listening",
    treatment: Annotated[
        str | None,
        typer.Option(help="Where it deviates (default: the treatment with fewest patients)."),
    ] = None,
    deviation: Annotated[
        float, typer.Option(help="Extra log-odds per rating point in that treatment.")
    ] = 0.3,
    treatments: Annotated[
        str | None, typer.Option(help="Comma-separated treatments in the study (default: all).")
    ] = None,
    sessions: Annotated[
        int | None, typer.Option(help="Planned sessions per patient (default: the config's).")
    ] = None,
    goal: Annotated[
        float, typer.Option("--power", help="Power wanted when searching for patients.")
    ] = 0.8,
    reps: Annotated[int, typer.Option(help="Simulated studies per size.", min=1)] = 200,
    jobs: Annotated[int, typer.Option(help="Processes; -1 for all cores.")] = -1,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    out_file: Annotated[Path | None, typer.Option("--out", help="Result JSON to write.")] = None,
    config: ConfigOption = None,
) -> None:
    """Power of the cross-treatment test, by simulation with the built-in simulator.

    With --patients: how often a deviation of --deviation log-odds per point in one
    treatment is detected (verdict differs), how often another quality is wrongly
    flagged, and how often the qualities without a deviation are shown equivalent.
    Without it: the number of patients needed for --power (default 80%).
    """
    from .heterogeneity.power import estimate_power, patients_for_power, power_config

    _check_target(target)
    cfg = _config(config)
    chosen = None if treatments is None else [t.strip() for t in treatments.split(",") if t]
    cfg = power_config(cfg, treatments=chosen, sessions=sessions)
    options = dict(
        config=cfg,
        target=target,
        attribute=attribute,
        treatment=treatment,
        deviation=deviation,
        reps=reps,
        seed=seed,
        n_jobs=jobs,
    )
    if patients is not None:
        result = _with_progress(
            lambda progress: estimate_power(
                patients, progress=lambda d, t: progress(f"{patients:,} patients", d, t), **options
            )
        )
        out.print(
            f"{patients:,} patients, {result['succeeded']} simulated studies "
            f"({result['failed']} failed to fit): power to detect the deviation "
            f"{_pct(result['power_differs'])} (95% CI {_pct(result['power_differs_ci_low'])} "
            f"to {_pct(result['power_differs_ci_high'])}); another quality wrongly flagged in "
            f"{_pct(result['false_flag_rate'])}; qualities without a deviation shown "
            f"equivalent in {_pct(result['power_equivalence'])}.",
            highlight=False,
        )
    else:
        result = _with_progress(
            lambda progress: patients_for_power(
                goal, progress=lambda n, d, t: progress(f"{n:,} patients", d, t), **options
            )
        )
        out.print(result["sentence"], highlight=False)
    if out_file is not None:
        write_json(result, out_file)
        out.print(f"Result written to {str(out_file)!r}.")


def _pct(share: float | None) -> str:
    return "–" if share is None else f"{100 * share:.0f}%"


@app.command()
def forecast(
    model_dir: Annotated[Path, typer.Argument(help="A model directory written by train.")],
    data: Annotated[str, typer.Argument(help="Encounters (CSV, Parquet or database URL).")],
    by: Annotated[
        str, typer.Option(help="Group by treatment, practitioner_id or any other column.")
    ] = "treatment",
    out_file: Annotated[
        Path, typer.Option("--out", help="Forecast table (.csv, .parquet or .json).")
    ] = Path("forecast.csv"),
    level: Annotated[float, typer.Option(help="Coverage of the interval.")] = 0.9,
    every_encounter: Annotated[
        bool,
        typer.Option(
            help="Forecast every encounter (e.g. to check against recorded outcomes) instead "
            "of each patient's latest encounter whose outcome is not yet known."
        ),
    ] = False,
    table: Annotated[str | None, typer.Option(help="Database table to read.")] = None,
    query: Annotated[str | None, typer.Option(help="SQL query to read.")] = None,
) -> None:
    """Expected number of patients with the bad outcome per group, with an interval.

    By default each patient's latest encounter whose outcome is still empty counts once:
    for a re-attendance model, the expected number of patients who will not come to
    their next session. Leave out of DATA the patients whose course has ended (their
    last outcome is empty too, but no session is due). The interval is the
    Poisson-binomial distribution of the count (independent outcomes with the model's
    probabilities).
    """
    from .forecast import forecast_dropout
    from .io import write_table

    if not 0 < level < 1:
        raise typer.BadParameter("the level must be between 0 and 1", param_hint="--level")
    if out_file.suffix.lower() not in (".csv", ".parquet", ".json"):
        raise typer.BadParameter("use a .csv, .parquet or .json file", param_hint="--out")
    model, _manifest, cfg = _load(model_dir)
    encounters = _read_valid(data, cfg, table, query)
    if by not in encounters.columns:
        raise ContractError(
            f"the table has no column {by!r} to group by; it has {list(encounters.columns)}"
        )
    p_bad = 1.0 - model.predict_proba(encounters)
    target = model.target
    if every_encounter:
        rows = np.ones(len(encounters), dtype=bool)
    else:
        pending = encounters[target].isna().to_numpy()
        order = encounters.assign(_row=np.arange(len(encounters))).sort_values(
            ["patient_id", "session_number"]
        )
        latest = order.groupby("patient_id", sort=False)["_row"].last().to_numpy()
        rows = np.zeros(len(encounters), dtype=bool)
        rows[latest] = True
        rows &= pending
        if not rows.any():
            raise ContractError(
                f"no patient's latest encounter has {target} still empty, so there is no "
                "next session to forecast; use --every-encounter to forecast recorded ones"
            )
    observed = 1.0 - encounters.loc[rows, target].to_numpy(dtype="float64", na_value=np.nan)
    table_out = forecast_dropout(
        p_bad[rows],
        encounters.loc[rows, by].astype("string").reset_index(drop=True),
        level,
        observed_bad=observed if every_encounter else None,
    ).reset_index()
    table_out.insert(1, "bad_outcome", _bad_outcome(cfg, target))
    if out_file.suffix.lower() == ".json":
        write_json({"level": level, "by": by, "groups": table_out.to_dict("records")}, out_file)
    else:
        write_table(table_out, out_file)
    t = Table(
        title=f"Expected number who {_bad_outcome(cfg, target)} ({level:.0%} interval)",
        header_style="bold",
    )
    for col in (by, "n", "expected", "interval"):
        t.add_column(col, justify="left" if col == by else "right")
    for r in table_out.itertuples(index=False):
        t.add_row(
            str(r[0]),
            f"{r.n_encounters:,}",
            f"{r.expected:.1f}",
            f"{r.interval_low:.0f} to {r.interval_high:.0f}",
        )
    out.print(t)
    out.print(f"Forecast written to {str(out_file)!r}.")


# --------------------------------------------------------------------------- entry
def main() -> None:
    """Console entry point: run the app, turning expected errors into exit codes."""
    try:
        # standalone mode: usage errors print the usage and exit 2, Exit is sys.exit
        app()
    except EngagekitError as e:
        err.print(f"[red]error:[/red] {e}", highlight=False, soft_wrap=True)
        sys.exit(e.exit_code)
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)
    except Exception as e:
        if os.environ.get("ENGAGEKIT_DEBUG"):
            raise
        err.print(
            f"[red]internal error[/red] ({type(e).__name__}): {e}\n"
            "This is a bug in engagekit; rerun with ENGAGEKIT_DEBUG=1 for the traceback "
            "and report it.",
            highlight=False,
        )
        sys.exit(EXIT_INTERNAL)
