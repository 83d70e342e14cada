"""Running a study: generate → analyse per cell, in-process, in a process pool or on Dask.

:func:`run_cell` is the whole work of one cell (pure: its result depends only on the study spec
and the cell): draw the cell's datasets from its own seed, fit the model with every objective
on the same datasets (one batched :func:`likelab.estimate.fit` per objective) and return the
rows as columns. A fit that fails, whether it does not converge, gives NaN or raises, becomes
rows with its reason, never an exception: failures are data.

:func:`run_study` sends the unfinished cells to an executor and writes each finished cell to the
store from this process, the one writer, in one transaction per cell, as results arrive.

- ``local``: one cell after another, in this process;
- ``process``: a :class:`concurrent.futures.ProcessPoolExecutor` (spawned workers, one torch
  thread each);
- ``dask``: a ``dask.distributed`` cluster, at ``scheduler`` (``tcp://host:port``) or an
  embedded ``LocalCluster`` of ``workers`` single-threaded worker processes bound to loopback.
  A worker lost mid-study has its cells rescheduled by the scheduler. (Workers of an external
  cluster are best started without ``MALLOC_TRIM_THRESHOLD_``, which dask sets by default and
  which slows torch down 2.3x: configure ``distributed.nanny.pre-spawn-environ``.)

The results are bit-identical whatever the executor and the worker count (tested).
"""

from __future__ import annotations

import contextlib
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import duckdb
import numpy as np

from likelab.errors import ParameterError, StoreError
from likelab.study.design import Cell, cells, dgp_points, generate
from likelab.study.spec import StudySpec
from likelab.study.store import CellRows, Store

__all__ = [
    "EXECUTORS",
    "RunReport",
    "StudyInterrupted",
    "check_executor",
    "default_store",
    "run_cell",
    "run_study",
    "run_tasks",
    "stoppable",
]

EXECUTORS = ("local", "process", "dask")


@dataclass(frozen=True)
class RunReport:
    """What a run did: cells in the study, already done before, run now; fits; seconds."""

    store: str
    cells_total: int
    cells_skipped: int
    cells_run: int
    fits: int
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class StudyInterrupted(KeyboardInterrupt):
    """A run stopped by an interrupt (Ctrl-C, SIGINT): still a :class:`KeyboardInterrupt`, which
    also says what the store keeps. ``cells_done`` of ``cells_total`` cells are finished in
    ``store`` (``cells_run`` of them by this run); running the study again resumes from there.
    """

    def __init__(self, store: str, cells_done: int, cells_total: int, cells_run: int):
        super().__init__(store, cells_done, cells_total, cells_run)
        self.store = store
        self.cells_done = cells_done
        self.cells_total = cells_total
        self.cells_run = cells_run

    def __str__(self) -> str:
        if not self.cells_done:
            return f"0 of {self.cells_total} cells finished, nothing kept"
        return (
            f"{self.cells_done} of {self.cells_total} cells kept in {self.store} "
            f"({self.cells_run} by this run)"
        )


def _is_interrupt(exc: BaseException) -> bool:
    """A Ctrl-C, whether Python raised it or DuckDB met it inside a query of the store's (its
    Python client turns the signal into ``InterruptException`` or, while it converts Python
    objects, a bare ``RuntimeError('Query interrupted')``)."""
    return isinstance(exc, KeyboardInterrupt | duckdb.InterruptException) or (
        isinstance(exc, RuntimeError) and str(exc) == "Query interrupted"
    )


def default_store(study_file: str | Path, spec: StudySpec) -> Path:
    """``<study file's folder>/<study name>.duckdb``, as the study file was named (relative
    stays relative: ``examples/seed_question.yaml`` gives ``examples/seed-question.duckdb``)."""
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in spec.name)
    return Path(study_file).parent / f"{safe}.duckdb"


def check_user_objectives(spec: StudySpec, cell: Cell) -> None:
    """Fit each user objective of ``spec`` once, to one dataset of ``cell``, before anything is
    written. An objective that fails on likelab's probe (a mean instead of one loss per
    observation, the wrong type, an exception or ``sys.exit()`` on a valid forecast) breaks its
    contract whatever the data: a :class:`~likelab.errors.UserContractError` for the whole
    study, not a failure recorded in every cell. A failure on the data itself is left to the
    run, which records it as data like any failed fit."""
    import torch

    from likelab.errors import UserContractError
    from likelab.estimate import fit
    from likelab.objectives import get_objective

    user = [s for s in spec.objectives if get_objective(s).user]
    if not user:
        return
    y, fit_seed = generate(spec.seed, replace(cell, replicates=1))
    for spec_obj in user:
        try:
            fit(
                y,
                spec.model.family,
                spec_obj,
                fixed=cell.point.fixed or None,
                seed=fit_seed,
                max_iter=1,
                dtype=torch.float64,
            )
        except UserContractError:
            raise
        except Exception:  # a failure on the data: recorded by the run
            continue


def run_cell(spec: StudySpec, cell: Cell) -> tuple[CellRows, float]:
    """Generate and analyse one cell: its result rows (numeric columns, strings as codes, see
    :class:`~likelab.study.store.CellRows`) and the seconds it took.

    The fits run on one torch thread whatever the executor (and the caller's thread count is
    restored): the order of floating-point reductions then never depends on where a cell runs,
    which is what makes results bit-identical across executors.
    """
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _run_cell(spec, cell)
    finally:
        torch.set_num_threads(threads)


_SIZES: dict[str, int] = {}


def study_observations(spec: StudySpec) -> int:
    """Observations the whole study fits: DGP points × replicates × Σ n × objectives. Declared
    to :func:`likelab.estimate.fused.expected_work` around each cell, so that the choice of
    the fused kernels depends on the study alone, whatever the executor runs where."""
    if spec.hash not in _SIZES:
        points = len(dgp_points(spec))
        _SIZES[spec.hash] = points * spec.replicates * sum(spec.sample_sizes) * len(spec.objectives)
    return _SIZES[spec.hash]


def _run_cell(spec: StudySpec, cell: Cell) -> tuple[CellRows, float]:
    from likelab.estimate import fused

    with fused.expected_work(study_observations(spec)):
        return _fit_cell(spec, cell)


def _fit_cell(spec: StudySpec, cell: Cell) -> tuple[CellRows, float]:
    import torch

    from likelab.estimate import fit

    start = time.perf_counter()
    y, fit_seed = generate(spec.seed, cell)
    estimand = list(cell.point.truth)
    reps = cell.replicates
    reasons: dict[str, int] = {}
    cols: dict[str, list[np.ndarray]] = {k: [] for k in CellRows.NUMERIC}
    for j, spec_obj in enumerate(spec.objectives):
        t0 = time.perf_counter()
        try:
            res = fit(
                y,
                spec.model.family,
                spec_obj,
                fixed=cell.point.fixed or None,
                multistart=spec.fit.multistart,
                seed=fit_seed,
                max_iter=spec.fit.max_iter,
                dtype=torch.float64,
            )
            est = {p: np.asarray(res.params[p], dtype=np.float64) for p in estimand}
            se = {p: np.asarray(res.se[p], dtype=np.float64) for p in estimand}
            value = np.asarray(res.value, dtype=np.float64)
            converged = np.asarray(res.converged, dtype=bool)
            reason = np.asarray(res.reason, dtype=object)
        except (Exception, SystemExit) as exc:
            # a failure is recorded as data, the study goes on: a user objective's sys.exit()
            # too, which ends its fit, not the study (a KeyboardInterrupt does stop the study)
            msg = f"error: {type(exc).__name__}: {' '.join(str(exc).split())}"[:500]
            nan = np.full(reps, np.nan)
            est = {p: nan for p in estimand}
            se = est
            value = nan
            converged = np.zeros(reps, dtype=bool)
            reason = np.full(reps, msg, dtype=object)
        per_fit = (time.perf_counter() - t0) / reps
        names, inverse = np.unique(reason.astype(str), return_inverse=True)
        codes = np.array([reasons.setdefault(str(r), len(reasons)) for r in names], np.int16)
        for i, p in enumerate(estimand):
            cols["replicate"].append(np.arange(cell.first, cell.first + reps, dtype=np.int32))
            cols["objective"].append(np.full(reps, j, dtype=np.int16))
            cols["parameter"].append(np.full(reps, i, dtype=np.int16))
            cols["truth"].append(np.full(reps, cell.point.truth[p]))
            cols["estimate"].append(est[p])
            cols["se"].append(se[p])
            cols["value"].append(value)
            cols["converged"].append(converged & np.isfinite(est[p]))
            cols["reason"].append(codes[inverse])
            cols["fit_seconds"].append(np.full(reps, per_fit))
    rows = CellRows(
        columns={k: np.concatenate(v) for k, v in cols.items()},
        objectives=list(spec.objectives),
        parameters=estimand,
        reasons=list(reasons),
    )
    return rows, time.perf_counter() - start


def _worker_init(parent: int | None = None) -> None:
    """A pool worker's start: one torch thread; SIGINT ignored (the parent alone handles an
    interrupt and stops its workers, so a Ctrl-C sent to the whole process group does not break
    the pool mid-result); and the worker exits when ``parent`` dies (:func:`exit_with_parent`).
    """
    import signal

    import torch

    torch.set_num_threads(1)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if parent is not None:
        exit_with_parent(parent)


#: How often a worker checks that its parent is alive (seconds).
PARENT_POLL_SECONDS = 0.5


def exit_with_parent(parent: int, *, interval: float = PARENT_POLL_SECONDS) -> None:
    """End this process as soon as the process ``parent`` is gone, however it died (a
    ``kill -9`` of the parent runs none of its cleanup, and an orphaned worker would otherwise
    live on, parented by init, holding its memory).

    On Linux the kernel is asked to kill this process when its parent exits
    (``prctl(PR_SET_PDEATHSIG, SIGKILL)``); everywhere, a daemon thread checks
    ``os.getppid()`` every ``interval`` seconds and exits once it differs from ``parent``
    (which also covers a parent that died before this function ran).
    """
    import signal
    import sys
    import threading

    if sys.platform.startswith("linux"):
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, int(signal.SIGKILL), 0, 0, 0)  # 1 = PR_SET_PDEATHSIG
        except (OSError, AttributeError):  # pragma: no cover - no prctl: the thread suffices
            pass
    if os.getppid() != parent:
        os._exit(1)

    def watch() -> None:
        while True:
            time.sleep(interval)
            if os.getppid() != parent:
                os._exit(1)

    threading.Thread(target=watch, name="likelab-exit-with-parent", daemon=True).start()


class _Stopped(Exception):
    """A ``KeyboardInterrupt`` or ``SystemExit`` raised in a worker's cell (by a user objective:
    a worker ignores SIGINT), carried back as an ordinary exception and raised again in the
    parent (:meth:`again`). Left as it was, it would kill a Dask worker's task and come back as
    cancelled futures; in every executor it now stops the run as it does in-process."""

    def __init__(self, kind: str, code: Any = None):
        super().__init__(kind, code)
        self.kind = kind
        self.code = code

    def again(self) -> BaseException:
        return KeyboardInterrupt() if self.kind == "KeyboardInterrupt" else SystemExit(self.code)


@contextlib.contextmanager
def stoppable():
    """Around a task's work in a worker: a ``KeyboardInterrupt`` or ``SystemExit`` raised by it
    (a user objective's) travels back as an ordinary exception, raised again in the parent by
    :func:`run_tasks` (see :class:`_Stopped`)."""
    try:
        yield
    except (KeyboardInterrupt, SystemExit) as exc:
        raise _Stopped(type(exc).__name__, getattr(exc, "code", None)) from None


#: What a pool sends for a cell: its key, its DGP point's spec, n, block, first, replicates.
_CellRef = tuple[str, str, int, int, int, int]

_POINTS: dict[str, dict[str, Any]] = {}  # a worker's DGP points of the study, by spec hash


def _ref(cell: Cell) -> _CellRef:
    return (cell.key, cell.point.spec, cell.n, cell.block, cell.first, cell.replicates)


def _run_cells_task(spec: StudySpec, batch: list[_CellRef]) -> list[tuple[str, CellRows, float]]:
    """A pool's unit of work: a batch of cells, each run (and later written) on its own.

    A cell travels as plain values (:data:`_CellRef`) and its DGP point is rebuilt here, once
    per worker: a point holds torch tensors, which a process pool passes as file descriptors
    through a helper thread of the parent (a worker stopped while receiving one leaves that
    thread a traceback)."""
    digest = spec.hash
    if digest not in _POINTS:
        _POINTS.clear()
        _POINTS[digest] = {p.spec: p for p in dgp_points(spec)}
    points = _POINTS[digest]
    out = []
    with stoppable():
        for key, point, n, block, first, replicates in batch:
            cell = Cell(key, points[point], n, block, first, replicates)
            rows, seconds = run_cell(spec, cell)
            out.append((cell.key, rows, seconds))
    return out


#: Seconds of work a batch of cells is sized to once cells have been timed. A task costs a pool
#: a fixed overhead (dask: about 10 ms of scheduler and client time in this process and 3 ms in
#: the worker, measured on loopback; a process pool: under 1 ms); at 0.5 s it is a few percent.
BATCH_SECONDS = 0.5


class _Batcher:
    """Hands out the cells in batches sized to :data:`BATCH_SECONDS` from the mean time of the
    cells finished so far (one cell per batch until one is timed), like joblib's ``batch_size=
    "auto"``; batches shrink towards the end so that every worker gets a share of the tail."""

    def __init__(self, todo: list[Any], workers: int):
        self.cells = list(todo)
        self.handed = 0  # cells handed out so far (an index, not a shrinking list: O(1) a batch)
        self.workers = max(1, workers)
        self.timed = 0
        self.seconds = 0.0

    def __bool__(self) -> bool:
        return self.handed < len(self.cells)

    def record(self, seconds: float) -> None:
        self.timed += 1
        self.seconds += seconds

    def next(self) -> list[Any]:
        size = 1
        if self.timed:
            mean = max(self.seconds / self.timed, 1e-9)
            left = len(self.cells) - self.handed
            size = max(1, min(int(BATCH_SECONDS / mean), left // (4 * self.workers)))
        batch = self.cells[self.handed : self.handed + size]
        self.handed += len(batch)
        return batch


def _feed(submit, wait_first, todo: list[Any], workers: int, write) -> None:
    """Keep ``2 * workers`` batches in flight on a pool; write each finished cell as it comes.

    ``submit(batch)`` returns a future; ``wait_first(futures)`` returns ``(done, pending)``.
    """
    batcher = _Batcher(todo, workers)
    pending = set()
    while batcher and len(pending) < 2 * batcher.workers:
        pending.add(submit(batcher.next()))
    while pending:
        done, pending = wait_first(pending)
        for fut in done:
            try:
                finished = fut.result()
            except _Stopped as stop:
                raise stop.again() from None
            for key, rows, seconds in finished:
                batcher.record(seconds)
                write(key, rows, seconds)
            release = getattr(fut, "release", None)
            if release is not None:
                release()
        while batcher and len(pending) < 2 * batcher.workers:
            pending.add(submit(batcher.next()))


def run_study(
    spec: StudySpec,
    store: str | Path,
    *,
    executor: str = "process",
    workers: int | None = None,
    scheduler: str | None = None,
    on_cell: Callable[[int, int, int], None] | None = None,
) -> RunReport:
    """Run every unfinished cell of ``spec`` and write it to ``store``; resumable.

    ``on_cell(cells_done, cells_total, fits_done)`` is called after each cell is written (the
    CLI's progress bar). Returns a :class:`RunReport`.
    """
    scheduler = check_executor(executor, workers, scheduler)
    all_cells = cells(spec)
    start = time.perf_counter()
    db = Store(store, spec)
    state = {"cells": 0, "fits": 0, "run": 0}
    try:
        done = db.done()
        todo = [c for c in all_cells if c.key not in done]
        if todo:  # a broken user objective stops the study before its first cell
            check_user_objectives(spec, todo[0])
        by_key = {c.key: c for c in todo}
        fits_per_cell = {c.key: c.replicates * len(spec.objectives) for c in todo}
        state["cells"] = len(all_cells) - len(todo)

        def write(key: str, cols: CellRows, seconds: float) -> None:
            db.write_cell(by_key[key], cols, seconds)
            state["cells"] += 1
            state["run"] += 1
            state["fits"] += fits_per_cell[key]
            if on_cell is not None:
                on_cell(state["cells"], len(all_cells), state["fits"])

        if todo:
            run_tasks(
                _run_cells_task,
                spec,
                todo,
                _ref,
                write,
                executor=executor,
                workers=workers,
                scheduler=scheduler,
            )
    except BaseException as exc:
        kept = state["cells"]
        with contextlib.suppress(Exception):
            kept = len(db.done())  # what the store holds, whatever moment the exception came
        with contextlib.suppress(Exception):
            db.close()
        if db.created and kept == 0:
            # nothing kept: a failed or interrupted first run leaves no store claimed for the
            # study (a file that existed before is never removed)
            db.remove()
        if _is_interrupt(exc) and not isinstance(exc, StudyInterrupted):
            raise StudyInterrupted(str(store), kept, len(all_cells), state["run"]) from exc
        if isinstance(exc, duckdb.Error):  # a write that failed: a full disk, a damaged file
            raise StoreError(db.describe(exc)) from None
        raise
    db.close()
    return RunReport(
        store=str(store),
        cells_total=len(all_cells),
        cells_skipped=len(all_cells) - len(todo),
        cells_run=len(todo),
        fits=state["fits"],
        seconds=time.perf_counter() - start,
    )


def check_executor(executor: str, workers: int | None, scheduler: str | None) -> str | None:
    """Check the executor options of :func:`run_tasks` before any work; returns the scheduler
    address in its full form (``tcp://`` added), or None."""
    if executor not in EXECUTORS:
        raise ParameterError(f"executor must be one of {', '.join(EXECUTORS)}, got {executor!r}")
    if workers is not None and (isinstance(workers, bool) or workers < 1):
        raise ParameterError(f"workers must be an integer >= 1, got {workers!r}")
    if scheduler is not None and executor != "dask":
        raise ParameterError("--scheduler is for the dask executor")
    return None if scheduler is None else _check_scheduler_address(scheduler)


def run_tasks(
    task: Callable[[Any, list[Any]], list[tuple[str, Any, float]]],
    shared: Any,
    todo: list[Any],
    ref: Callable[[Any], Any],
    write: Callable[[str, Any, float], None],
    *,
    executor: str = "local",
    workers: int | None = None,
    scheduler: str | None = None,
) -> None:
    """Run ``task(shared, [ref(item), ...])`` over batches of ``todo`` on ``executor`` and
    ``write(key, result, seconds)`` each result in this process, the one writer, as it arrives.

    The engine of :func:`run_study`, for any work cut into items (the scorecard's units too):
    ``task`` is a module-level function (a pool pickles it by name) returning one ``(key,
    result, seconds)`` per item; ``shared`` is sent to each worker once (Dask) or with each
    batch (a process pool); ``ref(item)`` is what travels for an item (plain values). Batches
    are sized from the items' times (:data:`BATCH_SECONDS`). Workers run one torch thread each,
    ignore SIGINT and exit with this process; a ``KeyboardInterrupt`` or ``SystemExit`` raised
    by the work stops the run as it would in-process. Check ``executor``, ``workers`` and
    ``scheduler`` first (:func:`check_executor`)."""
    if executor == "local":
        for item in todo:
            try:
                finished = task(shared, [ref(item)])
            except _Stopped as stop:
                raise stop.again() from None
            for key, result, seconds in finished:
                write(key, result, seconds)
    elif executor == "process":
        _run_process(task, shared, todo, ref, workers, write)
    else:
        _run_dask(task, shared, todo, ref, workers, scheduler, write)


def _run_process(task, shared, todo, ref, workers, write) -> None:
    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    n = workers or os.cpu_count() or 1
    ctx = multiprocessing.get_context("spawn")
    pool = ProcessPoolExecutor(
        max_workers=n, mp_context=ctx, initializer=_worker_init, initargs=(os.getpid(),)
    )
    try:
        _feed(
            lambda batch: pool.submit(task, shared, [ref(c) for c in batch]),
            lambda fs: wait(fs, return_when=FIRST_COMPLETED),
            todo,
            n,
            write,
        )
    except BaseException:
        # an interrupt or a failure: stop now, not after the batches in flight (a cell can take
        # minutes); what they computed is lost, what was written stays
        _stop_pool(pool)
        raise
    pool.shutdown(wait=True)


def _stop_pool(pool) -> None:
    """Cancel a process pool's queued work and terminate its workers, then reap them."""
    processes = list(getattr(pool, "_processes", {}).values())  # no public handle before 3.14
    pool.shutdown(wait=False, cancel_futures=True)
    for proc in processes:
        with contextlib.suppress(Exception):
            proc.terminate()
    for proc in processes:
        with contextlib.suppress(Exception):
            proc.join(timeout=5)


#: Seconds to wait for a Dask scheduler to answer before giving up.
CONNECT_SECONDS = 5.0

_ADDRESS = re.compile(r"^(?:(tcp|tls)://)?(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):(\d{1,5})$")


def _check_scheduler_address(address: str) -> str:
    """``address`` if it is a Dask scheduler address, ``[tcp://|tls://]host:port``; otherwise
    a :class:`~likelab.errors.ParameterError` that says what the form is."""
    match = _ADDRESS.match(address.strip()) if isinstance(address, str) else None
    if match is None or not 0 < int(match.group(3)) < 65536:
        raise ParameterError(
            f"--scheduler {address!r} is not a Dask scheduler address: expected "
            "tcp://HOST:PORT (or tls://HOST:PORT), e.g. tcp://127.0.0.1:8786"
        )
    return address.strip() if match.group(1) else f"tcp://{address.strip()}"


def _reach_scheduler(address: str) -> None:
    """Fail in seconds where no Dask scheduler answers at ``address`` (a refused connection, an
    unknown host, a timeout, or something else listening there), not after ``distributed``'s
    30-second retry loop, or never (a port that accepts and stays silent hung the client)."""
    import asyncio
    import socket
    from concurrent.futures import ThreadPoolExecutor

    from distributed.comm import connect

    host, port = address.split("://", 1)[1].rsplit(":", 1)
    host = host.strip("[]")
    try:
        with socket.create_connection((host, int(port)), timeout=CONNECT_SECONDS):
            pass
    except OSError as exc:
        why = "timed out" if isinstance(exc, TimeoutError) else (exc.strerror or str(exc))
        raise ParameterError(
            f"cannot reach the Dask scheduler at {address}: {why} (is it running, and is the "
            "address right?)"
        ) from None

    async def handshake() -> None:
        comm = await asyncio.wait_for(connect(address, timeout=CONNECT_SECONDS), CONNECT_SECONDS)
        await comm.close()

    # in a thread of its own: the caller may be running an event loop (a notebook)
    with ThreadPoolExecutor(1) as pool:
        try:
            pool.submit(asyncio.run, handshake()).result()
        except (OSError, asyncio.TimeoutError) as exc:
            why = "" if isinstance(exc, asyncio.TimeoutError) else f" ({_short(exc)})"
            raise ParameterError(
                f"no Dask scheduler answers at {address} within {CONNECT_SECONDS:g} s{why}: "
                "is something else listening there?"
            ) from None


def _short(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:200]


@contextlib.contextmanager
def _deferred_sigint():
    """Within the block, SIGINT only sets a flag, read by calling the yielded function; the
    caller raises :class:`KeyboardInterrupt` where it is safe to. Where signals cannot be
    handled (not the main thread), the flag never rises and SIGINT acts as before."""
    import signal
    import threading

    flag = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield flag.is_set
        return
    previous = signal.signal(signal.SIGINT, lambda signum, frame: flag.set())
    try:
        yield flag.is_set
    finally:
        signal.signal(signal.SIGINT, previous)
    if flag.is_set():  # a Ctrl-C the block did not act on (e.g. while the cluster closed)
        raise KeyboardInterrupt


def _run_dask(task, shared, todo, ref, workers, scheduler, write) -> None:
    try:
        import dask
        from distributed import Client, wait

        from likelab.study import _dask
    except ImportError:  # pragma: no cover - dask is an optional extra
        raise ParameterError(
            "the dask executor needs dask.distributed, part of likelab's install: reinstall "
            "likelab (pip install likelab) or pip install distributed"
        ) from None
    if scheduler is not None:
        _reach_scheduler(scheduler)
    # dask's nanny starts workers with glibc's MALLOC_TRIM_THRESHOLD_=65536 (to hand memory back
    # to the OS promptly); torch's many small allocations then run 2.3x slower (measured on a
    # study cell). The embedded cluster's workers, restarted ones included, start without it.
    # Its housekeeping is slowed too: the worker's 10 ms stack-sampling profiler, the GIL monitor
    # and the 20 ms / 100 ms event-loop and memory polls cost an idle 2-worker cluster about 20%
    # of a core (measured: 0.78 s of this process and 0.59 s per worker over 10 s; 0.2 s and
    # 0.08 s without them), which on a small machine is taken from the fits.
    environ = dict(dask.config.get("distributed.nanny.pre-spawn-environ", {}))
    environ.pop("MALLOC_TRIM_THRESHOLD_", None)
    quiet = {
        "distributed.nanny.pre-spawn-environ": environ,
        "distributed.worker.profile.enabled": False,
        "distributed.admin.system-monitor.gil.enabled": False,
        "distributed.admin.tick.interval": "1s",
        "distributed.worker.memory.monitor-interval": "1s",
    }
    with dask.config.set(quiet), _deferred_sigint() as interrupted:
        cluster = None if scheduler is not None else _dask.local_cluster(workers or 2)
        client = None

        def wait_first(fs):
            # a Ctrl-C is raised here, between distributed's calls: one landing inside its
            # blocking sync() makes it log a tornado traceback (distributed's cancel callback
            # reads a variable not yet bound) before the interrupt gets through
            while not interrupted():
                try:
                    return wait(fs, timeout=0.25, return_when="FIRST_COMPLETED")
                except TimeoutError:
                    continue
            raise KeyboardInterrupt

        try:
            try:
                client = Client(scheduler or cluster, direct_to_workers=True)
            except (OSError, TimeoutError) as exc:
                where = f"the Dask scheduler at {scheduler}" if scheduler else "the Dask cluster"
                raise ParameterError(
                    f"cannot connect to {where}: {' '.join(str(exc).split())}"
                ) from None
            scattered = client.scatter(shared, broadcast=True)  # sent to each worker once
            threads = sum(client.nthreads().values())
            _feed(
                lambda batch: client.submit(task, scattered, [ref(c) for c in batch], pure=False),
                wait_first,
                todo,
                threads,
                write,
            )
        finally:
            # in order: the client first (it stops asking), then the workers and the scheduler;
            # the known benign messages of a closing cluster are not shown
            with _dask.quiet_shutdown():
                if client is not None:
                    with contextlib.suppress(Exception):
                        client.close(timeout=CONNECT_SECONDS)
                if cluster is not None:
                    with contextlib.suppress(Exception):
                        cluster.close(timeout=2 * CONNECT_SECONDS)
