"""A short excerpt of a value, for messages that quote user data or config values.

A message quotes at most a few dozen characters of any value: a config value can be a
megabyte of text, or a small YAML document whose aliases expand to a billion items
("billion laughs"), and a cell of an encounter table can hold a patient's record. Every
message that quotes such a value quotes it through :func:`excerpt`, whose work is bounded
whatever the value's size.
"""

from __future__ import annotations

import reprlib

__all__ = ["excerpt", "excerpt_lines"]

#: characters a quoted value takes at most in a message
EXCERPT_WIDTH = 60


def _limited_repr(width: int) -> reprlib.Repr:
    # reprlib stops after a few items and levels, so the work is bounded even for a
    # container that shares its children a billion times over
    limited = reprlib.Repr()
    limited.maxlevel = 2
    items = max(4, width // 10)
    limited.maxlist = limited.maxtuple = limited.maxset = limited.maxfrozenset = items
    limited.maxdict = limited.maxdeque = limited.maxarray = items
    limited.maxstring = limited.maxother = limited.maxlong = width
    return limited


def excerpt(value: object, width: int = EXCERPT_WIDTH) -> str:
    """The ``repr`` of ``value``, cut to at most ``width`` characters.

    Parameters
    ----------
    value : object
        Any value: text, a number, a (possibly huge or self-sharing) container.
    width : int, default 60
        The most characters returned; a cut excerpt ends with ``…``.

    Returns
    -------
    str

    Examples
    --------
    >>> excerpt("low")
    "'low'"
    >>> excerpt("x" * 1_000_000, 12)
    "'xxxxxxxxxx…"
    >>> excerpt(list(range(10**6)))
    '[0, 1, 2, 3, 4, 5, ...]'
    """
    if isinstance(value, str | bytes | bytearray):
        # only the start is ever looked at, however long the value
        text = repr(value[: width + 1])
        cut = len(value) > width or len(text) > width
    else:
        try:
            text = _limited_repr(width).repr(value)
        except ValueError:
            # an integer with more digits than Python will print (sys.int_max_str_digits)
            text = f"<an integer of {value.bit_length()} bits>"  # type: ignore[attr-defined]
        except Exception:  # an object whose repr fails is still named, not quoted
            text = f"<a {type(value).__name__}>"
        cut = len(text) > width
    return text[: width - 1] + "…" if cut else text


def excerpt_lines(text: str, width: int = 200, max_lines: int = 8) -> str:
    """``text`` with each line cut to ``width`` characters and at most ``max_lines`` lines.

    For messages of other libraries (a YAML parser, a database driver) that may quote
    an input at length.

    Examples
    --------
    >>> excerpt_lines("a" * 500 + "\\nb", width=5)
    'aaaa…\\nb'
    """
    lines = text.split("\n", max_lines)[:max_lines]
    lines = [line.rstrip("\r") for line in lines]
    return "\n".join(line if len(line) <= width else line[: width - 1] + "…" for line in lines)
