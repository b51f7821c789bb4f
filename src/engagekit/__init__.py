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

from ._lazy import lazy_exports
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
# fraction of a second instead of loading pandas, scikit-learn and statsmodels. The
# names are grouped by the step of the data flow they serve; each maps to the public
# package or module that documents it.
_LAZY = {
    # configuration and its vocabularies
    "Config": ".config",
    "load_config": ".config",
    "Adjustment": ".choices",
    "Cluster": ".choices",
    "CovarianceType": ".choices",
    "FlagRuleKind": ".choices",
    "JointTestKind": ".choices",
    "ModelChoice": ".choices",
    "ModelKind": ".choices",
    "WorkingCorrelation": ".choices",
    # reading and writing
    "read_encounters": ".io",
    "write_table": ".io",
    "write_json": ".io",
    "read_metrics": ".io",
    "read_result": ".io",
    "SavedModel": ".io",
    "save_model": ".io",
    "load_model": ".io",
    "load_model_directory": ".io",
    # checking data against the contract
    "TableCoverage": ".validation",
    "ValidationReport": ".validation",
    "check_encounters": ".validation",
    "coerce_encounters": ".validation",
    "encounter_contract": ".validation",
    "split_by_validity": ".validation",
    "table_coverage": ".validation",
    "validate_encounters": ".validation",
    # simulated data with known truth
    "Heterogeneity": ".simulation",
    "SimulatedData": ".simulation",
    "parse_heterogeneity": ".simulation",
    "simulate_encounters": ".simulation",
    # describing
    "EncounterSummary": ".summary",
    "summarize_encounters": ".summary",
    # modelling
    "EncounterFeatures": ".features",
    "EngagementModel": ".models",
    "ModelManifest": ".models",
    "ModelMetrics": ".models",
    "TrainingResult": ".models",
    "build_manifest": ".models",
    "fit_model": ".models",
    "HeldOutSample": ".models",
    "patient_sample_mask": ".models",
    "sample_for_training": ".models",
    "train_model": ".models",
    # evaluating predictions
    "Metrics": ".evaluation",
    "evaluate_predictions": ".evaluation",
    "point_metrics": ".evaluation",
    # the cross-treatment claim
    "HeterogeneityResult": ".heterogeneity",
    "PatientsForPowerResult": ".heterogeneity",
    "PowerResult": ".heterogeneity",
    "estimate_power": ".heterogeneity",
    "fit_gee": ".heterogeneity",
    "forest_plot": ".heterogeneity",
    "heterogeneity_analysis": ".heterogeneity",
    "minimum_detectable_deviation": ".heterogeneity",
    "patients_for_power": ".heterogeneity",
    # explaining, flagging and forecasting
    "Explanation": ".explain",
    "attribute_importance": ".explain",
    "explain_predictions": ".explain",
    "rank_agreement": ".explain",
    "FlagRule": ".flags",
    "choose_flag_rule": ".flags",
    "flag_thresholds": ".flags",
    "score_encounters": ".scoring",
    "forecast_dropout": ".forecast",
    # reporting
    "Report": ".report",
    "ReportModel": ".report",
    "build_report": ".report",
    "model_card": ".report",
}
__getattr__, __dir__ = lazy_exports(__name__, _LAZY, globals())

try:
    __version__ = version("engagekit")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0+unknown"

__all__ = [
    "__version__",
    # errors, each with its exit code
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
    *_LAZY,
]
