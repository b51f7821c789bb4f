"""``build_report`` and ``engagekit report``: what they compute, what they say when
something cannot be computed, and what they refuse."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

import engagekit.heterogeneity
from _cli import assert_no_traceback, run
from _factories import valid_encounter_rows, with_cell, write_csv
from _model_dirs import reseal
from _result_factories import power_result
from engagekit.config import config_from_dict
from engagekit.errors import AnalysisError, ConfigError, ContractError, DataReadError
from engagekit.evaluation import Estimate
from engagekit.io import read_encounters
from engagekit.report import ReportModel, build_report
from engagekit.validation import coerce_encounters

TARGETS = ("adherent", "attended_next")


def section(page: str, element_id: str) -> str:
    """The HTML from the element with this id to the next heading of its level or above."""
    start = page.index(f'id="{element_id}"')
    end = re.compile(r"<h[23][ >]").search(page, start + 1)
    return page[start : end.start() if end else len(page)]


# --------------------------------------------------------------------------- the library
def test_what_could_not_be_computed_is_said_on_the_page(loaded, built, monkeypatch):
    """Given results are used as given; an analysis that fails, a metrics file without a
    ROC curve and a model unfit for use are each named where they would be shown."""
    encounters, models, config = loaded
    given = built.heterogeneity["adherent"]

    def refuse(*args, **kwargs):
        raise AnalysisError("the GEE did not converge (in this test)")

    monkeypatch.setattr(engagekit.heterogeneity, "heterogeneity_analysis", refuse)
    adherent, attended = models
    reason = "its cross-validated AUROC 0.48 (95% CI 0.40 to 0.56) does not exclude chance"
    unfit = adherent.manifest.model_copy(update={"fit_for_use": False, "unfit_reason": reason})
    # metrics of one outcome class: no AUROC, no ROC curve
    undefined = Estimate(value=None, ci_low=None, ci_high=None, n_boot=0)
    overall = attended.metrics.overall.model_copy(update={"auroc": undefined})
    metrics = attended.metrics.model_copy(update={"roc_curve": None, "overall": overall})
    steps = []
    report = build_report(
        encounters,
        [
            ReportModel(adherent.model, unfit, adherent.metrics, source="unfit"),
            ReportModel(attended.model, attended.manifest, metrics),
        ],
        config,
        heterogeneity=[given],
        power=power_result(config),
        rank_agreement_boot=20,
        progress=lambda *step: steps.append(step),
    )
    assert report.heterogeneity == {"adherent": given}
    assert report.notes == {
        "heterogeneity:attended_next": "the GEE did not converge (in this test)"
    }
    # the given analysis is shown exactly as the report that computed it showed it
    assert section(report.html, "cross-adherent") == section(built.html, "cross-adherent")
    assert "– (the analysis could not be done: the GEE did not converge (in this test))" in (
        section(report.html, "cross-attended_next")
    )
    performance = section(report.html, "performance-attended_next")
    assert "ROC curve: – (this metrics.json holds none: only one outcome class)" in performance
    assert "Not fit for use" not in performance
    banner = section(report.html, "performance-adherent")
    assert f'<p class="unfit" role="alert"><strong>Not fit for use:</strong> {reason}.' in banner
    assert "--allow-unfit-model" in banner
    assert (
        "Simulated deviation: 0.3 extra log-odds per rating point of active listening on "
        "adherence in Listening visits. In 198 simulated studies of 500 patients (2 failed to "
        "fit), the deviation was detected (verdict differs) in 81% (95% CI 75% to 86%)"
    ) in report.html
    assert steps == [
        ("summary", 1, 5),
        ("attended_next: cross-treatment analysis", 2, 5),
        ("adherent: explanations", 3, 5),
        ("attended_next: explanations", 4, 5),
        ("figures and page", 5, 5),
    ]


def test_the_report_returns_what_it_computed(built, findings):
    # an analysis is computed for every outcome, or the note says why it failed (the
    # re-attendance GEE can fail on so small a service)
    failed = {note.removeprefix("heterogeneity:") for note in built.notes}
    assert set(built.heterogeneity) | failed == set(TARGETS)
    assert not set(built.heterogeneity) & failed
    for target in TARGETS:
        computed = findings[target]
        assert built.importance[target] == computed.explained.importance
        assert built.rank_agreement[target] == computed.explained.rank_agreement
        assert built.forecast[target].equals(computed.forecast.table)
    assert built.seconds > 0


def test_library_refusals(loaded, built):
    encounters, models, config = loaded
    with pytest.raises(ValueError, match="a report needs at least one model"):
        build_report(encounters, [], config)
    with pytest.raises(ValueError, match="two models predict 'adherent'"):
        build_report(encounters, [models[0], models[0]], config)
    adherence = built.heterogeneity["adherent"]
    with pytest.raises(ValueError, match="the heterogeneity result is for 'adherent', which"):
        build_report(encounters, [models[1]], config, heterogeneity=[adherence])
    with pytest.raises(ValueError, match=r"must be the HeterogeneityResult .* not a dict"):
        build_report(encounters, models, config, heterogeneity=[adherence.to_dict()])
    with pytest.raises(ValueError, match="two heterogeneity results for 'adherent'"):
        build_report(encounters, models, config, heterogeneity=[adherence, adherence])
    with pytest.raises(ContractError, match="has no 'adherent' column"):
        build_report(encounters.drop(columns="adherent"), [models[0]], config)
    fewer = config_from_dict(
        {"attributes": {**config.attributes.model_dump(), "items": [config.attributes.items[0]]}}
    )
    with pytest.raises(ConfigError, match="was trained with attributes"):
        build_report(encounters, [models[0]], fewer)
    model = models[0]
    with pytest.raises(DataReadError, match="disagree on the outcome"):
        ReportModel(
            model.model,
            model.manifest,
            model.metrics.model_copy(update={"target": "attended_next"}),
        )


# --------------------------------------------------------------------------- the command
METRIC_CELL = re.compile(r'<td data-target="(\w+)" data-metric="auroc" data-value="([^"]*)">')


def test_report_command_writes_the_report_and_the_cards(service, tmp_path):
    result = run(
        "report",
        service / "encounters.csv",
        *("--model", service / "adherent", "--model", service / "attended_next"),
        *("--out", "out/report.html", "--bootstrap", "20"),
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert_no_traceback(result)
    assert "Report written to 'out/report.html'" in result.stdout
    page = (tmp_path / "out" / "report.html").read_text()
    shown = dict(METRIC_CELL.findall(page))
    for target in TARGETS:
        metrics = json.loads((service / target / "metrics.json").read_text())
        assert float(shown[target]) == metrics["auroc"]
        row = f"| AUROC | {metrics['auroc']:.3f} | {metrics['auroc_ci_low']:.3f} to "
        # one card beside the report, and the one train wrote beside the model
        assert row in (tmp_path / "out" / f"model_card_{target}.md").read_text()
        assert row in (service / target / "model_card.md").read_text()


def _tampered(service: Path, tmp_path: Path) -> list[str]:
    copy = shutil.copytree(service / "adherent", tmp_path / "tampered")
    with open(copy / "model.skops", "ab") as handle:
        handle.write(b"\0")
    return ["--model", str(copy)]


def _other_outcome(service: Path, tmp_path: Path) -> list[str]:
    copy = shutil.copytree(service / "adherent", tmp_path / "relabelled")
    metrics = json.loads((copy / "metrics.json").read_text())
    (copy / "metrics.json").write_text(json.dumps({**metrics, "target": "attended_next"}))
    reseal(copy)  # as consistent as the integrity record can make it
    return ["--model", str(copy)]


def _foreign_analysis(service: Path, tmp_path: Path) -> list[str]:
    from engagekit.heterogeneity import heterogeneity_analysis

    encounters = read_encounters(service / "encounters.csv")
    result = heterogeneity_analysis(coerce_encounters(encounters), "adherent")
    path = tmp_path / "heterogeneity.json"
    path.write_text(json.dumps(result.to_dict()))
    return ["--model", str(service / "attended_next"), "--heterogeneity", str(path)]


def _bad_data(service: Path, tmp_path: Path) -> list[str]:
    write_csv(with_cell(valid_encounter_rows(4, 3), 5, "empathy", "9"), tmp_path / "bad.csv")
    return ["--model", str(service / "adherent")]


@pytest.mark.parametrize(
    ("arguments", "data", "out", "code", "message"),
    [
        (lambda s, t: ["--model", str(t / "nowhere")], None, "r.html", 2, "is not a model"),
        (_tampered, None, "r.html", 2, "does not match the directory's integrity record"),
        (_other_outcome, None, "r.html", 2, "disagree on the outcome"),
        (
            lambda s, t: ["--model", str(s / "adherent"), "--model", str(s / "adherent")],
            None,
            "r.html",
            2,
            "all predict 'adherent'",
        ),
        (_foreign_analysis, None, "r.html", 2, "which no --model predicts"),
        (_bad_data, "bad.csv", "r.html", 1, "breaks the data contract"),
        (
            lambda s, t: ["--model", str(s / "adherent")],
            None,
            "encounters.csv/r.html",
            2,
            "is a file, not a folder",
        ),
        (lambda s, t: ["--model", str(s / "adherent")], None, "r.txt", 2, "an .html file"),
    ],
    ids=[
        "missing",
        "tampered",
        "metrics-of-another-outcome",
        "two-models-one-outcome",
        "analysis-without-model",
        "data-breaks-contract",
        "unwritable",
        "not-html",
    ],
)
def test_report_command_refuses_bad_input(service, tmp_path, arguments, data, out, code, message):
    shutil.copy(service / "encounters.csv", tmp_path / "encounters.csv")
    extra = arguments(service, tmp_path)
    result = run("report", data or "encounters.csv", *extra, "--out", out, cwd=tmp_path)
    assert result.returncode == code, result.stdout + result.stderr
    assert_no_traceback(result)
    assert message in " ".join((result.stdout + result.stderr).split())
    assert not list(tmp_path.glob("**/*.html")) and not list(tmp_path.glob("**/model_card_*"))
