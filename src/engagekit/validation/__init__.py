"""Validation: does an encounter table meet the data contract?

The contract (``data_schema/encounters.schema.json``, made concrete by the config) is
checked in full with pandera's lazy validation, so every problem of every row is reported
at once, with its data row number, encounter, column, value and the rule it breaks.
Nothing is dropped silently: :func:`split_by_validity` returns the good and the offending
rows, which together are the whole input.
"""

from ._contract import ContractField, EncounterContract, encounter_contract
from ._coverage import TableCoverage, table_coverage, without_absent_covariates
from ._report import PROBLEM_COLUMNS, ValidationReport
from ._validate import (
    check_encounters,
    coerce_encounters,
    split_by_validity,
    validate_encounters,
)

__all__ = [
    "PROBLEM_COLUMNS",
    "ContractField",
    "EncounterContract",
    "TableCoverage",
    "ValidationReport",
    "check_encounters",
    "coerce_encounters",
    "encounter_contract",
    "split_by_validity",
    "table_coverage",
    "validate_encounters",
    "without_absent_covariates",
]
