"""engagekit: predict re-attendance and adherence in depression treatment.

Patients' session-by-session ratings of six practitioner qualities (approachability,
empathy, support, active listening, helping with decisions, encouraging self-kindness)
plus the treatment they receive become features for models of whether they come back to
their next session (``attended_next``) and keep to their treatment (``adherent``).

The data flows one way: load (:mod:`engagekit.io`) → validate
(:mod:`engagekit.validation`) → summarise → model (:mod:`engagekit.models`,
:mod:`engagekit.evaluation`) → test the cross-treatment claim
(:mod:`engagekit.heterogeneity`) → explain → flag → report (:mod:`engagekit.report`).
"""

from importlib.metadata import PackageNotFoundError, version

from .config import Config, load_config
from .errors import (
    AnalysisError,
    ConfigError,
    ContractError,
    DataReadError,
    EngagekitError,
    OutputError,
)
from .features import EncounterFeatures
from .io import read_encounters, write_table
from .simulation import (
    Heterogeneity,
    SimulatedData,
    parse_heterogeneity,
    simulate_encounters,
)
from .summary import EncounterSummary, summarize_encounters
from .validation import (
    ValidationReport,
    check_encounters,
    coerce_encounters,
    encounter_contract,
    split_by_validity,
    validate_encounters,
)

# Heavier parts (scikit-learn, statsmodels, matplotlib) load on first use, so that
# ``import engagekit`` and the command line start quickly.
_LAZY = {
    "EngagementModel": "models",
    "TrainingResult": "models",
    "fit_model": "models",
    "train_model": "models",
    "evaluate_predictions": "evaluation",
    "point_metrics": "evaluation",
    "heterogeneity_analysis": "heterogeneity",
    "fit_gee": "heterogeneity",
    "forest_plot": "heterogeneity.plot",
    "Explanation": "explain",
    "explain_predictions": "explain",
    "attribute_importance": "explain",
    "rank_agreement": "explain",
    "choose_flag_rule": "flags",
    "forecast_dropout": "forecast",
    "minimum_detectable_deviation": "heterogeneity",
    "Report": "report",
    "ReportModel": "report",
    "build_report": "report",
    "model_card": "report",
    "load_model": "io.model_store",
    "save_model": "io.model_store",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'engagekit' has no attribute {name!r}")


try:
    __version__ = version("engagekit")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0+unknown"

__all__ = [
    "AnalysisError",
    "Config",
    "ConfigError",
    "ContractError",
    "DataReadError",
    "EncounterFeatures",
    "EncounterSummary",
    "EngagekitError",
    "Heterogeneity",
    "OutputError",
    "SimulatedData",
    "ValidationReport",
    "__version__",
    "check_encounters",
    "coerce_encounters",
    "encounter_contract",
    "load_config",
    "parse_heterogeneity",
    "read_encounters",
    "simulate_encounters",
    "split_by_validity",
    "summarize_encounters",
    "validate_encounters",
    "write_table",
    *_LAZY,
]
