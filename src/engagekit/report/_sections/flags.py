"""Section 5, at-risk flags: each model's flag rule, how it did on the validation, and
the share of the report's encounters it flags beside the share it promises."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..._format import count
from ..._labels import outcome_label
from .._document import Table
from .._tables import (
    FLAG_SHARE_COLUMNS,
    OPERATING_POINT_COLUMNS,
    OPERATING_POINT_DEFINITIONS,
    flag_rule_sentence,
    flag_share_rows,
    operating_point_rows,
)
from ._common import bad_outcome

if TYPE_CHECKING:
    from ...config import Config
    from ...flags import AppliedFlagRule
    from ...models import ModelManifest
    from .._compute import FlagShares

__all__ = ["FlagsView", "build", "share_basis"]


@dataclass(frozen=True)
class FlagsView:
    """What the flags section says of one model.

    Attributes
    ----------
    target, label : str
    sentence : str
        The rule in words.
    operating_points : Table
        How its two thresholds did on the cross-validated predictions.
    definitions : str
        What the operating point's columns mean.
    n_encounters, n_patients, n_bad, n_flagged : str
        The validation's encounters, patients, bad outcomes and high flags.
    shares : Table or None
        The share of the report's encounters flagged, promised and measured; None when
        the rule cannot be applied to them.
    shares_note : str
        What the shares are of, or why there are none.
    """

    target: str
    label: str
    sentence: str
    operating_points: Table
    definitions: str
    n_encounters: str
    n_patients: str
    n_bad: str
    n_flagged: str
    shares: Table | None
    shares_note: str


def build(manifest: ModelManifest, shares: FlagShares, config: Config) -> FlagsView:
    """The flags section of a model, from the rule in its manifest and the rule applied
    to the report's encounters (:func:`engagekit.report._compute.flag_shares`)."""
    target = manifest.target
    rule = manifest.flag_rule
    point = rule.operating_point
    applied = shares.applied
    if applied is None:
        assert shares.note is not None  # a rule not applied comes with the reason
        shares_note = shares.note
    else:
        shares_note = share_basis(applied)
    return FlagsView(
        target=target,
        label=outcome_label(config, target),
        sentence=flag_rule_sentence(rule, bad_outcome(config, target)),
        operating_points=Table(OPERATING_POINT_COLUMNS, operating_point_rows(rule)),
        definitions=OPERATING_POINT_DEFINITIONS,
        n_encounters=count(point.n_encounters),
        n_patients=count(point.n_patients),
        n_bad=count(point.n_bad_outcomes),
        n_flagged=count(point.n_flagged),
        shares=(
            None
            if applied is None
            else Table(
                FLAG_SHARE_COLUMNS,
                flag_share_rows(applied, shares.n_high, shares.n_high_or_medium),
            )
        ),
        shares_note=shares_note,
    )


def share_basis(applied: AppliedFlagRule) -> str:
    """What the promised and the measured shares of ``applied`` are shares of."""
    if applied.set_on == "scored":
        basis = (
            f"the rule promises {applied.promise} of the encounters scored; measured on "
            f"this report's {count(applied.n_encounters)} encounters, scored as "
            "engagekit score scores them (encounters tied at a threshold are all flagged)"
        )
    else:
        basis = (
            f"the rule promises {applied.promise}: its promised shares are those it "
            f"flagged on the cross-validated predictions; measured on this report's "
            f"{count(applied.n_encounters)} encounters with the same thresholds"
        )
    return f"{basis[0].upper()}{basis[1:]}."
