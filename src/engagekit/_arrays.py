"""Array inputs of the statistics: numbers from numpy or pandas, nullable ones included,
and row masks by membership."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd


def as_float64(values: Any) -> np.ndarray:
    """``values`` as a float64 array, with pandas' missing values (``pd.NA`` of nullable
    columns) as NaN.

    Raises
    ------
    TypeError, ValueError
        As numpy does for values that are not numbers; callers word the message.

    Examples
    --------
    >>> as_float64(pd.array([1, None], dtype="Int8")).tolist()
    [1.0, nan]
    """
    if isinstance(values, pd.Series | pd.Index | pd.api.extensions.ExtensionArray):
        return pd.Series(values).to_numpy(dtype="float64", na_value=np.nan)
    return np.asarray(values, dtype="float64")


def member_mask(values: Any, chosen: Any) -> np.ndarray:
    """Boolean mask of ``values`` in ``chosen``, by hashing (``np.isin`` sorts object
    arrays such as patient ids, which took minutes on a million rows).

    Examples
    --------
    >>> member_mask(np.array(["P1", "P2", "P3"], dtype=object), ["P3", "P1"]).tolist()
    [True, False, True]
    """
    return pd.Series(values).isin(pd.Series(chosen)).to_numpy()
