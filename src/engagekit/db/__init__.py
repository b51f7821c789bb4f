"""engagekit's tables in a service's database: score runs, the results of ``engagekit
monitor``, and the users, sessions, audit log and flag reviews of ``engagekit serve``,
created and upgraded by Alembic migrations (:func:`upgrade_database`). SQLite is the
embedded default; PostgreSQL is supported and tested."""

from ._migrate import HEAD, database_revision, upgrade_database
from ._schema import (
    AUDIT_LOG,
    FLAG_REVIEWS,
    LOGIN_FAILURES,
    METADATA,
    MONITOR_RESULTS,
    ROLES,
    SCORE_RUNS,
    TEAM_PRACTITIONERS,
    USER_PRACTITIONERS,
    USERS,
    VERSION_TABLE,
    WEB_SESSIONS,
)

__all__ = [
    "AUDIT_LOG",
    "FLAG_REVIEWS",
    "HEAD",
    "LOGIN_FAILURES",
    "METADATA",
    "MONITOR_RESULTS",
    "ROLES",
    "SCORE_RUNS",
    "TEAM_PRACTITIONERS",
    "USERS",
    "USER_PRACTITIONERS",
    "VERSION_TABLE",
    "WEB_SESSIONS",
    "database_revision",
    "upgrade_database",
]
