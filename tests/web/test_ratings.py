"""Each quality's ratings over sessions on the patient page, and the caseload's alerts
(rating drop, missing ratings, no recent encounter) and their filter (see ``_web`` for
the ratings of the synthetic scores)."""

from __future__ import annotations

import re

import pytest

from engagekit.web import create_app
from engagekit.web._data import ALERTS, quality_label, rating_alerts
from web._web import SECRET, TestClient, build_service_database, sign_in
from web.test_pages import check_page

DROP, MISSING, STALE = (
    ALERTS["rating_drop"],
    ALERTS["missing_ratings"],
    ALERTS["no_recent_encounter"],
)
#: lee's (team North's) patients and their alerts in the shown run
LEE_ALERTS = {
    "PAT-01": [DROP, STALE],  # empathy 4 -> 3: exactly 1 point
    "PAT-02": [],  # empathy 4 -> 3.1: 0.9 points
    "PAT-05": [MISSING],
    "PAT-07": [STALE],
    "PAT-08": [],  # not rated at the previous session only
    "PAT-10": [STALE],
    "PAT-11": [],  # empathy rises from 2 to 4
}


@pytest.mark.parametrize(
    ("latest", "previous", "latest_date", "expected"),
    [
        ([3.0, 3.0], [4.0, 3.0], "2026-05-01", [DROP]),  # exactly 1 point lower
        ([3.1, 3.0], [4.0, 3.0], "2026-05-01", []),  # 0.9 points lower
        ([5.0, 3.0], [4.0, 3.0], "2026-05-01", []),  # higher
        ([3.0, 3.0], [None, 3.0], "2026-05-01", []),  # not rated before: no drop
        ([3.0, 3.0], None, "2026-05-01", []),  # a first session
        ([3.0, None], [4.0, 3.0], "2026-05-01", [DROP, MISSING]),
        ([3.0, 3.0], [3.0, 3.0], "2026-04-01", []),  # 28 days before the newest
        ([3.0, 3.0], [3.0, 3.0], "2026-03-31", [STALE]),  # 29 days
        ([], None, "2026-03-31", [STALE]),  # no ratings at all: only the date
    ],
)
def test_each_alert_fires_exactly_when_its_rule_says(latest, previous, latest_date, expected):
    assert rating_alerts(latest, previous, latest_date, "2026-04-29") == expected


def test_quality_labels_are_readable():
    assert quality_label("active_listening") == "Active listening"
    assert quality_label("empathy") == "Empathy"


def test_the_caseload_shows_each_patients_alerts(service):
    body = service.clients["lee"].get("/api/v1/caseload").json()
    assert {r["patient_id"]: r["alerts"] for r in body["rows"]} == LEE_ALERTS
    assert body["alerts"] == ALERTS
    page = service.clients["lee"].get("/caseload").text
    check_page(page)
    assert '<th scope="col">Alerts</th>' in page
    assert '<td class="alerts">rating drop, no recent encounter</td>' in page
    assert '<label for="alert">Alert</label>' in page


@pytest.mark.parametrize("alert", [*ALERTS, "nonsense", ""])
def test_the_caseload_filters_by_alert(service, alert):
    lee = service.clients["lee"]
    body = lee.get(f"/api/v1/caseload?alert={alert}").json()
    words = ALERTS.get(alert)
    expected = {p for p, alerts in LEE_ALERTS.items() if words is None or words in alerts}
    assert {r["patient_id"] for r in body["rows"]} == expected
    page = lee.get(f"/caseload?alert={alert}").text
    assert set(re.findall(r'<th scope="row"><a href="/patients/(PAT-\d\d)"', page)) == expected
    if words is not None:
        assert f'<option value="{alert}" selected>' in page


def test_the_patient_page_shows_each_qualitys_ratings_at_each_session(service):
    body = service.clients["lee"].get("/api/v1/patients/PAT-05").json()
    assert body["qualities"] == ["Empathy", "Active listening"]
    assert [(s["session_number"], s["ratings"]) for s in body["ratings"]] == [
        (1, [4.0, 3.0]),
        (2, [4.0, 3.0]),
        (3, [4.0, 3.0]),
        (4, [4.0, None]),
    ]
    page = service.clients["lee"].get("/patients/PAT-05").text
    check_page(page)
    assert "<caption>Ratings of each quality at each session</caption>" in page
    assert '<th scope="col">Active listening</th>' in page
    assert page.count("not rated") == 1


def test_a_scores_table_without_ratings_still_serves_the_pages(tmp_path):
    engine = build_service_database(f"sqlite:///{tmp_path / 'unrated.db'}", ratings=False)
    app = create_app(engine, secret_key=SECRET, secure_cookies=False)
    client = TestClient(app, follow_redirects=False)
    assert sign_in(client, "lee").status_code == 303
    body = client.get("/api/v1/caseload").json()
    assert {r["patient_id"]: r["alerts"] for r in body["rows"]} == {
        p: [a for a in alerts if a == STALE] for p, alerts in LEE_ALERTS.items()
    }
    assert len(client.get("/api/v1/caseload?alert=rating_drop").json()["rows"]) == 0
    check_page(client.get("/caseload").text)
    detail = client.get("/api/v1/patients/PAT-05").json()
    assert detail["qualities"] == [] and detail["ratings"] == []
    page = client.get("/patients/PAT-05").text
    check_page(page)
    assert "Ratings of each quality" not in page and "Risk at each session" in page
    engine.dispose()
