"""Section 7, the model cards: each model's card, as its Markdown file says it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from .._document import Section
from .._model_card import model_card_sections, model_card_title

if TYPE_CHECKING:
    from ...models import ModelManifest, ModelMetrics

__all__ = ["ModelCardView", "build"]


@dataclass(frozen=True)
class ModelCardView:
    """A model card: its title and its sections of paragraphs, bullets and tables.

    Text may hold ``code`` spans between backticks, as in the Markdown card.
    """

    target: str
    title: str
    sections: tuple[Section, ...]


def build(manifest: ModelManifest, metrics: ModelMetrics) -> ModelCardView:
    """The model card of a model (see :func:`engagekit.report._model_card`)."""
    return ModelCardView(
        manifest.target,
        model_card_title(manifest),
        tuple(model_card_sections(manifest, metrics)),
    )
