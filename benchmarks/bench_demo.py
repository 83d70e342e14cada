"""The report: ``likelab demo --quick`` and ``likelab demo``, wall time against their budgets.

Each runs in a fresh process (as a newcomer runs it: imports included) into a temporary folder,
with the per-step times printed from the demo's own progress callback. Targets (issue 7, on 2
cores): the quick demo under 60 s, the full demo under 300 s (``make demo`` adds the install).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time

CHILD = """
import json, sys, time
from likelab.report.demo import run_demo
marks = []
start = time.perf_counter()
report = run_demo(sys.argv[1], quick=sys.argv[2] == "quick",
                  on_step=lambda done, total, label: marks.append((label, time.perf_counter())))
marks.append(("end", time.perf_counter()))
steps = {a[0]: b[1] - a[1] for a, b in zip(marks, marks[1:])}
print(json.dumps({"seconds": report.seconds, "steps": steps}))
"""


def main() -> None:
    for mode, budget in (("quick", 60.0), ("full", 300.0)):
        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            out = subprocess.run(
                [sys.executable, "-c", CHILD, tmp, mode],
                capture_output=True,
                text=True,
                check=True,
            )
            wall = time.perf_counter() - start
        m = json.loads(out.stdout.strip().splitlines()[-1])
        steps = ", ".join(f"{k} {v:.1f} s" for k, v in m["steps"].items())
        print(f"  demo ({mode}): {wall:.1f} s in a fresh process (target < {budget:.0f} s)")
        print(f"    {steps}")
