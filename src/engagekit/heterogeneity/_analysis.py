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

import math
from dataclasses import dataclass
from itertools import combinations
from typing import Annotated, Any, ClassVar, Literal

import numpy as np
import pandas as pd
from pydantic import Field, ValidationError
from scipy import stats
from scipy.special import expit
from statsmodels.stats.multitest import multipletests

from .._fingerprint import data_fingerprint
from .._labels import in_sentence, outcome_label
from .._pydantic_errors import field_problems
from .._results import Choice, Record, Result
from .._versions import library_versions
from ..choices import Adjustment, Cluster, CovarianceType, JointTestKind, WorkingCorrelation
from ..config import Config, HeterogeneitySettings, load_config
from ..errors import AnalysisError, ArgumentError, ContractError
from ._gee import GeeFit, fit_gee

__all__ = [
    "AnalysisMethod",
    "AttributeResult",
    "Contrast",
    "Equivalence",
    "HeterogeneityResult",
    "JointTest",
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
    df: list[int]
    p_value: float


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
    margin_odds_ratio: float
    equivalence: str
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

    target: str
    target_label: str
    n_encounters: Count
    n_patients: Count
    n_clusters: Count
    n_excluded_missing_outcome: Count
    n_excluded_missing_rating: Count
    n_excluded_missing_covariate: Count
    n_excluded_missing_cluster: Count
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
    """Complete cases for the model, and how many rows each reason left out."""
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
    keep = outcome & rated & covariates & cluster
    excluded = {
        "n_excluded_missing_outcome": int((~outcome).sum()),
        "n_excluded_missing_rating": int((outcome & ~rated).sum()),
        "n_excluded_missing_covariate": int((outcome & rated & ~covariates).sum()),
        "n_excluded_missing_cluster": int((outcome & rated & covariates & ~cluster).sum()),
    }
    return encounters[keep.to_numpy()].reset_index(drop=True), excluded


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
def _wald(estimate: np.ndarray, cov: np.ndarray, R: np.ndarray) -> JointTest:
    difference = R @ estimate
    statistic = float(difference @ np.linalg.solve(R @ cov @ R.T, difference))
    q = int(R.shape[0])
    p_value = float(stats.chi2.sf(statistic, q))
    return JointTest(kind=JointTestKind.WALD, statistic=statistic, df=[q], p_value=p_value)


def _score_test(
    fit: GeeFit, design: pd.DataFrame, y: np.ndarray, groups: np.ndarray, slopes: list[str]
) -> JointTest:
    """GEE score test of equal slopes: the restricted model has one common slope."""
    restricted = design.drop(columns=slopes)
    restricted["__common"] = design[slopes].sum(axis=1)
    sub = fit_gee(
        y, restricted, groups, working_correlation=fit.working_correlation, cov_type="robust"
    )
    full = fit.result.model  # both fits order their rows by cluster the same way
    out = full.compare_score_test(sub.result)
    return JointTest(
        kind=JointTestKind.SCORE,
        statistic=float(out["statistic"]),
        df=[int(out["df"])],
        p_value=float(out["p-value"]),
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
    fit: GeeFit, design: pd.DataFrame, treatments: list[str], attribute: str, treatment_of_row
) -> list[tuple[float, float, float]]:
    """Average marginal effect per rating point in each treatment, delta-method 95% CI."""
    params = fit.params.to_numpy()
    cov = fit.cov.to_numpy()
    X = design.to_numpy()
    p = expit(X @ params)
    z = stats.norm.ppf(0.975)
    out = []
    for t in treatments:
        rows = treatment_of_row == t
        k = design.columns.get_loc(slope_name(attribute, t))
        beta = params[k]
        w = p[rows] * (1 - p[rows])
        ame = float(beta * w.mean())
        gradient = beta * ((w * (1 - 2 * p[rows]))[:, None] * X[rows]).mean(axis=0)
        gradient[k] += w.mean()
        se = math.sqrt(max(float(gradient @ cov @ gradient), 0.0))
        out.append((ame, float(ame - z * se), float(ame + z * se)))
    return out


# --------------------------------------------------------------------------- verdict
def _verdict(
    label: str,
    outcome: str,
    p_adjusted: float,
    equivalent: bool,
    alpha: float,
    adjustment: Adjustment | str,
    by_treatment: list[TreatmentEffect],
    contrasts: list[Contrast],
    margin: float,
    *,
    treatment_labels: dict[str, str],
    higher_is_better: bool = True,
) -> tuple[Verdict, str]:
    """The verdict and its sentence, in the config's words.

    ``label`` and ``outcome`` are the attribute's and the outcome's labels; treatments
    are named by ``treatment_labels``. Where higher is worse, the effect is strongest
    where its odds ratio is lowest (a higher score lowers the chance most).
    """
    rejected = p_adjusted < alpha
    factor = math.exp(margin)
    quality, outcome = in_sentence(label), in_sentence(outcome)
    if equivalent:
        extra = " A difference was detected, but it is smaller than the margin." if rejected else ""
        return "equivalent", (
            f"The effect of {quality} on {outcome} is the same in every treatment to "
            f"within the margin: each between-treatment difference in its odds ratio per "
            f"rating point is within ×/÷{factor:.2f} (90% CIs).{extra}"
        )
    if rejected:
        sign = 1.0 if higher_is_better else -1.0
        high = max(by_treatment, key=lambda r: sign * r.log_odds)
        low = min(by_treatment, key=lambda r: sign * r.log_odds)
        per_point = "per point" if higher_is_better else "per point higher"
        return "differs", (
            f"The effect of {quality} on {outcome} differs by treatment "
            f"({Adjustment(adjustment).label}-adjusted p = {p_adjusted:.3g}): strongest in "
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
        f"{widest.ci_high:+.2f} log-odds per point) reaches beyond ±{margin:.2f}. More "
        "patients would settle it."
    )


# --------------------------------------------------------------------------- steps
@dataclass(frozen=True)
class _Setup:
    """What the analysis was asked for: the outcome, the config and the settings."""

    target: str
    target_label: str
    config: Config
    covariates_left_out: tuple[str, ...]
    settings: HeterogeneitySettings
    treatment_labels: dict[str, str]


@dataclass(frozen=True)
class _Data:
    """The analysed encounters and the model's design, checked for estimability."""

    rows: pd.DataFrame
    excluded: dict[str, int]
    treatments: list[str]
    treatment_of_row: np.ndarray
    design: pd.DataFrame
    y: np.ndarray
    groups: np.ndarray
    n_clusters: int


@dataclass(frozen=True)
class _Tested:
    """One attribute's joint test, effects by treatment, contrasts and equivalence."""

    attribute: str
    test: JointTest
    common_log_odds: float
    by_treatment: list[TreatmentEffect]
    contrasts: list[Contrast]
    equivalence: Equivalence


def _setup(
    target: str,
    config: Config,
    covariates_left_out: tuple[str, ...],
    settings: HeterogeneitySettings,
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
    )


def _prepare_data(encounters: pd.DataFrame, setup: _Setup) -> _Data:
    """The complete cases and the design; refuses data the model cannot be fitted to."""
    target, config, cluster = setup.target, setup.config, setup.settings.cluster
    cluster_column = _CLUSTER_COLUMNS[cluster]
    rows, excluded = _analysis_rows(encounters, target, config, cluster_column)
    present = set(rows["treatment"].astype(str))
    treatments = [t for t in config.treatment_names if t in present]
    if len(treatments) < 2:
        raise ContractError(
            f"{len(treatments)} treatment(s) have analysable encounters; comparing effects "
            "across treatments needs at least two"
        )
    _check_estimable(rows, target, treatments)
    design = _design(rows, config, treatments)
    groups = rows[cluster_column].astype(str).to_numpy()
    n_clusters = len(np.unique(groups))
    if n_clusters <= design.shape[1]:
        raise AnalysisError(
            f"{n_clusters} {cluster}s for {design.shape[1]} coefficients: the robust "
            "covariance needs many more clusters than coefficients; analyse more patients"
        )
    return _Data(
        rows=rows,
        excluded=excluded,
        treatments=treatments,
        treatment_of_row=rows["treatment"].astype(str).to_numpy(),
        design=design,
        y=rows[target].to_numpy(dtype=float),
        groups=groups,
        n_clusters=n_clusters,
    )


def _fit_model(data: _Data, settings: HeterogeneitySettings) -> GeeFit:
    """The GEE fit of the design, refused where a treatment's outcomes are separated."""
    fit = fit_gee(
        data.y,
        data.design,
        data.groups,
        working_correlation=settings.working_correlation,
        cov_type=settings.cov_type,
    )
    _check_separation(fit, data.treatments)
    return fit


def _test_attribute(attribute: str, fit: GeeFit, data: _Data, setup: _Setup) -> _Tested:
    """The joint test of ``attribute``'s slopes, its effects, contrasts and equivalence."""
    slopes = [slope_name(attribute, t) for t in data.treatments]
    estimate = fit.params[slopes].to_numpy()
    cov = fit.cov.loc[slopes, slopes].to_numpy()
    if setup.settings.test is JointTestKind.SCORE:
        test = _score_test(fit, data.design, data.y, data.groups, slopes)
    else:
        R = np.hstack([-np.ones((len(slopes) - 1, 1)), np.eye(len(slopes) - 1)])
        test = _wald(estimate, cov, R)
    by_treatment = _treatment_effects(
        attribute, fit, data, estimate, cov, treatment_labels=setup.treatment_labels
    )
    contrasts = _contrasts(data.treatments, estimate, cov, setup.settings.margin, alpha=0.05)
    return _Tested(
        attribute=attribute,
        test=test,
        common_log_odds=float(estimate.mean()),
        by_treatment=by_treatment,
        contrasts=contrasts,
        equivalence=_equivalence(contrasts),
    )


def _treatment_effects(
    attribute: str,
    fit: GeeFit,
    data: _Data,
    estimate: np.ndarray,
    cov: np.ndarray,
    *,
    treatment_labels: dict[str, str],
) -> list[TreatmentEffect]:
    """``attribute``'s odds ratio (95% CI) and average marginal effect in each treatment."""
    se = np.sqrt(np.diag(cov))
    z = stats.norm.ppf(0.975)
    effects = _marginal_effects(fit, data.design, data.treatments, attribute, data.treatment_of_row)
    return [
        TreatmentEffect(
            treatment=t,
            treatment_label=treatment_labels[t],
            log_odds=float(b),
            se=float(s),
            odds_ratio=math.exp(b),
            ci_low=math.exp(b - z * s),
            ci_high=math.exp(b + z * s),
            n_encounters=int((data.treatment_of_row == t).sum()),
            ame=ame,
            ame_ci_low=ame_low,
            ame_ci_high=ame_high,
        )
        for t, b, s, (ame, ame_low, ame_high) in zip(
            data.treatments, estimate, se, effects, strict=True
        )
    ]


def _equivalence(contrasts: list[Contrast]) -> Equivalence:
    """The intersection-union equivalence test: every contrast inside the margin."""
    return Equivalence(
        equivalent=all(c.inside_margin for c in contrasts),
        p_value=max(c.tost_p_value for c in contrasts),
        largest_abs_difference=max(abs(c.difference) for c in contrasts),
    )


def _judge(tested: list[_Tested], setup: _Setup) -> list[AttributeResult]:
    """Each attribute's result: its p-value adjusted across attributes, and the verdict."""
    raw_p = [t.test.p_value for t in tested]
    settings = setup.settings
    adjusted = multipletests(raw_p, alpha=settings.alpha, method=settings.adjustment)[1]
    return [
        _attribute_result(t, float(p_adj), setup) for t, p_adj in zip(tested, adjusted, strict=True)
    ]


def _attribute_result(tested: _Tested, p_adjusted: float, setup: _Setup) -> AttributeResult:
    """One attribute's result, with the verdict in the config's words."""
    settings = setup.settings
    quality = setup.config.attribute(tested.attribute)
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
        treatment_labels=setup.treatment_labels,
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
    )


def _method(setup: _Setup, data: _Data, fit: GeeFit) -> AnalysisMethod:
    """How the analysis was done: the model, the settings, versions and the data's hash."""
    settings, config = setup.settings, setup.config
    return AnalysisMethod(
        model="GEE logistic regression; one slope per attribute per treatment",
        terms=list(data.design.columns),
        rating_centre=(config.attributes.scale.min + config.attributes.scale.max) / 2,
        covariates=list(config.covariates),
        covariates_left_out=list(setup.covariates_left_out),
        cluster=settings.cluster,
        working_correlation=settings.working_correlation,
        working_correlation_estimate=fit.dependence,
        cov_type=settings.cov_type,
        test=settings.test,
        reference_distribution=f"chi-square({len(data.treatments) - 1})",
        adjustment=settings.adjustment,
        alpha=settings.alpha,
        margin=settings.margin,
        margin_odds_ratio=math.exp(settings.margin),
        equivalence="TOST: every between-treatment difference's 90% CI inside ±margin",
        converged=True,
        iterations=fit.iterations,
        notes=fit.notes,
        versions=library_versions(_LIBRARIES),
        data_sha256=data_fingerprint(data.rows),
    )


def _assemble_result(
    setup: _Setup, data: _Data, fit: GeeFit, attributes: list[AttributeResult]
) -> HeterogeneityResult:
    """The analysis's result, from its setup, data, fit and attribute results."""
    return HeterogeneityResult(
        target=setup.target,
        target_label=setup.target_label,
        n_encounters=len(data.rows),
        n_patients=int(data.rows["patient_id"].nunique()),
        n_clusters=data.n_clusters,
        **data.excluded,
        treatments=data.treatments,
        reference_treatment=data.treatments[0],
        method=_method(setup, data, fit),
        attributes=attributes,
    )


# --------------------------------------------------------------------------- main
def analysis_settings(settings: HeterogeneitySettings, **options: Any) -> HeterogeneitySettings:
    """The analysis settings with ``options`` laid over them, checked.

    Parameters
    ----------
    settings : HeterogeneitySettings
        The defaults (a config's ``heterogeneity`` block).
    **options
        ``margin``, ``alpha``, ``adjustment``, ``test``, ``cluster``,
        ``working_correlation``, ``cov_type``; one given as None keeps the default.
        A choice may be given as its Enum member or its value (``"holm"``).

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
    engagekit.errors.ArgumentError: bad analysis option(s): 'margin': input should be greater than 0 (found -0.2)
    """  # noqa: E501
    known = tuple(HeterogeneitySettings.model_fields)
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise ArgumentError(
            f"unknown analysis option(s) {unknown}; choose among: {', '.join(known)}"
        )
    given = {name: value for name, value in options.items() if value is not None}
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
    cluster: Cluster | str | None = None,
    working_correlation: WorkingCorrelation | str | None = None,
    test: JointTestKind | str | None = None,
    adjustment: Adjustment | str | None = None,
    alpha: float | None = None,
    cov_type: CovarianceType | str | None = None,
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
        Equivalence margin on the log-odds-per-rating-point scale, above 0.
    cluster : Cluster or str, optional
        ``patient`` or ``practitioner``.
    working_correlation : WorkingCorrelation or str, optional
        ``independence`` or ``exchangeable``.
    test : JointTestKind or str, optional
        ``wald`` or ``score``.
    adjustment : Adjustment or str, optional
        ``holm`` or ``fdr_bh``.
    alpha : float, optional
        Level of the difference test, in (0, 1); the equivalence test uses 90% CIs at
        0.05.
    cov_type : CovarianceType or str, optional
        Small-sample correction of the robust covariance: ``kauermann_carroll`` or
        ``bias_reduced``.

    Returns
    -------
    HeterogeneityResult
        ``target``, ``target_label`` (the config's label of the outcome),
        ``n_encounters``, ``n_patients``, ``n_clusters``, the exclusion counts, ``method``
        (how it was done, versions and data hash) and ``attributes``: per attribute
        ``label``, ``higher_is_better``, ``p_value``, ``p_adjusted``, ``verdict``,
        ``sentence`` (in the config's labels of the attribute, the outcome and the
        treatments), ``equivalence``, ``contrasts`` and ``by_treatment`` (``treatment``,
        ``treatment_label``, ``log_odds``, ``odds_ratio``, ``ci_low``, ``ci_high``, ``ame`` …).
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
        cluster=cluster,
        working_correlation=working_correlation,
        test=test,
        adjustment=adjustment,
        alpha=alpha,
        cov_type=cov_type,
    )
    setup = _setup(target, config, covariates_left_out, settings)
    data = _prepare_data(encounters, setup)
    fit = _fit_model(data, settings)
    tested = [_test_attribute(attribute, fit, data, setup) for attribute in config.attribute_names]
    return _assemble_result(setup, data, fit, _judge(tested, setup))
