"""What every command shares: the app, consoles, common options and readers.

Each command parses its options, calls library functions and prints. Expected errors
(bad config, unreadable data, data breaking the contract) end with one clear message and
an exit code; a traceback would mean a bug, and even then the user gets a one-line
message unless ENGAGEKIT_DEBUG=1 asks for the traceback. The handling lives in the
command group (:class:`_Group`), so a command run in-process (typer's ``CliRunner``)
ends exactly as it does from the shell.

Only typer and rich are imported here: ``engagekit --help`` must start in well under
half a second, so pandas, scikit-learn and the rest load inside the commands that use
them.

Exit codes: 0 success, 1 the data breaks the contract, 2 the input or config cannot be
used at all (or the command line is wrong), 3 an analysis cannot be done on these data,
70 an internal error, 130 interrupted.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from typer.core import TyperArgument, TyperCommand, TyperGroup

from ..errors import EngagekitError

if TYPE_CHECKING:
    from rich.table import Table

    from ..config import Config
    from ..evaluation import Metrics
    from ..models import ModelManifest

EXIT_INTERNAL = 70
EXIT_INTERRUPTED = 130

# Rich assumes 80 columns when output is piped; tables of treatment names need more.
out = Console(width=None if sys.stdout.isatty() else 120)
err = Console(stderr=True, width=None if sys.stderr.isatty() else 120)

#: The commands in the order a service uses them; ``engagekit --help`` lists them so.
WORKFLOW = (
    "validate",
    "train",
    "evaluate",
    "score",
    "predict",
    "forecast",
    "heterogeneity",
    "power",
    "report",
    "simulate",
    "demo",
)


def _readable(params: list[Any]) -> list[Any]:
    """Parameters as help shows them: an argument as ``DATA`` (not typer's ``{data}``),
    and a flag without a ``<bool>`` type after it."""
    for param in params:
        if isinstance(param, TyperArgument):
            if param.metavar is None:
                param.metavar = param.name.upper()
        elif getattr(param, "is_flag", False) and param.metavar is None:
            param.metavar = ""
    return params


class _Command(TyperCommand):
    """A command whose help reads as a user expects (see :func:`_readable`)."""

    def get_params(self, ctx: Any) -> list[Any]:
        return _readable(super().get_params(ctx))

    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        pieces = [self.options_metavar] if self.options_metavar else []
        for param in self.get_params(ctx):
            if isinstance(param, TyperArgument):
                name = param.metavar + ("..." if param.nargs != 1 else "")
                pieces.append(name if param.required else f"[{name}]")
        return pieces


class _Group(TyperGroup):
    """The ``engagekit`` group: commands in workflow order, and expected errors turned
    into one message and an exit code (in a shell and in-process alike)."""

    def get_params(self, ctx: Any) -> list[Any]:
        return _readable(super().get_params(ctx))

    def list_commands(self, ctx: Any) -> list[str]:
        names = super().list_commands(ctx)
        rank = {name: k for k, name in enumerate(WORKFLOW)}
        return sorted(names, key=lambda name: rank.get(name, len(rank)))

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort, typer.TyperException, BrokenPipeError):
            # BrokenPipeError: the reader went away (| head); click ends quietly, exit 1
            raise
        except EngagekitError as e:
            err.print(f"[red]error:[/red] {e}", highlight=False, soft_wrap=True, markup=True)
            raise typer.Exit(e.exit_code) from None
        except KeyboardInterrupt:
            err.print("interrupted")
            raise typer.Exit(EXIT_INTERRUPTED) from None
        except Exception as e:
            if os.environ.get("ENGAGEKIT_DEBUG"):
                raise
            err.print(
                f"[red]internal error[/red] ({type(e).__name__}): {_escape(str(e))}\n"
                "This is a bug in engagekit; rerun with ENGAGEKIT_DEBUG=1 for the traceback "
                "and report it.",
                highlight=False,
            )
            raise typer.Exit(EXIT_INTERNAL) from None


class _App(typer.Typer):
    """Every command gets :class:`_Command`'s help."""

    def command(self, *args: Any, **kwargs: Any):
        kwargs.setdefault("cls", _Command)
        return super().command(*args, **kwargs)


app = _App(
    name="engagekit",
    cls=_Group,
    help=(
        "Predict re-attendance and adherence in depression treatment from patients' "
        "session-by-session ratings of their practitioner."
    ),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode="rich",
)


def _escape(text: str) -> str:
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


def _iso_day(value: str | None, option: str) -> str | None:
    """``value`` if it is a day written ``YYYY-MM-DD``; a usage error otherwise."""
    if value is None:
        return None
    from .._dates import parse_iso_date

    try:
        parse_iso_date(value)
    except ValueError as e:
        raise typer.BadParameter(str(e), param_hint=option) from None
    return value


def _config(path: Path | None) -> Config:
    from ..config import load_config

    return load_config(path)


def _version(value: bool) -> None:
    if value:
        from .. import __version__

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


def _read(source: Source):
    from ..io import read_encounters

    return read_encounters(
        source.data,
        table=source.table,
        query=source.query,
        encoding=source.encoding,
        sep=source.sep,
    )


def _read_valid(source: Source, cfg: Config, *, model_features: list[str] | None = None):
    """Read and check a table; ``(typed encounters, the config to use)``.

    On contract problems the report is printed and the command exits 1. Absent optional
    columns get the same answer in every command (see
    :mod:`engagekit.validation.coverage`): a covariate is left out with a note (for a
    trained model, scored as unknown), and an absent rating column stops the command.
    ``model_features`` are the feature names of the model that will use the table.
    """
    import pandas as pd

    from ..errors import ConfigError
    from ..validation import (
        coerce_encounters,
        table_coverage,
        validate_encounters,
        without_absent_covariates,
    )

    with err.status("Reading and checking the encounter table…"):
        raw = _read(source)
        report = validate_encounters(raw, cfg)
    if not report.valid:
        out.print("The encounter table breaks the data contract; nothing was computed or written.")
        _print_report(report, max_problems=50, config=cfg, columns=raw.columns)
        raise typer.Exit(1)
    coverage = table_coverage(raw.columns, cfg)
    if coverage.absent_ratings:
        raise ConfigError(
            f"the rating column(s) {', '.join(map(repr, coverage.absent_ratings))} of the "
            "config are absent from the table; every configured rating is needed here. "
            "Give a --config whose attributes are the table's rating columns"
        )
    encounters = coerce_encounters(raw, cfg)
    cfg, _left_out = without_absent_covariates(cfg, raw.columns)
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
        encounters[covariate] = pd.Series(pd.NA, index=encounters.index, dtype="string")
    if not used:
        for note in coverage.notes():
            err.print(f"[yellow]note:[/yellow] {note}.", highlight=False)
    return encounters, cfg


def _require_column(encounters, column: str, option: str, what: str) -> None:
    """Stop, as a usage error, an option that needs an optional column the table lacks."""
    if column not in encounters.columns:
        raise typer.BadParameter(
            f"{what} needs the column {column!r}, which the table lacks (engagekit validate "
            "lists what a table cannot feed)",
            param_hint=option,
        )


def _metric_table(metrics: Metrics, title: str | None = None, bad_outcome: str | None = None):
    """The headline metrics with their CIs. The AUPRC shown is the flagged (bad)
    outcome's, beside its chance level: the good outcome's sits near its own base rate
    whatever the model, so it says little."""
    from rich.table import Table

    from ..evaluation import FLAGGED_AUPRC, POINT_METRICS

    t = Table(title=title, header_style="bold")
    for col in ("metric", "value", "95% CI"):
        t.add_column(col, justify="left" if col == "metric" else "right")
    for name in POINT_METRICS[:6]:  # the scores; prevalence and n are not estimates
        shown = name
        if name == "auprc":
            name, shown = FLAGGED_AUPRC, "auprc (flagged outcome)"
        estimate = metrics.overall.estimate(name)
        value, low, high = estimate.value, estimate.ci_low, estimate.ci_high
        ci = "–" if low is None or high is None else f"{low:.3f} to {high:.3f}"
        t.add_row(shown, "–" if value is None else f"{value:.3f}", ci)
    prevalence = metrics.overall.prevalence.value
    if prevalence is not None:
        who = f"patients who {bad_outcome}" if bad_outcome else "the flagged outcome"
        t.caption = (
            f"auprc is for {who}; a model no better than chance scores their rate, "
            f"{1 - prevalence:.3f}."
        )
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


def _load(model_dir: Path, config: Path | None = None):
    """``(model, manifest, config)``: the model's own config, or ``config`` when given
    and compatible with it (same attributes, scale and treatments)."""
    loaded, cfg = _load_directory(model_dir, config)
    return loaded.model, loaded.manifest, cfg


def _load_directory(model_dir: Path, config: Path | None = None):
    """``(the model directory loaded whole, config)``, as :func:`_load`; its version and
    signature warnings said on stderr."""
    import warnings

    from ..config import config_from_dict
    from ..io.model_store import (
        ModelSignatureWarning,
        ModelVersionWarning,
        load_model_directory,
    )

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ModelVersionWarning)
        warnings.simplefilter("always", ModelSignatureWarning)
        loaded = load_model_directory(model_dir)
    for w in caught:
        err.print(f"[yellow]warning:[/yellow] {w.message}", highlight=False)
    cfg = config_from_dict(loaded.manifest.config, source=f"of the model {str(model_dir)!r}")
    if config is not None:
        from ..config import check_compatible

        given = _config(config)
        check_compatible(given, cfg, f"the config {str(config)!r}", f"the model {str(model_dir)!r}")
        cfg = given
    return loaded, cfg


def _refuse_unfit(manifest: ModelManifest, model_dir: Path, allow: bool) -> None:
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


def _print_report(report, max_problems: int, config: Config, columns=None) -> None:
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
