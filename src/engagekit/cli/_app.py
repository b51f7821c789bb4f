"""The app: its command group, the consoles, and the handling of errors.

Each command parses its options, calls library functions and prints. Expected errors
(bad config, unreadable data, data breaking the contract) end with one clear message and
an exit code; a traceback would mean a bug, and even then the user gets a one-line
message unless ENGAGEKIT_DEBUG=1 asks for the traceback. The handling lives in the
command group (:class:`_Group`), so a command run in-process (typer's ``CliRunner``)
ends exactly as it does from the shell.

The options and helpers the commands share are in :mod:`._common`. Only typer and rich
are imported here: ``engagekit --help`` must start in well under half a second, so
pandas, scikit-learn and the rest load inside the commands that use them.

Exit codes: 0 success, 1 the data breaks the contract, 2 the input or config cannot be
used at all (or the command line is wrong), 3 an analysis cannot be done on these data,
70 an internal error, 130 interrupted.
"""

from __future__ import annotations

import os
import sys
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from typer.core import TyperArgument, TyperCommand, TyperGroup

from ..errors import EngagekitError

EXIT_INTERNAL = 70
EXIT_INTERRUPTED = 130

# Rich assumes 80 columns when output is piped; tables of treatment names need more.
out = Console(width=None if sys.stdout.isatty() else 120)
err = Console(stderr=True, width=None if sys.stderr.isatty() else 120)

#: The commands in the order a service uses them; ``engagekit --help`` lists them so.
WORKFLOW = (
    "validate",
    "train",
    "evaluate",
    "score",
    "predict",
    "forecast",
    "monitor",
    "update",
    "heterogeneity",
    "power",
    "report",
    "serve",
    "users",
    "audit",
    "simulate",
    "demo",
)


def _readable(params: list[Any]) -> list[Any]:
    """Parameters as help shows them: an argument as ``DATA`` (not typer's ``{data}``),
    and a flag without a ``<bool>`` type after it."""
    for param in params:
        if isinstance(param, TyperArgument):
            if param.metavar is None:
                param.metavar = param.name.upper()
        elif getattr(param, "is_flag", False) and param.metavar is None:
            param.metavar = ""
    return params


class _Command(TyperCommand):
    """A command whose help reads as a user expects (see :func:`_readable`)."""

    def get_params(self, ctx: Any) -> list[Any]:
        return _readable(super().get_params(ctx))

    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        pieces = [self.options_metavar] if self.options_metavar else []
        for param in self.get_params(ctx):
            if isinstance(param, TyperArgument):
                assert param.metavar is not None  # get_params gave every argument one
                name = param.metavar + ("..." if param.nargs != 1 else "")
                pieces.append(name if param.required else f"[{name}]")
        return pieces


class _Group(TyperGroup):
    """The ``engagekit`` group: commands in workflow order, and expected errors turned
    into one message and an exit code (in a shell and in-process alike)."""

    def get_params(self, ctx: Any) -> list[Any]:
        return _readable(super().get_params(ctx))

    def list_commands(self, ctx: Any) -> list[str]:
        names = super().list_commands(ctx)
        rank = {name: k for k, name in enumerate(WORKFLOW)}
        return sorted(names, key=lambda name: rank.get(name, len(rank)))

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort, typer.TyperException, BrokenPipeError):
            # BrokenPipeError: the reader went away (| head); click ends quietly, exit 1
            raise
        except EngagekitError as e:
            # the message is printed as it is: a name holding "[b]" is not rich markup
            err.print(f"[red]error:[/red] {escape(str(e))}", highlight=False, soft_wrap=True)
            raise typer.Exit(e.exit_code) from None
        except KeyboardInterrupt:
            err.print("interrupted")
            raise typer.Exit(EXIT_INTERRUPTED) from None
        except Exception as e:
            if os.environ.get("ENGAGEKIT_DEBUG"):
                raise

            err.print(
                f"[red]internal error[/red] ({type(e).__name__}): {escape(str(e))}\n"
                "This is a bug in engagekit; rerun with ENGAGEKIT_DEBUG=1 for the traceback "
                "and report it.",
                highlight=False,
            )
            raise typer.Exit(EXIT_INTERNAL) from None


class _App(typer.Typer):
    """Every command gets :class:`_Command`'s help."""

    def command(self, *args: Any, **kwargs: Any):
        kwargs.setdefault("cls", _Command)
        return super().command(*args, **kwargs)


app = _App(
    name="engagekit",
    cls=_Group,
    help=(
        "Predict re-attendance and adherence in depression treatment from patients' "
        "session-by-session ratings of their practitioner."
    ),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode="rich",
)


def _version(value: bool) -> None:
    if value:
        from .. import __version__

        out.print(f"engagekit {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Show the version."),
    ] = False,
) -> None:
    """engagekit: practitioner qualities, re-attendance and adherence."""
