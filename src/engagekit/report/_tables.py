"""Tables and sentences that the model card and the HTML report both show."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ._format import count, estimate, interval, number, percent, plain

__all__ = [
    "METRIC_LABELS",
    "OPERATING_POINT_COLUMNS",
    "OPERATING_POINT_DEFINITIONS",
    "SUBGROUP_COLUMNS",
    "flag_rule_sentence",
    "metric_rows",
    "operating_point_rows",
    "subgroup_rows",
]

#: Reader-facing names of the metrics in ``metrics.json``, in the order they are shown.
METRIC_LABELS = {
    "auroc": "AUROC",
    "auprc": "AUPRC (average precision)",
    "brier": "Brier score",
    "log_loss": "Log loss",
    "calibration_intercept": "Calibration intercept",
    "calibration_slope": "Calibration slope",
    "prevalence": "Outcome rate (share with the outcome = 1)",
}


def metric_rows(block: Mapping[str, Any]) -> tuple[tuple[str, ...], ...]:
    """``(label, estimate, CI)`` of each metric of a metrics block."""
    return tuple(
        (
            label,
            number(block.get(name)),
            interval(block.get(f"{name}_ci_low"), block.get(f"{name}_ci_high")),
        )
        for name, label in METRIC_LABELS.items()
    )


def subgroup_rows(
    blocks: Mapping[str, Mapping[str, Any]], labels: Mapping[str, str] | None = None
) -> tuple[tuple[str, ...], ...]:
    """Rows of a subgroup table: level (its label if given), counts, AUROC, calibration
    slope, Brier score, note."""
    labels = labels or {}
    return tuple(
        (
            labels.get(level, level),
            count(block.get("n_patients")),
            count(block.get("n_encounters")),
            percent(block.get("prevalence")),
            estimate(block, "auroc"),
            estimate(block, "calibration_slope"),
            estimate(block, "brier"),
            str(block.get("note") or ""),
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


def flag_rule_sentence(rule: Mapping[str, Any], bad_outcome: str) -> str:
    """The flag rule in words, e.g. "flag the 10% of encounters at highest risk"."""
    value = rule.get("value")
    name = rule.get("rule")
    if name == "top_percent":
        what = f"flag the {value:g}% of encounters at highest risk"
    elif name == "sensitivity":
        what = (
            f"flag enough encounters to catch at least {percent(value, 0)} of those "
            "followed by the bad outcome"
        )
    elif name == "per_practitioner":
        what = f"flag on average {value:g} encounters per practitioner over the validation period"
    else:
        what = f"rule `{name}` with value {plain(value)}"
    return (
        f"{what[0].upper()}{what[1:]} (risk: the probability that the patient "
        f"{bad_outcome}), chosen on the cross-validated predictions. An encounter is "
        f"flagged high at a risk of {number(rule.get('threshold'))} or more, medium at "
        f"{number(rule.get('medium_threshold'))} or more."
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


def operating_point_rows(rule: Mapping[str, Any]) -> tuple[tuple[str, ...], ...]:
    rows = []
    for label, key in (("high", "operating_point"), ("high or medium", "medium_operating_point")):
        point = rule.get(key) or {}
        rows.append(
            (
                label,
                number(point.get("sensitivity"), 2),
                number(point.get("specificity"), 2),
                number(point.get("ppv"), 2),
                number(point.get("flags_per_100_encounters"), 1),
                number(point.get("flags_per_100_patients"), 1),
                number(point.get("flags_per_practitioner"), 1),
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
