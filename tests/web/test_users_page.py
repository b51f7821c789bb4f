"""The admin's users page: list, add and disable users, each change audited; nobody else
may use it."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from engagekit.db import USER_PRACTITIONERS, USERS
from web._web import PASSWORD, audit_rows, csrf_of, sign_in


def test_the_admin_lists_the_users_without_their_hashes(service):
    body = service.clients["sam"].get("/api/v1/users").json()
    names = [user["username"] for user in body]
    assert names == sorted(names) and {"ana", "lee", "kim", "sam"} <= set(names)
    assert all("password" not in key for user in body for key in user)
    page = service.clients["sam"].get("/users")
    assert page.status_code == 200 and "argon2" not in page.text
    assert "Disable ana" in page.text and "Disable sam" not in page.text  # not oneself


def test_the_admin_adds_a_user_who_can_sign_in(service):
    sam = service.clients["sam"]
    before = len(audit_rows(service.engine))
    response = sam.post(
        "/users",
        data={
            "csrf_token": csrf_of(sam),
            "username": "nia",
            "role": "clinician",
            "practitioners": "PRAC-B, PRAC C",
            "password": PASSWORD,
        },
    )
    assert response.status_code == 303 and response.headers["location"] == "/users"
    new = audit_rows(service.engine)[before:]
    assert [(r["username"], r["action"], r["route"]) for r in new] == [
        ("sam", "user_change", "/users")
    ]
    assert "nia" in new[0]["detail"] and PASSWORD not in new[0]["detail"]
    with service.engine.connect() as connection:
        practitioners = connection.execute(
            sa.select(USER_PRACTITIONERS.c.practitioner_id)
            .join(USERS, USERS.c.user_id == USER_PRACTITIONERS.c.user_id)
            .where(USERS.c.username == "nia")
            .order_by(USER_PRACTITIONERS.c.practitioner_id)
        ).scalars()
        assert list(practitioners) == ["PRAC C", "PRAC-B"]
    assert sign_in(service.client("10.1.0.1"), "nia").status_code == 303


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"username": "ana", "role": "analyst"}, "already exists"),
        ({"username": "short", "role": "analyst", "password": "short"}, "too short"),
        ({"username": "lone", "role": "clinician"}, "at least one practitioner"),
        ({"username": "x y", "role": "analyst"}, "is not valid"),
        ({"username": "boss", "role": "owner"}, "unknown role"),
    ],
)
def test_an_invalid_user_is_refused(service, data, message):
    sam = service.clients["sam"]
    before = len(audit_rows(service.engine))
    response = sam.post("/users", data={"csrf_token": csrf_of(sam), "password": PASSWORD, **data})
    assert response.status_code == 400
    assert message in response.text and PASSWORD not in response.text
    assert len(audit_rows(service.engine)) == before


def test_the_admin_disables_a_user_and_their_session_ends(service):
    from engagekit.web import add_user

    add_user(service.engine, "ola", "analyst", PASSWORD)
    ola = service.client("10.1.0.2")
    assert sign_in(ola, "ola").status_code == 303
    sam = service.clients["sam"]
    response = sam.post("/users/ola/disable", data={"csrf_token": csrf_of(sam)})
    assert response.status_code == 303
    assert ola.get("/service").status_code == 303  # signed out
    assert audit_rows(service.engine)[-1]["route"] == "/users/{username}/disable"
    again = sam.post("/users/ola/disable", data={"csrf_token": csrf_of(sam)})
    assert again.status_code == 400 and "disabled already" in again.text
    self_ = sam.post("/users/sam/disable", data={"csrf_token": csrf_of(sam)})
    assert self_.status_code == 400


@pytest.mark.parametrize("role", ["ana", "lee", "kim"])
def test_only_the_admin_manages_users(service, role):
    client = service.clients[role]
    token = csrf_of(client)
    before = len(audit_rows(service.engine))
    assert client.get("/users").status_code == 403
    assert client.get("/api/v1/users").status_code == 403
    added = client.post(
        "/users",
        data={"csrf_token": token, "username": "eve", "role": "admin", "password": PASSWORD},
    )
    assert added.status_code == 403
    assert client.post("/users/sam/disable", data={"csrf_token": token}).status_code == 403
    assert len(audit_rows(service.engine)) == before


def test_user_changes_need_the_csrf_token(service):
    sam = service.clients["sam"]
    response = sam.post("/users", data={"username": "eve", "role": "admin", "password": PASSWORD})
    assert response.status_code == 403
    assert sam.post("/users/ana/disable", data={}).status_code == 403
    names = [user["username"] for user in sam.get("/api/v1/users").json()]
    assert "eve" not in names
