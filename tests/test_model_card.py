"""The model card: TRIPOD+AI headings, and every number taken from the manifest and metrics.

The records are written here by hand with distinctive numbers, in the JSON form of
``manifest.json`` and ``metrics.json``, and read as the types that write those files
(:class:`~engagekit.models.ModelManifest`, :class:`~engagekit.models.ModelMetrics`), so
that each expected string is written from the input, not from the code under test.
"""

from __future__ import annotations

import copy
import re

import pytest

from engagekit.config import load_config
from engagekit.errors import ConfigError, ResultFormatError
from engagekit.evaluation import ESTIMATE_NAMES
from engagekit.models import ModelManifest, ModelMetrics
from engagekit.report import model_card

HEADINGS = (
    "Intended use",
    "Data",
    "Predictors",
    "Outcome",
    "Missing data",
    "Model and tuning",
    "Validation",
    "Performance by subgroup",
    "At-risk flags",
    "Limitations",
    "Versions",
)


def card_of(manifest: dict, metrics: dict) -> str:
    """The card of the records in their JSON form, read as the files are read."""
    return model_card(ModelManifest.from_dict(manifest), ModelMetrics.from_dict(metrics))


def metric_block(**values: float) -> dict:
    """A metrics block: each value with a CI 0.02 below and above it, from 400
    replicates; the metrics not given undefined."""
    block = {}
    for name in ESTIMATE_NAMES:
        value = values.get(name)
        low, high = (None, None) if value is None else (value - 0.02, value + 0.02)
        n_boot = 0 if value is None else 400
        block |= {name: value, f"{name}_ci_low": low, f"{name}_ci_high": high}
        block[f"{name}_n_boot"] = n_boot
    return block


def skipped_block(n_encounters: int, n_patients: int, why: str) -> dict:
    return metric_block() | {
        "n_encounters": n_encounters,
        "n_patients": n_patients,
        "note": f"metrics not computed: {why}",
    }


def settings_and_curves() -> dict:
    """What a metrics file holds besides the metrics (not shown on a card)."""
    return {
        "n_boot": 400,
        "ci_level": 0.95,
        "seed": 7,
        "calibration_curve": [],
        "roc_curve": None,
        "decision_curve": [],
        "decision_curve_flagged_outcome": 0,
    }


def operating_point(sensitivity: float, ppv: float, per_100: float) -> dict:
    return {
        "sensitivity": sensitivity,
        "specificity": 0.9436,
        "ppv": ppv,
        "flags_per_100_encounters": per_100,
        "flags_per_100_patients": 43.418,
        "flags_per_practitioner": 12.4327,
        "n_encounters": 12345,
        "n_bad_outcomes": 4623,
        "n_flagged": 1293,
        "n_patients": 2345,
        "n_practitioners": 104,
    }


def fit_record(kind: str = "logistic", status: str = "corrected", held_out: int = 351) -> dict:
    """A fit record as ``FitRecord.to_dict`` writes it, with distinctive numbers."""
    recalibration = {
        "status": status,
        "n": 1817 if held_out else 0,
        "n_events": 612 if status != "too_few_events" else 41,
        "min_events": 100,
        "applied": status == "corrected",
        "intercept": 0.1234 if status == "corrected" else 0.0,
        "slope": 0.8765 if status == "corrected" else 1.0,
        "raw_intercept": 0.1456 if status != "too_few_events" else None,
        "raw_slope": 0.8543 if status != "too_few_events" else None,
        "shrinkage": 0.8475 if status == "corrected" else None,
        "p_value": {"corrected": 0.00042, "not_needed": 0.3456, "not_confirmed": 0.0021}.get(
            status
        ),
    }
    if status == "not_confirmed":
        recalibration.update(
            test="cluster-robust Wald", out_of_fold_p_value=0.9334, out_of_fold_n=35819
        )
    return {
        "format_version": 1,
        "kind": kind,
        "n_patients": 2345,
        "n_encounters": 12345,
        "held_out_patients": held_out,
        "held_out_encounters": 1817 if held_out else 0,
        "held_out_share": 0.15,
        "min_held_out_patients": 30,
        "held_out": bool(held_out),
        "tuning": ("tuned" if held_out else "default") if kind == "logistic" else "fixed",
        "early_stopping": (
            "not_applicable" if kind == "logistic" else ("used" if held_out else "not_used")
        ),
        "boosting_iterations": 0 if kind == "logistic" else (137 if held_out else 100),
        "max_boosting_iterations": 0 if kind == "logistic" else (500 if held_out else 100),
        "refit_on_all_patients": kind == "logistic" and bool(held_out),
        "recalibration": recalibration,
    }


def make_record() -> tuple[dict, dict]:
    """``(manifest, metrics)`` of an adherence model, as engagekit train writes them."""
    metrics = metric_block(
        auroc=0.7123,
        auprc=0.8234,
        auprc_flagged=0.5346,
        brier=0.1987,
        log_loss=0.5876,
        calibration_intercept=-0.0112,
        calibration_slope=0.9856,
        prevalence=0.6432,
    )
    metrics |= {
        "n_encounters": 12345,
        "n_patients": 2345,
        "note": None,
        **settings_and_curves(),
        "by_treatment": {
            "cbt_online": metric_block(
                auroc=0.6789, calibration_slope=1.1111, brier=0.2222, prevalence=0.579
            )
            | {"n_encounters": 2131, "n_patients": 435, "note": None},
            "usual_care": skipped_block(40, 9, "only 40 encounters (fewer than 50)"),
        },
        "by_gender": {
            "female": metric_block(auroc=0.6543, calibration_slope=0.9, brier=0.21, prevalence=0.64)
            | {"n_encounters": 8256, "n_patients": 1907, "note": None},
        },
        "cv_folds": 5,
        "n_excluded_missing_outcome": 678,
        "target": "adherent",
        "model": "logistic",
        "selection": {
            "requested": "auto",
            "cv_log_loss": {"logistic": 0.58761, "gbm": 0.59012},
            "chosen": "logistic",
        },
    }
    features = [f"{a}{s}" for a in ("empathy", "support") for s in ("", "__missing", "__mean")]
    features += ["n_missing_ratings", "session_number", "log_session", "treatment=cbt_online"]
    features += ["age_band=18-29", "age_band=60+", "empathy:treatment=usual_care"]
    manifest = {
        "format_version": 2,
        "created": "2026-01-02T03:04:05+00:00",
        "versions": {"engagekit": "0.1.0", "scikit-learn": "1.9.1", "numpy": "2.4.6"},
        "target": "adherent",
        "kind": "logistic",
        "features": features,
        "config": load_config().model_dump(mode="json"),
        "training_data_sha256": "ab" * 32,
        "training_data": {
            "source": "service_export.csv",
            "n_rows": 15000,
            "first_encounter_date": "2025-01-06",
            "last_encounter_date": "2026-02-10",
        },
        "estimator": {"class": "LogisticRegression", "params": {"C": 0.003, "max_iter": 2000}},
        "n_encounters": 12345,
        "n_patients": 2345,
        "tuning": {
            "C": 0.003,
            "interaction_weight": 0.3,
            "chosen_by": "lowest log loss on the held-out training patients",
            "tuning_rows": 9876,
            "held_out_rows": 1817,
        },
        "recalibration": {"applied": True, "intercept": 0.1234, "slope": 0.8765},
        "fit_for_use": True,
        "unfit_reason": None,
        "training_steps": {
            "format_version": 1,
            "final_model": fit_record(),
            "cross_validation_folds": [fit_record(status="not_needed")] * 4
            + [fit_record(status="too_few_events")],
            "fitness": {
                "format_version": 1,
                "fit_for_use": True,
                "reason": "its cross-validated AUROC is 0.71 (95% CI 0.69 to 0.73), above "
                "0.5 (chance)",
                "rule": "the rule in words",
            },
        },
        "flag_rule": {
            "format_version": 1,
            "rule": "top_percent",
            "value": 10.0,
            "threshold": 0.5731,
            "medium_threshold": 0.4934,
            "target": "adherent",
            "operating_point": operating_point(0.1782, 0.6373, 10.0),
            "medium_operating_point": operating_point(0.3294, 0.5889, 20.0),
        },
        "metrics": {"auroc": 0.7123, "n_patients": 2345},
        "model_file": "model.skops",
        "model_sha256": "cd" * 32,
    }
    # what metrics.json and the manifest both hold
    for key in ("fit_for_use", "unfit_reason", "training_steps", "flag_rule"):
        metrics[key] = copy.deepcopy(manifest[key])
    return manifest, metrics


@pytest.fixture
def record() -> tuple[dict, dict]:
    return make_record()


def test_tripod_headings_in_order(record):
    card = card_of(*record)
    assert card.splitlines()[0] == (
        "# Model card: Adherence (`adherent`), penalised logistic regression"
    )
    found = [line[3:] for line in card.splitlines() if line.startswith("## ")]
    assert found == list(HEADINGS)


@pytest.mark.parametrize(
    "row",
    [
        "| AUROC | 0.712 | 0.692 to 0.732 |",
        # the AUPRC of the flagged outcome, named in the config's words, with its chance
        # level (1 - the outcome rate 0.6432), not the AUPRC of adherence itself
        "| AUPRC (did not keep to the treatment plan; chance level 35.7%) | 0.535 | 0.515 to "
        "0.555 |",
        "| Brier score | 0.199 | 0.179 to 0.219 |",
        "| Log loss | 0.588 | 0.568 to 0.608 |",
        "| Calibration intercept | -0.011 | -0.031 to 0.009 |",
        "| Calibration slope | 0.986 | 0.966 to 1.006 |",
        "| Outcome rate (share with the outcome = 1) | 0.643 | 0.623 to 0.663 |",
    ],
)
def test_validation_table_holds_the_metrics_with_their_cis(record, row):
    assert row in card_of(*record)


@pytest.mark.parametrize(
    "text",
    [
        # intended use: a conversation, never a decision
        "it never decides care",
        # data, from the manifest and the metrics
        "Source: `service_export.csv`.",
        "Period: encounters dated 2025-01-06 to 2026-02-10.",
        "2,345 patients and 12,345 encounters with the outcome recorded",
        "678 further encounters had no outcome recorded",
        "Outcome rate (outcome = 1): 64.3% of encounters (95% CI 62.3% to 66.3%).",
        f"`{'ab' * 32}`",
        # predictors: the six qualities, the feature count, the interaction terms
        "Empathy and positive regard (`empathy`): the practitioner tunes in",
        "Encouraging self-kindness (`self_kindness`)",
        "The model sees 13 features per encounter",
        "Covariate `age_band`: one indicator per level (`18-29`, `60+`).",
        "1 attribute × treatment terms",
        # outcome, from the config's description
        "`adherent` (Adherence) is 1 when the patient kept to the agreed treatment plan "
        "until the next encounter, and 0 when the patient did not keep to the treatment plan.",
        # missing data, as the features handle it
        "A missing rating is replaced by the mean of that quality's recorded ratings",
        "(the middle of the scale, 3, if none was recorded)",
        # model and tuning
        "penalty C = 0.003, prior weight of the interaction terms = 0.3",
        "candidates fitted on 9,876 encounters, compared on 1,817 held out",
        "cross-validated log loss: logistic 0.5876, gbm 0.5901; chosen: `logistic`",
        "log-odds = 0.123 + 0.876 × the model's margin",
        "the fitted 0.146 + 0.854 × margin, shrunk toward no change by the factor 0.848",
        "351 of the 2,345 training patients (1,817 encounters) were held out",
        "The penalty was tuned on the held-out patients.",
        "refitted on every training patient, held-out ones included",
        "All 5 folds held out training patients: the penalty was tuned in all 5 folds, "
        "calibration was checked in 4 of the 5 folds and corrected in none of the folds.",
        "Fitness for use: fit for use: its cross-validated AUROC is 0.71 (95% CI 0.69 to "
        "0.73), above 0.5 (chance). The rule: the rule in words.",
        # validation
        "Patient-grouped 5-fold cross-validation",
        "from 400 patient-bootstrap replicates",
        # flags
        "Flag the 10% of encounters at highest risk (risk: the probability that the "
        "patient did not keep to the treatment plan)",
        "flagged high at a risk of 0.573 or more, medium at 0.493 or more",
        "| high | 0.18 | 0.94 | 0.64 | 10.0 | 43.4 | 12.4 |",
        "| high or medium | 0.33 | 0.94 | 0.59 | 20.0 | 43.4 | 12.4 |",
        "On 12,345 cross-validated encounters of 2,345 patients, 4,623 followed by the bad "
        "outcome; 1,293 flagged high.",
        "flagged encounters per 100 distinct patients over the whole validation period",
        # versions
        "| scikit-learn | 1.9.1 |",
        "Created: 2026-01-02T03:04:05+00:00.",
        f"SHA-256 of `model.skops`: `{'cd' * 32}`.",
    ],
)
def test_card_states_what_the_records_hold(record, text):
    assert text in card_of(*record)


def test_subgroup_tables_use_labels_and_give_the_reason_for_a_dash(record):
    card = card_of(*record)
    assert "*By treatment*" in card and "*By gender*" in card
    assert (
        "| Online CBT | 435 | 2,131 | 57.9% | 0.679 (0.659 to 0.699) | 1.111 (1.091 to 1.131) | "
        "0.222 (0.202 to 0.242) |  |"
    ) in card
    assert (
        "| Usual GP care | 9 | 40 | – | – | – | – | metrics not computed: only 40 encounters "
        "(fewer than 50) |"
    ) in card
    assert "No performance could be measured in: treatment usual\\_care" in card


def _change(record, path: str, value):
    manifest, metrics = copy.deepcopy(record)
    which, *keys = path.split(".")
    target = manifest if which == "manifest" else metrics
    for key in keys[:-1]:
        target = target[key]
    if value is _DELETE:
        del target[keys[-1]]
    else:
        target[keys[-1]] = value
    return manifest, metrics


_DELETE = object()


@pytest.mark.parametrize(
    ("path", "value", "present", "absent"),
    [
        ("manifest.training_data.simulated", True, "It was trained on simulated data", None),
        ("manifest.training_data.source", "x.csv", "Source: `x.csv`", "simulated data"),
        ("metrics.n_patients", 300, "Only 300 patients: dropout models", None),
        ("metrics.n_patients", 2345, None, "Only 2,345 patients"),
        (
            "metrics.calibration_slope_ci_high",
            0.98,
            "slope's 95% CI (0.966 to 0.980) excludes its ideal value 1",
            None,
        ),
        ("metrics.calibration_intercept_ci_high", -0.02, "excludes its ideal value 0", None),
        ("metrics.calibration_slope_ci_low", 0.9, None, "excludes its ideal value"),
        ("manifest.training_data.source", _DELETE, "Source: not recorded in the manifest.", None),
        (
            "manifest.training_data.first_encounter_date",
            _DELETE,
            "Period: not recorded in the manifest.",
            "2026-02-10",
        ),
        (
            "manifest.training_steps.final_model",
            fit_record(status="not_needed"),
            "checked on 1,817 held-out encounters and needed no correction (likelihood-ratio "
            "test p = 0.346)",
            "log-odds = 0.123",
        ),
        (
            "manifest.training_steps.final_model",
            fit_record(status="not_confirmed"),
            "Calibration was checked on 1,817 held-out encounters, which found it off "
            "(cluster-robust Wald test by patient p = 0.0021: fitted 0.146 + 0.854 × "
            "margin), but the 35,819 out-of-fold encounters of the cross-validation "
            "(p = 0.933) did not confirm it, so no correction was applied.",
            "log-odds = 0.123",
        ),
        (
            "manifest.training_steps.final_model",
            fit_record(status="too_few_events"),
            "Calibration was not checked: the 1,817 held-out encounters held 41 of the rarer "
            "outcome, fewer than the 100 of each outcome needed to judge it",
            "Calibration was checked",
        ),
        (
            "manifest.training_steps.final_model",
            fit_record(status="no_held_out", held_out=0),
            "No training patients were held out: 15% of 2,345 patients",
            "Calibration was checked",
        ),
        (
            "manifest.training_steps.final_model",
            fit_record(kind="gbm"),
            "The trees stopped early on the held-out patients, at 137 of at most 500 iterations.",
            "No early stopping",
        ),
        (
            "manifest.training_steps.final_model",
            fit_record(kind="gbm", status="no_held_out", held_out=0),
            "No early stopping: the trees used a fixed 100 iterations.",
            "stopped early",
        ),
        (
            "manifest.training_steps.final_model",
            fit_record(status="no_held_out", held_out=0),
            "The penalty was not tuned: its default was used.",
            "refitted",
        ),
        ("manifest.tuning", {}, "Tuning: no hyperparameter was tuned", "penalty C"),
        ("metrics.note", "auroc: the reason", "Note: auroc: the reason.", None),
        (
            "manifest.estimator",
            {"class": "LogisticRegression", "params": {"C": 0.003, "max_iter": 2000}},
            "Estimator `LogisticRegression`: `C` = 0.003, `max_iter` = 2000.",
            None,
        ),
    ],
)
def test_statements_follow_the_records(record, path, value, present, absent):
    card = card_of(*_change(record, path, value))
    if present is not None:
        assert present in card
    if absent is not None:
        assert absent not in card


def test_temporal_validation_is_reported_when_present(record):
    manifest, metrics = record
    metrics["temporal_validation"] = metric_block(auroc=0.6543) | {
        "n_encounters": 3210,
        "n_patients": 987,
        "note": None,
        **settings_and_curves(),
        "split_date": "2025-10-01",
        "n_training_encounters": 9135,
        "n_excluded_missing_outcome": 120,
        "patients_also_in_training": 654,
    }
    card = card_of(manifest, metrics)
    assert "Validation is internal: cross-validation and a temporal split" in card
    assert (
        "before 2025-10-01 scored the 3,210 encounters from that day on (987 patients, "
        "654 of them also seen in training)"
    ) in card
    assert "| AUROC | 0.654 | 0.634 to 0.674 |" in card
    assert "no temporal or external validation" not in card


def test_tables_are_well_formed_markdown(record):
    manifest, metrics = record
    # a level with a pipe must not break its table
    metrics["by_gender"]["a|b"] = metrics["by_gender"].pop("female")
    card = card_of(manifest, metrics)
    tables = re.findall(r"(?:^\|.*\|\n)+", card, flags=re.MULTILINE)
    assert len(tables) >= 6
    for table in tables:
        widths = {len(re.findall(r"(?<!\\)\|", line)) for line in table.splitlines()}
        assert len(widths) == 1, table
    assert "| a\\|b |" in card


@pytest.mark.parametrize(
    ("path", "value", "error", "message"),
    [
        ("metrics.target", "attended_next", ValueError, "the metrics are for 'attended_next'"),
        # a manifest without them is not one: it is refused as it is read
        ("manifest.target", _DELETE, ResultFormatError, "'target': field required"),
        ("manifest.config", _DELETE, ResultFormatError, "'config': field required"),
        ("manifest.config", {"attributes": {"items": []}}, ConfigError, "attributes"),
    ],
)
def test_refusals(record, path, value, error, message):
    with pytest.raises(error, match=re.escape(message)):
        card_of(*_change(record, path, value))


def test_predictors_name_treatments_by_label_and_say_which_way_a_score_runs(record):
    manifest, metrics = copy.deepcopy(record)
    items = manifest["config"]["attributes"]["items"]
    items[0] |= {"name": "bdi", "label": "BDI", "description": "depression severity"}
    items[0]["higher_is_better"] = False
    manifest["config"]["treatments"][4]["label"] = "Health-visitor listening"
    card = card_of(manifest, metrics)
    assert "- BDI (`bdi`): depression severity; a higher score is worse." in card
    assert f"- {items[1]['label']} (`{items[1]['name']}`): {items[1]['description']}." in card
    assert "Health-visitor listening `treatment=listening_visits`" in card
    assert "Online CBT `treatment=cbt_online`" in card


# --------------------------------------------------------------------------- what ran
# Every sentence of a card about a fitting step must be one of these, and true of the
# manifest's record of what ran. ``f``: the final model's fit record; ``m``: the manifest.
def _final(m):
    return m["training_steps"]["final_model"]


def _folds(m):
    return m["training_steps"]["cross_validation_folds"]


def _recalibration(m):
    return _final(m)["recalibration"]


_NUMBER = r"([\d,]+)"


def _n(text: str) -> int:
    return int(text.replace(",", ""))


CLAIMS = {
    # the model and its tuning
    r"^Tuning: .*, chosen by default \(fewer than (\d+) patients to hold out for tuning\)\.$": (
        lambda m, g: (
            _final(m)["tuning"] == "default" and _n(g[0]) == _final(m)["min_held_out_patients"]
        )
    ),
    r"^Tuning: .*, chosen by lowest log loss on the held-out training patients "
    rf"\(candidates fitted on {_NUMBER} encounters, compared on {_NUMBER} held out\)\.$": (
        lambda m, g: _final(m)["tuning"] == "tuned" and _n(g[1]) == _final(m)["held_out_encounters"]
    ),
    r"^Tuning: no hyperparameter was tuned; the kind's fixed settings were used\.$": (
        lambda m, g: _final(m)["tuning"] == "fixed"
    ),
    # the estimator's own settings, from scikit-learn, must agree with the record
    r"`early_stopping` = (True|False),.*`n_iter_` = (\d+)\.$": (
        lambda m, g: (
            (g[0] == "True") == (_final(m)["early_stopping"] == "used")
            and int(g[1]) == _final(m)["boosting_iterations"]
        )
    ),
    # the held-out patients
    rf"^No training patients were held out: 15% of {_NUMBER} patients is fewer than the "
    r"(\d+) a held-out set needs\.$": (
        lambda m, g: (
            _final(m)["held_out_patients"] == 0
            and _n(g[0]) == _final(m)["n_patients"]
            and _n(g[1]) == _final(m)["min_held_out_patients"]
        )
    ),
    rf"^{_NUMBER} of the {_NUMBER} training patients \({_NUMBER} encounters\) were held out "
    r"while the model was fitted on the others\.$": (
        lambda m, g: (
            _n(g[0]) == _final(m)["held_out_patients"] > 0
            and _n(g[2]) == _final(m)["held_out_encounters"]
        )
    ),
    r"^The penalty was tuned on the held-out patients\.$": (
        lambda m, g: _final(m)["tuning"] == "tuned"
    ),
    r"^The penalty was not tuned: its default was used\.$": (
        lambda m, g: _final(m)["tuning"] == "default" and m["tuning"]["C"] == 0.003
    ),
    r"^The trees stopped early on the held-out patients, at (\d+) of at most (\d+) "
    r"iterations\.$": (
        lambda m, g: (
            _final(m)["early_stopping"] == "used"
            and int(g[0]) == _final(m)["boosting_iterations"] < int(g[1])
        )
    ),
    r"^No early stopping: the trees used a fixed (\d+) iterations\.$": (
        lambda m, g: (
            _final(m)["early_stopping"] == "not_used"
            and int(g[0])
            == _final(m)["boosting_iterations"]
            == m["estimator"]["params"]["max_iter"]
        )
    ),
    # calibration
    r"^Calibration was not checked \(no held-out patients\), and not corrected\.$": (
        lambda m, g: (
            _recalibration(m)["status"] == "no_held_out"
            and (m["recalibration"]["intercept"], m["recalibration"]["slope"]) == (0.0, 1.0)
        )
    ),
    rf"^Calibration was not checked: the {_NUMBER} held-out encounters held {_NUMBER} of the "
    r"rarer outcome, fewer than the (\d+) of each outcome needed to judge it; no correction "
    r"was applied\.$": (
        lambda m, g: (
            _recalibration(m)["status"] == "too_few_events"
            and _n(g[1]) < int(g[2])
            and not m["recalibration"]["applied"]
        )
    ),
    rf"^Calibration was checked on {_NUMBER} held-out encounters and needed no correction": (
        lambda m, g: _recalibration(m)["status"] == "not_needed"
    ),
    rf"^Calibration was checked on {_NUMBER} held-out encounters and corrected": (
        lambda m, g: _recalibration(m)["status"] == "corrected" and m["recalibration"]["applied"]
    ),
    rf"^Calibration was checked on {_NUMBER} held-out encounters, which found it off \(.*\), "
    rf"but the {_NUMBER} out-of-fold encounters of the cross-validation \(p = [^)]*\) did "
    r"not confirm it, so no correction was applied\.$": (
        lambda m, g: (
            _recalibration(m)["status"] == "not_confirmed"
            and _n(g[1]) == _recalibration(m)["out_of_fold_n"]
            and not m["recalibration"]["applied"]
        )
    ),
    r"^The logistic model was then refitted on every training patient": (
        lambda m, g: _final(m)["refit_on_all_patients"]
    ),
    r"^The logistic model kept its fit on the patients not held out\.$": (
        lambda m, g: _final(m)["held_out"] and not _final(m)["refit_on_all_patients"]
    ),
    # inside cross-validation
    r"^No fold held out training patients \(too few patients\), so inside cross-validation "
    r"the (penalty was not tuned|trees did not stop early) and calibration was not checked\.$": (
        lambda m, g: (
            not any(f["held_out"] for f in _folds(m))
            and not any(f["recalibration"]["checked"] for f in _folds(m))
            and all(f["tuning"] != "tuned" and f["early_stopping"] != "used" for f in _folds(m))
        )
    ),
    r"^(All \d+|\d+ of the \d+) folds held out training patients": (
        lambda m, g: any(f["held_out"] for f in _folds(m))
    ),
    # fitness for use
    r"^This model is not fit for use: (.*)\.$": (
        lambda m, g: m["fit_for_use"] is False and g[0] == m["unfit_reason"]
    ),
    r"^It was saved marked `fit_for_use: false`": lambda m, g: m["fit_for_use"] is False,
    r"^Fitness for use: not fit for use \(see the first section\): (.*)\.$": (
        lambda m, g: m["fit_for_use"] is False and g[0] == m["unfit_reason"]
    ),
    r"^Fitness for use: fit for use: (.*)\.$": (
        lambda m, g: m["fit_for_use"] is True and g[0] == m["training_steps"]["fitness"]["reason"]
    ),
    r"^The rule: (.*)\.$": lambda m, g: g[0] == m["training_steps"]["fitness"]["rule"],
}

# what makes a sentence a statement about a fitting step or the verdict
STEP_WORDS = re.compile(
    r"held[- ]out|\bheld out\b|\bearly\b|early_stopping|\btun(?:ed|ing)\b|\bcalibrat(?:ed|ion "
    r"was)|recalibrat|refit|fit for use|fit_for_use",
    flags=re.IGNORECASE,
)


def card_sentences(card: str) -> list[str]:
    """The card's sentences, Markdown escapes undone, bullets and table rows apart."""
    sentences = []
    for line in card.splitlines():
        if line.startswith(("#", "|")) or not line.strip():
            continue
        line = re.sub(r"\\([\\*_\[\]<>#|])", r"\1", line.removeprefix("- "))
        sentences += re.split(r"(?<=\.)\s+(?=[A-Z])", line)
    return sentences


@pytest.fixture(scope="module")
def hundred_patients(tmp_path_factory):
    """A simulated service of 100 patients (too few to hold any out), and a table no
    model can rank better than chance."""
    from _cli import run
    from _factories import flat_encounter_rows, write_csv

    tmp = tmp_path_factory.mktemp("hundred")
    result = run("simulate", "--patients", "100", "--seed", "4", "--out", "enc.csv", cwd=tmp)
    assert result.returncode == 0, result.stderr
    write_csv(flat_encounter_rows(), tmp / "flat.csv")
    return tmp


@pytest.mark.parametrize(
    ("data", "target", "kind"),
    [
        ("enc.csv", "attended_next", "logistic"),
        ("enc.csv", "adherent", "gbm"),
        ("flat.csv", "attended_next", "logistic"),
    ],
)
def test_every_statement_about_what_ran_is_what_the_manifest_records(
    hundred_patients, data, target, kind
):
    import json

    from _cli import assert_no_traceback, run

    out = f"{target}-{kind}-{data}"
    result = run(
        "train", data, "--target", target, "--model", kind, "--bootstrap", "100",
        "--out", out, cwd=hundred_patients,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert_no_traceback(result)
    manifest = json.loads((hundred_patients / out / "manifest.json").read_text())
    card = (hundred_patients / out / "model_card.md").read_text()
    final = _final(manifest)
    # too few patients to hold any out: none of those steps may be claimed
    assert not final["held_out"] and not any(f["held_out"] for f in _folds(manifest))
    claims = [s for s in card_sentences(card) if STEP_WORDS.search(s)]
    matched = []
    for sentence in claims:
        found = [p for p in CLAIMS if re.search(p, sentence)]
        assert len(found) == 1, f"no single known claim for: {sentence!r} ({found})"
        groups = re.search(found[0], sentence).groups()
        assert CLAIMS[found[0]](manifest, groups), f"untrue of the manifest: {sentence!r}"
        matched.append(found[0])
    # each step is stated once, and the verdict leads an unfit model's card
    for start in ("^No training patients", "^Calibration was", "^No fold held out"):
        assert sum(p.startswith(start) for p in matched) == 1, start
    assert ("not fit for use" in card) is (manifest["fit_for_use"] is False)
    assert ("## Not fit for use" in card) is (manifest["fit_for_use"] is False)
    if manifest["fit_for_use"] is False:
        assert card.split("\n## ")[1].startswith("Not fit for use")
    assert "early stopping on held-out" not in card.lower()
    assert "Calibration was checked" not in card
