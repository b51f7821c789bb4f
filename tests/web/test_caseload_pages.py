"""The caseload in pages, and what the server keeps in memory of a complete run: the
next complete run replaces it, and it is bounded (see ``_web`` for the scores)."""

from __future__ import annotations

import re

import pytest

from engagekit.db import SCORE_RUNS
from engagekit.web import _data
from web._web import SCORES, score_rows
from web._web import _run as run_row

ROW = re.compile(r'<th scope="row"><a href="/patients/(PAT-\d\d)"')


def _all_of(client, query: str = "") -> list[str]:
    body = client.get(f"/api/v1/caseload?{query}").json()
    assert body["page"] == 1 and body["pages"] == 1 and body["n_matching"] == len(body["rows"])
    return [r["patient_id"] for r in body["rows"]]


@pytest.fixture
def two_a_page(monkeypatch):
    monkeypatch.setattr(_data, "CASELOAD_PAGE_ROWS", 2)


def test_the_caseload_page_shows_one_page_and_links_the_others(service, two_a_page):
    lee = service.clients["lee"]
    everyone = _all_of(lee)  # the API without a page: every patient
    assert len(everyone) == 7
    pages = [everyone[k : k + 2] for k in range(0, 7, 2)]
    for number, expected in enumerate(pages, start=1):
        page = lee.get(f"/caseload?page={number}").text
        assert ROW.findall(page) == expected
        first = 2 * (number - 1) + 1
        last = first + len(expected) - 1
        assert f"Patients {first} to {last} of the 7 that match, of 7 in all" in page
        assert '<a aria-current="page" href="/caseload?' in page
        assert re.search(rf'aria-current="page" href="[^"]*page={number}">Page {number}<', page)
        assert ("Next page" in page) == (number < 4)
        assert ("Previous page" in page) == (number > 1)
    # past the last page: the last page
    assert ROW.findall(lee.get("/caseload?page=99").text) == pages[-1]
    # the first page without asking; links without empty filters
    first_page = lee.get("/caseload").text
    assert ROW.findall(first_page) == pages[0]
    assert 'href="/caseload?page=2" rel="next"' in first_page


def test_the_api_gives_a_page_when_asked(service, two_a_page):
    lee = service.clients["lee"]
    everyone = _all_of(lee)
    body = lee.get("/api/v1/caseload?page=2").json()
    assert [r["patient_id"] for r in body["rows"]] == everyone[2:4]
    assert (body["page"], body["pages"], body["first_row"], body["n_matching"]) == (2, 4, 3, 7)
    assert lee.get("/api/v1/caseload?page=0").status_code == 400  # the app's bad request


def test_the_pages_keep_the_filters(service, two_a_page):
    lee = service.clients["lee"]
    stale = _all_of(lee, "alert=no_recent_encounter")
    assert len(stale) == 3
    page = lee.get("/caseload?alert=no_recent_encounter&page=2").text
    assert ROW.findall(page) == stale[2:]
    assert "Patients 3 to 3 of the 3 that match, of 7 in all" in page
    links = re.findall(r'href="(/caseload\?[^"]*page=1)"', page)
    assert links and all("alert=no_recent_encounter" in link for link in links)


def test_the_remembered_caseloads_are_bounded(service, monkeypatch):
    lee = service.clients["lee"]
    everyone = _all_of(lee)
    monkeypatch.setattr(_data, "CACHED_PRACTITIONERS", 1)
    source = service.app.state.engagekit.source
    for _ in range(2):  # lee's two practitioners, one remembered at a time: still all
        assert _all_of(lee) == everyone
        assert len(source._caseloads) == 1
    assert [r["patients"] for r in lee.get("/api/v1/team").json()["rows"]] == [3, 4]


def test_a_new_complete_run_is_shown_as_soon_as_it_is_complete(service):
    """Last in this module: it adds a run."""
    ana = service.clients["ana"]
    before = ana.get("/api/v1/caseload").json()
    assert before["run"]["run_id"] == 2 and ana.get("/api/v1/team").status_code == 403
    kim_before = service.clients["kim"].get("/api/v1/service").json()
    with service.engine.begin() as connection:
        new = run_row("complete", "newer", "2026-11-04T00:00:00.000000+00:00")
        run_id = connection.execute(SCORE_RUNS.insert().values(**new)).inserted_primary_key[0]
        rows = score_rows(int(run_id), shift=-0.15)
        connection.execute(SCORES.insert(), rows)
    after = ana.get("/api/v1/caseload").json()
    assert after["run"]["run_id"] == run_id
    latest = {r["patient_id"]: r["risk"] for r in rows}  # the last session's, in order
    assert {r["patient_id"]: r["risk"] for r in after["rows"]} == {
        r["patient_id"]: pytest.approx(latest[r["patient_id"]]) for r in after["rows"]
    }
    assert [r["patient_id"] for r in after["rows"]] == [r["patient_id"] for r in before["rows"]]
    assert all(
        a["risk"] == pytest.approx(b["risk"] - 0.15)
        for a, b in zip(after["rows"], before["rows"], strict=True)
    )
    kim_after = service.clients["kim"].get("/api/v1/service").json()
    assert kim_after["run"]["run_id"] == run_id
    assert kim_after["treatments"] != kim_before["treatments"]  # fewer flags now
