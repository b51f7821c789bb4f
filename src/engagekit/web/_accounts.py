"""The accounts of ``engagekit serve``: who may sign in, with which role, and whose
patients they see.

A user has a name, a role (:data:`engagekit.db.ROLES`), a team (a team lead sees the
team's patients) and practitioner IDs (a clinician sees the patients of those
practitioners). Passwords are kept only as Argon2id hashes (argon2-cffi's
:class:`~argon2.PasswordHasher`, from the ``web`` extra), rehashed at sign-in when the
hasher's parameters have grown. Every change to a user (added, disabled, given a new
password) writes one row to the audit log in the same transaction; the row names the
user and the change, never the password.

Each function takes a SQLAlchemy engine and brings engagekit's tables in its database to
the newest revision first (:func:`engagekit.db.upgrade_database`, once per engine).
"""

from __future__ import annotations

import dataclasses
import functools
import re
import secrets
import weakref
from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa

from .._excerpt import excerpt
from ..db import (
    ROLES,
    TEAM_PRACTITIONERS,
    USER_PRACTITIONERS,
    USERS,
    WEB_SESSIONS,
    upgrade_database,
)
from ..errors import ArgumentError, ConfigError
from ._audit import now, record_audit

__all__ = [
    "MIN_PASSWORD_LENGTH",
    "WEB_EXTRA_MISSING",
    "UserRecord",
    "add_user",
    "check_new_user",
    "disable_user",
    "list_users",
    "require_user",
    "require_web_extra",
    "set_password",
    "set_team",
    "verify_password",
]

#: The fewest characters a password may have.
MIN_PASSWORD_LENGTH = 12
#: The most: a longer "password" is a mistake (a file piped in), not a passphrase.
MAX_PASSWORD_LENGTH = 1024
_USERNAME = re.compile(r"[A-Za-z0-9._-]{1,64}")
_TEAM_LENGTH = 64  # USERS.c.team, TEAM_PRACTITIONERS.c.team
_PRACTITIONER_LENGTH = 128  # USER_PRACTITIONERS.c.practitioner_id
#: What the command line and the library say when argon2-cffi is not installed.
WEB_EXTRA_MISSING = (
    "the accounts of engagekit serve need the web extra, which is not installed: "
    'pip install "engagekit[web]"'
)
#: The audit log's actor role for changes made from the command line.
_CLI_ROLE = "admin"


@dataclasses.dataclass(frozen=True)
class UserRecord:
    """A user as engagekit shows one: never the password hash.

    Attributes
    ----------
    user_id : int
        The row's key (what ``engagekit serve``'s sessions refer to).
    username : str
    role : str
        One of :data:`engagekit.db.ROLES`.
    team : str or None
    practitioners : tuple of str
        The practitioner IDs whose patients the user sees, sorted.
    disabled : bool
        A disabled user cannot sign in.
    created_at : str
        When the user was added: ISO 8601 in UTC.
    """

    user_id: int
    username: str
    role: str
    team: str | None
    practitioners: tuple[str, ...]
    disabled: bool
    created_at: str


# --------------------------------------------------------------------------- hashing
def require_web_extra() -> None:
    """Stop with one line saying how to install the ``web`` extra when argon2-cffi
    (which hashes the passwords) is missing.

    Raises
    ------
    ConfigError
        argon2-cffi cannot be imported.

    Examples
    --------
    >>> require_web_extra()  # installed here
    """
    try:
        import argon2  # noqa: F401
    except ImportError:
        raise ConfigError(WEB_EXTRA_MISSING) from None


@functools.cache
def _hasher() -> Any:
    require_web_extra()
    from argon2 import PasswordHasher

    return PasswordHasher()  # argon2-cffi's defaults: RFC 9106's Argon2id profile


@functools.cache
def _dummy_hash() -> str:
    """A hash of a random secret, verified against when the user is unknown or disabled
    so that a failed sign-in takes as long whatever the reason."""
    return str(_hasher().hash(secrets.token_urlsafe(32)))


def _matches(password_hash: str, password: str) -> bool:
    from argon2.exceptions import InvalidHashError, VerificationError

    try:
        return bool(_hasher().verify(password_hash, password))
    except (VerificationError, InvalidHashError):
        return False


# --------------------------------------------------------------------------- checks
def _check_username(username: object) -> str:
    if not isinstance(username, str) or not _USERNAME.fullmatch(username):
        raise ArgumentError(
            f"the user name {excerpt(username)} is not valid: use 1 to 64 letters, digits, "
            "'.', '_' or '-'"
        )
    return username


def _check_role(role: object) -> str:
    if role not in ROLES:
        raise ArgumentError(
            f"unknown role {excerpt(role)}; expected one of {', '.join(map(repr, ROLES))}"
        )
    assert isinstance(role, str)
    return role


def _check_team(team: object) -> str | None:
    if team is None:
        return None
    if not isinstance(team, str) or not team.strip() or len(team) > _TEAM_LENGTH:
        raise ArgumentError(
            f"the team {excerpt(team)} is not valid: give a name of 1 to {_TEAM_LENGTH} characters"
        )
    return team


def _check_practitioners(practitioners: Iterable[str]) -> tuple[str, ...]:
    if isinstance(practitioners, str):  # one ID, not its characters
        practitioners = (practitioners,)
    checked: list[str] = []
    for practitioner in practitioners:
        if (
            not isinstance(practitioner, str)
            or not practitioner.strip()
            or len(practitioner) > _PRACTITIONER_LENGTH
        ):
            raise ArgumentError(
                f"the practitioner ID {excerpt(practitioner)} is not valid: give an ID of 1 "
                f"to {_PRACTITIONER_LENGTH} characters, as in the encounters' practitioner_id"
            )
        if practitioner not in checked:
            checked.append(practitioner)
    return tuple(sorted(checked))


def _check_password(password: object) -> str:
    # the messages never quote the password, nor say how long it was
    if not isinstance(password, str):
        raise ArgumentError("the password must be text")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ArgumentError(
            f"the password is too short: use at least {MIN_PASSWORD_LENGTH} characters "
            "(a passphrase of a few words is easiest to remember)"
        )
    if len(password) > MAX_PASSWORD_LENGTH:
        raise ArgumentError(
            f"the password is too long: use at most {MAX_PASSWORD_LENGTH} characters"
        )
    return password


# --------------------------------------------------------------------------- the tables
_UPGRADED: weakref.WeakSet[sa.Engine] = weakref.WeakSet()


def _ready(engine: sa.Engine) -> None:
    """Bring engagekit's tables to the newest revision, once per engine."""
    if engine not in _UPGRADED:
        upgrade_database(engine)
        _UPGRADED.add(engine)


def _user_row(connection: sa.Connection, username: str) -> Any:
    return connection.execute(sa.select(USERS).where(USERS.c.username == username)).one_or_none()


def _existing_user(connection: sa.Connection, username: str) -> Any:
    row = _user_row(connection, username)
    if row is None:
        raise ArgumentError(
            f"there is no user {username!r} (engagekit users list shows who there is)"
        )
    return row


def _practitioners_of(connection: sa.Connection, user_ids: list[int]) -> dict[int, list[str]]:
    found: dict[int, list[str]] = {user_id: [] for user_id in user_ids}
    if not user_ids:
        return found
    rows = connection.execute(
        sa.select(USER_PRACTITIONERS.c.user_id, USER_PRACTITIONERS.c.practitioner_id)
        .where(USER_PRACTITIONERS.c.user_id.in_(user_ids))
        .order_by(USER_PRACTITIONERS.c.practitioner_id)
    )
    for user_id, practitioner in rows:
        found[user_id].append(practitioner)
    return found


def _record(row: Any, practitioners: list[str]) -> UserRecord:
    return UserRecord(
        user_id=int(row.user_id),
        username=row.username,
        role=row.role,
        team=row.team,
        practitioners=tuple(practitioners),
        disabled=bool(row.disabled),
        created_at=row.created_at,
    )


def _end_sessions(connection: sa.Connection, user_id: int) -> int:
    """End a user's signed-in sessions; how many there were."""
    done = connection.execute(WEB_SESSIONS.delete().where(WEB_SESSIONS.c.user_id == user_id))
    return int(done.rowcount or 0)


def _sessions_ended(count: int) -> str:
    if not count:
        return ""
    return f"; ended {count} signed-in session{'s' if count != 1 else ''}"


def _audit_change(connection: sa.Connection, actor: str, route: str, detail: str) -> None:
    record_audit(
        connection,
        username=actor,
        role=_CLI_ROLE,
        action="user_change",
        route=route,
        patient_id=None,
        allowed=True,
        detail=detail,
    )


# --------------------------------------------------------------------------- the API
def add_user(
    engine: sa.Engine,
    username: str,
    role: str,
    password: str,
    practitioners: Iterable[str] = (),
    team: str | None = None,
    actor: str = "cli",
    *,
    route: str = "cli:users add",
) -> UserRecord:
    """Add a user who may sign in to ``engagekit serve``.

    Parameters
    ----------
    engine : sqlalchemy.Engine
    username : str
        1 to 64 letters, digits, ``.``, ``_`` or ``-``; unique, ignoring case.
    role : str
        ``clinician``, ``team_lead``, ``analyst`` or ``admin``.
    password : str
        At least :data:`MIN_PASSWORD_LENGTH` characters; only its Argon2id hash is kept.
    practitioners : iterable of str
        The practitioner IDs whose patients the user sees; a clinician needs one at least.
    team : str, optional
        The user's team; a team lead needs one.
    actor : str
        Who made the change, for the audit log.
    route : str
        Where the change was made, for the audit log.

    Returns
    -------
    UserRecord

    Raises
    ------
    ArgumentError
        A value is not valid, or the user name is taken; nothing is written.

    Examples
    --------
    >>> engine = sa.create_engine("sqlite://")
    >>> add_user(engine, "ana", "clinician", "correct horse battery", practitioners=["PR1"])
    UserRecord(user_id=1, username='ana', role='clinician', team=None, practitioners=('PR1',), \
disabled=False, created_at='...')
    >>> add_user(engine, "lee", "clinician", "correct horse battery")
    Traceback (most recent call last):
    ...
    engagekit.errors.ArgumentError: a clinician sees the patients of their practitioners: give \
at least one practitioner ID (--practitioner ID)
    """
    username, role, practitioners, team = _check_new_user(username, role, practitioners, team)
    password_hash = _hasher().hash(_check_password(password))
    _ready(engine)
    stamp = now()
    try:
        with engine.begin() as connection:
            _refuse_taken(connection, username)
            key = connection.execute(
                USERS.insert().values(
                    username=username,
                    password_hash=password_hash,
                    role=role,
                    team=team,
                    disabled=False,
                    created_at=stamp,
                    updated_at=stamp,
                )
            ).inserted_primary_key
            assert key is not None  # a single-row INSERT returns its key
            user_id = int(key[0])
            if practitioners:
                connection.execute(
                    USER_PRACTITIONERS.insert(),
                    [{"user_id": user_id, "practitioner_id": p} for p in practitioners],
                )
            detail = f"added user {username!r} with role {role}"
            if team is not None:
                detail += f", team {team!r}"
            if practitioners:
                detail += f", practitioners {', '.join(map(repr, practitioners))}"
            _audit_change(connection, actor, route, detail)
    except sa.exc.IntegrityError:  # added by another connection since the check
        raise ArgumentError(_taken(username, username)) from None
    return UserRecord(user_id, username, role, team, practitioners, False, stamp)


def check_new_user(
    engine: sa.Engine,
    username: str,
    role: str,
    practitioners: Iterable[str] = (),
    team: str | None = None,
) -> None:
    """Refuse now what :func:`add_user` would refuse about a new user, its password
    apart: so that a command asks for the password only once the rest is known to be
    right.

    Raises
    ------
    ArgumentError
        A value is not valid, or the user name is taken.

    Examples
    --------
    >>> engine = sa.create_engine("sqlite://")
    >>> check_new_user(engine, "mo", "team_lead")
    Traceback (most recent call last):
    ...
    engagekit.errors.ArgumentError: a team_lead sees the patients of a team: give its name \
(--team T)
    """
    username = _check_new_user(username, role, practitioners, team)[0]
    _ready(engine)
    with engine.connect() as connection:
        _refuse_taken(connection, username)


def _check_new_user(
    username: str, role: str, practitioners: Iterable[str], team: str | None
) -> tuple[str, str, tuple[str, ...], str | None]:
    username = _check_username(username)
    role = _check_role(role)
    checked = _check_practitioners(practitioners)
    team = _check_team(team)
    if role == "clinician" and not checked:
        raise ArgumentError(
            "a clinician sees the patients of their practitioners: give at least one "
            "practitioner ID (--practitioner ID)"
        )
    if role == "team_lead" and team is None:
        raise ArgumentError("a team_lead sees the patients of a team: give its name (--team T)")
    return username, role, checked, team


def _refuse_taken(connection: sa.Connection, username: str) -> None:
    """Refuse a user name that is taken, ignoring case (``Ana`` and ``ana`` would be
    easy to confuse at sign-in and in the audit log)."""
    taken = connection.execute(
        sa.select(USERS.c.username).where(sa.func.lower(USERS.c.username) == username.lower())
    ).first()
    if taken is not None:
        raise ArgumentError(_taken(username, taken.username))


def _taken(username: str, existing: str) -> str:
    if existing == username:
        return f"a user named {username!r} already exists"
    return f"a user named {existing!r} already exists (user names differ only in case)"


def list_users(engine: sa.Engine) -> list[UserRecord]:
    """Every user, by name (their password hashes are never read).

    Examples
    --------
    >>> engine = sa.create_engine("sqlite://")
    >>> _ = add_user(engine, "mo", "team_lead", "correct horse battery", team="North")
    >>> [(u.username, u.role, u.team, u.disabled) for u in list_users(engine)]
    [('mo', 'team_lead', 'North', False)]
    """
    _ready(engine)
    columns = [c for c in USERS.columns if c.name != "password_hash"]
    with engine.connect() as connection:
        rows = connection.execute(sa.select(*columns).order_by(USERS.c.username)).all()
        practitioners = _practitioners_of(connection, [row.user_id for row in rows])
    return [_record(row, practitioners[row.user_id]) for row in rows]


def disable_user(
    engine: sa.Engine, username: str, actor: str = "cli", *, route: str = "cli:users disable"
) -> UserRecord:
    """Stop a user signing in, and end their signed-in sessions. The user is kept, so the
    audit log's rows about them still name someone.

    Raises
    ------
    ArgumentError
        There is no such user, or the user is disabled already; nothing is written.

    Examples
    --------
    >>> engine = sa.create_engine("sqlite://")
    >>> _ = add_user(engine, "kim", "analyst", "correct horse battery")
    >>> disable_user(engine, "kim").disabled
    True
    >>> verify_password(engine, "kim", "correct horse battery") is None
    True
    """
    _ready(engine)
    with engine.begin() as connection:
        row = _existing_user(connection, _check_username(username))
        if row.disabled:
            raise ArgumentError(f"the user {username!r} is disabled already")
        connection.execute(
            USERS.update()
            .where(USERS.c.user_id == row.user_id)
            .values(disabled=True, updated_at=now())
        )
        ended = _end_sessions(connection, row.user_id)
        _audit_change(
            connection, actor, route, f"disabled user {username!r}{_sessions_ended(ended)}"
        )
        practitioners = _practitioners_of(connection, [row.user_id])[row.user_id]
    return dataclasses.replace(_record(row, practitioners), disabled=True)


def set_team(
    engine: sa.Engine,
    team: str,
    practitioners: Iterable[str],
    actor: str = "cli",
    *,
    route: str = "cli:users set-team",
) -> tuple[str, ...]:
    """Say which practitioners make up ``team``: its team lead sees their patients. The
    list replaces the team's earlier one; an empty list empties the team. Returns the
    practitioners, in order, without repeats.

    Raises
    ------
    ArgumentError
        The team name or a practitioner ID is not valid; nothing is written.

    Examples
    --------
    >>> engine = sa.create_engine("sqlite://")
    >>> set_team(engine, "north", ["PR1", "PR2", "PR1"])
    ('PR1', 'PR2')
    >>> set_team(engine, "north", ["PR3"])
    ('PR3',)
    """
    checked = _check_team(team)
    if checked is None:
        raise ArgumentError("give the team a name")
    members = _check_practitioners(practitioners)
    _ready(engine)
    with engine.begin() as connection:
        connection.execute(TEAM_PRACTITIONERS.delete().where(TEAM_PRACTITIONERS.c.team == checked))
        if members:
            connection.execute(
                TEAM_PRACTITIONERS.insert(),
                [{"team": checked, "practitioner_id": p} for p in members],
            )
        listed = ", ".join(map(repr, members)) or "none"
        _audit_change(connection, actor, route, f"set team {checked!r}: practitioners {listed}")
    return members


def require_user(engine: sa.Engine, username: str) -> UserRecord:
    """The user named ``username``; an error if there is none.

    Raises
    ------
    ArgumentError
        There is no such user.

    Examples
    --------
    >>> engine = sa.create_engine("sqlite://")
    >>> require_user(engine, "nobody")
    Traceback (most recent call last):
    ...
    engagekit.errors.ArgumentError: there is no user 'nobody' (engagekit users list shows \
who there is)
    """
    _ready(engine)
    with engine.connect() as connection:
        row = _existing_user(connection, _check_username(username))
        practitioners = _practitioners_of(connection, [row.user_id])[row.user_id]
    return _record(row, practitioners)


def set_password(
    engine: sa.Engine,
    username: str,
    password: str,
    actor: str = "cli",
    *,
    route: str = "cli:users set-password",
) -> None:
    """Give a user a new password, and end their signed-in sessions (a disabled user stays
    disabled).

    Raises
    ------
    ArgumentError
        There is no such user, or the password is too short; nothing is written.

    Examples
    --------
    >>> engine = sa.create_engine("sqlite://")
    >>> _ = add_user(engine, "sam", "admin", "correct horse battery")
    >>> set_password(engine, "sam", "tr0ub4dor and more")
    >>> verify_password(engine, "sam", "tr0ub4dor and more").username
    'sam'
    """
    username = _check_username(username)
    password_hash = _hasher().hash(_check_password(password))
    _ready(engine)
    with engine.begin() as connection:
        row = _existing_user(connection, username)
        connection.execute(
            USERS.update()
            .where(USERS.c.user_id == row.user_id)
            .values(password_hash=password_hash, updated_at=now())
        )
        ended = _end_sessions(connection, row.user_id)
        _audit_change(
            connection,
            actor,
            route,
            f"set a new password for user {username!r}{_sessions_ended(ended)}",
        )


def verify_password(engine: sa.Engine, username: str, password: str) -> UserRecord | None:
    """The user, if ``password`` is theirs and they are not disabled; else None.

    A user who is unknown or disabled costs the same hash verification as a wrong
    password (against a dummy hash), so the time taken does not tell which. A hash made
    with weaker parameters than the hasher's current ones is replaced by a new hash of
    the same password.

    Examples
    --------
    >>> engine = sa.create_engine("sqlite://")
    >>> _ = add_user(engine, "ana", "clinician", "correct horse battery", practitioners=["PR1"])
    >>> verify_password(engine, "ana", "correct horse battery").practitioners
    ('PR1',)
    >>> verify_password(engine, "ana", "wrong horse battery") is None
    True
    >>> verify_password(engine, "nobody", "correct horse battery") is None
    True
    """
    hasher = _hasher()
    _ready(engine)
    valid = isinstance(username, str) and _USERNAME.fullmatch(username) is not None
    valid = valid and isinstance(password, str)
    with engine.connect() as connection:
        row = _user_row(connection, username) if valid else None
    if row is None or row.disabled:
        _matches(_dummy_hash(), password if isinstance(password, str) else "")
        return None
    if not _matches(row.password_hash, password):
        return None
    with engine.begin() as connection:
        if hasher.check_needs_rehash(row.password_hash):
            connection.execute(
                USERS.update()
                .where(USERS.c.user_id == row.user_id, USERS.c.password_hash == row.password_hash)
                .values(password_hash=hasher.hash(password))
            )
        practitioners = _practitioners_of(connection, [row.user_id])[row.user_id]
    return _record(row, practitioners)
