"""The scorecard's running time against its targets (issue 15), each measured here, cold.

- ``--quick`` for one objective (``phi:-p**0.3``, with the references log and linear): target
  under 60 s on 2 cores;
- the full scorecard for one objective: target under 5 minutes;
- the process pool (2 workers) against the local executor on the simulation parts (landscape
  and classification units, and the efficiency study) at full sizes: target at least 1.7x (the
  full scorecard's time is that local run plus the theory parts');
- ``--all`` (the atlas, full sizes): target under 30 minutes. It runs only with
  ``LIKELAB_BENCH_ATLAS=1`` (it takes that long); otherwise it is printed as not measured.

Every run starts from an empty store (a resumed run would time nothing). The figures are wall
times of :func:`likelab.scorecard.core.scorecard`, the library call behind the command.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

from benchmarks._timing import fmt_seconds
from likelab.scorecard.core import atlas_objectives, scorecard

OBJECTIVE = "phi:-p**0.3"


def _timed(objectives, **kwargs) -> tuple[float, int]:
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        result = scorecard(objectives, store=Path(tmp) / "scorecard.duckdb", **kwargs)
        return time.perf_counter() - start, result.units_total


def _line(label: str, seconds: float, target: float, units: int) -> None:
    verdict = "met" if seconds < target else "NOT met"
    print(
        f"  {label}: {fmt_seconds(seconds)} for {units} units   (target < {fmt_seconds(target)}: "
        f"{verdict})",
        flush=True,
    )


def main() -> None:
    seconds, units = _timed([OBJECTIVE], quick=True)
    _line(f"--quick, one objective ({OBJECTIVE}, with log and linear)", seconds, 60.0, units)

    # the full scorecard of one objective, in two runs that together are the whole: the
    # simulation parts (timed on both executors) and the theory parts
    sim = ["landscape", "classification", "efficiency"]
    theory = ["properness", "robustness"]
    local, sim_units = _timed([OBJECTIVE], quick=False, parts=sim, executor="local")
    pooled, _ = _timed([OBJECTIVE], quick=False, parts=sim, executor="process", workers=2)
    rest, rest_units = _timed([OBJECTIVE], quick=False, parts=theory, executor="local")
    ratio = local / pooled
    print(
        f"  simulation parts, full sizes: local {fmt_seconds(local)}, process pool (2 workers) "
        f"{fmt_seconds(pooled)}: {ratio:.2f}x   (target >= 1.7x: "
        f"{'met' if ratio >= 1.7 else 'NOT met'})",
        flush=True,
    )
    _line(
        f"full, one objective ({OBJECTIVE}, with log and linear; local: simulation parts "
        f"{fmt_seconds(local)} + theory parts {fmt_seconds(rest)})",
        local + rest,
        300.0,
        sim_units + rest_units,
    )

    if os.environ.get("LIKELAB_BENCH_ATLAS") == "1":
        seconds, units = _timed(atlas_objectives(), quick=False, executor="process")
        _line(f"--all, the atlas ({len(atlas_objectives())} objectives)", seconds, 1800.0, units)
    else:
        print(
            "  --all (the atlas, full sizes): not measured in this run; "
            "LIKELAB_BENCH_ATLAS=1 measures it   (target < 30 min)",
            flush=True,
        )


if __name__ == "__main__":
    main()
