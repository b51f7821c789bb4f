"""Look at an HTML page as a reader does: rendered by headless Chromium, as pixels.

Playwright drives the browser. It uses Debian's ``/usr/bin/chromium`` when it is there,
else Playwright's own Chromium if one was installed (``python -m playwright install
chromium``). Where neither is found the browser tests skip with one line saying so, so
that the test command passes on a laptop without a browser; ``.ci/run`` installs
Debian's chromium and sets ``ENGAGEKIT_REQUIRE_BROWSER=1``, which turns that skip into a
failure: in CI the browser tests always run.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

DEBIAN_CHROMIUM = Path("/usr/bin/chromium")
#: Set (to 1) where a missing browser must fail the tests instead of skipping them.
REQUIRE_VARIABLE = "ENGAGEKIT_REQUIRE_BROWSER"
# no network, no first-run work: a page must render from its file alone
_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@dataclass(frozen=True)
class Browser:
    """A Chromium that Playwright can launch: ``executable`` None means Playwright's own."""

    name: str
    executable: Path | None


@cache
def find_browser() -> Browser | None:
    """Debian's Chromium, else Playwright's own, else None."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return None
    if DEBIAN_CHROMIUM.exists():
        return Browser(f"Debian's chromium ({DEBIAN_CHROMIUM})", DEBIAN_CHROMIUM)
    with sync_playwright() as p:
        own = Path(p.chromium.executable_path)
    if own.exists():
        return Browser(f"Playwright's chromium ({own})", None)
    return None


def missing_browser_message() -> str:
    """The one line said when no browser is found."""
    return (
        "no Chromium for the browser tests: install Debian's chromium "
        f"(apt-get install chromium) or run 'python -m playwright install chromium' "
        f"(.ci/run installs it and sets {REQUIRE_VARIABLE}=1, so CI never skips them)"
    )


def browser_required() -> bool:
    return os.environ.get(REQUIRE_VARIABLE, "") not in ("", "0")


def screenshot(
    browser: Browser, page: Path, png: Path, size: tuple[int, int] = (1280, 2400)
) -> np.ndarray:
    """Render ``page`` in headless Chromium, save the screenshot to ``png``, return it.

    Returns
    -------
    numpy.ndarray of uint8, shape (height, width, 3)
        The screenshot's RGB pixels.
    """
    from matplotlib import image
    from playwright.sync_api import sync_playwright

    png.unlink(missing_ok=True)
    with sync_playwright() as p:
        chromium = p.chromium.launch(
            executable_path=str(browser.executable) if browser.executable else None,
            args=_ARGS,
        )
        try:
            tab = chromium.new_page(viewport={"width": size[0], "height": size[1]})
            tab.goto(Path(page).resolve().as_uri(), wait_until="load")
            tab.screenshot(path=str(png))
        finally:
            chromium.close()
    pixels = image.imread(png)
    return np.round(pixels[..., :3] * 255).astype(np.uint8)


def colour_mask(pixels: np.ndarray, colour: str, tolerance: int = 40) -> np.ndarray:
    """Where the pixels are within ``tolerance`` (per channel) of a ``#RRGGBB`` colour."""
    rgb = np.array([int(colour[i : i + 2], 16) for i in (1, 3, 5)])
    return np.all(np.abs(pixels.astype(int) - rgb) <= tolerance, axis=-1)
