"""The results of ``engagekit monitor`` in a service's database (``monitor_results``).

``engagekit monitor`` reads the score history through a connection that cannot write
(:func:`engagekit.io._scores.read_score_history`). Recording its result is a separate,
explicit step, here: :func:`open_monitor_database` brings engagekit's tables to the
newest revision (creating ``monitor_results`` in a database an older engagekit made; a
user who may only read the database is refused then, before anything is computed), and
:func:`record_monitor_result` inserts one row: the model's ``model_sha256``, the scores
table, the outcome, the window, when (ISO 8601 text, UTC, as engagekit's other tables
store time) and the result's JSON. :func:`latest_monitor_result` reads the newest result
of a model back as the typed result that was recorded, for the analyst's service page.

Examples
--------
>>> import sqlalchemy as sa
>>> from engagekit import simulate_encounters
>>> from engagekit.db import upgrade_database
>>> from engagekit.monitoring import monitor
>>> encounters = simulate_encounters(100, seed=1).encounters
>>> result = monitor(encounters.assign(p_adherent=0.6), encounters, target="adherent",
...                  n_boot=0)
>>> engine = sa.create_engine("sqlite://")
>>> _ = upgrade_database(engine)
>>> recorded = record_monitor_result(engine, result, model_sha256="ab" * 32,
...                                  scores_table="scores")
>>> latest_monitor_result(engine, model_sha256="ab" * 32) == recorded
True
>>> latest_monitor_result(engine, model_sha256="cd" * 32) is None
True
>>> record_monitor_result(engine, result, model_sha256="ab", scores_table="scores")
Traceback (most recent call last):
...
ValueError: 'model_sha256' must be a model's SHA-256 (64 hexadecimal digits); got 'ab'
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa

from .._results import Record
from ..db import MONITOR_RESULTS
from ..errors import DataReadError, OutputError, ResultFormatError
from ..monitoring._result import MonitorResult

__all__ = [
    "RecordedMonitorResult",
    "latest_monitor_result",
    "open_monitor_database",
    "record_monitor_result",
]

_SHA256 = re.compile(r"[0-9a-f]{64}")


class RecordedMonitorResult(Record):
    """A row of ``monitor_results``: a monitoring result as ``engagekit monitor``
    recorded it.

    Attributes
    ----------
    monitor_id : int
        The row's id.
    model_sha256 : str
        The model monitored.
    scores_table : str
        The scores table whose history was monitored.
    created_at : str
        When it was recorded (ISO 8601, UTC).
    result : MonitorResult
        The result (its ``target`` and ``window`` are the row's own).
    """

    monitor_id: int
    model_sha256: str
    scores_table: str
    created_at: str
    result: MonitorResult


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def _shown(url: str | sa.URL) -> str:
    return sa.make_url(url).render_as_string(hide_password=True)


def open_monitor_database(url: str) -> sa.Engine:
    """An engine on the database ``url`` whose engagekit tables are at the newest
    revision, ready for :func:`record_monitor_result`.

    Raises
    ------
    DataReadError
        ``url`` names a SQLite file that does not exist (it is not created).
    OutputError
        engagekit's tables cannot be created or upgraded there (a user who may only
        read the database), or a newer engagekit upgraded them.
    """
    from alembic.util import CommandError

    from ..db import upgrade_database

    parsed = sa.make_url(url)
    shown = _shown(parsed)
    database = parsed.database
    if parsed.get_backend_name() == "sqlite" and database not in (None, "", ":memory:"):
        assert database is not None
        if not Path(database).is_file():
            raise DataReadError(f"there is no SQLite database at {database!r} ({shown})")
    engine = sa.create_engine(parsed)
    try:
        upgrade_database(engine)
    except CommandError as e:  # a revision this engagekit does not know
        engine.dispose()
        raise OutputError(
            f"cannot use engagekit's tables in {shown!r}: {e} (a newer engagekit upgraded "
            "them; upgrade engagekit to record monitoring results there)"
        ) from None
    except OutputError as e:
        engine.dispose()
        raise OutputError(f"{shown!r}: {e}") from e
    return engine


def record_monitor_result(
    engine: sa.Engine, result: MonitorResult, *, model_sha256: str, scores_table: str
) -> RecordedMonitorResult:
    """Insert ``result`` in ``monitor_results`` (engagekit's tables must be at the newest
    revision: :func:`open_monitor_database`); the row as recorded.

    Parameters
    ----------
    engine : sqlalchemy.Engine
    result : MonitorResult
    model_sha256 : str
        The model whose score history ``result`` monitors.
    scores_table : str
        The scores table it was read from.

    Raises
    ------
    ValueError
        ``model_sha256`` is not a SHA-256.
    OutputError
        The row cannot be written.
    """
    if not isinstance(model_sha256, str) or not _SHA256.fullmatch(model_sha256):
        raise ValueError(
            "'model_sha256' must be a model's SHA-256 (64 hexadecimal digits); "
            f"got {model_sha256!r:.80}"
        )
    row = {
        "model_sha256": model_sha256,
        "scores_table": scores_table,
        "target": result.target,
        "window": result.window.value,
        "created_at": _now(),
        "result": json.dumps(result.to_dict()),
    }
    try:
        with engine.begin() as connection:
            inserted = connection.execute(MONITOR_RESULTS.insert().values(**row))
            key = inserted.inserted_primary_key
            assert key is not None  # a single-row insert always has one
            monitor_id = int(key[0])
    except sa.exc.SQLAlchemyError as e:
        cause = getattr(e, "orig", None) or e  # the driver's own error, where there is one
        raise OutputError(
            f"cannot record the monitoring result in {_shown(engine.url)!r}: "
            f"{type(cause).__name__}: {str(cause).splitlines()[0]}"
        ) from e
    return RecordedMonitorResult(
        monitor_id=monitor_id,
        model_sha256=model_sha256,
        scores_table=scores_table,
        created_at=row["created_at"],
        result=result,
    )


def latest_monitor_result(
    bind: sa.Engine | sa.Connection, *, model_sha256: str, scores_table: str | None = None
) -> RecordedMonitorResult | None:
    """The newest result recorded for the model ``model_sha256`` (of ``scores_table``
    when given), or None when there is none (or no ``monitor_results`` table).

    Raises
    ------
    DataReadError
        The newest result's JSON is not a monitoring result this engagekit reads (one
        recorded by another version); the message says to record it again.
    """
    query = sa.select(MONITOR_RESULTS).where(MONITOR_RESULTS.c.model_sha256 == model_sha256)
    if scores_table is not None:
        query = query.where(MONITOR_RESULTS.c.scores_table == scores_table)
    query = query.order_by(
        MONITOR_RESULTS.c.created_at.desc(), MONITOR_RESULTS.c.monitor_id.desc()
    ).limit(1)
    if isinstance(bind, sa.Engine):
        with bind.connect() as connection:
            return _latest(connection, query)
    return _latest(bind, query)


def _latest(connection: sa.Connection, query: sa.Select) -> RecordedMonitorResult | None:
    if not sa.inspect(connection).has_table(MONITOR_RESULTS.name):
        return None
    row = connection.execute(query).mappings().first()
    if row is None:
        return None
    try:
        result = MonitorResult.from_dict(json.loads(row["result"]))
    except (ValueError, ResultFormatError) as e:
        problems = "; ".join(e.problems) if isinstance(e, ResultFormatError) else str(e)
        raise DataReadError(
            f"the monitoring result {row['monitor_id']} recorded at {row['created_at']} "
            f"cannot be read by this engagekit ({problems}); record it again with "
            "engagekit monitor"
        ) from None
    return RecordedMonitorResult(
        monitor_id=int(row["monitor_id"]),
        model_sha256=str(row["model_sha256"]),
        scores_table=str(row["scores_table"]),
        created_at=str(row["created_at"]),
        result=result,
    )
