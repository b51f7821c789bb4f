"""Save and load engagement models safely.

A model directory (:mod:`engagekit.io._model_directory`) holds ``model.skops`` (skops'
secure format: no pickle, nothing runs on load unless its type is on an explicit trusted
list), ``manifest.json`` (engagekit and library versions, config, training-data hash,
features, target, flag rule, metrics, creation time, and the SHA-256 of
``model.skops``), ``metrics.json``, ``model_card.md``, and ``integrity.json``: the size
and SHA-256 of every other file, and a signature when a key is set.

:func:`save_model` writes them all into a new directory swapped in whole. Every reader
(:func:`load_model`, :func:`load_model_directory`, :func:`read_manifest`,
:func:`read_metrics`) first checks the whole directory against its integrity record,
then parses the checked bytes: the manifest and metrics are read as a
:class:`~engagekit.models.ModelManifest` and :class:`~engagekit.models.ModelMetrics`
(refused, naming each field at fault, if they are not of that form or of another format
version), and the model is loaded only if it holds nothing outside engagekit's
trusted types, is an engagekit model, and agrees with its manifest. Each refusal is an
:class:`~engagekit.errors.UntrustedModelError` (a
:class:`~engagekit.errors.TamperedModelError` for a file that differs from the record)
naming the file; nothing has been turned into objects when it is raised.
"""

from __future__ import annotations

import hashlib
import json
import warnings
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .._versions import library_versions
from ..errors import (
    ConfigError,
    DataReadError,
    ModelSignatureWarning,
    ModelVersionWarning,
    ResultFormatError,
    TamperedModelError,
    UntrustedModelError,
)
from ..models._manifest import MODEL_FORMAT_VERSION, ModelManifest
from ..models._model_metrics import ModelMetrics
from ._model_directory import (
    INTEGRITY_FILE,
    MANIFEST_FILE,
    METRICS_FILE,
    MODEL_CARD_FILE,
    MODEL_FILE,
    MODEL_KEY_VARIABLE,
    SIZE_LIMITS,
    _Checked,
    _checked,
    _seal,
    _signing_key,
    check_replaceable,
    replacing_directory,
)

__all__ = [
    "INTEGRITY_FILE",
    "MANIFEST_FILE",
    "METRICS_FILE",
    "MODEL_CARD_FILE",
    "MODEL_FILE",
    "MODEL_FORMAT_VERSION",
    "MODEL_KEY_VARIABLE",
    "SIZE_LIMITS",
    "ModelSignatureWarning",
    "ModelVersionWarning",
    "SavedModel",
    "TamperedModelError",
    "UntrustedModelError",
    "check_replaceable",
    "load_model",
    "load_model_directory",
    "read_manifest",
    "read_metrics",
    "replacing_directory",
    "save_model",
]

_LIBRARIES = ("engagekit", "scikit-learn", "numpy", "pandas", "scipy", "skops")
_RETRAIN = "retrain it with engagekit train"

# Every type a saved engagekit model may contain besides its estimator's, which each
# model kind lists (ModelKindSpec.trusted_types; see _trusted_types). Anything else in a
# file means it is not a model engagekit wrote, and it is refused before being loaded.
TRUSTED_TYPES = [
    "builtins.bool",
    "builtins.dict",
    "builtins.float",
    "builtins.int",
    "builtins.list",
    "builtins.str",
    "builtins.tuple",
    "engagekit.features.EncounterFeatures",
    "engagekit.models.LogitRecalibration",
    "engagekit.models.SubgroupIntercepts",
    "engagekit.models.FitRecord",
    "engagekit.models.EngagementModel",
    "numpy.dtype",
    "numpy.float64",
    "numpy.int64",
    "numpy.ndarray",
    "numpy.random._generator.Generator",
    "numpy.random._pcg64.PCG64",
    "numpy.random.mtrand.RandomState",
    "numpy.uint64",
]
# what the top of a model file must be
_MODEL_CLASS = "engagekit.models.EngagementModel"


@dataclass(frozen=True)
class SavedModel:
    """A model directory, loaded whole and checked.

    Attributes
    ----------
    path : Path
        Where it was read from.
    model : EngagementModel
    manifest : ModelManifest
        ``manifest.json``.
    metrics : ModelMetrics or None
        ``metrics.json`` (None for a directory saved without metrics).
    """

    path: Path
    model: Any
    manifest: ModelManifest
    metrics: ModelMetrics | None


# --------------------------------------------------------------------------- saving
def save_model(
    model: Any,
    directory: str | Path,
    manifest: ModelManifest,
    *,
    metrics: ModelMetrics | None = None,
    model_card: Callable[[ModelManifest, ModelMetrics], str] | None = None,
    key: str | bytes | None = None,
) -> Path:
    """Write a model directory: ``model``, its manifest, its metrics and model card, and
    the integrity record over them (last), replacing any previous directory whole.

    Parameters
    ----------
    model : EngagementModel
    directory : str or Path
        Made if needed. A model directory there is replaced whole (see
        :func:`~engagekit.io._model_directory.replacing_directory`); a folder holding
        other files is refused.
    manifest : ModelManifest
        What training recorded (:func:`~engagekit.models.build_manifest`); the library
        versions, creation time and the model file's name and hash are stamped here
        (replacing those of a manifest read from another directory).
    metrics : ModelMetrics, optional
        Written as ``metrics.json``.
    model_card : callable, optional
        ``model_card(manifest, metrics)`` gives the text of ``model_card.md``
        (:func:`engagekit.report._model_card`), from the manifest as written; it needs
        ``metrics``.
    key : str or bytes, optional
        Signing key; by default the value of the environment variable
        ``ENGAGEKIT_MODEL_KEY``, if set. With a key, the integrity record carries an
        HMAC-SHA256 signature, and loading with the key refuses any directory not
        signed with it.

    Returns
    -------
    Path
        ``directory``.

    Raises
    ------
    OutputError
        The directory cannot be written or replaced; it is left as it was.
    ConfigError
        The signing key is shorter than 16 characters.
    """
    import skops.io as sio

    from ..models._model import EngagementModel

    if not isinstance(model, EngagementModel):
        raise TypeError(f"save_model saves an EngagementModel, not a {type(model).__name__}")
    if not isinstance(manifest, ModelManifest):
        raise TypeError(
            f"save_model saves a ModelManifest (see engagekit.models.build_manifest), not a "
            f"{type(manifest).__name__}"
        )
    if metrics is not None and not isinstance(metrics, ModelMetrics):
        raise TypeError(f"save_model saves ModelMetrics, not a {type(metrics).__name__}")
    if model_card is not None and metrics is None:
        raise ValueError("a model card is written from the metrics: pass metrics too")
    signing_key = _signing_key(key)
    directory = Path(directory)
    with replacing_directory(directory) as partial:
        path = partial / MODEL_FILE
        sio.dump(model, path)
        # what this file is, whatever a manifest copied from another model says
        stamped = manifest.model_copy(
            update={
                "created": datetime.now(UTC).isoformat(timespec="seconds"),
                "versions": library_versions(_LIBRARIES),
                "model_file": MODEL_FILE,
                "model_sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
            }
        )
        record = stamped.to_dict()
        (partial / MANIFEST_FILE).write_text(json.dumps(record, indent=2) + "\n")
        if metrics is not None:
            (partial / METRICS_FILE).write_text(json.dumps(metrics.to_dict(), indent=2) + "\n")
            # (a model card without metrics was refused above)
            if model_card is not None:
                card = model_card(stamped, metrics)
                (partial / MODEL_CARD_FILE).write_text(card, encoding="utf-8")
        _seal(partial, signing_key)
    return directory


# --------------------------------------------------------------------------- checking
def _read_form(record: Any, kind: type[Any], checked: _Checked, name: str, what: str) -> Any:
    """``record`` read as a ``kind`` (:meth:`from_dict`); else refused naming the file
    and each field at fault."""
    where = checked.where(name)
    if not isinstance(record, dict):
        raise UntrustedModelError(f"{where} must hold a JSON object; {_RETRAIN}", file=name)
    try:
        return kind.from_dict(record)
    except ResultFormatError as e:
        problems = "; ".join(e.problems)
        if e.format_version is not None:
            problems = (
                f"its 'format_version' is {e.format_version!r:.40}; this engagekit reads "
                f"model format {MODEL_FORMAT_VERSION}"
            )
        raise UntrustedModelError(
            f"{where} is not {what}: {problems}. {_RETRAIN.capitalize()}", file=name
        ) from None


def _manifest(checked: _Checked) -> ModelManifest:
    """``manifest.json``, checked for form and against the integrity record."""
    what = "a valid engagekit model manifest"
    record = checked.json(MANIFEST_FILE, "a readable manifest")
    manifest = _read_form(record, ModelManifest, checked, MANIFEST_FILE, what)
    where = checked.where(MANIFEST_FILE)
    problem = None
    if not manifest.saved:
        stamps = ("created", "versions", "model_file", "model_sha256")
        unstamped = [name for name in stamps if getattr(manifest, name) is None]
        problem = f"it lacks {', '.join(map(repr, unstamped))}, which saving a model records"
    elif manifest.model_file != MODEL_FILE:
        problem = f"its 'model_file' must be {MODEL_FILE!r}, found {manifest.model_file!r}"
    if problem is None:
        # a manifest without its config, or with one this engagekit cannot read, is
        # refused here, at loading, by every command and reader alike
        try:
            manifest.training_config(f"the model {str(checked.directory)!r}")
        except ConfigError as e:
            problem = str(e)
    if problem is not None:
        raise UntrustedModelError(
            f"{where} is not {what}: {problem}. {_RETRAIN.capitalize()}", file=MANIFEST_FILE
        )
    # the manifest names its model by hash: one more sign of a directory rewritten
    # piecemeal
    if manifest.model_sha256 != checked.sha256(MODEL_FILE):
        raise TamperedModelError(
            f"{where} names another model file (its 'model_sha256' is not the SHA-256 of "
            f"{MODEL_FILE}); {_RETRAIN}",
            file=MANIFEST_FILE,
        )
    return manifest


def _metrics(checked: _Checked, manifest: ModelManifest) -> ModelMetrics | None:
    """``metrics.json`` (None when the directory has none), checked for form."""
    if METRICS_FILE not in checked.texts:
        return None
    what = "a valid metrics file"
    record = checked.json(METRICS_FILE, "a readable metrics file")
    metrics = _read_form(record, ModelMetrics, checked, METRICS_FILE, what)
    if metrics.target != manifest.target:
        raise UntrustedModelError(
            f"{checked.where(METRICS_FILE)} is for {metrics.target!r}, but the manifest's "
            f"model predicts {manifest.target!r}: the records disagree on the outcome; "
            f"{_RETRAIN}",
            file=METRICS_FILE,
        )
    return metrics


def _types_in(checked: _Checked) -> tuple[set[str], str | None]:
    """Every type and function the model file refers to, and the type of its top
    object, read from its JSON schema only.

    skops' own ``get_untrusted_types`` leaves out the types skops trusts by default (any
    scikit-learn estimator), so it cannot tell an engagekit model from another object;
    this lists everything, without turning any of it into objects.
    """
    where = checked.where(MODEL_FILE)
    limit = SIZE_LIMITS[MODEL_FILE]
    try:
        with zipfile.ZipFile(checked.model) as archive:
            unpacked = sum(info.file_size for info in archive.infolist())
            if unpacked > limit:
                raise UntrustedModelError(
                    f"{where} unpacks to {unpacked:,} bytes, more than the {limit:,} a model "
                    "may hold; refusing to load it",
                    file=MODEL_FILE,
                )
            schema = json.loads(archive.read("schema.json"))
    except (zipfile.BadZipFile, KeyError, json.JSONDecodeError, UnicodeDecodeError, OSError) as e:
        raise UntrustedModelError(
            f"{where} is not a readable skops file: {e}; {_RETRAIN}", file=MODEL_FILE
        ) from e
    finally:
        checked.model.seek(0)
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
    stated = isinstance(schema, dict) and "__module__" in schema and "__class__" in schema
    top = f"{schema['__module__']}.{schema['__class__']}" if stated else None
    return found, top


def _model(checked: _Checked, manifest: ModelManifest) -> Any:
    """The model, loaded once the file has been checked and its types found trusted."""
    import skops.io as sio

    where = checked.where(MODEL_FILE)
    found, top = _types_in(checked)
    foreign = sorted(found - _trusted_types())
    if foreign and all(name.startswith("engagekit.") for name in foreign):
        # earlier builds named the classes by the (since renamed) module defining them
        raise UntrustedModelError(
            f"{where} names engagekit's classes as an earlier release did "
            f"({', '.join(foreign)}); this engagekit cannot load it: {_RETRAIN}",
            file=MODEL_FILE,
        )
    if foreign:
        raise UntrustedModelError(
            f"{where} holds types engagekit does not trust ({', '.join(foreign)}); "
            "refusing to load it",
            file=MODEL_FILE,
        )
    if top != _MODEL_CLASS:
        held = f"an object of type {top}" if top else "an object of no stated type"
        raise UntrustedModelError(
            f"{where} holds {held}, not an engagekit model (EngagementModel); {_RETRAIN}",
            file=MODEL_FILE,
        )
    try:
        model = sio.load(checked.model, trusted=sorted(found))
    except Exception as e:
        # the file is hashed and holds only trusted types, yet skops cannot build it: it
        # is malformed (a node lacking a field, a field of the wrong kind), whatever skops
        # raises for it
        raise UntrustedModelError(
            f"{where} is malformed: skops cannot load it ({type(e).__name__}: {e}); {_RETRAIN}",
            file=MODEL_FILE,
        ) from e
    problem = _model_problem(model)
    if problem:
        raise UntrustedModelError(f"{where} is malformed: {problem}; {_RETRAIN}", file=MODEL_FILE)
    said = {"target": model.target, "kind": model.kind, "features": list(model.feature_names)}
    recorded = {"target": manifest.target, "kind": manifest.kind, "features": manifest.features}
    differ = [key for key, value in said.items() if recorded[key] != value]
    if differ:
        detail = "; ".join(
            f"{key}: {recorded[key]!r:.60} in the manifest, {said[key]!r:.60} in the model"
            for key in differ
        )
        raise UntrustedModelError(
            f"{checked.where(MANIFEST_FILE)} and {MODEL_FILE} disagree ({detail}); one of "
            f"them was rewritten. {_RETRAIN.capitalize()}",
            file=MANIFEST_FILE,
        )
    return model


def _trusted_types() -> set[str]:
    """:data:`TRUSTED_TYPES` and the types every registered model kind's estimator holds."""
    from ..models.kinds import KINDS

    return {*TRUSTED_TYPES, *(name for spec in KINDS.values() for name in spec.trusted_types)}


def _model_problem(model: Any) -> str | None:
    """What makes a loaded object unusable as an engagekit model, if anything."""
    from ..models._calibration import LogitRecalibration, SubgroupIntercepts
    from ..models._model import EngagementModel

    if not isinstance(model, EngagementModel):
        return f"it holds a {type(model).__name__}, not an EngagementModel"
    if not (isinstance(model.target, str) and isinstance(model.kind, str)):
        return "its target and kind must be names"
    if not hasattr(model.features, "transform") or not hasattr(
        model.estimator, "decision_function"
    ):
        return "its features or estimator are not fitted transformers"
    if not isinstance(model.recalibration, LogitRecalibration):
        return "its recalibration is not a LogitRecalibration"
    if not isinstance(model.subgroup_intercepts, tuple) or not all(
        isinstance(s, SubgroupIntercepts) for s in model.subgroup_intercepts
    ):
        return "its per-subgroup intercepts are not SubgroupIntercepts"
    try:
        names = model.feature_names
    except (AttributeError, TypeError) as e:
        return f"its feature names cannot be read ({e})"
    if not all(isinstance(name, str) for name in names):
        return "its feature names must be names"
    return None


def _warn_versions(directory: Path, manifest: ModelManifest) -> None:
    saved = manifest.versions or {}
    now = library_versions(_LIBRARIES)
    differ = {k: (saved.get(k), v) for k, v in now.items() if saved.get(k) != v}
    if differ:
        listed = ", ".join(f"{k} {a} → {b}" for k, (a, b) in sorted(differ.items()))
        warnings.warn(
            f"the model in {str(directory)!r} was saved under other versions ({listed}); "
            "its predictions may differ slightly — retrain to be sure",
            ModelVersionWarning,
            stacklevel=3,
        )


# --------------------------------------------------------------------------- reading
def load_model_directory(directory: str | Path, *, key: str | bytes | None = None) -> SavedModel:
    """Load a model directory whole: model, manifest and metrics, read at one moment.

    Every file is checked against the directory's integrity record before any is
    parsed; the manifest and metrics are checked for form, and the model is loaded
    only if it holds nothing but trusted types, is an engagekit model and agrees with
    its manifest.

    Parameters
    ----------
    directory : str or Path
        Written by :func:`save_model` (``engagekit train``).
    key : str or bytes, optional
        Signing key; by default the value of the environment variable
        ``ENGAGEKIT_MODEL_KEY``, if set. With a key, a directory not signed with it is
        refused.

    Returns
    -------
    SavedModel

    Raises
    ------
    TamperedModelError
        A file differs from the integrity record (altered, truncated, replaced, deleted,
        added, a link or a special file), or the signature does not verify; the message
        names the file. Nothing from the directory has been parsed.
    UntrustedModelError
        A file is malformed, the model holds a type engagekit does not trust or is not
        an engagekit model, or the directory is of an older format; the message names
        the file.
    DataReadError
        ``directory`` is not a directory.
    ConfigError
        The signing key is shorter than 16 characters.

    Warns
    -----
    ModelVersionWarning
        The model was saved under other library versions.
    ModelSignatureWarning
        The directory is signed but no key was given, so the signature was not checked.

    Examples
    --------
    >>> import tempfile
    >>> load_model_directory(tempfile.mkdtemp())
    Traceback (most recent call last):
    ...
    engagekit.errors.UntrustedModelError: '.../integrity.json' is missing, and so is manifest.json: '...' is not an engagekit model directory
    """  # noqa: E501
    with _checked(directory, key) as checked:
        manifest = _manifest(checked)
        _warn_versions(checked.directory, manifest)
        model = _model(checked, manifest)
        metrics = _metrics(checked, manifest)
    return SavedModel(Path(directory), model, manifest, metrics)


def load_model(
    directory: str | Path, *, key: str | bytes | None = None
) -> tuple[Any, ModelManifest]:
    """Load a model saved by :func:`save_model`, refusing altered or foreign files.

    The checks are :func:`load_model_directory`'s.

    Returns
    -------
    (model, manifest)

    Raises
    ------
    TamperedModelError, UntrustedModelError, DataReadError, ConfigError
        As :func:`load_model_directory`.

    Warns
    -----
    ModelVersionWarning, ModelSignatureWarning
        As :func:`load_model_directory`.
    """
    loaded = load_model_directory(directory, key=key)
    return loaded.model, loaded.manifest


def read_manifest(directory: str | Path, *, key: str | bytes | None = None) -> ModelManifest:
    """The manifest of a saved model, once every file of its directory has been checked
    against the integrity record (the model itself is not loaded).

    Raises
    ------
    TamperedModelError, UntrustedModelError, DataReadError, ConfigError
        As :func:`load_model_directory`.
    """
    with _checked(directory, key) as checked:
        return _manifest(checked)


def read_metrics(directory: str | Path, *, key: str | bytes | None = None) -> ModelMetrics:
    """The validation metrics ``engagekit train`` wrote beside a model (``metrics.json``),
    once every file of its directory has been checked against the integrity record.

    Raises
    ------
    DataReadError
        The directory has no ``metrics.json``.
    TamperedModelError, UntrustedModelError, ConfigError
        As :func:`load_model_directory`.
    """
    with _checked(directory, key) as checked:
        metrics = _metrics(checked, _manifest(checked))
    if metrics is None:
        raise DataReadError(
            f"{str(Path(directory))!r} has no {METRICS_FILE}; train the model with "
            "engagekit train, which writes it"
        )
    return metrics
