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
    UpdatePerformance,
    UpdateRecord,
    UpdateTest,
    _estimator_record,
    _training_data,
)
from ._model import EngagementModel
from ._training import auto_bootstrap_reps, evaluate_model_predictions, fit_model, labelled_rows

__all__ = [
    "ModelUpdate",
    "UpdateMethod",
    "UpdateStep",
    "build_update_manifest",
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


class UpdateStep(StrEnum):
    """The rung of the ladder an update applied."""

    NONE = "none"
    INTERCEPT = "intercept"
    LOGISTIC = "logistic"
    REFIT = "refit"


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
        ``auto`` (the tests decide), ``intercept``, ``logistic`` or ``refit``.
    config : Config, optional
        The parent's config (used to refit and for the subgroups of the metrics).
    flag_rule : FlagRule, optional
        The parent's flag rule: its rule and value are kept and its thresholds chosen
        again; its high threshold is the risk at which net benefit is reported. Default:
        the 10% at highest risk.
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
    ContractError
        The new data have no ``parent.target`` recorded, or too few patients of either
        outcome to split.

    Examples
    --------
    >>> update_model(None, None, method="shrink")
    Traceback (most recent call last):
    ...
    ValueError: unknown update method 'shrink'; expected auto, intercept, logistic or refit
    """
    requested = _update_method(method)
    for name, value in (("alpha", alpha), ("validation_share", validation_share)):
        if not 0 < value < 1:
            raise ValueError(f"{name} must lie strictly between 0 and 1, found {value!r}")
    config = config if config is not None else load_config()
    target = parent.target
    encounters = encounters.reset_index(drop=True)
    updating, validation = _split_patients(encounters, target, validation_share, seed)
    lab_u = labelled_rows(updating, target)
    y_u = updating.loc[lab_u, target].to_numpy(dtype="float64")
    groups_u = updating.loc[lab_u, "patient_id"].to_numpy()
    lp_u = parent.logit(updating)[lab_u]

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
                _refit_test(parent, refit, updating, config, logistic_fit.llf, alpha, seed)
            )
    if requested is UpdateMethod.AUTO:
        chosen = _choose(tests)
    else:
        chosen = UpdateStep(requested.value)

    if chosen is UpdateStep.REFIT:
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
        before=_performance(before, parent, validation, lab_v, threshold, n_boot, seed),
        after=_performance(after, model, validation, lab_v, threshold, n_boot, seed),
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
    config: Config,
    ll_logistic: float,
    alpha: float,
    seed: int,
) -> UpdateTest:
    """Refit against logistic recalibration, on held-out updating patients."""
    target = parent.target
    labelled = labelled_rows(updating, target)
    y = updating[target].to_numpy(dtype="float64", na_value=np.nan)
    patients = updating["patient_id"].to_numpy()
    unique = pd.unique(patients[labelled])
    folds = np.random.default_rng(seed).permutation(len(unique)) % _REFIT_FOLDS
    # -1: a patient with no outcome recorded, whose rows are in no fold
    fold = pd.Series(folds, index=unique).reindex(patients).fillna(-1).to_numpy(dtype=int)
    lp = parent.logit(updating)
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
    return dataclasses.replace(parent, recalibration=recalibration)


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
    model: EngagementModel,
    validation: pd.DataFrame,
    labelled: np.ndarray,
    threshold: float,
    n_boot: int,
    seed: int,
) -> UpdatePerformance:
    """Calibration, AUROC and net benefit at ``threshold``, with patient-bootstrap CIs."""
    from ..evaluation import cluster_bootstrap

    y = validation.loc[labelled, model.target].to_numpy(dtype="float64")
    risk = 1.0 - model.predict_proba(validation)[labelled]

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
        validation.loc[labelled, "patient_id"].to_numpy(),
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
