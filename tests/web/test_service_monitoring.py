"""The analyst's service page and API show the latest monitoring result ``engagekit
monitor`` recorded for the model of the run shown: its tables, alerts, drift,
miscalibrated subgroups and control charts (inline SVG), aggregates only.

The result is the one of ``_monitor_results`` (known alerts: the silent month's
observed-minus-expected in both groups, the drifted month's empathy PSI), recorded in the
web tests' database under the model of its runs (``0`` * 64).
"""

from __future__ import annotations

import html
import json
import re

import pytest

from _monitor_results import DRIFTED_MONTH, SILENT_MONTH, monitor_result_with_alerts
from engagekit.db import MONITOR_RESULTS
from engagekit.io._monitor_store import RecordedMonitorResult, record_monitor_result
from engagekit.monitoring import MonitorFigure, MonitorResult, PatientGroup, monitor
from engagekit.web import create_app
from engagekit.web._monitoring import monitoring_panel
from web._web import SECRET, TestClient, build_service_database, sign_in
from web.test_pages import check_page

MODEL = "0" * 64  # the model of the fixture's runs
OTHER_MODEL = "f" * 64
#: every identifier of the fixture's scores, and of the simulated service monitored
IDENTIFIER = re.compile(r"PAT-\d\d|ENC-\d\d|PRAC-[ABC]|\bP\d{7}\b|\bE\d{8}\b|\bPR\d+")


@pytest.fixture(scope="module")
def result() -> MonitorResult:
    return monitor_result_with_alerts()


@pytest.fixture(scope="module")
def recorded(service, result) -> RecordedMonitorResult:
    """Three results recorded: an older one of the model (by quarter), the module's (by
    month), then a newer one of another model; the page shows the module's."""
    older = MonitorResult.from_dict({**result.to_dict(), "window": "quarter", "alerts": []})
    record_monitor_result(service.engine, older, model_sha256=MODEL, scores_table="scores")
    latest = record_monitor_result(
        service.engine, result, model_sha256=MODEL, scores_table="scores"
    )
    record_monitor_result(service.engine, older, model_sha256=OTHER_MODEL, scores_table="scores")
    return latest


def text_of(page: str) -> str:
    """The page's text, tags removed and white space collapsed."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page)).split())


def test_the_page_shows_the_latest_result_of_the_runs_model(service, recorded, result):
    response = service.clients["kim"].get("/service")
    assert response.status_code == 200
    check_page(response.text)
    page = text_of(response.text)
    assert f"result {recorded.monitor_id}, recorded" in page
    assert "Monitoring of the adherent model, by month" in page
    assert "by quarter" not in page  # the older result
    for w in result.windows:  # a row per window, with its counts
        assert f"{w.window} {w.n_encounters:,} {w.n_acted_on:,} " in page, w.window
    for alert in result.alerts:
        assert alert.message in page
    for group in result.miscalibrated:
        assert group.sentence in page


def test_an_alerts_window_is_in_its_text(service, recorded):
    page = service.clients["kim"].get("/service").text
    alerts = re.findall(r"<li>(.*?)</li>", page.split('class="alerts"')[1].split("</ul>")[0])
    silent = [a for a in alerts if a.startswith(f"{SILENT_MONTH}: observed minus expected")]
    assert len(silent) == 2  # not acted on, and all patients
    drift = [a for a in alerts if "PSI of rating_empathy" in a]
    assert len(drift) == 1 and drift[0].startswith(DRIFTED_MONTH)


def test_the_drift_table_gives_each_ratings_psi_and_level(service, recorded, result):
    page = service.clients["kim"].get("/service").text
    table = page.split('class="drift"')[1].split("</table>")[0]
    rows = {
        cells[0]: cells[1:]
        for cells in (
            re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row)
            for row in re.findall(r"<tr>(.*?)</tr>", table.split("<tbody>")[1])
        )
    }
    drifted = next(w for w in result.windows if w.window == DRIFTED_MONTH)
    assert rows[DRIFTED_MONTH][1] == f"{drifted.psi['rating_empathy']:.3f} (alert)"
    assert len(rows) == len(result.windows)
    assert all(len(cells) == 2 for cells in rows.values())  # empathy, active listening


def test_the_control_charts_are_accessible_svg_carrying_the_tables_numbers(service, recorded):
    page = service.clients["kim"].get("/service").text
    charts = re.findall(r"<svg [^>]*>.*?</svg>", page.split('id="monitoring-heading"')[1], re.S)
    assert len(charts) == 2  # not acted on, all patients
    for chart, label in zip(charts, ("not acted on", "all patients"), strict=True):
        opening = chart[: chart.index(">")]
        assert 'role="img"' in opening
        title_id = re.search(r'aria-labelledby="([^"]+)"', opening).group(1)
        title = re.search(rf'<title id="{title_id}">(.*?)</title>', chart).group(1)
        assert label in title and "observed minus expected" in title
        desc_id = re.search(r'aria-describedby="([^"]+)"', opening).group(1)
        desc = re.search(rf'<desc id="{desc_id}">(.*?)</desc>', chart).group(1)
        assert SILENT_MONTH in desc.split("outside the limits:")[1]
    panel = monitoring_panel(recorded)
    for chart, series in zip(panel.charts, panel.view.charts, strict=True):
        outside = [p.window for p in chart.points if p.outside]
        expected = [
            a.window
            for a in recorded.result.alerts
            if a.figure is MonitorFigure.OBSERVED_MINUS_EXPECTED and a.subject == series.group
        ]
        assert outside == sorted(set(expected))
        # the axis holds every point and limit, the point of the silent month at the bottom
        assert all(chart.top_y <= p.y <= chart.bottom_y for p in chart.points)
        silent = next(p for p in chart.points if p.window == SILENT_MONTH)
        assert silent.y == max(p.y for p in chart.points)


def test_the_api_gives_the_recorded_result(service, recorded, result):
    body = service.clients["kim"].get("/api/v1/service").json()
    monitoring = body["monitoring"]
    assert monitoring["monitor_id"] == recorded.monitor_id
    assert monitoring["model_sha256"] == MODEL and monitoring["scores_table"] == "scores"
    assert MonitorResult.from_dict(monitoring["result"]) == result
    assert body["monitoring_note"] is None
    assert body["run"]["model_sha256"] == MODEL


@pytest.mark.parametrize("path", ["/service", "/api/v1/service"])
def test_no_patient_identifier_reaches_the_analyst(service, recorded, path):
    text = service.clients["kim"].get(path).text
    assert SILENT_MONTH in text  # the monitoring is there ...
    assert IDENTIFIER.search(text) is None  # ... and no identifier


@pytest.mark.parametrize("path", ["/service", "/api/v1/service"])
@pytest.mark.parametrize("role", ["ana", "lee", "sam"])
def test_only_an_analyst_sees_the_monitoring(service, recorded, role, path):
    response = service.clients[role].get(path)
    assert response.status_code == 403
    assert SILENT_MONTH not in response.text


def test_a_model_never_monitored_and_a_result_that_cannot_be_read_are_said(tmp_path):
    engine = build_service_database(f"sqlite:///{tmp_path / 'service.db'}")
    app = create_app(engine, secret_key=SECRET, secure_cookies=False)
    client = TestClient(app, follow_redirects=False)
    assert sign_in(client, "kim").status_code == 303
    page = client.get("/service").text
    check_page(page)
    assert "No monitoring has been recorded for the model of this run" in text_of(page)
    assert "engagekit monitor MODEL_DIR --db URL --outcomes DATA" in text_of(page)
    assert client.get("/api/v1/service").json()["monitoring"] is None

    # a result of another model is not this run's; one of a format this engagekit does
    # not read is named, not shown
    simple = monitor_result_with_alerts(n_patients=150)
    record_monitor_result(engine, simple, model_sha256=OTHER_MODEL, scores_table="scores")
    assert "No monitoring has been recorded" in text_of(client.get("/service").text)
    with engine.begin() as connection:
        connection.execute(
            MONITOR_RESULTS.insert().values(
                model_sha256=MODEL,
                scores_table="scores",
                target="adherent",
                window="month",
                created_at="2099-01-01T00:00:00.000000+00:00",
                result=json.dumps({**simple.to_dict(), "format_version": 99}),
            )
        )
    page = client.get("/service")
    assert page.status_code == 200
    assert "cannot be read by this engagekit" in text_of(page.text)
    body = client.get("/api/v1/service").json()
    assert body["monitoring"] is None and "format_version" in body["monitoring_note"]
    engine.dispose()


def test_a_window_without_outcomes_is_a_dash_and_no_point():
    """A monitor of one window whose outcomes are all unknown: the table says so with the
    dash, and there is no chart to draw (the template says so)."""
    from engagekit import simulate_encounters

    encounters = simulate_encounters(60, seed=2).encounters
    unknown = encounters.assign(adherent=float("nan"))
    scores = encounters.assign(p_adherent=0.6)
    found = monitor(scores, unknown, target="adherent", window="quarter", n_boot=0)
    recorded = RecordedMonitorResult(
        monitor_id=1,
        model_sha256=MODEL,
        scores_table="scores",
        created_at="2026-01-01T00:00:00.000000+00:00",
        result=found,
    )
    panel = monitoring_panel(recorded)
    assert panel.charts == ()
    assert all(row[-2:] == ("–", "–") for row in panel.view.performance_rows)
    assert [s.group for s in panel.view.charts] == [PatientGroup.NOT_ACTED_ON, PatientGroup.ALL]
