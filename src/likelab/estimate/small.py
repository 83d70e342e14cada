r"""Arithmetic on many tiny vectors and matrices: ``(B, p)`` and ``(B, p, p)`` with p of 1 to 4.

A Newton iteration over B independent problems works on such batches. torch's reductions over
a trailing axis of 2 to 4 elements, and its batched factorisations of 2 x 2 to 4 x 4 matrices,
cost one to two orders of magnitude more per element than elementwise arithmetic on a
contiguous vector (a ``sum(-1)`` over ``(10⁴, 2)``: 335 µs; the same sum as one addition of
its two columns: 16 µs; a batched Cholesky factorisation and solve of 10⁴ 2 x 2 systems:
2.8 ms, unrolled below: 0.3 ms). Here each is written entry by entry, p fixed and small, so
that every operation is one pass over B numbers. The results equal torch's to rounding (tested);
each one's order of operations is fixed, so they do not depend on the thread count.
"""

from __future__ import annotations

import functools
import operator

import torch

__all__ = ["cholesky_direction", "row_dot", "row_max_abs", "row_sum", "rows_finite"]


def row_sum(x: torch.Tensor) -> torch.Tensor:
    """``x.sum(-1)``, as ``x[..., 0] + x[..., 1] + ...`` left to right."""
    if x.shape[-1] == 0:
        return x.sum(-1)
    return functools.reduce(operator.add, x.unbind(-1))


def row_dot(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``(a * b).sum(-1)``, left to right."""
    return row_sum(a * b)


def row_max_abs(x: torch.Tensor) -> torch.Tensor:
    """``x.abs().amax(-1)`` over the last axis (NaN where a row has a NaN, as ``amax``); 0 for
    an empty axis."""
    if x.shape[-1] == 0:
        return x.new_zeros(x.shape[:-1])
    return functools.reduce(torch.maximum, x.abs().unbind(-1))


def rows_finite(*xs: torch.Tensor) -> torch.Tensor:
    """``(B,)``: whether every entry of row ``b`` of every ``x`` (shapes ``(B, ...)``) is finite."""
    b = xs[0].shape[0]
    biggest = [row_max_abs(x.reshape(b, -1)) if x.dim() > 1 else x.abs() for x in xs]
    return torch.isfinite(functools.reduce(torch.maximum, biggest))


def cholesky_direction(
    g: torch.Tensor, h: torch.Tensor, delta: float
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""The Newton step :math:`d = -H^{-1} g` by an unrolled Cholesky factorisation
    :math:`H = L L^\top` of the symmetric part of each ``h`` (Golub & Van Loan 2013, *Matrix
    Computations*, alg. 4.2.1), and ``ok``: where every pivot :math:`L_{jj}^2` exceeds
    ``delta * max(1, max_j |H_jj|)`` (H safely positive definite). Elsewhere ``d`` is not
    meaningful and the caller takes another direction.
    """
    p = g.shape[-1]
    if p == 0:
        return torch.zeros_like(g), torch.ones(g.shape[0], dtype=torch.bool, device=g.device)
    hh = [[None] * p for _ in range(p)]
    for i in range(p):
        hh[i][i] = h[:, i, i]
        for j in range(i):
            hh[i][j] = hh[j][i] = 0.5 * (h[:, i, j] + h[:, j, i])
    scale = functools.reduce(torch.maximum, [hh[i][i].abs() for i in range(p)]).clamp(min=1.0)
    floor = delta * scale
    ok = torch.ones_like(scale, dtype=torch.bool)
    low: list[list[torch.Tensor | None]] = [[None] * p for _ in range(p)]
    for j in range(p):
        pivot = hh[j][j]
        for k in range(j):
            pivot = pivot - low[j][k] * low[j][k]
        ok = ok & (pivot > floor)
        low[j][j] = torch.where(pivot > floor, pivot, floor).sqrt()  # finite where not ok
        for i in range(j + 1, p):
            entry = hh[i][j]
            for k in range(j):
                entry = entry - low[i][k] * low[j][k]
            low[i][j] = entry / low[j][j]
    col = g.unbind(-1)
    fwd: list[torch.Tensor] = []
    for i in range(p):  # L z = g
        acc = col[i]
        for k in range(i):
            acc = acc - low[i][k] * fwd[k]
        fwd.append(acc / low[i][i])
    x: list[torch.Tensor | None] = [None] * p
    for i in reversed(range(p)):  # Lᵀ x = z
        acc = fwd[i]
        for k in range(i + 1, p):
            acc = acc - low[k][i] * x[k]
        x[i] = acc / low[i][i]
    return -torch.stack(x, -1), ok
