"""The README's screenshots of the clinicians' page, from a running ``engagekit serve``.

After ``engagekit demo`` and the ``engagekit serve`` command it prints::

    ENGAGEKIT_PASSWORD=<the clinician's password> python docs/screenshots.py \\
        [--url http://127.0.0.1:8000] [--user clinician]

signs in as the user in Chromium (``/usr/bin/chromium``, through Playwright), and writes
``docs/images/caseload.png`` (the caseload's first page) and ``docs/images/patient.png``
(the caseload's first patient), 1280 × 900 pixels.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from playwright.sync_api import sync_playwright

IMAGES = Path(__file__).resolve().parent / "images"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--user", default="clinician")
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    args = parser.parse_args()
    password = os.environ.get("ENGAGEKIT_PASSWORD")
    if not password:
        raise SystemExit("set ENGAGEKIT_PASSWORD to the user's password")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=args.chromium)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(f"{args.url}/login")
        page.fill("#username", args.user)
        page.fill("#password", password)
        page.click("button[type=submit]")
        page.wait_for_url(f"{args.url}/caseload")
        page.screenshot(path=IMAGES / "caseload.png")
        page.click("table.caseload tbody tr:first-child th a")
        page.wait_for_selector("h1")
        page.screenshot(path=IMAGES / "patient.png")
        browser.close()
    print(f"wrote {IMAGES / 'caseload.png'} and {IMAGES / 'patient.png'}")


if __name__ == "__main__":
    main()
