"""Shared test settings: a non-interactive matplotlib backend for every figure test."""

import os

os.environ.setdefault("MPLBACKEND", "Agg")
