"""``engagekit demo``: the main job end to end, as a new user runs it."""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest

from _cli import assert_no_traceback, run, run_process
from _golden import demo_record, differences

TARGETS = ("attended_next", "adherent")
PATIENTS = 1000
METRIC_CELL = re.compile(
    r'<td data-target="(\w+)" data-metric="(\w+)" data-value="([^"]*)">([^<]*)</td>'
)


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> tuple[Path, object]:
    """``(the demo's folder, the finished command)``."""
    tmp = tmp_path_factory.mktemp("demo")
    result = run_process("demo", "--out", "out", "--patients", PATIENTS, cwd=tmp, timeout=600)
    return tmp / "out", result


def test_the_demo_runs_every_step_and_says_where_the_report_is(demo):
    folder, result = demo
    assert result.returncode == 0, result.stdout + result.stderr
    assert_no_traceback(result)
    steps = re.findall(r"^(\d)\. ", result.stdout, flags=re.MULTILINE)
    assert steps == ["1", "2", "3", "3", "4", "4", "5", "5", "6", "7", "8", "9"]
    assert f"Open the report: {(folder / 'report.html').resolve().as_uri()}" in " ".join(
        result.stdout.split()
    )


def test_the_demo_leaves_every_output(demo):
    folder, _result = demo
    expected = [
        "encounters.csv", "truth.csv", "validation.json", "summary.json", "metrics.json",
        "forecast.csv", "report.html", "scores.sqlite",
        *(f"models/{t}/{name}" for t in TARGETS
          for name in ("manifest.json", "metrics.json", "model_card.md")),
        *(f"heterogeneity_{t}.json" for t in TARGETS),
        *(f"forest_{t}.png" for t in TARGETS),
        *(f"scores_{t}.parquet" for t in TARGETS),
        *(f"fhir_{t}.ndjson" for t in TARGETS),
        *(f"model_card_{t}.md" for t in TARGETS),
        "monitoring_attended_next.json",
    ]  # fmt: skip
    missing = [name for name in expected if not (folder / name).is_file()]
    assert not missing


@pytest.mark.parametrize("target", TARGETS)
def test_every_fhir_resource_of_the_scored_demo_validates(demo, target):
    """The FHIR export of the whole scored demo: every resource validates against
    fhir.resources' models (R4B: RiskAssessment and Flag have R4's elements; see
    test_fhir), one RiskAssessment per patient at its latest encounter, a Flag for each
    high flag."""
    from fhir.resources.R4B import get_fhir_model_class

    folder, _result = demo
    lines = (folder / f"fhir_{target}.ndjson").read_text(encoding="utf-8").splitlines()
    resources = [json.loads(line) for line in lines]
    for resource in resources:
        get_fhir_model_class(resource["resourceType"]).model_validate(resource)
    kinds = Counter(r["resourceType"] for r in resources)
    assert set(kinds) <= {"RiskAssessment", "Flag"}
    scores = pd.read_parquet(folder / f"scores_{target}.parquet")
    latest = scores.sort_values("session_number").groupby("patient_id").tail(1)
    assert kinds["RiskAssessment"] == scores["patient_id"].nunique() == int(PATIENTS)
    assert kinds["Flag"] == int((latest["flag"] == "high").sum()) > 0
    column = f"p_{target}"
    expected = dict(zip(latest["encounter_id"], 1.0 - latest[column], strict=True))
    for r in resources:
        if r["resourceType"] == "RiskAssessment":
            encounter = r["basis"][0]["identifier"]["value"]
            assert r["prediction"][0]["probabilityDecimal"] == pytest.approx(
                expected[encounter], abs=1e-9
            )


def test_the_demo_says_what_it_planted_and_whether_the_analysis_found_it(demo):
    folder, result = demo
    text = " ".join(result.stdout.split())
    assert (
        "Planted for the analysis to find: the effect of active listening on adherence is "
        "+0.5 log-odds per rating point in Online CBT beyond the other treatments." in text
    )
    record = json.loads((folder / "heterogeneity_adherent.json").read_text())
    attributes = {a["attribute"]: a for a in record["attributes"]}
    planted = attributes["active_listening"]
    found = planted["verdict"] == "differs" and planted["deviating"][:1] == ["cbt_online"]
    said = re.search(r"The planted deviation was (found|not found): (.*?)\. The other", text)
    assert said is not None, text
    assert said.group(1) == ("found" if found else "not found")
    assert f"Active listening {planted['verdict']}, the closed tests name" in said.group(2)
    others = Counter(a["verdict"] for name, a in attributes.items() if name != "active_listening")
    listed = ", ".join(f"{n} {v}" for v, n in sorted(others.items()))
    assert f"The other qualities: {listed}." in text


def test_the_data_steps_describe_the_simulated_table(demo):
    folder, _result = demo
    encounters = pd.read_csv(folder / "encounters.csv")
    validation = json.loads((folder / "validation.json").read_text())
    assert validation["valid"] is True and validation["n_rows"] == len(encounters)
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["n_patients"] == encounters["patient_id"].nunique() == PATIENTS
    assert summary["n_encounters"] == len(encounters)
    assert len(pd.read_csv(folder / "truth.csv")) == len(encounters)


def test_metrics_json_holds_each_models_own_metrics(demo):
    folder, _result = demo
    combined = json.loads((folder / "metrics.json").read_text())
    assert sorted(combined) == sorted(TARGETS)
    for target in TARGETS:
        own = json.loads((folder / "models" / target / "metrics.json").read_text())
        assert combined[target] == own


def test_the_reports_auroc_is_the_one_in_metrics_json(demo):
    folder, _result = demo
    html = (folder / "report.html").read_text()
    cells: dict[tuple[str, str], tuple[str, str]] = {}
    for target, metric, value, text in METRIC_CELL.findall(html):
        cells.setdefault((target, metric), (value, text))
    combined = json.loads((folder / "metrics.json").read_text())
    for target in TARGETS:
        value, text = cells[(target, "auroc")]
        assert float(value) == combined[target]["auroc"]
        assert text.strip() == f"{combined[target]['auroc']:.3f}"


def test_every_encounter_is_scored_once_in_the_file_and_the_database(demo):
    folder, _result = demo
    n = len(pd.read_csv(folder / "encounters.csv"))
    with sqlite3.connect(folder / "scores.sqlite") as conn:
        for target in TARGETS:
            scores = pd.read_parquet(folder / f"scores_{target}.parquet")
            assert len(scores) == n and scores["encounter_id"].is_unique
            rows, distinct = conn.execute(
                f"SELECT count(*), count(DISTINCT encounter_id) FROM scores_{target}"
            ).fetchone()
            assert rows == distinct == n


def test_the_demo_monitors_its_score_history_for_the_report_and_the_service_page(demo):
    """The re-attendance model's score history, monitored by month: the result file is
    the one recorded in the database for the service page, and the report shows it."""
    from engagekit.io._results import read_monitor_result

    folder, result = demo
    written = read_monitor_result(folder / "monitoring_attended_next.json")
    n_windows = len(written.windows)
    assert n_windows >= 12 and written.target == "attended_next"
    said = " ".join(result.stdout.split())
    assert f"{n_windows} months of scores monitored:" in said
    with sqlite3.connect(folder / "scores.sqlite") as conn:
        rows = conn.execute("SELECT scores_table, target, result FROM monitor_results").fetchall()
    assert [(table, target) for table, target, _ in rows] == [
        ("scores_attended_next", "attended_next")
    ]
    assert json.loads(rows[0][2]) == written.to_dict()
    page = (folder / "report.html").read_text(encoding="utf-8")
    assert 'id="monitoring"' in page and written.windows[0].window in page


def test_the_heterogeneity_results_are_the_ones_in_the_report(demo):
    folder, _result = demo
    html = (folder / "report.html").read_text()
    for target in TARGETS:
        result = json.loads((folder / f"heterogeneity_{target}.json").read_text())
        assert result["target"] == target
        verdicts = {a["attribute"]: a["verdict"] for a in result["attributes"]}
        assert len(verdicts) == 6
        for verdict in set(verdicts.values()):
            assert verdict in html


def test_a_second_run_into_the_same_folder_replaces_the_first(demo, tmp_path):
    folder = tmp_path / "out"
    shutil.copytree(demo[0], folder)
    again = run("demo", "--out", folder, "--patients", "150", "--seed", "3", cwd=tmp_path,
                timeout=600)  # fmt: skip
    assert again.returncode == 0, again.stdout + again.stderr
    with sqlite3.connect(folder / "scores.sqlite") as conn:
        (n,) = conn.execute("SELECT count(DISTINCT encounter_id) FROM scores_adherent").fetchone()
    assert n == len(pd.read_csv(folder / "encounters.csv"))


def test_the_demo_computes_and_says_what_the_golden_copy_holds(demo):
    """Refactors keep outputs: every JSON result, the forecast, the model cards and the
    report's visible text equal a golden copy of a demo run (made as
    ``tests/data/golden_demo/README.md`` says), up to what differs between two runs of
    the same code (times, versions, the model file's hash) and float round-off."""
    folder, result = demo
    assert result.returncode == 0, result.stdout + result.stderr
    golden = json.loads((Path(__file__).parent / "data/golden_demo/demo_record.json").read_text())
    # through JSON, as the golden copy was written: tuples become lists
    actual = json.loads(json.dumps(demo_record(folder)))
    found = differences(actual, golden)
    assert not found, f"{len(found)} differences from the golden demo, e.g.:\n" + "\n".join(
        found[:25]
    )


def test_the_demo_makes_one_sign_in_of_each_role_and_says_how_to_serve(demo):
    import sqlalchemy as sa

    from engagekit.web import list_users, verify_password

    folder, result = demo
    text = " ".join(result.stdout.split())
    url = f"sqlite:///{(folder / 'scores.sqlite').resolve()}"
    assert f"engagekit serve --db {url} --table scores_attended_next" in text
    shown = dict(re.findall(r"│ ([\w-]+) +│ \w+ +│ ([\w-]{16}) +│", result.stdout))
    engine = sa.create_engine(url)
    try:
        users = {user.username: user for user in list_users(engine)}
        assert {u.role for u in users.values()} == {"clinician", "team_lead", "analyst", "admin"}
        assert set(shown) == set(users)
        for username, password in shown.items():  # each printed password signs its user in
            assert verify_password(engine, username, password) is not None
        with engine.connect() as connection:
            stored = " ".join(
                str(v) for row in connection.execute(sa.text("SELECT * FROM users")) for v in row
            )
        assert not any(password in stored for password in shown.values())
        assert len(users["clinician"].practitioners) == 2
    finally:
        engine.dispose()


def test_without_the_web_extra_the_demo_says_how_to_get_the_page(monkeypatch, capsys, tmp_path):
    import engagekit.web
    from engagekit.cli.demo import _demo_users
    from engagekit.errors import ConfigError

    def missing() -> None:
        raise ConfigError("argon2-cffi is not installed")

    monkeypatch.setattr(engagekit.web, "require_web_extra", missing)
    _demo_users(tmp_path / "scores.sqlite", pd.DataFrame({"practitioner_id": ["PR1"]}), "t")
    said = " ".join(capsys.readouterr().out.split())
    assert 'pip install "engagekit[web]", then run the demo again.' in said
    assert not (tmp_path / "scores.sqlite").exists()
