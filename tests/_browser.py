"""Look at an HTML page as a reader does: a headless Chromium screenshot, as pixels.

Chromium is required, not optional: ``.ci/run`` installs Debian's ``chromium`` when it
is missing, and a test that needs it fails (it is never skipped) when it cannot run.
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

import numpy as np
from matplotlib import image

CHROMIUM = "/usr/bin/chromium"


def screenshot(
    page: Path, png: Path, size: tuple[int, int] = (1280, 2400), timeout: int = 120
) -> np.ndarray:
    """Render ``page`` in headless Chromium, save the screenshot to ``png``, return it.

    Returns
    -------
    numpy.ndarray of uint8, shape (height, width, 3)
        The screenshot's RGB pixels.
    """
    if not Path(CHROMIUM).exists():
        raise FileNotFoundError(
            f"{CHROMIUM} is not installed; install Debian's chromium "
            "(apt-get install chromium), as .ci/run does"
        )
    png.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory() as profile:
        # no network, no first-run work: the page must render from the file alone
        command = [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={profile}",
            f"--screenshot={png}",
            f"--window-size={size[0]},{size[1]}",
            Path(page).resolve().as_uri(),
        ]
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    if not png.exists():
        raise RuntimeError(
            f"chromium wrote no screenshot (exit {result.returncode}): {result.stderr[-2000:]}"
        )
    pixels = image.imread(png)
    return np.round(pixels[..., :3] * 255).astype(np.uint8)


def colour_mask(pixels: np.ndarray, colour: str, tolerance: int = 40) -> np.ndarray:
    """Where the pixels are within ``tolerance`` (per channel) of a ``#RRGGBB`` colour."""
    rgb = np.array([int(colour[i : i + 2], 16) for i in (1, 3, 5)])
    return np.all(np.abs(pixels.astype(int) - rgb) <= tolerance, axis=-1)
