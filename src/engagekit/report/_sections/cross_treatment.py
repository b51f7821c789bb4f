"""Section 3, the cross-treatment analysis: per outcome, whether each quality matters
alike in every treatment, with the power of the test; and the power by simulation."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING

from ..._format import count, interval, is_number, number, p_value, percent, with_ci
from ..._labels import attribute_label, in_sentence, outcome_label
from ...choices import Adjustment, CovarianceType, JointTestKind
from .._document import Table
from ._common import Plot, treatment_labels

if TYPE_CHECKING:
    from ...config import Config
    from ...heterogeneity import HeterogeneityResult, PatientsForPowerResult, PowerResult, Share

__all__ = [
    "AnalysisView",
    "CrossTreatmentView",
    "PowerView",
    "VerdictRow",
    "analysis_view",
    "build",
    "power_view",
]

#: The power at which the section states the smallest deviation the test detects.
POWER = 0.8
# the names the page gives each choice (StrEnum members look up by their values too)
_COV_TYPE_NAMES = {
    CovarianceType.KAUERMANN_CARROLL: "Kauermann–Carroll",
    CovarianceType.BIAS_REDUCED: "Mancl–DeRouen",
}
_ADJUSTMENT_NAMES = {Adjustment.HOLM: "Holm", Adjustment.FDR_BH: "Benjamini–Hochberg"}
_TEST_NAMES = {JointTestKind.WALD: "Wald", JointTestKind.SCORE: "score"}
_POWER_COLUMNS = (
    "patients",
    "power to detect",
    "another quality wrongly flagged",
    "others shown equivalent",
    "failed fits",
)


@dataclass(frozen=True)
class VerdictRow:
    """A row of the table of verdicts; ``verdict`` styles it."""

    verdict: str
    cells: tuple[str, ...]


@dataclass(frozen=True)
class AnalysisView:
    """What the section says of one outcome's analysis, or why there is none.

    Attributes
    ----------
    target, label : str
    failed : str or None
        Why the analysis could not be done; every other field is then empty.
    n_patients, n_encounters, n_clusters : str
    excluded : str
        Encounters left out, and why ("" when none).
    method : str
        The model, test, adjustment and equivalence margin, in one paragraph.
    columns : tuple of str
    rows : tuple of VerdictRow
        One per attribute.
    sentences : tuple of str
        Each attribute's verdict in words.
    forest : Plot or None
    power : str
        The power of the joint test, from the analysis's own standard errors.
    """

    target: str
    label: str
    failed: str | None = None
    n_patients: str = ""
    n_encounters: str = ""
    n_clusters: str = ""
    excluded: str = ""
    method: str = ""
    columns: tuple[str, ...] = ()
    rows: tuple[VerdictRow, ...] = ()
    sentences: tuple[str, ...] = ()
    forest: Plot | None = None
    power: str = ""


@dataclass(frozen=True)
class PowerView:
    """The power by simulation: a sentence, and a table of sample sizes if searched."""

    sentence: str
    points: Table | None = None


@dataclass(frozen=True)
class CrossTreatmentView:
    """The cross-treatment section: one analysis per model's outcome, and the power."""

    analyses: tuple[AnalysisView, ...]
    power: PowerView | None = None


def build(
    targets: Sequence[str],
    analyses: Mapping[str, HeterogeneityResult],
    failures: Mapping[str, str],
    config: Config,
    power: PowerResult | PatientsForPowerResult | None = None,
) -> CrossTreatmentView:
    """The cross-treatment section.

    Parameters
    ----------
    targets : sequence of str
        The models' outcomes, in the page's order.
    analyses : mapping of str to HeterogeneityResult
        The analysis of each outcome that has one.
    failures : mapping of str to str
        Why the analysis of an outcome without one could not be done.
    config : Config
    power : PowerResult or PatientsForPowerResult, optional

    Returns
    -------
    CrossTreatmentView
    """
    return CrossTreatmentView(
        analyses=tuple(
            analysis_view(t, analyses.get(t), config, failures.get(t, "not computed"))
            for t in targets
        ),
        power=power_view(power, config) if power is not None else None,
    )


def analysis_view(
    target: str,
    result: HeterogeneityResult | None,
    config: Config,
    failed: str = "not computed",
) -> AnalysisView:
    """What the section says of the analysis of ``target``, or of its absence
    (``failed`` says why)."""
    from ...heterogeneity import minimum_detectable_deviation
    from ...heterogeneity._plot import forest_plot

    label = outcome_label(config, target)
    if result is None:
        return AnalysisView(target, label, failed=failed)
    method = result.method
    attributes = result.attributes
    detectable = {d["attribute"]: d for d in minimum_detectable_deviation(result, POWER)}
    adjustment = _ADJUSTMENT_NAMES[method.adjustment]
    rows = tuple(
        VerdictRow(
            verdict=a.verdict,
            cells=(
                a.label + ("" if a.higher_is_better else " (higher is worse)"),
                a.verdict,
                p_value(a.p_value),
                p_value(a.p_adjusted),
                number(a.equivalence.largest_abs_difference),
                p_value(a.equivalence.p_value),
                interval(detectable[a.attribute]["smallest"], detectable[a.attribute]["largest"]),
            ),
        )
        for a in attributes
    )
    excluded = {
        "no outcome": result.n_excluded_missing_outcome,
        "a missing rating": result.n_excluded_missing_rating,
        "a missing covariate": result.n_excluded_missing_covariate,
        "no cluster id": result.n_excluded_missing_cluster,
    }
    return AnalysisView(
        target=target,
        label=label,
        n_patients=count(result.n_patients),
        n_encounters=count(result.n_encounters),
        n_clusters=count(result.n_clusters),
        excluded=", ".join(f"{count(v)} with {k}" for k, v in excluded.items() if v),
        method=_method_sentence(result),
        columns=(
            "attribute",
            "verdict",
            "p (joint test)",
            f"{adjustment}-adjusted p",
            "largest |difference| (log-odds/point)",
            "TOST p",
            f"detectable deviation at {POWER:.0%} power (log-odds/point)",
        ),
        rows=rows,
        sentences=tuple(a.sentence for a in attributes if a.sentence),
        # the outcome in the report's config's words (the result's were its own config's)
        forest=Plot(
            "Forest plot", partial(forest_plot, result.model_copy(update={"target_label": label}))
        ),
        power=_power_sentence(result, list(detectable.values())),
    )


def _method_sentence(result: HeterogeneityResult) -> str:
    method = result.method
    covariates = ", ".join(method.covariates) or "no covariates"
    return (
        f"GEE logistic regression with one slope per attribute per treatment, "
        f"adjusted for treatment and {covariates}; "
        f"{method.working_correlation} working correlation; clusters: {method.cluster}s; "
        f"{_COV_TYPE_NAMES[method.cov_type]} robust covariance; "
        f"{_TEST_NAMES[method.test]} test of equal slopes ({method.reference_distribution}); "
        f"{_ADJUSTMENT_NAMES[method.adjustment]} adjustment across "
        f"{len(result.attributes)} attributes at α = {method.alpha}; equivalence: "
        f"every between-treatment difference's 90% CI within ±{number(method.margin)} "
        f"log-odds per rating point (odds ratio ×/÷{number(method.margin_odds_ratio, 2)})."
    )


def _power_sentence(result: HeterogeneityResult, detectable: list[dict]) -> str:
    method = result.method
    margin = method.margin
    pairs = [r["deviation"] for d in detectable for r in d["by_treatment"]]
    smallest = min((d["smallest"] for d in detectable), default=math.nan)
    largest = max((d["largest"] for d in detectable), default=math.nan)
    level = next((d["level"] for d in detectable), None)
    adjustment = _ADJUSTMENT_NAMES[method.adjustment]
    return (
        f"From this analysis's own standard errors: at the level "
        f"{number(level, 4)} that the {adjustment} adjustment asks of the first "
        f"rejection (α = {method.alpha} over {len(result.attributes)} attributes), the "
        f"joint Wald test would detect with {POWER:.0%} power one treatment's slope "
        f"deviating from the others' by {number(smallest)} to {number(largest)} log-odds "
        f"per rating point (odds ratio ×{number(_exp(smallest), 2)} to "
        f"×{number(_exp(largest), 2)}), depending on the attribute and the treatment. "
        f"A deviation as large as the equivalence margin ({number(margin)}) is detected "
        f"with that power for {sum(bool(d <= margin) for d in pairs)} of {len(pairs)} "
        "attribute–treatment pairs."
    )


def _exp(value: float) -> float:
    return math.exp(value) if is_number(value) else math.nan


def power_view(power: PowerResult | PatientsForPowerResult, config: Config) -> PowerView:
    """The power by simulation of a :func:`~engagekit.heterogeneity.estimate_power` or
    :func:`~engagekit.heterogeneity.patients_for_power` result."""
    from ...heterogeneity import PatientsForPowerResult

    settings = power.settings
    labels = treatment_labels(config)
    design = (
        f"Simulated deviation: {settings.deviation} extra log-odds per rating point of "
        f"{in_sentence(attribute_label(config, settings.attribute))} on "
        f"{in_sentence(outcome_label(config, settings.target))} in "
        f"{labels.get(settings.treatment, settings.treatment)}."
    )
    if isinstance(power, PatientsForPowerResult):
        points = tuple(
            (
                count(p.n_patients),
                _share(p.power_differs),
                percent(p.false_flag_rate, 0),
                percent(p.power_equivalence, 0),
                count(p.failed),
            )
            for p in power.points
        )
        return PowerView(f"{design} {power.sentence}", Table(_POWER_COLUMNS, points))
    return PowerView(
        f"{design} In {count(power.succeeded)} simulated studies of "
        f"{count(power.n_patients)} patients ({count(power.failed)} failed to fit), the "
        f"deviation was detected (verdict differs) in {_share(power.power_differs)}; "
        f"another quality was wrongly flagged in {percent(power.false_flag_rate.value, 0)}; "
        "qualities without a deviation were shown equivalent in "
        f"{percent(power.power_equivalence.value, 0)}."
    )


def _share(share: Share) -> str:
    return with_ci(share.value, share.ci_low, share.ci_high, fmt=lambda v: percent(v, 0))
