"""The model commands as a user runs them: ``train``, ``predict`` and ``evaluate``.

One small simulated service is trained once per module (a logistic model, 3 folds, a
few bootstrap replicates, to keep it quick); each test then uses the model directory.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from _cli import assert_no_traceback, run
from _factories import flat_encounter_rows, valid_encounter_rows, with_cell, write_csv
from engagekit.choices import FlagRuleKind
from engagekit.config import load_config
from engagekit.errors import AnalysisError

METRIC_NAMES = ("auroc", "auprc", "brier", "log_loss", "calibration_intercept", "calibration_slope")


@pytest.fixture(scope="module")
def service(tmp_path_factory) -> Path:
    """A directory with ``train.csv`` and ``test.csv`` (other patients) simulated."""
    tmp = tmp_path_factory.mktemp("service")
    for name, patients, seed in (("train", 600, 1), ("test", 300, 2)):
        result = run(
            "simulate", "--patients", patients, "--seed", seed, "--out", f"{name}.csv", cwd=tmp
        )
        assert result.returncode == 0, result.stderr
    return tmp


@pytest.fixture(scope="module")
def trained(service) -> tuple[Path, object]:
    """``(model directory, the finished train command)``."""
    result = run(
        "train",
        "train.csv",
        "--target",
        "adherent",
        "--model",
        "logistic",
        "--folds",
        "3",
        "--bootstrap",
        "30",
        "--out",
        "model",
        cwd=service,
    )
    return service / "model", result


def _copy_model(trained, tmp_path: Path) -> Path:
    model_dir, result = trained
    assert result.returncode == 0, result.stderr
    copy = tmp_path / "model"
    shutil.copytree(model_dir, copy)
    return copy


def test_train_writes_metrics_with_cis_counts_and_groups(trained, service):
    model_dir, result = trained
    assert result.returncode == 0, result.stderr
    assert_no_traceback(result)
    metrics = json.loads((model_dir / "metrics.json").read_text())
    for name in METRIC_NAMES:
        low, value, high = (metrics[f"{name}_ci_low"], metrics[name], metrics[f"{name}_ci_high"])
        assert low <= value <= high, name
    train = pd.read_csv(service / "train.csv")
    recorded = int(train["adherent"].notna().sum())
    assert metrics["n_encounters"] == recorded
    assert metrics["n_patients"] == train.loc[train["adherent"].notna(), "patient_id"].nunique()
    assert metrics["n_excluded_missing_outcome"] == len(train) - recorded
    assert metrics["n_excluded_missing_outcome"] > 0  # the simulator leaves some empty
    assert 0.55 < metrics["auroc"] < 0.85
    # the same metrics for every treatment and subgroup level
    assert {key for key in metrics if key.startswith("by_")} == {
        "by_treatment",
        "by_age_band",
        "by_gender",
    }
    assert set(metrics["by_treatment"]) == set(train["treatment"].unique())
    for block in metrics["by_treatment"].values():
        assert block["auroc_ci_low"] <= block["auroc"] <= block["auroc_ci_high"]
    # the summary on screen reports what was left out and the metric table
    assert f"{metrics['n_excluded_missing_outcome']:,} left out" in result.stdout
    assert "auroc" in result.stdout and "calibration_slope" in result.stdout


def test_manifest_records_what_a_reviewer_needs(trained):
    model_dir, result = trained
    assert result.returncode == 0, result.stderr
    manifest = json.loads((model_dir / "manifest.json").read_text())
    for key in ("target", "features", "config", "training_data_sha256", "metrics"):
        assert manifest[key], key
    assert manifest["target"] == "adherent"
    assert "scikit-learn" in json.dumps(manifest)
    # the at-risk flag rule is chosen on the cross-validated predictions and kept
    rule = manifest["flag_rule"]
    assert rule["rule"] == "top_percent" and rule["value"] == 10
    assert 0 < rule["threshold"] <= 1 and rule["medium_threshold"] <= rule["threshold"]
    assert 10 <= rule["operating_point"]["flags_per_100_encounters"] < 11
    assert "At-risk flags (top_percent:10)" in result.stdout


def test_predict_scores_every_row_including_empty_outcomes(trained, service, tmp_path):
    model_dir = _copy_model(trained, tmp_path)
    result = run("predict", model_dir, service / "test.csv", "--out", "pred.parquet", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert_no_traceback(result)
    test = pd.read_csv(service / "test.csv")
    pred = pd.read_parquet(tmp_path / "pred.parquet")
    assert list(pred.columns) == ["encounter_id", "patient_id", "p_adherent"]
    assert pred["encounter_id"].tolist() == test["encounter_id"].tolist()
    assert pred["p_adherent"].between(0, 1).all()
    assert pred["p_adherent"].notna().all()
    assert test["adherent"].isna().any()  # so rows with an empty outcome were scored


def test_predict_refuses_a_tampered_model(trained, service, tmp_path):
    model_dir = _copy_model(trained, tmp_path)
    with open(model_dir / "model.skops", "ab") as handle:
        handle.write(b"\0")
    result = run("predict", model_dir, service / "test.csv", "--out", "pred.csv", cwd=tmp_path)
    assert result.returncode == 2
    assert_no_traceback(result)
    assert "model.skops' does not match the directory's integrity record" in result.stderr
    assert not (tmp_path / "pred.csv").exists()


def test_predict_on_data_breaking_the_contract_shows_the_report(trained, tmp_path):
    model_dir = _copy_model(trained, tmp_path)
    table = with_cell(valid_encounter_rows(4, 3), 5, "empathy", "9")
    bad = write_csv(table, tmp_path / "bad.csv")
    result = run("predict", model_dir, bad, "--out", "pred.csv", cwd=tmp_path)
    assert result.returncode == 1
    assert_no_traceback(result)
    assert "breaks the data contract" in result.stdout
    assert "empathy" in result.stdout and "must be between 1 and 5" in result.stdout
    assert not (tmp_path / "pred.csv").exists()


def test_evaluate_on_new_patients_writes_the_same_metrics(trained, service, tmp_path):
    model_dir = _copy_model(trained, tmp_path)
    result = run(
        "evaluate",
        model_dir,
        service / "test.csv",
        "--out",
        "ext.json",
        "--bootstrap",
        "30",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert_no_traceback(result)
    metrics = json.loads((tmp_path / "ext.json").read_text())
    trained_metrics = json.loads((model_dir / "metrics.json").read_text())
    for name in METRIC_NAMES:
        assert metrics[f"{name}_ci_low"] <= metrics[name] <= metrics[f"{name}_ci_high"]
    test = pd.read_csv(service / "test.csv")
    assert metrics["n_encounters"] == int(test["adherent"].notna().sum())
    assert metrics["n_excluded_missing_outcome"] == int(test["adherent"].isna().sum())
    assert set(metrics["by_treatment"]) == set(trained_metrics["by_treatment"])
    assert set(metrics["by_gender"]) == set(trained_metrics["by_gender"])
    # new patients from the same simulated service: similar discrimination
    assert abs(metrics["auroc"] - trained_metrics["auroc"]) < 0.08


def test_train_with_a_temporal_split_validates_on_later_encounters(service, tmp_path):
    train = pd.read_csv(service / "train.csv")
    split = pd.to_datetime(train["encounter_date"]).quantile(0.7).date().isoformat()
    result = run(
        "train",
        service / "train.csv",
        "--target",
        "attended_next",
        "--model",
        "logistic",
        "--folds",
        "3",
        "--bootstrap",
        "20",
        "--temporal-split",
        split,
        "--out",
        "m",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert_no_traceback(result)
    metrics = json.loads((tmp_path / "m" / "metrics.json").read_text())
    temporal = metrics["temporal_validation"]
    dates = pd.to_datetime(train["encounter_date"]).dt.date.astype(str)
    before, after = dates < split, dates >= split
    known = train["attended_next"].notna()
    assert metrics["n_encounters"] == int((before & known).sum())
    assert temporal["n_encounters"] == int((after & known).sum())
    assert temporal["split_date"] == split
    assert temporal["auroc_ci_low"] <= temporal["auroc"] <= temporal["auroc_ci_high"]
    assert "temporal validation" in result.stdout


@pytest.mark.parametrize(
    ("split", "code", "message"),
    [
        # a day outside the data is an argument to change, not data breaking the contract
        ("1999-01-01", 2, "choose a day between them"),
        ("not-a-date", 2, "is not a day written YYYY-MM-DD"),
        # a day-first or month-first form is refused, never guessed
        ("05/06/2025", 2, "is not a day written YYYY-MM-DD"),
        ("25/11/2025", 2, "is not a day written YYYY-MM-DD"),
        ("2025-6-5", 2, "is not a day written YYYY-MM-DD"),
        ("2025-02-30", 2, "is not a real day"),
    ],
)
def test_a_temporal_split_not_an_iso_day_in_the_data_is_refused(
    service, tmp_path, split, code, message
):
    result = run(
        "train",
        service / "train.csv",
        "--target",
        "adherent",
        "--temporal-split",
        split,
        "--out",
        "m",
        cwd=tmp_path,
    )
    assert result.returncode == code
    assert_no_traceback(result)
    assert message in " ".join(result.stderr.replace("│", " ").split())
    assert not (tmp_path / "m").exists()


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ("top_percent:150", "at most 100"),
        ("bottom:5", "must be sensitivity, top_percent or per_practitioner"),
        ("sensitivity", "RULE:VALUE"),
    ],
)
def test_a_bad_flag_rule_is_refused_before_training(service, tmp_path, rule, message):
    result = run(
        "train", service / "train.csv", "--target", "adherent", "--flag-rule", rule,
        "--out", "m", cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 2
    assert_no_traceback(result)
    assert message in result.stderr
    assert not (tmp_path / "m").exists()


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        ("sensitivity:0.8", (FlagRuleKind.SENSITIVITY, 0.8)),
        ("top_percent:5", (FlagRuleKind.TOP_PERCENT, 5.0)),
        ("per_practitioner:2", (FlagRuleKind.PER_PRACTITIONER, 2.0)),
    ],
)
def test_each_flag_rule_is_passed_to_training_as_its_choice(
    service, tmp_path, monkeypatch, rule, expected
):
    import engagekit.models as models

    seen = {}

    def train_model(*args, flag_rule, **kwargs):
        seen["flag_rule"] = flag_rule
        raise AnalysisError("stopped once the rule is seen")

    monkeypatch.setattr(models, "train_model", train_model)
    result = run(
        "train", service / "train.csv", "--target", "adherent", "--flag-rule", rule,
        "--out", "m", cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 3, result.stderr
    assert seen["flag_rule"] == expected
    assert type(seen["flag_rule"][0]) is FlagRuleKind


@pytest.mark.parametrize("model", ["svm", "Logistic", "auto,gbm"])
def test_a_model_kind_not_offered_is_refused_naming_every_choice(service, tmp_path, model):
    result = run(
        "train", service / "train.csv", "--target", "adherent", "--model", model,
        "--out", "m", cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 2
    assert_no_traceback(result)
    assert f"'{model}' is not one of 'auto', 'logistic', 'gbm'" in result.stderr
    assert not (tmp_path / "m").exists()


def test_forecast_counts_every_encounter_per_treatment(trained, service, tmp_path):
    model_dir = _copy_model(trained, tmp_path)
    result = run(
        "forecast", model_dir, service / "test.csv", "--by", "treatment", "--every-encounter",
        "--out", "f.csv", cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert_no_traceback(result)
    table = pd.read_csv(tmp_path / "f.csv")
    test = pd.read_csv(service / "test.csv")
    assert table["n_encounters"].sum() == len(test)
    assert set(table["treatment"]) == set(test["treatment"])
    assert (table["interval_low"] <= table["expected"]).all()
    assert (table["expected"] <= table["interval_high"]).all()
    assert (table["bad_outcome"] == "did not keep to the treatment plan").all()
    # the file keeps the codes; the screen shows the config's labels
    labels = {t.name: t.label for t in load_config().treatments}
    for code in set(test["treatment"]):
        assert labels[code] in result.stdout
        assert code not in result.stdout


def test_forecast_names_a_missing_group_column(trained, service, tmp_path):
    model_dir = _copy_model(trained, tmp_path)
    result = run("forecast", model_dir, service / "test.csv", "--by", "ward", cwd=tmp_path)
    assert result.returncode == 2
    assert_no_traceback(result)
    assert "needs the column 'ward', which the table lacks" in " ".join(
        result.stderr.replace("│", " ").split()
    )


# --------------------------------------------------------------------------- fit for use
@pytest.fixture(scope="module")
def unfit(tmp_path_factory) -> tuple[Path, object]:
    """``(a directory with flat.csv and the model unfit, the finished train command)``."""
    tmp = tmp_path_factory.mktemp("unfit")
    write_csv(flat_encounter_rows(), tmp / "flat.csv")
    result = run(
        "train", "flat.csv", "--target", "attended_next", "--model", "logistic",
        "--bootstrap", "20", "--out", "unfit", cwd=tmp,
    )  # fmt: skip
    return tmp, result


def test_train_saves_a_model_no_better_than_chance_marked_unfit(unfit):
    tmp, result = unfit
    assert result.returncode == 0, result.stderr
    assert_no_traceback(result)
    manifest = json.loads((tmp / "unfit" / "manifest.json").read_text())
    metrics = json.loads((tmp / "unfit" / "metrics.json").read_text())
    # every prediction of a fold is its training base rate: the interval cannot lie
    # above chance
    assert metrics["auroc_ci_low"] <= 0.5
    assert manifest["fit_for_use"] is False and metrics["fit_for_use"] is False
    assert manifest["unfit_reason"] == metrics["unfit_reason"]
    assert "AUROC" in manifest["unfit_reason"] and "chance" in manifest["unfit_reason"]
    assert manifest["training_steps"] == metrics["training_steps"]
    # said last and prominently, with what it means
    last = result.stdout.strip().splitlines()
    said = " ".join(" ".join(last[-3:]).split())
    assert said.startswith("NOT FIT FOR USE: " + manifest["unfit_reason"])
    assert "--allow-unfit-model" in said
    card = (tmp / "unfit" / "model_card.md").read_text()
    assert card.split("\n## ")[1].startswith("Not fit for use")


def test_train_says_what_ran_as_metrics_json_records_it(trained):
    from engagekit.models import TrainingSteps
    from engagekit.report import training_steps_sentences

    model_dir, result = trained
    assert result.returncode == 0, result.stderr
    manifest = json.loads((model_dir / "manifest.json").read_text())
    metrics = json.loads((model_dir / "metrics.json").read_text())
    assert manifest["fit_for_use"] is True and manifest["unfit_reason"] is None
    assert metrics["auroc_ci_low"] > 0.5
    steps = metrics["training_steps"]
    assert steps == manifest["training_steps"]
    # about 600 patients with the outcome recorded: 15% of them held out
    final = steps["final_model"]
    assert final["n_patients"] == metrics["n_patients"]
    assert final["held_out_patients"] == round(0.15 * metrics["n_patients"])
    assert final["tuning"] == "tuned"
    assert len(steps["cross_validation_folds"]) == 3
    screen = " ".join(result.stdout.split())
    for sentence in training_steps_sentences(TrainingSteps.from_dict(steps)):
        assert " ".join(sentence.split()) in screen
    assert "Fit for use: its cross-validated AUROC is" in screen
    assert "NOT FIT FOR USE" not in screen
    # the AUPRC of the flagged outcome, beside its chance level
    rate = 1 - metrics["prevalence"]
    assert f"auprc (flagged outcome) │ {metrics['auprc_flagged']:.3f} │" in screen
    assert (
        "auprc is for patients who did not keep to the treatment plan; a model no better "
        f"than chance scores their rate, {rate:.3f}"
    ) in screen
    # capacity rules are a share of what is scored, not the validation's risk cut
    assert "each score run flags high the 10% of encounters at highest risk" in screen


# each command that uses a model: (its options, the files it writes)
_USES = {
    "score": ((), ("scores.csv", "scores.sqlite")),
    "forecast": (("--every-encounter",), ("forecast.csv",)),
    "predict": ((), ("predictions.csv",)),
}


@pytest.mark.parametrize("command", list(_USES))
def test_an_unfit_model_is_refused(unfit, tmp_path, command):
    tmp, trained_result = unfit
    assert trained_result.returncode == 0, trained_result.stderr
    options, outputs = _USES[command]
    result = run(
        command, tmp / "unfit", tmp / "flat.csv", *options, "--out", outputs[0], cwd=tmp_path
    )
    assert result.returncode == 2
    assert_no_traceback(result)
    message = " ".join(result.stderr.split())
    assert f"the model {str(tmp / 'unfit')!r} is marked unfit for use: its cross-validated" in (
        message
    )
    assert "--allow-unfit-model" in message
    assert not any((tmp_path / name).exists() for name in outputs)


@pytest.mark.parametrize("command", list(_USES))
def test_an_unfit_model_is_used_when_allowed_with_a_warning(unfit, tmp_path, command):
    tmp, _ = unfit
    options, outputs = _USES[command]
    result = run(
        command, tmp / "unfit", tmp / "flat.csv", *options, "--out", outputs[0],
        "--allow-unfit-model", cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert_no_traceback(result)
    assert "warning: using a model marked unfit for use (its cross-validated AUROC" in " ".join(
        result.stderr.split()
    )
    assert (tmp_path / outputs[0]).exists()
