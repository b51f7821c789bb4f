"""The choices engagekit offers, each an Enum defined once.

The library, the config and the command line (as typer Enum options) take these, so
that every place spells a choice the same way; their values are what JSON outputs, YAML
configs and the command line say. Each is a :class:`~enum.StrEnum`, so a member equals
its value (``Adjustment.HOLM == "holm"``) and a library function given the value works
as if given the member. This module imports nothing heavy, so that the command line can
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
>>> as_choice(WorkingCorrelation, "exchangeable", "working correlation")
<WorkingCorrelation.EXCHANGEABLE: 'exchangeable'>
>>> as_choice(FlagRuleKind, "top_k", "flag rule")
Traceback (most recent call last):
...
engagekit.errors.ArgumentError: unknown flag rule 'top_k'; expected one of 'sensitivity', 'top_percent', 'per_practitioner'
"""  # noqa: E501

from __future__ import annotations

from enum import Enum, StrEnum
from typing import TypeVar

from .errors import ArgumentError

__all__ = [
    "Adjustment",
    "Cluster",
    "CovarianceType",
    "FlagRuleKind",
    "JointTestKind",
    "MarginScale",
    "MissingRatings",
    "ModelChoice",
    "ModelKind",
    "WorkingCorrelation",
    "as_choice",
]

_Choice = TypeVar("_Choice", bound=Enum)


def as_choice(kind: type[_Choice], value: object, what: str) -> _Choice:
    """``value`` as a member of the choice ``kind``, or an error naming every choice.

    Parameters
    ----------
    kind : Enum class
        One of this module's choices.
    value : object
        A member of ``kind`` or its value (``"holm"``).
    what : str
        How the message names the choice (``"adjustment"``).

    Returns
    -------
    member of ``kind``

    Raises
    ------
    ArgumentError
        ``value`` is not one of the choices (a :class:`ValueError` too).
    """
    try:
        return kind(value)
    except ValueError:
        expected = ", ".join(repr(choice.value) for choice in kind)
        shown = value.value if isinstance(value, Enum) else value
        raise ArgumentError(f"unknown {what} {shown!r}; expected one of {expected}") from None


class ModelKind(StrEnum):
    """A kind of model engagekit fits (each is described in
    :mod:`engagekit.models.kinds`)."""

    #: penalised logistic regression with attribute × treatment terms
    LOGISTIC = "logistic"
    #: gradient-boosted trees (scikit-learn's HistGradientBoostingClassifier)
    GBM = "gbm"


class ModelChoice(StrEnum):
    """What to train: ``auto`` (every kind, keeping the one with the lower
    cross-validated log loss) or one :class:`ModelKind`; a new kind is added to both
    (``tests/test_choices.py`` checks that they agree)."""

    AUTO = "auto"
    LOGISTIC = ModelKind.LOGISTIC.value
    GBM = ModelKind.GBM.value


class FlagRuleKind(StrEnum):
    """How at-risk flags are set (see :mod:`engagekit.flags`)."""

    #: catch at least this share of the bad outcomes
    SENSITIVITY = "sensitivity"
    #: flag the k% highest-risk encounters (a capacity)
    TOP_PERCENT = "top_percent"
    #: flag on average N encounters per practitioner (a capacity)
    PER_PRACTITIONER = "per_practitioner"


class Cluster(StrEnum):
    """The clusters of the cross-treatment analysis' robust covariance."""

    PATIENT = "patient"
    PRACTITIONER = "practitioner"


class WorkingCorrelation(StrEnum):
    """The working correlation of the cross-treatment analysis' GEE."""

    INDEPENDENCE = "independence"
    EXCHANGEABLE = "exchangeable"


class CovarianceType(StrEnum):
    """The robust (sandwich) covariance of the cross-treatment analysis."""

    #: Kauermann and Carroll (2001): the default, close to its nominal level
    KAUERMANN_CARROLL = "kauermann_carroll"
    #: Mancl and DeRouen (2001): conservative with many terms per cluster
    BIAS_REDUCED = "bias_reduced"
    #: Liang and Zeger's plain sandwich, without a small-sample correction: what other
    #: software reports by default, for comparison; too small with few clusters
    ROBUST = "robust"


class MarginScale(StrEnum):
    """What one unit of the equivalence margin is measured per."""

    #: per standard deviation of the rating (pooled within treatments): the same on
    #: every instrument
    SD = "sd"
    #: per rating point: depends on the scale (tight on 1-5, loose on 0-100)
    POINT = "point"


class MissingRatings(StrEnum):
    """How the cross-treatment analysis treats encounters with a missing rating."""

    #: multiple imputation by chained equations, pooled by Rubin's rules
    MI = "mi"
    #: leave the encounter out (the sensitivity analysis)
    COMPLETE_CASE = "complete_case"


class JointTestKind(StrEnum):
    """The joint test that an attribute's effect is the same in every treatment."""

    #: Wald test with the corrected covariance, referred to a chi-square distribution
    WALD = "wald"
    #: the GEE score test against the model with one common slope
    SCORE = "score"


class Adjustment(StrEnum):
    """How the p-values of the cross-treatment test are adjusted across attributes."""

    #: Holm's step-down family-wise error control
    HOLM = "holm"
    #: Benjamini and Hochberg's false discovery rate control
    FDR_BH = "fdr_bh"

    @property
    def label(self) -> str:
        """The adjustment's name in a sentence ("Holm", "Benjamini–Hochberg")."""
        return _ADJUSTMENT_LABELS[self]


_ADJUSTMENT_LABELS = {Adjustment.HOLM: "Holm", Adjustment.FDR_BH: "Benjamini–Hochberg"}
