"""Process set-up that likelab's numbers depend on.

PyTorch 2.x (seen with 2.13, CPU, two intra-op threads) can compute the first parallel
elementwise operation of a process differently on its worker thread: the first ``torch.log`` of a
3,000-element float64 tensor in a fresh process returns, in about a third of processes, values
for the worker's half that differ in the last bits from every later call's (1,323 of 1,500
elements, all of them further from the correctly rounded logarithm), while every later call agrees
with the single-threaded result. A process-pool worker's first fit, or the first expected score
of a session, would then not be reproducible bit for bit. One parallel operation at import,
before any of the user's numbers, starts the thread pool so that every computation after it runs
in the steady state.

Before torch is loaded, ``OMP_WAIT_POLICY`` defaults to ``PASSIVE``: OpenMP's worker threads
then sleep at the end of a parallel region instead of spinning for the next one. Spinning pays
on a dedicated machine; on a shared one a spinning thread burns the time slice that the thread it
waits for needs (measured with 2 threads and one competing busy process, load 5-7: 1.4-3.4 ms
per Student-t fit spinning, 0.18-0.24 ms sleeping, 0.19 ms on one thread). libgomp reads the
variable once, when torch loads it: a value set by the user is kept, and where torch was
imported before likelab the setting cannot apply (set it in the environment then).
"""

from __future__ import annotations

import os
import sys

if "torch" not in sys.modules:  # libgomp reads it when torch loads it
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch

__all__ = ["start_intra_op_threads"]

#: Elements of the start-up operation: above the intra-op grain size (32,768), so that it is
#: split over every thread.
_WARM_ELEMENTS = 1 << 16


def start_intra_op_threads() -> None:
    """Run one parallel elementwise operation, so that the intra-op worker threads exist and
    are in their steady state before likelab computes anything (see the module docstring)."""
    if torch.get_num_threads() > 1:
        torch.ones(_WARM_ELEMENTS, dtype=torch.float64).log_()


start_intra_op_threads()  # at import: likelab/__init__ imports this module first
