"""SHAP values of an engagement model's predictions, on the log-odds scale.

Every prediction is split into a base value plus one contribution per feature, and the
contributions add up exactly (local accuracy) to the calibrated log-odds the model
reports: ``base_value + values.sum(axis=1) == logit``.

- ``logistic``: exact linear SHAP, ``phi_j = beta_j * (x_j - mu_j)`` on the features' own
  scale, with the training rows' feature means ``mu`` as the background (the pipeline's
  scaler was fitted on the training rows, so its ``mean_`` is that mean). For a linear
  model with an independent background this is the exact interventional SHAP value.
- ``gbm``: exact path-dependent TreeSHAP (the algorithm of ``shap.TreeExplainer`` with
  ``feature_perturbation="tree_path_dependent"``) over the fitted trees of scikit-learn's
  HistGradientBoostingClassifier. shap computes the same numbers, one row at a time; here
  each tree's SHAP values are tabulated once for every cell of the partition its split
  thresholds make, and a row's values are looked up from its cell, which is many times
  faster on a million rows. Trees too large to tabulate are handed to shap itself.
  shap reads these trees exactly (float64 thresholds, a value equal to a threshold goes
  left as in scikit-learn), and both agree with each other and with the estimator's
  ``decision_function`` to about 1e-15.

A recalibration ``logit = a + b * margin`` keeps the explanation additive: each
contribution is multiplied by ``b`` and the base value is ``a + b * base``.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ..errors import AnalysisError, ContractError
from ..models.estimators import logistic_coefficients

if TYPE_CHECKING:
    from ..models import EngagementModel

__all__ = ["Explanation", "explain_predictions"]

#: Rows explained at a time: bounds the working memory of a large table.
CHUNK_ROWS = 8192
# A tree is tabulated if its thresholds cut the feature space into at most this many
# cells (a tree of depth 4 makes at most 2**14) and it is at most this deep (a leaf's
# table has a row per pattern of its path); other trees are explained by shap.
_MAX_CELLS = 2**16
_MAX_DEPTH = 8
# Tables of several trees held at once, in float64 values (256 MB).
_TABLE_BUDGET = 32_000_000
_FIXED_GROUPS = ("treatment", "session", "missingness")


@dataclass
class Explanation:
    """SHAP values of every prediction, on the calibrated log-odds scale.

    Attributes
    ----------
    base_value : float
        The log-odds every explanation starts from (recalibration included).
    values : pandas.DataFrame
        One row per encounter (the encounters' index) and one column per model feature
        (``model.feature_names``): each feature's contribution to the log-odds.
    logit : numpy.ndarray
        The model's calibrated log-odds of each encounter (``model.logit``, to
        rounding: large tables are scored in chunks).
    grouped : pandas.DataFrame
        ``values`` summed by what the features describe: each attribute (its seven
        features and its attribute × treatment terms), ``treatment``, ``session``,
        ``missingness`` and each covariate, attributes first.
    attributes : tuple of str
        The attribute columns of ``grouped``, in the config's order.
    method : str
        ``"linear"`` (exact linear SHAP) or ``"tree_path_dependent"`` (TreeSHAP).
    """

    base_value: float
    values: pd.DataFrame
    logit: np.ndarray
    grouped: pd.DataFrame
    attributes: tuple[str, ...]
    method: str

    def check_local_accuracy(self, tol: float = 1e-6) -> float:
        """Largest gap between ``base_value + values.sum(axis=1)`` and ``logit``.

        Parameters
        ----------
        tol : float
            The largest gap accepted.

        Returns
        -------
        float
            The largest absolute gap over all rows (0.0 without rows).

        Raises
        ------
        AnalysisError
            The gap exceeds ``tol`` somewhere: the explanation does not add up to the
            prediction and must not be reported.
        """
        if self.logit.size == 0:
            return 0.0
        total = self.base_value + self.values.to_numpy().sum(axis=1)
        gap = np.abs(total - self.logit)
        worst = float(gap.max())
        if not worst <= tol:
            row = int(np.argmax(gap))
            raise AnalysisError(
                f"the SHAP values do not add up to the prediction: at row {row} "
                f"(index {self.values.index[row]!r}) base value + contributions = "
                f"{total[row]:.10g} but the log-odds are {self.logit[row]:.10g} "
                f"(gap {worst:.3g} > {tol:g}); this is a bug, please report it"
            )
        return worst


def explain_predictions(
    model: EngagementModel,
    encounters: pd.DataFrame,
    *,
    n_jobs: int = 1,
    chunk_rows: int = CHUNK_ROWS,
) -> Explanation:
    """SHAP values of ``model``'s prediction for every encounter, on the log-odds scale.

    Parameters
    ----------
    model : EngagementModel
        A fitted model (``logistic`` or ``gbm``).
    encounters : pandas.DataFrame
        Typed encounters with the columns the model was trained on. Rows are explained
        from their own session and the patient's earlier sessions in the table, as
        ``model.predict_proba`` scores them.
    n_jobs : int, default 1
        Threads explaining the trees of a ``gbm`` model (-1: one per core). The values
        do not depend on it.
    chunk_rows : int
        Rows explained at a time, which bounds the working memory.

    Returns
    -------
    Explanation
        ``base_value + values.sum(axis=1)`` equals ``logit`` on every row, to rounding.

    Raises
    ------
    ContractError
        ``encounters`` lacks a column the model's features need.
    ValueError
        The model is of an unknown kind, or its estimator does not match its features.

    Examples
    --------
    >>> from engagekit import simulate_encounters
    >>> from engagekit.models import fit_model
    >>> encounters = simulate_encounters(300, seed=1).encounters
    >>> model = fit_model(encounters, "adherent", "logistic")
    >>> explanation = explain_predictions(model, encounters)
    >>> explanation.check_local_accuracy() < 1e-9
    True
    >>> list(explanation.grouped.columns[:3])
    ['approachability', 'empathy', 'support']
    >>> explain_predictions(model, encounters.drop(columns="empathy"))
    Traceback (most recent call last):
    ...
    engagekit.errors.ContractError: the encounter table lacks column(s) 'empathy', \
which the model's features need; explain encounters with the columns the model was \
trained on (the same config)
    """
    _check_model(model)
    _check_columns(model, encounters)
    n_threads = _n_threads(n_jobs)
    X = model.design(encounters).to_numpy(dtype="float64")
    if model.kind == "logistic":
        base, phi, margin = _linear_shap(model.estimator, X, chunk_rows)
        method = "linear"
    else:
        # scikit-learn refuses to score no rows; an empty table has an empty explanation
        margin = model.estimator.decision_function(X) if len(X) else np.empty(0)
        base, phi = _tree_shap(model.estimator, X, n_threads, chunk_rows)
        method = "tree_path_dependent"
    recalibration = model.recalibration
    logit = recalibration(margin)
    if recalibration.slope != 1.0:
        phi *= recalibration.slope
    base = float(recalibration(np.array([base]))[0])
    values = pd.DataFrame(phi, index=encounters.index, columns=model.feature_names, copy=False)
    groups, indicator = _group_indicator(model)
    grouped = pd.DataFrame(phi @ indicator, index=encounters.index, columns=groups)
    attributes = tuple(model.features.attributes)
    return Explanation(base, values, logit, grouped, attributes, method)


def _check_model(model: Any) -> None:
    kind = getattr(model, "kind", None)
    if kind not in ("logistic", "gbm"):
        raise ValueError(f"cannot explain a model of kind {kind!r}; expected logistic or gbm")
    n_in = getattr(model.estimator, "n_features_in_", None)
    if n_in != len(model.feature_names):
        raise ValueError(
            f"the model's estimator takes {n_in} features but its feature transformer "
            f"makes {len(model.feature_names)}; the model is corrupt, train it again"
        )


def _check_columns(model: Any, encounters: pd.DataFrame) -> None:
    """Refuse encounters that lack a column the model's features read."""
    if not isinstance(encounters, pd.DataFrame):
        raise TypeError(
            f"explain_predictions takes a DataFrame of encounters, found "
            f"{type(encounters).__name__}"
        )
    features = model.features
    needed = [
        "patient_id",
        "session_number",
        "treatment",
        *features.attributes,
        *features.covariates,
    ]
    absent = [c for c in needed if c not in encounters.columns]
    if absent:
        raise ContractError(
            f"the encounter table lacks column(s) {', '.join(repr(c) for c in absent)}, "
            "which the model's features need; explain encounters with the columns the "
            "model was trained on (the same config)"
        )


def _n_threads(n_jobs: int) -> int:
    if n_jobs == -1:
        return os.cpu_count() or 1
    if int(n_jobs) != n_jobs or n_jobs < 1:
        raise ValueError(f"'n_jobs' must be a positive integer or -1 (all cores); got {n_jobs!r}")
    return int(n_jobs)


def _row_chunks(n_rows: int, chunk_rows: int) -> list[slice]:
    if int(chunk_rows) != chunk_rows or chunk_rows < 1:
        raise ValueError(f"'chunk_rows' must be a positive integer; got {chunk_rows!r}")
    return [slice(i, min(i + chunk_rows, n_rows)) for i in range(0, n_rows, chunk_rows)]


# --- grouping --------------------------------------------------------------------------


def _group_indicator(model: Any) -> tuple[list[str], np.ndarray]:
    """The groups in output order and the (features × groups) 0/1 matrix that sums them.

    A feature's group comes from the feature transformer; an attribute × treatment term
    ``attribute:treatment=T`` belongs to its attribute.
    """
    feature_groups = model.features.feature_groups_
    names = model.feature_names
    of_feature = [
        feature_groups[name] if name in feature_groups else name.split(":treatment=")[0]
        for name in names
    ]
    attributes = list(model.features.attributes)
    preferred = [*attributes, *_FIXED_GROUPS, *model.features.covariates]
    groups = [g for g in preferred if g in of_feature]
    groups += [g for g in dict.fromkeys(of_feature) if g not in groups]
    indicator = np.zeros((len(names), len(groups)))
    position = {g: k for k, g in enumerate(groups)}
    for j, group in enumerate(of_feature):
        indicator[j, position[group]] = 1.0
    return groups, indicator


# --- logistic model --------------------------------------------------------------------


def _linear_shap(
    pipeline: Any, X: np.ndarray, chunk_rows: int
) -> tuple[float, np.ndarray, np.ndarray]:
    """Base value, SHAP values and margin of the logistic pipeline.

    ``phi_j = beta_j (x_j - mu_j)`` with ``beta`` on the features' own scale (the
    standardisation and the column weights folded in, as ``logistic_coefficients``
    does) and ``mu`` the training mean kept by the scaler. The base value is the margin
    at ``mu``, which is the fitted intercept on the standardised scale.
    """
    terms = logistic_coefficients(pipeline, [str(j) for j in range(X.shape[1])])
    beta = terms["coefficient"].to_numpy()[1:]
    mu = pipeline.named_steps["scale"].mean_
    base = float(pipeline.named_steps["logistic"].intercept_[0])
    phi = np.empty_like(X)
    margin = np.empty(len(X))
    # in chunks, so that the pipeline's scaled copies of a large table stay small
    for rows in _row_chunks(len(X), chunk_rows):
        np.subtract(X[rows], mu, out=phi[rows])
        phi[rows] *= beta
        margin[rows] = pipeline.decision_function(X[rows])
    return base, phi, margin


# --- trees -----------------------------------------------------------------------------


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


def _tree_shap(
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
        return _tree_shap_by_shap(estimator, X, chunk_rows)
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

    chunks = _row_chunks(len(X), chunk_rows)
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


def _tree_shap_by_shap(estimator: Any, X: np.ndarray, chunk_rows: int) -> tuple[float, np.ndarray]:
    """shap's TreeExplainer, for trees too large to tabulate (or missing values)."""
    explainer = _import_shap().TreeExplainer(estimator, feature_perturbation="tree_path_dependent")
    phi = np.empty_like(X)
    for rows in _row_chunks(len(X), chunk_rows):
        phi[rows] = explainer.shap_values(X[rows], check_additivity=False)
    return float(np.ravel(explainer.expected_value)[0]), phi


def _import_shap() -> Any:
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
