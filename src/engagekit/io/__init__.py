"""Reading and writing tables: the only part of engagekit that touches files and databases.

Encounter data comes from CSV (optionally compressed), Parquet, or a SQL table or query
through SQLAlchemy; results go to CSV or Parquet by file extension.
"""

from .read import is_database_url, read_encounters
from .write import write_json, write_table

__all__ = ["is_database_url", "read_encounters", "write_json", "write_table"]
