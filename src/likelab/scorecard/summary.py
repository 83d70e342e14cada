"""The scorecard's summary: one row per objective, and the efficiency-robustness Pareto front.

Each part's ``summarise(rows)`` gives the summary entries it owns (SCORECARD contract:
properness → ``proper``; efficiency → ``min_are``; robustness → ``bounded_influence`` and the
bias under contamination; landscape → ``multimodal_rate``; classification → ``prob_gap``).
:func:`summary_row` joins them, and :func:`pareto_front` finds the objectives that no other
objective beats on both axes of the efficiency-against-robustness figure.

A position needs evidence: an objective whose efficiency or robustness is missing or not finite
has no place on the front, and says why, instead of being drawn at an invented value.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["SUMMARY_KEYS", "pareto_front", "summary_row"]

#: The summary's keys, in the order of the page's table (the issue's JSON ``summary``).
SUMMARY_KEYS = ("proper", "min_are", "bounded_influence", "multimodal_rate", "prob_gap")


def summary_row(objective: str, parts: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """The summary of ``objective`` from its parts' summaries (``{part: summarise(rows)}``).

    Every key of :data:`SUMMARY_KEYS` is present: a part that did not run, or gave no value,
    leaves ``None`` there and its reason under ``KEY_reason``. Entries beyond those keys (a
    part's own extras, e.g. ``max_bias_10``) are kept. Two parts giving the same key is a
    programming error and raises.

    >>> summary_row("log", {"efficiency": {"min_are": 1.0}})["min_are"]
    1.0
    >>> summary_row("log", {})["proper_reason"]
    'no part gave proper'
    """
    row: dict[str, Any] = {"objective": objective}
    owner: dict[str, str] = {}
    for part, entries in parts.items():
        for key, value in entries.items():
            if key in owner:
                raise ValueError(f"summary key {key!r} given by both {owner[key]} and {part}")
            owner[key] = part
            row[key] = value
    for key in SUMMARY_KEYS:
        if key not in row:
            row[key] = None
            row.setdefault(f"{key}_reason", f"no part gave {key}")
    return row


def pareto_front(
    points: Sequence[tuple[float | None, float | None]],
    *,
    maximise: tuple[bool, bool] = (True, False),
) -> tuple[list[int], dict[int, str]]:
    """The indices of the points that no other point dominates, and why the others that have no
    position are left out.

    ``points[i] = (x, y)``; with the default ``maximise=(True, False)`` a point is better for a
    larger x (efficiency, e.g. the worst-case ARE) and a smaller y (a robustness cost, e.g. the
    bias under 10% contamination). Point j dominates i when it is at least as good on both axes
    and better on one (Pareto 1906; Deb 2001, *Multi-objective optimization using evolutionary
    algorithms*, def. 2.4). Points with a missing or non-finite coordinate are not on the figure:
    they appear in the second result with the reason. Equal points are all on the front. The
    front is returned in increasing x.

    >>> pareto_front([(1.0, 5.0), (0.6, 1.0), (0.5, 2.0), (None, 1.0)])
    ([1, 0], {3: 'efficiency is missing'})
    """
    names = ("efficiency", "robustness")
    left_out: dict[int, str] = {}
    usable: list[int] = []
    for i, point in enumerate(points):
        why = ""
        for axis, value in zip(names, point, strict=True):
            if value is None:
                why = f"{axis} is missing"
            elif not math.isfinite(float(value)):
                why = f"{axis} is {float(value)}"
            if why:
                break
        if why:
            left_out[i] = why
        else:
            usable.append(i)

    def better_or_equal(a: float, b: float, bigger: bool) -> bool:
        return a >= b if bigger else a <= b

    front = []
    for i in usable:
        xi, yi = (float(v) for v in points[i])
        dominated = False
        for j in usable:
            if j == i:
                continue
            xj, yj = (float(v) for v in points[j])
            if (
                better_or_equal(xj, xi, maximise[0])
                and better_or_equal(yj, yi, maximise[1])
                and (xj, yj) != (xi, yi)
            ):
                dominated = True
                break
        if not dominated:
            front.append(i)
    front.sort(key=lambda i: (float(points[i][0]), float(points[i][1])))
    return front, left_out
