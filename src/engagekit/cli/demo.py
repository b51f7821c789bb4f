"""``demo``: the main job, end to end, on the embedded default data."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from ..io import write_json
from ._app import (
    ConfigOption,
    _config,
    _pct,
    _print_report,
    _simulate_with_progress,
    app,
    out,
)


# --------------------------------------------------------------------------- demo
@app.command()
def demo(
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for the demo's files.")] = Path(
        "engagekit-demo"
    ),
    patients: Annotated[int, typer.Option(help="Patients to simulate.", min=1)] = 3000,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 2026,
    config: ConfigOption = None,
) -> None:
    """Run the main job on the embedded default data (a simulated service).

    Simulates a service's encounter export, checks it against the data contract and
    summarises it: patients, encounters and sessions per patient by treatment, outcome
    rates and missing ratings. Leaves encounters.csv, truth.csv, validation.json and
    summary.json in the --out folder.
    """
    from ..io import read_encounters, write_table
    from ..summary import summarize_encounters
    from ..validation import coerce_encounters, validate_encounters

    cfg = _config(config)
    out_dir.mkdir(parents=True, exist_ok=True)
    data = _simulate_with_progress(patients, seed, cfg)
    enc_path = write_table(data.encounters, out_dir / "encounters.csv")
    write_table(data.truth, out_dir / "truth.csv")
    out.print(
        f"[bold]1. Simulated[/bold] {len(data.encounters):,} encounters of "
        f"{patients:,} patients → {enc_path!s}"
    )
    # read the export back as any service file would be, so the demo checks the file
    raw = read_encounters(enc_path)
    report = validate_encounters(raw, cfg)
    write_json(report.to_dict(), out_dir / "validation.json")
    out.print("[bold]2. Validated[/bold] against the encounter contract: ", end="")
    _print_report(report, max_problems=10, attributes=cfg.attribute_names)
    if not report.valid:
        raise typer.Exit(1)
    summary = summarize_encounters(coerce_encounters(raw, cfg), cfg)
    write_json(summary.to_dict(), out_dir / "summary.json")
    out.print("[bold]3. Summary[/bold]")
    _print_summary(summary)
    out.print(f"Files are in {str(out_dir)!r}.")


def _print_summary(summary) -> None:
    t = Table(header_style="bold")
    for col in (
        "treatment",
        "patients",
        "encounters",
        "sessions/patient\nmean (max)",
        "missed next\n(encounters)",
        "dropped out\n(patients)",
        "adherent\n(encounters)",
    ):
        t.add_column(col, justify="left" if col == "treatment" else "right")
    for r in summary.by_treatment.itertuples(index=False):
        t.add_row(
            r.treatment,
            f"{r.patients:,}",
            f"{r.encounters:,}",
            f"{r.sessions_mean:.1f} ({r.sessions_max})",
            _pct(r.not_attended_next),
            _pct(r.dropped_out),
            _pct(r.adherent),
        )
    out.print(t)
    m = Table(header_style="bold")
    m.add_column("attribute")
    m.add_column("ratings missing", justify="right")
    for r in summary.missing_ratings.itertuples(index=False):
        m.add_row(r.attribute, f"{r.missing:,} ({_pct(r.share_missing)})")
    out.print(m)
