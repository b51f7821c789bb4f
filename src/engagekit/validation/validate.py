"""Check an encounter table against the contract and convert it to typed columns."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pandera.errors as pa_errors

from ..config import Config, load_config
from ..errors import ContractError, DataReadError
from ._parse import as_date, as_number, as_text
from .contract import EncounterContract, encounter_contract
from .report import PROBLEM_COLUMNS, ValidationReport
from .schema import ContractSchema, build_schema

__all__ = [
    "check_encounters",
    "coerce_encounters",
    "split_by_validity",
    "validate_encounters",
]

_MAX_OTHER_ROWS = 5


def _resolve(config: Config | None) -> tuple[Config, EncounterContract]:
    config = config if config is not None else load_config()
    return config, encounter_contract(config)


def _require_columns(frame: pd.DataFrame, contract: EncounterContract) -> None:
    missing = [c for c in contract.required_columns if c not in frame.columns]
    if missing:
        found = ", ".join(repr(str(c)) for c in frame.columns[:20])
        more = " ..." if frame.shape[1] > 20 else ""
        hint = "rename the columns to the contract's names"
        if frame.shape[1] == 1:
            header = str(frame.columns[0])
            used = [s for s in (";", "\t", "|", ",") if s in header]
            if used:
                # one column whose name holds a separator: read with the wrong one
                shown = "tab" if used[0] == "\t" else used[0]
                hint = (
                    f"the header was read as one column, but it holds {shown!r}: the file "
                    f"is probably separated by {shown!r}, so pass --sep {shown!r}"
                    if shown != "tab"
                    else "the header was read as one column, but it holds tabs: pass --sep tab"
                )
        raise DataReadError(
            f"required column(s) {', '.join(repr(c) for c in missing)} missing from the "
            f"table (found: {found}{more}); {hint}"
        )


def _failure_cases(frame: pd.DataFrame, built: ContractSchema) -> pd.DataFrame:
    try:
        built.schema.validate(frame, lazy=True, inplace=True)
    except pa_errors.SchemaErrors as e:
        return e.failure_cases
    return pd.DataFrame(columns=["column", "check", "index", "failure_case"])


def _other_rows(index: pd.Index, keys: pd.Series) -> pd.Series:
    """For each failing row, the other rows sharing its key, as '3, 9' text."""
    rows = pd.Series(index + 1, index=index)
    groups = rows.groupby(keys.values, sort=False).agg(list)

    def others(i: int, k) -> str:
        peers = [r for r in groups[k] if r != i + 1]
        text = ", ".join(str(r) for r in peers[:_MAX_OTHER_ROWS])
        return text + (" ..." if len(peers) > _MAX_OTHER_ROWS else "")

    return pd.Series([others(i, k) for i, k in zip(index, keys.values, strict=True)], index=index)


def _problems(
    frame: pd.DataFrame,
    contract: EncounterContract,
    built: ContractSchema,
    cases: pd.DataFrame,
) -> pd.DataFrame:
    if cases.empty:
        return pd.DataFrame(columns=PROBLEM_COLUMNS)
    broken = cases["index"].isna()
    if broken.any():
        # a check that raised instead of answering is a bug in engagekit, not bad data
        first = cases[broken].iloc[0]
        raise RuntimeError(
            f"engagekit's check {first['check']!r} on column {first['column']!r} "
            f"failed to run: {first['failure_case']}"
        )
    check_name = cases["check"].astype(str)
    table_level = check_name.isin(list(built.table_checks))
    # a table-level check is reported by pandera once per column; keep its own column
    keep = ~table_level | (cases["column"].astype(str) == check_name.map(built.table_checks))
    cases = cases[keep]
    messages = built.messages
    index = pd.Index(cases["index"].astype("int64"))
    columns = cases["column"].astype(str).to_numpy()
    checks = check_name[keep].to_numpy()
    rules = [messages.get((c, k), k) for c, k in zip(columns, checks, strict=True)]
    values = [
        frame.at[i, c] if c in frame.columns else None for i, c in zip(index, columns, strict=True)
    ]
    encounter = (
        as_text(frame["encounter_id"]).reindex(index).to_numpy()
        if "encounter_id" in frame.columns
        else np.full(len(index), None)
    )
    out = pd.DataFrame(
        {
            "row": index + 1,
            "encounter_id": encounter,
            "column": columns,
            "value": [None if pd.isna(v) else str(v) for v in values],
            "check": checks,
            "rule": rules,
            "detail": "",
        }
    )
    out = _add_peers(frame, contract, out)
    order = {name: i for i, name in enumerate(contract.names)}
    out["_col_order"] = out["column"].map(order).fillna(len(order))
    out = out.sort_values(["row", "_col_order", "check"], kind="stable")
    return out.drop(columns="_col_order").reset_index(drop=True)


def _add_peers(frame: pd.DataFrame, contract: EncounterContract, out: pd.DataFrame) -> pd.DataFrame:
    """Say which other rows a duplicate clashes with, so the user can fix either."""
    for check in out["check"].unique():
        at = out["check"] == check
        idx = pd.Index(out.loc[at, "row"] - 1)
        if check == "unique_over_table":
            for column in out.loc[at, "column"].unique():
                sel = at & (out["column"] == column)
                rows = pd.Index(out.loc[sel, "row"] - 1)
                peers = _other_rows(rows, as_text(frame[column]).reindex(rows))
                out.loc[sel, "detail"] = "also on row(s) " + peers.to_numpy()
        elif check.startswith("unique_within_"):
            key = next(
                k for k in contract.unique_keys if "unique_within_" + "_".join(k[:-1]) == check
            )
            keys = pd.Series(
                list(zip(*(as_text(frame[c]).reindex(idx) for c in key), strict=True)),
                index=idx,
            )
            peers = _other_rows(idx, keys)
            out.loc[at, "detail"] = "same value on row(s) " + peers.to_numpy()
    return out


def validate_encounters(frame: pd.DataFrame, config: Config | None = None) -> ValidationReport:
    """Check an encounter table against every rule of the contract, all at once.

    Parameters
    ----------
    frame : pandas.DataFrame
        The table as read (see :func:`engagekit.read_encounters`): raw text cells or
        native types. Row ``i`` of the frame (0-based) is data row ``i + 1``.
    config : Config, optional
        Supplies the attributes, their scale and the treatments; defaults if omitted.

    Returns
    -------
    ValidationReport
        Every broken rule of every row, and which rows are good.

    Raises
    ------
    DataReadError
        A required column is missing, so the table cannot be checked at all.

    Examples
    --------
    >>> import pandas as pd
    >>> from engagekit import validate_encounters
    >>> table = pd.DataFrame({"patient_id": ["p1", "p1"], "encounter_id": ["e1", "e2"],
    ...                       "session_number": ["1", "1"],
    ...                       "treatment": ["cbt_online", "yoga"], "empathy": ["4", "9"]})
    >>> report = validate_encounters(table)
    >>> report.valid, report.n_bad_rows
    (False, 2)
    >>> report.problems[["row", "column", "value"]].values.tolist()
    [[1, 'session_number', '1'], [2, 'session_number', '1'], [2, 'treatment', 'yoga'],
     [2, 'empathy', '9']]
    """
    _, contract = _resolve(config)
    frame = frame.reset_index(drop=True)
    frame.columns = [str(c) for c in frame.columns]
    _require_columns(frame, contract)
    built = build_schema(contract, list(frame.columns))
    cases = _failure_cases(frame, built)
    problems = _problems(frame, contract, built, cases)
    bad_rows = np.unique(problems["row"].to_numpy(dtype="int64") - 1)
    absent = tuple(name for name in contract.names if name not in frame.columns)
    return ValidationReport(
        problems=problems, n_rows=len(frame), bad_rows=bad_rows, absent_columns=absent
    )


def split_by_validity(
    frame: pd.DataFrame, report: ValidationReport
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split ``frame`` into (good rows, offending rows), as written, losing none.

    The offending rows keep their data row number in a first column ``row``.
    """
    frame = frame.reset_index(drop=True)
    good = frame[report.good_mask]
    bad = frame.iloc[report.bad_rows].copy()
    bad.insert(0, "row", report.bad_rows + 1)
    return good.reset_index(drop=True), bad.reset_index(drop=True)


def coerce_encounters(frame: pd.DataFrame, config: Config | None = None) -> pd.DataFrame:
    """Convert a valid encounter table to typed columns for analysis.

    Identifiers and categories become strings, ``session_number`` int64,
    ``encounter_date`` datetime64, ratings float64 and outcomes nullable Int8. Extra
    columns pass through untouched. Call it on data that passed validation.
    """
    _, contract = _resolve(config)
    out = frame.reset_index(drop=True).copy()
    for f in contract.fields:
        if f.name not in out.columns:
            continue
        col = out[f.name]
        if f.type == "integer" and f.name == "session_number":
            out[f.name] = as_number(col).astype("int64")
        elif f.type == "integer":
            out[f.name] = as_number(col).astype("Int8")
        elif f.type == "number":
            out[f.name] = as_number(col)
        elif f.type == "date":
            out[f.name] = as_date(col)
        else:
            out[f.name] = as_text(col).astype(object).where(col.notna(), None)
    return out


def check_encounters(frame: pd.DataFrame, config: Config | None = None) -> pd.DataFrame:
    """Validate strictly and return the typed table, or raise with the full report.

    Raises
    ------
    ContractError
        The table breaks the contract; ``error.report`` holds every problem.
    """
    report = validate_encounters(frame, config)
    if not report.valid:
        raise ContractError(
            f"the encounter table breaks the data contract: {len(report.problems)} "
            f"problem(s) in {report.n_bad_rows} of {report.n_rows} rows",
            report=report,
        )
    return coerce_encounters(frame, config)
