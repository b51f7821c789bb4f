"""The clinician web page of ``engagekit serve``: a FastAPI application of server-rendered
pages (Jinja2) and a JSON API under ``/api/v1``, on the score database.

Security lives here, in one place:

- every request but the sign-in page and the stylesheet needs a signed-in session
  (:func:`_signed_in`); pages redirect to ``/login``, the API answers 401;
- every query of patients' data goes through the user's :class:`~._scope.Scope`
  (:func:`_scope`), and a route the role may not use answers 403; a patient outside
  the user's scope answers 404, exactly as one that does not exist;
- every POST form carries a CSRF token (the session's; the sign-in form's is a signed
  pre-session cookie, double submit);
- every response carries the security headers of :func:`~._security.security_headers`;
- the server's own log names routes by their template (``/patients/{patient_id}``),
  never by the path, so patient identifiers never reach it.

Every page says that flags support a conversation and never decide care.

Examples
--------
>>> import sqlalchemy as sa
>>> app = create_app(sa.create_engine("sqlite://"), secret_key="x" * 32, secure_cookies=False)
>>> sorted(app.openapi()["paths"])  # the JSON API; the pages are not part of it
['/api/v1/audit', '/api/v1/caseload', '/api/v1/patients/{patient_id}', \
'/api/v1/patients/{patient_id}/reviews', '/api/v1/service', '/api/v1/session', '/api/v1/team', \
'/api/v1/users']
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import secrets
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, urlencode

import jinja2
import sqlalchemy as sa
from fastapi import APIRouter, Depends, FastAPI, Form, Header, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..db import ROLES, upgrade_database
from ..errors import ArgumentError
from ._accounts import UserRecord, add_user, disable_user, list_users, verify_password
from ._data import (
    NOTE_LENGTH,
    OUTCOMES,
    AuditPage,
    Caseload,
    PatientDetail,
    ScoresSource,
    Service,
    Team,
    format_difference,
    format_risk,
    risk_axis_top,
    sparkline_points,
)
from ._monitoring import monitoring_panel
from ._scope import Scope, scope_of
from ._security import CookieSigner, new_token, same_token, security_headers
from ._sessions import (
    FAILURE_WINDOW,
    IDLE_TIMEOUT,
    SignedIn,
    clear_failures,
    end_session,
    load_session,
    record_failure,
    start_session,
    too_many_failures,
)

__all__ = ["STATEMENT", "create_app"]

#: What every page says about the flags.
STATEMENT = (
    "Flags support a conversation with the patient and their practitioner; they never decide care."
)
SESSION_COOKIE = "engagekit_session"
LOGIN_COOKIE = "engagekit_login"
PATIENT_ROUTE = "/patients/{patient_id}"
REVIEW_ROUTE = "/patients/{patient_id}/review"
API_PATIENT_ROUTE = "/api/v1/patients/{patient_id}"
#: The server's log: one line per request, naming the route's template, never its path.
log = logging.getLogger("engagekit.web")
_HERE = Path(__file__).parent


class _NotSignedIn(Exception):
    """The request has no live session."""


@dataclasses.dataclass(frozen=True)
class _Server:
    engine: sa.Engine
    source: ScoresSource
    sessions: CookieSigner
    logins: CookieSigner
    secure_cookies: bool
    idle_timeout: dt.timedelta
    templates: jinja2.Environment


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(_HERE / "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["risk"] = format_risk
    env.filters["difference"] = format_difference
    env.filters["pid"] = lambda value: quote(str(value), safe="")
    env.globals["sparkline_points"] = sparkline_points
    env.globals["risk_axis_top"] = risk_axis_top
    env.globals["outcomes"] = OUTCOMES
    env.globals["statement"] = STATEMENT
    return env


def create_app(
    engine: sa.Engine,
    *,
    secret_key: str | None = None,
    secure_cookies: bool = True,
    idle_timeout: dt.timedelta = IDLE_TIMEOUT,
    scores_table: str = "scores",
) -> FastAPI:
    """The web application on the database of ``engine``.

    Parameters
    ----------
    engine : sqlalchemy.Engine
        The score database; engagekit's tables in it are brought to the newest revision.
    secret_key : str, optional
        Signs the cookies. Without one, a random key is made (and the log says so):
        sessions then end when the server stops.
    secure_cookies : bool
        Mark the cookies ``Secure`` (sent over HTTPS only). Only a server on plain HTTP
        bound to the loopback address should turn this off.
    idle_timeout : datetime.timedelta
        A session unused for longer ends.
    scores_table : str
        The scores table whose latest complete run the pages show.
    """
    if not secret_key:
        secret_key = secrets.token_urlsafe(32)
        log.warning(
            "ENGAGEKIT_SECRET_KEY is not set: a random secret signs the cookies, so "
            "sessions end when the server stops"
        )
    upgrade_database(engine)
    server = _Server(
        engine=engine,
        source=ScoresSource(engine, scores_table),
        sessions=CookieSigner(secret_key, "session"),
        logins=CookieSigner(secret_key, "login"),
        secure_cookies=secure_cookies,
        idle_timeout=idle_timeout,
        templates=_environment(),
    )
    app = FastAPI(
        title="engagekit",
        summary="Risk flags of a depression service's patients, for the clinicians who "
        "see them. " + STATEMENT,
        openapi_url="/api/v1/openapi.json",
        docs_url=None,  # the interactive docs load scripts from elsewhere: the CSP forbids
        redoc_url=None,
    )
    app.state.engagekit = server
    app.include_router(_pages)
    app.include_router(_api)
    app.mount("/static", StaticFiles(directory=_HERE / "static"), name="static")
    app.add_exception_handler(_NotSignedIn, _not_signed_in)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _invalid_request)
    app.add_exception_handler(Exception, _internal_error)
    app.middleware("http")(_headers_and_log)
    return app


# --------------------------------------------------------------------------- plumbing
def _server(request: Request) -> _Server:
    server: _Server = request.app.state.engagekit
    return server


def _is_api(request: Request) -> bool:
    return request.url.path.startswith("/api/")


def _route_template(request: Request) -> str:
    route = request.scope.get("route")
    return str(getattr(route, "path", "-"))


async def _headers_and_log(request: Request, call_next: Any) -> Response:
    try:
        response: Response = await call_next(request)
    except Exception as exc:
        # caught here, so that no traceback reaches the server's log: a database error's
        # message can quote its parameters, a patient's ID among them
        log.error(
            "internal error on %s %s: %s",
            request.method,
            _route_template(request),
            type(exc).__name__,
        )
        response = _error_page(request, 500, "Something went wrong on the server.")
    static = request.url.path.startswith("/static/")
    response.headers.update(security_headers(static=static))
    if _server(request).secure_cookies:  # served over HTTPS: browsers should keep to it
        response.headers["Strict-Transport-Security"] = "max-age=31536000"
    log.info("%s %s %d", request.method, _route_template(request), response.status_code)
    return response


def _signed_in(request: Request) -> SignedIn:
    """The session's user; :class:`_NotSignedIn` when there is no live session (a cookie
    that is missing, tampered with, ended or idle too long)."""
    server = _server(request)
    token = server.sessions.unsign(request.cookies.get(SESSION_COOKIE))
    user = None if token is None else load_session(server.engine, token, server.idle_timeout)
    if user is None:
        raise _NotSignedIn
    request.state.user = user
    return user


def _scope(request: Request, user: Annotated[SignedIn, Depends(_signed_in)]) -> Scope:
    """The user's scope: the one place that says whose data a request may read."""
    with _server(request).engine.connect() as connection:
        return scope_of(connection, user)


ScopeDep = Annotated[Scope, Depends(_scope)]


def _allow(scope: Scope, page: str) -> None:
    if not scope.may(page):
        raise HTTPException(403, "This page is not part of your role.")


def _render(
    request: Request,
    template: str,
    context: dict[str, Any],
    *,
    status_code: int = 200,
    scope: Scope | None = None,
) -> HTMLResponse:
    user: SignedIn | None = getattr(request.state, "user", None)
    html = (
        _server(request)
        .templates.get_template(template)
        .render(
            scope=scope,
            csrf_token=user.csrf_token if user is not None and scope is not None else "",
            **context,
        )
    )
    return HTMLResponse(html, status_code=status_code)


def _set_cookie(response: Response, server: _Server, name: str, value: str, path: str) -> None:
    response.set_cookie(
        name,
        value,
        httponly=True,
        samesite="strict",
        secure=server.secure_cookies,
        path=path,
    )


def _delete_cookie(response: Response, server: _Server, name: str, path: str) -> None:
    response.delete_cookie(
        name, path=path, secure=server.secure_cookies, httponly=True, samesite="strict"
    )


def _check_csrf(request: Request, submitted: str) -> None:
    user: SignedIn = request.state.user
    if not same_token(submitted, user.csrf_token):
        raise HTTPException(403, "The form was not sent from this site's page; reload and retry.")


# --------------------------------------------------------------------------- errors
async def _not_signed_in(request: Request, exc: Exception) -> Response:
    if _is_api(request):
        return JSONResponse({"detail": "Not signed in."}, status_code=401)
    response = RedirectResponse("/login", status_code=303)
    if SESSION_COOKIE in request.cookies:
        _delete_cookie(response, _server(request), SESSION_COOKIE, "/")
    return response


def _error_page(request: Request, status_code: int, message: str) -> Response:
    if _is_api(request):
        return JSONResponse({"detail": message}, status_code=status_code)
    return _render(
        request,
        "error.html.j2",
        {"status_code": status_code, "message": message},
        status_code=status_code,
    )


_MESSAGES = {
    404: "There is no such page, or no such patient among yours.",
    405: "This page cannot be used that way.",
}


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    message = exc.detail if isinstance(exc.detail, str) else "The request was refused."
    if exc.status_code in _MESSAGES:
        message = _MESSAGES[exc.status_code]  # never echo what was asked for
    return _error_page(request, exc.status_code, message)


async def _invalid_request(request: Request, exc: Exception) -> Response:
    return _error_page(request, 400, "The request's values are not valid.")


async def _internal_error(request: Request, exc: Exception) -> Response:
    """An error in the middleware itself (the routes' errors are caught in it)."""
    log.error("internal error on %s %s: %s", request.method, "-", type(exc).__name__)
    response = _error_page(request, 500, "Something went wrong on the server.")
    response.headers.update(security_headers(static=False))
    return response


# --------------------------------------------------------------------------- sign-in
_pages = APIRouter(include_in_schema=False)
_api = APIRouter(prefix="/api/v1")


def _login_page(request: Request, status_code: int = 200, message: str | None = None) -> Response:
    """The sign-in form, with a fresh pre-session CSRF token (in the form and, signed, in
    a cookie)."""
    server = _server(request)
    token = new_token()
    response = _render(
        request,
        "login.html.j2",
        {"login_token": token, "message": message},
        status_code=status_code,
    )
    _set_cookie(response, server, LOGIN_COOKIE, server.logins.sign(token), "/login")
    return response


def _current_user(request: Request) -> SignedIn | None:
    try:
        return _signed_in(request)
    except _NotSignedIn:
        return None


@_pages.get("/")
def home(request: Request) -> Response:
    user = _current_user(request)
    if user is None:
        return RedirectResponse("/login", status_code=303)
    return RedirectResponse(_scope(request, user).home, status_code=303)


@_pages.get("/login")
def login_form(request: Request) -> Response:
    user = _current_user(request)
    if user is not None:
        return RedirectResponse(_scope(request, user).home, status_code=303)
    return _login_page(request)


@_pages.post("/login")
def login(
    request: Request,
    username: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    server = _server(request)
    expected = server.logins.unsign(request.cookies.get(LOGIN_COOKIE))
    if not same_token(csrf_token, expected):
        return _login_page(
            request, 403, "The sign-in form had expired or did not come from this site: try again."
        )
    client = request.client.host if request.client is not None else "unknown"
    username = username.strip()
    if too_many_failures(server.engine, username, client):
        minutes = int(FAILURE_WINDOW.total_seconds() // 60)
        return _login_page(
            request,
            429,
            f"Too many failed sign-ins: wait {minutes} minutes, then try again.",
        )
    user = verify_password(server.engine, username, password) if username and password else None
    if user is None:
        record_failure(server.engine, username, client)
        return _login_page(request, 401, "The user name or the password is not right.")
    clear_failures(server.engine, username)
    previous = server.sessions.unsign(request.cookies.get(SESSION_COOKIE))
    if previous is not None:  # a new sign-in replaces the browser's old session
        end_session(server.engine, previous)
    token, _ = start_session(server.engine, user.user_id)
    signed = _signed_in_as(request, token)
    response = RedirectResponse(_scope(request, signed).home, status_code=303)
    _set_cookie(response, server, SESSION_COOKIE, server.sessions.sign(token), "/")
    _delete_cookie(response, server, LOGIN_COOKIE, "/login")
    return response


def _signed_in_as(request: Request, token: str) -> SignedIn:
    server = _server(request)
    user = load_session(server.engine, token, server.idle_timeout)
    assert user is not None  # just started
    return user


@_pages.post("/logout")
def logout(
    request: Request,
    user: Annotated[SignedIn, Depends(_signed_in)],
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    _check_csrf(request, csrf_token)
    server = _server(request)
    token = server.sessions.unsign(request.cookies.get(SESSION_COOKIE))
    if token is not None:
        end_session(server.engine, token)
    response = RedirectResponse("/login", status_code=303)
    _delete_cookie(response, server, SESSION_COOKIE, "/")
    return response


# --------------------------------------------------------------------------- pages
FlagQuery = Annotated[str | None, Query(max_length=16)]
TreatmentQuery = Annotated[str | None, Query(max_length=128)]
SearchQuery = Annotated[str | None, Query(max_length=128)]
AlertQuery = Annotated[str | None, Query(max_length=32)]
PageQuery = Annotated[int | None, Query(ge=1, le=1_000_000)]


def _caseload(
    request: Request,
    scope: Scope,
    flag: str | None,
    treatment: str | None,
    q: str | None,
    alert: str | None = None,
    page: int | None = None,
) -> Caseload:
    _allow(scope, "caseload")
    source = _server(request).source
    caseload = source.caseload(
        scope,
        flag=flag or None,
        treatment=treatment or None,
        search=q,
        alert=alert or None,
        page=page,
    )
    source.audit_caseload(scope, _route_template(request), len(caseload.rows))
    return caseload


@_pages.get("/caseload")
def caseload_page(
    request: Request,
    scope: ScopeDep,
    flag: FlagQuery = None,
    treatment: TreatmentQuery = None,
    q: SearchQuery = None,
    alert: AlertQuery = None,
    page: PageQuery = None,
) -> Response:
    caseload = _caseload(request, scope, flag, treatment, q, alert, page or 1)
    filters = {
        "flag": flag or "",
        "treatment": treatment or "",
        "alert": alert or "",
        "q": q or "",
    }
    chosen = urlencode({name: value for name, value in filters.items() if value})
    pages_link = "/caseload?" + (chosen + "&" if chosen else "") + "page="  # + the number
    return _render(
        request,
        "caseload.html.j2",
        {"caseload": caseload, "filters": filters, "pages_link": pages_link},
        scope=scope,
    )


def _patient(request: Request, scope: Scope, patient_id: str) -> PatientDetail:
    detail = _server(request).source.view_patient(scope, patient_id, _route_template(request))
    if detail is None:
        raise HTTPException(404)
    return detail


@_pages.get(PATIENT_ROUTE)
def patient_page(request: Request, scope: ScopeDep, patient_id: str) -> Response:
    detail = _patient(request, scope, patient_id)
    return _render(
        request,
        "patient.html.j2",
        {"patient": detail, "today": dt.date.today().isoformat(), "message": None},
        scope=scope,
    )


def _review_values(
    status: str, outcome: str, note: str, until: str
) -> tuple[str | None, str | None, str | None]:
    """The review's outcome, note and until date; HTTPException 400 naming what is wrong."""
    note = note.strip()
    if len(note) > NOTE_LENGTH:
        raise HTTPException(400, f"The note is too long: keep it under {NOTE_LENGTH} characters.")
    if status == "reviewed":
        if outcome not in OUTCOMES:
            raise HTTPException(400, "Choose the review's outcome.")
        return outcome, note or None, None
    if status == "do_not_contact":
        try:
            day = dt.date.fromisoformat(until.strip())
        except ValueError:
            raise HTTPException(400, "Give the date until which not to contact.") from None
        if day < dt.date.today():
            raise HTTPException(400, "The 'do not contact until' date has passed.")
        return None, note or None, day.isoformat()
    raise HTTPException(400, "Choose 'reviewed' or 'do not contact'.")


def _store_review(
    request: Request,
    scope: Scope,
    patient_id: str,
    status: str,
    outcome: str,
    note: str,
    until: str,
) -> tuple[str | None, str | None, str | None]:
    """Store a review of ``patient_id``'s current flag, from the page's form or the API:
    404 for a patient who is not the user's (audited, as one that does not exist), 400
    naming what is wrong. Returns the outcome, note and until date stored."""
    source = _server(request).source
    if not source.may_review(scope, patient_id, _route_template(request)):
        raise HTTPException(404)  # as for a patient that does not exist (audited)
    outcome_, note_, until_ = _review_values(status, outcome, note, until)
    stored = source.review(
        scope,
        patient_id,
        _route_template(request),
        status=status,
        outcome=outcome_,
        note=note_,
        until=until_,
    )
    if not stored:
        raise HTTPException(404)
    return outcome_, note_, until_


@_pages.post(REVIEW_ROUTE)
def review(
    request: Request,
    scope: ScopeDep,
    patient_id: str,
    csrf_token: Annotated[str, Form()] = "",
    status: Annotated[str, Form()] = "",
    outcome: Annotated[str, Form()] = "",
    note: Annotated[str, Form()] = "",
    until: Annotated[str, Form()] = "",
) -> Response:
    _check_csrf(request, csrf_token)
    _store_review(request, scope, patient_id, status, outcome, note, until)
    return RedirectResponse(f"/patients/{quote(patient_id, safe='')}#reviews", status_code=303)


@_pages.get("/team")
def team_page(request: Request, scope: ScopeDep) -> Response:
    _allow(scope, "team")
    return _render(
        request, "team.html.j2", {"team": _server(request).source.team(scope)}, scope=scope
    )


@_pages.get("/service")
def service_page(request: Request, scope: ScopeDep) -> Response:
    _allow(scope, "service")
    service = _server(request).source.service()
    monitoring = None if service.monitoring is None else monitoring_panel(service.monitoring)
    return _render(
        request,
        "service.html.j2",
        {"service": service, "monitoring": monitoring},
        scope=scope,
    )


@_pages.get("/audit")
def audit_page(request: Request, scope: ScopeDep) -> Response:
    _allow(scope, "audit")
    return _render(
        request, "audit.html.j2", {"log": _server(request).source.audit_log()}, scope=scope
    )


# --------------------------------------------------------------------------- the API
@_api.get("/caseload", response_model=Caseload)
def api_caseload(
    request: Request,
    scope: ScopeDep,
    flag: FlagQuery = None,
    treatment: TreatmentQuery = None,
    q: SearchQuery = None,
    alert: AlertQuery = None,
    page: PageQuery = None,
) -> Caseload:
    """The user's patients (clinician, team_lead), highest current risk first; each
    with its alerts (``alert``: only those with this one, a key of ``alerts``). All of
    them, or only page ``page`` (of ``pages``) as the caseload page shows them."""
    return _caseload(request, scope, flag, treatment, q, alert, page)


@_api.get("/patients/{patient_id}", response_model=PatientDetail)
def api_patient(request: Request, scope: ScopeDep, patient_id: str) -> PatientDetail:
    """One of the user's patients: risk over sessions, reasons, contributions, reviews.
    A patient who is not the user's answers 404, as one that does not exist."""
    return _patient(request, scope, patient_id)


@_api.get("/team", response_model=Team)
def api_team(request: Request, scope: ScopeDep) -> Team:
    """A team lead's practitioners: caseload sizes and current flags."""
    _allow(scope, "team")
    return _server(request).source.team(scope)


@_api.get("/service", response_model=Service)
def api_service(request: Request, scope: ScopeDep) -> Service:
    """Flag rates per treatment, runs by status and the latest monitoring result recorded
    for the run's model (analyst; ``monitoring`` is null when none was): no
    identifiers."""
    _allow(scope, "service")
    return _server(request).source.service()


@_api.get("/audit", response_model=AuditPage)
def api_audit(request: Request, scope: ScopeDep) -> AuditPage:
    """The newest rows of the audit log (admin)."""
    _allow(scope, "audit")
    return _server(request).source.audit_log()


class SessionView(BaseModel):
    """Who is signed in, and the token a POST to the API carries in ``X-CSRF-Token``."""

    username: str
    role: str
    csrf_token: str


@_api.get("/session", response_model=SessionView)
def api_session(request: Request, scope: ScopeDep) -> SessionView:
    """The signed-in user and their session's CSRF token."""
    user: SignedIn = request.state.user
    return SessionView(username=scope.username, role=scope.role, csrf_token=user.csrf_token)


class ReviewIn(BaseModel):
    """A review of a patient's current flag: ``reviewed`` with an ``outcome`` (and a
    short note), or ``do_not_contact`` until a date (``YYYY-MM-DD``)."""

    status: str
    outcome: str = ""
    note: str = ""
    until: str = ""


class ReviewStored(BaseModel):
    """The review as stored."""

    status: str
    outcome: str | None
    note: str | None
    until: str | None


@_api.post("/patients/{patient_id}/reviews", status_code=201, response_model=ReviewStored)
def api_review(
    request: Request,
    scope: ScopeDep,
    patient_id: str,
    review: ReviewIn,
    x_csrf_token: Annotated[str, Header()] = "",
) -> ReviewStored:
    """Record a review of one of the user's patients' current flag, as the patient page's
    form does. The request carries the session's CSRF token (``GET /api/v1/session``) in
    ``X-CSRF-Token``. A patient who is not the user's answers 404, as one that does not
    exist."""
    _check_csrf(request, x_csrf_token)
    outcome, note, until = _store_review(
        request, scope, patient_id, review.status, review.outcome, review.note, review.until
    )
    return ReviewStored(status=review.status, outcome=outcome, note=note, until=until)


# --------------------------------------------------------------------------- users
class UserView(BaseModel):
    """A user as the admin's page shows one (never a password or its hash)."""

    username: str
    role: str
    team: str | None
    practitioners: list[str]
    disabled: bool
    created_at: str


def _users(request: Request, scope: Scope) -> list[UserView]:
    _allow(scope, "users")
    return [_user_view(user) for user in list_users(_server(request).engine)]


def _user_view(user: UserRecord) -> UserView:
    return UserView(
        username=user.username,
        role=user.role,
        team=user.team,
        practitioners=list(user.practitioners),
        disabled=user.disabled,
        created_at=user.created_at,
    )


@_pages.get("/users")
def users_page(request: Request, scope: ScopeDep) -> Response:
    return _render(
        request,
        "users.html.j2",
        {"users": _users(request, scope), "roles": ROLES},
        scope=scope,
    )


@_pages.post("/users")
def add_user_form(
    request: Request,
    scope: ScopeDep,
    csrf_token: Annotated[str, Form()] = "",
    username: Annotated[str, Form()] = "",
    role: Annotated[str, Form()] = "",
    team: Annotated[str, Form()] = "",
    practitioners: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
) -> Response:
    _allow(scope, "users")
    _check_csrf(request, csrf_token)
    ids = [p.strip() for p in practitioners.split(",") if p.strip()]
    try:
        add_user(
            _server(request).engine,
            username.strip(),
            role,
            password,
            ids,
            team.strip() or None,
            actor=scope.username,
            route=_route_template(request),
        )
    except ArgumentError as e:
        raise HTTPException(400, f"The user was not added: {e}.") from None
    return RedirectResponse("/users", status_code=303)


@_pages.post("/users/{username}/disable")
def disable_user_form(
    request: Request,
    scope: ScopeDep,
    username: str,
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    _allow(scope, "users")
    _check_csrf(request, csrf_token)
    if username == scope.username:
        raise HTTPException(400, "You cannot disable yourself: ask another admin.")
    try:
        disable_user(
            _server(request).engine, username, scope.username, route=_route_template(request)
        )
    except ArgumentError as e:
        raise HTTPException(400, f"The user was not disabled: {e}.") from None
    return RedirectResponse("/users", status_code=303)


@_api.get("/users", response_model=list[UserView])
def api_users(request: Request, scope: ScopeDep) -> list[UserView]:
    """The users (admin): never a password or its hash."""
    return _users(request, scope)
