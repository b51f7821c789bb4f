"""Build the self-contained HTML report of a service's data, models and analyses.

:func:`build_report` takes typed encounters and trained models (each with the manifest
and metrics written beside it) and computes whatever it is not given: the
cross-treatment analysis of each model's outcome, the explanations of every prediction,
the attributes' importance per treatment and its rank agreement between treatments, and
the aggregate forecast. It renders one HTML page from the Jinja2 template shipped in
this package, with its CSS inline and every figure inlined as a PNG ``data:`` URI, so
that the file opens offline and can be mailed as it is; and one Markdown model card per
model. Nothing is read or written here.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from .._labels import attribute_label, in_sentence, outcome_label
from ..config import Config
from ..errors import AnalysisError, ConfigError, ContractError, DataReadError
from ._document import inline_html
from ._format import DASH, count, is_number, number, p_value, percent
from ._tables import (
    FLAG_SHARE_COLUMNS,
    METRIC_LABELS,
    OPERATING_POINT_COLUMNS,
    OPERATING_POINT_DEFINITIONS,
    SUBGROUP_COLUMNS,
    flag_rule_sentence,
    flag_share_rows,
    metric_rows,
    operating_point_rows,
    subgroup_rows,
)
from .model_card import model_card, model_card_sections, model_card_title

if TYPE_CHECKING:
    from ..evaluation import Metrics
    from ..explain import Explanation
    from ..flags import FlagRule
    from ..heterogeneity import HeterogeneityResult, PatientsForPowerResult, PowerResult, Share
    from ..models import EngagementModel, ModelManifest, ModelMetrics

__all__ = ["Report", "ReportModel", "build_report"]

Progress = Callable[[str, int, int], None]

_GROUP_LABELS = {
    "treatment": "Treatment",
    "session": "Session number",
    "missingness": "Missing ratings (count)",
}
_COV_TYPE_NAMES = {"kauermann_carroll": "Kauermann–Carroll", "bias_reduced": "Mancl–DeRouen"}
_ADJUSTMENT_NAMES = {"holm": "Holm", "fdr_bh": "Benjamini–Hochberg"}
_TEST_NAMES = {"wald": "Wald", "score": "score"}
_LIBRARIES = ("engagekit", "numpy", "pandas", "scikit-learn", "statsmodels", "matplotlib")
_POWER = 0.8


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
        :func:`~engagekit.io.results.read_heterogeneity_result`), at most one per
        outcome, each for an outcome of a model. The analysis of a model's outcome not
        given here is computed on ``encounters`` with the config's settings.
    power : PowerResult or PatientsForPowerResult, optional
        A result of :func:`~engagekit.heterogeneity.estimate_power` or
        :func:`~engagekit.heterogeneity.patients_for_power` (``engagekit power`` JSON,
        read with :func:`~engagekit.io.results.read_power_result`).
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
        No model, two models or two analyses for one outcome, or an analysis for an
        outcome no model predicts.
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
    given = _given_analyses(heterogeneity, targets)
    steps = ["summary", *(f"{t}: cross-treatment analysis" for t in targets if t not in given)]
    steps += [f"{t}: explanations and figures" for t in targets]
    tracker = _Steps(steps, progress)

    from ..summary import summarize_encounters

    summary = summarize_encounters(encounters, config)
    tracker.done("summary")
    notes: dict[str, str] = {}
    analyses = dict(given)
    for target in targets:
        if target in analyses:
            continue
        from ..heterogeneity import heterogeneity_analysis

        try:
            # a fit that overflows on the way ends in an AnalysisError of its own; numpy's
            # overflow warnings on the way say nothing more
            with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
                analyses[target] = heterogeneity_analysis(encounters, target, config)
        except (AnalysisError, ContractError) as e:
            notes[f"heterogeneity:{target}"] = str(e)
        tracker.done(f"{target}: cross-treatment analysis")

    model_sections = []
    importance: dict[str, dict[str, Any]] = {}
    agreement: dict[str, list[dict[str, Any]]] = {}
    forecasts: dict[str, pd.DataFrame] = {}
    for m in models:
        section = _model_section(
            m,
            encounters,
            config,
            forecast=(forecast or {}).get(m.target),
            rank_agreement_boot=rank_agreement_boot,
            forecast_level=forecast_level,
            seed=seed,
            n_jobs=n_jobs,
        )
        importance[m.target] = section.pop("_importance")
        agreement[m.target] = section.pop("_rank_agreement")
        forecasts[m.target] = section.pop("_forecast")
        notes.update(section.pop("_notes"))
        model_sections.append(section)
        tracker.done(f"{m.target}: explanations and figures")

    cross = [
        _cross_treatment_section(target, analyses.get(target), notes, config) for target in targets
    ]
    context = {
        "title": title,
        "created": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "data": _data_section(encounters, summary, config, data_source),
        "models": model_sections,
        "subgroup_columns": SUBGROUP_COLUMNS,
        "cross": cross,
        "power": _power_section(power, config) if power else None,
        "versions": [(lib, _version(lib)) for lib in _LIBRARIES],
    }
    html = _render(context)
    cards = {m.target: model_card(m.manifest, m.metrics) for m in models}
    return Report(
        html=html,
        model_cards=cards,
        heterogeneity=analyses,
        importance=importance,
        rank_agreement=agreement,
        forecast=forecasts,
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


# --------------------------------------------------------------------------- data
def _labels(config: Config) -> dict[str, str]:
    labels = {a.name: a.label for a in config.attributes.items}
    labels.update(_GROUP_LABELS)
    for covariate in config.covariates:
        labels[covariate] = covariate.replace("_", " ").capitalize()
    return labels


def _treatment_labels(config: Config) -> dict[str, str]:
    return {t.name: t.label for t in config.treatments} | {"all": "All treatments"}


def _outcome_label(config: Config, target: str) -> str:
    return next((o.label for o in config.outcomes if o.name == target), target)


def _bad_outcome(config: Config, target: str) -> str:
    return next((o.bad_outcome for o in config.outcomes if o.name == target), f"not {target}")


def _data_section(
    encounters: pd.DataFrame, summary, config: Config, data_source: str | None
) -> dict[str, Any]:
    from ..io.model_store import data_fingerprint

    period = None
    if "encounter_date" in encounters.columns and len(encounters):
        dates = pd.to_datetime(encounters["encounter_date"], errors="coerce").dropna()
        if len(dates):
            period = (dates.min().date().isoformat(), dates.max().date().isoformat())
    labels = _treatment_labels(config)
    attribute_labels = _labels(config)
    outcomes = [o for o in config.outcome_names if f"{o}_empty" in summary.by_treatment.columns]
    rows = []
    for r in summary.by_treatment.to_dict(orient="records"):
        rows.append(
            {
                "total": r["treatment"] == "all",
                "cells": (
                    labels.get(r["treatment"], r["treatment"]),
                    count(r["patients"]),
                    count(r["encounters"]),
                    number(r["sessions_mean"], 1),
                    number(r["sessions_median"], 1),
                    count(r["sessions_max"]),
                    percent(r.get("not_attended_next")),
                    percent(r.get("dropped_out")),
                    percent(r.get("adherent")),
                    *(count(r[f"{o}_empty"]) for o in outcomes),
                ),
            }
        )
    missing = [
        (attribute_labels.get(a, a), count(n), percent(share))
        for a, n, share in summary.missing_ratings[
            ["attribute", "missing", "share_missing"]
        ].itertuples(index=False)
    ]
    return {
        "n_patients": count(summary.n_patients),
        "n_encounters": count(summary.n_encounters),
        "period": period,
        "source": data_source,
        "sha256": data_fingerprint(encounters),
        "by_treatment": rows,
        # the outcome columns in the config's words: "did not attend the next session"
        "not_attended_header": _bad_outcome(config, "attended_next"),
        "adherent_header": _outcome_label(config, "adherent"),
        "empty_columns": [
            f"{_outcome_label(config, o)}: not recorded (encounters)" for o in outcomes
        ],
        "missing": missing,
    }


# --------------------------------------------------------------------------- models
def _figure_or_note(draw: Callable[[], Any], what: str) -> dict[str, str | None]:
    """``{"uri": ..., "note": None}``, or no URI and the reason the figure is missing."""
    from .figures import png_data_uri

    try:
        fig = draw()
    except ValueError as e:
        return {"uri": None, "note": f"{what}: {DASH} ({e})"}
    return {"uri": png_data_uri(fig), "note": None}


def _metric_cells(
    metrics: Metrics, target: str, bad_outcome: str | None = None
) -> list[dict[str, Any]]:
    cells = []
    rows = metric_rows(metrics, bad_outcome)
    for (label, value, ci), name in zip(rows, METRIC_LABELS, strict=True):
        raw = metrics.overall.estimate(name).value
        cells.append(
            {
                "name": name,
                "label": label,
                "value": value,
                "ci": ci,
                "raw": repr(float(raw)) if is_number(raw) else "",
                "target": target,
            }
        )
    return cells


def _model_section(
    m: ReportModel,
    encounters: pd.DataFrame,
    config: Config,
    *,
    forecast: pd.DataFrame | None,
    rank_agreement_boot: int,
    forecast_level: float,
    seed: int,
    n_jobs: int,
) -> dict[str, Any]:
    from ..explain import attribute_importance, explain_predictions, rank_agreement
    from . import figures

    target, metrics, manifest = m.target, m.metrics, m.manifest
    label = _outcome_label(config, target)
    rule = manifest.flag_rule
    notes: dict[str, str] = {}

    performance = {
        "metrics": _metric_cells(metrics, target, _bad_outcome(config, target)),
        "ci_level": percent(metrics.ci_level, 0),
        "n_boot": count(metrics.n_boot),
        "folds": count(metrics.cv_folds),
        "n_patients": count(metrics.overall.n_patients),
        "n_encounters": count(metrics.overall.n_encounters),
        "note": metrics.overall.note,
        "figures": [
            _figure_or_note(
                lambda: figures.roc_figure(metrics, f"ROC curve — {label}"), "ROC curve"
            ),
            _figure_or_note(
                lambda: figures.calibration_figure(metrics, f"Calibration — {label}"),
                "Calibration curve",
            ),
            _figure_or_note(
                lambda: figures.decision_curve_figure(
                    metrics, rule.threshold, f"Decision curve — {label}"
                ),
                "Decision curve",
            ),
        ],
        "subgroups": [
            {
                "title": f"By {column.replace('_', ' ')}",
                "rows": subgroup_rows(
                    levels, _treatment_labels(config) if column == "treatment" else None
                ),
            }
            for column, levels in metrics.by_group.items()
        ],
        "temporal": None,
        # the caption names the dash-dot line only when the figure draws it
        "threshold_marked": (
            number(rule.threshold) if figures.marks_flag_threshold(rule.threshold) else None
        ),
    }
    if not metrics.roc_curve:
        # a ROC curve needs both outcome classes
        performance["figures"][0]["note"] = (
            f"ROC curve: {DASH} (this metrics.json holds none: only one outcome class)"
        )
    temporal = metrics.temporal_validation
    if temporal is not None:
        performance["temporal"] = {
            "split_date": temporal.split_date,
            "n_encounters": count(temporal.overall.n_encounters),
            "n_patients": count(temporal.overall.n_patients),
            "metrics": _metric_cells(temporal, target, _bad_outcome(config, target)),
        }

    explanation: Explanation = explain_predictions(m.model, encounters, n_jobs=n_jobs)
    gap = explanation.check_local_accuracy()
    importance = attribute_importance(explanation, encounters, by="treatment")
    try:
        agreement = rank_agreement(
            explanation, encounters, n_boot=rank_agreement_boot, seed=seed, by="treatment"
        )
    except (ValueError, ContractError) as e:
        agreement = []
        notes[f"rank_agreement:{target}"] = str(e)
    labels = _labels(config)
    treatment_labels = _treatment_labels(config)
    scale = (float(config.attributes.scale.min), float(config.attributes.scale.max))
    ratings = encounters[[a for a in config.attribute_names if a in encounters.columns]]
    explain = {
        "method": {
            "linear": "exact linear SHAP",
            "tree_path_dependent": "exact path-dependent TreeSHAP",
        }.get(explanation.method, explanation.method),
        "n": count(len(explanation.values)),
        "base_value": number(explanation.base_value),
        "gap": f"{gap:.1e}",
        "shap": _figure_or_note(
            lambda: figures.shap_summary_figure(
                explanation.grouped,
                ratings,
                labels,
                scale,
                seed=seed,
                title=f"SHAP contributions — {label}",
            ),
            "SHAP summary",
        ),
        "importance": _figure_or_note(
            lambda: figures.importance_figure(
                importance, labels, treatment_labels, f"Importance per treatment — {label}"
            ),
            "Importance per treatment",
        ),
        "agreement": [
            (
                treatment_labels.get(r["level_a"], r["level_a"]),
                treatment_labels.get(r["level_b"], r["level_b"]),
                number(r["tau"], 2),
                _ci(r["ci_low"], r["ci_high"], 2),
                count(r["n_boot"]),
            )
            for r in agreement
        ],
        "agreement_note": notes.get(f"rank_agreement:{target}"),
        "n_boot": count(rank_agreement_boot),
    }

    # the risk as scoring computes it (engagekit.scoring.score_encounters)
    p_bad = 1.0 - 1.0 / (1.0 + np.exp(-explanation.logit))
    point = rule.operating_point
    flags = {
        "sentence": flag_rule_sentence(rule, _bad_outcome(config, target)),
        "columns": OPERATING_POINT_COLUMNS,
        "rows": operating_point_rows(rule),
        "definitions": OPERATING_POINT_DEFINITIONS,
        "n_encounters": count(point.n_encounters),
        "n_patients": count(point.n_patients),
        "n_bad": count(point.n_bad_outcomes),
        "n_flagged": count(point.n_flagged),
        "shares": _flag_shares(rule, p_bad, encounters),
    }

    forecast_table, forecast_view = _forecast(
        forecast, encounters, target, p_bad, forecast_level, config
    )
    if forecast_view.get("note"):
        notes[f"forecast:{target}"] = forecast_view["note"]

    return {
        "target": target,
        "label": label,
        "bad_outcome": _bad_outcome(config, target),
        "kind": manifest.kind,
        "source": m.source,
        # a model train marked unfit for use is named as such where its numbers are shown
        "unfit_reason": (
            None
            if manifest.fit_for_use
            else (manifest.unfit_reason or "its validation showed no better than chance")
        ),
        "performance": performance,
        "explain": explain,
        "flags": flags,
        "forecast": forecast_view,
        "card_title": model_card_title(manifest),
        "card": model_card_sections(manifest, metrics),
        "_importance": importance,
        "_rank_agreement": agreement,
        "_forecast": forecast_table,
        "_notes": notes,
    }


def _flag_shares(rule: FlagRule, risk: np.ndarray, encounters: pd.DataFrame):
    """The share of the report's encounters the rule promises to flag, beside the share
    it flags when they are scored (the thresholds set as scoring sets them)."""
    from ..flags import flag_levels
    from ..scoring import encounter_flag_thresholds

    try:
        applied = encounter_flag_thresholds(rule, risk, encounters)
    except ValueError as e:  # also a ContractError: no practitioner_id for per_practitioner
        return {"rows": (), "note": f"the rule cannot be applied to these encounters: {e}"}
    levels = flag_levels(risk, applied)
    n_high = int(np.sum(levels == "high"))
    if applied.set_on == "scored":
        basis = (
            f"the rule promises {applied.promise} of the encounters scored; measured on "
            f"this report's {count(applied.n_encounters)} encounters, scored as "
            "engagekit score scores them (encounters tied at a threshold are all flagged)"
        )
    else:
        basis = (
            f"the rule promises {applied.promise}: its promised shares are those it "
            f"flagged on the cross-validated predictions; measured on this report's "
            f"{count(applied.n_encounters)} encounters with the same thresholds"
        )
    return {
        "columns": FLAG_SHARE_COLUMNS,
        "rows": flag_share_rows(applied, n_high, int(np.sum(levels != "low"))),
        "note": f"{basis[0].upper()}{basis[1:]}.",
    }


def _ci(low: Any, high: Any, digits: int = 3) -> str:
    if not (is_number(low) and is_number(high)):
        return DASH
    return f"{number(low, digits)} to {number(high, digits)}"


def _forecast(
    given: pd.DataFrame | None,
    encounters: pd.DataFrame,
    target: str,
    p_bad: np.ndarray,
    level: float,
    config: Config,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    from ..forecast import forecast_dropout, pending_encounters

    labels = _treatment_labels(config)
    view: dict[str, Any] = {"rows": [], "total": None, "note": None}
    if given is not None:
        table = given
        level = float(given.attrs.get("level", level))
    else:
        rows = pending_encounters(encounters, target)
        if not rows.any():
            view["note"] = (
                f"{DASH}: no patient's latest encounter has {target} still empty, so no "
                "session is pending to forecast"
            )
            view["level"] = percent(level, 0)
            return pd.DataFrame(), view
        groups = encounters.loc[rows, "treatment"].astype("string").reset_index(drop=True)
        groups.name = "treatment"
        table = forecast_dropout(p_bad[rows], groups, level)
        total = forecast_dropout(p_bad[rows], np.full(int(rows.sum()), "all"), level)
        view["total"] = _forecast_row(total.reset_index().iloc[0], labels)
    view["rows"] = [_forecast_row(r, labels) for _, r in table.reset_index().iterrows()]
    view["level"] = percent(level, 0)
    view["by"] = table.index.name or "group"
    return table, view


def _forecast_row(row: pd.Series, labels: Mapping[str, str]) -> tuple[str, ...]:
    group = str(row.iloc[0])
    return (
        labels.get(group, group),
        count(row["n_encounters"]),
        number(row["expected"], 1),
        f"{count(row['interval_low'])} to {count(row['interval_high'])}",
        row["method"],
    )


# --------------------------------------------------------------------------- cross-treatment
def _cross_treatment_section(
    target: str, result: HeterogeneityResult | None, notes: Mapping[str, str], config: Config
) -> dict[str, Any]:
    from ..heterogeneity import minimum_detectable_deviation
    from ..heterogeneity.plot import forest_plot

    label = _outcome_label(config, target)
    if result is None:
        return {
            "target": target,
            "label": label,
            "failed": notes.get(f"heterogeneity:{target}", "not computed"),
        }
    method = result.method
    attributes = result.attributes
    detectable = {d["attribute"]: d for d in minimum_detectable_deviation(result, _POWER)}
    margin = method.margin
    rows = []
    pairs = detected_at_margin = 0
    for a in attributes:
        d = detectable[a.attribute]
        rows.append(
            {
                "verdict": a.verdict,
                "cells": (
                    a.label + ("" if a.higher_is_better else " (higher is worse)"),
                    a.verdict,
                    p_value(a.p_value),
                    p_value(a.p_adjusted),
                    number(a.equivalence.largest_abs_difference),
                    p_value(a.equivalence.p_value),
                    _ci(d["smallest"], d["largest"], 3),
                ),
            }
        )
        for r in d["by_treatment"]:
            pairs += 1
            detected_at_margin += bool(r["deviation"] <= margin)
    smallest = min((d["smallest"] for d in detectable.values()), default=math.nan)
    largest = max((d["largest"] for d in detectable.values()), default=math.nan)
    level = next((d["level"] for d in detectable.values()), None)
    excluded = {
        "no outcome": result.n_excluded_missing_outcome,
        "a missing rating": result.n_excluded_missing_rating,
        "a missing covariate": result.n_excluded_missing_covariate,
        "no cluster id": result.n_excluded_missing_cluster,
    }
    excluded_text = ", ".join(f"{count(v)} with {k}" for k, v in excluded.items() if v)
    adjustment = _ADJUSTMENT_NAMES[method.adjustment]
    covariates = ", ".join(method.covariates) or "no covariates"
    return {
        "target": target,
        "label": label,
        "failed": None,
        "n_patients": count(result.n_patients),
        "n_encounters": count(result.n_encounters),
        "n_clusters": count(result.n_clusters),
        "excluded": excluded_text,
        "method": (
            f"GEE logistic regression with one slope per attribute per treatment, "
            f"adjusted for treatment and {covariates}; "
            f"{method.working_correlation} working correlation; clusters: "
            f"{method.cluster}s; "
            f"{_COV_TYPE_NAMES[method.cov_type]} robust "
            f"covariance; {_TEST_NAMES[method.test]} test of "
            "equal slopes "
            f"({method.reference_distribution}); {adjustment} adjustment across "
            f"{len(attributes)} attributes at α = {method.alpha}; equivalence: "
            f"every between-treatment difference's 90% CI within ±{number(margin)} log-odds "
            f"per rating point (odds ratio ×/÷{number(method.margin_odds_ratio, 2)})."
        ),
        "columns": (
            "attribute",
            "verdict",
            "p (joint test)",
            f"{adjustment}-adjusted p",
            "largest |difference| (log-odds/point)",
            "TOST p",
            f"detectable deviation at {_POWER:.0%} power (log-odds/point)",
        ),
        "rows": rows,
        "sentences": [a.sentence for a in attributes if a.sentence],
        # the outcome in the report's config's words (the result's were its own config's)
        "forest": _figure_or_note(
            lambda: forest_plot(result.model_copy(update={"target_label": label})), "Forest plot"
        ),
        "power": (
            f"From this analysis's own standard errors: at the level "
            f"{number(level, 4)} that the {adjustment} adjustment asks of the first "
            f"rejection (α = {method.alpha} over {len(attributes)} attributes), the "
            f"joint Wald test would detect with {_POWER:.0%} power one treatment's slope "
            f"deviating from the others' by {number(smallest)} to {number(largest)} log-odds "
            f"per rating point (odds ratio ×{number(_exp(smallest), 2)} to "
            f"×{number(_exp(largest), 2)}), depending on the attribute and the treatment. "
            f"A deviation as large as the equivalence margin ({number(margin)}) is detected "
            f"with that power for {detected_at_margin} of {pairs} attribute–treatment pairs."
        ),
    }


def _exp(value: float) -> float:
    return math.exp(value) if is_number(value) else math.nan


def _power_section(power: PowerResult | PatientsForPowerResult, config: Config) -> dict[str, Any]:
    from ..heterogeneity import PatientsForPowerResult

    settings = power.settings
    labels = _treatment_labels(config)
    design = (
        f"{settings.deviation} extra log-odds per rating point of "
        f"{in_sentence(attribute_label(config, settings.attribute))} on "
        f"{in_sentence(outcome_label(config, settings.target))} in "
        f"{labels.get(settings.treatment, settings.treatment)}"
    )
    if isinstance(power, PatientsForPowerResult):
        points = [
            (
                count(p.n_patients),
                _share(p.power_differs),
                percent(p.false_flag_rate, 0),
                percent(p.power_equivalence, 0),
                count(p.failed),
            )
            for p in power.points
        ]
        return {"sentence": f"Simulated deviation: {design}. {power.sentence}", "points": points}
    return {
        "sentence": (
            f"Simulated deviation: {design}. In {count(power.succeeded)} simulated "
            f"studies of {count(power.n_patients)} patients "
            f"({count(power.failed)} failed to fit), the deviation was detected "
            f"(verdict differs) in {_share(power.power_differs)}; another quality was "
            f"wrongly flagged in {percent(power.false_flag_rate.value, 0)}; qualities "
            f"without a deviation were shown equivalent in "
            f"{percent(power.power_equivalence.value, 0)}."
        ),
        "points": [],
    }


def _share(share: Share) -> str:
    value = percent(share.value, 0)
    if value == DASH or not (is_number(share.ci_low) and is_number(share.ci_high)):
        return value
    return f"{value} (95% CI {percent(share.ci_low, 0)} to {percent(share.ci_high, 0)})"


# --------------------------------------------------------------------------- rendering
@cache
def _environment():
    import jinja2

    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("engagekit.report", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters["inline"] = lambda text: jinja2.utils.markupsafe.Markup(
        inline_html(str(text))
    )
    # a model card's blocks: "paragraph", "bullets" or "table"
    environment.filters["kind"] = lambda block: type(block).__name__.lower()
    return environment


def _render(context: dict[str, Any]) -> str:
    return _environment().get_template("report.html.j2").render(**context)


def _version(library: str) -> str:
    try:
        return version(library)
    except PackageNotFoundError:
        return DASH
