"""Check an encounter table against the contract and convert it to typed columns."""

from __future__ import annotations

import difflib

import numpy as np
import pandas as pd

from .._excerpt import EXCERPT_WIDTH, excerpt
from ..config import Config, load_config
from ..errors import ContractError, DataReadError
from ._contract import EncounterContract, encounter_contract
from ._pandera import pa_errors
from ._parse import as_date, as_number, as_text, is_not_plain
from ._report import PROBLEM_COLUMNS, ValidationReport
from ._schema import ContractSchema, build_schema

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


def _shown(value: object) -> str | None:
    """A cell as the problem table shows it: its text, cut to a short excerpt."""
    if isinstance(value, bool | np.bool_):
        return str(bool(value))
    if isinstance(value, np.ndarray):
        # a Parquet list cell; its first items are enough to recognise it
        return excerpt(value[:EXCERPT_WIDTH].tolist())
    if is_not_plain(value):
        return excerpt(value)
    if pd.isna(value):
        return None
    text = str(value)
    return text if len(text) <= EXCERPT_WIDTH else text[: EXCERPT_WIDTH - 1] + "…"


def _require_columns(frame: pd.DataFrame, contract: EncounterContract) -> None:
    missing = [c for c in contract.required_columns if c not in frame.columns]
    if missing:
        # The names found are not quoted: in a file without a header row they are the
        # first record, a patient's ids and data. Only names close to a contract name
        # are, as a likely misspelling.
        by_folded = {str(c).strip().lower(): str(c) for c in frame.columns[:200]}
        candidates = [c for c in by_folded if len(c) <= 64]
        close = {
            name: by_folded[match[0]]
            for name in missing
            if (match := difflib.get_close_matches(name, candidates, n=1, cutoff=0.8))
        }
        guess = "".join(f"; for {n!r} did you mean {excerpt(m, 40)}?" for n, m in close.items())
        found = f"{frame.shape[1]} column(s) found{guess}"
        hint = (
            "rename the columns to the contract's names; if the first line of the file is "
            "data, the file lacks its header row"
        )
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
            f"table ({found}); {hint}"
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
            f"engagekit's check {first['check']!r} on column {excerpt(first['column'], 40)} "
            f"failed to run: {excerpt(first['failure_case'], 200)}"
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
        [_shown(e) for e in as_text(frame["encounter_id"]).reindex(index)]
        if "encounter_id" in frame.columns
        else np.full(len(index), None)
    )
    out = pd.DataFrame(
        {
            "row": index + 1,
            "encounter_id": encounter,
            "column": columns,
            "value": [_shown(v) for v in values],
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
        A required column is missing, or a column name repeats, so the table cannot be
        checked at all. The message names the missing columns and how many were found,
        never the names found (without a header row they are a patient's record).

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
    repeated = frame.columns[frame.columns.duplicated()]
    if len(repeated):
        # a SQL query may select a column twice; no rule can say which one counts
        raise DataReadError(
            f"column {excerpt(repeated[0], 40)} appears more than once in the table; "
            "rename or remove the repeated column (in a --query, with AS)"
        )
    half = {c: "float32" for c, dtype in frame.dtypes.items() if dtype == np.float16}
    if half:
        # a Parquet half-float column holds the same values as float32; pandas cannot
        # print float16 without overflow warnings, which pandera does on a failure
        frame = frame.astype(half)
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
