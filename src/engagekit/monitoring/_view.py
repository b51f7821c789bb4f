"""A monitoring result as people read it: the per-window table, the drift table, the
alerts and the miscalibrated subgroups in words, and the control chart's points.

The HTML report's monitoring section and the analyst's service page both show a
:class:`~._result.MonitorResult`; :func:`monitor_view` makes the texts and numbers once,
so that the two say the same thing in the same words. Nothing is drawn here: the report
draws the control chart with matplotlib (:func:`~._plot.control_chart`), the service
page as inline SVG from :attr:`MonitorView.charts`.

Examples
--------
>>> from engagekit import simulate_encounters
>>> from engagekit.monitoring import monitor
>>> encounters = simulate_encounters(200, seed=3).encounters
>>> scores = encounters.assign(p_adherent=0.6, rating_empathy=encounters["empathy"])
>>> view = monitor_view(monitor(scores, encounters, target="adherent", window="quarter",
...                             n_boot=0))
>>> view.performance_columns[:3], view.performance_rows[0][0]
(('Window', 'Encounters', 'Acted on'), '2025Q1')
>>> view.drift_columns, view.drift_rows[0]
(('Window', 'empathy'), ('2025Q1', 'reference'))
>>> signed(-0.0421), signed(0.5), signed(None)
('−0.042', '+0.500', '–')
"""

from __future__ import annotations

from dataclasses import dataclass

from .._format import DASH, count, estimate, is_number
from ._psi import psi_level
from ._result import MonitorResult, PatientGroup, WindowPerformance

__all__ = [
    "ChartPoint",
    "ControlSeries",
    "MonitorView",
    "monitor_view",
    "rating_label",
    "signed",
]

#: The groups charted, in the order the pages show them.
CHARTED = (PatientGroup.NOT_ACTED_ON, PatientGroup.ALL)


def signed(value: float | None, digits: int = 3) -> str:
    """A difference with its sign (a true minus sign, which screen readers read), or the
    dash."""
    if not is_number(value):
        return DASH
    return f"{value:+.{digits}f}".replace("-", "−")


@dataclass(frozen=True)
class ChartPoint:
    """A window's point on the observed-minus-expected chart, with its control limits."""

    window: str
    value: float
    lower_limit: float
    upper_limit: float

    @property
    def outside(self) -> bool:
        """True if the point lies outside its limits (an alert)."""
        return not self.lower_limit <= self.value <= self.upper_limit


@dataclass(frozen=True)
class ControlSeries:
    """The observed-minus-expected chart of one group of encounters.

    Attributes
    ----------
    group : PatientGroup
    label : str
        The group in words ("not acted on").
    points : tuple of ChartPoint
        One per window with encounters of an outcome known in that group, in time order.
    """

    group: PatientGroup
    label: str
    points: tuple[ChartPoint, ...]

    @property
    def alerts(self) -> tuple[str, ...]:
        """The windows whose point is outside its limits."""
        return tuple(p.window for p in self.points if p.outside)


@dataclass(frozen=True)
class MonitorView:
    """What a page shows of a monitoring result, already in words.

    Attributes
    ----------
    target, window : str
        The outcome and the window (``month``).
    title : str
        "Monitoring of the attended_next model, by month".
    method : str
        How the figures were made, in a sentence or two.
    performance_caption : str
    performance_columns : tuple of str
    performance_rows : tuple of tuple of str
        Per window: its name, encounters, encounters acted on, then on the encounters
        not acted on the AUROC, calibration intercept and slope with their intervals,
        the calibration intercept of all patients beside, and the observed-minus-expected
        rate with its control limits of each group (", alert" when outside them).
    drift_caption : str
    drift_columns : tuple of str
        "Window" and each rating's name.
    drift_rows : tuple of tuple of str
        Per window: its name and each rating's PSI with its level ("0.312 (alert)").
    alerts : tuple of str
        Every alert in words, each naming its window.
    miscalibrated : tuple of str
        Each subgroup whose calibration over the period is off, in a sentence.
    chance : str or None
        How many of the intervals checked would be off by chance alone.
    charts : tuple of ControlSeries
        The observed-minus-expected charts: not acted on, then all patients.
    sigma_limits : float
        The control limits' width, in standard deviations.
    """

    target: str
    window: str
    title: str
    method: str
    performance_caption: str
    performance_columns: tuple[str, ...]
    performance_rows: tuple[tuple[str, ...], ...]
    drift_caption: str
    drift_columns: tuple[str, ...]
    drift_rows: tuple[tuple[str, ...], ...]
    alerts: tuple[str, ...]
    miscalibrated: tuple[str, ...]
    chance: str | None
    charts: tuple[ControlSeries, ...]
    sigma_limits: float


def _control(point: WindowPerformance) -> str:
    if point.observed_minus_expected is None or point.upper_limit is None:
        return DASH
    assert point.lower_limit is not None
    shown = f"{signed(point.observed_minus_expected)} (±{point.upper_limit:.3f})"
    inside = point.lower_limit <= point.observed_minus_expected <= point.upper_limit
    return shown if inside else f"{shown}, alert"


def _psi(value: float | None, reference: bool) -> str:
    if value is None:
        return "reference" if reference else DASH
    return f"{value:.3f} ({psi_level(value)})"


def _series(result: MonitorResult, group: PatientGroup) -> ControlSeries:
    points = []
    for w in result.windows:
        p = w.performance(group)
        if p.observed_minus_expected is None or p.lower_limit is None or p.upper_limit is None:
            continue
        points.append(ChartPoint(w.window, p.observed_minus_expected, p.lower_limit, p.upper_limit))
    return ControlSeries(group, group.label, tuple(points))


def rating_label(column: str) -> str:
    """A ``rating_<quality>`` column's quality in words ("active listening")."""
    return column.removeprefix("rating_").replace("_", " ")


def monitor_view(result: MonitorResult) -> MonitorView:
    """The texts and numbers of ``result`` (see :class:`MonitorView`)."""
    sigma = f"{result.sigma_limits:g}-sigma"
    level = f"{result.ci_level:.0%}"
    performance_columns = (
        "Window",
        "Encounters",
        "Acted on",
        "AUROC, not acted on",
        "Calibration intercept, not acted on",
        "Calibration slope, not acted on",
        "Calibration intercept, all patients",
        f"Observed − expected, not acted on (±{sigma} limit)",
        f"Observed − expected, all patients (±{sigma} limit)",
    )
    performance_rows = tuple(
        (
            w.window,
            count(w.n_encounters),
            count(w.n_acted_on),
            estimate(w.not_acted_on.auroc, 2),
            estimate(w.not_acted_on.calibration_intercept, 2),
            estimate(w.not_acted_on.calibration_slope, 2),
            estimate(w.all_patients.calibration_intercept, 2),
            _control(w.not_acted_on),
            _control(w.all_patients),
        )
        for w in result.windows
    )
    ratings = sorted({name for w in result.windows for name in w.psi})
    reference_window = result.psi_reference.removeprefix("window ")
    drift_rows = tuple(
        (w.window, *(_psi(w.psi.get(name), w.window == reference_window) for name in ratings))
        for w in result.windows
    )
    intervals = (
        f"{level} patient-bootstrap intervals ({result.n_boot} replicates) in brackets"
        if result.n_boot
        else "no bootstrap, so no intervals"
    )
    return MonitorView(
        target=result.target,
        window=result.window.value,
        title=f"Monitoring of the {result.target} model, by {result.window.value}",
        method=(
            f"Each encounter is judged on its earliest score, the one the service acted on. "
            f"AUROC and calibration are measured on the encounters whose flags were not "
            f"acted on (a contact may change the outcome it predicts), with the calibration "
            f"intercept of all patients beside: a gap between the two is the contacts' "
            f"effect. The observed-minus-expected {result.target} rate of each window is "
            f"charted with {sigma} control limits from the window's size; each rating's "
            f"population stability index (PSI) is measured against {result.psi_reference} "
            f"(warn at {result.psi_warn:g}, alert at {result.psi_alert:g})."
        ),
        performance_caption=(
            f"Performance of the {result.target} model by {result.window.value} "
            f"({intervals}; a calibration intercept above 0: more {result.target} than "
            "predicted)"
        ),
        performance_columns=performance_columns,
        performance_rows=performance_rows,
        drift_caption=(
            f"Drift: PSI of each rating against {result.psi_reference}, with its level "
            f"(warn at {result.psi_warn:g}, alert at {result.psi_alert:g})"
        ),
        drift_columns=("Window", *(rating_label(name) for name in ratings)),
        drift_rows=drift_rows if ratings else (),
        alerts=tuple(alert.message for alert in result.alerts),
        miscalibrated=tuple(group.sentence for group in result.miscalibrated),
        chance=result.chance_sentence,
        charts=tuple(_series(result, group) for group in CHARTED),
        sigma_limits=result.sigma_limits,
    )
