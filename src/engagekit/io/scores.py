"""Bulk scoring to a database and a file, chunk by chunk, resumable after a kill.

:func:`write_scores` scores an encounter table in chunks of whole patients
(:func:`engagekit.scoring.patient_chunks`) and, for each chunk, in **one database
transaction**, inserts its score rows and records the chunk as done in a bookkeeping
table. A run that is killed keeps every committed chunk and leaves no part of the chunk
it was writing (the transaction is rolled back). Rerunning the same job (same model,
same table, same settings: a *run key* hashes them) skips the chunks already done and
scores the rest, so the table ends with every encounter exactly once.

Flags are set on the whole table before the first chunk: the model's flag rule is
applied to the risks of every encounter (:func:`engagekit.scoring.encounter_flag_thresholds`:
"the top 10%" is 10% of the encounters scored), and every chunk is flagged with those
thresholds, so a chunked run flags exactly as an unchunked one. The thresholds are part
of the run key.

The file (CSV or Parquet, by extension) is written alongside, chunk by chunk, under a
temporary name, and renamed into place only when every chunk is in it; chunks done by an
earlier run are read back from the database (floats are stored as 8-byte reals, so they
come back bit for bit). A rerun therefore writes the same file as an uninterrupted run.

The database is SQLite by default (a file next to the output file); any SQLAlchemy URL
works. The scores table has the columns of :func:`engagekit.scoring.score_columns` plus
``score_chunk``; the bookkeeping table is ``<table>_chunks`` (``run_key``,
``score_chunk``, ``n_rows``, ``committed_at``). A run that fails before any chunk is
committed leaves nothing behind: no partial file, and no SQLite file, table or folder
it created itself.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

from ..errors import DataReadError, OutputError
from ..scoring import (
    encounter_flag_thresholds,
    patient_chunks,
    score_columns,
    score_encounters,
)
from .model_store import data_fingerprint

if TYPE_CHECKING:
    from ..config import Config
    from ..flags import AppliedFlagRule, FlagRule
    from ..models import EngagementModel

__all__ = ["ScoreRun", "default_database_url", "write_scores"]

#: Encounters scored per chunk (whole patients): about 0.4 GB of working memory.
CHUNK_ROWS = 50_000
CHUNK_COLUMN = "score_chunk"
_TEXT_COLUMNS = ("encounter_id", "patient_id", "treatment", "practitioner_id", "flag", "reasons")
_INTEGER_COLUMNS = ("session_number",)
# ISO date text in the file; a DATE in the database (text in SQLite)
_DATE_COLUMNS = ("encounter_date",)
_SCORE_FORMAT = 2


@dataclass(frozen=True)
class ScoreRun:
    """What a :func:`write_scores` run did.

    Attributes
    ----------
    n_rows, n_chunks : int
        Encounters scored and chunks in the plan.
    chunks_computed, chunks_resumed : int
        Chunks scored by this run, and chunks an earlier run had already committed.
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


def write_scores(
    model: EngagementModel,
    manifest: dict[str, Any],
    encounters: pd.DataFrame,
    config: Config,
    out: str | Path,
    *,
    database: str | None = None,
    table: str = "scores",
    chunk_rows: int = CHUNK_ROWS,
    top_reasons: int = 2,
    replace: bool = False,
    n_jobs: int = 1,
    progress: Callable[[str, int, int], None] | None = None,
) -> ScoreRun:
    """Score, explain and flag every encounter into a database table and a file.

    Parameters
    ----------
    model : EngagementModel
        A fitted model, with ``manifest`` (as written by ``engagekit train``), whose
        ``flag_rule`` sets the flags and whose ``model_sha256`` identifies the model.
    encounters : pandas.DataFrame
        Typed, valid encounters (see :func:`engagekit.coerce_encounters`).
    config : Config
        The model's config (labels and suggestions for the reasons).
    out : str or Path
        ``.csv`` (also ``.csv.gz``) or ``.parquet``/``.pq`` file to write.
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
        Drop scores of another run found in ``table`` instead of refusing.
    n_jobs : int
        Threads explaining a tree model (-1: one per core).
    progress : callable, optional
        Called as ``progress("Ranking risks", done, total)`` and
        ``progress("Scoring chunks", done, total)`` after each chunk.

    Returns
    -------
    ScoreRun

    Raises
    ------
    OutputError
        The database or the file cannot be written, or ``table`` holds scores of
        another run (another model, table or settings) and ``replace`` is false.
    DataReadError
        The manifest has no flag rule (a model from before flag rules: retrain it).
    ContractError
        ``encounters`` lacks a column the model or its flag rule needs (checked before
        anything is written).
    """
    from ..flags import FlagRule

    if "flag_rule" not in manifest:
        raise DataReadError(
            "the model has no stored flag rule (it was trained by an older engagekit); "
            "retrain it with 'engagekit train' to score with flags"
        )
    flag_rule = FlagRule.from_dict(manifest["flag_rule"])
    out = Path(out)
    url = database or default_database_url(out)
    plan = patient_chunks(encounters["patient_id"].to_numpy(), chunk_rows)
    columns = score_columns(model, encounter_columns=encounters.columns)
    store = _ScoreStore(url, table, columns)  # refuses an unusable URL; creates nothing
    writer = None
    counts = dict.fromkeys(("high", "medium", "low"), 0)
    computed = 0
    committed = False
    try:
        applied = _thresholds_on_the_table(model, encounters, flag_rule, plan, progress)
        run_key = _run_key(manifest, encounters, chunk_rows, top_reasons, applied)
        store.run_key = run_key
        done = store.prepare(replace=replace)
        committed = bool(done)
        writer = _ScoreFile(out, columns)
        for index, rows in enumerate(plan):
            chunk = encounters.iloc[rows]
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
                progress("Scoring chunks", index + 1, len(plan))
        writer.finish()
    except BaseException:
        if writer is not None:
            writer.abandon()
        if not committed:
            # nothing a rerun could resume: leave no empty database behind
            store.discard()
        raise
    finally:
        store.dispose()
    return ScoreRun(
        n_rows=len(encounters),
        n_chunks=len(plan),
        chunks_computed=computed,
        chunks_resumed=len(plan) - computed,
        n_flagged=counts,
        flag_rule=applied,
        out=out,
        database=store.display_url,
        table=table,
        run_key=run_key,
    )


def _thresholds_on_the_table(
    model: EngagementModel,
    encounters: pd.DataFrame,
    flag_rule: FlagRule,
    plan: list[np.ndarray],
    progress: Callable[[str, int, int], None] | None,
) -> AppliedFlagRule:
    """The thresholds the flag rule sets on every encounter of the table, from their
    risks computed chunk by chunk (which bounds the memory, and costs little next to
    the explanations)."""
    risk = np.empty(len(encounters))
    for index, rows in enumerate(plan):
        risk[rows] = 1.0 - model.predict_proba(encounters.iloc[rows])
        if progress is not None:
            progress("Ranking risks", index + 1, len(plan))
    return encounter_flag_thresholds(flag_rule, risk, encounters)


def _run_key(
    manifest: dict[str, Any],
    encounters: pd.DataFrame,
    chunk_rows: int,
    top_reasons: int,
    applied: AppliedFlagRule,
) -> str:
    record = {
        "format": _SCORE_FORMAT,
        "model_sha256": manifest.get("model_sha256"),
        "data_sha256": data_fingerprint(encounters),
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


def _sql_type(name: str) -> Any:
    if name in _TEXT_COLUMNS:
        return sa.Text
    if name in _INTEGER_COLUMNS:
        return sa.Integer
    if name in _DATE_COLUMNS:
        return sa.Date
    return sa.Float(precision=53)


def _arrow_type(name: str) -> Any:
    import pyarrow as pa

    if name in _INTEGER_COLUMNS:
        return pa.int64()
    if name in _TEXT_COLUMNS or name in _DATE_COLUMNS:
        return pa.string()
    return pa.float64()


def _missing_folders(folder: Path) -> list[Path]:
    """``folder`` and those of its parents that do not exist yet, deepest first."""
    missing = []
    while not folder.exists() and folder != folder.parent:
        missing.append(folder)
        folder = folder.parent
    return missing


def _remove_empty(folders: list[Path]) -> None:
    """Remove ``folders`` (deepest first) while they are empty."""
    for folder in folders:
        try:
            folder.rmdir()
        except OSError:  # not empty (another file is in it) or already gone
            return


def _without_password(text: str) -> str:
    """``text`` with the password of any URL in it replaced by ``***``."""
    return re.sub(r"(://[^:/@\s]*:)[^@\s]*@", r"\1***@", text)


class _ScoreStore:
    """The scores table and its bookkeeping table in one database."""

    def __init__(self, url: str, table: str, columns: list[str]) -> None:
        self.table_name = table
        self.columns = columns
        self.run_key = ""  # set before prepare()
        self.display_url = _without_password(url)
        try:
            parsed = sa.engine.make_url(url)
            self.sqlite_file = self._sqlite_file(parsed)
            self.engine = sa.create_engine(parsed)
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
        metadata = sa.MetaData()
        self.scores = sa.Table(
            table,
            metadata,
            *(sa.Column(name, _sql_type(name)) for name in columns),
            sa.Column(CHUNK_COLUMN, sa.Integer, nullable=False, index=True),
        )
        self.chunks = sa.Table(
            f"{table}_chunks",
            metadata,
            sa.Column(CHUNK_COLUMN, sa.Integer, primary_key=True),
            sa.Column("run_key", sa.String(64), nullable=False),
            sa.Column("n_rows", sa.Integer, nullable=False),
            sa.Column("committed_at", sa.String(32), nullable=False),
        )
        self.metadata = metadata
        # what prepare() creates, for discard() to remove
        self.created_file = False
        self.created_folders: list[Path] = []
        self.created_tables = False

    @staticmethod
    def _sqlite_file(parsed: Any) -> Path | None:
        """The file of a SQLite database (None for another database or in memory)."""
        database = parsed.database
        if parsed.get_backend_name() == "sqlite" and database and database != ":memory:":
            if not database.startswith("file:"):
                return Path(database)
        return None

    def _fail(self, doing: str, error: Exception) -> OutputError:
        cause = getattr(error, "orig", None) or error
        detail = str(cause).splitlines()[0]
        return OutputError(f"cannot {doing} in {self.display_url!r}: {detail}")

    def prepare(self, *, replace: bool) -> set[int]:
        """Create the tables if needed; the chunks this run already committed."""
        if self.sqlite_file is not None:
            self.created_file = not self.sqlite_file.exists()
            self.created_folders = _missing_folders(self.sqlite_file.parent)
            try:
                self.sqlite_file.parent.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise OutputError(
                    f"cannot create the database {self.display_url!r}: {e.strerror or e}"
                ) from e
        try:
            with self.engine.begin() as conn:
                inspector = sa.inspect(conn)
                has_scores = inspector.has_table(self.table_name)
                has_chunks = inspector.has_table(self.chunks.name)
                self.created_tables = not (has_scores or has_chunks)
                foreign = self._foreign_content(conn, inspector, has_scores, has_chunks)
                if foreign and not replace:
                    raise OutputError(
                        f"the table {self.table_name!r} in {self.display_url!r} {foreign}; "
                        "pass --replace to overwrite it or --db-table NAME to write elsewhere"
                    )
                if foreign:
                    self.scores.drop(conn, checkfirst=True)
                    self.chunks.drop(conn, checkfirst=True)
                self.metadata.create_all(conn)
                rows = conn.execute(
                    sa.select(self.chunks.c[CHUNK_COLUMN]).where(
                        self.chunks.c.run_key == self.run_key
                    )
                )
                return {int(r[0]) for r in rows}
        except OutputError:
            raise
        except sa.exc.SQLAlchemyError as e:
            raise self._fail("prepare the scores table", e) from e

    def _foreign_content(self, conn, inspector, has_scores: bool, has_chunks: bool) -> str:
        """Why the existing tables cannot be resumed into ("" if they can)."""
        if has_scores and not has_chunks:
            return "exists but was not written by engagekit score"
        if has_scores:
            existing = [c["name"] for c in inspector.get_columns(self.table_name)]
            if existing != [*self.columns, CHUNK_COLUMN]:
                return "holds scores with other columns (another model)"
        if has_chunks:
            other = conn.execute(
                sa.select(sa.func.count()).where(self.chunks.c.run_key != self.run_key)
            ).scalar_one()
            if other:
                return "holds scores of another run (another model, encounter table or settings)"
        return ""

    def write_chunk(self, index: int, frame: pd.DataFrame) -> None:
        """Insert a chunk's rows and mark it done, in one transaction."""
        try:
            with self.engine.begin() as conn:
                self._insert(conn, frame.assign(**{CHUNK_COLUMN: index}))
                conn.execute(
                    self.chunks.insert(),
                    {
                        CHUNK_COLUMN: index,
                        "run_key": self.run_key,
                        "n_rows": len(frame),
                        "committed_at": datetime.now(UTC).isoformat(timespec="seconds"),
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
            self.scores.c[CHUNK_COLUMN] == index
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
                f"chunk {index} of the scores in {self.display_url!r} does not hold the "
                "encounters it should; pass --replace to score again from scratch"
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
        """Remove what :meth:`prepare` created (call it when no chunk was committed):
        the SQLite file and its new folders, or the tables it added to a database that
        was there before."""
        self.engine.dispose()
        if self.sqlite_file is not None and self.created_file:
            for suffix in ("", "-journal", "-wal", "-shm"):
                with contextlib.suppress(OSError):  # e.g. its folder is a file
                    Path(f"{self.sqlite_file}{suffix}").unlink(missing_ok=True)
            _remove_empty(self.created_folders)
        elif self.created_tables:
            # best effort: the failure being handled may be the database's own
            with contextlib.suppress(sa.exc.SQLAlchemyError), self.engine.begin() as conn:
                self.chunks.drop(conn, checkfirst=True)
                self.scores.drop(conn, checkfirst=True)

    def dispose(self) -> None:
        self.engine.dispose()


class _ScoreFile:
    """Chunks appended to a temporary file, renamed into place when all are in.

    Written with Arrow: Parquet, or CSV with every float in its shortest exact form
    (reading it back gives the same doubles, so local accuracy survives the file).
    """

    def __init__(self, out: Path, columns: list[str]) -> None:
        import pyarrow as pa

        self.out = out
        self.partial = out.with_name(f".{out.name}.partial")
        self.schema = pa.schema([pa.field(name, _arrow_type(name)) for name in columns])
        suffixes = [s.lower() for s in out.suffixes]
        self.parquet = bool(suffixes) and suffixes[-1] in (".parquet", ".pq")
        self.gzip = bool(suffixes) and suffixes[-1] == ".gz"
        self.created_folders = _missing_folders(out.parent)
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
            self._open()
        except OSError as e:
            with contextlib.suppress(OSError):  # e.g. its folder is a file
                self.partial.unlink(missing_ok=True)
            _remove_empty(self.created_folders)
            raise OutputError(f"cannot write {str(out)!r}: {e.strerror or e}") from e

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
        try:
            self._close()
            os.replace(self.partial, self.out)
        except OSError as e:
            raise OutputError(f"cannot write {str(self.out)!r}: {e.strerror or e}") from e

    def abandon(self) -> None:
        """Close and delete the partial file, and the folders made for it (the database
        keeps the committed chunks)."""
        try:
            with contextlib.suppress(OSError):  # e.g. closed already by a failed finish
                self._close()
        finally:
            self.partial.unlink(missing_ok=True)
            _remove_empty(self.created_folders)
