"""The monitoring section (``engagekit report --monitoring``): the view model of a
monitoring result with known alerts (``_monitor_results``), the rendered section, and
the command's refusal of a file that is not a monitoring result."""

from __future__ import annotations

import base64
import html
import json
import re

import pytest

from _cli import assert_no_traceback, run
from _monitor_results import DRIFTED_MONTH, SILENT_MONTH, monitor_result_with_alerts
from engagekit.monitoring import MonitorFigure, MonitorResult, PatientGroup
from engagekit.report import build_report
from engagekit.report._sections import monitoring

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def result() -> MonitorResult:
    return monitor_result_with_alerts()


@pytest.fixture(scope="module")
def page(loaded, model_of, result) -> str:
    """A report of one model with the monitoring section."""
    encounters, _, config = loaded
    report = build_report(
        encounters, [model_of("adherent")], config, monitoring=result, rank_agreement_boot=20
    )
    return report.html


def section_of(page: str) -> str:
    return page[page.index('<section id="monitoring">') :].split("</section>")[0]


def text_of(markup: str) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", markup)).split())


# --------------------------------------------------------------------------- view model
def test_the_view_has_a_row_per_window_with_its_counts_and_control_limits(result):
    view = monitoring.build(result).view
    assert [row[0] for row in view.performance_rows] == [w.window for w in result.windows]
    for row, w in zip(view.performance_rows, result.windows, strict=True):
        assert row[1:3] == (f"{w.n_encounters:,}", f"{w.n_acted_on:,}")
    silent = next(row for row in view.performance_rows if row[0] == SILENT_MONTH)
    # no patient adhered: observed 0, expected the mean score, in both groups
    point = next(w for w in result.windows if w.window == SILENT_MONTH).all_patients
    assert point.observed == 0
    expected = f"−{point.expected:.3f} (±{point.upper_limit:.3f}), alert"
    assert silent[-2:] == (expected, expected)


def test_the_alt_text_names_each_groups_windows_outside_their_limits(result):
    section = monitoring.build(result)
    for group in (PatientGroup.NOT_ACTED_ON, PatientGroup.ALL):
        windows = sorted(
            {
                a.window
                for a in result.alerts
                if a.figure is MonitorFigure.OBSERVED_MINUS_EXPECTED and a.subject == group
            }
        )
        assert SILENT_MONTH in windows
        assert f"{group.label}: {', '.join(windows)}" in section.alt
    assert section.chart.what == "control charts" and section.chart.draw is not None


def test_the_drift_row_of_the_drifted_month_says_alert(result):
    view = monitoring.build(result).view
    assert view.drift_columns == ("Window", "active listening", "empathy")
    drifted = dict((row[0], row[1:]) for row in view.drift_rows)[DRIFTED_MONTH]
    assert drifted[1].endswith("(alert)") and not drifted[0].endswith("(alert)")


# --------------------------------------------------------------------------- page
def test_the_section_is_numbered_after_the_forecast_and_in_the_contents(page):
    headings = re.findall(r"<h2>(.*?)</h2>", page)
    assert headings[5:] == [
        "6. Forecast",
        "7. Monitoring",
        "8. Model cards",
        "9. How this report was made",
    ]
    assert '<a href="#monitoring">Monitoring</a>' in page


def test_the_section_shows_the_alerts_drift_subgroups_and_the_chart(page, result):
    section = section_of(page)
    text = text_of(section)
    for alert in result.alerts:
        assert alert.message in text
    for group in result.miscalibrated:
        assert group.sentence in text
    assert "treatment cbt_online: calibration in the large" in text
    [(source, alt)] = re.findall(r'<img src="([^"]*)" alt="([^"]*)">', section)
    assert base64.b64decode(source.split(",", 1)[1]).startswith(PNG_SIGNATURE)
    assert html.unescape(alt) == monitoring.build(result).alt
    assert re.search(r"\bnan\b|\bNone\b|\{\{", text) is None


def test_a_report_without_monitoring_has_no_section(built):
    assert 'id="monitoring"' not in built.html and "#monitoring" not in built.html


def test_build_report_refuses_what_is_not_a_monitoring_result(loaded, model_of, result):
    encounters, _, config = loaded
    with pytest.raises(ValueError, match="must be the MonitorResult monitor returns"):
        build_report(encounters, [model_of("adherent")], config, monitoring=result.to_dict())


# --------------------------------------------------------------------------- command
@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "'monitoring.json' does not exist; it should be a result of engagekit monitor"),
        ("[1]", "'monitoring.json' must hold a JSON object"),
        ('{"target": "adherent"}', "is not a result of engagekit monitor: it lacks 'window'"),
        ("windows", "is not a result of engagekit monitor: 'windows'"),
        ("format", "its 'format_version' is 7"),
    ],
    ids=["missing", "not-an-object", "another-document", "bad-field", "other-version"],
)
def test_report_refuses_a_file_that_is_not_a_monitoring_result(
    service, tmp_path, result, content, message
):
    path = tmp_path / "monitoring.json"
    if content == "windows":
        path.write_text(json.dumps({**result.to_dict(), "windows": "x"}))
    elif content == "format":
        path.write_text(json.dumps({**result.to_dict(), "format_version": 7}))
    elif content is not None:
        path.write_text(content)
    done = run(
        "report", service / "encounters.csv", "--model", service / "adherent",
        "--monitoring", "monitoring.json", "--out", "report.html", cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert_no_traceback(done)
    assert message in " ".join(done.stderr.split())
    assert not (tmp_path / "report.html").exists()


def test_report_adds_the_section_from_a_monitor_result_file(service, tmp_path, result):
    (tmp_path / "monitoring.json").write_text(json.dumps(result.to_dict()))
    done = run(
        "report", service / "encounters.csv", "--model", service / "adherent",
        "--monitoring", "monitoring.json", "--out", "report.html", "--bootstrap", "20",
        cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    section = section_of((tmp_path / "report.html").read_text(encoding="utf-8"))
    assert "Monitoring of the adherent model, by month" in text_of(section)
    assert f"{SILENT_MONTH}: observed minus expected" in text_of(section)


def test_the_section_says_how_many_subgroup_intervals_chance_alone_would_exclude(result):
    counted = result.model_copy(update={"calibration_intervals": 28})
    view = monitoring.build(counted).view
    assert view.chance == (
        "With 28 intervals checked, about 1.4 would exclude perfect calibration by chance alone."
    )
    # a result recorded before the intervals were counted says nothing of chance
    assert (
        monitoring.build(result.model_copy(update={"calibration_intervals": 0})).view.chance is None
    )
