"""Unwritable outputs: found in a second, before anything is read or computed.

Every command that writes a file tries its location first (the folder made if need be,
a temporary file created and deleted there, the folders made for it removed again).
An output under a regular file, inside /proc, or named as an existing folder is refused
with one message naming it, exit code 2, and the folder left as it was.

The tests run as root, for whom permissions do not stop a write, so the locations are
ones no permission makes writable. DATA and MODEL_DIR do not exist: a command that read
them before trying its output would fail on them instead, so each refusal below also
shows that the output was tried first.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from _cli import assert_no_traceback, run
from _factories import model_with_manifest
from engagekit import load_config, simulate_encounters
from engagekit.errors import OutputError
from engagekit.io import _scores as scores_module

# a command's arguments around its output OUT (DATA and MODEL_DIR do not exist)
COMMANDS = {
    "score": (".csv", lambda out: ("score", "nomodel", "nodata.csv", "--out", out)),
    "predict": (".csv", lambda out: ("predict", "nomodel", "nodata.csv", "--out", out)),
    "forecast": (".csv", lambda out: ("forecast", "nomodel", "nodata.csv", "--out", out)),
    "report": (".html", lambda out: ("report", "nodata.csv", "--model", "nomodel", "--out", out)),
    "validate-quarantine": (".csv", lambda out: ("validate", "nodata.csv", "--quarantine", out)),
    "validate-good": (".csv", lambda out: ("validate", "nodata.csv", "--good", out)),
    "evaluate": (".json", lambda out: ("evaluate", "nomodel", "nodata.csv", "--out", out)),
    "heterogeneity": (
        ".json", lambda out: ("heterogeneity", "nodata.csv", "--target", "adherent", "--out", out)
    ),
    "heterogeneity-plot": (
        ".png",
        lambda out: (
            "heterogeneity", "nodata.csv", "--target", "adherent", "--out", "result.json",
            "--plot", out,
        ),
    ),
    "power": (".json", lambda out: ("power", "--patients", "40", "--reps", "1", "--out", out)),
    # a model directory and the demo's folder: OUT is a folder
    "train": ("", lambda out: ("train", "nodata.csv", "--target", "adherent", "--out", out)),
    "demo": ("", lambda out: ("demo", "--out", out, "--patients", "40")),
}  # fmt: skip

# where OUT goes; "blocker" is a regular file
LOCATIONS = {
    "under-a-file": "blocker/out{suffix}",
    "folder-under-a-file": "blocker/new/folder/out{suffix}",
    "in-proc": "/proc/engagekit-nowhere/out{suffix}",
    "a-folder": "existing/out{suffix}",  # made a folder below, for a file to be written
}
CASES = [
    pytest.param(command, location, id=f"{command}-{location}")
    for command in COMMANDS
    for location in LOCATIONS
    # a model directory and the demo's folder are folders
    if not (location == "a-folder" and COMMANDS[command][0] == "")
]


def _tree(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


@pytest.fixture
def refuse_to_compute(monkeypatch):
    """Work that must never start when the output cannot be written: it fails the
    test if it is reached (power reads no data, so nothing else would stop it)."""

    def reached(*args, **kwargs):
        raise AssertionError("the computation started before the output was tried")

    from engagekit.heterogeneity import _power as power
    from engagekit.simulation import _simulator as simulator

    monkeypatch.setattr(power, "estimate_power", reached)
    monkeypatch.setattr(power, "patients_for_power", reached)
    monkeypatch.setattr(simulator, "simulate_encounters", reached)


@pytest.mark.parametrize(("command", "location"), CASES)
def test_an_unwritable_output_is_refused_before_anything_is_read(
    tmp_path, refuse_to_compute, command, location
):
    (tmp_path / "blocker").write_text("a file where a folder would go\n")
    suffix, arguments = COMMANDS[command]
    out = LOCATIONS[location].format(suffix=suffix)
    if location == "a-folder":
        (tmp_path / out).mkdir(parents=True)
    before = _tree(tmp_path)
    result = run(*arguments(out), cwd=tmp_path)
    assert result.returncode == 2, result.stdout + result.stderr
    assert_no_traceback(result)
    message = " ".join(result.stderr.split())
    assert "cannot write" in message
    named = out if command not in ("train", "demo") else out.rstrip("/")
    assert repr(named) in message, message
    assert "nodata" not in message and "nomodel" not in message
    assert _tree(tmp_path) == before


@pytest.mark.parametrize(
    ("database", "message"),
    [
        (
            "sqlite:///blocker/scores.sqlite",
            "cannot write the database 'sqlite:///blocker/scores.sqlite': 'blocker' is a "
            "file, not a folder",
        ),
        (
            "sqlite:////proc/engagekit-nowhere/scores.sqlite",
            "cannot write the database 'sqlite:////proc/engagekit-nowhere/scores.sqlite'",
        ),
    ],
    ids=["under-a-file", "in-proc"],
)
def test_an_unwritable_scores_database_is_refused_before_anything_is_read(
    tmp_path, database, message
):
    (tmp_path / "blocker").write_text("a file where a folder would go\n")
    before = _tree(tmp_path)
    result = run(
        "score", "nomodel", "nodata.csv", "--out", "new/scores.csv", "--db", database,
        cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 2, result.stdout + result.stderr
    assert_no_traceback(result)
    assert message in " ".join(result.stderr.split())
    assert _tree(tmp_path) == before


def test_write_scores_refuses_an_unwritable_file_before_ranking_risks(tmp_path, monkeypatch):
    """The Python API checks too: the run stops before its first computation."""
    config = load_config()
    encounters = simulate_encounters(30, seed=2, config=config).encounters
    model, manifest = model_with_manifest(encounters, "adherent", "logistic", config, seed=0)

    def reached(*args, **kwargs):
        raise AssertionError("the risks were ranked before the output was tried")

    monkeypatch.setattr(scores_module, "_first_pass", reached)
    (tmp_path / "blocker").write_text("x")
    manifest = manifest.model_copy(update={"model_sha256": "c" * 64})
    for out, database in [
        (tmp_path / "blocker" / "scores.csv", None),
        (tmp_path / "scores.csv", f"sqlite:///{tmp_path / 'blocker' / 'scores.sqlite'}"),
    ]:
        with pytest.raises(OutputError, match=r"blocker' is a file, not a folder"):
            scores_module.write_scores(model, manifest, encounters, config, out, database=database)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["blocker"]
