"""``forecast``: expected missed sessions per group, for planning."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ._app import app, out
from ._common import (
    AllowUnfitOption,
    EncodingOption,
    EscapeFormulasOption,
    ModelConfigOption,
    QueryOption,
    SepOption,
    Source,
    TableOption,
    bad_outcome,
    open_model,
    read_valid_table,
    refuse_unfit,
    require_column,
)


@app.command()
def forecast(
    model_dir: Annotated[Path, typer.Argument(help="A model directory written by train.")],
    data: Annotated[str, typer.Argument(help="Encounters (CSV, Parquet or database URL).")],
    by: Annotated[
        str, typer.Option(help="Group by treatment, practitioner_id or any other column.")
    ] = "treatment",
    out_file: Annotated[
        Path, typer.Option("--out", help="Forecast table (.csv, .parquet or .json).")
    ] = Path("forecast.csv"),
    level: Annotated[float, typer.Option(help="Coverage of the interval.")] = 0.9,
    every_encounter: Annotated[
        bool,
        typer.Option(
            "--every-encounter",
            help="Forecast every encounter (e.g. to check against recorded outcomes) instead "
            "of each patient's latest encounter whose outcome is not yet known.",
        ),
    ] = False,
    escape_formulas: EscapeFormulasOption = True,
    table: TableOption = None,
    query: QueryOption = None,
    encoding: EncodingOption = "utf-8",
    sep: SepOption = None,
    config: ModelConfigOption = None,
    allow_unfit_model: AllowUnfitOption = False,
) -> None:
    """Expected number of patients with the bad outcome per group, with an interval.

    By default each patient's latest encounter whose outcome is still empty counts once:
    for a re-attendance model, the expected number of patients who will not come to
    their next session. A patient whose latest encounter has next_session_due = 0 (the
    course ended) is left out; without that column, leave such patients out of DATA
    (their last outcome is empty too, but no session is due). The interval is the
    Poisson-binomial distribution of the count (independent outcomes with the model's
    probabilities).
    """
    import numpy as np
    from rich.table import Table

    from ..errors import ContractError
    from ..forecast import forecast_dropout, pending_encounters
    from ..io import write_json, write_table
    from ..io._write import check_writable

    if not 0 < level < 1:
        raise typer.BadParameter("the level must be between 0 and 1", param_hint="--level")
    if out_file.suffix.lower() not in (".csv", ".parquet", ".json"):
        raise typer.BadParameter("use a .csv, .parquet or .json file", param_hint="--out")
    check_writable(out_file)
    model, manifest, cfg = open_model(model_dir, config)
    refuse_unfit(manifest, model_dir, allow_unfit_model)
    encounters, cfg = read_valid_table(
        Source(data, table, query, encoding, sep), cfg, model_features=model.feature_names
    )
    require_column(encounters, by, "--by", "grouping the forecast")
    p_bad = 1.0 - model.predict_proba(encounters)
    target = model.target
    if every_encounter:
        rows = np.ones(len(encounters), dtype=bool)
    else:
        rows = pending_encounters(encounters, target)
        if not rows.any():
            raise ContractError(
                f"no patient's latest encounter has {target} still empty, so there is no "
                "next session to forecast; use --every-encounter to forecast recorded ones"
            )
    observed = 1.0 - encounters.loc[rows, target].to_numpy(dtype="float64", na_value=np.nan)
    table_out = forecast_dropout(
        p_bad[rows],
        encounters.loc[rows, by].astype("string").reset_index(drop=True),
        level,
        observed_bad=observed if every_encounter else None,
    ).reset_index()
    table_out.insert(1, "bad_outcome", bad_outcome(cfg, target))
    if out_file.suffix.lower() == ".json":
        write_json({"level": level, "by": by, "groups": table_out.to_dict("records")}, out_file)
    else:
        write_table(table_out, out_file, escape_formulas=escape_formulas)
    t = Table(
        title=f"Expected number who {bad_outcome(cfg, target)} ({level:.0%} interval)",
        header_style="bold",
    )
    for col in (by, "n", "expected", "interval"):
        t.add_column(col, justify="left" if col == by else "right")
    # the file keeps the codes; the screen names treatments as the config does
    shown = {tr.name: tr.label for tr in cfg.treatments} if by == "treatment" else {}
    for r in table_out.itertuples(index=False):
        t.add_row(
            shown.get(str(r[0]), str(r[0])),
            f"{r.n_encounters:,}",
            f"{r.expected:.1f}",
            f"{r.interval_low:.0f} to {r.interval_high:.0f}",
        )
    out.print(t)
    out.print(f"Forecast written to {str(out_file)!r}.")
