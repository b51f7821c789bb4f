"""A Parquet file too large to hold, read in row groups and split into buckets of whole
patients: checked and scored with flat memory.

A national extract of ten million encounters is several gigabytes once read into
pandas. :func:`split_parquet` reads the file a batch of rows at a time (Parquet's row
groups), gives every row its bucket, a hash of its ``patient_id`` (as the validator
reads it, so that a patient's rows always meet), and appends it, with its position in
the file, to that bucket's spill file (Arrow IPC, compressed) in a private temporary
folder. Each bucket then holds every row of each of its patients, in the file's order,
whatever the file's order of patients: about ``chunk_rows`` rows, so the work on a
bucket, and the memory it takes, do not grow with the file.

- :func:`validate_buckets` checks each bucket with the local validator, and the columns
  that must be unique over the whole table across buckets (only the rows whose key's
  hash occurs twice are gathered and checked together), and reports the problems in the
  file's row numbers: the report :func:`engagekit.validate_encounters` gives on the
  whole table (the Spark engine does the same on a cluster; see
  :mod:`engagekit.validation._partitioned`).
- :class:`EncounterChunks` gives the typed encounters of each bucket, for
  :func:`engagekit.io.write_scores` to score chunk by chunk.
- :func:`sample_chunks` gathers a training sample of patients and the patients held
  out to validate on (:func:`engagekit.models.sample_for_training`'s, drawn bucket by
  bucket), for ``engagekit train`` on a table too large to train on whole.

What grows with the file is on disk (the buckets, and the hashes of the keys that must
be unique, 8 bytes a row, searched for repeats 2 million at a time), except, while
scoring, 8 bytes per row for the risks a capacity flag rule is set on. The file is read
without Arrow's pre-buffering, whose memory grows with the file read.
"""

from __future__ import annotations

import json
import math
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ..errors import DataReadError

if TYPE_CHECKING:
    import pyarrow as pa

    from ..config import Config
    from ..validation import ValidationReport

__all__ = [
    "MAX_BUCKETS",
    "EncounterChunks",
    "PatientBuckets",
    "is_parquet_file",
    "split_parquet",
    "validate_buckets",
]

#: Rows read from the Parquet file at a time.
BATCH_ROWS = 131_072
#: The most buckets (open spill files) a file is split into; above
#: ``MAX_BUCKETS * chunk_rows`` rows, buckets grow with the file.
MAX_BUCKETS = 512
ROW_COLUMN = "_engagekit_row"
_PARQUET_SUFFIXES = {".parquet", ".pq"}


def is_parquet_file(source: str | Path) -> bool:
    """True if ``source`` is a Parquet file on disk (by its name or its first bytes)."""
    from ._read import is_database_url

    if isinstance(source, str) and is_database_url(source):
        return False
    path = Path(source)
    if not path.is_file():
        return False
    if path.suffix.lower() in _PARQUET_SUFFIXES:
        return True
    try:
        with path.open("rb") as fh:
            return fh.read(4) == b"PAR1"
    except OSError:
        return False


def bucket_of(patient_ids: pd.Series, n_buckets: int) -> np.ndarray:
    """The bucket of each row: a stable hash of its ``patient_id``, as the validator
    reads the column (text; a missing id is a bucket's like any other).

    >>> import pandas as pd
    >>> ids = pd.Series(["p1", "p2", "p1", None])
    >>> b = bucket_of(ids, 8)
    >>> bool(b[0] == b[2]), b.dtype.name
    (True, 'int64')
    """
    from ..validation._parse import as_text

    return (_key_hash(as_text(patient_ids)) % np.uint64(n_buckets)).astype("int64")


def _key_hash(text: pd.Series) -> np.ndarray:
    """A 64-bit hash of each value of a text column (missing hashed as itself)."""
    values = text.astype(object).where(text.notna(), None).to_numpy(dtype=object)
    return pd.util.hash_array(values, categorize=False)


def _pandas_schema(schema: pa.Schema) -> tuple[pa.Schema, list[str]]:
    """The schema the buckets are written with, and the file's data columns: the
    columns pandas stored its index in are left out (reading the whole file with
    pandas makes them the index, which the validator drops), with the pandas metadata
    saying no index, and the row column is added."""
    import pyarrow as pa

    metadata = dict(schema.metadata or {})
    index_columns: set[str] = set()
    if b"pandas" in metadata:
        pandas_meta = json.loads(metadata[b"pandas"])
        index_columns = {c for c in pandas_meta.get("index_columns", []) if isinstance(c, str)}
        pandas_meta["index_columns"] = []
        pandas_meta["columns"] = [
            c for c in pandas_meta.get("columns", []) if c.get("field_name") not in index_columns
        ]
        metadata[b"pandas"] = json.dumps(pandas_meta).encode()
    names = [f.name for f in schema if f.name not in index_columns]
    fields = [schema.field(n) for n in names]
    spilled = pa.schema([*fields, pa.field(ROW_COLUMN, pa.int64(), nullable=False)], metadata)
    return spilled, names


@dataclass
class PatientBuckets:
    """A Parquet file split into buckets of whole patients (see :func:`split_parquet`).

    Attributes
    ----------
    name : str
        The file's name, as messages give it.
    n_rows : int
        Rows in the file.
    columns : list of str
        The file's data columns, in order.
    n_buckets : int
    """

    name: str
    n_rows: int
    columns: list[str]
    n_buckets: int
    _folder: tempfile.TemporaryDirectory = field(repr=False)

    def _path(self, k: int) -> Path:
        return Path(self._folder.name) / f"bucket-{k:05d}.arrow"

    def _hashes(self, name: str, k: int) -> Path:
        """Where bucket ``k``'s hashes of column ``name``'s keys are kept (``name``: a
        contract column's, a plain identifier)."""
        return Path(self._folder.name) / f"hashes-{name}-{k:05d}.npy"

    def table(self, k: int) -> pa.Table | None:
        """Bucket ``k``'s rows as Arrow holds them, with the row column (None: empty)."""
        import pyarrow as pa

        path = self._path(k)
        if not path.exists():
            return None
        with pa.memory_map(str(path)) as source:
            return pa.ipc.open_stream(source).read_all()

    def frame_of(self, table: pa.Table | None) -> tuple[pd.DataFrame, np.ndarray]:
        """Rows of the file as Arrow holds them (with the row column) as read: pandas'
        types for the file's Arrow types, in the file's order, and their 0-based
        positions in the file."""
        if table is None:
            empty = pd.DataFrame({c: pd.Series([], dtype=object) for c in self.columns})
            return empty, np.array([], dtype="int64")
        frame = table.to_pandas()
        rows = frame.pop(ROW_COLUMN).to_numpy(dtype="int64")
        if len(rows) and np.any(np.diff(rows) < 0):  # appended batch by batch: in order
            order = np.argsort(rows, kind="stable")
            frame, rows = frame.iloc[order].reset_index(drop=True), rows[order]
        return frame, rows

    def raw(self, k: int) -> tuple[pd.DataFrame, np.ndarray]:
        """Bucket ``k``'s rows as read (:meth:`frame_of`)."""
        return self.frame_of(self.table(k))

    def close(self) -> None:
        """Remove the spill files."""
        self._folder.cleanup()

    def __enter__(self) -> PatientBuckets:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def split_parquet(
    path: str | Path,
    config: Config,
    chunk_rows: int = 50_000,
    *,
    progress: Callable[[str, int, int], None] | None = None,
) -> PatientBuckets:
    """Read a Parquet file in batches of rows and split it into buckets of whole
    patients of about ``chunk_rows`` rows each (see the module's notes).

    Raises
    ------
    DataReadError
        The file cannot be read as Parquet (named, with why), or its columns cannot be
        checked at all: a name repeats, a required column is absent (the validator's
        messages for the table's header, given before any row is read).
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    from ..validation import validate_encounters
    from ._read import _detail, _name

    name = _name(Path(path))
    if chunk_rows < 1:
        raise ValueError(f"chunk_rows must be at least 1; found {chunk_rows!r}")
    try:
        # without pre-buffering: with it, the reader's memory grows with the file
        parquet = pq.ParquetFile(str(path), pre_buffer=False)
        schema, names = _pandas_schema(parquet.schema_arrow)
    except Exception as e:  # pyarrow raises many types for a corrupt file
        raise DataReadError(f"{name} cannot be read as Parquet: {_detail(e)}") from e
    # the header's problems, before any row is read
    validate_encounters(pd.DataFrame({c: pd.Series([], dtype=object) for c in names}), config)
    n_rows = int(parquet.metadata.num_rows)
    n_buckets = max(1, min(MAX_BUCKETS, math.ceil(n_rows / chunk_rows)))
    folder = tempfile.TemporaryDirectory(prefix="engagekit-buckets-")
    buckets = PatientBuckets(name, n_rows, names, n_buckets, folder)
    writers: dict[int, Any] = {}
    options = pa.ipc.IpcWriteOptions(compression="lz4")
    done = 0
    try:
        try:
            batches = parquet.iter_batches(batch_size=BATCH_ROWS, columns=names)
            for batch in batches:
                rows = pa.array(np.arange(done, done + batch.num_rows, dtype="int64"))
                batch = pa.RecordBatch.from_arrays([*batch.columns, rows], schema=schema)
                bucket = bucket_of(batch.column("patient_id").to_pandas(), n_buckets)
                order = np.argsort(bucket, kind="stable")
                sorted_batch = batch.take(pa.array(order))
                bounds = np.searchsorted(bucket[order], np.arange(n_buckets + 1))
                for k in map(int, np.flatnonzero(np.diff(bounds))):
                    if k not in writers:
                        writers[k] = pa.ipc.new_stream(
                            str(buckets._path(k)), schema, options=options
                        )
                    start, stop = bounds[k], bounds[k + 1]
                    writers[k].write_batch(sorted_batch.slice(start, stop - start))
                done += batch.num_rows
                if progress is not None:
                    progress("Reading the table in row groups", done, n_rows)
        except DataReadError:
            raise
        except Exception as e:
            raise DataReadError(
                f"{name} cannot be read as Parquet (after {done:,} rows): {_detail(e)}"
            ) from e
        finally:
            for writer in writers.values():
                writer.close()
    except BaseException:
        buckets.close()
        raise
    return buckets


def validate_buckets(
    buckets: PatientBuckets,
    config: Config,
    *,
    progress: Callable[[str, int, int], None] | None = None,
) -> ValidationReport:
    """Check the whole file against the contract, bucket by bucket: the report
    :func:`engagekit.validate_encounters` gives on the whole table (see the module's
    notes).

    Raises
    ------
    DataReadError
        A required column is missing (the validator's message).
    """
    from ..validation import validate_encounters
    from ..validation._contract import encounter_contract
    from ..validation._parse import as_text
    from ..validation._partitioned import UNIQUE_OVER_TABLE, assembled_report, renumbered

    contract = encounter_contract(config)
    header = validate_encounters(
        pd.DataFrame({c: pd.Series([], dtype=object) for c in buckets.columns}), config
    )
    unique = [f.name for f in contract.fields if f.unique and f.name in buckets.columns]
    parts: list[pd.DataFrame] = []
    for k in range(buckets.n_buckets):
        frame, rows = buckets.raw(k)
        report = validate_encounters(frame, config)
        found = report.problems[report.problems["check"] != UNIQUE_OVER_TABLE]
        parts.append(renumbered(found, rows))
        for name in unique:  # the keys' hashes, 8 bytes a row, on disk
            np.save(buckets._hashes(name, k), _key_hash(as_text(frame[name])))
        if progress is not None:
            progress("Checking the table, bucket by bucket", k + 1, buckets.n_buckets)
    for name in unique:
        repeated = _repeated_hashes(buckets, name)
        if repeated.size:
            parts.append(_repeated_rows_problems(buckets, config, name, repeated))
    return assembled_report(parts, buckets.n_rows, header, contract)


#: Key hashes sorted at a time when looking for repeats: 16 MB.
_HASHES_AT_A_TIME = 2_000_000


def _repeated_hashes(buckets: PatientBuckets, name: str) -> np.ndarray:
    """The key hashes of column ``name`` found more than once in the file: the hashes
    the buckets saved, split by value into parts of about 2 million, each part sorted
    on its own (so the memory does not grow with the file)."""
    n_parts = max(1, math.ceil(buckets.n_rows / _HASHES_AT_A_TIME))
    found = []
    for part in range(n_parts):
        values = np.concatenate(
            [
                h[h % np.uint64(n_parts) == part]
                for k in range(buckets.n_buckets)
                if (h := np.load(buckets._hashes(name, k))).size
            ]
            or [np.array([], dtype="uint64")]
        )
        values.sort()
        found.append(np.unique(values[1:][values[1:] == values[:-1]]))
    return np.concatenate(found)


def _repeated_rows_problems(
    buckets: PatientBuckets, config: Config, name: str, repeated: np.ndarray
) -> pd.DataFrame:
    """The problems of column ``name`` being unique over the table, found on the rows
    whose key hashes to one of ``repeated`` (every bucket read again), checked together
    in the file's order: a hash shared by two different keys only adds rows."""
    from ..validation import validate_encounters
    from ..validation._parse import as_text
    from ..validation._partitioned import UNIQUE_OVER_TABLE, renumbered

    gathered, numbers = [], []
    for k in range(buckets.n_buckets):
        frame, rows = buckets.raw(k)
        hit = np.isin(_key_hash(as_text(frame[name])), repeated)
        if hit.any():
            gathered.append(frame[hit])
            numbers.append(rows[hit])
    rows = np.concatenate(numbers)
    order = np.argsort(rows, kind="stable")
    candidates = pd.concat(gathered, ignore_index=True).iloc[order].reset_index(drop=True)
    report = validate_encounters(candidates, config)
    found = report.problems[
        (report.problems["check"] == UNIQUE_OVER_TABLE) & (report.problems["column"] == name)
    ]
    return renumbered(found, rows[order])


@dataclass
class EncounterChunks:
    """The typed encounters of a table split into buckets of whole patients, one chunk
    per bucket, for :func:`engagekit.io.write_scores`.

    ``unknown`` names the covariates a model uses that the table lacks: each chunk gets
    them as empty columns, as :func:`engagekit.cli` does for a table read whole.
    """

    buckets: PatientBuckets
    config: Config
    unknown: tuple[str, ...] = ()

    def __len__(self) -> int:
        return self.buckets.n_buckets

    @property
    def n_rows(self) -> int:
        return self.buckets.n_rows

    @property
    def columns(self) -> list[str]:
        return [*self.buckets.columns, *(c for c in self.unknown if c not in self.buckets.columns)]

    def chunk(self, k: int) -> pd.DataFrame:
        """Bucket ``k``'s encounters, typed (:func:`engagekit.coerce_encounters`)."""
        return self.chunk_with_rows(k)[0]

    def chunk_with_rows(self, k: int) -> tuple[pd.DataFrame, np.ndarray]:
        """Bucket ``k``'s typed encounters and their 0-based positions in the file."""

        frame, rows = self.buckets.raw(k)
        return self.typed(frame), rows

    def typed(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Rows as read, typed as a chunk's (the unknown covariates added, empty)."""
        from ..validation import coerce_encounters

        typed = coerce_encounters(frame, self.config)
        for name in self.unknown:
            typed[name] = pd.Series(pd.NA, index=typed.index, dtype="string")
        return typed

    def __iter__(self) -> Iterator[pd.DataFrame]:
        for k in range(len(self)):
            yield self.chunk(k)


def sample_chunks(
    chunks: EncounterChunks,
    *,
    sample_above: int,
    sample_rows: int,
    validation_rows: int,
    seed: int = 0,
    progress: Callable[[str, int, int], None] | None = None,
) -> tuple[pd.DataFrame, Any]:
    """:func:`engagekit.models.sample_for_training` of a streamed table: the same
    training sample and held-out patients, in the file's order, with only them in
    memory (a first pass counts the rows outside the sample, a second gathers).

    Returns ``(the whole table, None)`` when the table is not sampled: a table at most
    ``sample_above`` rows long is read into memory whole, as it would be without
    streaming.
    """
    import pyarrow as pa

    from ..models._sample import HeldOutSample, _check_size, patient_sample_mask
    from ..validation._parse import as_text

    _check_size("sample_above", sample_above, minimum=0)
    _check_size("sample_rows", sample_rows, minimum=1)
    _check_size("validation_rows", validation_rows, minimum=1)
    n_rows = chunks.n_rows
    sampled = not (sample_above == 0 or n_rows <= sample_above or sample_rows >= n_rows)
    share = sample_rows / n_rows
    n_outside, n_patients = 0, 0
    if sampled:
        for k in range(len(chunks)):
            table = chunks.buckets.table(k)
            if table is None:
                continue
            # the ids as coerce_encounters types them
            ids = as_text(table.column("patient_id").to_pandas()).astype(object).to_numpy()
            n_outside += int((~patient_sample_mask(ids, share, seed, salt="sample")).sum())
            n_patients += int(pd.unique(ids).size)  # a patient is in one bucket only
            if progress is not None:
                progress("Drawing the patients of the sample", k + 1, len(chunks))
    validation_share = min(1.0, validation_rows / max(1, n_outside))
    # the rows kept stay in Arrow until they are all in: typed in one go at the end, a
    # million rows' text is not scattered among the garbage of ten million
    train_parts, held_parts = [], []
    for k in range(len(chunks)):
        table = chunks.buckets.table(k)
        if table is None:
            continue
        if not sampled:
            train_parts.append(table)
            continue
        ids = as_text(table.column("patient_id").to_pandas()).astype(object).to_numpy()
        in_sample = patient_sample_mask(ids, share, seed, salt="sample")
        held = ~in_sample & patient_sample_mask(ids, validation_share, seed, salt="validation")
        train_parts.append(table.filter(pa.array(in_sample)))
        held_parts.append(table.filter(pa.array(held)))
        if progress is not None:
            progress("Gathering the sample", k + 1, len(chunks))
    train = _typed_in_file_order(chunks, train_parts)
    held_out = None
    if sampled:
        held_out = HeldOutSample(
            encounters=None,
            load=_Stored(chunks, held_parts),
            n_encounters=n_rows,
            n_patients=n_patients,
            seed=seed,
            sample_above=sample_above,
        )
    del train_parts, held_parts
    _return_free_memory()  # the training that follows needs it
    return train, held_out


def _return_free_memory() -> None:
    """Give back to the operating system the memory freed by reading the buckets:
    Arrow's allocator and glibc's keep freed memory for reuse, and after ten million rows
    read that is a gigabyte the next step (training) could not otherwise count on."""
    import ctypes
    import ctypes.util
    import gc

    import pyarrow as pa

    gc.collect()
    pa.default_memory_pool().release_unused()
    libc = ctypes.util.find_library("c")
    if libc is not None:
        trim = getattr(ctypes.CDLL(libc), "malloc_trim", None)  # glibc only
        if trim is not None:
            trim(0)


def _typed_in_file_order(chunks: EncounterChunks, parts: list[pa.Table]) -> pd.DataFrame:
    import pyarrow as pa

    table = pa.concat_tables(parts) if parts else None
    return chunks.typed(chunks.buckets.frame_of(table)[0])


class _Stored:
    """Rows of a streamed table kept in a private temporary folder (removed with this
    object) as Arrow, typed at each call, so that they take no memory until then."""

    def __init__(self, chunks: EncounterChunks, parts: list[pa.Table]) -> None:
        import shutil
        import weakref

        import pyarrow as pa

        folder = tempfile.mkdtemp(prefix="engagekit-held-out-")
        # removed when this object goes, or at the latest when Python exits
        weakref.finalize(self, shutil.rmtree, folder, ignore_errors=True)
        self.path = Path(folder) / "held_out.arrow"
        self.chunks = EncounterChunks(chunks.buckets, chunks.config, chunks.unknown)
        self.empty = not parts
        if parts:
            table = pa.concat_tables(parts)
            with pa.ipc.new_file(str(self.path), table.schema) as writer:
                writer.write_table(table)

    def __call__(self) -> pd.DataFrame:
        import pyarrow as pa

        table = None
        if not self.empty:
            with pa.memory_map(str(self.path)) as source:
                table = pa.ipc.open_file(source).read_all()
        return self.chunks.typed(self.chunks.buckets.frame_of(table)[0])
