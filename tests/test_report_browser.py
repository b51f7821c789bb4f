"""The report as a reader sees it: rendered by headless Chromium from the file alone.

The ``browser`` fixture (``conftest.py``) finds Chromium; without one these tests skip
with one line, unless ``ENGAGEKIT_REQUIRE_BROWSER=1`` (set by ``.ci/run``) makes that a
failure.

The page's own styles use greys only, so the plot colours (Okabe–Ito) in the screenshot
can only come from the figures. The first row of figures is each model's ROC curve
(blue), calibration curve (vermillion) and decision curve (blue and orange), left
to right; the check looks for each in its third of the page, and must fail on the same
report with its images broken.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from _browser import colour_mask, screenshot
from engagekit import simulate_encounters
from engagekit.config import load_config
from engagekit.models import build_manifest, train_model
from engagekit.report import ReportModel, build_report
from engagekit.report._figures import BLUE, ORANGE, VERMILLION

# Pixels of a plot colour that show a figure drew its line, at the screenshot's scale: a
# 2-pixel curve across a 380-pixel plot gives several hundred; a dashed reference line
# fewer.
MIN_LINE_PIXELS = 250
MIN_DASHED_PIXELS = 100

#: The first row of figures, left to right: each one's colours and their minimum pixels.
FIRST_ROW = {
    "ROC curve": {BLUE: MIN_LINE_PIXELS},
    "calibration curve": {VERMILLION: MIN_LINE_PIXELS},
    "decision curve": {BLUE: MIN_LINE_PIXELS, ORANGE: MIN_DASHED_PIXELS},
}


@pytest.fixture(scope="module")
def report_file(tmp_path_factory) -> Path:
    config = load_config()
    encounters = simulate_encounters(300, seed=5, config=config).encounters
    trained = train_model(encounters, "adherent", "logistic", config, n_splits=3, n_boot=20)
    manifest = build_manifest(trained, config, encounters, source="simulated")
    report = build_report(
        encounters,
        [ReportModel(trained.model, manifest, trained.metrics)],
        config,
        rank_agreement_boot=20,
    )
    path = tmp_path_factory.mktemp("report") / "report.html"
    path.write_text(report.html, encoding="utf-8")
    return path


def missing_plots(pixels: np.ndarray) -> list[str]:
    """The figures of the first row whose colours are not in their third of the page."""
    thirds = np.array_split(np.arange(pixels.shape[1]), len(FIRST_ROW))
    return [
        name
        for (name, colours), columns in zip(FIRST_ROW.items(), thirds, strict=True)
        if any(
            colour_mask(pixels[:, columns], colour).sum() < minimum
            for colour, minimum in colours.items()
        )
    ]


def test_plots_render_from_the_file_alone(browser, report_file, tmp_path):
    pixels = screenshot(browser, report_file, tmp_path / "report.png")
    assert pixels.shape == (2400, 1280, 3)
    assert missing_plots(pixels) == []


def test_the_check_fails_when_the_images_are_broken(browser, report_file, tmp_path):
    html = report_file.read_text(encoding="utf-8")
    # a PNG signature followed by nothing: every <img> is there, none can be decoded
    broken, n = re.subn(
        r"data:image/png;base64,[A-Za-z0-9+/=]+", "data:image/png;base64,iVBORw0KGgo=", html
    )
    assert n >= 5
    page = tmp_path / "broken.html"
    page.write_text(broken, encoding="utf-8")
    pixels = screenshot(browser, page, tmp_path / "broken.png")
    assert missing_plots(pixels) == ["ROC curve", "calibration curve", "decision curve"]
