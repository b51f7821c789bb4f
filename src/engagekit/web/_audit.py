"""The audit log of ``engagekit serve``: one row per view of a patient's data, flag
review and user change, written with :func:`record_audit` in the same transaction as
what it records, and read back whole or from a day on with :func:`export_audit`.

The table (``engagekit.db.AUDIT_LOG``) is append-only in the database itself: triggers
refuse an UPDATE or DELETE, so nothing here, or any other client, can edit it.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from ..db import AUDIT_LOG, database_revision
from ..errors import DataReadError

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "AUDIT_COLUMNS",
    "export_audit",
    "now",
    "open_database",
    "record_audit",
    "serve_many_readers",
]

#: The columns of an exported audit log, in order.
AUDIT_COLUMNS = tuple(column.name for column in AUDIT_LOG.columns)


def now() -> str:
    """This moment in UTC as the ISO 8601 text engagekit's tables store
    (``2026-11-27T12:00:00.000000+00:00``: sortable as text, read back exactly).

    Examples
    --------
    >>> stamp = now()
    >>> stamp.endswith("+00:00") and len(stamp) == 32
    True
    """
    return dt.datetime.now(dt.UTC).isoformat(timespec="microseconds")


def _shown(url: sa.URL | str) -> str:
    """A database URL as a message shows it: its password hidden."""
    try:
        return sa.make_url(url).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        return "the database URL"


def open_database(url: str, *, create: bool = False) -> sa.Engine:
    """An engine for the database at ``url`` (a SQLAlchemy URL), for the accounts and
    the audit log.

    Parameters
    ----------
    url : str
        ``sqlite:///engagekit.db``, ``postgresql+psycopg://user@host/db``, ...
    create : bool
        Whether a SQLite file that does not exist yet may be created (adding the first
        user does; reading the log or listing users refuses a missing file, so that a
        misspelt path is not taken for an empty database).

    Raises
    ------
    DataReadError
        ``url`` is not a database URL, its driver is not installed, or (without
        ``create``) its SQLite file does not exist. The message hides the URL's password.

    Examples
    --------
    >>> open_database("sqlite://").dialect.name
    'sqlite'
    >>> open_database("sqlite:///no/such/folder/engagekit.db")
    Traceback (most recent call last):
    ...
    engagekit.errors.DataReadError: the database file 'no/such/folder/engagekit.db' does not exist
    >>> open_database("not a url")
    Traceback (most recent call last):
    ...
    engagekit.errors.DataReadError: 'not a url' is not a database URL (e.g. sqlite:///engagekit.db \
or postgresql+psycopg://user@host/database)
    """
    try:
        parsed = sa.make_url(url)
    except sa.exc.ArgumentError:
        raise DataReadError(
            f"{url!r} is not a database URL (e.g. sqlite:///engagekit.db or "
            "postgresql+psycopg://user@host/database)"
        ) from None
    shown = _shown(parsed)
    if parsed.get_backend_name() == "sqlite" and not create:
        from pathlib import Path

        database = parsed.database or ""
        if database and database != ":memory:" and not database.startswith("file:"):
            if not Path(database).is_file():
                raise DataReadError(f"the database file {database!r} does not exist")
    try:
        return sa.create_engine(parsed)
    except ImportError as e:
        raise DataReadError(
            f"the database driver for {shown!r} is not installed: {e.name or e} (for "
            'PostgreSQL, pip install "engagekit[postgresql]")'
        ) from None
    except (sa.exc.ArgumentError, sa.exc.NoSuchModuleError, ValueError) as e:
        raise DataReadError(f"{shown!r} is not a database URL SQLAlchemy can use: {e}") from None


def serve_many_readers(engine: sa.Engine) -> sa.Engine:
    """Set up a SQLite database for a server that many pages read at once while each view
    writes an audit row: write-ahead logging, so readers never block the audit log's
    writes nor it them, and a 30 s wait for a lock instead of 5 s. Other databases are
    returned as they are.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> engine = serve_many_readers(sa.create_engine(f"sqlite:///{folder / 's.db'}"))
    >>> with engine.connect() as connection:
    ...     connection.exec_driver_sql("PRAGMA journal_mode").scalar()
    'wal'
    >>> engine.dispose()
    """
    if engine.dialect.name != "sqlite":
        return engine

    @sa.event.listens_for(engine, "connect")
    def _many_readers(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    return engine


def record_audit(
    connection: sa.Connection,
    *,
    username: str,
    role: str,
    action: str,
    route: str,
    patient_id: str | None,
    allowed: bool,
    detail: str | None = None,
) -> None:
    """Append one row to the audit log, in ``connection``'s transaction (so the row is
    kept exactly when what it records is).

    Parameters
    ----------
    connection : sqlalchemy.Connection
        A connection in a transaction, to a database whose tables are upgraded.
    username, role : str
        Who acted (for the command line: ``cli`` and ``admin``).
    action : str
        ``view``, ``flag_review``, ``user_change``, ...
    route : str
        Where: the web route (``/patients/{patient_id}``) or the command
        (``cli:users add``).
    patient_id : str or None
        The patient whose data were viewed or reviewed; None when there is none.
    allowed : bool
        Whether the access was granted.
    detail : str, optional
        What happened, in words. Never a password or other secret.

    Examples
    --------
    >>> from engagekit.db import upgrade_database
    >>> engine = sa.create_engine("sqlite://")
    >>> _ = upgrade_database(engine)
    >>> with engine.begin() as connection:
    ...     record_audit(connection, username="ana", role="clinician", action="view",
    ...                  route="/patients/{patient_id}", patient_id="P001", allowed=True)
    >>> export_audit(engine)[["username", "action", "patient_id", "allowed"]]
      username action patient_id  allowed
    0      ana   view       P001     True
    """
    connection.execute(
        AUDIT_LOG.insert(),
        {
            "at": now(),
            "username": username,
            "role": role,
            "action": action,
            "route": route,
            "patient_id": patient_id,
            "allowed": bool(allowed),
            "detail": detail,
        },
    )


def export_audit(engine: sa.Engine, since: dt.date | None = None) -> pd.DataFrame:
    """The audit log, oldest row first: every column of it (:data:`AUDIT_COLUMNS`),
    from the start of day ``since`` (UTC) on, or all of it.

    Raises
    ------
    DataReadError
        The database has no engagekit tables (so no audit log), or cannot be read.

    Examples
    --------
    >>> from engagekit.db import upgrade_database
    >>> engine = sa.create_engine("sqlite://")
    >>> _ = upgrade_database(engine)
    >>> export_audit(engine, since=dt.date(2026, 1, 1)).columns.tolist()
    ['audit_id', 'at', 'username', 'role', 'action', 'route', 'patient_id', 'allowed', 'detail']
    """
    import pandas as pd

    query: Any = sa.select(*AUDIT_LOG.columns).order_by(AUDIT_LOG.c.at, AUDIT_LOG.c.audit_id)
    if since is not None:
        # stored as ISO 8601 text in UTC, which sorts as the moments do
        query = query.where(AUDIT_LOG.c.at >= since.isoformat())
    try:
        if database_revision(engine) is None:
            raise DataReadError(
                f"{_shown(engine.url)!r} has no engagekit tables, so no audit log "
                "(engagekit serve and engagekit users create them)"
            )
        with engine.connect() as connection:
            rows = connection.execute(query).all()
    except sa.exc.SQLAlchemyError as e:
        cause = getattr(e, "orig", None) or e
        raise DataReadError(
            f"cannot read the audit log from {_shown(engine.url)!r}: {type(cause).__name__}: "
            f"{str(cause).splitlines()[0]}"
        ) from e
    frame = pd.DataFrame.from_records(rows, columns=list(AUDIT_COLUMNS))
    text = [c for c in AUDIT_COLUMNS if c not in ("audit_id", "allowed")]
    return frame.astype(
        {"audit_id": "Int64", "allowed": "boolean", **dict.fromkeys(text, "string")}
    )
