"""Simulation-study executors, and a million fits in bounded memory.

One study (normal data at 4 parameter points, n = 20 and 50, 50,000 replicates in blocks of
1,000: 400 cells, 800,000 fits of the normal model with ``log`` and ``dpd:beta=0.5``) is run, in
the same process, with the ``local`` executor, with ``process`` and 2 workers, and with ``dask``
and an embedded LocalCluster of 2 workers; each run writes a fresh store, and the printed time
includes starting the workers. The results of the three runs are checked to be bit-identical.
Targets: process at least 1.7x local, dask within 15% of process.

Then a study of one million fits (2 DGP points, n = 20, 250,000 replicates, 2 objectives, 50
cells of 10,000) runs in a fresh subprocess with the ``local`` executor; its peak resident memory
(``VmHWM`` in ``/proc/self/status``; not ``ru_maxrss``, which Linux carries over from the parent
across ``exec``) must stay under 2 GB: results go to the store cell by cell and never
accumulate in memory.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import duckdb

from likelab.study import load_study, run_study

STUDY = """
name: bench
seed: 1
dgps:
  - family: normal
    params: {loc: [0, 1], scale: [1, 3]}
sample_sizes: [20, 50]
replicates: 50000
block: 1000
model: {family: normal}
objectives: [log, "dpd:beta=0.5"]
"""

MILLION = """
name: million
seed: 2
dgps:
  - family: normal
    params: {loc: 0, scale: [1, 2]}
sample_sizes: [20]
replicates: 250000
block: 10000
model: {family: normal}
objectives: [log, "dpd:beta=0.5"]
"""

CHILD = """
import json, sys, time
from likelab.study import load_study, run_study
start = time.perf_counter()
report = run_study(load_study(sys.argv[1]), sys.argv[2], executor="local")
status = open("/proc/self/status").read()
peak_kib = int(status.split("VmHWM:")[1].split()[0])
print(json.dumps({"fits": report.fits, "seconds": time.perf_counter() - start,
                  "peak_mib": peak_kib / 1024}))
"""


def _rows(store: Path) -> list:
    with duckdb.connect(str(store), read_only=True) as con:
        return con.execute(
            "SELECT cell_key, objective, parameter, replicate, estimate, se, value, converged "
            "FROM results ORDER BY ALL"
        ).fetchall()


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        path = folder / "bench.yaml"
        path.write_text(textwrap.dedent(STUDY))
        spec = load_study(path)
        rates, stores = {}, {}
        for name, kwargs in (
            ("local", {}),
            ("process", {"workers": 2}),
            ("dask", {"workers": 2}),
        ):
            stores[name] = folder / f"{name}.duckdb"
            start = time.perf_counter()
            report = run_study(spec, stores[name], executor=name, **kwargs)
            seconds = time.perf_counter() - start
            rates[name] = report.fits / seconds
            print(
                f"  {name:8s} {report.fits:,} fits in {seconds:6.2f} s: {rates[name]:10,.0f} fits/s"
            )
        same = _rows(stores["local"]) == _rows(stores["process"]) == _rows(stores["dask"])
        print(f"  results bit-identical across the three executors: {same}")
        print(
            f"  process (2 workers) / local: {rates['process'] / rates['local']:.2f}x "
            "(target >= 1.7x)"
        )
        print(
            f"  dask (2 workers) / process (2 workers): {rates['dask'] / rates['process']:.2f} "
            "(target >= 0.85)"
        )

        million = folder / "million.yaml"
        million.write_text(textwrap.dedent(MILLION))
        out = subprocess.run(
            [sys.executable, "-c", CHILD, str(million), str(folder / "million.duckdb")],
            capture_output=True,
            text=True,
            check=True,
        )
        m = json.loads(out.stdout.strip().splitlines()[-1])
        print(
            f"  one million fits (local executor, fresh process): {m['fits']:,} fits in "
            f"{m['seconds']:.1f} s ({m['fits'] / m['seconds']:,.0f} fits/s), peak memory "
            f"{m['peak_mib']:,.0f} MiB (target < 2048 MiB)"
        )
