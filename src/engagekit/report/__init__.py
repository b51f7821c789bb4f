"""Reports: what a trained model and the cross-treatment analysis show, for people.

A **model card** states, from a model's own record (its manifest and metrics), what the
model is for, what it was trained on, how it was validated and how well it does, overall
and per subgroup, under the headings of TRIPOD+AI. The **report** is one self-contained
HTML page for analysts and researchers: the data, each model's performance with
confidence intervals and plots, the cross-treatment analysis with its power, the
explanations, the at-risk flag rule, the aggregate forecast and the model cards. Both are
computed from data and models in memory and returned as text; writing them is the
caller's (or the ``engagekit report`` command's) job.
"""

from ._build import Report, ReportModel, build_report
from ._model_card import model_card, training_steps_sentences

__all__ = ["Report", "ReportModel", "build_report", "model_card", "training_steps_sentences"]
