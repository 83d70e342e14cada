"""Ten million paired fits: the study engine at scale, its time and the memory of its processes.

One study, normal data (loc 0, scale 1), n = 20, the normal location-scale model fitted to each
dataset with ``log`` and with ``dpd:beta=0.5`` (paired: both on the same datasets), R =
10,000,000 datasets in cells of 50,000 (200 cells; 2·10⁷ fits, 4·10⁷ result rows), runs with
the ``process`` executor and 2 workers in a fresh Python process. A *paired fit* is one
dataset fitted with both objectives; n = 20 is the small sample of the other study benchmarks,
where what a fit costs besides its arithmetic weighs most. Printed:

- the wall time of ``run_study`` (workers' start included; target < 5 min);
- the peak memory of the whole process tree (the study's process and its workers): the largest
  sum of their resident sets, sampled every 0.2 s, and, as an upper bound that no sampling can
  miss, the sum of each process's own peak (``VmHWM``; target < 2 GB);
- the CPU time of the workers and of the writing process (per replicate), and how busy the
  two cores were over the wall time (on a shared machine, below 100%);
- a check of the store: every cell there, and for each (objective, parameter) exactly one row
  per replicate 0 … R-1;
- the time and peak memory of :func:`likelab.study.summarise` on the store (fresh process);
- where a replicate's time goes, on one core, from a few cells of the same study: data
  generation, the ``log`` fit, the ``dpd`` fit, the rest of the cell's work (its rows), the
  trip from a worker (pickling) and the write to the store (µs per replicate).

``LIKELAB_BENCH_STUDY_REPLICATES`` sets R (e.g. ``1000000`` for a quick check; the time target
is then scaled by R / 10⁷, the memory target is not).

Cells of 50,000 replicates hold 200,000 result rows: more than one DuckDB row group (122,880
rows), so a committed cell is written straight to the database file instead of through the
write-ahead log and a later checkpoint (measured: 1.7 against 4.7 µs of the writer's CPU per
replicate with cells of 10,000).

The memory does not grow with R: a worker holds one cell, the writer's DuckDB buffer pool is
capped (128 MB), and the results stream to the store cell by cell (measured: 1,409 MiB at
R = 10⁶, 1,387 MiB at 2·10⁶, the processes' peaks summed).
"""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path

import duckdb

FULL = 10_000_000
BLOCK = 50_000
N = 20
OBJECTIVES = ("log", "dpd:beta=0.5")
TARGET_SECONDS = 300.0
TARGET_MIB = 2048.0

STUDY = """
name: scale
seed: 16
dgps:
  - family: normal
    params: {{loc: 0, scale: 1}}
sample_sizes: [{n}]
replicates: {replicates}
block: {block}
model: {{family: normal}}
objectives: [log, "dpd:beta=0.5"]
"""

CHILD = """
import json, os, sys, time
from likelab.study import load_study, run_study
start = time.perf_counter()
report = run_study(load_study(sys.argv[1]), sys.argv[2], executor="process", workers=2)
t = os.times()
print(json.dumps({"fits": report.fits, "cells": report.cells_run,
                  "seconds": time.perf_counter() - start, "cpu_self": t.user + t.system,
                  "cpu_workers": t.children_user + t.children_system}))
"""

SUMMARY = """
import json, sys, time
from likelab.study import summarise
start = time.perf_counter()
rows = summarise(sys.argv[1])
status = open("/proc/self/status").read()
print(json.dumps({"rows": len(rows), "seconds": time.perf_counter() - start,
                  "peak_mib": int(status.split("VmHWM:")[1].split()[0]) / 1024}))
"""


def replicates() -> int:
    """R: ``LIKELAB_BENCH_STUDY_REPLICATES`` or ten million."""
    return int(os.environ.get("LIKELAB_BENCH_STUDY_REPLICATES", FULL))


def _hwm_kib(pid: int) -> int | None:
    """The process's peak resident set (``VmHWM``, Linux), KiB; None where unknown."""
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def _role(p, root: int) -> str:
    """What a process of the study's tree is: the study, a worker, a helper."""
    if p.pid == root:
        return "study"
    try:
        line = " ".join(p.cmdline())
    except Exception:
        return "other"
    if "resource_tracker" in line:
        return "tracker"
    return "worker" if "spawn_main" in line else "other"


class TreeMemory:
    """Samples the resident memory of a process and all its descendants every ``interval``
    seconds, in a thread: the peak of their sum, and each process's last seen ``VmHWM``."""

    def __init__(self, pid: int, interval: float = 0.2):
        import psutil

        self.root = psutil.Process(pid)
        self.interval = interval
        self.peak_sum = 0
        self.hwm: dict[int, int] = {}
        self.names: dict[int, str] = {}
        self.processes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> TreeMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        import psutil

        while not self._stop.is_set():
            try:
                procs = [self.root, *self.root.children(recursive=True)]
            except psutil.Error:
                break
            total = 0
            for p in procs:
                try:
                    total += p.memory_info().rss
                except psutil.Error:
                    continue
                hwm = _hwm_kib(p.pid)
                if hwm is not None:
                    self.hwm[p.pid] = max(self.hwm.get(p.pid, 0), hwm * 1024)
                if p.pid not in self.names:
                    self.names[p.pid] = _role(p, self.root.pid)
            self.processes = max(self.processes, len(procs))
            self.peak_sum = max(self.peak_sum, total)
            self._stop.wait(self.interval)


def check_store(path: Path, r: int) -> tuple[bool, str]:
    """Whether the store holds every cell and, per (objective, parameter), exactly the
    replicates 0 … r-1 once each; and a line saying what it holds."""
    cells = -(-r // BLOCK)
    with duckdb.connect(str(path), read_only=True) as con:
        n_cells, n_reps = con.execute("SELECT count(*), sum(replicates) FROM cells").fetchone()
        groups = con.execute(
            "SELECT objective, parameter, count(*), count(DISTINCT replicate), min(replicate), "
            "max(replicate), avg(converged::INT) FROM results GROUP BY ALL ORDER BY ALL"
        ).fetchall()
    expected = {(o, p) for o in OBJECTIVES for p in ("loc", "scale")}
    ok = (
        n_cells == cells
        and n_reps == r
        and {(g[0], g[1]) for g in groups} == expected
        and all(g[2] == g[3] == r and g[4] == 0 and g[5] == r - 1 for g in groups)
    )
    converged = ", ".join(f"{o} {100 * c:.3f}%" for o, p, *_, c in groups if p == "loc")
    rows = sum(g[2] for g in groups)
    return ok, f"{n_cells} cells, {rows:,} rows; converged: {converged}"


def breakdown(folder: Path, cells_timed: int = 5) -> dict[str, float]:
    """µs per replicate, on one core, of each step of a cell of the study (the median over
    ``cells_timed`` cells, after one warm-up cell)."""
    import torch

    from likelab.estimate import fit
    from likelab.study import load_study
    from likelab.study.design import cells, generate
    from likelab.study.runner import run_cell
    from likelab.study.store import Store

    torch.set_num_threads(1)
    path = folder / "breakdown.yaml"
    path.write_text(textwrap.dedent(STUDY.format(n=N, replicates=BLOCK * 8, block=BLOCK)))
    spec = load_study(path)
    grid = cells(spec)
    run_cell(spec, grid[0])
    per: dict[str, list[float]] = {}
    with Store(folder / "breakdown.duckdb", spec) as store:
        for cell in grid[1 : 1 + cells_timed]:
            t: dict[str, float] = {}
            t0 = time.perf_counter()
            y, seed = generate(spec.seed, cell)
            t["generation"] = time.perf_counter() - t0
            for name, obj in zip(("fit log", "fit dpd"), OBJECTIVES, strict=True):
                t0 = time.perf_counter()
                fit(y, "normal", obj, seed=seed, dtype=torch.float64)
                t[name] = time.perf_counter() - t0
            t0 = time.perf_counter()
            rows, _ = run_cell(spec, cell)
            cell_seconds = time.perf_counter() - t0
            # the rest of run_cell (its rows): a difference of timings, noisy (can be < 0)
            t["rest of the cell"] = cell_seconds - t["generation"] - t["fit log"] - t["fit dpd"]
            t0 = time.perf_counter()
            pickle.loads(pickle.dumps(rows, protocol=pickle.HIGHEST_PROTOCOL))
            t["pickling"] = time.perf_counter() - t0
            t0 = time.perf_counter()
            store.write_cell(cell, rows, cell_seconds)
            t["storage"] = time.perf_counter() - t0
            for k, v in t.items():
                per[k] = [*per.get(k, []), v / cell.replicates * 1e6]
    # the median over cells: the best of each step would not add up to a cell
    return {k: sorted(v)[len(v) // 2] for k, v in per.items()}


def main() -> None:
    r = replicates()
    target = TARGET_SECONDS * r / FULL
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        study = folder / "scale.yaml"
        study.write_text(textwrap.dedent(STUDY.format(n=N, replicates=r, block=BLOCK)))
        store = folder / "scale.duckdb"
        env = dict(os.environ, OMP_NUM_THREADS="1")
        proc = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(study), str(store)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        with TreeMemory(proc.pid) as memory:
            out, err = proc.communicate()
        if proc.returncode != 0:
            raise RuntimeError(f"the study failed:\n{err}")
        m = json.loads(out.strip().splitlines()[-1])
        print(
            f"  {r:,} datasets of n = {N}, normal model, log and dpd:beta=0.5 (paired): "
            f"{m['fits']:,} fits, {m['cells']} cells of {BLOCK:,}, process executor, 2 workers"
        )
        print(
            f"  wall time {m['seconds']:.1f} s ({m['fits'] / m['seconds']:,.0f} fits/s, "
            f"{m['seconds'] / r * 1e6:.2f} µs per paired fit) (target < {target:.0f} s)"
        )
        cpu = m["cpu_self"] + m["cpu_workers"]
        print(
            f"  CPU: workers {m['cpu_workers'] / r * 1e6:.2f} µs per replicate, the writing "
            f"process {m['cpu_self'] / r * 1e6:.2f} µs; {100 * cpu / (2 * m['seconds']):.0f}% "
            "of 2 cores over the wall time (below 100%: idle, or taken by other processes); "
            f"on 2 cores of its own at least {cpu / 2:.1f} s"
        )
        mib = 1024 * 1024
        print(
            f"  peak memory of the process tree ({memory.processes} processes): "
            f"{memory.peak_sum / mib:,.0f} MiB sampled, at most "
            f"{sum(memory.hwm.values()) / mib:,.0f} MiB (sum of each one's VmHWM: "
            + ", ".join(
                f"{memory.names.get(pid, '?')} {v / mib:,.0f}" for pid, v in memory.hwm.items()
            )
            + f") (target < {TARGET_MIB:.0f} MiB)"
        )
        ok, what = check_store(store, r)
        print(f"  store {store.stat().st_size / mib:,.0f} MiB: {what}")
        print(f"  every replicate's results in the store: {ok}")
        out = subprocess.run(
            [sys.executable, "-c", SUMMARY, str(store)],
            capture_output=True,
            text=True,
            check=True,
            env=env,
        )
        s = json.loads(out.stdout.strip().splitlines()[-1])
        print(
            f"  summary of the store ({s['rows']} rows of measures, fresh process): "
            f"{s['seconds']:.1f} s, peak memory {s['peak_mib']:,.0f} MiB (target < "
            f"{TARGET_MIB:.0f} MiB)"
        )
        steps = breakdown(folder)
        total = sum(steps.values())
        print(
            "  one core, µs per replicate (median of 5 cells): "
            + ", ".join(f"{k} {v:.2f}" for k, v in steps.items())
            + f"; total {total:.2f}"
        )
