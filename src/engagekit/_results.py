"""The form of a result that leaves engagekit: a frozen, typed record with a versioned
dict form.

Metrics, a cross-treatment analysis, a power study and a model's manifest are each a
pydantic model built on :class:`Result`. ``to_dict()`` gives the JSON-ready mapping a
command writes, with a ``format_version``; ``from_dict()`` reads one back and refuses, with
a :class:`~engagekit.errors.ResultFormatError`, a mapping of another format version or
one whose fields are missing, unknown or of the wrong JSON type (checked strictly: a
number is not a string, a bool is not a number), naming every field at fault as the file
names it. A mapping without a ``format_version`` was written before results carried one,
and is read as being of the current format.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import Enum
from typing import Annotated, Any, ClassVar, Self, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ._pydantic_errors import Location, field_problems
from .errors import ResultFormatError

__all__ = ["Choice", "Location", "Record", "Result"]

_Choice = TypeVar("_Choice", bound=Enum)

#: A field holding one of :mod:`engagekit.choices`' choices: read from its JSON value
#: (``"holm"``) though the record is otherwise strict, since JSON has no Enum.
Choice = Annotated[_Choice, Field(strict=False)]


class Record(BaseModel):
    """A part of a result: frozen, strictly typed, with no field it does not declare."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, protected_namespaces=())


class Result(Record):
    """A result with a versioned dict form (see the module's docstring).

    A subclass names itself in messages with ``_what`` and sets ``FORMAT_VERSION``. One
    whose JSON form is not its fields one to one (flattened parts, nested results written
    by their own ``to_dict``) overrides :meth:`_json` and :meth:`_fields`, and
    :meth:`_json_location` to name a field at fault as the file does.

    Examples
    --------
    >>> from typing import ClassVar
    >>> class Tally(Result):
    ...     _what: ClassVar[str] = "a tally"
    ...     n: int
    >>> Tally(n=3).to_dict()
    {'format_version': 1, 'n': 3}
    >>> Tally.from_dict({"format_version": 1, "n": 3}) == Tally(n=3)
    True
    >>> Tally.from_dict({"n": "3", "extra": 1})
    Traceback (most recent call last):
    ...
    engagekit.errors.ResultFormatError: a tally is not valid: 'n': input should be a valid integer (found '3'); 'extra': extra inputs are not permitted (found 1)
    >>> Tally.from_dict({"format_version": 2, "n": 3})
    Traceback (most recent call last):
    ...
    engagekit.errors.ResultFormatError: a tally is not valid: its 'format_version' is 2; this engagekit reads format_version 1: write it again with this engagekit
    """  # noqa: E501

    _what: ClassVar[str] = "a result"
    #: The version of the dict form :meth:`to_dict` writes and :meth:`from_dict` reads.
    FORMAT_VERSION: ClassVar[int] = 1

    @property
    def format_version(self) -> int:
        """The version of the dict form (:attr:`FORMAT_VERSION`)."""
        return self.FORMAT_VERSION

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready mapping, with a ``format_version``; :meth:`from_dict` reads it.

        Undefined numbers are ``None``; nothing else is changed, so the mapping is the
        content of the file a command writes.
        """
        return {"format_version": self.FORMAT_VERSION, **self._json()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        """The result :meth:`to_dict` wrote (e.g. read from a file).

        Raises
        ------
        ResultFormatError
            ``data`` is not a mapping, is of another ``format_version``, or a field is
            missing, unknown or of the wrong type; :attr:`~ResultFormatError.problems`
            names each.
        """
        if not isinstance(data, Mapping):
            raise ResultFormatError(
                cls._what, [f"it must be a mapping, found {type(data).__name__}"]
            )
        fields = dict(data)
        found = fields.pop("format_version", cls.FORMAT_VERSION)
        if found != cls.FORMAT_VERSION or isinstance(found, bool):
            raise ResultFormatError(
                cls._what,
                [
                    f"its 'format_version' is {found!r:.40}; this engagekit reads "
                    f"format_version {cls.FORMAT_VERSION}: write it again with this engagekit"
                ],
                format_version=found,
            )
        try:
            return cls.model_validate(cls._fields(fields))
        except ValidationError as e:
            raise ResultFormatError(cls._what, field_problems(e, cls._json_location)) from None

    def _json(self) -> dict[str, Any]:
        """The JSON form without ``format_version``: by default, the fields as they are
        (undefined numbers kept as they are; the computation gives None for them)."""
        return self.model_dump()

    @classmethod
    def _fields(cls, data: dict[str, Any]) -> dict[str, Any]:
        """The constructor's fields from the JSON form (the inverse of :meth:`_json`);
        anything it cannot place is left for validation to name."""
        return data

    @classmethod
    def _json_location(cls, location: Location) -> Location:
        """Where a field found at fault at ``location`` (of the constructor's fields) is
        in the JSON form."""
        return location
