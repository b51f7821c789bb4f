"""Fit and validate engagement models honestly.

- Only rows whose outcome is recorded are fitted or scored against; rows with an empty
  outcome still give their history to later sessions' features.
- Cross-validation is grouped by patient: no patient is on both sides of a split.
- Calibration is corrected inside each training set only: a random 15% of its patients
  is held out, the model is fitted on the rest (the trees stop early on the held-out
  patients), and a logistic recalibration of the margin is fitted on the held-out
  patients if they hold enough of each outcome and a cluster-robust test finds the
  calibration off (see :mod:`engagekit.models._calibration`). The logistic model is
  then refitted on all patients (the trees keep their early-stopped fit). The final
  model of :func:`train_model` keeps a correction only if the pooled out-of-fold margins
  of its cross-validation (every patient, scored by a model that never saw them; about
  six times the events of one hold-out) confirm it. The same
  held-out patients choose the logistic model's penalty (see
  :mod:`engagekit.models.kinds.logistic`), so tuning never sees a test fold. What each
  kind does on the held-out split is its own (:mod:`engagekit.models.kinds`); this
  module never asks which kind it fits.
- With fewer than about 200 patients (15% of them under 30), none is held out: the
  penalty takes its default, the trees a fixed number of iterations, and calibration is
  not checked. Each model's :class:`~engagekit.models.FitRecord` says which steps ran.
- A model whose validated AUROC cannot be told from chance is marked unfit for use
  (:func:`~engagekit.models.judge_fitness`); it is still returned, with the verdict.
- ``auto`` tries every registered kind and picks the one with the lower cross-validated
  log loss.
- Optionally, a temporal split: everything above happens on the encounters dated before
  the split date, and the final model is then scored on the encounters from that date
  on (their features still use the patient's earlier sessions, as they would in use).
- Optionally, a large table is trained on as a patient-level random sample (see
  :func:`~engagekit.models.sample_for_training`): everything above happens on the
  sample, and the final model is then also scored on patients outside it.
"""

from __future__ import annotations

import dataclasses
import datetime
import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np
import pandas as pd
from scipy.special import expit
from sklearn.metrics import log_loss
from sklearn.model_selection import GroupKFold
from threadpoolctl import threadpool_limits

from .._arrays import member_mask
from ..choices import FlagRuleKind, ModelChoice, ModelKind
from ..config import Config, load_config
from ..errors import ArgumentError, ContractError
from ..evaluation._result import Metrics
from ..features import EncounterFeatures
from ._calibration import LogitRecalibration, confirmed_by_cross_validation, fit_logit_recalibration
from ._fit_record import FitRecord, TrainingSample, TrainingSteps, judge_fitness
from ._model import EngagementModel
from ._model_metrics import (
    KindSelection,
    ModelMetrics,
    OutsideSampleValidation,
    TemporalValidation,
)
from ._sample import HeldOutSample
from .kinds import KINDS, HoldOut, kind_spec

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
    kind: ModelKind | str,
    config: Config | None = None,
    seed: int = 0,
) -> EngagementModel:
    """Fit one model of ``kind`` for ``target`` on all patients of ``encounters``.

    Parameters
    ----------
    encounters : pandas.DataFrame
        Typed, valid encounters (see :func:`engagekit.check_encounters`).
    target : {"attended_next", "adherent"}
    kind : ModelKind or str
        A registered kind (see :mod:`engagekit.models.kinds`).
    config : Config, optional
    seed : int
        Seeds the held-out calibration patients and the trees.

    Returns
    -------
    EngagementModel
        With ``fit_record``, a :class:`FitRecord` of the steps that ran: whether 15% of
        the patients were held out (at least 30 of them) and, on them, whether the
        penalty was tuned, the trees stopped early and calibration was checked and
        corrected (see :mod:`engagekit.models._calibration`).

    Raises
    ------
    ValueError
        ``kind`` is not a registered kind.
    ContractError
        The outcome is absent, never recorded, or has one value only.
    ConfigError
        A feature would be read from an outcome column (an attribute or covariate
        named ``attended_next`` or ``adherent``), even in a config built without
        validation: the model would be given the answer it is to predict.
    """
    spec = kind_spec(kind)
    config = config if config is not None else load_config()
    labelled = labelled_rows(encounters, target)
    y = _recorded_outcome(encounters, target, labelled)
    rows = _hold_out(encounters["patient_id"].to_numpy(), labelled, seed)
    features = EncounterFeatures.from_config(config).fit(encounters[~rows.held_out_patient_rows])
    model = EngagementModel(
        target=target,
        kind=spec.kind.value,
        features=features,
        estimator=spec.make_estimator(seed=seed),
        interaction_attributes=tuple(config.attribute_names) if spec.interaction_terms else (),
        interaction_treatments=tuple(config.treatment_names) if spec.interaction_terms else (),
    )
    X = model.design(encounters).to_numpy()
    steps = spec.fit_on_hold_out(model, X, y, rows, seed)
    model.recalibration = _check_calibration(model.estimator, X, y, rows)
    refit = spec.refit_on_all(model, X, y, rows)
    model.fit_record = FitRecord(
        kind=spec.kind.value,
        n_patients=len(pd.unique(rows.patients[labelled])),
        n_encounters=int(labelled.sum()),
        held_out_patients=len(pd.unique(rows.patients[rows.held_out_rows])),
        held_out_encounters=int(rows.held_out_rows.sum()),
        held_out_share=_CALIBRATION_SHARE,
        min_held_out_patients=_MIN_CALIBRATION_PATIENTS,
        tuning=steps.tuning,
        early_stopping=steps.early_stopping,
        boosting_iterations=steps.boosting_iterations,
        max_boosting_iterations=steps.max_boosting_iterations,
        refit_on_all_patients=refit,
        recalibration=model.recalibration,
    )
    return model


def _recorded_outcome(encounters: pd.DataFrame, target: str, labelled: np.ndarray) -> np.ndarray:
    """``target`` as floats (NaN where not recorded), or a ContractError if there is
    nothing to fit."""
    if labelled.sum() == 0:
        raise ContractError(f"no encounter has {target!r} recorded; nothing to fit")
    y = encounters[target].to_numpy(dtype="float64", na_value=np.nan)
    if len(np.unique(y[labelled])) < 2:
        raise ContractError(
            f"every recorded {target!r} has the same value; a model needs both 0 and 1"
        )
    return y.astype("float64")


def _hold_out(patients: np.ndarray, labelled: np.ndarray, seed: int) -> HoldOut:
    """A random 15% of the labelled patients held out, if that makes at least 30."""
    rng = np.random.default_rng(seed)
    unique_patients = pd.unique(patients[labelled])
    n_held_out = round(_CALIBRATION_SHARE * len(unique_patients))
    if n_held_out >= _MIN_CALIBRATION_PATIENTS:
        chosen = rng.choice(unique_patients, size=n_held_out, replace=False)
        held_out = member_mask(patients, chosen)
    else:
        held_out = np.zeros(len(patients), dtype=bool)
    return HoldOut(
        fit_rows=labelled & ~held_out,
        held_out_rows=labelled & held_out,
        held_out_patient_rows=held_out,
        patients=patients,
        min_patients=_MIN_CALIBRATION_PATIENTS,
    )


def _check_calibration(
    estimator: Any, X: np.ndarray, y: np.ndarray, rows: HoldOut
) -> LogitRecalibration:
    """The calibration check on the held-out patients (the identity without them)."""
    if not rows.any_held_out:
        return LogitRecalibration()
    margin = estimator.decision_function(X[rows.held_out_rows])
    return fit_logit_recalibration(
        margin, y[rows.held_out_rows], groups=rows.patients[rows.held_out_rows]
    )


@dataclass
class CrossValidation:
    """Out-of-fold predictions of one model kind.

    Attributes
    ----------
    kind : ModelKind
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
    margins : pandas.Series or None
        Each labelled row's out-of-fold log-odds margin before its fold model's
        recalibration, indexed like ``predictions`` (the final model's calibration is
        judged on them).
    """

    kind: ModelKind
    predictions: pd.Series
    log_loss: float
    folds: int
    details: list[dict[str, Any]] = field(default_factory=list)
    fit_records: list[FitRecord] = field(default_factory=list)
    margins: pd.Series | None = None


def cross_validate(
    encounters: pd.DataFrame,
    target: str,
    kind: ModelKind | str,
    config: Config | None = None,
    n_splits: int = 5,
    seed: int = 0,
    progress=None,
) -> CrossValidation:
    """Patient-grouped K-fold cross-validation of one model kind.

    ``progress(done, total)``, if given, is called after each fold.
    """
    kind = kind_spec(kind).kind
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
    oof_margin = np.full(len(encounters), np.nan)
    details = []
    records: list[FitRecord] = []
    # integer codes: scikit-learn's shuffled GroupKFold runs np.isin on the groups, which
    # sorts object arrays such as patient ids (seconds per fold at 100k rows)
    codes = pd.factorize(patients)[0]
    for fold, (train_idx, test_idx) in enumerate(splitter.split(encounters, groups=codes)):
        train = encounters.iloc[train_idx]
        test = encounters.iloc[test_idx]
        model = fit_model(train, target, kind, config, seed=seed + fold)
        fit = model.fit_record
        assert fit is not None, "fit_model records the steps of every fit"
        margin = model.margin(test)
        p = expit(model.calibrated(margin, test))
        test_labelled = labelled[test_idx]
        oof[test_idx[test_labelled]] = p[test_labelled]
        oof_margin[test_idx[test_labelled]] = margin[test_labelled]
        details.append(
            {
                "fold": fold,
                "train_patients": len(pd.unique(patients[train_idx])),
                "test_patients": len(pd.unique(patients[test_idx])),
                "test_encounters_scored": int(test_labelled.sum()),
                "recalibrated": bool(model.recalibration.applied),
                "fit": fit.to_dict(),
            }
        )
        records.append(fit)
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
        margins=pd.Series(oof_margin[labelled], index=predictions.index, name="margin"),
    )


# Above this many labelled rows, ``auto`` compares the kinds on a random subset of
# patients of about this size (by 3-fold patient-grouped CV), then cross-validates only
# the chosen kind on all data with the requested folds: the choice is stable long before
# a million rows, and it halves the training time.
AUTO_SELECTION_ROWS = 100_000
_SELECTION_FOLDS = 3


@dataclass
class TrainingResult:
    """A trained model with its honest, cross-validated performance.

    Attributes
    ----------
    model : EngagementModel
        Fitted on every patient.
    metrics : ModelMetrics
        Out-of-fold metrics with patient-bootstrap CIs, overall and per treatment and
        subgroup (see :func:`engagekit.evaluation.evaluate_predictions`), with the
        record of training: the kind chosen, the flag rule, ``fit_for_use``,
        ``unfit_reason`` and ``training_steps`` (see ``steps``). Its ``to_dict()`` is
        ``metrics.json``.
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
    metrics: ModelMetrics
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
) -> Metrics:
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
        raise ArgumentError(f"the temporal split: {e}") from None
    dates = pd.to_datetime(encounters["encounter_date"]).dt.date
    before = (dates < day).to_numpy()
    labelled = labelled_rows(encounters, target)
    n_before, n_after = int((before & labelled).sum()), int((~before & labelled).sum())
    if n_before == 0 or n_after == 0:
        first, last = dates.min(), dates.max()
        raise ArgumentError(
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
) -> TemporalValidation:
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
    return TemporalValidation(
        **dict(metrics),
        split_date=day.isoformat(),
        n_training_encounters=int(labelled_rows(before, target).sum()),
        n_excluded_missing_outcome=int((after & ~labelled_rows(everything, target)).sum()),
        patients_also_in_training=int(
            member_mask(
                everything.loc[scored, "patient_id"].unique(), before["patient_id"].unique()
            ).sum()
        ),
    )


def _training_sample(
    encounters: pd.DataFrame, held_out: HeldOutSample, target: str
) -> TrainingSample:
    """The record of the sample ``encounters`` is, or a clear error if ``held_out`` cannot
    validate a model fitted on it."""
    outside = held_out.frame()
    if "patient_id" not in outside.columns:
        raise ArgumentError("the held-out encounters have no 'patient_id' column")
    patients = pd.unique(outside["patient_id"])
    shared = patients[member_mask(patients, pd.unique(encounters["patient_id"]))]
    if len(shared):
        examples = ", ".join(repr(str(p)) for p in shared[:3])
        raise ArgumentError(
            f"{len(shared):,} patient(s) of the held-out encounters are also in the training "
            f"encounters (e.g. {examples}); held-out patients must be outside the sample "
            "trained on"
        )
    if not labelled_rows(outside, target).any():
        raise ContractError(
            f"none of the {len(outside):,} held-out encounters has {target!r} recorded, so "
            "the model cannot be validated outside the sample; draw more patients for it"
        )
    try:
        return TrainingSample(
            sample_encounters=len(encounters),
            sample_patients=int(encounters["patient_id"].nunique()),
            table_encounters=held_out.n_encounters,
            table_patients=held_out.n_patients,
            seed=held_out.seed,
            validation_encounters=len(outside),
            validation_patients=len(patients),
            sample_above=held_out.sample_above,
        )
    except ValueError as e:
        raise ArgumentError(f"the held-out sample's table sizes: {e}") from None


#: Encounters whose probabilities are computed at a time when validating outside the
#: sample.
_PREDICT_CHUNK_ROWS = 50_000


def _outside_sample_metrics(
    model: EngagementModel, held_out: HeldOutSample, run: _Training, decision_thresholds: Any
) -> OutsideSampleValidation:
    """The final model scored on the labelled encounters of patients outside the sample."""
    target = model.target
    outside = held_out.frame().reset_index(drop=True)
    labelled = labelled_rows(outside, target)
    from ..scoring import patient_chunks

    # features need each patient's earlier sessions, so score every row; in chunks of
    # whole patients, which bounds the memory of the features (the same probabilities)
    p = np.empty(len(outside))
    for rows in patient_chunks(outside["patient_id"].to_numpy(), _PREDICT_CHUNK_ROWS):
        p[rows] = model.predict_proba(outside.iloc[rows])
    metrics = evaluate_model_predictions(
        outside[labelled],
        target,
        p[labelled],
        run.config,
        n_boot=run.n_boot,
        seed=run.seed,
        n_jobs=run.n_jobs,
        decision_thresholds=decision_thresholds,
    )
    return OutsideSampleValidation(
        **dict(metrics), n_excluded_missing_outcome=int((~labelled).sum())
    )


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
    model: ModelChoice | str = ModelChoice.AUTO,
    config: Config | None = None,
    n_splits: int = 5,
    seed: int = 0,
    n_boot: int | None = None,
    progress=None,
    n_jobs: int = 1,
    temporal_split: datetime.date | str | None = None,
    flag_rule: tuple[FlagRuleKind | str, float] = (FlagRuleKind.TOP_PERCENT, 10.0),
    held_out: HeldOutSample | None = None,
) -> TrainingResult:
    """Choose, validate and fit a model of ``target``.

    Parameters
    ----------
    encounters : pandas.DataFrame
        Typed, valid encounters.
    target : {"attended_next", "adherent"}
    model : ModelChoice or str
        ``"auto"`` tries every registered kind (see :mod:`engagekit.models.kinds`) and
        keeps the one with the lower patient-grouped cross-validated log loss; a kind
        (``"logistic"``, ``"gbm"``) trains that kind.
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
        ``metrics.temporal_validation``. The final model is then the one fitted before
        the split, so the temporal metrics are honest.
    flag_rule : (rule, value)
        How at-risk flags are set (see :func:`engagekit.flags.choose_flag_rule`): the
        threshold is chosen on the out-of-fold predictions and kept with the result.
        Default: the 10% of encounters at highest risk.
    held_out : HeldOutSample, optional
        When ``encounters`` is a patient-level sample of a larger table (see
        :func:`~engagekit.models.sample_for_training`): patients of that table outside
        the sample. Training runs on ``encounters`` as without it; the final model is
        then also scored on the held-out patients' labelled encounters, whose metrics go
        under ``metrics.outside_sample_validation``, and ``metrics.training_steps.sample``
        records the sample (its size, the table's, the seed and the validation's size).

    Returns
    -------
    TrainingResult
        The model is returned (and can be saved) even when it is not fit for use; its
        ``steps.fitness`` and ``metrics.fit_for_use`` say so (see
        :func:`~engagekit.models.judge_fitness`), and ``metrics.training_steps`` says
        which fitting steps ran, in the final model and in every fold.

    Raises
    ------
    ValueError
        ``model`` is neither ``auto`` nor a registered kind, or ``flag_rule`` is not a
        rule with a value in its range.
    ArgumentError
        ``temporal_split`` is not a day written ``YYYY-MM-DD``, or it leaves no labelled
        encounters on one side; or a patient of ``held_out`` is also in ``encounters``,
        or its table sizes cannot hold the sample and the held-out patients.
    ContractError
        The outcome cannot be modelled, or there are fewer patients than folds; or no
        held-out encounter has the outcome recorded.

    Examples
    --------
    >>> from engagekit import simulate_encounters
    >>> from engagekit.models import sample_for_training
    >>> table = simulate_encounters(500, seed=3).encounters
    >>> sample, held_out = sample_for_training(table, sample_above=1000, sample_rows=1500)
    >>> trained = train_model(sample, "adherent", "logistic", n_splits=2, n_boot=0,
    ...                       held_out=held_out)
    >>> outside = trained.metrics.outside_sample_validation
    >>> record = trained.metrics.training_steps.sample
    >>> record.sample_patients + record.validation_patients == record.table_patients
    True
    >>> outside.overall.n_patients <= record.validation_patients
    True
    >>> train_model(table, "adherent", "logistic", n_splits=2, n_boot=0, held_out=held_out)
    Traceback (most recent call last):
    ...
    engagekit.errors.ArgumentError: ... patient(s) of the held-out encounters are also in the training encounters (e.g. ...); held-out patients must be outside the sample trained on
    """  # noqa: E501
    from ..validation._coverage import without_absent_covariates

    requested = _model_choice(model)
    config = config if config is not None else load_config()
    # a covariate absent from the table is left out, as every command does
    config, covariates_left_out = without_absent_covariates(config, encounters.columns)
    run = _Training(target, config, n_splits, seed, n_boot, n_jobs, progress)
    encounters = encounters.reset_index(drop=True)
    # checked before the training, which may take hours
    outside = None
    if held_out is not None:
        outside = (held_out, _training_sample(encounters, held_out, target))
    later = None
    if temporal_split is not None:
        encounters, everything, split_day = _split_by_date(encounters, target, temporal_split)
        later = (everything, split_day)
    selection, validated = _select_kind(run, encounters, requested)
    chosen = ModelKind(selection["chosen"])
    if chosen in validated:
        cv = validated[chosen]
    else:
        cv = run.cross_validate(encounters, chosen, n_splits, f"validate {chosen}")
    rule, thresholds, metrics = _cross_validated_metrics(run, encounters, cv, flag_rule)
    return _finalise(
        run,
        encounters,
        cv,
        selection,
        rule,
        metrics,
        thresholds,
        later,
        covariates_left_out,
        outside,
    )


@dataclass(frozen=True)
class _Training:
    """The settings one :func:`train_model` call hands to each of its steps."""

    target: str
    config: Config
    n_splits: int
    seed: int
    n_boot: int | None
    n_jobs: int
    progress: Callable[[str, int, int], None] | None

    def cross_validate(
        self, encounters: pd.DataFrame, kind: ModelKind, n_splits: int, step: str
    ) -> CrossValidation:
        """:func:`cross_validate`, reporting its folds as ``step``."""
        progress = self.progress
        report = None if progress is None else lambda done, total: progress(step, done, total)
        return cross_validate(
            encounters, self.target, kind, self.config, n_splits, self.seed, report
        )


def _model_choice(model: ModelChoice | str) -> ModelChoice:
    """``model`` as a :class:`ModelChoice`, or a ValueError naming the choices."""
    try:
        return ModelChoice(model)
    except ValueError:
        names = [choice.value for choice in ModelChoice]
        expected = f"{', '.join(names[:-1])} or {names[-1]}"
        raise ValueError(f"unknown model {model!r}; expected {expected}") from None


def _select_kind(
    run: _Training, encounters: pd.DataFrame, requested: ModelChoice
) -> tuple[dict[str, Any], dict[ModelKind, CrossValidation]]:
    """The kind to train: the requested one, or for ``auto`` the registered kind with the
    lower cross-validated log loss.

    Above :data:`AUTO_SELECTION_ROWS` labelled rows the kinds are compared on a random
    subset of patients with at most 3 folds. Returns the record of the choice
    (``requested``, each kind's ``cv_log_loss``, the subset's ``selection_rows`` and
    ``selection_folds`` if one was used, ``chosen``) and the cross-validations on all of
    ``encounters`` run on the way (none after a comparison on a subset).
    """
    kinds = list(KINDS) if requested == ModelChoice.AUTO else [ModelKind(requested.value)]
    selection: dict[str, Any] = {"requested": requested.value, "cv_log_loss": {}}
    validated: dict[ModelKind, CrossValidation] = {}
    if len(kinds) > 1 and labelled_rows(encounters, run.target).sum() > AUTO_SELECTION_ROWS:
        subset = _patient_subset(encounters, run.target, AUTO_SELECTION_ROWS, run.seed)
        folds = min(run.n_splits, _SELECTION_FOLDS)
        selection["selection_rows"] = int(labelled_rows(subset, run.target).sum())
        selection["selection_folds"] = folds
        for kind in kinds:
            cv = run.cross_validate(subset, kind, folds, f"choose {kind}")
            selection["cv_log_loss"][kind.value] = cv.log_loss
    else:
        for kind in kinds:
            validated[kind] = run.cross_validate(encounters, kind, run.n_splits, f"validate {kind}")
            selection["cv_log_loss"][kind.value] = validated[kind].log_loss
    losses = selection["cv_log_loss"]
    selection["chosen"] = min(losses, key=losses.get)
    return selection, validated


def _cross_validated_metrics(
    run: _Training,
    encounters: pd.DataFrame,
    cv: CrossValidation,
    flag_rule: tuple[str, float],
) -> tuple[Any, Any, Metrics]:
    """The flag rule chosen on the out-of-fold predictions, the risks at which the
    decision curve is computed, and the out-of-fold metrics."""
    from ..evaluation import decision_thresholds
    from ..flags import choose_flag_rule

    target = run.target
    rows = encounters.loc[cv.predictions.index]
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
        run.config,
        n_boot=run.n_boot,
        seed=run.seed,
        n_jobs=run.n_jobs,
        decision_thresholds=thresholds,
    )
    return rule, thresholds, metrics


def _calibrate_out_of_fold(
    final: EngagementModel, encounters: pd.DataFrame, cv: CrossValidation
) -> None:
    """Keep the final model's correction only if the cross-validation's out-of-fold
    margins confirm it (see :mod:`engagekit.models._calibration`, guard 4)."""
    if cv.margins is None or final.fit_record is None or not final.recalibration.applied:
        return
    rows = cv.margins.index
    recalibration = confirmed_by_cross_validation(
        final.recalibration,
        cv.margins.to_numpy(),
        encounters.loc[rows, final.target].to_numpy(dtype="float64"),
        encounters.loc[rows, "patient_id"].to_numpy(),
    )
    final.recalibration = recalibration
    final.fit_record = dataclasses.replace(final.fit_record, recalibration=recalibration)


def _finalise(
    run: _Training,
    encounters: pd.DataFrame,
    cv: CrossValidation,
    selection: dict[str, Any],
    rule: Any,
    metrics: Metrics,
    thresholds: Any,
    later: tuple[pd.DataFrame, datetime.date] | None,
    covariates_left_out: Any,
    outside: tuple[HeldOutSample, TrainingSample] | None = None,
) -> TrainingResult:
    """Fit the chosen kind on every patient, score it after the temporal split if there
    is one and on the patients outside the sample if it was fitted on one, judge whether
    it is fit for use, and gather the record of training with the out-of-fold
    ``metrics``."""
    if run.progress is not None:
        run.progress("fit final model", 0, 1)
    final = fit_model(encounters, run.target, cv.kind, run.config, seed=run.seed)
    _calibrate_out_of_fold(final, encounters, cv)
    if run.progress is not None:
        run.progress("fit final model", 1, 1)
    temporal = None
    if later is not None:
        everything, split_day = later
        temporal = _temporal_metrics(
            final,
            encounters,
            everything,
            split_day,
            run.config,
            run.n_boot,
            run.seed,
            run.n_jobs,
            thresholds,
        )
    outside_sample = None
    if outside is not None:
        if run.progress is not None:
            run.progress("validate outside the sample", 0, 1)
        outside_sample = _outside_sample_metrics(final, outside[0], run, thresholds)
        if run.progress is not None:
            run.progress("validate outside the sample", 1, 1)
    assert final.fit_record is not None, "fit_model records the steps of every fit"
    steps = TrainingSteps(
        final_model=final.fit_record,
        cross_validation_folds=tuple(cv.fit_records),
        fitness=judge_fitness(metrics, temporal),
        sample=None if outside is None else outside[1],
    )
    record = ModelMetrics(
        **dict(metrics),
        n_excluded_missing_outcome=int((~labelled_rows(encounters, run.target)).sum()),
        cv_folds=run.n_splits,
        model=cv.kind.value,
        target=run.target,
        covariates_left_out=list(covariates_left_out) if covariates_left_out else None,
        flag_rule=rule,
        temporal_validation=temporal,
        outside_sample_validation=outside_sample,
        fit_for_use=steps.fitness.fit_for_use,
        unfit_reason=steps.fitness.unfit_reason,
        training_steps=steps,
        selection=KindSelection.model_validate(selection),
    )
    return TrainingResult(
        model=final,
        metrics=record,
        selection=selection,
        cross_validation=cv,
        flag_rule=rule,
        steps=steps,
    )
