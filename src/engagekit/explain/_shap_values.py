"""SHAP values of an engagement model's predictions, on the log-odds scale.

Every prediction is split into a base value plus one contribution per feature, and the
contributions add up exactly (local accuracy) to the calibrated log-odds the model
reports: ``base_value + values.sum(axis=1) == logit``.

Each model kind explains its own margin exactly (its ``explain``, see
:mod:`engagekit.models.kinds`):

- ``logistic``: exact linear SHAP, ``phi_j = beta_j * (x_j - mu_j)`` on the features' own
  scale, with the training rows' feature means ``mu`` as the background
  (:mod:`engagekit.models.kinds.logistic`).
- ``gbm``: exact path-dependent TreeSHAP (the algorithm of ``shap.TreeExplainer`` with
  ``feature_perturbation="tree_path_dependent"``), tabulated per tree, which is many times
  faster than shap on a million rows and agrees with it to about 1e-15
  (:mod:`engagekit.models.kinds._tree_shap`).

A recalibration ``logit = a + b * margin`` keeps the explanation additive: each
contribution is multiplied by ``b`` and the base value is ``a + b * base``. A model's
per-subgroup intercepts (``engagekit update --method subgroup-intercept``) are no
feature's contribution: they shift the base value of each encounter by its subgroup's
offset (``offset``; ``base_values`` is the sum), so the explanation still adds up.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ..errors import AnalysisError, ContractError
from ..models._calibration import subgroup_offsets
from ..models.kinds import CHUNK_ROWS, KINDS, find_kind, kind_spec

if TYPE_CHECKING:
    from ..models import EngagementModel

__all__ = ["Explanation", "explain_predictions"]

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
        How the kind computed them: ``"linear"`` (exact linear SHAP) or
        ``"tree_path_dependent"`` (TreeSHAP).
    offset : numpy.ndarray or None
        Each encounter's per-subgroup intercept (the model's ``subgroup_intercepts``),
        added to its base value; None for a model without them.
    """

    base_value: float
    values: pd.DataFrame
    logit: np.ndarray
    grouped: pd.DataFrame
    attributes: tuple[str, ...]
    method: str
    offset: np.ndarray | None = None

    @property
    def base_values(self) -> np.ndarray:
        """Each encounter's base value: ``base_value`` plus its subgroup's offset."""
        base = np.full(len(self.values), self.base_value)
        return base if self.offset is None else base + self.offset

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
        total = self.base_values + self.values.to_numpy().sum(axis=1)
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
        A fitted model of a registered kind (see :mod:`engagekit.models.kinds`).
    encounters : pandas.DataFrame
        Typed encounters with the columns the model was trained on. Rows are explained
        from their own session and the patient's earlier sessions in the table, as
        ``model.predict_proba`` scores them.
    n_jobs : int, default 1
        Threads sharing the work where the kind can share it (the trees of a ``gbm``
        model; -1: one per core). The values do not depend on it.
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
    margin_shap = kind_spec(model.kind).explain(
        model.estimator, X, n_threads=n_threads, chunk_rows=chunk_rows
    )
    phi, method = margin_shap.values, margin_shap.method
    recalibration = model.recalibration
    logit = recalibration(margin_shap.margin)
    if recalibration.slope != 1.0:
        phi *= recalibration.slope
    base = float(recalibration(np.array([margin_shap.base_value]))[0])
    offset = None
    if model.subgroup_intercepts:
        offset = subgroup_offsets(model.subgroup_intercepts, encounters)
        logit = logit + offset
    values = pd.DataFrame(phi, index=encounters.index, columns=model.feature_names, copy=False)
    groups, indicator = _group_indicator(model)
    grouped = pd.DataFrame(phi @ indicator, index=encounters.index, columns=groups)
    attributes = tuple(model.features.attributes)
    return Explanation(base, values, logit, grouped, attributes, method, offset)


def _check_model(model: Any) -> None:
    kind = getattr(model, "kind", None)
    if find_kind(kind) is None:
        expected = ", ".join(repr(k.value) for k in KINDS)
        raise ValueError(f"cannot explain a model of kind {kind!r}; expected one of {expected}")
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
