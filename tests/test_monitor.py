"""Monitoring a score history (:mod:`engagekit.monitoring`, ``engagekit monitor``).

The scenario is a simulated service, scored by ``engagekit score`` into SQLite: from July
2025 its clinicians review most high flags and contact the patient, and a contact makes
the patient attend (the label effect); in April 2025 one rating (empathy) is recorded a
point lower than it was (the drift). The simulator's own outcomes are the truth the
monitor is held to: before the contacts the model is calibrated, so any gap after is the
contacts' doing.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from _cli import run
from _factories import model_with_manifest, write_csv
from engagekit import load_config, simulate_encounters
from engagekit.db import FLAG_REVIEWS
from engagekit.io._model_store import save_model
from engagekit.monitoring import (
    MonitorFigure,
    MonitorResult,
    MonitorWindow,
    PatientGroup,
    acted_on,
    monitor,
    observed_minus_expected,
    population_stability_index,
    psi_level,
    window_labels,
)

CONFIG = load_config()
DRIFTED_MONTH = "2025-04"
DRIFTED_RATING = "empathy"
CONTACTS_FROM = "2025-07"
CONTACTED_SHARE = 0.9


@pytest.fixture(scope="module")
def service(tmp_path_factory) -> Path:
    """A folder with ``model/``, the scores database ``scores.sqlite`` (with reviews) and
    ``outcomes.csv``, the later export whose outcomes the contacts changed."""
    tmp = tmp_path_factory.mktemp("monitor")
    training = simulate_encounters(1500, seed=7, config=CONFIG).encounters
    model, manifest = model_with_manifest(training, "attended_next", "logistic", CONFIG, seed=1)
    save_model(model, tmp / "model", manifest)

    encounters = simulate_encounters(3000, seed=11, config=CONFIG).encounters
    months = encounters["encounter_date"].dt.strftime("%Y-%m")
    drifted = months == DRIFTED_MONTH
    encounters.loc[drifted, DRIFTED_RATING] = (encounters.loc[drifted, DRIFTED_RATING] - 1).clip(
        lower=1
    )
    write_csv(encounters, tmp / "encounters.csv")
    result = run("score", "model", "encounters.csv", "--out", "scores.csv", cwd=tmp)
    assert result.returncode == 0, result.stderr

    engine = sa.create_engine(f"sqlite:///{tmp / 'scores.sqlite'}")
    with engine.begin() as conn:
        scores = pd.read_sql(
            "SELECT run_id, encounter_id, patient_id, flag, encounter_date FROM scores", conn
        )
        dates = pd.to_datetime(scores["encounter_date"])
        eligible = scores.loc[
            (scores["flag"] == "high") & (dates.dt.strftime("%Y-%m") >= CONTACTS_FROM)
        ]
        rng = np.random.default_rng(5)
        contacted = eligible.loc[rng.uniform(size=len(eligible)) < CONTACTED_SHARE]
        reviewed_at = (
            pd.to_datetime(contacted["encounter_date"]) + pd.Timedelta(days=1)
        ).dt.strftime("%Y-%m-%dT09:00:00.000000+00:00")
        conn.execute(
            FLAG_REVIEWS.insert(),
            [
                {
                    "patient_id": row.patient_id,
                    "encounter_id": row.encounter_id,
                    "run_id": int(row.run_id),
                    "status": "reviewed",
                    "outcome": "contacted",
                    "reviewed_by": "clinician",
                    "reviewed_at": at,
                }
                for row, at in zip(contacted.itertuples(), reviewed_at, strict=True)
            ],
        )
    engine.dispose()
    # the label effect: a contacted patient attends their next session
    outcomes = encounters.copy()
    changed = (
        outcomes["encounter_id"].isin(contacted["encounter_id"]) & outcomes["attended_next"].notna()
    )
    outcomes.loc[changed, "attended_next"] = 1
    write_csv(outcomes, tmp / "outcomes.csv")
    return tmp


def _monitor_cli(service: Path, *extra: str) -> MonitorResult:
    result = run(
        "monitor", "model", "--db", f"sqlite:///{service / 'scores.sqlite'}", "--outcomes",
        "outcomes.csv", "--json", *extra, cwd=service,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return MonitorResult.from_dict(json.loads(result.stdout))


@pytest.fixture(scope="module")
def by_month(service) -> MonitorResult:
    return _monitor_cli(service, "--plot", "charts/control.png")


@pytest.fixture(scope="module")
def by_quarter(service) -> MonitorResult:
    return _monitor_cli(service, "--window", "quarter")


def _contains_zero(estimate) -> bool:
    return estimate.ci_low <= 0 <= estimate.ci_high


def test_contacts_show_in_the_all_patient_calibration_and_not_in_the_not_contacted(by_quarter):
    windows = {w.window: w for w in by_quarter.windows}
    for before in ("2025Q1", "2025Q2"):
        assert windows[before].n_acted_on == 0
        assert windows[before].all_patients == windows[before].not_acted_on
    for contacted in ("2025Q3", "2025Q4"):
        w = windows[contacted]
        assert w.n_acted_on > 200
        # observed attendance above predicted in all patients, beyond chance ...
        assert w.all_patients.calibration_intercept.ci_low > 0
        assert w.all_patients.observed_minus_expected > 0
        # ... while the patients not contacted are predicted as well as ever
        assert _contains_zero(w.not_acted_on.calibration_intercept)
        assert w.not_acted_on.n_encounters + w.n_acted_on >= w.all_patients.n_encounters


def test_monthly_figures_keep_the_contacts_apart(by_month):
    contacted = [w for w in by_month.windows if CONTACTS_FROM <= w.window <= "2025-12"]
    assert len(contacted) == 6
    for w in contacted:
        assert w.all_patients.observed_minus_expected > w.not_acted_on.observed_minus_expected
    gap = [
        w.all_patients.calibration_intercept.value - w.not_acted_on.calibration_intercept.value
        for w in contacted
    ]
    assert np.mean(gap) > 0.2
    assert sum(_contains_zero(w.not_acted_on.calibration_intercept) for w in contacted) >= 5


def test_an_injected_rating_drift_alerts_in_its_window_only(by_month):
    drift = [(a.window, a.subject) for a in by_month.alerts if a.figure is MonitorFigure.PSI]
    assert drift == [(DRIFTED_MONTH, f"rating_{DRIFTED_RATING}")]
    drifted = next(w for w in by_month.windows if w.window == DRIFTED_MONTH)
    assert drifted.psi[f"rating_{DRIFTED_RATING}"] >= 0.25
    assert by_month.psi_reference == "window 2025-01"


def test_the_control_chart_is_drawn(service, by_month):
    chart = service / "charts" / "control.png"
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_table_names_every_alert(service, by_month):
    result = run(
        "monitor", "model", "--db", f"sqlite:///{service / 'scores.sqlite'}", "--outcomes",
        "outcomes.csv", "--n-boot", "0", cwd=service,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    for alert in by_month.alerts:
        assert f"ALERT {alert.message}" in " ".join(result.stdout.split())


@pytest.mark.parametrize(
    ("extra", "code", "message"),
    [
        (("--db-table", "nothing"), 2, "has no scores table 'nothing'"),
        (("--plot", "chart.gif"), 2, "use a .png, .svg or .pdf file"),
        (("--window", "fortnight"), 2, "fortnight"),
    ],
)
def test_the_command_refuses_what_it_cannot_use(service, extra, code, message):
    result = run(
        "monitor", "model", "--db", f"sqlite:///{service / 'scores.sqlite'}", "--outcomes",
        "outcomes.csv", *extra, cwd=service,
    )  # fmt: skip
    assert result.returncode == code
    assert message in " ".join((result.stdout + result.stderr).split())


def test_a_missing_database_is_refused_without_creating_it(service):
    result = run(
        "monitor", "model", "--db", "sqlite:///absent.sqlite", "--outcomes", "outcomes.csv",
        cwd=service,
    )  # fmt: skip
    assert result.returncode == 2
    assert "there is no SQLite database" in result.stderr
    assert not (service / "absent.sqlite").exists()


# --------------------------------------------------------------------------- units
def _psi(r: list[float], c: list[float]) -> float:
    """The PSI from its definition, for shares given by hand."""
    return sum((ci - ri) * math.log(ci / ri) for ri, ci in zip(r, c, strict=True))


@pytest.mark.parametrize(
    ("reference", "current", "expected"),
    [
        ([1, 2], [1, 2, 2, 2], _psi([0.5, 0.5], [0.25, 0.75])),
        ([1, 2, 3, 4], [4, 3, 2, 1], 0.0),
        ([3, 3, 4, 4], [3, 3, 3, 3], _psi([0.5, 0.5], [1.0, 1e-4])),
        ([1, 1, np.nan, np.nan], [1, 1, 1, 1], _psi([0.5, 0.5], [1.0, 1e-4])),
        # continuous values: the reference's deciles; a copy shifted past them all
        (np.arange(100.0), np.arange(100.0) + 1000, _psi([0.1] * 9 + [0.1], [1e-4] * 9 + [1])),
    ],
)
def test_psi_known_values(reference, current, expected):
    assert population_stability_index(reference, current) == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize(
    ("reference", "current", "bins", "message"),
    [([], [1.0], 10, "'reference' has no values"), ([1.0], [1.0], 1, "at least 2")],
)
def test_psi_refuses(reference, current, bins, message):
    with pytest.raises(ValueError, match=message):
        population_stability_index(reference, current, bins=bins)


@pytest.mark.parametrize(("psi", "level"), [(0.0, "stable"), (0.1, "warn"), (0.25, "alert")])
def test_psi_levels(psi, level):
    assert psi_level(psi) == level


def test_control_limits_are_three_binomial_sigmas_of_the_window():
    point = observed_minus_expected([1] * 60 + [0] * 40, [0.5] * 100)
    assert point.sigma == pytest.approx(math.sqrt(100 * 0.25) / 100)
    assert (point.lower_limit, point.upper_limit) == pytest.approx((-0.15, 0.15))
    assert point.observed_minus_expected == pytest.approx(0.1)
    assert not point.outside


def test_calibrated_windows_stay_within_the_limits_and_a_shift_leaves_them():
    rng = np.random.default_rng(0)
    inside, shifted = 0, 0
    for _ in range(2000):
        p = rng.uniform(0.5, 0.99, size=300)
        inside += not observed_minus_expected(rng.uniform(size=300) < p, p).outside
        shifted += observed_minus_expected(rng.uniform(size=300) < p - 0.15, p).outside
    # 3-sigma: about 3 false alarms in 1,000 windows
    assert inside >= 2000 * 0.99
    assert shifted >= 2000 * 0.95


@pytest.mark.parametrize(
    ("status", "reviewed_on", "encounter_id", "expected"),
    [
        ("reviewed", "2024-12-31", "e1", [True, False]),  # the encounter reviewed
        ("reviewed", "2025-01-15", "other", [True, False]),  # before the next encounter
        ("reviewed", "2025-02-01", "other", [False, True]),  # on the next encounter's day
        ("reviewed", "2024-12-31", "other", [False, False]),  # before any encounter
        ("do_not_contact", "2025-01-15", "e1", [False, False]),
    ],
)
def test_acted_on_rule(status, reviewed_on, encounter_id, expected):
    scores = pd.DataFrame(
        {"encounter_id": ["e1", "e2"], "patient_id": ["a", "a"],
         "encounter_date": pd.to_datetime(["2025-01-01", "2025-02-01"])}
    )  # fmt: skip
    reviews = pd.DataFrame(
        {"patient_id": ["a"], "encounter_id": [encounter_id], "status": [status],
         "reviewed_at": [f"{reviewed_on}T10:00:00.000000+00:00"]}
    )  # fmt: skip
    assert acted_on(scores, reviews).tolist() == expected


@pytest.mark.parametrize(
    ("window", "expected"),
    [
        (MonitorWindow.MONTH, ["2024-12", "2025-01"]),
        (MonitorWindow.QUARTER, ["2024Q4", "2025Q1"]),
        (MonitorWindow.WEEK, ["2025-W01", "2025-W01"]),  # ISO week 1 of 2025 starts 30 Dec
    ],
)
def test_window_labels(window, expected):
    dates = pd.Series(pd.to_datetime(["2024-12-31", "2025-01-05"]))
    assert window_labels(dates, window).tolist() == expected


def test_each_encounter_is_judged_on_its_earliest_score():
    scores = pd.DataFrame(
        {"run_id": [2, 1], "encounter_id": ["e1", "e1"], "patient_id": ["a", "a"],
         "encounter_date": ["2025-01-01"] * 2, "p_attended_next": [0.1, 0.9]}
    )  # fmt: skip
    outcomes = pd.DataFrame({"encounter_id": ["e1"], "attended_next": [1]})
    result = monitor(scores, outcomes, target="attended_next", n_boot=0)
    assert result.windows[0].all_patients.expected == pytest.approx(0.9)


def test_the_result_round_trips(by_month):
    assert MonitorResult.from_dict(by_month.to_dict()) == by_month
    assert [a.subject for a in by_month.alerts if a.figure is not MonitorFigure.PSI] == [
        a.subject for a in by_month.alerts if a.subject in {g.value for g in PatientGroup}
    ]


def test_a_treatment_attending_more_than_predicted_is_named_for_its_calibration():
    """Fair calibration over the period, on the encounters not acted on: every score
    says 0.6, and patients of online CBT adhere with 0.85; online CBT is named by its
    calibration in the large, and the reviewed encounters are left out."""
    from engagekit import simulate_encounters
    from engagekit.monitoring import monitor

    encounters = simulate_encounters(1500, seed=11).encounters
    rng = np.random.default_rng(5)
    online = (encounters["treatment"] == "cbt_online").to_numpy()
    chance = np.where(online, 0.85, 0.6)
    outcomes = encounters.assign(
        adherent=pd.array((rng.uniform(size=len(encounters)) < chance).astype(int), dtype="Int8")
    )
    scores = encounters.assign(p_adherent=0.6, rating_empathy=encounters["empathy"])
    result = monitor(scores, outcomes, target="adherent", window="quarter", n_boot=200)
    named = {(m.column, m.level, m.measure) for m in result.miscalibrated}
    assert ("treatment", "cbt_online", "calibration_intercept") in named
    online_cbt = next(m for m in result.miscalibrated if m.level == "cbt_online")
    assert online_cbt.ci_low > 0 and "more frequent than predicted" in online_cbt.sentence
    assert online_cbt.n_encounters == int(online.sum())
    assert type(result).from_dict(result.to_dict()).miscalibrated == result.miscalibrated
    # every score is 0.6, so the calibration slope has no interval: one intercept per
    # level of treatment (6), age band (5) and gender (3) is checked
    levels = sum(encounters[c].nunique() for c in ("treatment", "age_band", "gender"))
    assert result.calibration_intervals == levels
    assert result.chance_sentence == (
        f"With {levels} intervals checked, about {levels * 0.05:.1f} would exclude perfect "
        "calibration by chance alone."
    )
    unmeasured = monitor(scores, outcomes, target="adherent", n_boot=0)
    assert unmeasured.miscalibrated == [] and unmeasured.chance_sentence is None


def test_the_command_checks_the_calibration_of_the_configs_subgroups_too(service, by_month):
    """Fair calibration from the command: treatment from the scores, and the config's
    subgroups (age band, gender) from the outcome table."""
    outcomes = pd.read_csv(service / "outcomes.csv")
    levels = sum(outcomes[c].nunique() for c in ("treatment", "age_band", "gender"))
    # each level's intercept and slope, less those too small for an interval
    assert levels < by_month.calibration_intervals <= 2 * levels


def test_the_result_does_not_depend_on_the_order_of_the_rows(service):
    """A database returns a run's rows in the order its writers' chunks landed; the
    intervals are drawn from the patients, so their order must not matter."""
    from engagekit.io._model_store import read_manifest
    from engagekit.io._scores import read_score_history
    from engagekit.monitoring import monitor

    sha = read_manifest(service / "model").model_sha256
    scores, reviews = read_score_history(
        f"sqlite:///{service / 'scores.sqlite'}", "scores", sha, "attended_next"
    )
    outcomes = pd.read_csv(service / "outcomes.csv", dtype={"encounter_id": str})
    outcomes = outcomes[["encounter_id", "attended_next", "age_band"]]
    results = [
        monitor(rows, outcomes, reviews, target="attended_next", n_boot=50, seed=3)
        for rows in (scores, scores.sample(frac=1.0, random_state=8))
    ]
    assert results[0] == results[1]
