"""At-risk flags: a threshold on risk chosen by a stated rule, levels, and reasons.

Risk is the probability of the bad outcome, ``1 - p`` where ``p`` is a model's probability
of the target (``attended_next``: came to the next session; ``adherent``: kept to the
treatment). A :class:`FlagRule` is chosen once, on validation predictions (out-of-fold
predictions of cross-validation), by one of three rules, and stored with the model:

- ``sensitivity``: catch at least this share of the bad outcomes;
- ``top_percent``: flag the k% highest-risk encounters (a capacity);
- ``per_practitioner``: flag on average N encounters per practitioner (a capacity).

Each rule gives one global risk threshold (``high`` at or above it) and a lower
``medium`` threshold; everything else is ``low``. When encounters are scored,
:func:`flag_thresholds` applies the rule to them: a capacity rule is a share of **the
encounters being scored** (the unit it was chosen on), so its thresholds are set again
on their risks and it flags the k% (N per practitioner) it promises at any service size
and whatever the model's calibration; the sensitivity rule needs outcomes, which new
encounters do not have, so it keeps the thresholds chosen on validation.

A flag's reasons are the rated qualities whose contributions to the model (SHAP values
on the log-odds of the good outcome, grouped by quality) lower this patient's chance of
the good outcome most, each with the config's practical suggestion.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Annotated, Any, ClassVar, Literal, Self

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ._arrays import as_float64
from ._checks import check_outcomes, check_probabilities
from ._pydantic_errors import field_problems
from .choices import FlagRuleKind, as_choice
from .config import Config

__all__ = [
    "FLAG_LEVELS",
    "FLAG_RULES",
    "NO_ATTRIBUTE_REASON",
    "AppliedFlagRule",
    "FlagRule",
    "OperatingPoint",
    "choose_flag_rule",
    "flag_levels",
    "flag_reasons",
    "flag_thresholds",
    "risk_raising_attributes",
]

#: The rules' names (the values of :class:`~engagekit.choices.FlagRuleKind`).
FLAG_RULES = tuple(kind.value for kind in FlagRuleKind)
FLAG_LEVELS = ("high", "medium", "low")

#: The reason given for a flagged encounter whose risk no rated quality raises (its risk
#: comes from the treatment, the session number, missing ratings or covariates).
NO_ATTRIBUTE_REASON = (
    "No rated quality raises the risk at this session; it comes from other factors "
    "(treatment, session number, missing ratings or patient characteristics)"
)

_FORMAT_VERSION = 1
# A target share times a count is compared with a whole number of encounters; this
# absorbs the rounding of, e.g., 0.7 * 10 = 7.000000000000001.
_COUNT_TOLERANCE = 1e-9
_REASON_SEPARATOR = " | "

Probability = Annotated[float, Field(ge=0.0, le=1.0)]
Count = Annotated[int, Field(ge=0)]


class OperatingPoint(BaseModel):
    """How a risk threshold performs on the validation encounters.

    Attributes
    ----------
    sensitivity : float
        Share of the bad outcomes that are flagged (risk at or above the threshold).
    specificity : float
        Share of the good outcomes that are not flagged.
    ppv : float
        Share of the flagged encounters whose outcome was bad.
    flags_per_100_encounters : float
    flags_per_100_patients : float or None
        Flagged encounters per 100 distinct patients (when patients were given).
    flags_per_practitioner : float or None
        Flagged encounters per distinct practitioner (when practitioners were given).
    n_encounters, n_bad_outcomes, n_flagged : int
    n_patients, n_practitioners : int or None
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    sensitivity: Probability
    specificity: Probability
    ppv: Probability
    flags_per_100_encounters: Annotated[float, Field(ge=0.0, le=100.0)]
    flags_per_100_patients: Annotated[float, Field(ge=0.0)] | None = None
    flags_per_practitioner: Annotated[float, Field(ge=0.0)] | None = None
    n_encounters: Annotated[int, Field(ge=1)]
    n_bad_outcomes: Count
    n_flagged: Count
    n_patients: Count | None = None
    n_practitioners: Count | None = None


class _RuleThresholds(BaseModel):
    """What a chosen rule and an applied one share: the rule, its value, the two risk
    thresholds and the outcome; one check and one versioned dict form for both."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    _what: ClassVar[str] = "flag rule"

    rule: FlagRuleKind
    value: Annotated[float, Field(gt=0.0)]
    threshold: Probability
    medium_threshold: Probability
    target: str | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        _check_value(self.rule, self.value)
        if self.medium_threshold > self.threshold:
            raise ValueError(
                f"medium_threshold ({self.medium_threshold}) must not exceed threshold "
                f"({self.threshold})"
            )
        return self

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping, with a ``format_version``; :meth:`from_dict` reads it back."""
        return {"format_version": _FORMAT_VERSION, **self.model_dump(mode="json")}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        """Rebuild the record from :meth:`to_dict`'s mapping (e.g. read from a model's JSON).

        Raises
        ------
        ValueError
            The mapping is not a record of this kind of a supported ``format_version``.
        """
        return _from_versioned_dict(cls, data, cls._what)


class FlagRule(_RuleThresholds):
    """A stated rule for at-risk flags and the thresholds it chose on validation data.

    Build one with :func:`choose_flag_rule`; apply it to the encounters being scored
    with :func:`flag_thresholds`, then :func:`flag_levels`.

    The capacity rules are shares of encounters: ``top_percent`` k flags "the k% of
    encounters at highest risk", on the validation predictions when the rule is chosen
    and of the encounters being scored when it is applied (every encounter of the table
    scored, not each patient's latest one; score a caseload's latest encounters to
    flag k% of them). Their thresholds below are what the rule meant on the validation
    predictions; scoring sets them again. The ``sensitivity`` rule keeps its thresholds.

    Attributes
    ----------
    rule : {"sensitivity", "top_percent", "per_practitioner"}
    value : float
        The rule's target: a sensitivity in (0, 1], a percentage in (0, 100], or a
        number of flags per practitioner (> 0).
    threshold : float
        Risk (``1 - p``) at or above which a flag is ``high`` on the validation
        predictions.
    medium_threshold : float
        Risk at or above which (and below ``threshold``) a flag is ``medium``; at most
        ``threshold``. It is the same rule with a wider net: the sensitivity rule with
        half the missed share (target ``(1 + value) / 2``), the capacity rules with
        twice the capacity (``2 k%``, ``2 N`` per practitioner).
    target : str or None
        The outcome whose risk is flagged (``attended_next`` or ``adherent``), if known.
    operating_point, medium_operating_point : OperatingPoint
        Performance on the validation encounters of flagging at ``threshold`` and at
        ``medium_threshold``.

    Examples
    --------
    >>> import numpy as np
    >>> y = np.array([1, 1, 1, 0, 1, 0, 1, 1, 0, 1])
    >>> p = np.array([.95, .9, .9, .4, .85, .6, .8, .7, .3, .92])
    >>> rule = choose_flag_rule(y, p, "sensitivity", 0.6)
    >>> round(rule.threshold, 2), rule.operating_point.sensitivity
    (0.6, 0.6666666666666666)
    >>> FlagRule.from_dict(rule.to_dict()) == rule
    True
    """

    operating_point: OperatingPoint
    medium_operating_point: OperatingPoint


def _from_versioned_dict(cls: type[BaseModel], data: Any, what: str) -> Any:
    """``cls`` validated from a ``to_dict`` mapping, or a ValueError naming ``what``."""
    if not isinstance(data, Mapping):
        article = "an" if what[0] in "aeiou" else "a"
        raise ValueError(f"{article} {what} must be a mapping, found {type(data).__name__}")
    data = dict(data)
    version = data.pop("format_version", _FORMAT_VERSION)
    if version != _FORMAT_VERSION:
        raise ValueError(
            f"{what} format_version {version!r} is not supported; this engagekit "
            f"reads format_version {_FORMAT_VERSION}"
        )
    try:
        return cls.model_validate(data)
    except ValidationError as e:
        raise ValueError(f"the {what} is not valid: {'; '.join(field_problems(e))}") from e


class AppliedFlagRule(_RuleThresholds):
    """The thresholds a :class:`FlagRule` set on the encounters being scored.

    Build one with :func:`flag_thresholds`; apply it with :func:`flag_levels`. A
    capacity rule (``top_percent``, ``per_practitioner``) is a share of the encounters
    being scored, so its thresholds are set on their risks (``set_on="scored"``); the
    ``sensitivity`` rule needs outcomes, which new encounters do not have, so it keeps
    the thresholds chosen on the validation predictions (``set_on="validation"``), as
    does any rule on an empty table.

    Attributes
    ----------
    rule, value, target
        As in the :class:`FlagRule` applied.
    threshold, medium_threshold : float
        Risk at or above which an encounter is flagged ``high`` (``medium``, below
        ``threshold``).
    set_on : {"scored", "validation"}
        Where the thresholds were set.
    n_encounters : int
        Encounters scored: the set the shares are of.
    n_practitioners : int or None
        Distinct practitioners among them (``per_practitioner`` only).
    promised_high_share, promised_high_or_medium_share : float
        The share of the scored encounters the rule promises to flag ``high`` (and
        ``high`` or ``medium``): ``k / 100`` (``2k / 100``) for ``top_percent``,
        ``N * n_practitioners / n_encounters`` (twice that) for ``per_practitioner``,
        at most 1. The ``sensitivity`` rule promises a share of the bad outcomes, not
        of encounters: its shares are those it flagged on the validation predictions.
        Ties at a threshold are all flagged, so the measured share can be higher.

    Examples
    --------
    >>> import numpy as np
    >>> y = np.array([1, 1, 0, 1, 0, 1, 1, 0])
    >>> p = np.array([.9, .8, .3, .95, .5, .7, .85, .6])
    >>> applied = flag_thresholds(choose_flag_rule(y, p, "top_percent", 25), [.1, .2, .3, .4])
    >>> applied.set_on, applied.n_encounters, applied.promise
    ('scored', 4, 'the top 25%')
    >>> AppliedFlagRule.from_dict(applied.to_dict()) == applied
    True
    """

    _what: ClassVar[str] = "applied flag rule"

    set_on: Literal["scored", "validation"]
    n_encounters: Count
    n_practitioners: Count | None = None
    promised_high_share: Probability
    promised_high_or_medium_share: Probability

    @property
    def promise(self) -> str:
        """What the rule promises, in words: ``"the top 10%"``, ``"5 per practitioner,
        10.2% of these encounters"``, or for the sensitivity rule ``"to catch 80% of the
        bad outcomes; it flagged 31.0% of the validation encounters"``."""
        if self.rule is FlagRuleKind.TOP_PERCENT:
            return f"the top {self.value:g}%"
        share = f"{100.0 * self.promised_high_share:.1f}%"
        if self.rule is FlagRuleKind.PER_PRACTITIONER:
            return f"{self.value:g} per practitioner, {share} of these encounters"
        return (
            f"to catch {100.0 * self.value:g}% of the bad outcomes; it flagged {share} of "
            "the validation encounters"
        )


def _check_value(rule: FlagRuleKind | str, value: float) -> FlagRuleKind:
    """``rule`` as a :class:`FlagRuleKind`, if ``value`` is in its range; else a
    ValueError saying what the rule takes."""
    rule = as_choice(FlagRuleKind, rule, "flag rule")
    if not np.isfinite(value):
        raise ValueError(f"the {rule.value!r} rule needs a finite value, found {value!r}")
    if rule is FlagRuleKind.SENSITIVITY and not 0.0 < value <= 1.0:
        raise ValueError(f"a target sensitivity must be in (0, 1] (e.g. 0.8), found {value!r}")
    if rule is FlagRuleKind.TOP_PERCENT and not 0.0 < value <= 100.0:
        raise ValueError(
            f"top_percent is a percentage of encounters in (0, 100] (e.g. 10), found {value!r}"
        )
    if rule is FlagRuleKind.PER_PRACTITIONER and not value > 0.0:
        raise ValueError(
            f"per_practitioner is a number of flags per practitioner above 0, found {value!r}"
        )
    return rule


def _as_1d(values: Any, name: str, n: int | None = None) -> np.ndarray:
    array = np.asarray(values)
    if array.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, found shape {array.shape}")
    if n is not None and len(array) != n:
        raise ValueError(f"{name} has {len(array)} values but y has {n}; give one per encounter")
    return array


def _as_float(values: Any, name: str, n: int | None = None) -> np.ndarray:
    """A one-dimensional float array (missing values as NaN), or a clear error."""
    try:
        array = as_float64(values)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{name} must be numbers, one per encounter: {e}") from e
    return _as_1d(array, name, n)


def _checked_outcomes(y: Any, p: Any) -> tuple[np.ndarray, np.ndarray]:
    """``(bad, risk)``: 1.0 where the outcome was bad, and ``1 - p``; or a clear error."""
    y_arr = _as_float(y, "y")
    p_arr = _as_float(p, "p", len(y_arr))
    if len(y_arr) == 0:
        raise ValueError("y and p are empty; a flag rule needs validation predictions")
    check_outcomes(
        y_arr,
        "y",
        what="the recorded target, 0 or 1",
        hint="drop encounters whose outcome is empty",
    )
    check_probabilities(p_arr, "p")
    bad = 1.0 - y_arr
    n_bad = int(bad.sum())
    if n_bad == 0 or n_bad == len(bad):
        which = "bad (0)" if n_bad == 0 else "good (1)"
        raise ValueError(
            f"the validation outcomes have no {which} outcome among {len(bad)} encounters; "
            "sensitivity, specificity and PPV need both"
        )
    return bad, 1.0 - p_arr


def _n_distinct(values: np.ndarray, name: str) -> int:
    series = pd.Series(values)
    if series.isna().any():
        raise ValueError(f"{name} has {int(series.isna().sum())} missing value(s); fill them in")
    return int(series.nunique())


def _threshold_for_count(risk: np.ndarray, count: int) -> float:
    """The risk of the ``count``-th highest-risk encounter: flagging at or above it
    flags at least ``count`` encounters (more when risks tie), any higher cut fewer."""
    count = min(max(count, 1), len(risk))
    return float(np.partition(risk, len(risk) - count)[len(risk) - count])


def _sensitivity_threshold(risk: np.ndarray, bad: np.ndarray, target: float) -> float:
    """The highest risk cut whose sensitivity is at least ``target``."""
    bad_risk = risk[bad == 1.0]
    needed = math.ceil(target * len(bad_risk) - _COUNT_TOLERANCE)
    return _threshold_for_count(bad_risk, needed)


def _capacity_count(rule: FlagRuleKind, value: float, n: int, n_practitioners: int | None) -> float:
    """Encounters to flag on the validation data under a capacity rule."""
    if rule is FlagRuleKind.TOP_PERCENT:
        return value / 100.0 * n
    # the callers refuse a per_practitioner rule without practitioners
    assert n_practitioners is not None
    return value * n_practitioners


def _operating_point(
    risk: np.ndarray,
    bad: np.ndarray,
    threshold: float,
    n_patients: int | None,
    n_practitioners: int | None,
) -> OperatingPoint:
    flagged = risk >= threshold
    n_flagged = int(flagged.sum())
    n_bad = int(bad.sum())
    true_positives = int((flagged & (bad == 1.0)).sum())
    return OperatingPoint(
        sensitivity=true_positives / n_bad,
        specificity=int((~flagged & (bad == 0.0)).sum()) / (len(bad) - n_bad),
        ppv=true_positives / n_flagged if n_flagged else 0.0,
        flags_per_100_encounters=100.0 * n_flagged / len(bad),
        flags_per_100_patients=None if n_patients is None else 100.0 * n_flagged / n_patients,
        flags_per_practitioner=None if n_practitioners is None else n_flagged / n_practitioners,
        n_encounters=len(bad),
        n_bad_outcomes=n_bad,
        n_flagged=n_flagged,
        n_patients=n_patients,
        n_practitioners=n_practitioners,
    )


def choose_flag_rule(
    y: Any,
    p: Any,
    rule: FlagRuleKind | str,
    value: float,
    practitioners: Any = None,
    *,
    patients: Any = None,
    target: str | None = None,
) -> FlagRule:
    """Choose the risk thresholds of a stated flag rule on validation predictions.

    Risk is ``1 - p``; an encounter is flagged ``high`` when its risk is at or above
    ``threshold``. The thresholds are risks of validation encounters:

    - ``sensitivity`` (``value`` in (0, 1]): the highest threshold that flags at least
      ``ceil(value * n_bad)`` of the ``n_bad`` encounters with a bad outcome, i.e. whose
      sensitivity is at least ``value``; any higher threshold falls below it.
    - ``top_percent`` (``value`` = k in (0, 100]): the risk of the ``ceil(k/100 * n)``-th
      highest-risk encounter, so at least k% of the ``n`` encounters are flagged (more
      only when risks tie at the cut).
    - ``per_practitioner`` (``value`` = N > 0): the risk of the ``ceil(N * P)``-th
      highest-risk encounter, where ``P`` is the number of distinct practitioners in
      ``practitioners``: on the validation data the flags average N per practitioner over
      the whole validation period (for N per week, pass N times the weeks it covers).
      It is one global threshold, so a busy practitioner gets more flags than a quiet
      one, and it applies unchanged to new data.

    ``medium_threshold`` is the same rule with a wider net: target sensitivity
    ``(1 + value) / 2`` (half the missed bad outcomes), or twice the capacity (``2k``%,
    capped at 100%; ``2N`` per practitioner, capped at every encounter).

    Parameters
    ----------
    y : array-like of {0, 1}
        The recorded target (1 = the good outcome) of the validation encounters.
    p : array-like of float
        Validation (out-of-fold) probabilities of the good outcome, one per encounter.
    rule : FlagRuleKind or {"sensitivity", "top_percent", "per_practitioner"}
    value : float
        Target sensitivity, percentage, or flags per practitioner.
    practitioners : array-like, optional
        Practitioner of each encounter; required by ``per_practitioner``, and used by
        every rule to report flags per practitioner.
    patients : array-like, optional
        Patient of each encounter, to report flags per 100 patients.
    target : str, optional
        The outcome the predictions are for; stored with the rule.

    Returns
    -------
    FlagRule

    Raises
    ------
    ValueError
        An unknown rule or a value out of range; inputs of different lengths; ``y`` not
        0/1 or ``p`` not in [0, 1]; outcomes all good or all bad; ``per_practitioner``
        without practitioners, or asking for more flags than there are encounters.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> p = rng.uniform(0.5, 1.0, 1000)
    >>> y = rng.binomial(1, p)
    >>> rule = choose_flag_rule(y, p, "top_percent", 10)
    >>> rule.operating_point.flags_per_100_encounters
    10.0
    >>> choose_flag_rule(y, p, "per_practitioner", 5)
    Traceback (most recent call last):
    ...
    ValueError: the 'per_practitioner' rule needs practitioners (one per encounter)
    """
    rule = _check_value(rule, value)
    bad, risk = _checked_outcomes(y, p)
    n = len(bad)
    n_practitioners = None
    if practitioners is not None:
        practitioners = _as_1d(practitioners, "practitioners", n)
        n_practitioners = _n_distinct(practitioners, "practitioners")
    elif rule is FlagRuleKind.PER_PRACTITIONER:
        raise ValueError("the 'per_practitioner' rule needs practitioners (one per encounter)")
    n_patients = None
    if patients is not None:
        n_patients = _n_distinct(_as_1d(patients, "patients", n), "patients")

    if rule is FlagRuleKind.SENSITIVITY:
        threshold = _sensitivity_threshold(risk, bad, value)
        medium = _sensitivity_threshold(risk, bad, (1.0 + value) / 2.0)
    else:
        count = _capacity_count(rule, value, n, n_practitioners)
        if count > n + _COUNT_TOLERANCE:
            raise ValueError(
                f"{value:g} flags per practitioner for {n_practitioners} practitioners is "
                f"{count:g} flags, more than the {n} validation encounters; ask for fewer"
            )
        threshold = _threshold_for_count(risk, math.ceil(count - _COUNT_TOLERANCE))
        medium = _threshold_for_count(risk, math.ceil(2.0 * count - _COUNT_TOLERANCE))

    def point(cut: float) -> OperatingPoint:
        return _operating_point(risk, bad, cut, n_patients, n_practitioners)

    return FlagRule(
        rule=rule,
        value=float(value),
        threshold=threshold,
        medium_threshold=medium,
        target=target,
        operating_point=point(threshold),
        medium_operating_point=point(medium),
    )


def _checked_risk(risk: Any) -> np.ndarray:
    values = _as_float(risk, "risk")
    check_probabilities(values, "risk", what="in [0, 1]")
    return values


def _cut_for_count(risk: np.ndarray, count: int) -> float:
    """A threshold that flags the ``count`` highest risks (and any tied with the last).

    It lies halfway between the ``count``-th highest risk and the next lower one: the
    risk of an encounter computed again in another chunk of rows can differ in the last
    bit of a double (a matrix product's blocking), and must not cross the threshold.
    """
    cut = _threshold_for_count(risk, count)
    # the highest risk below the cut, without a copy of the risks (millions, streamed)
    below = float(np.max(risk, where=risk < cut, initial=-np.inf))
    if below == -np.inf:
        return 0.0  # every encounter is flagged
    middle = below + (cut - below) / 2.0
    return middle if middle > below else cut


def flag_thresholds(rule: FlagRule, risk: Any, practitioners: Any = None) -> AppliedFlagRule:
    """The thresholds ``rule`` sets on the encounters being scored.

    A capacity rule is a share of the encounters being scored, counted as
    :func:`choose_flag_rule` counts on the validation predictions: ``top_percent`` k
    flags ``high`` the ``ceil(k/100 * n)`` highest-risk of the ``n`` scored encounters,
    ``per_practitioner`` N the ``ceil(N * P)`` highest, ``P`` the distinct
    practitioners among them; ``medium`` goes to twice as many (high included). Both
    are capped at every encounter, and encounters tied at a threshold are all flagged.
    The ``sensitivity`` rule keeps its validation thresholds (it needs outcomes). So
    that chunks of a large table flag exactly as the whole table, compute the risks of
    every encounter, call this once, and flag each chunk with the result.

    Parameters
    ----------
    rule : FlagRule
        The model's stored rule.
    risk : array-like of float
        Risk of the bad outcome (``1 - p``) of every encounter being scored.
    practitioners : array-like, optional
        Practitioner of each encounter; required by ``per_practitioner``.

    Returns
    -------
    AppliedFlagRule
        The thresholds to pass to :func:`flag_levels`, and the shares they promise.

    Raises
    ------
    ValueError
        A risk is missing or outside [0, 1]; ``per_practitioner`` without one
        practitioner per encounter, or with a practitioner missing.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> p = rng.uniform(0.5, 1.0, 1000)
    >>> rule = choose_flag_rule(rng.binomial(1, p), p, "top_percent", 10)
    >>> risk = rng.uniform(0.0, 0.3, 40)  # a service whose risks are lower
    >>> applied = flag_thresholds(rule, risk)
    >>> levels = flag_levels(risk, applied)
    >>> int((levels == "high").sum()), int((levels != "low").sum())
    (4, 8)
    >>> bool(applied.threshold < rule.threshold)
    True
    >>> by_practitioner = choose_flag_rule(rng.binomial(1, p), p, "per_practitioner", 2,
    ...                                    np.repeat(np.arange(50), 20))
    >>> flag_thresholds(by_practitioner, risk)
    Traceback (most recent call last):
    ...
    ValueError: the 'per_practitioner' rule flags 2 encounters per practitioner of the \
encounters scored; give the practitioner of each (practitioner_id)
    """
    values = _checked_risk(risk)
    n = len(values)
    n_practitioners = None
    if rule.rule is FlagRuleKind.PER_PRACTITIONER:
        if practitioners is None:
            raise ValueError(
                f"the 'per_practitioner' rule flags {rule.value:g} "
                f"encounter{'' if rule.value == 1 else 's'} per practitioner of the "
                "encounters scored; give the practitioner of each (practitioner_id)"
            )
        n_practitioners = _n_distinct(_as_1d(practitioners, "practitioners", n), "practitioners")
    if rule.rule is FlagRuleKind.SENSITIVITY or n == 0:
        return AppliedFlagRule(
            rule=rule.rule,
            value=rule.value,
            target=rule.target,
            n_encounters=n,
            threshold=rule.threshold,
            medium_threshold=rule.medium_threshold,
            set_on="validation",
            n_practitioners=n_practitioners,
            promised_high_share=rule.operating_point.flags_per_100_encounters / 100.0,
            promised_high_or_medium_share=(
                rule.medium_operating_point.flags_per_100_encounters / 100.0
            ),
        )
    count = _capacity_count(rule.rule, rule.value, n, n_practitioners)
    share = rule.value / 100.0 if rule.rule is FlagRuleKind.TOP_PERCENT else count / n
    return AppliedFlagRule(
        rule=rule.rule,
        value=rule.value,
        target=rule.target,
        n_encounters=n,
        threshold=_cut_for_count(values, math.ceil(count - _COUNT_TOLERANCE)),
        medium_threshold=_cut_for_count(values, math.ceil(2.0 * count - _COUNT_TOLERANCE)),
        set_on="scored",
        n_practitioners=n_practitioners,
        promised_high_share=min(share, 1.0),
        promised_high_or_medium_share=min(2.0 * share, 1.0),
    )


def flag_levels(risk: Any, rule: FlagRule | AppliedFlagRule) -> np.ndarray:
    """The flag level of each encounter: ``high``, ``medium`` or ``low``.

    Parameters
    ----------
    risk : array-like of float
        Risk of the bad outcome, ``1 - p``.
    rule : AppliedFlagRule or FlagRule
        Thresholds to compare with: those a rule set on the encounters being scored
        (:func:`flag_thresholds`, which keeps a capacity rule's promise), or a
        :class:`FlagRule`'s own, chosen on the validation predictions.

    Returns
    -------
    numpy.ndarray of str
        ``high`` where ``risk >= rule.threshold``, ``medium`` where
        ``rule.medium_threshold <= risk < rule.threshold``, ``low`` elsewhere.

    Raises
    ------
    ValueError
        A risk is missing or outside [0, 1].

    Examples
    --------
    >>> import numpy as np
    >>> y = np.array([1, 1, 0, 1, 0, 1, 1, 0])
    >>> p = np.array([.9, .8, .3, .95, .5, .7, .85, .6])
    >>> rule = choose_flag_rule(y, p, "top_percent", 25)
    >>> flag_levels(1 - p, rule).tolist()
    ['low', 'low', 'high', 'low', 'high', 'medium', 'low', 'medium']
    >>> flag_levels([0.2, np.nan], rule)
    Traceback (most recent call last):
    ...
    ValueError: risk must be in [0, 1]; 1 value(s) are not (e.g. nan)
    """
    values = _checked_risk(risk)
    return np.select(
        [values >= rule.threshold, values >= rule.medium_threshold],
        ["high", "medium"],
        default="low",
    )


def risk_raising_attributes(
    grouped: pd.DataFrame, attributes: list[str] | Config, *, top: int = 2
) -> pd.DataFrame:
    """The rated qualities that lower the chance of the good outcome most, per row.

    Parameters
    ----------
    grouped : pandas.DataFrame
        Contributions to the log-odds of the good outcome, one column per attribute
        (other columns are ignored); a negative value raises the risk.
    attributes : list of str or Config
        The attribute columns to rank (a Config gives its ``attribute_names``).
    top : int, default 2

    Returns
    -------
    pandas.DataFrame
        Indexed like ``grouped``, columns ``reason_1`` ... ``reason_{top}``: the
        attribute names ordered from the most negative contribution, ``None`` where
        fewer attributes have a negative contribution. Ties keep the config's order.

    Examples
    --------
    >>> import pandas as pd
    >>> grouped = pd.DataFrame({"empathy": [-0.2, 0.1], "support": [-0.5, 0.3]})
    >>> risk_raising_attributes(grouped, ["empathy", "support"])
      reason_1 reason_2
    0  support  empathy
    1     None     None
    """
    names = list(attributes.attribute_names if isinstance(attributes, Config) else attributes)
    if not isinstance(top, int | np.integer) or top < 1:
        raise ValueError(f"top must be a whole number of reasons, at least 1; found {top!r}")
    absent = [name for name in names if name not in grouped.columns]
    if absent:
        raise ValueError(
            f"the grouped contributions lack the attribute column(s) {absent}; expected one "
            "column per configured attribute (as Explanation.grouped has)"
        )
    contributions = grouped[names].to_numpy(dtype="float64", na_value=np.nan)
    # only contributions that raise the risk compete; the rest sort last
    ranked = np.where(contributions < 0.0, contributions, np.inf)
    order = np.argsort(ranked, axis=1, kind="stable")[:, :top]
    raises = np.take_along_axis(ranked, order, axis=1) < np.inf
    chosen = np.asarray(names, dtype=object)[order]
    chosen[~raises] = None
    out = pd.DataFrame(
        chosen,
        index=grouped.index,
        columns=[f"reason_{k + 1}" for k in range(order.shape[1])],
        dtype=object,
    )
    # asking for more reasons than there are attributes leaves the extra columns empty
    for k in range(order.shape[1], top):
        out[f"reason_{k + 1}"] = None
    return out


def _format_rating(values: pd.Series) -> pd.Series:
    """Ratings as short text: 2.0 → "2", 3.5 → "3.5"; missing → <NA>."""
    text = pd.Series(pd.NA, index=values.index, dtype="string")
    recorded = values.notna()
    if recorded.any():
        uniques = values[recorded].unique()
        text[recorded] = values[recorded].map({v: f"{v:g}" for v in uniques}).astype("string")
    return text


def _previous_ratings(encounters: pd.DataFrame, names: list[str]) -> pd.DataFrame:
    """Each attribute's rating at the patient's previous session (the next-lower
    ``session_number`` in ``encounters``), in ``encounters``' row order; NaN at a first
    session."""
    frame = encounters[["patient_id", "session_number", *names]].reset_index(drop=True)
    in_order = frame.sort_values(["patient_id", "session_number"], kind="stable")
    previous = in_order.groupby("patient_id", sort=False, dropna=False)[names].shift(1)
    return _as_float_frame(previous.sort_index())


def _as_float_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` as float64 with NaN for missing values (ratings may be nullable)."""
    return pd.DataFrame(
        frame.to_numpy(dtype="float64", na_value=np.nan), index=frame.index, columns=frame.columns
    )


def _attribute_sentences(
    label: str,
    suggestion: str,
    rating: pd.Series,
    previous: pd.Series,
    midpoint: float,
    scale_max: str,
    higher_is_better: bool = True,
) -> pd.Series:
    """One sentence per row about one attribute.

    For a rating where higher is better: "Active listening was rated low (2/5, down from
    4): give undivided attention, ..." at or below ``midpoint``, else "... was rated 4/5
    (down from 5): ...". For a score where higher is worse: "BDI was high (40/63, up from
    30): ..." at or above ``midpoint``, else "BDI was 20/63 (up from 12): ...". "Up" and
    "down" are literal; only the word for a worrying level follows the direction.
    """
    now, before = _format_rating(rating), _format_rating(previous)
    empty = pd.Series("", index=rating.index, dtype="string")
    change = (
        empty.mask(previous < rating, "up from " + before)
        .mask(previous > rating, "down from " + before)
        .mask(previous == rating, "same as last time")
    )
    has_change = change != ""
    on_scale = now + "/" + scale_max
    if higher_is_better:
        verb, worrying_word, worrying = " was rated ", "low", rating <= midpoint
    else:
        verb, worrying_word, worrying = " was ", "high", rating >= midpoint
    flagged_level = verb + worrying_word + " (" + on_scale
    flagged_level = flagged_level + empty.mask(has_change, ", " + change) + ")"
    other = verb + on_scale + empty.mask(has_change, " (" + change + ")")
    rated = label + flagged_level.where(worrying, other)
    last_time = pd.Series("", index=rating.index, dtype="string").mask(
        previous.notna(), " (" + before + "/" + scale_max + " last time)"
    )
    missing_word = "rated" if higher_is_better else "recorded"
    not_rated = label + f" was not {missing_word} this session" + last_time
    sentence = rated.where(rating.notna(), not_rated)
    return (sentence + ": " + suggestion).astype("string")


def flag_reasons(
    grouped: pd.DataFrame,
    encounters: pd.DataFrame,
    config: Config,
    *,
    top: int = 2,
    flagged: Any = None,
) -> list[str]:
    """Plain-words reasons for each flag: the qualities that raise this patient's risk.

    For each row, the attributes whose grouped contribution to the log-odds of the good
    outcome is most negative (only negative ones; see :func:`risk_raising_attributes`),
    up to ``top``, each rendered as one sentence: the attribute's label, this session's
    rating on the scale (``"2/5"``), the previous session's rating and the direction
    (``"down from 4"``, ``"up from 1"``, ``"same as last time"``; left out at a first
    session or when the previous rating is missing), then ``": "`` and the config's
    suggestion. A rating at or below the scale's midpoint is called ``low`` (patients
    mostly rate 4 or 5 of 5, so a middle rating is low for them). A missing rating reads
    ``"... was not rated this session"``. Sentences are joined with ``" | "``.

    An attribute with ``higher_is_better: false`` (a score where higher is worse, such as
    a depression score on 0-63) reads the other way: ``"BDI was high (40/63, up from
    30)"`` at or above the midpoint, ``"BDI was 20/63 (down from 24)"`` below it, and
    ``"... was not recorded this session"`` when missing. Which attributes are named
    does not depend on the direction: it is the sign of their contributions.

    Parameters
    ----------
    grouped : pandas.DataFrame
        Contributions to the log-odds of the good outcome per attribute (as
        ``Explanation.grouped``), one row per row of ``encounters``, in the same order.
    encounters : pandas.DataFrame
        The encounters explained, with ``patient_id``, ``session_number`` and the
        attribute columns; the previous rating is the patient's rating at the next-lower
        session number in this table.
    config : Config
        Labels, suggestions and the rating scale.
    top : int, default 2
        At most this many reasons per row.
    flagged : array-like of bool, optional
        Rows that need reasons; the others get ``""``. All rows when omitted.

    Returns
    -------
    list of str
        One per row. A row that needs reasons but has no risk-raising attribute gets
        :data:`NO_ATTRIBUTE_REASON`.

    Raises
    ------
    ValueError
        ``grouped``, ``encounters`` and ``flagged`` differ in length, or a needed
        column is absent.

    Examples
    --------
    >>> import pandas as pd
    >>> from engagekit import load_config
    >>> config = load_config()
    >>> encounters = pd.DataFrame({
    ...     "patient_id": ["a", "a"], "session_number": [1, 2],
    ...     "active_listening": [4.0, 2.0], "empathy": [4.0, 4.0]})
    >>> grouped = pd.DataFrame(0.0, index=[0, 1], columns=config.attribute_names)
    >>> grouped["active_listening"] = [0.1, -0.8]
    >>> reasons = flag_reasons(grouped, encounters, config, top=1, flagged=[False, True])
    >>> reasons[0]
    ''
    >>> print(reasons[1])
    Active listening was rated low (2/5, down from 4): give undivided attention, avoid \
watching the clock, be thoughtful and attend to detail

    A score where higher is worse reads the other way round:

    >>> from engagekit.config import config_from_dict
    >>> bdi = {"name": "bdi", "label": "BDI", "description": "depression severity",
    ...        "suggestion": "review the treatment plan", "higher_is_better": False}
    >>> scale = {"min": 0, "max": 63}
    >>> scored = config_from_dict({"attributes": {"scale": scale, "items": [bdi]}})
    >>> visits = pd.DataFrame({
    ...     "patient_id": ["b", "b"], "session_number": [1, 2], "bdi": [30.0, 40.0]})
    >>> flag_reasons(pd.DataFrame({"bdi": [0.2, -0.6]}), visits, scored, flagged=[False, True])
    ['', 'BDI was high (40/63, up from 30): review the treatment plan']
    """
    n = len(encounters)
    if len(grouped) != n:
        raise ValueError(
            f"grouped has {len(grouped)} rows but encounters has {n}; give the "
            "contributions of exactly these encounters, in their order"
        )
    needed = ["patient_id", "session_number"]
    absent = [c for c in needed if c not in encounters.columns]
    if absent:
        raise ValueError(
            f"encounters lack the column(s) {absent}, needed to find the previous rating"
        )
    needs = np.ones(n, dtype=bool) if flagged is None else np.asarray(flagged, dtype=bool)
    if needs.shape != (n,):
        raise ValueError(
            f"flagged has shape {needs.shape}; give one true/false per encounter ({n})"
        )

    reasons = risk_raising_attributes(grouped, config, top=top).reset_index(drop=True)
    chosen = reasons[needs]
    names = [name for name in config.attribute_names if (chosen == name).any(axis=None)]
    rated = [name for name in names if name in encounters.columns]
    if len(rated) < len(names):
        raise ValueError(f"encounters lack the rating column(s) {sorted(set(names) - set(rated))}")
    current = _as_float_frame(encounters[names].reset_index(drop=True))
    previous = _previous_ratings(encounters, names)
    scale = config.attributes.scale
    midpoint = (scale.min + scale.max) / 2.0
    scale_max = f"{scale.max:g}"

    text = pd.Series("", index=reasons.index, dtype="string")
    for k, column in enumerate(reasons.columns):
        sentence_k = pd.Series(pd.NA, index=reasons.index, dtype="string")
        for name in names:
            rows = (reasons[column] == name).to_numpy() & needs
            if not rows.any():
                continue
            attribute = config.attribute(name)
            sentence_k[rows] = _attribute_sentences(
                attribute.label,
                attribute.suggestion,
                current.loc[rows, name],
                previous.loc[rows, name],
                midpoint,
                scale_max,
                attribute.higher_is_better,
            ).to_numpy()
        separator = _REASON_SEPARATOR if k else ""
        text = text.mask(sentence_k.notna(), text + separator + sentence_k)
    text[needs & (text == "").to_numpy()] = NO_ATTRIBUTE_REASON
    return text.tolist()
