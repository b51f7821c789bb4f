"""``train``, ``predict`` and ``evaluate``: engagement models."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..choices import FlagRuleKind, ModelChoice
from ._app import app, err, out
from ._common import (
    STREAM_CHUNK_ROWS,
    AllowUnfitOption,
    BootstrapOption,
    ConfigOption,
    EncodingOption,
    EscapeFormulasOption,
    ModelConfigOption,
    QueryOption,
    SchedulerOption,
    SepOption,
    Source,
    TableOption,
    TargetOption,
    bad_outcome,
    check_target,
    escape_markup,
    is_streamed,
    iso_day,
    metric_table,
    open_model,
    read_config,
    read_valid_table,
    refuse_unfit,
    require_column,
    streamed_valid_table,
    with_progress,
)


@app.command()
def train(
    data: Annotated[str, typer.Argument(help="Encounter table (CSV, Parquet or database URL).")],
    target: TargetOption,
    out_dir: Annotated[Path, typer.Option("--out", help="Model directory to write.")],
    model: Annotated[
        ModelChoice,
        typer.Option(
            help="auto (every kind; the one with the lower cross-validated log loss is "
            "kept) or one kind."
        ),
    ] = ModelChoice.AUTO,
    folds: Annotated[int, typer.Option(help="Patient-grouped CV folds.", min=2)] = 5,
    bootstrap: BootstrapOption = None,
    scheduler: SchedulerOption = None,
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
    # the defaults are engagekit.models' SAMPLE_ABOVE, SAMPLE_ROWS and VALIDATION_ROWS,
    # written out so that --help need not import pandas
    sample_above: Annotated[
        int,
        typer.Option(
            help="Above this many encounters, fit on a random sample of whole patients "
            "(about --sample-rows encounters) and validate the model also on patients "
            "outside the sample (about --validation-rows encounters): more rows add almost "
            "nothing to the model and cost hours and memory. 0: never sample.",
            min=0,
        ),
    ] = 2_000_000,
    sample_rows: Annotated[
        int,
        typer.Option(help="About how many encounters a sample holds.", min=1),
    ] = 1_000_000,
    validation_rows: Annotated[
        int,
        typer.Option(
            help="About how many encounters of patients outside a sample to validate on.",
            min=1,
        ),
    ] = 500_000,
    table: TableOption = None,
    query: QueryOption = None,
    encoding: EncodingOption = "utf-8",
    sep: SepOption = None,
    config: ConfigOption = None,
) -> None:
    """Train and validate a model of re-attendance or adherence.

    Validates the table first (refusing data that breaks the contract), leaves out rows
    whose outcome is empty (and says how many), cross-validates grouped by patient,
    calibrates inside the training data, and writes the model (secure skops format),
    manifest.json and metrics.json (with patient-bootstrap 95% CIs, per treatment and
    per subgroup), model_card.md and integrity.json (every file's hash; signed when
    ENGAGEKIT_MODEL_KEY is set) to --out, replacing a previous model there whole. A
    table of more than --sample-above encounters is trained on as a random sample of its
    patients, and the model validated on other patients too.
    """
    from ..io._model_store import check_replaceable, save_model
    from ..io._write import check_writable
    from ..models import build_manifest, sample_for_training, train_model
    from ..report import model_card, training_steps_sentences

    check_target(target)
    rule = _parse_flag_rule(flag_rule)
    temporal_split = iso_day(temporal_split, "--temporal-split")
    # in a second, not after the training
    check_writable(out_dir / "metrics.json", what=f"the model directory {str(out_dir)!r}")
    check_replaceable(out_dir)
    cfg = read_config(config)
    source = Source(data, table, query, encoding, sep)
    sizes = {"sample_above": sample_above, "sample_rows": sample_rows,
             "validation_rows": validation_rows, "seed": seed}  # fmt: skip
    if is_streamed(source):
        # a Parquet file: checked in buckets of whole patients, and only the sample kept
        from ..io._stream import sample_chunks

        with streamed_valid_table(source, cfg, STREAM_CHUNK_ROWS) as (chunks, cfg):
            encounters, held_out = with_progress(sample_chunks, chunks, **sizes)
    else:
        encounters, cfg = read_valid_table(source, cfg)
        encounters, held_out = sample_for_training(encounters, **sizes)
    if held_out is not None:
        validating = held_out.frame()  # read once (a streamed table's is kept on disk)
        err.print(
            f"[yellow]note:[/yellow] {held_out.n_encounters:,} encounters, more than "
            f"--sample-above {sample_above:,}: fitting on a random sample of "
            f"{encounters['patient_id'].nunique():,} patients ({len(encounters):,} "
            f"encounters), validating also on {len(validating):,} encounters of "
            f"{validating['patient_id'].nunique():,} other patients.",
            highlight=False,
        )
        del validating
    if temporal_split is not None:
        require_column(encounters, "encounter_date", "--temporal-split", "a temporal split")
    if rule[0] is FlagRuleKind.PER_PRACTITIONER:
        require_column(encounters, "practitioner_id", "--flag-rule", "per_practitioner flags")
    from ..cluster import replicate_backend

    with replicate_backend(scheduler):  # the bootstrap's replicates
        result = with_progress(
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
            held_out=held_out,
        )
    metrics = result.metrics
    manifest = build_manifest(result, cfg, encounters, source=_training_source(data, table, query))
    save_model(result.model, out_dir, manifest, metrics=metrics, model_card=model_card)
    out.print(
        f"[bold]{target}[/bold]: {result.model.kind} model chosen "
        f"(cross-validated log loss: "
        + ", ".join(f"{k} {v:.4f}" for k, v in metrics.selection.cv_log_loss.items())
        + ")"
    )
    out.print(
        f"{metrics.overall.n_encounters:,} encounters of {metrics.overall.n_patients:,} "
        f"patients; {metrics.n_excluded_missing_outcome:,} left out (no {target} recorded)."
    )
    bad = bad_outcome(cfg, target)
    out.print(metric_table(metrics, "patient-grouped cross-validation", bad_outcome=bad))
    temporal = metrics.temporal_validation
    if temporal is not None:
        out.print(
            metric_table(
                temporal,
                f"temporal validation: {temporal.overall.n_encounters:,} encounters from "
                f"{temporal.split_date} on",
                bad_outcome=bad,
            )
        )
    sample, outside = metrics.training_steps.sample, metrics.outside_sample_validation
    if sample is not None and outside is not None:
        out.print(
            f"Fitted on a random sample of {sample.sample_patients:,} of "
            f"{sample.table_patients:,} patients ({sample.sample_encounters:,} of "
            f"{sample.table_encounters:,} encounters; --sample-above {sample_above:,}); "
            f"validated on {outside.overall.n_encounters:,} encounters with {target} "
            f"recorded of {outside.overall.n_patients:,} patients outside the sample:",
            highlight=False,
        )
        out.print(metric_table(outside, "validation outside the sample", bad_outcome=bad))
    out.print(_flag_rule_line(flag_rule, result.flag_rule, bad), highlight=False)
    out.print("What training ran:", highlight=False)
    for sentence in training_steps_sentences(metrics.training_steps):
        out.print(f"  - {sentence}", highlight=False, markup=False)
    out.print(f"Model and metrics written to {str(out_dir)!r}.")
    fitness = metrics.training_steps.fitness
    if metrics.fit_for_use:
        out.print(f"[green]Fit for use:[/green] {escape_markup(fitness.reason)}.", highlight=False)
    else:
        # last, in red: the one line a user must not miss
        out.print(
            f"[bold red]NOT FIT FOR USE:[/bold red] {escape_markup(fitness.reason)}. The "
            "model was saved marked fit_for_use: false; score, forecast and predict refuse "
            "it unless given --allow-unfit-model.",
            highlight=False,
        )


#: The largest value each flag rule takes (the library says the same in words).
_FLAG_RULE_UPPER = {
    FlagRuleKind.SENSITIVITY: 1.0,
    FlagRuleKind.TOP_PERCENT: 100.0,
    FlagRuleKind.PER_PRACTITIONER: float("inf"),
}


def _parse_flag_rule(text: str) -> tuple[FlagRuleKind, float]:
    """``--flag-rule RULE:VALUE`` as the rule and its value, or a usage error."""
    name, _, value = text.partition(":")
    try:
        rule = FlagRuleKind(name)
    except ValueError:
        names = [kind.value for kind in FlagRuleKind]
        raise typer.BadParameter(
            f"{text!r}: the rule must be {', '.join(names[:-1])} or {names[-1]}",
            param_hint="--flag-rule",
        ) from None
    try:
        number = float(value)
    except ValueError:
        raise typer.BadParameter(
            f"{text!r}: write RULE:VALUE, e.g. top_percent:10 or sensitivity:0.8",
            param_hint="--flag-rule",
        ) from None
    upper = _FLAG_RULE_UPPER[rule]
    if not 0 < number <= upper:
        raise typer.BadParameter(
            f"{text!r}: the value must be above 0 and at most {upper:g}", param_hint="--flag-rule"
        )
    return rule, number


def _flag_rule_line(text: str, rule, bad_outcome: str) -> str:
    """What the flag rule will do when scoring, and how it did on the validation."""
    point = rule.operating_point
    validation = (
        f"sensitivity {point.sensitivity:.2f}, PPV {point.ppv:.2f}, "
        f"{point.flags_per_100_encounters:.1f} flags per 100 encounters"
    )
    if rule.rule is FlagRuleKind.SENSITIVITY:
        return (
            f"At-risk flags ({text}): risk that the patient {bad_outcome} at or above "
            f"{rule.threshold:.3f}; on the cross-validated predictions {validation}."
        )
    share = (
        f"the {rule.value:g}% of encounters"
        if rule.rule is FlagRuleKind.TOP_PERCENT
        else f"{rule.value:g} encounters per practitioner"
    )
    return (
        f"At-risk flags ({text}): each score run flags high {share} at highest risk that "
        f"the patient {bad_outcome} (a share of the encounters scored, whatever their "
        f"risks); on the cross-validated predictions that was a risk of "
        f"{rule.threshold:.3f} or more, with {validation}."
    )


def _training_source(data: str, table: str | None, query: str | None) -> str:
    """Where the training data came from, for the manifest and the model card."""
    from ..io import is_database_url

    if not is_database_url(data):
        return data
    from sqlalchemy.engine import make_url

    # never store a database password in a file that travels with the model
    source = make_url(data).render_as_string(hide_password=True)
    return source + (f" (table {table})" if table else " (a query)" if query else "")


@app.command()
def predict(
    model_dir: Annotated[Path, typer.Argument(help="A model directory written by train.")],
    data: Annotated[str, typer.Argument(help="Encounters to score (CSV, Parquet, database URL).")],
    out_file: Annotated[Path, typer.Option("--out", help="Predictions file (CSV or Parquet).")],
    escape_formulas: EscapeFormulasOption = True,
    table: TableOption = None,
    query: QueryOption = None,
    encoding: EncodingOption = "utf-8",
    sep: SepOption = None,
    config: ModelConfigOption = None,
    allow_unfit_model: AllowUnfitOption = False,
) -> None:
    """Score every encounter: encounter_id, patient_id and p_<target>.

    Every row gets a probability, including rows whose outcome is empty; each is
    computed from that session and the patient's earlier sessions in DATA only. The
    model is refused if its file was altered or holds anything engagekit did not write.
    """
    import pandas as pd

    from ..io import write_table
    from ..io._write import check_writable

    check_writable(out_file)
    model, manifest, cfg = open_model(model_dir, config)
    refuse_unfit(manifest, model_dir, allow_unfit_model)
    encounters, cfg = read_valid_table(
        Source(data, table, query, encoding, sep), cfg, model_features=model.feature_names
    )
    p = model.predict_proba(encounters)
    column = f"p_{model.target}"
    frame = pd.DataFrame(
        {
            "encounter_id": encounters["encounter_id"],
            "patient_id": encounters["patient_id"],
            column: p,
        }
    )
    write_table(frame, out_file, escape_formulas=escape_formulas)
    out.print(f"{len(frame):,} encounters scored → {str(out_file)!r} ({column}).")


@app.command()
def evaluate(
    model_dir: Annotated[Path, typer.Argument(help="A model directory written by train.")],
    data: Annotated[str, typer.Argument(help="New labelled encounters.")],
    out_file: Annotated[Path, typer.Option("--out", help="metrics JSON to write.")],
    bootstrap: BootstrapOption = None,
    scheduler: SchedulerOption = None,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    table: TableOption = None,
    query: QueryOption = None,
    encoding: EncodingOption = "utf-8",
    sep: SepOption = None,
    config: ModelConfigOption = None,
) -> None:
    """External validation: the trained model's metrics on new labelled data.

    Rows whose outcome is empty are scored for their history but left out of the metrics
    (and counted); the CIs resample patients.
    """
    from ..errors import ContractError
    from ..io import write_json
    from ..io._write import check_writable
    from ..models import ExternalValidation, evaluate_model_predictions, labelled_rows

    check_writable(out_file)
    model, _manifest, cfg = open_model(model_dir, config)
    encounters, cfg = read_valid_table(
        Source(data, table, query, encoding, sep), cfg, model_features=model.feature_names
    )
    labelled = labelled_rows(encounters, model.target)
    if not labelled.any():
        raise ContractError(f"no encounter in {data!r} has {model.target!r} recorded")
    p = model.predict_proba(encounters)[labelled]
    from ..cluster import replicate_backend

    with replicate_backend(scheduler):  # the bootstrap's replicates
        evaluated = evaluate_model_predictions(
            encounters[labelled], model.target, p, cfg, n_boot=bootstrap, seed=seed, n_jobs=-1
        )
    metrics = ExternalValidation(
        **dict(evaluated),
        n_excluded_missing_outcome=int((~labelled).sum()),
        target=model.target,
        model=model.kind,
    )
    write_json(metrics.to_dict(), out_file)
    out.print(
        metric_table(metrics, "external validation", bad_outcome=bad_outcome(cfg, model.target))
    )
    out.print(f"Metrics written to {str(out_file)!r}.")
