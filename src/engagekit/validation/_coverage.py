"""What a valid table can feed: the optional columns a config needs, and what follows
when they are absent.

The contract makes ratings, outcomes, covariates and dates optional, so a table without
them is valid. Every command then answers absence the same way:

- an absent **covariate** (``Config.covariates``) is left out of the model and the
  analysis, with a note; an absent **subgroup** column gets no subgroup metrics;
- an absent **rating** column stops what needs every rating (training, the
  cross-treatment analysis, scoring with a model of that config);
- an absent **outcome** column stops training, evaluating and analysing that outcome;
- an absent ``encounter_date`` stops a temporal split, and an absent
  ``practitioner_id`` stops per-practitioner flags, practitioner clusters and
  practitioner forecasts.

:func:`table_coverage` says all of it once, for ``validate``'s summary and for every
command that reads data.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from .._excerpt import excerpt
from ..config import Config

__all__ = ["TableCoverage", "table_coverage", "without_absent_covariates"]


def _quoted(names: Iterable[str]) -> str:
    # config names are free text: a note quotes each briefly
    return ", ".join(excerpt(n, 40) for n in names)


@dataclass(frozen=True)
class TableCoverage:
    """The configured optional columns a table lacks.

    Attributes
    ----------
    absent_ratings, absent_outcomes, absent_covariates, absent_subgroups : tuple of str
        Configured columns of each kind that the table does not have.
    has_dates, has_practitioners : bool
        Whether ``encounter_date`` and ``practitioner_id`` are columns of the table.
    """

    absent_ratings: tuple[str, ...] = ()
    absent_outcomes: tuple[str, ...] = ()
    absent_covariates: tuple[str, ...] = ()
    absent_subgroups: tuple[str, ...] = ()
    has_dates: bool = True
    has_practitioners: bool = True

    def blocked(self) -> list[str]:
        """One clause per analysis the table cannot feed, with the column it lacks.

        Examples
        --------
        >>> TableCoverage(absent_ratings=("empathy",)).blocked()  # doctest: +ELLIPSIS
        ["training, the cross-treatment analysis and scoring cannot run (rating column(s) ...
        """
        clauses = []
        if self.absent_ratings:
            clauses.append(
                "training, the cross-treatment analysis and scoring cannot run (rating "
                f"column(s) {_quoted(self.absent_ratings)} absent; they need every "
                "configured rating)"
            )
        for outcome in self.absent_outcomes:
            clauses.append(f"no model or analysis of {outcome!r} (the column is absent)")
        if not self.has_dates:
            clauses.append("no temporal split (no 'encounter_date' column)")
        if not self.has_practitioners:
            clauses.append(
                "no per-practitioner flags, practitioner clusters or forecasts (no "
                "'practitioner_id' column)"
            )
        return clauses

    def notes(self) -> list[str]:
        """What is left out rather than refused: covariates and subgroup columns."""
        notes = []
        if self.absent_covariates:
            notes.append(
                f"covariate(s) {_quoted(self.absent_covariates)} absent from the table: "
                "left out of models and the cross-treatment analysis"
            )
        subgroups = [s for s in self.absent_subgroups if s not in self.absent_covariates]
        if subgroups:
            notes.append(
                f"subgroup column(s) {_quoted(subgroups)} absent from the table: no metrics by them"
            )
        return notes


def table_coverage(columns: Iterable[str], config: Config) -> TableCoverage:
    """Which configured optional columns ``columns`` lacks.

    Parameters
    ----------
    columns : iterable of str
        The table's column names.
    config : Config

    Returns
    -------
    TableCoverage

    Examples
    --------
    >>> from engagekit import load_config
    >>> coverage = table_coverage(["patient_id", "treatment", "empathy"], load_config())
    >>> coverage.absent_covariates, coverage.has_dates
    (('age_band',), False)
    """
    present = set(columns)

    def absent(names: Iterable[str]) -> tuple[str, ...]:
        return tuple(n for n in names if n not in present)

    return TableCoverage(
        absent_ratings=absent(config.attribute_names),
        absent_outcomes=absent(config.outcome_names),
        absent_covariates=absent(config.covariates),
        absent_subgroups=absent(config.subgroups),
        has_dates="encounter_date" in present,
        has_practitioners="practitioner_id" in present,
    )


def without_absent_covariates(
    config: Config, columns: Iterable[str]
) -> tuple[Config, tuple[str, ...]]:
    """``config`` without the covariates and subgroups the table lacks.

    Returns
    -------
    (Config, tuple of str)
        The config to use, and the covariates left out (empty when none was: the same
        config object is returned then).

    Examples
    --------
    >>> from engagekit import load_config
    >>> config, left_out = without_absent_covariates(load_config(), ["patient_id"])
    >>> config.covariates, left_out
    ([], ('age_band',))
    """
    coverage = table_coverage(columns, config)
    if not coverage.absent_covariates and not coverage.absent_subgroups:
        return config, ()
    kept = config.model_copy(
        update={
            "covariates": [c for c in config.covariates if c not in coverage.absent_covariates],
            "subgroups": [s for s in config.subgroups if s not in coverage.absent_subgroups],
        }
    )
    return kept, coverage.absent_covariates
