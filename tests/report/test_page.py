"""The rendered page: self-contained, its numbers those of ``metrics.json``, every section
there, and no placeholder left; one report is rendered for them all."""

from __future__ import annotations

import base64
import html
import io
import re

import pytest
from matplotlib import image

TARGETS = ("adherent", "attended_next")
METRICS = (
    "auroc",
    "auprc_flagged",
    "brier",
    "log_loss",
    "calibration_intercept",
    "calibration_slope",
)
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
DATA_URI = re.compile(r"data:image/png;base64,([A-Za-z0-9+/=]+)")
METRIC_CELL = re.compile(
    r'<td data-target="(\w+)" data-metric="(\w+)" data-value="([^"]*)">([^<]*)</td>'
)


def metric_cells(page: str) -> dict[tuple[str, str], tuple[str, str]]:
    """``(target, metric) -> (data-value, shown text)`` of the first table holding it."""
    cells: dict[tuple[str, str], tuple[str, str]] = {}
    for target, metric, value, text in METRIC_CELL.findall(page):
        cells.setdefault((target, metric), (value, text))
    return cells


def prose(page: str) -> str:
    """The words a reader sees: no markup, no images, no ``<code>`` (codes are shown as
    codes there on purpose)."""
    page = re.sub(r"<(style|code)\b.*?</\1>|<img[^>]*>", " ", page, flags=re.S)
    return html.unescape(re.sub(r"<[^>]+>", " ", page))


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("metric", METRICS)
def test_metrics_in_the_page_are_those_of_metrics_json(built, written, target, metric):
    _, metrics = written[target]
    value, text = metric_cells(built.html)[(target, metric)]
    assert float(value) == metrics[metric]
    assert text == f"{metrics[metric]:.3f}"


def test_the_page_is_self_contained(built):
    page = built.html
    assert "http://" not in page and "https://" not in page
    for attribute, value in re.findall(r'\b(src|href)="([^"]*)"', page):
        assert not value.startswith("//"), (attribute, value)
        if attribute == "href":
            assert value.startswith("#"), value
    for tag in ("<script", "<link", "<iframe", "@import", "url("):
        assert tag not in page.lower(), tag


def test_every_image_is_an_inline_png(built):
    sources = re.findall(r'<img src="([^"]*)"', built.html)
    # ROC, calibration and decision curves, SHAP summary and importance per model, and a
    # forest plot per analysis
    assert len(sources) == 5 * len(TARGETS) + len(built.heterogeneity)
    for source in sources:
        match = DATA_URI.fullmatch(source)
        assert match, source[:60]
        png = base64.b64decode(match.group(1), validate=True)
        assert png.startswith(PNG_SIGNATURE)
        pixels = image.imread(io.BytesIO(png), format="png")
        assert pixels.shape[0] > 200 and pixels.shape[1] > 200


def test_every_section_and_model_card_is_in_the_page(built):
    headings = re.findall(r"<h2>(.*?)</h2>", built.html)
    assert headings == [
        "1. Data",
        "2. Model performance",
        "3. Cross-treatment analysis",
        "4. Explanations",
        "5. At-risk flags",
        "6. Forecast",
        "7. Model cards",
        "8. How this report was made",
    ]
    for target in TARGETS:
        for section in ("performance", "cross", "explanations", "flags", "forecast", "card"):
            assert f'id="{section}-{target}"' in built.html, (section, target)
    cards = built.html[built.html.index('id="model-cards"') :]
    assert "Model card: Adherence (<code>adherent</code>), penalised logistic regression" in cards
    assert "Model card: Re-attendance (<code>attended_next</code>), gradient-boosted trees" in cards
    assert "it never decides care" in cards
    assert set(built.model_cards) == set(TARGETS)


@pytest.mark.parametrize(
    "placeholder",
    [
        re.compile(r"\bnan\b", re.IGNORECASE),  # NaN, nan
        re.compile(r"\binf(inity)?\b", re.IGNORECASE),
        re.compile(r"\bNone\b"),  # Python's, not the word "none"
        re.compile(r"\bTODO\b|\bXXX\b"),
        re.compile(r"\{\{|\{%|%\}|\}\}"),  # template syntax left unrendered
    ],
    ids=["nan", "inf", "None", "TODO", "template"],
)
def test_no_placeholder_text(built, placeholder):
    page = html.unescape(DATA_URI.sub("data:image/png;base64,", built.html))
    for text in (page, *built.model_cards.values()):
        found = placeholder.search(text)
        assert found is None, text[max(found.start() - 80, 0) : found.end() + 80]


def test_the_prose_names_treatments_by_their_labels_not_codes(built, loaded):
    config = loaded[2]
    page = prose(built.html)
    for treatment in config.treatments:
        assert treatment.name not in page, treatment.name
        assert treatment.label in page, treatment.label
