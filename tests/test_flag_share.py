"""Flags keep their promise: a model trained to flag "the top 10%" flags about 10% of the
encounters it scores, at every service size and however its recalibration came out.

A capacity rule is a share of the encounters being scored (``engagekit.flags``): its
thresholds are set on their risks by :func:`engagekit.flags.flag_thresholds`. Before,
the thresholds chosen on the cross-validated predictions were applied unchanged, and a
200-patient demo flagged 23% of its encounters; the end-to-end tests below train as
``engagekit train`` does and score as ``engagekit score`` does.
"""

from __future__ import annotations

import functools
import json
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from threadpoolctl import threadpool_limits

from engagekit import load_config, simulate_encounters
from engagekit.flags import (
    AppliedFlagRule,
    FlagRule,
    choose_flag_rule,
    flag_levels,
    flag_thresholds,
)
from engagekit.io._scores import write_scores
from engagekit.models import ModelManifest, build_manifest, train_model
from engagekit.scoring import score_encounters

CONFIG = load_config()
SERVICE_SIZES = (200, 300, 1_000, 3_000)
SEEDS = (1, 2, 3)


# --------------------------------------------------------------------------- end to end
@pytest.fixture(autouse=True)
def one_blas_thread():
    """The logistic fits are small matrix products: on a shared machine, BLAS threads
    make them several times slower (measured 11 s against 1.6 s for 3,000 patients),
    and the results do not depend on the thread count."""
    with threadpool_limits(1, user_api="blas"):
        yield


@functools.cache
def _trained_service(n_patients: int, seed: int):
    """``(encounters, manifest, model)``: a simulated service and a logistic model of
    attended_next trained on it as ``engagekit train`` trains (its default rule, "the
    top 10%"), with the manifest's flag rule as saved (through JSON)."""
    encounters = simulate_encounters(n_patients, seed=seed, config=CONFIG).encounters
    trained = train_model(
        encounters, "attended_next", "logistic", CONFIG, n_splits=2, n_boot=0, seed=seed
    )
    manifest = build_manifest(trained, CONFIG, encounters, source="simulated")
    record = manifest.model_copy(update={"model_sha256": f"{seed:064d}"}).to_dict()
    return encounters, ModelManifest.from_dict(json.loads(json.dumps(record))), trained.model


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("n_patients", SERVICE_SIZES)
def test_a_top_10_percent_rule_flags_about_10_percent_at_every_service_size(
    tmp_path, n_patients, seed
):
    encounters, manifest, model = _trained_service(n_patients, seed)
    rule = manifest.flag_rule
    assert (rule.rule, rule.value) == ("top_percent", 10)
    flags = score_encounters(model, encounters, CONFIG, rule)["flag"]
    high = float((flags == "high").mean())
    high_or_medium = float((flags != "low").mean())
    print(f"{n_patients} patients, seed {seed}: {len(flags)} encounters, {high:.2%} high")
    assert 0.05 <= high <= 0.20
    # the medium flag is the same rule with twice the capacity
    assert 0.15 <= high_or_medium <= 0.25 and high_or_medium > high


def test_chunked_scoring_flags_exactly_as_scoring_the_table_at_once(tmp_path):
    encounters, manifest, model = _trained_service(1_000, 1)
    whole = write_scores(model, manifest, encounters, CONFIG, tmp_path / "whole.parquet")
    chunked = write_scores(
        model, manifest, encounters, CONFIG, tmp_path / "chunked.parquet", chunk_rows=400
    )
    assert (whole.n_chunks, chunked.n_chunks > 10) == (1, True)
    # each run promises the top 10% and says what it measured
    for run in (whole, chunked):
        assert run.flag_rule.promised_high_share == 0.1
        assert run.flag_rule.promised_high_or_medium_share == 0.2
        assert 0.1 <= run.high_share < 0.1 + 3 / run.n_rows
    one = pd.read_parquet(tmp_path / "whole.parquet")
    many = pd.read_parquet(tmp_path / "chunked.parquet")
    assert one["encounter_id"].tolist() == many["encounter_id"].tolist()
    assert one["flag"].tolist() == many["flag"].tolist()
    assert one["reasons"].tolist() == many["reasons"].tolist()
    assert whole.n_flagged == chunked.n_flagged
    # the thresholds come from risks computed chunk by chunk in one run and at once in
    # the other: the same up to the last bits of a double
    assert chunked.flag_rule.threshold == pytest.approx(whole.flag_rule.threshold, rel=1e-12)
    np.testing.assert_allclose(many["risk"], one["risk"], rtol=1e-12, atol=0)


# --------------------------------------------------------------------------- thresholds
def _rule(name: str, value: float, practitioners=None) -> FlagRule:
    """A rule chosen on validation risks spread over [0, 0.5]."""
    risk = np.linspace(0.0, 0.5, 200)
    y = (np.arange(200) % 3 != 0).astype(int)
    return choose_flag_rule(y, 1.0 - risk, name, value, practitioners)


def _counts(risk, applied: AppliedFlagRule) -> tuple[int, int]:
    levels = flag_levels(risk, applied)
    return int(np.sum(levels == "high")), int(np.sum(levels != "low"))


@pytest.mark.parametrize(
    ("risk", "percent", "expected"),
    [
        # 10 distinct risks: the top 10% is 1 encounter, high or medium 2
        (np.linspace(0.05, 0.95, 10), 10, (1, 2)),
        # 15% of 10 is 1.5 encounters: at least that many, so 2 (and 3 for medium)
        (np.linspace(0.05, 0.95, 10), 15, (2, 3)),
        # risks tied at the cut are all flagged: 3 at 0.8 for the 2nd place
        ([0.9, 0.8, 0.8, 0.8, 0.5, 0.4, 0.3, 0.2, 0.1, 0.0], 20, (4, 4)),
        ([0.9, 0.8, 0.8, 0.8, 0.5, 0.4, 0.3, 0.2, 0.1, 0.0], 10, (1, 4)),
        # every encounter tied: all flagged
        ([0.3] * 8, 10, (8, 8)),
        # 60%: medium would be 120%, capped at every encounter
        (np.linspace(0.05, 0.95, 10), 60, (6, 10)),
    ],
)
def test_top_percent_flags_its_share_of_the_scored_encounters(risk, percent, expected):
    applied = flag_thresholds(_rule("top_percent", percent), risk)
    assert _counts(risk, applied) == expected
    assert (applied.set_on, applied.n_encounters) == ("scored", len(risk))
    assert applied.promised_high_share == percent / 100


def test_the_share_does_not_depend_on_the_risks_seen_at_training():
    """The rule was chosen where risks were at most 0.5; a service whose risks are all
    above it (a model whose recalibration came out steep) still gets its 10%."""
    rule = _rule("top_percent", 10)
    risk = np.random.default_rng(5).uniform(0.6, 1.0, 1_000)
    assert np.all(flag_levels(risk, rule) == "high")  # the frozen threshold: 100%
    assert _counts(risk, flag_thresholds(rule, risk)) == (100, 200)


def test_per_practitioner_counts_the_practitioners_being_scored():
    validation = np.repeat(["a", "b", "c", "d"], 50)
    rule = _rule("per_practitioner", 2, validation)
    risk = np.linspace(0.01, 0.99, 30)
    practitioners = np.repeat(["x", "y", "z"], 10)  # 3 practitioners, none seen before
    applied = flag_thresholds(rule, risk, practitioners)
    assert _counts(risk, applied) == (6, 12)
    assert applied.n_practitioners == 3
    assert applied.promised_high_share == pytest.approx(6 / 30)
    assert applied.promise == "2 per practitioner, 20.0% of these encounters"


def test_per_practitioner_asking_more_than_the_encounters_flags_them_all():
    rule = _rule("per_practitioner", 5, np.repeat(["a", "b"], 100))
    risk = [0.2, 0.1, 0.4]
    applied = flag_thresholds(rule, risk, ["a", "a", "a"])
    assert _counts(risk, applied) == (3, 3)
    assert (applied.threshold, applied.promised_high_share) == (0.0, 1.0)


@pytest.mark.parametrize("risk", [np.linspace(0.6, 0.99, 50), np.array([])])
def test_sensitivity_keeps_the_thresholds_chosen_on_validation(risk):
    rule = _rule("sensitivity", 0.8)
    applied = flag_thresholds(rule, risk)
    assert (applied.threshold, applied.medium_threshold) == (rule.threshold, rule.medium_threshold)
    assert applied.set_on == "validation"
    assert applied.promised_high_share == rule.operating_point.flags_per_100_encounters / 100
    assert flag_levels(risk, applied).tolist() == flag_levels(risk, rule).tolist()
    assert applied.promise.startswith("to catch 80% of the bad outcomes; it flagged ")


@pytest.mark.parametrize(
    ("risk", "practitioners", "message"),
    [
        ([0.1, np.nan], ["a", "b"], r"risk must be in \[0, 1\]"),
        ([0.1, 1.2], ["a", "b"], r"risk must be in \[0, 1\]"),
        ([0.1, 0.2], None, r"give the practitioner of each \(practitioner_id\)"),
        ([0.1, 0.2], ["a"], "practitioners has 1 values but y has 2"),
        ([0.1, 0.2], ["a", None], "practitioners has 1 missing value"),
    ],
)
def test_flag_thresholds_refuse_bad_input(risk, practitioners, message):
    rule = _rule("per_practitioner", 2, np.repeat(["a", "b"], 100))
    with pytest.raises(ValueError, match=message):
        flag_thresholds(rule, risk, practitioners)


def test_an_applied_rule_reads_back_from_its_dict_and_refuses_another_version():
    applied = flag_thresholds(_rule("top_percent", 10), np.linspace(0.0, 1.0, 50))
    assert AppliedFlagRule.from_dict(json.loads(json.dumps(applied.to_dict()))) == applied
    with pytest.raises(ValueError, match="applied flag rule format_version 9"):
        AppliedFlagRule.from_dict({**applied.to_dict(), "format_version": 9})
    with pytest.raises(ValueError, match="an applied flag rule must be a mapping"):
        AppliedFlagRule.from_dict([1])


@settings(max_examples=100, deadline=None)
@given(
    # risks a few bits apart at least (two risks one bit apart are a tie to rounding)
    risk=st.lists(st.integers(0, 10_000), min_size=1, max_size=60),
    percent=st.floats(1.0, 50.0),
)
def test_a_risk_recomputed_to_the_last_bit_keeps_its_flag(risk, percent):
    """Chunks of a table compute a risk again, and it can differ in the last bit of a
    double: the thresholds lie between risks, not on one."""
    risk = np.asarray(risk) / 10_000
    applied = flag_thresholds(_rule("top_percent", percent), risk)
    levels = flag_levels(risk, applied)
    for nudged in (np.nextafter(risk, 0.0), np.nextafter(risk, 1.0)):
        assert flag_levels(nudged, applied).tolist() == levels.tolist()
    # and the count is that of the rule: at least its share, more only through ties
    count = math.ceil(percent / 100 * len(risk) - 1e-9)
    ranked = np.sort(risk)[::-1]
    assert int(np.sum(levels == "high")) == int(np.sum(risk >= ranked[count - 1]))
