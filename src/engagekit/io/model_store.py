"""Save and load engagement models safely.

A model directory holds ``model.skops`` (skops' secure format: no pickle, nothing runs
on load unless its type is on an explicit trusted list) and ``manifest.json`` (engagekit
and library versions, config, training-data hash, features, target, metrics, creation
time, and the SHA-256 of ``model.skops``). Loading refuses, before any of the file's
content is turned into objects, a model whose hash does not match its manifest (it was
altered) or that holds any type outside engagekit's trusted list (it is not one of ours).
"""

from __future__ import annotations

import hashlib
import json
import warnings
import zipfile
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pandas as pd

from ..errors import DataReadError, OutputError

__all__ = [
    "MODEL_FORMAT_VERSION",
    "ModelVersionWarning",
    "UntrustedModelError",
    "data_fingerprint",
    "load_model",
    "read_manifest",
    "read_metrics",
    "save_model",
]

MODEL_FORMAT_VERSION = 1
MODEL_FILE = "model.skops"
MANIFEST_FILE = "manifest.json"
METRICS_FILE = "metrics.json"
_LIBRARIES = ("engagekit", "scikit-learn", "numpy", "pandas", "scipy", "skops")

# Every type a saved engagekit model may contain. Anything else in a file means it is
# not a model engagekit wrote, and it is refused before being loaded.
TRUSTED_TYPES = [
    "builtins.bool",
    "builtins.dict",
    "builtins.float",
    "builtins.int",
    "builtins.list",
    "builtins.str",
    "builtins.tuple",
    "engagekit.features.transformer.EncounterFeatures",
    "engagekit.models.calibration.LogitRecalibration",
    "engagekit.models.estimators.ColumnWeights",
    "engagekit.models.fit_record.FitRecord",
    "engagekit.models.model.EngagementModel",
    "numpy.dtype",
    "numpy.float64",
    "numpy.int64",
    "numpy.ndarray",
    "numpy.random._generator.Generator",
    "numpy.random._pcg64.PCG64",
    "numpy.random.mtrand.RandomState",
    "numpy.uint64",
    "sklearn._loss._loss.CyHalfBinomialLoss",
    "sklearn._loss.link.Interval",
    "sklearn._loss.link.LogitLink",
    "sklearn._loss.loss.HalfBinomialLoss",
    "sklearn.ensemble._hist_gradient_boosting.binning._BinMapper",
    "sklearn.ensemble._hist_gradient_boosting.gradient_boosting.HistGradientBoostingClassifier",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sklearn.linear_model._logistic.LogisticRegression",
    "sklearn.pipeline.Pipeline",
    "sklearn.preprocessing._data.StandardScaler",
    "sklearn.preprocessing._label.LabelEncoder",
]


class UntrustedModelError(DataReadError):
    """A model file was altered, or holds something engagekit did not write."""


class ModelVersionWarning(UserWarning):
    """A model is loaded under library versions other than those it was saved with."""


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def data_fingerprint(frame: pd.DataFrame) -> str:
    """SHA-256 of a table's content (values, column names and order), for the record."""
    digest = hashlib.sha256()
    digest.update(json.dumps([str(c) for c in frame.columns]).encode())
    digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return digest.hexdigest()


def _versions() -> dict[str, str]:
    return {name: version(name) for name in _LIBRARIES}


def _types_in(path: Path) -> set[str]:
    """Every type and function a skops file refers to, read from its JSON schema only.

    skops' own ``get_untrusted_types`` leaves out the types skops trusts by default (any
    scikit-learn estimator), so it cannot tell an engagekit model from another object;
    this lists everything, without turning any of it into objects.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            schema = json.loads(archive.read("schema.json"))
    except (zipfile.BadZipFile, KeyError, json.JSONDecodeError, OSError) as e:
        raise UntrustedModelError(f"{str(path)!r} is not a readable skops file: {e}") from e
    found: set[str] = set()
    stack = [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if "__module__" in node and "__class__" in node:
                found.add(f"{node['__module__']}.{node['__class__']}")
            content = node.get("content")
            if node.get("__loader__") in ("FunctionNode", "TypeNode", "MethodNode") and (
                isinstance(content, dict)
            ):
                module = content.get("module_path", "")
                name = content.get("function") or content.get("name") or ""
                found.add(f"{module}.{name}")
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return found


def save_model(model: Any, directory: str | Path, manifest: dict[str, Any]) -> Path:
    """Write ``model`` and its manifest to ``directory`` (created if needed).

    ``manifest`` carries what the caller knows (config, data hash, features, target,
    metrics); the format version, library versions, creation time and file hash are
    added here.
    """
    import skops.io as sio

    directory = Path(directory)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / MODEL_FILE
        sio.dump(model, path)
        record = {
            "format_version": MODEL_FORMAT_VERSION,
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
            "versions": _versions(),
            **manifest,
            "model_file": MODEL_FILE,
            "model_sha256": _sha256(path),
        }
        (directory / MANIFEST_FILE).write_text(json.dumps(record, indent=2) + "\n")
    except OSError as e:
        raise OutputError(f"cannot write the model to {str(directory)!r}: {e}") from e
    return directory


def read_manifest(directory: str | Path) -> dict[str, Any]:
    """The manifest of a saved model, checked for form."""
    directory = Path(directory)
    path = directory / MANIFEST_FILE
    if not directory.is_dir():
        raise DataReadError(f"{str(directory)!r} is not a model directory")
    try:
        record = json.loads(path.read_text())
    except FileNotFoundError as e:
        raise UntrustedModelError(
            f"{str(directory)!r} has no {MANIFEST_FILE}; it is not an engagekit model"
        ) from e
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as e:
        raise UntrustedModelError(f"{str(path)!r} is not a readable manifest: {e}") from e
    if not isinstance(record, dict) or record.get("format_version") != MODEL_FORMAT_VERSION:
        raise UntrustedModelError(
            f"{str(path)!r} is not an engagekit model manifest of format version "
            f"{MODEL_FORMAT_VERSION}"
        )
    return record


def read_metrics(directory: str | Path) -> dict[str, Any]:
    """The validation metrics ``engagekit train`` wrote beside a model (``metrics.json``).

    Raises
    ------
    DataReadError
        The directory has no readable ``metrics.json`` holding a JSON object.
    """
    path = Path(directory) / METRICS_FILE
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as e:
        raise DataReadError(
            f"{str(Path(directory))!r} has no {METRICS_FILE}; train the model with "
            "engagekit train, which writes it"
        ) from e
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DataReadError(f"{str(path)!r} is not a readable metrics file: {e}") from e
    if not isinstance(record, dict):
        raise DataReadError(f"{str(path)!r} must hold a JSON object of metrics")
    return record


def load_model(directory: str | Path) -> tuple[Any, dict[str, Any]]:
    """Load a model saved by :func:`save_model`, refusing altered or foreign files.

    Returns
    -------
    (model, manifest)

    Raises
    ------
    UntrustedModelError
        The file's hash does not match the manifest, or it holds a type engagekit does
        not trust. Nothing from the file has been turned into objects when this raises.

    Warns
    -----
    ModelVersionWarning
        The model was saved under other library versions.
    """
    import skops.io as sio

    directory = Path(directory)
    manifest = read_manifest(directory)
    path = directory / MODEL_FILE
    if not path.is_file():
        raise UntrustedModelError(f"{str(directory)!r} has no {MODEL_FILE}")
    if _sha256(path) != manifest.get("model_sha256"):
        raise UntrustedModelError(
            f"{str(path)!r} does not match the hash in its manifest: the model file was "
            "altered after it was saved; refusing to load it"
        )
    found = _types_in(path)
    foreign = sorted(found - set(TRUSTED_TYPES))
    if foreign:
        raise UntrustedModelError(
            f"{str(path)!r} holds types engagekit does not trust ({', '.join(foreign)}); "
            "refusing to load it"
        )
    saved = manifest.get("versions", {})
    now = _versions()
    differ = {k: (saved.get(k), v) for k, v in now.items() if saved.get(k) != v}
    if differ:
        listed = ", ".join(f"{k} {a} → {b}" for k, (a, b) in sorted(differ.items()))
        warnings.warn(
            f"the model in {str(directory)!r} was saved under other versions ({listed}); "
            "its predictions may differ slightly — retrain to be sure",
            ModelVersionWarning,
            stacklevel=2,
        )
    model = sio.load(path, trusted=sorted(found))
    return model, manifest
