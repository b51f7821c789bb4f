"""``engagekit serve``: its help, its refusals, the Uvicorn it starts (loopback, no
access log), and a real server whose log never names a patient."""

from __future__ import annotations

import logging
import socket
import threading
import time

import httpx
import pytest
import uvicorn

from _cli import assert_no_traceback, run
from engagekit.web import add_user
from web._web import PASSWORD

SESSION = "engagekit_session"


def test_serve_help(tmp_path):
    result = run("serve", "--help", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    for option in ("--db", "--host", "--port", "--table", "--idle-minutes"):
        assert option in result.stdout
    assert "Usage: engagekit serve [OPTIONS]" in result.stdout
    assert "never decide care" in result.stdout


def test_serve_needs_the_database(tmp_path):
    result = run("serve", "--db", f"sqlite:///{tmp_path / 'missing.db'}", cwd=tmp_path)
    assert result.returncode == 2
    assert_no_traceback(result)
    assert "does not exist" in result.stderr


def test_serve_refuses_a_short_secret(tmp_path, monkeypatch):
    monkeypatch.setenv("ENGAGEKIT_SECRET_KEY", "short")
    result = run("serve", "--db", "sqlite://", cwd=tmp_path)
    assert result.returncode == 2
    assert "ENGAGEKIT_SECRET_KEY is too short" in result.stderr


@pytest.fixture
def started(tmp_path, monkeypatch):
    """Run ``engagekit serve``, catching the Uvicorn server it would run."""
    url = f"sqlite:///{tmp_path / 'engagekit.db'}"
    from sqlalchemy import create_engine

    engine = create_engine(url)
    add_user(engine, "ana", "clinician", PASSWORD, practitioners=["PRAC-A"])
    engine.dispose()
    configs = []
    monkeypatch.setattr(uvicorn.Server, "run", lambda self: configs.append(self.config))
    monkeypatch.delenv("ENGAGEKIT_SECRET_KEY", raising=False)

    def start(*options: str):
        result = run("serve", "--db", url, *options, cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        return result, configs[-1]

    return start


def test_serve_binds_to_loopback_without_an_access_log(started):
    result, config = started()
    assert (config.host, config.port) == ("127.0.0.1", 8000)
    assert config.access_log is False and config.server_header is False
    assert "Serving engagekit on http://127.0.0.1:8000/" in result.stdout
    assert "ENGAGEKIT_SECRET_KEY is not set" in result.stderr
    cookie = _login_cookie(config.app)
    assert "Secure" not in cookie  # plain HTTP on loopback


def test_serve_elsewhere_marks_cookies_secure(started, monkeypatch):
    monkeypatch.setenv("ENGAGEKIT_SECRET_KEY", "k" * 40)
    result, config = started("--host", "0.0.0.0", "--port", "8123", "--idle-minutes", "5")
    assert (config.host, config.port) == ("0.0.0.0", 8123)
    assert "only behind HTTPS" in result.stderr
    assert "ENGAGEKIT_SECRET_KEY is not set" not in result.stderr
    assert "Secure" in _login_cookie(config.app)


def _login_cookie(app) -> str:
    from web._web import TestClient

    return TestClient(app).get("/login").headers["set-cookie"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_real_servers_log_never_names_a_patient(service, caplog):
    from engagekit.cli.serve import server_config

    caplog.set_level(logging.DEBUG)
    port = _free_port()
    server = uvicorn.Server(server_config(service.app, "127.0.0.1", port))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        for _ in range(200):
            if server.started:
                break
            time.sleep(0.02)
        assert server.started
        cookies = {SESSION: service.clients["ana"].cookies[SESSION]}
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", cookies=cookies) as client:
            assert client.get("/patients/PAT-01").status_code == 200
            assert client.get("/patients/PAT-04").status_code == 404
            assert client.get("/api/v1/patients/PAT-01").status_code == 200
            assert "server" not in client.get("/caseload").headers
    finally:
        server.should_exit = True
        thread.join(timeout=10)
    served = [r for r in caplog.records if not r.name.startswith(("httpx", "httpcore"))]
    messages = [r.getMessage() for r in served]
    assert any("Uvicorn running" in m for m in messages)  # Uvicorn's log is captured
    assert "GET /patients/{patient_id} 200" in messages
    assert not [m for m in messages if "PAT-" in m]


def test_serve_puts_a_sqlite_database_in_write_ahead_log_mode(started, tmp_path):
    """So that many readers never block a view's audit-log write (bench_serve.py: 5 of 640
    requests failed with "database is locked" before)."""
    import sqlite3

    started()
    with sqlite3.connect(tmp_path / "engagekit.db") as connection:
        assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
