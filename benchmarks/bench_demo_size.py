"""How big must the demo's service be for the cross-treatment analysis to show its method?

``engagekit demo`` plants one deviation (by default active listening matters
``+extra`` log-odds per rating point more for adherence in online CBT) and runs the
analysis a user would run on the simulated service. The demo *shows the method working*
when, in the planted outcome's analysis,

1. the planted attribute is called ``differs``;
2. the closed-tested contrasts name the planted treatment, and it is the named
   treatment with the largest deviation (so the demo's "found" line is right); and
3. at least one *other* attribute gets a decisive verdict: ``equivalent`` (the other
   attributes truly do not differ, so a ``differs`` there would be a false flag, and is
   counted separately).

This study simulates the demo's service exactly as ``engagekit demo --patients N --plant
...`` does (the default config, its missing ratings, seeds ``seed + r``), runs the
demo's analysis (its defaults: multiple imputation when more than 5% of encounters miss
a rating, 20 imputations; the complete-case sensitivity analysis is left out, as it does
not change the verdicts) and counts how often each condition holds, alone and together,
with Wilson 95% intervals. Also counted: a treatment other than the planted one named
for the planted attribute (one treatment's deviation moves every other treatment's
deviation from the mean of the rest by ``-extra / (K - 1)``, which a large study can
detect); how often, when it is, the other treatments' slopes still differ without the
planted one (``rest_differs``: the analysis's ``rest_equal_p`` below alpha, which says
the other names are more than that echo); and any other attribute called ``differs`` (a
false flag).

::

    python benchmarks/bench_demo_size.py [--sizes 6000 8000 10000] [--extra 0.5]
        [--reps 100] [--seed 2026] [--jobs 2]

Writes ``benchmarks/results/demo_size.json``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from joblib import delayed
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import add_scheduler_option, monte_carlo_rate, run_on_backend, write_result
from engagekit import simulate_encounters
from engagekit.cluster import run_replicates
from engagekit.config import load_config
from engagekit.errors import AnalysisError, ContractError
from engagekit.heterogeneity import heterogeneity_analysis
from engagekit.simulation import Heterogeneity

NAME = "demo_size"
TARGET_RATE = 0.90
CONDITIONS = (
    "differs",
    "named",
    "named_largest",
    "other_equivalent",
    "shown",
    "other_treatment_named",
    "rest_differs",
    "other_attribute_differs",
)


def _replicate(n_patients: int, seed: int, plant: Heterogeneity, target: str) -> dict:
    """One simulated demo service, analysed; which of the conditions hold."""
    config = load_config()
    with threadpool_limits(limits=1):
        encounters = simulate_encounters(
            n_patients, seed=seed, config=config, heterogeneity=[plant]
        ).encounters
        try:
            result = heterogeneity_analysis(encounters, target, config, sensitivity=False)
        except (AnalysisError, ContractError) as e:
            return {"failed": f"{type(e).__name__}: {e}"}
    planted = next(a for a in result.attributes if a.attribute == plant.attribute)
    others = [a for a in result.attributes if a.attribute != plant.attribute]
    named = list(planted.deviating)  # sorted by the size of the deviation, largest first
    out = {
        "differs": planted.verdict == "differs",
        "named": plant.treatment in named,
        "named_largest": bool(named) and named[0] == plant.treatment,
        "other_equivalent": any(a.verdict == "equivalent" for a in others),
        "other_treatment_named": bool(set(named) - {plant.treatment}),
        "rest_differs": planted.rest_equal_p is not None
        and planted.rest_equal_p < result.method.alpha,
        "other_attribute_differs": any(a.verdict == "differs" for a in others),
        "others_equivalent": sum(a.verdict == "equivalent" for a in others),
        "encounters": len(encounters),
    }
    out["shown"] = (
        out["differs"] and out["named"] and out["named_largest"] and out["other_equivalent"]
    )
    return out


def study(n_patients: int, extra: float, reps: int, seed: int, jobs: int, target: str) -> dict:
    plant = Heterogeneity("active_listening", "cbt_online", extra, (target,))
    started = time.perf_counter()
    runs = run_replicates(
        (delayed(_replicate)(n_patients, seed + r, plant, target) for r in range(reps)),
        n_jobs=jobs,
    )
    ok = [r for r in runs if "failed" not in r]
    failed = [r["failed"] for r in runs if "failed" in r]
    rates = {c: monte_carlo_rate(sum(r[c] for r in ok), len(ok)) for c in CONDITIONS}
    mean_equivalent = sum(r["others_equivalent"] for r in ok) / len(ok) if ok else None
    return {
        "patients": n_patients,
        "extra_log_odds": extra,
        "reps": reps,
        "succeeded": len(ok),
        "failed": len(failed),
        "failure_examples": sorted(set(failed))[:3],
        "mean_encounters": sum(r["encounters"] for r in ok) / len(ok) if ok else None,
        "rates": rates,
        "mean_other_attributes_equivalent": mean_equivalent,
        "meets_target": rates["shown"]["rate"] is not None
        and rates["shown"]["rate"] >= TARGET_RATE,
        "seconds": round(time.perf_counter() - started, 1),
    }


def main() -> None:
    run_on_backend(_study, _arguments())


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[6000, 8000, 10000])
    parser.add_argument("--extra", type=float, nargs="+", default=[0.5])
    parser.add_argument("--reps", type=int, default=100)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--jobs", type=int, default=2)
    add_scheduler_option(parser)
    parser.add_argument("--target", default="adherent")
    return parser.parse_args()


def _study(args: argparse.Namespace) -> None:
    rows = []
    for extra in args.extra:
        for n in args.sizes:
            row = study(n, extra, args.reps, args.seed, args.jobs, args.target)
            rows.append(row)
            shown = row["rates"]["shown"]
            print(
                f"{n:>6} patients, +{extra:g}: shown {shown['rate']} {shown['ci95']} "
                + " ".join(f"{c}={row['rates'][c]['rate']}" for c in CONDITIONS if c != "shown")
                + f" ({row['seconds']} s)",
                flush=True,
            )
    path = write_result(
        NAME,
        {
            "command": "python benchmarks/bench_demo_size.py " + " ".join(sys.argv[1:]),
            "target_rate": TARGET_RATE,
            "target": args.target,
            "attribute": "active_listening",
            "treatment": "cbt_online",
            "rows": rows,
        },
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
