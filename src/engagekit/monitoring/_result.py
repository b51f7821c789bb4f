"""The result of monitoring a score history: per window, the model's performance (on the
patients whose flags were not acted on, and on all), the drift of the ratings, the case
mix, and the alerts.

Examples
--------
>>> from engagekit.evaluation import Estimate
>>> alert = Alert(window="2025-04", figure=MonitorFigure.PSI, subject="rating_empathy",
...               value=0.41, limit=0.25)
>>> alert.message
'2025-04: PSI of rating_empathy 0.41 is at or above the alert threshold 0.25'
>>> MonitorFigure("auroc")
Traceback (most recent call last):
...
ValueError: 'auroc' is not a valid MonitorFigure
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, ClassVar

from pydantic import Field

from .._results import Choice, Record, Result
from ..evaluation import Estimate
from ._windows import MonitorWindow

__all__ = [
    "Alert",
    "MonitorFigure",
    "MonitorResult",
    "PatientGroup",
    "WindowPerformance",
    "WindowResult",
]


class PatientGroup(StrEnum):
    """The encounters a window's performance is measured on."""

    #: every encounter with a known outcome
    ALL = "all"
    #: those whose flags were not acted on (:mod:`engagekit.monitoring._acted_on`)
    NOT_ACTED_ON = "not_acted_on"

    @property
    def label(self) -> str:
        return {"all": "all patients", "not_acted_on": "not acted on"}[self.value]


class MonitorFigure(StrEnum):
    """The figures a monitor raises alerts on."""

    #: the observed-minus-expected rate of the outcome (a p-chart, 3-sigma limits)
    OBSERVED_MINUS_EXPECTED = "observed_minus_expected"
    #: the population stability index of a rating
    PSI = "psi"


class SubgroupCalibration(Record):
    """A subgroup level whose calibration over the whole period monitored, on the
    encounters not acted on, excludes perfect calibration
    (:func:`engagekit.evaluation.miscalibrated_groups`).

    Attributes
    ----------
    column, level : str
    measure : str
        ``calibration_intercept`` or ``calibration_slope``.
    value, ci_low, ci_high : float
    n_encounters, n_patients : int
    sentence : str
        What is off, in words.
    """

    column: str
    level: str
    measure: str
    value: float
    ci_low: float
    ci_high: float
    n_encounters: int
    n_patients: int
    sentence: str


class Alert(Record):
    """A figure of a window outside its limits.

    Attributes
    ----------
    window : str
        The window's name (``2025-04``).
    figure : MonitorFigure
    subject : str
        What the figure is of: a :class:`PatientGroup` value for the observed-minus-expected
        chart, a ``rating_<quality>`` column for the PSI.
    value, limit : float
        The figure and the limit it crossed.
    """

    window: str
    figure: Choice[MonitorFigure]
    subject: str
    value: float
    limit: float

    @property
    def message(self) -> str:
        """The alert in words."""
        if self.figure is MonitorFigure.PSI:
            return (
                f"{self.window}: PSI of {self.subject} {self.value:.2f} is at or above the "
                f"alert threshold {self.limit:.2f}"
            )
        side = "above the upper" if self.value > self.limit else "below the lower"
        return (
            f"{self.window}: observed minus expected rate ({PatientGroup(self.subject).label}) "
            f"{self.value:+.3f} is {side} 3-sigma limit {self.limit:+.3f}"
        )


class WindowPerformance(Record):
    """How the predictions of one window's encounters of one group did.

    Attributes
    ----------
    n_encounters, n_patients : int
        Encounters with a known outcome, and their patients.
    observed, expected : float or None
        The outcome's rate, and the mean predicted probability.
    observed_minus_expected, lower_limit, upper_limit : float or None
        The control chart's point and its 3-sigma limits (:mod:`._spc`).
    auroc, calibration_intercept, calibration_slope : Estimate
        With patient-bootstrap intervals (:func:`engagekit.evaluation.point_metrics`);
        the intercept is calibration-in-the-large (above 0: more outcomes than
        predicted).
    """

    n_encounters: int
    n_patients: int
    observed: float | None
    expected: float | None
    observed_minus_expected: float | None
    lower_limit: float | None
    upper_limit: float | None
    auroc: Estimate
    calibration_intercept: Estimate
    calibration_slope: Estimate


class WindowResult(Record):
    """One window of the history.

    Attributes
    ----------
    window, start, end : str
        Its name and first and last days.
    n_encounters, n_patients : int
        Encounters scored in it (with an outcome or not), and their patients.
    n_acted_on : int
        Encounters whose flags were acted on.
    all_patients, not_acted_on : WindowPerformance
    psi : dict of str to float or None
        Each rating column's PSI against the reference (None in the reference window).
    case_mix : dict of str to float
        Each treatment's share of the window's encounters.
    """

    window: str
    start: str
    end: str
    n_encounters: int
    n_patients: int
    n_acted_on: int
    all_patients: WindowPerformance
    not_acted_on: WindowPerformance
    psi: dict[str, float | None]
    case_mix: dict[str, float]

    def performance(self, group: PatientGroup) -> WindowPerformance:
        """The performance of ``group``."""
        return self.all_patients if group is PatientGroup.ALL else self.not_acted_on


class MonitorResult(Result):
    """A score history monitored window by window (:func:`engagekit.monitoring.monitor`).

    Attributes
    ----------
    target : str
        The outcome predicted (``attended_next``).
    window : MonitorWindow
    psi_reference : str
        What the PSI is measured against: ``"window 2025-01"`` or ``"given reference"``.
    psi_warn, psi_alert, sigma_limits : float
        The thresholds and control-limit width used.
    n_boot : int
    ci_level : float
    windows : list of WindowResult
        In time order.
    alerts : list of Alert
        Every figure outside its limits, in window order.
    miscalibrated : list of SubgroupCalibration
        Fair calibration: the subgroup levels (treatment, age band, gender …) whose
        calibration interval over the whole period, on the encounters not acted on,
        excludes perfect calibration.
    calibration_intervals : int
        How many subgroup calibration intervals were checked (each level's intercept
        and slope with an interval); ``(1 - ci_level)`` of them would exclude perfect
        calibration by chance alone. 0 in a result recorded before it was counted.
    """

    _what: ClassVar[str] = "a monitoring result"
    FORMAT_VERSION: ClassVar[int] = 1

    target: str
    window: Choice[MonitorWindow]
    psi_reference: str
    psi_warn: float
    psi_alert: float
    sigma_limits: float
    n_boot: int
    ci_level: float
    windows: list[WindowResult]
    alerts: list[Alert]
    miscalibrated: list[SubgroupCalibration] = Field(default_factory=list)
    calibration_intervals: int = 0

    @property
    def chance_sentence(self) -> str | None:
        """How many of the subgroup intervals would exclude perfect calibration by chance
        alone; None when none was checked."""
        if self.calibration_intervals == 0:
            return None
        expected = self.calibration_intervals * (1 - self.ci_level)
        return (
            f"With {self.calibration_intervals:,} intervals checked, about {expected:.1f} "
            "would exclude perfect calibration by chance alone."
        )

    def _json(self) -> dict[str, Any]:
        return self.model_dump(mode="json")
