"""Creating and upgrading engagekit's tables in a service's database, with Alembic."""

from __future__ import annotations

from importlib.resources import files
from typing import Any

import sqlalchemy as sa

from ..errors import OutputError
from ._schema import VERSION_TABLE

__all__ = ["HEAD", "database_revision", "upgrade_database"]

#: The newest revision of engagekit's tables (``migrations/versions``).
HEAD = "0002"


def _alembic_config(connection: sa.Connection) -> Any:
    from alembic.config import Config as AlembicConfig

    config = AlembicConfig()
    config.set_main_option("script_location", str(files("engagekit.db") / "migrations"))
    config.attributes["connection"] = connection
    return config


def upgrade_database(engine: sa.Engine) -> str:
    """Bring engagekit's tables in ``engine``'s database to the newest revision,
    creating them on a database that has none; other tables are left alone. Returns the
    revision the database is at.

    Examples
    --------
    >>> import sqlalchemy as sa
    >>> engine = sa.create_engine("sqlite://")
    >>> upgrade_database(engine)
    '0002'
    >>> sorted(sa.inspect(engine).get_table_names())[:3]
    ['audit_log', 'engagekit_schema_version', 'flag_reviews']
    >>> upgrade_database(engine)  # already there: nothing to do
    '0002'
    """
    from alembic import command

    try:
        with engine.begin() as connection:
            command.upgrade(_alembic_config(connection), "head")
    except sa.exc.SQLAlchemyError as e:
        cause = getattr(e, "orig", None) or e  # the driver's own error, where there is one
        raise OutputError(
            f"cannot create or upgrade engagekit's tables in the database: "
            f"{type(cause).__name__}: {str(cause).splitlines()[0]}"
        ) from e
    revision = database_revision(engine)
    assert revision is not None  # the upgrade just wrote it
    return revision


def database_revision(engine: sa.Engine) -> str | None:
    """The revision of engagekit's tables in the database, or None if it has none.

    Examples
    --------
    >>> import sqlalchemy as sa
    >>> engine = sa.create_engine("sqlite://")
    >>> database_revision(engine) is None
    True
    """
    with engine.connect() as connection:
        if not sa.inspect(connection).has_table(VERSION_TABLE):
            return None
        revision = connection.execute(
            sa.text(f"SELECT version_num FROM {VERSION_TABLE}")
        ).scalar_one_or_none()
    return None if revision is None else str(revision)
