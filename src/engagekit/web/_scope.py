"""Who sees what in ``engagekit serve``: one function (:func:`scope_of`) turns a
signed-in user into a :class:`Scope`, and every query of patients' data goes through it.

- a ``clinician`` sees the patients whose current practitioner (at their latest
  encounter) is one of theirs (``user_practitioners``);
- a ``team_lead`` sees the patients of their team's practitioners
  (``team_practitioners``), and the team's caseload sizes;
- an ``analyst`` sees aggregates only: no patient, encounter or practitioner identifier;
- an ``admin`` reads the audit log and manages the users; no patient pages.

Examples
--------
>>> scope = Scope(username="ana", role="clinician", team=None, practitioners=frozenset({"PR1"}))
>>> scope.sees_patients, scope.may("team"), scope.home
(True, False, '/caseload')
>>> Scope(username="kim", role="analyst", team=None, practitioners=frozenset()).home
'/service'
"""

from __future__ import annotations

import dataclasses

import sqlalchemy as sa

from ..db import TEAM_PRACTITIONERS, USER_PRACTITIONERS
from ._sessions import SignedIn

__all__ = ["PAGES", "Scope", "scope_of"]

#: The pages (other than a patient's) each role may use; the first is its home page.
PAGES: dict[str, tuple[str, ...]] = {
    "clinician": ("caseload",),
    "team_lead": ("team", "caseload"),
    "analyst": ("service",),
    "admin": ("audit", "users"),
}


@dataclasses.dataclass(frozen=True)
class Scope:
    """What a signed-in user may see.

    Attributes
    ----------
    username, role, team
        The user's.
    practitioners : frozenset of str
        The practitioners whose current patients the user sees (empty for an analyst
        or an admin, who see none).
    """

    username: str
    role: str
    team: str | None
    practitioners: frozenset[str]

    @property
    def sees_patients(self) -> bool:
        """Whether the role may see any patient's data at all."""
        return self.role in ("clinician", "team_lead")

    def may(self, page: str) -> bool:
        """Whether the role may use ``page`` (``caseload``, ``team``, ``service``,
        ``audit``, ``users``)."""
        return page in PAGES.get(self.role, ())

    @property
    def home(self) -> str:
        """The role's first page."""
        return "/" + PAGES[self.role][0]

    def sees_practitioner(self, practitioner_id: object) -> bool:
        """Whether a patient whose current practitioner is ``practitioner_id`` is the
        user's to see."""
        return self.sees_patients and str(practitioner_id) in self.practitioners


def scope_of(connection: sa.Connection, user: SignedIn) -> Scope:
    """The scope of a signed-in user, read from the database now (so a change to their
    practitioners or team counts from their next request)."""
    practitioners: frozenset[str] = frozenset()
    if user.role == "clinician":
        practitioners = frozenset(
            connection.execute(
                sa.select(USER_PRACTITIONERS.c.practitioner_id).where(
                    USER_PRACTITIONERS.c.user_id == user.user_id
                )
            ).scalars()
        )
    elif user.role == "team_lead" and user.team is not None:
        practitioners = frozenset(
            connection.execute(
                sa.select(TEAM_PRACTITIONERS.c.practitioner_id).where(
                    TEAM_PRACTITIONERS.c.team == user.team
                )
            ).scalars()
        )
    return Scope(
        username=user.username, role=user.role, team=user.team, practitioners=practitioners
    )
