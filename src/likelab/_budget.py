"""Memory and time budgets: estimate what a computation needs *before* allocating it.

A grid of 10⁵ × 10⁵ points, a sample of 10⁹ observations or 10⁹ starting points do not fail
quickly by themselves: they allocate until the machine swaps or the kernel kills the process. The
CLI and the library estimate the memory first and refuse, with the estimate in the message, what
cannot fit under :func:`memory_limit`: half the machine's physical memory, or the
``LIKELAB_MEMORY_LIMIT`` environment variable (bytes, or a number with a unit: ``12GB``,
``512MB``).
"""

from __future__ import annotations

import os
import re

from likelab.errors import ParameterError

__all__ = ["check_memory", "format_bytes", "format_seconds", "memory_limit"]

_UNITS = {"": 1, "B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12}
_UNITS.update({"KIB": 2**10, "MIB": 2**20, "GIB": 2**30, "TIB": 2**40})


def memory_limit() -> int:
    """The most bytes one computation may need: ``LIKELAB_MEMORY_LIMIT`` if set, else half the
    physical memory (8 GB where the platform does not say)."""
    text = os.environ.get("LIKELAB_MEMORY_LIMIT", "").strip()
    if text:
        m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([A-Za-z]*)", text)
        unit = m.group(2).upper() if m else None
        if m is None or unit not in _UNITS or float(m.group(1)) <= 0:
            raise ParameterError(
                f"LIKELAB_MEMORY_LIMIT={text!r} is not a size; use e.g. 12GB, 512MB or bytes"
            )
        return int(float(m.group(1)) * _UNITS[unit])
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2
    except (AttributeError, ValueError, OSError):  # pragma: no cover - non-POSIX
        return 8 * 10**9


def format_bytes(n: float) -> str:
    """``75_000_000_000`` -> ``'75 GB'`` (decimal units, 2 significant digits at least)."""
    for unit, size in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if n >= size:
            value = n / size
            return f"{value:.0f} {unit}" if value >= 10 else f"{value:.1f} {unit}"
    return f"{n:.0f} B"


def format_seconds(s: float) -> str:
    """``5400`` -> ``'1.5 h'``."""
    for unit, size in (("years", 365.25 * 86400), ("days", 86400.0), ("h", 3600.0), ("min", 60.0)):
        if s >= size:
            return f"{s / size:.3g} {unit}"
    return f"{s:.2g} s"


def check_memory(nbytes: float, *, what: str, seconds: float | None = None) -> None:
    """Raise :class:`~likelab.errors.ParameterError` if ``nbytes`` exceeds :func:`memory_limit`,
    naming ``what`` (e.g. ``"the 100000 x 100000 grid"``), the estimate and the limit."""
    limit = memory_limit()
    if nbytes > limit:
        took = f" and about {format_seconds(seconds)}" if seconds is not None else ""
        source = (
            "set by LIKELAB_MEMORY_LIMIT"
            if os.environ.get("LIKELAB_MEMORY_LIMIT", "").strip()
            else "half the machine's memory; LIKELAB_MEMORY_LIMIT changes it"
        )
        raise ParameterError(
            f"{what} needs about {format_bytes(nbytes)} of memory{took} "
            f"(limit {format_bytes(limit)}, {source}); make it smaller"
        )
