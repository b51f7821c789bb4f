"""Attribute x treatment heterogeneity: an attribute that matters more in one treatment.

The default simulator gives every attribute the same effect in every treatment, which is
the qualitative study's claim. A :class:`Heterogeneity` breaks that claim on purpose for
one attribute in one treatment, so the heterogeneity tests and power analyses can be
checked against a known departure.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from ..config import OUTCOME_NAMES, Config
from ..errors import ConfigError

__all__ = ["Heterogeneity", "parse_heterogeneity"]

_FORM = "ATTRIBUTE:TREATMENT:EXTRA or ATTRIBUTE:TREATMENT:EXTRA:OUTCOME"
_EXAMPLE = "'active_listening:cbt_online:0.5'"


@dataclass(frozen=True)
class Heterogeneity:
    """An extra effect of one attribute in one treatment.

    Parameters
    ----------
    attribute : str
        A configured attribute (rated quality), e.g. ``"active_listening"``.
    treatment : str
        A configured treatment, e.g. ``"cbt_online"``.
    extra_log_odds : float
        Added to the attribute's log-odds effect in that treatment, per point of the
        *configured* rating scale (not the default 1-5 scale), as recorded: for an
        attribute with ``higher_is_better: false``, whose slope is negative, a negative
        extra makes it matter more.
    outcomes : tuple of str, default ("attended_next", "adherent")
        The outcomes the extra effect applies to.

    Raises
    ------
    ConfigError
        ``extra_log_odds`` is not a finite number, or ``outcomes`` is empty or names an
        outcome engagekit does not model. Whether ``attribute`` and ``treatment`` exist
        is checked against a config by :func:`parse_heterogeneity` and
        :func:`~engagekit.simulation.simulate_encounters`.

    Examples
    --------
    >>> Heterogeneity("empathy", "antidepressants", -0.2, ("adherent",))
    Heterogeneity(attribute='empathy', treatment='antidepressants', extra_log_odds=-0.2, outcomes=('adherent',))
    """  # noqa: E501

    attribute: str
    treatment: str
    extra_log_odds: float
    outcomes: tuple[str, ...] = OUTCOME_NAMES

    def __post_init__(self) -> None:
        # Callers may pass a list; a frozen dataclass must stay hashable.
        object.__setattr__(self, "outcomes", tuple(self.outcomes))
        if not self.outcomes:
            raise ConfigError(
                "a heterogeneity needs at least one outcome; choose among "
                f"{', '.join(OUTCOME_NAMES)}"
            )
        unknown = [o for o in self.outcomes if o not in OUTCOME_NAMES]
        if unknown:
            raise ConfigError(
                f"heterogeneity outcome(s) {unknown} are not modelled; choose among "
                f"{', '.join(OUTCOME_NAMES)}"
            )
        try:
            extra = float(self.extra_log_odds)
        except (TypeError, ValueError) as e:
            raise ConfigError(
                f"heterogeneity extra_log_odds must be a number, found {self.extra_log_odds!r}"
            ) from e
        if not math.isfinite(extra):
            raise ConfigError(
                f"heterogeneity extra_log_odds must be a finite number, found {extra!r}"
            )
        object.__setattr__(self, "extra_log_odds", extra)


def parse_heterogeneity(spec: str, config: Config) -> Heterogeneity:
    """Read a heterogeneity written as ``ATTRIBUTE:TREATMENT:EXTRA[:OUTCOME]``.

    Parameters
    ----------
    spec : str
        ``"active_listening:cbt_online:0.5"`` adds 0.5 log-odds per rating point (of the
        configured scale) to the effect of active listening in online CBT, for both
        outcomes; ``"active_listening:cbt_online:0.5:adherent"`` only for adherence.
    config : Config
        The configuration whose attributes and treatments the spec must name.

    Returns
    -------
    Heterogeneity

    Raises
    ------
    ConfigError
        The spec has the wrong number of parts, names an unknown attribute, treatment
        or outcome, or its EXTRA is not a finite number. The message quotes the spec,
        says which part is wrong and lists the valid choices.

    Examples
    --------
    >>> from engagekit.config import load_config
    >>> cfg = load_config()
    >>> parse_heterogeneity("active_listening:cbt_online:0.5", cfg).outcomes
    ('attended_next', 'adherent')
    >>> parse_heterogeneity("listening:cbt_online:0.5", cfg)
    Traceback (most recent call last):
    ...
    engagekit.errors.ConfigError: heterogeneity 'listening:cbt_online:0.5': unknown attribute 'listening' (part 1, ATTRIBUTE); choose one of: approachability, empathy, support, active_listening, decision_making, self_kindness
    """  # noqa: E501
    parts = [p.strip() for p in str(spec).split(":")]
    if len(parts) not in (3, 4):
        raise ConfigError(
            f"heterogeneity {spec!r} has {len(parts)} part(s) separated by ':'; "
            f"expected {_FORM}, e.g. {_EXAMPLE}"
        )
    attribute, treatment, extra_text = parts[:3]
    _check_choice(spec, "attribute", attribute, 1, "ATTRIBUTE", config.attribute_names)
    _check_choice(spec, "treatment", treatment, 2, "TREATMENT", config.treatment_names)
    try:
        extra = float(extra_text)
    except ValueError as e:
        raise ConfigError(
            f"heterogeneity {spec!r}: EXTRA {extra_text!r} (part 3) is not a number; "
            f"give the extra log-odds per rating point, e.g. {_EXAMPLE}"
        ) from e
    if not math.isfinite(extra):
        raise ConfigError(
            f"heterogeneity {spec!r}: EXTRA {extra_text!r} (part 3) is not a finite "
            f"number; give the extra log-odds per rating point, e.g. {_EXAMPLE}"
        )
    outcomes: tuple[str, ...] = OUTCOME_NAMES
    if len(parts) == 4:
        _check_choice(spec, "outcome", parts[3], 4, "OUTCOME", OUTCOME_NAMES)
        outcomes = (parts[3],)
    return Heterogeneity(attribute, treatment, extra, outcomes)


def _check_choice(
    spec: str, what: str, value: str, position: int, slot: str, choices: Sequence[str]
) -> None:
    if value not in choices:
        raise ConfigError(
            f"heterogeneity {spec!r}: unknown {what} {value!r} (part {position}, "
            f"{slot}); choose one of: {', '.join(choices)}"
        )


def _check_against_config(heterogeneity: Sequence[Heterogeneity], config: Config) -> None:
    """Refuse heterogeneities built by hand that name what the config does not have."""
    for h in heterogeneity:
        if not isinstance(h, Heterogeneity):
            raise ConfigError(
                f"heterogeneity must be a sequence of Heterogeneity objects (see "
                f"parse_heterogeneity), found {h!r}"
            )
        if h.attribute not in config.attribute_names:
            raise ConfigError(
                f"{h!r} names unknown attribute {h.attribute!r}; choose one of: "
                f"{', '.join(config.attribute_names)}"
            )
        if h.treatment not in config.treatment_names:
            raise ConfigError(
                f"{h!r} names unknown treatment {h.treatment!r}; choose one of: "
                f"{', '.join(config.treatment_names)}"
            )
