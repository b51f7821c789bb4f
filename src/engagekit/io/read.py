"""Read an encounter table as it is, without interpreting values.

CSV cells are read as text so that validation can report the offending value exactly as
the service wrote it ("4.5.", "yes"), instead of a silent missing value after a failed
conversion. Parquet and SQL keep their own column types.
"""

from __future__ import annotations

import csv
import io as _io
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from ..errors import DataReadError

__all__ = ["is_database_url", "read_encounters"]

_PARQUET_SUFFIXES = {".parquet", ".pq"}
_CSV_SUFFIXES = {".csv", ".txt", ".tsv"}
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
) -> pd.DataFrame:
    """Read an encounter table from CSV, Parquet or a SQL database.

    Parameters
    ----------
    source : str or Path
        A file path (``.csv``, ``.csv.gz``, ``.tsv``, ``.parquet``; other names are
        sniffed) or a SQLAlchemy URL (``sqlite:///service.db``,
        ``postgresql://user@host/db``).
    table, query : str, optional
        For a database: the table to read (default ``encounters``) or a SQL query.
    missing_values : sequence of str
        CSV cell values read as missing; anything else stays as written.
    encoding : str
        Text encoding of a CSV file.

    Returns
    -------
    pandas.DataFrame
        The table with a fresh 0-based index: data row number = index + 1.

    Raises
    ------
    DataReadError
        The source is missing, empty, binary, not a table, or not in the stated encoding.
    """
    if is_database_url(source):
        frame = _read_sql(str(source), table=table, query=query)
    else:
        if table is not None or query is not None:
            raise DataReadError(
                f"--table and --query are for database URLs; {str(source)!r} is a file path"
            )
        frame = _read_file(Path(source), missing_values, encoding)
    if frame.shape[1] == 0:
        raise DataReadError(f"{_name(source)} has no columns")
    if len(frame) == 0:
        raise DataReadError(f"{_name(source)} has a header but no data rows")
    return frame.reset_index(drop=True)


def _name(source: str | Path) -> str:
    if is_database_url(source):
        from sqlalchemy.engine import make_url

        try:
            return repr(make_url(str(source)).render_as_string(hide_password=True))
        except Exception:
            return "the database"
    return repr(str(source))


def _read_file(path: Path, missing_values: Sequence[str], encoding: str) -> pd.DataFrame:
    name = _name(path)
    if not path.exists():
        raise DataReadError(f"{name} does not exist")
    if path.is_dir():
        raise DataReadError(f"{name} is a folder, not a data file")
    try:
        with path.open("rb") as fh:
            head = fh.read(_SNIFF_BYTES)
    except OSError as e:
        raise DataReadError(f"{name} cannot be opened: {e.strerror}") from e
    if not head:
        raise DataReadError(f"{name} is empty")
    suffixes = [s.lower() for s in path.suffixes]
    compressed = bool(suffixes) and suffixes[-1] in _COMPRESSION_SUFFIXES
    if head[:4] == b"PAR1" or (suffixes and suffixes[-1] in _PARQUET_SUFFIXES):
        return _read_parquet(path, name)
    if not compressed:
        _check_text(head, name, encoding)
    sep = "\t" if ".tsv" in suffixes else ","
    return _read_csv(path, name, sep, missing_values, encoding)


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
        if e.start < len(head) - 4:
            raise DataReadError(
                f"{name} is not {encoding} text (byte 0x{head[e.start]:02x} at "
                f"position {e.start}); re-save it as UTF-8 or pass --encoding"
            ) from e
    except LookupError as e:
        raise DataReadError(f"unknown text encoding {encoding!r}") from e


def _read_csv(
    path: Path, name: str, sep: str, missing_values: Sequence[str], encoding: str
) -> pd.DataFrame:
    try:
        frame = pd.read_csv(
            path,
            sep=sep,
            dtype=str,
            keep_default_na=False,
            na_values=list(missing_values),
            encoding="utf-8-sig" if encoding.lower().replace("-", "") == "utf8" else encoding,
            skipinitialspace=False,
            low_memory=False,
        )
    except pd.errors.EmptyDataError as e:
        raise DataReadError(f"{name} has no header row and no data") from e
    except pd.errors.ParserError as e:
        detail = str(e).strip().splitlines()[-1]
        raise DataReadError(f"{name} is not a well-formed CSV table: {detail}") from e
    except UnicodeDecodeError as e:
        raise DataReadError(
            f"{name} is not {encoding} text ({e.reason} at byte {e.start}); "
            "re-save it as UTF-8 or pass --encoding"
        ) from e
    except (OSError, ValueError) as e:
        raise DataReadError(f"{name} cannot be read as CSV: {e}") from e
    _check_header(path, name, sep, encoding, list(frame.columns))
    return frame


def _check_header(path: Path, name: str, sep: str, encoding: str, columns: list[str]) -> None:
    # pandas renames a repeated header "x" to "x.1" silently; read the raw header to
    # refuse it instead, since two columns claiming one name cannot both be right.
    import pandas.io.common as pio

    enc = "utf-8-sig" if encoding.lower().replace("-", "") == "utf8" else encoding
    with pio.get_handle(path, "r", encoding=enc, compression="infer") as handles:
        first = handles.handle.readline()
    header = next(csv.reader(_io.StringIO(first), delimiter=sep), [])
    seen: set[str] = set()
    for col in header:
        if col in seen:
            raise DataReadError(
                f"{name}: column {col!r} appears more than once in the header; "
                "rename or remove the repeated column"
            )
        seen.add(col)
    if any(str(c).strip() == "" or str(c).startswith("Unnamed: ") for c in columns):
        position = next(
            i + 1
            for i, c in enumerate(columns)
            if str(c).strip() == "" or str(c).startswith("Unnamed: ")
        )
        raise DataReadError(f"{name}: header column {position} has no name; every column needs one")


def _read_parquet(path: Path, name: str) -> pd.DataFrame:
    try:
        return pd.read_parquet(path)
    except Exception as e:  # pyarrow raises many types for a corrupt file
        raise DataReadError(f"{name} cannot be read as Parquet: {e}") from e


def _read_sql(url: str, *, table: str | None, query: str | None) -> pd.DataFrame:
    import sqlalchemy as sa

    name = _name(url)
    if table is not None and query is not None:
        raise DataReadError("give either --table or --query, not both")
    try:
        engine = sa.create_engine(url)
    except (sa.exc.ArgumentError, sa.exc.NoSuchModuleError, ValueError) as e:
        raise DataReadError(f"{name} is not a database URL SQLAlchemy can use: {e}") from e
    except ImportError as e:
        raise DataReadError(
            f"the database driver for {name} is not installed: {e.name or e}"
        ) from e
    try:
        with engine.connect() as conn:
            if query is not None:
                return pd.read_sql_query(sa.text(query), conn)
            table = table or "encounters"
            if not sa.inspect(conn).has_table(table):
                raise DataReadError(
                    f"{name} has no table {table!r}; pass --table NAME or --query SQL"
                )
            return pd.read_sql_table(table, conn)
    except DataReadError:
        raise
    except sa.exc.SQLAlchemyError as e:
        detail = str(getattr(e, "orig", None) or e).splitlines()[0]
        raise DataReadError(f"cannot read from {name}: {detail}") from e
    finally:
        engine.dispose()
