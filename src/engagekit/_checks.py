"""The checks of outcomes and probabilities every computation on predictions starts with.

Metrics, flag rules and forecasts each take recorded outcomes (0 or 1) and predicted
probabilities (in [0, 1]); each refuses bad values with the same message: what the
values must be, how many are not, and the first of them. NaN fails both checks (unless
a missing outcome is allowed), since it is neither 0 nor 1 nor in [0, 1].
"""

from __future__ import annotations

import numpy as np

__all__ = ["check_outcomes", "check_probabilities"]


def _refuse(values: np.ndarray, invalid: np.ndarray, name: str, what: str, hint: str) -> None:
    if invalid.any():
        raise ValueError(
            f"{name} must be {what}; {int(invalid.sum())} value(s) are not "
            f"(e.g. {float(values[invalid][0])!r})" + (f"; {hint}" if hint else "")
        )


def check_outcomes(
    values: np.ndarray,
    name: str,
    *,
    what: str = "0 or 1",
    allow_missing: bool = False,
    hint: str = "",
) -> None:
    """Refuse outcomes other than 0 and 1 (and NaN, unless ``allow_missing``).

    Parameters
    ----------
    values : numpy.ndarray of float
    name : str
        How the message names the values (``"y"``, ``"'y'"``).
    what : str, default "0 or 1"
        What the message says they must be.
    allow_missing : bool, default False
        Let NaN through (an outcome not yet known).
    hint : str, optional
        What to do, appended to the message.

    Raises
    ------
    ValueError
        A value is not 0 or 1 (or is NaN, unless allowed).

    Examples
    --------
    >>> import numpy as np
    >>> check_outcomes(np.array([0.0, 1.0, 1.0]), "y")
    >>> check_outcomes(np.array([0.0, 2.0, np.nan]), "y", hint="drop the empty ones")
    Traceback (most recent call last):
    ...
    ValueError: y must be 0 or 1; 2 value(s) are not (e.g. 2.0); drop the empty ones
    """
    valid = np.isin(values, (0.0, 1.0))
    if allow_missing:
        valid |= np.isnan(values)
    _refuse(values, ~valid, name, what, hint)


def check_probabilities(
    values: np.ndarray, name: str, *, what: str = "probabilities in [0, 1]", hint: str = ""
) -> None:
    """Refuse values outside [0, 1], and NaN.

    Parameters
    ----------
    values : numpy.ndarray of float
    name : str
        How the message names the values (``"p"``, ``"risk"``).
    what : str, default "probabilities in [0, 1]"
        What the message says they must be.
    hint : str, optional
        What to do, appended to the message.

    Raises
    ------
    ValueError
        A value is outside [0, 1] or missing.

    Examples
    --------
    >>> import numpy as np
    >>> check_probabilities(np.array([0.0, 0.5, 1.0]), "p")
    >>> check_probabilities(np.array([0.2, np.nan]), "risk", what="in [0, 1]")
    Traceback (most recent call last):
    ...
    ValueError: risk must be in [0, 1]; 1 value(s) are not (e.g. nan)
    """
    # NaN fails both comparisons, so it is refused too
    _refuse(values, ~((values >= 0.0) & (values <= 1.0)), name, what, hint)
