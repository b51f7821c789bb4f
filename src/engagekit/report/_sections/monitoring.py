"""The monitoring section, when the report is given a result of ``engagekit monitor``:
the per-window performance table, the alerts, the drift of the ratings, the subgroups
whose calibration is off, and the control charts as a figure.

The texts and tables are :func:`engagekit.monitoring.monitor_view`'s, the ones the
analyst's service page shows; the figure is :func:`engagekit.monitoring.control_chart`,
drawn when the page is rendered.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ...monitoring._view import MonitorView, monitor_view
from ._common import Plot

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from ...monitoring import MonitorResult

__all__ = ["MonitoringView", "build"]


@dataclass(frozen=True)
class MonitoringView:
    """What the monitoring section says.

    Attributes
    ----------
    view : MonitorView
        The tables and sentences.
    chart : Plot
        The control charts (observed minus expected, not acted on and all patients, and
        the PSI of each rating).
    alt : str
        The chart's text alternative.
    """

    view: MonitorView
    chart: Plot
    alt: str


def build(result: MonitorResult) -> MonitoringView:
    """The monitoring section of ``result``."""
    view = monitor_view(result)

    def draw() -> Figure:
        from ...monitoring._plot import control_chart

        return control_chart(result)

    outside = [
        f"{series.label}: {', '.join(series.alerts)}" for series in view.charts if series.alerts
    ]
    alt = (
        f"Control charts of the {view.target} model by {view.window}, {len(result.windows)} "
        f"windows: the observed-minus-expected rate of the encounters not acted on and of "
        f"all patients, each with its {view.sigma_limits:g}-sigma limits, and the PSI of each "
        "rating with its warn and alert thresholds. "
        + (
            f"Windows outside their limits, {'; '.join(outside)}. "
            if outside
            else "Every window is within its limits. "
        )
        + "The tables give every number."
    )
    return MonitoringView(view=view, chart=Plot("control charts", draw), alt=alt)
