"""Bulk scoring to a database and a file, chunk by chunk, resumable after a kill; the
runs of every week accumulate in the database.

:func:`write_scores` scores an encounter table in chunks of whole patients
(:func:`engagekit.scoring.patient_chunks`) and, for each chunk, in **one database
transaction**, inserts its score rows and records the chunk as done in a bookkeeping
table. A run that is killed keeps every committed chunk and leaves no part of the chunk
it was writing (the transaction is rolled back).

**Runs.** Each run is a row of ``score_runs`` (:data:`engagekit.db.SCORE_RUNS`, created
and upgraded by :func:`engagekit.db.upgrade_database` before anything else is written):
its ``run_id``, the scores table, its *run key* (a hash of the model, the encounter
table and the settings), its status (``running``, then ``complete``; ``replaced``), when
it started and finished, the model, the data's hash, the flag rule applied and, once it
is complete, its counts. Every score row carries its ``run_id``: the table's key is
``(run_id, encounter_id)``, so one table holds the scores of many runs (a new export
every week, a retrained model), each encounter once per run. Rerunning the same job (same
key) resumes that run: the chunks already committed are skipped and the rest scored, so
the run ends with every encounter exactly once; rerunning a complete job computes
nothing. The file holds the scores of this run only, whatever else the table holds.

**Replacing a run that was wrong** (``replace=True``, ``--replace``): when the run
completes, the table's latest complete run (another one) is marked ``replaced`` and its
score rows deleted, in the transaction that marks this run complete: runs are never
mixed, a run stopped before it completes has replaced nothing, and rerunning it with
``--replace`` replaces the same run. If the latest complete run is this same job, it is
scored again from scratch under its own ``run_id``; a job whose run was replaced is, if
run again, scored again from scratch the same way.

A table whose columns are not this model's (another outcome, another kind of model,
another encounter context, or an older engagekit's layout) is refused with a message
naming it: score into another table (``--db-table``). So is a table engagekit did not
write.

Flags are set on the whole table before the first chunk: the model's flag rule is
applied to the risks of every encounter (:func:`engagekit.scoring.encounter_flag_thresholds`:
"the top 10%" is 10% of the encounters scored), and every chunk is flagged with those
thresholds, so a chunked run flags exactly as an unchunked one. The thresholds are part
of the run key.

The file (CSV or Parquet, by extension) is written alongside, chunk by chunk, under a
temporary name unique to the run, and renamed into place only when every chunk is in it;
chunks done by an earlier attempt of the run are read back from the database (floats
are stored as 8-byte reals, so they come back bit for bit). A rerun therefore writes the
same file as an uninterrupted run. In a CSV, text cells a spreadsheet would run as a
formula get a leading ``'`` (:func:`engagekit.io._write.escape_formula_cells`); the
database and a Parquet file keep the raw values.

**One run writes to a table at a time.** A run claims the table before it reads or
changes it, by inserting a row in ``<table>_writer`` (in its own transaction; the row's
key is the table's name, so a second claim breaks the primary key). The row names the
run (an id, its host and process) and the time the run last showed it was alive: a
thread renews it every :data:`LEASE_RENEW_SECONDS`, and every chunk is committed in the
same transaction as a renewal that checks the claim is still the run's. A run that finds
the table claimed stops at once with "another run is writing to table ...", unless the
claim is abandoned: its process is gone (same host), or it has not been renewed for
:data:`LEASE_STALE_SECONDS` (a run killed on another machine); then the claim is taken
over (a conditional update, so two runs cannot both take it). The run is marked complete
in a transaction that renews the claim too, the file is renamed into place next, and the
claim is released last, so a run that takes the table over next renames its own file
after this one. Only standard SQL is used (a primary key, conditional updates), so it
holds for any database SQLAlchemy reaches.

The database is SQLite by default (a file next to the output file); any SQLAlchemy URL
works (SQLite and PostgreSQL are tested). The scores table has ``run_id``, the columns of
:func:`engagekit.scoring.score_columns` and ``score_chunk``, with the primary key
``(run_id, encounter_id)``; the bookkeeping table is ``<table>_chunks`` (``run_id``,
``score_chunk``, ``n_rows``, ``committed_at``; one row per committed chunk), and the
claim is ``<table>_writer`` (``scores_table``, ``run_id``: the claiming process's own
random id, ``host``, ``pid``, ``claimed_at``, ``renewed_at``). A run that fails before
any chunk is committed leaves no partial file, no ``score_runs`` row of its own, and no
SQLite file, scores table or folder it created itself (engagekit's own tables, once
created in a database, stay: they are its schema).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

from .._fingerprint import data_fingerprint
from ..choices import FlagRuleKind
from ..db import SCORE_RUNS
from ..errors import ArgumentError, OutputError
from ..scoring import (
    encounter_flag_thresholds,
    patient_chunks,
    score_columns,
    score_encounters,
)
from ._write import (
    _missing_folders,
    _new_partial,
    _remove_empty,
    check_writable,
    escape_formula_cells,
)

if TYPE_CHECKING:
    from ..config import Config
    from ..flags import AppliedFlagRule, FlagRule
    from ..models import EngagementModel, ModelManifest
    from ._stream import EncounterChunks

__all__ = [
    "ScoreRun",
    "check_score_outputs",
    "default_database_url",
    "read_score_history",
    "scores_table",
    "write_scores",
]

#: Encounters scored per chunk (whole patients): about 0.4 GB of working memory.
CHUNK_ROWS = 50_000
CHUNK_COLUMN = "score_chunk"
#: The column naming a score row's run (``score_runs.run_id``).
RUN_COLUMN = "run_id"
#: The statuses of a run in ``score_runs``.
RUNNING, COMPLETE, REPLACED = "running", "complete", "replaced"
#: The longest scores table name, in UTF-8 bytes: ``<table>_chunks`` and
#: ``<table>_writer`` must fit in a PostgreSQL name (63 bytes).
MAX_TABLE_NAME = 56
_TEXT_COLUMNS = ("encounter_id", "patient_id", "treatment", "practitioner_id", "flag", "reasons")
_INTEGER_COLUMNS = ("session_number",)
# ISO date text in the file; a DATE in the database (text in SQLite)
_DATE_COLUMNS = ("encounter_date",)
_SCORE_FORMAT = 3  # 3: runs keyed by run_id in one table
#: Seconds between two renewals of a run's claim on its scores table.
LEASE_RENEW_SECONDS = 10.0
#: A claim not renewed for this many seconds is abandoned (its run was killed on another
#: machine, or the machine stopped) and the next run takes it over. On the claim's own
#: machine, a claim whose process is gone is taken over at once.
LEASE_STALE_SECONDS = 120.0
# how long a SQLite connection waits for another's write lock (a chunk being committed)
_SQLITE_BUSY_SECONDS = 30


@dataclass(frozen=True)
class ScoreRun:
    """What a :func:`write_scores` run did.

    Attributes
    ----------
    n_rows, n_chunks : int
        Encounters scored and chunks in the plan.
    chunks_computed, chunks_resumed : int
        Chunks scored by this run, and chunks an earlier attempt of the same run had
        already committed.
    n_flagged : dict
        Encounters per flag level (``high``, ``medium``, ``low``), over all chunks.
    flag_rule : AppliedFlagRule
        The thresholds the model's flag rule set on the encounters scored, and the
        shares it promises (``promised_high_share``, ...); compare them with the
        measured :attr:`high_share` and :attr:`high_or_medium_share`.
    out : Path
        The file written.
    database : str
        The database URL (password hidden) and ``table`` its scores table.
    table : str
    run_key : str
        SHA-256 of the model, the encounter table and the settings.
    run_id : int
        The run's ``run_id`` in ``score_runs`` and in the scores table.
    replaced_run : int or None
        The ``run_id`` of the run this one replaced (``replace=True``), if any.
    """

    n_rows: int
    n_chunks: int
    chunks_computed: int
    chunks_resumed: int
    n_flagged: dict[str, int]
    flag_rule: AppliedFlagRule
    out: Path
    database: str
    table: str
    run_key: str
    run_id: int
    replaced_run: int | None = None

    @property
    def high_share(self) -> float:
        """The share of the encounters scored that were flagged ``high`` (0 if none)."""
        return self.n_flagged["high"] / self.n_rows if self.n_rows else 0.0

    @property
    def high_or_medium_share(self) -> float:
        """The share flagged ``high`` or ``medium`` (0 if none were scored)."""
        flagged = self.n_flagged["high"] + self.n_flagged["medium"]
        return flagged / self.n_rows if self.n_rows else 0.0


def default_database_url(out: str | Path) -> str:
    """The SQLite database written next to ``out``: ``scores.csv`` → ``scores.sqlite``.

    >>> default_database_url("results/scores.csv")
    'sqlite:///results/scores.sqlite'
    """
    path = Path(out)
    return f"sqlite:///{path.with_name(path.name.split('.')[0] + '.sqlite')}"


def check_table_name(table: str) -> None:
    """Refuse a scores table name no database could hold with its bookkeeping tables
    (``<table>_chunks``, ``<table>_writer``).

    >>> check_table_name("scores")
    >>> check_table_name("")
    Traceback (most recent call last):
    ...
    engagekit.errors.ArgumentError: the scores table's name is empty: name it with --db-table
    """
    if not table.strip():
        problem = "is empty"
    elif "\x00" in table:
        problem = "holds a NUL character"
    elif len(table.encode()) > MAX_TABLE_NAME:
        problem = (
            f"is {len(table.encode())} bytes long, more than {MAX_TABLE_NAME} (its "
            "bookkeeping tables add 7, and a PostgreSQL name holds 63 bytes)"
        )
    else:
        return
    raise ArgumentError(f"the scores table's name {problem}: name it with --db-table")


def check_score_outputs(
    out: str | Path, database: str | None = None, table: str = "scores"
) -> None:
    """Refuse now, before minutes of scoring, outputs :func:`write_scores` could not
    write: the file's folder (made if needed and tried with a temporary file, then left
    as it was), the table's name, the database URL (parsed, its driver imported) and a
    SQLite database's folder (tried the same way). A database server is not contacted.

    Raises
    ------
    OutputError
        Naming the file or the database and why.
    ArgumentError
        The table's name is empty or too long.
    """
    check_writable(out)
    check_table_name(table)
    store = _ScoreStore(database or default_database_url(out), table, [])
    try:
        store.check_writable()
    finally:
        store.dispose()


def write_scores(
    model: EngagementModel,
    manifest: ModelManifest,
    encounters: pd.DataFrame | EncounterChunks,
    config: Config,
    out: str | Path,
    *,
    database: str | None = None,
    table: str = "scores",
    chunk_rows: int = CHUNK_ROWS,
    top_reasons: int = 2,
    replace: bool = False,
    escape_formulas: bool = True,
    n_jobs: int = 1,
    model_name: str | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> ScoreRun:
    """Score, explain and flag every encounter into a database table and a file, as one
    run of the table (see the module's notes).

    Parameters
    ----------
    model : EngagementModel
        A fitted model, with its :class:`~engagekit.models.ModelManifest` (as read from
        its directory), whose ``flag_rule`` sets the flags and whose ``model_sha256``
        identifies the model.
    encounters : pandas.DataFrame or EncounterChunks
        Typed, valid encounters (see :func:`engagekit.coerce_encounters`), or a Parquet
        file's buckets of whole patients (:mod:`engagekit.io._stream`), each bucket a
        chunk (``chunk_rows`` then set the buckets' size when they were made).
    config : Config
        The model's config (labels and suggestions for the reasons).
    out : str or Path
        ``.csv`` (also ``.csv.gz``) or ``.parquet``/``.pq`` file to write: the scores of
        this run only.
    database : str, optional
        SQLAlchemy URL; default :func:`default_database_url` of ``out``.
    table : str, default "scores"
        The scores table; the bookkeeping table is ``<table>_chunks``.
    chunk_rows : int
        Encounters per chunk (whole patients; see
        :func:`engagekit.scoring.patient_chunks`). Part of the run key: a rerun must
        use the same value to resume.
    top_reasons : int, default 2
        Qualities named per flag.
    replace : bool, default False
        The table's latest complete run was wrong: when this run completes, mark that
        run ``replaced`` and delete its score rows (if it is this same job, score it
        again from scratch).
    escape_formulas : bool, default True
        In a CSV, give text cells a spreadsheet would run as a formula a leading ``'``
        (:func:`engagekit.io._write.escape_formula_cells`); the database and Parquet keep
        the raw values.
    n_jobs : int
        Threads explaining a tree model (-1: one per core).
    model_name : str, optional
        The model as ``score_runs`` records it (the CLI gives its directory's name);
        default the model's target.
    progress : callable, optional
        Called as ``progress("Ranking risks", done, total)`` and
        ``progress("Scoring chunks", done, total)`` after each chunk.

    Returns
    -------
    ScoreRun

    Raises
    ------
    OutputError
        The database or the file cannot be written (checked before scoring), another
        run is writing to ``table`` (see the module's notes), or ``table`` holds other
        columns than this model's scores (another model) or was not written by
        engagekit.
    ContractError
        ``encounters`` lacks a column the model or its flag rule needs (checked before
        anything is written).
    ArgumentError
        ``table``'s name is empty or too long, or ``manifest`` has no ``model_sha256``
        (a model not saved: its runs could not be told from another's).
    """
    if not manifest.model_sha256:
        raise ArgumentError(
            "the model's manifest has no model_sha256 (the model was not saved): save it "
            "with save_model and score the model loaded from its directory"
        )
    flag_rule = manifest.flag_rule
    out = Path(out)
    check_writable(out)  # in a second, not after the scoring
    check_table_name(table)
    url = database or default_database_url(out)
    chunks = (
        _FrameChunks(encounters, chunk_rows) if isinstance(encounters, pd.DataFrame) else encounters
    )
    columns = score_columns(model, encounter_columns=chunks.columns)
    store = _ScoreStore(url, table, columns)  # refuses an unusable URL; creates nothing
    try:
        store.check_writable()
    except OutputError:
        store.dispose()
        raise
    writer = None
    counts = dict.fromkeys(("high", "medium", "low"), 0)
    computed = 0
    committed = False
    try:
        applied, data_sha256, n_patients = _first_pass(model, chunks, flag_rule, progress)
        run_key = _run_key(manifest, data_sha256, chunk_rows, top_reasons, applied)
        done = store.prepare(  # claims the table, or refuses
            run_key,
            {
                "model": model_name or manifest.target,
                "model_sha256": manifest.model_sha256,
                "target": manifest.target,
                "data_sha256": data_sha256,
                "flag_rule": json.dumps(applied.to_dict(), sort_keys=True),
            },
            replace=replace,
        )
        committed = bool(done)
        writer = _ScoreFile(out, columns, escape_formulas=escape_formulas)
        for index in range(len(chunks)):
            chunk = chunks.chunk(index)
            if index in done:
                frame = store.read_chunk(index, chunk["encounter_id"].to_numpy(dtype=object))
            else:
                frame = score_encounters(
                    model, chunk, config, applied, top_reasons=top_reasons, n_jobs=n_jobs
                )
                store.write_chunk(index, frame)
                committed = True
                computed += 1
            writer.write(frame)
            for level, n in frame["flag"].value_counts().items():
                counts[str(level)] += int(n)
            if progress is not None:
                progress("Scoring chunks", index + 1, len(chunks))
        # complete while the table is still this run's (the transaction renews the
        # claim), then rename the file: a run that takes the table over next renames
        # its own file after this one
        replaced = store.complete(
            {
                "n_encounters": chunks.n_rows,
                "n_patients": n_patients,
                "n_high": counts["high"],
                "n_medium": counts["medium"],
            }
        )
        writer.finish()
    except BaseException:
        if writer is not None:
            writer.abandon()
        if not committed and store.holds_claim:
            # nothing a rerun could resume: leave no empty run or table behind
            store.discard()
        raise
    finally:
        store.release()
        store.dispose()
    assert store.run_id is not None  # set by prepare()
    return ScoreRun(
        n_rows=chunks.n_rows,
        n_chunks=len(chunks),
        chunks_computed=computed,
        chunks_resumed=len(chunks) - computed,
        n_flagged=counts,
        flag_rule=applied,
        out=out,
        database=store.display_url,
        table=table,
        run_key=run_key,
        run_id=store.run_id,
        replaced_run=replaced,
    )


class _FrameChunks:
    """A table held whole, as chunks of whole patients (:func:`patient_chunks`)."""

    def __init__(self, encounters: pd.DataFrame, chunk_rows: int) -> None:
        self.encounters = encounters
        self.plan = patient_chunks(encounters["patient_id"].to_numpy(), chunk_rows)
        self.n_rows = len(encounters)
        self.columns = list(encounters.columns)

    def __len__(self) -> int:
        return len(self.plan)

    def chunk(self, index: int) -> pd.DataFrame:
        return self.encounters.iloc[self.plan[index]]


def _first_pass(
    model: EngagementModel,
    chunks: _FrameChunks | EncounterChunks,
    flag_rule: FlagRule,
    progress: Callable[[str, int, int], None] | None,
) -> tuple[AppliedFlagRule, str, int]:
    """``(the thresholds the flag rule sets on every encounter of the table, the table's
    fingerprint, its patients)``, from the risks computed chunk by chunk (which bounds
    the memory, and costs little next to the explanations).

    A table held whole is fingerprinted whole (:func:`data_fingerprint`); a streamed one
    by the fingerprints of its chunks, in order. Its practitioners are kept as codes:
    the per-practitioner rule only counts them."""
    risk = np.empty(chunks.n_rows)
    practitioners = None
    codes: dict[Any, int] = {}
    per_practitioner = flag_rule.rule is FlagRuleKind.PER_PRACTITIONER
    if per_practitioner and "practitioner_id" in chunks.columns:
        practitioners = np.empty(chunks.n_rows, dtype="int64")
    digest = hashlib.sha256()
    n_patients, at = 0, 0
    for index in range(len(chunks)):
        chunk = chunks.chunk(index)
        span = slice(at, at + len(chunk))
        risk[span] = 1.0 - model.predict_proba(chunk)
        if practitioners is not None:
            local, names = pd.factorize(chunk["practitioner_id"].to_numpy(dtype=object))
            known = [codes.setdefault(name, len(codes)) for name in names]
            practitioners[span] = np.array([*known, -1], dtype="int64")[local]  # -1: missing
        if not isinstance(chunks, _FrameChunks):  # buckets: patients in one bucket only
            digest.update(data_fingerprint(chunk).encode())
            n_patients += int(chunk["patient_id"].nunique())
        at = span.stop
        if progress is not None:
            progress("Ranking risks", index + 1, len(chunks))
    fingerprint = digest.hexdigest()
    if isinstance(chunks, _FrameChunks):
        fingerprint = data_fingerprint(chunks.encounters)
        n_patients = int(chunks.encounters["patient_id"].nunique())
    # the same checks and messages as on a table held whole
    table = pd.DataFrame(index=pd.RangeIndex(chunks.n_rows))
    if practitioners is not None:
        table["practitioner_id"] = pd.array(practitioners, dtype="Int64")
        table.loc[practitioners < 0, "practitioner_id"] = pd.NA
    return encounter_flag_thresholds(flag_rule, risk, table), fingerprint, n_patients


def _run_key(
    manifest: ModelManifest,
    data_sha256: str,
    chunk_rows: int,
    top_reasons: int,
    applied: AppliedFlagRule,
) -> str:
    record = {
        "format": _SCORE_FORMAT,
        "model_sha256": manifest.model_sha256,
        "data_sha256": data_sha256,
        "chunk_rows": int(chunk_rows),
        "top_reasons": int(top_reasons),
        # a rerun that would flag differently (another rule or thresholds) is another
        # run; thresholds to 12 digits, as risks computed with another number of BLAS
        # threads may differ in the last bits
        "flag_rule": {
            **applied.to_dict(),
            "threshold": f"{applied.threshold:.12g}",
            "medium_threshold": f"{applied.medium_threshold:.12g}",
        },
    }
    return hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()


def _now() -> str:
    """The time now, as ``score_runs`` and the bookkeeping table store it (ISO, UTC)."""
    return datetime.now(UTC).isoformat(timespec="microseconds")


def _sql_type(name: str) -> Any:
    if name in _TEXT_COLUMNS:
        return sa.Text
    if name in _INTEGER_COLUMNS:
        return sa.Integer
    if name in _DATE_COLUMNS:
        return sa.Date
    return sa.Float(precision=53)


def _metadata() -> sa.MetaData:
    # an index named by convention: SQLAlchemy shortens a name too long for the database
    return sa.MetaData(naming_convention={"ix": "ix_%(table_name)s_%(column_0_N_name)s"})


def scores_table(name: str, columns: list[str], metadata: sa.MetaData | None = None) -> sa.Table:
    """The scores table ``name`` with the score columns ``columns`` as the writer makes
    it: the run and the encounter as its key, the chunk column, and its indexes."""
    scores = sa.Table(
        name,
        _metadata() if metadata is None else metadata,
        sa.Column(RUN_COLUMN, sa.Integer, primary_key=True, autoincrement=False),
        *(sa.Column(c, _sql_type(c), primary_key=c == "encounter_id") for c in columns),
        sa.Column(CHUNK_COLUMN, sa.Integer, nullable=False),
    )
    if "encounter_id" in columns:
        sa.Index(None, scores.c[RUN_COLUMN], scores.c[CHUNK_COLUMN])
    # what engagekit serve reads: a patient's sessions in a run, a practitioner's
    # patients (without them a caseload reads the whole table, several times)
    if {"patient_id", "session_number"} <= set(columns):
        sa.Index(None, scores.c[RUN_COLUMN], scores.c["patient_id"], scores.c["session_number"])
    if "practitioner_id" in columns:
        sa.Index(None, scores.c[RUN_COLUMN], scores.c["practitioner_id"])
    return scores


def _arrow_type(name: str) -> Any:
    import pyarrow as pa

    if name in _INTEGER_COLUMNS:
        return pa.int64()
    if name in _TEXT_COLUMNS or name in _DATE_COLUMNS:
        return pa.string()
    return pa.float64()


def _without_password(text: str) -> str:
    """``text`` with the password of any URL in it replaced by ``***``."""
    return re.sub(r"(://[^:/@\s]*:)[^@\s]*@", r"\1***@", text)


def _engine(url: Any, **options: Any) -> sa.engine.Engine:
    """An engine whose transactions are the database's own.

    SQLite through Python's driver would run DDL outside the transaction and begin one
    only at the first write: a run killed between creating (or dropping) the scores
    table and its bookkeeping table would leave one without the other, and two runs
    that read then write could fail at once with a lock error. So every transaction is
    ``BEGIN IMMEDIATE``: DDL included, and the write lock is waited for (up to the busy
    timeout) at the start (SQLAlchemy's recipe for SQLite).
    """
    engine = sa.create_engine(url, **options)
    if engine.dialect.name == "sqlite":

        @sa.event.listens_for(engine, "connect")
        def _no_driver_transactions(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.isolation_level = None

        @sa.event.listens_for(engine, "begin")
        def _begin_immediate(conn: Any) -> None:
            conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def _process_alive(pid: int) -> bool:
    """Whether process ``pid`` of this machine is running (True when it cannot be told:
    then only the claim's age frees it)."""
    if os.name != "posix":  # os.kill(pid, 0) would stop it on Windows
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # another user's process
        return True
    try:  # Linux: a killed process its parent has not yet reaped is a zombie
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state != "Z"


def _locked(error: Exception) -> bool:
    """Whether a database error is another connection's lock outlasting the wait."""
    text = str(getattr(error, "orig", None) or error).lower()
    return "database is locked" in text or "lock timeout" in text or "could not obtain lock" in text


class _ScoreStore:
    """The scores table, its bookkeeping table and its claim in one database."""

    def __init__(self, url: str, table: str, columns: list[str]) -> None:
        self.table_name = table
        self.columns = columns
        self.display_url = _without_password(url)
        try:
            parsed = sa.engine.make_url(url)
            self.sqlite_file = self._sqlite_file(parsed)
            self.engine_options: dict[str, Any] = {}
            if parsed.get_backend_name() == "sqlite" and "timeout" not in parsed.query:
                # wait for another run's commit rather than fail at once
                self.engine_options["connect_args"] = {"timeout": _SQLITE_BUSY_SECONDS}
            self.parsed_url = parsed
            self.engine = _engine(parsed, **self.engine_options)
        except (sa.exc.ArgumentError, sa.exc.NoSuchModuleError, ValueError) as e:
            raise OutputError(
                f"{self.display_url!r} is not a database URL SQLAlchemy can use: "
                f"{_without_password(str(e))}"
            ) from None
        except ImportError as e:
            raise OutputError(
                f"the database driver for {self.display_url!r} is not installed: "
                f"{e.name or 'a module'} (install it into this environment)"
            ) from None
        metadata = _metadata()
        self.scores = scores_table(table, columns, metadata)
        self.chunks = sa.Table(
            f"{table}_chunks",
            metadata,
            sa.Column(RUN_COLUMN, sa.Integer, primary_key=True, autoincrement=False),
            sa.Column(CHUNK_COLUMN, sa.Integer, primary_key=True, autoincrement=False),
            sa.Column("n_rows", sa.Integer, nullable=False),
            sa.Column("committed_at", sa.String(32), nullable=False),
        )
        # one row while a run writes to the table: the run's claim (see the module notes)
        self.writer = sa.Table(
            f"{table}_writer",
            metadata,
            sa.Column("scores_table", sa.String(255), primary_key=True),
            sa.Column("run_id", sa.String(32), nullable=False),
            sa.Column("host", sa.String(255), nullable=False),
            sa.Column("pid", sa.Integer, nullable=False),
            sa.Column("claimed_at", sa.String(32), nullable=False),
            sa.Column("renewed_at", sa.Float(precision=53), nullable=False),
        )
        self.metadata = metadata
        # the claiming process's own random id (the writer table's run_id column)
        self.claim_id = uuid.uuid4().hex
        self.holds_claim = False
        self._keeper: _ClaimKeeper | None = None
        # this run's row in score_runs (set by prepare()), and the run it replaces
        self.run_id: int | None = None
        self.replaces: int | None = None
        # what prepare() creates, for discard() to remove
        self.created_file = False
        self.created_folders: list[Path] = []
        self.created_tables = False
        self.created_writer = False
        self.created_run = False

    @staticmethod
    def _sqlite_file(parsed: Any) -> Path | None:
        """The file of a SQLite database (None for another database or in memory)."""
        database = parsed.database
        if parsed.get_backend_name() == "sqlite" and database and database != ":memory:":
            if not database.startswith("file:"):
                return Path(database)
        return None

    def _fail(self, doing: str, error: Exception) -> OutputError:
        if _locked(error):
            return OutputError(
                f"cannot {doing} in {self.display_url!r}: another program kept the database "
                "locked for longer than this run waits; wait for it to finish, then run "
                "again (a run of the same job resumes where it stopped)"
            )
        cause = getattr(error, "orig", None) or error
        detail = str(cause).splitlines()[0]
        return OutputError(f"cannot {doing} in {self.display_url!r}: {detail}")

    def check_writable(self) -> None:
        """Refuse a SQLite database whose folder cannot be made or written to."""
        if self.sqlite_file is not None:
            check_writable(self.sqlite_file, what=f"the database {self.display_url!r}")

    # ------------------------------------------------------------------ the claim
    def _claim_row(self) -> dict[str, Any]:
        return {
            "scores_table": self.table_name,
            "run_id": self.claim_id,
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "claimed_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "renewed_at": time.time(),
        }

    def _claimant(self) -> Any:
        """The row of the run that holds the table (None if none does)."""
        with self.engine.connect() as conn:
            return conn.execute(
                sa.select(self.writer).where(self.writer.c.scores_table == self.table_name)
            ).first()

    def _busy(self, claimant: Any) -> OutputError:
        silent = max(0.0, time.time() - claimant.renewed_at)
        return OutputError(
            f"another run is writing to table {self.table_name!r} of {self.display_url!r} "
            f"(process {claimant.pid} on {claimant.host!r}, since {claimant.claimed_at}, "
            f"last active {silent:.0f} s ago); wait for it to finish, then run again (a run "
            "of the same job resumes where it stopped). A run that was killed on another "
            f"machine is taken over once it has been silent for {LEASE_STALE_SECONDS:.0f} s"
        )

    @staticmethod
    def _abandoned(claimant: Any) -> bool:
        if claimant.host == socket.gethostname() and not _process_alive(claimant.pid):
            return True
        return time.time() - claimant.renewed_at > LEASE_STALE_SECONDS

    def claim(self) -> None:
        """Claim the table for this run, taking over an abandoned claim.

        Raises
        ------
        OutputError
            Another live run holds the table.
        """
        last: Exception | None = None
        for _attempt in range(5):
            try:
                if self._insert_claim():
                    break
                claimant = self._claimant()
                if claimant is None:  # released since
                    continue
                if not self._abandoned(claimant):
                    raise self._busy(claimant)
                if self._take_over(claimant):
                    break
            except sa.exc.SQLAlchemyError as e:
                if _locked(e):
                    raise self._fail("claim the table", e) from e
                # e.g. the claim's table dropped by a run that failed meanwhile: again
                last = e
        else:
            with contextlib.suppress(sa.exc.SQLAlchemyError):
                claimant = self._claimant()
                if claimant is not None:
                    raise self._busy(claimant)
            raise self._fail("claim the table", last or RuntimeError("claimed by others"))
        self.holds_claim = True
        self._keeper = _ClaimKeeper(self)
        self._keeper.start()

    def _insert_claim(self) -> bool:
        """Insert this run's claim, in its own transaction; False if the table is
        claimed already."""
        if not sa.inspect(self.engine).has_table(self.writer.name):
            with self.engine.begin() as conn:
                conn.execute(sa.schema.CreateTable(self.writer, if_not_exists=True))
            self.created_writer = True
        try:
            with self.engine.begin() as conn:
                conn.execute(self.writer.insert(), self._claim_row())
        except sa.exc.IntegrityError:
            return False
        return True

    def _take_over(self, claimant: Any) -> bool:
        """Take an abandoned claim, unless it was renewed or taken since it was read."""
        writer = self.writer.c
        with self.engine.begin() as conn:
            taken = conn.execute(
                self.writer.update()
                .where(
                    writer.scores_table == self.table_name,
                    writer.run_id == claimant.run_id,
                    writer.renewed_at == claimant.renewed_at,
                )
                .values(self._claim_row())
            ).rowcount
        return taken == 1

    def renew(self, conn: Any) -> None:
        """Renew the claim in ``conn``'s transaction.

        Raises
        ------
        OutputError
            The claim is no longer this run's: another run took the table over after
            this one was silent for too long.
        """
        renewed = conn.execute(
            self.writer.update()
            .where(
                self.writer.c.scores_table == self.table_name,
                self.writer.c.run_id == self.claim_id,
            )
            .values(renewed_at=time.time())
        ).rowcount
        if renewed != 1:
            self.holds_claim = False
            raise OutputError(
                f"another run took over table {self.table_name!r} of {self.display_url!r} "
                f"after this run was silent for more than {LEASE_STALE_SECONDS:.0f} s; this "
                "run stopped without writing to the table again. Run again once that run "
                "has finished"
            )

    def _stop_keeper(self) -> None:
        if self._keeper is not None:
            self._keeper.stop()
            self._keeper = None

    def release(self) -> None:
        """Give up the claim (if still held), so the next run can write to the table."""
        self._stop_keeper()
        if not self.holds_claim:
            return
        self.holds_claim = False
        # best effort: a claim left behind is taken over as abandoned
        with contextlib.suppress(sa.exc.SQLAlchemyError), self.engine.begin() as conn:
            conn.execute(
                self.writer.delete().where(
                    self.writer.c.scores_table == self.table_name,
                    self.writer.c.run_id == self.claim_id,
                )
            )

    # ------------------------------------------------------------------ the tables
    def prepare(self, run_key: str, record: dict[str, Any], *, replace: bool) -> set[int]:
        """Claim the table, bring engagekit's tables up to date, create the scores
        tables if needed, and open this run in ``score_runs`` (a new run, or the run of
        the same key to resume); the chunks of it already committed.

        ``record`` holds the run's ``model``, ``model_sha256``, ``target``,
        ``data_sha256`` and ``flag_rule`` (JSON text).
        """
        if self.sqlite_file is not None:
            self.created_file = not self.sqlite_file.exists()
            self.created_folders = _missing_folders(self.sqlite_file.parent)
            try:
                self.sqlite_file.parent.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise OutputError(
                    f"cannot create the database {self.display_url!r}: {e.strerror or e}"
                ) from e
        self.claim()
        self._upgrade()
        try:
            with self.engine.begin() as conn:
                inspector = sa.inspect(conn)
                has_scores = inspector.has_table(self.table_name)
                has_chunks = inspector.has_table(self.chunks.name)
                self.created_tables = not (has_scores or has_chunks)
                foreign = self._foreign_content(inspector, has_scores, has_chunks)
                if foreign:
                    raise OutputError(
                        f"the table {self.table_name!r} in {self.display_url!r} {foreign}; "
                        "score into another table with --db-table NAME"
                    )
                self.metadata.create_all(conn, tables=[self.scores, self.chunks])
                for index in self.scores.indexes:  # a table of an earlier run may lack one
                    index.create(conn, checkfirst=True)
                return self._open_run(conn, run_key, record, replace=replace)
        except OutputError:
            raise
        except sa.exc.SQLAlchemyError as e:
            raise self._fail("prepare the scores table", e) from e

    def _upgrade(self) -> None:
        """Create or upgrade engagekit's tables (``score_runs`` among them)."""
        from alembic.util import CommandError

        from ..db import HEAD, database_revision, upgrade_database

        try:
            upgrade_database(self.engine)
        except CommandError as e:  # a revision this engagekit does not know
            raise OutputError(
                f"cannot use engagekit's tables in {self.display_url!r}: {e} (a newer "
                "engagekit upgraded them; upgrade engagekit to use this database)"
            ) from None
        except OutputError as e:
            # two runs creating the tables of a new database at once: one of them wins
            with contextlib.suppress(sa.exc.SQLAlchemyError):
                if database_revision(self.engine) == HEAD:
                    return
            cause = e.__cause__ if isinstance(e.__cause__, sa.exc.SQLAlchemyError) else e
            raise self._fail("create or upgrade engagekit's tables", cause) from e

    def _foreign_content(self, inspector: Any, has_scores: bool, has_chunks: bool) -> str:
        """Why the existing tables cannot take this run ("" if they can)."""
        if has_scores and not has_chunks:
            return "exists but was not written by engagekit score"
        if has_chunks and not has_scores:
            return f"is missing, but its bookkeeping table {self.chunks.name!r} is there"
        if has_scores:
            existing = [c["name"] for c in inspector.get_columns(self.table_name)]
            if existing != [c.name for c in self.scores.columns]:
                return (
                    "holds scores with other columns than this model's (another outcome, "
                    "model kind or encounter context, or an older engagekit's layout)"
                )
            kept = [c["name"] for c in inspector.get_columns(self.chunks.name)]
            if kept != [c.name for c in self.chunks.columns]:
                return f"has a bookkeeping table {self.chunks.name!r} of an older engagekit"
        return ""

    def _open_run(
        self, conn: Any, run_key: str, record: dict[str, Any], *, replace: bool
    ) -> set[int]:
        """This run's row in ``score_runs``, found or inserted, and the run to replace
        (see the module's notes); the chunks of it already committed."""
        runs = SCORE_RUNS.c
        of_table = runs.scores_table == self.table_name
        found = conn.execute(
            sa.select(runs.run_id, runs.status).where(of_table, runs.run_key == run_key)
        ).first()
        latest = conn.execute(
            sa.select(sa.func.max(runs.run_id)).where(of_table, runs.status == COMPLETE)
        ).scalar_one_or_none()
        opened = {
            **record,
            "status": RUNNING,
            "started_at": _now(),
            "finished_at": None,
            **dict.fromkeys(("n_encounters", "n_patients", "n_high", "n_medium"), 0),
        }
        if found is None:
            inserted = conn.execute(
                SCORE_RUNS.insert().values(scores_table=self.table_name, run_key=run_key, **opened)
            )
            self.run_id = int(inserted.inserted_primary_key[0])
            self.created_run = True
        else:
            self.run_id = int(found.run_id)
            if found.status == REPLACED or (replace and self.run_id == latest):
                # this job's run was replaced, or is the run to replace: score it again
                # from scratch, under its own run_id
                self._delete_rows(conn, self.run_id)
                conn.execute(SCORE_RUNS.update().where(runs.run_id == self.run_id).values(**opened))
        self.replaces = latest if replace and latest != self.run_id else None
        done = conn.execute(
            sa.select(self.chunks.c[CHUNK_COLUMN]).where(self.chunks.c[RUN_COLUMN] == self.run_id)
        )
        return {int(r[0]) for r in done}

    def _delete_rows(self, conn: Any, run_id: int) -> None:
        """Delete a run's score rows and chunk records."""
        conn.execute(self.scores.delete().where(self.scores.c[RUN_COLUMN] == run_id))
        conn.execute(self.chunks.delete().where(self.chunks.c[RUN_COLUMN] == run_id))

    def complete(self, counts: dict[str, int]) -> int | None:
        """Mark this run complete with its ``counts``, and replace the run it replaces,
        in one transaction that renews the claim; the ``run_id`` replaced, if any.

        A run found complete (a rerun of a complete job) keeps its record.
        """
        runs = SCORE_RUNS.c
        try:
            with self.engine.begin() as conn:
                self.renew(conn)
                conn.execute(
                    SCORE_RUNS.update()
                    .where(runs.run_id == self.run_id, runs.status == RUNNING)
                    .values(status=COMPLETE, finished_at=_now(), **counts)
                )
                if self.replaces is None:
                    return None
                replaced = conn.execute(
                    SCORE_RUNS.update()
                    .where(runs.run_id == self.replaces, runs.status == COMPLETE)
                    .values(status=REPLACED)
                ).rowcount
                if replaced != 1:
                    return None
                self._delete_rows(conn, self.replaces)
                return self.replaces
        except sa.exc.SQLAlchemyError as e:
            raise self._fail("mark the run complete", e) from e

    def write_chunk(self, index: int, frame: pd.DataFrame) -> None:
        """Insert a chunk's rows and mark it done, in one transaction, which also renews
        the claim (and commits nothing if the table is no longer this run's)."""
        rows = frame.assign(**{CHUNK_COLUMN: index})
        rows.insert(0, RUN_COLUMN, self.run_id)
        try:
            with self.engine.begin() as conn:
                self.renew(conn)
                self._insert(conn, rows)
                conn.execute(
                    self.chunks.insert(),
                    {
                        RUN_COLUMN: self.run_id,
                        CHUNK_COLUMN: index,
                        "n_rows": len(frame),
                        "committed_at": _now(),
                    },
                )
        except sa.exc.SQLAlchemyError as e:
            raise self._fail(f"write chunk {index} of the scores", e) from e

    def _insert(self, conn, frame: pd.DataFrame) -> None:
        """A fast executemany through the driver where its parameter style is positional;
        SQLAlchemy's portable insert otherwise."""
        # an empty text cell is NULL (pandas may hold it as NaN)
        text = [c for c in frame.columns if c in _TEXT_COLUMNS or c in _DATE_COLUMNS]
        frame = frame.astype(dict.fromkeys(text, object))
        frame[text] = frame[text].where(frame[text].notna(), None)
        rows = list(frame.itertuples(index=False, name=None))
        marker = {"qmark": "?", "format": "%s", "pyformat": "%s"}.get(conn.dialect.paramstyle)
        if marker is None:
            conn.execute(self.scores.insert(), frame.to_dict(orient="records"))
            return
        quote = conn.dialect.identifier_preparer.quote
        names = ", ".join(quote(c) for c in frame.columns)
        markers = ", ".join([marker] * frame.shape[1])
        conn.exec_driver_sql(
            f"INSERT INTO {quote(self.table_name)} ({names}) VALUES ({markers})", rows
        )

    def read_chunk(self, index: int, encounter_ids: np.ndarray) -> pd.DataFrame:
        """A committed chunk's rows, in the order of ``encounter_ids``."""
        query = sa.select(*(self.scores.c[c] for c in self.columns)).where(
            self.scores.c[RUN_COLUMN] == self.run_id, self.scores.c[CHUNK_COLUMN] == index
        )
        try:
            with self.engine.connect() as conn:
                result = conn.execute(query)
                frame = pd.DataFrame(result.fetchall(), columns=self.columns)
        except sa.exc.SQLAlchemyError as e:
            raise self._fail(f"read chunk {index} of the scores", e) from e
        frame = frame.set_index("encounter_id", drop=False)
        if (
            len(frame) != len(encounter_ids)
            or not frame.index.is_unique
            or not frame.index.isin(encounter_ids).all()
        ):
            raise OutputError(
                f"chunk {index} of run {self.run_id} in table {self.table_name!r} of "
                f"{self.display_url!r} does not hold the encounters it should (was the table "
                "changed by hand?); score into another table with --db-table NAME"
            )
        frame = frame.loc[encounter_ids]
        for name in self.columns:
            if name in _INTEGER_COLUMNS:
                frame[name] = frame[name].astype("int64")
            elif name in _DATE_COLUMNS:
                frame[name] = [None if pd.isna(d) else d.strftime("%Y-%m-%d") for d in frame[name]]
            elif name not in _TEXT_COLUMNS:
                frame[name] = frame[name].astype("float64")
        return frame.reset_index(drop=True)

    def discard(self) -> None:
        """Remove what :meth:`prepare` created (call it, holding the claim, when no chunk
        was committed): the SQLite file and its new folders, or this run's row in
        ``score_runs`` and the tables it added to a database that was there before."""
        self._stop_keeper()
        self.engine.dispose()
        if self.sqlite_file is not None and self.created_file:
            # the claim goes with the file
            for suffix in ("", "-journal", "-wal", "-shm"):
                with contextlib.suppress(OSError):  # e.g. its folder is a file
                    Path(f"{self.sqlite_file}{suffix}").unlink(missing_ok=True)
            _remove_empty(self.created_folders)
            self.holds_claim = False
            return
        # best effort: the failure being handled may be the database's own
        with contextlib.suppress(sa.exc.SQLAlchemyError), self.engine.begin() as conn:
            if self.created_run:
                conn.execute(SCORE_RUNS.delete().where(SCORE_RUNS.c.run_id == self.run_id))
            if self.created_tables:
                self.chunks.drop(conn, checkfirst=True)
                self.scores.drop(conn, checkfirst=True)
            if self.created_writer:
                self.writer.drop(conn, checkfirst=True)
                self.holds_claim = False
        self.release()

    def dispose(self) -> None:
        self._stop_keeper()
        self.engine.dispose()


class _ClaimKeeper(threading.Thread):
    """Renews a run's claim every :data:`LEASE_RENEW_SECONDS` while the run computes
    (a chunk may take longer than a claim stays fresh), on a connection of its own."""

    def __init__(self, store: _ScoreStore) -> None:
        super().__init__(name=f"engagekit claim on {store.table_name}", daemon=True)
        self.store = store
        self.stopped = threading.Event()

    def run(self) -> None:
        engine = _engine(
            self.store.parsed_url, poolclass=sa.pool.NullPool, **self.store.engine_options
        )
        try:
            while not self.stopped.wait(LEASE_RENEW_SECONDS):
                # a renewal missed (the database busy) is made at the next one; a claim
                # lost stops the run at its next commit
                with contextlib.suppress(sa.exc.SQLAlchemyError, OutputError):
                    with engine.begin() as conn:
                        self.store.renew(conn)
        finally:
            engine.dispose()

    def stop(self) -> None:
        self.stopped.set()
        if self is not threading.current_thread():
            self.join()


class _ScoreFile:
    """Chunks appended to a temporary file of this run's own, renamed into place when
    all are in (see :mod:`engagekit.io._write` for its name and how the leftovers of a
    killed run are deleted).

    Written with Arrow: Parquet, or CSV with every float in its shortest exact form
    (reading it back gives the same doubles, so local accuracy survives the file), its
    text cells escaped as every CSV engagekit writes unless ``escape_formulas`` is false.
    """

    def __init__(self, out: Path, columns: list[str], *, escape_formulas: bool = True) -> None:
        import pyarrow as pa

        self.out = out
        self.schema = pa.schema([pa.field(name, _arrow_type(name)) for name in columns])
        suffixes = [s.lower() for s in out.suffixes]
        self.parquet = bool(suffixes) and suffixes[-1] in (".parquet", ".pq")
        self.gzip = bool(suffixes) and suffixes[-1] == ".gz"
        self.escape_formulas = escape_formulas and not self.parquet
        self.created_folders = _missing_folders(out.parent)
        self.partial: Path | None = None
        self.lock: int | None = None  # holds the temporary file's lock while it is open
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
            self.partial, self.lock = _new_partial(out)
            self._open()
        except OSError as e:
            self._delete_partial()
            _remove_empty(self.created_folders)
            raise OutputError(f"cannot write {str(out)!r}: {e.strerror or e}") from e

    def _delete_partial(self) -> None:
        if self.partial is not None:
            with contextlib.suppress(OSError):  # e.g. its folder is a file
                self.partial.unlink(missing_ok=True)
        self._unlock()

    def _unlock(self) -> None:
        if self.lock is not None:
            os.close(self.lock)
            self.lock = None

    def _open(self) -> None:
        import pyarrow as pa
        import pyarrow.csv as pacsv
        import pyarrow.parquet as pq

        if self.parquet:
            self.writer = pq.ParquetWriter(self.partial, self.schema)
            self.stream = None
        else:
            self.stream = pa.output_stream(
                str(self.partial), compression="gzip" if self.gzip else None
            )
            self.writer = pacsv.CSVWriter(self.stream, self.schema)

    def write(self, frame: pd.DataFrame) -> None:
        import pyarrow as pa

        if self.escape_formulas:
            frame = escape_formula_cells(frame)
        try:
            self.writer.write_table(
                pa.Table.from_pandas(frame, schema=self.schema, preserve_index=False)
            )
        except OSError as e:
            raise OutputError(f"cannot write {str(self.out)!r}: {e.strerror or e}") from e

    def _close(self) -> None:
        self.writer.close()
        if self.stream is not None:
            self.stream.close()

    def finish(self) -> None:
        assert self.partial is not None  # made in __init__, which raised if it could not
        try:
            self._close()
            os.replace(self.partial, self.out)
        except OSError as e:
            raise OutputError(f"cannot write {str(self.out)!r}: {e.strerror or e}") from e
        self._unlock()

    def abandon(self) -> None:
        """Close and delete the partial file, and the folders made for it (the database
        keeps the committed chunks)."""
        try:
            with contextlib.suppress(OSError):  # e.g. closed already by a failed finish
                self._close()
        finally:
            self._delete_partial()
            _remove_empty(self.created_folders)


def read_score_history(
    url: str, table: str, model_sha256: str, target: str
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(the scores of the complete runs of the model ``model_sha256`` in ``table``, the
    flag_reviews rows)``: the history ``engagekit monitor`` reads, through a connection
    that cannot write (a SQLite file is opened read-only, never created).

    Raises
    ------
    DataReadError
        No such SQLite file, no scores table written by engagekit score, no complete run
        of this model, or the database cannot be read.
    """
    from ..db import FLAG_REVIEWS
    from ..errors import DataReadError
    from ._read import _read_only_engine

    parsed = sa.make_url(url)
    shown = parsed.render_as_string(hide_password=True)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        if not Path(parsed.database).is_file():
            raise DataReadError(f"there is no SQLite database at {parsed.database!r} ({shown})")
    engine = _read_only_engine(url, repr(shown))
    try:
        with engine.connect() as conn:
            inspector = sa.inspect(conn)
            if not inspector.has_table(SCORE_RUNS.name) or not inspector.has_table(table):
                raise DataReadError(
                    f"{shown!r} has no scores table {table!r} written by engagekit score; "
                    "name the table with --db-table"
                )
            runs = (
                conn.execute(
                    sa.select(SCORE_RUNS.c.run_id).where(
                        SCORE_RUNS.c.scores_table == table,
                        SCORE_RUNS.c.status == "complete",
                        SCORE_RUNS.c.model_sha256 == model_sha256,
                    )
                )
                .scalars()
                .all()
            )
            if not runs:
                raise DataReadError(
                    f"table {table!r} of {shown!r} holds no complete run of this model "
                    "(its model_sha256); monitor the model that scored it"
                )
            scores_table = sa.Table(table, sa.MetaData(), autoload_with=conn)
            wanted = [
                "run_id",
                "encounter_id",
                "patient_id",
                "treatment",
                "session_number",
                "encounter_date",
                f"p_{target}",
                "flag",
            ]
            columns = [
                c for c in scores_table.columns if c.name in wanted or c.name.startswith("rating_")
            ]
            result = conn.execute(sa.select(*columns).where(scores_table.c.run_id.in_(runs)))
            scores = pd.DataFrame(result.fetchall(), columns=[c.name for c in columns])
            reviews = pd.DataFrame(
                conn.execute(
                    sa.select(
                        FLAG_REVIEWS.c.patient_id,
                        FLAG_REVIEWS.c.encounter_id,
                        FLAG_REVIEWS.c.status,
                        FLAG_REVIEWS.c.reviewed_at,
                    )
                ).fetchall(),
                columns=["patient_id", "encounter_id", "status", "reviewed_at"],
            )
    except sa.exc.SQLAlchemyError as e:
        raise DataReadError(f"cannot read the score history from {shown!r}: {e}") from e
    finally:
        engine.dispose()
    for name in scores.columns:
        if name.startswith(("p_", "rating_")):
            scores[name] = pd.to_numeric(scores[name], errors="coerce").astype("float64")
    return scores, reviews
