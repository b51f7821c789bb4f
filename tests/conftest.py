"""Fixtures shared by the test suite."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd
import pytest

from engagekit.simulation import simulate_encounters


@pytest.fixture
def make_encounters() -> Callable[..., pd.DataFrame]:
    """Factory of simulated encounter tables.

    ``make_encounters(n_patients=200, seed=0, **kwargs)`` returns the ``encounters``
    frame of :func:`engagekit.simulation.simulate_encounters`; ``kwargs`` go to it
    (``config=``, ``heterogeneity=``).
    """

    def make(n_patients: int = 200, seed: int = 0, **kwargs: Any) -> pd.DataFrame:
        return simulate_encounters(n_patients, seed=seed, **kwargs).encounters

    return make


@pytest.fixture(scope="session")
def browser():
    """The Chromium the browser tests drive (see ``_browser``): skipped with one line
    where none is found, a failure instead where ``ENGAGEKIT_REQUIRE_BROWSER`` is set
    (as ``.ci/run`` sets it)."""
    from _browser import browser_required, find_browser, missing_browser_message

    found = find_browser()
    if found is None:
        if browser_required():
            pytest.fail(missing_browser_message(), pytrace=False)
        pytest.skip(missing_browser_message())
    return found


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path):
    """An empty database for a test, once on SQLite and once on PostgreSQL (see
    ``_databases``)."""
    from _databases import fresh_database, missing_postgres_message, postgres_url

    if request.param == "postgresql" and postgres_url() is None:
        pytest.fail(missing_postgres_message(), pytrace=False)
    with fresh_database(request.param, tmp_path) as url:
        yield url


def pytest_collection_modifyitems(config, items):
    """Without a browser (and without ENGAGEKIT_REQUIRE_BROWSER), mark the browser tests
    skipped, so the summary says so in one line per file instead of one per test."""
    _skip_postgres_without_a_server(items)
    needing = [item for item in items if "browser" in getattr(item, "fixturenames", ())]
    if not needing:
        return
    from _browser import browser_required, find_browser, missing_browser_message

    if find_browser() is None and not browser_required():
        skip = pytest.mark.skip(reason=missing_browser_message())
        for item in needing:
            item.add_marker(skip)


def _skip_postgres_without_a_server(items) -> None:
    """Without a PostgreSQL (and without ENGAGEKIT_REQUIRE_POSTGRES), mark its cases
    skipped in one line per file; with the variable set they run, and fail."""
    from _databases import missing_postgres_message, postgres_required, postgres_url

    if postgres_url() is not None or postgres_required():
        return
    skip = pytest.mark.skip(reason=missing_postgres_message())
    for item in items:
        callspec = getattr(item, "callspec", None)
        if callspec is not None and callspec.params.get("database_url") == "postgresql":
            item.add_marker(skip)
