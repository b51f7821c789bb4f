"""The config's words for codes, for prose: outcome, treatment and attribute labels.

Column names, JSON keys and feature names stay codes (``attended_next``,
``listening_visits``); sentences a person reads use the labels a service wrote in its
config, so that a service calling adherence "Keeping to the plan" reads that.
"""

from __future__ import annotations

from .config import Config

__all__ = ["attribute_label", "in_sentence", "outcome_label", "treatment_label"]


def in_sentence(label: str) -> str:
    """``label`` as it reads inside a sentence: its first letter lower-cased, unless its
    first word is an abbreviation (all capitals, such as "BDI" or "GP").

    Examples
    --------
    >>> in_sentence("Re-attendance"), in_sentence("BDI"), in_sentence("PHQ-9 score")
    ('re-attendance', 'BDI', 'PHQ-9 score')
    >>> in_sentence("Keeping to the plan"), in_sentence("")
    ('keeping to the plan', '')
    """
    if not label:
        return label
    first_word = label.split(maxsplit=1)[0]
    letters = [c for c in first_word if c.isalpha()]
    if len(letters) >= 2 and all(c.isupper() for c in letters):
        return label
    return label[0].lower() + label[1:]


def outcome_label(config: Config, name: str) -> str:
    """The config's label of outcome ``name`` ("Adherence"), or ``name`` if it has none.

    Examples
    --------
    >>> from engagekit import load_config
    >>> outcome_label(load_config(), "attended_next")
    'Re-attendance'
    """
    return next((o.label for o in config.outcomes if o.name == name), name)


def treatment_label(config: Config, name: str) -> str:
    """The config's label of treatment ``name`` ("Listening visits"), or ``name``.

    Examples
    --------
    >>> from engagekit import load_config
    >>> treatment_label(load_config(), "listening_visits"), treatment_label(load_config(), "yoga")
    ('Listening visits', 'yoga')
    """
    return next((t.label for t in config.treatments if t.name == name), name)


def attribute_label(config: Config, name: str) -> str:
    """The config's label of attribute ``name`` ("Active listening"), or ``name``.

    Examples
    --------
    >>> from engagekit import load_config
    >>> attribute_label(load_config(), "active_listening")
    'Active listening'
    """
    return next((a.label for a in config.attributes.items if a.name == name), name)
