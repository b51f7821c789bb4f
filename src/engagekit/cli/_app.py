"""What every command shares: the app, consoles, common options and readers.

Each command parses its options, calls library functions and prints. Expected errors
(bad config, unreadable data, data breaking the contract) end with one clear message and
an exit code; a traceback would mean a bug, and even then the user gets a one-line
message unless ENGAGEKIT_DEBUG=1 asks for the traceback.

Exit codes: 0 success, 1 the data breaks the contract, 2 the input or config cannot be
used at all (or the command line is wrong), 70 an internal error.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import pandas as pd
import typer
from rich.console import Console
from rich.table import Table

from .. import __version__
from ..config import Config, load_config

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


# options several commands share: where in a database DATA is, and the bootstrap
TableOption = Annotated[str | None, typer.Option(help="Database table to read.")]
QueryOption = Annotated[str | None, typer.Option(help="SQL query to read.")]
BootstrapOption = Annotated[
    int | None,
    typer.Option(
        help="Patient-bootstrap replicates for the 95% CIs (default: 1000, fewer "
        "above 200,000 encounters, never under 200).",
        min=0,
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


# --------------------------------------------------------------------------- models
TargetOption = Annotated[
    str,
    typer.Option(
        "--target",
        help="Outcome to predict: attended_next (re-attendance) or adherent (adherence).",
    ),
]


def _check_target(target: str) -> None:
    from ..config import OUTCOME_NAMES

    if target not in OUTCOME_NAMES:
        raise typer.BadParameter(
            f"{target!r} is not an outcome; choose one of {', '.join(OUTCOME_NAMES)}",
            param_hint="--target",
        )


def _read_valid(data: str, cfg: Config, table: str | None, query: str | None):
    """Read and check a table; on contract problems print the report and exit 1."""
    from ..io import read_encounters
    from ..validation import coerce_encounters, validate_encounters

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
    from ..evaluation import POINT_METRICS

    for name in POINT_METRICS[:6]:  # the scores; prevalence and n are not estimates
        value = metrics.get(name)
        low, high = metrics.get(f"{name}_ci_low"), metrics.get(f"{name}_ci_high")
        ci = "–" if low is None or high is None else f"{low:.3f} to {high:.3f}"
        t.add_row(name, "–" if value is None else f"{value:.3f}", ci)
    return t


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

    from ..config import config_from_dict
    from ..io.model_store import ModelVersionWarning, load_model

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ModelVersionWarning)
        model, manifest = load_model(model_dir)
    for w in caught:
        err.print(f"[yellow]warning:[/yellow] {w.message}", highlight=False)
    cfg = config_from_dict(manifest["config"], source=f"of the model {str(model_dir)!r}")
    return model, manifest, cfg


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


def _simulate_with_progress(patients: int, seed: int, cfg: Config, effects=()):
    from ..simulation import simulate_encounters

    def run(progress):
        return simulate_encounters(
            patients,
            seed=seed,
            config=cfg,
            heterogeneity=effects,
            progress=lambda done, total: progress("Simulating", done, total),
        )

    return _with_progress(run)


def _pct(share: float | None, decimals: int = 1) -> str:
    """A share as a percentage; "–" when it is unknown (None or NaN)."""
    return "–" if share is None or share != share else f"{100 * share:.{decimals}f}%"
