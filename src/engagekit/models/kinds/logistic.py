"""The ``logistic`` kind: a penalised logistic regression with attribute × treatment terms.

An interpretable logistic regression on the encounter features plus attribute ×
treatment terms (this session's rating, centred, times each treatment but the first),
standardised, with a ridge penalty. The penalty is a prior: every standardised
coefficient gets one, and two groups get a tighter one, through column weights ``w`` (a
weight ``w`` multiplies the prior SD by ``w``, see
:class:`~engagekit.models.ColumnWeights`):

- the attribute × treatment terms, because the working hypothesis of the field is that a
  quality matters alike in every treatment; the data can still overrule it;
- the earlier-session summaries (previous value, running mean and minimum), which mostly
  repeat this session's ratings.

The penalty strength ``C`` and the interaction weight are tuned on the held-out training
patients (:data:`LOGISTIC_GRID`); the history weight is fixed at :data:`HISTORY_WEIGHT`.
With few events per term (re-attendance misses are rare) an unpenalised fit loses
discrimination to noise. With too few patients to hold out, the penalty takes its
default. After the calibration check the model is refitted on every patient, held-out
ones included (above :data:`_REFIT_ROWS` labelled rows it keeps its fit).

Its exact explanation is linear SHAP, ``phi_j = beta_j * (x_j - mu_j)`` on the
features' own scale, with the training rows' feature means ``mu`` as the background
(the pipeline's scaler was fitted on the training rows, so its ``mean_`` is that mean).
For a linear model with an independent background this is the exact interventional SHAP
value.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from ..._arrays import member_mask
from ...choices import ModelKind
from .._estimators import ColumnWeights
from .._fit_record import EarlyStopping, FitRecord, TuningStatus
from ._spec import CHUNK_ROWS, HoldOut, KindFitSteps, MarginExplanation, ModelKindSpec, row_chunks

if TYPE_CHECKING:
    from .._model import EngagementModel

__all__ = [
    "HISTORY_WEIGHT",
    "LOGISTIC_GRID",
    "LogisticKind",
    "logistic_coefficients",
    "penalty_weights",
]

#: Candidate ``(C, interaction weight)`` pairs, tried on held-out patients in each
#: training set, in this order (ascending ``C`` for each weight, so each fit starts from
#: the last). ``C`` is scikit-learn's inverse penalty on the standardised coefficients
#: (prior variance ``C`` per coefficient). Weaker penalties (``C = 0.1``) were never
#: chosen on simulated services from 1,200 to 40,000 patients, and are the slowest to fit.
LOGISTIC_GRID = tuple((c, w) for w in (0.1, 0.3, 1.0) for c in (0.001, 0.003, 0.01))

#: Weight of the earlier-session summaries' prior SD (see the module docstring).
HISTORY_WEIGHT = 0.3
_HISTORY_SUFFIXES = ("__prev", "__prev_missing", "__mean", "__min")

_DEFAULT = {"C": 0.003, "interaction_weight": 0.3}
# the pipeline's regression step, by the name saved models know it by
_STEP = "logistic"
# The penalty is tuned on at most about this many labelled rows (a random set of
# patients): the choice settles long before a million rows.
_TUNING_ROWS = 60_000
# Above this many labelled rows the model keeps its fit on the 85% of patients not held
# out: refitting on all of them would cost a second large fit for a negligible gain in
# precision.
_REFIT_ROWS = 300_000


def penalty_weights(
    feature_names: Sequence[str], interaction_weight: float, history_weight: float = HISTORY_WEIGHT
) -> np.ndarray:
    """Column weights for :class:`~engagekit.models.ColumnWeights`: the
    interaction terms' and the history summaries' prior SD factors, 1 for the others.

    >>> penalty_weights(["empathy", "empathy__mean", "empathy:treatment=cbt"], 0.1).tolist()
    [1.0, 0.3, 0.1]
    """
    weights = np.ones(len(feature_names))
    for i, name in enumerate(feature_names):
        if ":treatment=" in name:
            weights[i] = interaction_weight
        elif name.endswith(_HISTORY_SUFFIXES):
            weights[i] = history_weight
    return weights


def _pipeline(C: float = _DEFAULT["C"], weights: np.ndarray | None = None) -> Pipeline:
    """Standardise, weight the columns (see :func:`penalty_weights`), fit a ridge-penalised
    logistic regression with inverse penalty ``C``."""
    return Pipeline(
        [
            ("scale", StandardScaler()),
            ("weight", ColumnWeights(weights)),
            (_STEP, LogisticRegression(C=C, max_iter=2000, tol=1e-5)),
        ]
    )


def logistic_coefficients(pipeline: Pipeline, feature_names: Sequence[str]) -> pd.DataFrame:
    """Coefficients of a fitted logistic pipeline on the features' own scale.

    Returns
    -------
    pandas.DataFrame
        ``term`` (``(intercept)`` first, then ``feature_names``), ``coefficient`` (log-odds
        per unit) and ``odds_ratio``.
    """
    scaler: StandardScaler = pipeline.named_steps["scale"]
    weights: ColumnWeights = pipeline.named_steps["weight"]
    model: LogisticRegression = pipeline.named_steps[_STEP]
    coef = model.coef_.ravel() * weights.weights_ / scaler.scale_
    intercept = float(model.intercept_[0] - np.sum(coef * scaler.mean_))
    table = pd.DataFrame(
        {"term": ["(intercept)", *feature_names], "coefficient": [intercept, *coef]}
    )
    table["odds_ratio"] = np.exp(table["coefficient"])
    return table


class LogisticKind(ModelKindSpec):
    """The penalised logistic regression (see the module docstring).

    Examples
    --------
    >>> LogisticKind().make_estimator()[-1].C
    0.003
    """

    kind = ModelKind.LOGISTIC
    interaction_terms = True
    trusted_types = (
        "engagekit.models.ColumnWeights",
        "sklearn.linear_model._logistic.LogisticRegression",
        "sklearn.pipeline.Pipeline",
        "sklearn.preprocessing._data.StandardScaler",
    )
    card_name = "penalised logistic regression"
    card_description = (
        "A logistic regression on the standardised features plus the attribute × "
        "treatment terms, with a ridge penalty; the interaction terms and the "
        "earlier-session summaries have a tighter prior."
    )
    card_hyperparameters: ClassVar[Mapping[str, str]] = {
        "C": "penalty C",
        "interaction_weight": "prior weight of the interaction terms",
    }
    card_folds_not_held_out = "the penalty was not tuned"

    def make_estimator(self, seed: int = 0) -> Pipeline:
        """The pipeline with the default penalty and no column weights (``seed`` is
        unused: the fit is deterministic)."""
        return _pipeline()

    def fit_on_hold_out(
        self,
        model: EngagementModel,
        X: np.ndarray,
        y: np.ndarray,
        rows: HoldOut,
        seed: int,
    ) -> KindFitSteps:
        """Tune the penalty on the held-out patients (the default without them), then
        fit on the others, starting from the chosen candidate's solution."""
        start = None
        if rows.any_held_out:
            start, model.tuning = _tune(X, y, rows, model.feature_names, seed)
        else:
            model.tuning = {
                **_DEFAULT,
                "chosen_by": f"default (fewer than {rows.min_patients} patients "
                "to hold out for tuning)",
            }
        model.estimator = _pipeline(
            C=model.tuning["C"],
            weights=penalty_weights(model.feature_names, model.tuning["interaction_weight"]),
        )
        if start is not None:
            # begin from the tuning fit's solution: far fewer iterations on large data
            logistic = model.estimator.named_steps[_STEP]
            logistic.set_params(warm_start=True)
            logistic.coef_, logistic.intercept_ = start
        model.estimator.fit(X[rows.fit_rows], y[rows.fit_rows])
        return KindFitSteps(
            tuning=TuningStatus.TUNED if rows.any_held_out else TuningStatus.DEFAULT,
            early_stopping=EarlyStopping.NOT_APPLICABLE,
        )

    def refit_on_all(
        self, model: EngagementModel, X: np.ndarray, y: np.ndarray, rows: HoldOut
    ) -> bool:
        """The held-out patients have done their job (tuning, judging calibration); a
        logistic fit is stable, so refit it on every labelled row and keep the map."""
        labelled = rows.labelled
        if not (rows.any_held_out and labelled.sum() <= _REFIT_ROWS):
            return False
        model.estimator.fit(X[labelled], y[labelled])
        return True

    def explain(
        self, estimator: Any, X: np.ndarray, *, n_threads: int = 1, chunk_rows: int = CHUNK_ROWS
    ) -> MarginExplanation:
        """Exact linear SHAP values (see the module docstring); the base value is the
        margin at the training mean, which is the fitted intercept on the standardised
        scale. One thread: the work is a subtraction and a product per cell."""
        terms = logistic_coefficients(estimator, [str(j) for j in range(X.shape[1])])
        beta = terms["coefficient"].to_numpy()[1:]
        mu = estimator.named_steps["scale"].mean_
        base = float(estimator.named_steps[_STEP].intercept_[0])
        phi = np.empty_like(X)
        margin = np.empty(len(X))
        # in chunks, so that the pipeline's scaled copies of a large table stay small
        for chunk in row_chunks(len(X), chunk_rows):
            np.subtract(X[chunk], mu, out=phi[chunk])
            phi[chunk] *= beta
            margin[chunk] = estimator.decision_function(X[chunk])
        return MarginExplanation(base, phi, margin, "linear")

    def coefficients(self, estimator: Any, feature_names: Sequence[str]) -> pd.DataFrame:
        """The terms on the features' own scale (see :func:`logistic_coefficients`)."""
        return logistic_coefficients(estimator, feature_names)

    def card_fit_sentences(self, record: FitRecord) -> tuple[str, ...]:
        tuning = record.tuning
        if tuning == TuningStatus.TUNED:
            return ("The penalty was tuned on the held-out patients.",)
        if tuning == TuningStatus.DEFAULT:
            return ("The penalty was not tuned: its default was used.",)
        return ()

    def card_sentences_after_calibration(self, record: FitRecord) -> tuple[str, ...]:
        if not record.held_out:
            return ()
        if record.refit_on_all_patients:
            return (
                "The logistic model was then refitted on every training patient, held-out "
                "ones included.",
            )
        return ("The logistic model kept its fit on the patients not held out.",)

    def card_folds_step(self, folds: Sequence[FitRecord]) -> tuple[str, int]:
        return "the penalty was tuned in", sum(f.tuning == TuningStatus.TUNED for f in folds)


def _tune(
    X: np.ndarray,
    y: np.ndarray,
    rows: HoldOut,
    feature_names: Sequence[str],
    seed: int,
) -> tuple[tuple[np.ndarray, np.ndarray], dict[str, Any]]:
    """The ``(C, interaction weight)`` of :data:`LOGISTIC_GRID` with the lowest log loss
    on the held-out patients, each candidate fitted on the other training patients (a
    random subset of them above ``_TUNING_ROWS`` rows).

    Returns the chosen candidate's ``(coef_, intercept_)`` (a starting point for the
    full fit) and the record of the choice.
    """
    fit_rows, held_out = rows.fit_rows, rows.held_out_rows
    tuning_rows = fit_rows
    if fit_rows.sum() > _TUNING_ROWS:
        candidates = pd.unique(rows.patients[fit_rows])
        share = _TUNING_ROWS / fit_rows.sum()
        rng = np.random.default_rng(seed + 1)
        keep = rng.choice(candidates, size=int(len(candidates) * share), replace=False)
        tuning_rows = fit_rows & member_mask(rows.patients, keep)
    losses = []
    starts = []
    estimators: dict[float, Any] = {}
    for C, interaction_weight in LOGISTIC_GRID:
        if interaction_weight not in estimators:
            estimators[interaction_weight] = _pipeline(
                weights=penalty_weights(feature_names, interaction_weight)
            )
        estimator = estimators[interaction_weight]
        # warm start: each C begins from the solution of the previous one
        estimator.set_params(**{f"{_STEP}__C": C, f"{_STEP}__warm_start": True})
        estimator.fit(X[tuning_rows], y[tuning_rows])
        p = estimator.predict_proba(X[held_out])[:, 1]
        losses.append(float(log_loss(y[held_out], p, labels=[0, 1])))
        logistic = estimator.named_steps[_STEP]
        starts.append((logistic.coef_.copy(), logistic.intercept_.copy()))
    best = int(np.argmin(losses))
    C, interaction_weight = LOGISTIC_GRID[best]
    return starts[best], {
        "C": C,
        "interaction_weight": interaction_weight,
        "chosen_by": "lowest log loss on the held-out training patients",
        "tuning_rows": int(tuning_rows.sum()),
        "held_out_rows": int(held_out.sum()),
        "grid_log_loss": [
            {"C": c, "interaction_weight": w, "log_loss": loss}
            for (c, w), loss in zip(LOGISTIC_GRID, losses, strict=True)
        ],
    }
