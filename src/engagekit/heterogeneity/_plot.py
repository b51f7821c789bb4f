"""Forest plot of a heterogeneity result: odds ratio per rating point, by treatment.

One panel per attribute, one row per treatment, on a shared log-scale odds-ratio axis.
The figure is built with :class:`matplotlib.figure.Figure` and the Agg canvas, never with
pyplot, so drawing touches no global state and is safe from any thread or web worker.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeGuard

from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

from ..choices import Adjustment

if TYPE_CHECKING:
    from matplotlib.artist import Artist

    from ._analysis import HeterogeneityResult

__all__ = ["SAVE_FORMATS", "forest_plot"]

SAVE_FORMATS = (".png", ".svg", ".pdf")
"""File extensions :func:`forest_plot` can save to."""

_DPI = 150

# Okabe–Ito colours, told apart under the common colour-vision deficiencies; each verdict
# also has its own marker so the plot still reads in greyscale.
# (keyed by object: looked up with whatever a result's JSON holds)
_VERDICT_STYLE: dict[object, dict[str, str]] = {
    "differs": {"color": "#D55E00", "marker": "s"},
    "equivalent": {"color": "#0072B2", "marker": "o"},
    "inconclusive": {"color": "#000000", "marker": "D"},
}
_UNKNOWN_VERDICT_STYLE = {"color": "#999999", "marker": "o"}
_BAND_COLOUR = "#56B4E9"

_ADJUSTMENT_NAMES: dict[object, str] = {Adjustment.HOLM: "Holm p", Adjustment.FDR_BH: "BH q"}

# Ticks symmetric on the log scale (0.8 = 1/1.25, 0.5 = 1/2, ...), read as plain numbers.
_CANDIDATE_TICKS: tuple[float, ...] = (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 0.8, 1.0, 1.25, 2.0, 5.0)
_CANDIDATE_TICKS += (10.0, 20.0, 50.0, 100.0)

_PANEL_INCHES_PER_ROW = 0.4
_PANEL_INCHES_EXTRA = 0.75
_TITLE_INCHES = 0.9
_WIDTH_INCHES = 9.0  # wide enough for the longest panel title beside long treatment names


def forest_plot(
    result: HeterogeneityResult | Mapping[str, Any],
    path: str | Path | None = None,
    *,
    margin: float | None = None,
) -> Figure:
    """Draw the per-treatment odds ratios of a heterogeneity result as a forest plot.

    Each attribute gets one panel (a row of the figure); within it each treatment is a
    row, in the order the result gives them: a point at the odds ratio per rating point
    and a horizontal line for its 95% confidence interval. A dotted vertical line marks
    an odds ratio of 1. Where the attribute has a pooled effect (``common_log_odds``)
    and a margin is known, a shaded band ``exp(common ± margin)`` shows the equivalence
    margin around the pooled effect, with a dashed line at the pooled effect itself.
    Points are coloured and shaped by the attribute's verdict; the panel title gives the
    attribute's label, its verdict and its adjusted p-value, and says "higher is worse"
    for an attribute whose ``higher_is_better`` is false (its odds ratios are per point
    higher, so below 1 where the score does harm). The figure's title names the outcome
    by its ``target_label`` where the result has one, else by ``target``.

    Parameters
    ----------
    result : HeterogeneityResult or mapping
        A result of :func:`~engagekit.heterogeneity.heterogeneity_analysis`, or a mapping
        of its JSON form (which may lack parts): ``target`` (optionally
        ``target_label``), ``method`` (with ``margin`` and optionally ``adjustment``) and
        ``attributes``, each with ``attribute``, ``label``, ``verdict``, ``p_adjusted``,
        optionally ``higher_is_better`` and ``common_log_odds``, and ``by_treatment``
        rows of ``treatment`` (shown by its ``treatment_label`` where the row has one),
        ``odds_ratio`` (or ``log_odds``), ``ci_low``, ``ci_high`` and optionally
        ``n_encounters``. A missing, ``None`` or NaN interval is drawn as the point
        alone, labelled "CI not estimable".
    path : str or pathlib.Path, optional
        Where to save the figure; the extension chooses the format (``.png``, ``.svg``
        or ``.pdf``), saved at 150 dpi under a temporary name and renamed when
        complete. Nothing is saved when omitted.
    margin : float, optional
        Equivalence margin on the log-odds scale; defaults to
        ``result["method"]["margin"]``. No band is drawn when neither is given.

    Returns
    -------
    matplotlib.figure.Figure
        The figure, attached to an Agg canvas, with one axes per attribute.

    Raises
    ------
    ValueError
        If ``path`` has an extension other than ``.png``, ``.svg`` or ``.pdf``, if
        ``result`` has no attributes, or if the margin is not a positive number.
    OutputError
        If ``path`` cannot be written (nothing is left at it that was not there).

    Examples
    --------
    >>> result = {
    ...     "target": "adherent",
    ...     "method": {"margin": 0.2231},
    ...     "attributes": [{
    ...         "attribute": "warmth", "label": "Warmth", "verdict": "equivalent",
    ...         "p_adjusted": 0.4, "common_log_odds": 0.2,
    ...         "by_treatment": [
    ...             {"treatment": "cbt", "odds_ratio": 1.2, "ci_low": 1.1, "ci_high": 1.3},
    ...             {"treatment": "ipt", "odds_ratio": 1.25, "ci_low": None, "ci_high": None},
    ...         ],
    ...     }],
    ... }
    >>> fig = forest_plot(result)
    >>> fig.axes[0].get_title(loc="left")
    'Warmth — equivalent (adjusted p = 0.400)'
    >>> forest_plot(result, "forest.jpg")
    Traceback (most recent call last):
    ...
    ValueError: cannot save a forest plot as '.jpg': use one of '.png', '.svg', '.pdf'
    """
    if path is not None:
        _check_save_format(Path(path))
    if hasattr(result, "to_dict"):
        # the plot also draws mappings missing parts (a hand-built or older result), so
        # it reads the JSON form
        result = result.to_dict()
    attributes = list(result.get("attributes") or [])
    if not attributes:
        raise ValueError(
            "result has no 'attributes' to plot; pass the dict returned by the "
            "heterogeneity analysis, which has one entry per tested attribute"
        )
    method = result.get("method") or {}
    method_margin = method.get("margin")
    if isinstance(method_margin, Mapping):  # a config's margin, per SD or per point
        method_margin = method_margin.get("value")
    band_margin = _resolve_margin(margin, method_margin)
    # each attribute's own margin in log-odds per point (a margin per SD differs by
    # attribute), unless one is given
    margins = [
        band_margin if margin is not None or not _is_positive(a.get("margin")) else a["margin"]
        for a in attributes
    ]
    p_name = _ADJUSTMENT_NAMES.get(method.get("adjustment"), "adjusted p")

    # the config's label of the outcome ("Adherence") where the result has it
    fig = _empty_figure(attributes, str(result.get("target_label") or result.get("target", "")))
    axes = fig.axes
    drew_band = False
    for ax, attribute, own in zip(axes, attributes, margins, strict=True):
        drew_band |= _draw_panel(ax, attribute, own, p_name)
    _format_odds_ratio_axis(axes, _x_limits(attributes, margins))
    _add_legend(fig, drew_band)

    if path is not None:
        from ..io._write import write_figure

        write_figure(fig, path, dpi=_DPI)
    return fig


def _check_save_format(path: Path) -> None:
    suffix = path.suffix.lower()
    if suffix not in SAVE_FORMATS:
        allowed = ", ".join(repr(s) for s in SAVE_FORMATS)
        found = repr(path.suffix) if path.suffix else f"{path.name!r}, which has no extension"
        raise ValueError(f"cannot save a forest plot as {found}: use one of {allowed}")


def _resolve_margin(margin: float | None, method_margin: Any) -> float | None:
    chosen = margin if margin is not None else method_margin
    if chosen is None:
        return None
    if not _is_finite(chosen) or chosen <= 0:
        raise ValueError(
            f"margin must be a positive number on the log-odds scale, got {chosen!r}; "
            "pass margin=math.log(1.25) for example, or leave it out to draw no band"
        )
    return float(chosen)


def _empty_figure(attributes: Sequence[Mapping[str, Any]], target: str) -> Figure:
    rows = [max(len(a.get("by_treatment") or []), 1) for a in attributes]
    panel_heights = [n * _PANEL_INCHES_PER_ROW + _PANEL_INCHES_EXTRA for n in rows]
    fig = Figure(figsize=(_WIDTH_INCHES, sum(panel_heights) + _TITLE_INCHES), layout="constrained")
    FigureCanvasAgg(fig)
    fig.subplots(
        len(attributes),
        1,
        sharex=True,
        squeeze=False,
        gridspec_kw={"height_ratios": panel_heights},
    )
    fig.suptitle(f"Odds ratio per rating point, by treatment — {target}")
    return fig


def _draw_panel(ax: Axes, attribute: Mapping[str, Any], margin: float | None, p_name: str) -> bool:
    """Draw one attribute's panel; return whether it has an equivalence band."""
    rows = list(attribute.get("by_treatment") or [])
    verdict = attribute.get("verdict")
    style = _VERDICT_STYLE.get(verdict, _UNKNOWN_VERDICT_STYLE)

    ax.axvline(1.0, color="#555555", linestyle=":", linewidth=1, zorder=1)
    common = attribute.get("common_log_odds")
    has_band = False
    if margin is not None and _is_finite(common):
        has_band = True
        ax.axvspan(
            math.exp(common - margin),
            math.exp(common + margin),
            color=_BAND_COLOUR,
            alpha=0.2,
            linewidth=0,
            zorder=0,
        )
        ax.axvline(math.exp(common), color=_BAND_COLOUR, linestyle="--", linewidth=1, zorder=1)

    for position, row in enumerate(rows):
        _draw_treatment(ax, position, row, style)

    ax.set_yticks(range(len(rows)), [_treatment_label(row) for row in rows])
    # first treatment on top, as in a table
    ax.set_ylim(max(len(rows), 1) - 0.5, -0.5)
    if not rows:
        ax.text(0.5, 0.5, "no treatment estimates", transform=ax.transAxes, ha="center")
    ax.set_title(_panel_title(attribute, p_name), loc="left", fontsize="medium")
    ax.grid(axis="x", color="#DDDDDD", linewidth=0.6, zorder=0)
    return has_band


def _draw_treatment(
    ax: Axes, position: int, row: Mapping[str, Any], style: Mapping[str, str]
) -> None:
    odds_ratio = _odds_ratio(row)
    if odds_ratio is None:
        return
    interval = _interval(row)
    xerr = None
    if interval is not None:
        low, high = interval
        xerr = [[max(odds_ratio - low, 0.0)], [max(high - odds_ratio, 0.0)]]
    ax.errorbar(
        [odds_ratio],
        [position],
        xerr=xerr,
        fmt=style["marker"],
        color=style["color"],
        markersize=6,
        elinewidth=1.6,
        capsize=3,
        zorder=3,
        label=str(row.get("treatment", "")),
    )


def _odds_ratio(row: Mapping[str, Any]) -> float | None:
    odds_ratio = row.get("odds_ratio")
    if odds_ratio is None and _is_finite(row.get("log_odds")):
        odds_ratio = math.exp(row["log_odds"])
    return float(odds_ratio) if _is_positive(odds_ratio) else None


def _interval(row: Mapping[str, Any]) -> tuple[float, float] | None:
    low, high = row.get("ci_low"), row.get("ci_high")
    if _is_positive(low) and _is_positive(high) and low <= high:
        return float(low), float(high)
    return None


def _treatment_label(row: Mapping[str, Any]) -> str:
    # the config's label ("Face-to-face CBT") where the result has it, else the name
    label = str(row.get("treatment_label") or row.get("treatment", "?"))
    n_encounters = row.get("n_encounters")
    if _is_finite(n_encounters):
        label += f" (n = {int(n_encounters):,})"
    if _odds_ratio(row) is None:
        return f"{label}\nnot estimable"
    if _interval(row) is None:
        return f"{label}\nCI not estimable"
    return label


def _panel_title(attribute: Mapping[str, Any], p_name: str) -> str:
    name = attribute.get("label") or attribute.get("attribute") or "?"
    if attribute.get("higher_is_better") is False:
        name += " (higher is worse)"
    verdict = attribute.get("verdict") or "no verdict"
    p_adjusted = attribute.get("p_adjusted")
    if not _is_finite(p_adjusted):
        return f"{name} — {verdict}"
    p_text = "< 0.001" if p_adjusted < 0.001 else f"= {p_adjusted:.3f}"
    return f"{name} — {verdict} ({p_name} {p_text})"


def _x_limits(
    attributes: Sequence[Mapping[str, Any]], margins: Sequence[float | None]
) -> tuple[float, float]:
    # Fixed limits that hold every point, interval, band and the line at 1, so that no
    # panel is cut and the shared axis reads the same everywhere.
    values = [1.0]
    for attribute, margin in zip(attributes, margins, strict=True):
        common = attribute.get("common_log_odds")
        if margin is not None and _is_finite(common):
            values += [math.exp(common - margin), math.exp(common + margin)]
        for row in attribute.get("by_treatment") or []:
            odds_ratio = _odds_ratio(row)
            values += [] if odds_ratio is None else [odds_ratio]
            values += list(_interval(row) or ())
    low, high = min(values), max(values)
    pad = (high / low) ** 0.06
    return low / pad, high * pad


def _format_odds_ratio_axis(axes: Sequence[Axes], limits: tuple[float, float]) -> None:
    low, high = limits
    ticks = [t for t in _CANDIDATE_TICKS if low <= t <= high]
    for ax in axes:
        ax.set_xscale("log")
        ax.set_xlim(low, high)
        ax.xaxis.set_major_locator(FixedLocator(ticks))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x:g}"))
        ax.xaxis.set_minor_locator(NullLocator())
    axes[-1].set_xlabel("Odds ratio per rating point (log scale; 95% CI)")


def _add_legend(fig: Figure, drew_band: bool) -> None:
    handles: list[Artist] = [
        Line2D([], [], color="#555555", linestyle=":", label="odds ratio 1 (no effect)")
    ]
    if drew_band:
        handles += [
            Line2D([], [], color=_BAND_COLOUR, linestyle="--", label="pooled effect"),
            Patch(color=_BAND_COLOUR, alpha=0.2, label="equivalence margin around it"),
        ]
    fig.legend(handles=handles, loc="outside lower center", ncols=len(handles), frameon=False)


def _is_finite(value: Any) -> TypeGuard[float]:
    # numbers.Real also admits numpy scalars; a bool is no estimate
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def _is_positive(value: Any) -> TypeGuard[float]:
    return _is_finite(value) and value > 0
