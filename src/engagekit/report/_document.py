"""A small document model (sections of paragraphs, bullet lists and tables) with a
Markdown rendering, so that the model card reads the same as a ``.md`` file and inside
the HTML report.

Text may hold ``code`` spans between backticks and nothing else of Markdown; both
renderings escape everything else.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass

__all__ = ["Bullets", "Paragraph", "Section", "Table", "inline_html", "to_markdown"]


@dataclass(frozen=True)
class Paragraph:
    text: str


@dataclass(frozen=True)
class Bullets:
    items: tuple[str, ...]


@dataclass(frozen=True)
class Table:
    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    caption: str | None = None


Block = Paragraph | Bullets | Table


@dataclass(frozen=True)
class Section:
    title: str
    blocks: tuple[Block, ...]

    @property
    def anchor(self) -> str:
        return re.sub(r"[^a-z0-9]+", "-", self.title.lower()).strip("-")


_CODE = re.compile(r"`([^`]*)`")
# characters Markdown would read as formatting outside code spans
_MARKDOWN_SPECIAL = re.compile(r"([\\*_\[\]<>#|])")


def _markdown_text(text: str, in_table: bool = False) -> str:
    parts = _CODE.split(text)
    out = []
    for i, part in enumerate(parts):
        if i % 2:
            out.append(f"`{part}`")
        else:
            out.append(_MARKDOWN_SPECIAL.sub(r"\\\1", part))
    rendered = "".join(out)
    if in_table:
        # a pipe inside a code span still ends a table cell in GitHub's Markdown
        rendered = rendered.replace("`|`", "`\\|`")
    return rendered


def inline_html(text: str) -> str:
    """HTML of a text: escaped, with its backtick spans as ``<code>``."""
    parts = _CODE.split(text)
    return "".join(
        f"<code>{html.escape(part)}</code>" if i % 2 else html.escape(part)
        for i, part in enumerate(parts)
    )


def to_markdown(title: str, sections: list[Section], level: int = 1) -> str:
    """The document as Markdown: ``title`` at ``level``, sections one level below."""
    lines = [f"{'#' * level} {_markdown_text(title)}", ""]
    for section in sections:
        lines += [f"{'#' * (level + 1)} {_markdown_text(section.title)}", ""]
        for block in section.blocks:
            if isinstance(block, Paragraph):
                lines += [_markdown_text(block.text), ""]
            elif isinstance(block, Bullets):
                lines += [f"- {_markdown_text(item)}" for item in block.items] + [""]
            else:
                if block.caption:
                    lines += [f"*{_markdown_text(block.caption)}*", ""]
                lines.append(
                    "| " + " | ".join(_markdown_text(c, True) for c in block.columns) + " |"
                )
                lines.append("|" + "|".join("---" for _ in block.columns) + "|")
                for row in block.rows:
                    lines.append("| " + " | ".join(_markdown_text(c, True) for c in row) + " |")
                lines.append("")
    return "\n".join(lines).rstrip() + "\n"
