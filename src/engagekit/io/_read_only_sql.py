"""Reading from a database without the means to change it.

engagekit only ever reads encounters from a database, so two independent guards keep a
``--query`` (or a ``--table`` read) from writing:

1. the query must be one ``SELECT`` statement (or ``WITH … SELECT``) with no word that
   makes a statement write: a second statement, ``DROP``, ``ATTACH``, ``PRAGMA``, a
   data-modifying ``WITH``, ``SELECT … INTO`` are refused before any connection is made;
2. the connection itself cannot write. A SQLite file is opened read-only (``mode=ro``),
   with ``query_only`` on, no database may be attached (``ATTACH`` would create a file
   even on a read-only connection) and an authorizer that allows reading only.
   PostgreSQL, MySQL/MariaDB and Oracle run the read in a ``READ ONLY`` transaction.
   Every read ends in a rollback, never a commit.

The statement check errs on the side of refusing: comments and quoted text are blanked
by the strictest reading of the dialects (a backslash does not escape a quote, ``/*! */``
is code, ``--`` starts a comment), so that any text a database could run is looked at.
"""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path
from typing import Any

from .._excerpt import excerpt
from ..errors import DataReadError

__all__ = ["begin_read_only", "check_single_select", "sqlite_read_only_connection"]

#: Words that make a statement write or reach outside the database and can appear inside
#: a SELECT or WITH statement. A column named like one of them can be written in double
#: quotes ("update").
_WRITING_WORDS = frozenset(
    {
        "alter",
        "attach",
        "create",
        "delete",
        "detach",
        "drop",
        "grant",
        "insert",
        "into",
        "merge",
        "pragma",
        "reindex",
        "revoke",
        "truncate",
        "update",
        "vacuum",
    }
)
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*")


def _refuse(reason: str) -> DataReadError:
    return DataReadError(
        f"--query must be one SELECT statement that only reads ({reason}); engagekit "
        "never writes to the database it reads"
    )


def _code_of(query: str) -> str:
    """``query`` with its comments removed and quoted text blanked (``''`` or ``""``)."""
    out: list[str] = []
    i, n = 0, len(query)
    while i < n:
        c = query[i]
        if query.startswith("--", i):
            end = query.find("\n", i)
            i = n if end < 0 else end
            out.append(" ")
        elif query.startswith("/*", i) and not query.startswith("/*!", i):
            end = query.find("*/", i + 2)
            if end < 0:
                raise _refuse("a /* comment is not closed")
            i = end + 2
            out.append(" ")
        elif c in "'\"":
            # a quote is escaped by doubling it; anything else ends the text
            j = i + 1
            while True:
                j = query.find(c, j)
                if j < 0:
                    raise _refuse(f"a {c} quote is not closed")
                if query.startswith(c, j + 1):
                    j += 2
                    continue
                break
            out.append(c + c)
            i = j + 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def check_single_select(query: str) -> None:
    """Refuse a query that is not one SELECT statement that only reads.

    Parameters
    ----------
    query : str
        SQL text as the user gave it.

    Raises
    ------
    DataReadError
        The query is empty, holds more than one statement, does not start with
        ``SELECT`` or ``WITH``, holds a word that writes (``INSERT``, ``DROP``,
        ``ATTACH``, ``PRAGMA``, ``INTO``...), or a quote or comment is not closed.

    Examples
    --------
    >>> check_single_select("SELECT * FROM visits WHERE note = 'drop; it' -- ok")
    >>> check_single_select("DROP TABLE visits")
    Traceback (most recent call last):
    ...
    engagekit.errors.DataReadError: --query must be one SELECT statement that only reads \
(it starts with 'DROP', not SELECT or WITH); engagekit never writes to the database it reads
    """
    code = _code_of(query).strip()
    code = code.removesuffix(";").rstrip()
    if ";" in code:
        raise _refuse("it holds more than one statement")
    words = _WORD.findall(code)
    if not words:
        raise _refuse("it is empty")
    if words[0].lower() not in ("select", "with"):
        raise _refuse(f"it starts with {excerpt(words[0], 30)}, not SELECT or WITH")
    writing = sorted({w.upper() for w in words if w.lower() in _WRITING_WORDS})
    if writing:
        raise _refuse(f"it holds {', '.join(writing)}")


# Actions a reading query needs; everything else (writing, attaching, creating,
# transactions aside) is denied by the authorizer.
_SQLITE_READ_ACTIONS = frozenset(
    {
        sqlite3.SQLITE_SELECT,
        sqlite3.SQLITE_READ,
        sqlite3.SQLITE_FUNCTION,
        getattr(sqlite3, "SQLITE_RECURSIVE", 33),
        sqlite3.SQLITE_TRANSACTION,
    }
)
# PRAGMAs that only describe the database: SQLAlchemy reflects a --table with them.
_SQLITE_READ_PRAGMAS = frozenset(
    {
        "table_info",
        "table_xinfo",
        "table_list",
        "index_list",
        "index_info",
        "index_xinfo",
        "foreign_key_list",
        "database_list",
        "read_uncommitted",
    }
)


def _sqlite_authorizer(action: int, arg1: Any, arg2: Any, database: Any, trigger: Any) -> int:
    if action in _SQLITE_READ_ACTIONS:
        return sqlite3.SQLITE_OK
    if action == sqlite3.SQLITE_PRAGMA and str(arg1).lower() in _SQLITE_READ_PRAGMAS:
        return sqlite3.SQLITE_OK
    return sqlite3.SQLITE_DENY


def sqlite_read_only_connection(database: str) -> sqlite3.Connection:
    """A SQLite connection to the file ``database`` that cannot write anything.

    ``database`` is a path, a ``file:`` URI (its parameters are dropped: the file is
    opened read-only whatever they say) or ``:memory:``.
    """
    if not database or database == ":memory:":
        conn = sqlite3.connect(":memory:", check_same_thread=False)
    else:
        if database.startswith("file:"):
            from urllib.parse import unquote, urlsplit

            database = unquote(urlsplit(database).path)
        uri = Path(database).resolve().as_uri() + "?mode=ro"
        conn = sqlite3.connect(uri, uri=True, check_same_thread=False)
    try:
        conn.execute("PRAGMA query_only = ON")
        # ATTACH and VACUUM INTO create files even on a read-only connection
        conn.setlimit(sqlite3.SQLITE_LIMIT_ATTACHED, 0)
        conn.set_authorizer(_sqlite_authorizer)
    except BaseException:
        conn.close()
        raise
    return conn


#: Dialects with a READ ONLY transaction, started by this statement.
_READ_ONLY_TRANSACTION = {
    "postgresql": "SET TRANSACTION READ ONLY",
    "mysql": "SET TRANSACTION READ ONLY",
    "mariadb": "SET TRANSACTION READ ONLY",
    "oracle": "SET TRANSACTION READ ONLY",
}


def begin_read_only(conn: Any) -> None:
    """Make the transaction just begun on the SQLAlchemy connection ``conn`` read-only.

    SQLite needs nothing here (its connection is read-only itself); a dialect without a
    read-only transaction relies on the statement check and on the rollback that ends
    every read.
    """
    import sqlalchemy as sa

    statement = _READ_ONLY_TRANSACTION.get(conn.dialect.name)
    if statement is not None:
        conn.execute(sa.text(statement))
