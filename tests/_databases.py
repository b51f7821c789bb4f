"""The databases the database tests run against: SQLite always, PostgreSQL where one is
reachable.

PostgreSQL is named by ``ENGAGEKIT_TEST_POSTGRES_URL`` (a SQLAlchemy URL of a role that
may create databases, e.g. ``postgresql+psycopg://engagekit:engagekit@127.0.0.1/postgres``);
each test gets a database of its own, dropped afterwards. Without the variable the
PostgreSQL cases skip with one line, unless ``ENGAGEKIT_REQUIRE_POSTGRES`` is set (as
``.ci/run`` sets it, after starting Debian's PostgreSQL): then they fail.
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa

URL_VARIABLE = "ENGAGEKIT_TEST_POSTGRES_URL"
REQUIRE_VARIABLE = "ENGAGEKIT_REQUIRE_POSTGRES"
DIALECTS = ("sqlite", "postgresql")


def postgres_url() -> str | None:
    return os.environ.get(URL_VARIABLE) or None


def postgres_required() -> bool:
    return bool(os.environ.get(REQUIRE_VARIABLE))


def missing_postgres_message() -> str:
    return (
        f"no PostgreSQL for the database tests: set {URL_VARIABLE} to a role that may "
        "create databases (.ci/run starts Debian's postgresql, sets it and sets "
        f"{REQUIRE_VARIABLE}=1, so CI never skips them)"
    )


@contextmanager
def fresh_database(dialect: str, tmp_path: Path) -> Iterator[str]:
    """The URL of an empty database of ``dialect``, removed afterwards."""
    if dialect == "sqlite":
        yield f"sqlite:///{tmp_path / 'engagekit.db'}"
        return
    base = postgres_url()
    assert base is not None, missing_postgres_message()
    name = f"engagekit_test_{secrets.token_hex(6)}"
    admin = sa.create_engine(base, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
        url = sa.make_url(base).set(database=name)
        yield url.render_as_string(hide_password=False)
    finally:
        try:
            _drop(admin, name)
        finally:
            admin.dispose()


#: Tries at dropping a test database, a second apart.
DROP_TRIES = 30


def _drop(admin: sa.Engine, name: str) -> None:
    """Drop the database ``name``. ``WITH (FORCE)`` ends the test's own sessions, but a
    role that is not a superuser may not end another role's: an autovacuum worker busy
    in the new database (on a loaded machine) refuses the drop until it is done, so the
    drop is tried again."""
    for attempt in range(DROP_TRIES):
        try:
            with admin.connect() as connection:
                connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            return
        except sa.exc.ProgrammingError as e:
            refused = "must be a member of the role whose process is being terminated"
            if refused not in str(e) or attempt == DROP_TRIES - 1:
                raise
            time.sleep(1)
