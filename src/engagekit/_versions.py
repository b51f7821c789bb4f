"""The record of library versions that every saved result carries (a model's manifest,
an analysis, a power study, the report's provenance), so that a reader can tell what
computed it."""

from __future__ import annotations

from collections.abc import Iterable
from importlib.metadata import PackageNotFoundError, version

__all__ = ["library_versions"]


def library_versions(libraries: Iterable[str], *, missing: str | None = None) -> dict[str, str]:
    """The installed version of each library, by its distribution name.

    Parameters
    ----------
    libraries : iterable of str
        Distribution names (``"scikit-learn"``, not ``"sklearn"``), in the order the
        record lists them.
    missing : str, optional
        What to record for a library that is not installed; without it, such a library
        raises.

    Returns
    -------
    dict of str to str

    Raises
    ------
    importlib.metadata.PackageNotFoundError
        A library is not installed and ``missing`` is not given.

    Examples
    --------
    >>> list(library_versions(["numpy", "pandas"]))
    ['numpy', 'pandas']
    >>> library_versions(["no-such-library"], missing="–")
    {'no-such-library': '–'}
    """
    record = {}
    for library in libraries:
        try:
            record[library] = version(library)
        except PackageNotFoundError:
            if missing is None:
                raise
            record[library] = missing
    return record
