"""The cross-treatment section: the analysis's verdicts, its power, and what is said when
there is no analysis."""

from __future__ import annotations

import json

import pytest

from _result_factories import power_result
from engagekit.config import config_from_dict
from engagekit.heterogeneity import (
    Share,
    heterogeneity_analysis,
    minimum_detectable_deviation,
)
from engagekit.io._results import read_heterogeneity_result
from engagekit.report._sections import cross_treatment


@pytest.fixture(scope="module")
def analyses(built):
    assert built.heterogeneity, "no analysis could be computed on the test data"
    return built.heterogeneity


def _p(value: float) -> str:
    return "< 0.001" if value < 0.001 else f"{value:.3g}"


def test_each_row_is_an_attributes_verdict_and_p_values(analyses, loaded):
    config = loaded[2]
    for target, result in analyses.items():
        view = cross_treatment.analysis_view(target, result, config)
        detectable = {d["attribute"]: d for d in minimum_detectable_deviation(result, 0.8)}
        assert view.failed is None
        assert len(view.rows) == len(result.attributes)
        for row, attribute in zip(view.rows, result.attributes, strict=True):
            d = detectable[attribute.attribute]
            assert row.verdict == attribute.verdict
            named = [r.treatment_label for r in attribute.deviations if r.deviates]
            other = attribute.other_analysis
            assert row.cells == (
                attribute.label,  # every default quality is better when higher
                attribute.verdict,
                ", ".join(named) or "–",
                _p(attribute.p_value),
                _p(attribute.p_adjusted),
                f"{attribute.equivalence.largest_abs_difference:.3f}",
                f"{attribute.margin:.3f}",
                _p(attribute.equivalence.p_value),
                f"{d['smallest']:.3f} to {d['largest']:.3f}",
                *(() if other is None else (cross_treatment._other_verdict(attribute),)),
            )
        assert len(view.columns) == len(view.rows[0].cells)
        # each verdict in words, each disagreement of the other analysis after its own
        said = [a.sentence for a in result.attributes]
        assert [s for s in view.sentences if s in said] == said
        disagree = [a for a in result.attributes if not a.analyses_agree]
        assert len(view.sentences) == len(said) + len(disagree)
        # the effects table: every attribute x treatment, per point and per SD
        rows = [r for a in result.attributes for r in a.by_treatment]
        assert len(view.effects.rows) == len(rows)
        first = rows[0]
        assert view.effects.rows[0][3].startswith(f"{first.odds_ratio_per_sd:.2f} (")
        assert view.n_patients == f"{result.n_patients:,}"
        assert "would detect with 80% power one treatment's slope" in view.power
        assert view.forest.draw.args[0].target_label == view.label


def test_an_analysis_read_back_from_its_file_is_shown_as_computed(analyses, loaded, tmp_path):
    result = next(iter(analyses.values()))
    path = tmp_path / "heterogeneity.json"
    path.write_text(json.dumps(result.to_dict()))
    read = read_heterogeneity_result(path)
    assert read == result
    shown = cross_treatment.analysis_view(read.target, read, loaded[2])
    assert shown == cross_treatment.analysis_view(result.target, result, loaded[2])
    assert shown.power.startswith("From this analysis's own standard errors")


def test_the_outcome_and_verdicts_speak_the_configs_labels(loaded):
    encounters, _, config = loaded
    blocks = config.model_dump(mode="json")
    for outcome in blocks["outcomes"]:
        if outcome["name"] == "adherent":
            outcome["label"] = "Keeping to the plan"
    relabelled = config_from_dict({k: blocks[k] for k in ("outcomes", "treatments")})
    result = heterogeneity_analysis(encounters, "adherent", relabelled)
    view = cross_treatment.analysis_view("adherent", result, relabelled)
    assert view.label == "Keeping to the plan"
    assert view.sentences and all(" on keeping to the plan " in s for s in view.sentences)


def test_an_analysis_that_could_not_be_done_says_why(analyses, loaded):
    config = loaded[2]
    given = next(iter(analyses.values()))
    other = next(t for t in ("adherent", "attended_next") if t != given.target)
    view = cross_treatment.build(
        [given.target, other],
        {given.target: given},
        {other: "the GEE did not converge (in this test)"},
        config,
    )
    shown, failed = view.analyses
    assert shown == cross_treatment.analysis_view(given.target, given, config)
    assert failed.failed == "the GEE did not converge (in this test)"
    assert (failed.rows, failed.forest, failed.power) == ((), None, "")
    assert view.power is None
    unexplained = cross_treatment.build([other], {}, {}, config).analyses[0]
    assert unexplained.failed == "not computed"


def test_power_by_simulation_is_said_in_the_configs_words(loaded):
    config = loaded[2]
    power = power_result(config)
    view = cross_treatment.power_view(power, config)
    assert view.sentence == (
        "Simulated deviation: 0.3 extra log-odds per rating point of active listening on "
        "adherence in Listening visits. In 198 simulated studies of 500 patients (2 failed to "
        "fit), the deviation was detected (verdict differs) in 81% (95% CI 75% to 86%); "
        "another quality was wrongly flagged in 4%; qualities without a deviation were shown "
        "equivalent in 37%."
    )
    assert view.points is None
    no_interval = power.model_copy(
        update={"power_differs": Share(value=0.81, ci_low=None, ci_high=None)}
    )
    assert (
        "(verdict differs) in 81%; another"
        in cross_treatment.power_view(no_interval, config).sentence
    )
