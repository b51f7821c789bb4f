"""Which encounters' flags were acted on: the rule that splits a window's patients into
those the service may have changed the outcome of and those it did not.

A clinician's review (a ``flag_reviews`` row with status ``reviewed``) acts on an
encounter when

- it names that encounter (``encounter_id``): the flag reviewed is this encounter's; or
- it names the encounter's patient and was made on or after the encounter's date and
  before the patient's next scored encounter: the contact fell in the interval whose
  attendance is the encounter's outcome, so it may have changed it.

Every ``reviewed`` row counts, whatever outcome it records ("no action needed" included):
the review itself may have led to a contact, and leaving out too many encounters costs
precision while leaving in one whose outcome was changed biases the figures. A
``do_not_contact`` row is not an action. A review made before the encounter acts on an
earlier interval, not on this one.

Examples
--------
>>> import pandas as pd
>>> scores = pd.DataFrame({
...     "encounter_id": ["e1", "e2", "e3", "f1"],
...     "patient_id": ["a", "a", "a", "b"],
...     "encounter_date": pd.to_datetime(
...         ["2025-01-01", "2025-02-01", "2025-03-01", "2025-01-01"]),
... })
>>> reviews = pd.DataFrame({
...     "patient_id": ["a", "b"], "encounter_id": ["e3", "f1"],
...     "status": ["reviewed", "do_not_contact"],
...     "reviewed_at": ["2025-02-10T09:00:00+00:00", "2025-01-02T09:00:00+00:00"],
... })
>>> acted_on(scores, reviews).tolist()
[False, True, True, False]
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["REVIEW_COLUMNS", "acted_on"]

#: The columns of ``flag_reviews`` the rule reads.
REVIEW_COLUMNS = ("patient_id", "encounter_id", "status", "reviewed_at")


def acted_on(scores: pd.DataFrame, reviews: pd.DataFrame) -> pd.Series:
    """Whether each scored encounter's flag was acted on (the module's rule).

    Parameters
    ----------
    scores : DataFrame
        One row per encounter: ``encounter_id``, ``patient_id``, ``encounter_date``.
    reviews : DataFrame
        The ``flag_reviews`` rows: at least :data:`REVIEW_COLUMNS`; ``reviewed_at`` is
        ISO 8601 text (UTC), as engagekit stores it.

    Returns
    -------
    Series of bool, aligned with ``scores``

    Raises
    ------
    ValueError
        If a column the rule reads is absent.
    """
    missing = [c for c in REVIEW_COLUMNS if c not in reviews.columns]
    missing += [
        c for c in ("encounter_id", "patient_id", "encounter_date") if c not in scores.columns
    ]
    if missing:
        raise ValueError(
            f"the acted-on rule needs the column(s) {', '.join(map(repr, missing))}; "
            "they are absent"
        )
    reviewed = reviews.loc[reviews["status"] == "reviewed"]
    by_encounter = scores["encounter_id"].astype(str).isin(reviewed["encounter_id"].astype(str))
    if reviewed.empty:
        return pd.Series(by_encounter.to_numpy(), index=scores.index)
    dates = pd.to_datetime(scores["encounter_date"]).dt.normalize()
    encounters = pd.DataFrame(
        {
            "row": np.arange(len(scores)),
            "patient_id": scores["patient_id"].astype(str),
            "date": dates.to_numpy(),
        }
    ).sort_values(["patient_id", "date"], kind="stable")
    encounters["next_date"] = encounters.groupby("patient_id")["date"].shift(-1)
    review_days = pd.DataFrame(
        {
            "patient_id": reviewed["patient_id"].astype(str).to_numpy(),
            "reviewed_on": pd.to_datetime(
                reviewed["reviewed_at"].astype(str).str[:10], format="%Y-%m-%d"
            ).to_numpy(),
        }
    )
    pairs = encounters.merge(review_days, on="patient_id")
    within = (pairs["reviewed_on"] >= pairs["date"]) & (
        pairs["next_date"].isna() | (pairs["reviewed_on"] < pairs["next_date"])
    )
    by_patient = np.zeros(len(scores), dtype=bool)
    by_patient[pairs.loc[within, "row"].to_numpy()] = True
    return pd.Series(by_encounter.to_numpy() | by_patient, index=scores.index)
