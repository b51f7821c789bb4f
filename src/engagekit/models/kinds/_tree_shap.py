"""Exact path-dependent TreeSHAP of a fitted HistGradientBoostingClassifier.

The algorithm of ``shap.TreeExplainer`` with ``feature_perturbation="tree_path_dependent"``
over the fitted trees of scikit-learn's HistGradientBoostingClassifier. shap computes the
same numbers, one row at a time; here each tree's SHAP values are tabulated once for
every cell of the partition its split thresholds make, and a row's values are looked up
from its cell, which is many times faster on a million rows. Trees too large to tabulate
are handed to shap itself. shap reads these trees exactly (float64 thresholds, a value
equal to a threshold goes left as in scikit-learn), and both agree with each other and
with the estimator's ``decision_function`` to about 1e-15.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from ._spec import row_chunks

__all__ = ["import_shap", "tree_shap"]

# A tree is tabulated if its thresholds cut the feature space into at most this many
# cells (a tree of depth 4 makes at most 2**14) and it is at most this deep (a leaf's
# table has a row per pattern of its path); other trees are explained by shap.
_MAX_CELLS = 2**16
_MAX_DEPTH = 8
# Tables of several trees held at once, in float64 values (256 MB).
_TABLE_BUDGET = 32_000_000


@dataclass(frozen=True)
class _Leaf:
    """A leaf seen from the root: its value and the conditions on the way to it.

    ``features`` are the distinct features split on along the path;
    ``zero_fraction[k]`` is the share of training rows that follow the path through
    every split on ``features[k]`` (the product of the cover ratios); ``conditions`` are
    ``(k, threshold, goes_left)`` for each split, ``k`` indexing ``features``.
    """

    value: float
    features: tuple[int, ...]
    zero_fraction: np.ndarray
    conditions: tuple[tuple[int, float, bool], ...]


def _leaves(nodes: np.ndarray) -> list[_Leaf]:
    """Every leaf of a HistGradientBoosting predictor's node array, with its path."""
    leaves = []
    stack: list[tuple[int, tuple[tuple[int, float, bool, float], ...]]] = [(0, ())]
    while stack:
        index, path = stack.pop()
        node = nodes[index]
        if node["is_leaf"]:
            leaves.append(_leaf_from_path(float(node["value"]), path))
            continue
        feature, threshold = int(node["feature_idx"]), float(node["num_threshold"])
        for child, goes_left in ((int(node["left"]), True), (int(node["right"]), False)):
            share = float(nodes[child]["count"]) / float(node["count"])
            stack.append((child, (*path, (feature, threshold, goes_left, share))))
    return leaves


def _leaf_from_path(value: float, path: tuple[tuple[int, float, bool, float], ...]) -> _Leaf:
    features = tuple(dict.fromkeys(step[0] for step in path))
    slot = {f: k for k, f in enumerate(features)}
    zero_fraction = np.ones(len(features))
    for feature, _, _, share in path:
        zero_fraction[slot[feature]] *= share
    conditions = tuple((slot[f], t, left) for f, t, left, _ in path)
    return _Leaf(value, features, zero_fraction, conditions)


@lru_cache(maxsize=32)
def _subset_algebra(d: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For ``d`` path features: which subsets each pattern contains, the Shapley weight
    of each subset size, and the bits of each pattern.

    Returns ``contains`` (2**d × 2**d, ``[S ⊆ p]``), ``weight`` (2**d, the weight
    ``|S|! (d - |S| - 1)! / d!`` of subset ``S``) and ``bits`` (2**d × d).
    """
    masks = np.arange(2**d)
    bits = ((masks[:, None] >> np.arange(d)) & 1).astype(float)
    contains = ((masks[None, :] & ~masks[:, None]) == 0).astype(float)
    size = bits.sum(axis=1).astype(int)
    weight = np.array(
        [
            math.factorial(s) * math.factorial(d - s - 1) / math.factorial(d) if s < d else 0.0
            for s in size
        ]
    )
    return contains, weight, bits


def _leaf_pattern_table(leaf: _Leaf) -> np.ndarray:
    """SHAP values of one leaf's term for every pattern of its path conditions.

    Path-dependent TreeSHAP explains the game ``v(S) = value * prod_k (o_k if k in S
    else z_k)``, where ``o_k`` is 1 if the row satisfies every split on path feature
    ``k`` and ``z_k`` its zero fraction. Its Shapley value for feature ``i`` is
    ``value * (o_i - z_i) * sum_{S ⊆ U - i} w(|S|) prod_{j in S} o_j prod_{j not in S,
    j != i} z_j``. Row ``p`` of the result holds these for the pattern whose bit ``k``
    is ``o_k``.
    """
    d = len(leaf.features)
    contains, weight, bits = _subset_algebra(d)
    z = leaf.zero_fraction
    masks = np.arange(2**d)
    # prod_{j not in mask} z_j, for every mask
    z_outside = np.prod(np.where(bits.astype(bool), 1.0, z), axis=1)
    per_subset = np.empty((2**d, d))
    for i in range(d):
        without_i = bits[:, i] == 0
        per_subset[:, i] = np.where(without_i, weight * z_outside[masks | (1 << i)], 0.0)
    return leaf.value * (bits - z) * (contains @ per_subset)


@dataclass(frozen=True)
class _TreeTable:
    """One tree's SHAP values for every cell of the partition its thresholds make.

    ``features`` are the tree's split features; a row's cell along ``features[k]`` is
    the number of the tree's thresholds on it below the row's value, and its cell code
    is ``sum_k cell_k * strides[k]``. ``shap[k, code]`` is the SHAP value of
    ``features[k]`` for a row in that cell; ``expected`` is the tree's cover-weighted
    mean output.
    """

    features: np.ndarray
    thresholds: tuple[np.ndarray, ...]
    strides: np.ndarray
    shap: np.ndarray
    expected: float


def _split_thresholds(nodes: np.ndarray) -> dict[int, np.ndarray]:
    """The distinct thresholds of each feature a tree splits on, sorted."""
    internal = nodes[nodes["is_leaf"] == 0]
    return {
        int(f): np.unique(internal["num_threshold"][internal["feature_idx"] == f])
        for f in np.unique(internal["feature_idx"])
    }


def _n_cells(nodes: np.ndarray) -> int:
    return math.prod(len(t) + 1 for t in _split_thresholds(nodes).values())


def _tabulable(nodes: np.ndarray) -> bool:
    """Whether a tree's SHAP values can be tabulated (numeric splits, few cells, and
    paths short enough for the 2**depth patterns of a leaf)."""
    return (
        not nodes["is_categorical"].any()
        and int(nodes["depth"].max()) <= _MAX_DEPTH
        and _n_cells(nodes) <= _MAX_CELLS
    )


def _tree_table(nodes: np.ndarray) -> _TreeTable:
    split = _split_thresholds(nodes)
    features = np.array(list(split), dtype=np.intp)
    sizes = [len(t) + 1 for t in split.values()]
    strides = np.array([math.prod(sizes[k + 1 :]) for k in range(len(sizes))], dtype=np.intp)
    # one point per cell: the upper threshold of its interval (a value equal to a
    # threshold goes left, as in scikit-learn's trees), +inf above the last threshold
    cell = np.indices(sizes).reshape(len(sizes), -1)
    points = {f: np.append(t, np.inf)[cell[k]] for k, (f, t) in enumerate(split.items())}
    row = {f: k for k, f in enumerate(split)}
    shap = np.zeros((len(features), cell.shape[1]))
    expected = 0.0
    for leaf in _leaves(nodes):
        expected += leaf.value * float(np.prod(leaf.zero_fraction))
        if not leaf.features:
            continue
        satisfied = [np.ones(cell.shape[1], dtype=bool) for _ in leaf.features]
        for k, threshold, goes_left in leaf.conditions:
            x = points[leaf.features[k]]
            satisfied[k] &= (x <= threshold) if goes_left else (x > threshold)
        pattern = sum(s.astype(np.intp) << k for k, s in enumerate(satisfied))
        table = _leaf_pattern_table(leaf)
        for k, f in enumerate(leaf.features):
            shap[row[f]] += table[:, k].take(pattern)
    return _TreeTable(features, tuple(split.values()), strides, shap, expected)


def tree_shap(
    estimator: Any, X: np.ndarray, n_threads: int, chunk_rows: int
) -> tuple[float, np.ndarray]:
    """Base value (raw log-odds) and path-dependent TreeSHAP values of a fitted
    binary HistGradientBoostingClassifier."""
    predictors = getattr(estimator, "_predictors", None)
    if predictors is None or getattr(estimator, "n_trees_per_iteration_", None) != 1:
        raise ValueError(
            "a gbm model's estimator must be a fitted binary HistGradientBoostingClassifier, "
            f"found {type(estimator).__name__}"
        )
    nodes = [p[0].nodes for p in predictors]
    if np.isnan(X).any() or not all(_tabulable(n) for n in nodes):
        return _by_shap(estimator, X, chunk_rows)
    baseline = float(np.ravel(estimator._baseline_prediction)[0])
    # features × rows, so that each feature's values of a chunk of rows are contiguous
    phi = np.zeros((X.shape[1], X.shape[0]))
    expected = 0.0
    for group in _tree_groups(nodes):
        tables = [_tree_table(n) for n in group]
        expected += sum(t.expected for t in tables)
        _add_tree_shap(tables, X, phi, n_threads, chunk_rows)
    return baseline + expected, phi.T


def _tree_groups(nodes: list[np.ndarray]) -> Iterator[list[np.ndarray]]:
    """The trees in groups whose tables fit in the memory budget together."""
    group: list[np.ndarray] = []
    size = 0
    for n in nodes:
        cost = _n_cells(n) * max(1, len(_split_thresholds(n)))
        if group and size + cost > _TABLE_BUDGET:
            yield group
            group, size = [], 0
        group.append(n)
        size += cost
    if group:
        yield group


def _add_tree_shap(
    tables: list[_TreeTable], X: np.ndarray, phi: np.ndarray, n_threads: int, chunk_rows: int
) -> None:
    """Add the trees' SHAP values of every row of ``X`` into ``phi`` (features × rows)."""
    tables = [t for t in tables if t.features.size]  # a tree without splits adds nothing
    # each row's position among all the thresholds of a feature, once per chunk; the
    # row's cell in a tree is then a sum of small lookups, one per split feature
    pooled: dict[int, list[np.ndarray]] = {}
    for table in tables:
        for f, thresholds in zip(table.features, table.thresholds, strict=True):
            pooled.setdefault(int(f), []).append(thresholds)
    merged = {f: np.unique(np.concatenate(ts)) for f, ts in pooled.items()}
    lookups = [
        [
            _cell_lookup(merged[int(f)], thresholds, stride)
            for f, thresholds, stride in zip(t.features, t.thresholds, t.strides, strict=True)
        ]
        for t in tables
    ]

    def run(rows: slice) -> None:
        position = {f: np.searchsorted(merged[f], X[rows, f]) for f in merged}
        out = phi[:, rows]
        for table, lookup in zip(tables, lookups, strict=True):
            code = lookup[0].take(position[int(table.features[0])])
            for f, step in zip(table.features[1:], lookup[1:], strict=True):
                code += step.take(position[int(f)])
            for f, values in zip(table.features, table.shap, strict=True):
                out[f] += values.take(code)

    chunks = row_chunks(len(X), chunk_rows)
    if n_threads == 1 or len(chunks) == 1:
        for rows in chunks:
            run(rows)
    else:
        # numpy releases the GIL in its gathers and additions, so threads share chunks
        with ThreadPoolExecutor(max_workers=n_threads) as pool:
            for future in [pool.submit(run, rows) for rows in chunks]:
                future.result()


def _cell_lookup(merged: np.ndarray, thresholds: np.ndarray, stride: int) -> np.ndarray:
    """Map a row's position among ``merged`` (how many are below its value) to its cell
    along this feature in one tree (how many of the tree's ``thresholds`` are below it),
    times the cell stride."""
    below = np.searchsorted(np.searchsorted(merged, thresholds), np.arange(len(merged) + 1))
    return below * stride


def _by_shap(estimator: Any, X: np.ndarray, chunk_rows: int) -> tuple[float, np.ndarray]:
    """shap's TreeExplainer, for trees too large to tabulate (or missing values)."""
    explainer = import_shap().TreeExplainer(estimator, feature_perturbation="tree_path_dependent")
    phi = np.empty_like(X)
    for rows in row_chunks(len(X), chunk_rows):
        phi[rows] = explainer.shap_values(X[rows], check_additivity=False)
    return float(np.ravel(explainer.expected_value)[0]), phi


def import_shap() -> Any:
    """shap, imported without the warning its import raises under newer matplotlib."""
    with warnings.catch_warnings():
        # shap 0.51 builds its colour maps with Colormap.set_bad/set_under/set_over,
        # which matplotlib 3.10 marks for deprecation: a note about shap's plotting
        # code, not about the explanations
        warnings.filterwarnings(
            "ignore",
            message=r"The set_(bad|under|over) function will be deprecated",
            category=PendingDeprecationWarning,
        )
        import shap
    return shap
