"""engagekit's tables in a service's database: created and upgraded by the migrations,
alike on SQLite and PostgreSQL, with an audit log nobody can edit."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from engagekit.db import AUDIT_LOG, HEAD, METADATA, database_revision, upgrade_database
from engagekit.errors import OutputError

ROW = {
    "at": "2026-11-27T12:00:00.000000+00:00",
    "username": "ana",
    "role": "clinician",
    "action": "view",
    "route": "/patients/{patient_id}",
    "patient_id": "P001",
    "allowed": True,
}


def test_the_migrations_create_exactly_the_tables_the_schema_describes(database_url):
    engine = sa.create_engine(database_url)
    assert database_revision(engine) is None
    assert upgrade_database(engine) == HEAD
    inspector = sa.inspect(engine)
    assert set(inspector.get_table_names()) == {*METADATA.tables, "engagekit_schema_version"}
    for table in METADATA.sorted_tables:
        migrated = {c["name"]: c for c in inspector.get_columns(table.name)}
        assert list(migrated) == [c.name for c in table.columns], table.name
        for column in table.columns:
            assert migrated[column.name]["nullable"] == column.nullable, (table, column)
    engine.dispose()


def test_upgrading_twice_changes_nothing_and_leaves_other_tables_alone(database_url):
    engine = sa.create_engine(database_url)
    with engine.begin() as connection:
        connection.execute(sa.text("CREATE TABLE service_own (x INTEGER)"))
        connection.execute(sa.text("INSERT INTO service_own VALUES (7)"))
    upgrade_database(engine)
    with engine.begin() as connection:
        connection.execute(AUDIT_LOG.insert(), ROW)
    assert upgrade_database(engine) == HEAD
    with engine.connect() as connection:
        assert connection.execute(sa.text("SELECT x FROM service_own")).scalar_one() == 7
        assert connection.execute(sa.select(sa.func.count()).select_from(AUDIT_LOG)).scalar() == 1
    engine.dispose()


@pytest.mark.parametrize(
    "statement",
    [AUDIT_LOG.update().values(allowed=False), AUDIT_LOG.delete()],
    ids=["update", "delete"],
)
def test_the_audit_log_is_append_only_in_the_database_itself(database_url, statement):
    engine = sa.create_engine(database_url)
    upgrade_database(engine)
    with engine.begin() as connection:
        connection.execute(AUDIT_LOG.insert(), ROW)
    with pytest.raises(sa.exc.DatabaseError, match="append-only"):
        with engine.begin() as connection:
            connection.execute(statement)
    with engine.connect() as connection:
        kept = connection.execute(sa.select(AUDIT_LOG.c.allowed)).scalars().all()
    assert kept == [True]
    engine.dispose()


def test_a_database_that_cannot_be_written_is_an_output_error(tmp_path):
    path = tmp_path / "read-only.db"
    sa.create_engine(f"sqlite:///{path}").connect().close()
    engine = sa.create_engine(f"sqlite:///file:{path}?mode=ro&uri=true")
    with pytest.raises(OutputError, match="cannot create or upgrade engagekit's tables"):
        upgrade_database(engine)
    engine.dispose()
