"""``audit``: the audit log of ``engagekit serve`` (every view of a patient's data, flag
review and user change), exported for a governance review."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ._app import _App, app, out
from ._common import EscapeFormulasOption, iso_day
from .users import DatabaseOption, SubGroup

audit_app = _App(
    name="audit",
    cls=SubGroup,
    help="The audit log of engagekit serve: who saw or changed what, and when.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode="rich",
)
app.add_typer(audit_app, name="audit")


@audit_app.command("export")
def export(
    db: DatabaseOption,
    out_file: Annotated[
        Path,
        typer.Option(
            "--out",
            help="Where to write the log: CSV (.csv, .csv.gz) or Parquet (.parquet).",
            dir_okay=False,
            show_default=False,
        ),
    ],
    since: Annotated[
        str | None,
        typer.Option(
            "--since",
            help="Only the rows from this day on (YYYY-MM-DD, from midnight UTC; default: "
            "the whole log).",
        ),
    ] = None,
    escape_formulas: EscapeFormulasOption = True,
) -> None:
    """Write the audit log to a CSV or Parquet file.

    Oldest row first, with every column: audit_id, at (ISO 8601, UTC), username, role,
    action (view, flag_review, user_change, …), route, patient_id, allowed and detail.

    The log holds patients' identifiers: keep the file as you keep the data. The log
    itself cannot be edited or deleted (the database refuses it).
    """
    from .._dates import parse_iso_date
    from ..io import write_table
    from ..io._write import check_writable
    from ..web import export_audit, open_database

    day = iso_day(since, "--since")
    check_writable(out_file)
    engine = open_database(db)
    try:
        log = export_audit(engine, None if day is None else parse_iso_date(day))
    finally:
        engine.dispose()
    write_table(log, out_file, escape_formulas=escape_formulas)
    span = f" from {day} on" if day is not None else ""
    out.print(
        f"Exported {len(log):,} audit log row{'s' if len(log) != 1 else ''}{span} to "
        f"{str(out_file)!r}.",
        highlight=False,
    )
