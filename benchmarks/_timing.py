"""Timing helpers for the benchmarks: best-of-k wall time, printed ratios."""

from __future__ import annotations

import time
from collections.abc import Callable


def best_time(fn: Callable[[], object], *, repeat: int = 5, min_time: float = 0.2) -> float:
    """The best wall time of ``fn()`` over ``repeat`` rounds (each round loops to ``min_time``)."""
    fn()  # warm-up
    best = float("inf")
    for _ in range(repeat):
        loops, start = 0, time.perf_counter()
        while True:
            fn()
            loops += 1
            elapsed = time.perf_counter() - start
            if elapsed >= min_time:
                break
        best = min(best, elapsed / loops)
    return best


def fmt_seconds(t: float) -> str:
    """``t`` seconds in the most readable unit."""
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6)):
        if t >= scale:
            return f"{t / scale:.3g} {unit}"
    return f"{t / 1e-9:.3g} ns"
