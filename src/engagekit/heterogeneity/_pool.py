"""Rubin's rules: one inference from the analyses of several imputed tables.

Each of the ``M`` completed tables gives estimates and their covariance. The pooled
estimate is their mean; its variance adds to the mean within-imputation covariance ``W``
the spread of the estimates between imputations ``B``, inflated for the finite ``M``:
``T = W + (1 + 1/M) B`` (Rubin 1987). A joint hypothesis ``R theta = 0`` is tested with
the D1 statistic of Li, Raghunathan and Rubin (1991), referred to an F distribution
(van Buuren, *Flexible Imputation of Missing Data*, 2nd ed., §5.3.3).

Where every imputation gave the same estimates (nothing was missing) ``B`` is exactly 0,
and the results are exactly the complete-data ones: ``T = W``, infinite degrees of
freedom, and the D1 test's p-value that of the plain chi-square Wald test.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

from ..errors import ArgumentError

__all__ = ["D1Test", "Pooled", "d1_test", "rubin_pool"]

#: Level of :meth:`Pooled.confidence_interval` unless told otherwise.
_LEVEL = 0.95
#: Below this many degrees of freedom (``k (M - 1)``) the D1 test's denominator degrees
#: of freedom take Li, Raghunathan and Rubin's second form.
_SMALL_T = 4


@dataclass(frozen=True)
class Pooled:
    """Estimates pooled over imputations by Rubin's rules.

    Attributes
    ----------
    estimate : numpy.ndarray
        The mean of the ``M`` estimates, shape ``(p,)``.
    within : numpy.ndarray
        ``W``, the mean of the ``M`` covariances, ``(p, p)``.
    between : numpy.ndarray
        ``B``, the covariance of the estimates between imputations (divisor ``M - 1``).
    total : numpy.ndarray
        ``T = W + (1 + 1/M) B``, the pooled estimate's covariance.
    df : numpy.ndarray
        Degrees of freedom of each parameter's t reference distribution; infinite where
        its ``B`` is 0 and no complete-data degrees of freedom were given.
    fmi : numpy.ndarray
        Each parameter's fraction of missing information; 0 where its ``B`` is 0.
    m : int
        The number of imputations.
    """

    estimate: np.ndarray
    within: np.ndarray
    between: np.ndarray
    total: np.ndarray
    df: np.ndarray
    fmi: np.ndarray
    m: int

    @property
    def se(self) -> np.ndarray:
        """The pooled standard errors, ``sqrt(diag(T))``."""
        return np.sqrt(np.diag(self.total))

    def confidence_interval(self, level: float = _LEVEL) -> tuple[np.ndarray, np.ndarray]:
        """Each parameter's confidence interval from the t distribution on :attr:`df`.

        Where ``df`` is infinite the quantile is the normal one.

        Parameters
        ----------
        level : float
            The coverage, in (0, 1).

        Returns
        -------
        (numpy.ndarray, numpy.ndarray)
            The lower and upper limits, each of shape ``(p,)``.
        """
        if not 0 < level < 1:
            raise ArgumentError(f"level must be in (0, 1) (found {level})")
        quantile = stats.t.ppf((1 + level) / 2, self.df)
        half = quantile * self.se
        return self.estimate - half, self.estimate + half


@dataclass(frozen=True)
class D1Test:
    """The D1 test of ``R theta = 0`` over imputations (Li, Raghunathan & Rubin 1991).

    Attributes
    ----------
    statistic : float
        ``D1``, referred to ``F(df1, df2)``.
    df1 : int
        The number of rows of ``R``.
    df2 : float
        The denominator degrees of freedom; infinite where ``r`` is 0.
    p_value : float
    r : float
        The average relative increase in variance due to the missing data.
    """

    statistic: float
    df1: int
    df2: float
    p_value: float
    r: float


def _stacked(
    estimates: Sequence[np.ndarray], covariances: Sequence[np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    """The estimates as an ``(M, p)`` array and the covariances as ``(M, p, p)``, checked."""
    Q = np.array([np.asarray(q, dtype=float) for q in estimates])
    U = np.array([np.asarray(u, dtype=float) for u in covariances])
    m = len(Q)
    if m < 2 or len(U) != m:
        raise ArgumentError(
            f"pooling needs at least 2 imputations, with one covariance per estimate "
            f"(found {m} estimates and {len(U)} covariances)"
        )
    if Q.ndim != 2 or U.shape[1:] != (Q.shape[1], Q.shape[1]):
        raise ArgumentError(
            f"expected estimates of shape (p,) and covariances of shape (p, p); found "
            f"{Q.shape[1:]} and {U.shape[1:]}"
        )
    return Q, U


def _exact_mean(values: np.ndarray) -> np.ndarray:
    """The mean over the first axis, exactly the common value where all are equal.

    A floating-point mean of ``M`` equal numbers need not equal them; taking the value
    itself there makes ``B`` exactly 0 and the pooled results exactly the complete-data
    ones when nothing was missing.
    """
    equal = (values == values[0]).all(axis=0)
    return np.where(equal, values[0], values.mean(axis=0))


def rubin_pool(
    estimates: Sequence[np.ndarray],
    covariances: Sequence[np.ndarray],
    *,
    df_complete: float | None = None,
) -> Pooled:
    """Pool the analyses of ``M`` imputed tables by Rubin's rules.

    Parameters
    ----------
    estimates : sequence of numpy.ndarray
        One vector of ``p`` estimates per imputation (at least 2).
    covariances : sequence of numpy.ndarray
        Their ``p x p`` covariances, in the same order; positive variances.
    df_complete : float, optional
        The complete-data degrees of freedom, above 0. When given and finite, the degrees
        of freedom are Barnard and Rubin's (1999) small-sample ones, which stay below it
        (where ``B_jj`` is 0 they are ``(df_complete + 1) / (df_complete + 3)
        df_complete``, as in R's mice); otherwise Rubin's (1987) ``(M - 1) / lambda^2``
        with ``lambda = (1 + 1/M) B_jj / T_jj``, infinite where ``B_jj`` is 0.

    Returns
    -------
    Pooled

    Raises
    ------
    ArgumentError
        Fewer than 2 imputations, mismatched shapes, a variance that is not positive, or
        ``df_complete`` not above 0.

    Examples
    --------
    >>> pooled = rubin_pool([np.array([1.0]), np.array([2.0]), np.array([3.0])],
    ...                     [np.array([[0.5]]), np.array([[0.6]]), np.array([[0.7]])])
    >>> pooled.estimate, pooled.within, pooled.between
    (array([2.]), array([[0.6]]), array([[1.]]))
    >>> round(float(pooled.total[0, 0]), 4), round(float(pooled.df[0]), 3)
    (1.9333, 4.205)
    >>> rubin_pool([np.array([1.0])], [np.array([[0.5]])])
    Traceback (most recent call last):
    ...
    engagekit.errors.ArgumentError: pooling needs at least 2 imputations, with one covariance per estimate (found 1 estimates and 1 covariances)
    """  # noqa: E501
    if df_complete is not None and not df_complete > 0:
        raise ArgumentError(f"df_complete must be above 0 (found {df_complete})")
    Q, U = _stacked(estimates, covariances)
    m = len(Q)
    estimate = _exact_mean(Q)
    within = _exact_mean(U)
    if not (np.diag(within) > 0).all():
        raise ArgumentError("every estimate's variance must be positive")
    deviations = Q - estimate
    between = deviations.T @ deviations / (m - 1)
    inflation = 1 + 1 / m
    total = within + inflation * between
    b, w, t = np.diag(between), np.diag(within), np.diag(total)
    missing_info = b > 0
    lam = inflation * b / t
    # where B_jj is 0, lambda is 0 and Rubin's degrees of freedom are infinite
    df = np.full(len(b), np.inf)
    df[missing_info] = (m - 1) / lam[missing_info] ** 2
    if df_complete is not None and np.isfinite(df_complete):
        observed = (df_complete + 1) / (df_complete + 3) * df_complete * (1 - lam)
        # Barnard & Rubin: 1/df = 1/df_old + 1/df_obs, also where df_old is infinite
        df = 1 / (1 / df + 1 / observed)
    r = inflation * b / w
    fmi = np.zeros(len(b))
    fmi[missing_info] = (r + 2 / (df + 3))[missing_info] / (r + 1)[missing_info]
    return Pooled(
        estimate=estimate, within=within, between=between, total=total, df=df, fmi=fmi, m=m
    )


def d1_test(
    estimates: Sequence[np.ndarray], covariances: Sequence[np.ndarray], R: np.ndarray
) -> D1Test:
    """The D1 test of ``R theta = 0`` over ``M`` imputations.

    With ``Q_i = R theta_i``, ``Q`` their mean, ``U`` the mean of ``R W_i R'``, ``B`` the
    between-imputation covariance of the ``Q_i`` and ``k`` the rows of ``R``:
    ``r = (1 + 1/M) tr(B U^-1) / k`` and ``D1 = Q' U^-1 Q / (k (1 + r))``, referred to
    ``F(k, df2)`` with ``t = k (M - 1)``, ``df2 = 4 + (t - 4)(1 + (1 - 2/t) / r)^2``
    where ``t > 4`` and ``t (1 + 1/k)(1 + r)^2 / 2`` otherwise. Where ``r`` is 0 (every
    imputation agrees) the test is the chi-square(``k``) Wald test of ``Q`` with
    covariance ``U``, to the last bit.

    Parameters
    ----------
    estimates, covariances : sequence of numpy.ndarray
        As for :func:`rubin_pool`.
    R : numpy.ndarray
        The ``k x p`` contrast matrix, of full row rank.

    Returns
    -------
    D1Test

    Examples
    --------
    >>> R = np.array([[-1.0, 1.0]])
    >>> test = d1_test([np.array([0.0, d]) for d in (1.0, 2.0, 3.0, 4.0, 5.0, 6.0)],
    ...                [np.array([[1.0, 0.5], [0.5, 1.0]])] * 6, R)
    >>> round(test.statistic, 4), test.df1, round(test.df2, 3), round(test.r, 4)
    (2.4098, 1, 5.315, 4.0833)
    """
    R = np.atleast_2d(np.asarray(R, dtype=float))
    Q, U = _stacked(estimates, covariances)
    # R @ q and R @ u @ R.T one at a time, as the complete-data Wald test computes them,
    # so that identical imputations give that test's numbers exactly
    pooled = rubin_pool([R @ q for q in Q], [R @ u @ R.T for u in U])
    k, m = R.shape[0], pooled.m
    wald = float(pooled.estimate @ np.linalg.solve(pooled.within, pooled.estimate))
    r = float((1 + 1 / m) * np.trace(np.linalg.solve(pooled.within, pooled.between)) / k)
    statistic = wald / (k * (1 + r))
    if r == 0:
        return D1Test(
            statistic=statistic, df1=k, df2=np.inf, p_value=float(stats.chi2.sf(wald, k)), r=r
        )
    t = k * (m - 1)
    if t > _SMALL_T:
        df2 = 4 + (t - 4) * (1 + (1 - 2 / t) / r) ** 2
    else:
        df2 = t * (1 + 1 / k) * (1 + r) ** 2 / 2
    p_value = float(stats.f.sf(statistic, k, df2))
    return D1Test(statistic=statistic, df1=k, df2=float(df2), p_value=p_value, r=r)
