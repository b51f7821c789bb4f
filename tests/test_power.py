"""Simulation-based power of the cross-treatment test."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
from statsmodels.stats.proportion import proportion_confint

from engagekit.config import HeterogeneitySettings, load_config
from engagekit.errors import AnalysisError, ArgumentError, ConfigError
from engagekit.heterogeneity import (
    PatientsForPowerResult,
    PowerResult,
    PowerSettings,
    Share,
    heterogeneity_analysis,
)
from engagekit.heterogeneity import _power as power
from engagekit.heterogeneity._power import estimate_power, patients_for_power, power_config
from engagekit.simulation import parse_heterogeneity, simulate_encounters

CONFIG = load_config()
# Three treatments make a 25-coefficient model instead of 48, so replicates fit quickly.
SMALL = power_config(CONFIG, ["cbt_face_to_face", "cbt_online", "usual_care"])


def _without_timing(result: PowerResult) -> PowerResult:
    """The result without what may differ between two runs of the same replicates."""
    settings = result.settings.model_copy(update={"n_jobs": 0})
    return result.model_copy(update={"seconds": 0.0, "settings": settings})


# --------------------------------------------------------------------------- power_config
def test_power_config_keeps_the_treatments_asked_for_with_rescaled_shares():
    cfg = power_config(CONFIG, ["usual_care", "cbt_online"])
    assert cfg.treatment_names == ["cbt_online", "usual_care"]  # the config's order
    shares = {t.name: t.simulated.share for t in cfg.treatments}
    assert sum(shares.values()) == pytest.approx(1.0)
    # default shares 0.15 and 0.20 keep their ratio
    assert shares["cbt_online"] == pytest.approx(0.15 / 0.35)
    # untouched: each treatment keeps its own planned sessions, the original config its six
    assert cfg.treatments[0].simulated.planned_sessions == (6, 8)
    assert len(CONFIG.treatment_names) == 6


def test_power_config_data_have_only_those_treatments_and_sessions(make_encounters):
    cfg = power_config(CONFIG, ["antidepressants", "cbt_face_to_face"], sessions=4)
    encounters = make_encounters(n_patients=300, seed=3, config=cfg)
    assert set(encounters["treatment"]) == {"antidepressants", "cbt_face_to_face"}
    # face-to-face CBT plans 6-12 sessions by default: the cap must be the new setting,
    # and reached by the patients who attend every session
    assert encounters["session_number"].max() == 4


@pytest.mark.parametrize(
    ("treatments", "sessions", "message"),
    [
        (
            ["cbt_online", "yoga"],
            None,
            r"unknown treatment\(s\) \['yoga'\]; choose among: .*"
            r"cbt_face_to_face",
        ),
        (["cbt_online"], None, "at least two treatments"),
        (["cbt_online", "cbt_online"], None, "listed more than once"),
        ("cbt_online", None, "a list of treatment names"),
        (None, 1, "sessions must be a whole number >= 2, found 1"),
        (None, 2.5, "sessions must be a whole number >= 2, found 2.5"),
    ],
)
def test_power_config_refuses_bad_settings(treatments, sessions, message):
    with pytest.raises(ConfigError, match=message):
        power_config(CONFIG, treatments, sessions=sessions)


# --------------------------------------------------------------------------- estimate_power
def test_a_large_deviation_is_detected_almost_always():
    result = estimate_power(
        1500,
        config=CONFIG,
        target="adherent",
        attribute="active_listening",
        treatment="cbt_online",
        deviation=1.5,
        reps=8,
        seed=1,
        n_jobs=2,
    )
    assert result.failed == 0
    assert result.succeeded == result.reps == 8
    # +1.5 log-odds per point is about 7 times the margin: it cannot be missed with
    # 1,500 patients, so at most one replicate in eight may miss it
    assert result.power_differs.value >= 7 / 8
    assert result.power_differs.ci_low <= result.power_differs.value
    assert result.power_differs.ci_high >= result.power_differs.value
    assert result.attribute_verdicts["differs"] == result.power_differs.value
    assert result.power_equivalence_attribute.value is None  # only reported without deviation
    assert result.settings.treatment == "cbt_online"


def test_without_deviation_the_attribute_is_rarely_flagged():
    result = estimate_power(400, config=SMALL, deviation=0.0, reps=12, seed=2, n_jobs=1)
    assert result.failed == 0
    # With no deviation the Holm-adjusted test flags an attribute at most ~5% of the time
    # (Kauermann-Carroll keeps the level near nominal; benchmarks/README.md). Four or more
    # flags in 12 replicates has probability ~0.002 at a 5% rate and ~0.03 even at a
    # liberal 10%, so the bound catches a broken test, not bad luck.
    assert result.power_differs.value <= 3 / 12
    assert result.false_flag_rate.value <= 4 / 12
    assert result.power_equivalence_attribute.value is not None
    assert 0 <= result.power_equivalence_attribute.value <= 1


def test_results_do_not_depend_on_the_number_of_processes():
    calls = []
    options = {"config": SMALL, "deviation": 0.8, "treatment": "cbt_online", "reps": 4, "seed": 5}
    one = estimate_power(300, n_jobs=1, **options)
    two = estimate_power(300, n_jobs=2, progress=lambda *a: calls.append(a), **options)
    # a mix of verdicts, so replicates run with the wrong seeds would change the shares
    assert 0 < one.power_differs.value < 1
    assert _without_timing(one) == _without_timing(two)
    assert calls == [(1, 4), (2, 4), (3, 4), (4, 4)]


def test_replicate_r_simulates_with_seed_plus_r():
    seed, n_patients = 7, 300
    effect = parse_heterogeneity("support:cbt_online:0.6:adherent", SMALL)
    verdicts = []
    for r in range(2):
        encounters = simulate_encounters(
            n_patients, seed=seed + r, config=SMALL, heterogeneity=[effect]
        ).encounters
        result = heterogeneity_analysis(encounters, "adherent", SMALL)
        verdicts.append({a.attribute: a.verdict for a in result.attributes})
    result = estimate_power(
        n_patients,
        config=SMALL,
        attribute="support",
        treatment="cbt_online",
        deviation=0.6,
        reps=2,
        seed=seed,
        n_jobs=1,
    )
    for attribute, share in result.equivalence_by_attribute.items():
        assert share == sum(v[attribute] == "equivalent" for v in verdicts) / 2, attribute
    for verdict, share in result.attribute_verdicts.items():
        assert share == sum(v["support"] == verdict for v in verdicts) / 2, verdict


# Scripted verdicts by replicate seed: None is a failed analysis. Attribute order is the
# config's: approachability, empathy, support, active_listening, decision_making,
# self_kindness; active_listening (index 3) is the deviating one.
SCRIPT = {
    10: None,
    11: ("differs", "equivalent", "equivalent", "differs", "equivalent", "equivalent"),
    12: ("equivalent", "equivalent", "equivalent", "inconclusive", "equivalent", "equivalent"),
    13: ("inconclusive",) * 3 + ("differs",) + ("inconclusive",) * 2,
}


@pytest.fixture
def scripted_analysis(monkeypatch):
    """Replace the simulator and the analysis so each replicate gets its SCRIPT verdicts."""

    def simulate(n_patients, seed, **kwargs):
        data = simulate_encounters(n_patients, seed=seed, **kwargs)
        data.encounters.attrs["seed"] = seed
        return data

    def analyse(encounters, target, config, *, seed, sensitivity):
        assert seed == encounters.attrs["seed"] and sensitivity is False
        verdicts = SCRIPT[encounters.attrs["seed"]]
        if verdicts is None:
            raise AnalysisError("the GEE did not converge")
        names = config.attribute_names
        # the replicate reads only each attribute's verdict and the treatments it names
        return SimpleNamespace(
            attributes=[
                SimpleNamespace(
                    attribute=a, verdict=v, deviating=["cbt_online"] if v == "differs" else []
                )
                for a, v in zip(names, verdicts, strict=True)
            ]
        )

    monkeypatch.setattr(power, "simulate_encounters", simulate)
    monkeypatch.setattr(power, "heterogeneity_analysis", analyse)


def test_shares_count_verdicts_and_failed_replicates_are_reported(scripted_analysis):
    result = estimate_power(50, config=CONFIG, deviation=0.5, reps=4, seed=10, n_jobs=1)
    assert result.failed == 1
    assert result.succeeded == 3
    assert result.failure_examples == ["AnalysisError: the GEE did not converge"]
    assert result.power_differs.value == pytest.approx(2 / 3)
    assert result.false_flag_rate.value == pytest.approx(1 / 3)  # approachability in rep 11
    # others equivalent: 4 of 5, 5 of 5, 0 of 5
    assert result.power_equivalence.value == pytest.approx((4 / 5 + 1 + 0) / 3)
    assert result.attribute_verdicts == pytest.approx(
        {"differs": 2 / 3, "equivalent": 0, "inconclusive": 1 / 3}
    )
    assert result.equivalence_by_attribute["approachability"] == pytest.approx(1 / 3)
    assert result.equivalence_by_attribute["empathy"] == pytest.approx(2 / 3)
    low, high = proportion_confint(2, 3, alpha=0.05, method="wilson")
    assert result.power_differs.ci_low == pytest.approx(low)
    assert result.power_differs.ci_high == pytest.approx(high)


def test_when_every_replicate_fails_the_shares_are_empty_not_an_error(scripted_analysis):
    result = estimate_power(50, config=CONFIG, reps=1, seed=10, n_jobs=1)
    assert result.failed == 1
    assert result.power_differs.value is None
    assert result.power_differs.ci_low is None


@pytest.mark.parametrize(
    ("arguments", "error", "message"),
    [
        (
            {"attribute": "warmth"},
            ConfigError,
            "unknown attribute 'warmth'; choose among: .*active_listening",
        ),
        (
            {"treatment": "yoga"},
            ConfigError,
            "unknown treatment 'yoga'; choose among: .*cbt_online",
        ),
        (
            {"target": "relapse"},
            ConfigError,
            "unknown target 'relapse'; choose among: attended_next, adherent",
        ),
        ({"margin": -1}, ArgumentError, "bad analysis option.*margin"),
        ({"test": "t"}, ArgumentError, "bad analysis option.*test.*'t'"),
        ({"marginn": 0.2}, ArgumentError, r"unknown analysis option\(s\) \['marginn'\]"),
        ({"reps": 0}, ValueError, "reps must be a whole number >= 1, found 0"),
        ({"n_patients": 10}, ValueError, "n_patients must be a whole number >= 20, found 10"),
        ({"n_jobs": 0}, ValueError, "n_jobs must be a whole number >= 1"),
        ({"deviation": math.nan}, ValueError, "deviation must be a finite number"),
    ],
)
def test_estimate_power_refuses_bad_settings(arguments, error, message):
    arguments = {"n_patients": 200, "config": CONFIG, "reps": 2, "n_jobs": 1, **arguments}
    with pytest.raises(error, match=message):
        estimate_power(**arguments)


def test_a_covariate_the_simulator_does_not_make_is_refused_before_any_replicate():
    cfg = CONFIG.model_copy(update={"covariates": ["age_band", "income"]})
    with pytest.raises(ConfigError, match=r"no column\(s\) \['income'\]"):
        estimate_power(200, config=cfg, reps=2, n_jobs=1)


# --------------------------------------------------------------------------- patients_for_power
def _toy_power(slope: float, calls: list):
    """A deterministic estimate_power whose power rises linearly with the patients."""

    def estimate(n_patients, *, progress=None, **kwargs):
        calls.append((n_patients, kwargs))
        if progress is not None:
            progress(1, 1)
        p = min(1.0, n_patients / slope)
        return PowerResult(
            n_patients=n_patients,
            reps=kwargs["reps"],
            succeeded=kwargs["reps"],
            failed=0,
            failure_examples=[],
            power_differs=Share(value=p, ci_low=p / 2, ci_high=(1 + p) / 2),
            power_named=Share(value=p, ci_low=p / 2, ci_high=(1 + p) / 2),
            false_flag_rate=Share(value=0.0, ci_low=0.0, ci_high=0.5),
            wrong_name_rate=Share(value=0.0, ci_low=0.0, ci_high=0.5),
            power_equivalence=Share(value=0.5, ci_low=0.2, ci_high=0.8),
            power_any_other_equivalent=Share(value=0.5, ci_low=0.2, ci_high=0.8),
            power_equivalence_attribute=Share(value=None, ci_low=None, ci_high=None),
            attribute_verdicts={},
            equivalence_by_attribute={},
            # the seed says which estimate the settings came from
            settings=PowerSettings(
                target="adherent",
                attribute="active_listening",
                treatment="cbt_online",
                deviation=0.4,
                deviation_unit="toy",
                treatments=["cbt_online", "usual_care"],
                shares={"cbt_online": 0.5, "usual_care": 0.5},
                planned_sessions={"cbt_online": [6, 6], "usual_care": [6, 6]},
                analysis=HeterogeneitySettings(),
                seed=n_patients,
                replicate_seeds="toy",
                n_jobs=1,
                versions={},
            ),
            seconds=0.0,
        )

    return estimate


@pytest.mark.parametrize("slope", [1234.0, 333.0, 7000.0])
def test_patients_for_power_finds_the_smallest_size_on_the_grid(monkeypatch, slope):
    calls = []
    monkeypatch.setattr(power, "estimate_power", _toy_power(slope, calls))
    seen = []
    result = patients_for_power(
        0.8,
        config=SMALL,
        low=100,
        high=20000,
        tolerance=50,
        reps=3,
        seed=4,
        deviation=0.4,
        progress=lambda *a: seen.append(a),
    )
    # brute force over the grid of 50-patient steps from low
    expected = min(n for n in range(100, 20001, 50) if n / slope >= 0.8)
    assert result.reached is True
    assert result.bracketed is True
    assert result.n_patients == expected
    assert isinstance(result, PatientsForPowerResult)
    assert result.power.value == pytest.approx(min(1.0, expected / slope))
    answer = [p for p in result.points if p.n_patients == expected]
    assert [result.power] == [p.power_differs for p in answer]
    tried = [p.n_patients for p in result.points]
    assert tried == sorted(set(tried))
    assert expected - 50 in tried  # the answer is bracketed within the tolerance
    assert [n for n, _ in calls][:3] == [100, 200, 400]  # the doubling grid first
    assert all(kw["reps"] == 3 and kw["seed"] == 4 and kw["deviation"] == 0.4 for _, kw in calls)
    assert seen == [(n, 1, 1) for n, _ in calls]
    assert result.settings.seed == 100  # the first estimate's, that of low


def test_patients_for_power_says_when_even_high_is_not_enough(monkeypatch):
    calls = []
    monkeypatch.setattr(power, "estimate_power", _toy_power(1e6, calls))
    result = patients_for_power(config=SMALL, low=100, high=1000, reps=2)
    assert result.reached is False
    assert result.n_patients is None
    assert [p.n_patients for p in result.points] == [100, 200, 400, 800, 1000]
    assert "Even 1,000 patients do not reach 80% power" in result.sentence


def test_patients_for_power_says_when_low_already_reaches_the_goal(monkeypatch):
    calls = []
    monkeypatch.setattr(power, "estimate_power", _toy_power(10.0, calls))
    result = patients_for_power(config=SMALL, low=200, reps=2)
    assert result.reached is True
    assert result.bracketed is False
    assert result.n_patients == 200
    assert len(calls) == 1
    assert "fewer patients may too" in result.sentence


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"target_power": 1.2}, "target_power must be between 0 and 1"),
        ({"low": 10}, "low must be a whole number >= 20"),
        ({"low": 500, "high": 400}, "high must be a whole number >= 500"),
        ({"tolerance": 0}, "tolerance must be a whole number >= 1"),
        ({"deviation": 0}, "needs a non-zero deviation"),
    ],
)
def test_patients_for_power_refuses_bad_settings(arguments, message):
    with pytest.raises(ValueError, match=message):
        patients_for_power(config=SMALL, **arguments)
