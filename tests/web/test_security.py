"""Sign-in, sessions, CSRF, the rate limit, the security headers and the server's log."""

from __future__ import annotations

import datetime as dt
import logging

import pytest
import sqlalchemy as sa
from itsdangerous import URLSafeSerializer

from engagekit.db import FLAG_REVIEWS, LOGIN_FAILURES, WEB_SESSIONS
from engagekit.web import create_app, disable_user
from engagekit.web._security import CONTENT_SECURITY_POLICY, hash_token
from engagekit.web._sessions import TOUCH_EVERY
from web._web import PASSWORD, SECRET, TestClient, audit_rows, csrf_of, sign_in

SESSION = "engagekit_session"


def _sessions(engine) -> list[str]:
    with engine.connect() as connection:
        return list(connection.execute(sa.select(WEB_SESSIONS.c.token_sha256)).scalars())


def _token(client) -> str:
    signed = client.cookies[SESSION]
    return URLSafeSerializer(SECRET, salt="engagekit-session").loads(signed)


def _signed_in(service, username: str = "ana", address: str = "testclient"):
    client = service.client(address)
    assert sign_in(client, username).status_code == 303
    return client


# --------------------------------------------------------------------------- sign-in
def test_sign_in_without_the_forms_csrf_token_is_refused(service):
    client = service.client()
    client.get("/login")  # the pre-session cookie, but no token in the form
    before = _sessions(service.engine)
    response = client.post("/login", data={"username": "ana", "password": PASSWORD})
    assert response.status_code == 403
    assert "expired or did not come from this site" in response.text
    assert SESSION not in client.cookies
    assert _sessions(service.engine) == before


def test_sign_in_with_a_token_but_no_cookie_is_refused(service):
    donor = service.client()
    form = donor.get("/login").text
    token = form.split('name="csrf_token" value="')[1].split('"')[0]
    client = service.client()  # another browser: the token without its cookie
    response = client.post(
        "/login", data={"username": "ana", "password": PASSWORD, "csrf_token": token}
    )
    assert response.status_code == 403
    assert SESSION not in client.cookies


def test_the_sixth_failed_sign_in_in_a_row_is_refused_even_with_the_password(service):
    client = service.client("10.0.0.1")
    for _ in range(5):
        response = sign_in(client, "rita", "not the password at all")
        assert response.status_code == 401
        assert "not right" in response.text
    response = sign_in(client, "rita", PASSWORD)
    assert response.status_code == 429
    assert "Too many failed sign-ins" in response.text
    assert SESSION not in client.cookies
    # from another address too: the limit is the user name's
    assert sign_in(service.client("10.0.0.9"), "rita", PASSWORD).status_code == 429
    # once the window has passed, the right password signs in, and clears the failures
    old = (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=16)).isoformat()
    with service.engine.begin() as connection:
        connection.execute(
            LOGIN_FAILURES.update().where(LOGIN_FAILURES.c.username == "rita").values(at=old)
        )
    assert sign_in(client, "rita", PASSWORD).status_code == 303
    with service.engine.connect() as connection:
        left = connection.execute(
            sa.select(sa.func.count()).where(LOGIN_FAILURES.c.username == "rita")
        ).scalar_one()
    assert left == 0


def test_too_many_failures_from_one_address_are_refused(service):
    client = service.client("10.0.0.2")
    for k in range(20):
        assert sign_in(client, f"nobody{k}", "wrong password here").status_code == 401
    assert sign_in(client, "ana", PASSWORD).status_code == 429
    assert sign_in(service.client("10.0.0.3"), "ana", PASSWORD).status_code == 303


def test_the_session_cookie_is_signed_httponly_and_strict(service):
    client = service.client()
    response = sign_in(client, "ana")
    cookie = next(c for c in response.headers.get_list("set-cookie") if c.startswith(f"{SESSION}="))
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/" in cookie
    assert "Secure" not in cookie  # plain loopback: the app was made so
    token = _token(client)
    stored = _sessions(service.engine)
    assert hash_token(token) in stored and token not in stored


def test_secure_cookies_are_marked_secure(service):
    app = create_app(service.engine, secret_key=SECRET, secure_cookies=True)
    client = TestClient(app, base_url="https://testserver", follow_redirects=False)
    form = client.get("/login")
    assert all("Secure" in c for c in form.headers.get_list("set-cookie"))
    response = sign_in(client, "ana")
    assert response.status_code == 303
    assert all("Secure" in c for c in response.headers.get_list("set-cookie"))
    assert response.headers["strict-transport-security"] == "max-age=31536000"
    assert "strict-transport-security" not in service.client().get("/login").headers


@pytest.mark.parametrize("how", ["one character changed", "another secret", "unsigned"])
def test_a_tampered_session_cookie_is_refused(service, how):
    signed = service.clients["ana"].cookies[SESSION]
    token = URLSafeSerializer(SECRET, salt="engagekit-session").loads(signed)
    forged = {
        # (in the middle: a signature's last base64 character carries padding bits)
        "one character changed": signed[:5] + ("A" if signed[5] != "A" else "B") + signed[6:],
        "another secret": URLSafeSerializer("x" * 40, salt="engagekit-session").dumps(token),
        "unsigned": token,
    }[how]
    client = TestClient(service.app, follow_redirects=False, cookies={SESSION: forged})
    page = client.get("/caseload")
    assert page.status_code == 303 and page.headers["location"] == "/login"
    assert client.get("/api/v1/caseload").status_code == 401


# --------------------------------------------------------------------------- sessions
def test_an_idle_session_ends(service):
    client = _signed_in(service)
    digest = hash_token(_token(client))

    def idle_for(minutes: int) -> None:
        stamp = (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=minutes)).isoformat()
        with service.engine.begin() as connection:
            connection.execute(
                WEB_SESSIONS.update()
                .where(WEB_SESSIONS.c.token_sha256 == digest)
                .values(last_seen_at=stamp)
            )

    idle_for(29)
    assert client.get("/caseload").status_code == 200  # and the clock restarts
    idle_for(31)
    response = client.get("/caseload")
    assert response.status_code == 303 and response.headers["location"] == "/login"
    assert digest not in _sessions(service.engine)


def test_the_idle_timeout_is_configurable(service):
    app = create_app(
        service.engine,
        secret_key=SECRET,
        secure_cookies=False,
        idle_timeout=dt.timedelta(minutes=5),
    )
    client = TestClient(app, follow_redirects=False)
    assert sign_in(client, "ana").status_code == 303
    stamp = (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=6)).isoformat()
    with service.engine.begin() as connection:
        connection.execute(
            WEB_SESSIONS.update()
            .where(WEB_SESSIONS.c.token_sha256 == hash_token(_token(client)))
            .values(last_seen_at=stamp)
        )
    assert client.get("/api/v1/caseload").status_code == 401


def test_logout_ends_the_session(service):
    client = _signed_in(service)
    signed = client.cookies[SESSION]
    digest = hash_token(_token(client))
    refused = client.post("/logout", data={})  # no CSRF token: refused, still signed in
    assert refused.status_code == 403
    assert digest in _sessions(service.engine)
    response = client.post("/logout", data={"csrf_token": csrf_of(client)})
    assert response.status_code == 303 and response.headers["location"] == "/login"
    assert digest not in _sessions(service.engine)
    replay = TestClient(service.app, follow_redirects=False, cookies={SESSION: signed})
    assert replay.get("/caseload").status_code == 303
    assert replay.get("/api/v1/caseload").status_code == 401


def test_signing_in_again_ends_the_old_session(service):
    signed_in = _signed_in(service)
    old = hash_token(_token(signed_in))
    client = service.client()  # the sign-in form, as from another tab of that browser
    form = client.get("/login").text
    token = form.split('name="csrf_token" value="')[1].split('"')[0]
    client.cookies.set(SESSION, signed_in.cookies[SESSION])
    response = client.post(
        "/login", data={"username": "ana", "password": PASSWORD, "csrf_token": token}
    )
    assert response.status_code == 303
    new = URLSafeSerializer(SECRET, salt="engagekit-session").loads(response.cookies[SESSION])
    stored = _sessions(service.engine)
    assert old not in stored and hash_token(new) in stored


def test_a_disabled_users_session_ends(service):
    from engagekit.web import add_user

    add_user(service.engine, "otto", "clinician", PASSWORD, practitioners=["PRAC-A"])
    client = _signed_in(service, "otto")
    assert client.get("/caseload").status_code == 200
    disable_user(service.engine, "otto")
    assert client.get("/caseload").status_code == 303


def test_a_review_without_the_sessions_csrf_token_is_refused(service):
    client = service.clients["ana"]
    before = len(audit_rows(service.engine))
    with service.engine.connect() as connection:
        reviews = connection.execute(sa.select(sa.func.count()).select_from(FLAG_REVIEWS))
        count = reviews.scalar_one()
    for data in ({}, {"csrf_token": "forged"}):
        response = client.post(
            "/patients/PAT-01/review", data={**data, "status": "reviewed", "outcome": "other"}
        )
        assert response.status_code == 403
    with service.engine.connect() as connection:
        reviews = connection.execute(sa.select(sa.func.count()).select_from(FLAG_REVIEWS))
        assert reviews.scalar_one() == count
    assert len(audit_rows(service.engine)) == before


# --------------------------------------------------------------------------- headers
SIGNED_IN_PATHS = (
    "/caseload",
    "/caseload?flag=high",
    "/patients/PAT-01",
    "/patients/PAT-99",
    "/team",
    "/api/v1/caseload",
    "/api/v1/patients/PAT-01",
    "/api/v1/patients/PAT-99",
    "/api/v1/team",
    "/api/v1/openapi.json",
    "/no/such/page",
    "/logout",  # GET: 405
    "/",
)
SIGNED_OUT_PATHS = ("/login", "/", "/caseload", "/api/v1/caseload", "/api/v1/openapi.json")


def _check_headers(response, *, cached: bool = False) -> None:
    headers = response.headers
    assert headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert "default-src 'self'" in CONTENT_SECURITY_POLICY
    assert "script-src 'self'" in CONTENT_SECURITY_POLICY
    assert "frame-ancestors 'none'" in CONTENT_SECURITY_POLICY
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "no-referrer"
    if not cached:
        assert headers["cache-control"] == "no-store"


@pytest.mark.parametrize("path", SIGNED_IN_PATHS)
def test_every_signed_in_response_carries_the_security_headers(service, path):
    response = service.clients["ana"].get(path)
    assert response.status_code in (200, 303, 403, 404, 405)
    _check_headers(response)


@pytest.mark.parametrize("path", SIGNED_OUT_PATHS)
def test_every_signed_out_response_carries_the_security_headers(service, path):
    _check_headers(service.client().get(path))


def test_the_stylesheet_carries_the_security_headers(service):
    response = service.client().get("/static/engagekit.css")
    assert response.status_code == 200
    _check_headers(response, cached=True)
    assert service.client().get("/static/nothing.css").status_code == 404


def test_posts_carry_the_security_headers(service):
    _check_headers(service.client().post("/login", data={}))
    _check_headers(service.clients["ana"].post("/patients/PAT-01/review", data={}))


def test_a_server_error_carries_the_security_headers_and_no_detail(service, monkeypatch, caplog):
    def broken(scope):
        raise RuntimeError("PAT-01 broke it")

    monkeypatch.setattr(service.app.state.engagekit.source, "team", broken)
    client = TestClient(
        service.app,
        follow_redirects=False,
        raise_server_exceptions=False,
        cookies={SESSION: service.clients["lee"].cookies[SESSION]},
    )
    with caplog.at_level(logging.DEBUG):
        response = client.get("/team")
    assert response.status_code == 500
    _check_headers(response)
    assert "PAT-01" not in response.text and "Something went wrong" in response.text
    server = [r for r in caplog.records if not r.name.startswith(("httpx", "httpcore"))]
    assert "internal error on GET /team: RuntimeError" in [r.getMessage() for r in server]
    assert not [r for r in server if "PAT-01" in r.getMessage() or r.exc_info]


# --------------------------------------------------------------------------- the log
def test_the_servers_log_never_names_a_patient(service, caplog):
    from web._web import csrf_of

    caplog.set_level(logging.DEBUG)
    ana = service.clients["ana"]
    for path in (
        "/patients/PAT-01",
        "/patients/PAT-04",
        "/patients/PAT-99",
        "/api/v1/patients/PAT-01",
        "/api/v1/patients/PAT-04",
        "/caseload?q=PAT-01",
    ):
        ana.get(path)
    ana.post(
        "/patients/PAT-01/review",
        data={"csrf_token": csrf_of(ana), "status": "reviewed", "outcome": "discussed"},
    )
    ana.post("/patients/PAT-04/review", data={"csrf_token": csrf_of(ana), "status": "x"})
    # the server's records: not the test client's own (httpx logs the URLs it asks for)
    server = [r for r in caplog.records if not r.name.startswith(("httpx", "httpcore"))]
    messages = [record.getMessage() for record in server]
    assert "GET /patients/{patient_id} 200" in messages
    assert "GET /patients/{patient_id} 404" in messages
    assert "GET /api/v1/patients/{patient_id} 404" in messages
    assert "POST /patients/{patient_id}/review 303" in messages
    assert not [m for m in messages if "PAT-" in m]
    assert any(r.name.startswith("httpx") and "PAT-01" in r.getMessage() for r in caplog.records)


def test_a_sessions_last_use_is_written_once_a_minute_not_on_every_request(service):
    client = _signed_in(service)
    digest = hash_token(_token(client))

    def last_seen() -> str:
        with service.engine.connect() as connection:
            return connection.execute(
                sa.select(WEB_SESSIONS.c.last_seen_at).where(WEB_SESSIONS.c.token_sha256 == digest)
            ).scalar_one()

    first = last_seen()
    assert client.get("/caseload").status_code == 200
    assert last_seen() == first  # seconds after the last write: not written again
    earlier = (dt.datetime.now(dt.UTC) - TOUCH_EVERY - dt.timedelta(seconds=1)).isoformat()
    with service.engine.begin() as connection:
        connection.execute(
            WEB_SESSIONS.update()
            .where(WEB_SESSIONS.c.token_sha256 == digest)
            .values(last_seen_at=earlier)
        )
    assert client.get("/caseload").status_code == 200
    assert last_seen() > earlier
