"""Run the ``engagekit`` command: in-process (typer's ``CliRunner``) or as a subprocess.

Option parsing, messages and exit codes are tested in-process with :func:`run`: the same
command group, the same error handling (it lives in the group, not in ``main``), none of
the two seconds a fresh interpreter takes to import pandas and scikit-learn. A real
process (:func:`run_process`) is kept for what needs one: start-up, an end-to-end run,
and a run killed and resumed.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path

from typer.testing import CliRunner

from engagekit.cli import app

ENGAGEKIT = shutil.which("engagekit") or str(Path(sys.executable).parent / "engagekit")
_ENV = {"COLUMNS": "200", "NO_COLOR": "1", "TERM": "dumb"}


@dataclass(frozen=True)
class Completed:
    """A finished command, as :class:`subprocess.CompletedProcess` describes one."""

    args: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str


def run(*args: str | Path, cwd: Path, timeout: int | None = None) -> Completed:
    """Run ``engagekit ARGS`` in this process, in folder ``cwd``.

    An exception that escapes the command is a bug: with ``ENGAGEKIT_DEBUG=1`` the
    command group lets it through, and it is raised here with its traceback instead of
    becoming exit code 70. ``timeout`` is accepted for symmetry with
    :func:`run_process` and ignored.
    """
    del timeout
    arguments = tuple(map(str, args))
    runner = CliRunner()
    with contextlib.chdir(cwd):
        result = runner.invoke(app, list(arguments), env={**_ENV, "ENGAGEKIT_DEBUG": "1"})
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        detail = "".join(traceback.format_exception(*result.exc_info))
        raise AssertionError(
            f"engagekit {' '.join(arguments)} raised {type(result.exception).__name__}; "
            f"stderr:\n{result.stderr}\n{detail}"
        ) from result.exception
    return Completed(arguments, result.exit_code, result.stdout, result.stderr)


def run_process(*args: str | Path, cwd: Path, timeout: int = 300) -> Completed:
    """Run the ``engagekit`` console script as a user does: in a subprocess."""
    env = {**os.environ, **_ENV}
    env.pop("ENGAGEKIT_DEBUG", None)
    done = subprocess.run(
        [ENGAGEKIT, *map(str, args)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return Completed(tuple(map(str, args)), done.returncode, done.stdout, done.stderr)


def start_process(*args: str | Path, cwd: Path) -> subprocess.Popen:
    """Start the ``engagekit`` console script as :func:`run_process` does, without waiting
    (to kill it, or to run two at once); its output goes to pipes, read with
    ``communicate()``."""
    env = {**os.environ, **_ENV}
    env.pop("ENGAGEKIT_DEBUG", None)
    return subprocess.Popen(
        [ENGAGEKIT, *map(str, args)],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def assert_no_traceback(result: Completed) -> None:
    """A traceback, or the internal-error message that stands for one, is always a bug."""
    for stream in (result.stderr, result.stdout):
        assert "Traceback" not in stream, stream
        assert "internal error" not in stream, stream
