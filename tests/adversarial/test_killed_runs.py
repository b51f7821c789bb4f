"""Killed runs: ``kill -9`` at random moments never leaves a half-written output.

Real ``engagekit score`` and ``engagekit report`` processes, each over a previous
complete result, are killed at seeded random moments, two at a time in two folders (the
moments are drawn from the times a complete run took: for score, mostly while it holds
its table and writes its chunks and file, which is the end of a run on small data; for
the report, mostly in its last part, where it writes). After each kill every output name
holds the previous complete result or the new complete result, byte for byte: never a
truncated file or a mix. The scores table holds whole chunks of known runs, at most one
of them complete (with ``--replace`` each run replaces the other). At most one
temporary file is left, the killed run's own, and the next write of the same name
deletes it: a last, uninterrupted run gives the new complete result with nothing left
over.
"""

from __future__ import annotations

import contextlib
import math
import random
import re
import shutil
import signal
import sqlite3
import subprocess
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from _cli import run, start_process
from _score_outputs import (
    JOBS,
    assert_complete,
    assert_no_mix,
    partial_files,
    read_score_table,
    read_scores_file,
    run_key,
    score_args,
)

ROUNDS = 3  # of two runs at once, each killed: 6 kills per command
SEED = 20261127
Moment = Callable[[subprocess.Popen], None]


def _wait(process: subprocess.Popen, seconds: float) -> None:
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=seconds)


def _after(seconds: float) -> Moment:
    """Kill ``seconds`` after the start."""
    return lambda process: _wait(process, seconds)


def _claimant(database: Path) -> int | None:
    """The process holding the scores table (read without locking it for long)."""
    try:
        uri = f"file:{database}?mode=ro"
        with contextlib.closing(sqlite3.connect(uri, uri=True, timeout=0.05)) as conn:
            row = conn.execute("SELECT pid FROM scores_writer").fetchone()
    except sqlite3.Error:  # no database or table yet, or a commit in progress
        return None
    return row[0] if row else None


def _wait_for_claim(process: subprocess.Popen, database: Path, *, held: bool = True) -> None:
    """Until ``process`` holds the scores table (or, not ``held``, no longer does)."""
    deadline = time.monotonic() + 120
    while process.poll() is None and (_claimant(database) == process.pid) != held:
        assert time.monotonic() < deadline, "the run never claimed or released its table"
        time.sleep(0.005)


class _OnceClaimed:
    """Kill ``seconds`` after the run claimed its scores table; remembers how long after
    its start the claim came."""

    def __init__(self, database: Path, seconds: float) -> None:
        self.database, self.seconds = database, seconds
        self.to_claim = math.nan

    def __call__(self, process: subprocess.Popen) -> None:
        started = time.monotonic()
        _wait_for_claim(process, self.database)
        self.to_claim = time.monotonic() - started
        _wait(process, self.seconds)


def _run_and_kill(args: tuple, cwd: Path, moment: Moment) -> bool:
    """Run ``engagekit ARGS``; SIGKILL it at ``moment``. False if it ended by itself
    before (then it must have succeeded)."""
    process = start_process(*args, cwd=cwd)
    moment(process)
    if process.poll() is None:
        process.send_signal(signal.SIGKILL)
    out, err = process.communicate()
    if process.returncode == -signal.SIGKILL:
        return True
    # it ended by itself, before the moment or between the poll and the signal
    assert process.returncode == 0, out + err
    return False


def _kill_round(victims: list[tuple[tuple, Path, Moment]]) -> list[bool]:
    """Start every run at once, each killed at its moment; which were killed."""
    with ThreadPoolExecutor(len(victims)) as pool:
        return list(pool.map(lambda victim: _run_and_kill(*victim), victims))


# --------------------------------------------------------------------------- score
def test_score_killed_at_random_moments_leaves_a_complete_file_and_whole_chunks(
    score_service, tmp_path
):
    service = score_service
    complete = {job: (service / f"clean_{job}" / "scores.csv").read_bytes() for job in JOBS}
    keys = {job: run_key(service / f"clean_{job}" / "scores.sqlite") for job in JOBS}
    n_encounters = {job: read_scores_file(service / f"clean_{job}" / "scores.csv") for job in JOBS}
    # the two weekly exports' runs replace each other
    jobs = {job: score_args(service, job, "--replace") for job in JOBS}
    # the previous complete result, in two folders
    victims = [tmp_path / "first", tmp_path / "second"]
    for folder in victims:
        shutil.copytree(service / "clean_week1", folder)

    rng = random.Random(SEED)
    changed, to_claim = [], []
    for round_ in range(ROUNDS):
        job = JOBS[1 - round_ % 2]  # each round replaces the previous round's scores
        # most moments fall while the run holds its table, writing its chunks and its
        # file (about a second here), or just after; after the first round, one falls
        # before the run claims its table
        moments: list[Moment] = [
            _after(rng.uniform(0.3, 0.95) * min(to_claim))
            if round_ and folder == victims[0]
            else _OnceClaimed(folder / "scores.sqlite", rng.uniform(0, 1.2))
            for folder in victims
        ]
        before = [read_score_table(folder / "scores.sqlite") for folder in victims]
        killed = _kill_round(list(zip([jobs[job]] * 2, victims, moments, strict=True)))
        assert all(killed), f"round {round_}: a run ended before its moment"
        to_claim += [m.to_claim for m in moments if isinstance(m, _OnceClaimed)]
        for folder, earlier in zip(victims, before, strict=True):
            written = (folder / "scores.csv").read_bytes()
            assert written in complete.values(), f"round {round_}: a mixed file"
            assert read_scores_file(folder / "scores.csv") in n_encounters.values()
            table = read_score_table(folder / "scores.sqlite")
            assert_no_mix(table, set(keys.values()), {keys[j]: n_encounters[j] for j in JOBS})
            assert len(partial_files(folder)) <= 1  # the killed run's own, at most
            changed.append((table.runs, table.recorded) != (earlier.runs, earlier.recorded))
    # the moments fell where the runs were writing: some changed the table
    assert any(changed), "no kill fell while a run was writing"

    for folder in victims:
        final = run(*jobs["week2"], cwd=folder)
        assert final.returncode == 0, final.stderr
        assert (folder / "scores.csv").read_bytes() == complete["week2"]
        table = read_score_table(folder / "scores.sqlite")
        assert_complete(table, keys["week2"], n_encounters["week2"])
        assert partial_files(folder) == []


# --------------------------------------------------------------------------- report
REPORT_OUTPUTS = ("report.html", "model_card_adherent.md")


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """``encounters.csv`` (80 patients) and a logistic model of adherence in ``model/``,
    trained by the command line (the report reads its metrics)."""
    tmp = tmp_path_factory.mktemp("report")
    steps = [
        ("simulate", "--patients", "80", "--seed", "8", "--out", "encounters.csv"),
        ("train", "encounters.csv", "--target", "adherent", "--model", "logistic",
         "--folds", "2", "--bootstrap", "20", "--out", "model"),
    ]  # fmt: skip
    for step in steps:
        result = run(*step, cwd=tmp)
        assert result.returncode == 0, result.stderr
    return tmp


def _report_args(trained: Path, title: str) -> tuple:
    return (
        "report", trained / "encounters.csv", "--model", trained / "model", "--bootstrap", "1",
        "--title", title, "--out", "report.html",
    )  # fmt: skip


# the report says when it was created, to the minute: two runs differ there only
CREATED = re.compile(rb"\d{4}-\d{2}-\d{2} \d{2}:\d{2} UTC")


def _outputs(folder: Path) -> dict[str, bytes | None]:
    """The report's files, their creation time masked."""
    return {
        name: CREATED.sub(b"(created)", (folder / name).read_bytes())
        if (folder / name).exists()
        else None
        for name in REPORT_OUTPUTS
    }


def test_report_killed_at_random_moments_leaves_the_previous_or_the_new_report(trained, tmp_path):
    first = tmp_path / "first"
    first.mkdir()
    started = time.monotonic()
    process = start_process(*_report_args(trained, "The previous report"), cwd=first)
    out, err = process.communicate(timeout=300)
    assert process.returncode == 0, out + err
    seconds = time.monotonic() - started
    previous = _outputs(first)
    assert previous["report.html"].endswith(b"</html>")
    victims = [first, tmp_path / "second"]
    shutil.copytree(first, victims[1])

    rng = random.Random(SEED)
    after_kills = []
    for round_ in range(ROUNDS):
        # the writes come last: two rounds in the last tenth of the run, one earlier (at
        # most half-way: the first run, timed above, also warmed the caches, so a later
        # one on a busy machine may be quicker by a third)
        low, high = (0.1, 0.5) if round_ == 0 else (0.9, 1.2)
        moments = [_after(rng.uniform(low, high) * seconds) for _ in victims]
        args = _report_args(trained, "The new report")
        killed = _kill_round(list(zip([args] * 2, victims, moments, strict=True)))
        for folder in victims:
            state = _outputs(folder)
            assert state["report.html"].endswith(b"</html>"), f"round {round_}: truncated"
            assert len(partial_files(folder)) <= 1  # the killed run's own, at most
            after_kills.append((round_, folder.name, state))
        assert round_ > 0 or all(killed), "a run ended before its moment"

    final = run(*_report_args(trained, "The new report"), cwd=first)
    assert final.returncode == 0, final.stderr
    new = _outputs(first)
    assert new["report.html"] != previous["report.html"]
    assert b"The new report" in new["report.html"]
    for round_, folder, state in after_kills:
        for name in REPORT_OUTPUTS:
            assert state[name] in (previous[name], new[name]), (
                f"round {round_} left {folder}/{name} neither the previous nor the new "
                "complete file"
            )
    assert partial_files(first) == []
