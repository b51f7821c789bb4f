"""Which attributes matter most to the model, overall and within each treatment.

An attribute's importance is its mean absolute SHAP value (summed over its features,
see :attr:`Explanation.grouped`) on the log-odds scale. Whether the attributes matter
in the same order in every treatment is the machine-learning side of the
cross-treatment question: :func:`rank_agreement` gives Kendall's tau between the
importance rankings of each pair of treatments, with a patient-cluster bootstrap
interval.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from itertools import combinations
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
from scipy import sparse, stats

from ..errors import ContractError
from ._shap_values import Explanation

__all__ = ["attribute_importance", "rank_agreement"]

_MISSING_LEVEL = "(missing)"
# replicates drawn at a time are bounded to about this many (replicate, patient) weights
_BATCH_VALUES = 4_000_000


def attribute_importance(
    explanation: Explanation,
    encounters: pd.DataFrame,
    by: str = "treatment",
    attributes: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Mean absolute SHAP value of each attribute, overall and within each level of ``by``.

    Parameters
    ----------
    explanation : Explanation
        From :func:`explain_predictions` on ``encounters``.
    encounters : pandas.DataFrame
        The encounters that were explained (same index, same order).
    by : str, default "treatment"
        The column whose levels get their own importances; a missing value is the level
        ``"(missing)"``.
    attributes : sequence of str, optional
        Columns of ``explanation.grouped``; the attributes by default.

    Returns
    -------
    dict
        JSON-ready: ``measure``, ``by``, ``attributes``, ``overall``
        (``{"n_encounters": n, "importance": {attribute: mean |SHAP|}}``) and ``levels``
        (the same for each level of ``by``, levels sorted).

    Raises
    ------
    ValueError
        ``encounters`` are not the rows that were explained, or an attribute is not a
        column of ``explanation.grouped``.
    ContractError
        ``encounters`` has no column ``by``.

    Examples
    --------
    >>> from engagekit import simulate_encounters
    >>> from engagekit.explain import explain_predictions
    >>> from engagekit.models import fit_model
    >>> encounters = simulate_encounters(300, seed=1).encounters
    >>> model = fit_model(encounters, "adherent", "logistic")
    >>> importance = attribute_importance(explain_predictions(model, encounters), encounters)
    >>> list(importance["levels"])[:2]
    ['antidepressants', 'cbt_face_to_face']
    >>> importance["overall"]["n_encounters"] == len(encounters)
    True
    >>> sorted(importance["overall"]["importance"])[:2]
    ['active_listening', 'approachability']
    """
    attributes = _attributes(explanation, attributes)
    magnitude = np.abs(explanation.grouped[attributes].to_numpy())
    codes, levels = _level_codes(explanation, encounters, by)
    counts = np.bincount(codes, minlength=len(levels))
    sums = np.stack(
        [
            np.bincount(codes, weights=magnitude[:, a], minlength=len(levels))
            for a in range(len(attributes))
        ],
        axis=1,
    )

    def entry(n: int, total: np.ndarray) -> dict[str, Any]:
        means = total / n if n else np.full(len(attributes), np.nan)
        return {
            "n_encounters": int(n),
            "importance": {a: float(m) for a, m in zip(attributes, means, strict=True)},
        }

    return {
        "measure": "mean |SHAP| on the log-odds scale",
        "by": by,
        "attributes": attributes,
        "overall": entry(len(magnitude), magnitude.sum(axis=0)),
        "levels": {level: entry(counts[k], sums[k]) for k, level in enumerate(levels)},
    }


def rank_agreement(
    explanation: Explanation,
    encounters: pd.DataFrame,
    attributes: Sequence[str] | None = None,
    n_boot: int = 500,
    seed: int = 0,
    *,
    by: str = "treatment",
    ci: float = 0.95,
) -> list[dict[str, Any]]:
    """Kendall's tau between the attribute-importance rankings of every pair of treatments.

    For each pair of levels of ``by``, the attributes' mean absolute SHAP values within
    each level are compared by Kendall's tau-b (as :func:`scipy.stats.kendalltau`
    computes it; here vectorised over the replicates): 1 means the attributes matter in
    the same order in both, -1 in the opposite order. The interval is the BCa interval
    of the patient-cluster bootstrap: patients are resampled with replacement (all of a
    patient's encounters together) and the importances and tau recomputed; the
    percentiles are corrected for the bootstrap's bias and skew (the acceleration from
    the patient jackknife). With six attributes tau takes few values (16 without ties: a
    step of 2/15), so the
    whole bootstrap distribution is given too.
    The model is not refitted in the replicates, so the interval says how much the
    ranking depends on which patients were explained, not how much the fitted model
    itself would change with other training patients.

    Parameters
    ----------
    explanation : Explanation
        From :func:`explain_predictions` on ``encounters``.
    encounters : pandas.DataFrame
        The encounters that were explained (same index, same order), with
        ``patient_id`` and ``by``.
    attributes : sequence of str, optional
        At least two columns of ``explanation.grouped``; the attributes by default.
    n_boot : int, default 500
        Bootstrap replicates.
    seed : int, default 0
        Seed of the resampling; the same seed gives the same intervals.
    by : str, default "treatment"
    ci : float, default 0.95
        Coverage of the intervals.

    Returns
    -------
    list of dict
        JSON-ready, one per pair of levels (levels sorted): ``by``, ``level_a``,
        ``level_b``, ``tau``, ``ci_low``, ``ci_high``, ``ci``, ``interval`` ("BCa"),
        ``n_boot`` (replicates in which tau was defined: both levels drawn and neither
        ranking all ties), ``distribution`` (each value tau took in the replicates with
        its share) and ``attributes``.

    Raises
    ------
    ValueError
        Fewer than two attributes, ``encounters`` are not the rows that were
        explained, ``n_boot < 1`` or ``ci`` outside (0, 1).
    ContractError
        ``encounters`` lacks ``patient_id`` or ``by``, or a ``patient_id`` is missing.

    Examples
    --------
    >>> from engagekit import simulate_encounters
    >>> from engagekit.explain import explain_predictions
    >>> from engagekit.models import fit_model
    >>> encounters = simulate_encounters(300, seed=1).encounters
    >>> model = fit_model(encounters, "adherent", "logistic")
    >>> explanation = explain_predictions(model, encounters)
    >>> pairs = rank_agreement(explanation, encounters, n_boot=50)
    >>> len(pairs), pairs[0]["level_a"], pairs[0]["level_b"]
    (15, 'antidepressants', 'cbt_face_to_face')
    >>> -1 <= pairs[0]["tau"] <= 1
    True
    >>> rank_agreement(explanation, encounters, ["support"])
    Traceback (most recent call last):
    ...
    ValueError: rank agreement needs at least two attributes to rank; got ['support']
    """
    attributes = _attributes(explanation, attributes)
    if len(attributes) < 2:
        raise ValueError(f"rank agreement needs at least two attributes to rank; got {attributes}")
    if int(n_boot) != n_boot or n_boot < 1:
        raise ValueError(f"'n_boot' must be a positive integer; got {n_boot!r}")
    if not 0 < ci < 1:
        raise ValueError(f"'ci' must be between 0 and 1; got {ci!r}")
    level, levels = _level_codes(explanation, encounters, by)
    patient = _patient_codes(encounters)
    cells = _patient_level_cells(patient, level, len(levels), explanation.grouped[attributes])
    estimate = _level_means(cells, np.ones((1, cells.n_patients)))[0]
    replicates = _bootstrap_level_means(cells, n_boot, seed)
    left_out = _jackknife_level_means(cells)
    out = []
    for a, b in combinations(range(len(levels)), 2):
        tau = float(_kendall_tau_b(estimate[a], estimate[b]))
        taus = _kendall_tau_b(replicates[:, a], replicates[:, b])
        taus = taus[~np.isnan(taus)]
        jackknife = _kendall_tau_b(left_out[:, a], left_out[:, b])
        low, high = _bca_interval(taus, tau, jackknife[~np.isnan(jackknife)], ci)
        values, counts = np.unique(np.round(taus, 12), return_counts=True)
        out.append(
            {
                "by": by,
                "level_a": levels[a],
                "level_b": levels[b],
                "tau": tau,
                "ci_low": low,
                "ci_high": high,
                "ci": ci,
                "interval": "BCa",
                "n_boot": int(taus.size),
                # tau over few attributes takes few values: the whole bootstrap
                # distribution, as [value, share of the replicates]
                "distribution": [
                    [float(v), float(c / taus.size)] for v, c in zip(values, counts, strict=True)
                ],
                "attributes": list(attributes),
            }
        )
    return out


def _jackknife_level_means(cells: _Cells) -> np.ndarray:
    """(patients × levels × attributes) level means with each patient left out in turn."""
    n_cells = len(cells.patient)
    owner = sparse.csr_array(
        (np.ones(n_cells), (cells.patient, np.arange(n_cells))),
        shape=(cells.n_patients, n_cells),
    )
    by_patient = (owner @ cells.sums).toarray()
    total = np.asarray(cells.sums.sum(axis=0)).ravel()
    rest = (total[None, :] - by_patient).reshape(cells.n_patients, cells.n_levels, -1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return rest[..., :-1] / rest[..., -1:]


def _bca_interval(
    replicates: np.ndarray, estimate: float, jackknife: np.ndarray, ci: float
) -> tuple[float, float]:
    """The bias-corrected and accelerated bootstrap interval (Efron 1987; DiCiccio and
    Efron 1996): the percentiles of ``replicates`` moved by the bias correction ``z0``
    (from the share of replicates below the estimate, ties counted half, as tau takes
    few values) and the acceleration ``a`` (from the patient jackknife)."""
    if not replicates.size or not np.isfinite(estimate):
        return math.nan, math.nan
    below = (np.mean(replicates < estimate) + 0.5 * np.mean(replicates == estimate)).item()
    edge = 1 / (2 * replicates.size)
    z0 = float(stats.norm.ppf(min(max(below, edge), 1 - edge)))
    spread = jackknife.mean() - jackknife if jackknife.size else np.zeros(1)
    squares = float(np.sum(spread**2))
    a = float(np.sum(spread**3)) / (6 * squares**1.5) if squares > 0 else 0.0
    z = stats.norm.ppf([(1 - ci) / 2, (1 + ci) / 2])
    levels = stats.norm.cdf(z0 + (z0 + z) / (1 - a * (z0 + z)))
    low, high = np.quantile(replicates, levels)
    return float(low), float(high)


def _attributes(explanation: Explanation, attributes: Sequence[str] | None) -> list[str]:
    chosen = list(explanation.attributes if attributes is None else attributes)
    unknown = [a for a in chosen if a not in explanation.grouped.columns]
    if unknown:
        raise ValueError(
            f"{unknown} are not explained groups; choose among {list(explanation.grouped.columns)}"
        )
    return chosen


def _level_codes(
    explanation: Explanation, encounters: pd.DataFrame, by: str
) -> tuple[np.ndarray, list[str]]:
    """Each row's level of ``by`` as a code into the sorted level names."""
    if not encounters.index.equals(explanation.values.index):
        raise ValueError(
            f"the encounters ({len(encounters)} rows) are not the rows that were explained "
            f"({len(explanation.values)} rows): pass the same table, in the same order, "
            "to explain_predictions and here"
        )
    if by not in encounters.columns:
        raise ContractError(f"the encounter table has no {by!r} column to group the importances by")
    labels = encounters[by].astype("string").fillna(_MISSING_LEVEL).to_numpy(dtype=object)
    levels, codes = np.unique(labels, return_inverse=True)
    return codes.ravel(), [str(v) for v in levels]


def _patient_codes(encounters: pd.DataFrame) -> np.ndarray:
    if "patient_id" not in encounters.columns:
        raise ContractError("the encounter table has no 'patient_id' column to resample by")
    codes, _ = pd.factorize(encounters["patient_id"], use_na_sentinel=True)
    if (codes < 0).any():
        raise ContractError(
            f"{int((codes < 0).sum())} encounter(s) have no 'patient_id'; the bootstrap "
            "resamples patients, so every encounter needs one"
        )
    return codes


class _Cells(NamedTuple):
    """Encounters summed per (patient, level) cell: a bootstrap replicate only reweights
    the cells, by how many times it drew each cell's patient.

    ``patient`` is each cell's patient code; ``sums`` (cells × levels·(attributes + 1),
    sparse) holds a cell's absolute SHAP sums per attribute and its number of
    encounters, in its own level's block of columns.
    """

    patient: np.ndarray
    sums: sparse.csr_array
    n_patients: int
    n_levels: int


def _patient_level_cells(
    patient: np.ndarray, level: np.ndarray, n_levels: int, shap: pd.DataFrame
) -> _Cells:
    cell, key = pd.factorize(patient.astype(np.int64) * n_levels + level)
    key = np.asarray(key)
    magnitude = np.column_stack([np.abs(shap.to_numpy()), np.ones(len(shap))])
    width = magnitude.shape[1]
    per_cell = np.column_stack(
        [np.bincount(cell, weights=column, minlength=len(key)) for column in magnitude.T]
    )
    columns = (key % n_levels)[:, None] * width + np.arange(width)
    sums = sparse.csr_array(
        (per_cell.ravel(), (np.repeat(np.arange(len(key)), width), columns.ravel())),
        shape=(len(key), n_levels * width),
    )
    return _Cells(key // n_levels, sums, int(patient.max(initial=-1)) + 1, n_levels)


def _level_means(cells: _Cells, patient_weights: np.ndarray) -> np.ndarray:
    """(replicates × levels × attributes) mean absolute SHAP values, each patient counted
    as many times as its weight in each row of ``patient_weights`` (replicates ×
    patients); NaN for a level without encounters."""
    weights = patient_weights[:, cells.patient]
    sums = (cells.sums.T @ weights.T).T.reshape(len(patient_weights), cells.n_levels, -1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return sums[..., :-1] / sums[..., -1:]


def _bootstrap_level_means(cells: _Cells, n_boot: int, seed: int) -> np.ndarray:
    """Level means of ``n_boot`` replicates, each drawing as many patients as there are,
    with replacement."""
    rng = np.random.default_rng(seed)
    n = cells.n_patients
    batch = max(1, _BATCH_VALUES // max(n, len(cells.patient)))
    means = []
    for start in range(0, n_boot, batch):
        size = min(batch, n_boot - start)
        drawn = rng.integers(0, n, size=(size, n)) + n * np.arange(size)[:, None]
        times_drawn = np.bincount(drawn.ravel(), minlength=size * n).reshape(size, n)
        means.append(_level_means(cells, times_drawn.astype(float)))
    return np.concatenate(means)


def _kendall_tau_b(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Kendall's tau-b of each row of ``x`` with the same row of ``y`` (as
    :func:`scipy.stats.kendalltau`, vectorised); NaN where a row has a NaN or all ties."""
    i, j = np.triu_indices(x.shape[-1], k=1)
    dx, dy = np.sign(x[..., i] - x[..., j]), np.sign(y[..., i] - y[..., j])
    # pairs tied in x (dx = 0) leave the first count, tied in y the second
    denominator = np.sqrt(np.abs(dx).sum(axis=-1) * np.abs(dy).sum(axis=-1))
    with np.errstate(invalid="ignore", divide="ignore"):
        tau = (dx * dy).sum(axis=-1) / denominator
    return np.where(denominator > 0, tau, np.nan)
