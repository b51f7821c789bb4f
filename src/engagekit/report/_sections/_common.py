"""What several sections share: a figure still to draw, and the config's words."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from ...config import Config

__all__ = ["Plot", "bad_outcome", "feature_group_labels", "treatment_labels"]

_GROUP_LABELS = {
    "treatment": "Treatment",
    "session": "Session number",
    "missingness": "Missing ratings (count)",
}


@dataclass(frozen=True)
class Plot:
    """A figure of the page: how to draw it, or why there is none.

    A section says which figure it shows and from what; the figure is drawn only when
    the page is rendered (:mod:`engagekit.report._render`), so that a section's view
    model is built, and tested, without drawing.

    Attributes
    ----------
    what : str
        The figure's name, as a missing figure's note names it ("ROC curve").
    draw : callable, optional
        Returns the :class:`~matplotlib.figure.Figure`, or raises ``ValueError`` saying
        why it cannot be drawn. Not compared: two plots of the same thing are equal.
    note : str, optional
        Why there is no figure, known before drawing (``draw`` is then None).
    """

    what: str
    draw: Callable[[], Figure] | None = field(default=None, compare=False, repr=False)
    note: str | None = None


def treatment_labels(config: Config) -> dict[str, str]:
    """Each treatment's label by its code, and "All treatments" for ``all``."""
    return {t.name: t.label for t in config.treatments} | {"all": "All treatments"}


def feature_group_labels(config: Config) -> dict[str, str]:
    """The label of each column of an explanation's ``grouped`` table: the attributes',
    the other feature groups' and the covariates'."""
    labels = {a.name: a.label for a in config.attributes.items}
    labels.update(_GROUP_LABELS)
    for covariate in config.covariates:
        labels[covariate] = covariate.replace("_", " ").capitalize()
    return labels


def bad_outcome(config: Config, target: str) -> str:
    """The bad outcome of ``target`` in the config's words ("did not attend the next
    session")."""
    return next((o.bad_outcome for o in config.outcomes if o.name == target), f"not {target}")
