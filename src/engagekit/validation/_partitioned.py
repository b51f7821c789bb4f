"""A table checked in parts, reported as one: what the Spark engine and the streaming
reader share.

A table too large for one call of :func:`engagekit.validate_encounters` is checked in
buckets of whole patients (so the rules within a patient see all of a patient's rows),
and each column that must be unique over the whole table is checked again on the rows
whose key occurs in more than one bucket. Each part's problems are renumbered to the
table's rows, and the parts are put together in the order the local validator lists
them: the same report, row for row.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pandas as pd

from ._contract import EncounterContract
from ._report import ValidationReport

__all__ = ["UNIQUE_OVER_TABLE", "assembled_report", "renumbered"]

#: The check of a column unique over the whole table (checked across parts).
UNIQUE_OVER_TABLE = "unique_over_table"
_ROW_NUMBERS = re.compile(r"\d+")


def renumbered(problems: pd.DataFrame, rows: Any) -> pd.DataFrame:
    """``problems`` of a part whose row ``i`` (0-based) is table row ``rows[i]``, in the
    table's numbers: their ``row`` and the rows their ``detail`` names.

    >>> import numpy as np, pandas as pd
    >>> part = pd.DataFrame({"row": [1, 2], "detail": ["also on row(s) 2", ""]})
    >>> renumbered(part, np.array([10, 41])).values.tolist()
    [[11, 'also on row(s) 42'], [42, '']]
    """
    rows = np.asarray(rows, dtype="int64")
    out = problems.copy()
    out["row"] = rows[out["row"].to_numpy(dtype="int64") - 1] + 1

    def renumber(detail: str) -> str:
        if not detail:
            return detail
        head, found, tail = detail.partition("row(s) ")
        return head + found + _ROW_NUMBERS.sub(lambda m: str(rows[int(m.group()) - 1] + 1), tail)

    out["detail"] = out["detail"].astype(object).map(renumber)
    return out


def assembled_report(
    parts: list[pd.DataFrame],
    n_rows: int,
    header: ValidationReport,
    contract: EncounterContract,
) -> ValidationReport:
    """One report of the renumbered problems ``parts`` of a table of ``n_rows`` rows,
    ordered as the local validator orders them (row, then the contract's column order,
    then check). ``header`` is the report on the table's columns alone (its absent
    columns)."""
    columns = list(header.problems.columns)
    parts = [p for p in parts if len(p)]
    if not parts:
        table = pd.DataFrame({c: pd.Series([], dtype=header.problems[c].dtype) for c in columns})
        table["row"] = table["row"].astype("int64")
    else:
        table = pd.concat([p[columns] for p in parts], ignore_index=True)
    table["row"] = table["row"].astype("int64")
    for name in ("encounter_id", "column", "value", "check", "rule", "detail"):
        # missing as the local report has it: None, not NaN
        table[name] = table[name].astype(object).where(table[name].notna(), None)
    order = {name: i for i, name in enumerate(contract.names)}
    table["_col_order"] = table["column"].map(order).fillna(len(order))
    table = table.sort_values(["row", "_col_order", "check"], kind="stable")
    table = table.drop(columns="_col_order").reset_index(drop=True)
    return ValidationReport(
        problems=table[columns],
        n_rows=int(n_rows),
        bad_rows=np.unique(table["row"].to_numpy(dtype="int64") - 1),
        absent_columns=header.absent_columns,
    )
