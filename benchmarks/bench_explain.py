"""How fast are predictions scored and explained, next to a plain shap baseline?

Simulate ``--rows`` encounters (default 1,000,000), fit each model kind for
``attended_next`` on the first 100,000 of them (whole patients but the last), then time
:func:`engagekit.explain.explain_predictions` on all rows: features, the model's
calibrated log-odds and the SHAP value of every feature of every row, plus the grouped
(per attribute) sums. The median of ``--repeats`` runs is reported, with the largest
local-accuracy error of the last run.

Baseline, measured in the same run: a default ``HistGradientBoostingClassifier()``
fitted on the same training rows' features and explained with
``shap.TreeExplainer(...).shap_values(X)`` on a ready-made feature matrix of all rows
(shap runs on one core: its C++ code holds the GIL). If that would take more than
``--baseline-limit`` seconds, it is timed on a 50,000-row sample and scaled linearly,
and the result says so. For reference, shap is also timed on the gbm model's own trees
(a 20,000-row sample), which engagekit's explanations reproduce exactly. ::

    python benchmarks/bench_explain.py [--rows 1000000] [--repeats 3] [--n-jobs -1]

Writes ``benchmarks/results/explain.json``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import peak_rss_mb, summary, timed, write_result
from engagekit import simulate_encounters
from engagekit.config import load_config
from engagekit.explain import explain_predictions
from engagekit.models import fit_model
from engagekit.models.kinds._tree_shap import import_shap

ENCOUNTERS_PER_PATIENT = 5.3
TRAINING_ROWS = 100_000
TARGET = "attended_next"
TARGET_S_PER_MILLION = 60.0
TARGET_PER_S = 25_000
SAMPLE_ROWS = 50_000
REFERENCE_ROWS = 20_000
CONFIG = load_config()  # read once: the run is immune to edits of the config file


def simulate(rows: int, seed: int):
    """Exactly ``rows`` simulated encounters (the last patient's history may be cut)."""
    n_patients = int(rows / ENCOUNTERS_PER_PATIENT * 1.05) + 10
    encounters = simulate_encounters(n_patients, seed=seed, config=CONFIG).encounters
    while len(encounters) < rows:  # a rare short draw: top up with more patients
        n_patients = int(n_patients * 1.1) + 10
        encounters = simulate_encounters(n_patients, seed=seed, config=CONFIG).encounters
    return encounters.head(rows).reset_index(drop=True)


def training_rows(encounters):
    """The first ``TRAINING_ROWS`` rows, whole patients only (all rows if fewer)."""
    if len(encounters) <= TRAINING_ROWS:
        return encounters
    head = encounters.head(TRAINING_ROWS)
    return head[head["patient_id"] != head["patient_id"].iloc[-1]]


def time_explanations(model, encounters, repeats: int, n_jobs: int) -> dict[str, Any]:
    times, explanation = timed(
        lambda: explain_predictions(model, encounters, n_jobs=n_jobs), repeats
    )
    median = float(np.median(times))
    out = {
        **summary(times),
        "method": explanation.method,
        "explanations_per_s": round(len(encounters) / median),
        "local_accuracy_max_error": explanation.check_local_accuracy(tol=1e-6),
        # >= 25,000 per second is the stricter of the two targets (60 s per million)
        "meets_target": bool(len(encounters) / median >= TARGET_PER_S),
    }
    if model.kind == "gbm":
        out["trees"] = len(model.estimator._predictors)
    return out


def shap_rate(explainer, X: np.ndarray, repeats: int) -> tuple[dict[str, Any], float]:
    """Timing summary of explaining ``X`` with shap, and rows per second (median)."""
    times, _ = timed(lambda: explainer.shap_values(X, check_additivity=False), repeats)
    return summary(times), len(X) / float(np.median(times))


def baseline(train, encounters, design_model, repeats: int, limit_s: float, seed: int):
    """A default HGB on the same features, explained by shap.TreeExplainer."""
    shap = import_shap()
    known = train[TARGET].notna().to_numpy()
    X_train = design_model.design(train).to_numpy()[known]
    hgb = HistGradientBoostingClassifier(random_state=seed)
    hgb.fit(X_train, train.loc[known, TARGET].astype(int).to_numpy())
    X = design_model.design(encounters).to_numpy()
    explainer = shap.TreeExplainer(hgb)
    _, probe_rate = shap_rate(explainer, X[:5000], 1)
    rows = len(X)
    scaled = rows / probe_rate > limit_s
    if scaled:
        sample = np.random.default_rng(seed).choice(
            rows, size=min(SAMPLE_ROWS, rows), replace=False
        )
        timing, rate = shap_rate(explainer, X[np.sort(sample)], repeats)
    else:
        timing, rate = shap_rate(explainer, X, repeats)
    return {
        "what": "default HistGradientBoostingClassifier explained by "
        "shap.TreeExplainer(model).shap_values(X) on a ready feature matrix",
        "shap_version": shap.__version__,
        "trees": len(hgb._predictors),
        "timed_rows": int(min(SAMPLE_ROWS, rows)) if scaled else rows,
        "scaled_linearly_to_all_rows": scaled,
        "timing_of_timed_rows": timing,
        "explain_all_rows_s": round(rows / rate, 1),
        "explanations_per_s": round(rate),
    }


def reference_same_trees(gbm_model, encounters, seed: int) -> dict[str, Any]:
    """shap on the gbm model's own trees, for the speed of the same exact numbers."""
    shap = import_shap()
    rng = np.random.default_rng(seed)
    rows = np.sort(
        rng.choice(len(encounters), size=min(REFERENCE_ROWS, len(encounters)), replace=False)
    )
    X = gbm_model.design(encounters).to_numpy()[rows]
    timing, rate = shap_rate(shap.TreeExplainer(gbm_model.estimator), X, 1)
    return {"timed_rows": len(rows), "timing": timing, "explanations_per_s": round(rate)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--n-jobs", type=int, default=-1, help="threads for the trees (-1: all)")
    parser.add_argument("--baseline-limit", type=float, default=600.0, help="seconds")
    parser.add_argument("--seed", type=int, default=2026)
    args = parser.parse_args()

    start = time.perf_counter()
    encounters = simulate(args.rows, args.seed)
    train = training_rows(encounters)
    print(f"simulated {len(encounters):,} rows in {time.perf_counter() - start:.0f} s", flush=True)

    models = {
        kind: fit_model(train, TARGET, kind, CONFIG, seed=args.seed) for kind in ("logistic", "gbm")
    }
    kinds = {}
    for kind, model in models.items():
        kinds[kind] = time_explanations(model, encounters, args.repeats, args.n_jobs)
        print(kind, kinds[kind], flush=True)
    base = baseline(train, encounters, models["gbm"], args.repeats, args.baseline_limit, args.seed)
    print("baseline", base, flush=True)
    for result in kinds.values():
        result["ratio_to_baseline"] = round(result["median_s"] / base["explain_all_rows_s"], 3)
    reference = reference_same_trees(models["gbm"], encounters, args.seed)
    print("shap on the gbm's own trees", reference, flush=True)

    payload = {
        "benchmark": "explain",
        "rows": len(encounters),
        "training_rows": len(train),
        "target": TARGET,
        "repeats": args.repeats,
        "n_jobs": args.n_jobs,
        "what_is_timed": "explain_predictions on all rows: features, calibrated log-odds, "
        "SHAP values of every feature and their per-attribute sums",
        "targets": {"s_per_million_rows": TARGET_S_PER_MILLION, "explanations_per_s": TARGET_PER_S},
        "kinds": kinds,
        "baseline": base,
        "ratio_to_baseline": "engagekit time / baseline time on the same rows (below 1: faster)",
        "shap_on_the_gbm_model_trees": reference,
        "peak_rss_mb": peak_rss_mb(),
    }
    path = write_result("explain", payload)
    print(f"→ {path}")


if __name__ == "__main__":
    main()
