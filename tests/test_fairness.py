"""Fair calibration: the subgroups whose calibration interval excludes perfect calibration
are named, in the metrics, the model card and the report."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit, logit

from engagekit.evaluation import evaluate_predictions, expected_by_chance, miscalibrated_groups
from engagekit.report._tables import fair_calibration_sentences
from test_model_card import card_of, make_record


def _metrics(n_per_group: int = 6000, seed: int = 3):
    """Three sites: ``a`` calibrated, ``b`` attending more than predicted (calibration in
    the large above 0), ``c`` whose predictions are too extreme (slope below 1)."""
    rng = np.random.default_rng(seed)
    site = np.repeat(["a", "b", "c"], n_per_group)
    p = rng.uniform(0.15, 0.85, site.size)
    truth = p.copy()
    truth[site == "b"] = expit(logit(p[site == "b"]) + 0.6)
    truth[site == "c"] = expit(0.5 * logit(p[site == "c"]))
    y = (rng.uniform(size=site.size) < truth).astype(int)
    patients = np.arange(site.size) // 3
    return evaluate_predictions(y, p, patients, by=pd.DataFrame({"site": site}), n_boot=300)


def test_the_miscalibrated_sites_are_named_by_what_is_off_and_the_calibrated_one_is_not():
    metrics = _metrics()
    named = {(m.level, m.measure) for m in miscalibrated_groups(metrics)}
    assert ("b", "calibration_intercept") in named
    assert ("c", "calibration_slope") in named
    assert not any(level == "a" for level, _ in named)
    b = next(m for m in miscalibrated_groups(metrics) if m.level == "b")
    assert b.ci_low > 0 and "more frequent than predicted" in b.sentence()
    c = next(m for m in miscalibrated_groups(metrics) if m.measure == "calibration_slope")
    assert c.ci_high < 1 and "too extreme" in c.sentence()
    # 3 sites x 2 measures checked: 0.3 expected by chance
    assert expected_by_chance(metrics) == pytest.approx(6 * 0.05)
    sentences = fair_calibration_sentences(metrics)
    assert sentences[-1].startswith("with 6 intervals checked, about 0.3")


def test_without_intervals_nothing_is_named():
    metrics = evaluate_predictions(
        np.array([0, 1] * 100), np.full(200, 0.5), np.arange(200),
        by=pd.DataFrame({"site": ["a"] * 200}), n_boot=0,
    )  # fmt: skip
    assert miscalibrated_groups(metrics) == ()
    assert fair_calibration_sentences(metrics) == ()


def test_the_model_card_names_the_miscalibrated_subgroups_by_label():
    """The record's online CBT slope is 1.11 (1.09 to 1.13) and female 0.90 (0.88 to
    0.92): both named, under Performance by subgroup and in the limitations."""
    manifest, metrics = make_record()
    card = " ".join(card_of(manifest, metrics).split())
    subgroup = card.split("Performance by subgroup")[1].split("At-risk flags")[0]
    limitations = card.split("## Limitations")[1]
    for text in (subgroup, limitations):
        assert "treatment Online CBT: calibration slope 1.11 (95% CI 1.09 to 1.13)" in text
        assert "gender female: calibration slope 0.90 (95% CI 0.88 to 0.92)" in text
        assert "cbt_online" not in text
    assert "about 0.1 would exclude perfect calibration by chance" in subgroup


def test_a_calibrated_record_names_no_subgroup():
    manifest, metrics = make_record()
    metrics["by_treatment"]["cbt_online"]["calibration_slope_ci_high"] = 1.2
    metrics["by_treatment"]["cbt_online"]["calibration_slope_ci_low"] = 0.95
    metrics["by_gender"]["female"]["calibration_slope_ci_high"] = 1.02
    card = " ".join(card_of(manifest, metrics).split())
    assert "every subgroup's 95% intervals include perfect calibration" in card
    assert "Calibration is off in some subgroups" not in card
