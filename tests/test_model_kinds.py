"""Every registered model kind passes the same checks (scikit-survival's test_common).

A kind added to :data:`engagekit.models.kinds.KINDS` is run through all of these with
no test of its own: it is trained with and without held-out patients, its explanations
add up to its predictions, it is saved and loaded, and the model card describes it.
"""

from __future__ import annotations

import dataclasses
import re

import numpy as np
import pytest
from scipy.special import logit
from threadpoolctl import threadpool_limits

from engagekit import simulate_encounters
from engagekit.choices import ModelChoice, ModelKind
from engagekit.config import load_config
from engagekit.errors import UntrustedModelError
from engagekit.explain import explain_predictions
from engagekit.io._model_store import load_model, save_model
from engagekit.models import (
    CalibrationStatus,
    EarlyStopping,
    LogitRecalibration,
    TuningStatus,
    build_manifest,
    fit_model,
    train_model,
)
from engagekit.models.kinds import KINDS, ModelKindSpec, find_kind, kind_spec
from engagekit.report import model_card

TARGET = "adherent"
SPECS = [pytest.param(spec, id=kind.value) for kind, spec in KINDS.items()]
# 700 patients hold out 105 (over 100 of each outcome among them), and each of 2 folds'
# 350 training patients 52; 120 patients are too few to hold any out (18 < 30)
CASES = {"held_out": (700, 5), "none_held_out": (120, 4)}


@pytest.fixture(scope="module", autouse=True)
def one_openmp_thread():
    """HistGradientBoosting's OpenMP threads make small fits far slower on busy cores;
    the fitted trees do not depend on them."""
    with threadpool_limits(limits=1, user_api="openmp"):
        yield


@pytest.fixture(scope="module")
def services():
    return {case: simulate_encounters(n, seed=seed) for case, (n, seed) in CASES.items()}


@pytest.fixture(scope="module")
def trained(services, tmp_path_factory):
    """Each kind trained on each service (2 folds, no bootstrap) and saved:
    ``{(kind, case): (training result, its manifest, model directory)}``."""
    out = {}
    for kind in KINDS:
        for case, service in services.items():
            encounters = service.encounters
            training = train_model(encounters, TARGET, kind, n_splits=2, n_boot=0)
            directory = tmp_path_factory.mktemp(f"{kind.value}-{case}") / "model"
            manifest = build_manifest(training, load_config(), encounters)
            save_model(training.model, directory, manifest, metrics=training.metrics)
            out[kind, case] = (training, manifest, directory)
    return out


# --------------------------------------------------------------------------- registry
def test_every_kind_is_registered_once_under_its_own_name():
    assert list(KINDS) == list(ModelKind)
    for kind, spec in KINDS.items():
        assert isinstance(spec, ModelKindSpec)
        assert spec.kind is kind
        assert kind_spec(kind.value) is spec and find_kind(kind.value) is spec
    # auto, then every kind: what train_model and ``engagekit train --model`` take
    assert [c.value for c in ModelChoice] == ["auto", *(k.value for k in KINDS)]


@pytest.mark.parametrize("name", ["svm", "auto", "", "LOGISTIC"])
def test_an_unknown_kind_is_refused_naming_the_kinds(name):
    expected = ", ".join(repr(k.value) for k in KINDS)
    message = f"unknown model kind '{name}'; expected one of {expected}"
    with pytest.raises(ValueError, match=message):
        kind_spec(name)
    with pytest.raises(ValueError, match="unknown model kind"):
        fit_model(simulate_encounters(40, seed=1).encounters, TARGET, name)
    assert find_kind(name) is None


# --------------------------------------------------------------------------- fit
@pytest.mark.parametrize("spec", SPECS)
def test_the_fit_ranks_patients_as_the_truth_does(spec, trained, services):
    model = trained[spec.kind, "held_out"][0].model
    # plain str: a saved model may hold only trusted types
    assert type(model.kind) is str and model.kind == spec.kind
    assert type(model.fit_record.kind) is str and model.fit_record.kind == spec.kind
    assert bool(model.interaction_attributes) is spec.interaction_terms
    service = services["held_out"]
    p = model.predict_proba(service.encounters)
    assert p.shape == (len(service.encounters),) and np.all((p > 0) & (p < 1))
    # the simulator knows each encounter's true probability
    truth = service.truth[f"p_{TARGET}"].to_numpy()
    assert np.corrcoef(logit(p), logit(truth))[0, 1] > 0.6


@pytest.mark.parametrize("spec", SPECS)
def test_the_record_says_which_steps_ran(spec, trained):
    held = trained[spec.kind, "held_out"][0].model.fit_record
    assert held.held_out_patients == round(0.15 * held.n_patients)
    assert held.recalibration.checked
    assert held.tuning != TuningStatus.DEFAULT
    assert held.early_stopping != EarlyStopping.NOT_USED
    none = trained[spec.kind, "none_held_out"][0].model.fit_record
    assert (none.held_out_patients, none.held_out_encounters) == (0, 0)
    assert none.recalibration.status == CalibrationStatus.NO_HELD_OUT
    # with no one held out, nothing that needs held-out patients is said to have run
    assert none.tuning != TuningStatus.TUNED
    assert none.early_stopping != EarlyStopping.USED
    assert not none.refit_on_all_patients


# --------------------------------------------------------------------------- explanation
@pytest.mark.parametrize("spec", SPECS)
@pytest.mark.parametrize(
    "recalibration",
    [LogitRecalibration(), LogitRecalibration(intercept=-0.4, slope=0.7, applied=True)],
    ids=["identity", "recalibrated"],
)
def test_explanations_add_up_to_the_log_odds(spec, trained, services, recalibration):
    model = trained[spec.kind, "held_out"][0].model
    model = dataclasses.replace(model, recalibration=recalibration)
    encounters = services["held_out"].encounters.iloc[:1500]
    explanation = explain_predictions(model, encounters)
    total = explanation.base_value + explanation.values.to_numpy().sum(axis=1)
    np.testing.assert_allclose(total, model.logit(encounters), rtol=0, atol=1e-9)
    # how the work is split changes nothing
    again = explain_predictions(model, encounters, n_jobs=2, chunk_rows=333)
    np.testing.assert_allclose(again.values, explanation.values, rtol=0, atol=1e-12)


@pytest.mark.parametrize("spec", SPECS)
def test_the_kind_explains_its_estimators_margin(spec, trained, services):
    model = trained[spec.kind, "none_held_out"][0].model
    X = model.design(services["none_held_out"].encounters).to_numpy(dtype="float64")
    shap = spec.explain(model.estimator, X)
    np.testing.assert_array_equal(shap.margin, model.estimator.decision_function(X))
    assert shap.values.shape == X.shape
    np.testing.assert_allclose(shap.base_value + shap.values.sum(axis=1), shap.margin, atol=1e-9)
    empty = spec.explain(model.estimator, X[:0])
    assert empty.values.shape == (0, X.shape[1]) and empty.margin.shape == (0,)


# --------------------------------------------------------------------------- save, load
@pytest.mark.parametrize("spec", SPECS)
@pytest.mark.parametrize("case", list(CASES))
def test_a_saved_model_loads_and_predicts_the_same(spec, case, trained, services):
    training, _, directory = trained[spec.kind, case]
    loaded, manifest = load_model(directory)
    assert manifest.kind == spec.kind.value
    assert loaded.kind == spec.kind and loaded.fit_record == training.model.fit_record
    encounters = services[case].encounters
    np.testing.assert_array_equal(
        loaded.predict_proba(encounters), training.model.predict_proba(encounters)
    )


@pytest.mark.parametrize("spec", SPECS)
def test_the_kind_lists_the_types_its_saved_estimator_needs(spec, trained, monkeypatch):
    directory = trained[spec.kind, "held_out"][2]
    monkeypatch.setattr(type(spec), "trusted_types", ())
    with pytest.raises(UntrustedModelError, match="does not trust"):
        load_model(directory)


# --------------------------------------------------------------------------- card
@pytest.mark.parametrize("spec", SPECS)
def test_the_card_names_the_kind_and_says_what_its_steps_did(spec, trained):
    said = {}
    for case in CASES:
        training, manifest, _ = trained[spec.kind, case]
        card = model_card(manifest, training.metrics)
        assert card.splitlines()[0].endswith(f", {spec.card_name}")
        assert spec.card_description in card
        record = training.model.fit_record
        said[case] = spec.card_fit_sentences(record)
        sentences = said[case] + spec.card_sentences_after_calibration(record)
        assert sentences, "a kind says what its own fitting steps did"
        for sentence in sentences:
            assert re.fullmatch(r"[A-Z].*\.", sentence) and sentence in card
    assert set(said["held_out"]).isdisjoint(said["none_held_out"]), (
        "the card tells a step that ran from one that did not"
    )


@pytest.mark.parametrize("spec", SPECS)
def test_the_card_says_what_the_fold_models_did(spec, trained):
    training, manifest, _ = trained[spec.kind, "none_held_out"]
    card = model_card(manifest, training.metrics)
    assert "No fold held out training patients (too few patients)" in card
    assert spec.card_folds_not_held_out in card
    training, manifest, _ = trained[spec.kind, "held_out"]
    card = model_card(manifest, training.metrics)
    folds = training.steps.cross_validation_folds
    words, ran = spec.card_folds_step(folds)
    assert ran == 2 and f"All 2 folds held out training patients: {words} all 2 folds" in card
