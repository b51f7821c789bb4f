"""``users``: the accounts of ``engagekit serve`` (add, list, disable, set a password).

A password is read from a hidden prompt (typed twice) or, with ``--password-stdin``,
from one line of standard input: never from an option, which the shell's history and
the process list would show. Every change writes one row to the audit log.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer
from typer.core import TyperGroup

from ._app import _App, _readable, app, out
from ._common import escape_markup

if TYPE_CHECKING:
    import sqlalchemy as sa


class SubGroup(TyperGroup):
    """A group of subcommands (``engagekit users …``) whose help reads as the main
    command's does. Errors are handled by the main command's group, around it."""

    def get_params(self, ctx: Any) -> list[Any]:
        return _readable(super().get_params(ctx))


users_app = _App(
    name="users",
    cls=SubGroup,
    help="Who may sign in to engagekit serve, with which role, and whose patients they see.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode="rich",
)
app.add_typer(users_app, name="users")

#: the database of every users and audit command: required, so that no command guesses
DatabaseOption = Annotated[
    str,
    typer.Option(
        "--db",
        help="SQLAlchemy URL of engagekit's database: sqlite:///engagekit.db or "
        "postgresql+psycopg://user@host/database.",
        show_default=False,
    ),
]
PasswordStdinOption = Annotated[
    bool,
    typer.Option(
        "--password-stdin",
        help="Read the password from one line of standard input instead of a hidden prompt "
        "(for scripts: printf '%s\\n' \"$PASSWORD\" | engagekit users …).",
    ),
]


def _open(db: str, *, create: bool = False) -> sa.Engine:
    """The accounts' database, once the web extra is known to be installed."""
    from ..errors import ConfigError
    from ..web import open_database, require_web_extra

    try:
        require_web_extra()
    except ConfigError as e:  # its [web] is not rich markup
        raise ConfigError(str(e)) from None
    return open_database(db, create=create)


def _read_password(from_stdin: bool) -> str:
    """The new password: one line of standard input, or typed twice at a hidden prompt."""
    if from_stdin:
        import sys

        line = sys.stdin.readline()
        password = line.rstrip("\r\n")  # the line's end only: spaces may be part of it
        if not password:
            from ..errors import ArgumentError

            raise ArgumentError(
                "--password-stdin: standard input held no password (one line expected)"
            )
        return password
    return str(
        typer.prompt(
            "Password", hide_input=True, confirmation_prompt="Repeat the password", err=True
        )
    )


@users_app.command("add")
def add(
    username: Annotated[
        str, typer.Argument(help="1 to 64 letters, digits, '.', '_' or '-'.", show_default=False)
    ],
    role: Annotated[
        str,
        typer.Option(
            "--role",
            help="clinician (their practitioners' patients), team_lead (their team's), "
            "analyst or admin.",
            show_default=False,
        ),
    ],
    db: DatabaseOption,
    practitioner: Annotated[
        list[str] | None,
        typer.Option(
            "--practitioner",
            help="A practitioner ID whose patients the user sees, as in the encounters' "
            "practitioner_id (repeatable; a clinician needs one at least).",
        ),
    ] = None,
    team: Annotated[
        str | None, typer.Option("--team", help="The user's team (a team_lead needs one).")
    ] = None,
    password_stdin: PasswordStdinOption = False,
) -> None:
    """Add a user who may sign in to engagekit serve.

    The password (at least 12 characters) is asked for twice at a hidden prompt, or read
    from standard input with --password-stdin; only its Argon2id hash is stored. A
    SQLite database file that does not exist yet is created.
    """
    from ..web import add_user, check_new_user

    engine = _open(db, create=True)
    try:
        check_new_user(engine, username, role, practitioner or (), team)  # before the prompt
        password = _read_password(password_stdin)
        user = add_user(
            engine, username, role, password, practitioner or (), team, route="cli:users add"
        )
    finally:
        engine.dispose()
    sees = ""
    if user.practitioners:
        sees = f"; practitioners {', '.join(user.practitioners)}"
    if user.team is not None:
        sees += f"; team {user.team}"
    out.print(f"Added user {user.username!r} ({user.role}{escape_markup(sees)}).", highlight=False)


@users_app.command("list")
def list_(db: DatabaseOption) -> None:
    """List the users (never a password or its hash).

    One row per user: name, role, team, practitioners, status (active or disabled) and
    when the user was added.
    """
    from rich.table import Table

    from ..web import list_users

    engine = _open(db)
    try:
        users = list_users(engine)
    finally:
        engine.dispose()
    if not users:
        out.print("No users yet: add one with engagekit users add.")
        return
    table = Table(header_style="bold")
    for column in ("user", "role", "team", "practitioners", "status", "added (UTC)"):
        table.add_column(column, overflow="fold")
    for user in users:
        table.add_row(
            user.username,
            user.role,
            escape_markup(user.team or "–"),
            escape_markup(", ".join(user.practitioners) or "–"),
            "disabled" if user.disabled else "active",
            user.created_at[:19].replace("T", " "),
        )
    out.print(table)


@users_app.command("disable")
def disable(
    username: Annotated[str, typer.Argument(help="The user to disable.", show_default=False)],
    db: DatabaseOption,
) -> None:
    """Stop a user signing in.

    Their signed-in sessions end at once. The user is kept, so the audit log still
    names them.
    """
    from ..web import disable_user

    engine = _open(db)
    try:
        disable_user(engine, username, route="cli:users disable")
    finally:
        engine.dispose()
    out.print(f"Disabled user {username!r}: they can no longer sign in.", highlight=False)


@users_app.command("set-team")
def set_team(
    team: Annotated[str, typer.Argument(help="The team's name.", show_default=False)],
    db: DatabaseOption,
    practitioners: Annotated[
        list[str] | None,
        typer.Option(
            "--practitioner",
            help="A practitioner ID in the team (repeat the option for each); none empties it.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Say which practitioners make up a team: its team lead sees their patients.

    The list replaces the team's earlier one.
    """
    from ..web import set_team as set_team_practitioners

    engine = _open(db, create=True)
    try:
        members = set_team_practitioners(
            engine, team, practitioners or (), route="cli:users set-team"
        )
    finally:
        engine.dispose()
    listed = escape_markup(", ".join(members)) if members else "no practitioners"
    out.print(f"Team {escape_markup(team)!r}: {listed}.", highlight=False)


@users_app.command("set-password")
def set_password(
    username: Annotated[str, typer.Argument(help="The user.", show_default=False)],
    db: DatabaseOption,
    password_stdin: PasswordStdinOption = False,
) -> None:
    """Give a user a new password.

    The password (at least 12 characters) is asked for twice at a hidden prompt, or
    read from standard input with --password-stdin. The user's signed-in sessions end.
    """
    from ..web import require_user
    from ..web import set_password as set_user_password

    engine = _open(db)
    try:
        require_user(engine, username)  # before the prompt
        password = _read_password(password_stdin)
        set_user_password(engine, username, password, route="cli:users set-password")
    finally:
        engine.dispose()
    out.print(f"Set a new password for user {username!r}.", highlight=False)
