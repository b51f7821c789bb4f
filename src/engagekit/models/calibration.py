"""Logistic recalibration of a model's log-odds margin.

``logit(p) = a + b * margin`` keeps explanations additive on the log-odds scale: every
contribution of the margin is multiplied by ``b`` and the base value becomes
``a + b * base``. Isotonic regression would not.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

__all__ = ["LogitRecalibration", "fit_logit_recalibration"]


@dataclass(frozen=True)
class LogitRecalibration:
    """``logit(p) = intercept + slope * margin``; identity when not needed."""

    intercept: float = 0.0
    slope: float = 1.0
    applied: bool = False
    p_value: float = float("nan")
    n: int = 0

    def __call__(self, margin: np.ndarray) -> np.ndarray:
        return self.intercept + self.slope * np.asarray(margin, dtype=float)


def _newton_logistic(x: np.ndarray, y: np.ndarray, iters: int = 50) -> tuple[np.ndarray, float]:
    """Two-parameter logistic regression of y on x by Newton's method; (beta, loglik)."""
    design = np.column_stack([np.ones_like(x), x])
    beta = np.array([0.0, 1.0])
    for _ in range(iters):
        eta = design @ beta
        p = 1.0 / (1.0 + np.exp(-eta))
        w = np.clip(p * (1 - p), 1e-12, None)
        grad = design.T @ (y - p)
        hess = design.T @ (design * w[:, None])
        step = np.linalg.solve(hess, grad)
        beta = beta + step
        if np.max(np.abs(step)) < 1e-10:
            break
    return beta, _loglik(design @ beta, y)


def _loglik(eta: np.ndarray, y: np.ndarray) -> float:
    # log(1 + exp(eta)) computed stably
    return float(np.sum(y * eta - np.logaddexp(0.0, eta)))


def fit_logit_recalibration(
    margin: np.ndarray, y: np.ndarray, alpha: float = 0.01
) -> LogitRecalibration:
    """Fit ``logit(p) = a + b * margin`` on held-out margins; apply it only if needed.

    Needed means the likelihood-ratio test of ``(a, b) = (0, 1)`` rejects at ``alpha``:
    a model whose held-out calibration cannot be told from perfect is left as it is.

    Parameters
    ----------
    margin : array of float
        The model's log-odds on data it was not fitted on.
    y : array of 0/1
    alpha : float
        Level of the likelihood-ratio test.
    """
    margin = np.asarray(margin, dtype=float)
    y = np.asarray(y, dtype=float)
    if len(y) < 50 or y.min() == y.max():
        return LogitRecalibration(n=len(y))
    beta, ll_fit = _newton_logistic(margin, y)
    ll_identity = _loglik(margin, y)
    p_value = float(stats.chi2.sf(max(0.0, 2 * (ll_fit - ll_identity)), df=2))
    if not np.all(np.isfinite(beta)) or p_value >= alpha:
        return LogitRecalibration(p_value=p_value, n=len(y))
    return LogitRecalibration(
        intercept=float(beta[0]), slope=float(beta[1]), applied=True, p_value=p_value, n=len(y)
    )
