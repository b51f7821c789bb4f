"""What the pages show (the latest complete run, the caseload by risk, a patient's risk,
reasons and reviews, the team, the service, the audit log) and how they are built
(accessible HTML, no script, the statement on every page)."""

from __future__ import annotations

import datetime as dt
import re
from html.parser import HTMLParser

import pytest
import sqlalchemy as sa

from engagekit.db import FLAG_REVIEWS
from engagekit.web import STATEMENT, add_user, create_app
from web._web import PASSWORD, SECRET, TestClient, csrf_of, sign_in

VOID = {"meta", "link", "input", "br", "img", "hr", "source", "col", "wbr"}
SVG_EMPTY = {"polyline", "line", "circle", "path", "rect"}


class _Checker(HTMLParser):
    """Balanced tags, labelled fields, scoped headers, no script or inline style."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.problems: list[str] = []
        self.fields: list[str] = []
        self.labels: set[str] = set()
        self.ids: list[str] = []
        self.html_lang: str | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if "id" in a:
            self.ids.append(a["id"])
        if tag == "html":
            self.html_lang = a.get("lang")
        if tag == "script" or "style" in a or any(k.startswith("on") for k in a):
            self.problems.append(f"script or inline style: <{tag} {a}>")
        if tag == "th" and a.get("scope") not in ("col", "row"):
            self.problems.append(f"<th> without scope: {a}")
        if tag in ("input", "select", "textarea") and a.get("type") != "hidden":
            self.fields.append(a.get("id") or f"<{tag} name={a.get('name')}> without id")
        if tag == "label" and "for" in a:
            self.labels.add(a["for"])
        if tag not in VOID and tag not in SVG_EMPTY:
            self.stack.append(tag)

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)
        if tag not in VOID and tag not in SVG_EMPTY:
            self.stack.pop()

    def handle_endtag(self, tag):
        if tag in VOID or tag in SVG_EMPTY:
            return
        if not self.stack or self.stack[-1] != tag:
            self.problems.append(f"</{tag}> closes {self.stack[-1:]}")
            return
        self.stack.pop()


def check_page(html: str) -> None:
    assert html.startswith("<!DOCTYPE html>")
    checker = _Checker()
    checker.feed(html)
    checker.close()
    assert checker.html_lang == "en"
    assert not checker.problems, checker.problems
    assert not checker.stack, checker.stack
    unlabelled = [f for f in checker.fields if f not in checker.labels]
    assert not unlabelled, unlabelled
    assert len(checker.ids) == len(set(checker.ids)), "duplicate ids"
    assert '<a class="skip" href="#main">' in html and 'id="main"' in html
    assert STATEMENT in html


PAGES = {
    "ana": ["/caseload", "/caseload?flag=high&treatment=CBT&q=1", "/patients/PAT-01"],
    "lee": ["/team", "/caseload", "/patients/PAT-02"],
    "kim": ["/service"],
    "sam": ["/audit", "/users"],
}


@pytest.mark.parametrize(
    ("role", "path"), [(role, path) for role, paths in PAGES.items() for path in paths]
)
def test_every_page_is_accessible_html_with_the_statement(service, role, path):
    response = service.clients[role].get(path)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    check_page(response.text)


@pytest.mark.parametrize("path", ["/login", "/no/such/page", "/patients/PAT-99", "/team"])
def test_sign_in_and_error_pages_carry_the_statement_too(service, path):
    client = service.client() if path == "/login" else service.clients["ana"]
    response = client.get(path)
    assert response.status_code in (200, 403, 404)
    check_page(response.text)


def test_the_caseload_is_the_latest_complete_run_by_risk(service):
    body = service.clients["ana"].get("/api/v1/caseload").json()
    assert body["run"]["run_id"] == 2 and body["run"]["high_threshold"] == 0.6
    rows = body["rows"]
    # PAT-10: 3 sessions, risk 0.05 + 0.7 + 0.09 in run 2 (0.80 in run 1, 0.86 running)
    assert rows[0]["patient_id"] == "PAT-10" and rows[0]["risk"] == pytest.approx(0.84)
    assert [r["risk"] for r in rows] == sorted((r["risk"] for r in rows), reverse=True)
    assert rows[0]["risks"] == pytest.approx([0.78, 0.81, 0.84])
    assert rows[0]["risk_vs_service"] == pytest.approx(0.84 - body["run"]["mean_risk"])
    assert (rows[0]["treatment"], rows[0]["session_number"], rows[0]["encounter_date"]) == (
        "IPT",
        3,
        "2026-04-10",
    )
    page = service.clients["ana"].get("/caseload").text
    assert re.search(r'class="flag flag-high">High<', page)  # the word as well as the colour
    assert "84%" in page and '<svg class="sparkline"' in page and "points" in page


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("flag=high", ["PAT-10", "PAT-07"]),
        ("flag=low", ["PAT-01"]),
        ("treatment=IPT", ["PAT-10", "PAT-07", "PAT-01"]),
        ("treatment=CBT", []),
        ("q=pat-0", ["PAT-07", "PAT-01"]),
        ("q=10", ["PAT-10"]),
        ("flag=nonsense", ["PAT-10", "PAT-07", "PAT-01"]),
    ],
)
def test_the_caseload_filters(service, query, expected):
    body = service.clients["ana"].get(f"/api/v1/caseload?{query}").json()
    assert [r["patient_id"] for r in body["rows"]] == expected
    page = service.clients["ana"].get(f"/caseload?{query}").text
    assert re.findall(r'<th scope="row"><a href="/patients/(PAT-\d\d)"', page) == expected


def test_the_patient_page_shows_risk_reasons_contributions(service):
    body = service.clients["ana"].get("/api/v1/patients/PAT-07").json()
    assert [s["session_number"] for s in body["sessions"]] == [1, 2, 3]
    assert body["reasons"] == ["Low rating of empathy", "Fewer sessions attended so far"]
    assert [c["group"] for c in body["contributions"]] == ["quality", "history", "treatment"]
    page = service.clients["ana"].get("/patients/PAT-07").text
    assert "high flag at 60%" in page
    assert "<li>Low rating of empathy</li>" in page
    assert "raises the risk" in page and "lowers the risk" in page
    assert "No reviews yet." in page


def test_a_review_is_stored_audited_and_shown(service):
    ana = service.clients["ana"]
    response = ana.post(
        "/patients/PAT-10/review",
        data={
            "csrf_token": csrf_of(ana),
            "status": "reviewed",
            "outcome": "contacted",
            "note": "Rang <b>today</b>",
        },
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/patients/PAT-10#reviews"
    page = ana.get("/patients/PAT-10").text
    assert "Contacted the patient" in page and "Rang &lt;b&gt;today&lt;/b&gt;" in page
    caseload = ana.get("/caseload").text
    assert re.search(r"Reviewed \d{4}-\d\d-\d\d: Contacted the patient", caseload)
    until = (dt.date.today() + dt.timedelta(days=14)).isoformat()
    response = ana.post(
        "/patients/PAT-10/review",
        data={"csrf_token": csrf_of(ana), "status": "do_not_contact", "until": until},
    )
    assert response.status_code == 303
    assert f"Do not contact until {until}" in ana.get("/caseload").text
    with service.engine.connect() as connection:
        rows = connection.execute(
            sa.select(FLAG_REVIEWS).where(FLAG_REVIEWS.c.patient_id == "PAT-10")
        ).mappings()
        stored = [(r["status"], r["outcome"], r["until"], r["encounter_id"]) for r in rows]
    assert stored == [
        ("reviewed", "contacted", None, "ENC-10-3"),
        ("do_not_contact", None, until, "ENC-10-3"),
    ]
    lee = service.clients["lee"].get("/api/v1/patients/PAT-10").json()
    assert [r["status"] for r in lee["reviews"]] == ["do_not_contact", "reviewed"]


@pytest.mark.parametrize(
    "data",
    [
        {"status": "reviewed"},
        {"status": "reviewed", "outcome": "shrugged"},
        {"status": "do_not_contact"},
        {"status": "do_not_contact", "until": "2020-01-01"},
        {"status": "do_not_contact", "until": "next week"},
        {"status": "reviewed", "outcome": "other", "note": "x" * 501},
        {"status": "closed"},
    ],
)
def test_an_invalid_review_is_refused_and_nothing_stored(service, data):
    ana = service.clients["ana"]
    with service.engine.connect() as connection:
        count = connection.execute(sa.select(sa.func.count()).select_from(FLAG_REVIEWS))
        before = count.scalar_one()
    response = ana.post("/patients/PAT-07/review", data={"csrf_token": csrf_of(ana), **data})
    assert response.status_code == 400
    check_page(response.text)
    with service.engine.connect() as connection:
        count = connection.execute(sa.select(sa.func.count()).select_from(FLAG_REVIEWS))
        assert count.scalar_one() == before


def test_the_team_page_counts_each_practitioners_patients(service):
    body = service.clients["lee"].get("/api/v1/team").json()
    assert body["team"] == "North"
    counts = [(r["practitioner_id"], r["patients"], r["high"], r["medium"]) for r in body["rows"]]
    assert counts == [
        ("PRAC-A", 3, 2, 0),
        ("PRAC-B", 4, 2, 1),
    ]
    assert "PRAC-C" not in service.clients["lee"].get("/team").text


def test_the_service_page_gives_rates_per_treatment(service):
    body = service.clients["kim"].get("/api/v1/service").json()
    rates = {t["treatment"]: t for t in body["treatments"]}
    assert set(rates) == {"CBT", "IPT", "Counselling"}
    assert all(t["patients"] == 4 for t in rates.values())
    assert rates["IPT"]["high_rate"] == pytest.approx(rates["IPT"]["high"] / 4)
    page = service.clients["kim"].get("/service").text
    assert "Current flags by treatment" in page


def test_the_audit_page_lists_the_log_newest_first(service):
    service.clients["ana"].get("/patients/PAT-01")
    body = service.clients["sam"].get("/api/v1/audit").json()
    stamps = [row["at"] for row in body["rows"]]
    assert stamps == sorted(stamps, reverse=True)
    assert body["rows"][0]["patient_id"] == "PAT-01"
    assert body["rows"][0]["route"] == "/patients/{patient_id}"
    assert "/patients/{patient_id}" in service.clients["sam"].get("/audit").text


def test_the_openapi_schema_lists_the_api_only(service):
    schema = service.client().get("/api/v1/openapi.json").json()
    assert sorted(schema["paths"]) == [
        "/api/v1/audit",
        "/api/v1/caseload",
        "/api/v1/patients/{patient_id}",
        "/api/v1/patients/{patient_id}/reviews",
        "/api/v1/service",
        "/api/v1/session",
        "/api/v1/team",
        "/api/v1/users",
    ]
    assert service.client().get("/docs").status_code == 404


def test_without_a_complete_run_the_pages_say_so(tmp_path):
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'empty.db'}")
    add_user(engine, "ana", "clinician", PASSWORD, practitioners=["PRAC-A"])
    add_user(engine, "kim", "analyst", PASSWORD)
    app = create_app(engine, secret_key=SECRET, secure_cookies=False)
    for name, path in (("ana", "/caseload"), ("kim", "/service")):
        client = TestClient(app, follow_redirects=False)
        assert sign_in(client, name).status_code == 303
        response = client.get(path)
        assert response.status_code == 200
        assert "No complete scoring run yet" in response.text
        check_page(response.text)
    client = TestClient(app, follow_redirects=False)
    sign_in(client, "ana")
    assert client.get("/patients/PAT-01").status_code == 404
    engine.dispose()


def test_risk_axes_fit_the_risks_shown(service):
    """A risk axis runs from 0 to the smallest of RISK_AXIS_TOPS that holds the risks and
    the high-flag threshold: PAT-01's risks (0.15 to 0.21) and the threshold (0.6) on
    0–60%, not flat along the bottom of 0–100%."""
    from engagekit.web._data import risk_axis_top

    assert risk_axis_top(0.03, 0.11) == 0.2 and risk_axis_top(0.05) == 0.1
    assert risk_axis_top(0.61) == 0.8 and risk_axis_top(None) == 1.0
    page = service.clients["ana"].get("/patients/PAT-01").text
    assert ">60%</text>" in page and ">30%</text>" in page and ">100%</text>" not in page
    # the threshold line sits at the top of the axis: y = 10
    assert re.search(r'<line x1="40" y1="10\.0" x2="470" y2="10\.0" stroke="#b00020"', page)
    caseload = service.clients["ana"].get("/caseload").text  # risks up to 0.84
    assert "Risk over sessions (0 to 100%)" in caseload
    low = service.clients["ana"].get("/caseload?flag=low").text  # PAT-01 only; threshold 0.6
    assert "Risk over sessions (0 to 60%)" in low
