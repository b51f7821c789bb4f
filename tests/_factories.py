"""Small, hand-checkable encounter tables for the tests of reading and validation.

The tables are built here, not by the simulator, so that the validation tests do not
depend on it: every cell is text, as a CSV export is read by
:func:`engagekit.read_encounters`, and missing cells are ``NaN``.
"""

from __future__ import annotations

import datetime as dt
import random
from pathlib import Path

import numpy as np
import pandas as pd

ATTRIBUTES = (
    "approachability",
    "empathy",
    "support",
    "active_listening",
    "decision_making",
    "self_kindness",
)
OUTCOMES = ("attended_next", "adherent")
TREATMENTS = (
    "antidepressants",
    "cbt_face_to_face",
    "cbt_online",
    "facilitated_physical_activity",
    "listening_visits",
    "usual_care",
)
COLUMNS = (
    "patient_id",
    "encounter_id",
    "session_number",
    "encounter_date",
    "treatment",
    "practitioner_id",
    "practitioner_role",
    *ATTRIBUTES,
    "age_band",
    "gender",
    "next_session_due",
    *OUTCOMES,
)
_ROLES = ("gp", "cbt_therapist", "psychologist", "health_visitor")
_AGE_BANDS = ("18-29", "30-39", "40-49", "50-59", "60+")
_GENDERS = ("female", "male", "non_binary")
_RATINGS = ("1", "2", "3", "3.5", "4", "4.5", "5")


def valid_encounter_rows(n_patients: int = 3, sessions: int = 3, seed: int = 0) -> pd.DataFrame:
    """A valid raw encounter table: ``n_patients`` patients with ``sessions`` each.

    Rows are ordered by patient, then session. Patient ``k`` (0-based) is ``"P{k+1:03d}"``
    and its session ``s`` is on row ``k * sessions + s`` (data rows count from 1) with
    encounter id ``"E{k+1:03d}-{s}"`` and date 2025-01-06 + ``k`` days + 7 days per
    session. Every value is a string; nothing is missing. The last session of a patient
    has ``attended_next`` "0" (a missed session), earlier ones "1"; ``next_session_due`` is
    "1" throughout.
    """
    rng = random.Random(seed)
    start = dt.date(2025, 1, 6)
    rows = []
    for k in range(n_patients):
        treatment = TREATMENTS[k % len(TREATMENTS)]
        role = rng.choice(_ROLES)
        practitioner = f"PR{rng.randint(1, 9)}"
        age_band, gender = rng.choice(_AGE_BANDS), rng.choice(_GENDERS)
        for s in range(1, sessions + 1):
            row = {
                "patient_id": f"P{k + 1:03d}",
                "encounter_id": f"E{k + 1:03d}-{s}",
                "session_number": str(s),
                "encounter_date": (start + dt.timedelta(days=k + 7 * (s - 1))).isoformat(),
                "treatment": treatment,
                "practitioner_id": practitioner,
                "practitioner_role": role,
                **{a: rng.choice(_RATINGS) for a in ATTRIBUTES},
                "age_band": age_band,
                "gender": gender,
                "next_session_due": "1",
                "attended_next": "1" if s < sessions else "0",
                "adherent": rng.choice(("0", "1")),
            }
            rows.append(row)
    return pd.DataFrame(rows, columns=list(COLUMNS), dtype=object)


def write_csv(frame: pd.DataFrame, path: Path, sep: str = ",") -> Path:
    """Write ``frame`` as a service would export it: no index, missing as empty cells."""
    frame.to_csv(path, index=False, sep=sep)
    return path


def read_raw_csv(path: Path) -> pd.DataFrame:
    """Read a CSV back with every cell as text exactly as written ('' for empty)."""
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def with_cell(frame: pd.DataFrame, row: int, column: str, value: object) -> pd.DataFrame:
    """A copy of ``frame`` with data row ``row`` (1-based) of ``column`` set to ``value``."""
    out = frame.copy()
    out.loc[row - 1, column] = np.nan if value is None else value
    return out


def model_with_flag_rule(encounters: pd.DataFrame, target: str, kind: str, config, seed: int):
    """``(model, rule)``: a model of ``target`` fitted on ``encounters`` and its at-risk
    flag rule (the top 10% of risk), chosen on the same encounters' recorded outcomes."""
    from engagekit.flags import choose_flag_rule
    from engagekit.models import fit_model

    model = fit_model(encounters, target, kind, config, seed=seed)
    known = encounters[target].notna().to_numpy()
    rule = choose_flag_rule(
        encounters.loc[known, target].astype(int).to_numpy(),
        model.predict_proba(encounters[known]),
        "top_percent",
        10,
    )
    return model, rule


def model_with_manifest(encounters: pd.DataFrame, target: str, kind: str, config, seed: int):
    """``(model, manifest)``: a model of ``target`` trained on ``encounters`` as
    ``engagekit train`` trains it (quickly: 2 folds, no bootstrap), with its at-risk flag
    rule (the top 10% of risk, chosen on the cross-validated predictions), and the
    manifest that train records (not yet stamped by saving)."""
    from engagekit.models import build_manifest, train_model

    trained = train_model(encounters, target, kind, config, n_splits=2, seed=seed, n_boot=0)
    return trained.model, build_manifest(trained, config, encounters, source="simulated")


def flat_encounter_rows(n_patients: int = 60) -> pd.DataFrame:
    """A valid raw table in which no predictor varies: one session per patient, the same
    treatment, ratings and covariates throughout, and a third of the patients missing
    their next session. A model can only guess the base rate, so it ranks patients no
    better than chance whatever the seed (cross-validated, each fold predicts its own
    training base rate, which puts the AUROC below 0.5)."""
    table = valid_encounter_rows(n_patients, 1)
    table[list(ATTRIBUTES)] = "4"
    table["treatment"], table["age_band"], table["gender"] = "cbt_online", "30-39", "female"
    table["attended_next"] = ["0" if k % 3 == 0 else "1" for k in range(n_patients)]
    return table
