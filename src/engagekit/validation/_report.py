"""The validation report: every problem found, as a table, and which rows are good."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["PROBLEM_COLUMNS", "ValidationReport"]

#: columns of :attr:`ValidationReport.problems`
PROBLEM_COLUMNS = ["row", "encounter_id", "column", "value", "check", "rule", "detail"]


@dataclass(frozen=True)
class ValidationReport:
    """Result of checking an encounter table against the contract.

    Attributes
    ----------
    problems : pandas.DataFrame
        One row per broken rule per cell, with columns ``row`` (data row number, the
        first data row below the header is 1), ``encounter_id`` (where known),
        ``column``, ``value`` (as written), ``check`` (the rule's short name) and
        ``rule`` (what the value must be) and ``detail`` (for a duplicate, the rows
        it clashes with; else empty).
    n_rows : int
        Rows in the table checked.
    bad_rows : numpy.ndarray
        Sorted 0-based positions of the rows with at least one problem.
    absent_columns : tuple of str
        Optional contract columns the table does not have (allowed, but a model cannot
        use what is not there: e.g. every rating column absent usually means the
        config does not match the service's instrument).
    """

    problems: pd.DataFrame
    n_rows: int
    bad_rows: np.ndarray
    absent_columns: tuple[str, ...] = ()

    @property
    def valid(self) -> bool:
        return len(self.problems) == 0

    @property
    def n_bad_rows(self) -> int:
        return len(self.bad_rows)

    @property
    def n_good_rows(self) -> int:
        return self.n_rows - self.n_bad_rows

    @property
    def good_mask(self) -> np.ndarray:
        """Boolean mask over the table's rows: True where the row broke no rule."""
        mask = np.ones(self.n_rows, dtype=bool)
        mask[self.bad_rows] = False
        return mask

    def summary(self) -> pd.DataFrame:
        """Problems counted by column and rule, with the first rows affected."""
        if self.valid:
            return pd.DataFrame(columns=["column", "rule", "n_problems", "first_rows"])
        grouped = self.problems.groupby(["column", "check", "rule"], sort=False)
        out = grouped["row"].agg(
            n_problems="size",
            first_rows=lambda r: ", ".join(str(x) for x in r.head(5)),
        )
        return out.reset_index().drop(columns="check")

    def to_dict(self, max_problems: int | None = None) -> dict[str, Any]:
        """A JSON-ready dict; ``max_problems`` caps the problem list (None: all)."""
        shown = self.problems if max_problems is None else self.problems.head(max_problems)
        records = [
            {
                "row": int(r.row),
                "encounter_id": None if pd.isna(r.encounter_id) else str(r.encounter_id),
                "column": r.column,
                "value": None if pd.isna(r.value) else str(r.value),
                "check": r.check,
                "rule": r.rule,
                "detail": r.detail,
            }
            for r in shown.itertuples(index=False)
        ]
        return {
            "valid": self.valid,
            "n_rows": self.n_rows,
            "n_good_rows": self.n_good_rows,
            "n_bad_rows": self.n_bad_rows,
            "n_problems": len(self.problems),
            "absent_columns": list(self.absent_columns),
            "summary": self.summary().to_dict(orient="records"),
            "problems": records,
        }
