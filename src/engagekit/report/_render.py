"""The report's last step: the page's view model written as one HTML page.

The page is ``templates/report.html.j2``, a skeleton that includes one partial per
section (``templates/sections/<section>.html.j2``), each given its own view model
only. Figures are drawn here, as the partials ask for them, and inlined as PNG
``data:`` URIs; a figure that cannot be drawn (its function raises ``ValueError``) is
replaced by a note saying why.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING

from .._format import DASH
from ._document import inline_html

if TYPE_CHECKING:
    import jinja2

    from ._sections import Page, Plot

__all__ = ["DrawnPlot", "draw", "environment", "render"]


@dataclass(frozen=True)
class DrawnPlot:
    """A plot drawn: its PNG ``data:`` URI, or the note saying why there is none."""

    uri: str | None
    note: str | None = None


def draw(plot: Plot) -> DrawnPlot:
    """Draw ``plot`` as a PNG ``data:`` URI, or say why it cannot be drawn."""
    from ._figures import png_data_uri

    if plot.draw is None:
        return DrawnPlot(None, plot.note or f"{plot.what}: {DASH}")
    try:
        figure = plot.draw()
    except ValueError as e:
        return DrawnPlot(None, f"{plot.what}: {DASH} ({e})")
    return DrawnPlot(png_data_uri(figure))


@cache
def environment() -> jinja2.Environment:
    """The Jinja2 environment of the report's templates (HTML-escaped, strict)."""
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("engagekit.report", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["inline"] = lambda text: jinja2.utils.markupsafe.Markup(inline_html(str(text)))
    # a model card's blocks: "paragraph", "bullets" or "table"
    env.filters["kind"] = lambda block: type(block).__name__.lower()
    env.globals["draw"] = draw
    return env


def render(page: Page) -> str:
    """The self-contained HTML page of ``page``."""
    return environment().get_template("report.html.j2").render(page=page)
