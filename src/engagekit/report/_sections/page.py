"""The page's view model: every section's, in the page's order."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from . import (
    cross_treatment,
    data,
    explanations,
    flags,
    forecast,
    model_cards,
    monitoring,
    performance,
    provenance,
)

if TYPE_CHECKING:
    import pandas as pd

    from ...config import Config
    from ...heterogeneity import HeterogeneityResult, PatientsForPowerResult, PowerResult
    from ...models import ModelManifest, ModelMetrics
    from ...monitoring import MonitorResult
    from ...summary import EncounterSummary
    from .._compute import ModelFindings

__all__ = ["Page", "build_page"]


@dataclass(frozen=True)
class Page:
    """What the report says, section by section; the per-model sections hold one view
    per model, in the order the models were given. ``monitoring`` is None unless the
    report was given a monitoring result."""

    provenance: provenance.ProvenanceView
    data: data.DataView
    performance: tuple[performance.PerformanceView, ...]
    cross_treatment: cross_treatment.CrossTreatmentView
    explanations: tuple[explanations.ExplanationsView, ...]
    flags: tuple[flags.FlagsView, ...]
    forecast: tuple[forecast.ForecastView, ...]
    model_cards: tuple[model_cards.ModelCardView, ...]
    monitoring: monitoring.MonitoringView | None = None


def build_page(
    encounters: pd.DataFrame,
    summary: EncounterSummary,
    models: Sequence[tuple[ModelManifest, ModelMetrics, str | None]],
    findings: Sequence[ModelFindings],
    analyses: Mapping[str, HeterogeneityResult],
    failures: Mapping[str, str],
    config: Config,
    *,
    power: PowerResult | PatientsForPowerResult | None = None,
    monitoring_result: MonitorResult | None = None,
    title: str,
    created: datetime,
    versions: Mapping[str, str],
    data_source: str | None = None,
    seed: int = 0,
) -> Page:
    """Every section of the page, from what :mod:`engagekit.report._compute` found.

    Parameters
    ----------
    encounters : pandas.DataFrame
    summary : EncounterSummary
        Their summary.
    models : sequence of (ModelManifest, ModelMetrics, str or None)
        Each model's manifest, metrics and where it was loaded from.
    findings : sequence of ModelFindings
        What was computed for each model, in the same order.
    analyses : mapping of str to HeterogeneityResult
        The cross-treatment analysis of each outcome that has one.
    failures : mapping of str to str
        Why the analysis of an outcome without one could not be done.
    config : Config
    power : PowerResult or PatientsForPowerResult, optional
    monitoring_result : MonitorResult, optional
        A result of ``engagekit monitor``: the monitoring section shows it.
    title : str
    created : datetime
        When the report is built.
    versions : mapping of str to str or None
        Library versions, engagekit first.
    data_source : str, optional
    seed : int
        Seed of the SHAP plots' sample of encounters.

    Returns
    -------
    Page
    """
    shown = tuple(performance.build(m, metrics, config, source) for m, metrics, source in models)
    names = tuple(provenance.ModelName(p.label, p.target, p.kind) for p in shown)
    return Page(
        provenance=provenance.build(title, created, versions, names),
        data=data.build(encounters, summary, config, data_source),
        performance=shown,
        cross_treatment=cross_treatment.build(
            [m.target for m, _, _ in models], analyses, failures, config, power
        ),
        explanations=tuple(
            explanations.build(f.target, f.explained, encounters, config, seed) for f in findings
        ),
        flags=tuple(
            flags.build(m, f.flag_shares, config)
            for (m, _, _), f in zip(models, findings, strict=True)
        ),
        forecast=tuple(forecast.build(f.target, f.forecast, config) for f in findings),
        model_cards=tuple(model_cards.build(m, metrics) for m, metrics, _ in models),
        monitoring=None if monitoring_result is None else monitoring.build(monitoring_result),
    )
