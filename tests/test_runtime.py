"""likelab._runtime: the first parallel operation of a process gives the steady-state numbers.

Without the start-up operation, torch 2.13 (CPU, two intra-op threads) computes the first
``torch.log`` of a 3,000-element tensor in a fresh process differently on its worker thread in
about a third of processes (last bits of 1,323 of 1,500 elements): a process-pool worker's first
numbers would not be reproducible. Several fresh processes, one after another (the fault is a
race at the pool's start and hides when the cores are busy), must all produce the bytes of a
single-threaded process.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys

CHILD = """
import sys, hashlib, numpy, torch
torch.set_num_threads(int(sys.argv[1]))
import likelab  # noqa: F401  (its import starts the threads)
x = torch.as_tensor(numpy.random.default_rng(0).uniform(0.0, 1.0, 3000))  # no torch op yet
first, again = torch.log(x), torch.log(x)
assert torch.equal(first, again), int((first != again).sum())
print(hashlib.sha256(first.numpy().tobytes()).hexdigest())
"""


def test_the_first_parallel_numbers_of_a_process_are_the_single_threaded_ones():
    env = {**os.environ, "OMP_NUM_THREADS": "2"}
    digests = []
    for threads in (1, 2, 2, 2, 2, 2, 2):  # one after another: the fault is a race
        proc = subprocess.run(
            [sys.executable, "-c", CHILD, str(threads)],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
        )
        assert proc.returncode == 0, proc.stderr
        digests.append(proc.stdout.strip())
    assert len(set(digests)) == 1, digests
    assert len(digests[0]) == len(hashlib.sha256().hexdigest())


WAIT = """
import os, sys
if sys.argv[1] == "torch-first":
    import torch  # noqa: F401
import likelab  # noqa: F401
print(os.environ.get("OMP_WAIT_POLICY", "unset"))
"""


def test_openmp_threads_sleep_when_idle_unless_the_user_says_otherwise():
    """OMP_WAIT_POLICY defaults to PASSIVE when likelab loads torch; a user's value is kept, and
    it is not touched once torch (and its OpenMP runtime) is loaded."""
    base = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    for order, env, want in [
        ("likelab-first", base, "PASSIVE"),
        ("likelab-first", {**base, "OMP_WAIT_POLICY": "ACTIVE"}, "ACTIVE"),
        ("torch-first", base, "unset"),
    ]:
        cmd = [sys.executable, "-c", WAIT, order]
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.strip() == want, (order, env.get("OMP_WAIT_POLICY"))
