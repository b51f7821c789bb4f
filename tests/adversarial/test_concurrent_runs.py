"""Concurrent runs: two ``engagekit score`` processes with the same file and table.

Two real processes are started together (the second after a seeded random delay), over
and over into the same ``--out`` and database: the same job twice, then two weekly
exports with ``--replace``. Each run either succeeds, and then the file and table it
reported are complete and correct, or stops with the one clear message ("another run is
writing to table ..."), never with a raw database error or a traceback. Whatever the
interleaving, the file holds the table's one complete run (with ``--replace`` the last
run to complete replaces the other), and every row belongs to a whole committed chunk.
"""

from __future__ import annotations

import random
import time

from _cli import start_process
from _score_outputs import (
    JOBS,
    assert_complete,
    partial_files,
    read_score_table,
    read_scores_file,
    run_key,
    score_args,
)

SEED = 1127
# text that would mean a database error reached the user raw, or a bug
RAW = (
    "Traceback",
    "internal error",
    "IntegrityError",
    "OperationalError",
    "UNIQUE constraint",
    "database is locked",
    "no such table",
    "sqlite3.",
)
BUSY = "another run is writing to table 'scores' of 'sqlite:///scores.sqlite'"
# the two runs of each round (export, options), one folder for all rounds, in this order:
# the same job twice, then two exports, each replacing the table's latest complete run
ROUNDS = [
    (("week1", ()), ("week1", ())),
    (("week1", ("--replace",)), ("week2", ("--replace",))),
    (("week2", ("--replace",)), ("week1", ("--replace",))),
]


def test_two_runs_into_one_file_and_table_each_succeed_or_say_why(score_service, tmp_path):
    service = score_service
    clean = {job: (service / f"clean_{job}" / "scores.csv").read_bytes() for job in JOBS}
    keys = {run_key(service / f"clean_{job}" / "scores.sqlite"): job for job in JOBS}
    n_encounters = {job: read_scores_file(service / f"clean_{job}" / "scores.csv") for job in JOBS}
    rng = random.Random(SEED)
    outcomes = []
    for number, runs in enumerate(ROUNDS):
        # the first round starts both at once, the others the second up to a second later
        # (about the time a run holds the table here)
        delay = rng.uniform(0, 1.0) if number else 0.0
        processes = []
        for k, (job, extra) in enumerate(runs):
            if k:
                time.sleep(delay)
            processes.append((job, start_process(*score_args(service, job, *extra), cwd=tmp_path)))
        succeeded = []
        for job, process in processes:
            out, err = process.communicate(timeout=300)
            for text in RAW:
                assert text not in out + err, f"round {number}: {err}"
            if process.returncode == 0:
                assert "Scores written to 'scores.csv'" in out, out
                succeeded.append(job)
            else:
                assert process.returncode == 2, out + err
                assert BUSY in " ".join(err.split()), err
                assert "wait for it to finish, then run again" in " ".join(err.split())
        outcomes.append(len(succeeded))
        assert succeeded, f"round {number}: neither run wrote the scores"
        # the file holds the table's one complete run, one that reported success
        table = read_score_table(tmp_path / "scores.sqlite")
        (key,) = table.keys("complete")
        assert keys[key] in succeeded
        assert_complete(table, key, n_encounters[keys[key]])
        assert (tmp_path / "scores.csv").read_bytes() == clean[keys[key]]
        assert partial_files(tmp_path) == []
    # the runs overlapped: at least one round stopped its second run with the message
    assert min(outcomes) == 1, outcomes
