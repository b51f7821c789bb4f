"""The report's figures: the decision curve marks the flag threshold only where it can."""

from __future__ import annotations

import numpy as np
import pytest

from engagekit.evaluation import evaluate_predictions
from engagekit.report import _figures as figures


def _flag_lines(fig):
    ax = fig.axes[0]
    return ax, [line for line in ax.get_lines() if line.get_label().startswith("flag rule")]


@pytest.mark.parametrize("threshold", [0.56, 0.3, 0.004, 0.5])
def test_the_decision_curve_draws_the_flag_threshold_inside_its_axis(threshold):
    rng = np.random.default_rng(0)
    p = rng.uniform(0.2, 0.95, 400)
    y = (rng.uniform(size=400) < p).astype(float)
    # a curve that does not reach the flag rule: the default thresholds, 0.01-0.50
    metrics = evaluate_predictions(y, p, np.arange(400), n_boot=0)
    assert max(point.threshold for point in metrics.decision_curve) == 0.5
    fig = figures.decision_curve_figure(metrics, threshold)
    ax, lines = _flag_lines(fig)
    assert figures.marks_flag_threshold(threshold)
    assert len(lines) == 1 and lines[0].get_label() == f"flag rule ({threshold:.2f})"
    assert list(lines[0].get_xdata()) == [threshold, threshold]
    low, high = ax.get_xlim()
    assert low < threshold < high


@pytest.mark.parametrize("threshold", [None, float("nan"), 1.0])
def test_the_decision_curve_claims_no_line_it_cannot_draw(threshold):
    metrics = evaluate_predictions([1, 0, 1, 0], [0.8, 0.6, 0.4, 0.1], [0, 1, 2, 3], n_boot=0)
    fig = figures.decision_curve_figure(metrics, threshold)
    assert _flag_lines(fig)[1] == []
    assert not figures.marks_flag_threshold(threshold)
