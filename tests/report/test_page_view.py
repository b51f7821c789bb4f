"""The page's view model: every section, one view per model in the models' order."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from engagekit.report._model_card import model_card_sections, model_card_title
from engagekit.report._sections import build_page
from engagekit.summary import summarize_encounters


def test_every_section_has_one_view_per_model_in_order(loaded, findings, built):
    encounters, models, config = loaded
    models = models[::-1]  # any order is kept
    page = build_page(
        encounters,
        summarize_encounters(encounters, config),
        [(m.manifest, m.metrics, m.source) for m in models],
        [findings[m.target] for m in models],
        built.heterogeneity,
        {},
        config,
        title="A service",
        # a quarter past midnight in Paris (UTC+1 in winter) is a quarter past eleven UTC
        created=datetime(2025, 1, 2, 0, 15, tzinfo=timezone(timedelta(hours=1))),
        versions={"engagekit": "9.9", "numpy": "2.0"},
    )
    targets = [m.target for m in models]
    for views in (page.performance, page.explanations, page.flags, page.forecast, page.model_cards):
        assert [view.target for view in views] == targets
    assert [a.target for a in page.cross_treatment.analyses] == targets
    assert [(m.target, m.kind) for m in page.provenance.models] == [
        (m.target, m.manifest.kind) for m in models
    ]
    assert (page.provenance.title, page.provenance.created, page.provenance.engagekit) == (
        "A service",
        "2025-01-01 23:15 UTC",
        "9.9",
    )
    for card, m in zip(page.model_cards, models, strict=True):
        assert card.title == model_card_title(m.manifest)
        assert list(card.sections) == model_card_sections(m.manifest, m.metrics)
