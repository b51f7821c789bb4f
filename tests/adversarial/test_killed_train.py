"""``engagekit train`` killed (``kill -9``) at random moments while it replaces an existing
model directory.

After each kill the directory holds the previous complete model (every file as it was)
or the new complete model (every file of the new run, consistent with the others) —
never a mix, such as the new model beside the old ``metrics.json``, and on Linux, where
the two directories exchange names in one step, never nothing either. Some kills
land anywhere in the run; most land while the new directory is being written and swapped
in, found by watching for the hidden directory the run writes into. A run left alone
afterwards completes, and leaves no hidden leftovers of the killed ones.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from _cli import ENGAGEKIT, run_process
from engagekit import simulate_encounters
from engagekit.io._model_store import load_model_directory

SEED = 20240611
KILLS_ANYWHERE = 2
KILLS_WHILE_WRITING = 5
# from the moment the hidden directory appears to the swap: about 50 ms here
WRITING_WINDOW = 0.08
FILES = ("integrity.json", "manifest.json", "metrics.json", "model.skops", "model_card.md")


def _train(seed: int) -> list[str]:
    return [
        "train", "encounters.csv", "--target", "attended_next", "--model", "logistic",
        "--folds", "2", "--bootstrap", "0", "--seed", str(seed), "--out", "model",
    ]  # fmt: skip


def _contents(directory: Path) -> dict[str, bytes] | None:
    """The model files of ``directory`` (hidden ones aside), or None if it is absent."""
    if not directory.exists():
        return None
    return {p.name: p.read_bytes() for p in directory.iterdir() if not p.name.startswith(".")}


def _complete(files: dict[str, bytes]) -> bool:
    """Whether the files are one run's complete model, by what they say of each other
    (not by engagekit's own check): every file there, the manifest naming the model
    file's hash and holding the metrics' headline numbers."""
    if set(files) != set(FILES):
        return False
    manifest, metrics = json.loads(files["manifest.json"]), json.loads(files["metrics.json"])
    headline = {
        k: v
        for k, v in metrics.items()
        if not isinstance(v, (dict, list)) and k != "format_version"
    }
    return (
        manifest["model_sha256"] == hashlib.sha256(files["model.skops"]).hexdigest()
        and manifest["metrics"] == headline
        and manifest["model_sha256"] in files["model_card.md"].decode()
    )


def _kill(folder: Path, rng: random.Random, while_writing: bool, duration: float) -> str | None:
    """Start a train, kill it at a random moment, and say when that was (None if the run
    ended first)."""
    before = set(os.listdir(folder))  # a killed run's hidden directory may be there
    process = subprocess.Popen(
        [ENGAGEKIT, *_train(seed=2)],
        cwd=folder,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "NO_COLOR": "1"},
    )
    started = time.monotonic()
    if while_writing:
        # the run writes the new model into a hidden sibling, .model.XXXX.partial
        while process.poll() is None and not any(
            name.startswith(".model.") and name.endswith(".partial")
            for name in set(os.listdir(folder)) - before
        ):
            time.sleep(0.001)
        time.sleep(rng.uniform(0, WRITING_WINDOW))
    else:
        # at most half-way through the first run, timed cold: a later one on a busy
        # machine may be quicker by a third
        time.sleep(rng.uniform(0.1, 0.5) * duration)
    when = f"{time.monotonic() - started:.3f} s"
    if process.poll() is not None:
        return None
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=60)
    return when


@pytest.fixture
def service(tmp_path) -> Path:
    simulate_encounters(150, seed=3).encounters.to_csv(tmp_path / "encounters.csv", index=False)
    return tmp_path


def test_a_killed_train_leaves_the_previous_model_or_the_new_one_never_a_mix(service):
    rng = random.Random(SEED)
    started = time.monotonic()
    first = run_process(*_train(seed=1), cwd=service)
    duration = time.monotonic() - started
    assert first.returncode == 0, first.stderr
    previous = _contents(service / "model")
    assert previous is not None and _complete(previous)

    moments = [False] * KILLS_ANYWHERE + [True] * KILLS_WHILE_WRITING
    rng.shuffle(moments)
    seen = []
    for while_writing in moments:
        when = _kill(service, rng, while_writing, duration)
        now = _contents(service / "model")
        if now is None:
            state = "nothing"
        elif now == previous:
            state = "previous"
        else:
            # anything else must be the new run's complete model, loadable as one
            assert _complete(now), f"killed at {when}: a mix of files {sorted(now)}"
            loaded = load_model_directory(service / "model")
            assert loaded.metrics.training_steps == loaded.manifest.training_steps
            state = "new"
            previous = now  # the next kill replaces this one
        seen.append((when, state))
    # every run was killed, but one may end first on a busy machine (its model is then
    # the new complete one, as checked above)
    assert sum(when is None for when, _ in seen) <= 1, seen
    # where two names can be exchanged in one step (Linux), the name is never empty
    assert sys.platform != "linux" or "nothing" not in {state for _, state in seen}, seen

    last = run_process(*_train(seed=3), cwd=service)
    assert last.returncode == 0, last.stderr
    final = _contents(service / "model")
    assert final is not None and _complete(final) and final != previous
    load_model_directory(service / "model")
    # the killed runs' hidden directories are gone: each run cleans up what killed runs
    # left beside the model
    assert sorted(p.name for p in service.iterdir()) == ["encounters.csv", "model"], seen
