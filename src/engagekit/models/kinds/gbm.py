"""The ``gbm`` kind: gradient-boosted trees.

scikit-learn's HistGradientBoostingClassifier with small trees (at most 15 leaves, depth
4), which keeps exact TreeSHAP explanations fast. The trees stop adding iterations when
their log loss on the held-out training patients stops improving (at most 500); with too
few patients to hold out, they use a fixed 100. The settings are fixed, not tuned, and
the early-stopped fit is kept (no refit on every patient).

Its exact explanation is path-dependent TreeSHAP (see
:mod:`engagekit.models.kinds._tree_shap`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier

from ...choices import ModelKind
from .._fit_record import EarlyStopping, FitRecord, TuningStatus
from ._spec import (
    CHUNK_ROWS,
    HoldOut,
    KindFitSteps,
    MarginExplanation,
    ModelKindSpec,
    whole_number,
)
from ._tree_shap import tree_shap

if TYPE_CHECKING:
    from .._model import EngagementModel

__all__ = ["GbmKind"]

# iterations when no patients are held out to stop early on
_FIXED_ITERATIONS = 100


class GbmKind(ModelKindSpec):
    """Gradient-boosted trees (see the module docstring).

    Examples
    --------
    >>> GbmKind().make_estimator(seed=3).get_params()["max_leaf_nodes"]
    15
    >>> GbmKind().coefficients(None, [])
    Traceback (most recent call last):
    ...
    ValueError: a 'gbm' model has no coefficients; use explanations
    """

    kind = ModelKind.GBM
    interaction_terms = False
    trusted_types = (
        "sklearn._loss._loss.CyHalfBinomialLoss",
        "sklearn._loss.link.Interval",
        "sklearn._loss.link.LogitLink",
        "sklearn._loss.loss.HalfBinomialLoss",
        "sklearn.ensemble._hist_gradient_boosting.binning._BinMapper",
        "sklearn.ensemble._hist_gradient_boosting.gradient_boosting.HistGradientBoostingClassifier",
        "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
        "sklearn.preprocessing._label.LabelEncoder",
    )
    card_name = "gradient-boosted trees"
    card_description = "Gradient-boosted trees (scikit-learn's HistGradientBoostingClassifier)."
    card_folds_not_held_out = "the trees did not stop early"

    def make_estimator(self, seed: int = 0) -> HistGradientBoostingClassifier:
        """Small trees with early stopping, seeded by ``seed``."""
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

    def fit_on_hold_out(
        self,
        model: EngagementModel,
        X: np.ndarray,
        y: np.ndarray,
        rows: HoldOut,
        seed: int,
    ) -> KindFitSteps:
        """Fit on the patients not held out, stopping early by the held-out patients'
        loss; without held-out patients, a fixed number of iterations."""
        fit = rows.fit_rows
        if rows.any_held_out:
            held_out = rows.held_out_rows
            model.estimator.fit(X[fit], y[fit], X_val=X[held_out], y_val=y[held_out])
        else:
            model.estimator.set_params(early_stopping=False, max_iter=_FIXED_ITERATIONS)
            model.estimator.fit(X[fit], y[fit])
        return KindFitSteps(
            tuning=TuningStatus.FIXED,
            early_stopping=EarlyStopping.USED if rows.any_held_out else EarlyStopping.NOT_USED,
            boosting_iterations=int(model.estimator.n_iter_),
            max_boosting_iterations=int(model.estimator.max_iter),
        )

    def explain(
        self, estimator: Any, X: np.ndarray, *, n_threads: int = 1, chunk_rows: int = CHUNK_ROWS
    ) -> MarginExplanation:
        """Exact path-dependent TreeSHAP values; ``n_threads`` share the trees' work."""
        # scikit-learn refuses to score no rows; an empty table has an empty explanation
        margin = estimator.decision_function(X) if len(X) else np.empty(0)
        base, values = tree_shap(estimator, X, n_threads, chunk_rows)
        return MarginExplanation(base, values, margin, "tree_path_dependent")

    def card_fit_sentences(self, record: FitRecord) -> tuple[str, ...]:
        stopping = record.early_stopping
        iterations = record.boosting_iterations
        ceiling = record.max_boosting_iterations
        if stopping == EarlyStopping.NOT_USED:
            return (
                f"No early stopping: the trees used a fixed {whole_number(iterations)} iterations.",
            )
        if stopping != EarlyStopping.USED:
            return ()
        if iterations < ceiling:
            return (
                f"The trees stopped early on the held-out patients, at {whole_number(iterations)} "
                f"of at most {whole_number(ceiling)} iterations.",
            )
        return (
            "Early stopping on the held-out patients was monitored, but the trees used all "
            f"{whole_number(ceiling)} iterations.",
        )

    def card_folds_step(self, folds: Sequence[FitRecord]) -> tuple[str, int]:
        used = sum(f.early_stopping == EarlyStopping.USED for f in folds)
        return "the trees stopped early on them in", used
