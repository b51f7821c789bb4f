"""Check a page in the browser with axe-core, against WCAG 2.2 level AA.

axe-core is a JavaScript file, ``axe.min.js``, from npm; it is not part of the Python
project. The tests find it at ``ENGAGEKIT_AXE_JS`` (a path), else at
``node_modules/axe-core/axe.min.js`` under the repository (``npm install --no-save
axe-core``). Where neither is found the accessibility tests skip with one line saying
so; ``.ci/run`` installs it outside the repository, points ``ENGAGEKIT_AXE_JS`` at it and
sets ``ENGAGEKIT_REQUIRE_AXE=1``, which turns that skip into a failure.

The served pages' Content-Security-Policy (``script-src 'self'``) blocks an inline
``<script>``, which is what Playwright's ``add_script_tag(path=...)`` adds; so axe's source
is run with ``page.evaluate``, which the page's policy does not govern, and the page is
checked under its real policy.
"""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path
from typing import Any

#: A path to ``axe.min.js``.
AXE_VARIABLE = "ENGAGEKIT_AXE_JS"
#: Set (to 1) where a missing axe-core must fail the tests instead of skipping them.
REQUIRE_VARIABLE = "ENGAGEKIT_REQUIRE_AXE"
REPOSITORY = Path(__file__).resolve().parents[1]
LOCAL_AXE = REPOSITORY / "node_modules" / "axe-core" / "axe.min.js"
#: The rules run: WCAG 2.0, 2.1 and 2.2, levels A and AA.
WCAG_TAGS = ("wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa")


def find_axe() -> Path | None:
    """``ENGAGEKIT_AXE_JS`` if set (None if it names no file), else the repository's
    ``node_modules`` copy, else None."""
    named = os.environ.get(AXE_VARIABLE, "")
    if named:
        path = Path(named).expanduser()
        return path if path.is_file() else None
    return LOCAL_AXE if LOCAL_AXE.is_file() else None


def missing_axe_message() -> str:
    """The one line said when axe-core is not found."""
    named = os.environ.get(AXE_VARIABLE, "")
    local = LOCAL_AXE.relative_to(REPOSITORY)
    where = f"{AXE_VARIABLE}={named} is not a file" if named else f"no {AXE_VARIABLE}, no {local}"
    return (
        f"no axe-core for the accessibility tests ({where}): run 'npm install --no-save "
        f"axe-core@4' or set {AXE_VARIABLE} to an axe.min.js (.ci/run installs it and sets "
        f"{REQUIRE_VARIABLE}=1, so CI never skips them)"
    )


def axe_required() -> bool:
    return os.environ.get(REQUIRE_VARIABLE, "") not in ("", "0")


@cache
def _source(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def axe_violations(page: Any, axe_js: Path) -> list[dict[str, Any]]:
    """The WCAG 2.2 AA violations axe-core finds on the Playwright ``page`` as it is now:
    each one's ``id``, ``impact``, ``help`` and its nodes' ``targets``."""
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.evaluate(_source(axe_js))  # not an inline <script>: the page's CSP forbids one
    return page.evaluate(
        """async (tags) => {
            const result = await axe.run(document, {runOnly: {type: 'tag', values: tags}});
            return result.violations.map(v => ({
                id: v.id, impact: v.impact, help: v.help,
                targets: v.nodes.map(n => n.target.join(' ')),
            }));
        }""",
        list(WCAG_TAGS),
    )


def describe(violations: list[dict[str, Any]]) -> str:
    """One line per violation: its rule, impact, help and the elements it found."""
    return "\n".join(
        f"{v['id']} ({v['impact']}): {v['help']} at {', '.join(v['targets'])}" for v in violations
    )
