"""``engagekit serve``'s accounts and audit log: who may sign in and see whose patients,
and the record of every view of a patient's data, flag review and user change.

:func:`create_app` is the web application itself (FastAPI, from the ``web`` extra,
imported on first use): the clinician pages and the JSON API on the score database.

The accounts hash passwords with argon2-cffi, from the ``web`` extra
(``pip install "engagekit[web]"``); the audit log needs nothing beyond engagekit. Both
live in a service's database, in the tables of :mod:`engagekit.db`.

Examples
--------
>>> import sqlalchemy as sa
>>> engine = sa.create_engine("sqlite://")
>>> _ = add_user(engine, "ana", "clinician", "correct horse battery", practitioners=["PR1"])
>>> verify_password(engine, "ana", "correct horse battery").role
'clinician'
>>> export_audit(engine).loc[0, ["username", "action", "detail"]].tolist()
['cli', 'user_change', "added user 'ana' with role clinician, practitioners 'PR1'"]
"""

from .._lazy import lazy_exports
from ._accounts import (
    MIN_PASSWORD_LENGTH,
    WEB_EXTRA_MISSING,
    UserRecord,
    add_user,
    check_new_user,
    disable_user,
    list_users,
    require_user,
    require_web_extra,
    set_password,
    set_team,
    verify_password,
)
from ._audit import AUDIT_COLUMNS, export_audit, open_database, record_audit

# the web application needs FastAPI (the web extra): imported on first use, so that the
# accounts and the audit log work, and say what is missing, without it
_LAZY = {"create_app": "._app", "STATEMENT": "._app"}

__all__ = [
    "AUDIT_COLUMNS",
    "MIN_PASSWORD_LENGTH",
    "STATEMENT",
    "WEB_EXTRA_MISSING",
    "UserRecord",
    "add_user",
    "check_new_user",
    "create_app",
    "disable_user",
    "export_audit",
    "list_users",
    "open_database",
    "record_audit",
    "require_user",
    "require_web_extra",
    "set_password",
    "set_team",
    "verify_password",
]

__getattr__, __dir__ = lazy_exports(__name__, _LAZY, globals())
