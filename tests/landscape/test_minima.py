"""find_local_minima against hand-made cases and an independent BFS flood-fill reference."""

from __future__ import annotations

import itertools
from collections import deque

import numpy as np
import pytest

from likelab.errors import DataError
from likelab.landscape import find_local_minima


# ---------------------------------------------------------------------- reference
def _reference(values: np.ndarray) -> list[frozenset[tuple[int, ...]]]:
    """Plateau minima by brute force: flood-fill every equal-valued connected region (BFS over
    the 3^d - 1 neighbours), keep those whose outside neighbours are all strictly greater.
    NaN is +inf. Pure Python, independent of scipy.ndimage."""
    v = np.where(np.isnan(values), np.inf, values)
    shape = v.shape
    offsets = [d for d in itertools.product((-1, 0, 1), repeat=v.ndim) if any(d)]

    def neighbours(p):
        for d in offsets:
            q = tuple(a + b for a, b in zip(p, d, strict=True))
            if all(0 <= c < s for c, s in zip(q, shape, strict=True)):
                yield q

    seen: set[tuple[int, ...]] = set()
    minima = []
    for start in itertools.product(*(range(s) for s in shape)):
        if start in seen:
            continue
        region = {start}
        queue = deque([start])
        seen.add(start)
        while queue:
            p = queue.popleft()
            for q in neighbours(p):
                if q not in region and v[q] == v[start]:
                    region.add(q)
                    seen.add(q)
                    queue.append(q)
        if all(v[q] > v[start] for p in region for q in neighbours(p) if q not in region):
            minima.append(frozenset(region))
    return minima


def _centre_point(region: frozenset[tuple[int, ...]]) -> tuple[int, ...]:
    """The point of the region nearest its centroid, first in C order on ties (exact integer
    arithmetic: m² |p - S/m|² = |m p - S|²)."""
    pts = sorted(region)
    m = len(pts)
    total = [sum(p[a] for p in pts) for a in range(len(pts[0]))]
    return min(pts, key=lambda p: sum((m * c - s) ** 2 for c, s in zip(p, total, strict=True)))


def _check_against_reference(values: np.ndarray) -> None:
    got = find_local_minima(values)
    ref = _reference(values)
    assert len(got) == len(ref)
    by_point = {p: r for r in ref for p in r}
    regions = [by_point[index] for index, _ in got]
    assert len(set(regions)) == len(ref)  # one representative per reference minimum
    for (index, size), region in zip(got, regions, strict=True):
        assert size == len(region)
        assert index == _centre_point(region)
    key = np.where(np.isnan(values), np.inf, values)
    order = [(key[i], i) for i, _ in got]
    assert order == sorted(order)


# ---------------------------------------------------------------------- hand-made 1-D
def test_1d_plateau_and_strict_minimum():
    # plateau {3, 4} at value 0 (representative: first of the two central points), then 1 at 1
    assert find_local_minima(np.array([3.0, 1.0, 2.0, 0.0, 0.0, 5.0])) == [((3,), 2), ((1,), 1)]


def test_1d_boundary_minima():
    assert find_local_minima(np.array([0.0, 1.0, 2.0])) == [((0,), 1)]
    assert find_local_minima(np.array([2.0, 1.0, 0.0])) == [((2,), 1)]
    assert find_local_minima(np.array([0.0, 1.0, 0.5])) == [((0,), 1), ((2,), 1)]


def test_1d_shelf_is_not_a_minimum():
    # the flat step {1, 2} has a strictly smaller neighbour at 3: not a minimum
    assert find_local_minima(np.array([3.0, 2.0, 2.0, 1.0])) == [((3,), 1)]
    # a flat bottom of three points is one minimum represented by its middle point
    assert find_local_minima(np.array([3.0, 2.0, 2.0, 2.0, 5.0])) == [((2,), 3)]


def test_1d_nan_is_plus_infinity():
    assert find_local_minima(np.array([np.nan, 1.0, np.nan])) == [((1,), 1)]
    # NaN separates two minima that would otherwise be a shelf and a minimum
    assert find_local_minima(np.array([1.0, np.nan, 0.0])) == [((2,), 1), ((0,), 1)]
    # all NaN: a constant array, one minimum
    assert find_local_minima(np.full(4, np.nan)) == [((1,), 4)]


def test_infinities():
    assert find_local_minima(np.array([np.inf, -np.inf, np.inf])) == [((1,), 1)]
    assert find_local_minima(np.array([np.inf, 0.0, np.inf, np.inf])) == [((1,), 1)]


def test_constant_arrays_have_one_minimum():
    assert find_local_minima(np.full(7, 2.5)) == [((3,), 7)]
    got = find_local_minima(np.full((4, 5), 7.0))
    assert got == [((1, 2), 20)]  # centroid (1.5, 2): (1, 2) and (2, 2) tie, first in C order
    assert find_local_minima(np.array([1.0])) == [((0,), 1)]


# ---------------------------------------------------------------------- hand-made 2-D
def test_2d_diagonal_neighbours_join_a_plateau():
    # 8-connectivity: the two zeros touch diagonally, so they form ONE minimum of size 2
    assert find_local_minima(np.array([[0.0, 5.0], [5.0, 0.0]])) == [((0, 0), 2)]


def test_2d_shelf_and_corner_minimum():
    v = np.ones((3, 3))
    v[2, 2] = 0.0
    assert find_local_minima(v) == [((2, 2), 1)]


def test_2d_two_basins_and_a_ridge():
    x = np.linspace(-2, 2, 41)
    xx, yy = np.meshgrid(x, x, indexing="ij")
    v = (xx**2 - 1) ** 2 + yy**2  # minima at (±1, 0)
    got = find_local_minima(v)
    assert sorted(i for i, _ in got) == [(10, 20), (30, 20)]
    assert all(size == 1 for _, size in got)


def test_2d_ring_plateau_is_one_minimum():
    v = np.full((5, 5), 3.0)
    v[1:4, 1:4] = 1.0
    v[2, 2] = 2.0  # a bump inside the ring: a local maximum, not a minimum
    got = find_local_minima(v)
    assert len(got) == 1
    index, size = got[0]
    assert size == 8 and v[index] == 1.0


def test_bad_input():
    with pytest.raises(DataError):
        find_local_minima(np.array([]))
    with pytest.raises(DataError):
        find_local_minima(np.float64(1.0))
    with pytest.raises(DataError):
        find_local_minima(np.array(["a", "b"], dtype=object))


# ---------------------------------------------------------------------- random vs reference
@pytest.mark.parametrize("seed", range(150))
def test_random_small_integer_arrays_match_reference(seed):
    rng = np.random.default_rng(seed)
    if seed % 3 == 0:
        shape = (int(rng.integers(1, 15)),)
    else:
        shape = (int(rng.integers(1, 7)), int(rng.integers(1, 8)))
    # few distinct values: many plateaus, shelves and ties
    values = rng.integers(0, 1 + seed % 4, size=shape).astype(float)
    if seed % 5 == 0:
        values[rng.random(shape) < 0.2] = np.nan
    _check_against_reference(values)
