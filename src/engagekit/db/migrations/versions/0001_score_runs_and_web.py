"""Score runs, and the tables of engagekit serve: users, sessions, audit log, reviews.

Revision ID: 0001
Revises:
Create Date: 2026-11-27

A migration is a frozen record of one step: it spells its tables out instead of
importing ``engagekit.db._schema``, which describes the newest step only.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_WHEN = 32


def upgrade() -> None:
    op.create_table(
        "score_runs",
        sa.Column("run_id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("scores_table", sa.String(128), nullable=False),
        sa.Column("run_key", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("started_at", sa.String(_WHEN), nullable=False),
        sa.Column("finished_at", sa.String(_WHEN)),
        sa.Column("model", sa.Text, nullable=False),
        sa.Column("model_sha256", sa.String(64), nullable=False),
        sa.Column("target", sa.String(64), nullable=False),
        sa.Column("data_sha256", sa.String(64), nullable=False),
        sa.Column("flag_rule", sa.Text, nullable=False),
        sa.Column("n_encounters", sa.Integer, nullable=False),
        sa.Column("n_patients", sa.Integer, nullable=False),
        sa.Column("n_high", sa.Integer, nullable=False),
        sa.Column("n_medium", sa.Integer, nullable=False),
        sa.UniqueConstraint("scores_table", "run_key", name="uq_score_runs_table_key"),
    )
    op.create_table(
        "users",
        sa.Column("user_id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("username", sa.String(64), nullable=False, unique=True),
        sa.Column("password_hash", sa.Text, nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("team", sa.String(64)),
        sa.Column("disabled", sa.Boolean, nullable=False),
        sa.Column("created_at", sa.String(_WHEN), nullable=False),
        sa.Column("updated_at", sa.String(_WHEN), nullable=False),
        sa.CheckConstraint(
            "role IN ('clinician', 'team_lead', 'analyst', 'admin')", name="ck_users_role"
        ),
    )
    op.create_table(
        "user_practitioners",
        sa.Column(
            "user_id",
            sa.Integer,
            sa.ForeignKey("users.user_id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("practitioner_id", sa.String(128), primary_key=True),
    )
    op.create_table(
        "team_practitioners",
        sa.Column("team", sa.String(64), primary_key=True),
        sa.Column("practitioner_id", sa.String(128), primary_key=True),
    )
    op.create_table(
        "web_sessions",
        sa.Column("token_sha256", sa.String(64), primary_key=True),
        sa.Column(
            "user_id",
            sa.Integer,
            sa.ForeignKey("users.user_id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("csrf_token", sa.String(64), nullable=False),
        sa.Column("created_at", sa.String(_WHEN), nullable=False),
        sa.Column("last_seen_at", sa.String(_WHEN), nullable=False),
    )
    op.create_table(
        "login_failures",
        sa.Column("failure_id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("username", sa.String(64), nullable=False),
        sa.Column("client", sa.String(64), nullable=False),
        sa.Column("at", sa.String(_WHEN), nullable=False),
    )
    op.create_index("ix_login_failures_username", "login_failures", ["username"])
    op.create_index("ix_login_failures_client", "login_failures", ["client"])
    op.create_table(
        "audit_log",
        sa.Column("audit_id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("at", sa.String(_WHEN), nullable=False),
        sa.Column("username", sa.String(64), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("route", sa.Text, nullable=False),
        sa.Column("patient_id", sa.String(128)),
        sa.Column("allowed", sa.Boolean, nullable=False),
        sa.Column("detail", sa.Text),
    )
    op.create_index("ix_audit_log_at", "audit_log", ["at"])
    op.create_table(
        "flag_reviews",
        sa.Column("review_id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("patient_id", sa.String(128), nullable=False),
        sa.Column("encounter_id", sa.String(128), nullable=False),
        sa.Column("run_id", sa.Integer, sa.ForeignKey("score_runs.run_id"), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("outcome", sa.String(64)),
        sa.Column("note", sa.Text),
        sa.Column("until", sa.String(10)),
        sa.Column("reviewed_by", sa.String(64), nullable=False),
        sa.Column("reviewed_at", sa.String(_WHEN), nullable=False),
        sa.CheckConstraint("status IN ('reviewed', 'do_not_contact')", name="ck_reviews_status"),
    )
    op.create_index("ix_flag_reviews_patient_id", "flag_reviews", ["patient_id"])
    _append_only("audit_log")


def downgrade() -> None:
    _drop_append_only("audit_log")
    for table in (
        "flag_reviews",
        "audit_log",
        "login_failures",
        "web_sessions",
        "team_practitioners",
        "user_practitioners",
        "users",
        "score_runs",
    ):
        op.drop_table(table)


def _append_only(table: str) -> None:
    """Triggers that refuse any UPDATE or DELETE of ``table``'s rows, in the database
    itself, so that nothing (engagekit or another client) can edit the log."""
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for action in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER {table}_no_{action.lower()} BEFORE {action} ON {table} "
                f"BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END"
            )
    elif dialect == "postgresql":
        op.execute(
            f"CREATE FUNCTION {table}_append_only() RETURNS trigger AS $$ BEGIN "
            f"RAISE EXCEPTION '{table} is append-only'; END $$ LANGUAGE plpgsql"
        )
        op.execute(
            f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
            f"FOR EACH ROW EXECUTE FUNCTION {table}_append_only()"
        )


def _drop_append_only(table: str) -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for action in ("update", "delete"):
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_{action}")
    elif dialect == "postgresql":
        op.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
        op.execute(f"DROP FUNCTION IF EXISTS {table}_append_only()")
