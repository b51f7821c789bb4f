"""The explanations section: the method, the figures' inputs and the rank agreement."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest

from engagekit.report._sections import explanations

TARGETS = ("adherent", "attended_next")


@pytest.mark.parametrize(
    ("target", "method"),
    [("adherent", "exact linear SHAP"), ("attended_next", "exact path-dependent TreeSHAP")],
)
def test_the_method_and_the_explained_encounters(findings, loaded, target, method):
    encounters, _, config = loaded
    explained = findings[target].explained
    view = explanations.build(target, explained, encounters, config)
    assert view.method == method
    assert view.n == f"{len(encounters):,}"
    assert view.base_value == f"{explained.explanation.base_value:.3f}"
    assert float(view.gap) <= 1e-6
    assert view.shap.draw.args[0] is explained.explanation.grouped
    assert view.importance.draw.args[0] is explained.importance


@pytest.mark.parametrize("target", TARGETS)
def test_rank_agreement_has_every_pair_of_treatments(findings, loaded, target):
    encounters, _, config = loaded
    explained = findings[target].explained
    view = explanations.build(target, explained, encounters, config)
    labels = {t.name: t.label for t in config.treatments}
    assert len(view.agreement.rows) == math.comb(len(labels), 2) == 15
    for row, pair in zip(view.agreement.rows, explained.rank_agreement, strict=True):
        assert row[:3] == (labels[pair["level_a"]], labels[pair["level_b"]], f"{pair['tau']:.2f}")
        assert row[3] == f"{pair['ci_low']:.2f} to {pair['ci_high']:.2f}"
        assert row[4] == "50"
    assert view.n_boot == "50" and view.agreement_note is None


def test_no_rank_agreement_says_why(findings, loaded):
    encounters, _, config = loaded
    explained = replace(
        findings["adherent"].explained,
        rank_agreement=[],
        rank_agreement_note="only one treatment has encounters",
    )
    view = explanations.build("adherent", explained, encounters, config)
    assert view.agreement is None
    assert view.agreement_note == "only one treatment has encounters"
