"""The forecast section: the expected count of patients with a session pending."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from engagekit.config import config_from_dict
from engagekit.forecast import forecast_dropout
from engagekit.report._compute import dropout_forecast
from engagekit.report._sections import forecast

TARGETS = ("adherent", "attended_next")


@pytest.mark.parametrize("target", TARGETS)
def test_the_total_is_the_expected_count_of_pending_patients(findings, model_of, loaded, target):
    encounters, _, config = loaded
    model = model_of(target).model
    # each patient's latest session, when its outcome is still empty and a further
    # session was due (not the planned end of the course)
    latest = encounters.sort_values("session_number").groupby("patient_id").tail(1)
    pending = latest[latest[target].isna() & (latest["next_session_due"] == 1)]
    assert len(pending) > 0
    # scored with each patient's history, as in use: the whole table, then those rows
    p = pd.Series(model.predict_proba(encounters), index=encounters.index)
    expected = float(np.sum(1 - p[pending.index]))
    view = forecast.build(target, findings[target].forecast, config)
    assert view.total[:3] == ("All treatments", f"{len(pending):,}", f"{expected:.1f}")
    assert view.level == "90%" and view.by == "treatment" and view.note is None
    by_treatment = pending.groupby("treatment", observed=True).size()
    labels = {t.name: t.label for t in config.treatments}
    assert {row[0]: row[1] for row in view.rows} == {
        labels[t]: f"{n:,}" for t, n in by_treatment.items() if n
    }


def test_a_given_forecast_is_shown_as_given(loaded):
    _, _, config = loaded
    given = forecast_dropout(
        np.array([0.1, 0.2, 0.6]), pd.Series(["a", "a", "b"], name="site"), 0.8
    )
    shown = forecast.build("adherent", dropout_forecast(given, None, "adherent", None, 0.9), config)
    assert (shown.by, shown.level, shown.total) == ("site", "80%", None)
    assert [row[:3] for row in shown.rows] == [("a", "2", "0.3"), ("b", "1", "0.6")]


def test_nothing_pending_says_so(loaded):
    encounters, _, config = loaded
    done = encounters.assign(adherent=encounters["adherent"].fillna(1))
    found = dropout_forecast(None, done, "adherent", np.zeros(len(done)), 0.9)
    view = forecast.build("adherent", found, config)
    assert view.rows == () and view.total is None
    assert view.note == (
        "–: no patient's latest encounter has adherent still empty, so no session is "
        "pending to forecast"
    )


def test_the_heading_speaks_the_configs_words(findings, loaded):
    _, _, config = loaded
    blocks = config.model_dump(mode="json")
    for outcome in blocks["outcomes"]:
        if outcome["name"] == "adherent":
            outcome |= {"label": "Keeping to the plan", "bad_outcome": "did not keep to the plan"}
    relabelled = config_from_dict({k: blocks[k] for k in ("outcomes", "treatments")})
    view = forecast.build("adherent", findings["adherent"].forecast, relabelled)
    assert (view.label, view.bad_outcome) == ("Keeping to the plan", "did not keep to the plan")
