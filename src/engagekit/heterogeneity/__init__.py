"""The cross-treatment question: does each practitioner quality matter alike in every
treatment? GEE tests of attribute × treatment heterogeneity with equivalence tests,
marginal effects, a forest plot and simulation-based power."""

from .analysis import heterogeneity_analysis, slope_name
from .gee import GeeFit, fit_gee

__all__ = ["GeeFit", "fit_gee", "heterogeneity_analysis", "slope_name"]
