"""Scoring at scale: Spark ``local[2]`` against the local engine, in the same run.

For each size in ``--rows``: simulate that many encounters and write them to Parquet;
train a model of ``attended_next`` (``--kind``, flag rule "top 10%") on the first
100,000 rows (whole patients) and save it as a model directory. Then score the Parquet
file twice, each run ending in a Parquet file of the scores:

- **local**: read the file, set the flag thresholds on every risk, score in chunks of
  whole patients (50,000 rows, as ``engagekit score``) with
  :func:`engagekit.scoring.score_encounters` and write one Parquet file (the database
  that ``engagekit score`` also writes is left out, so both runs do the same work);
- **spark**: :func:`engagekit.spark.score` on ``spark.read.parquet`` of the same file
  in a ``local[2]`` session (``--buckets`` buckets of whole patients), written with
  ``DataFrame.write.parquet``. The session is started before the clock.

**One machine, ten times larger** (``--one-machine 1000000 10000000``): the commands a
user runs, each in a child process whose own peak resident memory is read (``wait4``):
``engagekit validate FILE --json`` and ``engagekit score MODEL FILE --out scores.parquet``
(with its SQLite database) on Parquet files of each size (made of 1M-encounter parts,
each simulated with its own seed and id prefix, written in row groups of 100,000 rows),
which both stream by row groups in buckets of whole patients. Baseline, in the same run:
the same commands on the smallest size written as CSV, which they read whole. The
scores file is read back and its rows counted. On the largest size (above 2M), also
``engagekit train FILE --target attended_next`` with its defaults: a sample of about 1M
encounters, validated on about 1M others.

Reported: wall time (median of ``--repeats``), rows per second, the ratio Spark/local,
the peak resident memory of this process (the driver; Spark's Python workers are other
processes), and the **time per bucket**: the local engine's time on one bucket's share
of the rows, which is what one Spark task spends in engagekit's code. Both outputs are
read back and compared: every probability must agree to 1e-12. ::

    python benchmarks/bench_scale.py [--rows 1000000] [--kind gbm] [--buckets 16] [--repeats 1]
        [--one-machine 1000000 10000000] [--no-spark]

Writes ``benchmarks/results/scale.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import measured_command, peak_rss_mb, summary, timed, write_result
from bench_explain import CONFIG, TARGET, simulate, training_rows
from engagekit.flags import choose_flag_rule
from engagekit.io import load_model_directory
from engagekit.io._model_store import save_model
from engagekit.models import build_manifest, train_model
from engagekit.scoring import encounter_flag_thresholds, patient_chunks, score_encounters
from engagekit.validation import coerce_encounters

CHUNK_ROWS = 50_000


def _model_dir(train: pd.DataFrame, kind: str, folder: Path, seed: int) -> Path:
    result = train_model(train, TARGET, kind, config=CONFIG, n_splits=2, n_boot=0, seed=seed)
    known = train[TARGET].notna().to_numpy()
    rule = choose_flag_rule(
        train.loc[known, TARGET].astype(int).to_numpy(),
        result.model.predict_proba(train[known]),
        "top_percent",
        10,
    )
    manifest = build_manifest(result, CONFIG, train, source="bench_scale").model_copy(
        update={"flag_rule": rule}
    )
    return save_model(result.model, folder / "model", manifest)


def score_locally(data: Path, model_dir: Path, out: Path) -> int:
    saved = load_model_directory(model_dir)
    encounters = coerce_encounters(pd.read_parquet(data), CONFIG)
    plan = patient_chunks(encounters["patient_id"].to_numpy(), CHUNK_ROWS)
    risk = np.empty(len(encounters))
    for rows in plan:
        risk[rows] = 1.0 - saved.model.predict_proba(encounters.iloc[rows])
    applied = encounter_flag_thresholds(saved.manifest.flag_rule, risk, encounters)
    writer = None
    try:
        for rows in plan:
            frame = score_encounters(saved.model, encounters.iloc[rows], CONFIG, applied, n_jobs=-1)
            table = pa.Table.from_pandas(frame, preserve_index=False)
            writer = writer or pq.ParquetWriter(out, table.schema)
            writer.write_table(table)
    finally:
        if writer is not None:
            writer.close()
    return len(encounters)


def spark_session():
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    from pyspark.sql import SparkSession

    session = (
        SparkSession.builder.master("local[2]")
        .appName("engagekit-bench-scale")
        .config("spark.ui.enabled", "false")
        .config("spark.driver.memory", "4g")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    return session


def score_on_spark(session, data: Path, model_dir: Path, out: Path, buckets: int) -> None:
    from engagekit.spark import score

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        score(session.read.parquet(str(data)), model_dir, buckets=buckets).write.mode(
            "overwrite"
        ).parquet(str(out))


def one_size(rows: int, kind: str, buckets: int, repeats: int, seed: int, session) -> dict:
    folder = Path(tempfile.mkdtemp(prefix="engagekit-scale-"))
    try:
        encounters = simulate(rows, seed)
        data = folder / "encounters.parquet"
        # dates as Parquet dates: Spark reads no nanosecond timestamps (pandas' default)
        encounters.assign(encounter_date=encounters["encounter_date"].dt.date).to_parquet(
            data, index=False
        )
        model_dir = _model_dir(training_rows(encounters), kind, folder, seed)
        local_times, _ = timed(
            lambda: score_locally(data, model_dir, folder / "local.parquet"), repeats
        )
        local_rss = peak_rss_mb()
        spark_times, _ = timed(
            lambda: score_on_spark(session, data, model_dir, folder / "spark", buckets), repeats
        )
        # one bucket's share of the rows, scored by engagekit's function alone
        share = encounters[encounters["patient_id"].isin(
            encounters["patient_id"].drop_duplicates().iloc[:: buckets]
        )]  # fmt: skip
        saved = load_model_directory(model_dir)
        typed = coerce_encounters(share, CONFIG)
        applied = encounter_flag_thresholds(
            saved.manifest.flag_rule, 1.0 - saved.model.predict_proba(typed), typed
        )
        start = time.perf_counter()
        score_encounters(saved.model, typed, CONFIG, applied, n_jobs=1)
        bucket_s = time.perf_counter() - start
        local = pd.read_parquet(folder / "local.parquet", columns=["encounter_id", f"p_{TARGET}"])
        spark = pd.read_parquet(folder / "spark", columns=["encounter_id", f"p_{TARGET}"])
        joined = local.merge(spark, on="encounter_id", suffixes=("_local", "_spark"))
        gap = float(np.abs(joined[f"p_{TARGET}_local"] - joined[f"p_{TARGET}_spark"]).max())
        local_s, spark_s = float(np.median(local_times)), float(np.median(spark_times))
        result = {
            "rows": rows,
            "kind": kind,
            "buckets": buckets,
            "local": {**summary(local_times), "rows_per_s": round(rows / local_s)},
            "spark_local_2": {**summary(spark_times), "rows_per_s": round(rows / spark_s)},
            "ratio_spark_to_local": round(spark_s / local_s, 3),
            "bucket_rows": len(share),
            "bucket_engagekit_s_one_thread": round(bucket_s, 3),
            "peak_rss_mb_driver_after_local": local_rss,
            "peak_rss_mb_driver": peak_rss_mb(),
            "rows_compared": len(joined),
            "max_abs_probability_gap": gap,
            "same_rows": len(joined) == rows == len(spark),
        }
        print(result, flush=True)
        return result
    finally:
        shutil.rmtree(folder, ignore_errors=True)


PART_ROWS = 1_000_000
ROW_GROUP_ROWS = 100_000


def _parquet_of(rows: int, seed: int, path: Path) -> pd.DataFrame:
    """Write ``rows`` encounters to ``path`` in parts of 1M (whole files' worth of new
    patients each: its own seed and id prefix); the first part is returned."""
    first, writer = None, None
    try:
        for k in range(-(-rows // PART_ROWS)):
            part = simulate(min(PART_ROWS, rows - k * PART_ROWS), seed + k)
            for column in ("patient_id", "encounter_id"):
                part[column] = f"S{k}-" + part[column].astype(str)
            part["encounter_date"] = part["encounter_date"].dt.date
            table = pa.Table.from_pandas(part, preserve_index=False)
            writer = writer or pq.ParquetWriter(path, table.schema)
            writer.write_table(table, row_group_size=ROW_GROUP_ROWS)
            first = part if first is None else first
    finally:
        if writer is not None:
            writer.close()
    assert first is not None
    return first


def one_machine(sizes: list[int], kind: str, seed: int) -> dict:
    """``engagekit validate`` and ``engagekit score`` on Parquet files of ``sizes``
    encounters, and on the smallest as CSV (read whole): time and peak memory."""
    folder = Path(tempfile.mkdtemp(prefix="engagekit-one-machine-"))
    exe = [sys.executable, "-m", "engagekit"]
    try:
        first = None
        runs = []
        for rows in sorted(sizes):
            data = folder / f"encounters_{rows}.parquet"
            part = _parquet_of(rows, seed, data)
            if first is None:
                first = part
                model_dir = _model_dir(training_rows(first), kind, folder, seed)
                csv = folder / f"encounters_{rows}.csv"
                first.to_csv(csv, index=False)
                baseline = {
                    "rows": rows,
                    "validate": measured_command([*exe, "validate", str(csv), "--json"]),
                    "score": measured_command([*exe, "score", str(model_dir), str(csv),
                                               "--out", str(folder / "csv_scores.parquet")]),
                }  # fmt: skip
                print({"whole_table_csv": baseline}, flush=True)
            out = folder / f"scores_{rows}.parquet"
            result = {
                "rows": rows,
                "file_mb": round(data.stat().st_size / 2**20, 1),
                "validate": measured_command([*exe, "validate", str(data), "--json"]),
                "score": measured_command([*exe, "score", str(model_dir), str(data),
                                           "--out", str(out)]),
            }  # fmt: skip
            for step in ("validate", "score"):
                result[step]["rows_per_s"] = round(rows / result[step]["seconds"])
            result["scores_rows"] = pq.ParquetFile(out).metadata.num_rows if out.exists() else 0
            if rows == max(sizes) and rows > 2_000_000:  # above train's --sample-above
                result["train"] = measured_command([*exe, "train", str(data), "--target", TARGET,
                                                    "--out", str(folder / "trained")])  # fmt: skip
                metrics = folder / "trained" / "metrics.json"
                if metrics.exists():
                    recorded = json.loads(metrics.read_text())
                    result["train"]["sample"] = recorded["training_steps"].get("sample")
                    outside = recorded.get("outside_sample_validation") or {}
                    result["train"]["outside_sample_auroc"] = outside.get("auroc")
                    result["train"]["cv_auroc"] = recorded.get("auroc")
            print(result, flush=True)
            runs.append(result)
            for path in (data, out, out.with_suffix(".sqlite")):
                path.unlink(missing_ok=True)
        smallest, largest = runs[0], runs[-1]
        return {
            "kind": kind,
            "row_group_rows": ROW_GROUP_ROWS,
            "streamed_parquet": runs,
            "whole_table_csv": baseline,
            "peak_ratio_largest_to_smallest": {
                step: round(largest[step]["peak_rss_mb"] / smallest[step]["peak_rss_mb"], 3)
                for step in ("validate", "score")
            },
            "all_rows_scored": all(r["scores_rows"] == r["rows"] for r in runs),
        }
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000])
    parser.add_argument("--kind", choices=["logistic", "gbm"], default="gbm")
    parser.add_argument("--buckets", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--one-machine", type=int, nargs="*", default=[1_000_000, 10_000_000])
    parser.add_argument("--no-spark", action="store_true")
    args = parser.parse_args()
    sizes = []
    if not args.no_spark:
        session = spark_session()
        try:
            sizes = [
                one_size(n, args.kind, args.buckets, args.repeats, args.seed, session)
                for n in args.rows
            ]
        finally:
            session.stop()
    machine = one_machine(args.one_machine, args.kind, args.seed) if args.one_machine else None
    path = write_result(
        "scale",
        {
            "command": "python benchmarks/bench_scale.py " + " ".join(sys.argv[1:]),
            "sizes": sizes,
            "one_machine": machine,
        },
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
