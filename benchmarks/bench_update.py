"""How often does ``engagekit update --method auto`` pick each step of the ladder?

A parent model (logistic, 2-fold CV, no bootstrap) is trained on a simulated base
service of ``--base-patients`` patients (seed ``seed``); then, for each replicate ``r``,
new services of ``--new-patients`` patients (seed ``seed + 1 + r``) are simulated with
each shift ``(intercept_delta, slope_factor)`` of the true log-odds, and
:func:`engagekit.models.update_model` (``auto``, alpha 0.05, a 50/50 patient split) is
run on each. Counted: how often each step is chosen (Wilson 95% CIs), and the
calibration intercept and slope of the updated model on the validation patients (mean,
and the share within ±0.05 and 0.9–1.1).

Then ``subgroup-intercept`` by ``age_band`` on new services whose 18-29-year-olds miss
more sessions than the base service's (age effect ``--young-effect``, -1.3, against -0.3
there): the band's calibration in the large on the validation patients before and after,
and the largest offset given to another band (whose truth did not move).

::

    python benchmarks/bench_update.py [--replicates 10] [--new-patients 5000]

Writes ``benchmarks/results/update.json``.
"""

from __future__ import annotations

import argparse
import statistics
import time

from _common import monte_carlo_rate, write_result
from engagekit import simulate_encounters
from engagekit.models import UpdateStep, train_model, update_model

SHIFTS = {
    "intercept -0.5, slope 0.6": (-0.5, 0.6),
    "intercept -0.5 only": (-0.5, 1.0),
    "no shift": (0.0, 1.0),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replicates", type=int, default=10)
    parser.add_argument("--base-patients", type=int, default=3000)
    parser.add_argument("--new-patients", type=int, default=5000)
    parser.add_argument("--target", default="attended_next")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--young-effect", type=float, default=-1.3)
    args = parser.parse_args()
    start = time.perf_counter()
    base = simulate_encounters(args.base_patients, seed=args.seed).encounters
    parent = train_model(base, args.target, "logistic", n_splits=2, n_boot=0, seed=args.seed)
    scenarios = {}
    for name, shift in SHIFTS.items():
        chosen, intercepts, slopes = [], [], []
        for r in range(args.replicates):
            new = simulate_encounters(
                args.new_patients, seed=args.seed + 1 + r, service_shift=shift
            ).encounters
            update = update_model(
                parent.model, new, "auto", flag_rule=parent.flag_rule, n_boot=0, seed=r
            )
            chosen.append(update.record.method)
            intercepts.append(update.record.after.calibration_intercept.value)
            slopes.append(update.record.after.calibration_slope.value)
        n = len(chosen)
        scenarios[name] = {
            "shift": list(shift),
            "chosen": {s.value: monte_carlo_rate(chosen.count(s.value), n) for s in UpdateStep},
            "after_calibration_intercept_mean": round(statistics.fmean(intercepts), 4),
            "after_calibration_slope_mean": round(statistics.fmean(slopes), 4),
            "after_intercept_within_0.05": monte_carlo_rate(
                sum(abs(a) <= 0.05 for a in intercepts), n
            ),
            "after_slope_within_0.9_1.1": monte_carlo_rate(sum(0.9 <= b <= 1.1 for b in slopes), n),
        }
        print(name, {k: v["count"] for k, v in scenarios[name]["chosen"].items()}, flush=True)
    subgroup = _subgroup_scenario(parent, args)
    print("subgroup-intercept", subgroup, flush=True)
    path = write_result(
        "update",
        {
            "settings": vars(args),
            "scenarios": scenarios,
            "subgroup_intercept": subgroup,
            "seconds": round(time.perf_counter() - start, 1),
        },
    )
    print(f"written to {path}")


def _subgroup_scenario(parent, args) -> dict:
    from engagekit.config import load_config

    settings = load_config().model_dump()
    settings["simulation"]["age_band"]["effect"][args.target]["18-29"] = args.young_effect
    config = type(load_config()).model_validate(settings)
    before, after, others = [], [], []
    for r in range(args.replicates):
        new = simulate_encounters(args.new_patients, seed=args.seed + 1 + r, config=config)
        update = update_model(
            parent.model,
            new.encounters,
            "subgroup-intercept",
            flag_rule=parent.flag_rule,
            subgroup="age_band",
            n_boot=0,
            seed=r,
        )
        levels = {level.level: level for level in update.record.subgroup.levels}
        before.append(levels["18-29"].calibration_before.value)
        after.append(levels["18-29"].calibration_after.value)
        others.append(max(abs(v.offset) for k, v in levels.items() if k != "18-29"))
    n = len(after)
    return {
        "young_effect": args.young_effect,
        "young_before_mean": round(statistics.fmean(before), 4),
        "young_after_mean": round(statistics.fmean(after), 4),
        "young_after_within_0.1": monte_carlo_rate(sum(abs(a) <= 0.1 for a in after), n),
        "largest_other_offset_mean": round(statistics.fmean(others), 4),
        "largest_other_offset_max": round(max(others), 4),
    }


if __name__ == "__main__":
    main()
