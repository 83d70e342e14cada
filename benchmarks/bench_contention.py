"""Steady under load: a batched fit while another process keeps a core busy.

Student-t with df, loc and scale free, fitted by maximum likelihood (``log``) to R = 10,000
datasets of n = 100 draws from t(3), as in ``bench_fit``. Per-fit time (wall time of one batched
call / R, the median of three calls after a warm-up) is measured

1. uncontended on one torch thread (the baseline),
2. uncontended with likelab's default thread policy (``LIKELAB_THREADS`` unset: the cores that
   other processes leave idle, at most ``torch.get_num_threads()``; see ``likelab._threads``),
3. with one competing CPU-bound process (a pure-Python busy loop in a subprocess, started here
   and always stopped) under the default policy, and, for comparison, with every core forced
   (``LIKELAB_THREADS`` = the thread count at the start: what torch does by itself; one call
   after the warm-up, as it is slow).

Target: (3) at most 1.2x (1). The machine's load average is printed with the figures: the
competitor is the only load this benchmark adds; anything else running skews every figure. The
measurements run in a fresh interpreter that imports likelab before torch, as a user's script
does, so that likelab's OpenMP setting (``OMP_WAIT_POLICY=PASSIVE`` unless set) applies.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from benchmarks._timing import fmt_seconds
from likelab._threads import ENV, policy_threads
from likelab.estimate import fit
from likelab.families import get_family

R = 10_000
N = 100
RUNS = 3
BUSY = "while True:\n    pass\n"


def per_fit(call: Callable[[], object], runs: int = RUNS) -> tuple[float, float]:
    """Median and best per-fit time of ``runs`` calls after one warm-up call."""
    call()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        call()
        times.append((time.perf_counter() - start) / R)
    return statistics.median(times), min(times)


def loadavg() -> str:
    try:
        return "{:.2f} {:.2f} {:.2f}".format(*os.getloadavg())
    except OSError:
        return "unknown"


def measure() -> None:
    """The measurements, in a process where likelab was imported before torch (:func:`main`)."""
    y = get_family("student_t").sample((R, N), seed=20240601, df=3.0, loc=0.0, scale=1.0)
    threads = torch.get_num_threads()
    saved_env = os.environ.pop(ENV, None)
    competitor = None
    try:

        def run() -> object:
            res = fit(y, "student_t", "log")
            assert bool(np.all(res.converged))
            return res

        print(
            f"Student-t fit (df, loc, scale free), log objective: R = {R:,} datasets of "
            f"n = {N}; {os.cpu_count()} CPUs, torch threads at start: {threads}; "
            f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'unset')}; "
            f"load average before: {loadavg()}"
        )
        torch.set_num_threads(1)
        single, single_best = per_fit(run)
        torch.set_num_threads(threads)
        quiet, quiet_best = per_fit(run)
        chosen_quiet = policy_threads(threads)

        competitor = subprocess.Popen(
            [sys.executable, "-c", BUSY], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        time.sleep(0.5)  # the competitor is running
        busy, busy_best = per_fit(run)
        chosen_busy = policy_threads(threads)
        os.environ[ENV] = str(threads)
        forced, forced_best = per_fit(run, runs=1)  # slow under load: one call
        del os.environ[ENV]
        load_busy = loadavg()
    finally:
        if competitor is not None:
            competitor.kill()
            competitor.wait()
        torch.set_num_threads(threads)
        if saved_env is not None:
            os.environ[ENV] = saved_env
        else:
            os.environ.pop(ENV, None)

    def row(label: str, median: float, best: float, runs: int = RUNS) -> str:
        spread = f"median of {runs}; best {fmt_seconds(best)}" if runs > 1 else "one call"
        return f"  {label}: {fmt_seconds(median)} per fit ({spread})"

    print(row("uncontended, 1 thread (baseline)       ", single, single_best))
    print(row(f"uncontended, default policy ({chosen_quiet} threads)", quiet, quiet_best))
    print(row(f"1 busy process, default policy ({chosen_busy} thr.) ", busy, busy_best))
    print(row(f"1 busy process, forced {threads} threads        ", forced, forced_best, 1))
    print(f"  load average with the competitor: {load_busy}")
    print(f"  uncontended default policy / 1 thread: {quiet / single:.2f}x")
    print(
        f"  contended default policy / uncontended 1 thread: {busy / single:.2f}x   "
        "(target <= 1.2x)"
    )
    print(f"  contended forced {threads} threads / uncontended 1 thread: {forced / single:.2f}x")


def main() -> None:
    """Measure in a fresh interpreter that imports likelab first, as a user's script does: the
    OpenMP settings likelab makes before torch loads (``likelab._runtime``) then apply, whatever
    this process imported before (``benchmarks/run.py`` imports every benchmark)."""
    root = Path(__file__).resolve().parent.parent
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")])),
    }
    child = "import likelab\nfrom benchmarks.bench_contention import measure\nmeasure()\n"
    subprocess.run([sys.executable, "-c", child], env=env, check=True)


if __name__ == "__main__":
    main()
