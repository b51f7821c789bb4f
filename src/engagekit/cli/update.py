"""``update``: a trained model updated for a new service."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .._format import estimate, number
from ._app import app, out
from ._common import (
    BootstrapOption,
    EncodingOption,
    ModelConfigOption,
    QueryOption,
    SepOption,
    Source,
    TableOption,
    open_model_directory,
    read_valid_table,
)


@app.command()
def update(
    model_dir: Annotated[Path, typer.Argument(help="A model directory written by train.")],
    data: Annotated[str, typer.Argument(help="Labelled encounters of the new service.")],
    out_dir: Annotated[Path, typer.Option("--out", help="Model directory to write.")],
    # a str checked against UpdateMethod in the command: the enum's module loads pandas,
    # which --help must not
    method: Annotated[
        str,
        typer.Option(
            help="auto (the simplest step the tests at --alpha support), intercept "
            "(recalibration in the large), logistic (logistic recalibration), refit, or "
            "subgroup-intercept (an intercept per level of --subgroup; never chosen by "
            "auto).",
            metavar="auto|intercept|logistic|refit|subgroup-intercept",
        ),
    ] = "auto",
    subgroup: Annotated[
        str | None,
        typer.Option(
            help="The column of --method subgroup-intercept: treatment or a subgroup of "
            "the config (age_band, gender, …).",
        ),
    ] = None,
    alpha: Annotated[
        float, typer.Option(help="Level of the tests of auto.", min=0.0001, max=0.5)
    ] = 0.05,
    validation_share: Annotated[
        float,
        typer.Option(
            help="Share of the new service's patients kept out of the update, to "
            "validate the parent and the updated model on.",
            min=0.1,
            max=0.9,
        ),
    ] = 0.5,
    bootstrap: BootstrapOption = None,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    table: TableOption = None,
    query: QueryOption = None,
    encoding: EncodingOption = "utf-8",
    sep: SepOption = None,
    config: ModelConfigOption = None,
) -> None:
    """Update a model for a new service: recalibrate it, or refit it, as the data need.

    Splits the new service's patients into updating and validation patients, chooses
    (auto) and fits the update on the first, and reports the parent and the updated
    model on the second: calibration intercept and slope, AUROC and net benefit at the
    flag threshold, with patient-bootstrap 95% CIs. The new model directory records its
    parent, the method and the tests in its manifest, metrics.json and model card, and is
    scored like any other.

    With --method subgroup-intercept --subgroup COLUMN each level of the column gets its
    own intercept on the parent's log-odds, shrunk toward their mean (empirical Bayes),
    and the command reports, per level, the offset and what it changes on the
    validation patients: calibration in the large and the share flagged. The model then
    needs the column to score.
    """
    from rich.table import Table

    from ..io._model_store import check_replaceable, save_model
    from ..io._write import check_writable
    from ..models import (
        UpdateMethod,
        build_update_manifest,
        build_update_metrics,
        update_model,
    )
    from ..report import model_card

    try:
        chosen = UpdateMethod(method)
    except ValueError:
        raise typer.BadParameter(
            f"{method!r}: choose auto, intercept, logistic, refit or subgroup-intercept",
            param_hint="--method",
        ) from None
    if (subgroup is None) != (chosen is not UpdateMethod.SUBGROUP_INTERCEPT):
        raise typer.BadParameter(
            "--subgroup names the column of --method subgroup-intercept, and only of it",
            param_hint="--subgroup",
        )
    check_writable(out_dir / "manifest.json", what=f"the model directory {str(out_dir)!r}")
    check_replaceable(out_dir)
    loaded, cfg = open_model_directory(model_dir, config)
    parent, manifest = loaded.model, loaded.manifest
    encounters, cfg = read_valid_table(
        Source(data, table, query, encoding, sep), cfg, model_features=parent.feature_names
    )
    result = update_model(
        parent,
        encounters,
        chosen,
        cfg,
        flag_rule=manifest.flag_rule,
        subgroup=subgroup,
        alpha=alpha,
        validation_share=validation_share,
        seed=seed,
        n_boot=bootstrap,
        n_jobs=-1,
    )
    new_manifest = build_update_manifest(
        manifest, result, encounters, parent_model=str(model_dir), source=data
    )
    if loaded.metrics is None:
        save_model(result.model, out_dir, new_manifest)
    else:
        metrics = build_update_metrics(loaded.metrics, new_manifest, result, encounters)
        save_model(result.model, out_dir, new_manifest, metrics=metrics, model_card=model_card)
    record = result.record
    tests = Table(title="the model-updating ladder (on the updating patients)")
    for column in ("step", "against", "statistic", "p", "LR chi2 (df)", "rejected"):
        tests.add_column(column)
    for t in record.tests:
        tests.add_row(
            t.step,
            t.against,
            number(t.statistic, 2),
            number(t.p_value, 4),
            f"{number(t.lr_statistic, 1)} ({t.df})",
            "yes" if t.rejected else "no",
        )
    out.print(tests)
    shown = (
        f" (logit p = {record.intercept:.3f} + {record.slope:.3f} × the parent's log-odds)"
        if record.intercept is not None and record.slope is not None
        else ""
    )
    out.print(f"Method: [bold]{record.method}[/bold]{shown}.", highlight=False)
    performance = Table(
        title=f"on {record.validation_patients:,} validation patients "
        f"({record.validation_encounters:,} encounters)"
    )
    for column in ("", "calibration intercept", "calibration slope", "AUROC", "net benefit"):
        performance.add_column(column)
    for name, perf in (("before (parent)", record.before), ("after", record.after)):
        performance.add_row(
            name,
            *(
                estimate(e)
                for e in (
                    perf.calibration_intercept,
                    perf.calibration_slope,
                    perf.auroc,
                    perf.net_benefit,
                )
            ),
        )
    out.print(performance)
    if record.subgroup is not None:
        _print_subgroup(record.subgroup)
    out.print(
        f"Net benefit of flagging at a risk of {record.after.net_benefit_threshold:.3f} or "
        f"more. Updated model written to {str(out_dir)!r}.",
        highlight=False,
    )


def _print_subgroup(subgroup) -> None:
    """Per level: the offset, and what it changed on the validation patients."""
    from rich.table import Table

    q = (
        "–"
        if subgroup.heterogeneity_p is None
        else f"Q = {subgroup.heterogeneity_q:.1f} on {subgroup.heterogeneity_df} df, "
        f"p = {subgroup.heterogeneity_p:.4f}"
    )
    table = Table(
        title=f"per-{subgroup.column} intercepts (pooled {subgroup.pooled:+.3f}, between-level "
        f"variance {subgroup.tau2:.3f}; levels differ: {q}); calibration in the large and "
        "share flagged on the validation patients, before → after",
        title_justify="left",
    )
    for column in (
        "level",
        "updating encounters",
        "own intercept",
        "offset applied",
        "calibration before",
        "calibration after",
        "flagged before → after",
    ):
        table.add_column(column, justify="left" if column == "level" else "right")
    for level in subgroup.levels:
        own = (
            f"fewer than {subgroup.min_events} of an outcome"
            if level.raw_offset is None
            else f"{level.raw_offset:+.3f} (SE {level.standard_error:.3f})"
        )
        table.add_row(
            level.level,
            f"{level.updating_encounters:,}",
            own,
            f"{level.offset:+.3f}",
            estimate(level.calibration_before),
            estimate(level.calibration_after),
            f"{_share(level.flagged_before)} → {_share(level.flagged_after)}",
        )
    out.print(table)


def _share(value: float | None) -> str:
    return "–" if value is None else f"{value:.1%}"
