"""The ``engagekit`` command: a thin layer over the library.

Each command parses its options, calls library functions and prints. Expected errors
(bad config, unreadable data, data breaking the contract) end with one clear message and
an exit code; a traceback would mean a bug, and even then the user gets a one-line
message unless ENGAGEKIT_DEBUG=1 asks for the traceback.

Exit codes: 0 success, 1 the data breaks the contract, 2 the input or config cannot be
used at all (or the command line is wrong), 3 an analysis cannot be done on these data,
70 an internal error.
"""

from __future__ import annotations

import os
import sys

from ..errors import EngagekitError
from . import analysis, data, demo, forecast, models, report, score  # noqa: F401  (registers them)
from ._app import EXIT_INTERNAL, app, err

__all__ = ["app", "main"]


# --------------------------------------------------------------------------- entry
def main() -> None:
    """Console entry point: run the app, turning expected errors into exit codes."""
    try:
        # standalone mode: usage errors print the usage and exit 2, Exit is sys.exit
        app()
    except EngagekitError as e:
        err.print(f"[red]error:[/red] {e}", highlight=False, soft_wrap=True)
        sys.exit(e.exit_code)
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)
    except Exception as e:
        if os.environ.get("ENGAGEKIT_DEBUG"):
            raise
        err.print(
            f"[red]internal error[/red] ({type(e).__name__}): {e}\n"
            "This is a bug in engagekit; rerun with ENGAGEKIT_DEBUG=1 for the traceback "
            "and report it.",
            highlight=False,
        )
        sys.exit(EXIT_INTERNAL)
