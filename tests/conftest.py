"""Shared test settings: a non-interactive matplotlib backend, one torch thread per xdist worker."""

import os

os.environ.setdefault("MPLBACKEND", "Agg")

if os.environ.get("PYTEST_XDIST_WORKER"):
    # `make test` runs one worker per core; torch's own intra-op threads on top of that would
    # oversubscribe the cores (measured: a test directory 7x slower).
    import torch

    torch.set_num_threads(1)
