"""The kinds of model engagekit fits, each in one place.

A kind is everything engagekit does differently for one family of estimators: the
estimator itself, its fit on the training patients with some held out (tuning a penalty
or stopping trees early on them), its exact explanation (SHAP values of its log-odds
margin), the types a saved estimator holds, and the sentences the model card says about
it. Each kind is a :class:`ModelKindSpec` in its own module, registered in :data:`KINDS`:

- ``logistic`` (:mod:`~engagekit.models.kinds.logistic`): a penalised logistic
  regression with attribute × treatment terms, its penalty tuned on held-out patients,
  explained by exact linear SHAP;
- ``gbm`` (:mod:`~engagekit.models.kinds.gbm`): gradient-boosted trees, stopped early on
  held-out patients, explained by exact path-dependent TreeSHAP.

What every kind shares (holding out patients, fitting the features, checking
calibration, cross-validation, choosing among kinds) lives in
:mod:`engagekit.models._training`, which reaches the kinds through :func:`kind_spec`
only. Adding a kind: a module with a :class:`ModelKindSpec` subclass, a
:class:`~engagekit.choices.ModelKind` member naming it (and the same
:class:`~engagekit.choices.ModelChoice` member), and its entry in :data:`KINDS`;
``tests/test_model_kinds.py`` then runs it through every common check.

Examples
--------
>>> [kind.value for kind in KINDS]
['logistic', 'gbm']
>>> kind_spec("gbm").card_name
'gradient-boosted trees'
>>> kind_spec("svm")
Traceback (most recent call last):
...
ValueError: unknown model kind 'svm'; expected one of 'logistic', 'gbm'
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import Enum
from types import MappingProxyType
from typing import Any

from ...choices import ModelChoice, ModelKind
from ._spec import CHUNK_ROWS, HoldOut, KindFitSteps, MarginExplanation, ModelKindSpec
from .gbm import GbmKind
from .logistic import LogisticKind

__all__ = [
    "CHUNK_ROWS",
    "KINDS",
    "HoldOut",
    "KindFitSteps",
    "MarginExplanation",
    "ModelChoice",
    "ModelKind",
    "ModelKindSpec",
    "find_kind",
    "kind_spec",
]

#: Every kind engagekit fits, in the order ``auto`` tries them.
KINDS: Mapping[ModelKind, ModelKindSpec] = MappingProxyType(
    {spec.kind: spec for spec in (LogisticKind(), GbmKind())}
)


def kind_spec(kind: ModelKind | str) -> ModelKindSpec:
    """The registered kind named ``kind``.

    Parameters
    ----------
    kind : ModelKind or str
        ``"logistic"`` or ``"gbm"``.

    Returns
    -------
    ModelKindSpec

    Raises
    ------
    ValueError
        No kind of that name is registered.
    """
    spec = find_kind(kind)
    if spec is None:
        expected = ", ".join(repr(k.value) for k in KINDS)
        named = kind.value if isinstance(kind, Enum) else kind
        raise ValueError(f"unknown model kind {named!r}; expected one of {expected}")
    return spec


def find_kind(kind: Any) -> ModelKindSpec | None:
    """The registered kind named ``kind``, or None for anything else (a record read from
    a file may hold any value).

    >>> find_kind("logistic").kind is ModelKind.LOGISTIC, find_kind(["gbm"])
    (True, None)
    """
    if not isinstance(kind, str):
        return None
    try:
        return KINDS.get(ModelKind(kind))
    except ValueError:  # not a kind's name
        return None
