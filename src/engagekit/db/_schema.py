"""The tables engagekit keeps in a service's database, besides the scores themselves.

Every table here is created and upgraded by the Alembic migrations in
``engagekit/db/migrations`` (:func:`engagekit.db.upgrade_database`), never by
``create_all``: a service's database moves from one engagekit release to the next by
running the migrations, whatever it holds. The scores table itself has the model's
columns (:func:`engagekit.scoring.score_columns`), so the score writer creates it; each
of its rows names its run in :data:`score_runs`.

- ``score_runs``: one row per scoring run: its id, the table it wrote, its run key (a
  hash of the model, the data and the settings: a rerun of the same key resumes), when
  it started and finished, the model, the data's hash and its counts.
- ``users``, ``user_practitioners``, ``team_practitioners``: who may sign in to
  ``engagekit serve``, with which role, and whose patients they see.
- ``web_sessions``, ``login_failures``: signed-in sessions (the cookie holds a signed
  random token; only its hash is stored) and failed log-ins, for the rate limit.
- ``audit_log``: every view of a patient's data, every flag review and every user
  change. Append-only: the migrations add triggers that refuse an UPDATE or DELETE.
- ``flag_reviews``: a clinician's review of a flag, or a "do not contact until".
- ``monitor_results``: each result ``engagekit monitor`` recorded: the model (its
  ``model_sha256``) and the scores table it monitored, the outcome, the window, when, and
  the result's JSON (:meth:`engagekit.monitoring.MonitorResult.to_dict`), which the
  analyst's service page shows.
"""

from __future__ import annotations

import sqlalchemy as sa

__all__ = [
    "AUDIT_LOG",
    "FLAG_REVIEWS",
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
]

#: Alembic's record of the schema version, named so that it cannot clash with the
#: service's own Alembic history in the same database.
VERSION_TABLE = "engagekit_schema_version"
#: Who may sign in, and what each sees (engagekit serve enforces it in one place).
ROLES = ("clinician", "team_lead", "analyst", "admin")

METADATA = sa.MetaData()
# timestamps are stored as ISO 8601 text in UTC ("2026-11-27T12:00:00.000000+00:00"): the
# same on SQLite and PostgreSQL, sortable as text, and read back exactly
_WHEN = 32

SCORE_RUNS = sa.Table(
    "score_runs",
    METADATA,
    sa.Column("run_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("scores_table", sa.String(128), nullable=False),
    sa.Column("run_key", sa.String(64), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),  # running | complete | replaced
    sa.Column("started_at", sa.String(_WHEN), nullable=False),
    sa.Column("finished_at", sa.String(_WHEN)),
    sa.Column("model", sa.Text, nullable=False),  # the model directory's name
    sa.Column("model_sha256", sa.String(64), nullable=False),
    sa.Column("target", sa.String(64), nullable=False),
    sa.Column("data_sha256", sa.String(64), nullable=False),
    sa.Column("flag_rule", sa.Text, nullable=False),  # JSON of the applied rule
    sa.Column("n_encounters", sa.Integer, nullable=False),
    sa.Column("n_patients", sa.Integer, nullable=False),
    sa.Column("n_high", sa.Integer, nullable=False),
    sa.Column("n_medium", sa.Integer, nullable=False),
    sa.UniqueConstraint("scores_table", "run_key", name="uq_score_runs_table_key"),
)

USERS = sa.Table(
    "users",
    METADATA,
    sa.Column("user_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("username", sa.String(64), nullable=False, unique=True),
    sa.Column("password_hash", sa.Text, nullable=False),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("team", sa.String(64)),
    sa.Column("disabled", sa.Boolean, nullable=False, default=False),
    sa.Column("created_at", sa.String(_WHEN), nullable=False),
    sa.Column("updated_at", sa.String(_WHEN), nullable=False),
    sa.CheckConstraint(
        "role IN ('clinician', 'team_lead', 'analyst', 'admin')", name="ck_users_role"
    ),
)

USER_PRACTITIONERS = sa.Table(
    "user_practitioners",
    METADATA,
    sa.Column(
        "user_id",
        sa.Integer,
        sa.ForeignKey("users.user_id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("practitioner_id", sa.String(128), primary_key=True),
)

TEAM_PRACTITIONERS = sa.Table(
    "team_practitioners",
    METADATA,
    sa.Column("team", sa.String(64), primary_key=True),
    sa.Column("practitioner_id", sa.String(128), primary_key=True),
)

WEB_SESSIONS = sa.Table(
    "web_sessions",
    METADATA,
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

LOGIN_FAILURES = sa.Table(
    "login_failures",
    METADATA,
    sa.Column("failure_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("username", sa.String(64), nullable=False, index=True),
    sa.Column("client", sa.String(64), nullable=False, index=True),
    sa.Column("at", sa.String(_WHEN), nullable=False),
)

AUDIT_LOG = sa.Table(
    "audit_log",
    METADATA,
    sa.Column("audit_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("at", sa.String(_WHEN), nullable=False, index=True),
    sa.Column("username", sa.String(64), nullable=False),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("action", sa.String(32), nullable=False),  # view | flag_review | user_change …
    sa.Column("route", sa.Text, nullable=False),
    sa.Column("patient_id", sa.String(128)),
    sa.Column("allowed", sa.Boolean, nullable=False),
    sa.Column("detail", sa.Text),
)

FLAG_REVIEWS = sa.Table(
    "flag_reviews",
    METADATA,
    sa.Column("review_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("patient_id", sa.String(128), nullable=False, index=True),
    sa.Column("encounter_id", sa.String(128), nullable=False),
    sa.Column("run_id", sa.Integer, sa.ForeignKey("score_runs.run_id"), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),  # reviewed | do_not_contact
    sa.Column("outcome", sa.String(64)),
    sa.Column("note", sa.Text),
    sa.Column("until", sa.String(10)),  # ISO date, for do_not_contact
    sa.Column("reviewed_by", sa.String(64), nullable=False),
    sa.Column("reviewed_at", sa.String(_WHEN), nullable=False),
    sa.CheckConstraint("status IN ('reviewed', 'do_not_contact')", name="ck_reviews_status"),
)

MONITOR_RESULTS = sa.Table(
    "monitor_results",
    METADATA,
    sa.Column("monitor_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("model_sha256", sa.String(64), nullable=False, index=True),
    sa.Column("scores_table", sa.String(128), nullable=False),
    sa.Column("target", sa.String(64), nullable=False),
    sa.Column("window", sa.String(16), nullable=False),  # week | month | quarter
    sa.Column("created_at", sa.String(_WHEN), nullable=False),
    sa.Column("result", sa.Text, nullable=False),  # JSON of the MonitorResult
)
