"""Alembic's environment for engagekit's tables: run on the connection that
:func:`engagekit.db.upgrade_database` passes in, never from an ini file."""

from __future__ import annotations

from alembic import context

from engagekit.db._schema import METADATA, VERSION_TABLE

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only engagekit.db.upgrade_database runs this
    raise RuntimeError("engagekit's migrations run through engagekit.db.upgrade_database")
context.configure(
    connection=connection,
    target_metadata=METADATA,
    version_table=VERSION_TABLE,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
