"""Multiple imputation of missing ratings by chained equations.

Encounters with a missing rating need not be dropped: each missing rating is drawn,
``imputations`` times, from its predictive distribution given everything else known about
the encounter, and the analysis is repeated on every completed table and pooled by
Rubin's rules (:mod:`._pool`).

Each rating with missing values has a normal linear imputation model on every other
column (van Buuren's *Flexible Imputation of Missing Data*, 2nd ed., §3.2, the ``norm``
method of R's mice): in each round, for each such rating in turn, the residual variance
and then the coefficients are drawn from their posterior given the completed data
(Bayesian linear regression with a flat prior, a tiny ridge for stability), and every
missing value from the predictive normal, clipped to the scale. Drawing the coefficients
once per round and imputation is what makes the imputations *proper*: the between-
imputation variance carries the uncertainty of the imputation model. Each imputation is
its own chain of :data:`ROUNDS` rounds from the observed means.

A patient's previous-session ratings are predictors, kept *passive*: they are the
current completed values of the patient's previous row, refreshed after every draw, so
that a rating imputed at session 3 is the predictor used at session 4. At a first
session (no previous one) the previous rating is the observed mean, with an indicator.

The imputation model must be at least as rich as the analysis (it must be *congenial*).
The analysis lets each treatment's rating–outcome association differ, so the imputation
model holds the outcome times each treatment's indicator; without these products every
imputed rating would carry the association averaged over treatments, and the pooled
analysis would shrink the between-treatment differences it tests towards zero.

The sampler is written here with numpy rather than taken from scikit-learn's
``IterativeImputer(sample_posterior=True)``: that one draws each value with the
coefficients' uncertainty but not the coefficients themselves once per imputation (not
quite proper), and took 57 s for 20 imputations of 20,000 encounters, where this takes
a few seconds.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.linalg import cho_factor, cho_solve, solve_triangular

from ..errors import ArgumentError, ContractError

__all__ = ["MIN_STRATUM", "ROUNDS", "impute_ratings"]

#: Rounds of the chained equations per imputation. van Buuren (*Flexible Imputation of
#: Missing Data*, 2nd ed., §6.5.2) finds 5 to 20 enough, and R's mice runs 5; 10 leaves
#: room for ratings with much missing.
ROUNDS = 10
#: The ridge added to the diagonal of each imputation model's cross-product, relative to
#: it (as mice's ``ridge``): keeps a nearly collinear model solvable, changes nothing else.
_RIDGE = 1e-5
#: Suffix of the column holding a rating's value at the patient's previous session.
_LAG_SUFFIX = "@previous"
#: The indicator of a patient's first session (no previous rating).
_FIRST = "first_session"
#: Fewest encounters of a treatment imputed on its own (several per imputation-model
#: term); with fewer, every treatment is imputed together.
MIN_STRATUM = 200


def _previous_ratings(rows: pd.DataFrame, ratings: list[str]) -> pd.DataFrame:
    """Each rating at the patient's previous session, in ``rows``' order.

    The previous session is the patient's row with the next lower ``session_number``
    (a skipped session number is skipped over). The value is NaN at a patient's first
    session and where the previous rating is itself missing.
    """
    frame = rows[["patient_id", "session_number", *ratings]].reset_index(drop=True)
    ordered = frame.sort_values(["patient_id", "session_number"], kind="stable")
    previous = ordered.groupby("patient_id", sort=False)[ratings].shift(1).sort_index()
    return previous.rename(columns=lambda rating: f"{rating}{_LAG_SUFFIX}")


def _imputation_design(
    rows: pd.DataFrame,
    *,
    ratings: list[str],
    target: str,
    treatments: list[str],
    covariates: list[str],
) -> pd.DataFrame:
    """The imputation model's columns: the ratings first, then their predictors.

    The columns are, in order: the ratings (with their missing cells); the outcome; an
    indicator of every treatment but the first; the outcome times each of these
    indicators (so that each treatment's rating–outcome association can differ, as in
    the analysis); the session number; each rating at the patient's previous session
    (see :func:`_previous_ratings`); and an indicator of every level but the first of
    each covariate. The index is ``0 .. len(rows) - 1``.
    """
    y = rows[target].to_numpy(dtype=float)
    treatment = rows["treatment"].astype(str).to_numpy()
    columns: dict[str, np.ndarray] = {
        r: rows[r].to_numpy(dtype=float, na_value=np.nan) for r in ratings
    }
    columns[target] = y
    indicator = {t: (treatment == t).astype(float) for t in treatments[1:]}
    columns.update({f"treatment={t}": value for t, value in indicator.items()})
    columns.update({f"{target}*treatment={t}": y * value for t, value in indicator.items()})
    columns["session_number"] = rows["session_number"].to_numpy(dtype=float)
    previous = _previous_ratings(rows, ratings)
    columns.update({name: previous[name].to_numpy() for name in previous.columns})
    columns[_FIRST] = (_previous_row(rows) < 0).astype(float)
    for covariate in covariates:
        values = rows[covariate].astype(str).to_numpy()
        for level in sorted(set(values))[1:]:
            columns[f"{covariate}={level}"] = (values == level).astype(float)
    return pd.DataFrame(columns)


def _check_rows(rows: pd.DataFrame, ratings: list[str], treatments: list[str]) -> None:
    """Refuse treatments not in ``treatments`` and a rating with no observed value."""
    unknown = sorted(set(rows["treatment"].astype(str)) - set(treatments))
    if unknown:
        raise ContractError(
            f"the rows hold treatment(s) {unknown} that are not among {treatments}; "
            "pass every treatment of the rows"
        )
    empty = [r for r in ratings if rows[r].isna().all()]
    if empty:
        raise ContractError(
            f"the rating(s) {empty} are missing in every row, so nothing can be imputed "
            "from them; leave them out of the analysis"
        )


def _previous_row(rows: pd.DataFrame) -> np.ndarray:
    """For each row (by position), the position of the patient's previous session's row;
    -1 at a first session."""
    frame = pd.DataFrame(
        {"patient_id": rows["patient_id"].to_numpy(), "session": rows["session_number"].to_numpy()}
    )
    ordered = frame.sort_values(["patient_id", "session"], kind="stable")
    position = ordered.index.to_numpy()
    same = ordered["patient_id"].to_numpy()[1:] == ordered["patient_id"].to_numpy()[:-1]
    previous = np.full(len(rows), -1)
    previous[position[1:][same]] = position[:-1][same]
    return previous


def _posterior_draw(
    gram: np.ndarray, cross: np.ndarray, yy: float, n: int, rng: np.random.Generator
) -> tuple[np.ndarray, float]:
    """Coefficients and residual SD of a linear regression drawn from their posterior
    (flat prior), from its cross-products (``gram = A'A``, ``cross = A'y``, ``yy = y'y``, ``n``
    rows): sigma^2 = RSS / chi^2(n - p), beta ~ N(beta_hat, sigma^2 (A'A)^-1)."""
    ridged = gram.copy()
    ridged[np.diag_indices_from(ridged)] *= 1 + _RIDGE
    factor = cho_factor(ridged, lower=False, check_finite=False)
    beta_hat = cho_solve(factor, cross, check_finite=False)
    rss = max(yy - 2 * beta_hat @ cross + beta_hat @ gram @ beta_hat, 0.0)
    sigma = float(np.sqrt(rss / rng.chisquare(max(n - len(cross), 1))))
    # (A'A)^-1 = U^-1 U^-T for A'A = U'U: U^-1 z has that covariance
    draw = solve_triangular(factor[0], rng.standard_normal(len(cross)), check_finite=False)
    beta = beta_hat + sigma * draw
    return beta, sigma


def _chain(
    design: pd.DataFrame,
    *,
    ratings: list[str],
    previous_row: np.ndarray,
    scale: tuple[float, float],
    rng: np.random.Generator,
) -> np.ndarray:
    """One imputation: :data:`ROUNDS` rounds of the chained equations over ``design``
    (its first columns the ratings, with NaN where missing); the completed matrix.

    Each draw needs the cross-products of the observed rows of one rating: the
    cross-products of every row (kept up to date as columns change) less those of the
    rows where it is missing (a few), rather than a pass over every row."""
    n_ratings = len(ratings)
    missing = design.iloc[:, :n_ratings].isna().to_numpy()
    # column 0 the intercept, column 1 + j design column j
    W = np.column_stack([np.ones(len(design)), design.to_numpy(dtype=float)])
    means = np.nanmean(W[:, 1 : 1 + n_ratings], axis=0)
    lag = {j: 1 + design.columns.get_loc(f"{r}{_LAG_SUFFIX}") for j, r in enumerate(ratings)}
    has_previous = previous_row >= 0
    source = np.where(has_previous, previous_row, 0)

    def refresh(j: int) -> None:  # the passive previous-session rating
        W[:, lag[j]] = np.where(has_previous, W[source, 1 + j], means[j])

    for j in range(n_ratings):
        W[missing[:, j], 1 + j] = means[j]
        refresh(j)
    gram = W.T @ W
    todo = [j for j in range(n_ratings) if missing[:, j].any()]
    for _ in range(ROUNDS):
        for j in todo:
            column, rows = 1 + j, missing[:, j]
            kept = np.r_[0:column, column + 1 : W.shape[1]]
            unseen = W[rows]
            observed = gram - unseen.T @ unseen
            beta, sigma = _posterior_draw(
                observed[np.ix_(kept, kept)],
                observed[kept, column],
                float(observed[column, column]),
                int((~rows).sum()),
                rng,
            )
            drawn = unseen[:, kept] @ beta + sigma * rng.standard_normal(int(rows.sum()))
            W[rows, column] = np.clip(drawn, *scale)
            refresh(j)
            for changed in (column, lag[j]):  # their cross-products with every column
                gram[:, changed] = W.T @ W[:, changed]
                gram[changed, :] = gram[:, changed]
    return W[:, 1:]


def _strata(
    rows: pd.DataFrame, ratings: list[str], treatments: list[str], missing: np.ndarray
) -> list[tuple[np.ndarray, list[str]]] | None:
    """Each treatment's row positions (and the treatment, as a list), or None when some
    treatment cannot be imputed on its own (see :func:`impute_ratings`)."""
    treatment = rows["treatment"].astype(str).to_numpy()
    strata = []
    for t in treatments:
        positions = np.flatnonzero(treatment == t)
        if not len(positions):
            continue
        observed = ~missing[positions]
        lacking = missing[positions].any(axis=0) & ~observed.any(axis=0)
        if len(positions) < MIN_STRATUM or lacking.any():
            return None
        strata.append((positions, [t]))
    return strata


def impute_ratings(
    rows: pd.DataFrame,
    *,
    ratings: list[str],
    target: str,
    treatments: list[str],
    covariates: list[str],
    scale: tuple[float, float],
    imputations: int,
    seed: int,
    by_treatment: bool = True,
) -> list[pd.DataFrame]:
    """Multiple imputations of the missing ratings, by chained equations.

        Parameters
        ----------
        rows : pandas.DataFrame
            The encounters: ``patient_id``, ``session_number`` (int), ``treatment``, the
            ``ratings`` (NaN where missing), the ``target`` and the ``covariates``. Rows may
            come in any order; a patient's previous session is found by ``session_number``.
        ratings : list of str
            The rating columns to impute.
        target : str
            The binary outcome (0/1, never missing).
        treatments : list of str
            Every treatment of ``rows``, in order; the first is the reference.
        covariates : list of str
            Categorical covariates (never missing); may be empty.
        scale : (float, float)
            The rating scale's minimum and maximum: imputed ratings are drawn inside it.
        imputations : int
            How many completed tables to return, at least 1.
        seed : int
            Imputation ``k`` (from 0) uses the random state ``seed + k``.

        Returns
        -------
        list of pandas.DataFrame
            ``imputations`` copies of ``rows`` (same index, columns and order) in which only
            the missing rating cells are filled, with continuous values (not rounded).
    Where no rating is missing the copies equal
            ``rows`` and nothing is fitted.

        Raises
        ------
        ArgumentError
            ``imputations`` is below 1, or ``scale`` is not (min, max) with min < max.
        ContractError
            ``rows`` hold a treatment not in ``treatments``, or a rating is missing in every
            row.

        Notes
        -----
        The imputation model of each rating is a normal linear regression on the outcome,
        the treatment indicators, the outcome × treatment products (see the module's
        docstring), the session number, the other ratings, every rating at the patient's
        previous session (passive: the completed values, refreshed after every draw), a
        first-session indicator and the covariates' indicators. Each imputation is its own
        chain of :data:`ROUNDS` rounds with the coefficients and the residual variance drawn
        from their posterior in every round; the values are clipped to the scale.

        Examples
        --------
        >>> import numpy as np
        >>> rows = pd.DataFrame({
        ...     "patient_id": ["a", "a", "b", "b", "c", "c"],
        ...     "session_number": [1, 2, 1, 2, 1, 2],
        ...     "treatment": ["cbt", "cbt", "drug", "drug", "cbt", "drug"],
        ...     "warmth": [5.0, np.nan, 3.0, 4.0, 6.0, 2.0],
        ...     "adherent": [1, 1, 0, 1, 1, 0],
        ... })
        >>> completed = impute_ratings(rows, ratings=["warmth"], target="adherent",
        ...     treatments=["cbt", "drug"], covariates=[], scale=(1, 7), imputations=3, seed=0)
        >>> len(completed), bool(completed[0]["warmth"].notna().all())
        (3, True)
        >>> bool(1 <= completed[0].loc[1, "warmth"] <= 7)
        True
        >>> completed[0].drop(index=1).equals(rows.drop(index=1))
        True
        >>> impute_ratings(rows, ratings=["warmth"], target="adherent", treatments=["cbt"],
        ...     covariates=[], scale=(1, 7), imputations=3, seed=0)
        Traceback (most recent call last):
        ...
        engagekit.errors.ContractError: the rows hold treatment(s) ['drug'] that are not among ['cbt']; pass every treatment of the rows
    """  # noqa: E501
    low, high = scale
    if imputations < 1:
        raise ArgumentError(f"imputations must be at least 1 (found {imputations})")
    if not low < high:
        raise ArgumentError(f"scale must be (min, max) with min < max (found {scale})")
    _check_rows(rows, ratings, treatments)
    missing = rows[ratings].isna().to_numpy()
    if not missing.any():
        return [rows.copy() for _ in range(imputations)]

    strata = _strata(rows, ratings, treatments, missing) if by_treatment else None
    if strata is None:  # one model for every treatment, with the outcome x treatment terms
        strata = [(np.arange(len(rows)), treatments)]
    models = [
        (
            positions,
            _imputation_design(
                rows.iloc[positions],
                ratings=ratings,
                target=target,
                treatments=kept,
                covariates=covariates,
            ),
            _previous_row(rows.iloc[positions]),
        )
        for positions, kept in strata
    ]
    completed = []
    for k in range(imputations):
        rng = np.random.default_rng(seed + k)
        filled = np.full((len(rows), len(ratings)), np.nan)
        for positions, design, previous_row in models:
            chain = _chain(
                design, ratings=ratings, previous_row=previous_row, scale=(low, high), rng=rng
            )
            filled[positions] = chain[:, : len(ratings)]
        copy = rows.copy()
        for j, rating in enumerate(ratings):
            if missing[:, j].any():
                values = rows[rating].to_numpy(dtype=float, na_value=np.nan, copy=True)
                values[missing[:, j]] = filled[missing[:, j], j]
                copy[rating] = values
        completed.append(copy)
    return completed
