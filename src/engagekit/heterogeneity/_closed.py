"""Which treatment differs? Each treatment's deviation from the others, closed-tested.

When the joint test rejects "an attribute's slopes are equal in every treatment", it
does not say which treatment is the odd one out. This module tests, for every treatment
``t``, its **deviation**: its slope minus the mean of the other treatments' slopes,

``d_t = c_t' beta``, with ``c_t = e_t - (1 / (K - 1)) * sum of e_u over u != t``,

where ``beta`` holds the attribute's K slopes (log-odds per rating point).

The K elementary hypotheses ``H_t: d_t = 0`` are tested with the **closed testing
procedure** (Marcus, Peritz & Gabriel, 1976): for every non-empty subset S of the
treatments the intersection hypothesis ``H_S: d_t = 0 for every t in S`` is tested at
level alpha, and ``H_t`` is rejected only when every ``H_S`` containing ``t`` is. The
closed-testing adjusted p-value of ``t`` is the largest p-value of those intersections,
and rejecting where it is below alpha keeps the family-wise error rate (the chance of
naming any treatment whose deviation is truly zero) at most alpha in the strong sense,
whichever of the hypotheses are true.

The constraints of an intersection may be linearly dependent: the K deviations sum to
zero, so any K - 1 of them imply the last, and every subset of K - 1 or K treatments is
the one hypothesis "all slopes are equal", the joint test of the analysis. Each stacked
constraint matrix is therefore reduced to an orthonormal basis of its row space (the
right singular vectors whose singular value exceeds :data:`RANK_TOLERANCE` times the
largest) before it is tested, and that top hypothesis is tested once. A test that is
invariant to the basis of the constraint space (the Wald test is) then gives the top
intersection exactly the joint test's p-value.

The procedure tests ``2**K - 1`` hypotheses (``2**K - K - 1`` distinct ones). Above
:data:`MAX_CLOSED_TREATMENTS` treatments it falls back to Holm's step-down procedure over
the K elementary p-values, which also controls the family-wise error rate in the strong
sense but is less powerful where the deviations are correlated.

Note that one treatment's deviation moves every other treatment's deviation too: if
only ``t`` differs, by ``delta``, every other treatment deviates from the mean of the
rest by ``-delta / (K - 1)``. Those deviations are small but not zero, so naming one of
those treatments is not, strictly, a false discovery; where two or more treatments
differ, some deviations can be exactly zero, and those are the ones the error rate is
controlled over.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from itertools import combinations
from typing import TypeAlias

import numpy as np
from scipy import stats
from scipy.special import chdtrc

from ..errors import AnalysisError, ArgumentError

__all__ = [
    "CI_LEVEL",
    "MAX_CLOSED_TREATMENTS",
    "RANK_TOLERANCE",
    "Deviation",
    "SubsetTest",
    "deviation_contrasts",
    "deviations",
    "wald_subset_test",
]

#: Most treatments the full closed procedure is run for (``2**K - 1`` subset tests);
#: above it :func:`deviations` uses Holm's step-down procedure instead.
MAX_CLOSED_TREATMENTS = 12
#: A singular value of a constraint matrix at most this times its largest one counts
#: as zero when the matrix is reduced to a basis of its row space.
RANK_TOLERANCE = 1e-10
#: Confidence level of a deviation's (unadjusted) Wald interval.
CI_LEVEL = 0.95
_Z_CI = float(stats.norm.ppf(0.5 + CI_LEVEL / 2))
#: How many treatment counts' intersection bases are kept once computed.
_CACHED_SIZES = 16
_NOT_POSITIVE_DEFINITE = (
    "the covariance of the constrained slopes is not positive definite, so the Wald test "
    "cannot be computed"
)

#: A test of a linear hypothesis on the K slopes: given a constraint matrix C (one row
#: per constraint, full row rank), the p-value of ``H: C beta = 0``.
SubsetTest: TypeAlias = Callable[[np.ndarray], float]


@dataclass(frozen=True)
class Deviation:
    """One treatment's deviation from the mean of the other treatments' slopes.

    Attributes
    ----------
    treatment : str
    deviation : float
        The treatment's slope minus the mean of the other treatments' slopes
        (log-odds per rating point).
    se : float
        Its standard error, from the slopes' covariance.
    ci_low, ci_high : float
        Its 95% Wald confidence interval, not adjusted for multiplicity.
    p_value : float
        The p-value of the treatment's own hypothesis (deviation zero), unadjusted.
    p_closed : float
        The closed-testing adjusted p-value: the largest p-value of the intersection
        hypotheses that contain the treatment's own (Holm's adjusted p-value above
        :data:`MAX_CLOSED_TREATMENTS` treatments).
    deviates : bool
        Whether ``p_closed`` is below alpha: the treatment is named as differing.
    """

    treatment: str
    deviation: float
    se: float
    ci_low: float
    ci_high: float
    p_value: float
    p_closed: float
    deviates: bool


def deviation_contrasts(k: int) -> np.ndarray:
    """The K x K matrix whose row t is ``c_t``: slope t minus the mean of the others.

    Examples
    --------
    >>> deviation_contrasts(3)
    array([[ 1. , -0.5, -0.5],
           [-0.5,  1. , -0.5],
           [-0.5, -0.5,  1. ]])
    """
    if k < 2:
        raise ArgumentError(f"a deviation needs at least two treatments, not {k}")
    contrasts = np.full((k, k), -1.0 / (k - 1))
    np.fill_diagonal(contrasts, 1.0)
    return contrasts


def _row_basis(constraints: np.ndarray) -> np.ndarray:
    """An orthonormal basis (as rows) of the row space of ``constraints``."""
    _, singular, vt = np.linalg.svd(constraints, full_matrices=False)
    if singular.size == 0 or singular[0] <= 0:
        raise ArgumentError("the constraint matrix is zero: it constrains nothing")
    rank = int(np.sum(singular > RANK_TOLERANCE * singular[0]))
    basis: np.ndarray = vt[:rank]
    return basis


def _orthonormal_rows(matrix: np.ndarray) -> bool:
    """Whether the rows of ``matrix`` are orthonormal (so it is its own row basis)."""
    gram = matrix @ matrix.T
    gram.flat[:: gram.shape[0] + 1] -= 1.0
    return bool(np.max(np.abs(gram)) <= RANK_TOLERANCE)


@dataclass(frozen=True)
class _Intersections:
    """Intersection hypotheses of one size: their members and constraint bases."""

    members: np.ndarray  # (n, size) treatment indices
    bases: np.ndarray  # (n, rank, K), each an orthonormal basis of the constraints


@lru_cache(maxsize=_CACHED_SIZES)
def _intersections(k: int) -> tuple[_Intersections, ...]:
    """The distinct intersection hypotheses of K treatments with two or more members,
    grouped by size; the last group is the global hypothesis alone, standing for every
    subset of K - 1 or K treatments (their constraints span the same space)."""
    contrasts = deviation_contrasts(k)
    groups = []
    for size in range(2, k - 1):
        members = np.array(list(combinations(range(k), size)), dtype=np.intp)
        bases = np.stack([_row_basis(contrasts[row]) for row in members])
        groups.append(_Intersections(members, bases))
    top = _row_basis(contrasts)
    groups.append(_Intersections(np.arange(k, dtype=np.intp)[None, :], top[None, :, :]))
    for group in groups:
        group.members.flags.writeable = False
        group.bases.flags.writeable = False
    return tuple(groups)


def _batched_wald(beta: np.ndarray, sigma: np.ndarray, bases: np.ndarray) -> np.ndarray:
    """The Wald p-values of ``B beta = 0`` for a stack of orthonormal bases B (n, r, K):
    what :func:`wald_subset_test` gives for each, computed at once."""
    difference = bases @ beta
    try:
        lower = np.linalg.cholesky(bases @ sigma @ np.swapaxes(bases, 1, 2))
    except np.linalg.LinAlgError as e:
        raise AnalysisError(_NOT_POSITIVE_DEFINITE) from e
    whitened = np.linalg.solve(lower, difference[:, :, None])[:, :, 0]
    p_values: np.ndarray = chdtrc(bases.shape[1], np.sum(whitened**2, axis=1))
    return p_values


def _checked_inputs(estimate: np.ndarray, cov: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``estimate`` as a vector of K >= 2 finite slopes and ``cov`` as their K x K
    finite, symmetric covariance."""
    beta = np.asarray(estimate, dtype=float)
    sigma = np.asarray(cov, dtype=float)
    if beta.ndim != 1 or beta.size < 2:
        raise ArgumentError(f"estimate must be a vector of two or more slopes, not {beta.shape}")
    k = beta.size
    if sigma.shape != (k, k):
        raise ArgumentError(f"cov must be {k} x {k} to match the estimate, not {sigma.shape}")
    if not (np.all(np.isfinite(beta)) and np.all(np.isfinite(sigma))):
        raise ArgumentError("estimate and cov must be finite")
    if not np.allclose(sigma, sigma.T, rtol=1e-8, atol=1e-12):
        raise ArgumentError("cov must be symmetric")
    return beta, sigma


def wald_subset_test(estimate: np.ndarray, cov: np.ndarray) -> SubsetTest:
    """The Wald test of linear hypotheses on the slopes ``estimate`` with covariance
    ``cov``: a function from a constraint matrix C to the p-value of ``C beta = 0``.

    The statistic ``(Q b)' (Q V Q')^-1 (Q b)``, with Q an orthonormal basis of C's row
    space, is referred to a chi-square distribution with ``rank(C)`` degrees of freedom.
    It depends on C only through its row space, so any basis of the same constraints,
    or a rank-deficient stack of them, gives the same p-value.

    Parameters
    ----------
    estimate : numpy.ndarray
        The K slopes.
    cov : numpy.ndarray
        Their K x K covariance.

    Returns
    -------
    SubsetTest
        ``test(C) -> p_value`` for a C with K columns (a single row may be a vector).

    Raises
    ------
    ArgumentError
        The shapes do not match, a value is not finite, ``cov`` is not symmetric, or
        (when the returned function is called) C is zero or has the wrong width.
    AnalysisError
        (when called) the covariance of ``C beta`` is not positive definite.

    Examples
    --------
    >>> import numpy as np
    >>> test = wald_subset_test(np.array([0.1, 0.4]), np.diag([0.01, 0.01]))
    >>> round(test(np.array([[1.0, -1.0]])), 6)  # z = 0.3 / sqrt(0.02)
    0.033895
    """
    beta, sigma = _checked_inputs(estimate, cov)
    k = beta.size

    def test(constraints: np.ndarray) -> float:
        matrix = np.atleast_2d(np.asarray(constraints, dtype=float))
        if matrix.ndim != 2 or matrix.shape[1] != k:
            raise ArgumentError(
                f"a constraint matrix needs {k} columns, one per slope, not shape {matrix.shape}"
            )
        basis = matrix if _orthonormal_rows(matrix) else _row_basis(matrix)
        difference = basis @ beta
        try:
            lower = np.linalg.cholesky(basis @ sigma @ basis.T)
        except np.linalg.LinAlgError as e:
            raise AnalysisError(_NOT_POSITIVE_DEFINITE) from e
        whitened = np.linalg.solve(lower, difference)
        return float(chdtrc(basis.shape[0], float(whitened @ whitened)))

    return test


def _holm(p_values: np.ndarray) -> np.ndarray:
    """Holm's step-down adjusted p-values."""
    m = p_values.size
    order = np.argsort(p_values, kind="stable")
    stepped = np.minimum(1.0, (m - np.arange(m)) * p_values[order])
    adjusted = np.empty(m)
    adjusted[order] = np.maximum.accumulate(stepped)
    return adjusted


def deviations(
    treatments: list[str],
    estimate: np.ndarray,
    cov: np.ndarray,
    *,
    alpha: float = 0.05,
    test: SubsetTest | None = None,
    max_closed: int = MAX_CLOSED_TREATMENTS,
) -> list[Deviation]:
    """Each treatment's deviation from the mean of the others' slopes, closed-tested.

    Parameters
    ----------
    treatments : list of str
        The K >= 2 treatments, in the order of ``estimate``.
    estimate : numpy.ndarray
        One attribute's K slopes (log-odds per rating point).
    cov : numpy.ndarray
        Their K x K covariance (for the standard errors, the intervals and the default
        test).
    alpha : float, default 0.05
        Family-wise error rate within the attribute, in (0, 1).
    test : SubsetTest, optional
        The test of ``C beta = 0`` for a constraint matrix C with orthonormal rows; by
        default the Wald test of :func:`wald_subset_test` of ``estimate`` and ``cov``
        (computed for all the hypotheses of one size at once). Pass another
        (a multiple-imputation D1 test, say) to test the same hypotheses otherwise; it
        should depend on C only through its row space.
    max_closed : int, default :data:`MAX_CLOSED_TREATMENTS`
        Most treatments for which the full closed procedure (``2**K - 1`` intersection
        hypotheses) is run; above it the elementary p-values are adjusted by Holm's
        step-down procedure instead, which also controls the family-wise error rate in
        the strong sense.

    Returns
    -------
    list of Deviation
        One per treatment, in the order given.

    Raises
    ------
    ArgumentError
        The treatments are fewer than two, repeated, or not one per slope; the shapes
        do not match; a value is not finite; alpha is not in (0, 1).
    AnalysisError
        The default test meets a covariance that is not positive definite.

    Examples
    --------
    >>> import numpy as np
    >>> cov = np.diag([0.01, 0.01, 0.01])
    >>> found = deviations(["a", "b", "c"], np.array([0.2, 0.2, 0.8]), cov)
    >>> [(d.treatment, round(d.deviation, 2), d.deviates) for d in found]
    [('a', -0.3, True), ('b', -0.3, True), ('c', 0.6, True)]
    >>> found = deviations(["a", "b", "c"], np.array([0.2, 0.3, 0.25]), cov)
    >>> [d.deviates for d in found]
    [False, False, False]
    """
    beta, sigma = _checked_inputs(estimate, cov)
    k = beta.size
    names = list(treatments)
    if len(names) != k:
        raise ArgumentError(f"{len(names)} treatment name(s) for {k} slopes")
    if len(set(names)) != k:
        raise ArgumentError(f"the treatment names must be distinct: {names}")
    if not 0 < alpha < 1:
        raise ArgumentError(f"alpha must be between 0 and 1, not {alpha}")
    contrasts = deviation_contrasts(k)
    value = contrasts @ beta
    se = np.sqrt(np.maximum(np.einsum("ij,jk,ik->i", contrasts, sigma, contrasts), 0.0))
    units = contrasts / np.linalg.norm(contrasts, axis=1, keepdims=True)

    def p_values(bases: np.ndarray) -> np.ndarray:
        """The chosen test's p-values of a stack of constraint bases (n, r, K)."""
        if test is None:  # the Wald test, all at once
            return _batched_wald(beta, sigma, bases)
        return np.array([test(basis) for basis in bases], dtype=float)

    p_single = p_values(units[:, None, :])
    if k > max_closed:
        p_closed = _holm(p_single)
    else:
        # every subset of one treatment is that treatment's own test
        p_closed = p_single.copy()
        for group in _intersections(k):
            p_group = p_values(group.bases)
            size = group.members.shape[1]
            np.maximum.at(p_closed, group.members.ravel(), np.repeat(p_group, size))

    return [
        Deviation(
            treatment=names[t],
            deviation=float(value[t]),
            se=float(se[t]),
            ci_low=float(value[t] - _Z_CI * se[t]),
            ci_high=float(value[t] + _Z_CI * se[t]),
            p_value=float(p_single[t]),
            p_closed=float(p_closed[t]),
            deviates=bool(p_closed[t] < alpha),
        )
        for t in range(k)
    ]
