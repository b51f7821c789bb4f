"""The model card of a trained model, written from its manifest and metrics alone.

The headings follow TRIPOD+AI (Collins et al., BMJ 2024): intended use, data,
predictors, outcome, missing data, model and tuning, validation, performance by
subgroup, the at-risk flag rule, limitations and versions. Every statement and number
comes from the ``manifest.json`` and ``metrics.json`` that ``engagekit train`` writes,
and from facts of engagekit itself (how its features treat a missing rating); nothing
is written by hand about a particular model. What the record does not hold is said to
be not recorded, not guessed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .._format import DASH, count, estimate, interval, is_number, number, p_value, percent, plain
from ..config import Config, config_from_dict
from ..models.kinds import find_kind
from ._document import Bullets, Paragraph, Section, Table, to_markdown
from ._tables import (
    METRIC_LABELS,
    OPERATING_POINT_COLUMNS,
    OPERATING_POINT_DEFINITIONS,
    SUBGROUP_COLUMNS,
    cross_validation_steps_sentence,
    fair_calibration_sentences,
    fit_steps_sentences,
    flag_rule_sentence,
    metric_rows,
    miscalibration_sentences,
    operating_point_rows,
    subgroup_rows,
    training_sample_sentence,
)

if TYPE_CHECKING:
    from ..evaluation import Metrics
    from ..models import ModelManifest, ModelMetrics, TrainingSteps

__all__ = ["model_card", "model_card_sections", "model_card_title", "training_steps_sentences"]

# Dropout models trained on a few hundred patients overstate their performance; results
# settle from about 750-1,500 patients (see docs: product, "published figures").
_SETTLED_PATIENTS = 750

_HISTORY_FEATURES = (
    "`{a}`: this session's rating; `{a}__missing`: whether it is missing; "
    "`{a}__prev` and `{a}__prev_missing`: the previous session's rating and whether it is "
    "missing; `{a}__mean` and `{a}__min`: the running mean and minimum of the patient's "
    "recorded ratings so far; `{a}__change`: the change since the previous session"
)


def model_card(manifest: ModelManifest, metrics: ModelMetrics) -> str:
    """The Markdown model card of a trained model.

    Parameters
    ----------
    manifest : ModelManifest
        The model's ``manifest.json`` (target, kind, features, config, tuning,
        recalibration, flag rule, counts, versions, and ``training_data``). Its
        ``training_steps`` say which fitting steps ran, and only those are described; a
        manifest with ``fit_for_use: false`` gets a card that leads with it.
    metrics : ModelMetrics
        Its ``metrics.json``: the cross-validated metrics with CIs, per subgroup, the
        selection of the kind and, when trained with a temporal split, the temporal
        validation; when fitted on a sample of a large table, the validation on patients
        outside the sample.

    Returns
    -------
    str
        Markdown, with TRIPOD+AI headings.

    Raises
    ------
    ValueError
        The metrics are for another target than the manifest.
    ConfigError
        The manifest's config is not a valid engagekit config.

    Examples
    --------
    >>> from engagekit import simulate_encounters
    >>> from engagekit.config import load_config
    >>> from engagekit.models import build_manifest, train_model
    >>> encounters = simulate_encounters(200, seed=1).encounters
    >>> trained = train_model(encounters, "adherent", "logistic", n_splits=2, n_boot=20)
    >>> manifest = build_manifest(trained, load_config(), encounters)
    >>> card = model_card(manifest, trained.metrics)
    >>> card.splitlines()[0]
    '# Model card: Adherence (`adherent`), penalised logistic regression'
    >>> f"| AUROC | {trained.metrics.overall.auroc.value:.3f} |" in card
    True
    >>> model_card(manifest, trained.metrics.model_copy(update={"target": "attended_next"}))
    Traceback (most recent call last):
    ...
    ValueError: the metrics are for 'attended_next' but the manifest's model predicts 'adherent'
    """
    return to_markdown(model_card_title(manifest), model_card_sections(manifest, metrics))


def model_card_title(manifest: ModelManifest) -> str:
    """The card's title: the outcome and the kind of model."""
    target = manifest.target
    label = _outcome(_config(manifest), target)
    spec = find_kind(manifest.kind)
    kind = spec.card_name if spec else manifest.kind
    return f"Model card: {label.label if label else target} (`{target}`), {kind}"


def model_card_sections(manifest: ModelManifest, metrics: ModelMetrics) -> list[Section]:
    """The card's sections, for rendering as Markdown or HTML (see :func:`model_card`)."""
    target = manifest.target
    if metrics.target != target:
        raise ValueError(
            f"the metrics are for {metrics.target!r} but the manifest's model predicts {target!r}"
        )
    config = _config(manifest)
    outcome = _outcome(config, target)
    bad = outcome.bad_outcome if outcome else None
    # an unfit model's card leads with it: nothing below should be read as usable
    lead = [] if manifest.fit_for_use else [_unfit(manifest)]
    return [
        *lead,
        _intended_use(manifest, config),
        _data(manifest, metrics, config),
        _predictors(manifest, config),
        _outcome_section(target, config),
        _missing_data(metrics, config),
        _model_and_tuning(manifest, metrics),
        _validation(manifest, metrics, bad),
        *_update(manifest),
        _subgroups(metrics, config),
        _flag_rule(manifest, config),
        _limitations(manifest, metrics, config),
        _versions(manifest),
    ]


def training_steps_sentences(training_steps: TrainingSteps) -> tuple[str, ...]:
    """What training ran, in the card's words: the sample of a large table it ran on (if
    one was drawn), the final model's fitting steps, then those of the cross-validation
    folds.

    The ``engagekit train`` summary prints these, so that the screen, the card and
    ``metrics.json`` (which holds ``training_steps``) say the same.

    Parameters
    ----------
    training_steps : TrainingSteps
        ``training_steps`` of the manifest or of ``metrics.json``.

    Returns
    -------
    tuple of str
    """
    sample = training_steps.sample
    sentences = [] if sample is None else [training_sample_sentence(sample)]
    sentences += fit_steps_sentences(training_steps.final_model)
    sentences.append(cross_validation_steps_sentence(training_steps.cross_validation_folds))
    return tuple(sentences)


# --------------------------------------------------------------------------- pieces
def _config(manifest: ModelManifest) -> Config:
    return config_from_dict(manifest.config, source="of the model's manifest")


def _outcome(config: Config, target: str):
    return next((o for o in config.outcomes if o.name == target), None)


def _intended_use(manifest: ModelManifest, config: Config) -> Section:
    outcome = _outcome(config, manifest.target)
    what = outcome.description if outcome else manifest.target
    treatments = ", ".join(t.label for t in config.treatments)
    return Section(
        "Intended use",
        (
            Paragraph(
                f"At each encounter of a patient treated for depression, the model estimates "
                f"the probability that {what}, from the patient's ratings of the "
                "practitioner's qualities at this and earlier sessions, the treatment and "
                "the session number."
            ),
            Bullets(
                (
                    "Users: service analysts (planning, forecasting) and clinicians (at-risk "
                    "flags on their own caseload).",
                    "A prediction or a flag supports a clinical conversation with the "
                    "patient; it never decides care. No treatment, discharge or referral "
                    "decision should rest on it.",
                    f"Setting: the treatments it was trained on ({treatments}), rated with "
                    "the instrument described under Predictors. Other treatments, "
                    "instruments or rating scales are outside its intended use.",
                )
            ),
        ),
    )


def _data(manifest: ModelManifest, metrics: ModelMetrics, config: Config) -> Section:
    record = manifest.training_data
    source = record.source
    first, last = record.first_encounter_date, record.last_encounter_date
    items = [
        f"Source: `{source}`." if source else "Source: not recorded in the manifest.",
        (
            f"Period: encounters dated {first} to {last}."
            if first and last
            else "Period: not recorded in the manifest."
        ),
    ]
    if record.simulated is True:
        items.append(
            "The data were simulated by engagekit's simulator, not collected from a service."
        )
    overall = metrics.overall
    sample = manifest.training_steps.sample
    if sample is not None:
        items.append(training_sample_sentence(sample))
    items.append(
        f"{count(overall.n_patients)} patients and {count(overall.n_encounters)} encounters "
        "with the outcome recorded"
        + (
            " in the sample were used to fit and cross-validate the model."
            if sample is not None
            else " were used to fit and validate the model."
        )
    )
    items.append(
        f"{count(metrics.n_excluded_missing_outcome)} further encounters had no outcome "
        "recorded: they were not fitted or scored against, but their ratings enter later "
        "sessions' history."
    )
    prevalence = overall.prevalence
    if is_number(prevalence.value):
        ci = interval(prevalence.ci_low, prevalence.ci_high, fmt=percent)
        items.append(
            f"Outcome rate (outcome = 1): {percent(prevalence.value)} of encounters (95% CI {ci})."
        )
    temporal = metrics.temporal_validation
    if temporal is not None:
        items.append(
            f"Temporal split: the model was trained and cross-validated on encounters "
            f"before {temporal.split_date}, and validated on the "
            f"{count(temporal.overall.n_encounters)} from that day on."
        )
    trained_on = "training sample" if sample is not None else "training table"
    items.append(f"SHA-256 of the {trained_on}: `{manifest.training_data_sha256}`.")
    blocks: list = [Bullets(tuple(items))]
    by_treatment = metrics.by_group.get("treatment", {})
    if by_treatment:
        labels = {t.name: t.label for t in config.treatments}
        rows = tuple(
            (labels.get(t, t), count(b.n_patients), count(b.n_encounters))
            for t, b in by_treatment.items()
        )
        blocks.append(Table(("treatment", "patients", "encounters"), rows))
    return Section("Data", tuple(blocks))


def _predictors(manifest: ModelManifest, config: Config) -> Section:
    features = manifest.features
    scale = config.attributes.scale
    attributes = tuple(
        f"{a.label} (`{a.name}`): {a.description}"
        + ("." if a.higher_is_better else "; a higher score is worse.")
        for a in config.attributes.items
    )
    interactions = [f for f in features if ":treatment=" in f]
    covariate_levels = {
        c: [f.split("=", 1)[1] for f in features if f.startswith(f"{c}=")]
        for c in config.covariates
    }
    items = [
        _HISTORY_FEATURES.format(a="<attribute>") + ".",
        "`n_missing_ratings`: how many ratings are missing at this session; "
        "`session_number` and `log_session`: the session number and its logarithm.",
        "Treatment: one indicator per treatment ("
        + ", ".join(f"{t.label} `treatment={t.name}`" for t in config.treatments)
        + ").",
    ]
    for covariate, levels in covariate_levels.items():
        shown = ", ".join(f"`{level}`" for level in levels) if levels else "none seen"
        items.append(f"Covariate `{covariate}`: one indicator per level ({shown}).")
    if interactions:
        items.append(
            f"{len(interactions)} attribute × treatment terms: this session's rating, "
            "centred, times each treatment but the first."
        )
    return Section(
        "Predictors",
        (
            Paragraph(
                f"{len(config.attribute_names)} practitioner qualities rated by the patient "
                f"at each session, on a scale from {scale.min:g} to {scale.max:g}:"
            ),
            Bullets(attributes),
            Paragraph(
                f"The model sees {len(features) if features else DASH} features per "
                "encounter, built only from that session and the patient's earlier "
                "sessions (never later ones, never an outcome). For each quality:"
            ),
            Bullets(tuple(items)),
        ),
    )


def _outcome_section(target: str, config: Config) -> Section:
    outcome = _outcome(config, target)
    if outcome is None:
        return Section("Outcome", (Paragraph(f"`{target}`: not described in the config."),))
    return Section(
        "Outcome",
        (
            Bullets(
                (
                    f"`{target}` ({outcome.label}) is 1 when {outcome.description}, and 0 "
                    f"when the patient {outcome.bad_outcome}.",
                    "The model predicts the probability of 1, the good outcome; risk is one "
                    f"minus it, the probability that the patient {outcome.bad_outcome}. "
                    "At-risk flags are about that risk.",
                    "An encounter whose outcome is empty (not yet known, or not recorded) has "
                    "no outcome to learn from.",
                )
            ),
        ),
    )


def _missing_data(metrics: ModelMetrics, config: Config) -> Section:
    scale = config.attributes.scale
    items = [
        "A missing rating is replaced by the mean of that quality's recorded ratings in "
        "the training data (the middle of the scale, "
        f"{(scale.min + scale.max) / 2:g}, if none was recorded), and marked by its "
        "`__missing` indicator; `n_missing_ratings` counts the missing ratings of the "
        "session.",
        "The previous session's rating takes the same replacement at a first session or "
        "when it was missing, marked by `__prev_missing`.",
        "Running means and minima use the recorded ratings only; the change since the "
        "previous session is 0 unless both ratings are recorded.",
        "A missing or unknown treatment or covariate level gives zeros in all of that "
        "variable's indicators.",
    ]
    items.append(
        f"Encounters with no outcome recorded ({count(metrics.n_excluded_missing_outcome)}) "
        "are left out of fitting and validation; no outcome is imputed."
    )
    return Section("Missing data", (Bullets(tuple(items)),))


def _model_and_tuning(manifest: ModelManifest, metrics: ModelMetrics) -> Section:
    kind = manifest.kind
    spec = find_kind(kind)
    items = [spec.card_description if spec else f"Model kind: `{kind}`."]
    named = spec.card_hyperparameters if spec else {}
    items.append(_tuning_sentence(manifest.tuning, named))
    estimator = manifest.estimator
    if estimator.params:
        params = ", ".join(f"`{k}` = {plain(v)}" for k, v in estimator.params.items())
        items.append(f"Estimator `{estimator.estimator_class}`: {params}.")
    selection = metrics.selection
    if selection.cv_log_loss:
        compared = ", ".join(f"{k} {number(v, 4)}" for k, v in selection.cv_log_loss.items())
        items.append(
            f"Kind requested: `{selection.requested}`; cross-validated log loss: "
            f"{compared}; chosen: `{selection.chosen}`."
        )
    items += fit_steps_sentences(manifest.training_steps.final_model)
    return Section("Model and tuning", (Bullets(tuple(items)),))


def _tuning_sentence(tuning: Mapping[str, Any], named: Mapping[str, str]) -> str:
    """The tuned hyperparameters (those of the kind's ``named`` in words) and how."""
    if not tuning:
        return "Tuning: no hyperparameter was tuned; the kind's fixed settings were used."
    described = ("chosen_by", "tuning_rows", "held_out_rows", "grid_log_loss")
    parts = [f"{named[k]} = {plain(tuning[k])}" for k in named if k in tuning]
    parts += [f"`{k}` = {plain(v)}" for k, v in tuning.items() if k not in (*named, *described)]
    text = "Tuning: " + ", ".join(parts)
    if tuning.get("chosen_by"):
        text += f", chosen by {tuning['chosen_by']}"
    if is_number(tuning.get("tuning_rows")) and is_number(tuning.get("held_out_rows")):
        text += (
            f" (candidates fitted on {count(tuning['tuning_rows'])} encounters, compared on "
            f"{count(tuning['held_out_rows'])} held out)"
        )
    return text + "."


def _metric_table(metrics: Metrics, bad_outcome: str | None = None) -> Table:
    heading = f"{percent(metrics.ci_level, 0)} CI"
    return Table(("metric", "estimate", heading), metric_rows(metrics, bad_outcome))


def _unfit(manifest: ModelManifest) -> Section:
    why = manifest.unfit_reason or "not recorded"
    rule = manifest.training_steps.fitness.rule
    return Section(
        "Not fit for use",
        (
            Paragraph(
                f"This model is not fit for use: {why}. Its risks and at-risk flags would "
                "mislead. It was saved marked `fit_for_use: false`, and `engagekit score`, "
                "`forecast` and `predict` refuse it unless given `--allow-unfit-model`. "
                "Retrain it on more patients or better data."
            ),
            *((Paragraph(f"The rule: {rule}."),) if rule else ()),
        ),
    )


def _fitness_paragraph(manifest: ModelManifest) -> Paragraph:
    if not manifest.fit_for_use:
        return Paragraph(
            "Fitness for use: not fit for use (see the first section): "
            f"{manifest.unfit_reason or 'not recorded'}."
        )
    fitness = manifest.training_steps.fitness
    reason, rule = fitness.reason, fitness.rule
    return Paragraph(
        "Fitness for use: fit for use"
        + (f": {reason}" if reason else "")
        + "."
        + (f" The rule: {rule}." if rule else "")
    )


def _validation(
    manifest: ModelManifest, metrics: ModelMetrics, bad_outcome: str | None = None
) -> Section:
    n_boot = metrics.n_boot
    folds = manifest.training_steps.cross_validation_folds
    fold_steps = " " + cross_validation_steps_sentence(folds)
    update = manifest.update
    how = (
        f"Patient-grouped {metrics.cv_folds}-fold"
        + " cross-validation: each encounter was scored by a model fitted without any "
        "of its patient's encounters." + fold_steps
        if update is None
        else f"On the new service's {count(update.validation_patients)} validation patients "
        f"({count(update.validation_encounters)} encounters), kept out of the update "
        "(see Update for a new service): the parent was cross-validated on its own "
        "service, and its card holds those figures."
    )
    blocks: list = [
        Paragraph(
            how
            + " Confidence intervals "
            + (
                f"come from {count(n_boot)} patient-bootstrap replicates (patients "
                "resampled with all their encounters)."
                if n_boot > 0
                else "were not computed (no bootstrap replicates)."
            )
        ),
        _metric_table(metrics, bad_outcome),
        _fitness_paragraph(manifest),
        Paragraph(
            "Calibration: an intercept of 0 and a slope of 1 are ideal; a slope below 1 "
            "means predictions more extreme than the outcomes bear out, above 1 more "
            "timid; a negative intercept means predictions too high on average."
        ),
    ]
    if metrics.overall.note:
        blocks.append(Paragraph(f"Note: {metrics.overall.note}."))
    temporal = metrics.temporal_validation
    if temporal is not None:
        blocks.append(
            Paragraph(
                f"Temporal validation: the model fitted on encounters before "
                f"{temporal.split_date} scored the {count(temporal.overall.n_encounters)} "
                f"encounters from that day on ({count(temporal.overall.n_patients)} patients, "
                f"{count(temporal.patients_also_in_training)} of them also seen in "
                "training)."
            )
        )
        blocks.append(_metric_table(temporal, bad_outcome))
    outside = metrics.outside_sample_validation
    if outside is not None:
        blocks.append(Paragraph(_outside_sample_sentence(manifest, outside)))
        blocks.append(_metric_table(outside, bad_outcome))
    return Section("Validation", tuple(blocks))


_UPDATE_METHODS = {
    "none": "no update: no step of the ladder was supported by the new service's data, "
    "so the parent model is kept unchanged",
    "intercept": "recalibration in the large (logit p = a + the parent's log-odds)",
    "logistic": "logistic recalibration (logit p = a + b × the parent's log-odds)",
    "refit": "a refit: the same kind of model fitted afresh on the new service",
    "subgroup-intercept": "an intercept per subgroup level (logit p = a_level + the "
    "parent's log-odds)",
}


def _update(manifest: ModelManifest) -> list[Section]:
    """How the model was updated for a new service, when it was."""
    update = manifest.update
    if update is None:
        return []
    parent = f"`{update.parent_model}`" if update.parent_model else "a model"
    sha = update.parent_model_sha256 or "not recorded"
    fitted = (
        f" The map fitted: logit p = {number(update.intercept)} + {number(update.slope)} × "
        "the parent's log-odds."
        if update.intercept is not None
        and update.slope is not None
        and update.method in ("intercept", "logistic")
        else ""
    )
    blocks: list = [
        Paragraph(
            f"This model is {parent} (model file SHA-256 `{sha}`) updated for a new service "
            f"by `engagekit update` (method asked: `{update.requested}`; applied: "
            f"{_UPDATE_METHODS.get(update.method, update.method)}).{fitted} The new "
            f"service's labelled patients were split at random (seed {update.seed}): "
            f"{count(update.updating_patients)} updating patients "
            f"({count(update.updating_encounters)} encounters) chose and fitted the update; "
            f"{count(update.validation_patients)} validation patients "
            f"({count(update.validation_encounters)} encounters) were kept out to judge it."
        ),
    ]
    if update.tests:
        blocks.append(
            Paragraph(
                f"The model-updating ladder (Steyerberg), tested on the updating patients at "
                f"α = {number(update.alpha)}:"
            )
        )
        blocks.append(
            Table(
                ("step", "against", "test", "statistic", "p", "rejected"),
                tuple(
                    (
                        t.step,
                        t.against,
                        t.test,
                        number(t.statistic),
                        p_value(t.p_value),
                        "yes" if t.rejected else "no",
                    )
                    for t in update.tests
                ),
            )
        )
    rows = []
    for name, perf in (("parent, before", update.before), ("updated, after", update.after)):
        rows.append(
            (
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
        )
    blocks.append(
        Paragraph(
            "On the validation patients, before and after (95% patient-bootstrap CIs; net "
            f"benefit of flagging at a risk of {number(update.after.net_benefit_threshold)} "
            "or more):"
        )
    )
    blocks.append(
        Table(
            ("model", "calibration intercept", "calibration slope", "AUROC", "net benefit"),
            tuple(rows),
        )
    )
    curve = [point for point in update.decision_curve if round(100 * point.threshold) % 5 == 0]
    if curve:
        blocks.append(
            Paragraph(
                "Decision curves on the validation patients: the net benefit of flagging "
                "encounters at or above each risk, parent and updated model, beside "
                "flagging every encounter (Vickers & Elkin)."
            )
        )
        blocks.append(
            Table(
                ("risk threshold", "parent", "updated", "flag everyone"),
                tuple(
                    (
                        percent(point.threshold, 0),
                        number(point.before, 4),
                        number(point.after, 4),
                        number(point.flag_all, 4),
                    )
                    for point in curve
                ),
            )
        )
    subgroup = update.subgroup
    if subgroup is not None:
        differ = (
            ""
            if subgroup.heterogeneity_p is None
            else f"; Cochran's Q that the levels' intercepts are equal: "
            f"{number(subgroup.heterogeneity_q)} on {subgroup.heterogeneity_df} df, "
            f"p = {p_value(subgroup.heterogeneity_p)}"
        )
        blocks.append(
            Paragraph(
                f"Per-`{subgroup.column}` intercepts: each level's own intercept on the "
                "parent's log-odds (cluster-robust SE), shrunk toward their pooled value "
                f"{number(subgroup.pooled)} by empirical Bayes (between-level variance "
                f"{number(subgroup.tau2)}{differ}). A level with fewer than "
                f"{count(subgroup.min_events)} encounters of an outcome gets the pooled "
                "value. What the offsets change, on the validation patients: each level's "
                "calibration in the large (0 is perfect) and the share of its encounters "
                "flagged. The model needs the column to score."
            )
        )
        blocks.append(
            Table(
                (
                    "level",
                    "updating encounters",
                    "own intercept (SE)",
                    "offset applied",
                    "calibration before",
                    "calibration after",
                    "flagged before",
                    "flagged after",
                ),
                tuple(
                    (
                        level.level,
                        count(level.updating_encounters),
                        DASH
                        if level.raw_offset is None
                        else f"{number(level.raw_offset)} ({number(level.standard_error)})",
                        number(level.offset),
                        estimate(level.calibration_before),
                        estimate(level.calibration_after),
                        DASH if level.flagged_before is None else percent(level.flagged_before),
                        DASH if level.flagged_after is None else percent(level.flagged_after),
                    )
                    for level in subgroup.levels
                ),
            )
        )
    return [Section("Update for a new service", tuple(blocks))]


def _outside_sample_sentence(manifest: ModelManifest, outside: Metrics) -> str:
    sample = manifest.training_steps.sample
    drawn = (
        f"{count(sample.sample_patients)} of the table's {count(sample.table_patients)} patients"
        if sample is not None
        else "the table's patients"
    )
    return (
        f"Validation outside the sample: the model, fitted on a random sample of {drawn}, "
        f"scored the {count(outside.overall.n_encounters)} encounters with the outcome "
        f"recorded of {count(outside.overall.n_patients)} other patients of the table, "
        "none of whom was in the sample."
    )


def _subgroups(metrics: ModelMetrics, config: Config) -> Section:
    blocks: list = [
        Paragraph(
            "The same cross-validated predictions, evaluated within each group; a group too "
            "small or with one outcome only gets no metrics, and the note says why."
        )
    ]
    for column, levels in metrics.by_group.items():
        labels = {t.name: t.label for t in config.treatments} if column == "treatment" else {}
        caption = f"By {column.replace('_', ' ')}"
        blocks.append(Table(SUBGROUP_COLUMNS, subgroup_rows(levels, labels), caption=caption))
    if not metrics.by_group:
        blocks.append(Paragraph("No subgroup metrics are recorded."))
    fair = fair_calibration_sentences(metrics, {t.name: t.label for t in config.treatments})
    if fair:
        blocks.append(
            Paragraph(
                "Fair calibration: subgroups whose 95% interval of calibration in the large "
                "excludes 0, or of the calibration slope excludes 1:"
            )
        )
        blocks.append(Bullets(tuple(f"{line}." for line in fair)))
    return Section("Performance by subgroup", tuple(blocks))


def _flag_rule(manifest: ModelManifest, config: Config) -> Section:
    rule = manifest.flag_rule
    outcome = _outcome(config, manifest.target)
    bad = outcome.bad_outcome if outcome else f"does not have {manifest.target}"
    point = rule.operating_point
    return Section(
        "At-risk flags",
        (
            Paragraph(flag_rule_sentence(rule, bad)),
            Table(OPERATING_POINT_COLUMNS, operating_point_rows(rule)),
            Paragraph(
                f"On {count(point.n_encounters)} cross-validated encounters of "
                f"{count(point.n_patients)} patients, {count(point.n_bad_outcomes)} "
                f"followed by the bad outcome; {count(point.n_flagged)} flagged high. "
                + OPERATING_POINT_DEFINITIONS
            ),
        ),
    )


def _limitations(manifest: ModelManifest, metrics: ModelMetrics, config: Config) -> Section:
    items = []
    if manifest.training_data.simulated is True:
        items.append(
            "It was trained on simulated data: its performance shows what the method can "
            "do on the simulator's world, not how it performs in a real service."
        )
    if metrics.outside_sample_validation is not None:
        items.append(
            "Validation is internal: cross-validation within a sample of one data set"
            + (", a temporal split" if metrics.temporal_validation is not None else "")
            + " and patients of the same data set outside the sample. No external "
            "validation in another service is recorded."
        )
    elif metrics.temporal_validation is not None:
        items.append(
            "Validation is internal: cross-validation and a temporal split within one data "
            "set. No external validation in another service is recorded."
        )
    else:
        items.append(
            "Validation is internal (cross-validation within the training data); no "
            "temporal or external validation is recorded."
        )
    n_patients = metrics.overall.n_patients
    if n_patients < _SETTLED_PATIENTS:
        items.append(
            f"Only {count(n_patients)} patients: dropout models trained on fewer than about "
            f"{_SETTLED_PATIENTS:,} patients tend to overstate their performance."
        )
    for name, ideal in (("calibration_slope", 1.0), ("calibration_intercept", 0.0)):
        calibration = metrics.overall.estimate(name)
        low, high = calibration.ci_low, calibration.ci_high
        if is_number(low) and is_number(high) and not low <= ideal <= high:
            items.append(
                f"The {METRIC_LABELS[name].lower()}'s 95% CI ({interval(low, high)}) excludes "
                f"its ideal value {ideal:g}: the probabilities are miscalibrated."
            )
    off = miscalibration_sentences(metrics, {t.name: t.label for t in config.treatments})
    if off:
        items.append(
            "Calibration is off in some subgroups (see Performance by subgroup): "
            + "; ".join(off)
            + ". Their risks, and so their flags, are biased."
        )
    skipped = [
        f"{column} {level}"
        for column, levels in metrics.by_group.items()
        for level, block in levels.items()
        if block.auroc.value is None
    ]
    if skipped:
        items.append(
            "No performance could be measured in: " + ", ".join(skipped) + " (see the notes "
            "under Performance by subgroup)."
        )
    excluded = metrics.n_excluded_missing_outcome
    if excluded > 0:
        items.append(
            f"{count(excluded)} encounters without a recorded outcome were left out; if "
            "outcomes go unrecorded for reasons tied to engagement, the metrics may be biased."
        )
    items += [
        "The model and its explanations describe associations in the training data, not "
        "the effect of changing how a practitioner works.",
        "Predictions assume the rating instrument and treatments described above.",
    ]
    return Section("Limitations", (Bullets(tuple(items)),))


def _versions(manifest: ModelManifest) -> Section:
    # a manifest not yet saved has no versions, time or model file (saving stamps them)
    versions = manifest.versions or {}
    blocks: list = []
    if versions:
        blocks.append(
            Table(("library", "version"), tuple((k, str(v)) for k, v in versions.items()))
        )
    items = [
        f"Model format version: {manifest.format_version}.",
        f"Created: {manifest.created or DASH}.",
    ]
    if manifest.model_sha256:
        items.append(f"SHA-256 of `{manifest.model_file}`: `{manifest.model_sha256}`.")
    blocks.append(Bullets(tuple(items)))
    return Section("Versions", tuple(blocks))
