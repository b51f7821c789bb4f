"""The results of engagekit monitor.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-04

A migration is a frozen record of one step: it spells its table out instead of importing
``engagekit.db._schema``, which describes the newest step only.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_WHEN = 32


def upgrade() -> None:
    op.create_table(
        "monitor_results",
        sa.Column("monitor_id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("model_sha256", sa.String(64), nullable=False),
        sa.Column("scores_table", sa.String(128), nullable=False),
        sa.Column("target", sa.String(64), nullable=False),
        sa.Column("window", sa.String(16), nullable=False),
        sa.Column("created_at", sa.String(_WHEN), nullable=False),
        sa.Column("result", sa.Text, nullable=False),
    )
    op.create_index("ix_monitor_results_model_sha256", "monitor_results", ["model_sha256"])


def downgrade() -> None:
    op.drop_index("ix_monitor_results_model_sha256", table_name="monitor_results")
    op.drop_table("monitor_results")
