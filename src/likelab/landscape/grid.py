r"""Objectives evaluated over a 1-D or 2-D grid of a family's parameters.

:func:`evaluate` computes, for every objective, the empirical risk
:math:`R(\theta) = \frac1n \sum_i S(F_\theta, y_i)` (for the batch-level ``product``, the naive
:math:`-\prod_i f_\theta(y_i)`) at every point :math:`\theta` of a grid, vectorised: the family is
built once per chunk with parameters of shape ``(G, 1)`` against observations of shape ``(n,)``.
Each landscape then reports all its local minima (plateau-aware, :mod:`likelab.landscape.minima`),
the global minimiser, and how much of it is exactly flat: the product's underflowed plateau, where
the gradient is zero. This is the seed's picture (Stats.SE: "the sum plot is highly multimodal
and nonconvex, while the bottom plot is unimodal") on any data, family and objective.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from scipy import ndimage

from likelab._budget import check_memory
from likelab._threads import adapt, batch_threads
from likelab.errors import (
    DataError,
    LikelabError,
    ParameterError,
    UnknownNameError,
    UnsupportedError,
    UserContractError,
)
from likelab.families import Family, get_family
from likelab.io import as_observations
from likelab.landscape.minima import locate_minima
from likelab.objectives import Objective, get_objective
from likelab.objectives.naming import objective_label, spellings

__all__ = [
    "Landscape",
    "Minimum",
    "ObjectiveLandscape",
    "evaluate",
    "evaluation_cost",
    "flat_mask",
    "seed_example",
    "significant_minima",
    "summarise",
]


# ---------------------------------------------------------------------- results
@dataclass(frozen=True)
class Minimum:
    """One local minimum of a landscape (a flat region counts once).

    ``index`` is the representative grid index (the plateau point nearest the plateau's centroid),
    ``params`` the parameter values there, ``value`` the risk, ``on_boundary`` whether any point
    of the plateau lies on the edge of the grid (then the true minimum may lie outside it), and
    ``size`` the number of grid points in the plateau.
    """

    index: tuple[int, ...]
    params: dict[str, float]
    value: float
    on_boundary: bool
    size: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: lists and floats, non-finite floats as ``None``."""
        return {
            "index": list(self.index),
            "params": {k: _json_float(v) for k, v in self.params.items()},
            "value": _json_float(self.value),
            "on_boundary": self.on_boundary,
            "size": self.size,
        }


@dataclass(frozen=True, eq=False)
class ObjectiveLandscape:
    """One objective's risk over the grid, its local minima and its flat part.

    ``values`` has the grid's shape (axes in the order of :attr:`Landscape.params`); ``minima``
    lists every local minimum with a finite value, sorted by value; ``argmin`` and ``min_value``
    give the global minimum over the finite values: the representative point of the lowest
    minimum (for a flat minimum, the plateau point nearest its centre; empty / NaN when no value
    is finite);
    ``flat_fraction`` is the fraction of grid points whose finite value equals that of an
    adjacent grid point (along an axis) exactly, where every finite difference, hence the
    numerical gradient along that axis, is zero; ``nonfinite_fraction`` the fraction of NaN or
    infinite values.
    """

    objective: str
    values: np.ndarray
    minima: list[Minimum]
    argmin: dict[str, float]
    min_value: float
    flat_fraction: float
    nonfinite_fraction: float

    @property
    def local_minima(self) -> int:
        """The number of local minima."""
        return len(self.minima)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: nested lists and floats, non-finite floats as ``None``."""
        return {
            "objective": self.objective,
            "values": _json_array(self.values),
            "local_minima": self.local_minima,
            "argmin": {k: _json_float(v) for k, v in self.argmin.items()},
            "min_value": _json_float(self.min_value),
            "minima": [m.to_dict() for m in self.minima],
            "flat_fraction": self.flat_fraction,
            "nonfinite_fraction": self.nonfinite_fraction,
        }


@dataclass(frozen=True, eq=False)
class Landscape:
    """Objectives evaluated over a 1-D or 2-D parameter grid of one family on one data set.

    ``family`` is the family's spec (fixed parameters included), ``n`` the number of
    observations, ``params`` the grid axes in order, ``axes`` their values, ``results`` one
    :class:`ObjectiveLandscape` per objective keyed by the objective's canonical spec (``sum`` is
    keyed ``linear``), in the order given, ``dtype`` the floating type of the computation and
    ``data`` the observations (float64; not part of :meth:`to_dict`).
    """

    family: str
    n: int
    params: tuple[str, ...]
    axes: dict[str, np.ndarray]
    results: dict[str, ObjectiveLandscape]
    dtype: str
    data: np.ndarray = field(repr=False, default_factory=lambda: np.empty(0))
    #: Objectives that could not be evaluated on this family and data, keyed by canonical spec,
    #: with the reason (``hyvarinen`` on a Laplace model, a user objective that raises).
    failures: dict[str, str] = field(default_factory=dict)
    #: How each objective was spelled, keyed by canonical spec (``{"quadratic": "brier"}``):
    #: figures and pages name it so (:meth:`label`).
    given: dict[str, str] = field(default_factory=dict)

    @property
    def shape(self) -> tuple[int, ...]:
        """The grid's shape: one length per axis."""
        return tuple(len(self.axes[p]) for p in self.params)

    def label(self, spec: str) -> str:
        """The objective ``spec`` as it was spelled, the canonical spec in brackets where they
        differ (``brier (quadratic)``): :func:`likelab.objectives.naming.objective_label`."""
        return objective_label(spec, self.given)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, with stable keys::

        {"family", "n", "dtype", "params", "grid": {name: [...]}, "objectives": {spec: {...}},
         "failures": [{"objective": spec, "error": reason}, ...]}
        """
        return {
            "family": self.family,
            "n": self.n,
            "dtype": self.dtype,
            "params": list(self.params),
            "grid": {p: _json_array(self.axes[p]) for p in self.params},
            "objectives": {spec: r.to_dict() for spec, r in self.results.items()},
            "failures": [{"objective": k, "error": v} for k, v in self.failures.items()],
        }


# ---------------------------------------------------------------------- evaluation
def evaluate(
    data: Any,
    family: str | Family,
    objectives: Sequence[str | Objective] | str | Objective,
    grid: Mapping[str, Any],
    *,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str | None = None,
    max_elements: int = 2**16,
    on_progress: Callable[[int, int], None] | None = None,
) -> Landscape:
    r"""Evaluate each objective's empirical risk at every point of a parameter grid.

    The risk is ``objective.risk``: :math:`\frac1n\sum_i S(F_\theta, y_i)`, or the naive
    :math:`-\prod_i f_\theta(y_i)` for ``product``. Every free parameter of ``family`` must be an
    axis of ``grid`` (one or two axes, each a strictly increasing 1-D array inside the
    parameter's domain); fixed parameters stay fixed. The family is built with parameters of shape
    ``(G, 1)`` against ``y`` of shape ``(n,)``, ``G`` chunked so that ``G * n <= max_elements``
    (default 2**16: torch's float64 temporaries of 512 KB are recycled by the allocator; larger
    chunks are fresh page-faulting allocations, 2**24 was 5x slower on the 200 x 200 x 1,000
    landscape of ``benchmarks/bench_landscape.py``).
    All arithmetic is in ``dtype`` on ``device`` (float32 shows the product underflowing). The
    axes follow the family's parameter order (``normal``: loc, then scale) whatever the order of
    ``grid``; results are keyed by each objective's canonical spec (``sum`` -> ``linear``).

    Before anything is allocated, :func:`evaluation_cost` estimates the memory; a grid that needs
    more than :func:`likelab._budget.memory_limit` raises
    :class:`~likelab.errors.ParameterError` with the estimate. ``on_progress(done, total)`` is
    called after each chunk with the number of grid points evaluated so far (the library never
    prints; the CLI draws a progress bar from it).

    An objective that cannot be evaluated here (it raises a :class:`~likelab.errors.LikelabError`:
    ``hyvarinen`` on a Laplace model, a user objective that raises on these data) is dropped
    from the rest of the grid and kept in :attr:`Landscape.failures` with its reason; the others
    are evaluated as usual. Anything the objectives share (data, family, grid, an unknown
    objective name) is checked first and raises, and so does a user objective that breaks its
    contract whatever the data (:class:`~likelab.errors.UserContractError`).

    >>> import numpy as np
    >>> land = evaluate([0.0, 1.0], "normal:scale=1", ["log"], {"loc": np.linspace(-1, 2, 7)})
    >>> land.results["log"].argmin
    {'loc': 0.5}
    """
    fam = get_family(family)
    y = _check_data(fam, data)
    objs, given = _check_objectives(objectives)
    names, axes = _check_grid(fam, grid)
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise ParameterError(f"dtype must be a floating torch dtype, got {dtype!r}")
    if isinstance(max_elements, bool) or not isinstance(max_elements, int) or max_elements < 1:
        raise ParameterError(f"max_elements must be a positive integer, got {max_elements!r}")

    shape = tuple(len(axes[p]) for p in names)
    nbytes, seconds = evaluation_cost(
        shape, int(y.numel()), len(objs), dtype=dtype, max_elements=max_elements
    )
    check_memory(nbytes, what=f"the {' x '.join(map(str, shape))} grid", seconds=seconds)
    mesh = np.meshgrid(*(axes[p] for p in names), indexing="ij")
    points = {
        p: torch.as_tensor(m.reshape(-1), dtype=dtype, device=device)
        for p, m in zip(names, mesh, strict=True)
    }
    yt = y.to(dtype=dtype, device=device)
    total = math.prod(shape)
    chunk = max(1, max_elements // yt.numel())
    out = {o.spec: torch.empty(total, dtype=dtype, device=device) for o in objs}
    failures: dict[str, str] = {}
    with torch.no_grad(), batch_threads(yt.numel()):  # the idle cores (likelab._threads)
        for start in range(0, total, chunk):
            adapt()
            stop = min(total, start + chunk)
            dist = fam.distribution(**{p: v[start:stop, None] for p, v in points.items()})
            for o in objs:
                if o.spec in failures:
                    continue
                try:
                    risk = o.risk(dist, yt, dim=-1)
                    if risk.numel() != stop - start:
                        raise UnsupportedError(
                            f"objective {o.spec!r} returned a risk of shape "
                            f"{tuple(risk.shape)} for {stop - start} grid points; it must "
                            "reduce over the observation axis"
                        )
                except UserContractError:  # broken whatever the data: bad input, raised
                    raise
                except LikelabError as exc:  # this objective alone; anything else is a bug
                    failures[o.spec] = " ".join(str(exc).split())
                    del out[o.spec]
                    continue
                out[o.spec][start:stop] = risk.reshape(-1)
            if on_progress is not None:
                on_progress(stop, total)

    eps = float(torch.finfo(dtype).eps)
    results = {
        spec: summarise(
            spec, vals.cpu().to(torch.float64).numpy().reshape(shape), names, axes, eps=eps
        )
        for spec, vals in out.items()
    }
    return Landscape(
        family=fam.spec,
        n=int(yt.numel()),
        params=names,
        axes=axes,
        results=results,
        dtype=str(dtype).removeprefix("torch."),
        data=yt.detach().cpu().to(torch.float64).numpy(),
        failures=failures,
        given=given,
    )


#: Bytes per grid point per objective besides the risk in ``dtype``: the risk in float64 and the
#: temporaries of :func:`summarise` (finite mask, masked copy, ranks and labels of
#: :mod:`~likelab.landscape.minima`, border and flat masks).
_BYTES_PER_POINT_OBJECTIVE = 56
#: Tensors of one chunk's size (grid points x observations) alive at once: the broadcast
#: parameters, the log-density and the objective's temporaries.
_CHUNK_TENSORS = 8
#: Seconds per (grid point x observation x objective): 20-100 ns measured on one CPU core.
_SECONDS_PER_ELEMENT = 5e-8


def evaluation_cost(
    shape: Sequence[int],
    n: int,
    n_objectives: int,
    *,
    dtype: torch.dtype = torch.float64,
    max_elements: int = 2**16,
) -> tuple[float, float]:
    r"""Estimated peak memory (bytes) and CPU time (seconds) of :func:`evaluate`.

    With :math:`G = \prod` ``shape`` grid points in :math:`d` axes, :math:`n` observations,
    :math:`K` objectives and item size :math:`b` bytes: memory
    :math:`G\,(16 d + K (b + 56)) + 8\,b\,\max(\text{max\_elements}, n) + (8 + b)\,n`
    (the mesh and the parameter tensors, each risk and its summary, one chunk's temporaries, the
    data); time :math:`5\cdot10^{-8}\,G\,n\,K` s. Computed in floats, so that a 10⁵ × 10⁵ grid
    is estimated, never allocated.
    """
    points = float(math.prod(float(s) for s in shape))
    itemsize = torch.empty(0, dtype=dtype).element_size()
    chunk = max(float(max_elements), float(n))
    nbytes = (
        points * (16 * len(shape) + n_objectives * (itemsize + _BYTES_PER_POINT_OBJECTIVE))
        + _CHUNK_TENSORS * itemsize * chunk
        + (8 + itemsize) * float(n)
    )
    seconds = _SECONDS_PER_ELEMENT * points * max(n, 1) * max(n_objectives, 1)
    return nbytes, seconds


#: Local minima shallower than this many epsilons of the computation's floating type times the
#: largest |risk| on the grid are rounding error, merged into a lower one
#: (:func:`significant_minima`): the Laplace log-likelihood's flat median interval, computed in
#: float64, broke into up to 26 "minima" whose values differ by < 0.4 eps x max|risk|.
ROUNDING_EPS = 2.0**10


def summarise(
    objective: str,
    values: np.ndarray,
    names: Sequence[str],
    axes: Mapping[str, np.ndarray],
    *,
    eps: float = float(np.finfo(np.float64).eps),
) -> ObjectiveLandscape:
    """Local minima, global minimum and flat/non-finite fractions of one sampled landscape.

    Non-finite values count as :math:`+\\infty` for the minima; minima whose value is not finite
    (an entirely non-finite landscape) are dropped, and so are minima no deeper than rounding
    error, :data:`ROUNDING_EPS` x ``eps`` (the machine epsilon of the type the values were
    computed in) x the largest finite |value| (:func:`significant_minima`).
    """
    values = np.asarray(values, dtype=np.float64)
    finite = np.isfinite(values)
    safe = np.where(finite, values, np.inf)
    labels, found = locate_minima(safe)
    border = np.zeros(values.shape, dtype=bool)
    for axis in range(values.ndim):
        edge = np.moveaxis(border, axis, 0)  # a view: writes go to ``border``
        edge[0] = edge[-1] = True
    border_labels = np.unique(labels[border])
    minima = [
        Minimum(
            index=index,
            params={p: float(axes[p][i]) for p, i in zip(names, index, strict=True)},
            value=float(values[index]),
            on_boundary=bool(np.isin(label, border_labels)),
            size=size,
        )
        for index, size, label in found
        if math.isfinite(values[index])
    ]
    if len(minima) > 1:
        tol = ROUNDING_EPS * eps * float(np.abs(values[finite]).max())
        minima = significant_minima(values, minima, tol)
    if minima:
        argmin, min_value = dict(minima[0].params), minima[0].value
    else:
        argmin, min_value = {}, math.nan
    return ObjectiveLandscape(
        objective=objective,
        values=values,
        minima=minima,
        argmin=argmin,
        min_value=min_value,
        flat_fraction=float(flat_mask(values).mean()),
        nonfinite_fraction=float((~finite).mean()),
    )


def significant_minima(values: np.ndarray, minima: Sequence[Minimum], tol: float) -> list[Minimum]:
    """The minima (sorted by value, as :func:`summarise` finds them) deeper than ``tol``.

    A minimum :math:`m` of value :math:`v_m` is shallow when the connected component
    (8-connectivity in 2-D) of :math:`\\{\\theta : R(\\theta) \\le v_m + tol\\}` that holds it
    also holds a minimum earlier in the order: it can be left through a pass at most ``tol``
    above it, i.e. its *dynamic* (Grimaud 1992, "A new measure of contrast: the dynamics",
    Proc. SPIE 1769) is at most ``tol``. Values within rounding error of each other cannot tell a
    minimum from a flat plateau computed in floating point. The first minimum is always kept.
    """
    if len(minima) <= 1:
        return list(minima)
    safe = np.where(np.isfinite(values), values, np.inf)
    footprint = np.ones((3,) * values.ndim, dtype=bool)
    kept = [minima[0]]
    for k, m in enumerate(minima[1:], start=1):
        labels, _ = ndimage.label(safe <= m.value + tol, structure=footprint)
        own = labels[m.index]
        if not any(labels[earlier.index] == own for earlier in minima[:k]):
            kept.append(m)
    return kept


def flat_mask(values: np.ndarray) -> np.ndarray:
    """Finite grid points equal to an axis-adjacent point exactly (a zero finite difference)."""
    values = np.asarray(values, dtype=np.float64)
    flat = np.zeros(values.shape, dtype=bool)
    for axis in range(values.ndim):
        a = np.moveaxis(values, axis, 0)
        eq = (a[1:] == a[:-1]) & np.isfinite(a[1:])
        f = np.moveaxis(flat, axis, 0)  # a view: writes go to ``flat``
        f[1:] |= eq
        f[:-1] |= eq
    return flat


# ---------------------------------------------------------------------- the seed's example
def seed_example(
    seed: int = 0,
    *,
    objectives: Sequence[str | Objective] = ("linear", "product", "log"),
    points: int = 10_000,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str | None = None,
) -> Landscape:
    """The seed's figure: sum of likelihoods vs product vs log-product over the mean.

    n = 10 draws from N(0, 1) (``get_family("normal").sample(10, seed=seed, loc=0, scale=1)``),
    model N(mu, 0.1²) with the scale fixed, mu on ``np.linspace(-3, 3, points)``. The R code of the
    seed (Stats.SE answer on "why not the sum of likelihoods"): ``x <- rnorm(10); sigma <- 0.1;
    mu_seq <- seq(-3, 3, length.out = 10000)``; ``linear`` is minus the mean likelihood (the sum
    up to the factor -1/n), ``product`` minus the product, ``log`` the mean NLL.
    """
    if isinstance(points, bool) or not isinstance(points, int) or points < 3:
        raise ParameterError(f"points must be an integer >= 3, got {points!r}")
    data = get_family("normal").sample(10, seed=seed, loc=0.0, scale=1.0)
    return evaluate(
        data,
        "normal:scale=0.1",
        objectives,
        {"loc": np.linspace(-3.0, 3.0, points)},
        dtype=dtype,
        device=device,
    )


# ---------------------------------------------------------------------- validation
def _check_data(fam: Family, data: Any) -> torch.Tensor:
    arr = as_observations(data)
    if arr.ndim > 1:
        raise DataError(f"data must be a 1-D array of observations, got shape {arr.shape}")
    return fam.check_data(arr.reshape(-1))


def _check_objectives(objectives: Any) -> tuple[list[Objective], dict[str, str]]:
    """The objectives, and how each was spelled (canonical spec -> spelling)."""
    if isinstance(objectives, str | Objective) or callable(objectives):
        objectives = [objectives]
    objectives = list(objectives)
    objs = [get_objective(o) for o in objectives]
    if not objs:
        raise ParameterError("no objectives given; name at least one, e.g. ['log']")
    seen: set[str] = set()
    for o in objs:
        if o.spec in seen:
            raise ParameterError(f"objective {o.spec!r} is given twice")
        seen.add(o.spec)
    return objs, spellings(objectives)


def _check_grid(fam: Family, grid: Mapping[str, Any]) -> tuple[tuple[str, ...], dict]:
    if not isinstance(grid, Mapping):
        raise ParameterError(
            f"grid must be a mapping parameter name -> 1-D array, got {type(grid).__name__}"
        )
    if not 1 <= len(grid) <= 2:
        raise ParameterError(
            f"grid must have 1 or 2 axes, got {len(grid)} ({', '.join(map(str, grid))})"
        )
    for name in grid:
        if name not in fam.param_names:
            raise UnknownNameError(
                f"grid axis {name!r} is not a parameter of {fam.name!r}; its free parameters "
                f"are: {', '.join(fam.free) or 'none'}"
            )
        if name in fam.fixed:
            raise ParameterError(
                f"parameter {name!r} of {fam.spec!r} is held fixed; it cannot also be a grid "
                f"axis (drop it from the family spec to put it on the grid)"
            )
    for name in fam.free:
        if name not in grid:
            raise ParameterError(
                f"parameter {name!r} is neither on the grid nor fixed; add it to the grid or fix "
                f"it in the family spec (e.g. '{fam.name}:{name}=...')"
            )
    names = tuple(p for p in fam.param_names if p in grid)
    axes: dict[str, np.ndarray] = {}
    for name in names:
        if fam.param(name).domain == "simplex":
            raise UnsupportedError(
                f"parameter {name!r} of {fam.name!r} is a probability vector and cannot be a "
                f"grid axis"
            )
        values = grid[name]
        if isinstance(values, torch.Tensor):
            values = values.detach().cpu()
        try:
            arr = np.asarray(values, dtype=np.float64)
        except (TypeError, ValueError):
            raise ParameterError(f"grid axis {name!r} must hold numbers") from None
        if arr.ndim != 1 or arr.size == 0:
            raise ParameterError(
                f"grid axis {name!r} must be a non-empty 1-D array, got shape {arr.shape}"
            )
        if not np.isfinite(arr).all():
            raise ParameterError(f"grid axis {name!r} holds non-finite values")
        if arr.size > 1 and not (np.diff(arr) > 0).all():
            raise ParameterError(
                f"grid axis {name!r} must be strictly increasing (sort it and drop repeats)"
            )
        fam._check_param(name, arr)  # ParameterError naming the domain (e.g. scale must be > 0)
        axes[name] = arr
    return names, axes


# ---------------------------------------------------------------------- JSON helpers
def _json_float(x: float) -> float | None:
    x = float(x)
    return x if math.isfinite(x) else None


def _json_array(a: np.ndarray) -> list:
    arr = np.asarray(a, dtype=np.float64)
    obj = arr.astype(object)
    obj[~np.isfinite(arr)] = None
    return obj.tolist()
