"""Training on a patient-level random sample of a large table (engagekit.models._sample).

The draw of :func:`patient_sample_mask` is checked for what a sample must be (whole
patients, reproducible, the same whatever else the frame holds, of the share asked for
within binomial bounds), :func:`sample_for_training` for disjoint patients and sizes near
their targets, :func:`train_model` for the validation outside the sample against
scikit-learn's AUROC of the model's own predictions, and ``engagekit train`` for saying
it sampled and recording the held-out patients' counts as the draw gives them.
"""

from __future__ import annotations

import inspect
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import roc_auc_score

from _cli import assert_no_traceback, run
from engagekit.errors import ArgumentError, ContractError, ResultFormatError
from engagekit.models import (
    SAMPLE_ABOVE,
    SAMPLE_ROWS,
    VALIDATION_ROWS,
    HeldOutSample,
    ModelMetrics,
    TrainingSample,
    TrainingSteps,
    patient_sample_mask,
    sample_for_training,
    train_model,
)

# a draw of n Bernoulli(p) trials lies within this many standard deviations of n p but
# once in about 1.7 million runs
_SIGMAS = 5


def _ids(n: int) -> np.ndarray:
    return np.array([f"P{k:07d}" for k in range(n)], dtype=object)


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    """About 10,700 simulated encounters of 2,000 patients (typed)."""
    from engagekit import simulate_encounters

    return simulate_encounters(2000, seed=5).encounters


# --------------------------------------------------------------------------- the draw
def test_a_patients_rows_are_drawn_together(table):
    mask = patient_sample_mask(table["patient_id"], 0.4, seed=3)
    per_patient = pd.Series(mask).groupby(table["patient_id"].to_numpy()).agg(["min", "max"])
    assert (per_patient["min"] == per_patient["max"]).all()
    # neither all nor none: the draw did choose
    assert 0 < per_patient["min"].sum() < len(per_patient)


def test_the_same_seed_draws_the_same_patients_and_another_seed_others(table):
    ids = table["patient_id"]
    first = patient_sample_mask(ids, 0.3, seed=7)
    assert np.array_equal(first, patient_sample_mask(ids.copy(), 0.3, seed=7))
    assert not np.array_equal(first, patient_sample_mask(ids, 0.3, seed=8))
    assert not np.array_equal(first, patient_sample_mask(ids, 0.3, seed=7, salt="validation"))


def test_the_mask_of_part_of_a_table_is_that_part_of_its_mask(table):
    ids = table["patient_id"].to_numpy()
    whole = patient_sample_mask(ids, 0.25, seed=1)
    # read in chunks of 1,000 rows, a patient's rows split across two chunks
    chunks = np.concatenate(
        [patient_sample_mask(ids[i : i + 1000], 0.25, seed=1) for i in range(0, len(ids), 1000)]
    )
    assert np.array_equal(chunks, whole)
    # rows shuffled, and among other patients' rows
    order = np.random.default_rng(0).permutation(len(ids))
    assert np.array_equal(patient_sample_mask(ids[order], 0.25, seed=1), whole[order])
    others = np.concatenate([ids, _ids(5000)])
    assert np.array_equal(patient_sample_mask(others, 0.25, seed=1)[: len(ids)], whole)


@settings(max_examples=60, deadline=None)
@given(
    ids=st.lists(st.text(min_size=1, max_size=6), min_size=1, max_size=40),
    keep=st.lists(st.booleans(), min_size=40, max_size=40),
    share=st.floats(0, 1),
    seed=st.integers(0, 2**31),
)
def test_a_patients_draw_never_depends_on_the_other_rows(ids, keep, share, seed):
    whole = patient_sample_mask(ids, share, seed)
    part = [i for i, k in zip(ids, keep, strict=False) if k]
    expected = [m for m, k in zip(whole, keep, strict=False) if k]
    assert patient_sample_mask(part, share, seed).tolist() == expected


@pytest.mark.parametrize(
    ("one", "other"),
    [(" P1", "P1"), ("P1\t", "P1"), (17, "17"), (np.int64(17), "17")],
)
def test_ids_are_compared_as_stripped_text(one, other):
    # each seed draws the two alike; were they different patients, 20 seeds would
    # all agree once in a million
    for seed in range(20):
        masks = [
            patient_sample_mask(np.array([i, *_ids(300)], dtype=object), 0.5, seed)
            for i in (one, other)
        ]
        assert masks[0][0] == masks[1][0]


@pytest.mark.parametrize("share", [0.02, 0.3, 0.5, 0.9])
def test_the_share_drawn_is_within_binomial_bounds(share):
    n = 20_000
    drawn = int(patient_sample_mask(_ids(n), share, seed=11).sum())
    assert abs(drawn - n * share) < _SIGMAS * math.sqrt(n * share * (1 - share))


def test_two_salts_draw_independently():
    n, a, b = 20_000, 0.4, 0.5
    first = patient_sample_mask(_ids(n), a, seed=2, salt="sample")
    second = patient_sample_mask(_ids(n), b, seed=2, salt="validation")
    both = int((first & second).sum())
    assert abs(both - n * a * b) < _SIGMAS * math.sqrt(n * a * b * (1 - a * b))


@pytest.mark.parametrize("share", [-0.1, 1.5, float("nan"), "0.5", True, None])
def test_a_share_outside_0_to_1_is_refused(share):
    with pytest.raises(ArgumentError, match="share of patients to draw must be between 0 and 1"):
        patient_sample_mask(_ids(3), share, seed=0)


# --------------------------------------------------------------------------- the split
@pytest.mark.parametrize(
    "sizes",
    [
        {},  # the defaults: 2 million
        {"sample_above": 0, "sample_rows": 100},  # 0: never
        {"sample_above": 1000, "sample_rows": 20_000},  # a sample as large as the table
    ],
)
def test_a_table_not_above_the_size_is_trained_on_whole(table, sizes):
    train, held_out = sample_for_training(table, **sizes)
    assert train is table and held_out is None


def _binomial_rows_sd(sizes: pd.Series, share: float) -> float:
    """Standard deviation of the rows drawn when each patient (``sizes``: rows per
    patient) is drawn with probability ``share``."""
    return math.sqrt(share * (1 - share) * float((sizes.astype(float) ** 2).sum()))


def test_sample_and_validation_are_whole_disjoint_patients_near_their_sizes(table):
    train, held_out = sample_for_training(
        table, sample_above=5000, sample_rows=3000, validation_rows=2500, seed=4
    )
    assert held_out is not None
    outside = held_out.encounters
    rows = table.groupby("patient_id").size()
    # whole patients: each patient's rows all there, as in the table
    for part in (train, outside):
        assert part.groupby("patient_id").size().equals(rows[part["patient_id"].unique()])
    assert not set(train["patient_id"]) & set(outside["patient_id"])
    assert (held_out.n_encounters, held_out.n_patients) == (len(table), len(rows))
    assert (held_out.seed, held_out.sample_above) == (4, 5000)
    share = 3000 / len(table)
    assert abs(len(train) - 3000) < _SIGMAS * _binomial_rows_sd(rows, share)
    not_drawn = rows.drop(train["patient_id"].unique())
    share = 2500 / not_drawn.sum()
    assert abs(len(outside) - 2500) < _SIGMAS * _binomial_rows_sd(not_drawn, share)
    assert held_out.n_validation_encounters == len(outside)
    assert held_out.n_validation_patients == outside["patient_id"].nunique()


def test_every_other_patient_validates_when_they_are_fewer_than_asked(table):
    train, held_out = sample_for_training(table, sample_above=5000, sample_rows=3000)
    assert held_out is not None
    assert len(train) + len(held_out.encounters) == len(table)
    assert set(train["patient_id"]) | set(held_out.encounters["patient_id"]) == set(
        table["patient_id"]
    )


@pytest.mark.parametrize(
    ("sizes", "message"),
    [
        ({"sample_above": -1}, "sample_above must be a whole number 0 or above; found -1"),
        ({"sample_rows": 0}, "sample_rows must be a whole number above 0; found 0"),
        ({"validation_rows": 0}, "validation_rows must be a whole number above 0"),
        ({"sample_rows": 10.5}, "sample_rows must be a whole number above 0; found 10.5"),
    ],
)
def test_a_size_out_of_range_is_refused(table, sizes, message):
    with pytest.raises(ArgumentError, match=message):
        sample_for_training(table, **sizes)


# --------------------------------------------------------------------------- training
def test_held_out_patients_in_the_training_frame_are_refused(table):
    train, held_out = sample_for_training(table, sample_above=5000, sample_rows=3000)
    assert held_out is not None
    overlapping = HeldOutSample(
        encounters=pd.concat([held_out.encounters, train.head(3)]),
        n_encounters=len(table),
        n_patients=table["patient_id"].nunique(),
    )
    with pytest.raises(ArgumentError, match=r"1 patient\(s\) of the held-out encounters are"):
        train_model(train, "adherent", "logistic", n_splits=2, n_boot=0, held_out=overlapping)


def test_held_out_patients_with_no_outcome_recorded_are_refused(table):
    train, held_out = sample_for_training(table, sample_above=5000, sample_rows=3000)
    assert held_out is not None
    unlabelled = held_out.encounters.assign(
        adherent=pd.array([pd.NA] * len(held_out.encounters), dtype="Int8")
    )
    empty = HeldOutSample(unlabelled, held_out.n_encounters, held_out.n_patients)
    with pytest.raises(ContractError, match=r"none of the .* held-out encounters has 'adherent'"):
        train_model(train, "adherent", "logistic", n_splits=2, n_boot=0, held_out=empty)


def test_table_sizes_that_cannot_hold_the_sample_are_refused(table):
    train, held_out = sample_for_training(table, sample_above=5000, sample_rows=3000)
    assert held_out is not None
    too_small = HeldOutSample(held_out.encounters, n_encounters=len(train), n_patients=10**6)
    with pytest.raises(ArgumentError, match=r"table sizes: .* encounters outside a sample"):
        train_model(train, "adherent", "logistic", n_splits=2, n_boot=0, held_out=too_small)


@pytest.fixture(scope="module")
def sampled(table):
    """A logistic model trained on a sample of ``table``, validated outside it."""
    train, held_out = sample_for_training(
        table, sample_above=5000, sample_rows=3000, validation_rows=2500, seed=2
    )
    trained = train_model(
        train, "adherent", "logistic", n_splits=2, n_boot=50, seed=2, held_out=held_out
    )
    return train, held_out, trained


def test_the_model_is_validated_on_the_held_out_patients(sampled):
    train, held_out, trained = sampled
    outside = trained.metrics.outside_sample_validation
    assert outside is not None
    labelled = held_out.encounters["adherent"].notna().to_numpy()
    assert outside.overall.n_encounters == labelled.sum()
    assert outside.overall.n_patients == held_out.encounters.loc[labelled, "patient_id"].nunique()
    assert outside.n_excluded_missing_outcome == (~labelled).sum()
    # the AUROC of the final model's own predictions on those rows, by scikit-learn
    p = trained.model.predict_proba(held_out.encounters)[labelled]
    y = held_out.encounters.loc[labelled, "adherent"].to_numpy(dtype=int)
    assert outside.overall.auroc.value == pytest.approx(roc_auc_score(y, p), abs=1e-9)
    ci = outside.overall.auroc
    assert ci.ci_low < ci.value < ci.ci_high
    # the cross-validated metrics are the sample's alone
    assert trained.metrics.overall.n_encounters == train["adherent"].notna().sum()


def test_the_training_steps_record_the_sample(sampled, table):
    train, held_out, trained = sampled
    assert trained.metrics.training_steps.sample == TrainingSample(
        sample_encounters=len(train),
        sample_patients=train["patient_id"].nunique(),
        table_encounters=len(table),
        table_patients=table["patient_id"].nunique(),
        seed=2,
        validation_encounters=len(held_out.encounters),
        validation_patients=held_out.encounters["patient_id"].nunique(),
        sample_above=5000,
    )


def test_the_outside_validation_and_the_sample_survive_metrics_json(sampled):
    _, _, trained = sampled
    record = json.loads(json.dumps(trained.metrics.to_dict()))
    assert record["outside_sample_validation"]["n_encounters"] == (
        trained.metrics.outside_sample_validation.overall.n_encounters
    )
    assert record["training_steps"]["sample"]["sample_above"] == 5000
    assert ModelMetrics.from_dict(record) == trained.metrics
    broken = {
        **record,
        "outside_sample_validation": {**record["outside_sample_validation"], "auroc": "x"},
    }
    with pytest.raises(ResultFormatError, match=r"'outside_sample_validation\.auroc'"):
        ModelMetrics.from_dict(broken)


def test_training_steps_without_a_sample_are_written_and_read_as_before(sampled):
    _, _, trained = sampled
    steps = trained.metrics.training_steps
    whole = TrainingSteps(steps.final_model, steps.cross_validation_folds, steps.fitness)
    assert "sample" not in whole.to_dict()
    assert TrainingSteps.from_dict(whole.to_dict()).sample is None
    assert TrainingSteps.from_dict(steps.to_dict()) == steps


# --------------------------------------------------------------------------- the command
@pytest.fixture(scope="module")
def service(tmp_path_factory) -> Path:
    """``table.csv``: about 5,900 simulated encounters of 1,100 patients."""
    tmp = tmp_path_factory.mktemp("sampled")
    result = run("simulate", "--patients", 1100, "--seed", 4, "--out", "table.csv", cwd=tmp)
    assert result.returncode == 0, result.stderr
    return tmp


_TRAIN = ("--target", "adherent", "--model", "logistic", "--folds", "2", "--bootstrap", "50")


def test_train_above_the_size_fits_on_a_sample_and_validates_outside_it(service):
    result = run(
        "train", "table.csv", *_TRAIN, "--sample-above", "3000", "--sample-rows", "2000",
        "--out", "sampled", cwd=service,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert_no_traceback(result)
    raw = pd.read_csv(service / "table.csv", dtype={"patient_id": str})
    # the draw as documented: a share of 2,000 over the table's encounters, and every
    # other patient validates (fewer than --validation-rows' 500,000)
    drawn = patient_sample_mask(raw["patient_id"], 2000 / len(raw), seed=0, salt="sample")
    labelled = raw["adherent"].notna().to_numpy()
    metrics = json.loads((service / "sampled" / "metrics.json").read_text())
    outside = metrics["outside_sample_validation"]
    assert outside["n_encounters"] == (labelled & ~drawn).sum()
    assert outside["n_patients"] == raw.loc[labelled & ~drawn, "patient_id"].nunique()
    assert outside["n_excluded_missing_outcome"] == (~labelled & ~drawn).sum()
    assert outside["auroc_ci_low"] <= outside["auroc"] <= outside["auroc_ci_high"]
    assert metrics["n_encounters"] == (labelled & drawn).sum()
    sample = metrics["training_steps"]["sample"]
    assert sample["table_encounters"] == len(raw)
    assert sample["table_patients"] == raw["patient_id"].nunique()
    assert sample["sample_encounters"] == drawn.sum()
    assert sample["sample_patients"] == raw.loc[drawn, "patient_id"].nunique()
    manifest = json.loads((service / "sampled" / "manifest.json").read_text())
    assert manifest["training_data"]["n_rows"] == drawn.sum()
    assert manifest["training_steps"] == metrics["training_steps"]
    screen = " ".join(result.stdout.split())
    assert (
        f"Fitted on a random sample of {sample['sample_patients']:,} of "
        f"{sample['table_patients']:,} patients ({sample['sample_encounters']:,} of "
        f"{sample['table_encounters']:,} encounters; --sample-above 3,000); validated on "
        f"{outside['n_encounters']:,} encounters with adherent recorded of "
        f"{outside['n_patients']:,} patients outside the sample:"
    ) in screen
    assert "validation outside the sample" in screen
    assert "The model was fitted on a random sample of" in screen
    card = (service / "sampled" / "model_card.md").read_text()
    assert "Validation outside the sample:" in card
    assert f"scored the {outside['n_encounters']:,} encounters" in card


def test_train_on_a_table_below_the_default_size_does_not_sample(service):
    result = run("train", "table.csv", *_TRAIN, "--out", "whole", cwd=service)
    assert result.returncode == 0, result.stderr
    raw = pd.read_csv(service / "table.csv")
    metrics = json.loads((service / "whole" / "metrics.json").read_text())
    assert "outside_sample_validation" not in metrics
    assert "sample" not in metrics["training_steps"]
    assert metrics["n_encounters"] == raw["adherent"].notna().sum()
    assert "random sample" not in result.stdout
    assert "outside the sample" not in (service / "whole" / "model_card.md").read_text()


def test_the_command_defaults_are_the_librarys():
    from engagekit.cli.models import train

    parameters = inspect.signature(train).parameters
    assert parameters["sample_above"].default == SAMPLE_ABOVE == 2_000_000
    assert parameters["sample_rows"].default == SAMPLE_ROWS
    assert parameters["validation_rows"].default == VALIDATION_ROWS


def test_a_negative_sample_above_is_a_usage_error(service):
    result = run("train", "table.csv", *_TRAIN, "--sample-above", "-1", "--out", "x", cwd=service)
    assert result.returncode == 2
    assert "--sample-above" in result.stderr
