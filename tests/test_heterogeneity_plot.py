"""Tests of the forest plot of a heterogeneity result."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from matplotlib.container import ErrorbarContainer
from matplotlib.image import imread

from engagekit.heterogeneity._plot import forest_plot

TREATMENTS = ("counselling", "cbt_face_to_face", "behavioural_activation")
MARGIN = math.log(1.25)

# (attribute, label, verdict, p_adjusted, common_log_odds, odds ratios in TREATMENTS order)
ATTRIBUTES = [
    ("active_listening", "Active listening", "differs", 0.003, 0.25, (1.9, 1.05, 1.4)),
    ("warmth", "Warmth", "equivalent", 0.61, 0.18, (1.2, 1.18, 1.22)),
    ("goal_setting", None, "inconclusive", 0.2, 0.1, (0.9, 1.3, 1.1)),
]


@pytest.fixture
def make_result() -> Callable[..., dict[str, Any]]:
    """Factory of heterogeneity result dicts with known odds ratios and intervals.

    ``make_result(n_attributes=3, **method)`` takes the first attributes of
    ``ATTRIBUTES``; every treatment has the interval ``[OR / 1.3, OR * 1.3]``.
    """

    def make(n_attributes: int = 3, **method: Any) -> dict[str, Any]:
        attributes = []
        for name, label, verdict, p_adjusted, common, odds_ratios in ATTRIBUTES[:n_attributes]:
            attributes.append(
                {
                    "attribute": name,
                    "label": label,
                    "p_value": p_adjusted / 3,
                    "p_adjusted": p_adjusted,
                    "verdict": verdict,
                    "sentence": f"{name}: {verdict}.",
                    "common_log_odds": common,
                    "by_treatment": [
                        {
                            "treatment": treatment,
                            "log_odds": math.log(odds_ratio),
                            "odds_ratio": odds_ratio,
                            "ci_low": odds_ratio / 1.3,
                            "ci_high": odds_ratio * 1.3,
                            "n_encounters": 900 + i,
                        }
                        for i, (treatment, odds_ratio) in enumerate(
                            zip(TREATMENTS, odds_ratios, strict=True)
                        )
                    ],
                }
            )
        return {
            "target": "adherent",
            "n_encounters": 5400,
            "n_patients": 1000,
            "method": {
                "margin": MARGIN,
                "working_correlation": "independence",
                "cov_type": "bias_reduced",
                "adjustment": "holm",
                **method,
            },
            "attributes": attributes,
        }

    return make


def _errorbars(ax) -> list[ErrorbarContainer]:
    return [c for c in ax.containers if isinstance(c, ErrorbarContainer)]


def _band_extent(ax) -> tuple[float, float]:
    (band,) = ax.patches
    extents = band.get_path().get_extents(band.get_patch_transform())
    return extents.x0, extents.x1


@pytest.mark.parametrize("n_attributes", [1, 2, 3])
def test_one_log_scale_panel_per_attribute_on_a_shared_axis(make_result, n_attributes):
    fig = forest_plot(make_result(n_attributes))

    assert len(fig.axes) == n_attributes
    assert all(ax.get_xscale() == "log" for ax in fig.axes)
    first = fig.axes[0]
    assert all(first.get_shared_x_axes().joined(first, ax) for ax in fig.axes[1:])
    assert fig.get_suptitle() == "Odds ratio per rating point, by treatment — adherent"


def test_the_title_names_the_outcome_by_its_label_and_a_worse_score_says_so(make_result):
    result = make_result(2)
    result["target_label"] = "Keeping to the plan"
    result["attributes"][0]["higher_is_better"] = False
    result["attributes"][1]["higher_is_better"] = True
    fig = forest_plot(result)

    assert fig.get_suptitle() == "Odds ratio per rating point, by treatment — Keeping to the plan"
    assert fig.axes[0].get_title(loc="left") == (
        "Active listening (higher is worse) — differs (Holm p = 0.003)"
    )
    assert fig.axes[1].get_title(loc="left") == "Warmth — equivalent (Holm p = 0.610)"


def test_each_panel_has_one_point_and_interval_per_treatment_in_the_given_order(make_result):
    result = make_result()
    fig = forest_plot(result)

    for ax, attribute in zip(fig.axes, result["attributes"], strict=True):
        bars = _errorbars(ax)
        assert len(bars) == len(TREATMENTS)
        rows = attribute["by_treatment"]
        for position, (bar, row) in enumerate(zip(bars, rows, strict=True)):
            data_line, _, (interval,) = bar.lines
            assert data_line.get_xdata()[0] == pytest.approx(row["odds_ratio"])
            assert data_line.get_ydata()[0] == position
            (segment,) = interval.get_segments()
            assert segment[:, 0] == pytest.approx([row["ci_low"], row["ci_high"]])
        labels = [tick.get_text() for tick in ax.get_yticklabels()]
        assert [label.split(" (n =")[0] for label in labels] == list(TREATMENTS)
        # the first treatment is drawn on top
        bottom, top = ax.get_ylim()
        assert top < 0 < len(TREATMENTS) - 1 < bottom


@pytest.mark.parametrize(
    ("index", "expected_title"),
    [
        (0, "Active listening — differs (Holm p < 0.001)"),
        (1, "Warmth — equivalent (Holm p = 0.610)"),
        (2, "goal_setting — inconclusive (Holm p = 0.200)"),
    ],
)
def test_panel_titles_give_label_verdict_and_adjusted_p(make_result, index, expected_title):
    result = make_result()
    result["attributes"][0]["p_adjusted"] = 0.0004
    fig = forest_plot(result)

    assert fig.axes[index].get_title(loc="left") == expected_title


@pytest.mark.parametrize(
    ("adjustment", "expected_name"),
    [("holm", "Holm p"), ("fdr_bh", "BH q"), (None, "adjusted p")],
)
def test_titles_name_the_multiplicity_adjustment(make_result, adjustment, expected_name):
    fig = forest_plot(make_result(1, adjustment=adjustment))

    assert f"({expected_name} = 0.003)" in fig.axes[0].get_title(loc="left")


def test_points_are_coloured_by_verdict(make_result):
    fig = forest_plot(make_result())

    colours = [_errorbars(ax)[0].lines[0].get_color() for ax in fig.axes]
    assert len(set(colours)) == len(ATTRIBUTES)
    for ax in fig.axes:
        assert len({bar.lines[0].get_color() for bar in _errorbars(ax)}) == 1


def test_equivalence_band_spans_the_margin_around_the_pooled_effect(make_result):
    result = make_result()
    fig = forest_plot(result)

    for ax, attribute in zip(fig.axes, result["attributes"], strict=True):
        common = attribute["common_log_odds"]
        low, high = _band_extent(ax)
        assert low == pytest.approx(math.exp(common - MARGIN))
        assert high == pytest.approx(math.exp(common + MARGIN))


def test_margin_argument_overrides_the_result_margin(make_result):
    fig = forest_plot(make_result(1), margin=0.5)

    assert _band_extent(fig.axes[0]) == pytest.approx((math.exp(0.25 - 0.5), math.exp(0.75)))


def test_no_band_without_pooled_effect_or_margin(make_result):
    result = make_result(2)
    del result["attributes"][0]["common_log_odds"]
    assert [len(ax.patches) for ax in forest_plot(result).axes] == [0, 1]

    del result["method"]["margin"]
    assert [len(ax.patches) for ax in forest_plot(result).axes] == [0, 0]


def test_axis_holds_every_interval_and_the_line_at_one(make_result):
    result = make_result()
    fig = forest_plot(result)

    low, high = fig.axes[0].get_xlim()
    rows = [row for attribute in result["attributes"] for row in attribute["by_treatment"]]
    assert low < min(row["ci_low"] for row in rows)
    assert high > max(row["ci_high"] for row in rows)
    assert low < 1 < high


@pytest.mark.parametrize("missing", [None, math.nan])
def test_missing_interval_draws_the_point_alone(make_result, missing):
    result = make_result(1)
    row = result["attributes"][0]["by_treatment"][1]
    row["ci_low"] = row["ci_high"] = missing
    fig = forest_plot(result)

    bars = _errorbars(fig.axes[0])
    assert len(bars) == len(TREATMENTS)
    assert [bar.has_xerr for bar in bars] == [True, False, True]
    assert bars[1].lines[0].get_xdata()[0] == pytest.approx(row["odds_ratio"])
    labels = [tick.get_text() for tick in fig.axes[0].get_yticklabels()]
    assert "CI not estimable" in labels[1]
    assert "CI not estimable" not in labels[0] + labels[2]


def test_treatments_are_shown_by_their_label_where_the_result_has_one(make_result):
    result = make_result(1)
    rows = result["attributes"][0]["by_treatment"]
    rows[0]["treatment_label"] = "Face-to-face CBT"
    labels = [tick.get_text() for tick in forest_plot(result).axes[0].get_yticklabels()]
    assert labels[0].startswith("Face-to-face CBT")
    assert labels[1].startswith(rows[1]["treatment"])


def test_odds_ratio_is_taken_from_log_odds_when_absent(make_result):
    result = make_result(1)
    row = result["attributes"][0]["by_treatment"][0]
    expected = row.pop("odds_ratio")

    fig = forest_plot(result)

    assert _errorbars(fig.axes[0])[0].lines[0].get_xdata()[0] == pytest.approx(expected)


def test_png_is_written_at_150_dpi_with_the_figure_aspect(make_result, tmp_path):
    path = tmp_path / "forest.png"
    fig = forest_plot(make_result(), path)

    data = path.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    assert len(data) > 5_000
    width, height = fig.get_size_inches()
    pixels = imread(path)
    # matplotlib truncates fractional pixels
    assert pixels.shape[:2] == (int(height * 150), int(width * 150))
    # three panels of three treatments stack into a figure taller than half its width
    assert pixels.shape[0] / pixels.shape[1] > 0.5


@pytest.mark.parametrize(("name", "magic"), [("forest.svg", b"<?xml"), ("forest.PDF", b"%PDF")])
def test_other_formats_are_chosen_by_extension(make_result, tmp_path, name, magic):
    path = tmp_path / name
    forest_plot(make_result(), str(path))

    assert path.read_bytes().startswith(magic)


def test_a_save_that_fails_halfway_leaves_the_previous_plot(make_result, tmp_path, monkeypatch):
    from matplotlib.figure import Figure

    from engagekit.errors import OutputError

    path = tmp_path / "forest.png"
    path.write_bytes(b"the previous complete plot")

    def fail_halfway(self, fname, **kwargs):
        Path(fname).write_bytes(b"\x89PNG\r\n\x1a\n half a plot")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Figure, "savefig", fail_halfway)
    with pytest.raises(OutputError, match="No space left on device"):
        forest_plot(make_result(), path)
    assert path.read_bytes() == b"the previous complete plot"
    assert [p.name for p in tmp_path.iterdir()] == ["forest.png"]  # no temporary file


@pytest.mark.parametrize(
    ("name", "named"),
    [("forest.jpg", "'.jpg'"), ("forest.png.bak", "'.bak'"), ("forest", "no extension")],
)
def test_unknown_extension_is_refused_by_name(make_result, tmp_path, name, named):
    with pytest.raises(ValueError, match=f"cannot save a forest plot as .*{named}"):
        forest_plot(make_result(), tmp_path / name)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"attributes": []}, "result has no 'attributes'"),
        ({"method": {"margin": -0.1}}, "margin must be a positive number"),
    ],
)
def test_unusable_input_is_refused(make_result, change, message):
    result = make_result() | change
    with pytest.raises(ValueError, match=message):
        forest_plot(result)


def test_drawing_needs_no_pyplot():
    # pyplot keeps global figure state; the plot must be drawable without importing it
    code = (
        "import sys\n"
        "from engagekit.heterogeneity._plot import forest_plot\n"
        "forest_plot({'target': 't', 'attributes': [{'attribute': 'a', 'by_treatment': [\n"
        "    {'treatment': 'x', 'odds_ratio': 1.5, 'ci_low': 1.1, 'ci_high': 2.0}]}]})\n"
        "assert 'matplotlib.pyplot' not in sys.modules\n"
    )
    completed = subprocess.run(
        [sys.executable, "-W", "error", "-c", code],
        capture_output=True,
        text=True,
        env=os.environ,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
