"""Where the studies' replicates run: this machine's cores, or an existing Dask cluster.

Power studies, validity studies and bootstraps are many independent replicates, each
drawn from its own seed, so they can run anywhere and give the same numbers. By default
they run on this machine: processes for the power study's replicates, threads for a
bootstrap's. Inside :func:`replicate_backend` given the address of a running
``dask.distributed`` scheduler (``--scheduler ADDRESS``, or the environment variable
``DASK_SCHEDULER_ADDRESS`` that Dask's own tools set), :func:`run_replicates` sends them
to that cluster's workers through joblib's Dask backend instead. Only the replicates go
there: any other joblib work in the block stays on this machine. The workers need
engagekit installed, at the same version.

Install the engine with ``pip install 'engagekit[dask]'``.

Examples
--------
>>> from joblib import delayed
>>> with replicate_backend(None) as where:  # no scheduler: this machine
...     where, list(run_replicates((delayed(abs)(-i) for i in range(3)), n_jobs=1))
('this machine', [0, 1, 2])
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, Literal

from joblib import Parallel

from .errors import ArgumentError, ConfigError, OutputError

__all__ = [
    "LOCAL",
    "SCHEDULER_ENV",
    "on_cluster",
    "replicate_backend",
    "run_replicates",
    "scheduler_address",
]

#: The environment variable Dask's tools use for the scheduler's address.
SCHEDULER_ENV = "DASK_SCHEDULER_ADDRESS"
#: Where the work runs without a scheduler, as :func:`replicate_backend` says it.
LOCAL = "this machine"
#: Seconds to wait for the scheduler to answer before giving up with a message.
CONNECT_TIMEOUT = 20

# the client of the cluster the replicates go to, inside replicate_backend
_CLIENT: ContextVar[Any] = ContextVar("engagekit_dask_client", default=None)


def scheduler_address(given: str | None) -> str | None:
    """The scheduler to use: ``given``, else ``$DASK_SCHEDULER_ADDRESS``, else None.

    Examples
    --------
    >>> scheduler_address("tcp://10.0.0.5:8786")
    'tcp://10.0.0.5:8786'
    """
    address = given if given is not None else os.environ.get(SCHEDULER_ENV)
    if address is None:
        return None
    address = address.strip()
    if not address:
        if given is not None:
            raise ArgumentError(
                "the scheduler's address is empty: give a Dask scheduler's address "
                "(tcp://host:8786), or leave it out to run on this machine"
            )
        return None
    return address


def on_cluster() -> bool:
    """Whether :func:`run_replicates` would send work to a Dask cluster here."""
    return _CLIENT.get() is not None


def _connect(address: str) -> Any:
    try:
        from distributed import Client
    except ImportError as e:
        raise ConfigError(
            f"running on the Dask cluster at {address!r} needs the dask extra: "
            "pip install 'engagekit[dask]'"
        ) from e
    try:
        return Client(address, timeout=CONNECT_TIMEOUT, set_as_default=False)
    except (OSError, TimeoutError, ValueError) as e:
        raise OutputError(
            f"cannot reach the Dask scheduler at {address!r} ({type(e).__name__}: {e}); "
            f"check the address (--scheduler or ${SCHEDULER_ENV}) and that the cluster runs"
        ) from e


@contextmanager
def replicate_backend(scheduler: str | None) -> Iterator[str]:
    """Within this block, :func:`run_replicates` runs on a Dask cluster, if one is named.

    Parameters
    ----------
    scheduler : str or None
        A ``dask.distributed`` scheduler's address (``tcp://host:8786``); None: the
        cluster of an enclosing block if any, else that of ``$DASK_SCHEDULER_ADDRESS``
        if set, else this machine.

    Yields
    ------
    str
        Where the replicates run, in words: ``"this machine"`` or ``"the Dask cluster
        at ADDRESS"``.

    Raises
    ------
    ConfigError
        A scheduler is named but the ``dask`` extra is not installed.
    OutputError
        The scheduler cannot be reached within :data:`CONNECT_TIMEOUT` seconds.
    """
    active = _CLIENT.get()
    if scheduler is None and active is not None:
        yield f"the Dask cluster at {active.scheduler.address}"
        return
    address = scheduler_address(scheduler)
    if address is None:
        yield LOCAL
        return
    client = _connect(address)
    token = _CLIENT.set(client)
    try:
        yield f"the Dask cluster at {address}"
    finally:
        _CLIENT.reset(token)
        client.close()


def run_replicates(
    tasks: Iterable[Any],
    *,
    n_jobs: int,
    prefer: Literal["processes", "threads"] = "processes",
    return_as: Literal["list", "generator", "generator_unordered"] = "list",
) -> Any:
    """Run joblib ``delayed`` tasks: on the cluster of :func:`replicate_backend` if
    there is one (every worker thread), else on this machine with ``n_jobs`` processes
    or threads (``prefer``).

    Returns what :class:`joblib.Parallel` returns for ``return_as``.
    """
    client = _CLIENT.get()
    if client is None:
        return Parallel(n_jobs=n_jobs, prefer=prefer, return_as=return_as)(tasks)
    from joblib import parallel_config

    with parallel_config(backend="dask", client=client):
        # Parallel takes its backend when made: the tasks go to the cluster, and no other
        # joblib work does, even while a generator of results is being read
        parallel = Parallel(n_jobs=-1, return_as=return_as)
    return parallel(tasks)
