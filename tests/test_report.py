"""The HTML report: its numbers are the run's, it is self-contained, and the command refuses
bad input with a message.

One small simulated service is trained once per module with the command line (an
adherence logistic model and a re-attendance tree model, 2 folds, 50 bootstrap
replicates); the library is then called on the saved models as a user would, and the
numbers in the HTML are compared with the files ``engagekit train`` wrote.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib import image

import engagekit.heterogeneity
from _cli import assert_no_traceback, run
from _factories import valid_encounter_rows, with_cell, write_csv
from _model_dirs import reseal
from engagekit.config import config_from_dict
from engagekit.errors import AnalysisError, ConfigError, ContractError, DataReadError
from engagekit.evaluation import Estimate
from engagekit.heterogeneity import PowerResult, PowerSettings, Share
from engagekit.io import read_encounters
from engagekit.io.model_store import load_model, read_metrics
from engagekit.report import ReportModel, build_report
from engagekit.validation import coerce_encounters

TARGETS = ("adherent", "attended_next")
# the AUPRC shown is that of the flagged (bad) outcome
METRICS = (
    "auroc",
    "auprc_flagged",
    "brier",
    "log_loss",
    "calibration_intercept",
    "calibration_slope",
)
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
DATA_URI = re.compile(r"data:image/png;base64,([A-Za-z0-9+/=]+)")
METRIC_CELL = re.compile(
    r'<td data-target="(\w+)" data-metric="(\w+)" data-value="([^"]*)">([^<]*)</td>'
)


# --------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def service(tmp_path_factory) -> Path:
    """A directory with ``encounters.csv`` and one trained model directory per target."""
    tmp = tmp_path_factory.mktemp("service")
    train = ("train", "encounters.csv", "--folds", "2", "--bootstrap", "50")
    steps = [
        ("simulate", "--patients", "300", "--seed", "3", "--out", "encounters.csv"),
        (*train, "--target", "adherent", "--model", "logistic", "--out", "adherent"),
        (*train, "--target", "attended_next", "--model", "gbm", "--out", "attended_next"),
    ]
    for step in steps:
        result = run(*step, cwd=tmp)
        assert result.returncode == 0, result.stderr
    return tmp


def _report_model(directory: Path) -> ReportModel:
    model, manifest = load_model(directory)
    return ReportModel(model, manifest, read_metrics(directory), source=directory.name)


@pytest.fixture(scope="module")
def loaded(service):
    """``(encounters, models, config)`` as the report command reads them."""
    models = [_report_model(service / target) for target in TARGETS]
    config = config_from_dict(models[0].manifest.config)
    encounters = coerce_encounters(read_encounters(service / "encounters.csv"), config)
    return encounters, models, config


@pytest.fixture(scope="module")
def built(loaded):
    encounters, models, config = loaded
    return build_report(encounters, models, config, rank_agreement_boot=50)


def metric_cells(html: str) -> dict[tuple[str, str], tuple[str, str]]:
    """``(target, metric) -> (data-value, shown text)`` of the first table holding it."""
    cells: dict[tuple[str, str], tuple[str, str]] = {}
    for target, metric, value, text in METRIC_CELL.findall(html):
        cells.setdefault((target, metric), (value, text))
    return cells


def without_images(html: str) -> str:
    return DATA_URI.sub("data:image/png;base64,", html)


def section(html: str, element_id: str) -> str:
    """The HTML of a ``<section>`` with this id, or from a heading with this id to the next
    heading of its level or above."""
    start = html.index(f'id="{element_id}"')
    if html.rfind("<section", 0, start) == html.rfind("<", 0, start):
        return html[start : html.index("</section>", start)]
    end = re.compile(r"<h[23][ >]").search(html, start + 1)
    return html[start : end.start() if end else len(html)]


def text_of(html_part: str) -> str:
    """HTML with its character references resolved (``&#x27;`` is an apostrophe)."""
    return html.unescape(html_part)


# --------------------------------------------------------------------------- the numbers
@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("metric", METRICS)
def test_metrics_in_the_report_are_those_of_metrics_json(built, service, target, metric):
    written = json.loads((service / target / "metrics.json").read_text())
    value, text = metric_cells(built.html)[(target, metric)]
    assert float(value) == written[metric]
    assert text == f"{written[metric]:.3f}"


def test_data_summary_counts_patients_and_encounters(built, service):
    table = pd.read_csv(service / "encounters.csv")
    summary = section(built.html, "data")
    assert f"{table['patient_id'].nunique():,} patients and {len(table):,} encounters" in summary
    by_treatment = table.groupby("treatment")["patient_id"].nunique()
    row = re.search(r"<tr><td>Online CBT</td><td>([\d,]+)</td><td>([\d,]+)</td>", summary)
    assert row.groups() == (
        f"{by_treatment['cbt_online']:,}",
        f"{(table['treatment'] == 'cbt_online').sum():,}",
    )
    missing = table["empathy"].isna().sum()
    assert f"<td>Empathy and positive regard</td><td>{missing:,}</td>" in summary


@pytest.mark.parametrize("target", TARGETS)
def test_forecast_total_is_the_expected_count_of_pending_patients(built, loaded, target):
    encounters, models, _ = loaded
    model = next(m.model for m in models if m.target == target)
    # each patient's latest session, when its outcome is still empty and a further
    # session was due (not the planned end of the course)
    latest = encounters.sort_values("session_number").groupby("patient_id").tail(1)
    pending = latest[latest[target].isna() & (latest["next_session_due"] == 1)]
    assert len(pending) > 0
    # scored with each patient's history, as in use: the whole table, then those rows
    p = pd.Series(model.predict_proba(encounters), index=encounters.index)
    expected = float(np.sum(1 - p[pending.index]))
    total = re.search(
        r'<tr class="total"><td>All treatments</td><td>([\d,]+)</td><td>([\d.]+)</td>',
        section(built.html, f"forecast-{target}"),
    )
    assert total.groups() == (f"{len(pending):,}", f"{expected:.1f}")


@pytest.mark.parametrize("target", TARGETS)
def test_flag_rule_and_operating_point_come_from_the_manifest(built, service, target):
    rule = json.loads((service / target / "manifest.json").read_text())["flag_rule"]
    flags = section(built.html, f"flags-{target}")
    point = rule["operating_point"]
    assert f"flagged high at a risk of {rule['threshold']:.3f} or more" in flags
    assert (
        f"<td>high</td><td>{point['sensitivity']:.2f}</td><td>{point['specificity']:.2f}</td>"
        f"<td>{point['ppv']:.2f}</td><td>{point['flags_per_100_encounters']:.1f}</td>"
        f"<td>{point['flags_per_100_patients']:.1f}</td>"
    ) in flags
    assert "flagged encounters per 100 distinct patients" in flags


@pytest.mark.parametrize("target", TARGETS)
def test_flags_show_the_promised_and_the_measured_share_side_by_side(built, loaded, target):
    encounters, models, _ = loaded
    model = next(m.model for m in models if m.target == target)
    # the models' rule is the default, "the top 10%": of the report's encounters, high
    # at the 10% highest risks and high or medium at the 20% (ties at a cut included)
    risk = 1.0 - model.predict_proba(encounters)
    ranked, n = np.sort(risk)[::-1], len(risk)
    high = int(np.sum(risk >= ranked[math.ceil(0.1 * n) - 1]))
    flagged = int(np.sum(risk >= ranked[math.ceil(0.2 * n) - 1]))
    flags = section(built.html, f"flags-{target}")
    assert "Promised and measured share of flagged encounters" in flags
    assert f"<td>high</td><td>10.0%</td><td>{100 * high / n:.1f}%</td><td>{high:,}</td>" in flags
    assert (
        f"<td>high or medium</td><td>20.0%</td><td>{100 * flagged / n:.1f}%</td>"
        f"<td>{flagged:,}</td>"
    ) in flags
    assert f"promises the top 10% of the encounters scored; measured on this report's {n:,}" in (
        text_of(flags)
    )
    assert "share of the encounters being scored" in text_of(flags)


def test_cross_treatment_verdicts_are_those_of_the_analysis(built):
    assert built.heterogeneity, "no analysis could be computed on the test data"
    for target, result in built.heterogeneity.items():
        table = section(built.html, f"cross-{target}")
        for attribute in result.attributes:
            assert re.search(
                rf"<td>{re.escape(attribute.label)}</td><td class=\"text verdict-\w+\">"
                rf"{attribute.verdict}</td>",
                table,
            ), attribute.attribute
        assert "would detect with 80% power one treatment's slope" in text_of(table)


def _prose(html_part: str) -> str:
    """The words a reader sees: no markup, no images, no ``<code>`` (codes are shown as
    codes there on purpose)."""
    part = re.sub(r"<code>.*?</code>|<img[^>]*>", " ", html_part, flags=re.S)
    return text_of(re.sub(r"<[^>]+>", " ", part))


def test_prose_speaks_the_configs_labels_not_codes(loaded):
    """A service that calls adherence "Keeping to the plan" and listening visits
    "Health-visitor listening" reads those words in the report's prose."""
    encounters, models, config = loaded
    blocks = config.model_dump(mode="json")
    for outcome in blocks["outcomes"]:
        if outcome["name"] == "adherent":
            outcome |= {"label": "Keeping to the plan", "bad_outcome": "did not keep to the plan"}
    for treatment in blocks["treatments"]:
        if treatment["name"] == "listening_visits":
            treatment["label"] = "Health-visitor listening"
    relabelled = config_from_dict({k: blocks[k] for k in ("outcomes", "treatments")})
    adherent = next(m for m in models if m.target == "adherent")
    report = build_report(encounters, [adherent], relabelled, rank_agreement_boot=10)

    data = _prose(section(report.html, "data"))
    assert "Keeping to the plan (encounters)" in data
    assert "did not attend the next session (encounters)" in data
    assert "Health-visitor listening" in data
    cross = _prose(section(report.html, "cross-adherent"))
    assert "Keeping to the plan" in cross  # the heading
    sentences = [a.sentence for a in report.heterogeneity["adherent"].attributes]
    assert all(" on keeping to the plan " in sentence for sentence in sentences)
    assert all(sentence in cross for sentence in sentences)
    forecast = _prose(section(report.html, "forecast-adherent"))
    assert "Keeping to the plan: patients who did not keep to the plan" in forecast
    # no treatment code is left in the prose of the page (model cards included)
    page = _prose(report.html)
    for code in config.treatment_names:
        assert code not in page, code


def test_rank_agreement_table_has_every_pair_of_treatments(built):
    for target, pairs in built.rank_agreement.items():
        explained = section(built.html, f"explanations-{target}")
        assert len(pairs) == 15  # 6 treatments
        for pair in pairs:
            assert f"<td>{pair['tau']:.2f}</td>" in explained


# --------------------------------------------------------------------------- the page
def test_html_is_self_contained(built):
    html = built.html
    assert "http://" not in html and "https://" not in html
    for attribute, value in re.findall(r'\b(src|href)="([^"]*)"', html):
        assert not value.startswith("//"), (attribute, value)
        if attribute == "href":
            assert value.startswith("#"), value
    for tag in ("<script", "<link", "<iframe", "@import", "url("):
        assert tag not in html.lower(), tag


def test_every_image_is_an_inline_png(built):
    sources = re.findall(r'<img src="([^"]*)"', built.html)
    # ROC, calibration and decision curves, SHAP summary and importance per model, and a
    # forest plot per analysis
    assert len(sources) == 5 * len(TARGETS) + len(built.heterogeneity)
    for source in sources:
        match = DATA_URI.fullmatch(source)
        assert match, source[:60]
        png = base64.b64decode(match.group(1), validate=True)
        assert png.startswith(PNG_SIGNATURE)
        pixels = image.imread(io.BytesIO(png), format="png")
        assert pixels.shape[0] > 200 and pixels.shape[1] > 200


def _flag_lines(fig):
    ax = fig.axes[0]
    return ax, [line for line in ax.get_lines() if line.get_label().startswith("flag rule")]


@pytest.mark.parametrize("threshold", [0.56, 0.3, 0.004, 0.5])
def test_the_decision_curve_draws_the_flag_threshold_inside_its_axis(threshold):
    from engagekit.evaluation import evaluate_predictions
    from engagekit.report import figures

    rng = np.random.default_rng(0)
    p = rng.uniform(0.2, 0.95, 400)
    y = (rng.uniform(size=400) < p).astype(float)
    # a curve that does not reach the flag rule: the default thresholds, 0.01-0.50
    metrics = evaluate_predictions(y, p, np.arange(400), n_boot=0)
    assert max(point.threshold for point in metrics.decision_curve) == 0.5
    fig = figures.decision_curve_figure(metrics, threshold)
    ax, lines = _flag_lines(fig)
    assert figures.marks_flag_threshold(threshold)
    assert len(lines) == 1 and lines[0].get_label() == f"flag rule ({threshold:.2f})"
    assert list(lines[0].get_xdata()) == [threshold, threshold]
    low, high = ax.get_xlim()
    assert low < threshold < high


@pytest.mark.parametrize("threshold", [None, float("nan"), 1.0])
def test_the_decision_curve_claims_no_line_it_cannot_draw(threshold):
    from engagekit.evaluation import evaluate_predictions
    from engagekit.report import figures

    metrics = evaluate_predictions([1, 0, 1, 0], [0.8, 0.6, 0.4, 0.1], [0, 1, 2, 3], n_boot=0)
    fig = figures.decision_curve_figure(metrics, threshold)
    assert _flag_lines(fig)[1] == []
    assert not figures.marks_flag_threshold(threshold)


@pytest.mark.parametrize("target", TARGETS)
def test_the_caption_names_the_flag_line_the_figure_draws(built, service, target):
    manifest = json.loads((service / target / "manifest.json").read_text())
    metrics = json.loads((service / target / "metrics.json").read_text())
    threshold = manifest["flag_rule"]["threshold"]
    # train computed the curve out to the threshold
    curve = [row["threshold"] for row in metrics["decision_curve"]]
    assert min(curve) <= threshold <= max(curve)
    performance = text_of(section(built.html, f"performance-{target}"))
    assert f"(the dash-dot line marks the flag rule's threshold, {threshold:.3f})" in performance


@pytest.mark.parametrize(
    "placeholder",
    [
        re.compile(r"\bnan\b", re.IGNORECASE),  # NaN, nan
        re.compile(r"\binf(inity)?\b", re.IGNORECASE),
        re.compile(r"\bNone\b"),  # Python's, not the word "none"
        re.compile(r"\bTODO\b|\bXXX\b"),
        re.compile(r"\{\{|\{%|%\}|\}\}"),  # template syntax left unrendered
    ],
    ids=["nan", "inf", "None", "TODO", "template"],
)
def test_no_placeholder_text(built, placeholder):
    for text in (text_of(without_images(built.html)), *built.model_cards.values()):
        found = placeholder.search(text)
        assert found is None, text[max(found.start() - 80, 0) : found.end() + 80]


def test_sections_and_model_cards_are_in_the_page(built):
    headings = re.findall(r"<h2>(.*?)</h2>", built.html)
    assert headings == [
        "1. Data",
        "2. Model performance",
        "3. Cross-treatment analysis",
        "4. Explanations",
        "5. At-risk flags",
        "6. Forecast",
        "7. Model cards",
        "8. How this report was made",
    ]
    cards = section(built.html, "model-cards")
    assert "Model card: Adherence (<code>adherent</code>), penalised logistic regression" in cards
    assert "Model card: Re-attendance (<code>attended_next</code>), gradient-boosted trees" in cards
    assert "it never decides care" in cards
    assert set(built.model_cards) == set(TARGETS)


# --------------------------------------------------------------------------- given results
def test_given_results_are_used_and_missing_ones_explained(loaded, built, monkeypatch):
    encounters, models, config = loaded
    given = next(iter(built.heterogeneity.values()))
    other = next(t for t in TARGETS if t != given.target)

    def refuse(*args, **kwargs):
        raise AnalysisError("the GEE did not converge (in this test)")

    monkeypatch.setattr(engagekit.heterogeneity, "heterogeneity_analysis", refuse)
    old = next(m for m in models if m.target == other)
    # metrics of one outcome class: no AUROC, no ROC curve
    undefined = Estimate(value=None, ci_low=None, ci_high=None, n_boot=0)
    overall = old.metrics.overall.model_copy(update={"auroc": undefined})
    metrics = old.metrics.model_copy(update={"roc_curve": None, "overall": overall})
    power = PowerResult(
        n_patients=500,
        reps=200,
        succeeded=198,
        failed=2,
        failure_examples=["AnalysisError: the GEE did not converge"],
        power_differs=Share(value=0.81, ci_low=0.75, ci_high=0.86),
        false_flag_rate=Share(value=0.04, ci_low=0.02, ci_high=0.08),
        power_equivalence=Share(value=0.37, ci_low=0.31, ci_high=0.44),
        power_equivalence_attribute=Share(value=None, ci_low=None, ci_high=None),
        attribute_verdicts={"differs": 0.81, "equivalent": 0.0, "inconclusive": 0.19},
        equivalence_by_attribute={"empathy": 0.37},
        settings=PowerSettings(
            target="adherent",
            attribute="active_listening",
            treatment="listening_visits",
            deviation=0.3,
            deviation_unit="log-odds per rating point, on the target outcome only",
            treatments=config.treatment_names,
            shares={t.name: t.simulated.share for t in config.treatments},
            planned_sessions={t.name: [6, 6] for t in config.treatments},
            analysis=config.heterogeneity,
            seed=0,
            replicate_seeds="seed + replicate index",
            n_jobs=1,
            versions={"engagekit": "0.1"},
        ),
        seconds=12.5,
    )
    report = build_report(
        encounters,
        [m if m is not old else ReportModel(old.model, old.manifest, metrics) for m in models],
        config,
        heterogeneity=[given],
        power=power,
        rank_agreement_boot=20,
    )
    assert report.heterogeneity == {given.target: given}
    # the given analysis is shown exactly as the first report showed it
    kept = section(built.html, f"cross-{given.target}")
    assert section(report.html, f"cross-{given.target}") == kept
    assert "– (the analysis could not be done: the GEE did not converge (in this test))" in (
        section(report.html, f"cross-{other}")
    )
    assert "ROC curve: – (this metrics.json holds none: only one outcome class)" in (
        section(report.html, f"performance-{other}")
    )
    assert (
        "Simulated deviation: 0.3 extra log-odds per rating point of active listening on "
        "adherence in Listening visits. In 198 simulated studies of 500 patients (2 failed to "
        "fit), the deviation was detected (verdict differs) in 81% (95% CI 75% to 86%)"
    ) in report.html
    assert report.notes == {f"heterogeneity:{other}": "the GEE did not converge (in this test)"}


def test_an_analysis_read_back_from_its_file_is_shown_as_computed(built, loaded, tmp_path):
    from engagekit.io.results import read_heterogeneity_result
    from engagekit.report.build import _cross_treatment_section

    result = next(iter(built.heterogeneity.values()))
    path = tmp_path / "heterogeneity.json"
    path.write_text(json.dumps(result.to_dict()))
    read = read_heterogeneity_result(path)
    assert read == result
    shown = _cross_treatment_section(read.target, read, {}, loaded[2])
    computed = _cross_treatment_section(result.target, result, {}, loaded[2])
    assert shown["power"] == computed["power"] and shown["rows"] == computed["rows"]
    assert shown["power"].startswith("From this analysis's own standard errors")


# --------------------------------------------------------------------------- refusals
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
    html = (tmp_path / "out" / "report.html").read_text()
    cells = metric_cells(html)
    for target in TARGETS:
        metrics = json.loads((service / target / "metrics.json").read_text())
        assert float(cells[(target, "auroc")][0]) == metrics["auroc"]
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


def test_a_model_unfit_for_use_is_named_so_where_its_performance_is_shown(loaded):
    encounters, models, config = loaded
    reason = "its cross-validated AUROC 0.48 (95% CI 0.40 to 0.56) does not exclude chance"
    unfit = ReportModel(
        models[0].model,
        models[0].manifest.model_copy(update={"fit_for_use": False, "unfit_reason": reason}),
        models[0].metrics,
        source="unfit",
    )
    html = build_report(encounters, [unfit, models[1]], config, rank_agreement_boot=20).html
    flagged = section(html, f"performance-{unfit.target}")
    assert f"Not fit for use:</strong> {reason}." in flagged
    assert "--allow-unfit-model" in flagged
    assert "Not fit for use" not in section(html, f"performance-{models[1].target}")
