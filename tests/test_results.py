"""Every result engagekit writes is a typed object with a versioned dict form.

One common test over every result type: computed today, it writes what engagekit wrote
before results were typed (the golden copy in ``tests/data/golden_results``, made by the
earlier code); it reads that golden file back unchanged; its dict form reads back to an
equal object; a dict of another ``format_version`` is refused with a message saying so;
and a field at fault is named as the file names it (``auroc_ci_low``, not the object's
path to it).
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest

import _golden_results as golden
from _golden import differences
from engagekit.errors import ResultFormatError
from engagekit.evaluation import Metrics
from engagekit.heterogeneity import HeterogeneityResult, PatientsForPowerResult, PowerResult
from engagekit.models import ExternalValidation, ModelManifest, ModelMetrics

GOLDEN = Path(__file__).parent / "data" / "golden_results"
TYPES: dict[str, Any] = {
    "metrics.json": Metrics,
    "metrics_one_class.json": Metrics,
    "heterogeneity.json": HeterogeneityResult,
    "power.json": PowerResult,
    "power_search.json": PatientsForPowerResult,
    "model/manifest.json": ModelManifest,
    "model/metrics.json": ModelMetrics,
    "evaluate.json": ExternalValidation,
}
# what the golden copy masks and a type requires: put back to read the file
_VERSIONS = {"engagekit": "0.0", "statsmodels": "0.0", "numpy": "0.0"}


@pytest.fixture(scope="module")
def computed(tmp_path_factory) -> dict[str, Any]:
    """Every result of :data:`TYPES`, computed by today's code (the model's files written
    by ``engagekit train`` and ``evaluate``, read back)."""
    folder = tmp_path_factory.mktemp("results")
    written = golden.train_and_evaluate(folder)
    return {
        "metrics.json": golden.metrics_result(),
        "metrics_one_class.json": golden.one_class_metrics_result(),
        "heterogeneity.json": golden.heterogeneity_result(),
        "power.json": golden.power_result(),
        "power_search.json": golden.power_search_result(),
        **{name: TYPES[name].from_dict(record) for name, record in written.items()},
    }


def _golden(name: str) -> Any:
    return json.loads((GOLDEN / name).read_text())


def _readable(name: str, record: dict[str, Any]) -> dict[str, Any]:
    """The golden ``record`` with the parts it masks that the type requires put back."""
    record = copy.deepcopy(record)
    if name == "heterogeneity.json":
        record["method"]["versions"] = dict(_VERSIONS)
    if name.startswith("power"):
        record["settings"]["versions"] = dict(_VERSIONS)
        record["seconds"] = 1.5
    return record


@pytest.mark.parametrize("name", TYPES)
def test_each_result_is_of_its_type(computed, name):
    assert type(computed[name]) is TYPES[name]


@pytest.mark.parametrize("name", TYPES)
def test_each_result_writes_what_engagekit_wrote_before_typed_results(computed, name):
    record = golden.masked(golden.as_json(computed[name]))
    found = differences(record, _golden(name))
    assert not found, f"{len(found)} differences from the golden {name}:\n" + "\n".join(found[:20])


@pytest.mark.parametrize("name", TYPES)
def test_each_golden_file_reads_back_and_writes_the_same_content(name):
    record = _readable(name, _golden(name))
    result = TYPES[name].from_dict(record)
    # the same keys, values (of the same JSON types) and nesting: the same text
    written = json.dumps(golden.masked(golden.as_json(result)), sort_keys=True)
    assert written == json.dumps(_golden(name), sort_keys=True)


@pytest.mark.parametrize("name", TYPES)
def test_each_result_round_trips_through_json(computed, name):
    result = computed[name]
    record = json.loads(json.dumps(result.to_dict()))
    assert record["format_version"] == result.format_version == TYPES[name].FORMAT_VERSION
    assert TYPES[name].from_dict(record) == result


@pytest.mark.parametrize("name", TYPES)
@pytest.mark.parametrize("version", [0, 99, "1", True])
def test_a_dict_of_another_format_version_is_refused_saying_so(computed, name, version):
    result = computed[name]
    with pytest.raises(ResultFormatError) as refused:
        TYPES[name].from_dict({**result.to_dict(), "format_version": version})
    expected = (
        f"its 'format_version' is {version!r}; this engagekit reads format_version "
        f"{TYPES[name].FORMAT_VERSION}"
    )
    assert expected in str(refused.value)
    assert refused.value.format_version == version


def _set(*path: Any, value: Any):
    def edit(record: dict[str, Any]) -> None:
        node = record
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value

    return edit


# file, edit, the field at fault as the message names it
FIELDS = [
    ("metrics.json", _set("auroc_ci_low", value="0.6"),
     "'auroc_ci_low': input should be a valid number"),
    ("metrics.json", _set("brier", value=[0.2]), "'brier': input should be a valid number"),
    ("metrics.json", _set("note", value=3), "'note': input should be a valid string"),
    ("metrics.json", _set("by_treatment", value="x"),
     "'by_treatment': input should be a valid dict"),
    ("metrics.json", _set("by_treatment", "cbt_online", "auprc_flagged_n_boot", value=1.5),
     "'by_treatment.cbt_online.auprc_flagged_n_boot'"),
    ("metrics.json", _set("roc_curve", 0, "threshold", value="inf"), "'roc_curve.0.threshold'"),
    ("metrics.json", _set("surprise", value=1), "'surprise': extra inputs are not permitted"),
    ("heterogeneity.json", _set("attributes", 0, "verdict", value="maybe"),
     "'attributes.0.verdict'"),
    ("power.json", _set("power_differs_ci_high", value="9%"), "'power_differs_ci_high'"),
    ("power.json", _set("false_flag_rate", value=1.5), "'false_flag_rate': input should be less"),
    ("power_search.json", _set("points", 1, "power_differs_ci_low", value=None), None),
    ("power_search.json", _set("points", 1, "power_differs", value="x"),
     "'points.1.power_differs'"),
    ("power_search.json", _set("power_ci_low", value="x"), "'power_ci_low'"),
    ("model/metrics.json", _set("temporal_validation", "auroc_ci_high", value="x"),
     "'temporal_validation.auroc_ci_high'"),
    ("model/metrics.json", _set("temporal_validation", "by_gender", value=[]),
     "'temporal_validation.by_gender'"),
    ("model/metrics.json", _set("flag_rule", "threshold", value=2.0), "'flag_rule'"),
    ("model/metrics.json", _set("training_steps", "fitness", value=None), "'training_steps'"),
    ("model/metrics.json", _set("selection", "chosen", value=None), "'selection.chosen'"),
    ("model/manifest.json", _set("estimator", "class", value=1), "'estimator.class'"),
    ("model/manifest.json", _set("metrics", "auroc", value={}), "'metrics.auroc"),
    ("model/manifest.json", _set("fit_for_use", value="no"),
     "'fit_for_use': input should be a valid boolean"),
]  # fmt: skip


@pytest.mark.parametrize(("name", "edit", "message"), FIELDS)
def test_a_field_at_fault_is_named_as_the_file_names_it(computed, name, edit, message):
    record = json.loads(json.dumps(computed[name].to_dict()))
    edit(record)
    if message is None:
        # an interval end may be undefined (None) as the computation writes it
        TYPES[name].from_dict(record)
        return
    with pytest.raises(ResultFormatError) as refused:
        TYPES[name].from_dict(record)
    assert message in str(refused.value), refused.value.problems


def test_a_mapping_is_required():
    with pytest.raises(ResultFormatError, match=re.escape("it must be a mapping, found list")):
        Metrics.from_dict([1, 2])


def test_a_record_without_format_version_was_written_before_it_and_is_read(computed):
    record = computed["heterogeneity.json"].to_dict()
    del record["format_version"]
    assert HeterogeneityResult.from_dict(record) == computed["heterogeneity.json"]
