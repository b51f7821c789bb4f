"""Explanations: why the model predicts what it does for each encounter.

A prediction's log-odds are split into a base value plus one SHAP value per feature,
which add up exactly to the prediction (:func:`explain_predictions`). Summed back to the
rated attributes, the contributions say which practitioner qualities move a patient's
predicted engagement, and by how much; averaged over encounters, overall and within
each treatment, they rank the attributes' importance, and the agreement of those
rankings between treatments is the machine-learning side of the cross-treatment
question (:func:`attribute_importance`, :func:`rank_agreement`).
"""

from ._importance import attribute_importance, rank_agreement
from ._shap_values import Explanation, explain_predictions

__all__ = [
    "Explanation",
    "attribute_importance",
    "explain_predictions",
    "rank_agreement",
]
