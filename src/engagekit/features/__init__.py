"""Features: what a model may know about an encounter at the time it happens.

Each encounter becomes one row of numbers built from the patient's ratings of the
practitioner's qualities at this session and at earlier sessions (previous rating,
running mean and minimum, change since last time, which ratings are missing), the session
number, the treatment and the configured covariates. A feature of session ``t`` is built
only from that patient's sessions up to ``t`` and never from an outcome, so a model
trained on the features cannot peek at the future.

:class:`EncounterFeatures` is the scikit-learn transformer; :mod:`.history` holds the
vectorised per-patient history computations it is made of.
"""

from ._history import (
    PatientOrder,
    change_since_previous,
    patient_session_order,
    previous_session,
    running_mean,
    running_min,
)
from ._transformer import ATTRIBUTE_FEATURE_SUFFIXES, EncounterFeatures

# saved model files name the class by this path (see engagekit.models)
EncounterFeatures.__module__ = __name__

__all__ = [
    "ATTRIBUTE_FEATURE_SUFFIXES",
    "EncounterFeatures",
    "PatientOrder",
    "change_since_previous",
    "patient_session_order",
    "previous_session",
    "running_mean",
    "running_min",
]
