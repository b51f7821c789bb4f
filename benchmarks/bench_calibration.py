"""Does the final model's calibration check help or hurt on new patients?

For each replicate ``r`` a service of ``--patients`` patients is simulated (seed
``seed + r``) and a model trained on it (``train_model``, 5-fold CV, no bootstrap); then
a new sample of ``--test-patients`` patients of the same service (seed ``10_000 + seed +
r``) measures the calibration intercept and slope of

- the model as ``train_model`` gives it: held-out check by patient, confirmed by the
  cross-validation's out-of-fold margins (engagekit's rule);
- the same final model with the held-out correction alone (what ``fit_model`` gives, the
  rule before the confirmation);
- the same model with no correction at all.

Counted: the final check's status, and how far each model's slope and intercept are
from 1 and 0 on the new patients (the truth of the same service).

::

    python benchmarks/bench_calibration.py [--replicates 30] [--patients 8000]

Writes ``benchmarks/results/calibration.json``.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import time
from collections import Counter

import numpy as np
import statsmodels.api as sm

from _common import write_result
from engagekit import simulate_encounters
from engagekit.models import LogitRecalibration, fit_model, labelled_rows, train_model


def _calibration(model, encounters, target: str) -> tuple[float, float]:
    labelled = labelled_rows(encounters, target)
    lp = model.logit(encounters)[labelled]
    y = encounters.loc[labelled, target].to_numpy(dtype="float64")
    family = sm.families.Binomial()
    intercept = sm.GLM(y, np.ones_like(y), offset=lp, family=family).fit().params[0]
    slope = sm.GLM(y, sm.add_constant(lp), family=family).fit().params[1]
    return float(intercept), float(slope)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replicates", type=int, default=30)
    parser.add_argument("--patients", type=int, default=8000)
    parser.add_argument("--test-patients", type=int, default=20000)
    parser.add_argument("--target", default="attended_next")
    parser.add_argument("--kind", default="logistic")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    start = time.perf_counter()
    statuses: Counter[str] = Counter()
    rows = []
    for r in range(args.replicates):
        seed = args.seed + r
        encounters = simulate_encounters(args.patients, seed=seed).encounters
        new = simulate_encounters(args.test_patients, seed=10_000 + seed).encounters
        trained = train_model(encounters, args.target, args.kind, n_boot=0, seed=seed)
        held_out_only = fit_model(encounters, args.target, args.kind, seed=seed)
        uncorrected = dataclasses.replace(held_out_only, recalibration=LogitRecalibration())
        status = trained.model.recalibration.status
        statuses[status] += 1
        row = {
            "seed": seed,
            "status": status,
            "held_out_applied": held_out_only.recalibration.applied,
            "engagekit": _calibration(trained.model, new, args.target),
            "held_out_only": _calibration(held_out_only, new, args.target),
            "uncorrected": _calibration(uncorrected, new, args.target),
        }
        rows.append(row)
        print(r, status, {k: row[k] for k in ("engagekit", "held_out_only")}, flush=True)
    summary = {}
    for rule in ("engagekit", "held_out_only", "uncorrected"):
        slopes = [row[rule][1] for row in rows]
        intercepts = [row[rule][0] for row in rows]
        summary[rule] = {
            "median_abs_slope_error": round(statistics.median(abs(b - 1) for b in slopes), 4),
            "max_abs_slope_error": round(max(abs(b - 1) for b in slopes), 4),
            "median_abs_intercept": round(statistics.median(abs(a) for a in intercepts), 4),
            "max_abs_intercept": round(max(abs(a) for a in intercepts), 4),
        }
    path = write_result(
        f"calibration_{args.kind}_{args.target}",
        {
            "settings": vars(args),
            "final_check": dict(statuses),
            "held_out_corrections": sum(row["held_out_applied"] for row in rows),
            "summary": summary,
            "replicates": rows,
            "seconds": round(time.perf_counter() - start, 1),
        },
    )
    print(summary)
    print(f"written to {path}")


if __name__ == "__main__":
    main()
