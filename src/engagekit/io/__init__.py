"""Reading and writing: the only part of engagekit that touches files and databases.

Encounter data comes from CSV (optionally compressed), Parquet, or a SQL table or query
through SQLAlchemy; results go to CSV or Parquet by file extension, JSON results through
their typed objects, model directories through :func:`save_model` and
:func:`load_model_directory` (checked whole before anything in them is trusted), and
scores to a database table through :func:`write_scores`.
"""

from .._lazy import lazy_exports
from ._read import detect_separator, is_database_url, read_encounters
from ._write import check_writable, write_figure, write_json, write_table, write_text

# the model store loads scikit-learn, the score writer SQLAlchemy: on first use only
_LAZY = {
    "SavedModel": "._model_store",
    "load_model": "._model_store",
    "load_model_directory": "._model_store",
    "read_manifest": "._model_store",
    "read_metrics": "._model_store",
    "save_model": "._model_store",
    "read_heterogeneity_result": "._results",
    "read_monitor_result": "._results",
    "read_power_result": "._results",
    "read_result": "._results",
    "ScoreRun": "._scores",
    "write_scores": "._scores",
}
__getattr__, __dir__ = lazy_exports(__name__, _LAZY, globals())

__all__ = [
    "check_writable",
    "detect_separator",
    "is_database_url",
    "read_encounters",
    "write_figure",
    "write_json",
    "write_table",
    "write_text",
    *_LAZY,
]
