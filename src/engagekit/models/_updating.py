"""Update a trained model for a new service: the model-updating ladder.

A model carried to another service is usually miscalibrated there: the new service's
patients miss sessions more or less often overall (the intercept), and the ratings
predict less or more sharply (the slope). Steyerberg's ladder (*Clinical Prediction
Models*, 2nd ed. 2019, ch. 20; Janssen et al., J Clin Epidemiol 2008;61:76-86) updates
no more than the data need. With ``LP`` the parent model's log-odds:

- ``intercept``: recalibration in the large, ``logit p_new = a + LP``;
- ``logistic``: logistic recalibration, ``logit p_new = a + b * LP``;
- ``refit``: the same kind of model fitted afresh on the new service
  (:func:`~engagekit.models.fit_model`).

The new service's labelled encounters are split by patient (``validation_share``, 50%
by default, seeded): the update is chosen and fitted on the *updating* patients, and
the parent and the updated model are both scored on the *validation* patients, so the
"after" figures are honest. The saved model is the one fitted on the updating patients.

**The rule of ``auto``** (every test at ``alpha``, 0.05). A patient's encounters are
not independent, so a likelihood-ratio test treating them as such is anti-conservative;
the recalibration fits are therefore tested with cluster-robust (by patient) Wald tests
of statsmodels' binomial GLM (the LR statistics are recorded beside them):

1. ``intercept`` against none: the intercept ``a`` of ``a + LP`` (``LP`` an offset)
   differs from 0;
2. ``logistic`` against ``intercept``: the slope ``b`` of ``a + b * LP`` differs
   from 1;
3. ``refit`` against ``logistic``: by 2-fold patient-grouped cross-fitting on the
   updating patients, the refitted model's log-likelihood on held-out patients exceeds
   the logistic recalibration's; the per-patient sums of the differences are compared
   by a one-sided paired t-test (patients are the independent units). The in-sample LR
   statistic with ``df`` the model's terms (features and intercept) is recorded too.

``auto`` takes the highest step whose test rejects (``refit`` before ``logistic``
before ``intercept``), and ``none`` when none does: the parent is kept unchanged.

**Per-subgroup intercepts** (``subgroup-intercept``, never chosen by ``auto``): the
fairness step of an NHS Talking Therapies repository, for a model calibrated overall but
not in one age band, gender or treatment. Each level ``g`` of the ``subgroup`` column
gets ``logit p_new = a_g + LP``, ``a_g`` fitted with a cluster-robust SE on the level's
updating encounters (when it has at least ``MIN_SUBGROUP_EVENTS`` of each outcome) and
shrunk toward the precision-weighted mean by the empirical-Bayes factor
``tau2 / (tau2 + se_g**2)`` (DerSimonian-Laird ``tau2``); the record says, per level,
the offset and what it changed on the validation patients: calibration in the large
and the share flagged. The offsets travel in the model
(:class:`~engagekit.models.SubgroupIntercepts`), so the model then needs the subgroup
column to score.
A recalibration is stored by composing it with the parent's own
:class:`~engagekit.models.LogitRecalibration` (two maps of the log-odds margin compose
into one), so the updated model is an ordinary :class:`~engagekit.models.EngagementModel`
that every command scores, explains and flags as any other.
"""

from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from .._arrays import member_mask
from .._fingerprint import data_fingerprint
from ..config import Config, load_config
from ..errors import ArgumentError, ContractError
from ..evaluation._result import Estimate, Metrics
from ..flags import FlagRule
from ._fit_record import TrainingSteps, judge_fitness
from ._manifest import (
    ModelManifest,
    SubgroupLevelUpdate,
    SubgroupUpdate,
    UpdateCurvePoint,
    UpdatePerformance,
    UpdateRecord,
    UpdateTest,
    _estimator_record,
    _training_data,
)
from ._model import EngagementModel
from ._model_metrics import ModelMetrics
from ._training import auto_bootstrap_reps, evaluate_model_predictions, fit_model, labelled_rows

__all__ = [
    "MIN_SUBGROUP_EVENTS",
    "ModelUpdate",
    "UpdateMethod",
    "UpdateStep",
    "build_update_manifest",
    "build_update_metrics",
    "update_model",
]

_P_CLIP = 1e-12
_REFIT_FOLDS = 2


class UpdateMethod(StrEnum):
    """How to update a model for a new service (``engagekit update --method``)."""

    #: the simplest adequate step, by the tests of the ladder
    AUTO = "auto"
    #: recalibration in the large: ``a + LP``
    INTERCEPT = "intercept"
    #: logistic recalibration: ``a + b * LP``
    LOGISTIC = "logistic"
    #: the model refitted on the new service
    REFIT = "refit"
    #: an intercept per level of a subgroup column: ``a_g + LP``
    SUBGROUP_INTERCEPT = "subgroup-intercept"


class UpdateStep(StrEnum):
    """The rung of the ladder an update applied."""

    NONE = "none"
    INTERCEPT = "intercept"
    LOGISTIC = "logistic"
    REFIT = "refit"
    SUBGROUP_INTERCEPT = "subgroup-intercept"


#: Fewest labelled encounters of each outcome a subgroup level needs for an intercept
#: of its own; a level with fewer gets the pooled intercept.
MIN_SUBGROUP_EVENTS = 20


@dataclass(frozen=True)
class ModelUpdate:
    """A model updated for a new service, and the record of how.

    Attributes
    ----------
    model : EngagementModel
        The updated model (the parent itself when ``record.method`` is ``none``).
    record : UpdateRecord
        Method, tests, split and before/after performance (goes in the manifest).
    before, after : Metrics
        All metrics of the parent and the updated model on the validation patients.
    flag_rule : FlagRule
        The parent's flag rule, its thresholds chosen again on the updated model's
        predictions for the updating patients.
    """

    model: EngagementModel
    record: UpdateRecord
    before: Metrics
    after: Metrics
    flag_rule: FlagRule


def update_model(
    parent: EngagementModel,
    encounters: pd.DataFrame,
    method: UpdateMethod | str = UpdateMethod.AUTO,
    config: Config | None = None,
    *,
    flag_rule: FlagRule | None = None,
    subgroup: str | None = None,
    alpha: float = 0.05,
    validation_share: float = 0.5,
    seed: int = 0,
    n_boot: int | None = None,
    n_jobs: int = 1,
) -> ModelUpdate:
    """Update ``parent`` for the service ``encounters`` come from (see the module).

    Parameters
    ----------
    parent : EngagementModel
    encounters : pandas.DataFrame
        Typed, valid encounters of the new service; rows whose outcome is empty give
        their history only.
    method : UpdateMethod or str
        ``auto`` (the tests decide), ``intercept``, ``logistic``, ``refit`` or
        ``subgroup-intercept``.
    config : Config, optional
        The parent's config (used to refit and for the subgroups of the metrics).
    flag_rule : FlagRule, optional
        The parent's flag rule: its rule and value are kept and its thresholds chosen
        again; its high threshold is the risk at which net benefit is reported. Default:
        the 10% at highest risk.
    subgroup : str, optional
        The column of ``subgroup-intercept`` (and only of it): ``treatment`` or one of
        the config's ``subgroups``.
    alpha : float
        Level of the ladder's tests.
    validation_share : float
        Share of the new service's patients kept out of the update to validate it.
    seed : int
        Seeds the split, the refit and the bootstrap.
    n_boot : int, optional
        Patient-bootstrap replicates of the CIs (0: none; None:
        :func:`~engagekit.models.auto_bootstrap_reps` of the validation encounters).
    n_jobs : int
        Threads of the bootstrap.

    Returns
    -------
    ModelUpdate

    Raises
    ------
    ValueError
        ``method`` is not an update method, or ``alpha`` or ``validation_share`` is not
        in (0, 1).
    ArgumentError
        ``subgroup`` is missing for ``subgroup-intercept``, given for another method,
        or not a subgroup column of the config and the table.
    ContractError
        The new data have no ``parent.target`` recorded, or too few patients of either
        outcome to split.

    Examples
    --------
    >>> update_model(None, None, method="shrink")
    Traceback (most recent call last):
    ...
    ValueError: unknown update method 'shrink'; expected auto, intercept, logistic, refit \
or subgroup-intercept
    """
    requested = _update_method(method)
    for name, value in (("alpha", alpha), ("validation_share", validation_share)):
        if not 0 < value < 1:
            raise ValueError(f"{name} must lie strictly between 0 and 1, found {value!r}")
    config = config if config is not None else load_config()
    _check_subgroup(requested, subgroup, config, encounters)
    target = parent.target
    encounters = encounters.reset_index(drop=True)
    updating, validation = _split_patients(encounters, target, validation_share, seed)
    lab_u = labelled_rows(updating, target)
    y_u = updating.loc[lab_u, target].to_numpy(dtype="float64")
    groups_u = updating.loc[lab_u, "patient_id"].to_numpy()
    lp_all = parent.logit(updating)
    lp_u = lp_all[lab_u]

    intercept_fit = _glm(y_u, None, lp_u, groups_u)
    logistic_fit = _glm(y_u, lp_u, None, groups_u)
    ll_none = _loglik(lp_u, y_u)
    tests = [
        _wald_test(
            UpdateStep.INTERCEPT, UpdateStep.NONE, intercept_fit, 0, 0.0,
            intercept_fit.llf - ll_none, alpha,
        ),
        _wald_test(
            UpdateStep.LOGISTIC, UpdateStep.INTERCEPT, logistic_fit, 1, 1.0,
            logistic_fit.llf - intercept_fit.llf, alpha,
        ),
    ]  # fmt: skip
    refit: EngagementModel | None = None
    if requested in (UpdateMethod.AUTO, UpdateMethod.REFIT):
        refit = fit_model(updating, target, parent.kind, config, seed=seed)
        if requested is UpdateMethod.AUTO:
            tests.append(
                _refit_test(parent, refit, updating, lp_all, config, logistic_fit.llf, alpha, seed)
            )
    if requested is UpdateMethod.AUTO:
        chosen = _choose(tests)
    else:
        chosen = UpdateStep(requested.value)

    fitted_levels: _FittedLevels | None = None
    if chosen is UpdateStep.SUBGROUP_INTERCEPT:
        assert subgroup is not None
        fitted_levels = _fit_subgroup_intercepts(updating.loc[lab_u, subgroup], y_u, lp_u, groups_u)
        model, a, b = _with_intercepts(parent, fitted_levels), None, None
    elif chosen is UpdateStep.REFIT:
        assert refit is not None
        model, a, b = refit, None, None
    elif chosen is UpdateStep.NONE:
        model, a, b = parent, 0.0, 1.0
    else:
        fit = intercept_fit if chosen is UpdateStep.INTERCEPT else logistic_fit
        a = float(fit.params[0])
        b = 1.0 if chosen is UpdateStep.INTERCEPT else float(fit.params[1])
        model = _recalibrated(parent, a, b)

    rule = _rechosen_rule(flag_rule, model, updating, lab_u)
    threshold = float(rule.threshold)
    lab_v = labelled_rows(validation, target)
    rows_v = validation[lab_v]
    if n_boot is None:
        n_boot = auto_bootstrap_reps(len(rows_v))
    y_before = parent.predict_proba(validation)[lab_v]
    y_after = model.predict_proba(validation)[lab_v]
    before, after = (
        evaluate_model_predictions(
            rows_v, target, p, config, n_boot=n_boot, seed=seed, n_jobs=n_jobs
        )
        for p in (y_before, y_after)
    )
    subgroup_record = None
    if fitted_levels is not None:
        subgroup_record = fitted_levels.record(
            before,
            after,
            rows_v[fitted_levels.column],
            (1.0 - y_before, _parent_threshold(flag_rule, threshold)),
            (1.0 - y_after, threshold),
        )
    record = UpdateRecord(
        parent_model=None,
        parent_model_sha256=None,
        requested=requested.value,
        method=chosen.value,
        alpha=alpha,
        intercept=a,
        slope=b,
        updating_patients=int(pd.unique(groups_u).size),
        updating_encounters=int(lab_u.sum()),
        validation_patients=int(rows_v["patient_id"].nunique()),
        validation_encounters=int(lab_v.sum()),
        seed=seed,
        tests=tests,
        before=_performance(before, rows_v, target, y_before, threshold, n_boot, seed),
        after=_performance(after, rows_v, target, y_after, threshold, n_boot, seed),
        subgroup=subgroup_record,
        decision_curve=[
            UpdateCurvePoint(
                threshold=b.threshold,
                before=b.net_benefit_model,
                after=a.net_benefit_model,
                flag_all=b.net_benefit_all,
            )
            for b, a in zip(before.decision_curve, after.decision_curve, strict=True)
        ],
    )
    return ModelUpdate(model=model, record=record, before=before, after=after, flag_rule=rule)


def build_update_manifest(
    parent: ModelManifest,
    update: ModelUpdate,
    encounters: pd.DataFrame,
    *,
    parent_model: str | None = None,
    source: str | None = None,
) -> ModelManifest:
    """The manifest of an updated model: the parent's, with what the update changed.

    Parameters
    ----------
    parent : ModelManifest
        The parent model's manifest (its ``model_sha256`` names it).
    update : ModelUpdate
        What :func:`update_model` returned.
    encounters : pandas.DataFrame
        The new service's table (hashed, counted and dated for the record).
    parent_model : str, optional
        The parent's directory or name.
    source : str, optional
        Where the new table came from.

    Returns
    -------
    ModelManifest
        Not yet stamped (saving does); ``update`` records the parent, the method and
        the tests, ``metrics`` the updated model's headline values on the validation
        patients, and ``fit_for_use`` the verdict on them.
    """
    model, after = update.model, update.after
    fitness = judge_fitness(after)
    if update.record.method == UpdateStep.REFIT and model.fit_record is not None:
        steps = TrainingSteps(
            final_model=model.fit_record, cross_validation_folds=(), fitness=fitness
        )
    else:
        steps = dataclasses.replace(parent.training_steps, fitness=fitness)
    record = update.record.model_copy(
        update={"parent_model": parent_model, "parent_model_sha256": parent.model_sha256}
    )
    return parent.model_copy(
        update={
            "kind": str(model.kind),
            "features": list(model.feature_names),
            "training_data_sha256": data_fingerprint(encounters),
            "training_data": _training_data(encounters, source),
            "estimator": _estimator_record(model.estimator),
            "n_encounters": record.updating_encounters,
            "n_patients": record.updating_patients,
            "tuning": dict(model.tuning),
            "flag_rule": update.flag_rule,
            "recalibration": model.recalibration,
            "fit_for_use": fitness.fit_for_use,
            "unfit_reason": fitness.unfit_reason,
            "training_steps": steps,
            "metrics": {
                k: v
                for k, v in after.to_dict().items()
                if k != "format_version" and not isinstance(v, (dict, list))
            },
            "update": record,
            "created": None,
            "versions": None,
            "model_file": None,
            "model_sha256": None,
        }
    )


def build_update_metrics(
    parent: ModelMetrics, manifest: ModelManifest, update: ModelUpdate, encounters: pd.DataFrame
) -> ModelMetrics:
    """The ``metrics.json`` of an updated model: its metrics on the new service's
    validation patients, with the update's record.

    Parameters
    ----------
    parent : ModelMetrics
        The parent model's metrics (its ``cv_folds`` and kind selection are kept).
    manifest : ModelManifest
        The updated model's manifest (:func:`build_update_manifest`).
    update : ModelUpdate
    encounters : pandas.DataFrame
        The new service's table (its encounters without an outcome are counted).

    Returns
    -------
    ModelMetrics
    """
    target = update.model.target
    unlabelled = int((~labelled_rows(encounters, target)).sum())
    return ModelMetrics(
        **dict(update.after),
        n_excluded_missing_outcome=unlabelled,
        cv_folds=parent.cv_folds,
        model=str(update.model.kind),
        target=target,
        covariates_left_out=parent.covariates_left_out,
        flag_rule=update.flag_rule,
        fit_for_use=manifest.fit_for_use,
        unfit_reason=manifest.unfit_reason,
        training_steps=manifest.training_steps,
        selection=parent.selection,
        update=manifest.update,
    )


def _update_method(method: UpdateMethod | str) -> UpdateMethod:
    try:
        return UpdateMethod(method)
    except ValueError:
        names = [m.value for m in UpdateMethod]
        expected = f"{', '.join(names[:-1])} or {names[-1]}"
        raise ValueError(f"unknown update method {method!r}; expected {expected}") from None


def _split_patients(
    encounters: pd.DataFrame, target: str, validation_share: float, seed: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(updating, validation) encounters: the labelled patients split at random."""
    labelled = labelled_rows(encounters, target)
    if not labelled.any():
        raise ContractError(f"no encounter of the new service has {target!r} recorded")
    patients = encounters["patient_id"].to_numpy()
    candidates = pd.unique(patients[labelled])
    rng = np.random.default_rng(seed)
    n_validation = round(validation_share * len(candidates))
    chosen = rng.choice(candidates, size=n_validation, replace=False)
    in_validation = member_mask(patients, chosen)
    updating, validation = encounters[~in_validation], encounters[in_validation]
    for name, part in (("updating", updating), ("validation", validation)):
        y = part[target].dropna()
        if y.nunique() < 2:
            raise ContractError(
                f"the {name} patients of the new service ({part['patient_id'].nunique():,}) "
                f"do not have both outcomes of {target!r} recorded; an update needs more "
                "patients"
            )
    return updating.reset_index(drop=True), validation.reset_index(drop=True)


def _glm(y: np.ndarray, lp: np.ndarray | None, offset: np.ndarray | None, groups: np.ndarray):
    """Binomial GLM of ``y`` on an intercept (and ``lp``), with cluster-robust SEs."""
    import statsmodels.api as sm

    design = np.ones((y.size, 1)) if lp is None else np.column_stack([np.ones_like(lp), lp])
    codes = pd.factorize(groups)[0]
    model = sm.GLM(y, design, family=sm.families.Binomial(), offset=offset)
    with warnings.catch_warnings():
        # statsmodels' notice that a cluster count is small; thousands of patients here
        warnings.simplefilter("ignore", category=RuntimeWarning)
        return model.fit(cov_type="cluster", cov_kwds={"groups": codes})


def _loglik(eta: np.ndarray, y: np.ndarray) -> float:
    return float(np.sum(y * eta - np.logaddexp(0.0, eta)))


def _wald_test(
    step: UpdateStep,
    against: UpdateStep,
    fit: Any,
    index: int,
    null: float,
    ll_gain: float,
    alpha: float,
) -> UpdateTest:
    """Cluster-robust Wald test of one parameter, with the LR statistic beside it."""
    z = (float(fit.params[index]) - null) / float(fit.bse[index])
    p = float(2 * stats.norm.sf(abs(z)))
    lr = max(0.0, 2 * ll_gain)
    return UpdateTest(
        step=step.value,
        against=against.value,
        test="cluster-robust Wald (by patient)",
        lr_statistic=lr,
        df=1,
        lr_p_value=float(stats.chi2.sf(lr, df=1)),
        statistic=z,
        p_value=p,
        rejected=p < alpha,
    )


def _refit_test(
    parent: EngagementModel,
    refit: EngagementModel,
    updating: pd.DataFrame,
    lp: np.ndarray,
    config: Config,
    ll_logistic: float,
    alpha: float,
    seed: int,
) -> UpdateTest:
    """Refit against logistic recalibration, on held-out updating patients (``lp``: the
    parent's log-odds of every updating row)."""
    target = parent.target
    labelled = labelled_rows(updating, target)
    y = updating[target].to_numpy(dtype="float64", na_value=np.nan)
    patients = updating["patient_id"].to_numpy()
    unique = pd.unique(patients[labelled])
    folds = np.random.default_rng(seed).permutation(len(unique)) % _REFIT_FOLDS
    # -1: a patient with no outcome recorded, whose rows are in no fold
    fold = pd.Series(folds, index=unique).reindex(patients).fillna(-1).to_numpy(dtype=int)
    diff = np.zeros(len(updating))
    for k in range(_REFIT_FOLDS):
        train, test = (fold != k) & (fold >= 0), (fold == k) & labelled
        train_rows = member_mask(patients, pd.unique(patients[train]))
        model = fit_model(updating[train_rows], target, parent.kind, config, seed=seed + k)
        fit_rows = train & labelled
        recal = _glm(y[fit_rows], lp[fit_rows], None, patients[fit_rows])
        eta_logistic = recal.params[0] + recal.params[1] * lp[test]
        # a row's features come from its patient's own sessions only
        eta_refit = model.logit(updating)[test]
        diff[test] = _row_loglik(eta_refit, y[test]) - _row_loglik(eta_logistic, y[test])
    per_patient = pd.Series(diff[labelled]).groupby(patients[labelled]).sum().to_numpy()
    result = stats.ttest_1samp(per_patient, 0.0, alternative="greater")
    terms = len(refit.feature_names) + 1
    ll_refit = _loglik(refit.logit(updating)[labelled], y[labelled])
    lr = max(0.0, 2 * (ll_refit - ll_logistic))
    return UpdateTest(
        step=UpdateStep.REFIT.value,
        against=UpdateStep.LOGISTIC.value,
        test=f"held-out log-likelihood, {_REFIT_FOLDS}-fold by patient, paired t-test",
        lr_statistic=lr,
        df=max(1, terms - 2),
        lr_p_value=float(stats.chi2.sf(lr, df=max(1, terms - 2))),
        statistic=float(result.statistic),
        p_value=float(result.pvalue),
        rejected=bool(result.pvalue < alpha),
    )


def _row_loglik(eta: np.ndarray, y: np.ndarray) -> np.ndarray:
    return y * eta - np.logaddexp(0.0, eta)


def _check_subgroup(
    method: UpdateMethod, subgroup: str | None, config: Config, encounters: pd.DataFrame
) -> None:
    """Refuse a subgroup the method cannot use, or a method without the subgroup it needs."""
    allowed = ["treatment", *config.subgroups]
    listed = ", ".join(repr(c) for c in allowed)
    if method is not UpdateMethod.SUBGROUP_INTERCEPT:
        if subgroup is not None:
            raise ArgumentError(
                f"a subgroup ({subgroup!r}) is the column of the subgroup-intercept method "
                f"only; the method {method.value!r} updates every patient alike"
            )
        return
    if subgroup is None:
        raise ArgumentError(
            f"the subgroup-intercept method needs the subgroup column to recalibrate: one "
            f"of {listed}"
        )
    if subgroup not in allowed:
        raise ArgumentError(
            f"{subgroup!r} is not a subgroup of the config: choose one of {listed} (a "
            "column is made a subgroup under 'subgroups' in the config)"
        )
    if subgroup not in encounters.columns:
        raise ArgumentError(f"the new service's table has no column {subgroup!r} to recalibrate by")


def _as_levels(values: pd.Series) -> np.ndarray:
    """A subgroup column as its levels' text, as the subgroup metrics name them."""
    from ._calibration import MISSING_LEVEL

    return values.astype("string").fillna(MISSING_LEVEL).to_numpy(dtype=object)


@dataclass(frozen=True)
class _FittedLevels:
    """The per-level intercepts fitted on the updating patients, before validation."""

    column: str
    levels: tuple[str, ...]
    n_encounters: tuple[int, ...]
    n_patients: tuple[int, ...]
    raw: tuple[float | None, ...]
    se: tuple[float | None, ...]
    offsets: tuple[float, ...]
    pooled: float
    tau2: float
    q: float | None
    q_df: int

    def intercepts(self):
        from ._calibration import SubgroupIntercepts

        return SubgroupIntercepts(self.column, self.levels, self.offsets, default=self.pooled)

    def record(
        self,
        before: Metrics,
        after: Metrics,
        validation_levels: pd.Series,
        risk_before: tuple[np.ndarray, float],
        risk_after: tuple[np.ndarray, float],
    ) -> SubgroupUpdate:
        """The record, with what the update changed on the validation patients."""
        levels_v = _as_levels(validation_levels)

        def flagged(level: str, risk: tuple[np.ndarray, float]) -> float | None:
            rows = levels_v == level
            return float(np.mean(risk[0][rows] >= risk[1])) if rows.any() else None

        def calibration(metrics: Metrics, level: str) -> Estimate:
            block = metrics.by_group.get(self.column, {}).get(level)
            if block is None:
                return Estimate(value=None, ci_low=None, ci_high=None, n_boot=0)
            return block.estimate("calibration_intercept")

        return SubgroupUpdate(
            column=self.column,
            min_events=MIN_SUBGROUP_EVENTS,
            pooled=self.pooled,
            tau2=self.tau2,
            heterogeneity_q=self.q,
            heterogeneity_df=self.q_df,
            heterogeneity_p=None if self.q is None else float(stats.chi2.sf(self.q, self.q_df)),
            levels=[
                SubgroupLevelUpdate(
                    level=level,
                    updating_encounters=self.n_encounters[i],
                    updating_patients=self.n_patients[i],
                    raw_offset=self.raw[i],
                    standard_error=self.se[i],
                    offset=self.offsets[i],
                    calibration_before=calibration(before, level),
                    calibration_after=calibration(after, level),
                    flagged_before=flagged(level, risk_before),
                    flagged_after=flagged(level, risk_after),
                )
                for i, level in enumerate(self.levels)
            ],
        )


def _fit_subgroup_intercepts(
    column: pd.Series, y: np.ndarray, lp: np.ndarray, groups: np.ndarray
) -> _FittedLevels:
    """Each level's intercept on ``lp``, shrunk toward their weighted mean (the module)."""
    levels_of_rows = _as_levels(column)
    levels = tuple(sorted(pd.unique(levels_of_rows), key=str))
    n_enc: list[int] = []
    n_pat: list[int] = []
    raw: list[float | None] = []
    se: list[float | None] = []
    for level in levels:
        rows = levels_of_rows == level
        n_enc.append(int(rows.sum()))
        n_pat.append(int(pd.unique(groups[rows]).size))
        events = int(min(y[rows].sum(), rows.sum() - y[rows].sum()))
        if events < MIN_SUBGROUP_EVENTS:
            raw.append(None)
            se.append(None)
            continue
        fit = _glm(y[rows], None, lp[rows], groups[rows])
        raw.append(float(fit.params[0]))
        se.append(float(fit.bse[0]))
    estimated = [i for i, a in enumerate(raw) if a is not None]
    if not estimated:
        # no level has the events for an intercept of its own: one intercept for all
        fit = _glm(y, None, lp, groups)
        pooled, tau2, q, q_df = float(fit.params[0]), 0.0, None, 0
    else:
        a = np.array([raw[i] for i in estimated], dtype=float)
        v = np.array([se[i] for i in estimated], dtype=float) ** 2
        w = 1.0 / v
        pooled = float(np.sum(w * a) / np.sum(w))
        q_df = len(estimated) - 1
        q = float(np.sum(w * (a - pooled) ** 2)) if q_df > 0 else None
        # DerSimonian-Laird between-level variance
        denominator = float(np.sum(w) - np.sum(w**2) / np.sum(w))
        tau2 = max(0.0, (q - q_df) / denominator) if q is not None and denominator > 0 else 0.0
        if tau2 > 0:
            # the weighted mean the random-effects model shrinks toward
            w_re = 1.0 / (v + tau2)
            pooled = float(np.sum(w_re * a) / np.sum(w_re))
    offsets = []
    for a_g, se_g in zip(raw, se, strict=True):
        if a_g is None or se_g is None:
            offsets.append(pooled)
        else:
            weight = tau2 / (tau2 + se_g**2) if tau2 > 0 else 0.0
            offsets.append(pooled + weight * (a_g - pooled))
    return _FittedLevels(
        column=str(column.name),
        levels=levels,
        n_encounters=tuple(n_enc),
        n_patients=tuple(n_pat),
        raw=tuple(raw),
        se=tuple(se),
        offsets=tuple(offsets),
        pooled=pooled,
        tau2=tau2,
        q=q,
        q_df=max(q_df, 0),
    )


def _with_intercepts(parent: EngagementModel, fitted: _FittedLevels) -> EngagementModel:
    """``parent`` with the fitted per-level intercepts added to its log-odds."""
    return dataclasses.replace(
        parent, subgroup_intercepts=(*parent.subgroup_intercepts, fitted.intercepts())
    )


def _parent_threshold(rule: FlagRule | None, rechosen: float) -> float:
    """The parent's flag threshold (the rechosen one when the parent has no rule)."""
    return rechosen if rule is None else float(rule.threshold)


def _choose(tests: list[UpdateTest]) -> UpdateStep:
    """The highest step whose test rejects; none when none does."""
    for step in (UpdateStep.REFIT, UpdateStep.LOGISTIC, UpdateStep.INTERCEPT):
        if any(t.step == step.value and t.rejected for t in tests):
            return step
    return UpdateStep.NONE


def _recalibrated(parent: EngagementModel, a: float, b: float) -> EngagementModel:
    """``parent`` with ``a + b * LP`` composed into its recalibration of the margin."""
    old = parent.recalibration
    # two maps of the log-odds compose into one; the record of the first fit is kept
    recalibration = dataclasses.replace(
        old, intercept=a + b * old.intercept, slope=b * old.slope, applied=True
    )
    # a + b * (old(margin) + offsets): the parent's subgroup offsets are scaled by b too
    intercepts = tuple(shift.scaled(b) for shift in parent.subgroup_intercepts)
    return dataclasses.replace(parent, recalibration=recalibration, subgroup_intercepts=intercepts)


def _rechosen_rule(
    rule: FlagRule | None, model: EngagementModel, updating: pd.DataFrame, labelled: np.ndarray
) -> FlagRule:
    """The parent's flag rule with its thresholds chosen on the updated predictions."""
    from ..choices import FlagRuleKind
    from ..flags import choose_flag_rule

    kind, value = (FlagRuleKind.TOP_PERCENT, 10.0) if rule is None else (rule.rule, rule.value)
    rows = updating[labelled]
    practitioners = (
        rows["practitioner_id"].to_numpy() if "practitioner_id" in rows.columns else None
    )
    if kind is FlagRuleKind.PER_PRACTITIONER and practitioners is None:
        raise ArgumentError(
            "the parent's flag rule is per_practitioner, but the new service's table has "
            "no 'practitioner_id' column"
        )
    return choose_flag_rule(
        rows[model.target].to_numpy(dtype="float64"),
        model.predict_proba(updating)[labelled],
        kind,
        value,
        practitioners,
        patients=rows["patient_id"].to_numpy(),
        target=model.target,
    )


def _performance(
    metrics: Metrics,
    rows: pd.DataFrame,
    target: str,
    p: np.ndarray,
    threshold: float,
    n_boot: int,
    seed: int,
) -> UpdatePerformance:
    """Calibration, AUROC and net benefit at ``threshold``, with patient-bootstrap CIs,
    of the probabilities ``p`` of the labelled validation ``rows``."""
    from ..evaluation import cluster_bootstrap

    y = rows[target].to_numpy(dtype="float64")
    risk = 1.0 - p

    def net_benefit(bad: np.ndarray, r: np.ndarray, sample_weight=None) -> dict[str, float]:
        w = np.ones_like(bad) if sample_weight is None else sample_weight
        flagged = r >= threshold
        n = w.sum()
        tp = np.sum(w * (flagged & (bad == 1)))
        fp = np.sum(w * (flagged & (bad == 0)))
        return {"net_benefit": float(tp / n - fp / n * threshold / (1 - threshold))}

    out = cluster_bootstrap(
        1.0 - y,
        risk,
        rows["patient_id"].to_numpy(),
        net_benefit,
        n_boot=n_boot,
        seed=seed,
    )
    overall = metrics.overall
    return UpdatePerformance(
        calibration_intercept=overall.calibration_intercept,
        calibration_slope=overall.calibration_slope,
        auroc=overall.auroc,
        net_benefit=Estimate(
            value=_finite(out["net_benefit"]),
            ci_low=_finite(out["net_benefit_ci_low"]),
            ci_high=_finite(out["net_benefit_ci_high"]),
            n_boot=int(out["net_benefit_n_boot"]),
        ),
        net_benefit_threshold=threshold,
    )


def _finite(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None
