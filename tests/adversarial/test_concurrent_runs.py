"""Concurrent runs: two ``engagekit score`` processes with the same file and table.

Two real processes are started together (the second after a seeded random delay), over
and over into the same ``--out`` and database: the same job twice, then two models of
different outcomes with ``--replace``. Each run either succeeds, and then the file and
table it reported are complete and correct, or stops with the one clear message ("another
run is writing to table ..."), never with a raw database error or a traceback. Whatever
the interleaving, the file and the table end up holding the same, complete run.
"""

from __future__ import annotations

import random
import time

from _cli import start_process
from _score_outputs import (
    MODELS,
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
# the two runs of each round (model, options), one folder for all rounds, in this order:
# the same job twice, then two models of different outcomes (other columns), replacing
ROUNDS = [
    (("adherent", ()), ("adherent", ())),
    (("adherent", ("--replace",)), ("attended_next", ("--replace",))),
    (("attended_next", ("--replace",)), ("adherent", ("--replace",))),
]


def test_two_runs_into_one_file_and_table_each_succeed_or_say_why(score_service, tmp_path):
    service = score_service
    clean = {model: (service / f"clean_{model}" / "scores.csv").read_bytes() for model in MODELS}
    keys = {run_key(service / f"clean_{model}" / "scores.sqlite"): model for model in MODELS}
    n_encounters = read_scores_file(service / "clean_adherent" / "scores.csv")
    rng = random.Random(SEED)
    outcomes = []
    for number, runs in enumerate(ROUNDS):
        # the first round starts both at once, the others the second up to a second later
        # (about the time a run holds the table here)
        delay = rng.uniform(0, 1.0) if number else 0.0
        processes = []
        for k, (model, extra) in enumerate(runs):
            if k:
                time.sleep(delay)
            processes.append(
                (model, start_process(*score_args(service, model, *extra), cwd=tmp_path))
            )
        succeeded = []
        for model, process in processes:
            out, err = process.communicate(timeout=300)
            for text in RAW:
                assert text not in out + err, f"round {number}: {err}"
            if process.returncode == 0:
                assert "Scores written to 'scores.csv'" in out, out
                succeeded.append(model)
            else:
                assert process.returncode == 2, out + err
                assert BUSY in " ".join(err.split()), err
                assert "wait for it to finish, then run again" in " ".join(err.split())
        outcomes.append(len(succeeded))
        assert succeeded, f"round {number}: neither run wrote the scores"
        # the file and the table hold the same complete run, one that reported success
        table = read_score_table(tmp_path / "scores.sqlite")
        (key,) = table.run_keys
        assert keys[key] in succeeded
        assert_complete(table, key, n_encounters)
        assert (tmp_path / "scores.csv").read_bytes() == clean[keys[key]]
        assert partial_files(tmp_path) == []
    # the runs overlapped: at least one round stopped its second run with the message
    assert min(outcomes) == 1, outcomes
