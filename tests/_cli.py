"""Run the ``engagekit`` console script as a user does: in a subprocess."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ENGAGEKIT = shutil.which("engagekit") or str(Path(sys.executable).parent / "engagekit")


def run(*args: str | Path, cwd: Path, timeout: int = 300) -> subprocess.CompletedProcess:
    """The finished command, with its exit code, stdout and stderr."""
    env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1", "TERM": "dumb"}
    env.pop("ENGAGEKIT_DEBUG", None)
    return subprocess.run(
        [ENGAGEKIT, *map(str, args)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def assert_no_traceback(result: subprocess.CompletedProcess) -> None:
    """A traceback on either stream is always a bug."""
    assert "Traceback" not in result.stderr, result.stderr
    assert "Traceback" not in result.stdout, result.stdout
