"""The examples in public docstrings run and print what they say."""

import doctest
import importlib

import pytest

MODULES = [
    "engagekit._arrays",
    "engagekit.choices",
    "engagekit.errors",
    "engagekit._checks",
    "engagekit._fingerprint",
    "engagekit._pydantic_errors",
    "engagekit._stats",
    "engagekit._versions",
    "engagekit._dates",
    "engagekit._excerpt",
    "engagekit._files",
    "engagekit.io._read_only_sql",
    "engagekit._labels",
    "engagekit._results",
    "engagekit.config",
    "engagekit.io.read",
    "engagekit.io.write",
    "engagekit.io.model_directory",
    "engagekit.io.model_store",
    "engagekit.io.results",
    "engagekit.validation.coverage",
    "engagekit.summary",
    "engagekit.validation.validate",
    "engagekit.simulation.simulator",
    "engagekit.simulation.heterogeneity",
    "engagekit.features.history",
    "engagekit.features.transformer",
    "engagekit.models.calibration",
    "engagekit.models.fit_record",
    "engagekit.models.manifest",
    "engagekit.models.model_metrics",
    "engagekit.models.training",
    "engagekit.models.kinds",
    "engagekit.models.kinds._spec",
    "engagekit.models.kinds.logistic",
    "engagekit.models.kinds.gbm",
    "engagekit.evaluation.metrics",
    "engagekit.evaluation.bootstrap",
    "engagekit.heterogeneity.analysis",
    "engagekit.heterogeneity.plot",
    "engagekit.heterogeneity.power",
    "engagekit.heterogeneity.detectable",
    "engagekit.report._tables",
    "engagekit.report.model_card",
    "engagekit.report.figures",
    "engagekit.report.build",
    "engagekit.report.sections.provenance",
    "engagekit._format",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0, f"{name} has no examples"
    assert result.failed == 0
