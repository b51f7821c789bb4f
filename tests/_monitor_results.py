"""A monitoring result with known alerts, for the tests of what the service page and the
report make of one (the monitoring itself is tested in test_monitor.py).

A simulated service of 2025, its scores calibrated (each outcome drawn from its score)
but for three things: in :data:`SILENT_MONTH` no patient adheres (the
observed-minus-expected rate far below its limits, in both groups), in
:data:`DRIFTED_MONTH` the empathy ratings are recorded two points lower (a PSI alert),
and patients of online CBT adhere 0.25 more often than scored (a miscalibrated
subgroup). A tenth of the encounters from July on were reviewed (acted on), their
patients contacted and adhering.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from engagekit import simulate_encounters
from engagekit.monitoring import MonitorResult, monitor

__all__ = ["DRIFTED_MONTH", "SILENT_MONTH", "monitor_result_with_alerts"]

SILENT_MONTH = "2025-05"
DRIFTED_MONTH = "2025-09"
RATED = ("empathy", "active_listening")


def monitor_result_with_alerts(n_patients: int = 800, seed: int = 3) -> MonitorResult:
    """The result (monthly windows, 50 bootstrap replicates) of the module's service."""
    encounters = simulate_encounters(n_patients, seed=seed).encounters
    encounters = encounters[encounters["encounter_date"] < "2026-01-01"].reset_index(drop=True)
    months = encounters["encounter_date"].dt.strftime("%Y-%m")
    rng = np.random.default_rng(seed)
    p = rng.uniform(0.3, 0.9, size=len(encounters))
    scores = encounters.assign(
        p_adherent=p, **{f"rating_{name}": encounters[name] for name in RATED}
    )
    # the PSI is measured against every rating as recorded, before the drift
    reference = scores[[f"rating_{name}" for name in RATED]].copy()
    drifted = months == DRIFTED_MONTH
    scores.loc[drifted, "rating_empathy"] = (scores.loc[drifted, "rating_empathy"] - 2).clip(
        lower=1
    )
    chance = np.where(encounters["treatment"] == "cbt_online", np.minimum(p + 0.25, 0.98), p)
    adherent = (rng.uniform(size=len(encounters)) < chance).astype(float)
    adherent[(months == SILENT_MONTH).to_numpy()] = 0.0
    reviewed = (months >= "2025-07").to_numpy() & (rng.uniform(size=len(encounters)) < 0.1)
    adherent[reviewed] = 1.0
    known = encounters["adherent"].notna().to_numpy()
    outcomes = encounters.assign(adherent=pd.array(np.where(known, adherent, np.nan)))
    reviews = pd.DataFrame(
        {
            "patient_id": encounters.loc[reviewed, "patient_id"],
            "encounter_id": encounters.loc[reviewed, "encounter_id"],
            "status": "reviewed",
            "reviewed_at": encounters.loc[reviewed, "encounter_date"].dt.strftime(
                "%Y-%m-%dT10:00:00.000000+00:00"
            ),
        }
    )
    return monitor(
        scores,
        outcomes,
        reviews,
        target="adherent",
        window="month",
        reference=reference,
        n_boot=50,
        seed=0,
    )
