"""Are complete cases and multiple imputation valid when ratings are missing at random?

The cross-treatment analysis (:func:`engagekit.heterogeneity_analysis`) either leaves out
the encounters with a missing rating (``missing="complete_case"``) or imputes them by
chained equations and pools by Rubin's rules (``missing="mi"``, 20 imputations). This
study checks both when ratings go missing *at random given the observed data* (MAR):

1. **Data.** Services are simulated with the config's defaults but with the simulator's
   own rating missingness off (``missing_rating_rate = missing_form_rate = 0``; the
   outcome stays unrecorded in 5% of encounters, completely at random, as by default).
   There is no planted heterogeneity: every attribute's effect is the same in every
   treatment, so each attribute's "slopes equal in every treatment" null holds.
2. **Missingness** (MAR). Among the analysable encounters (outcome recorded), taken in
   session order within each patient, an encounter has ratings missing with probability

       expit(a + b1 * (m_prev - centre) * has_prev + b2 * (outcome == 0))

   where ``m_prev`` is the mean of the *observed* ratings of the patient's previous
   analysable encounter (after its own deletions), ``centre`` is the scale's midpoint
   (3 on 1-5), and ``has_prev`` is 0 at a patient's first analysable encounter or when
   every rating of the previous one was deleted (no previous-rating term then). Defaults:
   ``b1 = -1`` per rating point (a low previous rating makes missing more likely) and
   ``b2 = +1`` (a bad outcome makes missing more likely). Both inputs are observed, so the
   mechanism is MAR. ``a`` is found by root-finding (Brent) on a large calibration sample
   so that the share of analysable encounters with a missing rating is 20% or 40%; each
   replicate's realised share is recorded. In an encounter chosen to miss, each rating is
   deleted independently with probability 0.5, conditioned on at least one deletion.
3. **Truth.** The population values of the analysis model's per-treatment slopes (a
   misspecified working model of the simulator, so not the simulator's coefficients):
   the complete-data, complete-case analysis of one very large simulation
   (``--truth-patients``), cached in the JSON and reused when its settings match.
4. **Replicates.** Each replicate's data are analysed three ways: complete data (before
   any deletion: the finite-sample reference), then for each share, complete cases and
   MI on the *same* deleted data. Reported per condition: bias and RMSE of the 36 slopes
   (6 attributes x 6 treatments; mean over slopes and the worst), 95% CI coverage of the
   truth (the analysis's own CIs, back on the log-odds scale; mean and lowest), the
   type-I error of the joint equal-slopes test at 5% (raw p-values, pooled across
   attributes x replicates, and the share of replicates with any rejection), MI's mean
   fraction of missing information. Failures are counted with their messages.

Replicate ``r`` of size ``n`` has a simulation seed derived from ``(--seed, n, r)``; the
deletions and the imputations have their own seeds derived from it, so a run is
reproducible whatever the number of workers. ::

    python benchmarks/bench_missing.py [--sizes 500 2000] [--reps 200 100]
        [--shares 0.2 0.4] [--b1 -1] [--b2 1] [--imputations 20]
        [--truth-patients 200000] [--seed 2026] [--jobs 2] [--deadline HH:MM]

Writes ``benchmarks/results/missing.json``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path

import numpy as np
from joblib import delayed
from scipy import optimize, special
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (
    RESULTS,
    add_scheduler_option,
    monte_carlo_rate,
    peak_rss_mb,
    run_on_backend,
    write_result,
)
from engagekit import simulate_encounters
from engagekit.cluster import run_replicates
from engagekit.config import load_config
from engagekit.errors import AnalysisError, ContractError
from engagekit.heterogeneity import heterogeneity_analysis

NAME = "missing"
ALPHA = 0.05
TARGETS = {"mi_coverage": (0.93, 0.97), "mi_type_i": (0.035, 0.065)}
METHODS = ("complete_case", "mi")
_CODE = {"simulate": 1, "delete": 2, "impute": 3, "truth": 4, "calibrate": 5}
# what a replicate's analysis can raise: counted with its message, never dropped silently
_REPLICATE_ERRORS = (AnalysisError, ContractError, OverflowError, np.linalg.LinAlgError)


def derived_seed(seed: int, *parts: int) -> int:
    """A 32-bit seed from ``seed`` and ``parts``, independent of the worker layout."""
    return int(np.random.SeedSequence([seed, *parts]).generate_state(1)[0])


def study_config():
    """The default config with the simulator's own rating missingness off."""
    config = load_config()
    simulation = config.simulation.model_copy(
        update={"missing_rating_rate": 0.0, "missing_form_rate": 0.0}
    )
    return config.model_copy(update={"simulation": simulation})


# --------------------------------------------------------------------------- missingness
class Mechanism:
    """The MAR deletion of one table, its random draws fixed so that only ``a`` varies."""

    def __init__(self, encounters, target: str, config, seed: int, b1: float, b2: float):
        self.attributes = list(config.attribute_names)
        scale = config.attributes.scale
        self.centre = (scale.min + scale.max) / 2
        self.b1, self.b2 = b1, b2
        outcome = encounters[target]
        analysable = outcome.notna().to_numpy()
        self.rows = np.flatnonzero(analysable)  # positions in the table
        sub = encounters.iloc[self.rows]
        self.bad = (sub[target].to_numpy(dtype=float) == 0).astype(float)
        self.ratings = sub[self.attributes].to_numpy(dtype=float)
        order = np.lexsort((sub["session_number"].to_numpy(), sub["patient_id"].to_numpy()))
        patient = sub["patient_id"].to_numpy()[order]
        first = np.ones(len(order), dtype=bool)
        first[1:] = patient[1:] != patient[:-1]
        # rank of each analysable encounter within its patient, and its predecessor
        start = np.maximum.accumulate(np.where(first, np.arange(len(order)), 0))
        rank_sorted = np.arange(len(order)) - start
        self.rank = np.empty(len(order), dtype=int)
        self.rank[order] = rank_sorted
        previous = np.full(len(order), -1)
        previous[order[~first]] = order[np.flatnonzero(~first) - 1]
        self.previous = previous
        rng = np.random.default_rng(seed)
        self.u = rng.random(len(order))
        pattern = rng.random((len(order), len(self.attributes))) < 0.5
        while True:  # at least one rating deleted in a chosen encounter
            none = ~pattern.any(axis=1)
            if not none.any():
                break
            pattern[none] = rng.random((int(none.sum()), len(self.attributes))) < 0.5
        self.pattern = pattern

    def missing(self, a: float) -> np.ndarray:
        """Which analysable encounters miss ratings, given the intercept ``a``; the
        encounters are processed rank by rank so that the previous one's deletions count."""
        n = len(self.rank)
        chosen = np.zeros(n, dtype=bool)
        observed = self.ratings.copy()
        for k in range(int(self.rank.max()) + 1):
            at = np.flatnonzero(self.rank == k)
            linear = a + self.b2 * self.bad[at]
            if k > 0:
                prev = observed[self.previous[at]]
                has = ~np.isnan(prev).all(axis=1)
                mean = np.where(has, np.nanmean(np.where(has[:, None], prev, 0.0), axis=1), 0.0)
                linear = linear + self.b1 * np.where(has, mean - self.centre, 0.0)
            # special.expit, not expit imported by name: a ufunc imported into __main__
            # does not unpickle in the joblib workers
            miss = self.u[at] < special.expit(linear)
            chosen[at] = miss
            hit = at[miss]
            observed[hit] = np.where(self.pattern[hit], np.nan, observed[hit])
        self._observed = observed
        return chosen

    def share(self, a: float) -> float:
        return float(self.missing(a).mean())

    def apply(self, encounters, a: float):
        """A copy of ``encounters`` with the ratings deleted, and the realised share."""
        chosen = self.missing(a)
        out = encounters.copy()
        for j, attribute in enumerate(self.attributes):
            column = out[attribute].to_numpy(dtype=float, copy=True)
            column[self.rows] = self._observed[:, j]
            out[attribute] = column
        return out, float(chosen.mean()), float(np.isnan(self._observed).mean())


def calibrate(config, target: str, shares, n_patients: int, seed: int, b1: float, b2: float):
    """The intercept ``a`` giving each share of analysable encounters a missing rating."""
    start = time.perf_counter()
    encounters = simulate_encounters(
        n_patients, seed=derived_seed(seed, _CODE["calibrate"]), config=config
    ).encounters
    mechanism = Mechanism(
        encounters, target, config, derived_seed(seed, _CODE["calibrate"], 1), b1, b2
    )
    out = {}
    for share in shares:
        a = optimize.brentq(lambda x, s=share: mechanism.share(x) - s, -15, 15, xtol=1e-6)
        out[str(share)] = {"a": a, "calibrated_share": mechanism.share(a)}
    return {
        "n_patients": n_patients,
        "n_analysable_encounters": len(mechanism.rank),
        "intercepts": out,
        "seconds": round(time.perf_counter() - start, 1),
    }


# --------------------------------------------------------------------------- analyses
def _slopes(result) -> dict:
    """Per attribute x treatment: the slope, its SE and its 95% CI (log-odds); the joint
    tests' raw p-values; MI's fractions of missing information."""
    est, se, low, high, fmi, p = [], [], [], [], [], []
    for attribute in result.attributes:
        p.append(attribute.p_value)
        for effect in attribute.by_treatment:
            est.append(effect.log_odds)
            se.append(effect.se)
            low.append(math.log(effect.ci_low) if effect.ci_low > 0 else -math.inf)
            high.append(math.log(effect.ci_high) if effect.ci_high > 0 else -math.inf)
            fmi.append(effect.fraction_missing_information)
    return {"est": est, "se": se, "low": low, "high": high, "fmi": fmi, "p": p}


def _analyse(encounters, target, config, missing, **options) -> dict:
    start = time.perf_counter()
    try:
        result = heterogeneity_analysis(
            encounters, target, config, missing=missing, sensitivity=False, **options
        )
    except _REPLICATE_ERRORS as error:
        return {
            "error": f"{type(error).__name__}: {error}",
            "seconds": time.perf_counter() - start,
        }
    return {
        "error": None,
        **_slopes(result),
        "n_encounters": result.n_encounters,
        "seconds": time.perf_counter() - start,
    }


def _replicate(n_patients, r, settings, config, intercepts) -> dict:
    seed, target = settings["seed"], settings["target"]
    sim_seed = derived_seed(seed, _CODE["simulate"], n_patients, r)
    start = time.perf_counter()
    with threadpool_limits(1):
        encounters = simulate_encounters(n_patients, seed=sim_seed, config=config).encounters
        out = {
            "replicate": r,
            "seed": sim_seed,
            "simulate_s": time.perf_counter() - start,
            "complete": _analyse(encounters, target, config, "complete_case"),
            "shares": {},
        }
        for k, share in enumerate(settings["shares"]):
            delete_seed = derived_seed(seed, _CODE["delete"], n_patients, r, k)
            impute_seed = derived_seed(seed, _CODE["impute"], n_patients, r, k) % 2**31
            mechanism = Mechanism(
                encounters, target, config, delete_seed, settings["b1"], settings["b2"]
            )
            deleted, realised, cells = mechanism.apply(encounters, intercepts[str(share)]["a"])
            out["shares"][str(share)] = {
                "realised_share": realised,
                "cells_missing": cells,
                "complete_case": _analyse(deleted, target, config, "complete_case"),
                "mi": _analyse(
                    deleted,
                    target,
                    config,
                    "mi",
                    imputations=settings["imputations"],
                    seed=impute_seed,
                ),
            }
    return out


def _batch(n_patients, replicates, settings, config, intercepts) -> list[dict]:
    return [_replicate(n_patients, r, settings, config, intercepts) for r in replicates]


def run_size(n_patients, reps, settings, config, intercepts, jobs, deadline=None):
    """All replicates of one size, in batches over the workers, with progress lines.

    At ``deadline`` (epoch seconds) no further batch is awaited: the replicates kept are
    those of the batches finished, which come back in order, so they are always the first
    ones (no selection by result)."""
    size = max(1, math.ceil(reps / (jobs * 8)))
    batches = [list(range(i, min(i + size, reps))) for i in range(0, reps, size)]
    start = time.perf_counter()
    results = []
    jobs_ = (delayed(_batch)(n_patients, b, settings, config, intercepts) for b in batches)
    for batch in run_replicates(jobs_, n_jobs=jobs, return_as="generator"):
        results.extend(batch)
        elapsed = time.perf_counter() - start
        eta = elapsed / len(results) * (reps - len(results))
        print(
            f"  n={n_patients}: {len(results)}/{reps} replicates, "
            f"{elapsed:.0f} s elapsed, ~{eta:.0f} s left",
            flush=True,
        )
        if deadline is not None and time.time() > deadline and len(results) < reps:
            print(f"  n={n_patients}: deadline reached, stopping at {len(results)}", flush=True)
            break
    return results, time.perf_counter() - start


# --------------------------------------------------------------------------- summaries
def _clustered(per_replicate: np.ndarray) -> float | None:
    """Monte Carlo SE of a pooled rate treating replicates as clusters (the slopes and
    tests of one replicate share its data)."""
    if len(per_replicate) < 2:
        return None
    return round(float(per_replicate.std(ddof=1) / math.sqrt(len(per_replicate))), 4)


def summarise(analyses: list[dict], truth: np.ndarray, slots: list[str], extra=None) -> dict:
    """Bias, RMSE, coverage and type-I error of one method in one condition."""
    ok = [a for a in analyses if a["error"] is None]
    failures = Counter(a["error"] for a in analyses if a["error"] is not None)
    out = {
        "n_replicates": len(analyses),
        "n_used": len(ok),
        "failures": [{"message": m, "replicates": n} for m, n in failures.most_common()],
    }
    if not ok:
        return out
    est = np.array([a["est"] for a in ok])
    se = np.array([a["se"] for a in ok])
    low = np.array([a["low"] for a in ok])
    high = np.array([a["high"] for a in ok])
    p = np.array([a["p"] for a in ok])
    error = est - truth
    bias = error.mean(axis=0)
    bias_se = error.std(axis=0, ddof=1) / math.sqrt(len(ok)) if len(ok) > 1 else bias * np.nan
    rmse = np.sqrt((error**2).mean(axis=0))
    empirical_sd = est.std(axis=0, ddof=1) if len(ok) > 1 else bias * np.nan
    covered = (low <= truth) & (truth <= high)
    coverage = covered.mean(axis=0)
    worst_bias = int(np.argmax(np.abs(bias)))
    worst_rmse = int(np.argmax(rmse))
    lowest = int(np.argmin(coverage))
    rejected = p < ALPHA
    out.update(
        {
            "bias": {
                "mean": round(float(bias.mean()), 4),
                "mean_abs": round(float(np.abs(bias).mean()), 4),
                "mean_abs_over_empirical_sd": round(float((np.abs(bias) / empirical_sd).mean()), 3),
                "worst": {
                    "slope": slots[worst_bias],
                    "bias": round(float(bias[worst_bias]), 4),
                    "mc_se": round(float(bias_se[worst_bias]), 4),
                },
                "mc_se_typical": round(float(np.median(bias_se)), 4),
            },
            "rmse": {
                "mean": round(float(rmse.mean()), 4),
                "worst": {"slope": slots[worst_rmse], "rmse": round(float(rmse[worst_rmse]), 4)},
            },
            # the analysis's SEs against the spread of its estimates over replicates
            "mean_se_over_empirical_sd": round(float((se.mean(axis=0) / empirical_sd).mean()), 3),
            "coverage": {
                **monte_carlo_rate(int(covered.sum()), covered.size),
                "mc_se_replicate_clustered": _clustered(covered.mean(axis=1)),
                "lowest": {
                    "slope": slots[lowest],
                    **monte_carlo_rate(int(covered[:, lowest].sum()), len(ok)),
                },
            },
            "type_i": {
                "per_test": {
                    **monte_carlo_rate(int(rejected.sum()), rejected.size),
                    "mc_se_replicate_clustered": _clustered(rejected.mean(axis=1)),
                },
                "any_attribute": monte_carlo_rate(int(rejected.any(axis=1).sum()), len(ok)),
            },
            "per_slope": {
                s: {
                    "bias": round(float(b), 4),
                    "rmse": round(float(m), 4),
                    "coverage": round(float(c), 4),
                }
                for s, b, m, c in zip(slots, bias, rmse, coverage, strict=True)
            },
            "median_analysis_s": round(float(np.median([a["seconds"] for a in ok])), 3),
        }
    )
    fmi = [f for a in ok for f in a["fmi"] if f is not None]
    if fmi:
        out["mean_fraction_missing_information"] = round(float(np.mean(fmi)), 4)
    if extra:
        out.update(extra)
    return out


def summarise_size(n_patients, results, settings, truth, slots, wall_s, jobs) -> dict:
    row = {
        "n_patients": n_patients,
        "replicates": len(results),
        "replicates_planned": settings["replicates"][str(n_patients)],
        "seeds": [r["seed"] for r in results],
        "complete_data": summarise([r["complete"] for r in results], truth, slots),
        "conditions": {},
        "timing": {
            "wall_s": round(wall_s, 1),
            "jobs": jobs,
            "mean_replicate_s_one_core": round(
                float(
                    np.mean(
                        [
                            r["simulate_s"]
                            + r["complete"]["seconds"]
                            + sum(c[m]["seconds"] for c in r["shares"].values() for m in METHODS)
                            for r in results
                        ]
                    )
                ),
                2,
            ),
        },
    }
    for share in settings["shares"]:
        cells = [r["shares"][str(share)] for r in results]
        realised = np.array([c["realised_share"] for c in cells])
        row["conditions"][str(share)] = {
            "target_share": share,
            "realised_share": {
                "mean": round(float(realised.mean()), 4),
                "min": round(float(realised.min()), 4),
                "max": round(float(realised.max()), 4),
            },
            "mean_share_of_rating_cells_missing": round(
                float(np.mean([c["cells_missing"] for c in cells])), 4
            ),
            **{m: summarise([c[m] for c in cells], truth, slots) for m in METHODS},
        }
    return row


# --------------------------------------------------------------------------- truth
def _slot_names(config) -> list[str]:
    return [f"{a}@{t}" for a in config.attribute_names for t in config.treatment_names]


def population_truth(config, target: str, n_patients: int, seed: int) -> dict:
    """The analysis model's slopes on one very large complete-data simulation, cached."""
    key = {"n_patients": n_patients, "seed": seed, "target": target}
    cached = RESULTS / f"{NAME}.json"
    if cached.exists():
        old = json.loads(cached.read_text()).get("truth") or {}
        if old.get("key") == key and old.get("engagekit") == version("engagekit"):
            print(f"truth: reusing the cached estimate ({n_patients} patients)", flush=True)
            return old
    start = time.perf_counter()
    encounters = simulate_encounters(
        n_patients, seed=derived_seed(seed, _CODE["truth"]), config=config
    ).encounters
    result = heterogeneity_analysis(
        encounters, target, config, missing="complete_case", sensitivity=False
    )
    slopes = _slopes(result)
    truth = {
        "key": key,
        "engagekit": version("engagekit"),
        "n_encounters": result.n_encounters,
        "slopes": dict(zip(_slot_names(config), slopes["est"], strict=True)),
        "se": dict(zip(_slot_names(config), slopes["se"], strict=True)),
        "max_se": max(slopes["se"]),
        "seconds": round(time.perf_counter() - start, 1),
    }
    print(
        f"truth: {n_patients} patients, {result.n_encounters} encounters, "
        f"max SE {truth['max_se']:.4f}, {truth['seconds']} s",
        flush=True,
    )
    return truth


# --------------------------------------------------------------------------- main
def _table(rows) -> str:
    lines = [
        f"{'n':>5} {'share':>5} {'method':<13} {'reps':>4} {'fail':>4} {'bias':>7} "
        f"{'|bias|':>6} {'RMSE':>6} {'cover':>6} {'±':>5} {'low':>5} {'typeI':>6} {'±':>5} "
        f"{'FMI':>5}"
    ]

    def line(n, share, method, s):
        if "bias" not in s:
            return f"{n:>5} {share:>5} {method:<13} {s['n_replicates']:>4} all failed"
        cov, t1 = s["coverage"], s["type_i"]["per_test"]
        return (
            f"{n:>5} {share:>5} {method:<13} {s['n_used']:>4} "
            f"{s['n_replicates'] - s['n_used']:>4} {s['bias']['mean']:>+7.4f} "
            f"{s['bias']['mean_abs']:>6.4f} {s['rmse']['mean']:>6.4f} {cov['rate']:>6.3f} "
            f"{cov['mc_se_replicate_clustered'] or 0:>5.3f} {cov['lowest']['rate']:>5.3f} "
            f"{t1['rate']:>6.4f} {t1['mc_se_replicate_clustered'] or 0:>5.3f} "
            f"{s.get('mean_fraction_missing_information', float('nan')):>5.3f}"
        )

    for row in rows:
        n = row["n_patients"]
        lines.append(line(n, "0", "complete_data", row["complete_data"]))
        for share, cond in row["conditions"].items():
            for method in METHODS:
                lines.append(line(n, share, method, cond[method]))
    return "\n".join(lines)


def _verdict(rows) -> dict:
    low_c, high_c = TARGETS["mi_coverage"]
    low_t, high_t = TARGETS["mi_type_i"]
    checks = {}
    for row in rows:
        for share, cond in row["conditions"].items():
            mi = cond["mi"]
            if "coverage" not in mi:
                checks[f"n={row['n_patients']} share={share}"] = None
                continue
            cov, t1 = mi["coverage"]["rate"], mi["type_i"]["per_test"]["rate"]
            checks[f"n={row['n_patients']} share={share}"] = {
                "mi_coverage": cov,
                "mi_coverage_in_target": low_c <= cov <= high_c,
                "mi_type_i": t1,
                "mi_type_i_in_target": low_t <= t1 <= high_t,
            }
    return checks


def main() -> None:
    run_on_backend(_study, _arguments())


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[500, 2000])
    parser.add_argument(
        "--reps", type=int, nargs="+", default=[200, 100], help="replicates per size"
    )
    parser.add_argument("--shares", type=float, nargs="+", default=[0.2, 0.4])
    parser.add_argument("--b1", type=float, default=-1.0, help="per point of previous mean")
    parser.add_argument("--b2", type=float, default=1.0, help="when the outcome is bad")
    parser.add_argument("--imputations", type=int, default=20)
    parser.add_argument("--truth-patients", type=int, default=200_000)
    parser.add_argument("--calibration-patients", type=int, default=20_000)
    parser.add_argument("--target", choices=["adherent", "attended_next"], default="adherent")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--jobs", type=int, default=2)
    add_scheduler_option(parser)
    parser.add_argument(
        "--deadline",
        help="UTC time HH:MM (today) after which no further batch is awaited; the "
        "replicates finished by then are reported",
    )
    args = parser.parse_args()
    if len(args.reps) == 1:
        args.reps = args.reps * len(args.sizes)
    if len(args.reps) != len(args.sizes):
        parser.error("--reps takes one count, or one per size")
    return args


def _study(args: argparse.Namespace) -> None:
    deadline = None
    if args.deadline:
        hour, minute = map(int, args.deadline.split(":"))
        now = datetime.now(UTC)
        deadline = now.replace(hour=hour, minute=minute, second=0, microsecond=0).timestamp()
    config = study_config()  # read once: the run is immune to edits of the config file
    settings = {
        "target": args.target,
        "sizes": args.sizes,
        "replicates": dict(zip(map(str, args.sizes), args.reps, strict=True)),
        "shares": args.shares,
        "b1": args.b1,
        "b2": args.b2,
        "imputations": args.imputations,
        "seed": args.seed,
        "jobs": args.jobs,
        "alpha": ALPHA,
        "targets": {k: list(v) for k, v in TARGETS.items()},
        "mechanism": (
            "among analysable encounters (outcome recorded), in session order per patient: "
            "P(ratings missing) = expit(a + b1 * (mean of the previous analysable "
            "encounter's observed ratings - scale midpoint) * has_prev + b2 * (outcome == "
            "0)); has_prev = 0 at a patient's first analysable encounter or when the "
            "previous one has no observed rating; a missing encounter loses each rating "
            "with probability 0.5, at least one"
        ),
        "scale_midpoint": (config.attributes.scale.min + config.attributes.scale.max) / 2,
        "simulation": {
            "missing_rating_rate": config.simulation.missing_rating_rate,
            "missing_form_rate": config.simulation.missing_form_rate,
            "missing_adherence_rate": config.simulation.missing_adherence_rate,
            "heterogeneity": "none (the null of equal slopes holds)",
        },
        "analysis": {
            "cov_type": config.heterogeneity.cov_type,
            "working_correlation": config.heterogeneity.working_correlation,
            "test": config.heterogeneity.test,
            "ci": "the analysis's 95% CIs (normal; t on the MI df), on the log-odds scale",
            "type_i": "raw joint-test p-value < alpha (no adjustment across attributes)",
        },
        "truth_patients": args.truth_patients,
        "calibration_patients": args.calibration_patients,
        "deadline_utc": args.deadline,
    }
    start = time.perf_counter()
    truth = population_truth(config, args.target, args.truth_patients, args.seed)
    calibration = calibrate(
        config, args.target, args.shares, args.calibration_patients, args.seed, args.b1, args.b2
    )
    print(f"calibration: {calibration['intercepts']}", flush=True)
    slots = _slot_names(config)
    truth_vector = np.array([truth["slopes"][s] for s in slots])
    rows = []
    for n_patients, reps in zip(args.sizes, args.reps, strict=True):
        if deadline is not None and time.time() > deadline:
            print(f"n={n_patients}: skipped, the deadline has passed", flush=True)
            continue
        results, wall = run_size(
            n_patients, reps, settings, config, calibration["intercepts"], args.jobs, deadline
        )
        rows.append(
            summarise_size(n_patients, results, settings, truth_vector, slots, wall, args.jobs)
        )
        _save(args, settings, truth, calibration, rows, time.perf_counter() - start, False)
    _save(args, settings, truth, calibration, rows, time.perf_counter() - start, True)
    print(_table(rows))


def _save(args, settings, truth, calibration, rows, wall_s, complete) -> None:
    payload = {
        "benchmark": NAME,
        "command": "python " + " ".join(sys.argv),
        "complete": complete,
        "settings": settings,
        "truth": truth,
        "calibration": calibration,
        "results": rows,
        "targets_met": _verdict(rows),
        "versions": {
            lib: version(lib)
            for lib in ("engagekit", "numpy", "pandas", "scipy", "statsmodels", "joblib")
        },
        "wall_s": round(wall_s, 1),
        "peak_rss_mb_main_process": peak_rss_mb(),
    }
    path = write_result(NAME, payload)
    print(f"→ {path}", flush=True)


if __name__ == "__main__":
    main()
