"""Exceptions a user can act on, and the warnings engagekit gives.

Each subclasses a built-in, so ``except ValueError`` still works for callers who do not
know engagekit, and each message names what is wrong, where, and what to do. The CLI turns
them into one clear message and an exit code; anything else reaching the CLI is a bug.

Argument mistakes (:class:`ArgumentError`: an unknown choice, a value out of range, a day
that leaves no data on one side) are kept apart from data that breaks the encounter
contract (:class:`ContractError`): the first is fixed on the command line, the second in
the data.
"""

from __future__ import annotations

from pathlib import Path

__all__ = [
    "AnalysisError",
    "ArgumentError",
    "ConfigError",
    "ContractError",
    "DataReadError",
    "EngagekitError",
    "ModelSignatureWarning",
    "ModelVersionWarning",
    "NotARegularFileError",
    "OutputError",
    "ResultFormatError",
    "TamperedModelError",
    "UnfitModelError",
    "UntrustedModelError",
]


class EngagekitError(Exception):
    """Base class of the errors engagekit raises on purpose."""

    #: exit code the CLI uses for this kind of error
    exit_code: int = 1


class ConfigError(EngagekitError, ValueError):
    """A configuration file or value is not what engagekit expects."""

    exit_code = 2


class ArgumentError(EngagekitError, ValueError):
    """An argument of a function or command is not one it accepts: an unknown choice, a
    value out of range, or a day that leaves no data on one side of it. The data are not
    at fault; the message says which argument to change and how.

    Examples
    --------
    >>> from engagekit.choices import Adjustment, as_choice
    >>> as_choice(Adjustment, "bonferroni", "adjustment")
    Traceback (most recent call last):
    ...
    engagekit.errors.ArgumentError: unknown adjustment 'bonferroni'; expected one of 'holm', 'fdr_bh'
    """  # noqa: E501

    exit_code = 2


class DataReadError(EngagekitError, ValueError):
    """An input cannot be read as a table at all (missing, empty, binary, not a table,
    wrong encoding, a required column absent)."""

    exit_code = 2


class ResultFormatError(EngagekitError, ValueError):
    """A mapping is not a saved result of the kind asked for: it is of another
    ``format_version``, or fields are missing or of the wrong JSON type.

    The readers of result files turn it into a :class:`DataReadError` (or an
    :class:`UntrustedModelError` for a model directory's files) naming the file.

    Parameters
    ----------
    what : str
        The kind of result ("a heterogeneity result").
    problems : sequence of str
        One line per field at fault (``'attributes.0.label': input should be a valid
        string (found 5)``), or the format version found.
    format_version : object, optional
        The ``format_version`` found, when it is one this engagekit does not read.
    """

    exit_code = 2

    def __init__(self, what: str, problems, format_version: object = None):
        self.what = what
        self.problems = tuple(problems)
        self.format_version = format_version
        super().__init__(f"{what} is not valid: {'; '.join(self.problems)}")


class UntrustedModelError(DataReadError):
    """A model directory engagekit refuses to load: a file holds something engagekit did
    not write (a type outside its trusted list, a malformed file), or the directory is of
    an older format whose files cannot be checked.

    Parameters
    ----------
    message : str
    file : str, optional
        The name of the file of the model directory at fault (``manifest.json``,
        ``model.skops``, ...), when one is.
    """

    def __init__(self, message: str, file: str | None = None):
        super().__init__(message)
        self.file = file


class TamperedModelError(UntrustedModelError):
    """A file of a model directory differs from the directory's integrity record (it was
    altered, truncated, replaced, deleted or added after training), or the record's
    signature does not verify; :attr:`file` names it."""


class ContractError(EngagekitError, ValueError):
    """Data was read but breaks the encounter contract.

    Parameters
    ----------
    message : str
        One sentence summarising the problems.
    report : ValidationReport, optional
        The full report with every problem found, for callers that want the table.
    """

    exit_code = 1

    def __init__(self, message: str, report=None):
        super().__init__(message)
        self.report = report


class OutputError(EngagekitError, OSError):
    """A result cannot be written where the user asked."""

    exit_code = 2


class UnfitModelError(EngagekitError, ValueError):
    """A model that ``train`` marked unfit for use (its validation showed it no better
    than chance) was asked to score, predict or forecast without being allowed to."""

    exit_code = 2


class AnalysisError(EngagekitError, RuntimeError):
    """A statistical analysis ran but gives no result that can be trusted (the model did
    not converge, or the data cannot identify what was asked); it says what to change."""

    exit_code = 3


class NotARegularFileError(OSError):
    """``path`` exists but is a folder, named pipe, device or socket.

    Private to the readers: each turns it into its own error (``ConfigError``,
    ``DataReadError``) with :attr:`kind` in the message.
    """

    def __init__(self, path: Path, kind: str) -> None:
        super().__init__(f"{str(path)!r} is {kind}, not a regular file")
        self.path = path
        self.kind = kind


class ModelVersionWarning(UserWarning):
    """A model is loaded under library versions other than those it was saved with."""


class ModelSignatureWarning(UserWarning):
    """A signed model is loaded without the signing key, so its signature was not checked."""
