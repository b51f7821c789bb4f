"""Does the cross-treatment test hold its level, and does it find a real difference?

1. Type-I error: simulate services with NO attribute × treatment heterogeneity, fit the
   cross-treatment GEE (independence working correlation, patients as clusters) once per
   replicate, and test every attribute's equal-slopes hypothesis with three covariances of
   the same fit: the plain sandwich (``robust``), Mancl–DeRouen (``bias_reduced``) and
   Kauermann–Carroll (``kauermann_carroll``, engagekit's default). The per-test rejection
   rate at 5% pools the attributes' tests; the tests of one replicate share its data, so
   the replicate-level family-wise rate (any Holm-adjusted rejection) is reported too.
   A replicate whose fit or covariance fails (``AnalysisError``, or a covariance that is
   not finite and positive) is counted, never dropped silently. The issue's acceptance
   criterion: the default's per-test rate within 0.035–0.065 at every size.
2. Power: one treatment's effect of one attribute deviates by +0.3 log-odds per rating
   point (active listening in online CBT); the full :func:`heterogeneity_analysis` with
   the config defaults is run on each replicate; how often is that attribute called
   ``differs``, any other attribute called ``differs``, and the deviating treatment given
   the largest odds ratio?

Replicates run in batches on ``--jobs`` worker processes; replicate ``r`` of size ``n``
has a seed derived from ``(--seed, part, n, r)``, so a run is reproducible whatever the
number of workers. ::

    python benchmarks/bench_heterogeneity.py [--sizes 120 500 2000] [--reps 500]
        [--power-reps 200] [--target adherent] [--seed 2026] [--jobs 2]

Writes ``benchmarks/results/heterogeneity_validity.json``.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
from joblib import delayed
from scipy import stats
from statsmodels.stats.multitest import multipletests

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (
    add_scheduler_option,
    monte_carlo_rate,
    peak_rss_mb,
    run_on_backend,
    write_result,
)
from engagekit import simulate_encounters
from engagekit.cluster import run_replicates
from engagekit.config import load_config
from engagekit.errors import AnalysisError
from engagekit.heterogeneity import _analysis as analysis
from engagekit.heterogeneity import heterogeneity_analysis
from engagekit.heterogeneity._gee import fit_gee, kauermann_carroll_cov
from engagekit.simulation import parse_heterogeneity

COVARIANCES = ("robust", "bias_reduced", "kauermann_carroll")
DEFAULT_COVARIANCE = "kauermann_carroll"
ALPHA = 0.05
ACCEPTANCE_BAND = (0.035, 0.065)
DEVIATION = ("active_listening", "cbt_online", 0.3)  # attribute, treatment, log-odds/point
_PART_CODE = {"type_i": 1, "power": 2}
# heterogeneity_analysis turns a log-odds into an odds ratio with math.exp, which
# overflows past this (a near-separated fit can have such a slope or CI bound)
_EXP_LIMIT = math.log(sys.float_info.max)
# what a replicate can raise: AnalysisError is engagekit's refusal of a fit; the others
# are not meant to reach a user, so they are counted apart (and reported as bugs)
_REPLICATE_ERRORS = (AnalysisError, OverflowError, np.linalg.LinAlgError)


def replicate_seed(seed: int, part: str, n_patients: int, replicate: int) -> int:
    """Seed of one replicate, independent of how replicates are split over workers."""
    sequence = np.random.SeedSequence([seed, _PART_CODE[part], n_patients, replicate])
    return int(sequence.generate_state(1)[0])


# --------------------------------------------------------------------------- type I
def _usable(cov: np.ndarray | None) -> bool:
    # the same rule fit_gee applies to the covariance it returns
    return cov is not None and bool(np.isfinite(cov).all() and (np.diag(cov) > 0).all())


def _covariance(kind: str, fit) -> np.ndarray:
    model = fit.result.model
    if kind == "robust":
        return np.asarray(fit.result.cov_robust)
    if kind == "bias_reduced":
        # what statsmodels computes for cov_type="bias_reduced", from the same fit
        return model._bc_covmat(np.asarray(fit.result.cov_naive))
    return kauermann_carroll_cov(model)


def _null_replicate(n_patients: int, seed: int, target: str, config) -> dict:
    """One service without heterogeneity: every attribute's test under each covariance."""
    start = time.perf_counter()
    encounters = simulate_encounters(n_patients, seed=seed, config=config).encounters
    simulated = time.perf_counter()
    out = {"seed": seed, "n_encounters": len(encounters), "fit_error": None, "error_type": None}
    try:
        # the steps of heterogeneity_analysis up to its fit, with the plain sandwich so
        # that the three covariances below come from one and the same fit
        rows, _ = analysis._analysis_rows(encounters, target, config, "patient_id")
        # complete cases: the study compares covariances of one and the same fit
        rows = rows.dropna(subset=config.attribute_names).reset_index(drop=True)
        present = set(rows["treatment"].astype(str))
        treatments = [t for t in config.treatment_names if t in present]
        analysis._check_estimable(rows, target, treatments)
        design = analysis._design(rows, config, treatments)
        groups = rows["patient_id"].astype(str).to_numpy()
        if len(np.unique(groups)) <= design.shape[1]:
            raise AnalysisError("fewer patients than coefficients")
        fit = fit_gee(
            rows[target].to_numpy(dtype=float),
            design,
            groups,
            working_correlation="independence",
            cov_type="robust",
            keep_model=True,  # the corrected covariances below read statsmodels' model
        )
        # heterogeneity_analysis refuses a near-separated fit: so does the study, so that
        # its rates are those of the analyses the tool would report
        analysis._check_separation(fit, treatments)
    except _REPLICATE_ERRORS as error:
        out["fit_error"] = str(error)
        out["error_type"] = type(error).__name__
        out["analysis_s"] = time.perf_counter() - simulated
        out["simulate_s"] = simulated - start
        return out
    covariances, out["covariance_errors"] = {}, {}
    for kind in COVARIANCES:
        try:
            covariances[kind] = _covariance(kind, fit)
        except np.linalg.LinAlgError as error:  # a near-separated fit: A is singular
            covariances[kind] = None
            out["covariance_errors"][kind] = f"{type(error).__name__}: {error}"
    index = {name: k for k, name in enumerate(design.columns)}
    params = fit.params.to_numpy()
    out["p_values"] = {}
    for kind, cov in covariances.items():
        if not _usable(cov):
            out["p_values"][kind] = None
            out["covariance_errors"].setdefault(kind, "not finite and positive")
            continue
        p_values = []
        try:
            for attribute in config.attribute_names:
                k = [index[analysis.slope_name(attribute, t)] for t in treatments]
                R = np.hstack([-np.ones((len(k) - 1, 1)), np.eye(len(k) - 1)])
                tested = analysis._wald(params[k], cov[np.ix_(k, k)], R)
                p_values.append(tested.p_value)
        except np.linalg.LinAlgError as error:
            p_values = None
            out["covariance_errors"][kind] = f"Wald test: {type(error).__name__}: {error}"
        out["p_values"][kind] = p_values
    # would the default analysis (Kauermann–Carroll 95% CIs of the odds ratios) overflow?
    out["default_would_overflow"] = False
    if _usable(covariances["kauermann_carroll"]):
        slopes = [index[c] for c in design.columns if "@" in c]
        kc_se = np.sqrt(np.diag(covariances["kauermann_carroll"]))[slopes]
        upper = params[slopes] + stats.norm.ppf(0.975) * kc_se
        out["default_would_overflow"] = bool(not np.all(upper < _EXP_LIMIT))
    out["analysis_s"] = time.perf_counter() - simulated
    out["simulate_s"] = simulated - start
    return out


# --------------------------------------------------------------------------- power
def _power_replicate(n_patients: int, seed: int, target: str, config, deviation) -> dict:
    """One service with one deviating treatment, analysed by the full default analysis."""
    attribute = DEVIATION[0]
    start = time.perf_counter()
    encounters = simulate_encounters(
        n_patients, seed=seed, config=config, heterogeneity=[deviation]
    ).encounters
    simulated = time.perf_counter()
    out = {"seed": seed, "n_encounters": len(encounters), "fit_error": None, "error_type": None}
    try:
        result = heterogeneity_analysis(encounters, target, config)
    except _REPLICATE_ERRORS as error:
        out["fit_error"] = str(error)
        out["error_type"] = type(error).__name__
    else:
        out["verdicts"] = {a.attribute: a.verdict for a in result.attributes}
        out["p_adjusted"] = {a.attribute: a.p_adjusted for a in result.attributes}
        deviating = next(a for a in result.attributes if a.attribute == attribute)
        largest = max(deviating.by_treatment, key=lambda r: r.odds_ratio)
        out["largest_odds_ratio_treatment"] = largest.treatment
        out["cov_type"] = result.method.cov_type
    out["analysis_s"] = time.perf_counter() - simulated
    out["simulate_s"] = simulated - start
    return out


# --------------------------------------------------------------------------- running
def _batch(function, n_patients: int, seeds: list[int], *args) -> list[dict]:
    return [function(n_patients, seed, *args) for seed in seeds]


def _run(function, part: str, n_patients: int, reps: int, seed: int, jobs: int, *args):
    """All replicates of one size, in batches over the workers, with progress lines."""
    seeds = [replicate_seed(seed, part, n_patients, r) for r in range(reps)]
    # a few batches per worker: start-up is paid once per batch, progress is still seen
    size = max(1, math.ceil(reps / (jobs * 8)))
    batches = [seeds[i : i + size] for i in range(0, reps, size)]
    start = time.perf_counter()
    results, done = [], 0
    tasks = (delayed(_batch)(function, n_patients, b, *args) for b in batches)
    for batch in run_replicates(tasks, n_jobs=jobs, return_as="generator"):
        results.extend(batch)
        done += len(batch)
        elapsed = time.perf_counter() - start
        failed = sum(r["fit_error"] is not None for r in results)
        eta = elapsed / done * (reps - done)
        print(
            f"  {part} n={n_patients}: {done}/{reps} replicates, {failed} failed, "
            f"{elapsed:.0f} s elapsed, ~{eta:.0f} s left",
            flush=True,
        )
    return results, time.perf_counter() - start


def _timing(results: list[dict], wall_s: float, jobs: int) -> dict:
    analysis_s = np.array([r["analysis_s"] for r in results])
    simulate_s = np.array([r["simulate_s"] for r in results])
    return {
        "wall_s": round(wall_s, 1),
        "jobs": jobs,
        "median_analysis_s_per_replicate": round(float(np.median(analysis_s)), 3),
        "median_simulate_s_per_replicate": round(float(np.median(simulate_s)), 3),
        "mean_total_s_per_replicate_one_core": round(float((analysis_s + simulate_s).mean()), 3),
        "median_encounters": int(np.median([r["n_encounters"] for r in results])),
    }


def _error_counts(failed: list[dict]) -> list[dict]:
    """How many replicates failed with each error (type and message)."""
    counts = Counter((r["error_type"], r["fit_error"]) for r in failed)
    return [
        {"error_type": kind, "message": message, "replicates": n}
        for (kind, message), n in counts.most_common()
    ]


def _summarise_type_i(results: list[dict], attributes: list[str]) -> dict:
    n_attributes = len(attributes)
    fit_failed = [r for r in results if r["fit_error"] is not None]
    out = {}
    for kind in COVARIANCES:
        usable = [r["p_values"][kind] for r in results if r.get("p_values", {}).get(kind)]
        p = np.array(usable, dtype=float).reshape(-1, n_attributes)
        rejected = p < ALPHA
        per_replicate = rejected.mean(axis=1)
        per_test = monte_carlo_rate(int(rejected.sum()), rejected.size)
        # tests of one replicate are correlated: an SE that treats replicates as clusters
        clustered_se = float(per_replicate.std(ddof=1) / math.sqrt(len(p))) if len(p) > 1 else None
        holm_any = [bool(multipletests(row, alpha=ALPHA, method="holm")[0].any()) for row in p]
        out[kind] = {
            "per_test": {
                **per_test,
                "mc_se_replicate_clustered": None
                if clustered_se is None
                else round(clustered_se, 4),
                "ci95_replicate_clustered": None
                if clustered_se is None
                else [
                    round(per_test["rate"] - 1.96 * clustered_se, 4),
                    round(per_test["rate"] + 1.96 * clustered_se, 4),
                ],
            },
            "familywise_holm": monte_carlo_rate(sum(holm_any), len(holm_any)),
            # one attribute rejecting more often than the others would point at the
            # simulator's pseudo-true slopes differing, not at the covariance
            "per_attribute_rate": {
                a: round(float(r), 4)
                for a, r in zip(attributes, rejected.mean(axis=0), strict=True)
            }
            if len(p)
            else None,
            "replicates_used": len(p),
            "replicates_failed": len(results) - len(p),
            "replicates_failed_fit": len(fit_failed),
            "replicates_failed_covariance": len(results) - len(p) - len(fit_failed),
            "covariance_errors": dict(
                Counter(
                    r["covariance_errors"][kind]
                    for r in results
                    if kind in r.get("covariance_errors", {})
                )
            ),
            # under the null each p-value is uniform: a KS distance shows more than 5%
            "ks_uniform_p_value": round(float(stats.kstest(p.ravel(), "uniform").pvalue), 4)
            if p.size
            else None,
        }
    out["fit_errors"] = _error_counts(fit_failed)
    out["fitted_but_default_analysis_would_overflow"] = sum(
        bool(r.get("default_would_overflow")) for r in results
    )
    return out


def type_i(sizes, reps, target, seed, jobs, config):
    per_size = []
    low, high = ACCEPTANCE_BAND
    for n_patients in sizes:
        results, wall = _run(
            _null_replicate, "type_i", n_patients, reps, seed, jobs, target, config
        )
        summary = _summarise_type_i(results, list(config.attribute_names))
        default = summary[DEFAULT_COVARIANCE]["per_test"]
        row = {
            "n_patients": n_patients,
            "replicates": reps,
            **summary,
            "acceptance": {
                "covariance": DEFAULT_COVARIANCE,
                "band": list(ACCEPTANCE_BAND),
                "rate": default["rate"],
                "passed": default["rate"] is not None and low <= default["rate"] <= high,
                "ci95_inside_band": default["ci95"] is not None
                and low <= default["ci95"][0]
                and default["ci95"][1] <= high,
            },
            "timing": _timing(results, wall, jobs),
        }
        per_size.append(row)
        print(
            f"type I n={n_patients}: "
            + ", ".join(f"{k} {summary[k]['per_test']['rate']}" for k in COVARIANCES)
            + f"; default passes: {row['acceptance']['passed']}",
            flush=True,
        )
    return per_size


def power(sizes, reps, target, seed, jobs, config):
    attribute, treatment, extra = DEVIATION
    deviation = parse_heterogeneity(f"{attribute}:{treatment}:{extra}:{target}", config)
    per_size = []
    for n_patients in sizes:
        results, wall = _run(
            _power_replicate, "power", n_patients, reps, seed, jobs, target, config, deviation
        )
        fitted = [r for r in results if r["fit_error"] is None]
        others = [a for a in config.attribute_names if a != attribute]
        row = {
            "n_patients": n_patients,
            "replicates": reps,
            "replicates_failed": len(results) - len(fitted),
            "replicates_failed_analysis_error": sum(
                r["error_type"] == "AnalysisError" for r in results
            ),
            "replicates_failed_other_error": sum(
                r["error_type"] not in (None, "AnalysisError") for r in results
            ),
            "fit_errors": _error_counts([r for r in results if r["fit_error"]]),
            "cov_type": sorted({r["cov_type"] for r in fitted}),
            "deviating_attribute_differs": monte_carlo_rate(
                sum(r["verdicts"][attribute] == "differs" for r in fitted), len(fitted)
            ),
            "deviating_attribute_rejected": monte_carlo_rate(
                sum(r["p_adjusted"][attribute] < ALPHA for r in fitted), len(fitted)
            ),
            "any_other_attribute_differs": monte_carlo_rate(
                sum(any(r["verdicts"][a] == "differs" for a in others) for r in fitted),
                len(fitted),
            ),
            "deviating_treatment_largest_odds_ratio": monte_carlo_rate(
                sum(r["largest_odds_ratio_treatment"] == treatment for r in fitted),
                len(fitted),
            ),
            "deviating_attribute_verdicts": {
                v: sum(r["verdicts"][attribute] == v for r in fitted)
                for v in ("differs", "equivalent", "inconclusive")
            },
            "timing": _timing(results, wall, jobs),
        }
        per_size.append(row)
        print(
            f"power n={n_patients}: differs {row['deviating_attribute_differs']['rate']}, "
            f"other differs {row['any_other_attribute_differs']['rate']}, "
            f"largest OR {row['deviating_treatment_largest_odds_ratio']['rate']}",
            flush=True,
        )
    return per_size


def main() -> None:
    run_on_backend(_study, _arguments())


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[120, 500, 2000])
    parser.add_argument("--reps", type=int, default=500, help="type-I replicates per size")
    parser.add_argument("--power-reps", type=int, default=200, help="power replicates per size")
    parser.add_argument("--target", choices=["adherent", "attended_next"], default="adherent")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--jobs", type=int, default=2)
    add_scheduler_option(parser)
    return parser.parse_args()


def _study(args: argparse.Namespace) -> None:
    config = load_config()  # read once: the run is immune to edits of the config file
    start = time.perf_counter()
    type_i_rows = type_i(args.sizes, args.reps, args.target, args.seed, args.jobs, config)
    # saved now too, so that a failure of the power part does not lose the type-I study
    _save(args, config, type_i_rows, None, time.perf_counter() - start)
    power_rows = (
        power(args.sizes, args.power_reps, args.target, args.seed, args.jobs, config)
        if args.power_reps > 0
        else []
    )
    _save(args, config, type_i_rows, power_rows, time.perf_counter() - start)


def _save(args, config, type_i_rows, power_rows, wall_s: float) -> None:
    attribute, treatment, extra = DEVIATION
    payload = {
        "benchmark": "heterogeneity_validity",
        "command": "python " + " ".join(sys.argv),
        "complete": power_rows is not None,
        "settings": {
            "target": args.target,
            "sizes": args.sizes,
            "type_i_replicates": args.reps,
            "power_replicates": args.power_reps,
            "seed": args.seed,
            "jobs": args.jobs,
            "alpha": ALPHA,
            "attributes": list(config.attribute_names),
            "treatments": list(config.treatment_names),
            "covariates": list(config.covariates),
            "working_correlation": "independence",
            "cluster": "patient",
            "test": "chi-square Wald, K - 1 df, per attribute",
            "default": {
                "cov_type": config.heterogeneity.cov_type,
                "test": config.heterogeneity.test,
                "adjustment": config.heterogeneity.adjustment,
                "margin": config.heterogeneity.margin,
            },
            "deviation": {"attribute": attribute, "treatment": treatment, "extra": extra},
        },
        "type_i": type_i_rows,
        "power": power_rows,
        "acceptance_passed_all_sizes": all(r["acceptance"]["passed"] for r in type_i_rows),
        "wall_s": round(wall_s, 1),
        "peak_rss_mb_main_process": peak_rss_mb(),
    }
    path = write_result("heterogeneity_validity", payload)
    print(f"→ {path}")


if __name__ == "__main__":
    main()
