"""A model directory on disk: replaced whole, and read only as it was written.

A model directory holds ``model.skops``, ``manifest.json``, ``metrics.json`` and
``model_card.md`` (see :mod:`engagekit.io._model_store` for what they say), and
``integrity.json``, written last: the size and SHA-256 of each of the other four and,
when a signing key is set (:data:`MODEL_KEY_VARIABLE`), an HMAC-SHA256 signature of that
record.

Writing: :func:`replacing_directory` gives a new hidden sibling directory to fill, and
swaps it in whole when it is complete (the two names exchanged in one step where the
system allows). A run that fails or is killed leaves the name as it was; one that
completes leaves the new directory, never the new model beside the old metrics.

Reading: ``_checked`` checks the whole directory against its integrity record before
any file is parsed: every listed file must be a regular file of the directory (no link
out of it, no device or pipe), no larger than its limit (:data:`SIZE_LIMITS`), of the
recorded size and SHA-256, and no file may have been added. The files are opened through
one handle on the directory, and their checked bytes are what is parsed, so a directory
swapped in by a train meanwhile is never mixed in. A refusal is a
:class:`~engagekit.errors.TamperedModelError` naming the file.

A hash detects accidental and partial changes; it cannot stop someone who rewrites the
whole directory consistently. A service that needs that signs its models: the same key
in :data:`MODEL_KEY_VARIABLE` when training and when loading (README, "Threat model of a
model directory").
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import functools
import glob
import hashlib
import hmac
import json
import os
import re
import shutil
import stat
import sys
import tempfile
import uuid
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from ..errors import (
    ConfigError,
    DataReadError,
    ModelSignatureWarning,
    OutputError,
    TamperedModelError,
    UntrustedModelError,
)

try:  # POSIX; elsewhere a killed run's hidden directory stays until deleted by hand
    import fcntl
except ImportError:  # pragma: no cover - Windows
    # mypy types the name as the module; None marks it missing, checked before each use
    fcntl = None  # type: ignore[assignment]

__all__ = [
    "INTEGRITY_FILE",
    "MANIFEST_FILE",
    "METRICS_FILE",
    "MODEL_CARD_FILE",
    "MODEL_FILE",
    "MODEL_KEY_VARIABLE",
    "SIZE_LIMITS",
    "ModelSignatureWarning",
    "check_replaceable",
    "replacing_directory",
]

MODEL_FILE = "model.skops"
MANIFEST_FILE = "manifest.json"
METRICS_FILE = "metrics.json"
MODEL_CARD_FILE = "model_card.md"
INTEGRITY_FILE = "integrity.json"
#: The environment variable holding a service's model-signing key.
MODEL_KEY_VARIABLE = "ENGAGEKIT_MODEL_KEY"
_MIN_KEY_LENGTH = 16
#: The format of the integrity record; it is the model format that brought it in.
INTEGRITY_FORMAT_VERSION = 2

_MiB = 1 << 20
#: The largest each file of a model directory may be, in bytes; a larger one is refused
#: unread, so that a file swapped for something endless (``/dev/zero``) or enormous
#: cannot exhaust memory. The model's limit also bounds the unpacked size of its content.
SIZE_LIMITS = {
    MANIFEST_FILE: 16 * _MiB,
    MODEL_FILE: 1024 * _MiB,
    METRICS_FILE: 16 * _MiB,
    MODEL_CARD_FILE: 16 * _MiB,
    INTEGRITY_FILE: 1 * _MiB,
}
# every file but the record itself is listed in it; a directory always has these two
_RECORDED = (MANIFEST_FILE, MODEL_FILE, METRICS_FILE, MODEL_CARD_FILE)
_REQUIRED = (MANIFEST_FILE, MODEL_FILE)
_SHA256 = re.compile(r"[0-9a-f]{64}")
_RETRAIN = "retrain it with engagekit train"
# opening a file of the directory: never through a symbolic link, never blocking (a named
# pipe with no writer would block for ever)
_OPEN_FLAGS = (
    os.O_RDONLY
    | getattr(os, "O_NOFOLLOW", 0)
    | getattr(os, "O_NONBLOCK", 0)
    | getattr(os, "O_BINARY", 0)
)
_DIR_FD = os.open in os.supports_dir_fd and hasattr(os, "O_DIRECTORY")
# renameat2(2): the current folder as the base of a relative path, and swapping two names
_AT_FDCWD = -100
_RENAME_EXCHANGE = 2
_UMASK = os.umask(0o022)
os.umask(_UMASK)


# --------------------------------------------------------------------------- the record
def _signing_key(key: str | bytes | None) -> bytes | None:
    """The key given, else the one in :data:`MODEL_KEY_VARIABLE`, else None."""
    source = "the signing key"
    if key is None:
        key = os.environ.get(MODEL_KEY_VARIABLE)
        source = MODEL_KEY_VARIABLE
        if key is None:
            return None
    raw = key.encode("utf-8") if isinstance(key, str) else bytes(key)
    if len(raw) < _MIN_KEY_LENGTH:
        raise ConfigError(
            f"{source} is {len(raw)} characters long; a model-signing key must have at "
            f"least {_MIN_KEY_LENGTH} (make one with: python -c 'import secrets; "
            "print(secrets.token_hex(32))'), or unset it to work without signatures"
        )
    return raw


def _canonical(record: Mapping[str, Any]) -> bytes:
    """The bytes a signature covers: the record without its signature, in one form."""
    unsigned = {k: v for k, v in record.items() if k != "signature"}
    return json.dumps(unsigned, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def _signature(record: Mapping[str, Any], key: bytes) -> str:
    return hmac.new(key, _canonical(record), hashlib.sha256).hexdigest()


def _seal(directory: Path, key: bytes | None) -> None:
    """Write ``integrity.json`` over the files of ``directory`` (written last)."""
    files = {}
    for name in _RECORDED:
        path = directory / name
        if path.exists():
            digest = hashlib.sha256()
            with path.open("rb") as handle:
                for block in iter(functools.partial(handle.read, _MiB), b""):
                    digest.update(block)
            files[name] = {"sha256": digest.hexdigest(), "size": path.stat().st_size}
    record: dict[str, Any] = {
        "format_version": INTEGRITY_FORMAT_VERSION,
        "algorithm": "sha256",
        "files": files,
    }
    if key is not None:
        record["signature"] = {"algorithm": "hmac-sha256", "value": _signature(record, key)}
    (directory / INTEGRITY_FILE).write_text(json.dumps(record, indent=2) + "\n")


# --------------------------------------------------------------------------- writing
def _is_model_content(name: str) -> bool:
    """A name a model directory may hold: one of its files, or a hidden one (a file
    manager's, such as ``.DS_Store``)."""
    return name in (*_RECORDED, INTEGRITY_FILE) or name.startswith(".")


def check_replaceable(directory: str | Path) -> None:
    """Refuse, before any work, a ``directory`` a new model cannot replace whole.

    A model directory is replaced whole, so a folder holding anything but a model's
    files is never replaced: that would delete the other files.

    Raises
    ------
    OutputError
        ``directory`` is a file, is the root, or holds files that are not a model's.

    Examples
    --------
    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> check_replaceable(folder / "model")  # absent: it will be made
    >>> _ = (folder / "notes.txt").write_text("mine")
    >>> check_replaceable(folder)
    Traceback (most recent call last):
    ...
    engagekit.errors.OutputError: ... holds files that are not part of a model directory ('notes.txt'); ...
    """  # noqa: E501
    directory = Path(os.path.abspath(directory))
    if directory == directory.parent:
        raise OutputError(f"{str(directory)!r} cannot be a model directory; give a folder name")
    parent = directory.parent
    if parent.is_dir() and not os.access(parent, os.W_OK | os.X_OK):
        # the new directory is made beside the old one, and renamed into its place
        raise OutputError(
            f"cannot write the model to {str(directory)!r}: its folder {str(parent)!r} is not "
            "writable, and a model directory is replaced by one made beside it"
        )
    if directory.is_symlink() or not directory.exists():
        # a link is replaced by the new directory; what it points to is left alone
        return
    if not directory.is_dir():
        raise OutputError(
            f"cannot write the model to {str(directory)!r}: it is a file; a model directory "
            "is a folder"
        )
    try:
        foreign = sorted(name for name in os.listdir(directory) if not _is_model_content(name))
    except OSError as e:
        raise OutputError(f"cannot write the model to {str(directory)!r}: {e.strerror or e}") from e
    if foreign:
        listed = ", ".join(map(repr, foreign[:5])) + (", …" if len(foreign) > 5 else "")
        raise OutputError(
            f"{str(directory)!r} holds files that are not part of a model directory ({listed}); "
            "a new model replaces the directory whole, so it would delete them: move them "
            "away or choose another --out"
        )


def _lock(fd: int, wait: bool = False) -> bool:
    """Take the lock of an open directory (without waiting, unless ``wait``); False if
    another holds it."""
    if fcntl is None:  # pragma: no cover - Windows
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
    except OSError:
        return False
    return True


def _same_directory(fd: int, path: Path) -> bool:
    try:
        return os.lstat(path).st_ino == os.fstat(fd).st_ino
    except OSError:
        return False


def _remove_leftovers(directory: Path) -> None:
    """Delete what killed runs left beside ``directory``: their partial directories (no
    live run holds their lock) and previous models renamed aside. A previous model left
    aside while the name is empty (a run killed between its two renames) is put back."""
    if fcntl is None:  # pragma: no cover - Windows
        return
    pattern = f".{glob.escape(directory.name)}.*"
    for leftover in sorted(directory.parent.glob(pattern)):
        kind = leftover.suffix
        if kind not in (".partial", ".old") or leftover.is_symlink() or not leftover.is_dir():
            continue
        try:
            fd = os.open(leftover, os.O_RDONLY)
        except OSError:  # removed meanwhile
            continue
        try:
            if not _lock(fd) or not _same_directory(fd, leftover):
                continue  # a live run's, or replaced since it was looked at
            if kind == ".old" and not os.path.lexists(directory):
                try:
                    os.rename(leftover, directory)
                    continue
                except OSError:
                    pass  # a model was put in its place meanwhile: this one is garbage
            shutil.rmtree(leftover, ignore_errors=True)
        finally:
            os.close(fd)


def _new_partial(directory: Path) -> tuple[Path, int]:
    """A new empty hidden sibling of ``directory`` and an open descriptor holding its
    lock (so that another run does not take it for a leftover)."""
    while True:
        name = tempfile.mkdtemp(
            dir=directory.parent, prefix=f".{directory.name}.", suffix=".partial"
        )
        fd = os.open(name, os.O_RDONLY)
        try:
            # mkdtemp makes a directory only its owner can read
            os.chmod(name, 0o777 & ~_UMASK)
            # waits while another run's cleaning, which may have found it first, holds it
            _lock(fd, wait=True)
        except BaseException:
            os.close(fd)
            shutil.rmtree(name, ignore_errors=True)
            raise
        # that cleaning deleted it: take another name
        if _same_directory(fd, Path(name)):
            return Path(name), fd
        os.close(fd)


def _remove(path: Path) -> None:
    if path.is_symlink():
        path.unlink(missing_ok=True)
    else:
        shutil.rmtree(path, ignore_errors=True)


@functools.cache
def _renameat2() -> Any:
    """Linux's ``renameat2`` from the C library, or None where there is none."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        function = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):  # a C library without it (glibc < 2.28)
        return None
    function.argtypes = (ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p)
    function.restype = ctypes.c_int
    return function


def _exchange(a: Path, b: Path) -> bool:
    """Swap the names ``a`` and ``b`` in one step (``RENAME_EXCHANGE``); False where the
    system or the file system cannot."""
    function = _renameat2()
    if function is None:
        return False
    if function(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP):
        return False
    raise OSError(code, os.strerror(code), str(b))


def _swap_in(partial: Path, directory: Path) -> None:
    """Put ``partial`` in the place of ``directory`` and delete the previous one.

    Where the system can (Linux), the two names are exchanged in one step, so the name
    always holds a complete directory. Elsewhere the previous directory is renamed aside
    first: between the two renames the name is briefly absent, never mixed.
    """
    for _ in range(10):
        if not os.path.lexists(directory):
            try:
                os.rename(partial, directory)
            except OSError as e:
                if e.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                    raise
                continue  # another run put its model there meanwhile: replace it
            return
        try:
            if _exchange(partial, directory):
                _remove(partial)  # the previous directory, now under the hidden name
                return
        except FileNotFoundError:  # another run moved it meanwhile
            continue
        aside = directory.with_name(f".{directory.name}.{uuid.uuid4().hex[:12]}.old")
        try:
            os.rename(directory, aside)
        except FileNotFoundError:
            continue
        try:
            os.rename(partial, directory)
        except OSError as e:
            if e.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                with contextlib.suppress(OSError):
                    os.rename(aside, directory)
                raise
            # another run put its model in place between the renames: ours is newer
            _remove(aside)
            continue
        _remove(aside)
        return
    raise OutputError(f"cannot replace {str(directory)!r}: other runs keep replacing it")


@contextlib.contextmanager
def replacing_directory(directory: str | Path) -> Iterator[Path]:
    """A new hidden directory beside ``directory``, swapped in whole when the block
    succeeds and deleted when it fails.

    The new directory (``.NAME.XXXXXXXX.partial``, in the same folder so the swap is a
    rename) is locked by its run; leftovers of killed runs are deleted by the next one.
    When the block succeeds, the new directory and the previous ``directory`` exchange
    names in one step (Linux's ``renameat2``) and the previous one is deleted: at every
    moment the name holds the previous complete directory or the new complete one,
    never a mix. Where names cannot be exchanged, the previous directory is renamed
    aside first, and the name is briefly absent between the two renames.

    Raises
    ------
    OutputError
        ``directory`` cannot be replaced (see :func:`check_replaceable`) or written; it
        is left as it was.

    Examples
    --------
    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> with replacing_directory(folder / "model") as partial:
    ...     _ = (partial / "manifest.json").write_text("{}")
    >>> sorted(p.name for p in (folder / "model").iterdir())
    ['manifest.json']
    >>> with replacing_directory(folder / "model") as partial:
    ...     _ = (partial / "model.skops").write_text("half")
    ...     raise RuntimeError("stopped halfway")
    Traceback (most recent call last):
    ...
    RuntimeError: stopped halfway
    >>> sorted(p.name for p in folder.iterdir()), sorted(p.name for p in (folder / "model").iterdir())
    (['model'], ['manifest.json'])
    """  # noqa: E501
    directory = Path(os.path.abspath(directory))
    check_replaceable(directory)
    try:
        directory.parent.mkdir(parents=True, exist_ok=True)
        _remove_leftovers(directory)
        partial, fd = _new_partial(directory)
    except OSError as e:
        raise OutputError(f"cannot write the model to {str(directory)!r}: {e.strerror or e}") from e
    try:
        yield partial
        # checked again: the folder may have been filled while the model was written
        check_replaceable(directory)
        _swap_in(partial, directory)
    except OSError as e:
        shutil.rmtree(partial, ignore_errors=True)
        if isinstance(e, OutputError):
            raise
        raise OutputError(f"cannot write the model to {str(directory)!r}: {e.strerror or e}") from e
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    finally:
        os.close(fd)


# --------------------------------------------------------------------------- reading
@dataclass
class _Checked:
    """The files of a model directory, checked against its integrity record: the bytes
    of the small ones and the open model file, to be parsed as they were checked."""

    directory: Path
    record: dict[str, Any]
    texts: dict[str, bytes]
    model: BinaryIO

    def where(self, name: str) -> str:
        """The path of file ``name``, quoted for a message."""
        return _where(self.directory, name)

    def json(self, name: str, what: str) -> Any:
        """The JSON document in file ``name`` (which must be ``what``)."""
        return _json(self.texts[name], self.where(name), name, what)

    def sha256(self, name: str) -> str:
        """The SHA-256 of file ``name``, as recorded and checked."""
        return self.record["files"][name]["sha256"]


def _where(directory: Path, name: str) -> str:
    return repr(str(directory / name))


def _interrupted(directory: Path) -> str:
    """A hint when the name is empty but a previous model was left beside it."""
    aside = sorted(directory.parent.glob(f".{glob.escape(directory.name)}.*.old"))
    if not aside:
        return ""
    return (
        f"; a run of engagekit train into it was interrupted, and the previous model is in "
        f"{str(aside[-1])!r}: rename it back to use it"
    )


def _open_directory(directory: Path) -> int | None:
    if not directory.is_dir():
        raise DataReadError(f"{str(directory)!r} is not a model directory{_interrupted(directory)}")
    if not _DIR_FD:  # pragma: no cover - Windows
        return None
    try:
        return os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    except OSError as e:
        raise DataReadError(f"cannot read the model directory {str(directory)!r}: {e}") from e


def _open_file(directory: Path, fd: int | None, name: str) -> BinaryIO:
    """Open a file of the directory: a regular file, not reached through a link."""
    where = _where(directory, name)
    try:
        if fd is None:  # pragma: no cover - Windows: no O_NOFOLLOW, look first
            if os.path.islink(directory / name):
                raise OSError(errno.ELOOP, "a symbolic link")
            handle = os.open(directory / name, _OPEN_FLAGS)
        else:
            handle = os.open(name, _OPEN_FLAGS, dir_fd=fd)
    except FileNotFoundError as e:
        raise TamperedModelError(
            f"{where} is missing, though the directory's integrity record lists it: it was "
            f"deleted after the model was saved; {_RETRAIN}",
            file=name,
        ) from e
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise TamperedModelError(
                f"{where} is a symbolic link; a model directory holds its own files only "
                f"(a link may lead anywhere); {_RETRAIN}",
                file=name,
            ) from e
        raise DataReadError(f"cannot read {where}: {e.strerror or e}") from e
    try:
        info = os.fstat(handle)
        if not stat.S_ISREG(info.st_mode):
            from .._files import file_kind

            raise TamperedModelError(
                f"{where} is {file_kind(info.st_mode)}, not a regular file; {_RETRAIN}",
                file=name,
            )
        if info.st_size > SIZE_LIMITS[name]:
            raise TamperedModelError(
                f"{where} is {info.st_size:,} bytes, more than the {SIZE_LIMITS[name]:,} a "
                f"model directory's {name} may be; it was not read. {_RETRAIN.capitalize()}",
                file=name,
            )
        os.set_blocking(handle, True)
        return os.fdopen(handle, "rb")
    except BaseException:
        os.close(handle)
        raise


def _read_capped(handle: BinaryIO, limit: int, where: str, name: str) -> bytes:
    """All of ``handle``, refusing it unread past ``limit`` bytes (a file that grows, or
    one whose size the system does not report)."""
    data = handle.read(limit + 1)
    if len(data) > limit:
        raise TamperedModelError(
            f"{where} is more than {limit:,} bytes, the most a model directory's {name} may "
            f"be; {_RETRAIN}",
            file=name,
        )
    return data


def _json(data: bytes, where: str, name: str, what: str) -> Any:
    try:
        return json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise UntrustedModelError(f"{where} is not {what}: {e}; {_RETRAIN}", file=name) from e


def _exists(directory: Path, fd: int | None, name: str) -> bool:
    try:
        if fd is None:  # pragma: no cover - Windows
            os.lstat(directory / name)
        else:
            os.stat(name, dir_fd=fd, follow_symlinks=False)
    except FileNotFoundError:
        return False
    except OSError:
        return True  # there, but not to be looked at: opening it says why
    return True


def _valid_entry(name: str, entry: Any) -> bool:
    return (
        isinstance(entry, dict)
        and isinstance(entry.get("sha256"), str)
        and _SHA256.fullmatch(entry["sha256"]) is not None
        and type(entry.get("size")) is int
        and entry["size"] >= 0
    )


def _integrity_record(directory: Path, fd: int | None) -> dict[str, Any]:
    """The directory's integrity record, checked for form."""
    where = _where(directory, INTEGRITY_FILE)
    if not _exists(directory, fd, INTEGRITY_FILE):
        if _exists(directory, fd, MANIFEST_FILE):
            raise UntrustedModelError(
                f"{where} is missing: the directory was saved by an older engagekit (model "
                "format 1), whose files cannot be checked for changes, or the record was "
                f"deleted; {_RETRAIN}",
                file=INTEGRITY_FILE,
            )
        raise UntrustedModelError(
            f"{where} is missing, and so is {MANIFEST_FILE}: {str(directory)!r} is not an "
            "engagekit model directory",
            file=INTEGRITY_FILE,
        )
    handle = _open_file(directory, fd, INTEGRITY_FILE)
    with handle:
        data = _read_capped(handle, SIZE_LIMITS[INTEGRITY_FILE], where, INTEGRITY_FILE)
    try:
        record = _json(data, where, INTEGRITY_FILE, "a readable integrity record")
    except UntrustedModelError as e:
        raise TamperedModelError(str(e), file=INTEGRITY_FILE) from e.__cause__
    problem = None
    if not isinstance(record, dict) or not isinstance(record.get("files"), dict):
        problem = "it is not an object with 'files'"
    elif record.get("format_version") != INTEGRITY_FORMAT_VERSION:
        problem = (
            f"its format_version is {record.get('format_version')!r}; this engagekit reads "
            f"model format {INTEGRITY_FORMAT_VERSION}"
        )
    else:
        files = record["files"]
        unknown = sorted(set(files) - set(_RECORDED))
        absent = [name for name in _REQUIRED if name not in files]
        if unknown:
            listed = ", ".join(map(repr, unknown))
            problem = f"it lists files a model directory does not have ({listed})"
        elif absent:
            problem = f"it does not list {', '.join(map(repr, absent))}"
        elif bad := [name for name, entry in files.items() if not _valid_entry(name, entry)]:
            problem = f"the entries of {', '.join(map(repr, bad))} lack a SHA-256 or a size"
    if problem is not None:
        raise TamperedModelError(
            f"{where} is not a valid integrity record: {problem}; {_RETRAIN}", file=INTEGRITY_FILE
        )
    return record


def _check_signature(directory: Path, record: Mapping[str, Any], key: bytes | None) -> None:
    where = _where(directory, INTEGRITY_FILE)
    signature = record.get("signature")
    if key is None:
        if signature is not None:
            warnings.warn(
                f"the model in {str(directory)!r} is signed, but {MODEL_KEY_VARIABLE} is not "
                "set: its signature was not checked",
                ModelSignatureWarning,
                stacklevel=4,
            )
        return
    if signature is None:
        raise TamperedModelError(
            f"{where} is not signed, and {MODEL_KEY_VARIABLE} is set: only models signed with "
            "that key are loaded; retrain it with the key set",
            file=INTEGRITY_FILE,
        )
    value = signature.get("value") if isinstance(signature, dict) else None
    if not isinstance(value, str) or not hmac.compare_digest(
        value.encode("ascii", "replace"), _signature(record, key).encode("ascii")
    ):
        raise TamperedModelError(
            f"{where} has a signature that does not verify with the key in "
            f"{MODEL_KEY_VARIABLE}: the directory was altered, or signed with another key; "
            "refusing to load it",
            file=INTEGRITY_FILE,
        )


def _hashed(handle: BinaryIO, entry: Mapping[str, Any], where: str, name: str) -> bytes:
    """Check a file's size and SHA-256 against its entry of the integrity record, reading
    no more than the recorded size (nor the file's limit); its bytes (none for the model
    file, whose bytes are not kept)."""
    budget = min(entry["size"], SIZE_LIMITS[name]) + 1
    digest, size, chunks = hashlib.sha256(), 0, []
    while size < budget and (block := handle.read(min(_MiB, budget - size))):
        size += len(block)
        digest.update(block)
        if name != MODEL_FILE:
            chunks.append(block)
    if size != entry["size"] or not hmac.compare_digest(digest.hexdigest(), entry["sha256"]):
        differs = "size" if size != entry["size"] else "SHA-256"
        raise TamperedModelError(
            f"{where} does not match the directory's integrity record (its {differs} "
            "differs): it, or the record, was altered after the model was saved; refusing "
            f"to load it. {_RETRAIN.capitalize()}",
            file=name,
        )
    return b"".join(chunks)


@contextlib.contextmanager
def _checked(directory: str | Path, key: str | bytes | None) -> Iterator[_Checked]:
    """Every file of ``directory`` checked against its integrity record, before any is
    parsed: see the module's docstring. Files are opened through one handle on the
    directory, so that a directory swapped in by a train meanwhile is never mixed in."""
    signing_key = _signing_key(key)
    directory = Path(directory)
    fd = _open_directory(directory)
    model = None
    try:
        record = _integrity_record(directory, fd)
        _check_signature(directory, record, signing_key)
        listed = record["files"]
        try:
            present = os.listdir(fd if fd is not None else directory)
        except OSError as e:
            raise DataReadError(f"cannot read the model directory {str(directory)!r}: {e}") from e
        added = sorted(set(present) - set(listed) - {INTEGRITY_FILE})
        added = [name for name in added if not name.startswith(".")]
        if added:
            raise TamperedModelError(
                f"{_where(directory, added[0])} is not listed in the directory's integrity "
                f"record: it was added after the model was saved; remove it, or {_RETRAIN}",
                file=added[0],
            )
        texts: dict[str, bytes] = {}
        for name in (n for n in _RECORDED if n in listed):
            handle = _open_file(directory, fd, name)
            if name == MODEL_FILE:
                model = handle
                _hashed(handle, listed[name], _where(directory, name), name)
                model.seek(0)
            else:
                with handle:
                    texts[name] = _hashed(handle, listed[name], _where(directory, name), name)
        assert model is not None  # listed in every valid record
        yield _Checked(directory, record, texts, model)
    finally:
        if model is not None:
            model.close()
        if fd is not None:
            os.close(fd)
