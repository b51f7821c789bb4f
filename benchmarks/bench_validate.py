"""How long does checking a large encounter export take?

Simulates an encounter table of about ROWS rows, writes it as CSV, then measures (median
of REPEATS runs, same process, same file):

- ``read``: ``engagekit.read_encounters`` (every cell kept as text, for exact reports);
- ``validate``: ``engagekit.validate_encounters`` on the table read;
- ``cli``: the whole ``engagekit validate FILE`` command as a user runs it;
- ``baseline``: a plain ``pandas.read_csv`` of the same file, measured in the same run,
  so the figures can be compared on this shared, noisy machine.

Run: ``python benchmarks/bench_validate.py [--rows 1000000] [--repeats 3]``.
Writes ``benchmarks/results/validate.json``.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import peak_rss_mb, summary, timed, timed_command, write_result
from engagekit import (
    read_encounters,
    simulate_encounters,
    validate_encounters,
    write_table,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="engagekit-bench-"))
    try:
        # about 5.4 encounters per simulated patient at the default settings
        patients = max(1, args.rows // 5)
        encounters = simulate_encounters(patients, seed=args.seed).encounters
        assert len(encounters) >= args.rows, "simulate more patients per row"
        encounters = encounters.head(args.rows)
        path = write_table(encounters, workdir / "encounters.csv")
        print(f"{len(encounters):,} rows, {path.stat().st_size / 1e6:.0f} MB CSV")

        baseline, _ = timed(lambda: pd.read_csv(path), args.repeats)
        read, frame = timed(lambda: read_encounters(path), args.repeats)
        check, report = timed(lambda: validate_encounters(frame), args.repeats)
        assert report.valid, "the simulated table should meet the contract"
        exe = shutil.which("engagekit") or str(Path(sys.executable).parent / "engagekit")
        cli, code = timed_command([exe, "validate", str(path)], args.repeats)
        assert code == 0, f"engagekit validate exited {code}"

        result = {
            "benchmark": "validate",
            "rows": len(encounters),
            "csv_mb": round(path.stat().st_size / 1e6, 1),
            "repeats": args.repeats,
            "baseline_pandas_read_csv": summary(baseline),
            "read_encounters": summary(read),
            "validate_encounters": summary(check),
            "cli_validate": summary(cli),
            "cli_over_baseline": round(summary(cli)["median_s"] / summary(baseline)["median_s"], 2),
            "target_s": 30,
            "peak_rss_mb_in_process": peak_rss_mb(),
        }
        out = write_result("validate", result)
        print(
            f"baseline read_csv {result['baseline_pandas_read_csv']['median_s']} s | "
            f"read {result['read_encounters']['median_s']} s | "
            f"validate {result['validate_encounters']['median_s']} s | "
            f"CLI {result['cli_validate']['median_s']} s "
            f"({result['cli_over_baseline']}x baseline) → {out}"
        )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
