"""Rendering: each section's partial writes its view model alone, and a figure that
cannot be drawn becomes a note saying why."""

from __future__ import annotations

from dataclasses import replace

import pytest
from matplotlib.figure import Figure

from engagekit.report._render import DrawnPlot, draw, environment
from engagekit.report._sections import Plot, performance


def _cannot_draw() -> Figure:
    raise ValueError("no encounters to plot")


@pytest.mark.parametrize(
    ("plot", "shown"),
    [
        (
            Plot("SHAP summary", _cannot_draw),
            DrawnPlot(None, "SHAP summary: – (no encounters to plot)"),
        ),
        (
            Plot("ROC curve", note="ROC curve: – (only one outcome class)"),
            DrawnPlot(None, "ROC curve: – (only one outcome class)"),
        ),
        (Plot("Forest plot"), DrawnPlot(None, "Forest plot: –")),
    ],
    ids=["raises", "known-before", "nothing-to-draw"],
)
def test_a_figure_that_cannot_be_drawn_is_a_note(plot, shown):
    assert draw(plot) == shown


def test_a_figure_is_an_inline_png():
    figure = Figure()
    figure.add_subplot().plot([0, 1], [0, 1])
    shown = draw(Plot("a line", lambda: figure))
    assert shown.note is None and shown.uri.startswith("data:image/png;base64,iVBORw0KGgo")


def test_the_performance_partial_renders_its_view_alone(loaded):
    _, models, config = loaded
    reason = "its cross-validated AUROC 0.48 (95% CI 0.40 to 0.56) does not exclude chance"
    manifest = models[0].manifest.model_copy(update={"fit_for_use": False, "unfit_reason": reason})
    view = performance.build(manifest, models[0].metrics, config, source="models/adherent")
    # figures as notes: nothing is drawn
    view = replace(
        view,
        **{
            name: Plot(name, note=f"{name}: not drawn here")
            for name in ("roc", "calibration", "decision_curve")
        },
    )
    page = environment().get_template("sections/performance.html.j2").render(performance=(view,))
    assert f'<p class="unfit" role="alert"><strong>Not fit for use:</strong> {reason}.' in page
    assert '<div class="missing">roc: not drawn here</div>' in page
    assert "Model: <code>models/adherent</code>." in page
    auroc = next(cell for cell in view.metrics if cell.name == "auroc")
    cell = f'data-target="adherent" data-metric="auroc" data-value="{auroc.raw}"'
    assert f"<td {cell}>{auroc.value}</td><td>{auroc.ci}</td>" in page
