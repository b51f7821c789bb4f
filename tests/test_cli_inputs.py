"""Inputs as people have them: separators, encodings, configs and absent columns, the
same for every command that reads data; and help that reads well.

Every command that reads data takes ``--config``, ``--encoding`` and ``--sep``; the
separator is detected when it is not given. A covariate the config names but the table
lacks is left out with a note by every command; a rating column the config names but the
table lacks stops the commands that need every rating, after ``validate`` said so in its
summary line.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest

from _cli import assert_no_traceback, run
from engagekit import simulate_encounters
from engagekit.cli import app

#: every command that reads an encounter table, with the arguments before DATA
DATA_COMMANDS = {
    "validate": (),
    "train": (),
    "heterogeneity": (),
    "report": (),
    "evaluate": ("MODEL",),
    "predict": ("MODEL",),
    "score": ("MODEL",),
    "forecast": ("MODEL",),
}


def _help(*command: str) -> str:
    result = run(*command, "--help", cwd=Path.cwd())
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.fixture(scope="module")
def service(tmp_path_factory) -> Path:
    """A folder with a simulated export in four shapes, and a model trained on it.

    ``comma.csv`` as engagekit writes it; ``semicolon.csv`` a spreadsheet's export
    (``;``-separated, decimal points kept); ``latin1.csv`` ``;``-separated in Latin-1
    with a non-ASCII practitioner id; ``no_age.csv`` without the ``age_band`` column.
    """
    folder = tmp_path_factory.mktemp("inputs")
    encounters = simulate_encounters(150, seed=11).encounters
    encounters.to_csv(folder / "comma.csv", index=False)
    encounters.to_csv(folder / "semicolon.csv", index=False, sep=";")
    accented = encounters.assign(
        practitioner_id=encounters["practitioner_id"].astype(str) + "-Ren\u00e9e"
    )
    accented.to_csv(folder / "latin1.csv", index=False, sep=";", encoding="latin-1")
    encounters.drop(columns=["age_band"]).to_csv(folder / "no_age.csv", index=False)
    trained = run(
        "train", "comma.csv", "--target", "adherent", "--model", "logistic", "--folds", "2",
        "--bootstrap", "0", "--out", "model", cwd=folder,
    )  # fmt: skip
    assert trained.returncode == 0, trained.stderr
    return folder


# --------------------------------------------------------------------------- options
@pytest.mark.parametrize("command", sorted(DATA_COMMANDS))
def test_every_command_that_reads_data_takes_config_encoding_and_sep(command):
    text = _help(command)
    for option in ("--config", "--encoding", "--sep", "--table", "--query"):
        assert option in text, f"{command} lacks {option}"


def test_help_reads_as_a_user_expects():
    top = _help()
    listed = re.findall(r"^│ (\w+) ", top, flags=re.MULTILINE)
    assert listed[:4] == ["validate", "train", "evaluate", "score"]
    assert listed[-2:] == ["simulate", "demo"]
    for command in ("", *DATA_COMMANDS, "simulate", "power", "demo"):
        text = _help(*([command] if command else []))
        assert "<bool>" not in text, command
        usage = next(line for line in text.splitlines() if "Usage:" in line)
        assert "{" not in usage and "}" not in usage, usage
    assert "Usage: engagekit score [OPTIONS] MODEL_DIR DATA" in _help("score")


def test_the_app_lists_every_command_in_the_workflow():
    from engagekit.cli._app import WORKFLOW

    registered = {command.name or command.callback.__name__ for command in app.registered_commands}
    groups = {group.name for group in app.registered_groups}  # users, audit
    assert registered | groups == set(WORKFLOW)


# --------------------------------------------------------------------------- separators
def test_a_semicolon_export_is_read_without_being_told(service):
    result = run("validate", "semicolon.csv", cwd=service)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Valid:" in result.stdout


def test_a_latin1_semicolon_export_needs_only_its_encoding(service):
    unread = run("validate", "latin1.csv", cwd=service)
    assert unread.returncode == 2
    assert_no_traceback(unread)
    assert "not utf-8 text" in unread.stderr and "--encoding" in unread.stderr
    read = run("validate", "latin1.csv", "--encoding", "latin-1", cwd=service)
    assert read.returncode == 0, read.stdout + read.stderr


def test_train_takes_encoding_and_sep(service, tmp_path):
    result = run(
        "train", service / "latin1.csv", "--encoding", "latin-1", "--sep", ";",
        "--target", "adherent", "--model", "logistic", "--folds", "2", "--bootstrap", "0",
        "--out", "m", cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert (tmp_path / "m" / "manifest.json").is_file()


@pytest.mark.parametrize("command", ["score", "forecast", "predict"])
def test_model_commands_read_a_semicolon_export(service, tmp_path, command):
    out = tmp_path / ("scores.csv" if command != "forecast" else "forecast.csv")
    result = run(command, service / "model", service / "semicolon.csv", "--out", out, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert out.is_file()


def test_a_wrong_separator_is_named_as_the_cause(service):
    result = run("validate", "semicolon.csv", "--sep", ",", cwd=service)
    assert result.returncode == 2
    assert_no_traceback(result)
    message = " ".join(result.stderr.split())
    assert "read as one column" in message and "--sep ';'" in message


@pytest.mark.parametrize(
    ("sep", "message"),
    [(";;", "is not one character"), ('"', "is not one character")],
)
def test_a_bad_separator_is_refused(service, sep, message):
    result = run("validate", "comma.csv", "--sep", sep, cwd=service)
    assert result.returncode == 2
    assert_no_traceback(result)
    assert message in result.stderr


def test_sep_tab_reads_a_tab_separated_file(service, tmp_path):
    frame = pd.read_csv(service / "comma.csv", dtype=str)
    frame.to_csv(tmp_path / "export.txt", sep="\t", index=False)
    result = run("validate", tmp_path / "export.txt", "--sep", "tab", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    detected = run("validate", tmp_path / "export.txt", cwd=tmp_path)
    assert detected.returncode == 0, detected.stdout + detected.stderr


# --------------------------------------------------------------------------- configs
def _wording_config(path: Path, suggestion: str) -> Path:
    """The default attributes, with one suggestion reworded."""
    from engagekit import load_config

    items = load_config().model_dump(mode="json")["attributes"]
    for item in items["items"]:
        if item["name"] == "active_listening":
            item["suggestion"] = suggestion
    path.write_text(json.dumps({"attributes": items}))  # JSON is YAML
    return path


def test_a_model_command_takes_a_config_that_rewords_the_suggestions(service, tmp_path):
    config = _wording_config(tmp_path / "wording.yaml", "ask what would help them feel heard")
    result = run(
        "score", service / "model", service / "comma.csv", "--out", tmp_path / "s.csv",
        "--config", config, "--top-reasons", "6", cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    reasons = pd.read_csv(tmp_path / "s.csv")["reasons"].dropna()
    assert reasons.str.contains("ask what would help them feel heard").any()
    assert not reasons.str.contains("avoid watching the clock").any()


def test_a_model_command_refuses_a_config_that_changes_the_model(service, tmp_path):
    config = tmp_path / "other.yaml"
    config.write_text("covariates: []\n")
    result = run(
        "score", service / "model", service / "comma.csv", "--out", tmp_path / "s.csv",
        "--config", config, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 2
    assert_no_traceback(result)
    assert "does not match the model" in result.stderr and "covariates" in result.stderr
    assert list(tmp_path.iterdir()) == [config]  # nothing written


# --------------------------------------------------------------------------- absent columns
def test_an_absent_covariate_is_left_out_by_train_and_heterogeneity_with_a_note(service, tmp_path):
    validated = run("validate", service / "no_age.csv", cwd=tmp_path)
    assert validated.returncode == 0
    assert "covariate(s) 'age_band' absent from the table" in " ".join(validated.stdout.split())
    trained = run(
        "train", service / "no_age.csv", "--target", "adherent", "--model", "logistic",
        "--folds", "2", "--bootstrap", "0", "--out", "m", cwd=tmp_path,
    )  # fmt: skip
    assert trained.returncode == 0, trained.stdout + trained.stderr
    assert "covariate(s) 'age_band' absent from the table: left out" in " ".join(
        trained.stderr.split()
    )
    manifest = json.loads((tmp_path / "m" / "manifest.json").read_text())
    assert manifest["config"]["covariates"] == []
    assert not any(f.startswith("age_band") for f in manifest["features"])
    analysed = run(
        "heterogeneity", service / "no_age.csv", "--target", "adherent", "--out", "h.json",
        cwd=tmp_path,
    )  # fmt: skip
    # a 150-patient service may be too small to analyse (exit 3), but never a contract error
    assert analysed.returncode in (0, 3), analysed.stdout + analysed.stderr
    assert_no_traceback(analysed)
    assert "breaks the data contract" not in analysed.stdout
    assert "age_band" in analysed.stderr


def test_a_model_scores_a_table_without_its_covariate_as_unknown(service, tmp_path):
    result = run(
        "score", service / "model", service / "no_age.csv", "--out", tmp_path / "s.csv",
        cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "the model uses the covariate 'age_band', which is absent" in " ".join(
        result.stderr.split()
    )
    scores = pd.read_csv(tmp_path / "s.csv")
    assert len(scores) == len(pd.read_csv(service / "no_age.csv"))
    age_terms = [c for c in scores.columns if c.startswith("shap_age_band=")]
    assert age_terms and (scores[age_terms] != 0).any(axis=None)  # unknown ≠ a level


def test_an_absent_rating_column_stops_train_with_the_reason(service, tmp_path):
    frame = pd.read_csv(service / "comma.csv").drop(columns=["empathy"])
    frame.to_csv(tmp_path / "no_empathy.csv", index=False)
    result = run("train", "no_empathy.csv", "--target", "adherent", "--out", "m", cwd=tmp_path)
    assert result.returncode == 2
    assert_no_traceback(result)
    assert "rating column(s) 'empathy'" in " ".join(result.stderr.split())
    assert not (tmp_path / "m").exists()


@pytest.mark.parametrize(
    ("args", "option", "column"),
    [
        (("train", "TABLE", "--target", "adherent", "--temporal-split", "2025-06-01",
          "--out", "m"), "--temporal-split", "encounter_date"),
        (("train", "TABLE", "--target", "adherent", "--flag-rule", "per_practitioner:5",
          "--out", "m"), "--flag-rule", "practitioner_id"),
        (("heterogeneity", "TABLE", "--target", "adherent", "--cluster", "practitioner",
          "--out", "h.json"), "--cluster", "practitioner_id"),
        (("forecast", "MODEL", "TABLE", "--by", "practitioner_id", "--out", "f.csv"),
         "--by", "practitioner_id"),
    ],
)  # fmt: skip
def test_an_option_needing_an_absent_optional_column_is_refused_before_any_work(
    service, tmp_path, args, option, column
):
    frame = pd.read_csv(service / "comma.csv").drop(columns=["practitioner_id", "encounter_date"])
    frame.to_csv(tmp_path / "lean.csv", index=False)
    swap = {"TABLE": str(tmp_path / "lean.csv"), "MODEL": str(service / "model")}
    result = run(*(swap.get(a, a) for a in args), cwd=tmp_path)
    assert result.returncode == 2
    assert_no_traceback(result)
    message = " ".join(result.stderr.replace("│", " ").split())
    assert f"needs the column '{column}', which the table lacks" in message
    assert option in message
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lean.csv"]  # nothing written


def test_an_error_message_is_printed_as_it_is_even_with_brackets(tmp_path):
    result = run("validate", "visits[bold].csv", cwd=tmp_path)
    assert result.returncode == 2
    assert "visits[bold].csv" in result.stderr
