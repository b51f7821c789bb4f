"""``engagekit users`` and :mod:`engagekit.web`'s accounts: add, list, disable, set a
password, verify one; on SQLite and PostgreSQL. A password is never shown, and never
stored but as an Argon2id hash; every user change writes exactly one audit row."""

from __future__ import annotations

import contextlib
import sys
import traceback
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from _cli import Completed, assert_no_traceback, run
from engagekit.cli import app
from engagekit.db import METADATA, USERS, WEB_SESSIONS, upgrade_database
from engagekit.errors import ArgumentError
from engagekit.web import (
    _accounts,
    add_user,
    disable_user,
    export_audit,
    list_users,
    set_password,
    verify_password,
)

PASSWORD = "correct horse battery staple"
NEW_PASSWORD = "Tr0ub4dor & three more words"


def run_with_input(*args: str | Path, input: str, cwd: Path) -> Completed:
    """``engagekit ARGS`` in this process, as :func:`_cli.run` runs it, with ``input`` on
    standard input (for the password prompt and --password-stdin)."""
    arguments = tuple(map(str, args))
    with contextlib.chdir(cwd):
        result = CliRunner().invoke(
            app,
            list(arguments),
            input=input,
            env={"COLUMNS": "200", "NO_COLOR": "1", "TERM": "dumb", "ENGAGEKIT_DEBUG": "1"},
        )
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        detail = "".join(traceback.format_exception(*result.exc_info))
        raise AssertionError(f"engagekit {' '.join(arguments)} raised:\n{detail}")
    return Completed(arguments, result.exit_code, result.stdout, result.stderr)


def add(url: str, name: str, *options: str, password: str = PASSWORD, cwd: Path) -> Completed:
    return run_with_input(
        "users", "add", name, *options, "--db", url, "--password-stdin",
        input=password + "\n", cwd=cwd,
    )  # fmt: skip


def audit_rows(url: str) -> list[dict]:
    engine = sa.create_engine(url)
    try:
        return export_audit(engine).to_dict("records")
    finally:
        engine.dispose()


def one_error_line(result: Completed) -> str:
    """The one line a refused command prints (and that it exits 2 without a traceback)."""
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert_no_traceback(result)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


@pytest.fixture
def engine(database_url):
    engine = sa.create_engine(database_url)
    yield engine
    engine.dispose()


# --------------------------------------------------------------------------- the commands
def test_add_list_disable_and_set_password_round_trip(database_url, tmp_path):
    done = add(database_url, "ana", "--role", "clinician", "--practitioner", "PR2",
               "--practitioner", "PR1", cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "Added user 'ana' (clinician; practitioners PR1, PR2)" in done.stdout
    assert add(database_url, "mo", "--role", "team_lead", "--team", "North",
               cwd=tmp_path).returncode == 0  # fmt: skip
    assert add(database_url, "kim", "--role", "analyst", cwd=tmp_path).returncode == 0

    listed = run("users", "list", "--db", database_url, cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    rows = {line.split()[1]: line for line in listed.stdout.splitlines() if "│" in line}
    assert set(rows) == {"ana", "kim", "mo"}
    assert "clinician" in rows["ana"] and "PR1, PR2" in rows["ana"] and "active" in rows["ana"]
    assert "team_lead" in rows["mo"] and "North" in rows["mo"]
    assert "$argon2" not in listed.stdout

    changed = run_with_input(
        "users", "set-password", "ana", "--db", database_url, "--password-stdin",
        input=NEW_PASSWORD + "\n", cwd=tmp_path,
    )  # fmt: skip
    assert changed.returncode == 0, changed.stderr
    assert "Set a new password for user 'ana'" in changed.stdout
    engine = sa.create_engine(database_url)
    assert verify_password(engine, "ana", PASSWORD) is None
    assert verify_password(engine, "ana", NEW_PASSWORD).practitioners == ("PR1", "PR2")

    disabled = run("users", "disable", "ana", "--db", database_url, cwd=tmp_path)
    assert disabled.returncode == 0, disabled.stderr
    assert verify_password(engine, "ana", NEW_PASSWORD) is None
    users = {user.username: user for user in list_users(engine)}
    engine.dispose()
    assert users["ana"].disabled and not users["mo"].disabled
    assert (users["mo"].role, users["mo"].team, users["mo"].practitioners) == (
        "team_lead", "North", (),
    )  # fmt: skip
    listed = run("users", "list", "--db", database_url, cwd=tmp_path)
    assert "disabled" in next(line for line in listed.stdout.splitlines() if " ana " in line)


def test_the_password_prompt_is_hidden_and_asks_twice(database_url, tmp_path):
    result = run_with_input(
        "users", "add", "sam", "--role", "admin", "--db", database_url,
        input=f"{PASSWORD}\nnot the same one at all\n{PASSWORD}\n{PASSWORD}\n", cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "do not match" in result.stderr  # asked again after the mismatch
    assert PASSWORD not in result.stdout + result.stderr
    engine = sa.create_engine(database_url)
    assert verify_password(engine, "sam", PASSWORD).role == "admin"
    engine.dispose()


def test_password_stdin_reads_one_line_as_it_is(database_url, tmp_path):
    spaced = "  a passphrase with spaces  "
    result = run_with_input(
        "users", "add", "sam", "--role", "admin", "--db", database_url, "--password-stdin",
        input=f"{spaced}\r\nthe next line is not read\n", cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    engine = sa.create_engine(database_url)
    assert verify_password(engine, "sam", spaced) is not None
    assert verify_password(engine, "sam", spaced.strip()) is None
    engine.dispose()


def test_password_stdin_without_a_line_is_refused(tmp_path):
    url = f"sqlite:///{tmp_path / 'engagekit.db'}"
    result = run_with_input(
        "users", "add", "sam", "--role", "admin", "--db", url, "--password-stdin",
        input="", cwd=tmp_path,
    )  # fmt: skip
    assert "--password-stdin" in one_error_line(result)


def test_a_password_appears_only_as_an_argon2_hash(database_url, tmp_path):
    outputs = [
        add(database_url, "ana", "--role", "clinician", "--practitioner", "PR1", cwd=tmp_path),
        run_with_input(
            "users", "set-password", "ana", "--db", database_url,
            input=f"{NEW_PASSWORD}\n{NEW_PASSWORD}\n", cwd=tmp_path,
        ),
        run("users", "list", "--db", database_url, cwd=tmp_path),
        run("users", "disable", "ana", "--db", database_url, cwd=tmp_path),
        run("audit", "export", "--db", database_url, "--out", "audit.csv", cwd=tmp_path),
    ]  # fmt: skip
    for result in outputs:
        assert result.returncode == 0, result.stderr
        for password in (PASSWORD, NEW_PASSWORD):
            assert password not in result.stdout + result.stderr
    exported = (tmp_path / "audit.csv").read_text()
    assert "ana" in exported
    assert PASSWORD not in exported and NEW_PASSWORD not in exported

    engine = sa.create_engine(database_url)
    with engine.connect() as connection:
        cells = [
            str(value)
            for table in METADATA.sorted_tables
            for row in connection.execute(sa.select(table))
            for value in row
        ]
        (stored,) = connection.execute(sa.select(USERS.c.password_hash)).scalars()
    engine.dispose()
    for password in (PASSWORD, NEW_PASSWORD):
        assert not any(password in cell for cell in cells)
    assert stored.startswith("$argon2id$")
    assert _accounts._hasher().verify(stored, NEW_PASSWORD)


# --------------------------------------------------------------------------- the audit log
def test_each_user_change_writes_exactly_one_audit_row(database_url, tmp_path):
    add(database_url, "ana", "--role", "clinician", "--practitioner", "PR1", cwd=tmp_path)
    assert len(audit_rows(database_url)) == 1
    add(database_url, "Ana", "--role", "admin", cwd=tmp_path)  # refused: writes nothing
    run("users", "list", "--db", database_url, cwd=tmp_path)  # not a change
    assert len(audit_rows(database_url)) == 1
    run_with_input(
        "users", "set-password", "ana", "--db", database_url, "--password-stdin",
        input=NEW_PASSWORD + "\n", cwd=tmp_path,
    )  # fmt: skip
    assert len(audit_rows(database_url)) == 2
    run("users", "disable", "ana", "--db", database_url, cwd=tmp_path)
    run("users", "disable", "ana", "--db", database_url, cwd=tmp_path)  # refused
    rows = audit_rows(database_url)
    assert [row["route"] for row in rows] == [
        "cli:users add",
        "cli:users set-password",
        "cli:users disable",
    ]
    for row in rows:
        assert (row["username"], row["role"], row["action"]) == ("cli", "admin", "user_change")
        assert row["patient_id"] is None or row["patient_id"] != row["patient_id"]  # NA
        assert row["allowed"] is True
        assert "'ana'" in row["detail"]
        assert row["at"].endswith("+00:00")
    assert rows[0]["detail"] == "added user 'ana' with role clinician, practitioners 'PR1'"
    assert rows[1]["detail"] == "set a new password for user 'ana'"
    assert rows[2]["detail"] == "disabled user 'ana'"


def test_disabling_or_a_new_password_ends_the_signed_in_sessions(engine):
    user = add_user(engine, "ana", "analyst", PASSWORD)
    with engine.begin() as connection:
        for token in ("a" * 64, "b" * 64):
            connection.execute(
                WEB_SESSIONS.insert(),
                {"token_sha256": token, "user_id": user.user_id, "csrf_token": "c",
                 "created_at": user.created_at, "last_seen_at": user.created_at},
            )  # fmt: skip
    set_password(engine, "ana", NEW_PASSWORD, actor="boss", route="/admin/users")
    with engine.connect() as connection:
        assert (
            connection.execute(sa.select(sa.func.count()).select_from(WEB_SESSIONS)).scalar() == 0
        )
    last = export_audit(engine).iloc[-1]
    assert (last["username"], last["route"]) == ("boss", "/admin/users")
    assert last["detail"] == "set a new password for user 'ana'; ended 2 signed-in sessions"


# --------------------------------------------------------------------------- verify_password
def test_verify_password_right_wrong_disabled_and_unknown(engine, monkeypatch):
    add_user(engine, "ana", "clinician", PASSWORD, practitioners=["PR1"], team="North")
    add_user(engine, "kim", "analyst", PASSWORD)
    disable_user(engine, "kim")

    verified: list[str] = []
    matches = _accounts._matches
    monkeypatch.setattr(
        _accounts,
        "_matches",
        lambda stored, given: verified.append(stored) or matches(stored, given),
    )
    user = verify_password(engine, "ana", PASSWORD)
    assert user is not None
    assert (user.username, user.role, user.team, user.practitioners) == (
        "ana", "clinician", "North", ("PR1",),
    )  # fmt: skip
    assert not hasattr(user, "password_hash")
    assert verify_password(engine, "ana", NEW_PASSWORD) is None
    assert verify_password(engine, "ANA", PASSWORD) is None  # user names are exact
    assert verify_password(engine, "kim", PASSWORD) is None  # disabled
    assert verify_password(engine, "nobody", PASSWORD) is None
    assert verify_password(engine, "not a user name!", PASSWORD) is None
    # one hash verified per attempt, whatever the reason for refusing: for an unknown or
    # disabled user, the dummy hash (so the time taken does not say which it was)
    dummy = _accounts._dummy_hash()
    assert len(verified) == 6
    assert dummy not in verified[:2]
    assert verified[2:] == [dummy] * 4


def test_verify_password_rehashes_a_weaker_hash(engine):
    from argon2 import PasswordHasher

    add_user(engine, "ana", "analyst", PASSWORD)
    weak = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1).hash(PASSWORD)
    with engine.begin() as connection:
        connection.execute(USERS.update().values(password_hash=weak))
    assert verify_password(engine, "ana", PASSWORD) is not None
    with engine.connect() as connection:
        stored = connection.execute(sa.select(USERS.c.password_hash)).scalar_one()
    assert stored != weak
    assert not _accounts._hasher().check_needs_rehash(stored)
    assert verify_password(engine, "ana", PASSWORD) is not None


# --------------------------------------------------------------------------- refusals
@pytest.mark.parametrize(
    ("name", "options", "password", "message"),
    [
        ("ana", ["--role", "boss"], PASSWORD,
         "unknown role 'boss'; expected one of 'clinician', 'team_lead', 'analyst', 'admin'"),
        ("ana", ["--role", "clinician"], PASSWORD,
         "a clinician sees the patients of their practitioners: give at least one"),
        ("mo", ["--role", "team_lead"], PASSWORD, "a team_lead sees the patients of a team"),
        ("ana", ["--role", "admin"], "short pass",
         "the password is too short: use at least 12 characters"),
        ("ana lee", ["--role", "admin"], PASSWORD,
         "the user name 'ana lee' is not valid: use 1 to 64 letters, digits"),
        ("a" * 65, ["--role", "admin"], PASSWORD, "is not valid: use 1 to 64 letters"),
        ("ana", ["--role", "clinician", "--practitioner", " "], PASSWORD,
         "the practitioner ID ' ' is not valid"),
    ],
    ids=["role", "clinician-without-practitioner", "team-lead-without-team", "short-password",
         "user-name", "long-user-name", "blank-practitioner"],
)  # fmt: skip
def test_an_invalid_user_is_refused_in_one_line(tmp_path, name, options, password, message):
    url = f"sqlite:///{tmp_path / 'engagekit.db'}"
    result = add(url, name, *options, password=password, cwd=tmp_path)
    assert message in one_error_line(result)
    assert password not in result.stderr
    if (tmp_path / "engagekit.db").exists():
        assert audit_rows(url) == []
        engine = sa.create_engine(url)
        assert list_users(engine) == []
        engine.dispose()


def test_a_taken_user_name_is_refused_ignoring_case(database_url, tmp_path):
    assert add(database_url, "ana", "--role", "admin", cwd=tmp_path).returncode == 0
    again = add(database_url, "ana", "--role", "analyst", cwd=tmp_path)
    assert one_error_line(again) == "error: a user named 'ana' already exists"
    cased = add(database_url, "Ana", "--role", "analyst", cwd=tmp_path)
    assert "a user named 'ana' already exists (user names differ only in case)" in one_error_line(
        cased
    )
    engine = sa.create_engine(database_url)
    assert [(u.username, u.role) for u in list_users(engine)] == [("ana", "admin")]
    engine.dispose()


def test_the_library_refuses_a_duplicate_too(engine):
    add_user(engine, "ana", "admin", PASSWORD)
    with pytest.raises(ArgumentError, match="a user named 'ana' already exists"):
        add_user(engine, "ana", "admin", PASSWORD)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["disable", "nobody"], "there is no user 'nobody'"),
        (["set-password", "nobody"], "there is no user 'nobody'"),  # before any prompt
        (["disable", "kim"], "the user 'kim' is disabled already"),
    ],
)
def test_changing_a_missing_or_disabled_user_is_refused(tmp_path, args, message):
    url = f"sqlite:///{tmp_path / 'engagekit.db'}"
    engine = sa.create_engine(url)
    add_user(engine, "kim", "analyst", PASSWORD)
    disable_user(engine, "kim")
    engine.dispose()
    result = run("users", *args, "--db", url, cwd=tmp_path)
    assert message in one_error_line(result)
    assert len(audit_rows(url)) == 2


def test_the_database_is_required_and_checked(tmp_path):
    missing = run("users", "list", cwd=tmp_path)
    assert missing.returncode == 2 and "--db" in missing.stderr
    typo = run("users", "list", "--db", "sqlite:///no-such.db", cwd=tmp_path)
    assert one_error_line(typo) == "error: the database file 'no-such.db' does not exist"
    assert not (tmp_path / "no-such.db").exists()
    unreachable = run(
        "users", "list", "--db", "postgresql+psycopg://ana:s3cret@127.0.0.1:9/x", cwd=tmp_path
    )
    assert "cannot create or upgrade engagekit's tables" in one_error_line(unreachable)
    assert "s3cret" not in unreachable.stderr


def test_an_empty_database_lists_no_users(tmp_path):
    url = f"sqlite:///{tmp_path / 'engagekit.db'}"
    sa.create_engine(url).connect().close()  # the file exists, without engagekit's tables
    result = run("users", "list", "--db", url, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "No users yet" in result.stdout


@pytest.mark.parametrize(
    "args",
    [["add", "ana", "--role", "admin"], ["list"], ["disable", "ana"], ["set-password", "ana"]],
    ids=["add", "list", "disable", "set-password"],
)
def test_without_the_web_extra_users_says_how_to_install_it(tmp_path, monkeypatch, args):
    url = f"sqlite:///{tmp_path / 'engagekit.db'}"
    upgrade_database(engine := sa.create_engine(url))
    engine.dispose()
    monkeypatch.setitem(sys.modules, "argon2", None)  # import argon2 raises ImportError
    result = run("users", *args, "--db", url, cwd=tmp_path)
    line = one_error_line(result)
    assert 'pip install "engagekit[web]"' in line
    # the help is there even so
    assert run("users", args[0], "--help", cwd=tmp_path).returncode == 0


def test_set_team_replaces_the_team_a_team_lead_sees_and_is_audited(database_url, tmp_path):
    from engagekit.web._scope import scope_of
    from engagekit.web._sessions import SignedIn

    add(database_url, "lou", "--role", "team_lead", "--team", "north", cwd=tmp_path)
    for members in (("PR1", "PR2"), ("PR3",)):
        flags = [arg for p in members for arg in ("--practitioner", p)]
        result = run("users", "set-team", "north", "--db", database_url, *flags, cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        assert f"Team 'north': {', '.join(members)}." in result.stdout
    engine = sa.create_engine(database_url)
    try:
        with engine.connect() as connection:
            user_id = connection.execute(
                sa.select(USERS.c.user_id).where(USERS.c.username == "lou")
            ).scalar_one()
            lead = SignedIn(user_id, "lou", "team_lead", "north", "csrf", "token")
            assert scope_of(connection, lead).practitioners == {"PR3"}
    finally:
        engine.dispose()
    rows = audit_rows(database_url)
    assert [row["route"] for row in rows] == ["cli:users add", *["cli:users set-team"] * 2]
    assert rows[-1]["detail"] == "set team 'north': practitioners 'PR3'"
    refused = run("users", "set-team", "", "--db", database_url, cwd=tmp_path)
    assert refused.returncode == 2 and "the team '' is not valid" in refused.stderr
    assert len(audit_rows(database_url)) == 3
