"""Section 6, the forecast: per model, the expected number of patients with the bad
outcome at their next session, per treatment and in all, with an interval."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..._format import count, interval, number, percent
from ..._labels import outcome_label
from ._common import bad_outcome, treatment_labels

if TYPE_CHECKING:
    import pandas as pd

    from ...config import Config
    from .._compute import ForecastFindings

__all__ = ["ForecastView", "build"]


@dataclass(frozen=True)
class ForecastView:
    """What the forecast section says of one model.

    Attributes
    ----------
    target, label, bad_outcome : str
    by : str
        What the rows are ("treatment").
    level : str
        The intervals' coverage ("90%").
    rows : tuple of tuple of str
        Per group: its label, patients, expected count, interval, method.
    total : tuple of str or None
        The same over all groups, when the report computed the forecast.
    note : str or None
        Why there is nothing to forecast.
    """

    target: str
    label: str
    bad_outcome: str
    by: str
    level: str
    rows: tuple[tuple[str, ...], ...]
    total: tuple[str, ...] | None
    note: str | None


def build(target: str, forecast: ForecastFindings, config: Config) -> ForecastView:
    """The forecast section of the model of ``target``, from its forecast
    (:func:`engagekit.report._compute.forecast`)."""
    labels = treatment_labels(config)
    table, total = forecast.table, forecast.total
    return ForecastView(
        target=target,
        label=outcome_label(config, target),
        bad_outcome=bad_outcome(config, target),
        by=table.index.name or "group",
        level=percent(forecast.level, 0),
        rows=tuple(_row(r, labels) for _, r in table.reset_index().iterrows()),
        total=None if total is None else _row(total.reset_index().iloc[0], labels),
        note=forecast.note,
    )


def _row(row: pd.Series, labels: Mapping[str, str]) -> tuple[str, ...]:
    group = str(row.iloc[0])
    return (
        labels.get(group, group),
        count(row["n_encounters"]),
        number(row["expected"], 1),
        interval(row["interval_low"], row["interval_high"], fmt=count),
        row["method"],
    )
