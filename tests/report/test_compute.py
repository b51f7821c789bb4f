"""What the report computes before it writes: risks as scoring computes them, and notes
for what could not be computed."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from engagekit.report._compute import AnalysisFindings, cross_treatment_analysis

TARGETS = ("adherent", "attended_next")


@pytest.mark.parametrize("target", TARGETS)
def test_the_risk_is_one_minus_the_models_probability(findings, model_of, loaded, target):
    encounters = loaded[0]
    risk = findings[target].explained.risk
    np.testing.assert_allclose(
        risk, 1 - model_of(target).model.predict_proba(encounters), atol=1e-9
    )


def test_notes_say_what_could_not_be_computed(findings):
    computed = findings["adherent"]
    assert computed.notes == {}
    explained = replace(computed.explained, rank_agreement=[], rank_agreement_note="one treatment")
    forecast = replace(computed.forecast, note="nothing pending")
    assert replace(computed, explained=explained, forecast=forecast).notes == {
        "rank_agreement:adherent": "one treatment",
        "forecast:adherent": "nothing pending",
    }


def test_an_analysis_that_fails_is_a_note(loaded):
    encounters, _, config = loaded
    one_outcome = encounters.assign(adherent=encounters["adherent"].fillna(1) * 0 + 1)
    found = cross_treatment_analysis(one_outcome, "adherent", config)
    assert found.result is None and found.target == "adherent"
    assert found == AnalysisFindings("adherent", None, found.note)
    assert "has adherent = 1, so its effects cannot be estimated" in found.note
