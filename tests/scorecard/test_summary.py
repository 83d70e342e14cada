"""The scorecard's summary row and the efficiency-robustness Pareto front.

Oracle for the front: a brute-force check of the definition (no point of the front is
dominated by any point; every point off the front is dominated by one on it) on random point
sets, including ties and left-out points.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from likelab.scorecard.summary import SUMMARY_KEYS, pareto_front, summary_row


def _dominates(a, b, maximise=(True, False)) -> bool:
    ge = [(x >= y) if m else (x <= y) for x, y, m in zip(a, b, maximise, strict=True)]
    return all(ge) and tuple(a) != tuple(b)


@pytest.mark.parametrize("seed", range(6))
def test_the_front_is_exactly_the_non_dominated_points(seed):
    rng = np.random.default_rng(seed)
    pts = [tuple(map(float, rng.integers(0, 6, 2))) for _ in range(25)]  # many ties
    pts[3] = (math.nan, 1.0)
    pts[7] = (0.5, math.inf)
    pts[9] = (None, 2.0)
    front, left_out = pareto_front(pts)
    assert left_out == {3: "efficiency is nan", 7: "robustness is inf", 9: "efficiency is missing"}
    usable = [i for i in range(len(pts)) if i not in left_out]
    for i in usable:
        dominated = any(_dominates(pts[j], pts[i]) for j in usable if j != i)
        assert (i in front) == (not dominated)
    assert [pts[i][0] for i in front] == sorted(pts[i][0] for i in front)


def test_the_front_respects_the_direction_of_each_axis():
    pts = [(1.0, 1.0), (2.0, 2.0)]
    assert pareto_front(pts)[0] == [0, 1]  # more efficient but less robust: both on it
    assert pareto_front(pts, maximise=(True, True))[0] == [1]
    assert pareto_front(pts, maximise=(False, False))[0] == [0]


def test_the_summary_row_has_every_key_and_says_why_one_is_missing():
    row = summary_row(
        "linear",
        {
            "properness": {"proper": "improper"},
            "efficiency": {"min_are": None, "min_are_reason": "no θ* with the scale free"},
            "robustness": {"bounded_influence": True, "max_bias_10": 0.1},
        },
    )
    assert [k for k in SUMMARY_KEYS if k not in row] == []
    assert row["proper"] == "improper" and row["bounded_influence"] is True
    assert row["min_are_reason"] == "no θ* with the scale free"
    assert row["prob_gap"] is None and row["prob_gap_reason"] == "no part gave prob_gap"
    assert row["max_bias_10"] == 0.1
    with pytest.raises(ValueError, match="given by both"):
        summary_row("x", {"a": {"min_are": 1.0}, "b": {"min_are": 0.5}})
