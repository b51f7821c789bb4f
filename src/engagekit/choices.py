"""The choices engagekit offers, each an Enum defined once.

The library, the config and the command line (as typer Enum options) take these, so
that every place spells a choice the same way; their values are what JSON outputs and
the command line say. This module imports nothing else, so that the command line can
build its options without loading pandas or scikit-learn.

Examples
--------
>>> ModelKind("gbm") is ModelKind.GBM, str(ModelKind.LOGISTIC)
(True, 'logistic')
>>> [choice.value for choice in ModelChoice]
['auto', 'logistic', 'gbm']
>>> ModelKind("svm")
Traceback (most recent call last):
...
ValueError: 'svm' is not a valid ModelKind
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["ModelChoice", "ModelKind"]


class ModelKind(StrEnum):
    """A kind of model engagekit fits (each is described in
    :mod:`engagekit.models.kinds`)."""

    #: penalised logistic regression with attribute × treatment terms
    LOGISTIC = "logistic"
    #: gradient-boosted trees (scikit-learn's HistGradientBoostingClassifier)
    GBM = "gbm"


#: What to train: ``auto`` (every kind, keeping the one with the lower cross-validated
#: log loss) or one :class:`ModelKind`. Built from :class:`ModelKind`, so that a new kind
#: is a choice too.
ModelChoice = StrEnum(
    "ModelChoice",
    [("AUTO", "auto"), *((kind.name, kind.value) for kind in ModelKind)],
    module=__name__,
)
ModelChoice.__doc__ = (
    "What to train: ``auto`` (every kind, keeping the lower cross-validated log loss) or "
    "one model kind."
)
