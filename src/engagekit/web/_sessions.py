"""Signed-in sessions of ``engagekit serve`` and the rate limit on failed sign-ins.

A session is a random token: the browser holds it (in a signed cookie), the database
holds only its SHA-256 (``web_sessions``), with the session's CSRF token and when it was
last used. A session unused for longer than the idle timeout is deleted when next seen.
A session of a user who has been disabled since is deleted too.

Failed sign-ins are kept in ``login_failures``: after :data:`MAX_USER_FAILURES` in a
row for a user name within :data:`FAILURE_WINDOW`, or :data:`MAX_CLIENT_FAILURES` from
one client address, further attempts are refused (even with the right password) until
the window has passed. A successful sign-in clears the user name's failures.

Examples
--------
>>> import sqlalchemy as sa
>>> from engagekit.web import add_user
>>> engine = sa.create_engine("sqlite://")
>>> user = add_user(engine, "ana", "clinician", "correct horse battery", practitioners=["PR1"])
>>> token, csrf = start_session(engine, user.user_id)
>>> load_session(engine, token, IDLE_TIMEOUT).username
'ana'
>>> end_session(engine, token)
>>> load_session(engine, token, IDLE_TIMEOUT) is None
True
"""

from __future__ import annotations

import dataclasses
import datetime as dt

import sqlalchemy as sa

from ..db import LOGIN_FAILURES, USERS, WEB_SESSIONS
from ._audit import now
from ._security import hash_token, new_token

__all__ = [
    "FAILURE_WINDOW",
    "IDLE_TIMEOUT",
    "MAX_CLIENT_FAILURES",
    "MAX_USER_FAILURES",
    "TOUCH_EVERY",
    "SignedIn",
    "clear_failures",
    "end_session",
    "load_session",
    "record_failure",
    "start_session",
    "too_many_failures",
]

#: How long a session may go unused before it ends.
IDLE_TIMEOUT = dt.timedelta(minutes=30)
#: A session's last use is written again only once this long has passed since it was
#: last written (or a tenth of the idle timeout, if shorter), not on every request; a
#: session may so end up to that much early, never late.
TOUCH_EVERY = dt.timedelta(minutes=1)
#: The window in which failed sign-ins count.
FAILURE_WINDOW = dt.timedelta(minutes=15)
#: Failed sign-ins in a row for one user name after which the next is refused.
MAX_USER_FAILURES = 5
#: Failed sign-ins from one client address after which the next is refused.
MAX_CLIENT_FAILURES = 20
_CLIENT_LENGTH = 64  # LOGIN_FAILURES.c.client
_USERNAME_LENGTH = 64  # LOGIN_FAILURES.c.username


@dataclasses.dataclass(frozen=True)
class SignedIn:
    """The user of a live session."""

    user_id: int
    username: str
    role: str
    team: str | None
    csrf_token: str
    token_sha256: str


def _moment(stamp: str) -> dt.datetime:
    return dt.datetime.fromisoformat(stamp)


def _since(window: dt.timedelta) -> str:
    return (dt.datetime.now(dt.UTC) - window).isoformat(timespec="microseconds")


def start_session(engine: sa.Engine, user_id: int) -> tuple[str, str]:
    """A new session for ``user_id``: its token (for the cookie) and its CSRF token."""
    token, csrf = new_token(), new_token()
    stamp = now()
    with engine.begin() as connection:
        connection.execute(
            WEB_SESSIONS.insert().values(
                token_sha256=hash_token(token),
                user_id=user_id,
                csrf_token=csrf,
                created_at=stamp,
                last_seen_at=stamp,
            )
        )
    return token, csrf


def load_session(engine: sa.Engine, token: str, idle_timeout: dt.timedelta) -> SignedIn | None:
    """The session whose token is ``token``, its last use moved to now (see
    :data:`TOUCH_EVERY`); None when there is none, it has been idle too long, or its user
    is disabled (then it is deleted)."""
    digest = hash_token(token)
    with engine.begin() as connection:
        row = connection.execute(
            sa.select(
                WEB_SESSIONS.c.csrf_token,
                WEB_SESSIONS.c.last_seen_at,
                USERS.c.user_id,
                USERS.c.username,
                USERS.c.role,
                USERS.c.team,
                USERS.c.disabled,
            )
            .join(USERS, USERS.c.user_id == WEB_SESSIONS.c.user_id)
            .where(WEB_SESSIONS.c.token_sha256 == digest)
        ).one_or_none()
        if row is None:
            return None
        idle = dt.datetime.now(dt.UTC) - _moment(row.last_seen_at)
        if row.disabled or idle > idle_timeout:
            connection.execute(WEB_SESSIONS.delete().where(WEB_SESSIONS.c.token_sha256 == digest))
            return None
        if idle >= min(TOUCH_EVERY, idle_timeout / 10):
            connection.execute(
                WEB_SESSIONS.update()
                .where(WEB_SESSIONS.c.token_sha256 == digest)
                .values(last_seen_at=now())
            )
    return SignedIn(
        user_id=int(row.user_id),
        username=row.username,
        role=row.role,
        team=row.team,
        csrf_token=row.csrf_token,
        token_sha256=digest,
    )


def end_session(engine: sa.Engine, token: str) -> None:
    """Delete the session whose token is ``token`` (nothing if there is none)."""
    with engine.begin() as connection:
        connection.execute(
            WEB_SESSIONS.delete().where(WEB_SESSIONS.c.token_sha256 == hash_token(token))
        )


def too_many_failures(engine: sa.Engine, username: str, client: str) -> bool:
    """Whether a sign-in as ``username`` from ``client`` is refused for now."""
    since = _since(FAILURE_WINDOW)
    recent = LOGIN_FAILURES.c.at >= since
    with engine.connect() as connection:
        by_user = connection.execute(
            sa.select(sa.func.count()).where(
                LOGIN_FAILURES.c.username == username[:_USERNAME_LENGTH], recent
            )
        ).scalar_one()
        by_client = connection.execute(
            sa.select(sa.func.count()).where(
                LOGIN_FAILURES.c.client == client[:_CLIENT_LENGTH], recent
            )
        ).scalar_one()
    return by_user >= MAX_USER_FAILURES or by_client >= MAX_CLIENT_FAILURES


def record_failure(engine: sa.Engine, username: str, client: str) -> None:
    """Keep one failed sign-in (and forget those older than the window)."""
    with engine.begin() as connection:
        connection.execute(
            LOGIN_FAILURES.delete().where(LOGIN_FAILURES.c.at < _since(dt.timedelta(days=1)))
        )
        connection.execute(
            LOGIN_FAILURES.insert().values(
                username=username[:_USERNAME_LENGTH], client=client[:_CLIENT_LENGTH], at=now()
            )
        )


def clear_failures(engine: sa.Engine, username: str) -> None:
    """Forget a user name's failed sign-ins (after it signed in: "in a row")."""
    with engine.begin() as connection:
        connection.execute(
            LOGIN_FAILURES.delete().where(LOGIN_FAILURES.c.username == username[:_USERNAME_LENGTH])
        )
