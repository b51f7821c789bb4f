"""The report's figures, drawn from metrics and explanations already computed.

Every function returns a :class:`matplotlib.figure.Figure` on an Agg canvas, built
without pyplot (no global state: safe in threads and web workers);
:func:`png_data_uri` turns one into the ``data:`` URI the self-contained HTML report
inlines. Colours are Okabe–Ito, told apart under the common colour-vision deficiencies,
and lines also differ in style.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeGuard

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import Normalize
from matplotlib.figure import Figure

from .._format import estimate, is_number

if TYPE_CHECKING:
    from ..evaluation import Metrics

__all__ = [
    "calibration_figure",
    "decision_curve_figure",
    "importance_figure",
    "marks_flag_threshold",
    "png_data_uri",
    "roc_figure",
    "shap_summary_figure",
]

BLUE, VERMILLION, ORANGE, GREEN, SKY = "#0072B2", "#D55E00", "#E69F00", "#009E73", "#56B4E9"
GREY = "#777777"
_DPI = 100
_SMALL = (4.6, 4.0)


def _figure(size: tuple[float, float] = _SMALL) -> Figure:
    fig = Figure(figsize=size, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def png_data_uri(fig: Figure, dpi: int = _DPI) -> str:
    """The figure as a PNG ``data:`` URI, for an ``<img src=...>`` that needs no file.

    Examples
    --------
    >>> uri = png_data_uri(_figure())
    >>> uri.startswith("data:image/png;base64,iVBORw0KGgo")
    True
    """
    buffer = io.BytesIO()
    # no Software/URL text chunk: the page must not even mention an address
    fig.savefig(buffer, format="png", dpi=dpi, metadata={"Software": None})
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _frame(points: Sequence[Any]) -> pd.DataFrame:
    """A curve's points (:class:`~engagekit.evaluation.RocPoint`, …) as a table."""
    return pd.DataFrame([point.model_dump() for point in points])


def roc_figure(metrics: Metrics, title: str = "") -> Figure:
    """ROC curve of the cross-validated predictions (``metrics.roc_curve``).

    The curve is of the probability of the outcome coded 1, as the AUROC in the legend.

    Raises
    ------
    ValueError
        ``metrics`` has no ROC curve (one outcome class only).
    """
    if not metrics.roc_curve:
        raise ValueError("the metrics hold no ROC curve")
    frame = _frame(metrics.roc_curve)
    fig = _figure()
    ax = fig.add_subplot()
    ax.plot([0, 1], [0, 1], color=GREY, linestyle=":", linewidth=1, label="chance (0.5)")
    ax.plot(
        frame["false_positive_rate"],
        frame["true_positive_rate"],
        color=BLUE,
        linewidth=2,
        label=f"AUROC {estimate(metrics.overall.auroc)}",
    )
    ax.set(
        xlim=(0, 1),
        ylim=(0, 1.01),
        xlabel="false positive rate (1 − specificity)",
        ylabel="true positive rate (sensitivity)",
        aspect="equal",
    )
    ax.set_title(title or "ROC curve", fontsize="medium")
    ax.legend(loc="lower right", fontsize="small")
    ax.grid(color="#E5E5E5", linewidth=0.6)
    return fig


def calibration_figure(metrics: Metrics, title: str = "") -> Figure:
    """Observed outcome rate against mean predicted probability, per bin, with the
    calibration slope and intercept (and their CIs) in the legend.

    Raises
    ------
    ValueError
        ``metrics`` has no calibration curve.
    """
    if not metrics.calibration_curve:
        raise ValueError("the metrics hold no calibration curve")
    frame = _frame(metrics.calibration_curve)
    fig = _figure()
    ax = fig.add_subplot()
    low = float(np.nanmin(frame[["mean_predicted", "ci_low"]].to_numpy(dtype=float)))
    high = float(np.nanmax(frame[["mean_predicted", "ci_high"]].to_numpy(dtype=float)))
    pad = max((high - low) * 0.08, 0.01)
    lo, hi = max(0.0, low - pad), min(1.0, high + pad)
    ax.plot([lo, hi], [lo, hi], color=GREY, linestyle=":", linewidth=1, label="ideal")
    ax.errorbar(
        frame["mean_predicted"],
        frame["observed_rate"],
        yerr=[
            (frame["observed_rate"] - frame["ci_low"]).clip(lower=0),
            (frame["ci_high"] - frame["observed_rate"]).clip(lower=0),
        ],
        fmt="o-",
        color=VERMILLION,
        markersize=5,
        linewidth=1.5,
        capsize=2,
        label="observed rate per bin (95% CI)",
    )
    ax.plot([], [], " ", label=f"slope {estimate(metrics.overall.calibration_slope, 2)}")
    ax.plot([], [], " ", label=f"intercept {estimate(metrics.overall.calibration_intercept, 2)}")
    ax.set(
        xlim=(lo, hi),
        ylim=(lo, hi),
        xlabel="mean predicted probability",
        ylabel="observed rate",
        aspect="equal",
    )
    ax.set_title(title or "Calibration", fontsize="medium")
    ax.legend(loc="lower right", fontsize="small")
    ax.grid(color="#E5E5E5", linewidth=0.6)
    return fig


def marks_flag_threshold(flag_threshold: Any) -> TypeGuard[float]:
    """Whether :func:`decision_curve_figure` draws the line of this flag threshold.

    It does for every risk strictly between 0 and 1, widening the axis to reach it if
    the curve stops short (a ``metrics.json`` written before the curves were computed to
    reach the flag rule).

    >>> marks_flag_threshold(0.56), marks_flag_threshold(None), marks_flag_threshold(1.0)
    (True, False, False)
    """
    return is_number(flag_threshold) and 0.0 < flag_threshold < 1.0


def decision_curve_figure(
    metrics: Metrics, flag_threshold: float | None = None, title: str = ""
) -> Figure:
    """Net benefit of flagging on the model, of flagging everyone and no one.

    Thresholds are risks of the flagged outcome (by default the bad one, risk ``1 - p``).
    ``flag_threshold`` is marked by a dash-dot line whenever
    :func:`marks_flag_threshold` says so, and the risk axis always reaches it.

    Raises
    ------
    ValueError
        ``metrics`` has no decision curve.
    """
    if not metrics.decision_curve:
        raise ValueError("the metrics hold no decision curve")
    frame = _frame(metrics.decision_curve)
    fig = _figure()
    ax = fig.add_subplot()
    t = frame["threshold"]
    ax.plot(t, frame["net_benefit_model"], color=BLUE, linewidth=2, label="flag on the model")
    ax.plot(t, frame["net_benefit_all"], color=ORANGE, linestyle="--", label="flag everyone")
    ax.plot(t, frame["net_benefit_none"], color=GREY, linestyle=":", label="flag no one")
    top = float(np.nanmax(frame[["net_benefit_model", "net_benefit_all"]].to_numpy(dtype=float)))
    top = max(top, 0.001)
    ax.set_ylim(-0.15 * top, 1.1 * top)
    low, high = float(t.min()), float(t.max())
    if marks_flag_threshold(flag_threshold):
        # the axis reaches the threshold, with a margin so the line is not on the frame
        margin = 0.02 * (max(high, flag_threshold) - min(low, flag_threshold))
        low = min(low, max(0.0, flag_threshold - margin))
        high = max(high, min(1.0, flag_threshold + margin))
        ax.axvline(
            flag_threshold,
            color=GREEN,
            linestyle="-.",
            linewidth=1.2,
            label=f"flag rule ({flag_threshold:.2f})",
        )
    ax.set_xlim(low, high)
    flagged = "the bad outcome" if metrics.decision_curve_flagged_outcome == 0 else "1"
    ax.set(xlabel=f"risk threshold (probability of {flagged})", ylabel="net benefit")
    ax.set_title(title or "Decision curve", fontsize="medium")
    ax.legend(loc="upper right", fontsize="small")
    ax.grid(color="#E5E5E5", linewidth=0.6)
    return fig


def shap_summary_figure(
    grouped: pd.DataFrame,
    ratings: pd.DataFrame,
    labels: Mapping[str, str],
    scale: tuple[float, float],
    *,
    max_points: int = 1500,
    seed: int = 0,
    title: str = "",
) -> Figure:
    """Each group's SHAP contributions, one dot per encounter (a sample), strongest first.

    Parameters
    ----------
    grouped : pandas.DataFrame
        :attr:`Explanation.grouped`: contributions to the log-odds, one column per
        attribute (its rating and history features) and per other group.
    ratings : pandas.DataFrame
        This session's rating of each attribute, same rows: the dots' colour.
    labels : mapping
        Column of ``grouped`` to its label.
    scale : (float, float)
        The rating scale, for the colour bar.
    max_points : int
        Encounters drawn (a seeded sample when there are more).
    """
    rng = np.random.default_rng(seed)
    rows = np.arange(len(grouped))
    if rows.size > max_points:
        rows = np.sort(rng.choice(rows, size=max_points, replace=False))
    order = grouped.abs().mean().sort_values(ascending=True).index.tolist()
    fig = _figure((7.2, 0.42 * len(order) + 1.6))
    ax = fig.add_subplot()
    norm = Normalize(*scale)
    colour_map = "coolwarm"
    scatter = None
    for position, column in enumerate(order):
        values = grouped[column].to_numpy()[rows]
        jitter = rng.uniform(-0.32, 0.32, rows.size)
        if column in ratings.columns:
            rating = ratings[column].to_numpy(dtype=float, na_value=np.nan)[rows]
            missing = np.isnan(rating)
            ax.scatter(
                values[missing],
                position + jitter[missing],
                s=5,
                color=GREY,
                alpha=0.5,
                linewidths=0,
                rasterized=True,
            )
            scatter = ax.scatter(
                values[~missing],
                position + jitter[~missing],
                s=5,
                c=rating[~missing],
                cmap=colour_map,
                norm=norm,
                alpha=0.6,
                linewidths=0,
                rasterized=True,
            )
        else:
            ax.scatter(
                values,
                position + jitter,
                s=5,
                color=GREEN,
                alpha=0.4,
                linewidths=0,
                rasterized=True,
            )
    ax.axvline(0, color="#333333", linewidth=0.8)
    ax.set_yticks(range(len(order)), [labels.get(c, c) for c in order])
    ax.set_ylim(-0.6, len(order) - 0.4)
    ax.set_xlabel("contribution to the log-odds (SHAP value)")
    ax.set_title(title or "What moves the predictions", fontsize="medium")
    ax.grid(axis="x", color="#E5E5E5", linewidth=0.6)
    if scatter is not None:
        bar = fig.colorbar(scatter, ax=ax, pad=0.01, fraction=0.04)
        bar.set_label("this session's rating (grey: missing)")
    return fig


def importance_figure(
    importance: Mapping[str, Any],
    labels: Mapping[str, str],
    level_labels: Mapping[str, str] | None = None,
    title: str = "",
) -> Figure:
    """Heatmap of each attribute's mean |SHAP| overall and within each treatment.

    ``importance`` is the result of :func:`engagekit.explain.attribute_importance`.
    """
    attributes: Sequence[str] = importance["attributes"]
    levels = list(importance["levels"])
    level_labels = level_labels or {}
    columns = ["overall", *levels]
    blocks = [importance["overall"], *(importance["levels"][lv] for lv in levels)]
    values = np.array(
        [[b["importance"][a] if b["n_encounters"] else np.nan for b in blocks] for a in attributes]
    )
    fig = _figure((0.95 * len(columns) + 3.4, 0.42 * len(attributes) + 2.2))
    ax = fig.add_subplot()
    image = ax.imshow(values, cmap="Blues", aspect="auto", vmin=0)
    top = np.nanmax(values) if np.isfinite(values).any() else 1.0
    for i in range(values.shape[0]):
        for j in range(values.shape[1]):
            value = values[i, j]
            text = "–" if not np.isfinite(value) else f"{value:.2f}"
            colour = "white" if np.isfinite(value) and value > 0.6 * top else "black"
            ax.text(j, i, text, ha="center", va="center", fontsize="small", color=colour)
    ax.set_yticks(range(len(attributes)), [labels.get(a, a) for a in attributes])
    ax.set_xticks(
        range(len(columns)),
        [level_labels.get(c, c) for c in columns],
        rotation=35,
        ha="right",
    )
    ax.axvline(0.5, color="white", linewidth=3)
    bar = fig.colorbar(image, ax=ax, pad=0.01, fraction=0.05)
    bar.set_label("mean |SHAP| (log-odds)")
    ax.set_title(title or "Importance per treatment", fontsize="medium")
    return fig
