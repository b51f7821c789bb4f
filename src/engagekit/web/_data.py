"""What the pages of ``engagekit serve`` show, read from the scores table and
engagekit's tables, always through a :class:`~engagekit.web._scope.Scope`.

The page reads one scores table (``scores`` unless told otherwise), and in it the
latest ``complete`` run of :data:`engagekit.db.SCORE_RUNS`. A patient's current state is
their latest encounter (highest ``session_number``) in that run; their current
practitioner is that encounter's ``practitioner_id``. Each view model here is a frozen
pydantic model: the page templates render it, the JSON API returns it.

Examples
--------
>>> format_risk(0.1234), format_difference(0.05), format_difference(-0.2)
('12%', '+5 points', '−20 points')
>>> sparkline_points([0.1, 0.5, 0.3], width=40, height=10)
'1.0,8.2 20.0,5.0 39.0,6.6'
>>> risk_axis_top(0.03, 0.11, None), risk_axis_top(0.6), risk_axis_top()
(0.2, 0.6, 1.0)
>>> rating_alerts([4.0, 3.0], [5.0, 3.0], "2026-03-01", "2026-03-29")
['rating drop']
>>> rating_alerts([4.0, None], [4.0, 4.5], "2026-03-01", "2026-03-30")
['missing ratings', 'no recent encounter']
>>> quality_label("active_listening")
'Active listening'
"""

from __future__ import annotations

import collections
import datetime as dt
import json
import math
import threading
from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict

from ..db import AUDIT_LOG, FLAG_REVIEWS, SCORE_RUNS
from ..errors import DataReadError
from ..io._monitor_store import RecordedMonitorResult, latest_monitor_result
from ._audit import now, record_audit
from ._scope import Scope

__all__ = [
    "ALERTS",
    "OUTCOMES",
    "AuditEntry",
    "AuditPage",
    "Caseload",
    "CaseloadRow",
    "Contribution",
    "PatientDetail",
    "RatingSession",
    "Review",
    "RunInfo",
    "ScoresSource",
    "Service",
    "SessionRisk",
    "Team",
    "TeamRow",
    "TreatmentRates",
    "format_difference",
    "format_risk",
    "quality_label",
    "rating_alerts",
    "risk_axis_top",
    "sparkline_points",
]

#: The outcomes a clinician may record for a reviewed flag, and how the page names them.
OUTCOMES: dict[str, str] = {
    "contacted": "Contacted the patient",
    "discussed": "Discussed in supervision",
    "no_action": "No action needed",
    "other": "Other (see the note)",
}
FLAGS = ("high", "medium", "low")
#: The caseload's alerts (as the commercial tools show them), by the key a filter uses.
ALERTS: dict[str, str] = {
    "rating_drop": "rating drop",
    "missing_ratings": "missing ratings",
    "no_recent_encounter": "no recent encounter",
}
#: A quality rated at least this many points lower than at the previous session is a
#: drop (the OpenFIT rule).
RATING_DROP = 1.0
#: A latest encounter more than this many days before the run's newest one is not recent.
RECENT_DAYS = 28
RATING_PREFIX = "rating_"
#: The most rows the audit page shows (``engagekit audit export`` has them all).
AUDIT_PAGE_ROWS = 200
#: Patients on one page of the caseload (the API gives them all unless asked for a page).
CASELOAD_PAGE_ROWS = 50
#: Practitioners whose current patients :class:`ScoresSource` keeps in memory.
CACHED_PRACTITIONERS = 4096
NOTE_LENGTH = 500
_CHUNK = 500  # identifiers in one IN (...) list


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


class RunInfo(_Frozen):
    """The scoring run the pages show."""

    run_id: int
    target: str
    finished_at: str | None
    n_encounters: int
    n_patients: int
    mean_risk: float | None
    high_threshold: float | None
    medium_threshold: float | None
    newest_encounter_date: str | None = None
    #: The model that scored the run (its monitoring results are recorded under it).
    model_sha256: str | None = None


class Review(_Frozen):
    """One review of a patient's flag."""

    status: str
    outcome: str | None
    note: str | None
    until: str | None
    reviewed_by: str
    reviewed_at: str

    @property
    def summary(self) -> str:
        if self.status == "do_not_contact":
            return f"Do not contact until {self.until}"
        outcome = OUTCOMES.get(self.outcome or "", self.outcome or "")
        return f"Reviewed {self.reviewed_at[:10]}" + (f": {outcome}" if outcome else "")


class CaseloadRow(_Frozen):
    """A patient of the caseload, at their latest encounter."""

    patient_id: str
    practitioner_id: str
    treatment: str
    session_number: int
    encounter_date: str
    risk: float
    flag: str
    risk_vs_service: float | None
    risks: list[float]
    latest_review: Review | None
    alerts: list[str] = []


class Caseload(_Frozen):
    """The user's patients, highest current risk first: ``n_patients`` in all,
    ``n_matching`` of them through the filters, ``rows`` those of page ``page`` of
    ``pages`` (page 1 of 1 holds every match)."""

    run: RunInfo | None
    rows: list[CaseloadRow]
    n_patients: int
    treatments: list[str]
    alerts: dict[str, str] = ALERTS
    n_matching: int = 0
    page: int = 1
    pages: int = 1
    first_row: int = 1


class SessionRisk(_Frozen):
    session_number: int
    encounter_date: str
    risk: float
    flag: str


class RatingSession(_Frozen):
    """A session's rating of each quality (None: not rated), in ``qualities``' order."""

    session_number: int
    encounter_date: str
    ratings: list[float | None]


class Contribution(_Frozen):
    """A group's contribution to the latest encounter's log-odds of the bad outcome."""

    group: str
    value: float


class PatientDetail(_Frozen):
    """One patient: risk over sessions, current reasons and contributions, reviews."""

    patient_id: str
    practitioner_id: str
    treatment: str
    encounter_id: str
    session_number: int
    encounter_date: str
    risk: float
    flag: str
    reasons: list[str]
    sessions: list[SessionRisk]
    contributions: list[Contribution]
    reviews: list[Review]
    run: RunInfo
    qualities: list[str] = []
    ratings: list[RatingSession] = []


class TeamRow(_Frozen):
    practitioner_id: str
    patients: int
    high: int
    medium: int


class Team(_Frozen):
    """A team lead's practitioners: caseload sizes and current flags."""

    team: str | None
    run: RunInfo | None
    rows: list[TeamRow]


class TreatmentRates(_Frozen):
    """Current flags of one treatment's patients (counts and shares; no identifiers)."""

    treatment: str
    patients: int
    high: int
    medium: int
    high_rate: float
    medium_rate: float


class Service(_Frozen):
    """The service as an analyst sees it: aggregates only.

    ``monitoring`` is the latest result ``engagekit monitor`` recorded for the model of
    the run shown (and its scores table), None when none was; ``monitoring_note`` says
    why a recorded result cannot be shown (one recorded by another engagekit version).
    """

    run: RunInfo | None
    treatments: list[TreatmentRates]
    runs_by_status: dict[str, int]
    monitoring: RecordedMonitorResult | None = None
    monitoring_note: str | None = None


class AuditEntry(_Frozen):
    audit_id: int
    at: str
    username: str
    role: str
    action: str
    route: str
    patient_id: str | None
    allowed: bool
    detail: str | None


class AuditPage(_Frozen):
    rows: list[AuditEntry]
    limit: int


# --------------------------------------------------------------------------- formatting
def format_risk(risk: float | None) -> str:
    """A risk as a whole percentage."""
    return "–" if risk is None else f"{risk:.0%}"


def format_difference(difference: float | None) -> str:
    """A risk's difference from the service average, in percentage points."""
    if difference is None:
        return "–"
    points = round(difference * 100)
    sign = "+" if points > 0 else ("−" if points < 0 else "±")
    return f"{sign}{abs(points)} points"


#: The tops a risk axis may have: the smallest that holds every value is used.
RISK_AXIS_TOPS = (0.1, 0.2, 0.4, 0.6, 0.8, 1.0)


def risk_axis_top(*values: float | None) -> float:
    """The top of a risk axis from 0 that holds ``values``: a service whose risks are
    all a few percent sees them spread out, not flat along the bottom of 0–100%."""
    highest = max((v for v in values if v is not None and math.isfinite(v)), default=1.0)
    return next((top for top in RISK_AXIS_TOPS if highest <= top), 1.0)


def sparkline_points(risks: list[float], *, width: float, height: float, top: float = 1.0) -> str:
    """An SVG polyline's points for risks on an axis from 0 to ``top``, left to right
    (1 pixel margin)."""
    if not risks:
        return ""
    step = (width - 2) / max(len(risks) - 1, 1)
    span = height - 2
    return " ".join(
        f"{1 + k * step:.1f},{1 + (1 - min(max(r / top, 0.0), 1.0)) * span:.1f}"
        for k, r in enumerate(risks)
    )


def quality_label(name: str) -> str:
    """A rated quality's attribute name made readable."""
    return name.replace("_", " ").strip().capitalize()


def rating_alerts(
    latest: list[float | None],
    previous: list[float | None] | None,
    latest_date: str,
    newest_date: str | None,
) -> list[str]:
    """The alerts of a patient (words of :data:`ALERTS`), from each quality's rating at
    the latest and the previous session (None: not rated, or no previous session) and
    the latest encounter's date against the run's newest (ISO dates).
    """
    alerts = []
    if previous is not None and any(
        now_ is not None and before is not None and before - now_ >= RATING_DROP - 1e-9
        for now_, before in zip(latest, previous, strict=True)
    ):
        alerts.append(ALERTS["rating_drop"])
    if any(rating is None for rating in latest):
        alerts.append(ALERTS["missing_ratings"])
    try:
        gap = dt.date.fromisoformat(newest_date or "") - dt.date.fromisoformat(latest_date)
    except ValueError:
        gap = None
    if gap is not None and gap.days > RECENT_DAYS:
        alerts.append(ALERTS["no_recent_encounter"])
    return alerts


def _rating(value: Any) -> float | None:
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _day(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()[:10]
    return str(value)[:10]


def _float(value: Any) -> float:
    number = float(value)
    return number if math.isfinite(number) else float("nan")


# --------------------------------------------------------------------------- the source
class ScoresSource:
    """The scores table of a database and its latest complete run."""

    def __init__(self, engine: sa.Engine, table: str = "scores") -> None:
        self.engine = engine
        self.table_name = table
        self._reflected: tuple[int, sa.Table] | None = None
        # A complete run's scores do not change: what is read of them is kept, per run.
        self._run_infos: dict[int, RunInfo] = {}
        self._lock = threading.Lock()  # the server's threads share the memory below
        # each practitioner's current patients (reviews not filled in), least recently
        # used first; of one run only
        self._caseloads: collections.OrderedDict[str, tuple[CaseloadRow, ...]] = (
            collections.OrderedDict()
        )
        self._caseloads_run: int | None = None
        self._service_rates: dict[int, list[TreatmentRates]] = {}

    # -- the run and the table
    def _run(self, connection: sa.Connection) -> Any:
        return connection.execute(
            sa.select(SCORE_RUNS)
            .where(SCORE_RUNS.c.scores_table == self.table_name, SCORE_RUNS.c.status == "complete")
            .order_by(SCORE_RUNS.c.finished_at.desc(), SCORE_RUNS.c.run_id.desc())
            .limit(1)
        ).one_or_none()

    def _table(self, connection: sa.Connection, run_id: int) -> sa.Table | None:
        if self._reflected is not None and self._reflected[0] == run_id:
            return self._reflected[1]
        if not sa.inspect(connection).has_table(self.table_name):
            return None
        table = sa.Table(self.table_name, sa.MetaData(), autoload_with=connection)
        self._reflected = (run_id, table)
        return table

    def _run_info(self, connection: sa.Connection, run: Any, table: sa.Table) -> RunInfo:
        known = self._run_infos.get(int(run.run_id))
        if known is not None:
            return known
        mean = connection.execute(
            sa.select(sa.func.avg(table.c.risk)).where(table.c.run_id == run.run_id)
        ).scalar_one()
        newest = None
        if "encounter_date" in table.c:
            newest = connection.execute(
                sa.select(sa.func.max(table.c.encounter_date)).where(table.c.run_id == run.run_id)
            ).scalar_one_or_none()
        high = medium = None
        try:
            rule = json.loads(run.flag_rule)
            high = float(rule["threshold"])
            medium = float(rule["medium_threshold"])
        except (ValueError, TypeError, KeyError):
            pass
        info = self._run_infos[int(run.run_id)] = RunInfo(
            run_id=int(run.run_id),
            target=run.target,
            finished_at=run.finished_at,
            n_encounters=int(run.n_encounters),
            n_patients=int(run.n_patients),
            mean_risk=None if mean is None else float(mean),
            high_threshold=high,
            medium_threshold=medium,
            newest_encounter_date=None if newest is None else _day(newest),
            model_sha256=run.model_sha256,
        )
        return info

    def _open(self, connection: sa.Connection) -> tuple[RunInfo, sa.Table] | None:
        run = self._run(connection)
        if run is None:
            return None
        table = self._table(connection, int(run.run_id))
        if table is None:
            return None
        return self._run_info(connection, run, table), table

    @staticmethod
    def _rating_columns(table: sa.Table) -> list[Any]:
        """The table's ``rating_<quality>`` columns (none in an older scores table)."""
        return [c for c in table.columns if c.name.startswith(RATING_PREFIX)]

    @staticmethod
    def _labels(connection: sa.Connection, run_id: int, columns: list[Any]) -> list[str]:
        """Each rating column's quality label: the run's flag rule's ``labels`` when it
        records them, else the attribute name made readable."""
        labels: dict[str, str] = {}
        recorded = connection.execute(
            sa.select(SCORE_RUNS.c.flag_rule).where(SCORE_RUNS.c.run_id == run_id)
        ).scalar_one_or_none()
        try:
            found = json.loads(recorded or "{}").get("labels", {})
            if isinstance(found, dict):
                labels = {str(k): str(v) for k, v in found.items()}
        except (ValueError, TypeError, AttributeError):
            pass
        names = [c.name.removeprefix(RATING_PREFIX) for c in columns]
        return [labels.get(name) or quality_label(name) for name in names]

    # -- scoped queries
    @staticmethod
    def _as_text(column: Any) -> Any:
        return column if isinstance(column.type, sa.String) else sa.cast(column, sa.String)

    @staticmethod
    def _practitioners(scope: Scope) -> list[str]:
        """The practitioners whose current patients the scope sees (none for a role that
        sees no patient)."""
        return sorted(scope.practitioners) if scope.sees_patients else []

    def _current(self, table: sa.Table, run_id: int, practitioners: list[str] | None) -> Any:
        """The latest encounter of each patient in the run; only of the patients whose
        current practitioner is one of ``practitioners`` (None: every patient, for
        aggregates)."""
        latest_of: Any = sa.select(
            table.c.patient_id.label("patient_id"),
            sa.func.max(table.c.session_number).label("session_number"),
        ).where(table.c.run_id == run_id)
        if practitioners is not None:
            # only the patients seen by the scope's practitioners in the run can be theirs
            latest_of = latest_of.where(
                table.c.patient_id.in_(
                    sa.select(table.c.patient_id).where(
                        table.c.run_id == run_id,
                        self._as_text(table.c.practitioner_id).in_(practitioners),
                    )
                )
            )
        latest = latest_of.group_by(table.c.patient_id).subquery()
        query = (
            sa.select(table)
            .join(
                latest,
                sa.and_(
                    table.c.patient_id == latest.c.patient_id,
                    table.c.session_number == latest.c.session_number,
                ),
            )
            .where(table.c.run_id == run_id)
        )
        if practitioners is not None:
            query = query.where(self._as_text(table.c.practitioner_id).in_(practitioners))
        return query

    def caseload(
        self,
        scope: Scope,
        *,
        flag: str | None = None,
        treatment: str | None = None,
        search: str | None = None,
        alert: str | None = None,
        page: int | None = None,
    ) -> Caseload:
        """The scope's patients, highest current risk first, filtered (``alert``: a key
        of :data:`ALERTS`); only page ``page`` of them (:data:`CASELOAD_PAGE_ROWS` a page,
        a page past the last is the last), or all of them when ``page`` is None."""
        with self.engine.connect() as connection:
            opened = self._open(connection)
            if opened is None:
                return Caseload(run=None, rows=[], n_patients=0, treatments=[])
            run, table = opened
            rows = self._current_rows(connection, run, table, self._practitioners(scope))
            total = len(rows)
            treatments = sorted({row.treatment for row in rows})
            if flag in FLAGS:
                rows = [row for row in rows if row.flag == flag]
            if treatment:
                rows = [row for row in rows if row.treatment == treatment]
            if alert in ALERTS:
                rows = [row for row in rows if ALERTS[alert] in row.alerts]
            if search:
                needle = search.strip().casefold()
                rows = [row for row in rows if needle in row.patient_id.casefold()]
            rows.sort(key=lambda row: (-row.risk, row.patient_id))
            matching, pages, first = len(rows), 1, 0
            if page is not None:
                pages = max(1, math.ceil(matching / CASELOAD_PAGE_ROWS))
                page = min(max(page, 1), pages)
                first = (page - 1) * CASELOAD_PAGE_ROWS
                rows = rows[first : first + CASELOAD_PAGE_ROWS]
            reviews = self._latest_reviews(connection, [row.patient_id for row in rows])
        rows = [
            row.model_copy(update={"latest_review": reviews[row.patient_id]})
            if row.patient_id in reviews
            else row
            for row in rows
        ]
        return Caseload(
            run=run,
            rows=rows,
            n_patients=total,
            treatments=treatments,
            n_matching=matching,
            page=page or 1,
            pages=pages,
            first_row=first + 1,
        )

    def _current_rows(
        self, connection: sa.Connection, run: RunInfo, table: sa.Table, practitioners: list[str]
    ) -> list[CaseloadRow]:
        """The current patients of ``practitioners`` (no review filled in), from memory
        for the practitioners read before in this run."""
        found: dict[str, tuple[CaseloadRow, ...]] = {}
        with self._lock:
            if self._caseloads_run != run.run_id:
                self._caseloads.clear()
                self._caseloads_run = run.run_id
            for practitioner in practitioners:
                if practitioner in self._caseloads:
                    self._caseloads.move_to_end(practitioner)
                    found[practitioner] = self._caseloads[practitioner]
        missing = [p for p in practitioners if p not in found]
        if missing:
            read = self._read_current_rows(connection, run, table, missing)
            with self._lock:
                for practitioner in missing:
                    found[practitioner] = read.get(practitioner, ())
                    if self._caseloads_run == run.run_id:
                        self._caseloads[practitioner] = found[practitioner]
        with self._lock:
            while len(self._caseloads) > CACHED_PRACTITIONERS:
                self._caseloads.popitem(last=False)
        return [row for practitioner in practitioners for row in found[practitioner]]

    def _read_current_rows(
        self, connection: sa.Connection, run: RunInfo, table: sa.Table, practitioners: list[str]
    ) -> dict[str, tuple[CaseloadRow, ...]]:
        """The current patients of ``practitioners``, by practitioner, from the table."""
        ratings = self._rating_columns(table)
        wanted = [table.c.patient_id, table.c.practitioner_id, table.c.treatment]
        wanted += [table.c.session_number, table.c.risk, table.c.flag]
        if "encounter_date" in table.c:
            wanted.append(table.c.encounter_date)
        current: list[Any] = []
        for start in range(0, len(practitioners), _CHUNK):
            latest = self._current(
                table, run.run_id, practitioners[start : start + _CHUNK]
            ).subquery()
            columns = [latest.c[column.name] for column in wanted]
            current += connection.execute(sa.select(*columns)).mappings().all()
        histories: dict[str, list[tuple[int, float, list[float | None]]]] = {}
        patients = [r["patient_id"] for r in current]
        for start in range(0, len(patients), _CHUNK):
            for patient, session, risk, *rated in connection.execute(
                sa.select(table.c.patient_id, table.c.session_number, table.c.risk, *ratings).where(
                    table.c.run_id == run.run_id,
                    table.c.patient_id.in_(patients[start : start + _CHUNK]),
                )
            ):
                histories.setdefault(_text(patient), []).append(
                    (int(session), _float(risk), [_rating(r) for r in rated])
                )
        by_practitioner: dict[str, list[CaseloadRow]] = {}
        for r in current:
            patient, risk = _text(r["patient_id"]), _float(r["risk"])
            date = _day(r.get("encounter_date"))
            history = sorted(histories.get(patient, []), key=lambda h: h[0])
            alerts: list[str] = []
            if ratings and history:
                previous = history[-2][2] if len(history) > 1 else None
                alerts = rating_alerts(history[-1][2], previous, date, run.newest_encounter_date)
            elif "encounter_date" in table.c and run.newest_encounter_date is not None:
                alerts = rating_alerts([], None, date, run.newest_encounter_date)
            row = CaseloadRow(
                patient_id=patient,
                practitioner_id=_text(r["practitioner_id"]),
                treatment=_text(r["treatment"]),
                session_number=int(r["session_number"]),
                encounter_date=date,
                risk=risk,
                flag=_text(r["flag"]),
                risk_vs_service=None if run.mean_risk is None else risk - run.mean_risk,
                risks=[h[1] for h in history],
                latest_review=None,
                alerts=alerts,
            )
            by_practitioner.setdefault(row.practitioner_id, []).append(row)
        return {p: tuple(rows) for p, rows in by_practitioner.items()}

    def _latest_reviews(self, connection: sa.Connection, patients: list[str]) -> dict[str, Review]:
        found: dict[str, Review] = {}
        for start in range(0, len(patients), _CHUNK):
            chunk = patients[start : start + _CHUNK]
            for row in connection.execute(
                sa.select(FLAG_REVIEWS)
                .where(FLAG_REVIEWS.c.patient_id.in_(chunk))
                .order_by(FLAG_REVIEWS.c.reviewed_at, FLAG_REVIEWS.c.review_id)
            ).mappings():
                found[row["patient_id"]] = _review(row)
        return found

    def _patient_row(
        self, connection: sa.Connection, scope: Scope, patient_id: str
    ) -> tuple[RunInfo, sa.Table, Any] | None:
        opened = self._open(connection)
        if opened is None or not scope.sees_patients:
            return None
        run, table = opened
        # the patient's latest encounter in the run: its practitioner is the current one
        query = (
            sa.select(table)
            .where(table.c.run_id == run.run_id, self._as_text(table.c.patient_id) == patient_id)
            .order_by(table.c.session_number.desc())
            .limit(1)
        )
        row = connection.execute(query).mappings().first()
        if row is None or not scope.sees_practitioner(row["practitioner_id"]):
            return None
        return run, table, row

    def view_patient(self, scope: Scope, patient_id: str, route: str) -> PatientDetail | None:
        """One patient of the scope, the view audited (allowed or refused) in the same
        transaction; None when the patient is not the user's to see or does not exist
        (the two are told apart only in the audit log)."""
        with self.engine.begin() as connection:
            found = self._patient_row(connection, scope, patient_id)
            _audit_patient(
                connection, scope, route, patient_id, action="view", allowed=found is not None
            )
            if found is None:
                return None
            run, table, row = found
            sessions = [
                SessionRisk(
                    session_number=int(s.session_number),
                    encounter_date=_day(s.encounter_date),
                    risk=_float(s.risk),
                    flag=_text(s.flag),
                )
                for s in connection.execute(
                    sa.select(
                        table.c.session_number, table.c.encounter_date, table.c.risk, table.c.flag
                    )
                    .where(
                        table.c.run_id == run.run_id,
                        self._as_text(table.c.patient_id) == patient_id,
                    )
                    .order_by(table.c.session_number)
                )
            ]
            rating_columns = self._rating_columns(table)
            qualities = self._labels(connection, run.run_id, rating_columns)
            rated = (
                [
                    RatingSession(
                        session_number=int(session),
                        encounter_date=_day(date),
                        ratings=[_rating(v) for v in values],
                    )
                    for session, date, *values in connection.execute(
                        sa.select(table.c.session_number, table.c.encounter_date, *rating_columns)
                        .where(
                            table.c.run_id == run.run_id,
                            self._as_text(table.c.patient_id) == patient_id,
                        )
                        .order_by(table.c.session_number)
                    )
                ]
                if rating_columns
                else []
            )
            reviews = [
                _review(r)
                for r in connection.execute(
                    sa.select(FLAG_REVIEWS)
                    .where(FLAG_REVIEWS.c.patient_id == patient_id)
                    .order_by(FLAG_REVIEWS.c.reviewed_at.desc(), FLAG_REVIEWS.c.review_id.desc())
                ).mappings()
            ]
        contributions = [
            Contribution(group=name.removeprefix("grouped_"), value=_float(value))
            for name, value in row.items()
            if name.startswith("grouped_") and value is not None
        ]
        contributions.sort(key=lambda c: -abs(c.value))
        reasons = [r.strip() for r in _text(row.get("reasons")).split("|") if r.strip()]
        return PatientDetail(
            patient_id=patient_id,
            practitioner_id=_text(row["practitioner_id"]),
            treatment=_text(row["treatment"]),
            encounter_id=_text(row["encounter_id"]),
            session_number=int(row["session_number"]),
            encounter_date=_day(row["encounter_date"]),
            risk=_float(row["risk"]),
            flag=_text(row["flag"]),
            reasons=reasons,
            sessions=sessions,
            contributions=contributions,
            reviews=reviews,
            run=run,
            qualities=qualities,
            ratings=rated,
        )

    def may_review(self, scope: Scope, patient_id: str, route: str) -> bool:
        """Whether the patient is the user's to review; a refusal is audited."""
        with self.engine.begin() as connection:
            if self._patient_row(connection, scope, patient_id) is not None:
                return True
            _audit_patient(
                connection, scope, route, patient_id, action="flag_review", allowed=False
            )
        return False

    def review(
        self,
        scope: Scope,
        patient_id: str,
        route: str,
        *,
        status: str,
        outcome: str | None,
        note: str | None,
        until: str | None,
    ) -> bool:
        """Store a review of a patient's current flag, audited in the same transaction;
        False (audited as refused, nothing stored) when the patient is not the user's."""
        with self.engine.begin() as connection:
            found = self._patient_row(connection, scope, patient_id)
            if found is None:
                _audit_patient(
                    connection, scope, route, patient_id, action="flag_review", allowed=False
                )
                return False
            _audit(
                connection,
                scope,
                route,
                action="flag_review",
                patient_id=patient_id,
                allowed=True,
                detail=f"status {status}"
                + (f", outcome {outcome}" if outcome else f", until {until}" if until else ""),
            )
            run, _, row = found
            connection.execute(
                FLAG_REVIEWS.insert().values(
                    patient_id=patient_id,
                    encounter_id=_text(row["encounter_id"]),
                    run_id=run.run_id,
                    status=status,
                    outcome=outcome,
                    note=note,
                    until=until,
                    reviewed_by=scope.username,
                    reviewed_at=now(),
                )
            )
        return True

    def team(self, scope: Scope) -> Team:
        """A team lead's practitioners: each one's current patients and flags."""
        counts = {p: {"patients": 0, "high": 0, "medium": 0} for p in scope.practitioners}
        run = None
        with self.engine.connect() as connection:
            opened = self._open(connection)
            if opened is not None:
                run, table = opened
                practitioners = self._practitioners(scope)
                for row in self._current_rows(connection, run, table, practitioners):
                    entry = counts[row.practitioner_id]
                    entry["patients"] += 1
                    if row.flag in ("high", "medium"):
                        entry[row.flag] += 1
        rows = [TeamRow(practitioner_id=p, **c) for p, c in sorted(counts.items())]
        return Team(team=scope.team, run=run, rows=rows)

    def service(self) -> Service:
        """Current flag rates per treatment, the runs by status and the latest monitoring
        result of the run's model: no identifiers."""
        with self.engine.connect() as connection:
            runs = {
                status: int(n)
                for status, n in connection.execute(
                    sa.select(SCORE_RUNS.c.status, sa.func.count())
                    .where(SCORE_RUNS.c.scores_table == self.table_name)
                    .group_by(SCORE_RUNS.c.status)
                )
            }
            opened = self._open(connection)
            if opened is None:
                return Service(run=None, treatments=[], runs_by_status=runs)
            run, table = opened
            treatments = self._service_rates.get(run.run_id)
            if treatments is None:
                treatments = self._service_rates[run.run_id] = self._rates(connection, run, table)
            # not kept in memory: a new result may be recorded at any time
            monitoring, note = self._monitoring(connection, run)
        return Service(
            run=run,
            treatments=treatments,
            runs_by_status=runs,
            monitoring=monitoring,
            monitoring_note=note,
        )

    def _monitoring(
        self, connection: sa.Connection, run: RunInfo
    ) -> tuple[RecordedMonitorResult | None, str | None]:
        """The latest monitoring result of the run's model, or why it cannot be shown."""
        if run.model_sha256 is None:
            return None, None
        try:
            found = latest_monitor_result(
                connection, model_sha256=run.model_sha256, scores_table=self.table_name
            )
        except DataReadError as e:
            return None, str(e)
        return found, None

    def _rates(
        self, connection: sa.Connection, run: RunInfo, table: sa.Table
    ) -> list[TreatmentRates]:
        """Each treatment's current flags, over all the run's patients."""
        current = self._current(table, run.run_id, None).subquery()
        by: dict[str, dict[str, int]] = {}
        for treatment, flag, n in connection.execute(
            sa.select(current.c.treatment, current.c.flag, sa.func.count()).group_by(
                current.c.treatment, current.c.flag
            )
        ):
            entry = by.setdefault(_text(treatment), {"patients": 0, "high": 0, "medium": 0})
            entry["patients"] += int(n)
            if flag in ("high", "medium"):
                entry[flag] += int(n)
        return [
            TreatmentRates(
                treatment=name,
                high_rate=c["high"] / c["patients"] if c["patients"] else 0.0,
                medium_rate=c["medium"] / c["patients"] if c["patients"] else 0.0,
                **c,
            )
            for name, c in sorted(by.items())
        ]

    def audit_log(self) -> AuditPage:
        """The newest rows of the audit log, newest first."""
        with self.engine.connect() as connection:
            rows = connection.execute(
                sa.select(AUDIT_LOG)
                .order_by(AUDIT_LOG.c.at.desc(), AUDIT_LOG.c.audit_id.desc())
                .limit(AUDIT_PAGE_ROWS)
            ).mappings()
            entries = [AuditEntry(**{**row, "allowed": bool(row["allowed"])}) for row in rows]
        return AuditPage(rows=entries, limit=AUDIT_PAGE_ROWS)

    def audit_caseload(self, scope: Scope, route: str, shown: int) -> None:
        """One audit row for a view of the caseload (many patients, none named)."""
        with self.engine.begin() as connection:
            _audit(
                connection,
                scope,
                route,
                action="view",
                patient_id=None,
                allowed=True,
                detail=f"caseload of {shown} patient{'s' if shown != 1 else ''}",
            )


_REFUSED = "refused: not in the user's patients, or no such patient"


def _audit_patient(
    connection: sa.Connection,
    scope: Scope,
    route: str,
    patient_id: str,
    *,
    action: str,
    allowed: bool,
) -> None:
    """One audit row for a view (``action="view"``) or a refused review
    (``"flag_review"``) of a patient's data."""
    _audit(
        connection,
        scope,
        route,
        action=action,
        patient_id=patient_id[:128],
        allowed=allowed,
        detail=None if allowed else _REFUSED,
    )


def _audit(
    connection: sa.Connection,
    scope: Scope,
    route: str,
    *,
    action: str,
    patient_id: str | None,
    allowed: bool,
    detail: str | None,
) -> None:
    """One audit row of the scope's user."""
    record_audit(
        connection,
        username=scope.username,
        role=scope.role,
        action=action,
        route=route,
        patient_id=patient_id,
        allowed=allowed,
        detail=detail,
    )


def _review(row: Any) -> Review:
    return Review(
        status=row["status"],
        outcome=row["outcome"],
        note=row["note"],
        until=row["until"],
        reviewed_by=row["reviewed_by"],
        reviewed_at=row["reviewed_at"],
    )
