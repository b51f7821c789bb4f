"""Section 1, the data: patients, sessions and outcomes per treatment, missing ratings."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import pandas as pd

from ..._fingerprint import data_fingerprint
from ..._format import count, number, percent
from ..._labels import attribute_label, outcome_label
from ._common import bad_outcome, treatment_labels

if TYPE_CHECKING:
    from ...config import Config
    from ...summary import EncounterSummary

__all__ = ["DataRow", "DataView", "build"]


@dataclass(frozen=True)
class DataRow:
    """A row of the table by treatment; ``total`` for the row of all treatments."""

    cells: tuple[str, ...]
    total: bool = False


@dataclass(frozen=True)
class DataView:
    """What the data section says.

    Attributes
    ----------
    n_patients, n_encounters : str
    period : tuple of str or None
        First and last encounter dates (ISO), when the table has dates.
    source : str or None
        Where the data came from.
    sha256 : str
        The table's fingerprint.
    columns : tuple of str
        The columns of the table by treatment.
    by_treatment : tuple of DataRow
    not_attended_header, adherent_header : str
        The outcome columns in the config's words, which the note explains.
    missing : tuple of tuple of str
        Per attribute: its label, the encounters with its rating empty, their share.
    """

    n_patients: str
    n_encounters: str
    period: tuple[str, str] | None
    source: str | None
    sha256: str
    columns: tuple[str, ...]
    by_treatment: tuple[DataRow, ...]
    not_attended_header: str
    adherent_header: str
    missing: tuple[tuple[str, str, str], ...]


def build(
    encounters: pd.DataFrame,
    summary: EncounterSummary,
    config: Config,
    data_source: str | None = None,
) -> DataView:
    """The data section of ``encounters``, from their summary.

    Parameters
    ----------
    encounters : pandas.DataFrame
        Typed encounters: their dates and fingerprint.
    summary : EncounterSummary
        :func:`~engagekit.summary.summarize_encounters` of ``encounters``.
    config : Config
        The words for treatments, outcomes and attributes.
    data_source : str, optional

    Returns
    -------
    DataView
    """
    labels = treatment_labels(config)
    outcomes = [o for o in config.outcome_names if f"{o}_empty" in summary.by_treatment.columns]
    rows = tuple(
        DataRow(
            total=r["treatment"] == "all",
            cells=(
                labels.get(r["treatment"], r["treatment"]),
                count(r["patients"]),
                count(r["encounters"]),
                number(r["sessions_mean"], 1),
                number(r["sessions_median"], 1),
                count(r["sessions_max"]),
                percent(r.get("not_attended_next")),
                percent(r.get("dropped_out")),
                percent(r.get("adherent")),
                *(count(r[f"{o}_empty"]) for o in outcomes),
            ),
        )
        for r in summary.by_treatment.to_dict(orient="records")
    )
    missing = tuple(
        (attribute_label(config, a), count(n), percent(share))
        for a, n, share in summary.missing_ratings[
            ["attribute", "missing", "share_missing"]
        ].itertuples(index=False)
    )
    # the outcome columns in the config's words: "did not attend the next session"
    not_attended = bad_outcome(config, "attended_next")
    adherent = outcome_label(config, "adherent")
    columns = (
        "treatment",
        "patients",
        "encounters",
        "sessions per patient: mean",
        "median",
        "max",
        f"{not_attended} (encounters)",
        "dropped out (patients)",
        f"{adherent} (encounters)",
        *(f"{outcome_label(config, o)}: not recorded (encounters)" for o in outcomes),
    )
    return DataView(
        n_patients=count(summary.n_patients),
        n_encounters=count(summary.n_encounters),
        period=_period(encounters),
        source=data_source,
        sha256=data_fingerprint(encounters),
        columns=columns,
        by_treatment=rows,
        not_attended_header=not_attended,
        adherent_header=adherent,
        missing=missing,
    )


def _period(encounters: pd.DataFrame) -> tuple[str, str] | None:
    if "encounter_date" not in encounters.columns or not len(encounters):
        return None
    dates = pd.to_datetime(encounters["encounter_date"], errors="coerce").dropna()
    if not len(dates):
        return None
    return dates.min().date().isoformat(), dates.max().date().isoformat()
