"""Saved models: round trip, refusal of altered or foreign files, version warnings."""

import json
import shutil

import numpy as np
import pytest
import skops.io as sio
from sklearn.tree import DecisionTreeClassifier

from _model_dirs import reseal
from engagekit import simulate_encounters
from engagekit.config import load_config
from engagekit.io._model_store import (
    ModelVersionWarning,
    UntrustedModelError,
    load_model,
    load_model_directory,
    read_manifest,
    read_metrics,
    save_model,
)
from engagekit.models import ModelManifest, ModelMetrics, build_manifest, train_model


@pytest.fixture(scope="module")
def data():
    return simulate_encounters(600, seed=5).encounters


@pytest.fixture(scope="module", params=["logistic", "gbm"])
def trained(request, data):
    """``(what train_model returned, its manifest)``."""
    result = train_model(data, "attended_next", request.param, n_splits=2, n_boot=0)
    return result, build_manifest(result, load_config(), data, source="simulated")


@pytest.fixture(scope="module")
def saved(trained, tmp_path_factory):
    result, manifest = trained
    directory = tmp_path_factory.mktemp(result.model.kind)
    save_model(result.model, directory, manifest, metrics=result.metrics)
    return result.model, directory


def test_round_trip_gives_identical_predictions(saved, data):
    model, directory = saved
    loaded, manifest = load_model(directory)
    assert manifest.target == "attended_next"
    assert manifest.format_version == 2
    assert np.array_equal(loaded.predict_proba(data), model.predict_proba(data))


def test_the_manifest_and_metrics_are_read_back_as_written(trained, saved):
    result, manifest = trained
    _, directory = saved
    read = read_manifest(directory)
    assert isinstance(read, ModelManifest) and read.saved and not manifest.saved
    # saving stamps the manifest and changes nothing else
    stamps = ("created", "versions", "model_file", "model_sha256")
    assert read.model_copy(update=dict.fromkeys(stamps)) == manifest
    assert read.model_file == "model.skops" and read.versions["skops"]
    assert json.loads((directory / "manifest.json").read_text()) == read.to_dict()
    metrics = read_metrics(directory)
    assert isinstance(metrics, ModelMetrics) and metrics == result.metrics
    assert json.loads((directory / "metrics.json").read_text()) == result.metrics.to_dict()
    loaded = load_model_directory(directory)
    assert (loaded.manifest, loaded.metrics) == (read, metrics)


def test_save_model_takes_the_typed_records(trained, tmp_path):
    result, manifest = trained
    with pytest.raises(TypeError, match=r"ModelManifest .*build_manifest"):
        save_model(result.model, tmp_path / "m", manifest.to_dict())
    with pytest.raises(TypeError, match="saves ModelMetrics, not a dict"):
        save_model(result.model, tmp_path / "m", manifest, metrics=result.metrics.to_dict())
    assert not (tmp_path / "m").exists()


def test_an_altered_model_file_is_refused(saved, tmp_path):
    _, directory = saved
    copy = tmp_path / "m"
    copy.mkdir()
    for f in directory.iterdir():
        (copy / f.name).write_bytes(f.read_bytes())
    blob = bytearray((copy / "model.skops").read_bytes())
    blob[len(blob) // 2] ^= 0xFF
    (copy / "model.skops").write_bytes(bytes(blob))
    with pytest.raises(UntrustedModelError, match="altered"):
        load_model(copy)


def test_a_foreign_object_is_refused_even_with_a_matching_hash(saved, tmp_path):
    _, directory = saved
    copy = shutil.copytree(directory, tmp_path / "m")
    sio.dump(DecisionTreeClassifier(), copy / "model.skops")
    reseal(copy)  # the manifest and the integrity record name the foreign file
    with pytest.raises(UntrustedModelError, match="does not trust"):
        load_model(copy)


@pytest.mark.parametrize(
    ("manifest", "message"),
    [
        (None, "manifest.json' is missing"),
        ("{not json", "not a readable manifest"),
        ('{"format_version": 99}', "'format_version' is 99; this engagekit reads model format 2"),
        ('{"format_version": 1}', "'format_version' is 1; this engagekit reads model format 2"),
        ('{"created": null}', "it lacks 'created', which saving a model records"),
        ('{"fit_for_use": "no"}', "'fit_for_use': input should be a valid boolean"),
    ],
)
def test_a_directory_without_a_good_manifest_is_refused(saved, tmp_path, manifest, message):
    _, directory = saved
    copy = shutil.copytree(directory, tmp_path / "m")
    if manifest is None:
        (copy / "manifest.json").unlink()
    else:
        whole = json.loads((copy / "manifest.json").read_text())
        edited = {**whole, **json.loads(manifest)} if manifest.startswith('{"') else None
        (copy / "manifest.json").write_text(manifest if edited is None else json.dumps(edited))
        reseal(copy, model_sha256=False)  # so that the manifest itself is read
    with pytest.raises(UntrustedModelError, match=message):
        load_model(copy)


def test_other_library_versions_warn(saved, tmp_path):
    _, directory = saved
    copy = shutil.copytree(directory, tmp_path / "m")
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["versions"]["scikit-learn"] = "0.0.1"
    (copy / "manifest.json").write_text(json.dumps(manifest))
    reseal(copy)
    with pytest.warns(ModelVersionWarning, match="scikit-learn 0.0.1"):
        load_model(copy)
