"""The FHIR R4 export (``engagekit score ... --fhir``): every resource validates, one
RiskAssessment per patient at its latest encounter, a Flag per patient flagged high.

The resources are validated with fhir.resources' R4B models: its releases with R4
(4.0.1) models (6.4 and older) need pydantic 1. RiskAssessment and Flag have the same
elements in R4 and R4B.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pytest
from fhir.resources.R4B import get_fhir_model_class

from _cli import assert_no_traceback, run
from _factories import model_with_manifest, write_csv
from engagekit import load_config, simulate_encounters
from engagekit.config import config_from_dict
from engagekit.errors import ConfigError, OutputError
from engagekit.io._fhir import fhir_resources, latest_encounters, write_fhir
from engagekit.io._model_store import read_manifest, save_model
from engagekit.models import ModelManifest

CONFIG = load_config()
PATIENT_SYSTEM = "https://hospital.example.org/fhir/sid/mrn"
ENCOUNTER_SYSTEM = "https://hospital.example.org/fhir/sid/visit"
# a patient_id a spreadsheet would run as a formula: the CSV scores file escapes it
# ("'=..."), the export must carry it as it is
FORMULA_PATIENT = "=P0000002"


@pytest.fixture(scope="module")
def export(tmp_path_factory) -> dict:
    """A scored simulated service of 1,200 patients, exported with the systems of a
    service config: the encounters, the scores, the resources and the command's output."""
    tmp = tmp_path_factory.mktemp("fhir")
    encounters = simulate_encounters(1_200, seed=17, config=CONFIG).encounters
    encounters.loc[encounters["patient_id"] == "P0000002", "patient_id"] = FORMULA_PATIENT
    # rows out of order: the latest encounter is found, not taken as the last row
    encounters = encounters.sample(frac=1.0, random_state=5).reset_index(drop=True)
    write_csv(encounters, tmp / "encounters.csv")
    model, manifest = model_with_manifest(encounters, "adherent", "logistic", CONFIG, seed=2)
    save_model(model, tmp / "model", manifest)
    (tmp / "service.yaml").write_text(
        f"fhir:\n  patient_system: {PATIENT_SYSTEM}\n  encounter_system: {ENCOUNTER_SYSTEM}\n"
    )
    result = run(
        "score", "model", "encounters.csv", "--out", "scores.csv", "--config", "service.yaml",
        "--fhir", "out/risk.ndjson", cwd=tmp,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert_no_traceback(result)
    text = pa.string()
    scores = pacsv.read_csv(
        tmp / "scores.csv",
        convert_options=pacsv.ConvertOptions(
            column_types={"encounter_id": text, "patient_id": text, "reasons": text}
        ),
    ).to_pandas()
    lines = (tmp / "out" / "risk.ndjson").read_text(encoding="utf-8").splitlines()
    return {
        "encounters": encounters,
        "scores": scores.set_index("encounter_id"),
        "resources": [json.loads(line) for line in lines],
        "lines": lines,
        "manifest": read_manifest(tmp / "model"),
        "result": result,
    }


def _of(resources: list[dict], kind: str) -> list[dict]:
    return [r for r in resources if r["resourceType"] == kind]


def test_every_resource_validates_against_the_fhir_models(export):
    kinds = set()
    for line in export["lines"]:
        kind = json.loads(line)["resourceType"]
        kinds.add(kind)
        get_fhir_model_class(kind).model_validate_json(line)  # raises when not valid
    assert kinds == {"RiskAssessment", "Flag"}


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (lambda r: r.pop("status"), "status"),  # required
        (lambda r: r.update(probability=0.5), "probability"),  # no such element
        (lambda r: r.update(subject="Patient/1"), "subject"),  # a Reference, not text
    ],
)
def test_a_resource_the_models_refuse_is_refused(export, change, problem):
    # the validation above can fail: the same resource, broken, is refused
    assessment = json.loads(json.dumps(_of(export["resources"], "RiskAssessment")[0]))
    change(assessment)
    with pytest.raises(ValueError, match=problem):
        get_fhir_model_class("RiskAssessment").model_validate(assessment)


def test_one_risk_assessment_per_patient_at_its_latest_encounter(export):
    encounters = export["encounters"]
    latest = encounters.loc[encounters.groupby("patient_id")["session_number"].idxmax()]
    expected = dict(zip(latest["patient_id"], latest["encounter_id"], strict=True))
    assessments = _of(export["resources"], "RiskAssessment")
    subjects = [a["subject"]["identifier"]["value"] for a in assessments]
    assert len(subjects) == len(set(subjects)) == encounters["patient_id"].nunique()
    found = {
        a["subject"]["identifier"]["value"]: a["basis"][0]["identifier"]["value"]
        for a in assessments
    }
    assert found == expected
    assert FORMULA_PATIENT in found  # raw, not the CSV's escaped "'=P0000002"
    dates = latest.set_index("encounter_id")["encounter_date"].dt.strftime("%Y-%m-%d")
    assert {a["occurrenceDateTime"] for a in assessments} <= set(dates)
    assert all(
        a["occurrenceDateTime"] == dates[a["basis"][0]["identifier"]["value"]] for a in assessments
    )


def test_the_prediction_is_the_scored_risk_flag_and_reasons(export):
    scores, manifest = export["scores"], export["manifest"]
    codes = {"high": "high", "medium": "moderate", "low": "low"}
    for assessment in _of(export["resources"], "RiskAssessment"):
        row = scores.loc[assessment["basis"][0]["identifier"]["value"]]
        (prediction,) = assessment["prediction"]
        assert prediction["probabilityDecimal"] == row["risk"]
        assert prediction["outcome"]["text"] == "did not keep to the treatment plan"
        (coding,) = prediction["qualitativeRisk"]["coding"]
        assert coding["system"] == "http://terminology.hl7.org/CodeSystem/risk-probability"
        assert coding["code"] == codes[row["flag"]]
        assert assessment.get("mitigation") == (row["reasons"] or None)
        assert assessment["status"] == "final"
        assert manifest.model_sha256 in assessment["method"]["text"]
        assert "logistic model of adherent" in assessment["method"]["text"]
    flagged = scores["flag"].value_counts()
    assert flagged["high"] > 0 and flagged["low"] > 0  # every level is exercised


def test_a_flag_for_each_patient_whose_latest_encounter_is_flagged_high(export):
    scores = export["scores"]
    assessments = _of(export["resources"], "RiskAssessment")
    latest_high = {
        a["subject"]["identifier"]["value"]
        for a in assessments
        if scores.loc[a["basis"][0]["identifier"]["value"], "flag"] == "high"
    }
    flags = _of(export["resources"], "Flag")
    assert latest_high and len(flags) == len(latest_high)
    assert {f["subject"]["identifier"]["value"] for f in flags} == latest_high
    for flag in flags:
        assert flag["status"] == "active"
        assert flag["category"][0]["coding"][0]["code"] == "clinical"
        assert flag["code"]["text"] == "At risk of poor adherence"
        encounter = flag["encounter"]["identifier"]["value"]
        assert scores.loc[encounter, "flag"] == "high"
        assert (
            scores.loc[encounter, "patient_id"].lstrip("'")
            == (flag["subject"]["identifier"]["value"])
        )


def test_identifiers_use_the_configured_systems_and_stay_out_of_messages(export):
    resources = export["resources"]
    assert {r["subject"]["identifier"]["system"] for r in resources} == {PATIENT_SYSTEM}
    assert {r["subject"]["type"] for r in resources} == {"Patient"}
    encounters = [r["basis"][0] for r in _of(resources, "RiskAssessment")]
    encounters += [r["encounter"] for r in _of(resources, "Flag")]
    assert {e["identifier"]["system"] for e in encounters} == {ENCOUNTER_SYSTEM}
    assert {e["type"] for e in encounters} == {"Encounter"}
    ids = [r["id"] for r in resources]
    assert len(set(ids)) == len(ids)
    result = export["result"]
    n_patients = export["encounters"]["patient_id"].nunique()
    assert f"{n_patients:,} RiskAssessment" in result.stdout
    assert f"{len(_of(resources, 'Flag')):,} Flag" in result.stdout
    said = result.stdout + result.stderr
    assert "P000" not in said and "E000" not in said


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (("--engine", "spark", "--fhir", "risk.ndjson"), "--fhir is for the local engine"),
        (("--fhir", "scores.csv"), "--fhir must be another file than --out"),
        (("--fhir", "."), "cannot write the FHIR export '.': it is a folder"),
    ],
)
def test_score_refuses_a_fhir_export_it_cannot_write(tmp_path, extra, message):
    result = run("score", "model", "encounters.csv", "--out", "scores.csv", *extra, cwd=tmp_path)
    assert result.returncode == 2, result.stdout
    assert list(tmp_path.iterdir()) == []  # nothing made, not even the database
    assert message in " ".join(result.stderr.split()), result.stderr


@pytest.mark.parametrize(
    ("chunks", "expected"),
    [
        # the highest session wins, whichever chunk holds it
        ([[("e1", "p", 1, "2025-01-01")], [("e2", "p", 2, "2025-01-08")]], "e2"),
        ([[("e2", "p", 2, "2025-01-08")], [("e1", "p", 1, "2025-01-01")]], "e2"),
        # a tie in session_number: the later date
        ([[("e1", "p", 3, "2025-02-01"), ("e2", "p", 3, "2025-01-01")]], "e1"),
    ],
)
def test_latest_encounters_finds_each_patients_latest_across_chunks(chunks, expected):
    columns = ["encounter_id", "patient_id", "session_number", "encounter_date"]
    frames = [pd.DataFrame(rows, columns=columns).assign(risk=0.5, flag="low") for rows in chunks]
    assert latest_encounters(frames)["encounter_id"].tolist() == [expected]


@pytest.mark.parametrize("system", ["no spaces allowed", "mrn", ""])
def test_an_identifier_system_that_is_not_an_absolute_uri_is_refused(system):
    with pytest.raises(ConfigError, match=r"fhir\.patient_system"):
        config_from_dict({"fhir": {"patient_system": system}})


def test_a_fhir_export_stopped_halfway_leaves_no_file(tmp_path):
    def resources():
        yield {"resourceType": "Flag", "status": "active"}
        raise OutputError("the scores could not be read")

    with pytest.raises(OutputError, match="could not be read"):
        write_fhir(tmp_path / "risk.ndjson", resources())
    assert list(tmp_path.iterdir()) == []


def test_the_readme_risk_assessment_is_what_the_export_writes():
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    section = readme.split("\n### FHIR export\n", 1)[1]
    shown = json.loads(re.search(r"```json\n(.*?)```", section, flags=re.S).group(1))
    get_fhir_model_class("RiskAssessment").model_validate(shown)
    prediction = shown["prediction"][0]
    manifest = ModelManifest.model_construct(
        target="attended_next", kind="gbm", model_sha256=shown["method"]["coding"][0]["code"]
    )
    scores = pd.DataFrame(
        {
            "encounter_id": [shown["basis"][0]["identifier"]["value"]],
            "patient_id": [shown["subject"]["identifier"]["value"]],
            "session_number": [4],
            "encounter_date": [shown["occurrenceDateTime"]],
            "risk": [prediction["probabilityDecimal"]],
            "flag": [prediction["qualitativeRisk"]["text"]],
            "reasons": [shown["mitigation"]],
        }
    )
    assert next(fhir_resources(scores, manifest, CONFIG)) == shown
