"""Who may see what: every role × every route × their own patient, another's and one that
does not exist, on the pages and the API; each patient view audited exactly once."""

from __future__ import annotations

import re

import pytest

from web._web import audit_rows

ROLES = ("ana", "lee", "kim", "sam")  # clinician, team_lead, analyst, admin
PAGES = {
    "/caseload": {"ana", "lee"},
    "/team": {"lee"},
    "/service": {"kim"},
    "/audit": {"sam"},
    "/users": {"sam"},
}
#: each role's own patient, another's (not theirs), and one that does not exist
OWN = {"ana": "PAT-01", "lee": "PAT-02"}
OTHER = {"ana": "PAT-04", "lee": "PAT-03", "kim": "PAT-01", "sam": "PAT-01"}
MISSING = "PAT-99"
#: every identifier of the fixture's scores: patients, encounters, practitioners
IDENTIFIER = re.compile(r"PAT-\d\d|ENC-\d\d|PRAC-[ABC]")


def _patient(role: str, kind: str) -> str:
    return {"own": OWN.get(role, "PAT-01"), "other": OTHER[role], "missing": MISSING}[kind]


def _expected(role: str, kind: str) -> int:
    return 200 if kind == "own" and role in OWN else 404


@pytest.mark.parametrize("api", [False, True], ids=["page", "api"])
@pytest.mark.parametrize("route", sorted(PAGES))
@pytest.mark.parametrize("role", ROLES)
def test_each_role_uses_only_its_pages(service, role, route, api):
    path = f"/api/v1{route}" if api else route
    response = service.clients[role].get(path)
    assert response.status_code == (200 if role in PAGES[route] else 403), response.text
    if api:
        assert response.headers["content-type"].startswith("application/json")


@pytest.mark.parametrize("api", [False, True], ids=["page", "api"])
@pytest.mark.parametrize("kind", ["own", "other", "missing"])
@pytest.mark.parametrize("role", ROLES)
def test_patient_views_are_scoped_and_audited_once(service, role, kind, api):
    patient = _patient(role, kind)
    template = "/api/v1/patients/{patient_id}" if api else "/patients/{patient_id}"
    before = len(audit_rows(service.engine))
    response = service.clients[role].get(template.replace("{patient_id}", patient))
    expected = _expected(role, kind)
    assert response.status_code == expected, response.text
    new = audit_rows(service.engine)[before:]
    assert len(new) == 1, new
    row = new[0]
    username = {"ana": "ana", "lee": "lee", "kim": "kim", "sam": "sam"}[role]
    assert (row["username"], row["action"], row["route"], row["patient_id"]) == (
        username,
        "view",
        template,
        patient,
    )
    assert bool(row["allowed"]) is (expected == 200)
    assert row["at"].endswith("+00:00")
    if expected == 200:
        assert patient in response.text
    else:
        assert patient not in response.text


@pytest.mark.parametrize("api", [False, True], ids=["page", "api"])
@pytest.mark.parametrize("role", ROLES)
def test_another_patient_answers_exactly_as_a_missing_one(service, role, api):
    prefix = "/api/v1" if api else ""
    client = service.clients[role]
    other = client.get(f"{prefix}/patients/{OTHER[role]}")
    missing = client.get(f"{prefix}/patients/{MISSING}")
    assert other.status_code == missing.status_code == 404
    assert other.text == missing.text
    assert other.headers["content-type"] == missing.headers["content-type"]


@pytest.mark.parametrize("kind", ["own", "other", "missing"])
@pytest.mark.parametrize("role", ROLES)
def test_reviews_are_scoped_and_audited(service, role, kind):
    from web._web import csrf_of

    client = service.clients[role]
    patient = _patient(role, kind)
    token = csrf_of(client)
    before = len(audit_rows(service.engine))
    response = client.post(
        f"/patients/{patient}/review",
        data={"csrf_token": token, "status": "reviewed", "outcome": "contacted", "note": "ok"},
    )
    expected = 303 if _expected(role, kind) == 200 else 404
    assert response.status_code == expected, response.text
    new = audit_rows(service.engine)[before:]
    assert [(r["action"], r["patient_id"], bool(r["allowed"])) for r in new] == [
        ("flag_review", patient, expected == 303)
    ]
    assert new[0]["route"] == "/patients/{patient_id}/review"


@pytest.mark.parametrize("kind", ["own", "other", "missing"])
@pytest.mark.parametrize("role", ROLES)
def test_api_reviews_are_scoped_and_audited(service, role, kind):
    client = service.clients[role]
    patient = _patient(role, kind)
    token = client.get("/api/v1/session").json()["csrf_token"]
    before = len(audit_rows(service.engine))
    response = client.post(
        f"/api/v1/patients/{patient}/reviews",
        json={"status": "reviewed", "outcome": "contacted", "note": "ok"},
        headers={"X-CSRF-Token": token},
    )
    expected = 201 if _expected(role, kind) == 200 else 404
    assert response.status_code == expected, response.text
    if expected == 201:
        assert response.json() == {
            "status": "reviewed", "outcome": "contacted", "note": "ok", "until": None
        }  # fmt: skip
    new = audit_rows(service.engine)[before:]
    assert [(r["action"], r["patient_id"], bool(r["allowed"])) for r in new] == [
        ("flag_review", patient, expected == 201)
    ]
    assert new[0]["route"] == "/api/v1/patients/{patient_id}/reviews"


def test_an_api_review_without_the_csrf_header_is_refused_and_stores_nothing(service):
    client = service.clients["ana"]
    before = len(audit_rows(service.engine))
    for headers in ({}, {"X-CSRF-Token": "not-the-token"}):
        response = client.post(
            f"/api/v1/patients/{OWN['ana']}/reviews",
            json={"status": "reviewed", "outcome": "contacted"},
            headers=headers,
        )
        assert response.status_code == 403, response.text
    assert len(audit_rows(service.engine)) == before


def test_an_api_review_with_a_bad_value_says_what_is_wrong(service):
    client = service.clients["ana"]
    token = client.get("/api/v1/session").json()["csrf_token"]
    response = client.post(
        f"/api/v1/patients/{OWN['ana']}/reviews",
        json={"status": "do_not_contact", "until": "yesterday"},
        headers={"X-CSRF-Token": token},
    )
    assert response.status_code == 400
    assert "until which not to contact" in response.json()["detail"]


def test_the_caseload_holds_only_the_users_current_patients(service):
    ana = service.clients["ana"].get("/api/v1/caseload").json()
    assert [row["patient_id"] for row in ana["rows"]] == ["PAT-10", "PAT-07", "PAT-01"]
    lee = service.clients["lee"].get("/api/v1/caseload").json()
    assert {row["patient_id"] for row in lee["rows"]} == {
        "PAT-01", "PAT-02", "PAT-05", "PAT-07", "PAT-08", "PAT-10", "PAT-11",
    }  # fmt: skip
    page = service.clients["ana"].get("/caseload").text
    assert set(re.findall(r"PAT-\d\d", page)) == {"PAT-10", "PAT-07", "PAT-01"}
    team = service.clients["lee"].get("/api/v1/team").json()
    assert [(r["practitioner_id"], r["patients"]) for r in team["rows"]] == [
        ("PRAC-A", 3),
        ("PRAC-B", 4),
    ]


def test_a_caseload_view_writes_one_audit_row_naming_no_patient(service):
    before = len(audit_rows(service.engine))
    assert service.clients["ana"].get("/caseload").status_code == 200
    new = audit_rows(service.engine)[before:]
    assert [(r["action"], r["route"], r["patient_id"]) for r in new] == [
        ("view", "/caseload", None)
    ]


ANALYST_PATHS = (
    "/",
    "/service",
    "/api/v1/service",
    "/caseload",
    "/api/v1/caseload",
    "/team",
    "/api/v1/team",
    "/audit",
    "/api/v1/audit",
    "/users",
    "/api/v1/users",
    "/patients/PAT-01",
    "/api/v1/patients/PAT-01",
    "/api/v1/openapi.json",
    "/no/such/page",
)


@pytest.mark.parametrize("path", ANALYST_PATHS)
def test_an_analyst_never_sees_an_identifier(service, path):
    response = service.clients["kim"].get(path, follow_redirects=True)
    assert response.status_code in (200, 403, 404)
    assert IDENTIFIER.search(response.text) is None, IDENTIFIER.search(response.text)


def test_the_service_page_counts_without_identifiers(service):
    body = service.clients["kim"].get("/api/v1/service").json()
    assert sum(t["patients"] for t in body["treatments"]) == 12
    assert body["runs_by_status"] == {"complete": 1, "replaced": 1, "running": 1}
    assert "Counselling" in service.clients["kim"].get("/service").text


SIGNED_IN_ROUTES = ("/caseload", "/team", "/service", "/audit", "/users", "/patients/PAT-01")


@pytest.mark.parametrize("route", ["/", *SIGNED_IN_ROUTES])
def test_a_page_without_a_session_signs_in_first(service, route):
    response = service.client().get(route)
    assert response.status_code == 303
    assert response.headers["location"] == "/login"


@pytest.mark.parametrize("route", SIGNED_IN_ROUTES)
def test_the_api_without_a_session_answers_401(service, route):
    response = service.client().get(f"/api/v1{route}")
    assert response.status_code == 401
    assert response.json() == {"detail": "Not signed in."}


def test_a_review_without_a_session_is_refused_and_stores_nothing(service):
    client = service.client()
    before = len(audit_rows(service.engine))
    response = client.post("/patients/PAT-01/review", data={"status": "reviewed"})
    assert response.status_code == 303 and response.headers["location"] == "/login"
    assert len(audit_rows(service.engine)) == before


@pytest.mark.parametrize("role", ROLES)
def test_the_root_sends_each_role_home(service, role):
    response = service.clients[role].get("/")
    assert response.status_code == 303
    assert (
        response.headers["location"]
        == {
            "ana": "/caseload",
            "lee": "/team",
            "kim": "/service",
            "sam": "/audit",
        }[role]
    )
