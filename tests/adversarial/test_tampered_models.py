"""Tampered model directories: every file altered, cut short, replaced, deleted, swapped
for a link or a pipe, files added, records rewritten consistently with and without the
signing key, an older format, and malformed files re-hashed so that the checks behind
the integrity record are reached.

Each case is refused by every reader of a model directory with a message naming the
file at fault, and nothing is written: the directory is as it was, and a command leaves
no output.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import skops.io as sio
from sklearn.tree import DecisionTreeClassifier

from _cli import assert_no_traceback, run
from _model_dirs import edit_json, reseal
from engagekit import simulate_encounters
from engagekit.errors import ConfigError, TamperedModelError, UntrustedModelError
from engagekit.io._model_store import (
    MODEL_KEY_VARIABLE,
    SIZE_LIMITS,
    ModelSignatureWarning,
    load_model,
    load_model_directory,
    read_manifest,
    read_metrics,
    save_model,
)
from engagekit.report import model_card

KEY = "a service's secret key, 43 characters long"
FILES = ("manifest.json", "model.skops", "metrics.json", "model_card.md")
READERS = (load_model_directory, read_manifest, read_metrics)


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Path, Path, Path]:
    """``(a model directory, another model's directory, the same model signed)``, all
    written by engagekit train (the signed one by save_model with the key)."""
    tmp = tmp_path_factory.mktemp("tampered")
    simulate_encounters(150, seed=7).encounters.to_csv(tmp / "encounters.csv", index=False)
    for out, target, seed in (("model", "attended_next", "0"), ("other", "adherent", "1")):
        result = run(
            "train", "encounters.csv", "--target", target, "--model", "logistic",
            "--folds", "2", "--bootstrap", "0", "--seed", seed, "--out", out, cwd=tmp,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
    loaded = load_model_directory(tmp / "model")
    save_model(
        loaded.model, tmp / "signed", loaded.manifest, metrics=loaded.metrics,
        model_card=model_card, key=KEY,
    )  # fmt: skip
    return tmp / "model", tmp / "other", tmp / "signed"


# --------------------------------------------------------------------------- tampering
def _flip_byte(name: str, at: float = 0.5) -> Callable[[Path, Path], None]:
    """One bit of one byte changed, ``at`` that share of the file."""

    def tamper(copy: Path, other: Path) -> None:
        blob = bytearray((copy / name).read_bytes())
        blob[int(len(blob) * at)] ^= 0x01
        (copy / name).write_bytes(bytes(blob))

    return tamper


def _truncate(name: str) -> Callable[[Path, Path], None]:
    def tamper(copy: Path, other: Path) -> None:
        with open(copy / name, "r+b") as handle:
            handle.truncate((copy / name).stat().st_size // 2)

    return tamper


def _replace(name: str) -> Callable[[Path, Path], None]:
    """The same file of another complete model."""

    def tamper(copy: Path, other: Path) -> None:
        shutil.copyfile(other / name, copy / name)

    return tamper


def _delete(name: str) -> Callable[[Path, Path], None]:
    def tamper(copy: Path, other: Path) -> None:
        (copy / name).unlink()

    return tamper


def _link_to(target: str | None, name: str) -> Callable[[Path, Path], None]:
    """A symbolic link to ``target``, or to an identical copy outside the directory."""

    def tamper(copy: Path, other: Path) -> None:
        outside = target
        if outside is None:
            outside = str(shutil.copyfile(copy / name, copy.parent / f"outside-{name}"))
        (copy / name).unlink()
        os.symlink(outside, copy / name)

    return tamper


def _fifo(name: str) -> Callable[[Path, Path], None]:
    def tamper(copy: Path, other: Path) -> None:
        (copy / name).unlink()
        os.mkfifo(copy / name)

    return tamper


def _grow(name: str, size: int, sealed: bool) -> Callable[[Path, Path], None]:
    """``name`` made ``size`` bytes (sparse: no disk used), re-sealed or not."""

    def tamper(copy: Path, other: Path) -> None:
        with open(copy / name, "r+b") as handle:
            handle.truncate(size)
        if sealed:
            reseal(copy)

    return tamper


def _extra(name: str, size: int) -> Callable[[Path, Path], None]:
    def tamper(copy: Path, other: Path) -> None:
        with open(copy / name, "wb") as handle:
            handle.truncate(size)

    return tamper


def _manifest_edit(
    edit, sealed: bool, key: str | None = None, point_at_model: bool = True
) -> Callable[[Path, Path], None]:
    def tamper(copy: Path, other: Path) -> None:
        edit_json(copy / "manifest.json", edit)
        if sealed:
            reseal(copy, key, model_sha256=point_at_model)

    return tamper


def _json_edit(name: str, edit) -> Callable[[Path, Path], None]:
    """``name``'s JSON edited, then the directory re-sealed (consistent, malformed)."""

    def tamper(copy: Path, other: Path) -> None:
        edit_json(copy / name, edit)
        reseal(copy)

    return tamper


def _text(name: str, text: str) -> Callable[[Path, Path], None]:
    def tamper(copy: Path, other: Path) -> None:
        (copy / name).write_text(text)
        reseal(copy)

    return tamper


def _in_a_list(name: str) -> Callable[[Path, Path], None]:
    """``name``'s JSON object wrapped in a list, then (unless it is the record itself)
    the directory re-sealed."""

    def tamper(copy: Path, other: Path) -> None:
        (copy / name).write_text(json.dumps([json.loads((copy / name).read_text())]))
        if name != "integrity.json":
            reseal(copy)

    return tamper


def _model_file(write: Callable[[Path], None]) -> Callable[[Path, Path], None]:
    """``model.skops`` rewritten by ``write``, the manifest and the record made to match."""

    def tamper(copy: Path, other: Path) -> None:
        write(copy / "model.skops")
        reseal(copy)

    return tamper


def _schema_edit(edit) -> Callable[[Path], None]:
    def write(path: Path) -> None:
        with zipfile.ZipFile(path) as archive:
            members = {name: archive.read(name) for name in archive.namelist()}
        schema = json.loads(members["schema.json"])
        edit(schema)
        members["schema.json"] = json.dumps(schema).encode()
        with zipfile.ZipFile(path, "w") as archive:
            for name, data in members.items():
                archive.writestr(name, data)

    return write


def _zip_bomb(path: Path) -> None:
    """A small file whose directory declares more unpacked content than a model may hold
    (as a file that inflates a thousandfold would)."""
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("schema.json", "{}")
        archive.writestr("huge.npy", b"\0" * 1024)
        archive.filelist[-1].file_size = SIZE_LIMITS["model.skops"] + 1


def _integrity(edit) -> Callable[[Path, Path], None]:
    def tamper(copy: Path, other: Path) -> None:
        edit_json(copy / "integrity.json", edit)

    return tamper


def _older_format(copy: Path, other: Path) -> None:
    """A directory as engagekit wrote it before the integrity record (model format 1)."""
    (copy / "integrity.json").unlink()
    edit_json(copy / "manifest.json", lambda m: m.update(format_version=1))


def _set(path: tuple, value):
    def edit(document):
        node = document
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value

    return edit


def _drop(key: str):
    def edit(document):
        del document[key]

    return edit


# --------------------------------------------------------------------------- the table
@dataclass(frozen=True)
class Case:
    id: str
    tamper: Callable[[Path, Path], None]
    file: str
    message: str
    error: type = TamperedModelError
    readers: tuple = READERS
    key: str | None = None  # ENGAGEKIT_MODEL_KEY when loading
    signed: bool = False  # start from the signed copy


_ALTERED = "does not match the directory's integrity record"
_PER_FILE = [
    case
    for name in FILES
    for case in (
        Case(f"{name}-one-byte", _flip_byte(name), name, _ALTERED),
        Case(f"{name}-truncated", _truncate(name), name, "its size differs"),
        Case(f"{name}-replaced", _replace(name), name, _ALTERED),
        Case(f"{name}-deleted", _delete(name), name, "is missing"),
        Case(f"{name}-link-dev-zero", _link_to("/dev/zero", name), name, "is a symbolic link"),
        Case(f"{name}-link-identical", _link_to(None, name), name, "is a symbolic link"),
        Case(f"{name}-fifo", _fifo(name), name, "is a named pipe (FIFO), not a regular file"),
        Case(
            f"{name}-oversized", _grow(name, SIZE_LIMITS[name] + 1, sealed=False), name,
            f"more than the {SIZE_LIMITS[name]:,}",
        ),
    )
]  # fmt: skip
_RECORD = [
    Case(
        "integrity-one-byte", _flip_byte("integrity.json", at=0), "integrity.json",
        "not a readable",
    ),
    # a digit of a hash changed: the record and the file disagree; either may be at fault
    Case(
        "integrity-hash-digit", _integrity(_set(("files", "metrics.json", "sha256"), "0" * 64)),
        "metrics.json", "it, or the record, was altered",
    ),
    Case("integrity-truncated", _truncate("integrity.json"), "integrity.json", "not a readable"),
    Case(
        "integrity-deleted", _delete("integrity.json"), "integrity.json", "(model format 1)",
        error=UntrustedModelError,
    ),
    Case("integrity-link", _link_to("/dev/zero", "integrity.json"), "integrity.json", "link"),
    Case("integrity-fifo", _fifo("integrity.json"), "integrity.json", "named pipe"),
    Case(
        "integrity-oversized", _grow("integrity.json", 2 << 20, sealed=False),
        "integrity.json", "more than the 1,048,576",
    ),
    Case("integrity-a-list", _in_a_list("integrity.json"), "integrity.json", "not an object"),
    Case(
        "integrity-lists-a-path", _integrity(_set(("files", "../../etc/passwd"), {})),
        "integrity.json", "does not have ('../../etc/passwd')",
    ),
    Case(
        "integrity-drops-the-model", _integrity(lambda r: r["files"].pop("model.skops")),
        "integrity.json", "does not list 'model.skops'",
    ),
    # read no further than the file's limit, whatever the record claims
    Case(
        "integrity-size-beyond-limit",
        _integrity(_set(("files", "manifest.json", "size"), 1 << 40)),
        "manifest.json", "its size differs",
    ),
    Case(
        "integrity-future-format", _integrity(_set(("format_version",), 3)), "integrity.json",
        "format_version is 3",
    ),
    Case(
        "older-format", _older_format, "integrity.json", "older engagekit (model format 1)",
        error=UntrustedModelError,
    ),
    Case("extra-oversized-file", _extra("notes.bin", 4 << 30), "notes.bin", "was added"),
    Case("extra-folder", lambda c, o: (c / "more").mkdir(), "more", "was added"),
    Case(
        "card-oversized-resealed", _grow("model_card.md", (16 << 20) + 1, sealed=True),
        "model_card.md", "it was not read",
    ),
]  # fmt: skip
_REWRITTEN = [
    Case(
        "target-edited", _manifest_edit(_set(("target",), "adherent"), sealed=False),
        "manifest.json", _ALTERED,
    ),
    Case(
        "target-edited-resealed", _manifest_edit(_set(("target",), "adherent"), sealed=True),
        "manifest.json", "disagree (target: 'adherent' in the manifest",
        error=UntrustedModelError, readers=(load_model_directory,),
    ),
    Case(
        "threshold-edited", _manifest_edit(_set(("flag_rule", "threshold"), 1.0), sealed=False),
        "manifest.json", _ALTERED,
    ),
    # the hash cannot tell a consistent rewrite: the signature can
    Case(
        "threshold-edited-resealed-unsigned",
        _manifest_edit(_set(("flag_rule", "threshold"), 1.0), sealed=True),
        "integrity.json", f"is not signed, and {MODEL_KEY_VARIABLE} is set", key=KEY,
        signed=True,
    ),
    Case(
        "threshold-edited-resealed-other-key",
        _manifest_edit(_set(("flag_rule", "threshold"), 1.0), sealed=True, key="x" * 32),
        "integrity.json", "signature that does not verify", key=KEY, signed=True,
    ),
    Case(
        "signature-altered",
        _integrity(_set(("signature", "value"), "0" * 64)),
        "integrity.json", "signature that does not verify", key=KEY, signed=True,
    ),
    Case(
        "signed-record-entry-altered",
        _integrity(_set(("files", "model_card.md", "size"), 1)),
        "integrity.json", "signature that does not verify", key=KEY, signed=True,
    ),
    Case(
        "unsigned-with-key", lambda c, o: None, "integrity.json", "is not signed", key=KEY,
    ),
]  # fmt: skip
_LOAD = (load_model_directory,)
_MALFORMED = [
    Case(
        "manifest-not-json", _text("manifest.json", "{not json"), "manifest.json",
        "not a readable manifest", error=UntrustedModelError,
    ),
    Case(
        "manifest-a-list", _in_a_list("manifest.json"), "manifest.json",
        "must hold a JSON object", error=UntrustedModelError,
    ),
    Case(
        "manifest-config-a-string", _json_edit("manifest.json", _set(("config",), "x")),
        "manifest.json", "'config': input should be a valid dictionary",
        error=UntrustedModelError,
    ),
    Case(
        "manifest-config-empty", _json_edit("manifest.json", _set(("config",), {})),
        "manifest.json", "records no config", error=UntrustedModelError,
    ),
    Case(
        "manifest-config-invalid",
        _json_edit("manifest.json", _set(("config", "attributes", "items"), [])),
        "manifest.json", "attributes.items: List should have at least 1 item",
        error=UntrustedModelError,
    ),
    Case(
        "manifest-fit-for-use-a-string",
        _json_edit("manifest.json", _set(("fit_for_use",), "no")),
        "manifest.json", "'fit_for_use': input should be a valid boolean",
        error=UntrustedModelError,
    ),
    Case(
        "manifest-versions-a-list", _json_edit("manifest.json", _set(("versions",), [1])),
        "manifest.json", "'versions'", error=UntrustedModelError,
    ),
    Case(
        "manifest-without-target", _json_edit("manifest.json", _drop("target")),
        "manifest.json", "'target': field required", error=UntrustedModelError,
    ),
    Case(
        "manifest-flag-threshold-a-string",
        _json_edit("manifest.json", _set(("flag_rule", "threshold"), "high")),
        "manifest.json", "'flag_rule'", error=UntrustedModelError,
    ),
    Case(
        "manifest-training-steps-malformed",
        _json_edit("manifest.json", _set(("training_steps", "cross_validation_folds"), 5)),
        "manifest.json", "'training_steps': value error, 'cross_validation_folds' must be a",
        error=UntrustedModelError,
    ),
    Case(
        "manifest-model-file-elsewhere",
        _json_edit("manifest.json", _set(("model_file",), "../other/model.skops")),
        "manifest.json", "'model_file' must be 'model.skops'", error=UntrustedModelError,
    ),
    Case(
        "manifest-format-1", _json_edit("manifest.json", _set(("format_version",), 1)),
        "manifest.json", "reads model format 2", error=UntrustedModelError,
    ),
    Case(
        "manifest-names-another-model",
        _manifest_edit(_set(("model_sha256",), "ab" * 32), sealed=True, point_at_model=False),
        "manifest.json", "names another model file",
    ),
    Case(
        "metrics-a-list", _in_a_list("metrics.json"), "metrics.json",
        "must hold a JSON object", error=UntrustedModelError,
        readers=(load_model_directory, read_metrics),
    ),
    Case(
        "metrics-subgroup-a-string", _json_edit("metrics.json", _set(("by_treatment",), "x")),
        "metrics.json", "'by_treatment'", error=UntrustedModelError,
        readers=(load_model_directory, read_metrics),
    ),
    Case(
        "metrics-temporal-a-string",
        _json_edit("metrics.json", _set(("temporal_validation",), "x")),
        "metrics.json", "'temporal_validation'", error=UntrustedModelError,
        readers=(load_model_directory, read_metrics),
    ),
    Case(
        "metrics-of-another-outcome",
        _json_edit("metrics.json", _set(("target",), "adherent")),
        "metrics.json", "disagree on the outcome", error=UntrustedModelError,
        readers=(load_model_directory, read_metrics),
    ),
    Case(
        "skops-node-without-loader",
        _model_file(_schema_edit(lambda s: s["content"]["content"]["features"].pop("__loader__"))),
        "model.skops", "skops cannot load it (KeyError", error=UntrustedModelError,
        readers=_LOAD,
    ),
    Case(
        "skops-node-without-content",
        _model_file(_schema_edit(lambda s: s["content"]["content"]["features"].pop("content"))),
        "model.skops", "is malformed", error=UntrustedModelError, readers=_LOAD,
    ),
    Case(
        "skops-target-a-number",
        _model_file(
            _schema_edit(lambda s: s["content"]["content"]["target"].update(content="5"))
        ),
        "model.skops", "its target and kind must be names", error=UntrustedModelError,
        readers=_LOAD,
    ),
    Case(
        "skops-top-without-class", _model_file(_schema_edit(lambda s: s.pop("__class__"))),
        "model.skops", "no stated type", error=UntrustedModelError, readers=_LOAD,
    ),
    Case(
        "classes-by-an-earlier-path",
        _model_file(_schema_edit(lambda s: s.update(__module__="engagekit.models.model"))),
        "model.skops", "names engagekit's classes as an earlier release did",
        error=UntrustedModelError, readers=_LOAD,
    ),
    Case(
        "trusted-numpy-array", _model_file(lambda p: sio.dump(np.arange(3.0), p)),
        "model.skops", "numpy.ndarray, not an engagekit model", error=UntrustedModelError,
        readers=_LOAD,
    ),
    Case(
        "trusted-dict", _model_file(lambda p: sio.dump({"target": "adherent"}, p)),
        "model.skops", "builtins.dict, not an engagekit model", error=UntrustedModelError,
        readers=_LOAD,
    ),
    Case(
        "untrusted-estimator", _model_file(lambda p: sio.dump(DecisionTreeClassifier(), p)),
        "model.skops", "engagekit does not trust", error=UntrustedModelError, readers=_LOAD,
    ),
    Case(
        "not-a-zip", _model_file(lambda p: p.write_bytes(b"PK\x03\x04 not really")),
        "model.skops", "not a readable skops file", error=UntrustedModelError, readers=_LOAD,
    ),
    Case(
        "zip-bomb", _model_file(_zip_bomb), "model.skops", "unpacks to",
        error=UntrustedModelError, readers=_LOAD,
    ),
]  # fmt: skip
CASES = [*_PER_FILE, *_RECORD, *_REWRITTEN, *_MALFORMED]


def _snapshot(directory: Path) -> list[tuple]:
    """Every entry of ``directory``: its name, kind and (for a regular file) content."""
    entries = []
    for entry in sorted(directory.iterdir()):
        info = entry.lstat()
        content = (
            entry.read_bytes() if stat.S_ISREG(info.st_mode) and info.st_size < 1 << 26 else None
        )
        entries.append((entry.name, stat.S_IFMT(info.st_mode), info.st_size, content))
    return entries


def _tampered_copy(trained, tmp_path: Path, case: Case) -> Path:
    model_dir, other, signed = trained
    copy = shutil.copytree(signed if case.signed else model_dir, tmp_path / "model")
    case.tamper(copy, other)
    return copy


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_a_tampered_model_directory_is_refused_naming_the_file(
    trained, tmp_path, monkeypatch, case
):
    copy = _tampered_copy(trained, tmp_path, case)
    if case.key is None:
        monkeypatch.delenv(MODEL_KEY_VARIABLE, raising=False)
    else:
        monkeypatch.setenv(MODEL_KEY_VARIABLE, case.key)
    before = _snapshot(copy)
    for read in case.readers:
        with pytest.raises(case.error) as refused:
            read(copy)
        message = " ".join(str(refused.value).split())
        assert f"{case.file}'" in message, message
        assert case.message in message, message
        assert refused.value.file == case.file
    assert _snapshot(copy) == before  # nothing written, nothing repaired


def test_an_intact_copy_loads(trained, tmp_path, monkeypatch):
    """The control of the table: the copy before tampering loads, signed or not."""
    monkeypatch.delenv(MODEL_KEY_VARIABLE, raising=False)
    model_dir, _other, signed = trained
    copy = shutil.copytree(model_dir, tmp_path / "model")
    loaded = load_model_directory(copy)
    assert loaded.manifest.target == loaded.model.target == "attended_next"
    assert loaded.metrics.target == "attended_next"
    monkeypatch.setenv(MODEL_KEY_VARIABLE, KEY)
    signed_manifest = load_model_directory(signed).manifest
    # the same record, written again: only its time and the file's bytes differ
    same = {"created": None, "model_sha256": None}
    assert signed_manifest.model_copy(update=same) == loaded.manifest.model_copy(update=same)


def test_a_consistent_rewrite_passes_the_hashes_and_only_a_signature_stops_it(
    trained, tmp_path, monkeypatch
):
    """What the README's threat model says: someone who rewrites a directory whole and
    re-hashes it is not detected without a key, and is with one."""
    monkeypatch.delenv(MODEL_KEY_VARIABLE, raising=False)
    _model_dir, _other, signed = trained
    copy = shutil.copytree(signed, tmp_path / "model")
    _manifest_edit(_set(("flag_rule", "threshold"), 1.0), sealed=True)(copy, copy)
    _model, manifest = load_model(copy)
    assert manifest.flag_rule.threshold == 1.0
    with pytest.raises(TamperedModelError, match="is not signed"):
        load_model(copy, key=KEY)


def test_a_signed_model_loaded_without_the_key_says_the_signature_was_not_checked(
    trained, monkeypatch
):
    monkeypatch.delenv(MODEL_KEY_VARIABLE, raising=False)
    _model_dir, _other, signed = trained
    with pytest.warns(ModelSignatureWarning, match="its signature was not checked"):
        load_model(signed)


@pytest.mark.parametrize("key", ["", "short"])
def test_a_signing_key_too_short_to_protect_is_refused(trained, monkeypatch, key):
    model_dir, _other, _signed = trained
    monkeypatch.setenv(MODEL_KEY_VARIABLE, key)
    with pytest.raises(ConfigError, match="at least 16"):
        load_model(model_dir)


# --------------------------------------------------------------------------- the commands
CLI_CASES = [
    next(c for c in CASES if c.id == name)
    for name in (
        "model.skops-one-byte",
        "manifest.json-link-dev-zero",
        "metrics.json-fifo",
        "threshold-edited-resealed-unsigned",
        "skops-node-without-loader",
    )
]


@pytest.mark.parametrize("command", ["predict", "score"])
@pytest.mark.parametrize("case", CLI_CASES, ids=[case.id for case in CLI_CASES])
def test_a_command_refuses_a_tampered_model_and_writes_nothing(
    trained, tmp_path, monkeypatch, case, command
):
    copy = _tampered_copy(trained, tmp_path, case)
    if case.key is None:
        monkeypatch.delenv(MODEL_KEY_VARIABLE, raising=False)
    else:
        monkeypatch.setenv(MODEL_KEY_VARIABLE, case.key)
    data = trained[0].parent / "encounters.csv"
    result = run(command, copy, data, "--out", "out.csv", cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert_no_traceback(result)
    said = " ".join(result.stderr.split())
    assert f"{case.file}'" in said and case.message in said, said
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


@pytest.mark.parametrize(
    ("edit", "problem"),
    [
        (_drop("config"), "'config': field required"),
        (_set(("config",), {}), "the manifest of the model '<copy>' records no config"),
        (
            _set(("config", "attributes", "items"), []),
            "the config of the model '<copy>' is not valid",
        ),
    ],
    ids=["absent", "empty", "not-valid"],
)
@pytest.mark.parametrize(
    "command",
    [
        lambda model, data: ("predict", model, data, "--out", "out.csv"),
        lambda model, data: ("report", data, "--model", model, "--out", "out.html"),
    ],
    ids=["predict", "report"],
)
def test_a_manifest_without_its_config_is_refused_by_the_commands(
    trained, tmp_path, monkeypatch, edit, problem, command
):
    """The same refusal, naming manifest.json, from every command that reads a model,
    whether the config is absent, empty or not one this engagekit reads."""
    monkeypatch.delenv(MODEL_KEY_VARIABLE, raising=False)
    model_dir, _other, _signed = trained
    copy = shutil.copytree(model_dir, tmp_path / "model")
    _json_edit("manifest.json", edit)(copy, copy)
    result = run(*command(copy, model_dir.parent / "encounters.csv"), cwd=tmp_path)
    assert result.returncode == 2
    assert_no_traceback(result)
    said = " ".join(result.stderr.split())
    assert "manifest.json' is not a valid engagekit model manifest: " in said, said
    assert problem.replace("<copy>", str(copy)) in said, said
    assert not list(tmp_path.glob("out.*"))
