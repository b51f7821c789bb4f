"""A model directory replaced whole: the swap, failures, leftovers of killed runs, and the
folders it refuses to replace."""

from __future__ import annotations

import os

import pytest

from _cli import assert_no_traceback, run
from engagekit.errors import OutputError
from engagekit.io import _model_directory as model_directory
from engagekit.io._model_directory import check_replaceable, replacing_directory

OLD = {"manifest.json": "old manifest", "metrics.json": "old metrics"}


def _write(directory, files: dict[str, str]) -> None:
    directory.mkdir(exist_ok=True)
    for name, text in files.items():
        (directory / name).write_text(text)


def _files(directory) -> dict[str, str]:
    return {p.name: p.read_text() for p in directory.iterdir()}


@pytest.fixture(params=["exchanged", "renamed aside"])
def swap(request, monkeypatch):
    """Both ways of swapping: names exchanged in one step, or two renames."""
    if request.param == "renamed aside":
        monkeypatch.setattr(model_directory, "_exchange", lambda a, b: False)
    return request.param


def test_the_new_directory_replaces_the_old_one_whole(tmp_path, swap):
    _write(tmp_path / "model", OLD)
    with replacing_directory(tmp_path / "model") as partial:
        assert partial.parent == tmp_path and partial.name.startswith(".model.")
        _write(partial, {"manifest.json": "new manifest"})
        assert _files(tmp_path / "model") == OLD  # untouched until the block ends
    # no old metrics.json left beside the new manifest
    assert _files(tmp_path / "model") == {"manifest.json": "new manifest"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


def test_a_failed_write_leaves_the_old_directory_and_no_leftover(tmp_path, swap):
    _write(tmp_path / "model", OLD)
    with pytest.raises(RuntimeError, match="stopped"), replacing_directory(tmp_path / "model") as p:
        _write(p, {"manifest.json": "half"})
        raise RuntimeError("stopped")
    assert _files(tmp_path / "model") == OLD
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


def test_leftovers_of_killed_runs_are_removed_and_an_old_model_left_aside_is_put_back(tmp_path):
    # a run killed while writing, and one killed between its two renames
    _write(tmp_path / ".model.abc123.partial", {"model.skops": "half"})
    _write(tmp_path / ".model.def456.old", OLD)
    _write(tmp_path / ".other.ghi789.partial", {"x": "another name's: not touched"})
    with replacing_directory(tmp_path / "model") as partial:
        # the previous model was put back before the new one was written
        assert _files(tmp_path / "model") == OLD
        _write(partial, {"manifest.json": "new"})
    assert sorted(p.name for p in tmp_path.iterdir()) == [".other.ghi789.partial", "model"]


def test_a_live_runs_partial_directory_is_not_taken_for_a_leftover(tmp_path):
    with replacing_directory(tmp_path / "model") as first:
        _write(first, {"manifest.json": "first"})
        with replacing_directory(tmp_path / "model") as second:
            assert first.is_dir()  # locked by its run: not deleted
            _write(second, {"manifest.json": "second"})
    # the later swap wins, as the later of two writes of one file would
    assert _files(tmp_path / "model") == {"manifest.json": "first"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


def test_a_link_is_replaced_and_what_it_points_to_left_alone(tmp_path):
    _write(tmp_path / "v1", OLD)
    os.symlink(tmp_path / "v1", tmp_path / "model")
    with replacing_directory(tmp_path / "model") as partial:
        _write(partial, {"manifest.json": "new"})
    assert not (tmp_path / "model").is_symlink()
    assert _files(tmp_path / "model") == {"manifest.json": "new"}
    assert _files(tmp_path / "v1") == OLD


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda d: _write(d, {**OLD, "notes.txt": "mine"}), "holds files that are not part of a"),
        (lambda d: d.write_text("a file"), "it is a file; a model directory is a folder"),
    ],
    ids=["foreign-files", "a-file"],
)
def test_a_folder_that_is_not_a_model_directory_is_never_replaced(tmp_path, make, message):
    make(tmp_path / "model")
    before = sorted(p.name for p in tmp_path.rglob("*"))
    with pytest.raises(OutputError, match=message):
        check_replaceable(tmp_path / "model")
    with pytest.raises(OutputError, match=message), replacing_directory(tmp_path / "model"):
        pass
    assert sorted(p.name for p in tmp_path.rglob("*")) == before


def test_train_refuses_to_replace_a_folder_of_other_files_before_training(tmp_path):
    (tmp_path / "encounters.csv").write_text("patient_id\n")  # never read: refused first
    result = run(
        "train", "encounters.csv", "--target", "adherent", "--out", ".", cwd=tmp_path
    )  # fmt: skip
    assert result.returncode == 2
    assert_no_traceback(result)
    said = " ".join(result.stderr.split())
    assert "holds files that are not part of a model directory ('encounters.csv')" in said
    assert sorted(p.name for p in tmp_path.iterdir()) == ["encounters.csv"]
