"""Section 8, how the report was made: its title, when it was built, and the library
versions; the page's header says the same in one line."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from ..._format import DASH

__all__ = ["ModelName", "ProvenanceView", "build"]


@dataclass(frozen=True)
class ModelName:
    """A model as the header lists it: the outcome's label and code, and the kind."""

    label: str
    target: str
    kind: str


@dataclass(frozen=True)
class ProvenanceView:
    """How the report was made.

    Attributes
    ----------
    title : str
    created : str
        When it was built, to the minute (UTC).
    engagekit : str
        The engagekit version that built it.
    versions : tuple of (str, str)
        Each library and its version, engagekit first.
    models : tuple of ModelName
    """

    title: str
    created: str
    engagekit: str
    versions: tuple[tuple[str, str], ...]
    models: tuple[ModelName, ...]


def build(
    title: str,
    created: datetime,
    versions: Mapping[str, str],
    models: tuple[ModelName, ...] = (),
) -> ProvenanceView:
    """How the report was made: built at ``created`` (aware, converted to UTC) with
    these library ``versions``.

    Examples
    --------
    >>> from datetime import UTC, datetime
    >>> view = build("r", datetime(2025, 3, 1, 9, 30, tzinfo=UTC), {"engagekit": "0.1", "x": "2.0"})
    >>> view.created, view.engagekit, view.versions
    ('2025-03-01 09:30 UTC', '0.1', (('engagekit', '0.1'), ('x', '2.0')))
    """
    shown = tuple(versions.items())
    return ProvenanceView(
        title=title,
        created=created.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        engagekit=dict(shown).get("engagekit", DASH),
        versions=shown,
        models=models,
    )
