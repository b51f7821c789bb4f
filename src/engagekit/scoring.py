"""Scores: each encounter's prediction, its explanation, its flag and the reasons for it.

One row per encounter, the unit every output of engagekit's bulk scoring is made of
(files, database tables, reports):

- ``encounter_id``, ``patient_id``, then the encounter's context, so that a caseload
  can be filtered: ``treatment``, ``practitioner_id``, ``session_number`` and
  ``encounter_date`` (ISO date text), those of them the encounter table has;
- ``p_<target>``: the calibrated probability of the good outcome (attended the next
  session, adherent), and ``risk``: the probability of the bad one, ``1 - p``;
- ``flag``: ``high``, ``medium`` or ``low`` by the model's stored flag rule, applied to
  the encounters being scored (:func:`engagekit.flags.flag_thresholds`: "the top 10%"
  flags 10% of them), and ``reasons``: for ``high`` and ``medium`` flags, the rated
  qualities that raise this patient's risk most, each with the config's suggestion
  (empty for ``low``);
- ``shap_base_value`` and ``shap_<feature>`` for every model feature, on the log-odds
  scale, with ``shap_base_value + sum(shap_<feature>) == logit(p_<target>)`` (a model
  with per-subgroup intercepts holds each encounter's offset in its base value);
- ``grouped_<name>``: the same contributions summed by what they describe (each
  attribute, ``treatment``, ``session``, ``missingness``, each covariate);
- ``rating_<attribute>``: the encounter's rating of each rated quality, as a float
  (NaN when it was not rated), last so that the columns above keep their places.

Large tables are scored in chunks of whole patients (:func:`patient_chunks`), because a
prediction uses the patient's earlier sessions: a chunk holding all of a patient's
encounters scores them exactly as the whole table would, when it is flagged with the
thresholds the rule set on the whole table (:func:`encounter_flag_thresholds`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from scipy.special import expit

from .choices import FlagRuleKind
from .config import Config
from .errors import ContractError
from .explain import explain_predictions
from .flags import AppliedFlagRule, FlagRule, flag_levels, flag_reasons, flag_thresholds

if TYPE_CHECKING:
    from .models import EngagementModel

__all__ = [
    "CONTEXT_COLUMNS",
    "GROUPED_PREFIX",
    "RATING_PREFIX",
    "SHAP_PREFIX",
    "encounter_flag_thresholds",
    "patient_chunks",
    "score_columns",
    "score_encounters",
]

SHAP_PREFIX = "shap_"
#: Contributions summed by attribute (and treatment, session, ...): a prefix of their own,
#: so that summing every ``shap_`` column never counts a contribution twice.
GROUPED_PREFIX = "grouped_"
#: The encounter's context, copied into the scores (when the table has the column) so
#: that a clinician can build a caseload: by treatment, practitioner, session and date.
#: The encounter's rating of each rated quality (NaN when not rated), for the clinician's
#: page: each quality's ratings over sessions, and alerts when they drop or go missing.
RATING_PREFIX = "rating_"
CONTEXT_COLUMNS = ("treatment", "practitioner_id", "session_number", "encounter_date")
_FLAGGED = ("high", "medium")


def score_columns(
    model: EngagementModel,
    groups: list[str] | None = None,
    *,
    encounter_columns: Iterable[str] | None = None,
) -> list[str]:
    """The columns of :func:`score_encounters`' table for ``model``, in order.

    Parameters
    ----------
    model : EngagementModel
    groups : list of str, optional
        The grouped contributions' names (``Explanation.grouped.columns``); computed
        from the model when omitted.
    encounter_columns : iterable of str, optional
        The columns of the encounter table scored: the :data:`CONTEXT_COLUMNS` among
        them are copied into the scores. All of them when omitted.

    Returns
    -------
    list of str

    Examples
    --------
    >>> from engagekit import simulate_encounters
    >>> from engagekit.models import fit_model
    >>> encounters = simulate_encounters(100, seed=1).encounters
    >>> model = fit_model(encounters, "adherent", "logistic")
    >>> score_columns(model, encounter_columns=["patient_id", "treatment"])[:6]
    ['encounter_id', 'patient_id', 'treatment', 'p_adherent', 'risk', 'flag']
    >>> [c for c in score_columns(model) if c.startswith(RATING_PREFIX)][:2]
    ['rating_approachability', 'rating_empathy']
    """
    if groups is None:
        from .explain._shap_values import _group_indicator

        groups = _group_indicator(model)[0]
    present = set(CONTEXT_COLUMNS if encounter_columns is None else encounter_columns)
    return [
        "encounter_id",
        "patient_id",
        *(name for name in CONTEXT_COLUMNS if name in present),
        f"p_{model.target}",
        "risk",
        "flag",
        "reasons",
        f"{SHAP_PREFIX}base_value",
        *(SHAP_PREFIX + name for name in model.feature_names),
        *(GROUPED_PREFIX + name for name in groups),
        *(RATING_PREFIX + name for name in model.features.attributes),
    ]


def encounter_flag_thresholds(
    flag_rule: FlagRule, risk: Any, encounters: pd.DataFrame
) -> AppliedFlagRule:
    """The thresholds ``flag_rule`` sets on ``encounters``, whose risks are ``risk``.

    :func:`engagekit.flags.flag_thresholds` with each encounter's ``practitioner_id``
    (read only by the ``per_practitioner`` rule): "the top 10%" is 10% of these
    encounters.

    Parameters
    ----------
    flag_rule : FlagRule
    risk : array-like of float
        Risk of the bad outcome of each row of ``encounters``.
    encounters : pandas.DataFrame
        The encounters being scored.

    Returns
    -------
    AppliedFlagRule

    Raises
    ------
    ContractError
        A ``per_practitioner`` rule, and ``practitioner_id`` is absent or has empty
        cells.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from engagekit.flags import choose_flag_rule
    >>> rule = choose_flag_rule([1, 0, 1, 0], [.9, .3, .8, .6], "per_practitioner", 1,
    ...                         ["a", "a", "b", "b"])
    >>> scored = pd.DataFrame({"practitioner_id": ["a", "b", "c", "c", "c", "c"]})
    >>> applied = encounter_flag_thresholds(rule, [.1, .2, .3, .4, .5, .6], scored)
    >>> applied.n_practitioners, applied.threshold  # 1 flag for each of 3 practitioners
    (3, 0.35)
    >>> encounter_flag_thresholds(rule, [.1], pd.DataFrame({"patient_id": ["p"]}))
    Traceback (most recent call last):
    ...
    engagekit.errors.ContractError: the model's flag rule flags 1 encounters per \
practitioner, but the encounter table has no 'practitioner_id' column; score a table \
with it, or retrain with another --flag-rule
    """
    practitioners = None
    if flag_rule.rule is FlagRuleKind.PER_PRACTITIONER:
        if "practitioner_id" not in encounters.columns:
            raise ContractError(
                f"the model's flag rule flags {flag_rule.value:g} encounters per "
                "practitioner, but the encounter table has no 'practitioner_id' column; "
                "score a table with it, or retrain with another --flag-rule"
            )
        practitioners = encounters["practitioner_id"]
        missing = int(practitioners.isna().sum())
        if missing:
            raise ContractError(
                f"the model's flag rule flags {flag_rule.value:g} encounters per "
                f"practitioner, but 'practitioner_id' is empty in {missing} encounter(s); "
                "fill it in, or retrain with another --flag-rule"
            )
        # only counted: codes, not millions of text objects
        practitioners = pd.factorize(practitioners)[0]
    return flag_thresholds(flag_rule, risk, practitioners)


def score_encounters(
    model: EngagementModel,
    encounters: pd.DataFrame,
    config: Config,
    flag_rule: FlagRule | AppliedFlagRule,
    *,
    top_reasons: int = 2,
    n_jobs: int = 1,
) -> pd.DataFrame:
    """Predict, explain and flag every encounter.

    Parameters
    ----------
    model : EngagementModel
        A fitted model.
    encounters : pandas.DataFrame
        Typed encounters (see :func:`engagekit.coerce_encounters`) with every encounter
        of each patient in it up to the one scored: a row is scored from its own session
        and the patient's earlier sessions in this table.
    config : Config
        Attribute labels, suggestions and the rating scale, for the reasons.
    flag_rule : FlagRule or AppliedFlagRule
        The model's stored rule, applied to these encounters (a capacity rule flags
        its share of them: see :func:`encounter_flag_thresholds`); or the thresholds
        it set on a whole table, to flag a chunk of it as the whole table.
    top_reasons : int, default 2
        At most this many qualities named per flag.
    n_jobs : int, default 1
        Threads explaining a tree model (-1: one per core); the result does not depend
        on it.

    Returns
    -------
    pandas.DataFrame
        The columns of :func:`score_columns`, one row per encounter in ``encounters``'
        order, with a fresh ``RangeIndex``.

    Raises
    ------
    ContractError
        ``encounters`` lacks a column the model (or a ``per_practitioner`` rule) needs.

    Examples
    --------
    >>> import numpy as np
    >>> from engagekit import load_config, simulate_encounters
    >>> from engagekit.flags import choose_flag_rule
    >>> from engagekit.models import fit_model
    >>> config = load_config()
    >>> encounters = simulate_encounters(300, seed=1, config=config).encounters
    >>> model = fit_model(encounters, "attended_next", "logistic", config)
    >>> known = encounters["attended_next"].notna()
    >>> rule = choose_flag_rule(encounters.loc[known, "attended_next"].astype(int),
    ...                         model.predict_proba(encounters[known]), "top_percent", 10)
    >>> scores = score_encounters(model, encounters, config, rule)
    >>> list(scores.columns[:11])  # doctest: +NORMALIZE_WHITESPACE
    ['encounter_id', 'patient_id', 'treatment', 'practitioner_id', 'session_number',
     'encounter_date', 'p_attended_next', 'risk', 'flag', 'reasons', 'shap_base_value']
    >>> round(float((scores["flag"] == "high").mean()), 3)  # the top 10%
    0.1
    >>> shap = scores.filter(like="shap_").sum(axis=1)
    >>> p = scores["p_attended_next"]
    >>> bool(np.allclose(shap, np.log(p / (1 - p)), atol=1e-9))
    True
    >>> set(scores.loc[scores["flag"] == "low", "reasons"])
    {''}
    >>> ratings = scores.filter(like="rating_")  # last, NaN where not rated
    >>> list(ratings.columns) == list(scores.columns[-len(config.attribute_names):])
    True
    >>> bool(ratings.isna().equals(encounters[list(config.attribute_names)].isna()
    ...      .set_axis(ratings.columns, axis=1)))
    True
    """
    explanation = explain_predictions(model, encounters, n_jobs=n_jobs)
    p = expit(explanation.logit)
    risk = 1.0 - p
    if isinstance(flag_rule, FlagRule):
        flag_rule = encounter_flag_thresholds(flag_rule, risk, encounters)
    flags = flag_levels(risk, flag_rule)
    reasons = flag_reasons(
        explanation.grouped,
        encounters,
        config,
        top=top_reasons,
        flagged=np.isin(flags, _FLAGGED),
    )
    n = len(encounters)
    columns: dict[str, Any] = {
        "encounter_id": encounters["encounter_id"].to_numpy(dtype=object),
        "patient_id": encounters["patient_id"].to_numpy(dtype=object),
        **_context(encounters),
        f"p_{model.target}": p,
        "risk": risk,
        "flag": flags.astype(object),
        "reasons": np.asarray(reasons, dtype=object),
        f"{SHAP_PREFIX}base_value": explanation.base_values,
    }
    values = explanation.values.to_numpy()
    for j, name in enumerate(explanation.values.columns):
        columns[SHAP_PREFIX + name] = values[:, j]
    grouped = explanation.grouped.to_numpy()
    for j, name in enumerate(explanation.grouped.columns):
        columns[GROUPED_PREFIX + name] = grouped[:, j]
    for name in model.features.attributes:
        columns[RATING_PREFIX + name] = pd.to_numeric(encounters[name], errors="coerce").to_numpy(
            dtype="float64", na_value=np.nan
        )
    return pd.DataFrame(columns, index=pd.RangeIndex(n))


def _context(encounters: pd.DataFrame) -> dict[str, np.ndarray]:
    """The :data:`CONTEXT_COLUMNS` the table has: text (``None`` when empty), the
    session number as int64, the date as ISO text."""
    context: dict[str, np.ndarray] = {}
    for name in CONTEXT_COLUMNS:
        if name not in encounters.columns:
            continue
        column = encounters[name]
        if name == "session_number":
            context[name] = column.to_numpy(dtype="int64")
            continue
        if name == "encounter_date":
            column = pd.to_datetime(column).dt.strftime("%Y-%m-%d")
        text = np.array(column.astype(object), dtype=object)
        text[column.isna().to_numpy()] = None
        context[name] = text
    return context


def patient_chunks(patient_ids: Any, chunk_rows: int) -> list[np.ndarray]:
    """Row positions of successive chunks of whole patients, each of about ``chunk_rows``.

    Patients are taken in the order of their first row; a chunk closes once it holds at
    least ``chunk_rows`` rows (so a patient with more rows than that makes a chunk of
    their own). Within a chunk, rows keep the table's order. The plan depends only on
    the patient ids and ``chunk_rows``, so a rerun on the same table makes the same
    chunks.

    Parameters
    ----------
    patient_ids : array-like
        The patient of each row.
    chunk_rows : int
        Rows per chunk to aim for, at least 1.

    Returns
    -------
    list of numpy.ndarray
        Increasing row positions per chunk; together they hold every row once.

    Examples
    --------
    >>> [c.tolist() for c in patient_chunks(["a", "b", "a", "c", "c", "d"], 3)]
    [[0, 1, 2], [3, 4, 5]]
    >>> patient_chunks(["a"], 0)
    Traceback (most recent call last):
    ...
    ValueError: chunk_rows must be a whole number of rows, at least 1; found 0
    """
    if not isinstance(chunk_rows, int | np.integer) or chunk_rows < 1:
        raise ValueError(
            f"chunk_rows must be a whole number of rows, at least 1; found {chunk_rows!r}"
        )
    codes, _ = pd.factorize(pd.Series(np.asarray(patient_ids, dtype=object)), sort=False)
    if codes.size == 0:
        return []
    sizes = np.bincount(codes)
    # patient k goes to the chunk in which the running total of rows reaches it
    ends = np.cumsum(sizes)
    chunk_of_patient = np.empty(sizes.size, dtype=np.int64)
    chunk, start = 0, 0
    for k, end in enumerate(ends):
        chunk_of_patient[k] = chunk
        if end - start >= chunk_rows:
            chunk, start = chunk + 1, end
    row_chunk = chunk_of_patient[codes]
    order = np.argsort(row_chunk, kind="stable")
    bounds = np.cumsum(np.bincount(row_chunk))[:-1]
    return np.split(order, bounds)
