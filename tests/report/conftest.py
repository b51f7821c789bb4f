"""One small simulated service for the report's tests, trained once per session.

An adherence logistic model and a re-attendance tree model are trained with the command
line (2 folds, 50 bootstrap replicates) and read back as the report command reads them.
The section tests build each section's view model from what the report computes; the
page tests render one report with :func:`~engagekit.report.build_report`.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from _cli import run
from engagekit.config import config_from_dict
from engagekit.io import read_encounters
from engagekit.io._model_store import load_model, read_metrics
from engagekit.report import ReportModel, build_report
from engagekit.report._compute import model_findings
from engagekit.validation import coerce_encounters

TARGETS = ("adherent", "attended_next")
RANK_AGREEMENT_BOOT = 50


@pytest.fixture(scope="session")
def service(tmp_path_factory) -> Path:
    """A directory with ``encounters.csv`` and one trained model directory per target."""
    tmp = tmp_path_factory.mktemp("service")
    train = ("train", "encounters.csv", "--folds", "2", "--bootstrap", "50")
    steps = [
        ("simulate", "--patients", "300", "--seed", "3", "--out", "encounters.csv"),
        (*train, "--target", "adherent", "--model", "logistic", "--out", "adherent"),
        (*train, "--target", "attended_next", "--model", "gbm", "--out", "attended_next"),
    ]
    for step in steps:
        result = run(*step, cwd=tmp)
        assert result.returncode == 0, result.stderr
    return tmp


def _report_model(directory: Path) -> ReportModel:
    model, manifest = load_model(directory)
    return ReportModel(model, manifest, read_metrics(directory), source=directory.name)


@pytest.fixture(scope="session")
def loaded(service):
    """``(encounters, models, config)`` as the report command reads them."""
    models = [_report_model(service / target) for target in TARGETS]
    config = config_from_dict(models[0].manifest.config)
    encounters = coerce_encounters(read_encounters(service / "encounters.csv"), config)
    return encounters, models, config


@pytest.fixture(scope="session")
def written(service):
    """What ``engagekit train`` wrote: ``{target: (manifest.json, metrics.json)}`` as JSON."""
    return {
        target: tuple(
            json.loads((service / target / name).read_text())
            for name in ("manifest.json", "metrics.json")
        )
        for target in TARGETS
    }


@pytest.fixture(scope="session")
def built(loaded):
    """The report, built and rendered once."""
    encounters, models, config = loaded
    return build_report(encounters, models, config, rank_agreement_boot=RANK_AGREEMENT_BOOT)


@pytest.fixture(scope="session")
def findings(loaded):
    """What the report computes for each model, by target."""
    encounters, models, _ = loaded
    return {
        m.target: model_findings(
            m.model, m.manifest.flag_rule, encounters, rank_agreement_boot=RANK_AGREEMENT_BOOT
        )
        for m in models
    }


@pytest.fixture(scope="session")
def model_of(loaded):
    """The loaded :class:`ReportModel` of a target."""
    _, models, _ = loaded
    return {m.target: m for m in models}.__getitem__
