"""Describe an encounter table: who is in it, how long they stay, outcome and missing rates."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .config import Config, load_config

__all__ = ["EncounterSummary", "summarize_encounters"]


@dataclass(frozen=True)
class EncounterSummary:
    """Counts and rates of an encounter table.

    Attributes
    ----------
    n_patients, n_encounters : int
    by_treatment : pandas.DataFrame
        One row per configured treatment (and one ``all`` row): patients, encounters,
        sessions per patient (mean, median, max), the share of encounters after which
        the patient did not attend the next session (``not_attended_next``, among
        encounters where it is known), the share of patients whose last encounter was
        followed by a missed session (``dropped_out``), the adherence rate, and how many
        encounters had no outcome recorded.
    missing_ratings : pandas.DataFrame
        One row per attribute: encounters with that rating empty, and their share.
    """

    n_patients: int
    n_encounters: int
    by_treatment: pd.DataFrame
    missing_ratings: pd.DataFrame

    def to_dict(self) -> dict[str, Any]:
        def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
            clean = frame.astype(object).where(frame.notna(), None)
            return [
                {k: (v.item() if isinstance(v, np.generic) else v) for k, v in r.items()}
                for r in clean.to_dict(orient="records")
            ]

        return {
            "n_patients": self.n_patients,
            "n_encounters": self.n_encounters,
            "by_treatment": records(self.by_treatment),
            "missing_ratings": records(self.missing_ratings),
        }


def _block(frame: pd.DataFrame, label: str) -> dict[str, Any]:
    sessions = frame.groupby("patient_id", sort=False).size()
    row: dict[str, Any] = {
        "treatment": label,
        "patients": int(sessions.size),
        "encounters": len(frame),
        "sessions_mean": float(sessions.mean()) if sessions.size else np.nan,
        "sessions_median": float(sessions.median()) if sessions.size else np.nan,
        "sessions_max": int(sessions.max()) if sessions.size else 0,
    }
    if "attended_next" in frame.columns and "session_number" in frame.columns:
        # an episode that ends with a missed session is a dropout
        last = frame.sort_values("session_number").groupby("patient_id", sort=False).tail(1)
        ended_missed = (last["attended_next"] == 0).fillna(False)
        row["dropped_out"] = float(ended_missed.mean()) if len(last) else np.nan
    for outcome, rate_name, good in (
        ("attended_next", "not_attended_next", 0),
        ("adherent", "adherent", 1),
    ):
        if outcome not in frame.columns:
            continue
        known = frame[outcome].dropna()
        row[rate_name] = float((known == good).mean()) if len(known) else np.nan
        row[f"{outcome}_empty"] = int(frame[outcome].isna().sum())
    return row


def summarize_encounters(
    encounters: pd.DataFrame, config: Config | None = None
) -> EncounterSummary:
    """Summarise a valid, typed encounter table (see :func:`coerce_encounters`).

    Parameters
    ----------
    encounters : pandas.DataFrame
    config : Config, optional
        Supplies the treatments (all are listed, even with no encounters) and the
        attributes.

    Returns
    -------
    EncounterSummary

    Examples
    --------
    >>> import pandas as pd
    >>> from engagekit import summarize_encounters
    >>> table = pd.DataFrame({"patient_id": ["a", "a", "b"], "treatment": "cbt_online",
    ...                       "empathy": [4.0, None, 5.0],
    ...                       "attended_next": pd.array([1, None, 0], dtype="Int8")})
    >>> s = summarize_encounters(table)
    >>> s.n_patients, s.n_encounters
    (2, 3)
    >>> float(s.by_treatment.set_index("treatment").loc["cbt_online", "not_attended_next"])
    0.5
    """
    config = config if config is not None else load_config()
    rows = [_block(encounters[encounters["treatment"] == t], t) for t in config.treatment_names]
    rows.append(_block(encounters, "all"))
    by_treatment = pd.DataFrame(rows)
    missing = []
    for name in config.attribute_names:
        if name in encounters.columns:
            n_missing = int(encounters[name].isna().sum())
        else:
            n_missing = len(encounters)
        missing.append(
            {
                "attribute": name,
                "missing": n_missing,
                "share_missing": n_missing / len(encounters) if len(encounters) else np.nan,
            }
        )
    return EncounterSummary(
        n_patients=int(encounters["patient_id"].nunique()),
        n_encounters=len(encounters),
        by_treatment=by_treatment,
        missing_ratings=pd.DataFrame(missing),
    )
