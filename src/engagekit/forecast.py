"""Aggregate forecasts: how many patients will not come back, per group, with an interval.

Given each encounter's probability of the bad outcome (``p_bad = 1 - p``, e.g. not
attending the next session), the number of bad outcomes in a group is a sum of
independent Bernoulli variables with different probabilities: it follows a
Poisson-binomial distribution. Its mean is ``sum(p_bad)``, its variance
``sum(p_bad * (1 - p_bad))``, and its interval comes from its quantiles:

- up to :data:`EXACT_MAX_ENCOUNTERS` encounters, from the exact distribution, computed
  by multiplying the ``n`` polynomials ``(1 - p_i) + p_i z`` in a balanced tree (direct
  convolution for the short ones, FFT for the long ones: ``O(n log^2 n)``);
- above that, from the refined normal approximation (Volkova 1996): a normal with a
  continuity correction and a skewness term,
  ``F(k) ~ G((k + 0.5 - mu) / sigma)``, ``G(x) = Phi(x) + gamma (1 - x^2) phi(x) / 6``,
  ``gamma = sum(p (1 - p) (1 - 2p)) / sigma^3``. At the switch its quantiles agree with
  the exact ones to within one patient (the tests check it).

An interval at ``level`` runs from the ``(1 - level) / 2`` quantile to the
``(1 + level) / 2`` quantile, where the ``q`` quantile is the smallest count ``k`` with
``P(count <= k) >= q``. Because counts are whole numbers, the interval holds the count
with probability at least ``level``. It reflects only the chance in who turns up, taking
the probabilities as right: a miscalibrated model makes it too narrow.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from ._arrays import as_float64
from ._checks import check_outcomes, check_probabilities

__all__ = [
    "EXACT_MAX_ENCOUNTERS",
    "forecast_dropout",
    "pending_encounters",
    "poisson_binomial_pmf",
    "poisson_binomial_quantiles",
]

#: Groups of at most this many encounters get exact Poisson-binomial quantiles; larger
#: groups get the refined normal approximation (a 10,000-encounter group takes about
#: 10 ms exactly, and there the approximation is off by at most one count).
EXACT_MAX_ENCOUNTERS = 10_000

# Below this length, polynomials are multiplied directly; above it, by FFT.
_DIRECT_MAX_LENGTH = 64
_METHODS = ("auto", "exact", "normal")


def _checked_probabilities(p: Any, name: str = "p") -> np.ndarray:
    try:
        array = as_float64(p)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{name} must be probabilities, one per encounter: {e}") from e
    if array.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, found shape {array.shape}")
    check_probabilities(array, name, hint="score every encounter before forecasting")
    return array


def _multiply_pairs(polys: np.ndarray) -> np.ndarray:
    """Row ``i`` of the result is the product of the polynomials in rows ``2i`` and
    ``2i + 1`` (coefficients in increasing powers)."""
    if polys.shape[0] % 2:
        # pad with the polynomial 1, which leaves the product unchanged
        one = np.zeros((1, polys.shape[1]))
        one[0, 0] = 1.0
        polys = np.vstack([polys, one])
    left, right = polys[0::2], polys[1::2]
    length = polys.shape[1]
    size = 2 * length - 1
    if length <= _DIRECT_MAX_LENGTH:
        out = np.zeros((left.shape[0], size))
        for i in range(length):
            out[:, i : i + length] += left[:, i : i + 1] * right
        return out
    n_fft = 1 << (size - 1).bit_length()
    product = np.fft.rfft(left, n_fft, axis=1) * np.fft.rfft(right, n_fft, axis=1)
    return np.fft.irfft(product, n_fft, axis=1)[:, :size]


def poisson_binomial_pmf(p: Any) -> np.ndarray:
    """Exact distribution of the number of successes among independent Bernoulli trials.

    Parameters
    ----------
    p : array-like of float
        Each trial's probability of success, in [0, 1].

    Returns
    -------
    numpy.ndarray
        ``len(p) + 1`` probabilities: entry ``k`` is ``P(count = k)``. They are
        non-negative and sum to 1; rounding errors are below about ``1e-15``.

    Raises
    ------
    ValueError
        A probability is missing or outside [0, 1].

    Examples
    --------
    >>> poisson_binomial_pmf([0.5, 0.5]).round(3).tolist()
    [0.25, 0.5, 0.25]
    >>> poisson_binomial_pmf([0.2, 1.5])
    Traceback (most recent call last):
    ...
    ValueError: p must be probabilities in [0, 1]; 1 value(s) are not (e.g. 1.5); score \
every encounter before forecasting
    """
    p = _checked_probabilities(p)
    n = len(p)
    if n == 0:
        return np.ones(1)
    polys = np.column_stack([1.0 - p, p])
    while polys.shape[0] > 1:
        polys = _multiply_pairs(polys)
    # FFT rounding can leave tiny negative values where the probability is ~0
    pmf = np.clip(polys[0, : n + 1], 0.0, None)
    return pmf / pmf.sum()


def _exact_quantiles(p: np.ndarray, probs: np.ndarray) -> np.ndarray:
    cdf = np.cumsum(poisson_binomial_pmf(p))
    return np.minimum(np.searchsorted(cdf, probs, side="left"), len(p))


def _refined_normal_cdf(p: np.ndarray, k: np.ndarray) -> np.ndarray:
    """``P(count <= k)`` by the refined normal approximation (see the module docstring);
    needs a positive variance."""
    mean = p.sum()
    sd = np.sqrt(np.sum(p * (1.0 - p)))
    skewness = np.sum(p * (1.0 - p) * (1.0 - 2.0 * p)) / sd**3
    x = (np.asarray(k, dtype="float64") + 0.5 - mean) / sd
    cdf = stats.norm.cdf(x) + skewness * (1.0 - x**2) * stats.norm.pdf(x) / 6.0
    return np.clip(cdf, 0.0, 1.0)


def _normal_quantiles(p: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """Quantiles of the refined normal approximation, found on the whole numbers within
    10 standard deviations of the mean."""
    mean = p.sum()
    variance = np.sum(p * (1.0 - p))
    if variance < 1e-12:
        return np.full(len(probs), round(mean), dtype=np.int64)
    sd = np.sqrt(variance)
    low = max(0, int(np.floor(mean - 10.0 * sd)) - 1)
    high = min(len(p), int(np.ceil(mean + 10.0 * sd)) + 1)
    k = np.arange(low, high + 1)
    # the skewness term can bend the curve slightly; a CDF never decreases
    cdf = np.maximum.accumulate(_refined_normal_cdf(p, k))
    if high == len(p):
        cdf[-1] = 1.0
    return np.minimum(k[0] + np.searchsorted(cdf, probs, side="left"), high)


def poisson_binomial_quantiles(p: Any, probs: Any, method: str = "auto") -> np.ndarray:
    """Quantiles of the number of successes among independent Bernoulli trials.

    The ``q`` quantile is the smallest count ``k`` with ``P(count <= k) >= q``.

    Parameters
    ----------
    p : array-like of float
        Each trial's probability of success, in [0, 1].
    probs : array-like of float
        Cumulative probabilities in (0, 1).
    method : {"auto", "exact", "normal"}
        ``exact``: from :func:`poisson_binomial_pmf`; ``normal``: the refined normal
        approximation; ``auto``: exact up to :data:`EXACT_MAX_ENCOUNTERS` trials.

    Returns
    -------
    numpy.ndarray of int
        One count per entry of ``probs``.

    Examples
    --------
    >>> poisson_binomial_quantiles([0.1] * 100, [0.05, 0.95]).tolist()
    [5, 15]
    """
    p = _checked_probabilities(p)
    probs = np.atleast_1d(np.asarray(probs, dtype="float64"))
    if not np.all((probs > 0.0) & (probs < 1.0)):
        raise ValueError(f"probs must be in (0, 1), found {probs.tolist()}")
    if method not in _METHODS:
        raise ValueError(f"unknown method {method!r}; expected one of {list(_METHODS)}")
    if method == "exact" or (method == "auto" and len(p) <= EXACT_MAX_ENCOUNTERS):
        return _exact_quantiles(p, probs).astype(np.int64)
    return _normal_quantiles(p, probs).astype(np.int64)


def _group_labels(groups: Any, n: int) -> pd.Series:
    labels = groups if isinstance(groups, pd.Series) else pd.Series(np.asarray(groups))
    if labels.ndim != 1 or len(labels) != n:
        raise ValueError(
            f"groups has {len(labels)} values but p_bad has {n}; give one group per encounter"
        )
    labels = labels.reset_index(drop=True)
    if labels.isna().any():
        # as text, so that the "(missing)" group sorts with the others whatever their type
        labels = labels.astype("string").fillna("(missing)")
    return labels


def forecast_dropout(
    p_bad: Any,
    groups: Any,
    level: float = 0.9,
    *,
    observed_bad: Any = None,
    method: str = "auto",
) -> pd.DataFrame:
    """Expected number of bad outcomes per group, with a Poisson-binomial interval.

    For a planning forecast of how many patients will not come to their next session,
    pass one row per patient: the encounter whose next session is ahead, with
    ``p_bad = 1 - p`` of ``attended_next``.

    Parameters
    ----------
    p_bad : array-like of float
        Probability of the bad outcome for each encounter, in [0, 1].
    groups : array-like
        Group of each encounter (a treatment, a practitioner, any column); missing
        values form the group ``"(missing)"`` (and the labels become text). A Series'
        name names the index.
    level : float, default 0.9
        Coverage of the interval, in (0, 1).
    observed_bad : array-like of {0, 1}, optional
        1 where the bad outcome happened (e.g. ``1 - attended_next``), missing where not
        known; adds the columns ``observed`` and ``n_observed``.
    method : {"auto", "exact", "normal"}
        How to compute the interval (see :func:`poisson_binomial_quantiles`).

    Returns
    -------
    pandas.DataFrame
        One row per group (sorted), columns ``n_encounters``, ``expected`` (the sum of
        ``p_bad``), ``variance`` (the sum of ``p_bad (1 - p_bad)``), ``interval_low``,
        ``interval_high`` (the ``(1 - level) / 2`` and ``(1 + level) / 2`` quantiles of
        the count), ``method`` (``exact`` or ``normal``) and, with ``observed_bad``,
        ``observed`` (bad outcomes recorded) and ``n_observed`` (outcomes recorded).
        ``attrs["level"]`` holds ``level``.

    Raises
    ------
    ValueError
        A probability outside [0, 1] or missing, lengths that differ, a level outside
        (0, 1), observed outcomes other than 0, 1 or missing.

    Examples
    --------
    >>> forecast = forecast_dropout([0.1] * 100 + [0.5] * 10, ["a"] * 100 + ["b"] * 10)
    >>> forecast.reset_index()[["group", "expected", "interval_low", "interval_high"]]
      group  expected  interval_low  interval_high
    0     a      10.0             5             15
    1     b       5.0             2              8
    >>> forecast_dropout([0.1, 0.2], ["a"], level=0.9)
    Traceback (most recent call last):
    ...
    ValueError: groups has 1 values but p_bad has 2; give one group per encounter
    """
    p = _checked_probabilities(p_bad, "p_bad")
    if not 0.0 < level < 1.0:
        raise ValueError(f"level is the interval's coverage in (0, 1) (e.g. 0.9), found {level!r}")
    if method not in _METHODS:
        raise ValueError(f"unknown method {method!r}; expected one of {list(_METHODS)}")
    labels = _group_labels(groups, len(p))
    outcomes = None if observed_bad is None else _checked_observed(observed_bad, len(p))
    probs = np.array([(1.0 - level) / 2.0, (1.0 + level) / 2.0])

    rows = []
    for label, members in labels.groupby(labels, sort=True):
        positions = members.index.to_numpy()
        p_group = p[positions]
        exact = method == "exact" or (method == "auto" and len(p_group) <= EXACT_MAX_ENCOUNTERS)
        low, high = poisson_binomial_quantiles(p_group, probs, "exact" if exact else "normal")
        row = {
            "group": label,
            "n_encounters": len(p_group),
            "expected": float(p_group.sum()),
            "variance": float(np.sum(p_group * (1.0 - p_group))),
            "interval_low": int(low),
            "interval_high": int(high),
            "method": "exact" if exact else "normal",
        }
        if outcomes is not None:
            recorded = outcomes[positions][~np.isnan(outcomes[positions])]
            row["observed"] = int(recorded.sum())
            row["n_observed"] = len(recorded)
        rows.append(row)
    columns = ["group", "n_encounters", "expected", "variance", "interval_low"]
    columns += ["interval_high", "method"]
    columns += [] if outcomes is None else ["observed", "n_observed"]
    table = pd.DataFrame(rows, columns=columns).set_index("group")
    table.index.name = labels.name if labels.name is not None else "group"
    table.attrs["level"] = level
    return table


def pending_encounters(encounters: pd.DataFrame, target: str) -> np.ndarray:
    """Each patient's latest encounter whose ``target`` is still empty: a session ahead.

    This is the row a planning forecast counts once per patient. An empty outcome means
    either that no further encounter was due (the course ended as planned) or that it
    is not known yet (the data's cut-off). Where the table has ``next_session_due``, a
    latest encounter with ``next_session_due == 0`` (the course ended) is not pending;
    an empty ``next_session_due`` counts as due. Without that column, every latest
    encounter with an empty outcome counts, including those of patients whose course
    has ended.

    Parameters
    ----------
    encounters : pandas.DataFrame
        Typed encounters with ``patient_id``, ``session_number`` and ``target``, and
        optionally ``next_session_due``.
    target : str
        The outcome column (``attended_next`` or ``adherent``).

    Returns
    -------
    numpy.ndarray of bool
        One per row of ``encounters``, in its order.

    Examples
    --------
    >>> import pandas as pd
    >>> table = pd.DataFrame({"patient_id": ["a", "a", "b", "b", "c"],
    ...                       "session_number": [2, 1, 1, 2, 1],
    ...                       "attended_next": [None, 1, 1, 0, None]})
    >>> pending_encounters(table, "attended_next").tolist()
    [True, False, False, False, True]
    >>> table["next_session_due"] = [1, 1, 1, 1, 0]  # c's course ended at session 1
    >>> pending_encounters(table, "attended_next").tolist()
    [True, False, False, False, False]
    """
    pending = encounters[target].isna().to_numpy()
    order = encounters.assign(_row=np.arange(len(encounters))).sort_values(
        ["patient_id", "session_number"]
    )
    latest = order.groupby("patient_id", sort=False)["_row"].last().to_numpy()
    rows = np.zeros(len(encounters), dtype=bool)
    rows[latest] = True
    if "next_session_due" in encounters.columns:
        due = encounters["next_session_due"].to_numpy(dtype="float64", na_value=np.nan)
        pending = pending & (due != 0)
    return rows & pending


def _checked_observed(observed_bad: Any, n: int) -> np.ndarray:
    values = as_float64(observed_bad)
    if values.shape != (n,):
        raise ValueError(
            f"observed_bad has shape {values.shape}; give one outcome per encounter ({n})"
        )
    check_outcomes(values, "observed_bad", what="1 (bad outcome), 0 or missing", allow_missing=True)
    return values
