r"""Plateau-aware local minima of a sampled objective (1-D or 2-D grids).

A *local minimum* of an array ``v`` is a maximal connected set ``P`` of grid points that all share
one value and whose neighbours outside ``P`` all hold strictly greater values (neighbours: the two
adjacent points in 1-D, the eight surrounding points in 2-D; in general the ``3^d - 1`` points of
the surrounding cube). A flat bottom therefore counts once, a *shelf* (a flat step on a slope) not
at all, and a constant array has exactly one minimum. This is the discrete analogue of a strict
local minimum of a function that may be constant on a region: the "regional minima" of
mathematical morphology (Soille (2003), *Morphological Image Analysis*, 2nd ed., Springer).
NaN counts as :math:`+\infty`.

The computation is vectorised with :mod:`scipy.ndimage`: a point is a *candidate* when no
neighbour is strictly smaller (``minimum_filter``); adjacent candidates necessarily share a value,
so the connected components of the candidate mask (``label``) are flat. A component is a minimum
unless one of its points has an equal-valued neighbour that is not a candidate (then the plateau
continues into a point that has a strictly smaller neighbour: a shelf).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from likelab.errors import DataError

__all__ = ["find_local_minima", "locate_minima", "minima_regions"]


def _ranks(values: np.ndarray) -> np.ndarray:
    """Dense integer ranks of ``values`` (NaN treated as +inf), so that comparisons are exact.

    Working on ranks keeps the comparisons exact (ties stay ties) and gives a sentinel larger than
    every value, even when the array holds ``inf``.
    """
    v = np.where(np.isnan(values), np.inf, values)
    _, inverse = np.unique(v, return_inverse=True)
    return inverse.reshape(values.shape).astype(np.int64)


def minima_regions(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Label the local minima of ``values``.

    Returns ``(labels, minimum_labels)``: ``labels`` is an integer array of ``values``' shape,
    0 outside every minimum and ``k > 0`` on the points of the flat region ``k`` (only the entries
    of ``minimum_labels`` are minima; other positive labels are shelves).
    """
    arr = _check(values)
    ranks = _ranks(arr)
    big = int(ranks.max()) + 1
    footprint = np.ones((3,) * arr.ndim, dtype=bool)
    lowest_near = ndimage.minimum_filter(ranks, footprint=footprint, mode="constant", cval=big)
    candidate = lowest_near == ranks
    # Among the neighbours of a candidate every value is >= its own; the smallest value among its
    # NON-candidate neighbours equals its own exactly when the plateau spills onto a point that has
    # a strictly lower neighbour, i.e. when the plateau is a shelf.
    others = np.where(candidate, big, ranks)
    lowest_other = ndimage.minimum_filter(others, footprint=footprint, mode="constant", cval=big)
    spills = candidate & (lowest_other == ranks)
    labels, count = ndimage.label(candidate, structure=footprint)
    shelves = np.unique(labels[spills])
    minimum_labels = np.setdiff1d(np.arange(1, count + 1), shelves)
    return labels, minimum_labels


def find_local_minima(values: np.ndarray) -> list[tuple[tuple[int, ...], int]]:
    """Every local minimum of a 1-D or 2-D array: ``[(index, plateau_size), ...]``.

    A maximal connected set of equal values whose neighbours (8-connectivity in 2-D) are all
    strictly greater is ONE minimum; ``index`` is its representative point (the point of the
    plateau nearest its centroid; the first in C order on ties) and ``plateau_size`` the number of
    points in it. NaN is treated as :math:`+\\infty`. Sorted by value, then by index.

    >>> find_local_minima(np.array([3.0, 1.0, 2.0, 0.0, 0.0, 5.0]))
    [((3,), 2), ((1,), 1)]
    """
    _, found = locate_minima(values)
    return [(index, size) for index, size, _ in found]


def locate_minima(
    values: np.ndarray,
) -> tuple[np.ndarray, list[tuple[tuple[int, ...], int, int]]]:
    """:func:`find_local_minima` with the labelling: ``(labels, [(index, size, label), ...])``.

    ``labels`` is the integer array of :func:`minima_regions`; each minimum's plateau is
    ``labels == label``.
    """
    arr = _check(values)
    labels, minimum_labels = minima_regions(arr)
    if minimum_labels.size == 0:  # pragma: no cover - a finite array always has a minimum
        return labels, []
    sizes_all = np.bincount(labels.ravel())
    sizes = sizes_all[minimum_labels]
    # Representative: the plateau point p nearest the centroid S / m (m points, S the sum of their
    # coordinates). m² |p - S/m|² = |m p - S|² is an integer; rounding it makes ties exact, and
    # ties go to the first point in C order.
    inside = np.isin(labels, minimum_labels)
    flat_index = np.flatnonzero(inside)
    lab = labels.ravel()[flat_index]
    coords = np.stack(np.unravel_index(flat_index, arr.shape), axis=1).astype(np.float64)
    sums = np.zeros((sizes_all.shape[0], arr.ndim))
    np.add.at(sums, lab, coords)
    m = sizes_all[lab].astype(np.float64)[:, None]
    score = np.rint(((m * coords - sums[lab]) ** 2).sum(axis=1))
    order = np.lexsort((flat_index, score, lab))
    _, first = np.unique(lab[order], return_index=True)
    chosen = flat_index[order[first]]  # one per label, labels ascending = minimum_labels order
    reps = [
        tuple(int(i) for i in idx) for idx in zip(*np.unravel_index(chosen, arr.shape), strict=True)
    ]
    key = np.where(np.isnan(arr), np.inf, arr)
    out = [
        (rep, int(size), int(lab))
        for rep, size, lab in zip(reps, sizes, minimum_labels, strict=True)
    ]
    out.sort(key=lambda item: (key[item[0]], item[0]))
    return labels, out


def _check(values: np.ndarray) -> np.ndarray:
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise DataError(f"values must be a numeric array, got {type(values).__name__}") from None
    if arr.ndim == 0 or arr.size == 0:
        raise DataError(
            f"values must be a non-empty array with at least one axis, got shape {arr.shape}"
        )
    return arr
