"""The web tests' score database and helpers (the fixtures are in conftest.py).

The scores table is written here directly with SQLAlchemy, in the shape the score
writer gives it (``run_id``, identifiers, ``risk``, ``flag``, ``reasons``, ``shap_*``,
``grouped_*``, ``rating_*``, ``score_chunk``), with three runs in ``score_runs``: an old one
(``replaced``), the one the pages show (``complete``) and one still ``running``.

- practitioners ``PRAC-A`` and ``PRAC-B`` are team North's, ``PRAC-C`` team South's;
- ``ana`` (clinician) has ``PRAC-A``; ``lee`` (team_lead) leads North; ``kim`` is an
  analyst and ``sam`` an admin;
- twelve patients ``PAT-01`` … ``PAT-12``, of 2 to 4 sessions each; ``PAT-04`` saw
  ``PRAC-A`` first and ``PRAC-C`` at their latest session, so they are no longer ana's;
- two rated qualities, ``empathy`` 4 and ``active_listening`` 3 at every session but:
  ``PAT-01``'s empathy drops by exactly 1 point at their latest session (a rating drop),
  ``PAT-02``'s by 0.9 (none), ``PAT-05`` has active listening not rated at their latest
  session (missing ratings), ``PAT-08`` not at the previous one (no alert), and
  ``PAT-11``'s empathy rises from 2 to 4 (none). The run's newest encounter is on
  2026-05-11, so the three-session patients (latest in April, from 31 days before) have
  no recent encounter, and no one else has. ``ratings=False`` leaves the ratings out.
"""

from __future__ import annotations

import dataclasses
import json
import warnings
from typing import Any

import sqlalchemy as sa

from engagekit.db import SCORE_RUNS, TEAM_PRACTITIONERS, upgrade_database
from engagekit.web import add_user

with warnings.catch_warnings():
    # starlette's test client asks for httpx2 from this release on; httpx is what we have
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient

PASSWORD = "correct horse battery staple"
SECRET = "a test secret of at least thirty-two characters"
PRACTITIONERS = ("PRAC-A", "PRAC-B", "PRAC-C")
TREATMENTS = ("CBT", "IPT", "Counselling")
HIGH, MEDIUM = 0.6, 0.35
USERS = {
    "ana": ("clinician", {"practitioners": ["PRAC-A"]}),
    "lee": ("team_lead", {"team": "North"}),
    "kim": ("analyst", {}),
    "sam": ("admin", {}),
    "rita": ("clinician", {"practitioners": ["PRAC-B"]}),  # for the sign-in tests
}


def _practitioner(patient: int, session: int, sessions: int) -> str:
    if patient == 4:  # moved from PRAC-A to PRAC-C at the latest session
        return "PRAC-C" if session == sessions else "PRAC-A"
    return PRACTITIONERS[(patient - 1) % 3]


def _flag(risk: float) -> str:
    return "high" if risk >= HIGH else "medium" if risk >= MEDIUM else "low"


RATED = ("empathy", "active_listening")
RATED_CHANGES: dict[tuple[int, int], dict[str, float | None]] = {
    (1, 3): {"empathy": 3.0},
    (2, 4): {"empathy": 3.1},
    (5, 4): {"active_listening": None},
    (8, 3): {"active_listening": None},
    (11, 3): {"empathy": 2.0},
}


def ratings_of(patient: int, session: int) -> dict[str, float | None]:
    """``rating_<quality>`` of patient ``patient``'s session ``session``."""
    rated: dict[str, float | None] = {"empathy": 4.0, "active_listening": 3.0}
    rated.update(RATED_CHANGES.get((patient, session), {}))
    return {f"rating_{name}": value for name, value in rated.items()}


def score_rows(run_id: int, shift: float = 0.0, *, ratings: bool = True) -> list[dict[str, Any]]:
    """The scores of one run: patient k has 2 + k % 3 sessions, risks rising with k;
    with their ``rating_*`` columns unless ``ratings`` is False."""
    rows = []
    for k in range(1, 13):
        sessions = 2 + k % 3
        for s in range(1, sessions + 1):
            risk = round(min(0.97, 0.05 + 0.07 * k + 0.03 * s + shift), 4)
            rows.append(
                {
                    "run_id": run_id,
                    "encounter_id": f"ENC-{k:02d}-{s}",
                    "patient_id": f"PAT-{k:02d}",
                    "treatment": TREATMENTS[k % 3],
                    "practitioner_id": _practitioner(k, s, sessions),
                    "session_number": s,
                    "encounter_date": f"2026-{1 + s:02d}-{k:02d}",
                    "p_adherent": 1 - risk,
                    "risk": risk,
                    "flag": _flag(risk),
                    "reasons": "Low rating of empathy|Fewer sessions attended so far",
                    "shap_base_value": -0.4,
                    "shap_empathy": 0.3,
                    "grouped_quality": 0.3,
                    "grouped_treatment": -0.1,
                    "grouped_history": 0.05 * s,
                    "score_chunk": 0,
                    **(ratings_of(k, s) if ratings else {}),
                }
            )
    return rows


def scores_table(*, ratings: bool = True) -> sa.Table:
    """The scores table's definition, with its ``rating_*`` columns unless ``ratings``
    is False (a table written before scores had them)."""
    return sa.Table(
        "scores",
        sa.MetaData(),
        *_columns(),
        *(sa.Column(f"rating_{name}", sa.Float) for name in (RATED if ratings else ())),
    )


def _columns() -> list[sa.Column]:
    return [
        sa.Column("run_id", sa.Integer, nullable=False),
        sa.Column("encounter_id", sa.String(64), nullable=False),
        sa.Column("patient_id", sa.String(64), nullable=False),
        sa.Column("treatment", sa.String(64)),
        sa.Column("practitioner_id", sa.String(64)),
        sa.Column("session_number", sa.Integer),
        sa.Column("encounter_date", sa.String(10)),
        sa.Column("p_adherent", sa.Float),
        sa.Column("risk", sa.Float),
        sa.Column("flag", sa.String(8)),
        sa.Column("reasons", sa.Text),
        sa.Column("shap_base_value", sa.Float),
        sa.Column("shap_empathy", sa.Float),
        sa.Column("grouped_quality", sa.Float),
        sa.Column("grouped_treatment", sa.Float),
        sa.Column("grouped_history", sa.Float),
        sa.Column("score_chunk", sa.Integer),
    ]


SCORES = scores_table()


def _run(status: str, key: str, finished: str | None) -> dict[str, Any]:
    rule = {"rule": "top_percent", "value": 10, "threshold": HIGH, "medium_threshold": MEDIUM}
    return {
        "scores_table": "scores",
        "run_key": key,
        "status": status,
        "started_at": "2026-11-01T00:00:00.000000+00:00",
        "finished_at": finished,
        "model": "model",
        "model_sha256": "0" * 64,
        "target": "adherent",
        "data_sha256": "1" * 64,
        "flag_rule": json.dumps(rule),
        "n_encounters": 36,
        "n_patients": 12,
        "n_high": 4,
        "n_medium": 4,
    }


def build_service_database(url: str, *, ratings: bool = True) -> sa.Engine:
    """The database: engagekit's tables, users, teams, three runs of scores (with their
    ``rating_*`` columns unless ``ratings`` is False)."""
    engine = sa.create_engine(url)
    upgrade_database(engine)
    for name, (role, options) in USERS.items():
        add_user(engine, name, role, PASSWORD, **options)
    with engine.begin() as connection:
        connection.execute(
            TEAM_PRACTITIONERS.insert(),
            [
                {"team": "North", "practitioner_id": "PRAC-A"},
                {"team": "North", "practitioner_id": "PRAC-B"},
                {"team": "South", "practitioner_id": "PRAC-C"},
            ],
        )
        table = SCORES if ratings else scores_table(ratings=False)
        table.create(connection)
        ids = []
        for status, key, finished in (
            ("replaced", "old", "2026-11-02T00:00:00.000000+00:00"),
            ("complete", "new", "2026-11-03T00:00:00.000000+00:00"),
            ("running", "next", None),
        ):
            key_ = connection.execute(SCORE_RUNS.insert().values(**_run(status, key, finished)))
            ids.append(int(key_.inserted_primary_key[0]))
        connection.execute(table.insert(), score_rows(ids[0], shift=-0.04, ratings=ratings))
        connection.execute(table.insert(), score_rows(ids[1], ratings=ratings))
        connection.execute(table.insert(), score_rows(ids[2], shift=0.02, ratings=ratings)[:5])
    return engine


@dataclasses.dataclass
class Service:
    """The served application, its database, and signed-in clients."""

    engine: sa.Engine
    app: Any
    clients: dict[str, Any]

    def client(self, address: str = "testclient") -> Any:
        """A new client, signed out (from ``address``)."""
        return TestClient(self.app, follow_redirects=False, client=(address, 50000))


def sign_in(client: Any, username: str, password: str = PASSWORD) -> Any:
    """Sign ``client`` in through the form; the POST's response."""
    form = client.get("/login")
    assert form.status_code == 200, form.text
    token = form.text.split('name="csrf_token" value="')[1].split('"')[0]
    return client.post(
        "/login", data={"username": username, "password": password, "csrf_token": token}
    )


def csrf_of(client: Any, page: str = "/") -> str:
    """The session's CSRF token, as a page's sign-out form carries it."""
    response = client.get(page, follow_redirects=True)
    return response.text.split('name="csrf_token" value="')[1].split('"')[0]


def audit_rows(engine: sa.Engine) -> list[dict[str, Any]]:
    from engagekit.db import AUDIT_LOG

    with engine.connect() as connection:
        return [
            dict(row)
            for row in connection.execute(
                sa.select(AUDIT_LOG).order_by(AUDIT_LOG.c.audit_id)
            ).mappings()
        ]
