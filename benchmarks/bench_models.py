"""How close do the models get to the truth, and how long does training take?

1. Discrimination against the Bayes limit: for each size (about 5k, 50k and 1M training
   encounters), simulate a service, fit each model kind on it, and score 5,000 *other*
   simulated patients; compare the held-out AUROC with the oracle AUROC of the
   simulator's true probabilities on the same held-out rows. Also the issue's
   acceptance setting: 20,000 training patients, 5,000 test patients, the default
   (``auto``) model's AUROC ratio and calibration slope for both outcomes.
2. Cost: the whole ``train_model`` (auto selection, 5-fold patient-grouped CV, patient
   bootstrap CIs, final fit) on about 1M encounters, wall time and peak memory, next to
   a baseline measured in the same run: one plain HistGradientBoostingClassifier fit on
   the same feature matrix.

Run each part in its own process (so that its peak memory is its own)::

    python benchmarks/bench_models.py --part discrimination [--sizes 5000 50000 1000000]
    python benchmarks/bench_models.py --part acceptance
    python benchmarks/bench_models.py --part cost [--cost-rows 1000000]

Writes ``benchmarks/results/models_<part>.json``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import roc_auc_score

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import peak_rss_mb, write_result
from engagekit import simulate_encounters
from engagekit.config import load_config
from engagekit.evaluation import point_metrics
from engagekit.models import fit_model, train_model

ENCOUNTERS_PER_PATIENT = 5.3
CONFIG = load_config()  # read once: the run is immune to edits of the config file


def _held_out(model, test, target):
    known = test.encounters[target].notna().to_numpy()
    y = test.encounters.loc[known, target].astype(int).to_numpy()
    p = model.predict_proba(test.encounters)[known]
    oracle = roc_auc_score(y, test.truth[f"p_{target}"].to_numpy()[known])
    metrics = point_metrics(y, p)
    return {
        "auroc": round(metrics["auroc"], 4),
        "oracle_auroc": round(oracle, 4),
        "ratio": round(metrics["auroc"] / oracle, 4),
        "calibration_slope": round(metrics["calibration_slope"], 3),
        "calibration_intercept": round(metrics["calibration_intercept"], 3),
    }


def discrimination(sizes, seed):
    test = simulate_encounters(5000, seed=seed + 1)
    rows = []
    for size in sizes:
        train = simulate_encounters(max(50, int(size / ENCOUNTERS_PER_PATIENT)), seed=seed)
        for target in ("attended_next", "adherent"):
            for kind in ("logistic", "gbm"):
                start = time.perf_counter()
                model = fit_model(train.encounters, target, kind, CONFIG, seed=seed)
                row = {
                    "train_encounters": len(train.encounters),
                    "target": target,
                    "model": kind,
                    **_held_out(model, test, target),
                    "fit_s": round(time.perf_counter() - start, 1),
                }
                rows.append(row)
                print(row, flush=True)
    return rows


def acceptance(seed):
    train = simulate_encounters(20000, seed=seed + 10)
    test = simulate_encounters(5000, seed=seed + 11)
    out = {}
    for target in ("attended_next", "adherent"):
        result = train_model(train.encounters, target, "auto", CONFIG, n_boot=200, seed=seed)
        out[target] = {
            "chosen": result.selection["chosen"],
            "cv_log_loss": result.selection["cv_log_loss"],
            **_held_out(result.model, test, target),
        }
        print(target, out[target], flush=True)
    return out


def cost(rows, seed):
    train = simulate_encounters(int(rows / ENCOUNTERS_PER_PATIENT), seed=seed + 20)
    enc = train.encounters
    # baseline: one default HGB fit on the same features, measured in the same run
    model = fit_model(enc.head(2000), "attended_next", "gbm")
    X = model.design(enc).to_numpy()
    known = enc["attended_next"].notna().to_numpy()
    start = time.perf_counter()
    HistGradientBoostingClassifier(random_state=0).fit(
        X[known], enc.loc[known, "attended_next"].astype(int)
    )
    baseline = time.perf_counter() - start
    start = time.perf_counter()
    result = train_model(enc, "attended_next", "auto", CONFIG, n_splits=5, seed=seed, n_jobs=-1)
    elapsed = time.perf_counter() - start
    out = {
        "encounters": len(enc),
        "patients": int(enc["patient_id"].nunique()),
        "train_model_s": round(elapsed, 1),
        "baseline_one_hgb_fit_s": round(baseline, 1),
        "ratio_to_baseline": round(elapsed / baseline, 1),
        # this part runs in its own process, so the peak is the training's own
        "peak_rss_mb": peak_rss_mb(),
        "chosen": result.selection["chosen"],
        "bootstrap_replicates": result.metrics.n_boot,
        "target_s": 300,
        "target_memory_mb": 4000,
    }
    print(out, flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[5000, 50000, 1000000])
    parser.add_argument("--cost-rows", type=int, default=1_000_000)
    parser.add_argument(
        "--part",
        choices=["discrimination", "acceptance", "cost"],
        required=True,
        help="each part runs in its own process so that its peak memory is its own",
    )
    parser.add_argument("--seed", type=int, default=2026)
    args = parser.parse_args()
    if args.part == "discrimination":
        payload = {"discrimination": discrimination(args.sizes, args.seed)}
    elif args.part == "acceptance":
        payload = {"acceptance_20k_patients": acceptance(args.seed)}
    else:
        payload = {"cost": cost(args.cost_rows, args.seed)}
    path = write_result(f"models_{args.part}", {"benchmark": "models", **payload})
    print(f"→ {path}")


if __name__ == "__main__":
    main()
