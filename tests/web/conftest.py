"""The web tests' fixtures: a score database built once per module (on SQLite and on
PostgreSQL), its application, and a signed-in client per role (see ``_web``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from engagekit.web import create_app
from web._web import SECRET, Service, TestClient, build_service_database, sign_in


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def database_url(request, tmp_path_factory) -> Iterator[str]:
    """An empty database for the module's tests, once on SQLite and once on PostgreSQL
    (tests/conftest.py's fixture of the same name, module-scoped: the web tests share one
    database and one application per module, to keep the run short)."""
    from _databases import fresh_database, missing_postgres_message, postgres_url

    if request.param == "postgresql" and postgres_url() is None:
        pytest.fail(missing_postgres_message(), pytrace=False)
    with fresh_database(request.param, tmp_path_factory.mktemp("web")) as url:
        yield url


@pytest.fixture(scope="module")
def service(database_url) -> Iterator[Service]:
    engine = build_service_database(database_url)
    app = create_app(engine, secret_key=SECRET, secure_cookies=False)
    clients = {}
    for name in ("ana", "lee", "kim", "sam"):
        client = TestClient(app, follow_redirects=False)
        response = sign_in(client, name)
        assert response.status_code == 303, response.text
        clients[name] = client
    yield Service(engine, app, clients)
    engine.dispose()
