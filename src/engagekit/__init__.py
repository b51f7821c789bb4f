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

from .errors import (
    AnalysisError,
    ArgumentError,
    ConfigError,
    ContractError,
    DataReadError,
    EngagekitError,
    OutputError,
    ResultFormatError,
    TamperedModelError,
    UntrustedModelError,
)

# Everything else loads on first use (``engagekit.load_config`` imports the config
# module then), so that ``import engagekit`` and ``engagekit --help`` start in a
# fraction of a second instead of loading pandas, scikit-learn and statsmodels.
_LAZY = {
    "Config": "config",
    "load_config": "config",
    "EncounterFeatures": "features",
    "read_encounters": "io",
    "write_table": "io",
    "Heterogeneity": "simulation",
    "SimulatedData": "simulation",
    "parse_heterogeneity": "simulation",
    "simulate_encounters": "simulation",
    "EncounterSummary": "summary",
    "summarize_encounters": "summary",
    "TableCoverage": "validation",
    "ValidationReport": "validation",
    "check_encounters": "validation",
    "coerce_encounters": "validation",
    "encounter_contract": "validation",
    "split_by_validity": "validation",
    "table_coverage": "validation",
    "validate_encounters": "validation",
    "EngagementModel": "models",
    "Adjustment": "choices",
    "Cluster": "choices",
    "CovarianceType": "choices",
    "FlagRuleKind": "choices",
    "JointTestKind": "choices",
    "ModelChoice": "choices",
    "ModelKind": "choices",
    "WorkingCorrelation": "choices",
    "ModelManifest": "models",
    "ModelMetrics": "models",
    "TrainingResult": "models",
    "build_manifest": "models",
    "fit_model": "models",
    "train_model": "models",
    "Metrics": "evaluation",
    "evaluate_predictions": "evaluation",
    "point_metrics": "evaluation",
    "HeterogeneityResult": "heterogeneity",
    "PatientsForPowerResult": "heterogeneity",
    "PowerResult": "heterogeneity",
    "estimate_power": "heterogeneity",
    "heterogeneity_analysis": "heterogeneity",
    "patients_for_power": "heterogeneity",
    "fit_gee": "heterogeneity",
    "forest_plot": "heterogeneity.plot",
    "Explanation": "explain",
    "explain_predictions": "explain",
    "attribute_importance": "explain",
    "rank_agreement": "explain",
    "choose_flag_rule": "flags",
    "flag_thresholds": "flags",
    "forecast_dropout": "forecast",
    "minimum_detectable_deviation": "heterogeneity",
    "Report": "report",
    "ReportModel": "report",
    "build_report": "report",
    "model_card": "report",
    "load_model": "io.model_store",
    "load_model_directory": "io.model_store",
    "save_model": "io.model_store",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value  # later look-ups skip this function
        return value
    raise AttributeError(f"module 'engagekit' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


try:
    __version__ = version("engagekit")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0+unknown"

__all__ = [
    "AnalysisError",
    "ArgumentError",
    "ConfigError",
    "ContractError",
    "DataReadError",
    "EngagekitError",
    "OutputError",
    "ResultFormatError",
    "TamperedModelError",
    "UntrustedModelError",
    "__version__",
    *_LAZY,
]
