"""The two model kinds engagekit fits, as scikit-learn estimators on the feature matrix.

- ``logistic``: an interpretable logistic regression on the encounter features plus
  attribute × treatment terms (this session's rating, centred, times each treatment but
  the first), standardised, with a light ridge penalty so that the redundant one-hot
  columns stay identifiable.
- ``gbm``: scikit-learn's HistGradientBoostingClassifier with early stopping on held-out
  patients and small trees (at most 15 leaves, depth 4), which keeps exact TreeSHAP
  explanations fast.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

__all__ = [
    "MODEL_KINDS",
    "add_interactions",
    "interaction_name",
    "logistic_coefficients",
    "make_estimator",
]

MODEL_KINDS = ("logistic", "gbm")


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


def make_estimator(kind: str, seed: int = 0):
    """An unfitted estimator of the given kind (see the module docstring)."""
    if kind == "logistic":
        return Pipeline(
            [
                ("scale", StandardScaler()),
                ("logistic", LogisticRegression(C=10.0, max_iter=2000, tol=1e-6)),
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
    model: LogisticRegression = pipeline.named_steps["logistic"]
    coef = model.coef_.ravel() / scaler.scale_
    intercept = float(model.intercept_[0] - np.sum(coef * scaler.mean_))
    table = pd.DataFrame(
        {"term": ["(intercept)", *feature_names], "coefficient": [intercept, *coef]}
    )
    table["odds_ratio"] = np.exp(table["coefficient"])
    return table
