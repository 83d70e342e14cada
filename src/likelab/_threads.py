r"""How many intra-op threads likelab's batched numerical work uses: the cores that are idle.

torch splits every elementwise operation and reduction over its intra-op threads (OpenMP) and
waits at the end of each for the slowest. When another process keeps a core busy, the thread
that shares that core runs only in its time slices, and every operation waits for it: on a
2-core machine with one busy process, a batched Student-t fit went from 77 to 225 µs per fit at
2 threads (113 µs at 1 thread). So inside a batched computation (:func:`batch_threads`) likelab
uses only the cores that other processes leave idle, re-chosen at most every
:data:`WINDOW` seconds (:func:`adapt`, called by the Newton iterations):

.. math::
    T = \min\big(T_{\max},\ \max(1,\ \lfloor c - b + m \rfloor)\big),

where :math:`c` is the number of CPUs this process may run on (``os.sched_getaffinity``, capped
by a cgroup CPU quota), :math:`b` the CPU time that *other* processes used on those CPUs over
the last window, in cores (the busy jiffies of those CPUs in ``/proc/stat`` minus this
process's own CPU time, :func:`time.process_time`), and :math:`T_{\max}` the thread count in
force when the computation starts (``torch.set_num_threads``, the user's choice: never
exceeded). A CPU counts as free when others used less than a quarter of it (:math:`m = 1/4`);
a thread already in use is kept until others use half of a CPU (:math:`m = 1/2` when the
formula would lower T), so that the noise of a load reading (``/proc/stat`` counts in ticks of
10 ms) does not make the count flap. The thread count in force before is restored afterwards.

The policy is a good neighbour: it leaves the busy cores to their processes. On a machine
oversubscribed by others, more threads would take a larger share of it (the scheduler shares
per thread; with OpenMP's sleeping waits, ``likelab._runtime``, measured on 2 cores at load 5:
122 µs per Student-t fit on 2 threads, 294 µs on the 1 thread the policy chose), at the
neighbours' expense; ``LIKELAB_THREADS=N`` asks for that.

``LIKELAB_THREADS`` (environment, read at each call) overrides the policy: ``auto`` (or unset)
is the policy above; a positive integer N runs likelab's batched work on exactly N threads,
whatever the load and whatever ``torch.set_num_threads`` says. Without ``/proc/stat`` (macOS,
Windows) ``auto`` keeps :math:`T_{\max}`.

The thread count does not change a single bit of the results: torch reduces each row of a
``(B, n)`` tensor on one thread in the same order whatever the thread count (the rows are
split between threads, not the observations), and computes elementwise operations the same on
every thread (tested: :mod:`tests.test_threads`). The one exception is a reduction to a single
number of at least :data:`GRAIN` elements (one dataset of ``n >= 32,768`` observations), which
torch splits between the threads; for such data the policy keeps :math:`T_{\max}`
throughout, so that the numbers do not depend on the load.
"""

from __future__ import annotations

import contextlib
import functools
import math
import os
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import torch

from likelab._runtime import start_intra_op_threads
from likelab.errors import ParameterError

__all__ = [
    "ENV",
    "GRAIN",
    "WINDOW",
    "adapt",
    "batch_threads",
    "idle_cpus",
    "on_policy_threads",
    "policy_threads",
    "requested_threads",
]

F = TypeVar("F", bound=Callable[..., Any])

#: The environment variable that overrides the policy: ``auto`` or a positive integer.
ENV = "LIKELAB_THREADS"
#: torch's intra-op grain size: a reduction to one number over fewer elements runs serially.
GRAIN = 32_768
#: Seconds between two choices of the thread count (and the shortest load window: 25 ticks of
#: 10 ms per CPU).
WINDOW = 0.25
#: Others' use of a CPU (in cores) below which it counts as free, and below which a CPU already
#: in use is kept.
FREE_BELOW = 0.25
KEEP_BELOW = 0.5


# ---------------------------------------------------------------------- the machine's load
def _allowed_cpus() -> list[int]:
    try:
        return sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        return list(range(os.cpu_count() or 1))


def _quota_cpus() -> float:
    """CPUs granted by a cgroup quota (v2 ``cpu.max``, v1 ``cpu.cfs_quota_us``), else inf."""
    for path, split in (
        ("/sys/fs/cgroup/cpu.max", lambda s: s.split()),
        ("/sys/fs/cgroup/cpu/cpu.cfs_quota_us", None),
    ):
        try:
            with open(path) as fh:
                text = fh.read()
            if split is not None:
                quota, period = split(text)
            else:
                with open("/sys/fs/cgroup/cpu/cpu.cfs_period_us") as fh:
                    quota, period = text.strip(), fh.read().strip()
            if quota not in ("max", "-1") and float(period) > 0:
                return float(quota) / float(period)
        except (OSError, ValueError):
            continue
    return math.inf


def _jiffies(cpus: list[int]) -> tuple[int, int] | None:
    """Busy and total jiffies summed over ``cpus`` (``/proc/stat``), or None where unreadable."""
    try:
        with open("/proc/stat") as fh:
            text = fh.read()
    except OSError:
        return None
    want = {f"cpu{i}" for i in cpus}
    busy = total = 0
    seen = 0
    for line in text.splitlines():
        if not line.startswith("cpu") or line.startswith("cpu "):
            continue
        fields = line.split()
        if fields[0] not in want:
            continue
        # user nice system idle iowait irq softirq steal (guest time is inside user/nice)
        v = [int(x) for x in fields[1:9]]
        v += [0] * (8 - len(v))
        total += sum(v)
        busy += sum(v) - v[3] - v[4]
        seen += 1
    return (busy, total) if seen else None


class _Load:
    """Others' CPU use over the last window, from two snapshots at least :data:`WINDOW` apart."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.cpus = _allowed_cpus()
        self.quota = _quota_cpus()
        self.hz = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
        self.snap: tuple[float, int, int, float] | None = None
        self.others: float | None = None  # cores used by other processes in the last window
        self.snapshot()

    def snapshot(self) -> tuple[float, int, int, float] | None:
        now, j = time.monotonic(), _jiffies(self.cpus)
        if j is None:
            return None
        snap = (now, j[0], j[1], time.process_time())
        if self.snap is None:
            self.snap = snap
        return snap

    def update(self) -> float | None:
        """Others' use in cores over the window since the last snapshot (refreshed when that
        is at least :data:`WINDOW` old), or None where the load cannot be read."""
        with self.lock:
            if self.snap is not None and time.monotonic() - self.snap[0] < WINDOW:
                return self.others
            cur = self.snapshot()
            if cur is None or self.snap is None:
                return self.others
            _, busy0, total0, own0 = self.snap
            ticks = (cur[2] - total0) / len(self.cpus)  # elapsed jiffies per CPU
            if ticks <= 0:
                return self.others
            busy = (cur[1] - busy0) / ticks  # cores busy, by anyone
            own = (cur[3] - own0) * self.hz / ticks  # cores used by this process
            self.others = max(0.0, busy - own)
            self.snap = cur
            return self.others


_LOAD: _Load | None = None
_LOAD_LOCK = threading.Lock()


def _load() -> _Load:
    global _LOAD
    with _LOAD_LOCK:
        if _LOAD is None:
            _LOAD = _Load()
        return _LOAD


def idle_cpus() -> float | None:
    """CPUs this process may use that other processes left idle over the last window (a
    fraction of a CPU counts), capped by a cgroup quota; None where the load cannot be read."""
    load = _load()
    others = load.update()
    if others is None:
        return None
    return min(len(load.cpus) - others, load.quota)


# ---------------------------------------------------------------------- the policy
def requested_threads() -> int | None:
    """``LIKELAB_THREADS`` as a thread count, or None for ``auto``; a
    :class:`~likelab.errors.ParameterError` for anything else."""
    raw = os.environ.get(ENV, "").strip()
    if raw in ("", "auto"):
        return None
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        raise ParameterError(
            f"{ENV} must be 'auto' or a positive integer (threads for likelab's batched work), "
            f"got {raw!r}"
        )
    return value


def policy_threads(ceiling: int, current: int | None = None) -> int:
    """The thread count the ``auto`` policy chooses now, at most ``ceiling``, when ``current``
    threads are in use (formula: module docstring)."""
    if ceiling <= 1:
        return 1
    idle = idle_cpus()
    if idle is None:
        return ceiling
    threads = math.floor(idle + FREE_BELOW)
    if current is not None and threads < current:
        threads = min(current, math.floor(idle + KEEP_BELOW))
    return max(1, min(ceiling, threads))


class _Active(threading.local):
    depth = 0
    ceiling = 1
    adaptive = False
    chosen_at = -math.inf


_ACTIVE = _Active()
_WARMED = [torch.get_num_threads()]  # the most threads whose pool has been started


def _set(threads: int) -> None:
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
        if threads > _WARMED[0]:  # new worker threads: start them first (likelab._runtime)
            start_intra_op_threads()
            _WARMED[0] = threads


def adapt() -> None:
    """Re-choose the thread count inside :func:`batch_threads` (at most every :data:`WINDOW`
    seconds; a no-op outside one, with ``LIKELAB_THREADS=N``, or for large single rows)."""
    state = _ACTIVE
    if not state.adaptive:
        return
    now = time.monotonic()
    if now - state.chosen_at < WINDOW:
        return
    state.chosen_at = now
    _set(policy_threads(state.ceiling, torch.get_num_threads()))


@contextlib.contextmanager
def batch_threads(row_elements: int = 0) -> Iterator[int]:
    """Run a batched computation on the threads of the policy (module docstring); restore the
    previous thread count afterwards. ``row_elements`` is the number of elements of one row
    reduced at a time (the observations of one dataset): at :data:`GRAIN` or more, the count
    stays fixed. Nested uses keep the outer one's choice. Yields the thread count chosen at
    entry."""
    state = _ACTIVE
    if state.depth:
        state.depth += 1
        try:
            yield torch.get_num_threads()
        finally:
            state.depth -= 1
        return
    before = torch.get_num_threads()
    requested = requested_threads()
    state.ceiling = before if requested is None else requested
    state.adaptive = requested is None and state.ceiling > 1 and row_elements < GRAIN
    state.chosen_at = -math.inf
    state.depth = 1
    try:
        if state.adaptive:
            adapt()
        else:
            _set(state.ceiling)
        yield torch.get_num_threads()
    finally:
        state.depth = 0
        state.adaptive = False
        _set(before)


def on_policy_threads(row_elements: Callable[..., int]) -> Callable[[F], F]:
    """Decorator: run the function inside :func:`batch_threads`, with ``row_elements`` computed
    from the call's arguments."""

    def wrap(fn: F) -> F:
        @functools.wraps(fn)
        def inner(*args: Any, **kwargs: Any) -> Any:
            with batch_threads(row_elements(*args, **kwargs)):
                return fn(*args, **kwargs)

        return inner  # type: ignore[return-value]

    return wrap


_load()  # the first snapshot of the load, so that the first batched call has a window
