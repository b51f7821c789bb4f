"""Monitoring: how a deployed model's predictions hold up over time, window by window.

A service scores its encounters every week (``engagekit score``) and acts on the flags.
Monitoring reads that score history beside the outcomes recorded since, and asks, per
calendar window (week, month or quarter of the encounter date):

- **performance**: AUROC, calibration-in-the-large and calibration slope, with
  patient-bootstrap intervals, on the encounters whose flags were *not* acted on (a
  contact may change the outcome it predicts: those are the model's fair test) and on
  all of them beside, so that the effect of the service's contacts on the outcomes shows
  as the gap between the two (:mod:`._acted_on` holds the rule);
- **drift**: the population stability index of each rating against a reference (the
  first window, or the ratings given), and the case mix by treatment;
- **control**: a risk-adjusted p-chart of the observed-minus-expected rate with 3-sigma
  limits from each window's size, and the PSI thresholds; every figure outside its
  limits is an :class:`Alert` naming the window and the figure.

:func:`monitor` computes a :class:`MonitorResult`; :func:`control_chart` draws it, and
:func:`monitor_view` puts it in the words and tables the report and the service page
show.
Nothing here reads or writes: ``engagekit monitor`` does.
"""

from .._lazy import lazy_exports

# the windows are a choice of the command line, which must start without pandas: the
# rest is imported on first use
from ._windows import MonitorWindow

_LAZY = {
    "PSI_ALERT": "._psi",
    "PSI_WARN": "._psi",
    "SIGMA_LIMITS": "._spc",
    "Alert": "._result",
    "ControlPoint": "._spc",
    "MonitorFigure": "._result",
    "MonitorResult": "._result",
    "MonitorView": "._view",
    "PatientGroup": "._result",
    "SubgroupCalibration": "._result",
    "WindowPerformance": "._result",
    "WindowResult": "._result",
    "acted_on": "._acted_on",
    "control_chart": "._plot",
    "monitor": "._monitor",
    "monitor_view": "._view",
    "observed_minus_expected": "._spc",
    "population_stability_index": "._psi",
    "prospective_scores": "._monitor",
    "psi_level": "._psi",
    "window_bounds": "._windows",
    "window_labels": "._windows",
}

__all__ = [
    "PSI_ALERT",
    "PSI_WARN",
    "SIGMA_LIMITS",
    "Alert",
    "ControlPoint",
    "MonitorFigure",
    "MonitorResult",
    "MonitorView",
    "MonitorWindow",
    "PatientGroup",
    "SubgroupCalibration",
    "WindowPerformance",
    "WindowResult",
    "acted_on",
    "control_chart",
    "monitor",
    "monitor_view",
    "observed_minus_expected",
    "population_stability_index",
    "prospective_scores",
    "psi_level",
    "window_bounds",
    "window_labels",
]

__getattr__, __dir__ = lazy_exports(__name__, _LAZY, globals())
