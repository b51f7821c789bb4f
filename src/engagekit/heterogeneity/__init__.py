"""The cross-treatment question: does each practitioner quality matter alike in every
treatment? GEE tests of attribute × treatment heterogeneity with equivalence tests,
marginal effects, a forest plot, simulation-based power and the smallest deviation the
test could detect."""

from .._lazy import lazy_exports
from ._analysis import (
    AnalysisMethod,
    AttributeResult,
    Contrast,
    Equivalence,
    HeterogeneityResult,
    JointTest,
    TreatmentEffect,
    analysis_settings,
    heterogeneity_analysis,
    slope_name,
)
from ._detectable import minimum_detectable_deviation
from ._gee import GeeFit, fit_gee
from ._power import (
    PatientsForPowerResult,
    PowerPoint,
    PowerResult,
    PowerSettings,
    Share,
    estimate_power,
    patients_for_power,
    power_config,
)

# the forest plot loads matplotlib: on first use only
__getattr__, __dir__ = lazy_exports(__name__, {"forest_plot": "._plot"}, globals())

__all__ = [
    "AnalysisMethod",
    "AttributeResult",
    "Contrast",
    "Equivalence",
    "GeeFit",
    "HeterogeneityResult",
    "JointTest",
    "PatientsForPowerResult",
    "PowerPoint",
    "PowerResult",
    "PowerSettings",
    "Share",
    "TreatmentEffect",
    "analysis_settings",
    "estimate_power",
    "fit_gee",
    "forest_plot",
    "heterogeneity_analysis",
    "minimum_detectable_deviation",
    "patients_for_power",
    "power_config",
    "slope_name",
]
