"""Building blocks of the model kinds' estimators and design matrices.

- :class:`ColumnWeights` multiplies each column by a fixed weight: between a scaler and a
  ridge-penalised model, it sets each coefficient's prior SD (the ``logistic`` kind's
  penalty, see :mod:`engagekit.models.kinds.logistic`). It stays in this module because
  saved models name it by its path here.
- :func:`add_interactions` appends the attribute × treatment terms to the design matrix
  of a kind that uses them.

Each kind's estimator is made by its :class:`~engagekit.models.kinds.ModelKindSpec`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin

__all__ = ["ColumnWeights", "add_interactions", "interaction_name"]


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
