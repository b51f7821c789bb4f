"""Another instrument: a depression score on 0-63 where a higher value is worse.

A service rates ``bdi`` ("BDI", 0-63, ``higher_is_better: false``) and a usual quality,
``alliance`` ("Working alliance", same scale, higher is better). The simulator's truth is
that a higher BDI lowers the chance of the good outcome; the tests check that the
simulator does so with the configured magnitude, that a model learns that sign, and that
the reasons name BDI as raising the risk where it is high and word it as "high", never
"rated low".
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
import yaml
from threadpoolctl import threadpool_limits

from _cli import assert_no_traceback, run
from engagekit.config import OUTCOME_NAMES, Config, config_from_dict
from engagekit.explain import explain_predictions
from engagekit.flags import flag_reasons
from engagekit.heterogeneity import heterogeneity_analysis
from engagekit.heterogeneity._plot import forest_plot
from engagekit.models import fit_model
from engagekit.report._sections.cross_treatment import analysis_view
from engagekit.simulation import simulate_encounters

SCALE = {"min": 0, "max": 63}
MIDPOINT = 31.5
BDI_SIMULATED = {"attended_next": 0.4, "adherent": 0.5}
ITEMS = [
    {
        "name": "bdi",
        "label": "BDI",
        "description": "depression severity on the Beck Depression Inventory-II",
        "suggestion": "review the depression treatment plan with the patient",
        "higher_is_better": False,
        "simulated": BDI_SIMULATED,
    },
    {
        "name": "alliance",
        "label": "Working alliance",
        "description": "the patient and practitioner agree on goals and tasks",
        "suggestion": "agree goals and tasks together",
        "simulated": {"attended_next": 0.2, "adherent": 0.2},
    },
]
BLOCKS: dict[str, Any] = {"attributes": {"scale": SCALE, "items": ITEMS}}
SUGGESTION = {item["name"]: item["suggestion"] for item in ITEMS}
SE_TOLERANCE = 4.0


@pytest.fixture(scope="module")
def config() -> Config:
    return config_from_dict(BLOCKS)


@pytest.fixture(scope="module")
def service(config) -> pd.DataFrame:
    """2,000 simulated patients rated with the BDI instrument."""
    return simulate_encounters(2_000, seed=3, config=config).encounters


# --------------------------------------------------------------------------- simulator
def _true_design(encounters: pd.DataFrame, config: Config) -> pd.DataFrame:
    """The regressors of the simulator's model as its docstring states it for this
    instrument, from the recorded table: a higher-is-worse score is centred at the
    mirrored reference and its changes count the other way."""
    scale = config.attributes.scale
    u = (scale.max - scale.min) / 4.0
    ref = scale.min + (config.simulation.rating.reference - 1.0) * u
    mirror = math.ceil(scale.min) + math.floor(scale.max)
    names = config.attribute_names
    direction = np.array([1.0 if config.attribute(a).higher_is_better else -1.0 for a in names])
    centre = np.where(direction > 0, ref, mirror - ref)
    ratings = encounters[names].to_numpy(dtype=float)
    previous = encounters.groupby("patient_id")[names].shift(1).to_numpy(dtype=float)
    design = pd.DataFrame(np.nan_to_num(ratings - centre), columns=names, index=encounters.index)
    design["n_missing"] = np.isnan(ratings).sum(axis=1)
    design["rating_change"] = np.nan_to_num((ratings - previous) * direction).mean(axis=1)
    design["log_session"] = np.log(encounters["session_number"].to_numpy())
    for name in config.treatment_names:
        design[f"treatment={name}"] = (encounters["treatment"] == name).astype(float)
    for band in config.simulation.age_band.shares:
        design[f"age_band={band}"] = (encounters["age_band"] == band).astype(float)
    return design


def _true_coefficients(config: Config, outcome: str) -> pd.Series:
    """Configured effects for ``_true_design``: ``simulated`` is per default-scale point
    better, so a higher-is-worse score's slope is minus it, per configured point."""
    u = config.attributes.scale.points_per_default_point
    effects = config.simulation.effects
    coef = {
        a.name: (1.0 if a.higher_is_better else -1.0) * a.simulated.get(outcome, 0.0) / u
        for a in config.attributes.items
    }
    coef["n_missing"] = effects.missing_rating.get(outcome, 0.0)
    coef["rating_change"] = effects.rating_change.get(outcome, 0.0) / u
    coef["log_session"] = effects.log_session.get(outcome, 0.0)
    for t in config.treatments:
        coef[f"treatment={t.name}"] = t.simulated.intercept[outcome]
    age = config.simulation.age_band
    for band in age.shares:
        coef[f"age_band={band}"] = age.effect.get(outcome, {}).get(band, 0.0)
    return pd.Series(coef)


def test_the_truth_is_the_documented_model_of_a_higher_is_worse_score(config):
    data = simulate_encounters(3_000, seed=19, config=config)
    design = _true_design(data.encounters, config)
    for outcome in OUTCOME_NAMES:
        coef = _true_coefficients(config, outcome)
        eta = design[coef.index].to_numpy() @ coef.to_numpy()
        np.testing.assert_allclose(
            data.truth[f"p_{outcome}"].to_numpy(), 1.0 / (1.0 + np.exp(-eta)), rtol=0, atol=1e-12
        )


def test_scores_are_recorded_the_other_way_round(config):
    """The same latent patients: a higher-is-worse score is the usual rating mirrored, so
    it centres low on 0-63, falls over the sessions, and runs against the alliance."""
    items = [{**ITEMS[0], "higher_is_better": True}, ITEMS[1]]
    usual = config_from_dict({"attributes": {"scale": SCALE, "items": items}})
    worse = simulate_encounters(1_000, seed=4, config=config).encounters
    better = simulate_encounters(1_000, seed=4, config=usual).encounters
    first_worse = worse.loc[worse["session_number"] == 1, "bdi"].to_numpy()
    first_better = better.loc[better["session_number"] == 1, "bdi"].to_numpy()
    np.testing.assert_array_equal(first_worse, 63.0 - first_better)
    assert 12 < np.nanmean(first_worse) < 22
    by_session = worse.groupby("session_number")["bdi"].mean()
    assert by_session.loc[4] < by_session.loc[1]
    assert worse[["bdi", "alliance"]].corr().iloc[0, 1] < -0.3


@pytest.mark.parametrize("outcome", OUTCOME_NAMES)
def test_a_glm_recovers_the_negative_effect_of_the_score(config, outcome):
    """A binomial GLM on the generating design recovers BDI's slope: negative, and within
    4 SE of minus the configured ``simulated`` per default point (15.75 BDI points)."""
    data = simulate_encounters(20_000, seed=2024, config=config)
    enc = data.encounters
    rows = enc[outcome].notna().to_numpy()
    design = _true_design(enc, config)
    reference = f"age_band={next(iter(config.simulation.age_band.shares))}"
    x = design.drop(columns=reference)[rows]
    y = enc.loc[rows, outcome].to_numpy(dtype=float)
    with threadpool_limits(limits=1):
        fit = sm.GLM(y, x.to_numpy(), family=sm.families.Binomial()).fit()
    k = list(x.columns).index("bdi")
    estimate, se = fit.params[k], math.sqrt(fit.cov_params()[k, k])
    truth = -BDI_SIMULATED[outcome] / 15.75
    assert abs(estimate - truth) < SE_TOLERANCE * se, (estimate, truth, se)
    assert estimate + SE_TOLERANCE * se < 0


# --------------------------------------------------------------------------- reasons
def _reasons_for(config: Config, name: str, ratings: list[float]) -> list[str]:
    """Reasons when ``name`` is the only quality raising the risk, for one patient rated
    ``ratings`` at sessions 1, 2, ..."""
    n = len(ratings)
    encounters = pd.DataFrame(
        {
            "patient_id": ["p"] * n,
            "session_number": range(1, n + 1),
            "bdi": 20.0,
            "alliance": 50.0,
        }
    )
    encounters[name] = ratings
    grouped = pd.DataFrame(0.0, index=range(n), columns=config.attribute_names)
    grouped[name] = -0.5
    return flag_reasons(grouped, encounters, config, top=1)


@pytest.mark.parametrize(
    ("name", "ratings", "expected"),
    [
        ("bdi", [30.0, 40.0], "BDI was high (40/63, up from 30)"),
        ("bdi", [32.0], "BDI was high (32/63)"),
        ("bdi", [45.0, 45.0], "BDI was high (45/63, same as last time)"),
        ("bdi", [50.0, 35.0], "BDI was high (35/63, down from 50)"),
        ("bdi", [3.0, 7.0], "BDI was 7/63 (up from 3)"),
        ("bdi", [31.0], "BDI was 31/63"),
        ("bdi", [20.0, np.nan], "BDI was not recorded this session (20/63 last time)"),
        ("alliance", [40.0, 20.0], "Working alliance was rated low (20/63, down from 40)"),
        ("alliance", [31.0], "Working alliance was rated low (31/63)"),
        ("alliance", [50.0, 50.0], "Working alliance was rated 50/63 (same as last time)"),
        ("alliance", [np.nan], "Working alliance was not rated this session"),
    ],
    ids=[
        "high_rising",
        "just_above_midpoint",
        "high_same",
        "high_falling",
        "the_issue_example",
        "just_below_midpoint",
        "missing",
        "usual_low",
        "usual_just_below_midpoint",
        "usual_not_low",
        "usual_missing",
    ],
)
def test_reason_wording_follows_the_direction(config, name, ratings, expected):
    assert _reasons_for(config, name, ratings)[-1] == f"{expected}: {SUGGESTION[name]}"


_BDI_SENTENCE = re.compile(r"BDI was (high \()?(\d+)/63")


def test_a_model_of_the_service_names_a_high_bdi_as_raising_the_risk(config, service):
    """The model learns the simulator's sign; BDI's contributions are negative (raise the
    risk) where the score is above its usual level; flags name it in those words."""
    encounters = service
    model = fit_model(encounters, "adherent", "logistic", config=config)
    explanation = explain_predictions(model, encounters)
    grouped = explanation.grouped
    bdi = encounters["bdi"].to_numpy(dtype=float)
    recorded = ~np.isnan(bdi)

    # this session's BDI: its contribution falls as the score rises and changes sign
    # at the service's usual score
    own = explanation.values["bdi"].to_numpy()[recorded]
    slope = np.polyfit(bdi[recorded], own, 1)[0]
    assert slope < 0
    labelled = encounters["adherent"].notna().to_numpy()
    usual = np.nanmean(bdi[labelled])
    assert (own[bdi[recorded] > usual + 2] < 0).all()
    assert (own[bdi[recorded] < usual - 2] > 0).all()
    # with its history, the quality raises the risk of (nearly) every high scorer and
    # lowers that of (nearly) every low scorer
    total = grouped["bdi"].to_numpy()
    assert (total[bdi >= MIDPOINT] < 0).mean() > 0.95
    assert (total[bdi <= 5] > 0).mean() > 0.95

    risk = 1.0 - model.predict_proba(encounters)
    flagged = risk >= np.quantile(risk, 0.9)
    reasons = flag_reasons(grouped, encounters, config, flagged=flagged)
    named = 0
    for row in np.flatnonzero(flagged):
        text = reasons[row]
        assert "BDI was rated" not in text
        match = _BDI_SENTENCE.search(text)
        if "BDI" in text:
            assert total[row] < 0, text
        if match is None:
            continue
        named += 1
        score = float(match.group(2))
        assert score == bdi[row]
        assert (match.group(1) is not None) == (score >= MIDPOINT), text
    assert named > 0.3 * flagged.sum()
    assert any(reasons[row].startswith("BDI was high (") for row in np.flatnonzero(flagged))


def test_the_cross_treatment_analysis_reads_the_score_the_right_way(config, service):
    """Every treatment's BDI odds ratio per point is below 1, as the simulator made it,
    and the sentences keep the abbreviation as written."""
    result = heterogeneity_analysis(service, "adherent", config)
    bdi, alliance = result.attributes
    assert (bdi.attribute, bdi.higher_is_better) == ("bdi", False)
    assert alliance.higher_is_better is True
    assert all(row.odds_ratio < 1 for row in bdi.by_treatment)
    assert all(row.odds_ratio > 1 for row in alliance.by_treatment)
    # every verdict's sentence names the quality as written ("the effect of BDI", not
    # "the effect of bdi"), whichever verdict it is
    assert "the effect of BDI on adherence " in bdi.sentence.replace("The effect", "the effect")
    assert "the effect of working alliance on adherence " in alliance.sentence.replace(
        "The effect", "the effect"
    )
    # the margin is per SD of the score: on 0-63 per point it is 1/SD of log(1.25), not
    # log(1.25), which called everything equivalent
    assert bdi.margin == pytest.approx(math.log(1.25) / bdi.rating_sd)
    fig = forest_plot(result)
    assert fig.axes[0].get_title(loc="left").startswith("BDI (higher is worse) — ")
    shown = analysis_view("adherent", result, config)
    assert [row.cells[0] for row in shown.rows] == [
        "BDI (higher is worse)",
        "Working alliance",
    ]


# --------------------------------------------------------------------------- command line
def _write_config(path: Path, blocks: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(blocks, sort_keys=False), encoding="utf-8")
    return path


def test_the_commands_take_a_depression_scale_config(tmp_path):
    config_file = _write_config(tmp_path / "bdi.yaml", BLOCKS)
    steps = [
        ("simulate", "--patients", "500", "--seed", "2", "--out", "e.csv", "-c", config_file),
        ("validate", "e.csv", "-c", config_file),
        (
            "train", "e.csv", "--target", "adherent", "--model", "logistic", "--folds", "2",
            "--bootstrap", "20", "--out", "model", "-c", config_file,
        ),
        ("score", "model", "e.csv", "--out", "scores.csv"),
        ("heterogeneity", "e.csv", "--target", "adherent", "--out", "h.json", "-c", config_file),
    ]  # fmt: skip
    for step in steps:
        result = run(*step, cwd=tmp_path)
        assert result.returncode == 0, (step[0], result.stderr)
        assert_no_traceback(result)
    # the last step, the cross-treatment analysis, says which way the score runs
    assert "BDI (higher is worse)" in result.stdout
    assert "the effect of BDI on adherence" in result.stdout.replace("The effect", "the effect")
    scores = pd.read_csv(tmp_path / "scores.csv")
    encounters = pd.read_csv(tmp_path / "e.csv")
    reasons = scores["reasons"].fillna("")
    assert reasons.str.contains("BDI was high (", regex=False).any()
    assert not reasons.str.contains("BDI was rated", regex=False).any()
    bdi = scores[["encounter_id"]].merge(encounters, on="encounter_id")["bdi"].to_numpy()
    for text, score in zip(reasons, bdi, strict=True):
        match = _BDI_SENTENCE.search(text)
        if match is not None:
            assert float(match.group(2)) == score
            assert (match.group(1) is not None) == (score >= MIDPOINT), text


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("sometimes", "attributes.items.0.higher_is_better: Input should be a valid boolean"),
        ([1, 2], "attributes.items.0.higher_is_better: Input should be a valid boolean"),
    ],
)
def test_a_bad_direction_is_refused_with_its_key(tmp_path, value, message):
    blocks = {"attributes": {"scale": SCALE, "items": [{**ITEMS[0], "higher_is_better": value}]}}
    config_file = _write_config(tmp_path / "bad.yaml", blocks)
    result = run("simulate", "--patients", "10", "--out", "e.csv", "-c", config_file, cwd=tmp_path)
    assert result.returncode == 2
    assert_no_traceback(result)
    assert message in result.stderr
    assert not (tmp_path / "e.csv").exists()
