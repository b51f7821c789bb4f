"""Tests of engagekit.simulation: the encounter simulator and its ground truth.

Statistical checks use fixed seeds, so each passes or fails the same way every run; the
tolerances are stated as multiples of a standard error computed in the test (4 SE: a
two-sided p of 6e-5 per check under the null that the simulator is right).
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from threadpoolctl import threadpool_limits

from engagekit.config import OUTCOME_NAMES, Config, config_from_dict, load_config
from engagekit.errors import ConfigError
from engagekit.simulation import (
    Heterogeneity,
    SimulatedData,
    parse_heterogeneity,
    simulate_encounters,
)

N_LARGE = 20_000
SE_TOLERANCE = 4.0


# --------------------------------------------------------------------------- helpers


def _config_with(scale: tuple[float, float] | None = None, **simulation: Any) -> Config:
    """The default config with some ``simulation:`` settings replaced (nested dicts
    update the nested block) and optionally another rating scale."""
    defaults = load_config().model_dump()
    block = defaults["simulation"]
    for key, value in simulation.items():
        if isinstance(value, dict):
            block[key] = {**block[key], **value}
        else:
            block[key] = value
    blocks: dict[str, Any] = {"simulation": block}
    if scale is not None:
        blocks["attributes"] = {
            "scale": {"min": scale[0], "max": scale[1]},
            "items": defaults["attributes"]["items"],
        }
    return config_from_dict(blocks)


def _config_with_scale(lo: float, hi: float) -> Config:
    return _config_with(scale=(lo, hi))


def _expit(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _true_design(encounters: pd.DataFrame, cfg: Config) -> pd.DataFrame:
    """The regressors of the generating model, computed from the recorded table only.

    Treatment and age-band dummies are complete (no reference level, no constant)."""
    attrs = cfg.attribute_names
    scale = cfg.attributes.scale
    u = (scale.max - scale.min) / 4.0
    ref = scale.min + (cfg.simulation.rating.reference - 1.0) * u
    ratings = encounters[attrs].to_numpy(dtype=float)
    previous = encounters.groupby("patient_id")[attrs].shift(1).to_numpy(dtype=float)
    design = pd.DataFrame(
        np.nan_to_num(ratings - ref, nan=0.0), columns=attrs, index=encounters.index
    )
    design["n_missing"] = np.isnan(ratings).sum(axis=1)
    design["rating_change"] = np.nan_to_num(ratings - previous, nan=0.0).mean(axis=1)
    design["log_session"] = np.log(encounters["session_number"].to_numpy())
    for name in cfg.treatment_names:
        design[f"treatment={name}"] = (encounters["treatment"] == name).astype(float)
    for band in cfg.simulation.age_band.shares:
        design[f"age_band={band}"] = (encounters["age_band"] == band).astype(float)
    return design


def _true_coefficients(
    cfg: Config, outcome: str, heterogeneity: tuple[Heterogeneity, ...] = ()
) -> tuple[pd.Series, dict[tuple[str, str], float]]:
    """The configured coefficients for ``_true_design``, and the heterogeneity extras
    by (attribute, treatment)."""
    scale = cfg.attributes.scale
    u = (scale.max - scale.min) / 4.0
    effects = cfg.simulation.effects
    # An outcome left out of an effect map means no effect on it.
    coef = {a.name: a.simulated.get(outcome, 0.0) / u for a in cfg.attributes.items}
    coef["n_missing"] = effects.missing_rating.get(outcome, 0.0)
    coef["rating_change"] = effects.rating_change.get(outcome, 0.0) / u
    coef["log_session"] = effects.log_session.get(outcome, 0.0)
    for t in cfg.treatments:
        coef[f"treatment={t.name}"] = t.simulated.intercept[outcome]
    age = cfg.simulation.age_band
    for band in age.shares:
        coef[f"age_band={band}"] = age.effect.get(outcome, {}).get(band, 0.0)
    extras: dict[tuple[str, str], float] = {}
    for h in heterogeneity:
        if outcome in h.outcomes:
            key = (h.attribute, h.treatment)
            extras[key] = extras.get(key, 0.0) + h.extra_log_odds
    return pd.Series(coef), extras


def _with_interactions(design: pd.DataFrame, cells: list[tuple[str, str]]) -> pd.DataFrame:
    design = design.copy()
    for attribute, treatment in cells:
        design[f"{attribute}:{treatment}"] = design[attribute] * design[f"treatment={treatment}"]
    return design


def _fit_true_model(
    data: SimulatedData, cfg: Config, outcome: str, cells: list[tuple[str, str]]
) -> tuple[pd.Series, pd.DataFrame, pd.Series]:
    """GLM binomial-logit fit of ``outcome`` on the true design; returns the estimates,
    their covariance and the configured values, with the first age band as reference
    and interaction columns (configured value 0) for ``cells``."""
    enc = data.encounters
    rows = enc[outcome].notna().to_numpy()
    design = _with_interactions(_true_design(enc, cfg), cells)
    reference = f"age_band={next(iter(cfg.simulation.age_band.shares))}"
    x = design.drop(columns=reference)[rows]
    y = enc.loc[rows, outcome].to_numpy(dtype=float)
    # One BLAS thread: on a busy 2-core machine, threads fighting over the cores make
    # these small fits ten times slower.
    with threadpool_limits(limits=1):
        fit = sm.GLM(y, x.to_numpy(), family=sm.families.Binomial()).fit()
    estimate = pd.Series(fit.params, index=x.columns)
    cov = pd.DataFrame(fit.cov_params(), index=x.columns, columns=x.columns)

    coef, _ = _true_coefficients(cfg, outcome)
    # With the reference band dropped, treatment columns absorb its effect.
    truth = coef.drop(reference)
    treatments = [c for c in truth.index if c.startswith("treatment=")]
    ages = [c for c in truth.index if c.startswith("age_band=")]
    truth[treatments] += coef[reference]
    truth[ages] -= coef[reference]
    for attribute, treatment in cells:
        truth[f"{attribute}:{treatment}"] = 0.0
    return estimate, cov, truth


def _last_rows(encounters: pd.DataFrame) -> pd.DataFrame:
    return encounters.groupby("patient_id", sort=False).tail(1)


def _session_pairs(encounters: pd.DataFrame, column: str) -> np.ndarray:
    """Rating at session 1 and session 2 of the same patient, one row per patient."""
    wide = encounters[encounters["session_number"] <= 2].pivot(
        index="patient_id", columns="session_number", values=column
    )
    return wide.dropna().to_numpy()


def _same_practitioner_pairs(encounters: pd.DataFrame) -> np.ndarray:
    """Mean session-1 rating of two different patients of the same practitioner."""
    first = encounters[encounters["session_number"] == 1].copy()
    attrs = [c for c in first.columns if first[c].dtype == "float64"]
    first["mean_rating"] = first[attrs].mean(axis=1)
    first["rank"] = first.groupby("practitioner_id").cumcount()
    first["pair"] = first["rank"] // 2
    first["slot"] = first["rank"] % 2
    wide = first.pivot_table(
        index=["practitioner_id", "pair"], columns="slot", values="mean_rating"
    )
    return wide.dropna().to_numpy()


# -------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def default_config() -> Config:
    return load_config()


@pytest.fixture(scope="module")
def sample() -> SimulatedData:
    """A few thousand patients at the default settings, for structural checks."""
    return simulate_encounters(4_000, seed=7)


@pytest.fixture(scope="module")
def large() -> SimulatedData:
    """A large sample at the default settings, for statistical checks."""
    return simulate_encounters(N_LARGE, seed=2024)


# ------------------------------------------------------------------ public contract


def test_columns_types_and_order(sample, default_config):
    enc = sample.encounters
    expected = [
        "patient_id",
        "encounter_id",
        "session_number",
        "encounter_date",
        "treatment",
        "practitioner_id",
        "practitioner_role",
        *default_config.attribute_names,
        "age_band",
        "gender",
        "next_session_due",
        "attended_next",
        "adherent",
    ]
    assert list(enc.columns) == expected
    for column in (
        "patient_id",
        "encounter_id",
        "treatment",
        "practitioner_id",
        "practitioner_role",
        "age_band",
        "gender",
    ):
        assert pd.api.types.is_string_dtype(enc[column]), column
        assert enc[column].notna().all(), column
    assert enc["session_number"].dtype == np.int64
    assert enc["encounter_date"].dtype == "datetime64[ns]"
    for name in default_config.attribute_names:
        assert enc[name].dtype == np.float64
    for column in (*OUTCOME_NAMES, "next_session_due"):
        assert enc[column].dtype == "Int8", column
    assert enc["next_session_due"].notna().all()
    assert list(sample.truth.columns) == [
        "encounter_id",
        "p_attended_next",
        "p_adherent",
    ]


def test_identifiers_and_sort_order(sample):
    enc = sample.encounters
    assert enc["encounter_id"].is_unique
    assert enc["patient_id"].nunique() == 4_000
    assert enc["patient_id"].str.fullmatch(r"P\d{7}").all()
    assert enc["encounter_id"].str.fullmatch(r"E\d{8}").all()
    # Zero-padded numbers sort as strings in patient, then session order.
    assert enc["patient_id"].is_monotonic_increasing
    assert enc["encounter_id"].is_monotonic_increasing
    assert enc.index.equals(pd.RangeIndex(len(enc)))


def test_session_numbers_are_one_to_n_without_gaps(sample):
    enc = sample.encounters
    expected = enc.groupby("patient_id").cumcount() + 1
    assert (enc["session_number"] == expected).all()


def test_dates_are_days_non_decreasing_and_before_cutoff(sample, default_config):
    enc = sample.encounters
    dates = enc["encounter_date"]
    assert (dates == dates.dt.normalize()).all()
    gaps = dates.groupby(enc["patient_id"]).diff().dt.days.dropna()
    assert (gaps >= 1).all()
    sim = default_config.simulation
    start = pd.Timestamp(sim.start_date)
    assert dates.min() >= start
    assert dates.max() <= start + pd.Timedelta(days=sim.cutoff_days)
    first = dates[enc["session_number"] == 1]
    assert first.max() < start + pd.Timedelta(days=sim.enrolment_days)


def test_gaps_follow_the_treatment_interval(sample, default_config):
    enc = sample.encounters
    gaps = enc["encounter_date"].groupby(enc["patient_id"]).diff().dt.days
    interval = enc["treatment"].map(
        {t.name: t.simulated.interval_days for t in default_config.treatments}
    )
    later = gaps.notna()
    deviation = (gaps - interval)[later]
    assert deviation.abs().max() <= 4
    weekly = (interval[later] < 28).to_numpy()
    assert deviation[weekly].abs().max() <= 2
    # The jitter is really there, in both directions.
    assert deviation.min() < 0 < deviation.max()


def test_ratings_are_whole_numbers_in_scale_or_empty(sample, default_config):
    ratings = sample.encounters[default_config.attribute_names].to_numpy()
    recorded = ratings[~np.isnan(ratings)]
    assert np.array_equal(recorded, np.round(recorded))
    assert recorded.min() >= 1 and recorded.max() <= 5
    assert set(np.unique(recorded)) >= {2.0, 3.0, 4.0, 5.0}
    assert np.isnan(ratings).any()


def test_outcomes_are_zero_one_or_empty(sample):
    for outcome in OUTCOME_NAMES:
        values = sample.encounters[outcome]
        assert set(values.dropna().unique()) == {0, 1}
        assert values.isna().any()


def test_every_treatment_is_present_with_its_practitioners(sample, default_config):
    enc = sample.encounters
    per_patient = enc.drop_duplicates("patient_id")
    counts = per_patient["treatment"].value_counts()
    assert set(counts.index) == set(default_config.treatment_names)
    # The smallest share is 10%: 400 expected of 4000, SD 19.
    assert counts.min() >= 300
    # A patient keeps one practitioner, of their own treatment, in a configured role.
    assert (enc.groupby("patient_id")["practitioner_id"].nunique() == 1).all()
    prefix = enc["practitioner_id"].str.rsplit("-", n=1).str[0]
    assert (prefix == enc["treatment"]).all()
    roles = {t.name: set(t.simulated.roles) for t in default_config.treatments}
    for treatment, group in enc.groupby("treatment"):
        assert set(group["practitioner_role"]) <= roles[treatment]
    assert set(enc["age_band"]) == set(default_config.simulation.age_band.shares)
    assert set(enc["gender"]) <= set(default_config.simulation.gender.shares)


def test_practitioner_pool_size(sample, default_config):
    enc = sample.encounters
    per_patient = enc.drop_duplicates("patient_id")
    n_prac = per_patient.groupby("treatment")["practitioner_id"].nunique()
    patients = per_patient["treatment"].value_counts()
    per_prac = default_config.simulation.patients_per_practitioner
    pool = np.maximum(2, np.ceil(patients / per_prac))
    # Practitioners are drawn uniformly, so with ~30 patients each nobody in the pool
    # is left without a patient (probability e^-30 each).
    assert (n_prac == pool[n_prac.index]).all()


def test_truth_is_aligned_and_strictly_between_zero_and_one(sample):
    truth = sample.truth
    assert len(truth) == len(sample.encounters)
    assert (truth["encounter_id"] == sample.encounters["encounter_id"]).all()
    for outcome in OUTCOME_NAMES:
        p = truth[f"p_{outcome}"]
        assert p.dtype == np.float64
        assert ((p > 0) & (p < 1)).all()


# ------------------------------------------------------------------- reproducibility


def test_same_seed_gives_identical_frames():
    first = simulate_encounters(500, seed=3)
    second = simulate_encounters(500, seed=3)
    pd.testing.assert_frame_equal(first.encounters, second.encounters)
    pd.testing.assert_frame_equal(first.truth, second.truth)


def test_different_seed_gives_different_frames():
    first = simulate_encounters(500, seed=3)
    other = simulate_encounters(500, seed=4)
    with pytest.raises(AssertionError):
        pd.testing.assert_frame_equal(first.encounters, other.encounters)
    assert not np.allclose(
        first.truth["p_attended_next"].iloc[:100],
        other.truth["p_attended_next"].iloc[:100],
    )


def test_the_global_random_state_is_neither_used_nor_changed():
    # The legacy global generator is exactly what must stay untouched.
    np.random.seed(123)  # noqa: NPY002
    before = np.random.random()  # noqa: NPY002
    np.random.seed(123)  # noqa: NPY002
    simulate_encounters(100, seed=1)
    assert np.random.random() == before  # noqa: NPY002


def test_effects_do_not_change_the_patients_or_their_first_ratings(default_config):
    """Common random numbers: a heterogeneity changes outcomes, not the people."""
    plain = simulate_encounters(2_000, seed=5).encounters
    het = (parse_heterogeneity("empathy:cbt_online:1.5", default_config),)
    varied = simulate_encounters(2_000, seed=5, heterogeneity=het).encounters
    keep = [c for c in plain.columns if c not in (*OUTCOME_NAMES, "encounter_id")]
    pd.testing.assert_frame_equal(
        plain.loc[plain["session_number"] == 1, keep].reset_index(drop=True),
        varied.loc[varied["session_number"] == 1, keep].reset_index(drop=True),
    )
    online = plain["treatment"] == "cbt_online"
    assert not plain.loc[online, "attended_next"].equals(
        varied.loc[varied["treatment"] == "cbt_online", "attended_next"]
    )


def test_progress_is_reported_up_to_the_total():
    calls: list[tuple[int, int]] = []
    simulate_encounters(300, seed=0, progress=lambda done, total: calls.append((done, total)))
    totals = {total for _, total in calls}
    assert len(totals) == 1
    total = totals.pop()
    done = [d for d, _ in calls]
    assert done == sorted(done)
    assert calls[-1] == (total, total)
    assert len(calls) >= 3


def test_factory_fixture_passes_arguments(make_encounters):
    small = make_encounters()
    assert small["patient_id"].nunique() == 200
    scaled = make_encounters(n_patients=50, seed=1, config=_config_with_scale(0, 10))
    assert scaled["patient_id"].nunique() == 50
    assert scaled[load_config().attribute_names].max().max() > 5


# ------------------------------------------------------------------ episode structure


def test_only_the_last_row_of_a_patient_ends_the_episode(sample):
    enc = sample.encounters
    is_last = ~enc["patient_id"].duplicated(keep="last")
    # Every encounter that is not the patient's last was followed by an attended one.
    assert (enc.loc[~is_last, "attended_next"] == 1).all()
    assert enc.loc[~is_last, "attended_next"].notna().all()
    # The last one ends the episode: a miss, or no further session due.
    last = enc.loc[is_last, "attended_next"]
    assert (last.isna() | (last == 0)).all()


def test_adherence_is_empty_where_no_next_session_was_due(sample):
    enc = sample.encounters
    assert enc.loc[enc["attended_next"].isna(), "adherent"].isna().all()


def test_episodes_end_all_three_ways(sample, default_config):
    """Planned end, dropout and censoring at the cut-off all occur at the defaults."""
    enc = sample.encounters
    last = _last_rows(enc)
    sim = default_config.simulation
    cutoff = pd.Timestamp(sim.start_date) + pd.Timedelta(days=sim.cutoff_days)
    settings = {t.name: t.simulated for t in default_config.treatments}
    low = last["treatment"].map({k: v.planned_sessions[0] for k, v in settings.items()})
    high = last["treatment"].map({k: v.planned_sessions[1] for k, v in settings.items()})
    latest_next = last["encounter_date"] + pd.to_timedelta(
        last["treatment"].map({k: v.interval_days + 4 for k, v in settings.items()}),
        unit="D",
    )
    empty = last["attended_next"].isna()
    dropout = (last["attended_next"] == 0).fillna(False)
    # A next session that was surely due before the cut-off: only a planned end explains
    # an empty outcome, so the session number must lie in the planned range.
    planned_end = empty & (latest_next <= cutoff)
    assert ((last["session_number"] >= low) & (last["session_number"] <= high))[planned_end].all()
    # Fewer sessions than any plan allows and no miss: only the cut-off explains it.
    censored = empty & (last["session_number"] < low)
    assert (last["session_number"] <= high).all()
    assert dropout.sum() > 200
    assert planned_end.sum() > 200
    assert censored.sum() > 20


def test_next_session_due_is_0_exactly_at_a_planned_end(sample, default_config):
    """0 only on a patient's last row, where the outcome is empty and the plan allows an
    end; 1 on every row with an outcome (a session was due) and on censored last rows."""
    enc = sample.encounters
    due = enc["next_session_due"].astype(int)
    is_last = enc.index.isin(_last_rows(enc).index)
    assert (due[~is_last] == 1).all()
    assert (due[enc["attended_next"].notna()] == 1).all()
    ended = enc[due == 0]
    assert ended["attended_next"].isna().all() and len(ended) > 200
    settings = {t.name: t.simulated for t in default_config.treatments}
    low = ended["treatment"].map({k: v.planned_sessions[0] for k, v in settings.items()})
    high = ended["treatment"].map({k: v.planned_sessions[1] for k, v in settings.items()})
    assert ((ended["session_number"] >= low) & (ended["session_number"] <= high)).all()
    # below the smallest plan an empty last outcome can only be the cut-off: still due
    censored = enc[is_last & enc["attended_next"].isna().to_numpy()]
    low_c = censored["treatment"].map({k: v.planned_sessions[0] for k, v in settings.items()})
    assert (censored.loc[censored["session_number"] < low_c, "next_session_due"] == 1).all()


# ---------------------------------------------------------------------- missingness


@pytest.mark.parametrize(
    "rates",
    [
        {},
        {
            "missing_rating_rate": 0.15,
            "missing_form_rate": 0.10,
            "missing_adherence_rate": 0.25,
        },
        {
            "missing_rating_rate": 0.0,
            "missing_form_rate": 0.0,
            "missing_adherence_rate": 0.0,
        },
    ],
    ids=["defaults", "high", "none"],
)
def test_missingness_matches_configured_rates(rates):
    cfg = _config_with(**rates)
    sim = cfg.simulation
    enc = simulate_encounters(5_000, seed=11, config=cfg).encounters
    ratings = enc[cfg.attribute_names].to_numpy()
    k = ratings.shape[1]
    blank_form = np.isnan(ratings).all(axis=1)

    def close(observed: np.ndarray, expected: float) -> None:
        se = np.sqrt(max(expected * (1 - expected), 1e-12) / observed.size)
        assert abs(observed.mean() - expected) < SE_TOLERANCE * se + 1e-12

    # A blank form: the whole questionnaire, or (rarely) every item by chance.
    close(
        blank_form,
        sim.missing_form_rate + (1 - sim.missing_form_rate) * sim.missing_rating_rate**k,
    )
    close(np.isnan(ratings[~blank_form]).ravel(), sim.missing_rating_rate)
    due = enc["attended_next"].notna().to_numpy()
    close(enc["adherent"].isna().to_numpy()[due], sim.missing_adherence_rate)


# -------------------------------------------------------------------------- realism


def test_non_attendance_and_dropout_match_published_figures(large):
    """product.md: psychotherapy dropout ~20%, antidepressant failure to return ~24%.

    Bounds tested: per-session miss rate 2-10% overall and 1.5-12% in each treatment;
    episode dropout 15-30% overall and 8-35% in each treatment (some episodes are cut
    short by the data cut-off, so the realised rate sits a little below the published
    complete-episode figures).
    """
    enc = large.encounters
    due = enc[enc["attended_next"].notna()]
    missed = 1 - due["attended_next"].astype(float)
    assert 0.02 < missed.mean() < 0.10
    by_treatment = missed.groupby(due["treatment"]).mean()
    assert by_treatment.between(0.015, 0.12).all(), by_treatment

    last = _last_rows(enc)
    dropped = (last["attended_next"] == 0).fillna(False).astype(float)
    assert 0.15 < dropped.mean() < 0.30
    by_treatment = dropped.groupby(last["treatment"]).mean()
    assert by_treatment.between(0.08, 0.35).all(), by_treatment

    sessions = enc.groupby("patient_id").size()
    assert 3.5 < sessions.mean() < 8


_NO_PERSON_EFFECTS = {
    "rating": {
        "patient_sd": 0.0,
        "patient_attribute_sd": 0.0,
        "practitioner_sd": 0.0,
        "practitioner_attribute_sd": 0.0,
        "session_sd": 0.0,
    }
}
_NO_PRACTITIONER_EFFECTS = {"rating": {"practitioner_sd": 0.0, "practitioner_attribute_sd": 0.0}}


@pytest.mark.parametrize(
    ("settings", "low", "high"),
    [({}, 0.3, 1.0), (_NO_PERSON_EFFECTS, -0.05, 0.05)],
    ids=["defaults", "noise_only"],
)
def test_a_patients_ratings_are_correlated_across_sessions(settings, low, high):
    cfg = _config_with(**settings)
    enc = simulate_encounters(5_000, seed=13, config=cfg).encounters
    for name in cfg.attribute_names:
        pairs = _session_pairs(enc, name)
        # ~3,900 pairs: the SE of a correlation near 0 is ~0.016.
        r = np.corrcoef(pairs[:, 0], pairs[:, 1])[0, 1]
        assert low < r < high, (name, r)


@pytest.mark.parametrize("rho", [0.0, 0.6, 0.9])
def test_the_session_swing_is_autoregressive(rho):
    """With only the session swing and little noise, a patient's mean rating correlates
    rho with the next session and rho^2 with the one after."""
    cfg = _config_with(
        # A 0-100 scale makes rounding to whole points negligible.
        scale=(0, 100),
        rating={
            **_NO_PERSON_EFFECTS["rating"],
            "mean": 3.0,  # centred: the bounds are 3.3 SD away
            "session_sd": 0.6,
            "session_rho": rho,
            "noise_sd": 0.1,
        },
        missing_rating_rate=0.0,
        missing_form_rate=0.0,
    )
    enc = simulate_encounters(6_000, seed=29, config=cfg).encounters
    enc = enc.assign(mean_rating=enc[cfg.attribute_names].mean(axis=1))
    wide = (
        enc[enc["session_number"] <= 3]
        .pivot(index="patient_id", columns="session_number", values="mean_rating")
        .dropna()
        .to_numpy()
    )
    # ~5,000 patients: the SE of each correlation is at most 0.015.
    assert abs(np.corrcoef(wide[:, 0], wide[:, 1])[0, 1] - rho) < 0.05
    assert abs(np.corrcoef(wide[:, 0], wide[:, 2])[0, 1] - rho**2) < 0.05


@pytest.mark.parametrize(
    ("settings", "low", "high"),
    [({}, 0.1, 1.0), (_NO_PRACTITIONER_EFFECTS, -0.07, 0.07)],
    ids=["defaults", "no_practitioner_effects"],
)
def test_patients_of_one_practitioner_rate_alike(settings, low, high):
    cfg = _config_with(**settings)
    enc = simulate_encounters(8_000, seed=17, config=cfg).encounters
    same = _same_practitioner_pairs(enc)
    # ~3,900 pairs: SE ~0.016 near 0; the default practitioner variance gives ~0.2.
    r_same = np.corrcoef(same[:, 0], same[:, 1])[0, 1]
    assert low < r_same < high


# --------------------------------------------------------------- truth and recovery


@pytest.mark.parametrize(
    ("config", "specs"),
    [
        (None, ()),
        (_config_with_scale(0, 10), ()),
        (None, ("active_listening:cbt_online:0.5", "empathy:usual_care:-0.3:adherent")),
        (_config_with(effects={"missing_rating": {"attended_next": -1.0}}), ()),
    ],
    ids=["defaults", "scale_0_10", "heterogeneity", "partial_effect_map"],
)
def test_truth_is_the_model_applied_to_the_recorded_data(config, specs):
    """p_true depends only on what is recorded at or before the session: recompute it
    from the table with the configured coefficients."""
    cfg = config or load_config()
    het = tuple(parse_heterogeneity(s, cfg) for s in specs)
    data = simulate_encounters(3_000, seed=19, config=cfg, heterogeneity=het)
    design = _true_design(data.encounters, cfg)
    for outcome in OUTCOME_NAMES:
        coef, extras = _true_coefficients(cfg, outcome, het)
        eta = design[coef.index].to_numpy() @ coef.to_numpy()
        for (attribute, treatment), extra in extras.items():
            eta += extra * (design[attribute] * design[f"treatment={treatment}"]).to_numpy()
        np.testing.assert_allclose(
            data.truth[f"p_{outcome}"].to_numpy(), _expit(eta), rtol=0, atol=1e-12
        )


@pytest.mark.parametrize("outcome", OUTCOME_NAMES)
def test_truth_is_calibrated(large, outcome):
    """Outcomes are drawn from p_true: the outcome rate in each decile of p_true matches
    the mean p_true within 4 binomial SE."""
    enc, truth = large.encounters, large.truth
    rows = enc[outcome].notna().to_numpy()
    y = enc.loc[rows, outcome].to_numpy(dtype=float)
    p = truth.loc[rows, f"p_{outcome}"].to_numpy()
    bins = np.quantile(p, np.linspace(0, 1, 11))
    which = np.clip(np.searchsorted(bins, p, side="right") - 1, 0, 9)
    for b in range(10):
        in_bin = which == b
        se = np.sqrt((p[in_bin] * (1 - p[in_bin])).sum()) / in_bin.sum()
        assert abs(y[in_bin].mean() - p[in_bin].mean()) < SE_TOLERANCE * se, b


@pytest.mark.parametrize("outcome", OUTCOME_NAMES)
@pytest.mark.parametrize("scale", [(1, 5), (0, 10)], ids=["scale_1_5", "scale_0_10"])
def test_glm_on_the_true_design_recovers_the_configured_effects(outcome, scale, large):
    """A binomial GLM on exactly the generating design is correctly specified (patient
    frailty is 0 by default), so every estimate lies within 4 SE of the configured
    value, and so does the sum of the attribute effects."""
    if scale == (1, 5):
        cfg, data = load_config(), large
    else:
        cfg = _config_with_scale(*scale)
        data = simulate_encounters(N_LARGE, seed=2024, config=cfg)
    estimate, cov, truth = _fit_true_model(data, cfg, outcome, [])
    z = (estimate - truth) / np.sqrt(np.diag(cov))
    assert (z.abs() < SE_TOLERANCE).all(), z[z.abs() >= SE_TOLERANCE]
    # The sum of the attribute effects is much better determined than each effect
    # alone (a patient's ratings are strongly correlated), so it is a sharper check.
    attrs = cfg.attribute_names
    total_error = (estimate[attrs] - truth[attrs]).sum()
    total_se = np.sqrt(cov.loc[attrs, attrs].to_numpy().sum())
    assert abs(total_error) < SE_TOLERANCE * total_se


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("active_listening:cbt_online:0.5", {"attended_next": 0.5, "adherent": 0.5}),
        (
            "active_listening:cbt_online:0.5:adherent",
            {"attended_next": 0.0, "adherent": 0.5},
        ),
        (None, {"attended_next": 0.0, "adherent": 0.0}),
    ],
    ids=["both_outcomes", "adherence_only", "none"],
)
def test_glm_recovers_a_heterogeneity(spec, expected, default_config, large):
    cfg = default_config
    if spec is None:
        data = large
    else:
        het = (parse_heterogeneity(spec, cfg),)
        data = simulate_encounters(N_LARGE, seed=2024, config=cfg, heterogeneity=het)
    cell = ("active_listening", "cbt_online")
    name = f"{cell[0]}:{cell[1]}"
    for outcome in OUTCOME_NAMES:
        estimate, cov, _ = _fit_true_model(data, cfg, outcome, [cell])
        se = np.sqrt(cov.loc[name, name])
        assert abs(estimate[name] - expected[outcome]) < SE_TOLERANCE * se, (
            outcome,
            estimate[name],
            se,
        )
        # The sample is large enough to tell 0.5 from no interaction at all.
        assert SE_TOLERANCE * se < 0.25


# --------------------------------------------------------------------- another scale


def test_a_zero_to_ten_scale_maps_the_same_patients(default_config):
    cfg10 = _config_with_scale(0, 10)
    attrs = default_config.attribute_names
    five = simulate_encounters(3_000, seed=23).encounters
    ten = simulate_encounters(3_000, seed=23, config=cfg10).encounters
    ratings = ten[attrs].to_numpy()
    recorded = ratings[~np.isnan(ratings)]
    assert np.array_equal(recorded, np.round(recorded))
    assert recorded.min() >= 0 and recorded.max() <= 10
    assert np.unique(recorded).size > 5
    # Session 1 is everyone's and shares the latent ratings (common random numbers):
    # the 0-10 rating is the 1-5 rating mapped, up to the two roundings.
    r5 = five.loc[five["session_number"] == 1, attrs].to_numpy()
    r10 = ten.loc[ten["session_number"] == 1, attrs].to_numpy()
    assert np.array_equal(np.isnan(r5), np.isnan(r10))
    both = ~np.isnan(r5)
    assert np.abs(r10[both] - (r5[both] - 1) * 2.5).max() <= 1.75
    # The same patients on a finer scale have the same risk, up to rounding.
    first5 = simulate_encounters(3_000, seed=23).truth.loc[five["session_number"] == 1]
    first10 = simulate_encounters(3_000, seed=23, config=cfg10).truth.loc[
        ten["session_number"] == 1
    ]
    assert abs(first5["p_attended_next"].mean() - first10["p_attended_next"].mean()) < 0.01


# ------------------------------------------------------------------- heterogeneity


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (
            "active_listening:cbt_online:0.5",
            Heterogeneity("active_listening", "cbt_online", 0.5),
        ),
        (
            "empathy:usual_care:-0.25:adherent",
            Heterogeneity("empathy", "usual_care", -0.25, ("adherent",)),
        ),
        (
            " support : antidepressants : 1e-1 : attended_next ",
            Heterogeneity("support", "antidepressants", 0.1, ("attended_next",)),
        ),
        (
            "self_kindness:listening_visits:0",
            Heterogeneity("self_kindness", "listening_visits", 0.0),
        ),
    ],
)
def test_parse_heterogeneity_accepts(spec, expected, default_config):
    assert parse_heterogeneity(spec, default_config) == expected


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            "listening:cbt_online:0.5",
            r"unknown attribute 'listening' \(part 1.*empathy, support",
        ),
        ("empathy:cbt:0.5", r"unknown treatment 'cbt' \(part 2.*cbt_online, "),
        ("empathy:cbt_online:big", r"EXTRA 'big' \(part 3\) is not a number"),
        ("empathy:cbt_online:", r"EXTRA '' \(part 3\) is not a number"),
        ("empathy:cbt_online:nan", r"EXTRA 'nan' \(part 3\) is not a finite number"),
        ("empathy:cbt_online:inf:adherent", r"not a finite number"),
        (
            "empathy:cbt_online:0.5:dropout",
            r"unknown outcome 'dropout' \(part 4.*attended_next, adherent",
        ),
        ("empathy:cbt_online", r"has 2 part\(s\).*ATTRIBUTE:TREATMENT:EXTRA"),
        ("a:b:c:d:e", r"has 5 part\(s\)"),
        ("", r"has 1 part\(s\)"),
    ],
)
def test_parse_heterogeneity_refuses(spec, message, default_config):
    with pytest.raises(ConfigError, match=re.escape(repr(spec)) + ".*" + message):
        parse_heterogeneity(spec, default_config)


@pytest.mark.parametrize(
    ("heterogeneity", "message"),
    [
        (Heterogeneity("rapport", "cbt_online", 0.5), r"unknown attribute 'rapport'"),
        (
            Heterogeneity("empathy", "yoga", 0.5),
            r"unknown treatment 'yoga'.*usual_care",
        ),
        ("empathy:cbt_online:0.5", r"sequence of Heterogeneity objects"),
    ],
)
def test_simulate_refuses_heterogeneity_the_config_lacks(heterogeneity, message):
    with pytest.raises(ConfigError, match=message):
        simulate_encounters(10, heterogeneity=[heterogeneity])


def test_simulate_refuses_a_bare_spec_string():
    with pytest.raises(ConfigError, match=r"found the string .*parse_heterogeneity"):
        simulate_encounters(10, heterogeneity="empathy:cbt_online:0.5")


def test_simulate_accepts_a_single_heterogeneity(default_config):
    het = parse_heterogeneity("empathy:cbt_online:0.5", default_config)
    single = simulate_encounters(100, seed=2, heterogeneity=het)
    listed = simulate_encounters(100, seed=2, heterogeneity=[het])
    pd.testing.assert_frame_equal(single.truth, listed.truth)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"outcomes": ("dropout",)}, r"outcome\(s\) \['dropout'\] are not modelled"),
        ({"outcomes": ()}, r"at least one outcome"),
        ({"extra_log_odds": float("nan")}, r"finite number"),
        ({"extra_log_odds": "lots"}, r"must be a number"),
    ],
)
def test_heterogeneity_refuses_bad_values(kwargs, message):
    base = {"attribute": "empathy", "treatment": "cbt_online", "extra_log_odds": 0.5}
    with pytest.raises(ConfigError, match=message):
        Heterogeneity(**{**base, **kwargs})


# ------------------------------------------------------------------ refused settings


@pytest.mark.parametrize("n_patients", [0, -3, 2.5, True, "10"])
def test_n_patients_must_be_a_positive_whole_number(n_patients):
    with pytest.raises(ConfigError, match=r"n_patients must be a whole number >= 1"):
        simulate_encounters(n_patients)


def test_a_single_patient_simulates():
    data = simulate_encounters(1, seed=0)
    assert data.encounters["patient_id"].nunique() == 1
    assert len(data.truth) == len(data.encounters)


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (
            lambda: _config_with(enrolment_days=500, cutoff_days=400),
            r"enrolment_days \(500\) is longer than simulation.cutoff_days \(400\)",
        ),
        (
            lambda: _config_with(start_date="6 Jan 2025"),
            r"start_date must be an ISO date.*'6 Jan 2025'",
        ),
        (lambda: _config_with_scale(0.5, 1.5), r"fewer than two whole numbers"),
        (
            lambda: config_from_dict(
                {
                    "treatments": [
                        {
                            "name": "cbt_online",
                            "label": "Online CBT",
                            "simulated": {"intercept": {"adherent": 0.5}},
                        }
                    ]
                }
            ),
            r"intercept has no 'attended_next'",
        ),
    ],
    ids=["enrolment_past_cutoff", "start_date", "scale", "intercept"],
)
def test_settings_that_cannot_be_simulated_are_refused(config, message):
    with pytest.raises(ConfigError, match=message):
        simulate_encounters(10, config=config())
