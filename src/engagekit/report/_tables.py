"""Tables and sentences that the model card and the HTML report both show."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from .._format import count, estimate, interval, is_number, number, p_value, percent, plain
from ..choices import FlagRuleKind
from ..models.kinds import find_kind

if TYPE_CHECKING:
    from ..evaluation import GroupMetrics, Metrics
    from ..flags import AppliedFlagRule, FlagRule
    from ..models import FitRecord, LogitRecalibration, TrainingSample

__all__ = [
    "FLAG_SHARE_COLUMNS",
    "METRIC_LABELS",
    "OPERATING_POINT_COLUMNS",
    "OPERATING_POINT_DEFINITIONS",
    "SUBGROUP_COLUMNS",
    "cross_validation_steps_sentence",
    "fair_calibration_sentences",
    "fit_steps_sentences",
    "flag_rule_sentence",
    "flag_share_rows",
    "flagged_auprc_label",
    "metric_rows",
    "miscalibration_sentences",
    "operating_point_rows",
    "subgroup_rows",
    "training_sample_sentence",
]

#: Reader-facing names of the metrics in ``metrics.json``, in the order they are shown.
#: The AUPRC shown is that of the flagged (bad) outcome, ``auprc_flagged``: the
#: ``auprc`` of the good outcome, common in most services, sits near its base rate
#: whatever the model, and says little.
METRIC_LABELS = {
    "auroc": "AUROC",
    "auprc_flagged": "AUPRC of the flagged outcome",
    "brier": "Brier score",
    "log_loss": "Log loss",
    "calibration_intercept": "Calibration intercept",
    "calibration_slope": "Calibration slope",
    "prevalence": "Outcome rate (share with the outcome = 1)",
}


def flagged_auprc_label(
    prevalence: float | None, bad_outcome: str | None = None, flagged_outcome: int = 0
) -> str:
    """The label of ``auprc_flagged``: the flagged outcome in words, and its chance level.

    The AUPRC of a model that ranks at random is the flagged outcome's rate, so it is
    shown beside it. ``prevalence`` is the share with the outcome coded 1, and
    ``flagged_outcome`` the outcome a flag catches (0, the bad one, by default).

    >>> flagged_auprc_label(0.956, "did not attend the next session")
    'AUPRC (did not attend the next session; chance level 4.4%)'
    """
    what = bad_outcome or "the flagged outcome"
    if not is_number(prevalence):
        return f"AUPRC ({what})"
    rate = prevalence if flagged_outcome == 1 else 1 - prevalence
    return f"AUPRC ({what}; chance level {percent(rate)})"


def metric_rows(metrics: Metrics, bad_outcome: str | None = None) -> tuple[tuple[str, ...], ...]:
    """``(label, estimate, CI)`` of each metric of ``metrics`` (on all its encounters).

    ``bad_outcome`` (the config's words, e.g. "did not attend the next session") names
    the outcome of the AUPRC row.
    """
    overall = metrics.overall
    auprc_label = flagged_auprc_label(
        overall.prevalence.value, bad_outcome, metrics.decision_curve_flagged_outcome
    )
    return tuple(
        (
            auprc_label if name == "auprc_flagged" else label,
            number(overall.estimate(name).value),
            interval(overall.estimate(name).ci_low, overall.estimate(name).ci_high),
        )
        for name, label in METRIC_LABELS.items()
    )


def subgroup_rows(
    blocks: Mapping[str, GroupMetrics], labels: Mapping[str, str] | None = None
) -> tuple[tuple[str, ...], ...]:
    """Rows of a subgroup table: level (its label if given), counts, AUROC, calibration
    slope, Brier score, note."""
    labels = labels or {}
    return tuple(
        (
            labels.get(level, level),
            count(block.n_patients),
            count(block.n_encounters),
            percent(block.prevalence.value),
            estimate(block.auroc),
            estimate(block.calibration_slope),
            estimate(block.brier),
            block.note or "",
        )
        for level, block in blocks.items()
    )


SUBGROUP_COLUMNS = (
    "group",
    "patients",
    "encounters",
    "outcome rate",
    "AUROC (95% CI)",
    "calibration slope (95% CI)",
    "Brier score (95% CI)",
    "note",
)


def flag_rule_sentence(rule: FlagRule, bad_outcome: str) -> str:
    """The flag rule in words, e.g. "flag the 10% of encounters at highest risk"."""
    value = rule.value
    name = rule.rule
    if name == FlagRuleKind.TOP_PERCENT:
        what = f"flag the {value:g}% of encounters at highest risk"
    elif name == FlagRuleKind.SENSITIVITY:
        what = (
            f"flag enough encounters to catch at least {percent(value, 0)} of those "
            "followed by the bad outcome"
        )
    elif name == FlagRuleKind.PER_PRACTITIONER:
        what = f"flag on average {value:g} encounters per practitioner"
    else:
        what = f"rule `{name}` with value {plain(value)}"
    thresholds = (
        f"flagged high at a risk of {number(rule.threshold)} or more, medium at "
        f"{number(rule.medium_threshold)} or more"
    )
    chosen = (
        f"{what[0].upper()}{what[1:]} (risk: the probability that the patient "
        f"{bad_outcome}), chosen on the cross-validated predictions"
    )
    if name in (FlagRuleKind.TOP_PERCENT, FlagRuleKind.PER_PRACTITIONER):
        return (
            f"{chosen}, where an encounter was {thresholds}. The rule is a share of the "
            "encounters being scored (every encounter scored, not each patient's latest), "
            "with the medium flag for twice as many: scoring sets the risk thresholds "
            "again on their risks, so that it flags its share at any service size."
        )
    return (
        f"{chosen}. An encounter is {thresholds}; scoring keeps these thresholds (the "
        "rule needs outcomes, which new encounters do not have)."
    )


#: The columns of :func:`flag_share_rows`.
FLAG_SHARE_COLUMNS = (
    "level",
    "promised by the rule",
    "measured",
    "encounters flagged",
    "risk threshold applied",
)


def flag_share_rows(
    applied: AppliedFlagRule, n_high: int, n_high_or_medium: int
) -> tuple[tuple[str, ...], ...]:
    """The share of encounters a rule promises to flag and the share it flagged, per level.

    ``applied`` is the rule applied to the encounters
    (:func:`engagekit.flags.flag_thresholds`), and the counts those it flagged ``high``
    (``high`` or ``medium``).

    >>> from engagekit.flags import AppliedFlagRule
    >>> applied = AppliedFlagRule(rule="top_percent", value=10, threshold=0.31,
    ...     medium_threshold=0.22, set_on="scored", n_encounters=200,
    ...     promised_high_share=0.1, promised_high_or_medium_share=0.2)
    >>> flag_share_rows(applied, 20, 41)[1]
    ('high or medium', '20.0%', '20.5%', '41', '0.220')
    """
    n = applied.n_encounters
    return tuple(
        (
            level,
            percent(promised),
            percent(flagged / n if n else None),
            count(flagged),
            number(threshold),
        )
        for level, promised, flagged, threshold in (
            ("high", applied.promised_high_share, n_high, applied.threshold),
            (
                "high or medium",
                applied.promised_high_or_medium_share,
                n_high_or_medium,
                applied.medium_threshold,
            ),
        )
    )


OPERATING_POINT_COLUMNS = (
    "level",
    "sensitivity",
    "specificity",
    "PPV",
    "flags per 100 encounters",
    "flags per 100 patients",
    "flags per practitioner",
)


def operating_point_rows(rule: FlagRule) -> tuple[tuple[str, ...], ...]:
    """How the rule's two thresholds did on the validation encounters, one row each."""
    rows = []
    for label, point in (
        ("high", rule.operating_point),
        ("high or medium", rule.medium_operating_point),
    ):
        rows.append(
            (
                label,
                number(point.sensitivity, 2),
                number(point.specificity, 2),
                number(point.ppv, 2),
                number(point.flags_per_100_encounters, 1),
                number(point.flags_per_100_patients, 1),
                number(point.flags_per_practitioner, 1),
            )
        )
    return tuple(rows)


#: What the operating point's columns mean, for the card and the report.
OPERATING_POINT_DEFINITIONS = (
    "Sensitivity: the share of encounters followed by the bad outcome that were flagged. "
    "Specificity: the share of the others that were not. PPV: the share of flagged "
    "encounters that were followed by the bad outcome. Flags per 100 patients: flagged "
    "encounters per 100 distinct patients over the whole validation period (a patient "
    "can be flagged at several encounters); flags per practitioner likewise."
)


# --------------------------------------------------------------------------- fitting steps
def fit_steps_sentences(record: FitRecord) -> tuple[str, ...]:
    """What fitting a model did, one sentence per step, from its fit record.

    ``record`` is a :class:`~engagekit.models.FitRecord` (``training_steps`` →
    ``final_model`` in the manifest and ``metrics.json``). Only steps that ran are said
    to have run; a step left out is named with the reason.

    >>> from engagekit.models import FitRecord
    >>> sentences = fit_steps_sentences(FitRecord(
    ...     kind="gbm", n_patients=100, n_encounters=430, held_out_patients=0,
    ...     held_out_encounters=0, tuning="fixed", early_stopping="not_used",
    ...     boosting_iterations=100))
    >>> sentences[0]
    'No training patients were held out: 15% of 100 patients is fewer than the 30 a held-out set needs.'
    >>> sentences[1]
    'No early stopping: the trees used a fixed 100 iterations.'
    """  # noqa: E501
    kind = find_kind(record.kind)
    held = record.held_out_patients
    sentences = []
    if held:
        sentences.append(
            f"{count(held)} of the {count(record.n_patients)} training patients "
            f"({count(record.held_out_encounters)} encounters) were held out while "
            "the model was fitted on the others."
        )
    else:
        sentences.append(
            f"No training patients were held out: {percent(record.held_out_share, 0)} "
            f"of {count(record.n_patients)} patients is fewer than the "
            f"{count(record.min_held_out_patients)} a held-out set needs."
        )
    if kind is not None:
        sentences += kind.card_fit_sentences(record)
    sentences.append(_calibration_sentence(record.recalibration))
    if kind is not None:
        sentences += kind.card_sentences_after_calibration(record)
    return tuple(sentences)


def _calibration_sentence(recalibration: LogitRecalibration) -> str:
    status = recalibration.status
    n = count(recalibration.n)
    if status == "no_held_out":
        return "Calibration was not checked (no held-out patients), and not corrected."
    if status == "too_few_events":
        return (
            f"Calibration was not checked: the {n} held-out encounters held "
            f"{count(recalibration.n_events)} of the rarer outcome, fewer than the "
            f"{count(recalibration.min_events)} of each outcome needed to judge it; "
            "no correction was applied."
        )
    # p_value, raw_intercept, raw_slope and shrinkage may be None (not run, not fitted):
    # the formatters write a dash for None as for a non-finite number
    name = recalibration.test or "likelihood-ratio"
    by = " by patient" if name == "cluster-robust Wald" else ""
    test = f"{name} test{by} p = {p_value(recalibration.p_value)}"
    out_of_fold = (
        f"the {count(recalibration.out_of_fold_n)} out-of-fold encounters of the "
        "cross-validation (p = "
        f"{p_value(recalibration.out_of_fold_p_value)})"
    )
    if status == "not_needed":
        return (
            f"Calibration was checked on {n} held-out encounters and needed no correction ({test})."
        )
    if status == "not_confirmed":
        return (
            f"Calibration was checked on {n} held-out encounters, which found it off "
            f"({test}: fitted {number(recalibration.raw_intercept)} + "
            f"{number(recalibration.raw_slope)} × margin), but {out_of_fold} did not "
            "confirm it, so no correction was applied."
        )
    if status == "corrected":
        confirmed = (
            "" if recalibration.out_of_fold_p_value is None else f" Confirmed on {out_of_fold}."
        )
        return (
            f"Calibration was checked on {n} held-out encounters and corrected ({test}): "
            f"log-odds = {number(recalibration.intercept)} + "
            f"{number(recalibration.slope)} × the model's margin (the fitted "
            f"{number(recalibration.raw_intercept)} + "
            f"{number(recalibration.raw_slope)} × margin, shrunk toward no change "
            f"by the factor {number(recalibration.shrinkage)}).{confirmed}"
        )
    return "Whether calibration was checked is not recorded."


def training_sample_sentence(sample: TrainingSample) -> str:
    """What sampling a large table did, in one sentence, from its record
    (``training_steps`` → ``sample`` in the manifest and ``metrics.json``).

    >>> from engagekit.models import TrainingSample
    >>> training_sample_sentence(TrainingSample(
    ...     sample_encounters=1_000_312, sample_patients=41_203, table_encounters=10_000_000,
    ...     table_patients=412_000, seed=0, validation_encounters=98_000,
    ...     validation_patients=4_000, sample_above=2_000_000))
    "The model was fitted on a random sample of 41,203 of the table's 412,000 patients (1,000,312 of its 10,000,000 encounters), drawn patient by patient with seed 0 because the table has more than 2,000,000 encounters; model choice, cross-validation and calibration used the sample only, and the final model was validated on 98,000 encounters of 4,000 other patients outside the sample."
    """  # noqa: E501
    why = (
        f" because the table has more than {count(sample.sample_above)} encounters"
        if sample.sample_above
        else ""
    )
    return (
        f"The model was fitted on a random sample of {count(sample.sample_patients)} of "
        f"the table's {count(sample.table_patients)} patients "
        f"({count(sample.sample_encounters)} of its {count(sample.table_encounters)} "
        f"encounters), drawn patient by patient with seed {sample.seed}{why}; model "
        "choice, cross-validation and calibration used the sample only, and the final "
        f"model was validated on {count(sample.validation_encounters)} encounters of "
        f"{count(sample.validation_patients)} other patients outside the sample."
    )


def cross_validation_steps_sentence(folds: Sequence[FitRecord]) -> str:
    """What the fold models' fits did, in one sentence, from their fit records.

    >>> from engagekit.models import FitRecord
    >>> cross_validation_steps_sentence([
    ...     FitRecord(kind="logistic", n_patients=20, n_encounters=80, held_out_patients=0,
    ...               held_out_encounters=0, tuning="default",
    ...               early_stopping="not_applicable")] * 5)
    'No fold held out training patients (too few patients), so inside cross-validation the penalty was not tuned and calibration was not checked.'
    """  # noqa: E501
    if not folds:
        return "The steps of the fold models' fits are not recorded."
    k = len(folds)
    held = sum(1 for f in folds if f.held_out_patients)
    statuses = [f.recalibration.status for f in folds]
    checked = sum(s in ("not_needed", "corrected") for s in statuses)
    corrected = statuses.count("corrected")
    kinds = {f.kind for f in folds}
    kind = find_kind(kinds.pop()) if len(kinds) == 1 else None
    if held == 0:
        step = f"{kind.card_folds_not_held_out} and " if kind else ""
        return (
            "No fold held out training patients (too few patients), so inside "
            f"cross-validation {step}calibration was not checked."
        )
    if kind is not None:
        words, ran = kind.card_folds_step(folds)
        step = f"{words} {_of(ran, k)}, "
    else:
        step = ""
    return (
        f"{_of(held, k).capitalize()} held out training patients: {step}calibration "
        f"was checked in {_of(checked, k)} and corrected in {_of(corrected, k)}."
    )


def _of(n: int, k: int) -> str:
    if n == 0:
        return "none of the folds"
    return f"all {k} folds" if n == k else f"{n} of the {k} folds"


def fair_calibration_sentences(
    metrics: Metrics, treatment_labels: Mapping[str, str] | None = None
) -> tuple[str, ...]:
    """The subgroup levels whose calibration is off, each in words (treatments by their
    ``treatment_labels``), and how many such namings chance alone would give; empty when
    no subgroup has an interval."""
    from ..evaluation import expected_by_chance

    chance = expected_by_chance(metrics)
    if chance == 0:
        return ()
    named = miscalibration_sentences(metrics, treatment_labels)
    if not named:
        named = ["none: every subgroup's 95% intervals include perfect calibration"]
    return (
        *named,
        f"with {round(chance / 0.05):,} intervals checked, about {chance:.1f} would exclude "
        "perfect calibration by chance alone",
    )


def miscalibration_sentences(
    metrics: Metrics, treatment_labels: Mapping[str, str] | None = None
) -> list[str]:
    """Each subgroup level whose calibration interval excludes perfect calibration
    (:func:`engagekit.evaluation.miscalibrated_groups`), in words, treatments by their
    labels."""
    from ..evaluation import miscalibrated_groups

    labels = treatment_labels or {}
    return [
        m.sentence(labels.get(m.level) if m.column == "treatment" else None)
        for m in miscalibrated_groups(metrics)
    ]
