"""What the report computes before it writes a word: the first of its three steps.

Each function takes typed encounters, a config and typed results or models, and returns
typed findings: the cross-treatment analysis of an outcome, a model's explanations with
the importance and rank agreement derived from them, the share of encounters its flag
rule flags, and its forecast. Nothing here formats a number or draws: the section
modules (:mod:`engagekit.report._sections`) turn findings into what the page says, and
:mod:`engagekit.report._render` writes the page. What could not be computed is a
finding too, with the reason in its ``note``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from scipy.special import expit

from .._format import DASH
from ..errors import AnalysisError, ContractError

if TYPE_CHECKING:
    from ..config import Config
    from ..explain import Explanation
    from ..flags import AppliedFlagRule, FlagRule
    from ..heterogeneity import HeterogeneityResult
    from ..models import EngagementModel

__all__ = [
    "AnalysisFindings",
    "Explained",
    "FlagShares",
    "ForecastFindings",
    "ModelFindings",
    "cross_treatment_analysis",
    "dropout_forecast",
    "explain_model",
    "flag_shares",
    "model_findings",
    "risk_of_bad_outcome",
]


@dataclass(frozen=True)
class AnalysisFindings:
    """The cross-treatment analysis of one outcome, or why there is none.

    Attributes
    ----------
    target : str
    result : HeterogeneityResult or None
    note : str or None
        Why the analysis could not be done (``result`` is None).
    """

    target: str
    result: HeterogeneityResult | None
    note: str | None = None


@dataclass(frozen=True, eq=False)
class Explained:
    """A model's explanation of every encounter, and what the report derives from it.

    Attributes
    ----------
    explanation : Explanation
    gap : float
        Largest gap between the summed contributions and the model's log-odds.
    importance : dict
        :func:`~engagekit.explain.attribute_importance` by treatment.
    rank_agreement : list of dict
        :func:`~engagekit.explain.rank_agreement` by treatment (empty when ``note``).
    rank_agreement_boot : int
        Patient-bootstrap replicates asked of the rank agreement.
    rank_agreement_note : str or None
        Why there is no rank agreement.
    risk : numpy.ndarray
        Each encounter's risk of the bad outcome, as scoring computes it.
    """

    explanation: Explanation
    gap: float
    importance: dict[str, Any]
    rank_agreement: list[dict[str, Any]]
    rank_agreement_boot: int
    rank_agreement_note: str | None
    risk: np.ndarray


@dataclass(frozen=True)
class FlagShares:
    """A flag rule applied to the report's encounters, and what it flagged.

    Attributes
    ----------
    applied : AppliedFlagRule or None
        None when the rule cannot be applied to these encounters (``note`` says why).
    n_high, n_high_or_medium : int
        Encounters flagged ``high``, and ``high`` or ``medium``.
    note : str or None
    """

    applied: AppliedFlagRule | None
    n_high: int = 0
    n_high_or_medium: int = 0
    note: str | None = None


@dataclass(frozen=True, eq=False)
class ForecastFindings:
    """A model's forecast per treatment, given or computed on the pending encounters.

    Attributes
    ----------
    table : pandas.DataFrame
        :func:`~engagekit.forecast.forecast_dropout` per group (empty when ``note``).
    total : pandas.DataFrame or None
        The same over all pending encounters (computed forecasts only).
    level : float
        Coverage of the intervals.
    note : str or None
        Why there is nothing to forecast.
    """

    table: pd.DataFrame
    total: pd.DataFrame | None
    level: float
    note: str | None = None


@dataclass(frozen=True, eq=False)
class ModelFindings:
    """Everything computed for one model: its explanations, flag shares and forecast.

    Attributes
    ----------
    target : str
    explained : Explained
    flag_shares : FlagShares
    forecast : ForecastFindings
    notes : dict of str to str
        What could not be computed and why, by ``"what:target"``.
    """

    target: str
    explained: Explained
    flag_shares: FlagShares
    forecast: ForecastFindings

    @property
    def notes(self) -> dict[str, str]:
        """What could not be computed and why, by ``"what:target"``."""
        notes = {
            f"rank_agreement:{self.target}": self.explained.rank_agreement_note,
            f"forecast:{self.target}": self.forecast.note,
        }
        return {k: v for k, v in notes.items() if v}


def model_findings(
    model: EngagementModel,
    flag_rule: FlagRule,
    encounters: pd.DataFrame,
    *,
    forecast: pd.DataFrame | None = None,
    forecast_level: float = 0.9,
    rank_agreement_boot: int = 500,
    seed: int = 0,
    n_jobs: int = 1,
) -> ModelFindings:
    """Everything the report computes for one model: :func:`explain_model`, then
    :func:`flag_shares` and the :func:`dropout_forecast` (``forecast`` when given) from the
    explained risks."""
    explained = explain_model(
        model, encounters, rank_agreement_boot=rank_agreement_boot, seed=seed, n_jobs=n_jobs
    )
    return ModelFindings(
        target=model.target,
        explained=explained,
        flag_shares=flag_shares(flag_rule, explained.risk, encounters),
        forecast=dropout_forecast(
            forecast, encounters, model.target, explained.risk, forecast_level
        ),
    )


def cross_treatment_analysis(
    encounters: pd.DataFrame, target: str, config: Config
) -> AnalysisFindings:
    """:func:`~engagekit.heterogeneity.heterogeneity_analysis` of ``target`` with the
    config's settings, or the reason it failed."""
    from ..heterogeneity import heterogeneity_analysis

    try:
        # a fit that overflows on the way ends in an AnalysisError of its own; numpy's
        # overflow warnings on the way say nothing more
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            return AnalysisFindings(target, heterogeneity_analysis(encounters, target, config))
    except (AnalysisError, ContractError) as e:
        return AnalysisFindings(target, None, str(e))


def risk_of_bad_outcome(explanation: Explanation) -> np.ndarray:
    """Each encounter's risk of the bad outcome from its explained log-odds, as
    :func:`engagekit.scoring.score_encounters` computes it."""
    return 1.0 - expit(explanation.logit)


def explain_model(
    model: EngagementModel,
    encounters: pd.DataFrame,
    *,
    rank_agreement_boot: int,
    seed: int,
    n_jobs: int,
) -> Explained:
    """Explain every encounter, and the attributes' importance per treatment and its
    rank agreement between treatments (with ``rank_agreement_boot`` patient-bootstrap
    replicates, seeded by ``seed``)."""
    from ..explain import attribute_importance, explain_predictions, rank_agreement

    explanation = explain_predictions(model, encounters, n_jobs=n_jobs)
    note = None
    try:
        agreement = rank_agreement(
            explanation, encounters, n_boot=rank_agreement_boot, seed=seed, by="treatment"
        )
    except (ValueError, ContractError) as e:
        agreement, note = [], str(e)
    return Explained(
        explanation=explanation,
        gap=explanation.check_local_accuracy(),
        importance=attribute_importance(explanation, encounters, by="treatment"),
        rank_agreement=agreement,
        rank_agreement_boot=rank_agreement_boot,
        rank_agreement_note=note,
        risk=risk_of_bad_outcome(explanation),
    )


def flag_shares(rule: FlagRule, risk: np.ndarray, encounters: pd.DataFrame) -> FlagShares:
    """The rule applied to the report's encounters as scoring applies it (thresholds set
    again on their risks for a capacity rule), and how many it flags at each level."""
    from ..flags import flag_levels
    from ..scoring import encounter_flag_thresholds

    try:
        applied = encounter_flag_thresholds(rule, risk, encounters)
    except ValueError as e:  # also a ContractError: no practitioner_id for per_practitioner
        return FlagShares(None, note=f"the rule cannot be applied to these encounters: {e}")
    levels = flag_levels(risk, applied)
    return FlagShares(applied, int(np.sum(levels == "high")), int(np.sum(levels != "low")))


def dropout_forecast(
    given: pd.DataFrame | None,
    encounters: pd.DataFrame,
    target: str,
    risk: np.ndarray,
    level: float,
) -> ForecastFindings:
    """The forecast table ``given``, or the forecast per treatment (and over all) of each
    patient's latest encounter whose ``target`` is still empty, from ``risk``."""
    from ..forecast import forecast_dropout, pending_encounters

    if given is not None:
        return ForecastFindings(given, None, float(given.attrs.get("level", level)))
    rows = pending_encounters(encounters, target)
    if not rows.any():
        note = (
            f"{DASH}: no patient's latest encounter has {target} still empty, so no "
            "session is pending to forecast"
        )
        return ForecastFindings(pd.DataFrame(), None, level, note)
    groups = encounters.loc[rows, "treatment"].astype("string").reset_index(drop=True)
    groups.name = "treatment"
    return ForecastFindings(
        forecast_dropout(risk[rows], groups, level),
        forecast_dropout(risk[rows], np.full(int(rows.sum()), "all"), level),
        level,
    )
