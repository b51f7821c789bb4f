"""The fingerprint of a table: a SHA-256 of its content, recorded with what was computed
from it (a model's training data, an analysis, a scoring run) so that a reader can tell
whether two results came from the same data."""

from __future__ import annotations

import hashlib
import json

import pandas as pd

__all__ = ["data_fingerprint"]


def data_fingerprint(frame: pd.DataFrame) -> str:
    """SHA-256 of a table's content (values, column names and order), for the record.

    The index is left out, so a table read again or filtered and renumbered has the same
    fingerprint as long as its rows and columns are the same.

    Parameters
    ----------
    frame : pandas.DataFrame

    Returns
    -------
    str
        64 hexadecimal digits.

    Examples
    --------
    >>> import pandas as pd
    >>> a = pd.DataFrame({"x": [1, 2]})
    >>> data_fingerprint(a) == data_fingerprint(a.set_axis([10, 11]))
    True
    >>> data_fingerprint(a) == data_fingerprint(a.rename(columns={"x": "y"}))
    False
    """
    digest = hashlib.sha256()
    digest.update(json.dumps([str(c) for c in frame.columns]).encode())
    digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return digest.hexdigest()
