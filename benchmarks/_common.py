"""Shared helpers of the benchmark scripts: timing, machine facts, JSON results."""

from __future__ import annotations

import json
import math
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


def add_scheduler_option(parser: Any) -> None:
    """The ``--scheduler`` option of the studies made of replicates."""
    parser.add_argument(
        "--scheduler",
        help="a Dask scheduler's address (tcp://host:8786): run the replicates on its "
        "workers (default $DASK_SCHEDULER_ADDRESS, else --jobs local processes); the "
        "results are the same",
    )


def run_on_backend(study: Callable[[Any], None], args: Any) -> None:
    """Run ``study(args)`` with its replicates where ``args.scheduler`` says (see
    :func:`engagekit.cluster.replicate_backend`), saying where."""
    from engagekit.cluster import replicate_backend

    with replicate_backend(args.scheduler) as where:
        print(f"replicates run on {where}", flush=True)
        study(args)


def monte_carlo_rate(count: int, total: int) -> dict:
    """A proportion of simulated replicates with its binomial Monte Carlo SE and Wilson
    95% CI."""
    from statsmodels.stats.proportion import proportion_confint

    if total == 0:
        return {"count": 0, "n": 0, "rate": None, "mc_se": None, "ci95": None}
    rate = count / total
    low, high = proportion_confint(count, total, alpha=0.05, method="wilson")
    return {
        "count": int(count),
        "n": int(total),
        "rate": round(rate, 4),
        "mc_se": round(math.sqrt(rate * (1 - rate) / total), 4),
        "ci95": [round(float(low), 4), round(float(high), 4)],
    }


def timed(fn: Callable[[], Any], repeats: int) -> tuple[list[float], Any]:
    """Run ``fn`` ``repeats`` times; wall-clock seconds of each run and the last result."""
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return times, result


def timed_command(cmd: list[str], repeats: int) -> tuple[list[float], int]:
    times, code = [], 0
    for _ in range(repeats):
        start = time.perf_counter()
        code = subprocess.run(cmd, capture_output=True, check=False).returncode
        times.append(time.perf_counter() - start)
    return times, code


# Runs a command and prints its own peak resident memory (kB). A child forked from a
# large process inherits that process's peak in ru_maxrss, so the benchmark's own
# memory would be counted: this small interpreter starts the command and reads its
# child's figure instead.
_PEAK_OF_CHILD = (
    "import resource, subprocess, sys; "
    "code = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL).returncode; "
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); sys.exit(code)"
)


def measured_command(cmd: list[str]) -> dict[str, Any]:
    """Run ``cmd`` once: its wall-clock seconds, its own peak resident memory and its
    exit code; the end of stderr kept on failure."""
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", _PEAK_OF_CHILD, *cmd], capture_output=True, check=False
    )
    seconds = time.perf_counter() - start
    peak_kb = int(done.stdout.split()[-1]) if done.stdout.strip() else 0
    return {
        "seconds": round(seconds, 2),
        "peak_rss_mb": round(peak_kb / 1024, 1),  # kilobytes on Linux
        "exit_code": done.returncode,
        **(
            {"stderr_tail": done.stderr.decode(errors="replace")[-2000:]} if done.returncode else {}
        ),
    }


def summary(times: list[float]) -> dict[str, Any]:
    return {
        "median_s": round(statistics.median(times), 3),
        "min_s": round(min(times), 3),
        "max_s": round(max(times), 3),
        "runs_s": [round(t, 3) for t in times],
    }


def peak_rss_mb() -> float:
    # ru_maxrss is in kilobytes on Linux
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def machine() -> dict[str, Any]:
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpus": os.cpu_count(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "engagekit": version("engagekit"),
        "pandas": version("pandas"),
        "pandera": version("pandera"),
        "pyarrow": version("pyarrow"),
    }


def write_result(name: str, payload: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps({"machine": machine(), **payload}, indent=2) + "\n")
    return path
