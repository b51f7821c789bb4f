"""The two model kinds engagekit fits, as scikit-learn estimators on the feature matrix.

- ``logistic``: an interpretable logistic regression on the encounter features plus
  attribute × treatment terms (this session's rating, centred, times each treatment but
  the first), standardised, with a ridge penalty. The penalty is a prior: every
  standardised coefficient gets one, and two groups get a tighter one, through column
  weights ``w`` (a weight ``w`` multiplies the prior SD by ``w``):

  - the attribute × treatment terms, because the working hypothesis of the field is that
    a quality matters alike in every treatment; the data can still overrule it;
  - the earlier-session summaries (previous value, running mean and minimum), which
    mostly repeat this session's ratings.

  The penalty strength ``C`` and the interaction weight are tuned on held-out patients
  inside the training data (:data:`LOGISTIC_GRID`); the history weight is fixed at
  :data:`HISTORY_WEIGHT`. With few events per term (re-attendance misses are rare) an
  unpenalised fit loses discrimination to noise.
- ``gbm``: scikit-learn's HistGradientBoostingClassifier with early stopping on held-out
  patients and small trees (at most 15 leaves, depth 4), which keeps exact TreeSHAP
  explanations fast.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

__all__ = [
    "HISTORY_WEIGHT",
    "LOGISTIC_GRID",
    "MODEL_KINDS",
    "ColumnWeights",
    "add_interactions",
    "interaction_name",
    "logistic_coefficients",
    "make_estimator",
    "penalty_weights",
]

MODEL_KINDS = ("logistic", "gbm")

#: Candidate ``(C, interaction weight)`` pairs of the logistic model, tried on held-out
#: patients in each training set, in this order (ascending ``C`` for each weight, so each
#: fit starts from the last). ``C`` is scikit-learn's inverse penalty on the standardised
#: coefficients (prior variance ``C`` per coefficient). Weaker penalties (``C = 0.1``)
#: were never chosen on simulated services from 1,200 to 40,000 patients, and are the
#: slowest to fit.
LOGISTIC_GRID = tuple((c, w) for w in (0.1, 0.3, 1.0) for c in (0.001, 0.003, 0.01))

#: Weight of the earlier-session summaries' prior SD (see the module docstring).
HISTORY_WEIGHT = 0.3
_HISTORY_SUFFIXES = ("__prev", "__prev_missing", "__mean", "__min")


class ColumnWeights(TransformerMixin, BaseEstimator):
    """Multiply each column by a fixed weight (a per-column ridge prior SD factor).

    Placed between a scaler and a ridge-penalised model, a weight ``w`` on a column
    scales the prior SD of its coefficient by ``w``; the coefficient on the column's
    own scale is the fitted one times ``w``.

    Parameters
    ----------
    weights : array-like of float, optional
        One per column; None means all ones.
    """

    def __init__(self, weights=None):
        self.weights = weights

    def fit(self, X, y=None):
        X = np.asarray(X)
        self.n_features_in_ = X.shape[1]
        w = np.ones(X.shape[1]) if self.weights is None else np.asarray(self.weights, float)
        if w.shape != (X.shape[1],):
            raise ValueError(f"{w.size} weights for {X.shape[1]} columns")
        self.weights_ = w
        return self

    def transform(self, X):
        return np.asarray(X) * self.weights_


def penalty_weights(
    feature_names: Sequence[str], interaction_weight: float, history_weight: float = HISTORY_WEIGHT
) -> np.ndarray:
    """Column weights for :class:`ColumnWeights`: interactions, history summaries, others 1."""
    weights = np.ones(len(feature_names))
    for i, name in enumerate(feature_names):
        if ":treatment=" in name:
            weights[i] = interaction_weight
        elif name.endswith(_HISTORY_SUFFIXES):
            weights[i] = history_weight
    return weights


def interaction_name(attribute: str, treatment: str) -> str:
    return f"{attribute}:treatment={treatment}"


def add_interactions(
    features: pd.DataFrame,
    attributes: Sequence[str],
    treatments: Sequence[str],
    centres: dict[str, float],
) -> pd.DataFrame:
    """Append ``attribute × treatment`` columns for every treatment but the first.

    The first treatment is the reference: its slope is the attribute's main effect, and
    each other treatment's slope is the main effect plus its interaction term.
    """
    extra = {}
    for attribute in attributes:
        centred = features[attribute].to_numpy() - centres[attribute]
        for treatment in treatments[1:]:
            indicator = features[f"treatment={treatment}"].to_numpy()
            extra[interaction_name(attribute, treatment)] = centred * indicator
    return pd.concat([features, pd.DataFrame(extra, index=features.index)], axis=1)


def make_estimator(kind: str, seed: int = 0, *, C: float = 0.003, weights=None):
    """An unfitted estimator of the given kind (see the module docstring).

    ``C`` and ``weights`` (see :class:`ColumnWeights`) apply to the logistic model only.
    """
    if kind == "logistic":
        return Pipeline(
            [
                ("scale", StandardScaler()),
                ("weight", ColumnWeights(weights)),
                ("logistic", LogisticRegression(C=C, max_iter=2000, tol=1e-5)),
            ]
        )
    if kind == "gbm":
        return HistGradientBoostingClassifier(
            learning_rate=0.1,
            max_iter=500,
            max_leaf_nodes=15,
            max_depth=4,
            min_samples_leaf=50,
            l2_regularization=1.0,
            early_stopping=True,
            n_iter_no_change=20,
            random_state=seed,
        )
    raise ValueError(f"unknown model kind {kind!r}; expected one of {list(MODEL_KINDS)}")


def logistic_coefficients(pipeline: Pipeline, feature_names: Sequence[str]) -> pd.DataFrame:
    """Coefficients of a fitted logistic pipeline on the features' own scale."""
    scaler: StandardScaler = pipeline.named_steps["scale"]
    weights: ColumnWeights = pipeline.named_steps["weight"]
    model: LogisticRegression = pipeline.named_steps["logistic"]
    coef = model.coef_.ravel() * weights.weights_ / scaler.scale_
    intercept = float(model.intercept_[0] - np.sum(coef * scaler.mean_))
    table = pd.DataFrame(
        {"term": ["(intercept)", *feature_names], "coefficient": [intercept, *coef]}
    )
    table["odds_ratio"] = np.exp(table["coefficient"])
    return table
