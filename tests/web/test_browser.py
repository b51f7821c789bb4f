"""``engagekit serve`` in a real browser: a Uvicorn server on a loopback port, on a score
database built as the other web tests build theirs (``_web``; SQLite only), driven by
headless Chromium through Playwright.

One flow follows a clinician from the sign-in form through their caseload to a flagged
patient's review, signs out, and then an admin finds it all in the audit log. A second
test checks the caseload and a patient's page with axe-core against WCAG 2.2 AA (see
``_axe``), and a third the analyst's service page with a recorded monitoring result
(its tables and inline SVG control charts). The ``browser`` fixture
(``tests/conftest.py``) skips these tests with one line where no Chromium is found,
unless ``ENGAGEKIT_REQUIRE_BROWSER=1``; the axe test skips likewise without axe-core,
unless ``ENGAGEKIT_REQUIRE_AXE=1``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import uvicorn

from _axe import axe_required, axe_violations, describe, find_axe, missing_axe_message
from _browser import _ARGS
from _monitor_results import SILENT_MONTH, monitor_result_with_alerts
from engagekit.cli.serve import server_config
from engagekit.db import SCORE_RUNS
from engagekit.io._monitor_store import record_monitor_result
from engagekit.web import create_app
from web._web import PASSWORD, SCORES, SECRET, USERS, build_service_database

NOTE = "Phoned; booked the next session for Tuesday."


@dataclasses.dataclass(frozen=True)
class Served:
    """A running server: its address and its database."""

    url: str
    engine: sa.Engine


@pytest.fixture(scope="module")
def served(tmp_path_factory) -> Iterator[Served]:
    """``engagekit serve``'s application under a real Uvicorn, in a background thread, on
    a free loopback port (the socket is bound here, so no other process can take it)."""
    path = tmp_path_factory.mktemp("browser") / "engagekit.db"
    engine = build_service_database(f"sqlite:///{path}")
    record_monitor_result(
        engine, monitor_result_with_alerts(), model_sha256="0" * 64, scores_table="scores"
    )
    app = create_app(engine, secret_key=SECRET, secure_cookies=False)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = int(sock.getsockname()[1])
    server = uvicorn.Server(server_config(app, "127.0.0.1", port))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started and thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert server.started, "the Uvicorn server did not start"
        yield Served(f"http://127.0.0.1:{port}", engine)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
        engine.dispose()


@pytest.fixture
def tab(browser, served) -> Iterator[Any]:
    """A fresh page of a fresh Chromium (no cookies), its addresses relative to the
    server's; the page's Content-Security-Policy applies as served."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(
            executable_path=str(browser.executable) if browser.executable else None,
            args=_ARGS,
        )
        try:
            context = chromium.new_context(base_url=served.url)
            page = context.new_page()
            page.set_default_timeout(10_000)
            yield page
        finally:
            chromium.close()


@pytest.fixture
def axe_js() -> Path:
    """axe-core's ``axe.min.js``: skipped with one line where none is found, a failure
    instead where ``ENGAGEKIT_REQUIRE_AXE`` is set (as ``.ci/run`` sets it)."""
    found = find_axe()
    if found is None:
        if axe_required():
            pytest.fail(missing_axe_message(), pytrace=False)
        pytest.skip(missing_axe_message())
    return found


def sign_in(page: Any, username: str) -> None:
    """Sign in through the form, as a person does."""
    page.goto("/login")
    page.get_by_label("User name").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state()
    assert not page.url.endswith("/login"), f"{username} was not signed in"


def table_cells(page: Any, selector: str) -> list[list[str]]:
    """The text of each cell of each body row of the table at ``selector``."""
    return page.eval_on_selector_all(
        f"{selector} tbody tr",
        "rows => rows.map(r => Array.from(r.cells, c => c.textContent.trim()))",
    )


def expected_caseload(engine: sa.Engine, practitioners: list[str]) -> list[tuple[str, str]]:
    """From the database: the patients whose latest encounter of the complete run is with
    one of ``practitioners``, highest risk first, with their flags."""
    latest: dict[str, Any] = {}
    with engine.connect() as connection:
        run_id = connection.execute(
            sa.select(SCORE_RUNS.c.run_id).where(SCORE_RUNS.c.status == "complete")
        ).scalar_one()
        for row in connection.execute(
            sa.select(SCORES).where(SCORES.c.run_id == run_id)
        ).mappings():
            kept = latest.get(row["patient_id"])
            if kept is None or row["session_number"] > kept["session_number"]:
                latest[row["patient_id"]] = row
    mine = [row for row in latest.values() if row["practitioner_id"] in practitioners]
    mine.sort(key=lambda row: (-row["risk"], row["patient_id"]))
    return [(row["patient_id"], row["flag"].capitalize()) for row in mine]


def test_a_clinicians_review_in_the_browser(tab, served):
    page = tab
    # (1) a clinician signs in through the form and lands on their caseload
    sign_in(page, "ana")
    assert page.url == f"{served.url}/caseload"
    assert page.get_by_role("heading", level=1).inner_text() == "Your patients"

    # (2) exactly their patients, highest risk first, as the database has them
    expected = expected_caseload(served.engine, USERS["ana"][1]["practitioners"])
    assert len(expected) == 3 and "PAT-04" not in dict(expected)  # moved to PRAC-C
    shown = [(row[0], row[1]) for row in table_cells(page, "table.caseload")]
    assert shown == expected

    # (3) the highest-risk flagged patient: their page gives the reasons
    patient = next(pid for pid, flag in expected if flag == "High")
    page.get_by_role("link", name=patient, exact=True).click()
    page.wait_for_load_state()
    assert page.url == f"{served.url}/patients/{patient}"
    assert page.get_by_role("heading", level=1).inner_text() == f"Patient {patient}"
    assert page.locator("dl.facts .flag").inner_text() == "High"
    assert page.locator("ul.reasons li").all_inner_texts() == [
        "Low rating of empathy",
        "Fewer sessions attended so far",
    ]
    assert page.get_by_text("No reviews yet.").is_visible()

    # (4) the flag reviewed through the form: outcome and note, on both pages
    page.get_by_label("Reviewed", exact=True).check()
    page.get_by_label("Outcome (for a review)").select_option("contacted")
    page.get_by_label("Short note").fill(NOTE)
    page.get_by_role("button", name="Save the review").click()
    page.wait_for_load_state()
    assert page.url == f"{served.url}/patients/{patient}#reviews"
    [review] = table_cells(page, "table.reviews")
    assert review[1:] == ["ana", "Reviewed", "Contacted the patient", NOTE]
    today = dt.datetime.now(dt.UTC).date().isoformat()
    assert review[0].startswith(today)
    page.get_by_role("link", name="Caseload").click()
    page.wait_for_load_state()
    reviews = {row[0]: row[-1] for row in table_cells(page, "table.caseload")}
    assert reviews[patient] == f"Reviewed {today}: Contacted the patient"
    assert [r for pid, r in reviews.items() if pid != patient] == ["Not reviewed"] * 2

    # (5) signing out (the POST form) ends the session: pages send to the sign-in form
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_load_state()
    assert page.url == f"{served.url}/login"
    for protected in ("/caseload", f"/patients/{patient}"):
        page.goto(protected)
        assert page.url == f"{served.url}/login", protected
        assert page.get_by_role("heading", level=1).inner_text() == "Sign in"

    # (6) an admin reads the clinician's views and review in the audit log
    sign_in(page, "sam")
    page.goto("/audit")
    assert page.get_by_role("heading", level=1).inner_text() == "Audit log"
    rows = table_cells(page, "table.audit")  # when, user, role, action, route, patient, …
    anas = [tuple(row[2:]) for row in rows if row[1] == "ana"]
    patient_route, review_route = "/patients/{patient_id}", "/patients/{patient_id}/review"
    views = [r for r in anas if r[:4] == ("clinician", "view", patient_route, patient)]
    assert views == [("clinician", "view", patient_route, patient, "Allowed", "–")] * 2
    detail = "status reviewed, outcome contacted"
    assert anas.count(("clinician", "flag_review", review_route, patient, "Allowed", detail)) == 1
    caseload_views = [r for r in anas if r[1:3] == ("view", "/caseload")]
    assert (
        caseload_views
        == [("clinician", "view", "/caseload", "–", "Allowed", "caseload of 3 patients")] * 2
    )


def test_the_caseload_and_a_patients_page_pass_axe(axe_js, tab):
    page = tab
    sign_in(page, "rita")  # another clinician: the flow test's review is not hers
    page.goto("/caseload")
    found = {"caseload": axe_violations(page, axe_js)}
    patient = table_cells(page, "table.caseload")[0][0]
    page.goto(f"/patients/{patient}")
    found["patient"] = axe_violations(page, axe_js)
    # and with a review, so the reviews table is checked too
    page.get_by_label("Outcome (for a review)").select_option("discussed")
    page.get_by_label("Short note").fill(NOTE)
    page.get_by_role("button", name="Save the review").click()
    page.wait_for_load_state()
    assert len(table_cells(page, "table.reviews")) == 1
    found["patient, reviewed"] = axe_violations(page, axe_js)
    failures = {name: describe(v) for name, v in found.items() if v}
    assert not failures, "\n".join(f"{name}:\n{text}" for name, text in failures.items())


def test_the_service_page_with_monitoring_passes_axe(axe_js, tab):
    page = tab
    sign_in(page, "kim")
    assert page.url.endswith("/service")
    charts = page.get_by_role("img", name="Control chart", exact=False)
    assert charts.count() == 2  # not acted on, all patients: named for screen readers
    assert SILENT_MONTH in page.locator("ul.alerts").inner_text()
    violations = axe_violations(page, axe_js)
    assert not violations, describe(violations)
