"""How long the ``engagekit`` command takes to start: ``engagekit --help``.

Target: a median under 0.5 s over 10 runs. Measured beside two baselines in the same
run, each a fresh interpreter: ``python -c pass`` (the interpreter alone) and
``python -c "import engagekit.features"`` with the heavy stack it needs (pandas and
scikit-learn: what every command paid before imports were made lazy). Also
``engagekit --version`` and ``engagekit validate --help``.

    python benchmarks/bench_startup.py --repeats 10
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from _common import summary, timed_command, write_result

TARGET_S = 0.5


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    engagekit = shutil.which("engagekit") or str(Path(sys.executable).parent / "engagekit")
    commands = {
        "python -c pass (baseline)": [sys.executable, "-c", "pass"],
        "import pandas and scikit-learn (baseline: the old start-up)": [
            sys.executable,
            "-c",
            "import engagekit.features",
        ],
        "engagekit --help": [engagekit, "--help"],
        "engagekit --version": [engagekit, "--version"],
        "engagekit validate --help": [engagekit, "validate", "--help"],
    }
    results = {}
    for name, cmd in commands.items():
        timed_command(cmd, 1)  # warm the file cache
        times, code = timed_command(cmd, args.repeats)
        if code != 0:
            raise SystemExit(f"{name!r} exited with {code}")
        results[name] = summary(times)
        print(f"{name}: median {results[name]['median_s']:.3f} s")
    median = results["engagekit --help"]["median_s"]
    path = write_result(
        "startup",
        {
            "repeats": args.repeats,
            "target_s": TARGET_S,
            "meets_target": median < TARGET_S,
            "commands": results,
        },
    )
    print(f"engagekit --help: median {median:.3f} s (target {TARGET_S} s) → {path}")


if __name__ == "__main__":
    main()
