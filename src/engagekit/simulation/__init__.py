"""Simulated encounter data with known ground truth.

The simulator generates encounter tables that follow the encounter contract: patients in
the configured treatments, their practitioners, session-by-session ratings of the rated
qualities with realistic patient, practitioner and session variation, missed sessions,
unrecorded ratings and a data cut-off. Alongside the table it returns the true
probabilities from which every outcome was drawn, so models, calibration and tests can
be checked against the truth rather than against another estimate. A
:class:`Heterogeneity` makes one quality matter more (or less) in one treatment, to
check the cross-treatment analysis against a known departure.

Every setting comes from the config (``attributes``, ``treatments`` and the
``simulation:`` block); the generative model is documented in
:mod:`engagekit.simulation._simulator`.
"""

from ._heterogeneity import Heterogeneity, parse_heterogeneity
from ._simulator import SimulatedData, simulate_encounters

__all__ = [
    "Heterogeneity",
    "SimulatedData",
    "parse_heterogeneity",
    "simulate_encounters",
]
