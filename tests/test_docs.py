"""Every public module carries runnable examples in its docstrings.

pytest runs the examples themselves (``--doctest-modules`` in pyproject.toml, over
``src/engagekit``); this test makes sure they are there, so a module whose examples were
deleted fails here instead of passing with nothing to run.
"""

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
    "engagekit.io._read",
    "engagekit.io._write",
    "engagekit.io._model_directory",
    "engagekit.io._model_store",
    "engagekit.io._results",
    "engagekit.validation._coverage",
    "engagekit.summary",
    "engagekit.validation._validate",
    "engagekit.simulation._simulator",
    "engagekit.simulation._heterogeneity",
    "engagekit.features._history",
    "engagekit.features",  # EncounterFeatures is documented as engagekit.features.EncounterFeatures
    "engagekit.models._calibration",
    "engagekit.models._fit_record",
    "engagekit.models._manifest",
    "engagekit.models._model_metrics",
    "engagekit.models._training",
    "engagekit.models.kinds",
    "engagekit.models.kinds._spec",
    "engagekit.models.kinds.logistic",
    "engagekit.models.kinds.gbm",
    "engagekit.evaluation._metrics",
    "engagekit.evaluation._curves",
    "engagekit.evaluation._result",
    "engagekit.evaluation._bootstrap",
    "engagekit.monitoring._windows",
    "engagekit.monitoring._psi",
    "engagekit.monitoring._spc",
    "engagekit.monitoring._acted_on",
    "engagekit.monitoring._result",
    "engagekit.monitoring._monitor",
    "engagekit.monitoring._plot",
    "engagekit.monitoring._view",
    "engagekit.evaluation._fairness",
    "engagekit.heterogeneity._analysis",
    "engagekit.heterogeneity._plot",
    "engagekit.heterogeneity._power",
    "engagekit.heterogeneity._detectable",
    "engagekit.report._tables",
    "engagekit.report._model_card",
    "engagekit.report._figures",
    "engagekit.report._build",
    "engagekit.report._sections.provenance",
    "engagekit._format",
    "engagekit._lazy",
    "engagekit.db._migrate",
    "engagekit.web._accounts",
    "engagekit.web._audit",
    "engagekit.web._app",
    "engagekit.web._data",
    "engagekit.web._monitoring",
    "engagekit.web._scope",
    "engagekit.web._security",
    "engagekit.web._sessions",
    "engagekit.flags",
    "engagekit.forecast",
    "engagekit.scoring",
    "engagekit.io._scores",
    "engagekit.io._monitor_store",
    "engagekit.io._fhir",
    "engagekit.io._stream",
    "engagekit.validation._partitioned",
    "engagekit.models._sample",
    "engagekit.explain._shap_values",
    "engagekit.explain._importance",
]


@pytest.mark.parametrize("name", MODULES)
def test_the_module_has_docstring_examples(name):
    module = importlib.import_module(name)
    tests = doctest.DocTestFinder().find(module)
    assert sum(len(t.examples) for t in tests) > 0, f"{name} has no examples"


def test_pytest_runs_the_docstring_examples(pytestconfig):
    assert "--doctest-modules" in pytestconfig.getini("addopts")
    assert "src/engagekit" in pytestconfig.getini("testpaths")
