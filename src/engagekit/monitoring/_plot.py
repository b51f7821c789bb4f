"""The control charts of a :class:`~._result.MonitorResult`, as one matplotlib figure.

Three panels share the windows' axis: the observed-minus-expected rate of the encounters
not acted on, the same of all encounters (each with its 3-sigma limits as a stepped
line), and the PSI of every rating with the warn and alert thresholds. Nothing rests on
colour alone: each series has its own marker and line style, the limits and thresholds
are labelled lines, and every point outside its limits is ringed and marked "alert".
The figure is built with :class:`matplotlib.figure.Figure` and the Agg canvas, never
pyplot, so drawing touches no global state.

Examples
--------
>>> from engagekit import simulate_encounters
>>> from engagekit.monitoring import monitor
>>> encounters = simulate_encounters(150, seed=2).encounters
>>> scores = encounters.assign(p_adherent=0.6, rating_empathy=encounters["empathy"])
>>> figure = control_chart(monitor(scores, encounters, target="adherent", n_boot=0))
>>> [axes.get_ylabel() for axes in figure.axes]  # doctest: +NORMALIZE_WHITESPACE
['Observed − expected\\n(not acted on)', 'Observed − expected\\n(all patients)', 'PSI']
"""

from __future__ import annotations

from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ._result import MonitorResult, PatientGroup

__all__ = ["control_chart"]

# Okabe–Ito colours; each series also has its own marker and line style
_COLOURS = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000"]
_MARKERS = ["o", "s", "^", "D", "v", "P", "X"]
_LINES = ["-", "--", "-.", ":", (0, (5, 1)), (0, (3, 1, 1, 1, 1, 1)), (0, (1, 3))]


def _ring_alerts(axes: Axes, xs: list[int], ys: list[float]) -> None:
    for x, y in zip(xs, ys, strict=True):
        axes.plot(x, y, marker="o", markersize=14, fillstyle="none", color="black")
        axes.annotate(
            "alert",
            (x, y),
            textcoords="offset points",
            xytext=(0, 10),
            ha="center",
            fontsize=8,
            fontweight="bold",
        )


def _control_panel(axes: Axes, result: MonitorResult, group: PatientGroup) -> None:
    xs, points, lower, upper, outside = [], [], [], [], []
    for x, window in enumerate(result.windows):
        point = window.performance(group)
        if point.observed_minus_expected is None:
            continue
        assert point.lower_limit is not None and point.upper_limit is not None
        xs.append(x)
        points.append(point.observed_minus_expected)
        lower.append(point.lower_limit)
        upper.append(point.upper_limit)
        if not point.lower_limit <= point.observed_minus_expected <= point.upper_limit:
            outside.append((x, point.observed_minus_expected))
    axes.axhline(0, color="grey", linewidth=0.8)
    sigmas = f"{result.sigma_limits:g}-sigma limits"
    axes.step(xs, upper, where="mid", color="black", linestyle=":", label=sigmas)
    axes.step(xs, lower, where="mid", color="black", linestyle=":")
    axes.plot(
        xs, points, marker="o", color=_COLOURS[0], label=f"observed − expected {result.target} rate"
    )
    _ring_alerts(axes, [x for x, _ in outside], [y for _, y in outside])
    axes.set_ylabel(f"Observed − expected\n({group.label})")
    axes.legend(loc="upper left", fontsize=8, frameon=False)


def _psi_panel(axes: Axes, result: MonitorResult) -> None:
    names = sorted({name for window in result.windows for name in window.psi})
    for i, name in enumerate(names):
        points = [
            (x, value)
            for x, w in enumerate(result.windows)
            if (value := w.psi.get(name)) is not None
        ]
        xs, ys = [x for x, _ in points], [y for _, y in points]
        axes.plot(
            xs,
            ys,
            marker=_MARKERS[i % len(_MARKERS)],
            linestyle=_LINES[i % len(_LINES)],
            color=_COLOURS[i % len(_COLOURS)],
            label=name.removeprefix("rating_").replace("_", " "),
        )
        alerts = [(x, y) for x, y in points if y >= result.psi_alert]
        _ring_alerts(axes, [x for x, _ in alerts], [y for _, y in alerts])
    for level, value in (("warn", result.psi_warn), ("alert", result.psi_alert)):
        axes.axhline(value, color="black", linestyle="--" if level == "alert" else ":")
        axes.annotate(
            f"{level} {value:g}",
            (1, value),
            xycoords=("axes fraction", "data"),
            xytext=(3, 0),
            textcoords="offset points",
            va="center",
            fontsize=8,
        )
    axes.set_ylabel("PSI")
    axes.set_xlabel(f"Window ({result.window.value}); PSI against {result.psi_reference}")
    if names:
        # headroom above the alert line, so that the legend never sits on it
        low, high = axes.get_ylim()
        axes.set_ylim(low, max(high, result.psi_alert) * 1.45)
        axes.legend(loc="upper left", fontsize=8, frameon=False, ncols=3)


def control_chart(result: MonitorResult) -> Figure:
    """The control charts of ``result`` (see the module's docstring).

    Parameters
    ----------
    result : MonitorResult

    Returns
    -------
    matplotlib.figure.Figure
        Save it with ``figure.savefig(path)`` (PNG, SVG or PDF by the extension).
    """
    figure = Figure(
        figsize=(max(7.0, 0.55 * len(result.windows) + 3), 9), dpi=150, layout="constrained"
    )
    FigureCanvasAgg(figure)
    panels = figure.subplots(3, 1, sharex=True)
    _control_panel(panels[0], result, PatientGroup.NOT_ACTED_ON)
    _control_panel(panels[1], result, PatientGroup.ALL)
    _psi_panel(panels[2], result)
    labels = [w.window for w in result.windows]
    panels[2].set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    figure.suptitle(f"Monitoring of the {result.target} model, by {result.window.value}")
    return figure
