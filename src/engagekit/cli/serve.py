"""``serve``: the clinician web page on the score database (FastAPI, served by Uvicorn).

Bound to the loopback address unless told otherwise. The cookies are signed with
``ENGAGEKIT_SECRET_KEY`` (or with a random key made at start, said so: sessions then
end when the server stops). The server's log names each request's route by its template
(``/patients/{patient_id}``): Uvicorn's access log, which would show the path, is off.
"""

from __future__ import annotations

import ipaddress
import os
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape

from ._app import app, err, out
from .users import DatabaseOption

if TYPE_CHECKING:
    import uvicorn

SECRET_VARIABLE = "ENGAGEKIT_SECRET_KEY"
MIN_SECRET_LENGTH = 32
_WEB_MODULES = ("fastapi", "uvicorn", "itsdangerous", "argon2", "multipart")


def is_loopback(host: str) -> bool:
    """Whether ``host`` is the loopback address (only this machine can connect)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def server_config(web_app: Any, host: str, port: int) -> uvicorn.Config:
    """Uvicorn's settings for ``web_app``: no access log (it would show patients' IDs in
    paths; the app logs route templates instead), no ``server`` header, and the logging
    left to the caller (every logger propagates to the root logger)."""
    import uvicorn

    return uvicorn.Config(
        web_app,
        host=host,
        port=port,
        access_log=False,
        server_header=False,
        log_config=None,
        lifespan="off",
        ws="none",  # the app has no WebSocket routes
    )


def _require_web_extra() -> None:
    import importlib.util

    from ..errors import ConfigError
    from ..web import WEB_EXTRA_MISSING

    missing = [name for name in _WEB_MODULES if importlib.util.find_spec(name) is None]
    if missing:
        raise ConfigError(f"{WEB_EXTRA_MISSING} (missing: {', '.join(missing)})")


@app.command("serve")
def serve(
    db: DatabaseOption,
    host: Annotated[
        str,
        typer.Option(
            "--host",
            help="The address to listen on. The default, 127.0.0.1, lets only this machine "
            "connect; any other address marks the cookies Secure, so put the server "
            "behind HTTPS (a reverse proxy that terminates TLS).",
        ),
    ] = "127.0.0.1",
    port: Annotated[
        int, typer.Option("--port", help="The port to listen on.", min=1, max=65535)
    ] = 8000,
    table: Annotated[
        str,
        typer.Option("--table", help="The scores table (as engagekit score --db wrote it)."),
    ] = "scores",
    idle_minutes: Annotated[
        int,
        typer.Option(
            "--idle-minutes",
            help="Sign a user out after this many minutes without a request.",
            min=1,
            max=24 * 60,
        ),
    ] = 30,
) -> None:
    """Serve the clinician web page on the score database.

    Clinicians see their practitioners' patients by current risk, each patient's risk
    over sessions and its reasons, and record flag reviews; team leads see their team;
    analysts see aggregates only; admins read the audit log and manage the users (as
    engagekit users does). Every view of a patient's data is written to the audit log.
    Flags support a conversation; they never decide care.

    Set ENGAGEKIT_SECRET_KEY (at least 32 characters) to keep sessions across restarts.
    """
    import datetime as dt
    import logging

    from ..errors import ArgumentError

    _require_web_extra()
    secret = os.environ.get(SECRET_VARIABLE) or None
    if secret is not None and len(secret) < MIN_SECRET_LENGTH:
        raise ArgumentError(
            f"{SECRET_VARIABLE} is too short: use at least {MIN_SECRET_LENGTH} random "
            "characters (python -c 'import secrets; print(secrets.token_urlsafe(32))')"
        )
    import uvicorn

    from ..web import create_app, open_database
    from ..web._audit import serve_many_readers

    engine = serve_many_readers(open_database(db))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)  # the migrations' chatter
    if secret is None:
        err.print(
            f"{SECRET_VARIABLE} is not set: a random secret was generated for this run, "
            "so everyone signs in again when the server restarts.",
            highlight=False,
        )
    loopback = is_loopback(host)
    if not loopback:
        err.print(
            f"Listening on {host}, not the loopback address: the cookies are marked Secure, "
            "so the page works only behind HTTPS.",
            highlight=False,
        )
    try:
        web_app = create_app(
            engine,
            secret_key=secret or _random_secret(),
            secure_cookies=not loopback,
            idle_timeout=dt.timedelta(minutes=idle_minutes),
            scores_table=table,
        )
        shown = f"[{host}]" if ":" in host else host
        out.print(
            escape(f"Serving engagekit on http://{shown}:{port}/ (Ctrl+C stops it)."),
            highlight=False,
        )
        uvicorn.Server(server_config(web_app, host, port)).run()
    finally:
        engine.dispose()


def _random_secret() -> str:
    import secrets

    return secrets.token_urlsafe(32)
