r"""Per-dataset moments of a local rule :math:`S = \varphi(\ell)`, :math:`\ell = \log f(y;\theta)`.

For ``B`` datasets of ``n`` observations each (``y`` of shape ``(B, n)``) and the family's
closed-form per-observation derivatives :math:`\nabla\ell, \nabla^2\ell` in its free natural
parameters (:mod:`likelab.families.derivatives`), one pass over the observations gives

.. math::
    \bar\varphi = \tfrac1n\textstyle\sum_i \varphi(\ell_i),\qquad
    \bar g = \tfrac1n\textstyle\sum_i \varphi'(\ell_i)\,\nabla\ell_i,\qquad
    \bar H = \tfrac1n\textstyle\sum_i \big(\varphi''(\ell_i)\,\nabla\ell_i\nabla\ell_i^\top
        + \varphi'(\ell_i)\,\nabla^2\ell_i\big),

the risk, its gradient and its Hessian (chain rule; e.g. Huber & Ronchetti 2009, *Robust
Statistics*, sec. 3.2 for M-estimators). On request it also gives the second moments
:math:`\tfrac1n\sum_i v_i v_i^\top` of :math:`v_i = (\varphi(\ell_i), \varphi'(\ell_i)
\nabla\ell_i)`. Their lower-right block is the "meat" :math:`J` of the sandwich
:math:`H^{-1} J H^{-1}/n` (White 1982, Econometrica 50:1-25); their first row serves rules
that are affine in a local term, :math:`S = A(\theta) + C(\theta)\,\psi(\ell)`.

This module is the eager reference. :mod:`likelab.estimate.fused` computes the same moments in one
compiled pass where a compiler is available; the two agree to 1e-12 (tested).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import torch

from likelab.families import Family
from likelab.families.derivatives import log_prob_derivative_components
from likelab.objectives.forms import ExpLinear

__all__ = [
    "ExpLinear",
    "LocalMoments",
    "PhiFn",
    "eager_local_moments",
    "eager_local_value",
    "local_moments",
    "local_value",
    "reduce_moments",
]

#: ``phi(ell) -> (φ, φ', φ'')`` elementwise.
PhiFn = Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor, torch.Tensor]]


@dataclass(frozen=True)
class LocalMoments:
    """Means over the observations of each dataset; ``p`` = number of free parameters.

    ``value`` ``(B,)``: mean φ(ℓ); ``grad`` ``(B, p)``: mean φ'∇ℓ; ``hess`` ``(B, p, p)``:
    mean φ''∇ℓ∇ℓᵀ + φ'∇²ℓ; ``outer`` ``(B, p + 1, p + 1)`` or ``None``: mean v vᵀ with
    v = (φ, φ'∇ℓ).
    """

    value: torch.Tensor
    grad: torch.Tensor
    hess: torch.Tensor
    outer: torch.Tensor | None = None


def _shaped(fam: Family, natural: Mapping[str, torch.Tensor]):
    """The family at per-dataset parameters ``(B,)``, broadcast against observations ``(B, n)``."""
    return fam.distribution_unchecked({k: v.reshape(*v.shape, 1) for k, v in natural.items()})


def _free_components(
    fam: Family,
    natural: Mapping[str, torch.Tensor],
    y: torch.Tensor,
    terms: tuple[torch.Tensor, ...] | None = None,
):
    """ℓ, its gradient entries and its Hessian entries in the free parameters (each
    broadcastable to ℓ); ``terms``: the family's parameter-only terms, computed beforehand."""
    dist = _shaped(fam, natural)
    parts = log_prob_derivative_components(dist, y, terms)
    if parts is None:
        raise TypeError(f"{fam.spec!r} has no closed-form log-density derivatives")
    ell, g_all, h_all = parts
    idx = [fam.param_names.index(n) for n in fam.free]
    return ell, [g_all[i] for i in idx], [[h_all[a][b] for b in idx] for a in idx]


def reduce_moments(ell, gl, hl, f0, f1, f2, *, outer: bool = False) -> LocalMoments:
    """The means over observations of :class:`LocalMoments` from ℓ, its derivative entries
    ``gl``/``hl`` and φ, φ', φ'' at ℓ: the arithmetic shared by the eager path and the fused
    kernel. The second moments are written from φ, φ' and ∇ℓ (v v^T = (φ, φ'∇ℓ)(φ, φ'∇ℓ)^T
    entry by entry), so that a compiled kernel keeps no per-observation v in memory."""

    def mean(t: torch.Tensor) -> torch.Tensor:
        return t.expand_as(ell).mean(-1)

    def matrix(entries: list[list[torch.Tensor]]) -> torch.Tensor:
        return torch.stack([torch.stack(row, -1) for row in entries], -2)

    p = len(gl)
    grad = torch.stack([mean(f1 * g) for g in gl], -1)
    hess = [[None] * p for _ in range(p)]
    for a in range(p):
        for b in range(a, p):
            hess[a][b] = hess[b][a] = mean(f2 * gl[a] * gl[b] + f1 * hl[a][b])
    second = None
    if outer:
        f01, f11 = f0 * f1, f1 * f1
        sec = [[None] * (p + 1) for _ in range(p + 1)]
        sec[0][0] = mean(f0 * f0)
        for a in range(p):
            sec[0][a + 1] = sec[a + 1][0] = mean(f01 * gl[a])
            for b in range(a, p):
                sec[a + 1][b + 1] = sec[b + 1][a + 1] = mean(f11 * gl[a] * gl[b])
        second = matrix(sec)
    return LocalMoments(mean(f0), grad, matrix(hess), second)


def local_moments(
    fam: Family,
    natural: Mapping[str, torch.Tensor],
    y: torch.Tensor,
    phi: PhiFn,
    *,
    outer: bool = False,
    fused: bool | None = None,
    rows: torch.Tensor | None = None,
) -> LocalMoments:
    """The moments of :class:`LocalMoments` for datasets ``y`` ``(B, n)`` at ``natural``
    (each ``(B,)``), in the free natural parameters of ``fam``: by the fused kernel where it
    applies, else by :func:`eager_local_moments`. ``fused=None`` asks
    :func:`likelab.estimate.fused.use_fused` about this call; a caller that splits one problem
    into chunks decides once for the whole and passes ``True`` or ``False``. With ``rows``
    the datasets are ``y[rows]`` (the fused kernel gathers them as it reads them).

    Example:
        >>> import torch
        >>> from likelab.families import get_family
        >>> from likelab.objectives import get_objective
        >>> fam, log = get_family("normal"), get_objective("log")
        >>> y = torch.tensor([[-1.0, 0.0, 1.0]], dtype=torch.float64)
        >>> m = local_moments(fam, {"loc": y.new_zeros(1), "scale": y.new_ones(1)}, y, log.phi)
        >>> [round(v, 6) for v in m.grad[0].tolist()]  # ∂/∂loc, ∂/∂scale of the mean NLL
        [0.0, 0.333333]
    """
    from likelab.estimate import fused as kernels

    if kernels.use_fused(fam, phi, y) if fused is None else fused:
        out = kernels.fused_local_moments(fam, natural, y, phi, outer=outer, rows=rows)
        if out is not None:
            return out
    y = y if rows is None else y[rows]
    return eager_local_moments(fam, natural, y, phi, outer=outer)


def eager_local_moments(
    fam: Family,
    natural: Mapping[str, torch.Tensor],
    y: torch.Tensor,
    phi: PhiFn,
    *,
    outer: bool = False,
) -> LocalMoments:
    """:func:`local_moments` computed eagerly, one tensor operation at a time: the reference."""
    ell, gl, hl = _free_components(fam, natural, y)
    return reduce_moments(ell, gl, hl, *phi(ell), outer=outer)


def local_value(
    fam: Family,
    natural: Mapping[str, torch.Tensor],
    y: torch.Tensor,
    phi: PhiFn,
    *,
    fused: bool | None = None,
    rows: torch.Tensor | None = None,
) -> torch.Tensor:
    """Mean φ(ℓ) per dataset ``(B,)``: the risk of a local rule, without derivatives (fused
    as in :func:`local_moments`, else eager)."""
    from likelab.estimate import fused as kernels

    if kernels.use_fused(fam, phi, y) if fused is None else fused:
        out = kernels.fused_local_value(fam, natural, y, phi, rows=rows)
        if out is not None:
            return out
    y = y if rows is None else y[rows]
    return eager_local_value(fam, natural, y, phi)


def eager_local_value(
    fam: Family, natural: Mapping[str, torch.Tensor], y: torch.Tensor, phi: PhiFn
) -> torch.Tensor:
    """:func:`local_value` computed eagerly: the reference."""
    dist = _shaped(fam, natural)
    return phi(dist.log_prob(y))[0].mean(-1)
