"""The embedded Dask cluster of ``likelab study run --executor dask``: loopback only, no HTTP.

``distributed`` starts an HTTP server in every scheduler and worker whatever the dashboard
settings (``dashboard_address=None`` only means the default port: the scheduler served
Prometheus metrics, JSON state and a proxy route on 127.0.0.1:8787). The embedded cluster's
scheduler and workers start none (:class:`NoHTTPScheduler`, :class:`NoHTTPWorker`): what
listens is the scheduler's and the workers' own TCP ports, on 127.0.0.1.

Its worker processes exit with their parent (``distributed`` watches the parent through a pipe;
tested) and ignore SIGINT (the parent handles a Ctrl-C). A worker that has closed ends its
process without the interpreter's teardown, which on a busy machine outlasted the nanny's
4-second grace period (the nanny then killed it and logged a warning; a worker still alive
then could also log a heartbeat traceback). The remaining benign messages of a closing cluster
are filtered from the ``distributed`` log handlers while, and only while, it closes
(:class:`ShutdownNoise`).
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import multiprocessing
import os
import re
import signal
import sys
import threading
from collections.abc import Iterator
from typing import Any

from distributed import Nanny, Scheduler, SpecCluster, Worker

_log = logging.getLogger(__name__)

__all__ = ["NoHTTPScheduler", "NoHTTPWorker", "ShutdownNoise", "local_cluster", "quiet_shutdown"]


class NoHTTPScheduler(Scheduler):
    """A scheduler that serves no HTTP (no dashboard, metrics, JSON state or proxy routes)."""

    def start_http_server(self, *args: Any, **kwargs: Any) -> None:
        return None


class NoHTTPWorker(Worker):
    """A worker that serves no HTTP and ignores SIGINT (a Ctrl-C reaches the whole process
    group; the parent alone handles it and closes the cluster, so the workers print no
    ``KeyboardInterrupt`` of their own); in its own process, its shutdown noise is filtered once
    it starts closing."""

    def __init__(self, *args: Any, **kwargs: Any):
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, signal.SIG_IGN)
        _install(_Stops())
        super().__init__(*args, **kwargs)

    def start_http_server(self, *args: Any, **kwargs: Any) -> None:
        return None

    async def close(self, *args: Any, **kwargs: Any) -> Any:
        _install(ShutdownNoise())
        result = await super().close(*args, **kwargs)
        if multiprocessing.parent_process() is not None:
            # closed cleanly: once the nanny's process code has finished (its queues flushed),
            # skip the interpreter's teardown, which took over the nanny's 4-second grace
            # period on a busy machine (the nanny then killed the worker and said so): the
            # embedded cluster's close went from 4.1 s to 0.1 s (measured)
            atexit.register(_exit_now)
        return result


def _exit_now() -> None:
    """End a closed worker's process at once (the last step of its exit, after atexit)."""
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(0)


class NoHTTPNanny(Nanny):
    """A nanny whose worker process runs a :class:`NoHTTPWorker`."""

    def __init__(self, *args: Any, **kwargs: Any):
        kwargs["worker_class"] = NoHTTPWorker
        super().__init__(*args, **kwargs)


#: Log messages of a cluster that is closing, none of them a fault: a worker slower to stop
#: than the nanny's grace period (it is killed, its work was done), a heartbeat or a stream
#: cut because the other side has closed.
_BENIGN = re.compile(
    "Worker process still alive after"
    "|Failed to communicate with scheduler during heartbeat"
    "|Connection to .* has been closed"
    "|Stream is closed"
    "|CommClosedError"
    "|Scheduler closing"
    "|Closing Nanny"
    "|Received heartbeat from unregistered worker"
    "|ended with CancelledError"
)


class ShutdownNoise(logging.Filter):
    """Drops the known benign messages of a closing cluster (:data:`_BENIGN`), tracebacks
    included; every other record passes."""

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        if record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            text += f" {type(exc).__name__}: {exc}"
        return not _BENIGN.search(text)


class _Stops(logging.Filter):
    """Drops the worker's "Compute Failed" report of a task that stopped on purpose: a user
    objective's ``KeyboardInterrupt`` or ``SystemExit``, carried back to the parent, which
    reports it (``likelab.study.runner._Stopped``)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not ("Compute Failed" in str(record.msg) and "_Stopped(" in record.getMessage())


def _install(noise: logging.Filter) -> list[logging.Filterer]:
    """Add ``noise`` to the handlers that print ``distributed``'s records (its own and the
    root logger's): a handler's filter sees the records of every ``distributed.*`` logger."""
    targets: list[logging.Filterer] = [
        *logging.getLogger("distributed").handlers,
        *logging.getLogger().handlers,
    ]
    for target in targets:
        target.addFilter(noise)
    return targets


@contextlib.contextmanager
def quiet_shutdown() -> Iterator[None]:
    """Filter the benign shutdown messages from this process's ``distributed`` loggers."""
    noise = ShutdownNoise()
    targets = _install(noise)
    try:
        yield
    finally:
        for target in targets:
            target.removeFilter(noise)


def local_cluster(workers: int) -> SpecCluster:
    """An embedded cluster of ``workers`` single-threaded worker processes, each with a nanny,
    all on 127.0.0.1, none serving HTTP."""
    from distributed.worker_memory import parse_memory_limit

    scheduler = {
        "cls": NoHTTPScheduler,
        "options": {
            "host": "127.0.0.1",
            "port": 0,
            "protocol": "tcp://",
            "dashboard": False,
            "dashboard_address": None,
        },
    }
    worker = {
        "cls": NoHTTPNanny,
        "options": {
            "host": "127.0.0.1",
            "protocol": "tcp://",
            "nthreads": 1,
            "dashboard": False,
            "dashboard_address": None,
            "memory_limit": parse_memory_limit("auto", 1, workers, logger=_log),
            "silence_logs": logging.WARNING,
        },
    }
    return SpecCluster(
        scheduler=scheduler,
        workers={i: worker for i in range(workers)},
        worker=worker,
        silence_logs=logging.WARNING,
    )
