"""A thin, checked wrapper of statsmodels' GEE, with the Kauermann–Carroll covariance.

statsmodels warns, rather than fails, when a GEE stops at its iteration limit or meets a
singular matrix, and still returns estimates. engagekit never uses such a fit: every
warning raised while fitting is caught, and any sign of non-convergence becomes an
:class:`~engagekit.errors.AnalysisError` that names the fix.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
import statsmodels.api as sm
from statsmodels.tools.sm_exceptions import ConvergenceWarning

from ..choices import CovarianceType, WorkingCorrelation, as_choice
from ..errors import AnalysisError, ArgumentError

__all__ = ["COV_TYPES", "GeeFit", "fit_gee", "kauermann_carroll_cov"]

#: statsmodels' model-based covariance (for comparison only: not robust)
_NAIVE = "naive"
#: Covariances :func:`fit_gee` offers: the sandwiches the analysis chooses among
#: (:class:`~engagekit.choices.CovarianceType`: Kauermann–Carroll, see
#: :func:`kauermann_carroll_cov`, statsmodels' Mancl–DeRouen and its plain sandwich),
#: and the model-based one.
COV_TYPES = (*(kind.value for kind in CovarianceType), _NAIVE)

_FAMILIES = {"binomial": sm.families.Binomial, "gaussian": sm.families.Gaussian}
_STRUCTURES = {
    WorkingCorrelation.INDEPENDENCE: sm.cov_struct.Independence,
    WorkingCorrelation.EXCHANGEABLE: sm.cov_struct.Exchangeable,
}


def _cov_type(value: object) -> CovarianceType | str:
    """``value`` as one of :data:`COV_TYPES` (a :class:`CovarianceType` where it is one)."""
    if value == _NAIVE:
        return _NAIVE
    if value not in COV_TYPES:
        expected = ", ".join(map(repr, COV_TYPES))
        raise ArgumentError(f"unknown covariance type {value!r}; expected one of {expected}")
    return CovarianceType(value)


# statsmodels stops when the norm of the GEE score falls below ``ctol`` (1e-6), but it
# also reports "converged" after too few iterations to update the estimates for the
# last working-correlation update (or none at all); so the score is checked again at
# the estimates it returns, with this tolerance.
_RECHECK_TOL = 1e-4


def _estimating_equation_norm(model) -> float:
    """Norm of the GEE score at the model's current estimates and working correlation."""
    _, score = model._update_mean_params()  # the quantity statsmodels' own stop rule uses
    return float("inf") if score is None else float(np.sqrt(np.sum(np.square(score))))


@dataclass
class GeeFit:
    """A converged GEE fit.

    Attributes
    ----------
    params : pandas.Series
        Coefficients by term name.
    cov : pandas.DataFrame
        Covariance of ``params`` of the requested ``cov_type``.
    bse_robust, bse_naive : pandas.Series
        Robust (sandwich) and model-based standard errors, whatever ``cov_type`` was.
    cov_type : CovarianceType or "naive"
    working_correlation : WorkingCorrelation
    dependence : float or None
        The exchangeable working correlation; None under independence.
    n_obs, n_clusters, iterations : int
    notes : list of str
        Harmless warnings met while fitting (for the record).
    result : statsmodels GEEResults
    """

    params: pd.Series
    cov: pd.DataFrame
    bse_robust: pd.Series
    bse_naive: pd.Series
    cov_type: CovarianceType | str
    working_correlation: WorkingCorrelation
    dependence: float | None
    n_obs: int
    n_clusters: int
    iterations: int
    notes: list[str] = field(default_factory=list)
    result: Any = None


def fit_gee(
    endog: Any,
    exog: pd.DataFrame,
    groups: Any,
    family: Literal["binomial", "gaussian"] = "binomial",
    working_correlation: WorkingCorrelation | str = WorkingCorrelation.INDEPENDENCE,
    cov_type: CovarianceType | str = CovarianceType.KAUERMANN_CARROLL,
    maxiter: int = 100,
    keep_model: bool = False,
) -> GeeFit:
    """Fit a GEE and refuse a fit that did not converge.

    Parameters
    ----------
    endog : array-like
        Outcome, one value per row.
    exog : pandas.DataFrame
        Design matrix with named columns (include a constant column yourself).
    groups : array-like
        Cluster of each row; rows of a cluster need not be adjacent.
    family : {"binomial", "gaussian"}
        Binomial has its scale fixed at 1; gaussian estimates it.
    working_correlation : WorkingCorrelation or str
        ``independence`` or ``exchangeable``.
    cov_type : CovarianceType or str
        ``kauermann_carroll`` and ``bias_reduced`` (Mancl–DeRouen) are small-sample
        corrected sandwiches; ``robust`` is the plain sandwich, ``naive`` model-based.
    maxiter : int
    keep_model : bool
        Keep statsmodels' GEE results in ``result`` (for its score test). Otherwise a
        binomial fit with the independence working correlation, whose estimates are the
        logistic regression's, is fitted as that (statsmodels' GLM) and its covariances
        are computed for every cluster at once (:func:`_independent_logistic`): the same
        numbers, several times faster.

    Raises
    ------
    ArgumentError
        An unknown working correlation or covariance type.
    AnalysisError
        If the fit stopped at its iteration limit, met a singular matrix or gave
        non-finite estimates or standard errors.
    """
    working_correlation = as_choice(WorkingCorrelation, working_correlation, "working correlation")
    cov_type = _cov_type(cov_type)
    groups = np.asarray(groups)
    if (
        not keep_model
        and family == "binomial"
        and working_correlation is WorkingCorrelation.INDEPENDENCE
        and cov_type in _FAST_COV_TYPES
    ):
        return _independent_logistic(
            np.asarray(endog, dtype=float), exog, groups, cov_type, maxiter
        )
    order = np.argsort(groups, kind="stable")  # statsmodels wants clusters together
    y = np.asarray(endog, dtype=float)[order]
    X = exog.iloc[order]
    model = sm.GEE(
        y,
        X,
        groups=groups[order],
        family=_FAMILIES[family](),
        cov_struct=_STRUCTURES[working_correlation](),
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        # Kauermann–Carroll is computed from the fit below; statsmodels gives the rest
        fitted_cov = "robust" if cov_type is CovarianceType.KAUERMANN_CARROLL else str(cov_type)
        result = model.fit(maxiter=maxiter, cov_type=fitted_cov)
    problems = [str(w.message) for w in caught if issubclass(w.category, ConvergenceWarning)]
    notes = [str(w.message) for w in caught if not issubclass(w.category, ConvergenceWarning)]
    hint = (
        " The exchangeable working correlation often fails on data like these; "
        "use the independence working correlation (the default), which is also the "
        "safer choice with ratings that change from session to session."
        if working_correlation is WorkingCorrelation.EXCHANGEABLE
        else " Check for a treatment or category with very few patients or with only one "
        "outcome value, and leave it out or merge it."
    )
    if result is not None and not problems and result.converged:
        residual = _estimating_equation_norm(model)
        if not residual < _RECHECK_TOL:
            problems.append(
                f"the estimating equations are not solved at the returned estimates "
                f"(score norm {residual:.2g})"
            )
    if result is None or problems or not result.converged:
        why = "; ".join(problems) or "the estimates were still moving at the iteration limit"
        raise AnalysisError(f"the GEE ({working_correlation}) did not converge: {why}.{hint}")
    params = pd.Series(np.asarray(result.params), index=exog.columns)
    matrix = (
        kauermann_carroll_cov(model)
        if cov_type is CovarianceType.KAUERMANN_CARROLL
        else np.asarray(result.cov_params())
    )
    cov = pd.DataFrame(matrix, index=exog.columns, columns=exog.columns)
    variances = np.concatenate(
        [np.diag(cov), np.diag(result.cov_robust), np.diag(result.cov_naive)]
    )
    if not (np.isfinite(params).all() and np.isfinite(variances).all() and (variances > 0).all()):
        raise AnalysisError(
            f"the GEE ({working_correlation}) gave non-finite estimates or a covariance "
            "that is not positive (the data cannot identify every coefficient)." + hint
        )
    robust = pd.Series(np.sqrt(np.diag(result.cov_robust)), index=exog.columns)
    naive = pd.Series(np.sqrt(np.diag(result.cov_naive)), index=exog.columns)
    dependence = None
    if working_correlation is WorkingCorrelation.EXCHANGEABLE:
        dependence = float(np.asarray(result.cov_struct.dep_params).ravel()[0])
    return GeeFit(
        params=params,
        cov=cov,
        bse_robust=robust,
        bse_naive=naive,
        cov_type=cov_type,
        working_correlation=working_correlation,
        dependence=dependence,
        n_obs=len(y),
        n_clusters=len(np.unique(groups)),
        iterations=len(result.fit_history["params"]),
        notes=notes,
        result=result,
    )


#: The covariances :func:`_independent_logistic` computes itself (Mancl–DeRouen is left
#: to statsmodels).
_FAST_COV_TYPES = (CovarianceType.KAUERMANN_CARROLL, CovarianceType.ROBUST, _NAIVE)
_INDEPENDENCE_HINT = (
    " Check for a treatment or category with very few patients or with only one "
    "outcome value, and leave it out or merge it."
)


def _cluster_blocks(groups: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
    """The cluster of each row (0 .. G - 1) and, for each cluster size, the rows of
    every cluster of that size (an array of shape clusters x size)."""
    _, codes, sizes = np.unique(groups, return_inverse=True, return_counts=True)
    order = np.argsort(codes, kind="stable")
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    blocks = []
    for size in np.unique(sizes):
        first = starts[sizes == size]
        blocks.append(order[first[:, None] + np.arange(size)[None, :]])
    return codes, blocks


def _independent_logistic(
    y: np.ndarray, exog: pd.DataFrame, groups: np.ndarray, cov_type: Any, maxiter: int
) -> GeeFit:
    """A binomial GEE with the independence working correlation, all clusters at once.

    Its estimating equations are the logistic regression's score equations, so the
    estimates are the maximum-likelihood ones (scikit-learn's unpenalised
    ``LogisticRegression`` by Newton–Cholesky, to a gradient tolerance of 1e-10). With
    ``Z = diag(sqrt(v)) X`` and ``e = (y - p) / sqrt(v)``, ``v = p (1 - p)``, the model-based
    covariance is ``A^-1``, ``A = Z'Z``, the plain sandwich ``A^-1 (sum_i Z_i'e_i e_i'Z_i)
    A^-1``, and Kauermann–Carroll's puts ``(I - H_i)^-1/2 e_i`` for ``e_i``, with
    ``H_i = Z_i A^-1 Z_i'`` (see :func:`kauermann_carroll_cov`); the clusters of each size
    are computed together.
    """
    from sklearn.exceptions import ConvergenceWarning as SklearnConvergenceWarning
    from sklearn.linear_model import LogisticRegression

    X = exog.to_numpy(dtype=float)
    model = LogisticRegression(
        C=np.inf, solver="newton-cholesky", fit_intercept=False, tol=1e-10, max_iter=maxiter
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            model.fit(X, y)
        except (np.linalg.LinAlgError, ValueError) as e:
            raise AnalysisError(
                f"the GEE (independence) did not converge: {e}.{_INDEPENDENCE_HINT}"
            ) from None
    stuck = (ConvergenceWarning, SklearnConvergenceWarning)
    problems = [str(w.message) for w in caught if issubclass(w.category, stuck)]
    notes = [str(w.message) for w in caught if not issubclass(w.category, stuck)]
    params = np.asarray(model.coef_, dtype=float).ravel()
    p = 1.0 / (1.0 + np.exp(-(X @ params)))
    residual = y - p
    iterations = int(np.max(model.n_iter_))
    if not problems and iterations >= maxiter:
        problems.append("the estimates were still moving at the iteration limit")
    score = float(np.sqrt(np.sum(np.square(X.T @ residual))))
    if not problems and not score < _RECHECK_TOL:
        problems.append(
            f"the estimating equations are not solved at the returned estimates "
            f"(score norm {score:.2g})"
        )
    if problems:
        raise AnalysisError(
            f"the GEE (independence) did not converge: {'; '.join(problems)}.{_INDEPENDENCE_HINT}"
        )
    root_v = np.sqrt(p * (1.0 - p))
    Z = X * root_v[:, None]
    standardised = residual / np.where(root_v > 0, root_v, 1.0)
    with np.errstate(all="ignore"):
        try:
            A_inv = np.linalg.inv(Z.T @ Z)
        except np.linalg.LinAlgError:
            A_inv = np.full((X.shape[1], X.shape[1]), np.nan)
    codes, blocks = _cluster_blocks(groups)
    U = np.zeros((codes.max() + 1, X.shape[1]))
    np.add.at(U, codes, Z * standardised[:, None])
    robust = A_inv @ (U.T @ U) @ A_inv
    if cov_type is CovarianceType.KAUERMANN_CARROLL:
        middle = np.zeros_like(A_inv)
        for rows in blocks:
            Zb, eb = Z[rows], standardised[rows]  # clusters x size x p, clusters x size
            H = (Zb @ A_inv) @ Zb.transpose(0, 2, 1)
            values, vectors = np.linalg.eigh(np.eye(rows.shape[1]) - (H + H.transpose(0, 2, 1)) / 2)
            # (I - H)^-1/2 e = V diag(values^-1/2) V' e
            projected = (vectors.transpose(0, 2, 1) @ eb[:, :, None])[:, :, 0]
            adjusted = vectors @ (projected / np.sqrt(np.clip(values, 1e-12, None)))[:, :, None]
            u = (Zb.transpose(0, 2, 1) @ adjusted)[:, :, 0]
            middle += u.T @ u
        matrix = A_inv @ middle @ A_inv
    else:
        matrix = robust if cov_type is CovarianceType.ROBUST else A_inv
    names = exog.columns
    cov = pd.DataFrame(matrix, index=names, columns=names)
    variances = np.concatenate([np.diag(matrix), np.diag(robust), np.diag(A_inv)])
    if not (np.isfinite(params).all() and np.isfinite(variances).all() and (variances > 0).all()):
        raise AnalysisError(
            "the GEE (independence) gave non-finite estimates or a covariance that is not "
            "positive (the data cannot identify every coefficient)." + _INDEPENDENCE_HINT
        )
    return GeeFit(
        params=pd.Series(params, index=names),
        cov=cov,
        bse_robust=pd.Series(np.sqrt(np.diag(robust)), index=names),
        bse_naive=pd.Series(np.sqrt(np.diag(A_inv)), index=names),
        cov_type=cov_type,
        working_correlation=WorkingCorrelation.INDEPENDENCE,
        dependence=None,
        n_obs=len(y),
        n_clusters=int(codes.max() + 1),
        iterations=iterations,
        notes=notes,
        result=None,
    )


def kauermann_carroll_cov(model) -> np.ndarray:
    """The Kauermann–Carroll (2001) small-sample corrected sandwich covariance.

    The plain sandwich's middle term sums ``D_i' V_i^-1 r_i r_i' V_i^-1 D_i`` over
    clusters ``i``; its residuals ``r_i`` are too small on average, because each cluster
    pulls the fit towards itself (leverage), so the plain sandwich is too small and its
    Wald tests reject too often with few clusters (about 17% at a nominal 5% with 120
    patients and this toolkit's 48-term model; ``benchmarks/``). Mancl and DeRouen (2001)
    replace ``r_i`` by ``(I - H_i)^-1 r_i``, which over-corrects when the model has many
    terms per cluster (under 1% at the same setting). Kauermann and Carroll use the
    symmetric square root, ``(I - H_i)^-1/2``, in the standardised form: with
    ``L_i = V_i^-1/2``, ``e_i = L_i r_i``, ``H_i = L_i D_i A^-1 D_i' L_i'``,

        U_i = D_i' L_i' (I - H_i)^-1/2 e_i,   cov = A^-1 (sum_i U_i U_i') A^-1,

    where ``A = sum_i D_i' V_i^-1 D_i``. The scale cancels, so this holds for any family.

    Parameters
    ----------
    model : statsmodels GEE
        Fitted: its cached means and working correlation are those of the estimates.

    Returns
    -------
    numpy.ndarray
        ``p x p`` covariance of the mean parameters.
    """
    pieces = []
    for i in range(model.num_group):
        expval, lpr = model.cached_means[i]
        D = model.mean_deriv(model.exog_li[i], lpr)
        sd = np.sqrt(model.family.variance(expval))
        matrix, is_correlation = model.cov_struct.covariance_matrix(expval, i)
        V = matrix * np.outer(sd, sd) if is_correlation else matrix
        values, vectors = np.linalg.eigh(V)
        L = (vectors / np.sqrt(values)) @ vectors.T  # symmetric V^-1/2
        pieces.append((L @ D, L @ (model.endog_li[i] - expval)))
    A = sum(Z.T @ Z for Z, _ in pieces)
    A_inv = np.linalg.inv(A)
    middle = np.zeros_like(A)
    for Z, e in pieces:
        H = Z @ A_inv @ Z.T
        values, vectors = np.linalg.eigh(np.eye(len(e)) - (H + H.T) / 2)
        adjust = (vectors / np.sqrt(np.clip(values, 1e-12, None))) @ vectors.T
        u = Z.T @ (adjust @ e)
        middle += np.outer(u, u)
    return A_inv @ middle @ A_inv
