"""``heterogeneity`` and ``power``: the cross-treatment question."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from ..choices import (
    Adjustment,
    Cluster,
    CovarianceType,
    JointTestKind,
    MarginScale,
    MissingRatings,
    WorkingCorrelation,
)
from ._app import app, err, out
from ._common import (
    ConfigOption,
    EncodingOption,
    QueryOption,
    SchedulerOption,
    SepOption,
    Source,
    TableOption,
    TargetOption,
    check_target,
    percent,
    read_config,
    read_valid_table,
    require_column,
    with_progress,
)


@app.command()
def heterogeneity(
    data: Annotated[str, typer.Argument(help="Encounter table (CSV, Parquet or database URL).")],
    target: TargetOption,
    out_file: Annotated[Path, typer.Option("--out", help="Result JSON to write.")],
    margin: Annotated[
        float | None,
        typer.Option(
            help="Equivalence margin in log-odds, per --margin-per (default from the "
            "config: log(1.25) = 0.223 per SD).",
        ),
    ] = None,
    margin_per: Annotated[
        MarginScale | None,
        typer.Option(
            help="The margin is per sd (standard deviation of the rating, pooled within "
            "treatments: the same on any scale) or per point (default from the config: sd)."
        ),
    ] = None,
    missing: Annotated[
        MissingRatings | None,
        typer.Option(
            help="Encounters with a missing rating: mi (multiple imputation, pooled by "
            "Rubin's rules) or complete_case (left out). Default: mi when over 5% of the "
            "encounters have one; the other is run too, as the sensitivity check."
        ),
    ] = None,
    imputations: Annotated[
        int | None,
        typer.Option(help="Imputed data sets under mi (default from the config: 20).", min=2),
    ] = None,
    seed: Annotated[int, typer.Option(help="Imputation k uses seed + k.")] = 0,
    cluster: Annotated[
        Cluster | None,
        typer.Option(help="Clusters: patient or practitioner (default from the config: patient)."),
    ] = None,
    working_correlation: Annotated[
        WorkingCorrelation | None,
        typer.Option(
            help="independence (default from the config) or exchangeable (checked for convergence)."
        ),
    ] = None,
    test: Annotated[
        JointTestKind | None,
        typer.Option(help="Joint test of treatment differences (default from the config: wald)."),
    ] = None,
    adjustment: Annotated[
        Adjustment | None,
        typer.Option(
            help="Across attributes: holm or fdr_bh (Benjamini-Hochberg; default from the "
            "config: holm)."
        ),
    ] = None,
    cov_type: Annotated[
        CovarianceType | None,
        typer.Option(
            help="Robust covariance: kauermann_carroll or bias_reduced (Mancl-DeRouen), "
            "small-sample corrected, or robust (the plain sandwich, as other software "
            "gives it: too small under 200 clusters; default from the config: "
            "kauermann_carroll)."
        ),
    ] = None,
    plot: Annotated[
        Path | None, typer.Option(help="Forest plot to write (.png, .svg or .pdf).")
    ] = None,
    table: TableOption = None,
    query: QueryOption = None,
    encoding: EncodingOption = "utf-8",
    sep: SepOption = None,
    config: ConfigOption = None,
) -> None:
    """Does each quality's effect differ by treatment? GEE test, equivalence, verdicts.

    For every attribute: a joint test that its effect is the same in every treatment
    (small-sample corrected robust covariance, Holm-adjusted), a TOST equivalence test of every
    between-treatment difference against --margin, per-treatment odds ratios per rating
    point with 95% CIs, average marginal effects, and a verdict: differs, equivalent or
    inconclusive.
    """
    from ..heterogeneity import analysis_settings, heterogeneity_analysis
    from ..io import write_json
    from ..io._write import FIGURE_FORMATS, check_writable

    check_target(target)
    if plot is not None and plot.suffix.lower() not in FIGURE_FORMATS:
        raise typer.BadParameter(
            "the plot file must end in .png, .svg or .pdf", param_hint="--plot"
        )
    for path in (out_file, plot):
        if path is not None:
            check_writable(path)
    cfg = read_config(config)
    # the options laid over the config's settings, checked before the data are read
    settings = analysis_settings(
        cfg.heterogeneity,
        margin=margin,
        margin_per=margin_per,
        missing=missing,
        imputations=imputations,
        cluster=cluster,
        working_correlation=working_correlation,
        test=test,
        adjustment=adjustment,
        cov_type=cov_type,
    )
    cfg = cfg.model_copy(update={"heterogeneity": settings})
    encounters, cfg = read_valid_table(Source(data, table, query, encoding, sep), cfg)
    if settings.cluster is Cluster.PRACTITIONER:
        require_column(encounters, "practitioner_id", "--cluster", "practitioner clusters")
    with err.status("fitting the GEE …"):
        result = heterogeneity_analysis(encounters, target, cfg, seed=seed)
    write_json(result.to_dict(), out_file)
    if plot is not None:
        from ..heterogeneity._plot import forest_plot

        forest_plot(result, plot)
    print_heterogeneity(result)
    method = result.method
    missing_words = (
        f"missing ratings imputed {method.imputations} times (seeds {method.imputation_seeds[0]}"
        f" to {method.imputation_seeds[-1]}), pooled by Rubin's rules"
        if method.imputations
        else f"{result.n_excluded_missing_rating:,} encounters with a missing rating left out"
    )
    out.print(
        f"GEE ({method.working_correlation} working correlation, clusters: "
        f"{method.cluster}s, {method.cov_type} covariance, margin {method.margin:.3f} per "
        f"{method.margin_per}); {missing_words}. Result written to {str(out_file)!r}"
        + (f", forest plot to {str(plot)!r}." if plot is not None else "."),
        highlight=False,
    )
    for note in method.notes:
        err.print(f"Note: {note}", highlight=False, markup=False)


def print_heterogeneity(result: Any) -> None:
    """The analysis's verdicts, the effects table and the sentences, on the console."""
    from rich.table import Table

    from .._labels import in_sentence

    t = Table(
        title=f"Does the effect on {in_sentence(result.target_label)} differ by treatment? "
        f"({result.n_patients:,} patients, {result.n_encounters:,} encounters)",
        header_style="bold",
    )
    for col in ("attribute", "p", "adjusted p", "verdict", "treatments that differ"):
        t.add_column(col, justify="right" if "p" == col.split()[-1] else "left")
    for a in result.attributes:
        label = a.label if a.higher_is_better else f"{a.label} (higher is worse)"
        named = ", ".join(d.treatment_label for d in a.deviations if d.deviates) or "–"
        t.add_row(label, f"{a.p_value:.3g}", f"{a.p_adjusted:.3g}", a.verdict, named)
    out.print(t)
    effects = Table(
        title="Effects by treatment: odds ratio per point and per SD, average marginal "
        "effect on the probability per point (95% CIs)",
        header_style="bold",
    )
    for col in ("attribute", "treatment", "OR per point", "OR per SD", "AME per point"):
        effects.add_column(col, justify="left" if col in ("attribute", "treatment") else "right")
    for a in result.attributes:
        for k, r in enumerate(a.by_treatment):
            effects.add_row(
                a.label if k == 0 else "",
                r.treatment_label,
                f"{r.odds_ratio:.2f} ({r.ci_low:.2f}–{r.ci_high:.2f})",
                f"{r.odds_ratio_per_sd:.2f} ({r.ci_low_per_sd:.2f}–{r.ci_high_per_sd:.2f})",
                f"{r.ame:+.3f} ({r.ame_ci_low:+.3f} to {r.ame_ci_high:+.3f})",
            )
    out.print(effects)
    others = [a.other_analysis for a in result.attributes if a.other_analysis is not None]
    if others and all(a.analyses_agree for a in result.attributes):
        kind = str(others[0].missing).replace("_", "-")
        out.print(f"The {kind} analysis gives the same verdicts.", highlight=False)
    for a in result.attributes:
        out.print(f"- {a.sentence}", highlight=False, markup=False)
        if not a.analyses_agree and a.other_analysis is not None:
            o = a.other_analysis
            out.print(
                f"  The {str(o.missing).replace('_', '-')} analysis disagrees: "
                f"{o.verdict}" + (f" ({', '.join(o.deviating)})" if o.deviating else "") + ".",
                highlight=False,
                markup=False,
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
    scheduler: SchedulerOption = None,
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
    from ..heterogeneity._power import (
        PatientsForPowerResult,
        PowerResult,
        estimate_power,
        patients_for_power,
        power_config,
    )
    from ..io import write_json
    from ..io._write import check_writable

    check_target(target)
    if out_file is not None:
        check_writable(out_file)  # in a second, not after minutes of simulating
    cfg = read_config(config)
    chosen = None if treatments is None else [t.strip() for t in treatments.split(",") if t]
    cfg = power_config(cfg, treatments=chosen, sessions=sessions)
    options: dict[str, Any] = dict(
        config=cfg,
        target=target,
        attribute=attribute,
        treatment=treatment,
        deviation=deviation,
        reps=reps,
        seed=seed,
        n_jobs=jobs,
        scheduler=scheduler,
    )
    result: PowerResult | PatientsForPowerResult
    if patients is not None:
        result = with_progress(
            lambda progress: estimate_power(
                patients, progress=lambda d, t: progress(f"{patients:,} patients", d, t), **options
            )
        )
        from .._format import with_ci

        detected = result.power_differs
        shown = with_ci(
            detected.value, detected.ci_low, detected.ci_high, fmt=lambda v: percent(v, 0)
        )
        named = (
            ""
            if result.power_named.value is None
            else f"; the treatment named in {percent(result.power_named.value, 0)}"
        )
        out.print(
            f"{patients:,} patients, {result.succeeded} simulated studies "
            f"({result.failed} failed to fit): power to detect the deviation "
            f"{shown}{named}; another quality wrongly flagged in "
            f"{percent(result.false_flag_rate.value, 0)}; a treatment wrongly named in "
            f"{percent(result.wrong_name_rate.value, 0)}; qualities without a deviation shown "
            f"equivalent in {percent(result.power_equivalence.value, 0)}.",
            highlight=False,
        )
    else:
        result = with_progress(
            lambda progress: patients_for_power(
                goal, progress=lambda n, d, t: progress(f"{n:,} patients", d, t), **options
            )
        )
        out.print(result.sentence, highlight=False)
    if out_file is not None:
        write_json(result.to_dict(), out_file)
        out.print(f"Result written to {str(out_file)!r}.")
