"""Special files: a named pipe, device, folder or socket is refused at once.

``validate`` on a named pipe (FIFO) with no writer once hung for ever. Every path
engagekit reads (the data file, the config file, a SQLite database file) must be a
regular file; anything else gets a message naming what it is. A watchdog thread guards
each test: if a read blocks, it opens the pipe's other end so the read ends, and the
test fails instead of hanging the suite.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from _cli import assert_no_traceback, run
from _factories import valid_encounter_rows, write_csv
from engagekit import load_config, read_encounters
from engagekit.errors import ConfigError, DataReadError

#: seconds a refusal may take before the watchdog calls it a hang
LIMIT = 10.0


@contextlib.contextmanager
def _watchdog(*pipes: Path) -> Iterator[None]:
    """Fail, instead of hanging, if the block does not finish within LIMIT seconds."""
    rescued = threading.Event()
    done = threading.Event()

    def rescue() -> None:
        if done.wait(LIMIT):
            return
        rescued.set()
        for pipe in pipes:
            # a writer that opens and closes releases a reader blocked in open() with EOF
            with contextlib.suppress(OSError):
                os.close(os.open(pipe, os.O_WRONLY | os.O_NONBLOCK))

    guard = threading.Thread(target=rescue, daemon=True)
    guard.start()
    try:
        yield
    finally:
        done.set()
        guard.join()
    assert not rescued.is_set(), f"still blocked after {LIMIT} s: it hangs on a special file"


def _fifo(folder: Path, name: str) -> Path:
    path = folder / name
    os.mkfifo(path)
    return path


@contextlib.contextmanager
def _socket(folder: Path, name: str) -> Iterator[Path]:
    path = folder / name
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
        server.bind(str(path))
        yield path


def _link(folder: Path, name: str, target: Path) -> Path:
    path = folder / name
    path.symlink_to(target)
    return path


# name -> (make the path in a folder, what the message calls it)
SPECIAL: dict[str, tuple[Callable[[Path, str], Path], str]] = {
    "a named pipe": (_fifo, "a named pipe"),
    "a link to a named pipe": (lambda d, n: _link(d, n, _fifo(d, "real_" + n)), "a named pipe"),
    "/dev/zero": (lambda d, n: Path("/dev/zero"), "a character device"),
    "/dev/null": (lambda d, n: Path("/dev/null"), "a character device"),
    "/dev/urandom": (lambda d, n: Path("/dev/urandom"), "a character device"),
    "a link to /dev/zero": (lambda d, n: _link(d, n, Path("/dev/zero")), "a character device"),
    "a folder": (lambda d, n: (d / n).mkdir() or d / n, "a folder"),
}


@pytest.mark.parametrize("case", list(SPECIAL))
def test_a_special_data_file_is_refused_at_once(tmp_path, case):
    make, kind = SPECIAL[case]
    path = make(tmp_path, "encounters.csv")
    with _watchdog(path), pytest.raises(DataReadError, match=kind) as info:
        read_encounters(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize("case", list(SPECIAL))
def test_a_special_config_file_is_refused_at_once(tmp_path, case):
    make, kind = SPECIAL[case]
    path = make(tmp_path, "config.yaml")
    with _watchdog(path), pytest.raises(ConfigError, match=kind) as info:
        load_config(path)
    assert str(path) in str(info.value)


def test_a_socket_is_refused_as_data_and_as_config(tmp_path):
    with _socket(tmp_path, "s.csv") as path:
        with _watchdog(), pytest.raises(DataReadError, match="is a socket"):
            read_encounters(path)
        with _watchdog(), pytest.raises(ConfigError, match="is a socket"):
            load_config(path)


def test_a_special_sqlite_database_file_is_refused(tmp_path):
    pipe = _fifo(tmp_path, "service.db")
    with _watchdog(pipe), pytest.raises(DataReadError, match="a named pipe"):
        read_encounters(f"sqlite:///{pipe}", table="encounters")


def test_validate_on_a_named_pipe_exits_2_at_once(tmp_path):
    # the example
    pipe = _fifo(tmp_path, "encounters.csv")
    with _watchdog(pipe):
        result = run("validate", "encounters.csv", cwd=tmp_path)
    assert result.returncode == 2
    assert_no_traceback(result)
    assert "named pipe" in result.stderr


def test_a_named_pipe_as_config_exits_2_at_once(tmp_path):
    write_csv(valid_encounter_rows(2, 2), tmp_path / "encounters.csv")
    pipe = _fifo(tmp_path, "config.yaml")
    with _watchdog(pipe):
        result = run("validate", "encounters.csv", "--config", "config.yaml", cwd=tmp_path)
    assert result.returncode == 2
    assert_no_traceback(result)
    assert "named pipe" in result.stderr
