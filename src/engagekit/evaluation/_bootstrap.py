"""Confidence intervals that respect patients: the cluster (patient) bootstrap.

A patient's encounters are not independent: the same person rates the same practitioner
session after session and tends to keep (or stop) coming. Resampling encounters as if
they were independent therefore gives intervals that are too narrow. The cluster
bootstrap resamples *patients* with replacement and keeps all of a drawn patient's
encounters together, so the intervals carry the within-patient correlation.
"""

from __future__ import annotations

import inspect
import math
import os
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pandas as pd
from joblib import delayed

from ..cluster import on_cluster, run_replicates

__all__ = ["cluster_bootstrap"]

#: Bootstrap replicates per task on a Dask cluster.
_CLUSTER_CHUNK = 25

Statistic = Callable[..., Mapping[str, float]]
Replicate = Callable[[np.ndarray], Mapping[str, float]]


def _group_codes(groups: np.ndarray) -> tuple[np.ndarray, int]:
    """Codes 0, 1, ... of the groups of each row, and how many groups there are."""
    codes, uniques = pd.factorize(groups, use_na_sentinel=True)
    if np.any(codes < 0):
        raise ValueError(
            f"'groups' has {int(np.sum(codes < 0))} missing ids; every row needs its patient."
        )
    return codes, len(uniques)


def _takes_sample_weight(statistic: Statistic) -> bool:
    try:
        parameters = inspect.signature(statistic).parameters
    except (TypeError, ValueError):  # builtins and some C callables have no signature
        return False
    return "sample_weight" in parameters


def cluster_bootstrap(
    y: Any,
    p: Any,
    groups: Any,
    statistic: Statistic,
    n_boot: int = 1000,
    seed: int = 0,
    ci: float = 0.95,
    *,
    n_jobs: int = 1,
) -> dict[str, float]:
    """Percentile confidence intervals from resampling groups (patients) with replacement.

    Each replicate draws as many groups as there are, with replacement; a group drawn
    ``k`` times contributes all its rows ``k`` times. ``statistic`` is computed on every
    replicate, and the interval of each value it returns is the pair of percentiles
    ``(1 - ci) / 2`` and ``(1 + ci) / 2`` of the replicates.

    Parameters
    ----------
    y, p : array-like
        Outcomes and predictions, one per row.
    groups : array-like
        Group (patient) of each row; any hashable ids, no missing values.
    statistic : callable
        ``statistic(y, p) -> dict[str, float]``. If it accepts a ``sample_weight``
        keyword, it is instead called as ``statistic(y, p, sample_weight=w)`` on the
        original rows, with ``w`` the number of times each row's group was drawn: the
        same replicate without copying rows, and much faster. It must then treat an
        integer weight ``k`` exactly as ``k`` copies of the row (scikit-learn's metrics
        and :func:`~engagekit.evaluation.point_metrics` do). Either way it must not
        depend on the order of the rows, which may be rearranged; a value it cannot
        define should be NaN.
    n_boot : int
        Number of replicates; 0 gives NaN intervals.
    seed : int
        Seed of the random draws; the same seed gives the same intervals whichever way
        ``statistic`` is called.
    ci : float
        Coverage of the intervals, between 0 and 1.
    n_jobs : int
        Threads sharing the replicates (-1: one per core). ``statistic`` must then be
        safe to call from several threads at once, as pure functions of their
        arguments are. The result does not depend on ``n_jobs``.

    Returns
    -------
    dict of str to float
        For each key ``name`` of ``statistic``'s result: ``name`` (on the original
        data), ``name_ci_low``, ``name_ci_high``, and ``name_n_boot``, the number of
        replicates in which it was defined (not NaN). Replicates in which a value is
        NaN (e.g. AUROC when a replicate holds one outcome class) are left out of that
        value's interval; if none is left, the interval is NaN.

    Raises
    ------
    ValueError
        If the lengths differ, a group id is missing, ``n_boot < 0``, ``ci`` is not in
        (0, 1) or ``n_jobs`` is not a positive integer or -1.

    Examples
    --------
    >>> import numpy as np
    >>> from engagekit.evaluation import cluster_bootstrap
    >>> def mean_outcome(y, p, sample_weight=None):
    ...     return {"rate": float(np.average(y, weights=sample_weight))}
    >>> y = [1, 1, 0, 0, 1, 0, 1, 1]
    >>> patients = ["a", "a", "b", "b", "c", "c", "d", "d"]
    >>> out = cluster_bootstrap(y, np.zeros(8), patients, mean_outcome, n_boot=200)
    >>> out["rate"], out["rate_n_boot"]
    (0.625, 200)
    >>> bool(out["rate_ci_low"] < 0.625 < out["rate_ci_high"])
    True
    >>> cluster_bootstrap(y, np.zeros(8), patients[:7], mean_outcome)
    Traceback (most recent call last):
    ...
    ValueError: 'groups' must have one value per row; got 7 group ids for 8 rows.
    """
    y_arr, p_arr = np.asarray(y), np.asarray(p)
    groups_arr = np.asarray(groups).ravel()
    if y_arr.shape[0] != p_arr.shape[0]:
        raise ValueError(
            f"'y' and 'p' must have one value per row; got {y_arr.shape[0]} and {p_arr.shape[0]}."
        )
    if groups_arr.size != y_arr.shape[0]:
        raise ValueError(
            f"'groups' must have one value per row; got {groups_arr.size} group ids for "
            f"{y_arr.shape[0]} rows."
        )
    _check_settings(n_boot, ci, n_jobs)
    codes, n_groups = _group_codes(groups_arr)

    estimate = dict(statistic(y_arr, p_arr))
    if _takes_sample_weight(statistic):
        # rows sorted by p once: statistics that rank (point_metrics sorts by p) then
        # sort data already in order in every replicate, which is quick
        order = np.argsort(p_arr, kind="stable")
        y_sorted, p_sorted, codes_sorted = y_arr[order], p_arr[order], codes[order]

        def make_replicate() -> Replicate:
            def replicate(drawn: np.ndarray) -> Mapping[str, float]:
                weights = np.bincount(drawn, minlength=n_groups)[codes_sorted].astype(float)
                return statistic(y_sorted, p_sorted, sample_weight=weights)

            return replicate
    else:
        # patient g owns rows rows_by_group[start[g]:start[g] + size[g]]
        rows_by_group = np.argsort(codes, kind="stable")
        size = np.bincount(codes, minlength=n_groups)
        start = np.cumsum(size) - size

        def make_replicate() -> Replicate:
            def replicate(drawn: np.ndarray) -> Mapping[str, float]:
                sizes = size[drawn]
                # the rows of each drawn patient, one patient after another
                offsets = np.arange(sizes.sum()) - np.repeat(np.cumsum(sizes) - sizes, sizes)
                rows = rows_by_group[np.repeat(start[drawn], sizes) + offsets]
                return statistic(y_arr[rows], p_arr[rows])

            return replicate

    replicates = _bootstrap_replicates(
        list(estimate), n_groups, make_replicate, n_boot=n_boot, seed=seed, n_jobs=n_jobs
    )
    return _summarise_replicates(estimate, replicates, ci)


def _check_settings(n_boot: int, ci: float, n_jobs: int) -> None:
    """Refuse a bootstrap set-up that cannot run, before any work is done."""
    if int(n_boot) != n_boot or n_boot < 0:
        raise ValueError(f"'n_boot' must be a non-negative integer; got {n_boot!r}.")
    if not 0 < ci < 1:
        raise ValueError(f"'ci' must be between 0 and 1; got {ci!r}.")
    _check_n_jobs(n_jobs)


def _check_n_jobs(n_jobs: int) -> int:
    if n_jobs == -1:
        return os.cpu_count() or 1
    if int(n_jobs) != n_jobs or n_jobs < 1:
        raise ValueError(f"'n_jobs' must be a positive integer or -1 (all cores); got {n_jobs!r}.")
    return int(n_jobs)


def _bootstrap_replicates(
    names: list[str],
    n_groups: int,
    make_replicate: Callable[[], Replicate],
    n_boot: int,
    seed: int,
    n_jobs: int = 1,
) -> np.ndarray:
    """The values ``names`` of every replicate, as an ``(n_boot, len(names))`` array.

    Replicate ``b`` draws ``n_groups`` group codes with replacement from its own
    generator, spawned from ``seed``, so its draw does not depend on how the replicates
    are shared out among threads. ``make_replicate()`` is called once per thread and
    returns the function that turns a draw into values, so that a thread can keep its
    own work arrays.
    """
    n_jobs = _check_n_jobs(n_jobs)
    children = np.random.SeedSequence(seed).spawn(n_boot)
    # on a Dask cluster, chunks small enough to spread over its workers
    n_chunks = min(n_boot, max(1, n_boot // _CLUSTER_CHUNK) if on_cluster() else n_jobs)
    chunks = [range(i, n_boot, n_chunks) for i in range(n_chunks)]
    replicates = np.full((n_boot, len(names)), np.nan)
    if len(chunks) <= 1 and not on_cluster():
        done = [_run_chunk(make_replicate, names, n_groups, [children[b] for b in chunk])
                for chunk in chunks]  # fmt: skip
    else:
        # threads here (numpy releases the GIL in its loops over the rows), or the
        # cluster's workers
        done = run_replicates(
            (
                delayed(_run_chunk)(make_replicate, names, n_groups, [children[b] for b in chunk])
                for chunk in chunks
            ),
            n_jobs=len(chunks),
            prefer="threads",
        )
    for chunk, values in zip(chunks, done, strict=True):
        replicates[list(chunk)] = values
    return replicates


def _run_chunk(
    make_replicate: Callable[[], Replicate],
    names: list[str],
    n_groups: int,
    seeds: list[np.random.SeedSequence],
) -> np.ndarray:
    """The values ``names`` of the replicates drawn from ``seeds``, one row each."""
    replicate = make_replicate()
    out = np.full((len(seeds), len(names)), np.nan)
    for i, child in enumerate(seeds):
        drawn = np.random.default_rng(child).integers(0, n_groups, size=n_groups)
        values = replicate(drawn)
        out[i] = [values[name] for name in names]
    return out


def _percentile_intervals(replicates: np.ndarray, ci: float) -> list[tuple[float, float, int]]:
    """``(low, high, usable replicates)`` of each column of ``replicates``: its
    percentile interval over the replicates in which it is defined (NaN if none is)."""
    out = []
    tail = (1 - ci) / 2
    for j in range(replicates.shape[1]):
        usable = replicates[:, j][~np.isnan(replicates[:, j])]
        if usable.size:
            low, high = np.quantile(usable, [tail, 1 - tail])
        else:
            low = high = math.nan
        out.append((float(low), float(high), int(usable.size)))
    return out


def _summarise_replicates(
    estimate: Mapping[str, float], replicates: np.ndarray, ci: float
) -> dict[str, float]:
    """Estimate, percentile interval and usable replicates of each value."""
    out: dict[str, Any] = {}
    intervals = _percentile_intervals(replicates, ci)
    for name, (low, high, usable) in zip(estimate, intervals, strict=True):
        out[name] = float(estimate[name])
        out[f"{name}_ci_low"] = low
        out[f"{name}_ci_high"] = high
        out[f"{name}_n_boot"] = usable
    return out
