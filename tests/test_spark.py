"""Scoring on Spark gives the local engine's numbers, flags and reasons.

Spark needs Java. Where none is found (and ``ENGAGEKIT_REQUIRE_SPARK`` is not set) the
Spark tests are skipped with one line; ``.ci/run`` installs Java 17, sets
``PYSPARK_PYTHON`` to the venv's interpreter and sets ``ENGAGEKIT_REQUIRE_SPARK=1``, so
in CI a missing Java is a failure, not a skip. The tests of the model's bytes need no
Spark.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from _cli import run
from engagekit import load_config, simulate_encounters
from engagekit.errors import TamperedModelError
from engagekit.io import load_model_directory
from engagekit.scoring import score_encounters
from engagekit.spark import _executor_model, model_files, spark_schema
from engagekit.validation import coerce_encounters

REQUIRE = "ENGAGEKIT_REQUIRE_SPARK"


def _java() -> str | None:
    home = os.environ.get("JAVA_HOME")
    if home and Path(home, "bin", "java").is_file():
        return str(Path(home, "bin", "java"))
    return shutil.which("java")


def _missing_spark() -> str | None:
    """Why Spark cannot run here, or None."""
    try:
        import pyspark  # noqa: F401
    except ImportError:
        return "PySpark is not installed (pip install 'engagekit[spark]', in the test extra)"
    if _java() is None:
        return (
            "no Java for Spark (install Java 17, e.g. Debian's openjdk-17-jre-headless; "
            f".ci/run installs it and sets {REQUIRE}=1, so CI never skips these tests)"
        )
    return None


@pytest.fixture(scope="module")
def spark():
    """A local Spark session of two cores, for this module."""
    why = _missing_spark()
    if why is not None:
        if os.environ.get(REQUIRE):
            pytest.fail(f"{REQUIRE} is set, but {why}", pytrace=False)
        pytest.skip(why)
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    from pyspark.sql import SparkSession

    session = (
        SparkSession.builder.master("local[2]")
        .appName("engagekit-tests")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "2")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    """A logistic model of re-attendance (top 10% flagged) and a gbm of adherence."""
    tmp = tmp_path_factory.mktemp("spark_models")
    made = run("simulate", "--patients", "400", "--seed", "1", "--out", "train.csv", cwd=tmp)
    assert made.returncode == 0, made.stderr
    out = {}
    for kind, target in (("logistic", "attended_next"), ("gbm", "adherent")):
        trained = run("train", "train.csv", "--target", target, "--model", kind, "--folds", "3",
                      "--bootstrap", "0", "--out", kind, cwd=tmp)  # fmt: skip
        assert trained.returncode == 0, trained.stderr
        out[kind] = tmp / kind
    return out


@pytest.fixture(scope="module")
def encounters() -> pd.DataFrame:
    """Other patients than the training ones, typed as the local engine types them."""
    return coerce_encounters(simulate_encounters(250, seed=2).encounters, load_config())


def _local(model_dir: Path, encounters: pd.DataFrame) -> pd.DataFrame:
    saved = load_model_directory(model_dir)
    config = saved.manifest.training_config("the model")
    return score_encounters(saved.model, encounters, config, saved.manifest.flag_rule)


@pytest.mark.parametrize("kind", ["logistic", "gbm"])
def test_spark_scores_equal_the_local_engines(spark, models, encounters, kind):
    from engagekit.spark import score

    local = _local(models[kind], encounters)
    remote = score(spark.createDataFrame(encounters), models[kind], buckets=3).toPandas()
    assert list(remote.columns) == list(local.columns)
    assert len(remote) == len(local) and remote["encounter_id"].is_unique
    # (toPandas builds the frame column by column: one copy defragments it)
    remote = remote.copy().set_index("encounter_id").loc[local["encounter_id"]].reset_index()
    numbers = [c for c in local.columns if local[c].dtype.kind == "f"]
    assert any(c.startswith("shap_") for c in numbers)
    for column in numbers:
        np.testing.assert_allclose(
            remote[column].to_numpy(dtype=float), local[column].to_numpy(dtype=float),
            rtol=0, atol=1e-12, err_msg=column,
        )  # fmt: skip
    for column in (c for c in local.columns if c not in numbers):
        # flags, reasons, identifiers and context: identical
        assert remote[column].astype(object).where(remote[column].notna(), None).tolist() == (
            local[column].astype(object).where(local[column].notna(), None).tolist()
        ), column
    assert set(local["flag"]) == {"high", "medium", "low"}  # the flags compared are real
    assert (local["reasons"] != "").any()


def test_the_number_of_buckets_does_not_change_the_scores(spark, models, encounters):
    from engagekit.spark import score

    frame = spark.createDataFrame(encounters)
    one, seven = (
        score(frame, models["logistic"], buckets=n).toPandas().sort_values("encounter_id")
        for n in (1, 7)
    )
    pd.testing.assert_frame_equal(one.reset_index(drop=True), seven.reset_index(drop=True))


def test_the_executor_checks_the_models_bytes_before_loading_them(models):
    files = model_files(models["logistic"])
    assert set(files) == {"integrity.json", "manifest.json", "model.skops", "metrics.json",
                          "model_card.md"}  # fmt: skip
    assert _executor_model(files).model.target == "attended_next"
    tampered = dict(files)
    tampered["model.skops"] = files["model.skops"][:-1] + bytes([files["model.skops"][-1] ^ 1])
    with pytest.raises(TamperedModelError, match=r"model\.skops"):
        _executor_model(tampered)


def test_the_schema_types_text_sessions_and_numbers():
    assert spark_schema(["patient_id", "session_number", "risk", "reasons"]) == (
        "`patient_id` string, `session_number` bigint, `risk` double, `reasons` string"
    )


# --------------------------------------------------------------------------- validation
def _broken_tables() -> list[tuple[str, pd.DataFrame]]:
    """The rule cases of ``test_validation`` (one broken cell each), duplicate keys
    within and across patients, several problems at once, and a valid table."""
    from _factories import valid_encounter_rows, with_cell
    from test_validation import RULE_CASES

    tables = []
    for case in RULE_CASES:  # pytest.param(row, column, value, expected, rule, id=...)
        row, column, value = case.values[:3]
        tables.append((case.id, with_cell(valid_encounter_rows(), row, column, value)))
    several = valid_encounter_rows(4, 3)
    breaks = [
        (4, "treatment", "yoga"),
        (4, "empathy", "9"),
        (7, "session_number", "0"),
        (9, "session_number", "2"),
        (11, "encounter_id", "E001-1"),  # patient 4's rows: another bucket, perhaps
        (12, "encounter_id", "E001-1"),
    ]
    for row, column, value in breaks:
        several = with_cell(several, row, column, value)
    tables.append(("several, duplicates across patients", several))
    tables.append(("valid", valid_encounter_rows(5, 4, seed=3)))
    return tables


def _missing_as_none(problems: pd.DataFrame) -> pd.DataFrame:
    """The table with every missing cell None (pandas may hold one as NaN or None)."""
    out = problems.astype(object)
    return out.where(out.notna(), None)


def _stacked(tables: list[tuple[str, pd.DataFrame]]) -> pd.DataFrame:
    """The tables one below the other, each table's well-formed patient and encounter
    ids made its own (a broken id, missing, blank or repeated, stays as it is)."""
    parts = []
    for k, (_name, table) in enumerate(tables):
        table = table.copy()
        for column in ("patient_id", "encounter_id"):
            text = table[column].astype(object)
            normal = text.notna() & text.astype(str).str.fullmatch(r"[PE]\d{3}(-\d+)?")
            table.loc[normal, column] = f"T{k}-" + text[normal].astype(str)
        parts.append(table)
    return pd.concat(parts, ignore_index=True)


def test_spark_validation_finds_what_local_validation_finds(spark, tmp_path):
    """The broken tables, written as CSV and read by each engine as a user's file is:
    the same problem table (row numbers, encounter, column, value, check, rule, detail),
    the same row count and bad rows. The rule cases are checked all at once, stacked
    into one table (one Spark job each costs about a second), and the table with several
    problems and the valid one on their own."""
    from engagekit import read_encounters, validate_encounters
    from engagekit.spark import validate

    cases = _broken_tables()
    assert len(cases) > 30
    corpus = _stacked(cases[:-2])
    tables = [("the rule cases, stacked", corpus), *cases[-2:]]
    for name, table in tables:
        path = tmp_path / ("corpus.csv" if table is corpus else "broken.csv")
        table.to_csv(path, index=False)
        local = validate_encounters(read_encounters(path))
        remote = validate(spark.read.csv(str(path), header=True), buckets=2)
        pd.testing.assert_frame_equal(
            _missing_as_none(remote.problems), _missing_as_none(local.problems), obj=name
        )
        assert (remote.n_rows, remote.bad_rows.tolist()) == (
            local.n_rows, local.bad_rows.tolist()
        ), name  # fmt: skip
        assert local.valid == (name == "valid"), name  # each broken table found broken
    # every rule case's broken cell is among the stacked table's problems
    stacked = validate_encounters(read_encounters(tmp_path / "corpus.csv"))
    assert len(stacked.bad_rows) >= len(cases) - 2


# --------------------------------------------------------------------------- the commands
def test_engagekit_score_with_the_spark_engine_writes_the_local_scores(spark, models, tmp_path):
    """``engagekit score --engine spark`` (reusing this module's session) against
    ``engagekit score`` on the same CSV: the same rows, numbers, flags and reasons."""
    simulate_encounters(250, seed=4).encounters.to_csv(tmp_path / "new.csv", index=False)
    model = models["gbm"]
    local = run("score", model, "new.csv", "--out", "local.parquet", cwd=tmp_path)
    remote = run("score", model, "new.csv", "--out", "spark_scores", "--engine", "spark",
                 cwd=tmp_path)  # fmt: skip
    assert local.returncode == 0 and remote.returncode == 0, local.stderr + remote.stderr
    assert "encounters scored and explained on Spark" in " ".join(remote.stdout.split())
    here = pd.read_parquet(tmp_path / "local.parquet")
    there = pd.read_parquet(tmp_path / "spark_scores").copy()
    there = there.set_index("encounter_id").loc[here["encounter_id"]].reset_index()
    assert list(there.columns) == list(here.columns)
    numbers = [c for c in here.columns if here[c].dtype.kind == "f"]
    np.testing.assert_allclose(there[numbers].to_numpy(), here[numbers].to_numpy(), rtol=0,
                               atol=1e-12)  # fmt: skip
    for column in ("flag", "reasons", "patient_id", "treatment"):
        assert there[column].tolist() == here[column].tolist(), column


def test_engagekit_validate_with_the_spark_engine_prints_the_local_report(spark, tmp_path):
    from _factories import valid_encounter_rows, with_cell

    table = with_cell(with_cell(valid_encounter_rows(), 4, "empathy", "9"), 7, "encounter_id",
                      "E001-1")  # fmt: skip
    table.to_csv(tmp_path / "bad.csv", index=False)
    local = run("validate", "bad.csv", "--json", cwd=tmp_path)
    remote = run("validate", "bad.csv", "--json", "--engine", "spark", cwd=tmp_path)
    assert local.returncode == remote.returncode == 1, local.stderr + remote.stderr
    assert remote.stdout == local.stdout
    assert '"row": 7' in remote.stdout  # the duplicate, across patients, is in it


def test_a_parquet_file_written_by_pandas_is_read_with_its_dates(spark, tmp_path):
    """pandas writes dates as nanosecond timestamps, which Spark 4 refuses by default."""
    from _factories import valid_encounter_rows

    table = coerce_encounters(valid_encounter_rows(), load_config())
    assert table["encounter_date"].dtype.kind == "M"
    table.loc[4, "encounter_date"] = pd.Timestamp("2024-01-01")  # earlier than session 1
    table.to_parquet(tmp_path / "typed.parquet", index=False)
    local = run("validate", "typed.parquet", "--json", cwd=tmp_path)
    remote = run("validate", "typed.parquet", "--json", "--engine", "spark", cwd=tmp_path)
    assert local.returncode == remote.returncode == 1, local.stderr + remote.stderr
    assert remote.stdout == local.stdout
    assert '"column": "encounter_date"' in remote.stdout


def test_the_spark_engine_refuses_local_only_options_with_a_message(tmp_path):
    table = simulate_encounters(20, seed=1).encounters
    table.to_csv(tmp_path / "t.csv", index=False)
    result = run("validate", "t.csv", "--engine", "spark", "--quarantine", "q.csv", cwd=tmp_path)
    assert result.returncode == 2
    assert "are for the local engine" in " ".join(result.stderr.split())
