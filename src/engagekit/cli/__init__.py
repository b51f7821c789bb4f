"""The ``engagekit`` command: a thin layer over the library.

Each command parses its options, calls library functions and prints. Expected errors
(bad config, unreadable data, data breaking the contract) end with one clear message and
an exit code; a traceback would mean a bug, and even then the user gets a one-line
message unless ENGAGEKIT_DEBUG=1 asks for the traceback. That handling lives in the
command group (see ``_app``), so typer's ``CliRunner`` sees exactly what a shell sees.

Exit codes: 0 success, 1 the data breaks the contract, 2 the input or config cannot be
used at all (or the command line is wrong), 3 an analysis cannot be done on these data,
70 an internal error, 130 interrupted.
"""

from __future__ import annotations

import sys

from . import (  # noqa: F401  (registers them)
    analysis,
    audit,
    data,
    demo,
    forecast,
    models,
    monitor,
    report,
    score,
    serve,
    update,
    users,
)
from ._app import EXIT_INTERRUPTED, app, err

__all__ = ["app", "main"]


def main() -> None:
    """Console entry point."""
    try:
        # standalone mode: usage errors print the usage and exit 2, Exit is sys.exit
        app()
    except KeyboardInterrupt:  # before a command started (while importing)
        err.print("interrupted")
        sys.exit(EXIT_INTERRUPTED)
