"""pandera, imported in one place, without PySpark's warning about pandas.

With PySpark installed (the ``spark`` extra), importing pandera imports
``pyspark.pandas``, which warns with a FutureWarning that PySpark "does not yet fully
support pandas >= 3.0.0". engagekit never uses pandas-on-Spark: its Spark engine hands
plain pandas frames to the executors through Arrow (``applyInPandas``). The warning
would be printed by every command and says nothing to its users, so it is silenced here,
and only it.
"""

from __future__ import annotations

import warnings

with warnings.catch_warnings():
    warnings.filterwarnings(
        "ignore",
        message="PySpark does not yet fully support pandas",
        category=FutureWarning,
    )
    # the checks' backend imports pyspark.pandas on first use when PySpark is loaded
    # (pandera loads it): imported here, under the filter, instead
    import pandera.backends.pandas.builtin_checks  # noqa: F401
    import pandera.errors as pa_errors
    import pandera.pandas as pa

__all__ = ["pa", "pa_errors"]
