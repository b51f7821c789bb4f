"""What the commands share: their common options, and the helpers they call to read a
config, a table or a model, print a validation report and show progress.

:mod:`._app` holds the app, its command group and the consoles; each command module
imports these helpers from here by their public names. Only typer and rich are imported
at the top: ``engagekit --help`` must start in well under half a second, so pandas,
scikit-learn and the rest load inside the helpers that use them.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from ._app import err, out

if TYPE_CHECKING:
    from rich.table import Table

    from ..config import Config
    from ..evaluation import Metrics
    from ..models import ModelManifest

__all__ = [
    "STREAM_CHUNK_ROWS",
    "AllowUnfitOption",
    "BootstrapOption",
    "ConfigOption",
    "EncodingOption",
    "EscapeFormulasOption",
    "ModelConfigOption",
    "QueryOption",
    "SepOption",
    "Source",
    "TableOption",
    "TargetOption",
    "bad_outcome",
    "check_target",
    "escape_markup",
    "is_streamed",
    "iso_day",
    "metric_table",
    "open_model",
    "open_model_directory",
    "percent",
    "print_validation_report",
    "read_config",
    "read_table",
    "read_valid_table",
    "refuse_unfit",
    "require_column",
    "simulate_with_progress",
    "streamed_valid_table",
    "usable_config",
    "with_progress",
]

_T = TypeVar("_T")


def escape_markup(text: str) -> str:
    """``text`` with rich's markup characters escaped, to print as it is."""
    from rich.markup import escape

    return escape(text)


# --------------------------------------------------------------------------- options
ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        "-c",
        help="YAML config; its top-level blocks replace the defaults (configs/default.yaml).",
        dir_okay=False,
    ),
]
ModelConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        "-c",
        help="YAML config for the wording (labels, suggestions); its attributes, scale and "
        "treatments must be the model's (default: the config stored with the model).",
        dir_okay=False,
    ),
]

# where in a file or database DATA is: every command that reads data takes these
TableOption = Annotated[
    str | None, typer.Option(help="Database table to read (default: encounters).")
]
QueryOption = Annotated[str | None, typer.Option(help="SQL query to read instead of a table.")]
EncodingOption = Annotated[
    str, typer.Option(help="Text encoding of a CSV file (e.g. cp1252 or latin-1).")
]
SepOption = Annotated[
    str | None,
    typer.Option(
        "--sep",
        help="Column separator of a CSV file: ',', ';', '|' or 'tab' (default: detected "
        "from the header line).",
    ),
]
BootstrapOption = Annotated[
    int | None,
    typer.Option(
        help="Patient-bootstrap replicates for the 95% CIs (default: 1000, fewer "
        "above 200,000 encounters, never under 200).",
        min=0,
    ),
]
SchedulerOption = Annotated[
    str | None,
    typer.Option(
        help="Address of a running Dask scheduler (tcp://host:8786) to run the replicates "
        "on (needs engagekit[dask]); default $DASK_SCHEDULER_ADDRESS, else this machine. "
        "The results are the same.",
        show_default=False,
    ),
]
AllowUnfitOption = Annotated[
    bool,
    typer.Option(
        "--allow-unfit-model",
        help="Use a model that train marked unfit for use (no better than chance).",
    ),
]
# every command writing a CSV (OWASP's rule against CSV injection; see io.write)
EscapeFormulasOption = Annotated[
    bool,
    typer.Option(
        "--escape-formulas/--no-escape-formulas",
        help="In a CSV written, give text cells beginning with =, +, -, @, a tab or a "
        "carriage return a leading ' so a spreadsheet shows them instead of running them "
        "(numbers are untouched; Parquet and databases keep the raw values).",
    ),
]


@dataclass(frozen=True)
class Source:
    """Where DATA is and how to read it: the options every data-reading command shares."""

    data: str
    table: str | None = None
    query: str | None = None
    encoding: str = "utf-8"
    sep: str | None = None


def iso_day(value: str | None, option: str) -> str | None:
    """``value`` if it is a day written ``YYYY-MM-DD``; a usage error otherwise."""
    if value is None:
        return None
    from .._dates import parse_iso_date

    try:
        parse_iso_date(value)
    except ValueError as e:
        raise typer.BadParameter(str(e), param_hint=option) from None
    return value


def read_config(path: Path | None) -> Config:
    """The config a ``--config`` option names (the defaults when it is not given)."""
    from ..config import load_config

    return load_config(path)


def with_progress(fn: Callable[..., _T], *args: Any, **kwargs: Any) -> _T:
    """Call ``fn(*args, progress=..., **kwargs)`` with a bar per named step on stderr."""
    from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    ) as bar:
        tasks: dict[str, TaskID] = {}

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


def check_target(target: str) -> None:
    """Stop, as a usage error, a ``--target`` that is not an outcome engagekit models."""
    from ..config import OUTCOME_NAMES

    if target not in OUTCOME_NAMES:
        raise typer.BadParameter(
            f"{target!r} is not an outcome; choose one of {', '.join(OUTCOME_NAMES)}",
            param_hint="--target",
        )


def read_table(source: Source):
    """The table ``source`` names, as read (not yet checked against the contract)."""
    from ..io import read_encounters

    return read_encounters(
        source.data,
        table=source.table,
        query=source.query,
        encoding=source.encoding,
        sep=source.sep,
    )


def checked_coverage(report, cfg: Config, columns):
    """What a table read as ``columns`` can feed, once it met the contract: on contract
    problems the report is printed and the command exits 1; an absent rating column of
    the config stops it with a ConfigError."""
    from ..errors import ConfigError
    from ..validation import table_coverage

    if not report.valid:
        out.print("The encounter table breaks the data contract; nothing was computed or written.")
        print_validation_report(report, max_problems=50, config=cfg, columns=columns)
        raise typer.Exit(1)
    coverage = table_coverage(columns, cfg)
    if coverage.absent_ratings:
        raise ConfigError(
            f"the rating column(s) {', '.join(map(repr, coverage.absent_ratings))} of the "
            "config are absent from the table; every configured rating is needed here. "
            "Give a --config whose attributes are the table's rating columns"
        )
    return coverage


def read_valid_table(source: Source, cfg: Config, *, model_features: list[str] | None = None):
    """Read and check a table; ``(typed encounters, the config to use)``.

    On contract problems the report is printed and the command exits 1. Absent optional
    columns get the same answer in every command (see
    :mod:`engagekit.validation._coverage`): a covariate is left out with a note (for a
    trained model, scored as unknown), and an absent rating column stops the command.
    ``model_features`` are the feature names of the model that will use the table.
    """
    import pandas as pd

    from ..validation import coerce_encounters, validate_encounters

    with err.status("Reading and checking the encounter table…"):
        raw = read_table(source)
        report = validate_encounters(raw, cfg)
    checked_coverage(report, cfg, raw.columns)
    encounters = coerce_encounters(raw, cfg)
    cfg, unknown = usable_config(cfg, raw.columns, model_features)
    for covariate in unknown:
        encounters[covariate] = pd.Series(pd.NA, index=encounters.index, dtype="string")
    return encounters, cfg


#: Rows per bucket of whole patients when a Parquet file is streamed by a command with
#: no --chunk-rows (validate, train): the memory of checking one bucket.
STREAM_CHUNK_ROWS = 50_000


def is_streamed(source: Source) -> bool:
    """True if ``source`` is a Parquet file, which the local engine reads in row groups
    and works on in buckets of whole patients (:mod:`engagekit.io._stream`)."""
    from ..io._stream import is_parquet_file

    return source.table is None and source.query is None and is_parquet_file(source.data)


@contextmanager
def streamed_valid_table(
    source: Source, cfg: Config, chunk_rows: int, *, model_features: list[str] | None = None
):
    """:func:`read_valid_table` for a Parquet file read in row groups: yields
    ``(EncounterChunks, the config to use)`` and removes the spilled buckets after."""
    from ..io._stream import EncounterChunks, split_parquet, validate_buckets

    buckets = with_progress(split_parquet, source.data, cfg, chunk_rows)
    try:
        report = with_progress(validate_buckets, buckets, cfg)
        checked_coverage(report, cfg, buckets.columns)
        used, unknown = usable_config(cfg, buckets.columns, model_features)
        yield EncounterChunks(buckets, cfg, tuple(unknown)), used
    finally:
        buckets.close()


def usable_config(cfg: Config, columns, model_features: list[str] | None):
    """``(the config without the covariates the table lacks, the absent covariates the
    model uses)``, each said in a note: those the model uses are scored as unknown."""
    from ..validation import table_coverage, without_absent_covariates

    coverage = table_coverage(columns, cfg)
    usable, _left_out = without_absent_covariates(cfg, columns)
    used = [
        c
        for c in coverage.absent_covariates
        if model_features is not None and any(f.startswith(f"{c}=") for f in model_features)
    ]
    for covariate in used:
        err.print(
            f"[yellow]note:[/yellow] the model uses the covariate {covariate!r}, which is "
            "absent from the table: every encounter is scored with it unknown.",
            highlight=False,
        )
    if not used:
        for note in coverage.notes():
            err.print(f"[yellow]note:[/yellow] {note}.", highlight=False)
    return usable, used


def require_column(encounters, column: str, option: str, what: str) -> None:
    """Stop, as a usage error, an option that needs an optional column the table lacks."""
    if column not in encounters.columns:
        raise typer.BadParameter(
            f"{what} needs the column {column!r}, which the table lacks (engagekit validate "
            "lists what a table cannot feed)",
            param_hint=option,
        )


def bad_outcome(cfg: Config, target: str) -> str:
    """The config's words for the bad outcome of ``target`` ("miss their next session")."""
    return next((o.bad_outcome for o in cfg.outcomes if o.name == target), f"not {target}")


def open_model(model_dir: Path, config: Path | None = None):
    """``(model, manifest, config)``: the model's own config, or ``config`` when given
    and compatible with it (same attributes, scale and treatments)."""
    loaded, cfg = open_model_directory(model_dir, config)
    return loaded.model, loaded.manifest, cfg


def open_model_directory(model_dir: Path, config: Path | None = None):
    """``(the model directory loaded whole, config)``, as :func:`open_model`; its version
    and signature warnings said on stderr."""
    import warnings

    from ..errors import ModelSignatureWarning, ModelVersionWarning
    from ..io._model_store import load_model_directory

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ModelVersionWarning)
        warnings.simplefilter("always", ModelSignatureWarning)
        loaded = load_model_directory(model_dir)
    for w in caught:
        err.print(f"[yellow]warning:[/yellow] {w.message}", highlight=False)
    cfg = loaded.manifest.training_config(f"the model {str(model_dir)!r}")
    if config is not None:
        from ..config import check_compatible

        given = read_config(config)
        check_compatible(given, cfg, f"the config {str(config)!r}", f"the model {str(model_dir)!r}")
        cfg = given
    return loaded, cfg


def refuse_unfit(manifest: ModelManifest, model_dir: Path, allow: bool) -> None:
    """Stop before using a model that train marked unfit for use, unless allowed."""
    if manifest.fit_for_use:
        return
    why = manifest.unfit_reason or "its validation showed no better than chance"
    if not allow:
        from ..errors import UnfitModelError

        raise UnfitModelError(
            f"the model {str(model_dir)!r} is marked unfit for use: {why}. Its risks and "
            "flags would mislead; retrain on more or better data, or pass "
            "--allow-unfit-model to use it anyway"
        )
    err.print(
        f"[bold yellow]warning:[/bold yellow] using a model marked unfit for use ({why}).",
        highlight=False,
    )


def _problem_table(problems, limit: int) -> Table:
    import pandas as pd
    from rich.table import Table

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
    from rich.table import Table

    table = Table(header_style="bold")
    for col in ("column", "rule", "problems", "first rows"):
        table.add_column(col, overflow="fold")
    for r in report.summary().itertuples(index=False):
        table.add_row(r.column, r.rule, f"{r.n_problems:,}", r.first_rows)
    return table


def print_validation_report(report, max_problems: int, config: Config, columns=None) -> None:
    """The validation report: one summary line, then the problems. With ``columns`` (the
    table's), the summary line also says which analyses the table cannot feed."""
    attributes = config.attribute_names
    absent = [c for c in attributes if c in report.absent_columns]
    if absent and len(absent) == len(attributes):
        out.print(
            "[yellow]Note:[/yellow] none of the configured rating columns is in the table. "
            "Does --config match the service's instrument?"
        )
    blocked: list[str] = []
    if columns is not None:
        from ..validation import table_coverage

        coverage = table_coverage(columns, config)
        blocked = coverage.blocked()
        for note in coverage.notes():
            out.print(f"[yellow]Note:[/yellow] {note}.", highlight=False)
    if report.valid:
        line = f"[green]Valid:[/green] {report.n_rows:,} rows meet the encounter contract"
        if blocked:
            line += "; but " + "; ".join(blocked)
        out.print(line + ".", highlight=False, soft_wrap=True)
        return
    out.print(
        f"[red]Invalid:[/red] {len(report.problems):,} problem(s) in "
        f"{report.n_bad_rows:,} of {report.n_rows:,} rows."
        + (" Even once fixed: " + "; ".join(blocked) + "." if blocked else ""),
        highlight=False,
        soft_wrap=True,
    )
    out.print(_summary_table(report))
    if max_problems:
        out.print(_problem_table(report.problems, max_problems))
        hidden = len(report.problems) - max_problems
        if hidden > 0:
            out.print(f"… and {hidden:,} more; --json lists every problem.")


# --------------------------------------------------------------------------- simulate
def simulate_with_progress(patients: int, seed: int, cfg: Config, effects=()):
    """Simulate a service's encounters, with a progress bar on stderr."""
    from ..simulation import simulate_encounters

    def run(progress):
        return simulate_encounters(
            patients,
            seed=seed,
            config=cfg,
            heterogeneity=effects,
            progress=lambda done, total: progress("Simulating", done, total),
        )

    return with_progress(run)


def percent(share: float | None, decimals: int = 1) -> str:
    """A share as a percentage; "–" when it is unknown (None or NaN)."""
    return "–" if share is None or share != share else f"{100 * share:.{decimals}f}%"


def metric_table(metrics: Metrics, title: str | None = None, bad_outcome: str | None = None):
    """The headline metrics with their CIs. The AUPRC shown is the flagged (bad)
    outcome's, beside its chance level: the good outcome's sits near its own base rate
    whatever the model, so it says little."""
    from rich.table import Table

    from .._format import interval, number
    from ..evaluation import FLAGGED_AUPRC, POINT_METRICS

    t = Table(title=title, header_style="bold")
    for col in ("metric", "value", "95% CI"):
        t.add_column(col, justify="left" if col == "metric" else "right")
    for name in POINT_METRICS[:6]:  # the scores; prevalence and n are not estimates
        shown = name
        if name == "auprc":
            name, shown = FLAGGED_AUPRC, "auprc (flagged outcome)"
        estimate = metrics.overall.estimate(name)
        t.add_row(shown, number(estimate.value), interval(estimate.ci_low, estimate.ci_high))
    prevalence = metrics.overall.prevalence.value
    if prevalence is not None:
        who = f"patients who {bad_outcome}" if bad_outcome else "the flagged outcome"
        t.caption = (
            f"auprc is for {who}; a model no better than chance scores their rate, "
            f"{1 - prevalence:.3f}."
        )
    return t
