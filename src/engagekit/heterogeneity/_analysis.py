"""Does each practitioner quality's effect differ by treatment? The cross-treatment test.

The model is a GEE logistic regression of the outcome on the treatment, the configured
covariates and, for every attribute, one slope per treatment (the attribute's rating,
centred at the middle of the scale, times the treatment's indicator). That is the
attribute × treatment interaction model written so that each treatment's effect is one
coefficient. Clusters are patients (or practitioners); the working correlation is
independence by default; the covariance is a small-sample corrected sandwich:
Kauermann–Carroll by default, Mancl–DeRouen (``bias_reduced``) as an option.

For each attribute:

- **difference test**: the joint test that its slopes are equal in every treatment
  (K - 1 degrees of freedom): a Wald test with the corrected covariance, referred to a
  chi-square distribution, or the GEE score test. The validity study in ``benchmarks/``
  shows why Kauermann–Carroll is the default: with 120 patients and the default
  48-coefficient model the plain sandwich rejects a true null about 17% of the time at a
  nominal 5%, Mancl–DeRouen under 1%, Kauermann–Carroll close to 5%;
- p-values adjusted across attributes (Holm by default, Benjamini–Hochberg optional);
- **equivalence test** (TOST as an intersection–union test): the slopes are equivalent
  when the 90% CI of every between-treatment difference lies inside ±margin;
- the **verdict**: ``differs`` when the adjusted test rejects and equivalence is not
  shown, ``equivalent`` when it is shown (a difference smaller than the margin, however
  significant, does not matter by the user's own definition), ``inconclusive`` otherwise;
- per treatment, the odds ratio per rating point with its 95% CI and the average
  marginal effect on the probability scale (a difference in log-odds is not one in
  probabilities), with a delta-method 95% CI.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from itertools import combinations
from typing import Annotated, Any, ClassVar, Literal

import numpy as np
import pandas as pd
from pydantic import Field, ValidationError
from scipy import stats
from scipy.special import expit
from statsmodels.stats.multitest import multipletests
from threadpoolctl import threadpool_limits

from .._fingerprint import data_fingerprint
from .._labels import in_sentence, outcome_label
from .._pydantic_errors import field_problems
from .._results import Choice, Record, Result
from .._versions import library_versions
from ..choices import (
    Adjustment,
    Cluster,
    CovarianceType,
    JointTestKind,
    MarginScale,
    MissingRatings,
    WorkingCorrelation,
)
from ..config import Config, HeterogeneitySettings, Margin, load_config
from ..errors import AnalysisError, ArgumentError, ContractError
from ._closed import SubsetTest, deviations, wald_subset_test
from ._gee import GeeFit, fit_gee
from ._impute import impute_ratings
from ._pool import d1_test, rubin_pool

__all__ = [
    "AnalysisMethod",
    "AttributeResult",
    "Contrast",
    "Equivalence",
    "HeterogeneityResult",
    "JointTest",
    "OtherAnalysis",
    "TreatmentDeviation",
    "TreatmentEffect",
    "analysis_settings",
    "heterogeneity_analysis",
    "slope_name",
]

_CLUSTER_COLUMNS = {Cluster.PATIENT: "patient_id", Cluster.PRACTITIONER: "practitioner_id"}
#: Libraries whose versions an analysis records.
_LIBRARIES = ("engagekit", "statsmodels", "numpy")


def slope_name(attribute: str, treatment: str) -> str:
    """Name of the design column holding ``attribute``'s slope in ``treatment``."""
    return f"{attribute}@{treatment}"


# --------------------------------------------------------------------------- the result
Count = Annotated[int, Field(ge=0)]
Verdict = Literal["differs", "equivalent", "inconclusive"]


class TreatmentEffect(Record):
    """An attribute's effect on the outcome in one treatment.

    Attributes
    ----------
    treatment, treatment_label : str
        The treatment's name and the config's label of it.
    log_odds, se : float
        The slope: log-odds per rating point (per point higher, where higher is worse),
        and its robust standard error.
    odds_ratio, ci_low, ci_high : float
        ``exp(log_odds)`` with its 95% CI.
    n_encounters : int
        Analysed encounters of the treatment.
    ame, ame_ci_low, ame_ci_high : float
        Average marginal effect on the probability per rating point, with its
        delta-method 95% CI.
    log_odds_per_sd, odds_ratio_per_sd, ci_low_per_sd, ci_high_per_sd : float
        The same effect per standard deviation of the rating (pooled within
        treatments): comparable across instruments.
    df : float or None
        Under multiple imputation, the slope's degrees of freedom (Barnard & Rubin), whose
        t distribution gives the CIs; None for a complete-data analysis (normal CIs).
    fraction_missing_information : float or None
        Under multiple imputation, the share of the slope's information lost to the
        missing ratings.
    """

    treatment: str
    treatment_label: str
    log_odds: float
    se: float
    odds_ratio: float
    ci_low: float
    ci_high: float
    n_encounters: Count
    ame: float
    ame_ci_low: float
    ame_ci_high: float
    log_odds_per_sd: float
    odds_ratio_per_sd: float
    ci_low_per_sd: float
    ci_high_per_sd: float
    df: float | None = None
    fraction_missing_information: float | None = None


class TreatmentDeviation(Record):
    """How far one treatment's effect of an attribute lies from the others' mean.

    Attributes
    ----------
    treatment, treatment_label : str
    deviation : float
        The treatment's slope minus the mean of the other treatments' slopes (log-odds
        per rating point), with its 95% CI.
    ci_low, ci_high : float
    p_value : float
        The test of this treatment's deviation alone.
    p_closed : float
        Its closed-testing adjusted p-value: the largest p-value of every intersection
        hypothesis containing it, which keeps the family-wise error rate within the
        attribute at alpha.
    deviates : bool
        Named as differing: the attribute's adjusted joint test rejects and ``p_closed``
        is below alpha.
    """

    treatment: str
    treatment_label: str
    deviation: float
    ci_low: float
    ci_high: float
    p_value: float
    p_closed: float
    deviates: bool


class OtherAnalysis(Record):
    """An attribute's result under the other treatment of missing ratings (complete
    cases when the result is multiply imputed, and the reverse): the sensitivity check."""

    missing: Choice[MissingRatings]
    p_value: float
    p_adjusted: float
    verdict: Verdict
    deviating: list[str]


class Contrast(Record):
    """The difference between two treatments' slopes, with its 90% CI and TOST.

    Attributes
    ----------
    treatment_a, treatment_b : str
    difference : float
        Slope in ``treatment_b`` minus slope in ``treatment_a``.
    ci_low, ci_high : float
        Its 90% CI (the two one-sided tests at 5%).
    tost_p_value : float
        The larger p-value of the two one-sided tests against ±margin.
    inside_margin : bool
        Whether the CI lies inside ±margin.
    """

    treatment_a: str
    treatment_b: str
    difference: float
    ci_low: float
    ci_high: float
    tost_p_value: float
    inside_margin: bool


class JointTest(Record):
    """The joint test that an attribute's slopes are equal in every treatment."""

    kind: Choice[JointTestKind]
    statistic: float
    df: list[float]
    p_value: float
    reference_distribution: str = ""


class Equivalence(Record):
    """The equivalence test: every between-treatment difference inside ±margin."""

    equivalent: bool
    p_value: float
    largest_abs_difference: float


class AttributeResult(Record):
    """The cross-treatment test of one attribute.

    Attributes
    ----------
    attribute, label : str
    higher_is_better : bool
        Where false, the odds ratios are per point higher, so an effect in the expected
        direction is an odds ratio below 1.
    test : JointTest
    p_value, p_adjusted : float
        The joint test's p-value, and adjusted across attributes.
    common_log_odds : float
        The mean of the treatments' slopes (the pooled effect of the forest plot).
    by_treatment : list of TreatmentEffect
    contrasts : list of Contrast
        Every pair of treatments, in the order of :attr:`by_treatment`.
    equivalence : Equivalence
    verdict : {"differs", "equivalent", "inconclusive"}
    sentence : str
        The verdict in the config's words.
    rating_sd : float
        The rating's standard deviation, pooled within treatments (observed ratings).
    margin, margin_per_sd : float
        The equivalence margin in log-odds per rating point, and per SD.
    deviations : list of TreatmentDeviation
        Each treatment's deviation from the others, closed-tested.
    deviating : list of str
        The treatments named as differing (empty unless the verdict is ``differs``),
        the largest deviation first.
    rest_equal_p : float or None
        Where two or more treatments are named: the p-value (not adjusted) of equal
        slopes in every treatment but the first named. One treatment apart moves every
        other treatment's deviation from the mean of the rest by ``-d / (K - 1)``, which
        a large study detects; a large p-value here says the other names may be that
        echo rather than treatments that differ in their own right. None otherwise.
    fraction_missing_information : float or None
        Under multiple imputation, the largest share of information lost to the missing
        ratings among the attribute's slopes.
    other_analysis : OtherAnalysis or None
        The verdict under the other treatment of missing ratings; None when no rating
        was missing (the two are then the same analysis).
    """

    attribute: str
    label: str
    higher_is_better: bool
    test: JointTest
    p_value: float
    common_log_odds: float
    by_treatment: list[TreatmentEffect]
    contrasts: list[Contrast]
    equivalence: Equivalence
    p_adjusted: float
    verdict: Verdict
    sentence: str
    rating_sd: float
    margin: float
    margin_per_sd: float
    deviations: list[TreatmentDeviation]
    deviating: list[str]
    rest_equal_p: float | None = None
    fraction_missing_information: float | None = None
    other_analysis: OtherAnalysis | None = None

    @property
    def analyses_agree(self) -> bool:
        """Whether the other treatment of missing ratings gives the same verdict (true
        when there is no other)."""
        other = self.other_analysis
        return other is None or (other.verdict, other.deviating) == (self.verdict, self.deviating)


class AnalysisMethod(Record):
    """How the analysis was done: the model, the settings, versions and the data's hash."""

    model: str
    terms: list[str]
    rating_centre: float
    covariates: list[str]
    covariates_left_out: list[str]
    cluster: Choice[Cluster]
    working_correlation: Choice[WorkingCorrelation]
    working_correlation_estimate: float | None
    cov_type: Choice[CovarianceType]
    test: Choice[JointTestKind]
    reference_distribution: str
    adjustment: Choice[Adjustment]
    alpha: float
    margin: float
    margin_per: Choice[MarginScale]
    margin_odds_ratio: float
    equivalence: str
    missing: Choice[MissingRatings]
    imputations: int | None
    imputation_seeds: list[int]
    converged: bool
    iterations: int
    notes: list[str]
    versions: dict[str, str]
    data_sha256: str


class HeterogeneityResult(Result):
    """The cross-treatment analysis of one outcome: :func:`heterogeneity_analysis`.

    Attributes
    ----------
    target, target_label : str
        The outcome and the config's label of it.
    n_encounters, n_patients, n_clusters : int
        Analysed encounters, their patients, and the clusters of the robust covariance.
    n_excluded_missing_outcome, n_excluded_missing_rating, n_excluded_missing_covariate, \
n_excluded_missing_cluster : int
        Encounters left out, by the first reason that applies.
    n_with_missing_rating : int
        Analysable encounters with at least one rating missing: left out of a
        complete-case analysis, imputed under multiple imputation.
    treatments : list of str
        The treatments compared, in the config's order.
    reference_treatment : str
    method : AnalysisMethod
    attributes : list of AttributeResult
        One per attribute, in the config's order.

    Examples
    --------
    >>> from engagekit import simulate_encounters
    >>> result = heterogeneity_analysis(simulate_encounters(300, seed=3).encounters, "adherent")
    >>> result.attributes[0].attribute, result.attributes[0].verdict in ("differs",
    ...     "equivalent", "inconclusive")
    ('approachability', True)
    >>> HeterogeneityResult.from_dict(result.to_dict()) == result
    True
    >>> HeterogeneityResult.from_dict({**result.to_dict(), "format_version": 0})
    Traceback (most recent call last):
    ...
    engagekit.errors.ResultFormatError: a heterogeneity result is not valid: its 'format_version' is 0; ...
    """  # noqa: E501

    _what: ClassVar[str] = "a heterogeneity result"
    #: 2: margins per SD, multiple imputation, closed-tested deviations
    FORMAT_VERSION: ClassVar[int] = 2

    target: str
    target_label: str
    n_encounters: Count
    n_patients: Count
    n_clusters: Count
    n_excluded_missing_outcome: Count
    n_excluded_missing_rating: Count
    n_excluded_missing_covariate: Count
    n_excluded_missing_cluster: Count
    n_with_missing_rating: Count
    treatments: list[str]
    reference_treatment: str
    method: AnalysisMethod
    attributes: list[AttributeResult]

    @property
    def n_excluded(self) -> int:
        """Encounters left out for any reason."""
        return (
            self.n_excluded_missing_outcome
            + self.n_excluded_missing_rating
            + self.n_excluded_missing_covariate
            + self.n_excluded_missing_cluster
        )


# --------------------------------------------------------------------------- data
def _analysis_rows(
    encounters: pd.DataFrame, target: str, config: Config, cluster_column: str
) -> tuple[pd.DataFrame, dict[str, int]]:
    """The encounters the model can use, a rating or more possibly missing, and how many
    rows each reason left out (a missing rating is counted, not left out, here)."""
    needed = ["treatment", cluster_column, target, *config.attribute_names, *config.covariates]
    absent = [c for c in needed if c not in encounters.columns]
    if absent:
        raise ContractError(
            f"the heterogeneity analysis needs the column(s) {absent}, which the table lacks"
        )
    outcome = encounters[target].notna()
    rated = encounters[config.attribute_names].notna().all(axis=1)
    covariates = encounters[config.covariates].notna().all(axis=1)
    cluster = encounters[cluster_column].notna()
    keep = outcome & covariates & cluster
    counts = {
        "n_excluded_missing_outcome": int((~outcome).sum()),
        "n_excluded_missing_covariate": int((outcome & ~covariates).sum()),
        "n_excluded_missing_cluster": int((outcome & covariates & ~cluster).sum()),
        "n_with_missing_rating": int((keep & ~rated).sum()),
    }
    return encounters[keep.to_numpy()].reset_index(drop=True), counts


def _pooled_sd(rows: pd.DataFrame, attribute: str) -> float:
    """The rating's standard deviation within treatments, pooled (observed ratings)."""
    observed = rows[["treatment", attribute]].dropna()
    groups = observed.groupby("treatment", observed=True)[attribute]
    squares = float((observed[attribute] - groups.transform("mean")).pow(2).sum())
    dof = len(observed) - groups.ngroups
    sd = math.sqrt(squares / dof) if dof > 0 else float("nan")
    if not (math.isfinite(sd) and sd > 0):
        raise AnalysisError(
            f"the ratings of {attribute} do not vary within treatments, so its effect "
            "cannot be estimated"
        )
    return sd


def _design(rows: pd.DataFrame, config: Config, treatments: list[str]) -> pd.DataFrame:
    """Constant, treatment and covariate indicators, and one slope per attribute per
    treatment (ratings centred at the middle of the scale)."""
    scale = config.attributes.scale
    centre = (scale.min + scale.max) / 2
    columns: dict[str, np.ndarray] = {"const": np.ones(len(rows))}
    treatment = rows["treatment"].astype(str).to_numpy()
    indicator = {t: (treatment == t).astype(float) for t in treatments}
    for t in treatments[1:]:
        columns[f"treatment={t}"] = indicator[t]
    for covariate in config.covariates:
        values = rows[covariate].astype(str).to_numpy()
        for level in sorted(set(values))[1:]:
            columns[f"{covariate}={level}"] = (values == level).astype(float)
    for attribute in config.attribute_names:
        centred = rows[attribute].to_numpy(dtype=float) - centre
        for t in treatments:
            columns[slope_name(attribute, t)] = centred * indicator[t]
    return pd.DataFrame(columns)


def _check_estimable(rows: pd.DataFrame, target: str, treatments: list[str]) -> None:
    y = rows[target].to_numpy(dtype=float)
    treatment = rows["treatment"].astype(str).to_numpy()
    for t in treatments:
        values = np.unique(y[treatment == t])
        if len(values) < 2:
            raise AnalysisError(
                f"every analysed encounter in treatment {t!r} has {target} = "
                f"{int(values[0])}, so its effects cannot be estimated; leave that "
                "treatment out of the data or the config"
            )


# A slope this steep (an odds ratio over 20,000 per rating point) only comes from
# (quasi-)separation: some treatment's outcome is predicted perfectly by a rating, and the
# estimate runs off towards infinity while the fit still "converges".
_MAX_ABS_SLOPE = 10.0


def _check_separation(fit: GeeFit, treatments: list[str]) -> None:
    slopes = fit.params[[name for name in fit.params.index if "@" in name]]
    steep = slopes[slopes.abs() > _MAX_ABS_SLOPE]
    if len(steep):
        name = steep.index[0]
        attribute, treatment = name.split("@", 1)
        raise AnalysisError(
            f"the effect of {attribute} in {treatment} is estimated at {steep.iloc[0]:+.1f} "
            "log-odds per rating point: that treatment's outcomes are (almost) perfectly "
            "separated by the ratings, so its effects cannot be estimated; analyse more "
            "patients or leave that treatment out"
        )


# --------------------------------------------------------------------------- tests
def _contrast_matrix(k: int) -> np.ndarray:
    """Each slope but the first minus the first: ``k - 1`` rows, "all slopes equal"."""
    return np.hstack([-np.ones((k - 1, 1)), np.eye(k - 1)])


def _wald(estimate: np.ndarray, cov: np.ndarray, R: np.ndarray) -> JointTest:
    difference = R @ estimate
    statistic = float(difference @ np.linalg.solve(R @ cov @ R.T, difference))
    q = int(R.shape[0])
    p_value = float(stats.chi2.sf(statistic, q))
    return JointTest(
        kind=JointTestKind.WALD,
        statistic=statistic,
        df=[q],
        p_value=p_value,
        reference_distribution=f"chi-square({q})",
    )


def _d1(estimates: list[np.ndarray], covariances: list[np.ndarray], R: np.ndarray) -> JointTest:
    """The Wald test over imputations: Li, Raghunathan and Rubin's D1, an F test."""
    test = d1_test(estimates, covariances, R)
    if math.isinf(test.df2):  # every imputation alike: the complete-data Wald test
        return JointTest(
            kind=JointTestKind.WALD,
            statistic=test.statistic * test.df1,
            df=[test.df1],
            p_value=test.p_value,
            reference_distribution=f"chi-square({test.df1})",
        )
    return JointTest(
        kind=JointTestKind.WALD,
        statistic=test.statistic,
        df=[test.df1, test.df2],
        p_value=test.p_value,
        reference_distribution=f"F({test.df1}, {test.df2:.1f}): D1 over imputations",
    )


def _score_test(
    fit: GeeFit, design: pd.DataFrame, y: np.ndarray, groups: np.ndarray, slopes: list[str]
) -> JointTest:
    """GEE score test of equal slopes: the restricted model has one common slope."""
    restricted = design.drop(columns=slopes)
    restricted["__common"] = design[slopes].sum(axis=1)
    sub = fit_gee(
        y,
        restricted,
        groups,
        working_correlation=fit.working_correlation,
        cov_type=CovarianceType.ROBUST,
        keep_model=True,
    )
    full = fit.result.model  # both fits order their rows by cluster the same way
    out = full.compare_score_test(sub.result)
    df = int(out["df"])
    return JointTest(
        kind=JointTestKind.SCORE,
        statistic=float(out["statistic"]),
        df=[df],
        p_value=float(out["p-value"]),
        reference_distribution=f"chi-square({df})",
    )


def _contrasts(
    treatments: list[str], estimate: np.ndarray, cov: np.ndarray, margin: float, alpha: float
) -> list[Contrast]:
    """Every between-treatment difference of slopes with its (1 - 2 alpha) CI and TOST."""
    z = stats.norm.ppf(1 - alpha)
    out = []
    for i, j in combinations(range(len(treatments)), 2):
        difference = float(estimate[j] - estimate[i])
        se = math.sqrt(max(cov[i, i] + cov[j, j] - 2 * cov[i, j], 0.0))
        p_lower = stats.norm.sf((difference + margin) / se)  # H0: difference <= -margin
        p_upper = stats.norm.cdf((difference - margin) / se)  # H0: difference >= margin
        out.append(
            Contrast(
                treatment_a=treatments[i],
                treatment_b=treatments[j],
                difference=difference,
                ci_low=float(difference - z * se),
                ci_high=float(difference + z * se),
                tost_p_value=float(max(p_lower, p_upper)),
                inside_margin=bool(-margin < difference - z * se and difference + z * se < margin),
            )
        )
    return out


def _marginal_effects(
    fit: GeeFit,
    design: pd.DataFrame,
    treatments: list[str],
    attributes: list[str],
    treatment_of_row,
) -> dict[str, list[tuple[float, float]]]:
    """Each attribute's average marginal effect per rating point in each treatment,
    with its delta-method standard error.

    In treatment ``t`` the AME of a slope ``beta_k`` is ``beta_k * mean(w)`` over its
    rows, ``w = p (1 - p)``; its gradient is ``beta_k * mean(w (1 - 2p) x)`` plus
    ``mean(w)`` at ``k``.
    """
    params = fit.params.to_numpy()
    cov = fit.cov.to_numpy()
    X = design.to_numpy()
    p = expit(X @ params)
    w = p * (1 - p)
    members = np.stack([treatment_of_row == t for t in treatments]).astype(float)
    counts = members.sum(axis=1)
    mean_w = members @ w / counts
    mean_xw = (members * (w * (1 - 2 * p))) @ X / counts[:, None]  # treatments x terms
    out: dict[str, list[tuple[float, float]]] = {}
    for attribute in attributes:
        effects = []
        for i, t in enumerate(treatments):
            k = design.columns.get_loc(slope_name(attribute, t))
            gradient = params[k] * mean_xw[i]
            gradient[k] += mean_w[i]
            se = math.sqrt(max(float(gradient @ cov @ gradient), 0.0))
            effects.append((float(params[k] * mean_w[i]), se))
        out[attribute] = effects
    return out


# --------------------------------------------------------------------------- verdict
def _rest_sentence(first: str, rest_equal_p: float | None, alpha: float) -> str:
    """What the test of the other treatments without ``first`` (the treatment furthest
    out) says of the other names ('' when fewer than two are named)."""
    if rest_equal_p is None:
        return ""
    if rest_equal_p < alpha:
        return (
            f" Without {first}, the other treatments' effects still differ from each other "
            f"(p = {rest_equal_p:.2g})."
        )
    return (
        f" Without {first}, the other treatments' effects do not differ from each other "
        f"(p = {rest_equal_p:.2g}): the others named may deviate only because {first} "
        "pulls the mean of the treatments they are compared with."
    )


def _verdict(
    label: str,
    outcome: str,
    p_adjusted: float,
    equivalent: bool,
    alpha: float,
    adjustment: Adjustment | str,
    by_treatment: list[TreatmentEffect],
    contrasts: list[Contrast],
    margin: Margin,
    margin_per_point: float,
    *,
    treatment_labels: dict[str, str],
    deviating: list[TreatmentDeviation],
    rest_equal_p: float | None = None,
    higher_is_better: bool = True,
) -> tuple[Verdict, str]:
    """The verdict and its sentence, in the config's words.

    ``label`` and ``outcome`` are the attribute's and the outcome's labels; treatments
    are named by ``treatment_labels``; ``deviating`` are the treatments the closed
    tests name. Where higher is worse, the effect is strongest where its odds ratio is
    lowest (a higher score lowers the chance most).
    """
    rejected = p_adjusted < alpha
    factor = math.exp(margin.value)
    unit = "SD of the rating" if margin.per is MarginScale.SD else "rating point"
    quality, outcome = in_sentence(label), in_sentence(outcome)
    if equivalent:
        extra = " A difference was detected, but it is smaller than the margin." if rejected else ""
        return "equivalent", (
            f"The effect of {quality} on {outcome} is the same in every treatment to "
            f"within the margin: each between-treatment difference in its odds ratio per "
            f"{unit} is within ×/÷{factor:.2f} (90% CIs; ±{margin_per_point:.2f} log-odds "
            f"per point).{extra}"
        )
    if rejected:
        per_point = "per point" if higher_is_better else "per point higher"
        if deviating:
            named = "; ".join(
                f"in {treatment_labels[d.treatment]} it is "
                f"{'stronger' if (d.deviation > 0) == higher_is_better else 'weaker'} than "
                f"in the others ({d.deviation:+.2f} log-odds {per_point}, 95% CI "
                f"{d.ci_low:+.2f} to {d.ci_high:+.2f})"
                for d in deviating
            )
            return "differs", (
                f"The effect of {quality} on {outcome} differs by treatment "
                f"({Adjustment(adjustment).label}-adjusted p = {p_adjusted:.3g}): {named}."
                + _rest_sentence(treatment_labels[deviating[0].treatment], rest_equal_p, alpha)
            )
        sign = 1.0 if higher_is_better else -1.0
        high = max(by_treatment, key=lambda r: sign * r.log_odds)
        low = min(by_treatment, key=lambda r: sign * r.log_odds)
        return "differs", (
            f"The effect of {quality} on {outcome} differs by treatment "
            f"({Adjustment(adjustment).label}-adjusted p = {p_adjusted:.3g}), but no single "
            f"treatment stands out from the others once tested: strongest in "
            f"{treatment_labels[high.treatment]} (odds ratio {high.odds_ratio:.2f} "
            f"{per_point}), weakest in {treatment_labels[low.treatment]} "
            f"({low.odds_ratio:.2f})."
        )
    widest = max(contrasts, key=lambda c: max(abs(c.ci_low), abs(c.ci_high)))
    return "inconclusive", (
        f"The data show neither that the effect of {quality} on {outcome} differs by "
        f"treatment (adjusted p = {p_adjusted:.3g}) nor that it is the same: the 90% CI of "
        f"the difference between {treatment_labels[widest.treatment_a]} and "
        f"{treatment_labels[widest.treatment_b]} ({widest.ci_low:+.2f} to "
        f"{widest.ci_high:+.2f} log-odds per point) reaches beyond ±{margin_per_point:.2f}. "
        "More patients would settle it."
    )


# --------------------------------------------------------------------------- steps
#: Multiple imputation is the default when more than this share of the analysable
#: encounters has a rating missing (and would be left out of a complete-case analysis).
MI_DEFAULT_ABOVE = 0.05
#: The plain sandwich is refused by no one, but with fewer clusters than this its tests
#: reject a true null too often (benchmarks/README.md): the analysis says so.
ROBUST_MIN_CLUSTERS = 200


@dataclass(frozen=True)
class _Setup:
    """What the analysis was asked for: the outcome, the config and the settings."""

    target: str
    target_label: str
    config: Config
    covariates_left_out: tuple[str, ...]
    settings: HeterogeneitySettings
    treatment_labels: dict[str, str]
    seed: int


@dataclass(frozen=True)
class _Data:
    """The analysable encounters (a rating may be missing) and what every analysis of
    them shares: the treatments compared and each rating's pooled SD."""

    rows: pd.DataFrame
    counts: dict[str, int]
    treatments: list[str]
    rating_sd: dict[str, float]

    @property
    def complete(self) -> pd.DataFrame:
        """The encounters with every rating."""
        return self.rows[self.rows[list(self.rating_sd)].notna().all(axis=1).to_numpy()]


@dataclass(frozen=True)
class _Model:
    """One data set's design, outcome and clusters, checked for estimability."""

    rows: pd.DataFrame
    design: pd.DataFrame
    y: np.ndarray
    groups: np.ndarray
    treatment_of_row: np.ndarray
    n_clusters: int


@dataclass(frozen=True)
class _Slopes:
    """An attribute's per-treatment slopes (from one fit, or pooled over imputations)
    and the tests of linear constraints on them."""

    estimate: np.ndarray
    cov: np.ndarray  # the fit's; under MI Rubin's total covariance
    df: np.ndarray | None  # per slope under MI; None: normal
    fmi: np.ndarray | None
    ame: list[tuple[float, float, float]]  # per treatment: the AME and its 95% CI
    joint: Callable[[np.ndarray], JointTest]
    subset_test: SubsetTest


@dataclass(frozen=True)
class _Tested:
    """One attribute's joint test, effects by treatment, contrasts and equivalence."""

    attribute: str
    test: JointTest
    common_log_odds: float
    by_treatment: list[TreatmentEffect]
    contrasts: list[Contrast]
    equivalence: Equivalence
    deviations: list[Any]  # _closed.Deviation
    fmi: float | None
    #: p-value of equal slopes among every treatment but the one at this index
    rest_equal: Callable[[int], float | None]


@dataclass(frozen=True)
class _Analysis:
    """One analysis of the data: complete cases, or multiple imputation."""

    missing: MissingRatings
    model: _Model  # (under MI, of the first imputation)
    fit: GeeFit
    attributes: list[AttributeResult]
    imputations: int | None
    seeds: list[int]
    notes: list[str]


def _setup(
    target: str,
    config: Config,
    covariates_left_out: tuple[str, ...],
    settings: HeterogeneitySettings,
    seed: int,
) -> _Setup:
    """The analysis's setup, once ``target`` is known to be a configured outcome."""
    if target not in config.outcome_names:
        raise ArgumentError(f"unknown target {target!r}; expected one of {config.outcome_names}")
    return _Setup(
        target=target,
        target_label=outcome_label(config, target),
        config=config,
        covariates_left_out=covariates_left_out,
        settings=settings,
        treatment_labels={t.name: t.label for t in config.treatments},
        seed=seed,
    )


def _prepare_data(encounters: pd.DataFrame, setup: _Setup) -> _Data:
    """The analysable encounters, the treatments compared and each rating's SD."""
    target, config, cluster = setup.target, setup.config, setup.settings.cluster
    rows, counts = _analysis_rows(encounters, target, config, _CLUSTER_COLUMNS[cluster])
    present = set(rows["treatment"].astype(str))
    treatments = [t for t in config.treatment_names if t in present]
    if len(treatments) < 2:
        raise ContractError(
            f"{len(treatments)} treatment(s) have analysable encounters; comparing effects "
            "across treatments needs at least two"
        )
    sds = {a: _pooled_sd(rows, a) for a in config.attribute_names}
    return _Data(rows=rows, counts=counts, treatments=treatments, rating_sd=sds)


def _model(rows: pd.DataFrame, data: _Data, setup: _Setup) -> _Model:
    """The design of ``rows`` (no rating missing); refuses data it cannot be fitted to."""
    target = setup.target
    present = set(rows["treatment"].astype(str))
    lost = [t for t in data.treatments if t not in present]
    if lost:
        raise ContractError(
            f"no encounter of treatment(s) {lost} has every rating, so a complete-case "
            "analysis cannot compare them; use multiple imputation (--missing mi)"
        )
    _check_estimable(rows, target, data.treatments)
    design = _design(rows, setup.config, data.treatments)
    groups = rows[_CLUSTER_COLUMNS[setup.settings.cluster]].astype(str).to_numpy()
    n_clusters = len(np.unique(groups))
    if n_clusters <= design.shape[1]:
        raise AnalysisError(
            f"{n_clusters} {setup.settings.cluster}s for {design.shape[1]} coefficients: the "
            "robust covariance needs many more clusters than coefficients; analyse more "
            "patients"
        )
    return _Model(
        rows=rows,
        design=design,
        y=rows[target].to_numpy(dtype=float),
        groups=groups,
        treatment_of_row=rows["treatment"].astype(str).to_numpy(),
        n_clusters=n_clusters,
    )


def _fit_model(model: _Model, data: _Data, settings: HeterogeneitySettings) -> GeeFit:
    """The GEE fit of the design, refused where a treatment's outcomes are separated."""
    fit = fit_gee(
        model.y,
        model.design,
        model.groups,
        working_correlation=settings.working_correlation,
        cov_type=settings.cov_type,
        keep_model=settings.test is JointTestKind.SCORE,  # the score test needs it
    )
    _check_separation(fit, data.treatments)
    return fit


def _quantile(df: float | None) -> float:
    """The 97.5% quantile of the t distribution on ``df`` (normal: None or infinite)."""
    if df is None or not math.isfinite(df):
        return float(stats.norm.ppf(0.975))
    return float(stats.t.ppf(0.975, df))


def _z_interval(value: float, se: float) -> tuple[float, float, float]:
    z = _quantile(None)
    return value, value - z * se, value + z * se


def _fit_slopes(
    attribute: str,
    fit: GeeFit,
    model: _Model,
    data: _Data,
    settings: HeterogeneitySettings,
    effects: dict[str, list[tuple[float, float]]],
) -> _Slopes:
    """``attribute``'s slopes from one fit (complete data); ``effects``: the fit's
    marginal effects (:func:`_marginal_effects`)."""
    names = [slope_name(attribute, t) for t in data.treatments]
    estimate = fit.params[names].to_numpy()
    cov = fit.cov.loc[names, names].to_numpy()
    joint: Callable[[np.ndarray], JointTest]
    if settings.test is JointTestKind.SCORE:

        def joint(R: np.ndarray) -> JointTest:  # the restricted model is "all equal"
            return _score_test(fit, model.design, model.y, model.groups, names)
    else:

        def joint(R: np.ndarray) -> JointTest:
            return _wald(estimate, cov, R)

    return _Slopes(
        estimate=estimate,
        cov=cov,
        df=None,
        fmi=None,
        ame=[_z_interval(ame, se) for ame, se in effects[attribute]],
        joint=joint,
        subset_test=wald_subset_test(estimate, cov),
    )


def _pooled_slopes(
    attribute: str,
    fits: list[GeeFit],
    models: list[_Model],
    data: _Data,
    effects: list[dict[str, list[tuple[float, float]]]],
) -> _Slopes:
    """``attribute``'s slopes pooled over imputations by Rubin's rules; tests by D1;
    ``effects``: each fit's marginal effects (:func:`_marginal_effects`)."""
    names = [slope_name(attribute, t) for t in data.treatments]
    estimates = [fit.params[names].to_numpy() for fit in fits]
    covariances = [fit.cov.loc[names, names].to_numpy() for fit in fits]
    n_params = models[0].design.shape[1]
    df_complete = float(models[0].n_clusters - n_params)
    pooled = rubin_pool(estimates, covariances, df_complete=df_complete)
    ame = []
    for k in range(len(data.treatments)):
        one = rubin_pool(
            [np.array([e[attribute][k][0]]) for e in effects],
            [np.array([[e[attribute][k][1] ** 2]]) for e in effects],
            df_complete=df_complete,
        )
        value, se = float(one.estimate[0]), math.sqrt(float(one.total[0, 0]))
        q = _quantile(float(one.df[0]))
        ame.append((value, value - q * se, value + q * se))
    return _Slopes(
        estimate=pooled.estimate,
        cov=pooled.total,
        df=pooled.df,
        fmi=pooled.fmi,
        ame=ame,
        joint=lambda R: _d1(estimates, covariances, R),
        subset_test=lambda C: d1_test(estimates, covariances, C).p_value,
    )


def _test_attribute(attribute: str, slopes: _Slopes, data: _Data, setup: _Setup) -> _Tested:
    """The joint test of ``attribute``'s slopes, its effects, contrasts, equivalence and
    each treatment's closed-tested deviation."""
    settings = setup.settings
    k = len(data.treatments)
    margin = _margin_per_point(settings.margin, data.rating_sd[attribute])
    contrasts = _contrasts(data.treatments, slopes.estimate, slopes.cov, margin, alpha=0.05)
    return _Tested(
        attribute=attribute,
        test=slopes.joint(_contrast_matrix(k)),
        common_log_odds=float(slopes.estimate.mean()),
        by_treatment=_treatment_effects(attribute, slopes, data, setup),
        contrasts=contrasts,
        equivalence=_equivalence(contrasts),
        deviations=deviations(
            data.treatments,
            slopes.estimate,
            slopes.cov,
            alpha=settings.alpha,
            test=slopes.subset_test,
        ),
        fmi=None if slopes.fmi is None else float(np.max(slopes.fmi)),
        rest_equal=partial(_rest_equal, slopes.subset_test, k),
    )


def _rest_equal(test: SubsetTest, k: int, left_out: int) -> float | None:
    """The p-value of "the slopes are equal in every treatment but ``left_out``" by
    ``test`` (None with fewer than two treatments left)."""
    rest = [t for t in range(k) if t != left_out]
    if len(rest) < 2:
        return None
    constraints = np.zeros((len(rest) - 1, k))
    for row, t in enumerate(rest[1:]):
        constraints[row, t], constraints[row, rest[0]] = 1.0, -1.0
    return float(test(constraints))


def _margin_per_point(margin: Margin, rating_sd: float) -> float:
    """The margin in log-odds per rating point."""
    return margin.value / rating_sd if margin.per is MarginScale.SD else margin.value


def _treatment_effects(
    attribute: str, slopes: _Slopes, data: _Data, setup: _Setup
) -> list[TreatmentEffect]:
    """``attribute``'s odds ratio per point and per SD (95% CIs: normal, or t on the
    imputation degrees of freedom) and average marginal effect in each treatment."""
    sd = data.rating_sd[attribute]
    se = np.sqrt(np.diag(slopes.cov))
    out = []
    for k, t in enumerate(data.treatments):
        b, s = float(slopes.estimate[k]), float(se[k])
        df = None if slopes.df is None else float(slopes.df[k])
        q = _quantile(df)
        ame, ame_low, ame_high = slopes.ame[k]
        out.append(
            TreatmentEffect(
                treatment=t,
                treatment_label=setup.treatment_labels[t],
                log_odds=b,
                se=s,
                odds_ratio=math.exp(b),
                ci_low=math.exp(b - q * s),
                ci_high=math.exp(b + q * s),
                n_encounters=int((data.rows["treatment"].astype(str) == t).sum()),
                ame=ame,
                ame_ci_low=ame_low,
                ame_ci_high=ame_high,
                log_odds_per_sd=b * sd,
                odds_ratio_per_sd=math.exp(b * sd),
                ci_low_per_sd=math.exp((b - q * s) * sd),
                ci_high_per_sd=math.exp((b + q * s) * sd),
                df=None if df is None or not math.isfinite(df) else df,
                fraction_missing_information=None if slopes.fmi is None else float(slopes.fmi[k]),
            )
        )
    return out


def _equivalence(contrasts: list[Contrast]) -> Equivalence:
    """The intersection-union equivalence test: every contrast inside the margin."""
    return Equivalence(
        equivalent=all(c.inside_margin for c in contrasts),
        p_value=max(c.tost_p_value for c in contrasts),
        largest_abs_difference=max(abs(c.difference) for c in contrasts),
    )


def _judge(tested: list[_Tested], data: _Data, setup: _Setup) -> list[AttributeResult]:
    """Each attribute's result: its p-value adjusted across attributes, and the verdict."""
    raw_p = [t.test.p_value for t in tested]
    settings = setup.settings
    adjusted = multipletests(raw_p, alpha=settings.alpha, method=settings.adjustment)[1]
    return [
        _attribute_result(t, float(p_adj), data, setup)
        for t, p_adj in zip(tested, adjusted, strict=True)
    ]


def _attribute_result(
    tested: _Tested, p_adjusted: float, data: _Data, setup: _Setup
) -> AttributeResult:
    """One attribute's result, with the verdict in the config's words."""
    settings = setup.settings
    quality = setup.config.attribute(tested.attribute)
    sd = data.rating_sd[tested.attribute]
    margin = _margin_per_point(settings.margin, sd)
    named = p_adjusted < settings.alpha and not tested.equivalence.equivalent
    records = [
        TreatmentDeviation(
            treatment=d.treatment,
            treatment_label=setup.treatment_labels[d.treatment],
            deviation=d.deviation,
            ci_low=d.ci_low,
            ci_high=d.ci_high,
            p_value=d.p_value,
            p_closed=d.p_closed,
            deviates=bool(named and d.deviates),
        )
        for d in tested.deviations
    ]
    # the largest deviation first: with one treatment apart, the others deviate a
    # little from a mean that includes it, and are named after it if at all
    deviating = sorted((d for d in records if d.deviates), key=lambda d: -abs(d.deviation))
    # with two or more named, do the others still differ without the one furthest out?
    rest_equal_p = (
        tested.rest_equal(data.treatments.index(deviating[0].treatment))
        if len(deviating) >= 2
        else None
    )
    verdict, sentence = _verdict(
        quality.label,
        setup.target_label,
        p_adjusted,
        tested.equivalence.equivalent,
        settings.alpha,
        settings.adjustment,
        tested.by_treatment,
        tested.contrasts,
        settings.margin,
        margin,
        treatment_labels=setup.treatment_labels,
        deviating=deviating,
        rest_equal_p=rest_equal_p,
        higher_is_better=quality.higher_is_better,
    )
    return AttributeResult(
        attribute=tested.attribute,
        label=quality.label,
        higher_is_better=quality.higher_is_better,
        test=tested.test,
        p_value=tested.test.p_value,
        common_log_odds=tested.common_log_odds,
        by_treatment=tested.by_treatment,
        contrasts=tested.contrasts,
        equivalence=tested.equivalence,
        p_adjusted=p_adjusted,
        verdict=verdict,
        sentence=sentence,
        rating_sd=sd,
        margin=margin,
        margin_per_sd=margin * sd,
        deviations=records,
        deviating=[d.treatment for d in deviating],
        rest_equal_p=rest_equal_p,
        fraction_missing_information=tested.fmi,
    )


def _complete_case(data: _Data, setup: _Setup) -> _Analysis:
    """The analysis of the encounters with every rating."""
    model = _model(data.complete.reset_index(drop=True), data, setup)
    fit = _fit_model(model, data, setup.settings)
    attributes = setup.config.attribute_names
    effects = _marginal_effects(
        fit, model.design, data.treatments, attributes, model.treatment_of_row
    )
    tested = [
        _test_attribute(a, _fit_slopes(a, fit, model, data, setup.settings, effects), data, setup)
        for a in attributes
    ]
    return _Analysis(
        missing=MissingRatings.COMPLETE_CASE,
        model=model,
        fit=fit,
        attributes=_judge(tested, data, setup),
        imputations=None,
        seeds=[],
        notes=list(fit.notes),
    )


def _multiple_imputation(data: _Data, setup: _Setup) -> _Analysis:
    """The analysis of every analysable encounter, its missing ratings imputed
    ``imputations`` times; the fits pooled by Rubin's rules."""
    settings, config = setup.settings, setup.config
    seeds = [setup.seed + k for k in range(settings.imputations)]
    imputed = impute_ratings(
        data.rows,
        ratings=config.attribute_names,
        target=setup.target,
        treatments=data.treatments,
        covariates=list(config.covariates),
        scale=(config.attributes.scale.min, config.attributes.scale.max),
        imputations=settings.imputations,
        seed=setup.seed,
    )
    models, fits = [], []
    for k, rows in enumerate(imputed):
        model = _model(rows, data, setup)
        try:
            fits.append(_fit_model(model, data, settings))
        except AnalysisError as e:
            raise AnalysisError(f"imputed data set {k + 1} (seed {seeds[k]}): {e}") from e
        models.append(model)
    effects = [
        _marginal_effects(
            fit, m.design, data.treatments, config.attribute_names, m.treatment_of_row
        )
        for fit, m in zip(fits, models, strict=True)
    ]
    tested = [
        _test_attribute(a, _pooled_slopes(a, fits, models, data, effects), data, setup)
        for a in config.attribute_names
    ]
    notes = sorted({note for fit in fits for note in fit.notes})
    return _Analysis(
        missing=MissingRatings.MI,
        model=models[0],
        fit=fits[0],
        attributes=_judge(tested, data, setup),
        imputations=settings.imputations,
        seeds=seeds,
        notes=notes,
    )


def _chosen(data: _Data, settings: HeterogeneitySettings) -> MissingRatings:
    """The treatment of missing ratings asked for, or the default for these data."""
    if settings.missing is not None:
        return settings.missing
    share = data.counts["n_with_missing_rating"] / max(len(data.rows), 1)
    return MissingRatings.MI if share > MI_DEFAULT_ABOVE else MissingRatings.COMPLETE_CASE


def _with_other(primary: _Analysis, other: _Analysis | None) -> list[AttributeResult]:
    """The primary analysis's attributes, each with the other analysis's verdict."""
    if other is None:
        return primary.attributes
    return [
        mine.model_copy(
            update={
                "other_analysis": OtherAnalysis(
                    missing=other.missing,
                    p_value=theirs.p_value,
                    p_adjusted=theirs.p_adjusted,
                    verdict=theirs.verdict,
                    deviating=theirs.deviating,
                )
            }
        )
        for mine, theirs in zip(primary.attributes, other.attributes, strict=True)
    ]


def _method(setup: _Setup, data: _Data, analysis: _Analysis) -> AnalysisMethod:
    """How the analysis was done: the model, the settings, versions and the data's hash."""
    settings, config = setup.settings, setup.config
    fit, model = analysis.fit, analysis.model
    notes = list(analysis.notes)
    if settings.cov_type is CovarianceType.ROBUST and model.n_clusters < ROBUST_MIN_CLUSTERS:
        notes.append(
            f"the plain sandwich covariance (cov_type robust) with {model.n_clusters} "
            f"{settings.cluster}s, under {ROBUST_MIN_CLUSTERS}, is too small: its tests "
            "reject a true null too often (kauermann_carroll, the default, corrects it)"
        )
    if analysis.missing is MissingRatings.MI and analysis.imputations is None:
        notes.append("no rating was missing: nothing to impute, so no imputation was made")
    return AnalysisMethod(
        model="GEE logistic regression; one slope per attribute per treatment",
        terms=list(model.design.columns),
        rating_centre=(config.attributes.scale.min + config.attributes.scale.max) / 2,
        covariates=list(config.covariates),
        covariates_left_out=list(setup.covariates_left_out),
        cluster=settings.cluster,
        working_correlation=settings.working_correlation,
        working_correlation_estimate=fit.dependence,
        cov_type=settings.cov_type,
        test=settings.test,
        reference_distribution=(
            f"chi-square({len(data.treatments) - 1})"
            if analysis.imputations is None
            else f"F({len(data.treatments) - 1}, ν) (D1 over {analysis.imputations} imputations)"
        ),
        adjustment=settings.adjustment,
        alpha=settings.alpha,
        margin=settings.margin.value,
        margin_per=settings.margin.per,
        margin_odds_ratio=math.exp(settings.margin.value),
        equivalence="TOST: every between-treatment difference's 90% CI inside ±margin",
        missing=analysis.missing,
        imputations=analysis.imputations,
        imputation_seeds=analysis.seeds,
        converged=True,
        iterations=fit.iterations,
        notes=notes,
        versions=library_versions(_LIBRARIES),
        data_sha256=data_fingerprint(data.rows),
    )


def _assemble_result(
    setup: _Setup, data: _Data, primary: _Analysis, other: _Analysis | None
) -> HeterogeneityResult:
    """The analysis's result, from its setup, data and analyses."""
    rows = primary.model.rows
    left_out = len(data.rows) - len(rows)
    return HeterogeneityResult(
        target=setup.target,
        target_label=setup.target_label,
        n_encounters=len(rows),
        n_patients=int(rows["patient_id"].nunique()),
        n_clusters=primary.model.n_clusters,
        n_excluded_missing_outcome=data.counts["n_excluded_missing_outcome"],
        n_excluded_missing_rating=left_out,
        n_excluded_missing_covariate=data.counts["n_excluded_missing_covariate"],
        n_excluded_missing_cluster=data.counts["n_excluded_missing_cluster"],
        n_with_missing_rating=data.counts["n_with_missing_rating"],
        treatments=data.treatments,
        reference_treatment=data.treatments[0],
        method=_method(setup, data, primary),
        attributes=_with_other(primary, other),
    )


# --------------------------------------------------------------------------- main
def analysis_settings(settings: HeterogeneitySettings, **options: Any) -> HeterogeneitySettings:
    """The analysis settings with ``options`` laid over them, checked.

    Parameters
    ----------
    settings : HeterogeneitySettings
        The defaults (a config's ``heterogeneity`` block).
    **options
        ``margin`` (its value; or a :class:`~engagekit.config.Margin`), ``margin_per``
        (``sd`` or ``point``), ``alpha``, ``adjustment``, ``test``, ``cluster``,
        ``working_correlation``, ``cov_type``, ``missing``, ``imputations``; one given as
        None keeps the default. A choice may be given as its Enum member or its value
        (``"holm"``).

    Returns
    -------
    HeterogeneitySettings

    Raises
    ------
    ArgumentError
        An option is unknown, or its value is not one it takes (a margin that is not
        positive, an unknown choice); the message names each.

    Examples
    --------
    >>> from engagekit.config import HeterogeneitySettings
    >>> analysis_settings(HeterogeneitySettings(), test="score").test
    <JointTestKind.SCORE: 'score'>
    >>> analysis_settings(HeterogeneitySettings(), margin=-0.2)
    Traceback (most recent call last):
    ...
    engagekit.errors.ArgumentError: bad analysis option(s): 'margin.value': input should be greater than 0 (found -0.2)
    >>> analysis_settings(HeterogeneitySettings(), margin=0.3).margin
    Margin(value=0.3, per=<MarginScale.SD: 'sd'>)
    """  # noqa: E501
    known = (*HeterogeneitySettings.model_fields, "margin_per")
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise ArgumentError(
            f"unknown analysis option(s) {unknown}; choose among: {', '.join(known)}"
        )
    given = {name: value for name, value in options.items() if value is not None}
    # the margin's value and its unit are two options, laid over the config's margin
    value, per = given.pop("margin", None), given.pop("margin_per", None)
    if isinstance(value, Margin | dict):
        given["margin"] = value
    elif value is not None or per is not None:
        margin = settings.margin
        given["margin"] = {
            "value": margin.value if value is None else value,
            "per": margin.per if per is None else per,
        }
    try:
        return HeterogeneitySettings.model_validate({**dict(settings), **given})
    except ValidationError as e:
        raise ArgumentError(f"bad analysis option(s): {'; '.join(field_problems(e))}") from e


def heterogeneity_analysis(
    encounters: pd.DataFrame,
    target: str,
    config: Config | None = None,
    *,
    margin: float | None = None,
    margin_per: MarginScale | str | None = None,
    cluster: Cluster | str | None = None,
    working_correlation: WorkingCorrelation | str | None = None,
    test: JointTestKind | str | None = None,
    adjustment: Adjustment | str | None = None,
    alpha: float | None = None,
    cov_type: CovarianceType | str | None = None,
    missing: MissingRatings | str | None = None,
    imputations: int | None = None,
    seed: int = 0,
    sensitivity: bool = True,
) -> HeterogeneityResult:
    """Test, for every attribute, whether its effect on ``target`` differs by treatment.

    Parameters
    ----------
    encounters : pandas.DataFrame
        Typed, valid encounters (see :func:`engagekit.check_encounters`).
    target : {"attended_next", "adherent"}
    config : Config, optional
        Attributes, treatments, covariates, and the defaults of every option below
        (its ``heterogeneity`` block).
    margin : float, optional
        Equivalence margin in log-odds, above 0, per ``margin_per``.
    margin_per : MarginScale or str, optional
        ``sd`` (per standard deviation of the rating, pooled within treatments: the
        same on every instrument) or ``point`` (per rating point).
    cluster : Cluster or str, optional
        ``patient`` or ``practitioner``.
    working_correlation : WorkingCorrelation or str, optional
        ``independence`` or ``exchangeable``.
    test : JointTestKind or str, optional
        ``wald`` or ``score`` (complete cases only: over imputations the test is D1).
    adjustment : Adjustment or str, optional
        ``holm`` or ``fdr_bh``.
    alpha : float, optional
        Level of the difference test, in (0, 1); the equivalence test uses 90% CIs at
        0.05.
    cov_type : CovarianceType or str, optional
        ``kauermann_carroll``, ``bias_reduced`` (small-sample corrected) or ``robust``
        (the plain sandwich, for comparison with other software; noted as too small
        under 200 clusters).
    missing : MissingRatings or str, optional
        ``mi`` (multiple imputation by chained equations, pooled by Rubin's rules) or
        ``complete_case``; by default ``mi`` when more than 5% of the analysable
        encounters have a rating missing.
    imputations : int, optional
        Imputed data sets (default from the config: 20).
    seed : int
        Imputation ``k`` uses ``seed + k``.
    sensitivity : bool
        Also run the other treatment of missing ratings, for each attribute's
        ``other_analysis`` (when a rating is missing).

    Returns
    -------
    HeterogeneityResult
        ``target``, ``target_label`` (the config's label of the outcome),
        ``n_encounters``, ``n_patients``, ``n_clusters``, the exclusion counts, ``method``
        (how it was done, versions and data hash) and ``attributes``: per attribute
        ``label``, ``higher_is_better``, ``p_value``, ``p_adjusted``, ``verdict``,
        ``sentence`` (in the config's labels of the attribute, the outcome and the
        treatments), ``equivalence``, ``contrasts``, ``deviations`` and ``deviating``
        (the treatments named by the closed tests), ``other_analysis`` and
        ``by_treatment`` (``treatment``, ``treatment_label``, ``log_odds``,
        ``odds_ratio``, ``ci_low``, ``ci_high``, per SD too, ``ame`` …).
        Where ``higher_is_better`` is false the odds ratios are per point higher, so an
        effect in the expected direction is an odds ratio below 1. Its ``to_dict()`` is
        the JSON ``engagekit heterogeneity`` writes.

    Raises
    ------
    ArgumentError
        ``target`` is not a configured outcome, or an option is out of range or not
        one of its choices (see :func:`analysis_settings`).
    ContractError
        A needed column is absent, or too few treatments remain.
    AnalysisError
        The GEE did not converge, or a treatment has one outcome value only.
    """
    from ..validation._coverage import without_absent_covariates

    config = config if config is not None else load_config()
    # a covariate absent from the table is left out, as every command does
    config, covariates_left_out = without_absent_covariates(config, encounters.columns)
    settings = analysis_settings(
        config.heterogeneity,
        margin=margin,
        margin_per=margin_per,
        cluster=cluster,
        working_correlation=working_correlation,
        test=test,
        adjustment=adjustment,
        alpha=alpha,
        cov_type=cov_type,
        missing=missing,
        imputations=imputations,
    )
    setup = _setup(target, config, covariates_left_out, settings, seed)
    # the matrices are small: BLAS threads only contend (20 fits took 23 s instead of
    # 6 s on a busy 2-core machine)
    with threadpool_limits(limits=1, user_api="blas"):
        return _analyse(encounters, setup, sensitivity)


def _analyse(encounters: pd.DataFrame, setup: _Setup, sensitivity: bool) -> HeterogeneityResult:
    """The analysis of :func:`heterogeneity_analysis`, once its settings are checked."""
    settings = setup.settings
    data = _prepare_data(encounters, setup)
    chosen = _chosen(data, settings)
    if data.counts["n_with_missing_rating"] == 0:
        # nothing to impute: multiple imputation is the complete-case analysis, exactly
        primary = _complete_case(data, setup)
        if chosen is MissingRatings.MI:
            primary = dataclasses.replace(primary, missing=MissingRatings.MI)
        return _assemble_result(setup, data, primary, None)
    run = {MissingRatings.MI: _multiple_imputation, MissingRatings.COMPLETE_CASE: _complete_case}
    primary = run[chosen](data, setup)
    other = None
    if sensitivity:
        other_kind = (
            MissingRatings.COMPLETE_CASE if chosen is MissingRatings.MI else MissingRatings.MI
        )
        other = run[other_kind](data, setup)
    return _assemble_result(setup, data, primary, other)
