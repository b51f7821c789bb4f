"""Studies on a Dask cluster give the numbers they give on this machine."""

from __future__ import annotations

import json

import numpy as np
import pytest
from joblib import delayed

from _cli import assert_no_traceback, run
from engagekit.cluster import (
    LOCAL,
    SCHEDULER_ENV,
    on_cluster,
    replicate_backend,
    run_replicates,
    scheduler_address,
)
from engagekit.config import load_config
from engagekit.errors import ArgumentError, OutputError
from engagekit.evaluation import evaluate_predictions
from engagekit.heterogeneity._power import estimate_power, power_config

distributed = pytest.importorskip("distributed", reason="the dask extra (in the test extra)")

CONFIG = load_config()
# three treatments: a 25-coefficient model, so that replicates fit quickly
SMALL = power_config(CONFIG, ["cbt_face_to_face", "cbt_online", "usual_care"])


@pytest.fixture(scope="module")
def cluster():
    """A local Dask cluster of two worker processes, one thread each."""
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as local:
        yield local.scheduler_address


def _same(a, b) -> None:
    """Two results equal but for the time they took (and the n_jobs they were given)."""
    a, b = a.to_dict(), b.to_dict()
    for record in (a, b):
        record.pop("seconds")
        record["settings"].pop("n_jobs")
    assert a == b


def test_a_power_study_on_a_cluster_equals_the_local_one(cluster, monkeypatch):
    monkeypatch.delenv(SCHEDULER_ENV, raising=False)
    options = dict(config=SMALL, deviation=0.8, reps=6, seed=11)
    local = estimate_power(150, n_jobs=1, **options)
    remote = estimate_power(150, scheduler=cluster, **options)
    _same(local, remote)
    assert local.succeeded == 6  # it computed something to compare


def test_the_environment_variable_names_the_cluster(cluster, monkeypatch):
    monkeypatch.setenv(SCHEDULER_ENV, cluster)
    assert scheduler_address(None) == cluster
    with replicate_backend(None) as where:
        assert where == f"the Dask cluster at {cluster}"
        assert on_cluster()
        # the tasks run in the workers' processes, not this one
        import os

        pids = set(run_replicates((delayed(os.getpid)() for _ in range(8)), n_jobs=1))
        assert os.getpid() not in pids
    assert not on_cluster()


def test_engagekit_power_with_scheduler_prints_what_it_prints_locally(
    cluster, monkeypatch, tmp_path
):
    monkeypatch.delenv(SCHEDULER_ENV, raising=False)
    args = ["power", "--patients", "120", "--reps", "4", "--seed", "3", "--deviation", "0.5",
            "--treatments", "cbt_face_to_face,cbt_online,usual_care"]  # fmt: skip
    local = run(*args, "--jobs", "1", "--out", "local.json", cwd=tmp_path)
    remote = run(*args, "--scheduler", cluster, "--out", "remote.json", cwd=tmp_path)
    assert local.returncode == 0 and remote.returncode == 0, local.stderr + remote.stderr
    figures = " ".join(local.stdout.split()).split(" Result written")[0]
    assert figures.startswith("120 patients, 4 simulated studies")
    assert figures in " ".join(remote.stdout.split())  # the same figures


def test_a_bootstrap_on_a_cluster_equals_the_local_one(cluster, make_encounters):
    encounters = make_encounters(n_patients=300, seed=5)
    rows = encounters[encounters["attended_next"].notna()]
    y = rows["attended_next"].astype(int).to_numpy()
    p = np.clip(0.9 - 0.1 * (rows["session_number"].to_numpy() % 3), 0.01, 0.99)
    groups, by = rows["patient_id"], rows[["treatment"]]
    local = evaluate_predictions(y, p, groups, by, n_boot=60, seed=4, n_jobs=2)
    with replicate_backend(cluster):
        remote = evaluate_predictions(y, p, groups, by, n_boot=60, seed=4)
    assert local.to_dict() == remote.to_dict()
    auroc = local.overall.auroc
    assert auroc.ci_low < auroc.value < auroc.ci_high and auroc.n_boot == 60


def test_an_unreachable_scheduler_is_a_message_and_exit_code(monkeypatch, tmp_path):
    monkeypatch.delenv(SCHEDULER_ENV, raising=False)
    monkeypatch.setattr("engagekit.cluster.CONNECT_TIMEOUT", 2)  # refused at once; no wait
    with pytest.raises(
        OutputError, match=r"cannot reach the Dask scheduler at 'tcp://127\.0\.0\.1:9'"
    ):
        with replicate_backend("tcp://127.0.0.1:9"):
            pass
    result = run(
        "power", "--patients", "120", "--reps", "2", "--scheduler", "tcp://127.0.0.1:9",
        cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 2, result.stdout + result.stderr
    assert "cannot reach the Dask scheduler" in " ".join(result.stderr.split())
    assert_no_traceback(result)


def test_without_a_scheduler_the_work_stays_here(monkeypatch):
    monkeypatch.delenv(SCHEDULER_ENV, raising=False)
    with replicate_backend(None) as where:
        assert where == LOCAL and not on_cluster()
    with pytest.raises(ArgumentError, match="address is empty"):
        scheduler_address("  ")


def test_train_and_evaluate_bootstrap_on_the_cluster_as_here(cluster, monkeypatch, tmp_path):
    monkeypatch.delenv(SCHEDULER_ENV, raising=False)
    for name, patients, seed in (("train", 400, 1), ("test", 200, 2)):
        made = run("simulate", "--patients", patients, "--seed", seed, "--out", f"{name}.csv",
                   cwd=tmp_path)  # fmt: skip
        assert made.returncode == 0, made.stderr
    train = ["train", "train.csv", "--target", "adherent", "--model", "logistic", "--folds", "3",
             "--bootstrap", "40"]  # fmt: skip
    here = run(*train, "--out", "here", cwd=tmp_path)
    there = run(*train, "--out", "there", "--scheduler", cluster, cwd=tmp_path)
    assert here.returncode == 0 and there.returncode == 0, here.stderr + there.stderr
    metrics = [json.loads((tmp_path / d / "metrics.json").read_text()) for d in ("here", "there")]
    assert metrics[0] == metrics[1]
    assert metrics[0]["auroc_n_boot"] == 40  # the bootstrap ran, and gave the CIs compared
    evaluate = ["evaluate", "here", "test.csv", "--bootstrap", "40"]
    here = run(*evaluate, "--out", "here.json", cwd=tmp_path)
    there = run(*evaluate, "--out", "there.json", "--scheduler", cluster, cwd=tmp_path)
    assert here.returncode == 0 and there.returncode == 0, here.stderr + there.stderr
    assert (tmp_path / "here.json").read_text() == (tmp_path / "there.json").read_text()
