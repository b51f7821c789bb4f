"""Saved models: round trip, refusal of altered or foreign files, version warnings."""

import json

import numpy as np
import pytest
import skops.io as sio
from sklearn.tree import DecisionTreeClassifier

from engagekit import simulate_encounters
from engagekit.io.model_store import (
    ModelVersionWarning,
    UntrustedModelError,
    load_model,
    save_model,
)
from engagekit.models import fit_model


@pytest.fixture(scope="module")
def data():
    return simulate_encounters(600, seed=5).encounters


@pytest.fixture(scope="module", params=["logistic", "gbm"])
def saved(request, data, tmp_path_factory):
    model = fit_model(data, "attended_next", request.param)
    directory = tmp_path_factory.mktemp(request.param)
    save_model(model, directory, {"target": "attended_next"})
    return model, directory


def test_round_trip_gives_identical_predictions(saved, data):
    model, directory = saved
    loaded, manifest = load_model(directory)
    assert manifest["target"] == "attended_next"
    assert manifest["format_version"] == 1
    assert np.array_equal(loaded.predict_proba(data), model.predict_proba(data))


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


def test_a_foreign_object_is_refused_even_with_a_matching_hash(tmp_path):
    import hashlib

    sio.dump(DecisionTreeClassifier(), tmp_path / "model.skops")
    digest = hashlib.sha256((tmp_path / "model.skops").read_bytes()).hexdigest()
    (tmp_path / "manifest.json").write_text(
        json.dumps({"format_version": 1, "model_sha256": digest, "versions": {}})
    )
    with pytest.raises(UntrustedModelError, match="does not trust"):
        load_model(tmp_path)


@pytest.mark.parametrize(
    ("manifest", "message"),
    [
        (None, "no manifest.json"),
        ("{not json", "not a readable manifest"),
        ('{"format_version": 99}', "format version 1"),
    ],
)
def test_a_directory_without_a_good_manifest_is_refused(tmp_path, manifest, message):
    (tmp_path / "model.skops").write_bytes(b"x")
    if manifest is not None:
        (tmp_path / "manifest.json").write_text(manifest)
    with pytest.raises(UntrustedModelError, match=message):
        load_model(tmp_path)


def test_other_library_versions_warn(saved, tmp_path):
    _, directory = saved
    for f in directory.iterdir():
        (tmp_path / f.name).write_bytes(f.read_bytes())
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    manifest["versions"]["scikit-learn"] = "0.0.1"
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.warns(ModelVersionWarning, match="scikit-learn 0.0.1"):
        load_model(tmp_path)
