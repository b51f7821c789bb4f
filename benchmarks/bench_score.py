"""Bulk scoring end to end: ``write_scores`` on 100,000 and 1,000,000 encounters.

For each size in ``--rows``, simulate that many encounters, fit each model kind for
``attended_next`` on the first 100,000 (whole patients), choose its flag rule (top 10%)
and time :func:`engagekit.io._scores.write_scores`: features, calibrated probabilities,
the SHAP value of every feature of every row, grouped sums, flags, reasons in plain words,
one SQLite transaction per 50,000-row chunk and a Parquet file. Then read the file back
and check local accuracy on **every row**: ``shap_base_value + sum(shap_<feature>)``
against ``logit(p_attended_next)`` (the largest gap is reported; it must be < 1e-6).

Baseline, measured in the same run: a default ``HistGradientBoostingClassifier()`` on the
same features, explained with ``shap.TreeExplainer(...).shap_values(X)`` on a ready-made
feature matrix, timed on a 50,000-row sample and scaled linearly to the size (shap's
explainer is linear in rows; the full 1M took 228 s in ``bench_explain.py``). It
explains only: no probabilities, flags, reasons or database. ::

    python benchmarks/bench_score.py [--rows 100000 1000000] [--repeats 1]

Writes ``benchmarks/results/score.json``.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import peak_rss_mb, summary, timed, write_result
from bench_explain import CONFIG, TARGET, baseline, simulate, training_rows
from engagekit.flags import choose_flag_rule
from engagekit.io._scores import write_scores
from engagekit.models import build_manifest, fit_model, train_model

TARGET_S_PER_MILLION = 60.0


def local_accuracy_gap(path: Path) -> float:
    """Largest |base + sum of SHAP values - logit(p)| over every row of the file."""
    table = pd.read_parquet(path)
    total = table.filter(regex="^shap_").sum(axis=1).to_numpy()
    p = table[f"p_{TARGET}"].to_numpy()
    return float(np.abs(total - (np.log(p) - np.log1p(-p))).max())


def _manifest(train: pd.DataFrame, kind: str):
    """A real manifest of ``kind`` (what write_scores reads: its target, kind, features,
    rule and model hash), trained on a 500-patient sample: only the timed model is fitted
    on the whole training table."""
    patients = train["patient_id"].drop_duplicates().iloc[:500]
    sample = train[train["patient_id"].isin(patients)]
    result = train_model(sample, TARGET, kind, config=CONFIG, n_splits=2, n_boot=0)
    return build_manifest(result, CONFIG, sample, source="bench_score sample")


def one_size(rows: int, repeats: int, seed: int, limit_s: float) -> dict:
    encounters = simulate(rows, seed)
    train = training_rows(encounters)
    known = train[TARGET].notna().to_numpy()
    kinds = {}
    for kind in ("logistic", "gbm"):
        model = fit_model(train, TARGET, kind, CONFIG, seed=seed)
        rule = choose_flag_rule(
            train.loc[known, TARGET].astype(int).to_numpy(),
            model.predict_proba(train[known]),
            "top_percent",
            10,
        )
        manifest = _manifest(train, kind).model_copy(
            update={"model_sha256": f"bench-{kind}", "flag_rule": rule}
        )
        folder = Path(tempfile.mkdtemp(prefix="engagekit-score-"))
        try:

            def job(folder=folder, model=model, manifest=manifest):
                shutil.rmtree(folder, ignore_errors=True)  # each repeat starts from nothing
                return write_scores(
                    model, manifest, encounters, CONFIG, folder / "scores.parquet", n_jobs=-1
                )

            times, run = timed(job, repeats)
            gap = local_accuracy_gap(folder / "scores.parquet")
            median = float(np.median(times))
            kinds[kind] = {
                **summary(times),
                "rows_per_s": round(rows / median),
                "chunks": run.n_chunks,
                "flagged": run.n_flagged,
                "local_accuracy_max_error_every_row": gap,
                "local_accuracy_holds": gap < 1e-6,
                "database_mb": round((folder / "scores.sqlite").stat().st_size / 2**20, 1),
                "parquet_mb": round((folder / "scores.parquet").stat().st_size / 2**20, 1),
                "meets_60_s_per_million": bool(median / rows * 1e6 < TARGET_S_PER_MILLION),
            }
            print(rows, kind, kinds[kind], flush=True)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        design_model = model
    base = baseline(train, encounters, design_model, 1, limit_s, seed)
    for result in kinds.values():
        result["ratio_to_baseline"] = round(result["median_s"] / base["explain_all_rows_s"], 3)
    print(rows, "baseline", base, flush=True)
    return {"rows": rows, "training_rows": len(train), "kinds": kinds, "baseline": base}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument(
        "--baseline-limit", type=float, default=60.0, help="seconds before sampling"
    )
    args = parser.parse_args()
    start = time.perf_counter()
    sizes = [one_size(rows, args.repeats, args.seed, args.baseline_limit) for rows in args.rows]
    payload = {
        "benchmark": "score",
        "target": TARGET,
        "repeats": args.repeats,
        "what_is_timed": "write_scores: features, probabilities, SHAP values of every feature, "
        "grouped sums, flags and reasons, SQLite (one transaction per 50,000-row chunk) "
        "and a Parquet file",
        "targets": {"s_per_million_rows": TARGET_S_PER_MILLION},
        "sizes": sizes,
        "ratio_to_baseline": "engagekit time / baseline time on the same rows (below 1: faster)",
        "total_s": round(time.perf_counter() - start, 1),
        "peak_rss_mb": peak_rss_mb(),
    }
    path = write_result("score", payload)
    print(f"→ {path}")


if __name__ == "__main__":
    main()
