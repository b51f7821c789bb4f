"""The monitoring part of the analyst's service page: the latest result ``engagekit
monitor`` recorded for the model shown, as tables, sentences and inline SVG charts.

:func:`monitoring_panel` turns a :class:`~engagekit.io._monitor_store.RecordedMonitorResult`
into a :class:`MonitoringPanel`: the words and tables of
:func:`engagekit.monitoring.monitor_view` (the report's monitoring section says the same),
and for each group of encounters (not acted on, all patients) a :class:`ControlChartSvg`,
the coordinates of its observed-minus-expected control chart. The template
``service.html.j2`` draws the chart from them as inline SVG: no script and no
matplotlib in a request. Nothing rests on colour alone: the limits are dashed lines, a
point outside them is a larger square ringed and labelled "alert", and the table beside
the chart holds the same numbers.

Examples
--------
>>> from engagekit.monitoring._view import ChartPoint
>>> chart = control_chart_svg(
...     [ChartPoint("2025-01", 0.01, -0.05, 0.05), ChartPoint("2025-02", -0.2, -0.06, 0.06)],
...     chart_id="chart", title="Observed minus expected")
>>> [(p.window, p.outside) for p in chart.points]
[('2025-01', False), ('2025-02', True)]
>>> chart.top, [label for _, label in chart.y_ticks]
(0.25, ['+0.250', '+0.125', '0', '−0.125', '−0.250'])
>>> control_chart_svg([], chart_id="chart", title="Nothing")
Traceback (most recent call last):
...
ValueError: a control chart needs at least one point; got none
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from ..io._monitor_store import RecordedMonitorResult
from ..monitoring._view import ChartPoint, MonitorView, monitor_view, signed

__all__ = [
    "ControlChartSvg",
    "MonitoringPanel",
    "SvgPoint",
    "control_chart_svg",
    "monitoring_panel",
]

#: The chart's size in SVG units, and its margins (left for the axis labels, bottom for
#: the windows' names).
WIDTH, HEIGHT = 640, 240
LEFT, RIGHT, TOP, BOTTOM = 64, 16, 16, 56
#: The nice steps the top of the axis is rounded up to (times a power of 10).
_STEPS = (1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0)
#: The most windows named along the axis; with more, every k-th is named.
MAX_X_LABELS = 16


@dataclass(frozen=True)
class SvgPoint:
    """A window's point, placed: its centre, what its tooltip says, whether it is outside
    its limits, and where its "alert" label goes (away from the zero line)."""

    x: float
    y: float
    window: str
    text: str
    outside: bool
    label_y: float


@dataclass(frozen=True)
class ControlChartSvg:
    """One control chart's geometry, in SVG units (``viewBox="0 0 width height"``).

    Attributes
    ----------
    chart_id : str
        Unique on the page: the prefix of the ids of its title and description.
    title, description : str
        The chart's accessible name, and what it shows in numbers (the windows outside
        their limits).
    width, height : int
    left, right, top_y, bottom_y : float
        The plot area.
    top : float
        The axis runs from ``-top`` to ``top``.
    zero_y : float
    line, upper, lower : str
        The ``points`` of the polylines: the observed-minus-expected rate, and the upper
        and lower limits as steps (each window's limits span its slot).
    points : tuple of SvgPoint
    y_ticks, x_labels : tuple of (float, str)
        The axis labels and where they go.
    """

    chart_id: str
    title: str
    description: str
    width: int
    height: int
    left: float
    right: float
    top_y: float
    bottom_y: float
    top: float
    zero_y: float
    line: str
    upper: str
    lower: str
    points: tuple[SvgPoint, ...]
    y_ticks: tuple[tuple[float, str], ...]
    x_labels: tuple[tuple[float, str], ...]


def _axis_top(values: Sequence[float]) -> float:
    """The smallest nice number 5% or more above every ``|value|`` (at least 0.001): no
    point sits on the edge of the chart."""
    highest = max((abs(v) for v in values if math.isfinite(v)), default=0.0)
    wanted = max(highest * 1.05, 1e-3)
    scale = 10 ** math.floor(math.log10(wanted))
    return next(step * scale for step in _STEPS if step * scale >= wanted * (1 - 1e-12))


def _label_y(y: float, above: bool, top_y: float, bottom_y: float) -> float:
    """Where a point's "alert" label goes: away from the zero line, unless that leaves
    the plot area."""
    over, under = y - 14, y + 22
    if above and over < top_y + 10:
        above = False
    elif not above and under > bottom_y:
        above = True
    return round(over if above else under, 1)


def _tick(value: float) -> str:
    return "0" if value == 0 else signed(value)


def control_chart_svg(
    points: Sequence[ChartPoint], *, chart_id: str, title: str
) -> ControlChartSvg:
    """The geometry of the control chart of ``points`` (see :class:`ControlChartSvg`).

    Raises
    ------
    ValueError
        No point to draw.
    """
    if not points:
        raise ValueError("a control chart needs at least one point; got none")
    top = _axis_top([v for p in points for v in (p.value, p.lower_limit, p.upper_limit)])
    left, right, top_y, bottom_y = LEFT, WIDTH - RIGHT, TOP, HEIGHT - BOTTOM
    slot = (right - left) / len(points)

    def y_of(value: float) -> float:
        return top_y + (top - value) / (2 * top) * (bottom_y - top_y)

    def x_of(index: int) -> float:
        return left + slot * (index + 0.5)

    placed = tuple(
        SvgPoint(
            x=round(x_of(i), 1),
            y=round(y_of(p.value), 1),
            window=p.window,
            text=f"{p.window}: {signed(p.value)}, limits {signed(p.lower_limit)} to "
            f"{signed(p.upper_limit)}" + (", alert" if p.outside else ""),
            outside=p.outside,
            label_y=_label_y(y_of(p.value), p.value >= 0, top_y, bottom_y),
        )
        for i, p in enumerate(points)
    )

    def steps(limit: str) -> str:
        corners = []
        for i, p in enumerate(points):
            y = y_of(getattr(p, limit))
            corners += [f"{left + slot * i:.1f},{y:.1f}", f"{left + slot * (i + 1):.1f},{y:.1f}"]
        return " ".join(corners)

    every = math.ceil(len(points) / MAX_X_LABELS)
    outside = [p.window for p in points if p.outside]
    return ControlChartSvg(
        chart_id=chart_id,
        title=title,
        description=(
            f"{len(points)} windows, from {points[0].window} to {points[-1].window}; "
            + (
                f"outside the limits: {', '.join(outside)}."
                if outside
                else "every window within its limits."
            )
            + " The table above gives every number."
        ),
        width=WIDTH,
        height=HEIGHT,
        left=left,
        right=right,
        top_y=top_y,
        bottom_y=bottom_y,
        top=top,
        zero_y=round(y_of(0.0), 1),
        line=" ".join(f"{p.x:.1f},{p.y:.1f}" for p in placed),
        upper=steps("upper_limit"),
        lower=steps("lower_limit"),
        points=placed,
        y_ticks=tuple(
            (round(y_of(value), 1), _tick(value)) for value in (top, top / 2, 0.0, -top / 2, -top)
        ),
        x_labels=tuple(
            (round(x_of(i), 1), p.window) for i, p in enumerate(points) if i % every == 0
        ),
    )


@dataclass(frozen=True)
class MonitoringPanel:
    """What the service page shows of a recorded monitoring result.

    Attributes
    ----------
    monitor_id : int
    recorded_at : str
        When it was recorded ("2026-12-04 09:30 UTC").
    view : MonitorView
        The tables and sentences.
    charts : tuple of ControlChartSvg
        Not acted on, then all patients; a group without a point has none.
    """

    monitor_id: int
    recorded_at: str
    view: MonitorView
    charts: tuple[ControlChartSvg, ...]


def monitoring_panel(recorded: RecordedMonitorResult) -> MonitoringPanel:
    """The service page's view of ``recorded``."""
    view = monitor_view(recorded.result)
    charts = tuple(
        control_chart_svg(
            series.points,
            chart_id=f"control-{series.group.value.replace('_', '-')}",
            title=(
                f"Control chart: observed minus expected {view.target} rate by {view.window}, "
                f"{series.label}, with its ±{view.sigma_limits:g}-sigma limits"
            ),
        )
        for series in view.charts
        if series.points
    )
    return MonitoringPanel(
        monitor_id=recorded.monitor_id,
        recorded_at=recorded.created_at[:16].replace("T", " ") + " UTC",
        view=view,
        charts=charts,
    )
