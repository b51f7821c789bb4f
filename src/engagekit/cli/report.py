"""``report``: the self-contained HTML report and the model cards."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ._app import app, err, out
from ._common import (
    ConfigOption,
    EncodingOption,
    QueryOption,
    SepOption,
    Source,
    TableOption,
    open_model_directory,
    read_config,
    read_valid_table,
    with_progress,
)

if TYPE_CHECKING:  # loaded inside the command: the help starts without pandas
    from ..heterogeneity import HeterogeneityResult


@app.command()
def report(
    data: Annotated[str, typer.Argument(help="Encounter table (CSV, Parquet or database URL).")],
    model_dirs: Annotated[
        list[Path],
        typer.Option(
            "--model",
            help="A model directory written by train; repeat for each outcome (one model each).",
        ),
    ],
    out_file: Annotated[
        Path, typer.Option("--out", help="HTML report to write; model cards go beside it.")
    ] = Path("report.html"),
    heterogeneity: Annotated[
        list[Path] | None,
        typer.Option(
            "--heterogeneity",
            help="A result JSON of engagekit heterogeneity, for a model's outcome (repeat for "
            "each); the analysis of an outcome without one is computed.",
        ),
    ] = None,
    power: Annotated[
        Path | None, typer.Option("--power", help="A result JSON of engagekit power.")
    ] = None,
    monitoring: Annotated[
        Path | None,
        typer.Option(
            "--monitoring",
            help="A result JSON of engagekit monitor (its --out file, or what --json "
            "prints): adds a Monitoring section with its tables, alerts and control charts.",
        ),
    ] = None,
    title: Annotated[str, typer.Option(help="The report's title.")] = "engagekit report",
    bootstrap: Annotated[
        int,
        typer.Option(help="Patient-bootstrap replicates of the rank agreement's CIs.", min=1),
    ] = 500,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    table: TableOption = None,
    query: QueryOption = None,
    encoding: EncodingOption = "utf-8",
    sep: SepOption = None,
    config: ConfigOption = None,
) -> None:
    """Write one self-contained HTML report and a model card per model.

    The report (plots and styles inside the file; it opens offline) holds the data
    summary, each model's cross-validated performance with 95% CIs (ROC, calibration and
    decision curves, tables per treatment and subgroup), the cross-treatment analysis
    with its power, the explanations, the at-risk flag rule, the forecast, the
    monitoring of a deployed model when --monitoring is given, and the model cards.
    Each model card is also written as model_card_<outcome>.md beside the report. DATA
    is checked against the contract first; models whose file was altered are
    refused. Without --config, the first model's config is used.
    """
    from ..errors import DataReadError
    from ..io._model_store import METRICS_FILE
    from ..io._results import (
        read_heterogeneity_result,
        read_monitor_result,
        read_power_result,
    )
    from ..io._write import check_writable, write_text
    from ..report import ReportModel, build_report

    if out_file.suffix.lower() not in (".html", ".htm"):
        raise typer.BadParameter("the report must be an .html file", param_hint="--out")
    # in a second, not after building the report (the model cards go beside it)
    check_writable(out_file)
    models, model_configs = [], []
    for model_dir in model_dirs:
        # model, manifest and metrics read at one moment, all checked against the
        # directory's integrity record
        loaded, model_cfg = open_model_directory(model_dir)
        if loaded.metrics is None:
            raise DataReadError(
                f"{str(model_dir)!r} has no {METRICS_FILE}; train the model with engagekit "
                "train, which writes it"
            )
        model_configs.append(model_cfg)
        models.append(
            ReportModel(loaded.model, loaded.manifest, loaded.metrics, source=str(model_dir))
        )
    targets = [m.target for m in models]
    for target in set(targets):
        if targets.count(target) > 1:
            sources = ", ".join(repr(m.source) for m in models if m.target == target)
            raise typer.BadParameter(
                f"{sources} all predict {target!r}; give one model per outcome",
                param_hint="--model",
            )
    analyses: list[HeterogeneityResult] = []
    for path in heterogeneity or []:
        result = read_heterogeneity_result(path)
        if result.target not in targets:
            raise typer.BadParameter(
                f"{str(path)!r} analyses {result.target!r}, which no --model predicts "
                f"({', '.join(targets)}); add that model or leave the result out",
                param_hint="--heterogeneity",
            )
        if result.target in (a.target for a in analyses):
            raise typer.BadParameter(
                f"two results for {result.target!r}; give one per outcome",
                param_hint="--heterogeneity",
            )
        analyses.append(result)
    simulated = None
    if power is not None:
        simulated = read_power_result(power)
    monitored = None if monitoring is None else read_monitor_result(monitoring)
    cfg = read_config(config) if config is not None else model_configs[0]
    features = [f for m in models for f in m.model.feature_names]
    encounters, cfg = read_valid_table(
        Source(data, table, query, encoding, sep), cfg, model_features=features
    )
    built = with_progress(
        build_report,
        encounters,
        models,
        cfg,
        heterogeneity=analyses,
        power=simulated,
        monitoring=monitored,
        title=title,
        data_source=data if "://" not in data else None,
        rank_agreement_boot=bootstrap,
        seed=seed,
        n_jobs=-1,
    )
    write_text(built.html, out_file)
    cards = [
        write_text(card, out_file.parent / f"model_card_{target}.md")
        for target, card in built.model_cards.items()
    ]
    for what, why in built.notes.items():
        err.print(f"[yellow]note[/yellow] ({what}): {why}", highlight=False)
    out.print(
        f"Report written to {str(out_file)!r} ({len(built.html) / 1e6:.1f} MB, built in "
        f"{built.seconds:.0f} s); model cards: {', '.join(repr(str(c)) for c in cards)}.",
        highlight=False,
    )
