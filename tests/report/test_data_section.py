"""The data section: counts per treatment and missing ratings, from the data itself."""

from __future__ import annotations

import pandas as pd
import pytest

from engagekit.config import config_from_dict
from engagekit.report._sections import data
from engagekit.summary import summarize_encounters


@pytest.fixture(scope="module")
def table(service) -> pd.DataFrame:
    """The encounters as the CSV holds them, counted here with pandas alone."""
    return pd.read_csv(service / "encounters.csv")


@pytest.fixture(scope="module")
def view(loaded) -> data.DataView:
    encounters, _, config = loaded
    return data.build(encounters, summarize_encounters(encounters, config), config, "e.csv")


def test_counts_patients_and_encounters(view, table):
    assert view.n_patients == f"{table['patient_id'].nunique():,}"
    assert view.n_encounters == f"{len(table):,}"
    dates = pd.to_datetime(table["encounter_date"])
    assert view.period == (dates.min().date().isoformat(), dates.max().date().isoformat())
    assert view.source == "e.csv"
    assert len(view.sha256) == 64


def test_each_treatment_row_counts_its_patients_and_encounters(view, table):
    rows = {row.cells[0]: row for row in view.by_treatment}
    online = table[table["treatment"] == "cbt_online"]
    assert rows["Online CBT"].cells[1:3] == (
        f"{online['patient_id'].nunique():,}",
        f"{len(online):,}",
    )
    assert not rows["Online CBT"].total
    everyone = rows["All treatments"]
    assert everyone.total and everyone.cells[1:3] == (view.n_patients, view.n_encounters)
    assert all(len(row.cells) == len(view.columns) for row in view.by_treatment)


def test_missing_ratings_are_counted_per_quality(view, table):
    missing = {label: (n, share) for label, n, share in view.missing}
    n = table["empathy"].isna().sum()
    assert missing["Empathy and positive regard"] == (f"{n:,}", f"{100 * n / len(table):.1f}%")


def test_outcome_columns_speak_the_configs_words(loaded):
    encounters, _, config = loaded
    blocks = config.model_dump(mode="json")
    for outcome in blocks["outcomes"]:
        if outcome["name"] == "adherent":
            outcome |= {"label": "Keeping to the plan", "bad_outcome": "did not keep to the plan"}
    for treatment in blocks["treatments"]:
        if treatment["name"] == "listening_visits":
            treatment["label"] = "Health-visitor listening"
    relabelled = config_from_dict({k: blocks[k] for k in ("outcomes", "treatments")})
    view = data.build(encounters, summarize_encounters(encounters, relabelled), relabelled)
    assert "Keeping to the plan (encounters)" in view.columns
    assert "did not attend the next session (encounters)" in view.columns
    assert "Health-visitor listening" in [row.cells[0] for row in view.by_treatment]
    assert view.adherent_header == "Keeping to the plan"
