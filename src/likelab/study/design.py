r"""The design of a study: DGP points, cells and their seeds, and the data of a cell.

A *DGP point* is one combination of a DGP's parameter grid (and contamination share); a *cell* is
(DGP point, n, block of replicates), the unit of work, of storage and of resumption. The data of
a cell are drawn once, as an array of shape ``(replicates, n)``, and every objective is fitted
on the same data (common random numbers: comparisons between objectives are paired).

Seeds never depend on positions: a cell's random stream is
``numpy.random.SeedSequence(study seed, spawn_key=SHA-256(cell key))``, where the key spells
out the DGP point, n and the block (``"normal:loc=0,scale=1|n=20|block=0"``). Adding a DGP, a
sample size or an objective changes no other cell's data, and a cell gives the same bits
whatever executor or worker runs it.

The true value of each estimand parameter comes from the DGP when its (uncontaminated) family
is the model's family; under contamination it is the parameter of the uncontaminated
distribution, the target of a robust estimator (Huber & Ronchetti 2009, ch. 1). Otherwise it must
be given as ``model.truth``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, overload

import numpy as np

from likelab.errors import LikelabError, SpecError
from likelab.families.dgp import DataGeneratingProcess, FamilyDGP, contaminated, parse_dgp

__all__ = ["Cell", "CellGrid", "DGPPoint", "cell_seed", "cells", "dgp_points", "generate"]


@dataclass(frozen=True)
class DGPPoint:
    """One data-generating process of the design, with the estimand's true values."""

    index: int  # position of its DGP entry in the file (for messages only)
    spec: str
    dgp: DataGeneratingProcess
    truth: dict[str, float]
    fixed: dict[str, float]  # the model's fixed parameters here ('truth' resolved)
    base: str = ""  # the uncontaminated DGP's spec (``spec`` itself when eps is 0)
    eps: float = 0.0  # the contamination fraction


@dataclass(frozen=True)
class Cell:
    """(DGP point, n, block): ``replicates`` datasets, numbered from ``first`` in the point."""

    key: str
    point: DGPPoint
    n: int
    block: int
    first: int
    replicates: int


def dgp_points(spec: Any) -> list[DGPPoint]:
    """Every DGP point of the study, in file order (grids expanded)."""
    from likelab.families import get_family
    from likelab.study.spec import grid

    model = get_family(spec.model.family)
    free = [name for name in model.free if name not in spec.model.fixed]
    estimand = list(spec.model.estimand or free)
    points: list[DGPPoint] = []
    seen: set[str] = set()
    for i, d in enumerate(spec.dgps):
        eps_values: list[float | None] = [None]
        if d.contamination is not None:
            eps = d.contamination.eps
            eps_values = list(eps) if isinstance(eps, list) else [eps]
        for params in grid(d.params):
            try:
                base = FamilyDGP(d.family, params)
            except LikelabError as exc:
                raise SpecError(f"dgps[{i}].params: {exc}") from None
            for eps in eps_values:
                if eps is None or eps == 0.0:
                    dgp: DataGeneratingProcess = base
                else:
                    try:
                        dgp = contaminated(base, parse_dgp(d.contamination.dgp), eps)
                    except LikelabError as exc:
                        raise SpecError(f"dgps[{i}].contamination.dgp: {exc}") from None
                truth = {}
                for name in estimand:
                    if base.family.name == model.name and name in base.family.fixed:
                        truth[name] = float(base.family.fixed[name])
                    elif name in spec.model.truth:
                        truth[name] = float(spec.model.truth[name])
                    else:
                        raise SpecError(
                            f"dgps[{i}]: no true value for the estimand {name!r} (the DGP "
                            f"family {base.family.name!r} is not the model's {model.name!r}); "
                            f"give it as model.truth.{name}"
                        )
                fixed = {
                    k: float(base.family.fixed[k]) if v == "truth" else float(v)
                    for k, v in spec.model.fixed.items()
                }
                if dgp.spec in seen:
                    raise SpecError(f"dgps[{i}]: the DGP {dgp.spec!r} appears twice")
                seen.add(dgp.spec)
                points.append(
                    DGPPoint(
                        index=i,
                        spec=dgp.spec,
                        dgp=dgp,
                        truth=truth,
                        fixed=fixed,
                        base=base.spec,
                        eps=float(eps or 0.0),
                    )
                )
    return points


class CellGrid(Sequence[Cell]):
    """The cells of a study, DGP points × sample sizes × blocks in that order, as a sequence
    that builds each :class:`Cell` when it is asked for: ``len`` is arithmetic and iterating
    holds one cell at a time, however many replicates the study has."""

    def __init__(
        self, points: list[DGPPoint], sample_sizes: list[int], replicates: int, block: int
    ):
        self.points = points
        self.sample_sizes = list(sample_sizes)
        self.replicates = replicates
        self.block = block
        self.blocks = -(-replicates // block)

    def __len__(self) -> int:
        return len(self.points) * len(self.sample_sizes) * self.blocks

    def _cell(self, i: int) -> Cell:
        rest, b = divmod(i, self.blocks)
        p, s = divmod(rest, len(self.sample_sizes))
        point, n = self.points[p], self.sample_sizes[s]
        first = b * self.block
        reps = min(self.block, self.replicates - first)
        key = f"{point.spec}|n={n}|block={b}"
        return Cell(key=key, point=point, n=n, block=b, first=first, replicates=reps)

    @overload
    def __getitem__(self, i: int) -> Cell: ...
    @overload
    def __getitem__(self, i: slice) -> list[Cell]: ...
    def __getitem__(self, i: int | slice) -> Cell | list[Cell]:
        if isinstance(i, slice):
            return [self._cell(j) for j in range(*i.indices(len(self)))]
        size = len(self)
        if not -size <= i < size:
            raise IndexError("cell index out of range")
        return self._cell(i % size)

    def __iter__(self) -> Iterator[Cell]:
        for i in range(len(self)):
            yield self._cell(i)


def cells(spec: Any) -> CellGrid:
    """Every cell of the study: DGP points × sample sizes × blocks of ``spec.block``, as a lazy
    sequence (:class:`CellGrid`)."""
    return CellGrid(dgp_points(spec), spec.sample_sizes, spec.replicates, spec.block)


def cell_seed(study_seed: int, key: str) -> np.random.SeedSequence:
    """The cell's own seed sequence: the study seed and a hash of the cell's key.

    >>> a = cell_seed(1, "normal:loc=0,scale=1|n=20|block=0").generate_state(2)
    >>> b = cell_seed(1, "normal:loc=0,scale=1|n=20|block=0").generate_state(2)
    >>> bool((a == b).all())
    True
    """
    digest = hashlib.sha256(key.encode()).digest()
    words = tuple(int.from_bytes(digest[i : i + 4], "little") for i in range(0, 32, 4))
    return np.random.SeedSequence(int(study_seed), spawn_key=words)


def generate(study_seed: int, cell: Cell) -> tuple[np.ndarray, int]:
    """The cell's data, shape ``(replicates, n)``, and a seed for its fits' extra starts."""
    data_ss, fit_ss = cell_seed(study_seed, cell.key).spawn(2)
    y = cell.point.dgp.sample((cell.replicates, cell.n), seed=np.random.default_rng(data_ss))
    return y, int(fit_ss.generate_state(1)[0])
