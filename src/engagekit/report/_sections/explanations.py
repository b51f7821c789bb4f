"""Section 4, explanations: each model's SHAP contributions, the qualities' importance
per treatment, and whether they rank alike in every treatment."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING

from ..._format import count, interval, number
from ..._labels import outcome_label
from .._document import Table
from ._common import Plot, feature_group_labels, treatment_labels

if TYPE_CHECKING:
    import pandas as pd

    from ...config import Config
    from .._compute import Explained

__all__ = ["ExplanationsView", "build"]

_METHODS = {
    "linear": "exact linear SHAP",
    "tree_path_dependent": "exact path-dependent TreeSHAP",
}
_AGREEMENT_COLUMNS = ("treatment", "compared with", "Kendall's tau", "95% CI", "replicates")


@dataclass(frozen=True)
class ExplanationsView:
    """What the explanations section says of one model.

    Attributes
    ----------
    target, label : str
    method : str
        How the contributions were computed, in words.
    n, base_value, gap : str
        Encounters explained, the base value (log-odds), and the largest gap between
        the summed contributions and the model's log-odds.
    shap, importance : Plot
    agreement : Table or None
        Kendall's tau per pair of treatments; None when ``agreement_note``.
    agreement_note : str or None
        Why there is no rank agreement.
    n_boot : str
        The rank agreement's bootstrap replicates.
    """

    target: str
    label: str
    method: str
    n: str
    base_value: str
    gap: str
    shap: Plot
    importance: Plot
    agreement: Table | None
    agreement_note: str | None
    n_boot: str


def build(
    target: str,
    explained: Explained,
    encounters: pd.DataFrame,
    config: Config,
    seed: int = 0,
) -> ExplanationsView:
    """The explanations section of the model of ``target``.

    Parameters
    ----------
    target : str
    explained : Explained
        The model's explanations, importance and rank agreement
        (:func:`engagekit.report._compute.explain_model`).
    encounters : pandas.DataFrame
        The encounters explained: their ratings colour the SHAP plot.
    config : Config
        The words for the attributes and treatments, and the rating scale.
    seed : int
        Seed of the SHAP plot's sample of encounters.

    Returns
    -------
    ExplanationsView
    """
    from .. import _figures as figures

    label = outcome_label(config, target)
    explanation = explained.explanation
    labels = feature_group_labels(config)
    treatments = treatment_labels(config)
    scale = (float(config.attributes.scale.min), float(config.attributes.scale.max))
    ratings = encounters[[a for a in config.attribute_names if a in encounters.columns]]
    agreement = tuple(
        (
            treatments.get(r["level_a"], r["level_a"]),
            treatments.get(r["level_b"], r["level_b"]),
            number(r["tau"], 2),
            interval(r["ci_low"], r["ci_high"], 2),
            count(r["n_boot"]),
        )
        for r in explained.rank_agreement
    )
    return ExplanationsView(
        target=target,
        label=label,
        method=_METHODS.get(explanation.method, explanation.method),
        n=count(len(explanation.values)),
        base_value=number(explanation.base_value),
        gap=f"{explained.gap:.1e}",
        shap=Plot(
            "SHAP summary",
            partial(
                figures.shap_summary_figure,
                explanation.grouped,
                ratings,
                labels,
                scale,
                seed=seed,
                title=f"SHAP contributions — {label}",
            ),
        ),
        importance=Plot(
            "Importance per treatment",
            partial(
                figures.importance_figure,
                explained.importance,
                labels,
                treatments,
                f"Importance per treatment — {label}",
            ),
        ),
        agreement=Table(_AGREEMENT_COLUMNS, agreement) if agreement else None,
        agreement_note=explained.rank_agreement_note,
        n_boot=count(explained.rank_agreement_boot),
    )
