"""Updating a model for a new service (engagekit.models._updating, ``engagekit update``).

The truth is the simulator's: a new service whose true log-odds are
``intercept_delta + slope_factor * logit p`` of the base service's. A parent trained on
3,000 base patients is updated on 5,000 new patients (seed 4, split 50/50); the test
checks the step ``auto`` picks and the calibration on the held-out new patients.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.special import logit

from engagekit import simulate_encounters
from engagekit.errors import ConfigError
from engagekit.io import load_model_directory
from engagekit.models import (
    ModelManifest,
    UpdateStep,
    build_manifest,
    train_model,
    update_model,
)

from ._cli import run

NEW_PATIENTS, NEW_SEED = 5000, 4


@pytest.fixture(scope="module")
def parent():
    base = simulate_encounters(3000, seed=1).encounters
    return train_model(base, "attended_next", "logistic", n_splits=2, n_boot=0)


def _new_service(shift):
    return simulate_encounters(NEW_PATIENTS, seed=NEW_SEED, service_shift=shift).encounters


@pytest.mark.parametrize(
    ("shift", "expected"),
    [
        ((-0.5, 0.6), UpdateStep.LOGISTIC),
        ((-0.5, 1.0), UpdateStep.INTERCEPT),
        ((0.0, 1.0), UpdateStep.NONE),
    ],
)
def test_auto_chooses_the_step_the_shift_needs(parent, shift, expected):
    update = update_model(
        parent.model, _new_service(shift), "auto", flag_rule=parent.flag_rule, n_boot=0
    )
    assert update.record.method == expected
    tested = {t.step: t.rejected for t in update.record.tests}
    assert tested["refit"] is False


def test_logistic_recalibration_restores_calibration_on_held_out_patients(parent):
    update = update_model(
        parent.model, _new_service((-0.5, 0.6)), "auto", flag_rule=parent.flag_rule, n_boot=50
    )
    before, after = update.record.before, update.record.after
    assert update.record.method == "logistic"
    # the parent is far off on the new service...
    assert before.calibration_intercept.value < -1 and before.calibration_slope.value < 0.8
    # ...and the update brings it back, on patients it was not fitted on
    assert abs(after.calibration_intercept.value) <= 0.05
    assert 0.9 <= after.calibration_slope.value <= 1.1
    # a recalibration keeps the ranking and (the threshold is a risk) gains net benefit
    assert after.auroc.value == pytest.approx(before.auroc.value)
    assert after.net_benefit.value > before.net_benefit.value
    assert after.net_benefit.ci_low <= after.net_benefit.value <= after.net_benefit.ci_high
    # the decision curve: the recalibrated model gains net benefit over most of it
    gains = [p.after - p.before for p in update.record.decision_curve]
    assert sum(g > 0 for g in gains) > len(gains) / 2
    record = update.record
    assert record.updating_patients + record.validation_patients <= NEW_PATIENTS
    assert record.slope == pytest.approx(0.6, abs=0.15)


def test_refit_uses_the_training_code(parent):
    update = update_model(
        parent.model, _new_service((-0.5, 0.6)), "refit", flag_rule=parent.flag_rule, n_boot=0
    )
    assert update.record.method == "refit" and update.record.intercept is None
    assert update.model is not parent.model and update.model.fit_record is not None
    assert update.model.fit_record.n_patients == update.record.updating_patients


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"method": "shrink"}, ValueError, "unknown update method 'shrink'"),
        ({"alpha": 1.5}, ValueError, "alpha must lie strictly between 0 and 1"),
        ({"validation_share": 0.0}, ValueError, "validation_share must lie"),
    ],
)
def test_update_refuses_bad_arguments(parent, kwargs, error, match):
    with pytest.raises(error, match=match):
        update_model(parent.model, _new_service((0.0, 1.0)).head(10), **kwargs)


def test_service_shift_moves_the_true_log_odds():
    plain = simulate_encounters(300, seed=5)
    shifted = simulate_encounters(300, seed=5, service_shift=(-0.5, 0.6))
    first = plain.encounters["session_number"].eq(1).to_numpy()
    first_shifted = shifted.encounters["session_number"].eq(1).to_numpy()
    # first sessions share every draw (common random numbers); only the truth moves
    for outcome in ("p_attended_next", "p_adherent"):
        old = plain.truth.loc[first, outcome].to_numpy()
        new = shifted.truth.loc[first_shifted, outcome].to_numpy()
        np.testing.assert_allclose(logit(new), -0.5 + 0.6 * logit(old), atol=1e-9)


@pytest.mark.parametrize("shift", [(1.0,), ("a", 1.0), (float("nan"), 1.0)])
def test_service_shift_is_refused_unless_two_finite_numbers(shift):
    with pytest.raises(ConfigError, match="service_shift must be"):
        simulate_encounters(10, seed=1, service_shift=shift)


def test_a_manifest_without_update_still_loads(parent):
    from engagekit.config import load_config

    base = simulate_encounters(50, seed=1).encounters
    record = build_manifest(parent, load_config(), base).to_dict()
    assert "update" not in record
    assert ModelManifest.from_dict(record).update is None


@pytest.fixture(scope="module")
def cli_parent(tmp_path_factory):
    """A parent trained by ``engagekit train`` on 3,000 base patients (seed 1)."""
    folder = tmp_path_factory.mktemp("cli-parent")
    simulate_encounters(3000, seed=1).encounters.to_csv(folder / "base.csv", index=False)
    trained = run(
        "train", "base.csv", "--target", "attended_next", "--model", "logistic",
        "--bootstrap", "0", "--folds", "2", "--out", "parent", cwd=folder,
    )  # fmt: skip
    assert trained.returncode == 0, trained.stderr
    return folder / "parent"


def _cli_service(folder, cli_parent, new) -> None:
    """``folder`` holds a copy of the parent (as ``parent``) and ``new`` (as ``new.csv``)."""
    import shutil

    shutil.copytree(cli_parent, folder / "parent")
    new.to_csv(folder / "new.csv", index=False)


def test_cli_update_writes_a_scorable_model_recording_its_parent(tmp_path, cli_parent):
    _cli_service(tmp_path, cli_parent, _new_service((-0.5, 0.6)))
    done = run("update", "parent", "new.csv", "--out", "updated", "--bootstrap", "20", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "Method: logistic" in done.stdout
    parent_manifest = json.loads((tmp_path / "parent" / "manifest.json").read_text())
    loaded = load_model_directory(tmp_path / "updated")
    update = loaded.manifest.update
    assert update is not None and update.method == "logistic"
    assert update.parent_model_sha256 == parent_manifest["model_sha256"]
    assert update.parent_model == "parent"
    assert [t.step for t in update.tests] == ["intercept", "logistic", "refit"]
    scored = run("score", "updated", "new.csv", "--out", "scores.csv", cwd=tmp_path)
    assert scored.returncode == 0, scored.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--method", "shrink"), "choose auto, intercept, logistic, refit or subgroup"),
        (("--alpha", "2"), "--alpha"),
        (("--method", "subgroup-intercept"), "--subgroup"),
        (("--subgroup", "gender"), "--subgroup"),
    ],
)
def test_cli_update_refuses_bad_options(tmp_path, args, message):
    done = run("update", "parent", "new.csv", "--out", "updated", *args, cwd=tmp_path)
    assert done.returncode == 2
    assert message in done.stderr + done.stdout
    assert "Traceback" not in done.stderr


# --------------------------------------------------------------- per-subgroup intercepts
YOUNG = "18-29"


def _service_where_the_young_attend_less():
    """A new service whose 18-29-year-olds miss sessions far more often than the base
    service's (age effect -1.3 against -0.3 there): a model carried over is calibrated
    overall but not in that band."""
    from engagekit.config import load_config

    settings = load_config().model_dump()
    settings["simulation"]["age_band"]["effect"]["attended_next"][YOUNG] = -1.3
    config = type(load_config()).model_validate(settings)
    return simulate_encounters(NEW_PATIENTS, seed=NEW_SEED, config=config).encounters


@pytest.fixture(scope="module")
def young_update(parent):
    return update_model(
        parent.model,
        _service_where_the_young_attend_less(),
        "subgroup-intercept",
        flag_rule=parent.flag_rule,
        subgroup="age_band",
        n_boot=200,
    )


def test_subgroup_intercepts_restore_the_miscalibrated_band(young_update):
    record = young_update.record
    assert record.method == "subgroup-intercept" and record.subgroup is not None
    levels = {level.level: level for level in record.subgroup.levels}
    young = levels[YOUNG]
    # the parent predicts too much attendance in the band, on patients not fitted on...
    assert young.calibration_before.ci_high < 0
    # ...and the band's own offset brings it back within its interval
    assert young.calibration_after.ci_low <= 0 <= young.calibration_after.ci_high
    assert young.offset == pytest.approx(-1.0, abs=0.3)
    # the truth moved only the young: the other bands keep small offsets
    assert all(abs(level.offset) < 0.35 for name, level in levels.items() if name != YOUNG)
    assert record.subgroup.heterogeneity_p < 1e-6 and record.subgroup.tau2 > 0
    # what it changes: more of the young are flagged, fewer of the others
    assert young.flagged_after > 2 * young.flagged_before
    assert levels["60+"].flagged_after < levels["60+"].flagged_before


def test_subgroup_intercepts_are_part_of_every_prediction_and_explanation(young_update):
    from engagekit.explain import explain_predictions

    model = young_update.model
    (intercepts,) = model.subgroup_intercepts
    encounters = _service_where_the_young_attend_less().head(400)
    offsets = intercepts(encounters)
    np.testing.assert_allclose(
        model.logit(encounters),
        young_update.model.recalibration(model.margin(encounters)) + offsets,
    )
    explanation = explain_predictions(model, encounters)
    assert explanation.check_local_accuracy(1e-9) <= 1e-9
    np.testing.assert_allclose(explanation.base_values - explanation.base_value, offsets)


def test_a_later_recalibration_scales_the_subgroup_offsets(young_update):
    from engagekit.models._updating import _recalibrated

    model = young_update.model
    encounters = _service_where_the_young_attend_less().head(300)
    recalibrated = _recalibrated(model, 0.3, 0.7)
    np.testing.assert_allclose(
        recalibrated.logit(encounters), 0.3 + 0.7 * model.logit(encounters), atol=1e-12
    )


def test_subgroup_offsets_shrink_toward_the_pooled_value_when_levels_agree(parent):
    update = update_model(
        parent.model,
        _new_service((0.0, 1.0)),
        "subgroup-intercept",
        flag_rule=parent.flag_rule,
        subgroup="gender",
        n_boot=0,
    )
    subgroup = update.record.subgroup
    spread = max(level.offset for level in subgroup.levels) - min(
        level.offset for level in subgroup.levels
    )
    raw = [level.raw_offset for level in subgroup.levels if level.raw_offset is not None]
    # no gender effect anywhere: the offsets are pulled together, more than the raw ones
    assert spread <= max(raw) - min(raw)
    assert all(abs(level.offset) < 0.2 for level in subgroup.levels)
    # a level too small for its own intercept gets the pooled one
    rare = [level for level in subgroup.levels if level.raw_offset is None]
    assert rare and all(level.offset == subgroup.pooled for level in rare)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"method": "subgroup-intercept"}, "needs the subgroup column"),
        ({"method": "subgroup-intercept", "subgroup": "postcode"}, "not a subgroup"),
        ({"method": "logistic", "subgroup": "gender"}, "subgroup-intercept method only"),
    ],
)
def test_subgroup_intercepts_refuse_a_missing_or_unknown_subgroup(parent, kwargs, match):
    from engagekit.errors import ArgumentError

    with pytest.raises(ArgumentError, match=match):
        update_model(parent.model, _new_service((0.0, 1.0)).head(50), **kwargs)


def test_cli_subgroup_intercept_writes_its_record_metrics_and_card(tmp_path, cli_parent):
    from engagekit.scoring import SHAP_PREFIX

    new = _service_where_the_young_attend_less()
    _cli_service(tmp_path, cli_parent, new)
    done = run(
        "update", "parent", "new.csv", "--out", "updated", "--method", "subgroup-intercept",
        "--subgroup", "age_band", "--bootstrap", "50", cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "per-age_band intercepts" in done.stdout and YOUNG in done.stdout
    loaded = load_model_directory(tmp_path / "updated")
    assert loaded.model.subgroup_intercepts[0].column == "age_band"
    metrics = json.loads((tmp_path / "updated" / "metrics.json").read_text())
    assert metrics["update"]["method"] == "subgroup-intercept"
    assert metrics["update"]["subgroup"]["column"] == "age_band"
    assert metrics["n_patients"] == loaded.manifest.update.validation_patients
    card = (tmp_path / "updated" / "model_card.md").read_text()
    assert "## Update for a new service" in card and "Per-`age_band` intercepts" in card
    assert f"| {YOUNG} |" in card and "On the new service's" in card
    scored = run("score", "updated", "new.csv", "--out", "scores.csv", cwd=tmp_path)
    assert scored.returncode == 0, scored.stderr
    import pandas as pd
    from scipy.special import logit as log_odds

    scores = pd.read_csv(tmp_path / "scores.csv")
    shap = scores.filter(like=SHAP_PREFIX)
    np.testing.assert_allclose(shap.sum(axis=1), log_odds(scores["p_attended_next"]), atol=1e-9)
    young = scores["encounter_id"].isin(new.loc[new["age_band"] == YOUNG, "encounter_id"])
    assert shap.loc[young, f"{SHAP_PREFIX}base_value"].nunique() == 1
    assert (
        shap.loc[young, f"{SHAP_PREFIX}base_value"].iloc[0]
        < shap.loc[~young, f"{SHAP_PREFIX}base_value"].min()
    )


def test_cli_update_card_of_a_recalibrated_model_names_its_parent(tmp_path, cli_parent):
    from engagekit.report import model_card

    _cli_service(tmp_path, cli_parent, _new_service((-0.5, 0.6)))
    done = run(
        "update", "parent", "new.csv", "--out", "updated", "--method", "logistic",
        "--bootstrap", "0", cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    loaded = load_model_directory(tmp_path / "updated")
    card = (tmp_path / "updated" / "model_card.md").read_text()
    assert card == model_card(loaded.manifest, loaded.metrics)
    assert "`parent`" in card and loaded.manifest.update.parent_model_sha256 in card
    assert "logistic recalibration" in card and "The map fitted: logit p =" in card
    curve = loaded.manifest.update.decision_curve
    assert [round(p.threshold, 2) for p in curve] == [round(0.01 * k, 2) for k in range(1, 51)]
    assert "Decision curves on the validation patients" in card and "| 50% |" in card
    assert loaded.metrics.update == loaded.manifest.update
