"""Section 3, the cross-treatment analysis: per outcome, whether each quality matters
alike in every treatment, with the power of the test; and the power by simulation."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

from ..._format import count, interval, is_number, number, p_value, percent, with_ci
from ..._labels import attribute_label, in_sentence, outcome_label
from ...choices import Adjustment, CovarianceType, JointTestKind, MarginScale, MissingRatings
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
    CovarianceType.ROBUST: "plain (uncorrected)",
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
    effects : Table or None
        Each attribute's odds ratio per point and per SD and average marginal effect in
        each treatment, with 95% CIs.
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
    effects: Table | None = None


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
    other = next((a.other_analysis for a in attributes if a.other_analysis is not None), None)
    rows = tuple(
        VerdictRow(
            verdict=a.verdict,
            cells=(
                a.label + ("" if a.higher_is_better else " (higher is worse)"),
                a.verdict,
                ", ".join(d.treatment_label for d in a.deviations if d.deviates) or "–",
                p_value(a.p_value),
                p_value(a.p_adjusted),
                number(a.equivalence.largest_abs_difference),
                number(a.margin),
                p_value(a.equivalence.p_value),
                interval(detectable[a.attribute]["smallest"], detectable[a.attribute]["largest"]),
                *(() if other is None else (_other_verdict(a),)),
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
            "treatments that differ (closed tests)",
            "p (joint test)",
            f"{adjustment}-adjusted p",
            "largest |difference| (log-odds/point)",
            "margin (log-odds/point)",
            "TOST p",
            f"detectable deviation at {POWER:.0%} power (log-odds/point)",
            *(() if other is None else (f"verdict, {_MISSING_NAMES[other.missing]}",)),
        ),
        rows=rows,
        sentences=tuple(_sentences(attributes)),
        effects=_effects_table(attributes),
        # the outcome in the report's config's words (the result's were its own config's)
        forest=Plot(
            "Forest plot", partial(forest_plot, result.model_copy(update={"target_label": label}))
        ),
        power=_power_sentence(result, list(detectable.values())),
    )


_MISSING_NAMES = {
    MissingRatings.MI: "multiple imputation",
    MissingRatings.COMPLETE_CASE: "complete cases",
}


def _other_verdict(a: Any) -> str:
    other = a.other_analysis
    if other is None:
        return "–"
    labels = {r.treatment: r.treatment_label for r in a.by_treatment}
    named = f" ({', '.join(labels[t] for t in other.deviating)})" if other.deviating else ""
    return other.verdict + named


def _sentences(attributes: Sequence[Any]) -> list[str]:
    """Each attribute's verdict in words, and where the other analysis disagrees."""
    out = []
    for a in attributes:
        out.append(a.sentence)
        other = a.other_analysis
        if other is not None and not a.analyses_agree:
            out.append(
                f"With {_MISSING_NAMES[other.missing]} instead, {a.label}: "
                f"{_other_verdict(a)} (adjusted p = {p_value(other.p_adjusted)}). The two "
                "treatments of missing ratings disagree here: read this verdict with care."
            )
    return out


def _effects_table(attributes: Sequence[Any]) -> Table:
    rows = tuple(
        (
            a.label if k == 0 else "",
            r.treatment_label,
            f"{number(r.odds_ratio, 2)} ({interval(r.ci_low, r.ci_high, 2)})",
            f"{number(r.odds_ratio_per_sd, 2)} ({interval(r.ci_low_per_sd, r.ci_high_per_sd, 2)})",
            f"{number(r.ame, 3)} ({interval(r.ame_ci_low, r.ame_ci_high, 3)})",
        )
        for a in attributes
        for k, r in enumerate(a.by_treatment)
    )
    return Table(
        ("attribute", "treatment", "odds ratio per point", "odds ratio per SD", "AME per point"),
        rows,
        caption="Effects by treatment, with 95% CIs: odds ratios per rating point and per "
        "standard deviation of the rating (pooled within treatments), and the average "
        "marginal effect on the probability of the outcome per rating point",
    )


def _method_sentence(result: HeterogeneityResult) -> str:
    method = result.method
    covariates = ", ".join(method.covariates) or "no covariates"
    per = (
        "standard deviation of the rating (pooled within treatments)"
        if method.margin_per == MarginScale.SD
        else "rating point"
    )
    if method.imputations:
        missing = (
            f"{count(result.n_with_missing_rating)} encounters with a missing rating kept, "
            f"their missing ratings imputed {method.imputations} times by chained equations "
            "(each treatment on its own, from the outcome, the session, the other ratings "
            "and the previous session's) and the fits pooled by Rubin's rules, the joint "
            "tests by D1; "
        )
    elif result.n_excluded_missing_rating:
        missing = (
            f"{count(result.n_excluded_missing_rating)} encounters with a missing rating "
            "left out (complete cases); "
        )
    else:
        missing = ""
    return (
        f"GEE logistic regression with one slope per attribute per treatment, "
        f"adjusted for treatment and {covariates}; {missing}"
        f"{method.working_correlation} working correlation; clusters: {method.cluster}s; "
        f"{_COV_TYPE_NAMES[method.cov_type]} robust covariance; "
        f"{_TEST_NAMES[method.test]} test of equal slopes ({method.reference_distribution}); "
        f"{_ADJUSTMENT_NAMES[method.adjustment]} adjustment across "
        f"{len(result.attributes)} attributes at α = {method.alpha}; where a joint test "
        "rejects, each treatment's deviation from the others' mean is closed-tested, which "
        "names the treatments that differ with the family-wise error held at α; "
        f"equivalence: every between-treatment difference's 90% CI within "
        f"±{number(method.margin)} log-odds per {per} (odds ratio "
        f"×/÷{number(method.margin_odds_ratio, 2)})."
    )


def _power_sentence(result: HeterogeneityResult, detectable: list[dict]) -> str:
    method = result.method
    margins = {a.attribute: a.margin for a in result.attributes}
    pairs = [
        (r["deviation"], margins[d["attribute"]]) for d in detectable for r in d["by_treatment"]
    ]
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
        f"A deviation as large as the equivalence margin is detected with that power for "
        f"{sum(bool(d <= margin) for d, margin in pairs)} of {len(pairs)} "
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
