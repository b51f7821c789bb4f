"""Score encounters on Apache Spark, with the numbers of the local engine.

Analysts on Spark platforms (Databricks-style workspaces, trusted research environments)
score a national table where it lives. :func:`score` does what ``engagekit score`` does
on one machine, with the same pure function
(:func:`engagekit.scoring.score_encounters`) on each partition:

- **Buckets of whole patients.** A prediction for a session uses the patient's earlier
  sessions, so rows are grouped by a hash of ``patient_id`` into buckets
  (``groupBy(bucket).applyInPandas``): a bucket holds every encounter of each of its
  patients, in the table's order, and scores them exactly as the whole table would.
- **Flags set on the whole table.** A capacity rule ("the top 10%") is a share of all the
  encounters scored: a first pass computes every encounter's risk (cheap next to the
  explanations), the driver sets the thresholds on them
  (:func:`engagekit.scoring.encounter_flag_thresholds`), and the second pass flags each
  bucket with those thresholds.
- **The model travels as verified bytes.** The driver loads the model directory (which
  checks its integrity record) and sends the directory's files, as bytes, to the
  executors in a broadcast variable. Each executor writes them to a private temporary
  directory and loads them with :func:`engagekit.io.load_model_directory`, which checks
  every file's size and SHA-256 (and the signature, with ``ENGAGEKIT_MODEL_KEY``) before
  the model file is read, once per executor process.

The output has the columns of the local engine, in its order
(:func:`engagekit.scoring.score_columns`), with Spark types: text as ``string``,
``session_number`` as ``bigint``, every number as ``double``.

Install PySpark with ``pip install 'engagekit[spark]'`` (Spark needs Java 17 or newer).
"""

from __future__ import annotations

import hashlib
import tempfile
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from .errors import ConfigError, ContractError
from .scoring import CONTEXT_COLUMNS, encounter_flag_thresholds, score_columns, score_encounters

if TYPE_CHECKING:
    from .config import Config
    from .io._model_store import SavedModel
    from .validation import ValidationReport

__all__ = [
    "BUCKET_COLUMN",
    "ROW_COLUMN",
    "model_files",
    "score",
    "spark_schema",
    "validate",
]

#: Helper columns added to the table while it is scored (not in the output).
ROW_COLUMN = "_engagekit_row"
BUCKET_COLUMN = "_engagekit_bucket"
_TEXT = {"encounter_id", "patient_id", "treatment", "practitioner_id", "encounter_date"}
_TEXT |= {"flag", "reasons"}

# the models an executor process has loaded, by the SHA-256 of all their files' bytes
_LOADED: dict[str, SavedModel] = {}
_LOADING = threading.Lock()


@contextmanager
def _quiet() -> Iterator[None]:
    """PySpark 4 warns on every exchange of pandas frames that it "does not yet fully
    support pandas >= 3.0.0"; the frames here are plain columns passed through Arrow,
    checked against the local engine, so the warning is not shown to users."""
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message="PySpark does not yet fully support pandas", category=FutureWarning
        )
        # and PySpark's toPandas still passes pandas' deprecated copy keyword
        warnings.filterwarnings(
            "ignore", message="The copy keyword is deprecated", category=DeprecationWarning
        )
        yield


def _pyspark() -> Any:
    try:
        import pyspark.sql.functions as functions
    except ImportError as e:
        raise ConfigError("scoring on Spark needs PySpark: pip install 'engagekit[spark]'") from e
    return functions


def model_files(model_dir: str | Path) -> dict[str, bytes]:
    """The files of a model directory, as bytes: its integrity record and every file
    the record lists (nothing else), for an executor to check and load.

    Load the directory with :func:`engagekit.io.load_model_directory` first: that checks
    the record on the driver, so a tampered directory is refused before a job starts.
    """
    import json

    directory = Path(model_dir)
    record = (directory / "integrity.json").read_bytes()
    names = sorted(json.loads(record)["files"])
    return {"integrity.json": record, **{n: (directory / n).read_bytes() for n in names}}


def _executor_model(files: dict[str, bytes]) -> SavedModel:
    """The model of ``files``, checked and loaded once in this (executor) process."""
    from .io._model_store import load_model_directory

    # the key covers every byte: a file changed since it was loaded is checked afresh
    hasher = hashlib.sha256()
    for name in sorted(files):
        hasher.update(name.encode() + b"\0" + hashlib.sha256(files[name]).digest())
    digest = hasher.hexdigest()
    with _LOADING:
        if digest not in _LOADED:
            with tempfile.TemporaryDirectory(prefix="engagekit-model-") as folder:
                for name, data in files.items():
                    if Path(name).name != name:  # only plain names, as the record has
                        raise ContractError(f"a model file name {name!r} is not a plain name")
                    (Path(folder) / name).write_bytes(data)
                # checks every file's size and SHA-256 before the model file is read
                _LOADED[digest] = load_model_directory(folder)
        return _LOADED[digest]


def spark_schema(columns: list[str]) -> str:
    """The Spark DDL schema of score columns ``columns``.

    Examples
    --------
    >>> spark_schema(["encounter_id", "session_number", "p_adherent", "flag"])
    '`encounter_id` string, `session_number` bigint, `p_adherent` double, `flag` string'
    """
    types = {name: "string" for name in _TEXT}
    types["session_number"] = "bigint"
    return ", ".join(f"`{name}` {types.get(name, 'double')}" for name in columns)


def _typed(frame: pd.DataFrame, config: Config) -> tuple[pd.DataFrame, Any]:
    """A bucket's rows in the table's order, typed as the local engine types them, and
    their positions in the table."""
    from .validation import coerce_encounters

    ordered = frame.sort_values(ROW_COLUMN, kind="stable")
    typed = coerce_encounters(ordered.drop(columns=[ROW_COLUMN, BUCKET_COLUMN]), config)
    return typed, ordered[ROW_COLUMN].to_numpy()


def score(
    df: Any,
    model_dir: str | Path,
    *,
    config: Config | None = None,
    top_reasons: int = 2,
    buckets: int | None = None,
) -> Any:
    """Predict, explain and flag every encounter of a Spark DataFrame.

    Parameters
    ----------
    df : pyspark.sql.DataFrame
        Valid encounters (every encounter of each patient up to the one scored), with
        the contract's columns, typed or as text.
    model_dir : str or Path
        A model directory written by ``engagekit train``; checked before anything runs,
        and again by each executor before it loads the model.
    config : Config, optional
        The model's own config by default (labels and suggestions for the reasons).
    top_reasons : int, default 2
        Qualities named per flag.
    buckets : int, optional
        Groups of whole patients scored by one Python call each; default four per core
        of the Spark context (``defaultParallelism``). The result does not depend on it.

    Returns
    -------
    pyspark.sql.DataFrame
        The columns of :func:`engagekit.scoring.score_columns` (one row per encounter,
        in no particular order), lazily: write it, or collect it.

    Raises
    ------
    ConfigError
        PySpark is not installed.
    ContractError
        ``df`` lacks ``patient_id`` or a column the model or its flag rule needs.
    UntrustedModelError
        The model directory fails its integrity check.
    """
    functions = _pyspark()
    from .io._model_store import load_model_directory

    loaded = load_model_directory(model_dir)
    if config is None:
        config = loaded.manifest.training_config(f"the model {str(model_dir)!r}")
    model = loaded.model
    missing = [c for c in ("encounter_id", "patient_id") if c not in df.columns]
    if missing:
        raise ContractError(f"the table has no column(s) {missing}, which scoring needs")
    spark = df.sparkSession
    files = spark.sparkContext.broadcast(model_files(model_dir))
    n_buckets = int(buckets or max(1, 4 * spark.sparkContext.defaultParallelism))
    table = df.withColumn(ROW_COLUMN, functions.monotonically_increasing_id()).withColumn(
        BUCKET_COLUMN,
        functions.pmod(functions.xxhash64(functions.col("patient_id")), functions.lit(n_buckets)),
    )
    cfg = config
    per_practitioner = "practitioner_id" in df.columns

    def risks(frame: pd.DataFrame) -> pd.DataFrame:
        typed, rows = _typed(frame, cfg)
        saved = _executor_model(files.value)
        out = pd.DataFrame({ROW_COLUMN: rows, "risk": 1.0 - saved.model.predict_proba(typed)})
        if per_practitioner:
            out["practitioner_id"] = typed["practitioner_id"].to_numpy(dtype=object)
        return out

    risk_schema = f"`{ROW_COLUMN}` bigint, `risk` double" + (
        ", `practitioner_id` string" if per_practitioner else ""
    )
    with _quiet():
        ranked = (
            table.groupBy(BUCKET_COLUMN)
            .applyInPandas(risks, risk_schema)
            .toPandas()
            .sort_values(ROW_COLUMN, kind="stable")
            .reset_index(drop=True)
        )
    applied = encounter_flag_thresholds(
        loaded.manifest.flag_rule, ranked["risk"].to_numpy(dtype=float), ranked
    )
    context = [c for c in CONTEXT_COLUMNS if c in df.columns]
    columns = score_columns(model, encounter_columns=["encounter_id", "patient_id", *context])

    def scores(frame: pd.DataFrame) -> pd.DataFrame:
        saved = _executor_model(files.value)
        out = score_encounters(
            saved.model, _typed(frame, cfg)[0], cfg, applied, top_reasons=top_reasons
        )
        return out[columns]

    with _quiet():
        return table.groupBy(BUCKET_COLUMN).applyInPandas(scores, spark_schema(columns))


# --------------------------------------------------------------------------- validation
def _numbered(df: Any) -> Any:
    """``df`` with ``ROW_COLUMN``: each row's 0-based position in the table as read (a
    file's line order; ``zipWithIndex`` numbers the partitions in order)."""
    from pyspark.sql.types import LongType, StructField, StructType

    schema = StructType([*df.schema.fields, StructField(ROW_COLUMN, LongType(), False)])
    rows = df.rdd.zipWithIndex().map(lambda pair: (*pair[0], pair[1]))
    return df.sparkSession.createDataFrame(rows, schema)


def _patient_buckets(df: Any, n_buckets: int) -> Any:
    functions = _pyspark()
    key = functions.trim(functions.col("patient_id").cast("string"))
    return df.withColumn(
        BUCKET_COLUMN, functions.pmod(functions.xxhash64(key), functions.lit(n_buckets))
    )


_PROBLEM_SCHEMA = (
    "`row` bigint, `encounter_id` string, `column` string, `value` string, `check` string, "
    "`rule` string, `detail` string"
)


def validate(
    df: Any, config: Config | None = None, *, buckets: int | None = None
) -> ValidationReport:
    """Check a Spark DataFrame against the data contract, as
    :func:`engagekit.validate_encounters` checks a pandas one: the same problems, with
    the same data row numbers (the table's order as read), checks, rules and details.

    Each bucket of whole patients is checked by the local validator on the executors, so
    the rules within a patient (one row per session, dates that do not go backwards) see
    all of a patient's rows. A column that must be unique over the whole table is then
    checked across buckets: the keys that occur more than once are found by Spark, and
    only their rows are brought to the driver and checked there.

    Parameters
    ----------
    df : pyspark.sql.DataFrame
        The table as read: text cells (a CSV read without a schema) or typed columns.
    config : Config, optional
        The attributes, scale and treatments; the defaults if omitted.
    buckets : int, optional
        Buckets of whole patients; default four per core of the Spark context.

    Returns
    -------
    ValidationReport
        Its problems table equals the local validator's on the same table.

    Raises
    ------
    DataReadError
        A required column is missing, or a column name repeats.
    """
    from .config import load_config
    from .validation import validate_encounters
    from .validation._contract import encounter_contract
    from .validation._partitioned import UNIQUE_OVER_TABLE, assembled_report, renumbered

    functions = _pyspark()
    config = config if config is not None else load_config()
    contract = encounter_contract(config)
    columns = [str(c) for c in df.columns]
    # the header's own problems (a required column absent, a name repeated) first
    header = validate_encounters(
        pd.DataFrame({c: pd.Series([], dtype=object) for c in columns}), config
    )
    spark = df.sparkSession
    n_buckets = int(buckets or max(1, 4 * spark.sparkContext.defaultParallelism))
    numbered = _numbered(df)
    cfg = config

    def check(frame: pd.DataFrame) -> pd.DataFrame:
        frame = frame.sort_values(ROW_COLUMN, kind="stable")
        rows = frame[ROW_COLUMN].to_numpy(dtype="int64")
        table = frame.drop(columns=[ROW_COLUMN, BUCKET_COLUMN]).reset_index(drop=True)
        report = validate_encounters(table, cfg)
        found = report.problems[report.problems["check"] != UNIQUE_OVER_TABLE]
        return renumbered(found, rows)

    with _quiet():
        problems = [
            _patient_buckets(numbered, n_buckets)
            .groupBy(BUCKET_COLUMN)
            .applyInPandas(check, _PROBLEM_SCHEMA)
            .toPandas()
        ]
        n_rows = numbered.count()
        for field in contract.fields:
            if not field.unique or field.name not in columns:
                continue
            key = functions.trim(functions.col(field.name).cast("string"))
            repeated = (
                numbered.where(functions.col(field.name).isNotNull())
                .groupBy(key.alias("_key"))
                .count()
                .where("count > 1")
                .select("_key")
            )
            rows = (
                numbered.join(repeated, key == functions.col("_key"), "left_semi")
                .toPandas()
                .sort_values(ROW_COLUMN, kind="stable")
            )
            if rows.empty:
                continue
            numbers = rows[ROW_COLUMN].to_numpy(dtype="int64")
            report = validate_encounters(
                rows.drop(columns=[ROW_COLUMN]).reset_index(drop=True), cfg
            )
            found = report.problems[
                (report.problems["check"] == UNIQUE_OVER_TABLE)
                & (report.problems["column"] == field.name)
            ]
            problems.append(renumbered(found, numbers))
    return assembled_report(problems, int(n_rows), header, contract)
