"""Build a pandera schema from the encounter contract.

Every rule of the contract becomes one named pandera check, so that a lazy validation
returns every broken rule of every row in one failure-case table. Checks work on the raw
cells (text from CSV, native types from Parquet or SQL): a value that cannot be parsed is
reported once, as a type problem, and range or list rules look only at parsed values.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from ._contract import ContractField, EncounterContract
from ._pandera import pa
from ._parse import as_date, as_number, as_text, full_match, not_plain

__all__ = ["ContractSchema", "build_schema"]


@dataclass(frozen=True)
class ContractSchema:
    """A pandera schema plus what each of its checks means to a user.

    pandera names a failed check by its ``name``; ``messages`` maps (column, check
    name) to the rule in words, and table-level checks are filed under the column their
    problems are reported in (``table_checks``: check name -> column).
    """

    schema: pa.DataFrameSchema
    messages: dict[tuple[str, str], str]
    table_checks: dict[str, str]


@dataclass(frozen=True)
class _Rule:
    """A pandera check, its name and the rule it checks in words (for the message table)."""

    check: pa.Check
    name: str
    text: str


def _check(fn, name: str, error: str) -> _Rule:
    return _Rule(pa.Check(fn, name=name), name, error)


def _fmt(x: float) -> str:
    # a whole bound in full ("2147483647", not "2.14748e+09"), others as short as exact
    return str(int(x)) if float(x).is_integer() and abs(x) < 2**53 else f"{x:g}"


def _rule_type(f: ContractField) -> _Rule | None:
    if f.type == "integer" and f.enum is not None:
        allowed = {float(v) for v in f.enum}
        text = ", ".join(str(v) for v in f.enum)
        return _check(
            lambda s: as_number(s).isin(allowed) | s.isna(),
            name="allowed_values",
            error=f"must be one of {text} (or empty)",
        )
    if f.type == "integer":
        return _check(
            lambda s: ((as_number(s) % 1) == 0) | s.isna(),
            name="whole_number",
            error="must be a whole number",
        )
    if f.type == "number":
        return _check(
            lambda s: as_number(s).notna() | s.isna(),
            name="number",
            error="must be a number",
        )
    if f.type == "date":
        return _check(
            lambda s: as_date(s).notna() | s.isna(),
            name="iso_date",
            error="must be an ISO date (YYYY-MM-DD)",
        )
    # a Parquet or SQL column may hold booleans, lists or bytes, which would pass for
    # text once printed ("True", "[1, 2]", "P001" from b"P001")
    return _check(
        lambda s: ~not_plain(s),
        name="text",
        error="must be text or a number, not true/false, a list, a mapping or bytes",
    )


def _rule_range(f: ContractField) -> _Rule | None:
    lo, hi = f.minimum, f.maximum
    if lo is not None and hi is not None:
        error = f"must be between {_fmt(lo)} and {_fmt(hi)}"
    elif lo is not None:
        error = f"must be at least {_fmt(lo)}"
    elif hi is not None:
        error = f"must be at most {_fmt(hi)}"
    else:
        return None
    low = float("-inf") if lo is None else float(lo)
    high = float("inf") if hi is None else float(hi)

    def _within_bounds(s: pd.Series) -> pd.Series:
        x = as_number(s)
        # unparseable values are the type rule's problem, not this one's
        return x.between(low, high) | x.isna()

    return _check(_within_bounds, name="bounds", error=error)


def _rule_enum_text(f: ContractField) -> _Rule | None:
    if f.enum is None or f.type != "string":
        return None
    allowed = [str(v) for v in f.enum]
    what = "treatments" if f.role == "treatment" else "values"

    def _allowed(s: pd.Series) -> pd.Series:
        text = as_text(s)
        # a cell that is not text at all is the type rule's problem, not this one's
        return (text.isin(allowed) | text.isna()).astype(bool)

    return _check(
        _allowed,
        name="allowed_values",
        error=f"must be one of the configured {what}: {', '.join(allowed)}",
    )


def _rule_pattern(f: ContractField) -> _Rule | None:
    if f.pattern is None:
        return None
    pattern = f.pattern
    blank = f.pattern == r".*\S.*"
    error = "must not be blank" if blank else f"must match {f.pattern}"
    return _check(
        lambda s: full_match(s, pattern),
        name="not_blank" if blank else "pattern",
        error=error,
    )


def _rule_unique(f: ContractField) -> _Rule | None:
    if not f.unique:
        return None

    def _unique(s: pd.Series) -> pd.Series:
        text = as_text(s)
        return ~(text.duplicated(keep=False) & text.notna())

    return _check(
        _unique,
        name="unique_over_table",
        error="must be unique over the whole table",
    )


def _parser(f: ContractField):
    return {"integer": as_number, "number": as_number, "date": as_date}.get(f.type, as_text)


def _unique_key_check(contract: EncounterContract, key: tuple[str, ...]) -> _Rule:
    name = "unique_within_" + "_".join(key[:-1])
    parsers = [_parser(contract[c]) for c in key]

    def _unique_together(df: pd.DataFrame) -> pd.Series:
        parts = [parse(df[c]) for parse, c in zip(parsers, key, strict=True)]
        keyed = pd.concat(parts, axis=1, keys=list(key))
        complete = keyed.notna().all(axis=1)
        dup = keyed.duplicated(keep=False) & complete
        return ~dup

    owner = key[:-1][0] if len(key) > 1 else key[0]
    return _check(
        _unique_together,
        name=name,
        error=f"must be unique within a {owner.removesuffix('_id')}",
    )


def _non_decreasing_check(
    contract: EncounterContract, f: ContractField, within: str, by: str
) -> _Rule:
    name = f"non_decreasing_{f.name}"

    def _non_decreasing(df: pd.DataFrame) -> pd.Series:
        dates = as_date(df[f.name])
        order = _parser(contract[by])(df[by])
        group = as_text(df[within])
        usable = dates.notna() & order.notna() & group.notna()
        ok = pd.Series(True, index=df.index)
        if not usable.any():
            return ok
        sub = pd.DataFrame({"g": group[usable], "o": order[usable], "d": dates[usable]})
        sub = sub.sort_values(["g", "o"], kind="stable")
        # compare each session with the latest date of the patient's earlier sessions
        running_max = sub.groupby("g", sort=False)["d"].cummax()
        earlier_max = running_max.groupby(sub["g"], sort=False).shift(1)
        bad = (sub["d"] < earlier_max).fillna(False)
        ok.loc[bad[bad].index] = False
        return ok

    return _check(
        _non_decreasing,
        name=name,
        error=(
            f"must not be earlier than the {f.name} of the same "
            f"{within.removesuffix('_id')}'s earlier {by.removesuffix('_number')}s"
        ),
    )


def build_schema(contract: EncounterContract, columns: list[str]) -> ContractSchema:
    """A pandera schema checking the contract's rules on the columns present.

    Parameters
    ----------
    contract : EncounterContract
    columns : list of str
        Columns of the table to validate. Optional contract columns that are absent
        are not checked; extra columns are passed through.
    """
    present = set(columns)
    schema_columns: dict[str, pa.Column] = {}
    rules: dict[str, list[_Rule]] = {}
    for f in contract.fields:
        if f.name not in present:
            continue
        found = [
            _rule_type(f),
            _rule_range(f),
            _rule_enum_text(f),
            _rule_pattern(f),
            _rule_unique(f),
        ]
        rules[f.name] = [r for r in found if r is not None]
        schema_columns[f.name] = pa.Column(
            None,
            checks=[r.check for r in rules[f.name]],
            nullable=not f.required,
            required=f.required,
            coerce=False,
        )
    messages: dict[tuple[str, str], str] = {}
    for name in schema_columns:
        messages[(name, "not_nullable")] = "required value is missing"
        for rule in rules[name]:
            messages[(name, rule.name)] = rule.text
    table: list[_Rule] = []
    table_columns: dict[str, str] = {}
    for key in contract.unique_keys:
        if set(key) <= present:
            table.append(_unique_key_check(contract, key))
            table_columns[table[-1].name] = key[-1]
    for f in contract.fields:
        within, by = f.non_decreasing_within, f.non_decreasing_by
        if within and by is not None and {f.name, within, by} <= present:
            table.append(_non_decreasing_check(contract, f, within, by))
            table_columns[table[-1].name] = f.name
    for rule in table:
        messages[(table_columns[rule.name], rule.name)] = rule.text
    schema = pa.DataFrameSchema(
        schema_columns, checks=[r.check for r in table], strict=False, ordered=False
    )
    return ContractSchema(schema=schema, messages=messages, table_checks=table_columns)
