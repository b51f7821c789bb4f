"""Section 2, model performance: each model's cross-validated metrics with their
intervals, its curves, and its metrics per treatment and subgroup."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING

from ..._format import DASH, count, is_number, number, percent
from ..._labels import outcome_label
from .._document import Table
from .._tables import (
    METRIC_LABELS,
    SUBGROUP_COLUMNS,
    fair_calibration_sentences,
    metric_rows,
    subgroup_rows,
)
from ._common import Plot, bad_outcome, treatment_labels

if TYPE_CHECKING:
    from ...config import Config
    from ...evaluation import Metrics
    from ...models import ModelManifest, ModelMetrics

__all__ = [
    "MetricCell",
    "PerformanceView",
    "TemporalView",
    "build",
    "metric_cells",
]

#: Why a model is unfit when its manifest does not say.
_UNFIT = "its validation showed no better than chance"


@dataclass(frozen=True)
class MetricCell:
    """A metric as shown, with the exact value it was read from.

    Attributes
    ----------
    name : str
        Its key in ``metrics.json`` (``"auroc"``).
    label, value, ci : str
        What the row says: the metric's name in words, its estimate, its interval.
    raw : str
        The estimate's ``repr`` (empty when undefined), so that a reader (or a test) can
        compare the page with ``metrics.json`` exactly.
    target : str
    """

    name: str
    label: str
    value: str
    ci: str
    raw: str
    target: str


@dataclass(frozen=True)
class TemporalView:
    """The temporal validation: the split and the metrics on the later encounters."""

    split_date: str
    n_encounters: str
    n_patients: str
    metrics: tuple[MetricCell, ...]


@dataclass(frozen=True)
class PerformanceView:
    """What the performance section says of one model.

    Attributes
    ----------
    target, label, kind : str
        The outcome's code and label, and the model's kind.
    source : str or None
        Where the model was loaded from.
    bad_outcome : str
    unfit_reason : str or None
        Why the model is not fit for use; None when it is.
    metrics : tuple of MetricCell
    ci_level, n_boot, folds, n_patients, n_encounters : str
    note : str or None
        Why some metrics are undefined.
    roc, calibration, decision_curve : Plot
    subgroups : tuple of Table
        One per grouping column, captioned.
    fair_calibration : tuple of str
        The subgroup levels whose calibration interval excludes perfect calibration,
        each in words (:func:`engagekit.evaluation.miscalibrated_groups`); the last item
        says how many would be named by chance.
    temporal : TemporalView or None
    threshold_marked : str or None
        The flag threshold the decision curve marks, when it draws it.
    """

    target: str
    label: str
    kind: str
    source: str | None
    bad_outcome: str
    unfit_reason: str | None
    metrics: tuple[MetricCell, ...]
    ci_level: str
    n_boot: str
    folds: str
    n_patients: str
    n_encounters: str
    note: str | None
    roc: Plot
    calibration: Plot
    decision_curve: Plot
    subgroups: tuple[Table, ...]
    fair_calibration: tuple[str, ...]
    temporal: TemporalView | None
    threshold_marked: str | None


def metric_cells(metrics: Metrics, target: str, bad: str | None = None) -> tuple[MetricCell, ...]:
    """The cells of a metric table: every metric of ``metrics`` on all its encounters."""
    cells = []
    for (label, value, ci), name in zip(metric_rows(metrics, bad), METRIC_LABELS, strict=True):
        raw = metrics.overall.estimate(name).value
        cells.append(
            MetricCell(name, label, value, ci, repr(float(raw)) if is_number(raw) else "", target)
        )
    return tuple(cells)


def build(
    manifest: ModelManifest,
    metrics: ModelMetrics,
    config: Config,
    source: str | None = None,
) -> PerformanceView:
    """The performance section of a model, from its manifest and ``metrics.json``.

    Parameters
    ----------
    manifest : ModelManifest
    metrics : ModelMetrics
    config : Config
        The words for the outcome and the treatments.
    source : str, optional
        Where the model was loaded from.

    Returns
    -------
    PerformanceView
    """
    from .. import _figures as figures

    target = manifest.target
    label = outcome_label(config, target)
    bad = bad_outcome(config, target)
    threshold = manifest.flag_rule.threshold
    if metrics.roc_curve:
        roc = Plot("ROC curve", partial(figures.roc_figure, metrics, f"ROC curve — {label}"))
    else:  # a ROC curve needs both outcome classes
        roc = Plot(
            "ROC curve",
            note=f"ROC curve: {DASH} (this metrics.json holds none: only one outcome class)",
        )
    temporal = metrics.temporal_validation
    labels = treatment_labels(config)
    return PerformanceView(
        target=target,
        label=label,
        kind=manifest.kind,
        source=source,
        bad_outcome=bad,
        # a model train marked unfit for use is named as such where its numbers are shown
        unfit_reason=None if manifest.fit_for_use else (manifest.unfit_reason or _UNFIT),
        metrics=metric_cells(metrics, target, bad),
        ci_level=percent(metrics.ci_level, 0),
        n_boot=count(metrics.n_boot),
        folds=count(metrics.cv_folds),
        n_patients=count(metrics.overall.n_patients),
        n_encounters=count(metrics.overall.n_encounters),
        note=metrics.overall.note,
        roc=roc,
        calibration=Plot(
            "Calibration curve",
            partial(figures.calibration_figure, metrics, f"Calibration — {label}"),
        ),
        decision_curve=Plot(
            "Decision curve",
            partial(figures.decision_curve_figure, metrics, threshold, f"Decision curve — {label}"),
        ),
        subgroups=tuple(
            Table(
                SUBGROUP_COLUMNS,
                subgroup_rows(levels, labels if column == "treatment" else None),
                caption=f"By {column.replace('_', ' ')}",
            )
            for column, levels in metrics.by_group.items()
        ),
        fair_calibration=fair_calibration_sentences(metrics, labels),
        temporal=(
            None
            if temporal is None
            else TemporalView(
                split_date=temporal.split_date,
                n_encounters=count(temporal.overall.n_encounters),
                n_patients=count(temporal.overall.n_patients),
                metrics=metric_cells(temporal, target, bad),
            )
        ),
        # the caption names the dash-dot line only when the figure draws it
        threshold_marked=number(threshold) if figures.marks_flag_threshold(threshold) else None,
    )
