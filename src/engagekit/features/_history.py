"""A patient's rating history up to each session, computed for all patients at once.

Every function here takes arrays laid out in **patient order**: the rows of each patient
are contiguous and in increasing ``session_number``, as :func:`patient_session_order`
arranges them. Ratings are 2-D arrays of shape ``(n_attributes, n_rows)`` with ``NaN``
where a rating is missing. The value for a row uses only that row and the rows before it
of the same patient, so a feature of session ``t`` cannot see sessions after ``t``: the
features are leakage-free by construction, not by filtering.

The running statistics are cumulative operations within groups (``groupby().cumsum()``
and ``cummin()``), each a single pass over the rows, with no Python loop over patients.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pandas as pd

from ..errors import ContractError

__all__ = [
    "PatientOrder",
    "change_since_previous",
    "patient_session_order",
    "previous_session",
    "running_mean",
    "running_min",
]


class PatientOrder(NamedTuple):
    """How to put encounter rows in patient order and back.

    Attributes
    ----------
    order : numpy.ndarray or None
        Row positions of the input in patient order (``rows[order]`` is sorted by patient
        then session), or ``None`` when the input already is in patient order.
    inverse : numpy.ndarray or None
        The permutation that undoes ``order``, or ``None`` with it.
    patient : numpy.ndarray
        Integer code of each row's patient, in patient order (non-decreasing).
    first : numpy.ndarray
        True where a row is its patient's first (lowest-numbered) session, in patient
        order.
    """

    order: np.ndarray | None
    inverse: np.ndarray | None
    patient: np.ndarray
    first: np.ndarray

    def to_patient_order(self, values: np.ndarray) -> np.ndarray:
        """``values`` (last axis along the input rows) rearranged into patient order."""
        # np.take is several times faster than fancy indexing along the last axis
        return values if self.order is None else np.take(values, self.order, axis=-1)

    def to_input_order(self, values: np.ndarray) -> np.ndarray:
        """``values`` (last axis in patient order) put back in the input's row order."""
        return values if self.inverse is None else np.take(values, self.inverse, axis=-1)


def patient_session_order(patient_id: pd.Series, session_number: pd.Series) -> PatientOrder:
    """Find the order that groups rows by patient and sorts each patient by session.

    Parameters
    ----------
    patient_id : pandas.Series
        The patient of each row.
    session_number : pandas.Series
        The session number of each row (whole numbers >= 1).

    Returns
    -------
    PatientOrder

    Raises
    ------
    ContractError
        A ``patient_id`` or ``session_number`` is missing, a session number is below 1,
        or a patient has the same session number twice: "the previous session" would
        not be defined. All such problems are reported in one message.

    Examples
    --------
    >>> import pandas as pd
    >>> po = patient_session_order(pd.Series(["b", "a", "b"]), pd.Series([2, 1, 1]))
    >>> po.order.tolist(), po.first.tolist()
    ([2, 0, 1], [True, False, True])
    >>> patient_session_order(pd.Series(["a", "a"]), pd.Series([1, 1]))
    Traceback (most recent call last):
    ...
    engagekit.errors.ContractError: cannot order the encounters by patient and session: \
1 row(s) repeat a session number of their patient (first at row 2, session 1); \
validate the table with validate_encounters first
    """
    codes, _ = pd.factorize(patient_id, use_na_sentinel=True)
    session = session_number.to_numpy(dtype="float64", na_value=np.nan)
    problems = []
    if (codes < 0).any():
        problems.append(f"{int((codes < 0).sum())} row(s) have no 'patient_id'")
    if np.isnan(session).any():
        problems.append(f"{int(np.isnan(session).sum())} row(s) have no 'session_number'")
    elif (session < 1).any():
        problems.append(f"{int((session < 1).sum())} row(s) have a 'session_number' below 1")
    if problems:
        raise ContractError(_order_message(problems))

    order = inverse = None
    # factorize numbers patients by first appearance, so a table already grouped by
    # patient (the usual case) has non-decreasing codes and needs no sort
    same = codes[1:] == codes[:-1]
    if not (np.all(codes[1:] >= codes[:-1]) and np.all(session[1:][same] > session[:-1][same])):
        order = _sort_by_patient_and_session(codes, session)
        inverse = np.empty_like(order)
        inverse[order] = np.arange(order.size)
        codes, session = codes[order], session[order]
        same = codes[1:] == codes[:-1]
    repeated = np.flatnonzero(same & (session[1:] == session[:-1])) + 1
    if repeated.size:
        at = repeated[0] if order is None else order[repeated[0]]
        raise ContractError(
            _order_message(
                [
                    f"{repeated.size} row(s) repeat a session number of their patient "
                    f"(first at row {at + 1}, session {int(session_number.iloc[at])})"
                ]
            )
        )
    first = np.ones(codes.size, dtype=bool)
    first[1:] = ~same
    return PatientOrder(order=order, inverse=inverse, patient=codes, first=first)


def _sort_by_patient_and_session(codes: np.ndarray, session: np.ndarray) -> np.ndarray:
    top = session.max(initial=1.0)
    whole = np.array_equal(session, np.floor(session))
    if whole and (codes.max(initial=0) + 1.0) * (top + 1.0) < 2.0**62:
        # one integer key sorts in about half the time of a two-key lexsort
        key = codes * np.int64(top + 1) + session.astype(np.int64)
        return np.argsort(key, kind="stable")
    return np.lexsort((session, codes))


def _order_message(problems: list[str]) -> str:
    return (
        "cannot order the encounters by patient and session: "
        + "; ".join(problems)
        + "; validate the table with validate_encounters first"
    )


def previous_session(values: np.ndarray, first: np.ndarray) -> np.ndarray:
    """Each row's value at the patient's previous session; NaN at the first session.

    Parameters
    ----------
    values : numpy.ndarray of shape (n_attributes, n_rows)
        Ratings in patient order, NaN where missing.
    first : numpy.ndarray of bool, shape (n_rows,)
        True at each patient's first session.

    Returns
    -------
    numpy.ndarray of shape (n_attributes, n_rows)
    """
    previous = np.empty_like(values)
    previous[:, 1:] = values[:, :-1]
    previous[:, first] = np.nan
    return previous


def change_since_previous(values: np.ndarray, previous: np.ndarray) -> np.ndarray:
    """``values - previous`` where both are recorded, else 0.

    A missing rating carries no information about change, and 0 is the value that lets a
    linear model add up the changes of the recorded ratings only (as the simulator's
    ``rating_change`` term does).

    Examples
    --------
    >>> import numpy as np
    >>> change_since_previous(np.array([[4.0, np.nan, 2.0]]), np.array([[3.0, 1.0, np.nan]]))
    array([[1., 0., 0.]])
    """
    change = values - previous
    change[np.isnan(change)] = 0.0
    return change


def running_mean(values: np.ndarray, patient: np.ndarray) -> np.ndarray:
    """Mean of each patient's recorded values up to and including each row.

    Parameters
    ----------
    values : numpy.ndarray of shape (n_attributes, n_rows)
        Ratings in patient order, NaN where missing.
    patient : numpy.ndarray of shape (n_rows,)
        Patient code of each row, in patient order.

    Returns
    -------
    numpy.ndarray of shape (n_attributes, n_rows)
        NaN where the patient has no recorded value yet.

    Examples
    --------
    >>> import numpy as np
    >>> running_mean(np.array([[np.nan, 4.0, 2.0, 5.0]]), np.array([0, 0, 0, 1]))
    array([[nan,  4.,  3.,  5.]])
    """
    recorded = ~np.isnan(values)
    totals = _cumulative(np.where(recorded, values, 0.0), patient, "cumsum")
    counts = _cumulative(recorded.astype("float64"), patient, "cumsum")
    mean = np.full_like(totals, np.nan)
    np.divide(totals, counts, out=mean, where=counts > 0)
    return mean


def running_min(values: np.ndarray, patient: np.ndarray) -> np.ndarray:
    """Lowest of each patient's recorded values up to and including each row.

    Parameters
    ----------
    values : numpy.ndarray of shape (n_attributes, n_rows)
        Ratings in patient order, NaN where missing.
    patient : numpy.ndarray of shape (n_rows,)
        Patient code of each row, in patient order.

    Returns
    -------
    numpy.ndarray of shape (n_attributes, n_rows)
        NaN where the patient has no recorded value yet.

    Examples
    --------
    >>> import numpy as np
    >>> running_min(np.array([[np.nan, 4.0, np.nan, 2.0]]), np.array([0, 0, 0, 0]))
    array([[nan,  4.,  4.,  2.]])
    """
    # A missing value must not reset the minimum, as NaN does in cummin, so it enters
    # as +inf, which never wins; +inf left at the end means nothing recorded yet.
    lowest = _cumulative(np.where(np.isnan(values), np.inf, values), patient, "cummin")
    return np.where(np.isinf(lowest), np.nan, lowest)


def _cumulative(values: np.ndarray, patient: np.ndarray, how: str) -> np.ndarray:
    """A cumulative operation within each patient, over rows in patient order.

    pandas' grouped cumulative operations run one pass over the rows and, for a row,
    combine only the rows before it of the same patient (cumsum with compensated
    summation), so a value never depends on other patients or on later sessions.
    """
    # (n_attributes, n_rows) -> a frame with one column per attribute, without a copy
    frame = pd.DataFrame(values.T, copy=False)
    result = getattr(frame.groupby(patient, sort=False), how)()
    return result.to_numpy(dtype="float64").T
