"""The ``--engine spark`` option of ``validate`` and ``score``: a session, and the file."""

from __future__ import annotations

import os
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from ..errors import ArgumentError, ConfigError, DataReadError


class Engine(StrEnum):
    """Where a command does its work."""

    LOCAL = "local"
    SPARK = "spark"


EngineOption = Annotated[
    Engine,
    typer.Option(
        help="local (this process) or spark (Apache Spark: needs engagekit[spark] and Java "
        "17; the master from the usual Spark settings, else --master, else local[*]).",
        case_sensitive=False,
    ),
]
MasterOption = Annotated[
    str | None,
    typer.Option(
        help="Spark master URL for --engine spark (local[4], spark://host:7077, yarn); "
        "default: the usual Spark settings (spark-submit, spark-defaults.conf, "
        "$MASTER), else local[*].",
        show_default=False,
    ),
]

_PARQUET = (".parquet", ".pq")
_CSV = (".csv", ".tsv", ".gz")


def _configured_master() -> bool:
    """Whether the usual Spark settings name a master already."""
    if os.environ.get("MASTER") or "--master" in os.environ.get("PYSPARK_SUBMIT_ARGS", ""):
        return True
    for folder in (os.environ.get("SPARK_CONF_DIR"), os.environ.get("SPARK_HOME")):
        if not folder:
            continue
        for defaults in (
            Path(folder) / "spark-defaults.conf",
            Path(folder, "conf", "spark-defaults.conf"),
        ):
            try:
                lines = defaults.read_text().splitlines()
            except OSError:
                continue
            if any(line.split()[:1] == ["spark.master"] for line in lines):
                return True
    return False


def spark_session(master: str | None) -> Any:
    """The Spark session of a command (an existing one is reused)."""
    try:
        from pyspark.sql import SparkSession
    except ImportError as e:
        raise ConfigError(
            "--engine spark needs PySpark: pip install 'engagekit[spark]' (and Java 17)"
        ) from e
    # the executors' Python: this one, where engagekit is installed
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = SparkSession.builder.appName("engagekit")
    if master is not None:
        builder = builder.master(master)
    elif not _configured_master():
        builder = builder.master("local[*]")
    try:
        session = builder.getOrCreate()
    except Exception as e:  # the JVM's failures come as many types
        raise ConfigError(
            f"Spark could not start ({type(e).__name__}): is Java 17 installed and "
            "JAVA_HOME set, and is the master reachable?"
        ) from e
    session.sparkContext.setLogLevel("ERROR")
    return session


def read_spark_table(session: Any, data: str, *, sep: str | None, encoding: str) -> Any:
    """The CSV or Parquet file (or folder of Parquet files) ``data`` as a Spark DataFrame,
    its CSV cells as text, as the local engine reads them."""
    if "://" in data and not data.startswith(("file://", "hdfs://", "s3a://", "abfss://")):
        raise ArgumentError(
            "--engine spark reads CSV or Parquet files, not a database URL; export the "
            "table to Parquet, or use the local engine"
        )
    path = Path(data)
    suffixes = [s.lower() for s in path.suffixes]
    if "://" not in data:
        if not path.exists():
            raise DataReadError(f"{str(path)!r} does not exist")
        # the JVM has its own working folder: give it the whole path
        data = str(path.resolve())
    try:
        if path.is_dir() or (suffixes and suffixes[-1] in _PARQUET):
            # pandas writes dates as nanosecond timestamps, which Spark refuses by
            # default (PARQUET_TYPE_ILLEGAL); with this it reads them as timestamps
            session.conf.set("spark.sql.legacy.parquet.nanosAsLong", "true")
            return session.read.parquet(data)
        if sep is None:
            from ..io._read import _first_lines, detect_separator

            sep = (
                "\t"
                if ".tsv" in suffixes
                else detect_separator(_first_lines(path, repr(str(path)), encoding))
            )
        return session.read.csv(data, header=True, sep=sep, encoding=encoding)
    except Exception as e:  # AnalysisException and the JVM's errors
        raise DataReadError(
            f"Spark cannot read {str(path)!r} ({type(e).__name__}); give a CSV or Parquet "
            "file or a folder of Parquet files"
        ) from e
