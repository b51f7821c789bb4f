"""The scikit-learn transformer from typed encounters to the model's feature matrix."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from .._excerpt import excerpt
from ..config import OUTCOME_NAMES, Config
from ..errors import ConfigError, ContractError
from ._history import (
    PatientOrder,
    change_since_previous,
    patient_session_order,
    previous_session,
    running_mean,
    running_min,
)

__all__ = [
    "ATTRIBUTE_FEATURE_SUFFIXES",
    "EncounterFeatures",
]

#: The features of one attribute ``a`` are named ``a`` + each suffix, in this order.
ATTRIBUTE_FEATURE_SUFFIXES = (
    "",
    "__missing",
    "__prev",
    "__prev_missing",
    "__mean",
    "__min",
    "__change",
)

# The identity and order of a patient's encounters: needed for every history feature.
_KEY_COLUMNS = ("patient_id", "session_number")


class EncounterFeatures(TransformerMixin, BaseEstimator):
    """Turn typed encounters into one row of numeric features per encounter.

    For each configured attribute ``a`` (in the order given):

    - ``a``: this session's rating, a missing rating replaced by the imputation value;
    - ``a__missing``: 1.0 if this session's rating is missing;
    - ``a__prev``: the rating at the patient's previous session (the next-lower
      ``session_number`` in the table), the imputation value at the first session or if
      it was missing; ``a__prev_missing``: 1.0 in those two cases;
    - ``a__mean``: mean of the patient's recorded ratings up to and including this
      session (the imputation value if none);
    - ``a__min``: lowest recorded rating so far, this session included (the imputation
      value if none);
    - ``a__change``: this rating minus the previous session's when both are recorded,
      else 0.0.

    Then ``n_missing_ratings`` (missing attributes this session), ``session_number``,
    ``log_session`` (its natural log), ``treatment=<name>`` for every configured
    treatment and ``<covariate>=<level>`` for every level of each covariate seen in
    ``fit``. A treatment or covariate level not known, or missing, gives zeros in all
    that variable's columns.

    The features of the row for session ``t`` depend only on that patient's rows with
    ``session_number <= t`` and on what ``fit`` learned; the outcome columns
    (``attended_next``, ``adherent``) are never read. So there is no leakage from later
    sessions or outcomes, by construction.

    With these features a logistic model can express the simulator's true model exactly:
    a missing rating's contribution is absorbed by ``a__missing``, and the mean change of
    the ratings is a linear combination of the ``a__change`` columns.

    Parameters
    ----------
    attributes : tuple of str
        The rated attributes (rating columns), as ``Config.attribute_names``.
    treatments : tuple of str
        The treatments, as ``Config.treatment_names``; one indicator column each.
    covariates : tuple of str, default ()
        Categorical columns used as predictors (``Config.covariates``), one indicator
        per level seen in ``fit``.
    scale : tuple of (float, float), default (1.0, 5.0)
        The rating scale's ``(min, max)``; its midpoint imputes an attribute that has no
        recorded rating at all in the training data.

    Attributes
    ----------
    imputation_ : dict of str to float
        Per attribute, the value that stands in for a missing rating: the mean of the
        recorded ratings in the training data, or the scale's midpoint if none.
    covariate_levels_ : dict of str to list
        Per covariate, its levels in the training data, sorted.
    feature_names_ : list of str
        The output columns, in order.
    feature_groups_ : dict of str to str
        Feature name to group: the attribute name for each of its seven features,
        ``"treatment"``, ``"session"`` (``session_number``, ``log_session``),
        ``"missingness"`` (``n_missing_ratings``) or the covariate name.

    See Also
    --------
    engagekit.coerce_encounters : makes the typed table this transformer expects.

    Examples
    --------
    >>> import pandas as pd
    >>> table = pd.DataFrame({
    ...     "patient_id": ["p1", "p1", "p1"], "session_number": [1, 2, 3],
    ...     "treatment": ["cbt_online"] * 3, "empathy": [4.0, None, 2.0]})
    >>> features = EncounterFeatures(("empathy",), ("cbt_online", "usual_care"))
    >>> out = features.fit_transform(table)
    >>> out[["empathy", "empathy__prev", "empathy__mean", "empathy__change"]]
       empathy  empathy__prev  empathy__mean  empathy__change
    0      4.0            3.0            4.0              0.0
    1      3.0            4.0            4.0              0.0
    2      2.0            3.0            3.0              0.0
    >>> len(features.get_feature_names_out())
    12

    A needed column that is absent is refused:

    >>> features.transform(table.drop(columns="treatment"))
    Traceback (most recent call last):
    ...
    engagekit.errors.ContractError: the encounter table lacks column(s) 'treatment', \
which the features need (found: 'patient_id', 'session_number', 'empathy'); rename \
the columns to the contract's names or change the config
    """

    def __init__(
        self,
        attributes: tuple[str, ...],
        treatments: tuple[str, ...],
        covariates: tuple[str, ...] = (),
        scale: tuple[float, float] = (1.0, 5.0),
    ) -> None:
        self.attributes = attributes
        self.treatments = treatments
        self.covariates = covariates
        self.scale = scale

    @classmethod
    def from_config(cls, config: Config) -> EncounterFeatures:
        """The transformer for a config's attributes, scale, treatments and covariates.

        Parameters
        ----------
        config : Config

        Returns
        -------
        EncounterFeatures
            Unfitted.

        Examples
        --------
        >>> from engagekit import load_config
        >>> EncounterFeatures.from_config(load_config()).covariates
        ('age_band',)
        """
        return cls(
            attributes=tuple(config.attribute_names),
            treatments=tuple(config.treatment_names),
            covariates=tuple(config.covariates),
            scale=(float(config.attributes.scale.min), float(config.attributes.scale.max)),
        )

    def fit(self, X: pd.DataFrame, y: Any = None) -> EncounterFeatures:
        """Learn the imputation values and the covariate levels from ``X``.

        Parameters
        ----------
        X : pandas.DataFrame
            Typed encounters (see :func:`engagekit.coerce_encounters`).
        y : ignored
            Present for scikit-learn's API; outcomes are never used.

        Returns
        -------
        EncounterFeatures
            ``self``, fitted.

        Raises
        ------
        ContractError
            A column the features need is absent or a rating column is not numeric.
        ConfigError
            The parameters are inconsistent (feature names that clash, a scale whose
            maximum is not above its minimum), or an attribute or covariate is an
            outcome column (``attended_next``, ``adherent``).
        """
        attributes, treatments, covariates = self._checked_params()
        self._require_columns(X, attributes, covariates)
        low, high = self.scale
        midpoint = (float(low) + float(high)) / 2.0
        imputation = {}
        for name in attributes:
            ratings = _ratings(X, name)
            recorded = ratings[~np.isnan(ratings)]
            # mean of recorded ratings; no np.nanmean, whose all-NaN warning is noise here
            imputation[name] = float(recorded.mean()) if recorded.size else midpoint
        self.imputation_ = imputation
        self.covariate_levels_ = {name: _sorted_levels(X[name]) for name in covariates}

        names, groups = _layout(attributes, treatments, self.covariate_levels_)
        clashes = sorted({n for n in names if names.count(n) > 1})
        if clashes:
            raise ConfigError(
                f"feature name(s) {clashes} would be made twice; rename the attribute, "
                "treatment or covariate level that produces them"
            )
        self.feature_names_ = names
        self.feature_groups_ = groups
        return self

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        """Compute the features of every encounter.

        Parameters
        ----------
        X : pandas.DataFrame
            Typed encounters, in any row order.

        Returns
        -------
        pandas.DataFrame
            float64, columns ``feature_names_``, with ``X``'s index and row order.

        Raises
        ------
        sklearn.exceptions.NotFittedError
            ``fit`` has not been called.
        ContractError
            A needed column is absent, a rating column is not numeric, or the rows cannot
            be ordered within patients (missing ``patient_id`` or ``session_number``, a
            session number below 1 or repeated within a patient).
        """
        check_is_fitted(self)
        attributes, treatments, covariates = self._checked_params()
        layout, _ = _layout(attributes, treatments, self.covariate_levels_)
        if tuple(self.covariate_levels_) != covariates or layout != self.feature_names_:
            raise ValueError(
                "the attributes, treatments or covariates were changed after fit; call fit "
                "again before transform"
            )
        self._require_columns(X, attributes, covariates)
        n_rows = len(X)
        # one contiguous row per output column, handed to pandas without a copy
        out = np.empty((len(self.feature_names_), n_rows), dtype="float64")

        order = patient_session_order(X["patient_id"], X["session_number"])
        ratings = np.empty((len(attributes), n_rows), dtype="float64")
        for k, name in enumerate(attributes):
            ratings[k] = _ratings(X, name)
        missing = np.isnan(ratings)
        n_suffixes = len(ATTRIBUTE_FEATURE_SUFFIXES)
        # out's first rows are attribute-major: a, a__missing, ..., then the next attribute
        _write_attribute_features(
            out[: n_suffixes * len(attributes)].reshape(len(attributes), n_suffixes, n_rows),
            ratings,
            missing,
            order,
            np.array([self.imputation_[name] for name in attributes])[:, None],
        )

        row = n_suffixes * len(attributes)
        out[row] = missing.sum(axis=0)
        session = X["session_number"].to_numpy(dtype="float64", na_value=np.nan)
        out[row + 1] = session
        out[row + 2] = np.log(session)
        row += 3
        row = _one_hot(out, row, X["treatment"], list(treatments))
        for covariate in covariates:
            row = _one_hot(out, row, X[covariate], self.covariate_levels_[covariate])
        return pd.DataFrame(
            out.T, columns=pd.Index(self.feature_names_), index=X.index.copy(), copy=False
        )

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        """The output column names.

        Parameters
        ----------
        input_features : ignored
            Present for scikit-learn's API; the output names do not depend on it.

        Returns
        -------
        numpy.ndarray of str (object dtype)
            ``feature_names_``.
        """
        check_is_fitted(self)
        return np.asarray(self.feature_names_, dtype=object)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        tags.input_tags.string = True
        tags.input_tags.categorical = True
        tags.target_tags.required = False
        return tags

    def _checked_params(self) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
        attributes = _names(self.attributes, "attributes")
        treatments = _names(self.treatments, "treatments")
        covariates = _names(self.covariates, "covariates")
        low, high = self.scale
        if not float(high) > float(low):
            raise ConfigError(
                f"scale must be (min, max) with max > min, found {excerpt(tuple(self.scale))}"
            )
        # A second line of defence behind the config's own check: a feature read from an
        # outcome column hands the model the answer (an attribute named attended_next
        # once gave an AUROC of 1.000 without a word).
        leaking = [
            (what, name)
            for what, names in (("attribute", attributes), ("covariate", covariates))
            for name in names
            if name in OUTCOME_NAMES
        ]
        if leaking:
            raise ConfigError(
                "features may not be read from an outcome column: "
                + ", ".join(f"the {what} {name!r}" for what, name in leaking)
                + " would give the model the answer it is to predict; rename the "
                "attribute or remove the covariate"
            )
        return attributes, treatments, covariates

    @staticmethod
    def _require_columns(
        X: pd.DataFrame, attributes: tuple[str, ...], covariates: tuple[str, ...]
    ) -> None:
        if not isinstance(X, pd.DataFrame):
            raise TypeError(
                "EncounterFeatures takes a pandas DataFrame of typed encounters "
                f"(see engagekit.coerce_encounters), found {type(X).__name__}"
            )
        needed = [*_KEY_COLUMNS, "treatment", *attributes, *covariates]
        absent = [c for c in needed if c not in X.columns]
        if absent:
            found = ", ".join(excerpt(str(c), 40) for c in X.columns[:20])
            more = " ..." if X.shape[1] > 20 else ""
            raise ContractError(
                f"the encounter table lacks column(s) {', '.join(excerpt(c, 40) for c in absent)}, "
                f"which the features need (found: {found}{more}); rename the columns to "
                "the contract's names or change the config"
            )


def _write_attribute_features(
    block: np.ndarray,
    ratings: np.ndarray,
    missing: np.ndarray,
    order: PatientOrder,
    imputation: np.ndarray,
) -> None:
    """Fill ``block[a, j]`` with feature ``ATTRIBUTE_FEATURE_SUFFIXES[j]`` of attribute ``a``.

    ``ratings`` and ``missing`` are (n_attributes, n_rows) in the input's row order;
    ``imputation`` is (n_attributes, 1).
    """

    def put(suffix: str, values: np.ndarray, impute_where: np.ndarray | None = None) -> None:
        # written straight into the output, so that a million rows need no second copy
        # of every feature
        target = block[:, ATTRIBUTE_FEATURE_SUFFIXES.index(suffix)]
        target[...] = values
        if impute_where is not None:
            np.copyto(target, imputation, where=impute_where)

    put("", ratings, impute_where=missing)
    put("__missing", missing)
    in_order = order.to_patient_order(ratings)
    previous = previous_session(in_order, order.first)
    put("__change", order.to_input_order(change_since_previous(in_order, previous)))
    previous = order.to_input_order(previous)
    previous_missing = np.isnan(previous)
    put("__prev", previous, impute_where=previous_missing)
    put("__prev_missing", previous_missing)
    del previous
    for suffix, statistic in (("__mean", running_mean), ("__min", running_min)):
        values = order.to_input_order(statistic(in_order, order.patient))
        put(suffix, values, impute_where=np.isnan(values))


def _layout(
    attributes: tuple[str, ...], treatments: tuple[str, ...], covariate_levels: dict[str, list]
) -> tuple[list[str], dict[str, str]]:
    """The feature names in output order, and the group of each."""
    names, groups = [], {}

    def add(name: str, group: str) -> None:
        names.append(name)
        groups[name] = group

    for attribute in attributes:
        for suffix in ATTRIBUTE_FEATURE_SUFFIXES:
            add(attribute + suffix, attribute)
    add("n_missing_ratings", "missingness")
    add("session_number", "session")
    add("log_session", "session")
    for treatment in treatments:
        add(f"treatment={treatment}", "treatment")
    for covariate, levels in covariate_levels.items():
        for level in levels:
            add(f"{covariate}={level}", covariate)
    return names, groups


def _names(value: Sequence[str], what: str) -> tuple[str, ...]:
    if isinstance(value, str):
        raise ConfigError(f"{what} must be a sequence of names, found the string {excerpt(value)}")
    names = tuple(value)
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ConfigError(f"{what} must be unique; repeated: {excerpt(repeated)}")
    return names


def _ratings(X: pd.DataFrame, name: str) -> np.ndarray:
    try:
        return X[name].to_numpy(dtype="float64", na_value=np.nan)
    except (TypeError, ValueError) as e:
        raise ContractError(
            f"rating column {excerpt(name, 40)} must be numeric, found dtype {X[name].dtype}; "
            "convert the table with engagekit.coerce_encounters first"
        ) from e


def _sorted_levels(column: pd.Series) -> list:
    levels = list(column.dropna().unique())
    try:
        return sorted(levels)
    except TypeError:
        # levels of mixed types (say 1 and "1") have no natural order; their text has
        return sorted(levels, key=str)


def _one_hot(out: np.ndarray, row: int, column: pd.Series, levels: list) -> int:
    """Write one indicator row of ``out`` per level from ``row``; return the next row.

    A value that is missing or not among ``levels`` gets position -1 and so a zero in
    every indicator.
    """
    # Look up the few distinct values, not a million cells: factorizing is one pass in
    # C (Arrow's dictionary encoding for string columns), with missing coded -1.
    codes, distinct = pd.factorize(column, use_na_sentinel=True)
    position = pd.Index(levels, dtype=object).get_indexer(pd.Index(distinct, dtype=object))
    level_codes = np.append(position, -1)[codes]
    for k in range(len(levels)):
        out[row + k] = level_codes == k
    return row + len(levels)
