"""The flags section: the rule and its operating point from the manifest, and the share
of the report's encounters it flags beside the share it promises."""

from __future__ import annotations

import math

import numpy as np
import pytest

from engagekit.flags import FlagRule
from engagekit.report._compute import flag_shares
from engagekit.report._sections import flags

TARGETS = ("adherent", "attended_next")


@pytest.mark.parametrize("target", TARGETS)
def test_rule_and_operating_point_come_from_the_manifest(
    findings, model_of, loaded, written, target
):
    config = loaded[2]
    view = flags.build(model_of(target).manifest, findings[target].flag_shares, config)
    rule = written[target][0]["flag_rule"]
    point = rule["operating_point"]
    assert f"flagged high at a risk of {rule['threshold']:.3f} or more" in view.sentence
    assert view.operating_points.rows[0][:6] == (
        "high",
        f"{point['sensitivity']:.2f}",
        f"{point['specificity']:.2f}",
        f"{point['ppv']:.2f}",
        f"{point['flags_per_100_encounters']:.1f}",
        f"{point['flags_per_100_patients']:.1f}",
    )
    assert (view.n_encounters, view.n_flagged) == (
        f"{point['n_encounters']:,}",
        f"{point['n_flagged']:,}",
    )
    assert "flagged encounters per 100 distinct patients" in view.definitions


@pytest.mark.parametrize("target", TARGETS)
def test_the_promised_and_the_measured_share_side_by_side(findings, model_of, loaded, target):
    encounters, _, config = loaded
    # the models' rule is the default, "the top 10%": of the report's encounters, high
    # at the 10% highest risks and high or medium at the 20% (ties at a cut included)
    risk = 1.0 - model_of(target).model.predict_proba(encounters)
    ranked, n = np.sort(risk)[::-1], len(risk)
    high = int(np.sum(risk >= ranked[math.ceil(0.1 * n) - 1]))
    flagged = int(np.sum(risk >= ranked[math.ceil(0.2 * n) - 1]))
    view = flags.build(model_of(target).manifest, findings[target].flag_shares, config)
    assert view.shares.rows[0][:4] == ("high", "10.0%", f"{100 * high / n:.1f}%", f"{high:,}")
    assert view.shares.rows[1][:4] == (
        "high or medium",
        "20.0%",
        f"{100 * flagged / n:.1f}%",
        f"{flagged:,}",
    )
    assert view.shares_note.startswith(
        f"The rule promises the top 10% of the encounters scored; measured on this report's "
        f"{n:,} encounters"
    )
    assert "share of the encounters being scored" in view.sentence


def test_a_rule_the_encounters_cannot_take_says_why(findings, model_of, loaded):
    encounters, _, config = loaded
    manifest = model_of("adherent").manifest
    rule = FlagRule.from_dict(
        {**manifest.flag_rule.to_dict(), "rule": "per_practitioner", "value": 2}
    )
    shares = flag_shares(
        rule, findings["adherent"].explained.risk, encounters.drop(columns="practitioner_id")
    )
    view = flags.build(manifest, shares, config)
    assert view.shares is None
    assert view.shares_note.startswith("the rule cannot be applied to these encounters: ")
    assert "practitioner_id" in view.shares_note
