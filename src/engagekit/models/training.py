"""Fit and validate engagement models honestly.

- Only rows whose outcome is recorded are fitted or scored against; rows with an empty
  outcome still give their history to later sessions' features.
- Cross-validation is grouped by patient: no patient is on both sides of a split.
- Calibration is corrected inside each training set only: a random 15% of its patients
  is held out, the model is fitted on the rest (the trees stop early on the held-out
  patients), and a logistic recalibration of the margin is fitted on the held-out
  patients if they hold enough of each outcome and a likelihood-ratio test finds the
  calibration off (see :mod:`engagekit.models.calibration`). The logistic model is
  then refitted on all patients (the trees keep their early-stopped fit). The same
  held-out patients choose the logistic model's penalty (see
  :mod:`engagekit.models.estimators`), so tuning never sees a test fold.
- With fewer than about 200 patients (15% of them under 30), none is held out: the
  penalty takes its default, the trees a fixed number of iterations, and calibration is
  not checked. Each model's :class:`~engagekit.models.FitRecord` says which steps ran.
- A model whose validated AUROC cannot be told from chance is marked unfit for use
  (:func:`~engagekit.models.judge_fitness`); it is still returned, with the verdict.
- ``auto`` picks the kind with the lower cross-validated log loss.
- Optionally, a temporal split: everything above happens on the encounters dated before
  the split date, and the final model is then scored on the encounters from that date
  on (their features still use the patient's earlier sessions, as they would in use).
"""

from __future__ import annotations

import datetime
import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np
import pandas as pd
from sklearn.metrics import log_loss
from sklearn.model_selection import GroupKFold
from threadpoolctl import threadpool_limits

from ..config import Config, load_config
from ..errors import ContractError
from ..features import EncounterFeatures
from .calibration import LogitRecalibration, fit_logit_recalibration
from .estimators import LOGISTIC_GRID, MODEL_KINDS, make_estimator, penalty_weights
from .fit_record import EarlyStopping, FitnessForUse, FitRecord, TuningStatus, judge_fitness
from .model import EngagementModel

__all__ = [
    "CrossValidation",
    "TrainingResult",
    "TrainingSteps",
    "auto_bootstrap_reps",
    "cross_validate",
    "evaluate_model_predictions",
    "fit_model",
    "labelled_rows",
    "train_model",
]

_CALIBRATION_SHARE = 0.15
_MIN_CALIBRATION_PATIENTS = 30
# The logistic model's penalty is tuned on at most about this many labelled rows (a
# random set of patients): the choice settles long before a million rows.
_TUNING_ROWS = 60_000
# Above this many labelled rows the logistic model keeps its fit on the 85% of patients
# not held out: refitting on all of them would cost a second large fit for a negligible
# gain in precision.
_REFIT_ROWS = 300_000
_DEFAULT_LOGISTIC = {"C": 0.003, "interaction_weight": 0.3}


def _member(values: np.ndarray, chosen: Any) -> np.ndarray:
    """Boolean mask of ``values`` in ``chosen``, by hashing (``np.isin`` sorts object
    arrays such as patient ids, which took minutes on a million rows)."""
    return pd.Series(values).isin(pd.Series(chosen)).to_numpy()


def labelled_rows(encounters: pd.DataFrame, target: str) -> np.ndarray:
    """Boolean mask of rows whose ``target`` is recorded."""
    if target not in encounters.columns:
        raise ContractError(
            f"the table has no {target!r} column, so there is nothing to fit for that outcome"
        )
    return encounters[target].notna().to_numpy()


_F = TypeVar("_F", bound=Callable[..., Any])


def _one_blas_thread(fn: _F) -> _F:
    """Run ``fn`` with BLAS on one thread.

    The fits multiply tall, narrow matrices (encounters × about 100 features) many
    times over; OpenBLAS's threads cost more to start and synchronise than they save
    there. Measured on a 2-core machine: a logistic fit on 15,865 encounters took 1.48 s
    with two BLAS threads and 0.34 s with one (160,795 encounters: 6.9 s and 5.0 s), and
    ``train_model(..., "auto")`` on 3,000 patients 21 s and 13 s. The bootstrap's own
    threads then no longer compete with BLAS threads for the cores either.
    """

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with threadpool_limits(limits=1, user_api="blas"):
            return fn(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


@_one_blas_thread
def fit_model(
    encounters: pd.DataFrame,
    target: str,
    kind: str,
    config: Config | None = None,
    seed: int = 0,
) -> EngagementModel:
    """Fit one model of ``kind`` for ``target`` on all patients of ``encounters``.

    Parameters
    ----------
    encounters : pandas.DataFrame
        Typed, valid encounters (see :func:`engagekit.check_encounters`).
    target : {"attended_next", "adherent"}
    kind : {"logistic", "gbm"}
    config : Config, optional
    seed : int
        Seeds the held-out calibration patients and the trees.

    Returns
    -------
    EngagementModel
        With ``fit_record``, a :class:`FitRecord` of the steps that ran: whether 15% of
        the patients were held out (at least 30 of them) and, on them, whether the
        penalty was tuned, the trees stopped early and calibration was checked and
        corrected (see :mod:`engagekit.models.calibration`).

    Raises
    ------
    ContractError
        The outcome is absent, never recorded, or has one value only.
    ConfigError
        A feature would be read from an outcome column (an attribute or covariate
        named ``attended_next`` or ``adherent``), even in a config built without
        validation: the model would be given the answer it is to predict.
    """
    if kind not in MODEL_KINDS:
        raise ValueError(f"unknown model kind {kind!r}; expected one of {list(MODEL_KINDS)}")
    config = config if config is not None else load_config()
    labelled = labelled_rows(encounters, target)
    if labelled.sum() == 0:
        raise ContractError(f"no encounter has {target!r} recorded; nothing to fit")
    y_all = encounters[target].to_numpy(dtype="float64", na_value=np.nan)
    if len(np.unique(y_all[labelled])) < 2:
        raise ContractError(
            f"every recorded {target!r} has the same value; a model needs both 0 and 1"
        )
    patients = encounters["patient_id"].to_numpy()
    rng = np.random.default_rng(seed)
    unique_patients = pd.unique(patients[labelled])
    n_cal = round(_CALIBRATION_SHARE * len(unique_patients))
    if n_cal >= _MIN_CALIBRATION_PATIENTS:
        cal_patients = rng.choice(unique_patients, size=n_cal, replace=False)
        in_cal = _member(patients, cal_patients)
    else:
        in_cal = np.zeros(len(patients), dtype=bool)
    fit_rows = labelled & ~in_cal
    cal_rows = labelled & in_cal

    features = EncounterFeatures.from_config(config).fit(encounters[~in_cal])
    model = EngagementModel(
        target=target,
        kind=kind,
        features=features,
        estimator=make_estimator(kind, seed=seed),
        interaction_attributes=tuple(config.attribute_names) if kind == "logistic" else (),
        interaction_treatments=tuple(config.treatment_names) if kind == "logistic" else (),
    )
    X = model.design(encounters).to_numpy()
    y = y_all.astype("float64")
    if kind == "logistic":
        start = None
        if cal_rows.any():
            start, model.tuning = _tune_logistic(X, y, fit_rows, cal_rows, patients, model, seed)
        else:
            model.tuning = {
                **_DEFAULT_LOGISTIC,
                "chosen_by": f"default (fewer than {_MIN_CALIBRATION_PATIENTS} patients "
                "to hold out for tuning)",
            }
        model.estimator = make_estimator(
            "logistic",
            C=model.tuning["C"],
            weights=penalty_weights(model.feature_names, model.tuning["interaction_weight"]),
        )
        if start is not None:
            # begin from the tuning fit's solution: far fewer iterations on large data
            logistic = model.estimator.named_steps["logistic"]
            logistic.set_params(warm_start=True)
            logistic.coef_, logistic.intercept_ = start
        model.estimator.fit(X[fit_rows], y[fit_rows])
    elif cal_rows.any():
        model.estimator.fit(X[fit_rows], y[fit_rows], X_val=X[cal_rows], y_val=y[cal_rows])
    else:
        model.estimator.set_params(early_stopping=False, max_iter=100)
        model.estimator.fit(X[fit_rows], y[fit_rows])
    if cal_rows.any():
        margin = model.estimator.decision_function(X[cal_rows])
        model.recalibration = fit_logit_recalibration(margin, y[cal_rows])
    else:
        model.recalibration = LogitRecalibration()
    refit = bool(kind == "logistic" and cal_rows.any() and labelled.sum() <= _REFIT_ROWS)
    if refit:
        # The held-out patients have done their job (tuning, judging calibration); a
        # logistic fit is stable, so refit it on every labelled row and keep the map.
        model.estimator.fit(X[labelled], y[labelled])
    held_out = bool(cal_rows.any())
    if kind == "logistic":
        tuning = TuningStatus.TUNED if held_out else TuningStatus.DEFAULT
        stopping, iterations, ceiling = EarlyStopping.NOT_APPLICABLE, 0, 0
    else:
        tuning = TuningStatus.FIXED
        stopping = EarlyStopping.USED if held_out else EarlyStopping.NOT_USED
        iterations = int(model.estimator.n_iter_)
        ceiling = int(model.estimator.max_iter)
    model.fit_record = FitRecord(
        kind=kind,
        n_patients=len(unique_patients),
        n_encounters=int(labelled.sum()),
        held_out_patients=len(pd.unique(patients[cal_rows])),
        held_out_encounters=int(cal_rows.sum()),
        held_out_share=_CALIBRATION_SHARE,
        min_held_out_patients=_MIN_CALIBRATION_PATIENTS,
        tuning=tuning,
        early_stopping=stopping,
        boosting_iterations=iterations,
        max_boosting_iterations=ceiling,
        refit_on_all_patients=refit,
        recalibration=model.recalibration,
    )
    return model


def _tune_logistic(
    X: np.ndarray,
    y: np.ndarray,
    fit_rows: np.ndarray,
    cal_rows: np.ndarray,
    patients: np.ndarray,
    model: EngagementModel,
    seed: int,
) -> tuple[tuple[np.ndarray, np.ndarray], dict[str, Any]]:
    """The ``(C, interaction weight)`` of :data:`LOGISTIC_GRID` with the lowest log loss
    on the held-out patients, each candidate fitted on the other training patients (a
    random subset of them above ``_TUNING_ROWS`` rows).

    Returns the chosen candidate's ``(coef_, intercept_)`` (a starting point for the
    full fit) and the record of the choice.
    """
    rows = fit_rows
    if fit_rows.sum() > _TUNING_ROWS:
        candidates = pd.unique(patients[fit_rows])
        share = _TUNING_ROWS / fit_rows.sum()
        rng = np.random.default_rng(seed + 1)
        keep = rng.choice(candidates, size=int(len(candidates) * share), replace=False)
        rows = fit_rows & _member(patients, keep)
    losses = []
    starts = []
    estimators: dict[float, Any] = {}
    for C, interaction_weight in LOGISTIC_GRID:
        if interaction_weight not in estimators:
            estimators[interaction_weight] = make_estimator(
                "logistic", weights=penalty_weights(model.feature_names, interaction_weight)
            )
        estimator = estimators[interaction_weight]
        # warm start: each C begins from the solution of the previous one
        estimator.set_params(logistic__C=C, logistic__warm_start=True)
        estimator.fit(X[rows], y[rows])
        p = estimator.predict_proba(X[cal_rows])[:, 1]
        losses.append(float(log_loss(y[cal_rows], p, labels=[0, 1])))
        logistic = estimator.named_steps["logistic"]
        starts.append((logistic.coef_.copy(), logistic.intercept_.copy()))
    best = int(np.argmin(losses))
    C, interaction_weight = LOGISTIC_GRID[best]
    return starts[best], {
        "C": C,
        "interaction_weight": interaction_weight,
        "chosen_by": "lowest log loss on the held-out training patients",
        "tuning_rows": int(rows.sum()),
        "held_out_rows": int(cal_rows.sum()),
        "grid_log_loss": [
            {"C": c, "interaction_weight": w, "log_loss": loss}
            for (c, w), loss in zip(LOGISTIC_GRID, losses, strict=True)
        ],
    }


@dataclass
class CrossValidation:
    """Out-of-fold predictions of one model kind.

    Attributes
    ----------
    kind : str
    predictions : pandas.Series
        Calibrated probability for every labelled row, indexed like ``encounters``,
        each from a model that never saw that row's patient.
    log_loss : float
    folds : int
    details : list of dict
        Per fold: rows, patients, whether recalibration was applied, and ``fit``, the
        :meth:`FitRecord.to_dict` of the fold's model (which steps ran).
    fit_records : list of FitRecord
        The fold models' records, in fold order.
    """

    kind: str
    predictions: pd.Series
    log_loss: float
    folds: int
    details: list[dict[str, Any]] = field(default_factory=list)
    fit_records: list[FitRecord] = field(default_factory=list)


def cross_validate(
    encounters: pd.DataFrame,
    target: str,
    kind: str,
    config: Config | None = None,
    n_splits: int = 5,
    seed: int = 0,
    progress=None,
) -> CrossValidation:
    """Patient-grouped K-fold cross-validation of one model kind.

    ``progress(done, total)``, if given, is called after each fold.
    """
    config = config if config is not None else load_config()
    encounters = encounters.reset_index(drop=True)
    labelled = labelled_rows(encounters, target)
    patients = encounters["patient_id"].to_numpy()
    n_patients = len(pd.unique(patients[labelled]))
    if n_patients < n_splits:
        raise ContractError(
            f"{n_patients} patient(s) have {target!r} recorded; {n_splits}-fold "
            "cross-validation needs at least one per fold"
        )
    splitter = GroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    oof = np.full(len(encounters), np.nan)
    details = []
    records: list[FitRecord] = []
    # integer codes: scikit-learn's shuffled GroupKFold runs np.isin on the groups, which
    # sorts object arrays such as patient ids (seconds per fold at 100k rows)
    codes = pd.factorize(patients)[0]
    for fold, (train_idx, test_idx) in enumerate(splitter.split(encounters, groups=codes)):
        train = encounters.iloc[train_idx]
        test = encounters.iloc[test_idx]
        model = fit_model(train, target, kind, config, seed=seed + fold)
        p = model.predict_proba(test)
        test_labelled = labelled[test_idx]
        oof[test_idx[test_labelled]] = p[test_labelled]
        details.append(
            {
                "fold": fold,
                "train_patients": len(pd.unique(patients[train_idx])),
                "test_patients": len(pd.unique(patients[test_idx])),
                "test_encounters_scored": int(test_labelled.sum()),
                "recalibrated": bool(model.recalibration.applied),
                "fit": model.fit_record.to_dict(),
            }
        )
        records.append(model.fit_record)
        if progress is not None:
            progress(fold + 1, n_splits)
    y = encounters.loc[labelled, target].to_numpy(dtype="float64")
    predictions = pd.Series(oof[labelled], index=encounters.index[labelled], name=f"p_{target}")
    return CrossValidation(
        kind=kind,
        predictions=predictions,
        log_loss=float(log_loss(y, np.clip(predictions.to_numpy(), 1e-15, 1 - 1e-15))),
        folds=n_splits,
        details=details,
        fit_records=records,
    )


# Above this many labelled rows, ``auto`` compares the kinds on a random subset of
# patients of about this size (by 3-fold patient-grouped CV), then cross-validates only
# the chosen kind on all data with the requested folds: the choice is stable long before
# a million rows, and it halves the training time.
AUTO_SELECTION_ROWS = 100_000
_SELECTION_FOLDS = 3


@dataclass(frozen=True)
class TrainingSteps:
    """What :func:`train_model` did: the steps each model's fit ran, and the verdict.

    Attributes
    ----------
    final_model : FitRecord
        The steps of the fit of the model that is returned and saved.
    cross_validation_folds : tuple of FitRecord
        The steps of each fold's fit, in fold order.
    fitness : FitnessForUse
        Whether the validated model ranks patients better than chance.
    """

    final_model: FitRecord
    cross_validation_folds: tuple[FitRecord, ...]
    fitness: FitnessForUse

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping with a ``format_version`` (``metrics.json`` and the
        manifest hold it as ``training_steps``)."""
        return {
            "format_version": 1,
            "final_model": self.final_model.to_dict(),
            "cross_validation_folds": [f.to_dict() for f in self.cross_validation_folds],
            "fitness": self.fitness.to_dict(),
        }


@dataclass
class TrainingResult:
    """A trained model with its honest, cross-validated performance.

    Attributes
    ----------
    model : EngagementModel
        Fitted on every patient.
    metrics : dict
        Out-of-fold metrics with patient-bootstrap CIs, overall and per treatment and
        subgroup (see :func:`engagekit.evaluation.evaluate_predictions`), with
        ``fit_for_use``, ``unfit_reason`` and ``training_steps`` (see ``steps``).
    selection : dict
        Cross-validated log loss of each kind tried and which was chosen.
    flag_rule : FlagRule
        The at-risk flag thresholds, chosen on the out-of-fold predictions.
    cross_validation : CrossValidation
        Out-of-fold predictions of the chosen kind.
    steps : TrainingSteps
        Which fitting steps ran, in the final model and in each fold, and whether the
        model is fit for use.
    """

    model: EngagementModel
    metrics: dict[str, Any]
    selection: dict[str, Any]
    cross_validation: CrossValidation
    flag_rule: Any = None
    steps: TrainingSteps | None = None

    @property
    def fit_for_use(self) -> bool:
        """Whether the model ranks patients better than chance (see :func:`judge_fitness`)."""
        return self.steps is not None and self.steps.fitness.fit_for_use


# Bootstrap replicates when none are asked for: 1,000 up to this many rows x replicates,
# fewer beyond (never under 200). The cost grows with rows x replicates x (1 + subgroup
# columns); at a million rows 200 replicates put the Monte Carlo error of a CI end far
# below the CI's width, which is itself tiny there.
_BOOTSTRAP_BUDGET = 200_000 * 1000
_MIN_AUTO_BOOTSTRAP = 200


def auto_bootstrap_reps(n_rows: int) -> int:
    """Default patient-bootstrap replicates for ``n_rows`` labelled encounters.

    >>> auto_bootstrap_reps(50_000), auto_bootstrap_reps(1_000_000)
    (1000, 200)
    """
    return int(min(1000, max(_MIN_AUTO_BOOTSTRAP, _BOOTSTRAP_BUDGET // max(1, n_rows))))


def evaluate_model_predictions(
    rows: pd.DataFrame,
    target: str,
    p: np.ndarray,
    config: Config,
    n_boot: int | None = None,
    seed: int = 0,
    n_jobs: int = 1,
    decision_thresholds: Any = None,
) -> dict[str, Any]:
    """Metrics of ``p`` against ``rows[target]``, overall, per treatment and per subgroup.

    ``rows`` are labelled encounters; the bootstrap resamples their patients
    (``n_boot`` replicates; None: :func:`auto_bootstrap_reps`). ``decision_thresholds``
    are the risks at which the decision curve is computed (None: the default grid).
    """
    from ..evaluation import evaluate_predictions

    by_columns = ["treatment", *[c for c in config.subgroups if c in rows.columns]]
    if n_boot is None:
        n_boot = auto_bootstrap_reps(len(rows))
    return evaluate_predictions(
        rows[target].to_numpy(dtype="float64"),
        p,
        rows["patient_id"].to_numpy(),
        by=rows[by_columns].astype("string").fillna("(missing)"),
        n_boot=n_boot,
        seed=seed,
        n_jobs=n_jobs,
        decision_thresholds=decision_thresholds,
    )


def _split_by_date(
    encounters: pd.DataFrame, target: str, split: datetime.date | str
) -> tuple[pd.DataFrame, pd.DataFrame, datetime.date]:
    """(encounters before ``split``, all encounters, the split day), or a clear error."""
    from .._dates import parse_iso_date

    try:
        day = parse_iso_date(split)
    except ValueError as e:
        raise ValueError(f"the temporal split: {e}") from None
    dates = pd.to_datetime(encounters["encounter_date"]).dt.date
    before = (dates < day).to_numpy()
    labelled = labelled_rows(encounters, target)
    n_before, n_after = int((before & labelled).sum()), int((~before & labelled).sum())
    if n_before == 0 or n_after == 0:
        first, last = dates.min(), dates.max()
        raise ContractError(
            f"the temporal split {day} leaves {n_before:,} labelled encounters before it and "
            f"{n_after:,} from it on; the encounters run from {first} to {last}, so choose "
            "a day between them"
        )
    return encounters[before].reset_index(drop=True), encounters, day


def _temporal_metrics(
    model: EngagementModel,
    before: pd.DataFrame,
    everything: pd.DataFrame,
    day: datetime.date,
    config: Config,
    n_boot: int | None,
    seed: int,
    n_jobs: int,
    decision_thresholds: Any = None,
) -> dict[str, Any]:
    """The pre-split model scored on the encounters from ``day`` on."""
    target = model.target
    dates = pd.to_datetime(everything["encounter_date"]).dt.date
    after = (dates >= day).to_numpy()
    # features need each patient's earlier sessions, so score the whole table
    p = model.predict_proba(everything)
    scored = after & labelled_rows(everything, target)
    metrics = evaluate_model_predictions(
        everything[scored],
        target,
        p[scored],
        config,
        n_boot=n_boot,
        seed=seed,
        n_jobs=n_jobs,
        decision_thresholds=decision_thresholds,
    )
    metrics["split_date"] = day.isoformat()
    metrics["n_training_encounters"] = int(labelled_rows(before, target).sum())
    metrics["n_excluded_missing_outcome"] = int((after & ~labelled_rows(everything, target)).sum())
    metrics["patients_also_in_training"] = int(
        _member(everything.loc[scored, "patient_id"].unique(), before["patient_id"].unique()).sum()
    )
    return metrics


def _patient_subset(encounters: pd.DataFrame, target: str, rows: int, seed: int) -> pd.DataFrame:
    labelled = labelled_rows(encounters, target)
    share = rows / max(1, labelled.sum())
    patients = encounters["patient_id"].unique()
    rng = np.random.default_rng(seed)
    keep = rng.choice(patients, size=max(1, int(len(patients) * share)), replace=False)
    return encounters[encounters["patient_id"].isin(keep)]


@_one_blas_thread
def train_model(
    encounters: pd.DataFrame,
    target: str,
    model: str = "auto",
    config: Config | None = None,
    n_splits: int = 5,
    seed: int = 0,
    n_boot: int | None = None,
    progress=None,
    n_jobs: int = 1,
    temporal_split: datetime.date | str | None = None,
    flag_rule: tuple[str, float] = ("top_percent", 10.0),
) -> TrainingResult:
    """Choose, validate and fit a model of ``target``.

    Parameters
    ----------
    encounters : pandas.DataFrame
        Typed, valid encounters.
    target : {"attended_next", "adherent"}
    model : {"auto", "logistic", "gbm"}
        ``auto`` picks the kind with the lower patient-grouped cross-validated log loss.
    config : Config, optional
    n_splits : int
        Folds of the patient-grouped cross-validation.
    seed : int
    n_boot : int, optional
        Patient-bootstrap replicates for the metrics' 95% CIs; None:
        :func:`auto_bootstrap_reps` of the labelled rows (1,000 up to 200,000 rows).
    progress : callable, optional
        ``progress(step_description, done, total)``.
    n_jobs : int
        Threads for the bootstrap CIs (-1: all cores). The CIs do not depend on it.
    temporal_split : date or "YYYY-MM-DD", optional
        Train, cross-validate and select on encounters dated before this day; score the
        final model on those from this day on, and put their metrics under
        ``metrics["temporal_validation"]``. The final model is then the one fitted before
        the split, so the temporal metrics are honest.
    flag_rule : (rule, value)
        How at-risk flags are set (see :func:`engagekit.flags.choose_flag_rule`): the
        threshold is chosen on the out-of-fold predictions and kept with the result.
        Default: the 10% of encounters at highest risk.

    Returns
    -------
    TrainingResult
        The model is returned (and can be saved) even when it is not fit for use; its
        ``steps.fitness`` and ``metrics["fit_for_use"]`` say so (see
        :func:`~engagekit.models.judge_fitness`), and ``metrics["training_steps"]`` says
        which fitting steps ran, in the final model and in every fold.
    """
    from ..validation.coverage import without_absent_covariates

    config = config if config is not None else load_config()
    # a covariate absent from the table is left out, as every command does
    config, covariates_left_out = without_absent_covariates(config, encounters.columns)
    encounters = encounters.reset_index(drop=True)
    everything = None
    if temporal_split is not None:
        encounters, everything, split_day = _split_by_date(encounters, target, temporal_split)
    labelled = labelled_rows(encounters, target)
    kinds = list(MODEL_KINDS) if model == "auto" else [model]
    if model != "auto" and model not in MODEL_KINDS:
        raise ValueError(f"unknown model {model!r}; expected auto, logistic or gbm")

    def report(step: str):
        if progress is None:
            return None
        return lambda done, total: progress(step, done, total)

    selection: dict[str, Any] = {"requested": model, "cv_log_loss": {}}
    results: dict[str, CrossValidation] = {}
    if len(kinds) > 1 and labelled.sum() > AUTO_SELECTION_ROWS:
        subset = _patient_subset(encounters, target, AUTO_SELECTION_ROWS, seed)
        selection["selection_rows"] = int(labelled_rows(subset, target).sum())
        selection["selection_folds"] = min(n_splits, _SELECTION_FOLDS)
        for kind in kinds:
            cv = cross_validate(
                subset,
                target,
                kind,
                config,
                min(n_splits, _SELECTION_FOLDS),
                seed,
                report(f"choose {kind}"),
            )
            selection["cv_log_loss"][kind] = cv.log_loss
        chosen = min(selection["cv_log_loss"], key=selection["cv_log_loss"].get)
        results[chosen] = cross_validate(
            encounters, target, chosen, config, n_splits, seed, report(f"validate {chosen}")
        )
    else:
        for kind in kinds:
            results[kind] = cross_validate(
                encounters, target, kind, config, n_splits, seed, report(f"validate {kind}")
            )
            selection["cv_log_loss"][kind] = results[kind].log_loss
        chosen = min(results, key=lambda k: results[k].log_loss)
    selection["chosen"] = chosen
    cv = results[chosen]

    rows = encounters.loc[cv.predictions.index]
    from ..evaluation import decision_thresholds
    from ..flags import choose_flag_rule

    # the rule first: the decision curves must reach its thresholds, to mark them
    rule = choose_flag_rule(
        rows[target].to_numpy(dtype="float64"),
        cv.predictions.to_numpy(),
        flag_rule[0],
        flag_rule[1],
        rows["practitioner_id"].to_numpy() if "practitioner_id" in rows.columns else None,
        patients=rows["patient_id"].to_numpy(),
        target=target,
    )
    thresholds = decision_thresholds(rule.threshold, rule.medium_threshold)
    metrics = evaluate_model_predictions(
        rows,
        target,
        cv.predictions.to_numpy(),
        config,
        n_boot=n_boot,
        seed=seed,
        n_jobs=n_jobs,
        decision_thresholds=thresholds,
    )
    metrics["n_excluded_missing_outcome"] = int((~labelled).sum())
    metrics["cv_folds"] = n_splits
    metrics["model"] = chosen
    metrics["target"] = target
    if covariates_left_out:
        metrics["covariates_left_out"] = list(covariates_left_out)
    if progress is not None:
        progress("fit final model", 0, 1)
    final = fit_model(encounters, target, chosen, config, seed=seed)
    if progress is not None:
        progress("fit final model", 1, 1)
    metrics["flag_rule"] = rule.to_dict()
    if everything is not None:
        metrics["temporal_validation"] = _temporal_metrics(
            final, encounters, everything, split_day, config, n_boot, seed, n_jobs, thresholds
        )
    steps = TrainingSteps(
        final_model=final.fit_record,
        cross_validation_folds=tuple(cv.fit_records),
        fitness=judge_fitness(metrics),
    )
    metrics["fit_for_use"] = steps.fitness.fit_for_use
    metrics["unfit_reason"] = steps.fitness.unfit_reason
    metrics["training_steps"] = steps.to_dict()
    return TrainingResult(
        model=final,
        metrics=metrics,
        selection=selection,
        cross_validation=cv,
        flag_rule=rule,
        steps=steps,
    )
