"""Result JSONs given to ``engagekit report`` (``--heterogeneity``, ``--power``) that are
cut short, edited by hand or not results at all: keys missing, values of the wrong type,
containers where numbers belong, a device or a pipe instead of a file.

Each is refused before the report is built, with a message naming the file and the field
at fault (it used to end as "internal error, this is a bug"), and no report is written.
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from _cli import assert_no_traceback, run
from engagekit import simulate_encounters
from engagekit.config import HeterogeneitySettings
from engagekit.errors import DataReadError
from engagekit.heterogeneity import (
    PatientsForPowerResult,
    PowerPoint,
    PowerResult,
    PowerSettings,
    Share,
    heterogeneity_analysis,
)
from engagekit.io._results import (
    RESULT_SIZE_LIMIT,
    read_heterogeneity_result,
    read_power_result,
)

_SETTINGS = PowerSettings(
    target="adherent",
    attribute="active_listening",
    treatment="listening_visits",
    deviation=0.3,
    deviation_unit="log-odds per rating point, on the target outcome only",
    treatments=["cbt_online", "listening_visits"],
    shares={"cbt_online": 0.6, "listening_visits": 0.4},
    planned_sessions={"cbt_online": [6, 8], "listening_visits": [4, 6]},
    analysis=HeterogeneitySettings(),
    seed=0,
    replicate_seeds="seed + replicate index",
    n_jobs=1,
    versions={"engagekit": "0.1"},
)
# a result of engagekit power (estimate_power), in its JSON form
POWER = PowerResult(
    n_patients=500,
    reps=200,
    succeeded=198,
    failed=2,
    failure_examples=["AnalysisError: the GEE did not converge"],
    power_differs=Share(value=0.81, ci_low=0.75, ci_high=0.86),
    power_named=Share(value=0.78, ci_low=0.72, ci_high=0.83),
    false_flag_rate=Share(value=0.04, ci_low=0.02, ci_high=0.08),
    wrong_name_rate=Share(value=0.03, ci_low=0.01, ci_high=0.06),
    power_equivalence=Share(value=0.37, ci_low=0.31, ci_high=0.44),
    power_any_other_equivalent=Share(value=0.6, ci_low=0.53, ci_high=0.67),
    power_equivalence_attribute=Share(value=None, ci_low=None, ci_high=None),
    attribute_verdicts={"differs": 0.81, "equivalent": 0.0, "inconclusive": 0.19},
    equivalence_by_attribute={"empathy": 0.37},
    settings=_SETTINGS,
    seconds=12.5,
).to_dict()
# a result of patients_for_power, in its JSON form
SEARCH = PatientsForPowerResult(
    target_power=0.8,
    reached=True,
    n_patients=400,
    power=Share(value=0.82, ci_low=0.76, ci_high=0.87),
    bracketed=True,
    points=[
        PowerPoint(
            n_patients=n,
            power_differs=Share(value=power, ci_low=power - 0.05, ci_high=power + 0.05),
            false_flag_rate=0.03,
            power_equivalence=0.3,
            failed=0,
        )
        for n, power in ((100, 0.4), (200, 0.6), (350, 0.78), (400, 0.82))
    ],
    low=100,
    high=2000,
    tolerance=50,
    reps=200,
    sentence="About 400 patients.",
    settings=_SETTINGS,
    seconds=80.0,
).to_dict()


@pytest.fixture(scope="module")
def service(tmp_path_factory) -> tuple[Path, dict]:
    """``(a folder with encounters.csv and a model of attended_next, a heterogeneity
    result of attended_next on those encounters)``."""
    tmp = tmp_path_factory.mktemp("results")
    encounters = simulate_encounters(400, seed=3).encounters
    encounters.to_csv(tmp / "encounters.csv", index=False)
    result = run(
        "train", "encounters.csv", "--target", "attended_next", "--model", "logistic",
        "--folds", "2", "--bootstrap", "0", "--out", "model", cwd=tmp,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    analysis = heterogeneity_analysis(encounters, "attended_next")
    return tmp, json.loads(json.dumps(analysis.to_dict()))  # as written to a file


def _set(*path, value) -> Callable[[dict], None]:
    def edit(result: dict) -> None:
        node = result
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value

    return edit


def _sparse(size: int) -> Callable[[Path], None]:
    def make(path: Path) -> None:
        with open(path, "wb") as handle:
            handle.truncate(size)

    return make


def _drop(key: str) -> Callable[[dict], None]:
    def edit(result: dict) -> None:
        del result[key]

    return edit


HETEROGENEITY = [
    (
        "attributes-a-string",
        _set("attributes", value="x"),
        "'attributes': input should be a valid list",
    ),
    (
        "attributes-numbers",
        _set("attributes", value=[1]),
        "'attributes.0': input should be a valid dict",
    ),
    (
        "attribute-without-name",
        _set("attributes", 0, value={}),
        "'attributes.0.attribute': field required",
    ),
    (
        "attribute-name-a-number",
        _set("attributes", 0, "attribute", value=5),
        "'attributes.0.attribute'",
    ),
    (
        "label-a-number",
        _set("attributes", 0, "label", value=5),
        "'attributes.0.label'",
    ),
    (
        "equivalence-a-string",
        _set("attributes", 0, "equivalence", value="x"),
        "'attributes.0.equivalence'",
    ),
    (
        "by-treatment-a-string",
        _set("attributes", 0, "by_treatment", value="x"),
        "'attributes.0.by_treatment'",
    ),
    (
        "effect-a-string",
        _set("attributes", 0, "by_treatment", 0, "log_odds", value="big"),
        "'attributes.0.by_treatment.0.log_odds'",
    ),
    (
        "p-value-a-bool",
        _set("attributes", 0, "p_value", value=True),
        "'attributes.0.p_value'",
    ),
    (
        "contrasts-numbers",
        _set("attributes", 0, "contrasts", value=[1, 2]),
        "'attributes.0.contrasts.0'",
    ),
    (
        "method-a-string",
        _set("method", value="x"),
        "'method': input should be a valid dict",
    ),
    (
        "covariates-a-number",
        _set("method", "covariates", value=5),
        "'method.covariates'",
    ),
    (
        "margin-a-string",
        _set("method", "margin", value="0.2"),
        "'method.margin'",
    ),
    (
        "target-a-list",
        _set("target", value=["attended_next"]),
        "'target': input should be a valid string",
    ),
    (
        "patients-a-string",
        _set("n_patients", value="379"),
        "'n_patients'",
    ),
    (
        "without-method",
        _drop("method"),
        "it lacks 'method'",
    ),
    (
        "without-target",
        _drop("target"),
        "it lacks 'target'",
    ),
    (
        "another-format-version",
        _set("format_version", value=1),
        "its 'format_version' is 1; this engagekit reads format_version 2",
    ),
    (
        "an-unknown-field",
        _set("method", "bootstrap", value=True),
        "'method.bootstrap': extra inputs are not permitted",
    ),
]
POWER_CASES = [
    (
        "settings-a-string",
        POWER,
        _set("settings", value="x"),
        "'settings': input should be a valid dict",
    ),
    (
        "attribute-a-number",
        POWER,
        _set("settings", "attribute", value=5),
        "'settings.attribute'",
    ),
    (
        "power-a-string",
        POWER,
        _set("power_differs", value="81%"),
        "'power_differs'",
    ),
    (
        "points-a-string",
        SEARCH,
        _set("points", value="x"),
        "'points': input should be a valid list",
    ),
    (
        "points-numbers",
        SEARCH,
        _set("points", value=[1]),
        "'points.0'",
    ),
    (
        "point-power-a-list",
        SEARCH,
        _set("points", 0, "power_differs", value=[0.4]),
        "'points.0.power_differs'",
    ),
    (
        "sentence-a-number",
        SEARCH,
        _set("sentence", value=1),
        "'sentence'",
    ),
    (
        "neither-kind",
        POWER,
        _drop("power_differs"),
        "neither 'power_differs' nor 'target_power'",
    ),
    (
        "another-format-version",
        SEARCH,
        _set("format_version", value=0),
        "its 'format_version' is 0; this engagekit reads format_version 1",
    ),
    (
        "interval-a-string",
        POWER,
        _set("false_flag_rate_ci_high", value="8%"),
        "'false_flag_rate_ci_high': input should be a valid number",
    ),
]


@pytest.mark.parametrize(
    ("edit", "message"), [c[1:] for c in HETEROGENEITY], ids=[c[0] for c in HETEROGENEITY]
)
def test_a_malformed_heterogeneity_result_is_refused_naming_the_field(
    service, tmp_path, edit, message
):
    _folder, analysis = service
    result = copy.deepcopy(analysis)
    edit(result)
    path = tmp_path / "heterogeneity.json"
    path.write_text(json.dumps(result))
    with pytest.raises(DataReadError) as refused:
        read_heterogeneity_result(path)
    said = str(refused.value)
    assert said.startswith(f"{str(path)!r} is not a result of engagekit heterogeneity")
    assert message in said


@pytest.mark.parametrize(
    ("base", "edit", "message"), [c[1:] for c in POWER_CASES], ids=[c[0] for c in POWER_CASES]
)
def test_a_malformed_power_result_is_refused_naming_the_field(tmp_path, base, edit, message):
    result = copy.deepcopy(base)
    edit(result)
    path = tmp_path / "power.json"
    path.write_text(json.dumps(result))
    with pytest.raises(DataReadError) as refused:
        read_power_result(path)
    said = str(refused.value)
    assert said.startswith(f"{str(path)!r} is not a result of engagekit power")
    assert message in said


def test_the_results_as_the_commands_write_them_are_read(service, tmp_path):
    """The control: unedited results pass every check."""
    _folder, analysis = service
    for name, result, read in (
        ("heterogeneity.json", analysis, read_heterogeneity_result),
        ("power.json", POWER, read_power_result),
        ("search.json", SEARCH, read_power_result),
    ):
        (tmp_path / name).write_text(json.dumps(result))
        assert read(tmp_path / name).to_dict() == result


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: os.symlink("/dev/zero", p), "is a character device, not a regular file"),
        (lambda p: os.mkfifo(p), "is a named pipe (FIFO), not a regular file"),
        (_sparse(RESULT_SIZE_LIMIT + 1), f"is more than {RESULT_SIZE_LIMIT:,} bytes"),
        (lambda p: p.write_text("[1, 2]"), "must hold a JSON object"),
        (lambda p: p.write_bytes(b"\xff\xfe{}"), "is not readable JSON"),
    ],
    ids=["dev-zero", "fifo", "oversized", "a-list", "not-utf8"],
)
def test_a_result_that_is_not_a_json_file_is_refused_unread(tmp_path, make, message):
    path = tmp_path / "power.json"
    make(path)
    with pytest.raises(DataReadError, match=r"power\.json") as refused:
        read_power_result(path)
    assert message in str(refused.value)


@pytest.mark.parametrize(
    ("option", "name", "result", "field"),
    [
        ("--heterogeneity", "heterogeneity", {"attributes": "x"}, "'attributes'"),
        ("--heterogeneity", "heterogeneity", {"method": "x"}, "'method'"),
        ("--power", "power", {"settings": "x"}, "'settings'"),
    ],
    ids=["attributes", "method", "settings"],
)
def test_report_refuses_a_malformed_result_and_writes_nothing(
    service, tmp_path, option, name, result, field
):
    folder, analysis = service
    base = analysis if name == "heterogeneity" else POWER
    (tmp_path / f"{name}.json").write_text(json.dumps({**base, **result}))
    done = run(
        "report", folder / "encounters.csv", "--model", folder / "model",
        option, f"{name}.json", "--out", "report.html", cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert_no_traceback(done)
    said = " ".join(done.stderr.split())
    assert f"'{name}.json' is not a result of engagekit {name}" in said and field in said
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"{name}.json"]
