"""Small results of every kind engagekit writes, to compare with a golden copy.

Each function computes one result with fixed seeds and returns its JSON form (the dict
written to the file), whatever type the engagekit it runs under returns: a typed result
is turned into its ``to_dict()``. :data:`tests/data/golden_results` holds these as the
engagekit before typed results (issue 13) wrote them; the tests check that today's types
write the same content (a ``format_version`` aside), and that they read those files
back unchanged.

``python tests/_golden_results.py FOLDER`` writes them (with the demo's masking of
times, versions and hashes, :func:`_golden._masked`, and ``seconds``).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
from _golden import _folder_pattern, _masked

#: files of the golden copy, by name: what each holds
FILES = {
    "metrics.json": "evaluate_predictions on 120 patients, with subgroups",
    "metrics_one_class.json": "evaluate_predictions with one outcome class",
    "heterogeneity.json": "heterogeneity_analysis of attended_next, 400 patients",
    "power.json": "estimate_power with no deviation, 120 patients, 4 replicates",
    "power_search.json": "patients_for_power, 40 to 160 patients, 4 replicates",
    "model/manifest.json": "engagekit train with a temporal split",
    "model/metrics.json": "engagekit train with a temporal split",
    "evaluate.json": "engagekit evaluate of that model",
}


def as_json(result: Any) -> Any:
    """The JSON form of a result as a command writes it (through JSON, as in a file)."""
    record = result.to_dict() if hasattr(result, "to_dict") else result
    return json.loads(json.dumps(record))


def masked(record: Any, folder: Path | None = None) -> Any:
    """``record`` without what differs between two runs (and without ``format_version``,
    which the typed results add)."""
    pattern = _folder_pattern(folder) if folder is not None else _folder_pattern(Path("/nowhere"))
    out = _masked(record, pattern)
    if isinstance(out, dict):
        out.pop("seconds", None)
    return out


def metrics_result() -> Any:
    from engagekit.evaluation import decision_thresholds, evaluate_predictions

    rng = np.random.default_rng(7)
    patients = np.repeat(np.arange(120), 4)
    p = rng.uniform(0.1, 0.95, patients.size)
    y = (rng.uniform(size=patients.size) < p).astype(int)
    treatment = np.where(patients < 100, "cbt_online", "usual_care").astype(object)
    gender = np.where(rng.uniform(size=patients.size) < 0.1, None, "female").astype(object)
    by = pd.DataFrame({"treatment": treatment, "gender": gender})
    return evaluate_predictions(
        y, p, patients, by=by, n_boot=40, seed=3, decision_thresholds=decision_thresholds(0.62)
    )


def one_class_metrics_result() -> Any:
    from engagekit.evaluation import evaluate_predictions

    return evaluate_predictions(
        np.ones(60), np.linspace(0.3, 0.9, 60), np.arange(60) // 3, n_boot=10
    )


def heterogeneity_result() -> Any:
    from engagekit import simulate_encounters
    from engagekit.heterogeneity import heterogeneity_analysis

    encounters = simulate_encounters(400, seed=3).encounters
    return heterogeneity_analysis(encounters, "attended_next")


def _power_config():
    from engagekit.config import load_config
    from engagekit.heterogeneity import power_config

    return power_config(load_config(), ["cbt_online", "usual_care"], sessions=6)


def power_result() -> Any:
    from engagekit.heterogeneity import estimate_power

    return estimate_power(120, config=_power_config(), deviation=0.0, reps=4, seed=1, n_jobs=1)


def power_search_result() -> Any:
    from engagekit.heterogeneity import patients_for_power

    return patients_for_power(
        0.7,
        config=_power_config(),
        low=40,
        high=160,
        tolerance=20,
        reps=4,
        seed=1,
        n_jobs=1,
        deviation=1.5,
    )


def train_and_evaluate(folder: Path) -> dict[str, Any]:
    """``engagekit train`` with a temporal split and ``engagekit evaluate`` in
    ``folder``; their JSON files by name (as in :data:`FILES`)."""
    from engagekit import simulate_encounters

    data = simulate_encounters(300, seed=5).encounters
    data.to_csv(folder / "encounters.csv", index=False)
    simulate_encounters(150, seed=6).encounters.to_csv(folder / "new.csv", index=False)
    day = str(pd.to_datetime(data["encounter_date"]).quantile(0.7).date())
    commands = [
        ["train", "encounters.csv", "--target", "adherent", "--model", "logistic",
         "--folds", "2", "--bootstrap", "20", "--temporal-split", day, "--out", "model"],
        ["evaluate", "model", "new.csv", "--out", "evaluate.json", "--bootstrap", "20"],
    ]  # fmt: skip
    for command in commands:
        done = subprocess.run(
            [sys.executable, "-m", "engagekit", *command],
            cwd=folder,
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, done.stderr
    names = ("model/manifest.json", "model/metrics.json", "evaluate.json")
    return {name: json.loads((folder / name).read_text()) for name in names}


def compute(folder: Path) -> dict[str, Any]:
    """Every result of :data:`FILES`, masked, by file name."""
    records = {
        "metrics.json": as_json(metrics_result()),
        "metrics_one_class.json": as_json(one_class_metrics_result()),
        "heterogeneity.json": as_json(heterogeneity_result()),
        "power.json": as_json(power_result()),
        "power_search.json": as_json(power_search_result()),
        **train_and_evaluate(folder),
    }
    return {name: masked(record, folder) for name, record in records.items()}


def main(out: str) -> None:
    import tempfile

    target = Path(out)
    with tempfile.TemporaryDirectory() as work:
        records = compute(Path(work))
    for name, record in records.items():
        path = target / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")
        print(f"{name}: {FILES[name]} → {path}")


if __name__ == "__main__":
    main(*sys.argv[1:])
