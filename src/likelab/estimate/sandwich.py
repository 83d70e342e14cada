r"""Sandwich (Godambe) standard errors of M-estimators.

For an M-estimator :math:`\hat\theta = \arg\min_\theta \frac1n \sum_i S(F_\theta, y_i)` the
asymptotic covariance is :math:`V = H^{-1} J H^{-1} / n` with
:math:`H = \frac1n\sum_i \nabla^2_\theta S(F_\theta, y_i)` and
:math:`J = \frac1n\sum_i \nabla_\theta S(F_\theta, y_i)\, \nabla_\theta S(F_\theta, y_i)^\top`,
evaluated at :math:`\hat\theta` (Godambe 1960, Ann. Math. Statist. 31:1208-1211; Huber 1967,
Proc. 5th Berkeley Symp. 1:221-233; White 1982, Econometrica 50:1-25). For the log score under the
true model, :math:`H = J = I(\theta)` and :math:`V` is the inverse Fisher information over n.

Both matrices come from the objective's own per-observation losses by autograd, in the natural
parametrisation of the free parameters: each observation gets its own copy of
:math:`\theta`, so one backward pass gives every per-observation gradient and p more give every
per-observation Hessian.

**Kinks.** H stands for :math:`A = \partial_\theta E_G[\psi(Y, \theta)]`, the derivative of the
*expected* estimating function :math:`\psi = \nabla_\theta S` (Huber 1967; Stefanski & Boos
2002, Amer. Statist. 56:29-38, "The calculus of M-estimation"). The average of pointwise Hessians
estimates A only where :math:`\psi` is differentiable in θ for almost every y *and* continuous in
y. Where the density has a kink at a parameter-dependent point :math:`\kappa(\theta)` (the
Laplace density at its location), :math:`\psi` jumps there and, by Leibniz's rule,

.. math::
    A = E_G[\nabla_\theta \psi] + g(\kappa)\,[\psi(\kappa^-) - \psi(\kappa^+)]\,
        \nabla_\theta\kappa^\top,

with g the density of the data at the kink. ``h_extra`` carries that second term (see
:func:`likelab.estimate.fit`, which takes g from the fitted model). Without it the Laplace
location's bread is 0 under the log score (ψ = sign(y - μ)/b is flat in μ almost everywhere)
and negative under the density power divergence. For the log score and the Laplace median this
gives :math:`A = 2 g(\mu)/b`, the classical asymptotic variance :math:`1/(4 g(\mu)^2 n)` of
the sample median (e.g. Koenker 2005, *Quantile Regression*, sec. 3.4).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

__all__ = ["sandwich_covariance", "sandwich_from_moments"]

#: ``losses(theta) -> (B, n)`` for natural parameters ``theta`` of shape ``(B, n, p)``.
LossFn = Callable[[torch.Tensor], torch.Tensor]


def sandwich_covariance(
    losses: LossFn, theta: torch.Tensor, n: int, h_extra: torch.Tensor | None = None
) -> torch.Tensor:
    """``H^{-1} J H^{-1} / n``, shape ``(B, p, p)``, from per-observation losses.

    ``theta`` is ``(B, p)``; ``losses`` receives it expanded to ``(B, n, p)`` (one copy per
    observation) and returns the ``(B, n)`` losses. ``h_extra`` (``(B, p, p)``) is added to the
    mean pointwise Hessian: the jump term of a kinked density (module docstring). Where ``H`` is
    singular the result is ``nan``.
    """
    b, p = theta.shape
    with torch.enable_grad():
        per_obs = theta.detach()[:, None, :].expand(b, n, p).clone().requires_grad_(True)
        loss = losses(per_obs)
        (grad,) = torch.autograd.grad(loss.sum(), per_obs, create_graph=True)  # (B, n, p)
        rows = []
        for j in range(p):
            (hj,) = torch.autograd.grad(
                grad[..., j].sum(), per_obs, retain_graph=j < p - 1, allow_unused=True
            )
            rows.append(torch.zeros_like(per_obs) if hj is None else hj)
    grad = grad.detach()
    h = torch.stack(rows, dim=-2).detach().mean(dim=1)  # (B, p, p)
    if h_extra is not None:
        h = h + h_extra
    j_mat = torch.einsum("bni,bnj->bij", grad, grad) / n
    return sandwich_from_moments(h, j_mat, n)


def sandwich_from_moments(h: torch.Tensor, j_mat: torch.Tensor, n: int) -> torch.Tensor:
    """``H^-1 J H^-1 / n``; ``nan`` where H is singular to working precision (reciprocal
    condition number below 1e-10: the sandwich is then meaningless, e.g. at a Laplace median)."""
    h = 0.5 * (h + h.transpose(-1, -2))
    lam = torch.linalg.eigvalsh(h).abs()
    singular = lam.amin(-1) <= 1e-10 * lam.amax(-1)
    h_inv, info = torch.linalg.inv_ex(h)
    cov = h_inv @ j_mat @ h_inv.transpose(-1, -2) / n
    bad = singular | (info != 0) | ~torch.isfinite(cov).all((-1, -2))
    return torch.where(bad[:, None, None], torch.full_like(cov, math.nan), cov)
