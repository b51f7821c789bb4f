"""Build the self-contained HTML report of a service's data, models and analyses.

:func:`build_report` takes typed encounters and trained models (each with the manifest
and metrics written beside it) and makes the report in three steps:

1. **compute** (:mod:`._compute`) whatever it is not given: the cross-treatment analysis
   of each model's outcome, the explanations of every prediction, the attributes'
   importance per treatment and its rank agreement between treatments, the share of
   encounters each flag rule flags, and the aggregate forecast;
2. **sections** (:mod:`.sections`): one view model per section, the texts and numbers
   it shows;
3. **render** (:mod:`._render`): one HTML page from the Jinja2 templates shipped in
   this package, with its CSS inline and every figure inlined as a PNG ``data:`` URI, so
   that the file opens offline and can be mailed as it is.

It also writes one Markdown model card per model. Nothing is read or written here.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pandas as pd

from .._format import DASH
from .._versions import library_versions
from ..errors import ConfigError, ContractError, DataReadError
from . import _compute
from ._model_card import model_card
from ._render import render
from ._sections import build_page

if TYPE_CHECKING:
    from ..config import Config
    from ..heterogeneity import HeterogeneityResult, PatientsForPowerResult, PowerResult
    from ..models import EngagementModel, ModelManifest, ModelMetrics
    from ..monitoring import MonitorResult

__all__ = ["Report", "ReportModel", "build_report"]

Progress = Callable[[str, int, int], None]

_LIBRARIES = ("engagekit", "numpy", "pandas", "scikit-learn", "statsmodels", "matplotlib")


@dataclass(frozen=True)
class ReportModel:
    """A trained model with the record ``engagekit train`` wrote beside it.

    Attributes
    ----------
    model : EngagementModel
    manifest : ModelManifest
        ``manifest.json``.
    metrics : ModelMetrics
        ``metrics.json``: the cross-validated metrics.
    source : str, optional
        Where the model was loaded from, for messages.

    Raises
    ------
    DataReadError
        The model, its manifest and its metrics are not about the same outcome.
    """

    model: EngagementModel
    manifest: ModelManifest
    metrics: ModelMetrics
    source: str | None = None

    def __post_init__(self) -> None:
        said = {
            "the model": getattr(self.model, "target", None),
            "manifest.json": self.manifest.target,
            "metrics.json": self.metrics.target,
        }
        if len(set(said.values())) != 1 or None in said.values():
            where = f" in {self.source!r}" if self.source else ""
            found = ", ".join(f"{k}: {v!r}" for k, v in said.items())
            raise DataReadError(
                f"the model{where} and its records disagree on the outcome ({found}); "
                "retrain it with engagekit train, which writes all three together"
            )

    @property
    def target(self) -> str:
        """The outcome the model predicts."""
        return self.manifest.target


@dataclass(frozen=True)
class Report:
    """A built report.

    Attributes
    ----------
    html : str
        The self-contained HTML page.
    model_cards : dict of str to str
        Markdown model card of each model, by target.
    heterogeneity : dict of str to HeterogeneityResult
        The cross-treatment analysis of each target, given or computed.
    importance, rank_agreement : dict
        Per target, :func:`~engagekit.explain.attribute_importance` by treatment and
        :func:`~engagekit.explain.rank_agreement`.
    forecast : dict of str to pandas.DataFrame
        Per target, the forecast per treatment (empty when no session is pending).
    notes : dict of str to str
        What could not be computed, and why.
    seconds : float
        Time taken to build it.
    """

    html: str
    model_cards: dict[str, str]
    heterogeneity: dict[str, HeterogeneityResult] = field(default_factory=dict)
    importance: dict[str, dict[str, Any]] = field(default_factory=dict)
    rank_agreement: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    forecast: dict[str, pd.DataFrame] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)
    seconds: float = math.nan


def build_report(
    encounters: pd.DataFrame,
    models: Sequence[ReportModel],
    config: Config | None = None,
    *,
    heterogeneity: Iterable[HeterogeneityResult] = (),
    power: PowerResult | PatientsForPowerResult | None = None,
    monitoring: MonitorResult | None = None,
    forecast: Mapping[str, pd.DataFrame] | None = None,
    title: str = "engagekit report",
    data_source: str | None = None,
    rank_agreement_boot: int = 500,
    forecast_level: float = 0.9,
    seed: int = 0,
    n_jobs: int = 1,
    progress: Progress | None = None,
) -> Report:
    """The self-contained HTML report and the model cards of trained models.

    Parameters
    ----------
    encounters : pandas.DataFrame
        Typed, valid encounters (see :func:`engagekit.coerce_encounters`): the data to
        describe, explain and forecast, usually the data the models were trained on.
    models : sequence of ReportModel
        At least one, at most one per outcome.
    config : Config, optional
        Attributes, treatments and outcomes; the first model's config by default. Every
        model must rate the same attributes and know the same treatments.
    heterogeneity : iterable of HeterogeneityResult
        Results of :func:`~engagekit.heterogeneity.heterogeneity_analysis` already
        computed (e.g. read from ``engagekit heterogeneity`` JSON with
        :func:`~engagekit.io._results.read_heterogeneity_result`), at most one per
        outcome, each for an outcome of a model. The analysis of a model's outcome not
        given here is computed on ``encounters`` with the config's settings.
    power : PowerResult or PatientsForPowerResult, optional
        A result of :func:`~engagekit.heterogeneity.estimate_power` or
        :func:`~engagekit.heterogeneity.patients_for_power` (``engagekit power`` JSON,
        read with :func:`~engagekit.io._results.read_power_result`).
    monitoring : MonitorResult, optional
        A result of :func:`~engagekit.monitoring.monitor` (``engagekit monitor --out``
        JSON, read with :func:`~engagekit.io._results.read_monitor_result`): the report
        gains a monitoring section, with its tables, alerts and control charts.
    forecast : mapping of str to pandas.DataFrame, optional
        Per target, a forecast table of :func:`~engagekit.forecast.forecast_dropout`.
        Otherwise each model forecasts, per treatment, each patient's latest encounter
        whose outcome is still empty (see :func:`~engagekit.forecast.pending_encounters`).
    title : str
    data_source : str, optional
        Where the data came from, shown in the report.
    rank_agreement_boot : int
        Patient-bootstrap replicates of the rank agreement's intervals.
    forecast_level : float
        Coverage of the forecast intervals.
    seed : int
        Seed of the rank agreement's bootstrap and of the SHAP plot's sample.
    n_jobs : int
        Threads explaining tree models (-1: one per core).
    progress : callable, optional
        ``progress(step, done, total)`` as each step finishes.

    Returns
    -------
    Report

    Raises
    ------
    ValueError
        No model, two models or two analyses for one outcome, an analysis for an
        outcome no model predicts, or a ``monitoring`` that is not a MonitorResult.
    ConfigError
        A model was trained with other attributes or treatments than ``config``.
    ContractError
        ``encounters`` lacks a column the models need.

    Examples
    --------
    >>> from engagekit import simulate_encounters
    >>> from engagekit.config import load_config
    >>> from engagekit.models import build_manifest, train_model
    >>> encounters = simulate_encounters(300, seed=1).encounters
    >>> trained = train_model(encounters, "adherent", "logistic", n_splits=3, n_boot=10)
    >>> manifest = build_manifest(trained, load_config(), encounters)
    >>> report = build_report(encounters, [ReportModel(trained.model, manifest, trained.metrics)],
    ...                       rank_agreement_boot=10)
    >>> report.html.startswith("<!DOCTYPE html>"), list(report.model_cards)
    (True, ['adherent'])
    >>> build_report(encounters, [])
    Traceback (most recent call last):
    ...
    ValueError: a report needs at least one model
    """
    started = time.perf_counter()
    models = list(models)
    config = _check_inputs(encounters, models, config)
    _check_monitoring(monitoring)
    targets = [m.target for m in models]
    given = _given_analyses(heterogeneity, targets)
    steps = ["summary", *(f"{t}: cross-treatment analysis" for t in targets if t not in given)]
    steps += [*(f"{t}: explanations" for t in targets), "figures and page"]
    tracker = _Steps(steps, progress)

    from ..summary import summarize_encounters

    summary = summarize_encounters(encounters, config)
    tracker.done("summary")
    analyses = {}
    for target in targets:
        if target in given:
            analyses[target] = _compute.AnalysisFindings(target, given[target])
            continue
        analyses[target] = _compute.cross_treatment_analysis(encounters, target, config)
        tracker.done(f"{target}: cross-treatment analysis")
    findings = []
    for m in models:
        findings.append(
            _compute.model_findings(
                m.model,
                m.manifest.flag_rule,
                encounters,
                forecast=(forecast or {}).get(m.target),
                forecast_level=forecast_level,
                rank_agreement_boot=rank_agreement_boot,
                seed=seed,
                n_jobs=n_jobs,
            )
        )
        tracker.done(f"{m.target}: explanations")

    results = {t: a.result for t, a in analyses.items() if a.result is not None}
    failures = {t: a.note for t, a in analyses.items() if a.note is not None}
    page = build_page(
        encounters,
        summary,
        [(m.manifest, m.metrics, m.source) for m in models],
        findings,
        results,
        failures,
        config,
        power=power,
        monitoring_result=monitoring,
        title=title,
        created=datetime.now(UTC),
        versions=library_versions(_LIBRARIES, missing=DASH),
        data_source=data_source,
        seed=seed,
    )
    html = render(page)
    tracker.done("figures and page")
    notes = {f"heterogeneity:{t}": why for t, why in failures.items()}
    for f in findings:
        notes.update(f.notes)
    return Report(
        html=html,
        model_cards={m.target: model_card(m.manifest, m.metrics) for m in models},
        heterogeneity=results,
        importance={f.target: f.explained.importance for f in findings},
        rank_agreement={f.target: f.explained.rank_agreement for f in findings},
        forecast={f.target: f.forecast.table for f in findings},
        notes=notes,
        seconds=time.perf_counter() - started,
    )


# --------------------------------------------------------------------------- checks
class _Steps:
    def __init__(self, steps: list[str], progress: Progress | None) -> None:
        self.total, self.finished, self.progress = len(steps), 0, progress

    def done(self, step: str) -> None:
        self.finished += 1
        if self.progress is not None:
            self.progress(step, self.finished, self.total)


def _check_inputs(
    encounters: pd.DataFrame, models: list[ReportModel], config: Config | None
) -> Config:
    """The report's config (the first model's by default), once the models are checked
    against it and against the encounters."""
    if not models:
        raise ValueError("a report needs at least one model")
    config = config if config is not None else _model_config(models[0])
    targets = [m.target for m in models]
    repeated = sorted({t for t in targets if targets.count(t) > 1})
    if repeated:
        raise ValueError(f"two models predict {repeated[0]!r}; give one model per outcome")
    for m in models:
        _check_same_instrument(m, config)
        if m.target not in encounters.columns:
            raise ContractError(
                f"the encounter table has no {m.target!r} column, which the model "
                f"{m.source or m.target!r} predicts"
            )
    return config


def _check_monitoring(monitoring: Any) -> None:
    from ..monitoring import MonitorResult

    if monitoring is not None and not isinstance(monitoring, MonitorResult):
        raise ValueError(
            "a monitoring result must be the MonitorResult monitor returns (or "
            f"read_monitor_result reads), not a {type(monitoring).__name__}"
        )


def _model_config(model: ReportModel) -> Config:
    from ..config import config_from_dict

    return config_from_dict(model.manifest.config, source="of the model's manifest")


def _check_same_instrument(model: ReportModel, config: Config) -> None:
    own = _model_config(model)
    for what in ("attribute_names", "treatment_names"):
        if getattr(own, what) != getattr(config, what):
            raise ConfigError(
                f"the model {model.source or model.target!r} was trained with "
                f"{what.split('_')[0]}s {getattr(own, what)}, but the report's config has "
                f"{getattr(config, what)}; report with the config the model was trained with"
            )


def _given_analyses(
    results: Iterable[HeterogeneityResult], targets: list[str]
) -> dict[str, HeterogeneityResult]:
    from ..heterogeneity import HeterogeneityResult

    given: dict[str, HeterogeneityResult] = {}
    for result in results:
        if not isinstance(result, HeterogeneityResult):
            raise ValueError(
                "a heterogeneity result must be the HeterogeneityResult heterogeneity_analysis "
                f"returns (or read_heterogeneity_result reads), not a {type(result).__name__}"
            )
        target = result.target
        if target in given:
            raise ValueError(f"two heterogeneity results for {target!r}; give one per outcome")
        if target not in targets:
            raise ValueError(
                f"the heterogeneity result is for {target!r}, which no model predicts "
                f"(models: {', '.join(targets)}); add that model or leave the result out"
            )
        given[target] = result
    return given
