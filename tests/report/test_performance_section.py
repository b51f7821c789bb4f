"""The performance section: every number is the one ``engagekit train`` wrote."""

from __future__ import annotations

import pytest

from engagekit.evaluation import Estimate
from engagekit.report._sections import performance

TARGETS = ("adherent", "attended_next")
# the AUPRC shown is that of the flagged (bad) outcome
METRICS = (
    "auroc",
    "auprc_flagged",
    "brier",
    "log_loss",
    "calibration_intercept",
    "calibration_slope",
)


@pytest.fixture(scope="module")
def views(loaded):
    _, models, config = loaded
    return {m.target: performance.build(m.manifest, m.metrics, config, m.source) for m in models}


@pytest.mark.parametrize("target", TARGETS)
def test_metrics_are_those_of_metrics_json(views, written, target):
    _, metrics = written[target]
    cells = {cell.name: cell for cell in views[target].metrics}
    for name in METRICS:
        cell = cells[name]
        assert float(cell.raw) == metrics[name], name
        assert cell.value == f"{metrics[name]:.3f}", name
        low, high = metrics[f"{name}_ci_low"], metrics[f"{name}_ci_high"]
        assert cell.ci == f"{low:.3f} to {high:.3f}", name
        assert cell.target == target
    view = views[target]
    assert (view.n_patients, view.n_encounters) == (
        f"{metrics['n_patients']:,}",
        f"{metrics['n_encounters']:,}",
    )
    assert (view.folds, view.n_boot, view.ci_level) == ("2", "50", "95%")


@pytest.mark.parametrize("target", TARGETS)
def test_the_caption_names_the_flag_line_the_figure_draws(views, written, target):
    manifest, metrics = written[target]
    threshold = manifest["flag_rule"]["threshold"]
    # train computed the curve out to the threshold
    curve = [row["threshold"] for row in metrics["decision_curve"]]
    assert min(curve) <= threshold <= max(curve)
    assert views[target].threshold_marked == f"{threshold:.3f}"


@pytest.mark.parametrize("target", TARGETS)
def test_every_curve_is_drawn_from_the_models_metrics(views, model_of, target):
    view = views[target]
    label = view.label
    assert [p.what for p in (view.roc, view.calibration, view.decision_curve)] == [
        "ROC curve",
        "Calibration curve",
        "Decision curve",
    ]
    for plot, title in (
        (view.roc, f"ROC curve — {label}"),
        (view.calibration, f"Calibration — {label}"),
        (view.decision_curve, f"Decision curve — {label}"),
    ):
        assert plot.draw.args[0] is model_of(target).metrics and plot.draw.args[-1] == title
        assert plot.note is None


def test_subgroup_tables_are_captioned_and_labelled(views, written):
    view = views["adherent"]
    _, metrics = written["adherent"]
    # metrics.json holds each grouping as "by_<column>"
    assert [t.caption for t in view.subgroups] == [
        key.replace("_", " ").capitalize() for key in metrics if key.startswith("by_")
    ]
    treatments = next(t for t in view.subgroups if t.caption == "By treatment")
    assert "Online CBT" in [row[0] for row in treatments.rows]


def test_metrics_of_one_outcome_class_say_why_there_is_no_roc_curve(loaded):
    _, models, config = loaded
    model = models[1]
    undefined = Estimate(value=None, ci_low=None, ci_high=None, n_boot=0)
    overall = model.metrics.overall.model_copy(update={"auroc": undefined})
    metrics = model.metrics.model_copy(update={"roc_curve": None, "overall": overall})
    view = performance.build(model.manifest, metrics, config)
    assert view.roc.draw is None
    assert view.roc.note == "ROC curve: – (this metrics.json holds none: only one outcome class)"
    auroc = next(cell for cell in view.metrics if cell.name == "auroc")
    assert (auroc.value, auroc.ci, auroc.raw) == ("–", "–", "")


def test_a_model_unfit_for_use_is_named_so(loaded, views):
    _, models, config = loaded
    reason = "its cross-validated AUROC 0.48 (95% CI 0.40 to 0.56) does not exclude chance"
    manifest = models[0].manifest.model_copy(update={"fit_for_use": False, "unfit_reason": reason})
    assert performance.build(manifest, models[0].metrics, config).unfit_reason == reason
    silent = manifest.model_copy(update={"unfit_reason": None})
    assert performance.build(silent, models[0].metrics, config).unfit_reason == (
        "its validation showed no better than chance"
    )
    assert all(view.unfit_reason is None for view in views.values())
