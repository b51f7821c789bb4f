"""The report's sections: what each says, as a view model built before any HTML.

The report is made in three steps. :mod:`engagekit.report._compute` computes (the
analyses, explanations, flag shares and forecasts); each module here turns typed results
into one section's **view model**, a frozen dataclass of the texts and numbers the
section shows, already formatted, with its figures as :class:`Plot` still to draw:
:mod:`~.data`, :mod:`~.performance`, :mod:`~.cross_treatment`, :mod:`~.explanations`,
:mod:`~.flags`, :mod:`~.forecast`, :mod:`~.monitoring` (when a monitoring result is
given), :mod:`~.model_cards` and :mod:`~.provenance`;
:func:`build_page` gathers them into a :class:`Page`. Then
:mod:`engagekit.report._render` draws the figures and fills one template partial per
section. A view model can be checked without rendering a page or drawing a figure.
"""

from ._common import Plot
from .page import Page, build_page

__all__ = ["Page", "Plot", "build_page"]
