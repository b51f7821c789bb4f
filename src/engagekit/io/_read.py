"""Read an encounter table as it is, without interpreting values.

CSV cells are read as text so that validation can report the offending value exactly as
the service wrote it ("4.5.", "yes"), instead of a silent missing value after a failed
conversion. Parquet and SQL keep their own column types.
"""

from __future__ import annotations

import csv
import io as _io
import re
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from .._excerpt import excerpt, excerpt_lines
from .._files import NotARegularFileError, open_regular_file, refuse_special_file
from ..errors import DataReadError

__all__ = ["SEPARATORS", "detect_separator", "is_database_url", "read_encounters"]

_PARQUET_SUFFIXES = {".parquet", ".pq"}
_COMPRESSION_SUFFIXES = {".gz", ".bz2", ".zip", ".xz", ".zst"}
_SNIFF_BYTES = 64 * 1024


def is_database_url(source: str | Path) -> bool:
    """True if ``source`` is a SQLAlchemy URL such as ``sqlite:///service.db``."""
    return isinstance(source, str) and "://" in source


def read_encounters(
    source: str | Path,
    *,
    table: str | None = None,
    query: str | None = None,
    missing_values: Sequence[str] = ("", "NA"),
    encoding: str = "utf-8",
    sep: str | None = None,
) -> pd.DataFrame:
    """Read an encounter table from CSV, Parquet or a SQL database.

    Parameters
    ----------
    source : str or Path
        A file path (``.csv``, ``.csv.gz``, ``.tsv``, ``.parquet``; other names are
        sniffed) or a SQLAlchemy URL (``sqlite:///service.db``,
        ``postgresql://user@host/db``).
    table, query : str, optional
        For a database: the table to read (default ``encounters``) or a SQL query,
        which must be one ``SELECT`` (or ``WITH … SELECT``) statement. Either is read
        on a connection that cannot write: a SQLite file opened read-only, a READ ONLY
        transaction on PostgreSQL, MySQL/MariaDB and Oracle (other databases rely on the
        statement check and a rollback; see :mod:`engagekit.io._read_only_sql`).
    missing_values : sequence of str
        CSV cell values read as missing; anything else stays as written.
    encoding : str
        Text encoding of a CSV file.
    sep : str, optional
        Column separator of a CSV file: one character, or ``"tab"``. By default it is
        detected from the header line among ``,``, ``;``, tab and ``|`` (a ``.tsv``
        file is tab-separated), so a spreadsheet's ``;``-separated export is read as
        it is.

    Returns
    -------
    pandas.DataFrame
        The table with a fresh 0-based index: data row number = index + 1.

    Raises
    ------
    DataReadError
        The source is missing, empty, binary, not a table, or not in the stated
        encoding; it is a folder, named pipe, device or socket rather than a regular
        file (refused before it is opened, so a pipe with no writer cannot hang the
        read); the query is not one SELECT statement; or ``sep`` is not one character.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (folder / "export.csv").write_text("patient_id;encounter_id\\nP1;E1\\n")
    >>> read_encounters(folder / "export.csv").columns.tolist()
    ['patient_id', 'encounter_id']
    >>> read_encounters(folder / "export.csv", sep=",").columns.tolist()
    ['patient_id;encounter_id']
    >>> read_encounters(folder / "export.csv", sep=";;")
    Traceback (most recent call last):
    ...
    engagekit.errors.DataReadError: the separator ';;' is not one character; give e.g. \
--sep ';' or --sep tab
    """
    if is_database_url(source):
        frame = _read_sql(str(source), table=table, query=query)
    else:
        if table is not None or query is not None:
            raise DataReadError(
                f"--table and --query are for database URLs; {_name(source)} is a file path"
            )
        frame = _read_file(Path(source), missing_values, encoding, _separator(sep))
    if frame.shape[1] == 0:
        raise DataReadError(f"{_name(source)} has no columns")
    if len(frame) == 0:
        raise DataReadError(f"{_name(source)} has a header but no data rows")
    return frame.reset_index(drop=True)


def _name(source: str | Path) -> str:
    if is_database_url(source):
        from sqlalchemy.engine import make_url

        try:
            return excerpt(make_url(str(source)).render_as_string(hide_password=True), 200)
        except Exception:
            return "the database"
    return excerpt(str(source), 200)


def _detail(error: BaseException) -> str:
    """The first line of another library's message, cut short: some quote the data."""
    return excerpt_lines(str(error), width=160, max_lines=1)


#: Separators a CSV export may use, in the order ties are broken.
SEPARATORS = (",", ";", "\t", "|")
_SEPARATOR_NAMES = {"tab": "\t", "\\t": "\t", "comma": ",", "semicolon": ";", "pipe": "|"}
_SNIFF_LINES = 50


def _separator(sep: str | None) -> str | None:
    if sep is None:
        return None
    sep = _SEPARATOR_NAMES.get(sep.lower(), sep)
    if len(sep) != 1 or sep in ('"', "\n", "\r"):
        raise DataReadError(
            f"the separator {excerpt(sep, 20)} is not one character; give e.g. --sep ';' "
            "or --sep tab"
        )
    return sep


def detect_separator(lines: Sequence[str]) -> str:
    """The separator of CSV text from its first lines: among :data:`SEPARATORS`, the one
    that splits the header into the most fields while every complete line has as many;
    ``,`` when none splits it.

    >>> detect_separator(["a;b;c", "1;2,5;3"])
    ';'
    >>> detect_separator(["a,b", "1,2"])
    ','
    >>> detect_separator(["patient_id"])
    ','
    """
    best, best_fields = ",", 1
    for candidate in SEPARATORS:
        rows = list(csv.reader(lines, delimiter=candidate))
        if not rows:
            continue
        fields = len(rows[0])
        consistent = all(len(row) == fields for row in rows[1:] if row)
        if fields > best_fields and consistent:
            best, best_fields = candidate, fields
    if best_fields == 1:
        # no candidate splits every line alike: go by the header alone
        header = next(csv.reader(lines[:1], delimiter=","), [""])
        counts = {c: lines[0].count(c) for c in SEPARATORS} if lines else {}
        if counts and max(counts.values()) > 0 and len(header) == 1:
            best = max(SEPARATORS, key=lambda c: counts[c])
    return best


def _read_file(
    path: Path, missing_values: Sequence[str], encoding: str, sep: str | None = None
) -> pd.DataFrame:
    name = _name(path)
    try:
        # a named pipe or device is refused before it is opened: reading one would
        # block for ever (a FIFO with no writer) or never end (/dev/zero)
        with open_regular_file(path) as fh:
            head = fh.read(_SNIFF_BYTES)
    except FileNotFoundError as e:
        raise DataReadError(f"{name} does not exist") from e
    except NotARegularFileError as e:
        what = "a data file" if e.kind == "a folder" else "a regular data file"
        raise DataReadError(f"{name} is {e.kind}, not {what}") from e
    except OSError as e:
        raise DataReadError(f"{name} cannot be opened: {e.strerror or e}") from e
    if not head:
        raise DataReadError(f"{name} is empty")
    suffixes = [s.lower() for s in path.suffixes]
    compressed = bool(suffixes) and suffixes[-1] in _COMPRESSION_SUFFIXES
    if head[:4] == b"PAR1" or (suffixes and suffixes[-1] in _PARQUET_SUFFIXES):
        return _read_parquet(path, name)
    if not compressed:
        _check_text(head, name, encoding)
    else:
        try:
            "".encode(encoding)
        except LookupError as e:
            raise DataReadError(f"{name}: unknown text encoding {excerpt(encoding, 40)}") from e
    if sep is None:
        sep = "\t" if ".tsv" in suffixes else detect_separator(_first_lines(path, name, encoding))
    return _read_csv(path, name, sep, missing_values, encoding)


def _first_lines(path: Path, name: str, encoding: str) -> list[str]:
    """The first lines of a (possibly compressed) text file, to detect its separator."""
    lines = _text_lines(path, name, encoding, _SNIFF_LINES)
    # a line cut at the sniff limit or a quoted newline must not count as ragged
    return [line.rstrip("\r\n") for line in lines[:-1] or lines]


def _text_lines(path: Path, name: str, encoding: str, limit: int) -> list[str]:
    """Up to ``limit`` lines of a (possibly compressed) text file, a byte-order mark
    dropped, or one clear error."""
    import pandas.io.common as pio

    try:
        with pio.get_handle(path, "r", encoding=encoding, compression="infer") as handles:
            lines: list[str] = []
            for line in handles.handle:
                lines.append(line.lstrip("\ufeff") if not lines else line)
                if len(lines) >= limit:
                    break
    except (OSError, EOFError) as e:
        raise DataReadError(f"{name} cannot be read as CSV: {_detail(e)}") from e
    except UnicodeDecodeError as e:
        raise DataReadError(
            f"{name} is not {encoding} text; re-save it as UTF-8 or pass --encoding"
        ) from e
    return lines


def _check_text(head: bytes, name: str, encoding: str) -> None:
    if b"\x00" in head:
        raise DataReadError(
            f"{name} looks like a binary file, not CSV text; export the encounter "
            "table as CSV or Parquet"
        )
    try:
        head.decode(encoding)
    except UnicodeDecodeError as e:
        # a multi-byte character cut at the sniff boundary is not an error
        if len(head) < _SNIFF_BYTES or e.start < len(head) - 4:
            raise DataReadError(
                f"{name} is not {encoding} text (byte 0x{head[e.start]:02x} at "
                f"position {e.start}); re-save it as UTF-8 or pass --encoding"
            ) from e
    except LookupError as e:
        raise DataReadError(f"{name}: unknown text encoding {excerpt(encoding, 40)}") from e


# a column name as people write one: letters, underscores and spaces, no digits (a
# patient or encounter id has some)
_NAME_LIKE = re.compile(r"[A-Za-z][A-Za-z_ ]{0,39}")


def _read_header(path: Path, name: str, sep: str, encoding: str) -> list[str]:
    """The header's column names as written, refusing repeated or empty names."""
    first = next(iter(_text_lines(path, name, encoding, 1)), "")
    header = next(csv.reader(_io.StringIO(first), delimiter=sep), [])
    if not header:
        raise DataReadError(f"{name} has no header row")
    seen: dict[str, int] = {}
    for position, col in enumerate(header, start=1):
        if col.strip() == "":
            raise DataReadError(
                f"{name}: header column {position} has no name; every column needs one"
            )
        if col in seen:
            # a name is quoted only if it reads like one: in a file without a header row
            # the "names" are a patient's record
            named = f"column {col!r} appears" if _NAME_LIKE.fullmatch(col) else "a name appears"
            raise DataReadError(
                f"{name}: {named} more than once in the header (columns {seen[col]} and "
                f"{position}); rename or remove the repeated column, or add the header "
                "row if the first line is data"
            )
        seen[col] = position
    return header


def _read_csv(
    path: Path, name: str, sep: str, missing_values: Sequence[str], encoding: str
) -> pd.DataFrame:
    import pyarrow as pa
    from pyarrow import csv as pa_csv

    header = _read_header(path, name, sep, encoding)
    ragged: list[tuple[int | None, int, int]] = []

    def note_ragged(row) -> str:
        ragged.append((row.number, row.expected_columns, row.actual_columns))
        return "skip"

    try:
        # Arrow's reader refuses rows with too few fields (pandas pads them silently);
        # one thread, so that it can tell the line number of a bad row.
        table = pa_csv.read_csv(
            pa.input_stream(str(path), compression="detect"),
            read_options=pa_csv.ReadOptions(use_threads=False, encoding=encoding),
            parse_options=pa_csv.ParseOptions(delimiter=sep, invalid_row_handler=note_ragged),
            convert_options=pa_csv.ConvertOptions(
                column_types={c: pa.string() for c in header},
                null_values=list(missing_values),
                strings_can_be_null=True,
                quoted_strings_can_be_null=True,
            ),
        )
    except (pa.ArrowInvalid, pa.ArrowTypeError) as e:
        if "UTF8" in str(e) or "utf8" in str(e).lower():
            raise DataReadError(
                f"{name} is not {encoding} text; re-save it as UTF-8 or pass --encoding"
            ) from e
        # Arrow quotes the offending row; keep only its own words, not patient data
        detail = excerpt_lines(str(e).split(":")[0], width=80, max_lines=1)
        raise DataReadError(f"{name} is not a well-formed CSV table ({detail})") from e
    except (OSError, ValueError, LookupError) as e:
        raise DataReadError(f"{name} cannot be read as CSV: {_detail(e)}") from e
    if ragged:
        lines = ", ".join(
            f"line {n if n is not None else '?'} has {got} fields" for n, _, got in ragged[:5]
        )
        more = f" (and {len(ragged) - 5} more)" if len(ragged) > 5 else ""
        raise DataReadError(
            f"{name} is not a well-formed CSV table: the header has {ragged[0][1]} "
            f"columns but {lines}{more}; fix the separators or quoting of those lines"
        )
    return table.to_pandas()


def _read_parquet(path: Path, name: str) -> pd.DataFrame:
    try:
        return pd.read_parquet(path)
    except Exception as e:  # pyarrow raises many types for a corrupt file
        raise DataReadError(f"{name} cannot be read as Parquet: {_detail(e)}") from e


def _read_sql(url: str, *, table: str | None, query: str | None) -> pd.DataFrame:
    import sqlalchemy as sa

    from ._read_only_sql import begin_read_only, check_single_select

    name = _name(url)
    if table is not None and query is not None:
        raise DataReadError(f"{name}: give either --table or --query, not both")
    if query is not None:
        # refused before any connection is made: a DROP never reaches the database
        check_single_select(query)
    try:
        engine = _read_only_engine(url, name)
    except DataReadError:
        raise
    except (sa.exc.ArgumentError, sa.exc.NoSuchModuleError, ValueError) as e:
        raise DataReadError(f"{name} is not a database URL SQLAlchemy can use: {_detail(e)}") from e
    except ImportError as e:
        raise DataReadError(
            f"the database driver for {name} is not installed: {e.name or e}"
        ) from e
    try:
        with engine.connect() as conn:
            begin_read_only(conn)
            if query is not None:
                return pd.read_sql_query(sa.text(query), conn)
            table = table or "encounters"
            if not sa.inspect(conn).has_table(table):
                raise DataReadError(
                    f"{name} has no table {excerpt(table, 80)}; pass --table NAME or --query SQL"
                )
            return pd.read_sql_table(table, conn)
        # leaving the block rolls the transaction back: a read never commits
    except DataReadError:
        raise
    except (sa.exc.SQLAlchemyError, pd.errors.DatabaseError) as e:
        # pandas wraps a failed query in its own DatabaseError
        cause = getattr(e, "orig", None) or e.__cause__ or e
        raise DataReadError(f"cannot read from {name}: {_detail(cause)}") from e
    finally:
        engine.dispose()


def _read_only_engine(url: str, name: str):
    """A SQLAlchemy engine for ``url`` whose SQLite connections cannot write."""
    import sqlalchemy as sa
    from sqlalchemy.engine import make_url

    from ._read_only_sql import sqlite_read_only_connection

    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return sa.create_engine(url)
    database = parsed.database or ":memory:"
    _refuse_missing_sqlite_file(database, name)
    return sa.create_engine(
        "sqlite://",
        creator=lambda: sqlite_read_only_connection(database),
        poolclass=sa.pool.NullPool,
    )


def _refuse_missing_sqlite_file(database: str, name: str) -> None:
    """Refuse a SQLite database path that is missing or not a regular file.

    SQLite would create a missing file on connect (a typo should not), and a named pipe
    would block it.
    """
    if database == ":memory:":
        return
    if database.startswith("file:"):
        from urllib.parse import unquote, urlsplit

        database = unquote(urlsplit(database).path)
    try:
        refuse_special_file(Path(database))
    except FileNotFoundError as e:
        raise DataReadError(
            f"{name}: the database file {excerpt(database, 200)} does not exist"
        ) from e
    except NotARegularFileError as e:
        raise DataReadError(
            f"{name}: the database file {excerpt(database, 200)} is {e.kind}, not a regular file"
        ) from e
    except OSError as e:
        raise DataReadError(
            f"{name}: the database file {excerpt(database, 200)} cannot be opened: "
            f"{e.strerror or e}"
        ) from e
