r"""Batched damped Newton minimisation: B independent p-dimensional problems at once.

Each problem ``b`` minimises a smooth-ish function :math:`f_b(u)` of an unconstrained vector
:math:`u \in \mathbb{R}^p` (p is small: 1 to 4 parameters). Every iteration computes, for all
active problems at once, the value, gradient and Hessian by autograd (the problems are independent,
so one backward pass of :math:`\sum_b f_b` gives every gradient and p more give every Hessian), then

- the *saddle-free* Newton direction :math:`d = -Q |\Lambda|_\delta^{-1} Q^\top g` from the batched
  eigendecomposition :math:`H = Q \Lambda Q^\top`, with eigenvalues replaced by
  :math:`\max(|\lambda|, \delta)` so that d is a descent direction even where H is indefinite or
  singular (Dauphin et al. 2014, NeurIPS; Nocedal & Wright 2006, *Numerical Optimization*,
  sec. 3.4 on modified Newton methods);
- a per-problem backtracking line search with the Armijo condition (Nocedal & Wright, alg. 3.1),
  the problems that already satisfy it leaving the search;
- per-problem convergence tests; a problem that has converged or failed leaves the batch, so the
  rest costs less. Failures are recorded as a reason, never raised.

Reasons: ``"gtol"`` (gradient below tolerance), ``"ftol"`` (Newton decrement, the predicted
remaining decrease, below tolerance relative to the value),
``"xtol"`` (no decrease along the direction even for steps below ``xtol``: a minimum to working
precision, e.g. at a kink), ``"max_iter"``, ``"nonfinite"`` (value, gradient or Hessian not
finite at the current point), ``"line_search"`` (no decrease found along the direction),
``"flat"`` (gradient and Hessian exactly zero: the objective is flat to the last bit there, as
on the underflowed plateau of the naive product or of a far-off sum of likelihoods; a stationary
point, but no evidence of a minimum), ``"boundary"`` (stopped without a small gradient with a
coordinate beyond ``±boundary`` = 25, i.e. a parameter beyond e^±25 on its log or logit scale: the
infimum lies at the edge of the parameter space and there is no finite estimate, as for a gamma
fitted to equal observations).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

__all__ = ["NewtonResult", "newton_minimize"]

#: ``values(u, idx) -> (B,)``: the objective of problems ``idx`` at ``u`` (shape ``(B, p)``).
ValueFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
#: ``derivatives(u, idx) -> (values (B,), gradients (B, p), Hessians (B, p, p))``.
DerivFn = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor, torch.Tensor]]

REASONS = (
    "running",
    "gtol",
    "ftol",
    "xtol",
    "max_iter",
    "nonfinite",
    "line_search",
    "flat",
    "boundary",
)
_CONVERGED = {"gtol", "ftol", "xtol"}


@dataclass(frozen=True)
class NewtonResult:
    """Per-problem outcome: solution, value, iteration count and reason code."""

    u: torch.Tensor  # (B, p)
    value: torch.Tensor  # (B,)
    n_iter: torch.Tensor  # (B,) int64
    reason: list[str]

    @property
    def converged(self) -> torch.Tensor:
        return torch.as_tensor(np.isin(np.asarray(self.reason, dtype=object), list(_CONVERGED)))


def value_grad_hess(
    fun: ValueFn, u: torch.Tensor, idx: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Values ``(B,)``, gradients ``(B, p)`` and Hessians ``(B, p, p)`` of independent problems."""
    with torch.enable_grad():
        u = u.detach().requires_grad_(True)
        v = fun(u, idx)
        if not v.requires_grad:  # a constant objective: no graph, zero derivatives
            return v.detach(), torch.zeros_like(u), u.new_zeros(*u.shape, u.shape[-1])
        (g,) = torch.autograd.grad(v.sum(), u, create_graph=True, allow_unused=True)
        if g is None or not g.requires_grad:  # linear in u, or independent of it
            g = torch.zeros_like(u) if g is None else g
            return v.detach(), g.detach(), u.new_zeros(*u.shape, u.shape[-1])
        rows = []
        for j in range(u.shape[-1]):
            (hj,) = torch.autograd.grad(
                g[:, j].sum(), u, retain_graph=j < u.shape[-1] - 1, allow_unused=True
            )
            rows.append(torch.zeros_like(u) if hj is None else hj)
    return v.detach(), g.detach(), torch.stack(rows, dim=1).detach()


def saddle_free_direction(g: torch.Tensor, h: torch.Tensor, delta: float) -> torch.Tensor:
    """``-Q diag(1/max(|λ|, δ·max(1, max|λ|))) Qᵀ g``: a descent direction for any symmetric H.

    Where H is safely positive definite (its Cholesky factor exists and its diagonal is not
    tiny), that is the plain Newton step ``-H⁻¹g``, solved by Cholesky; the eigendecomposition
    is only paid for the other problems.
    """
    h = 0.5 * (h + h.transpose(-1, -2))
    chol, info = torch.linalg.cholesky_ex(h)
    diag = torch.diagonal(chol, dim1=-2, dim2=-1)
    scale = torch.diagonal(h, dim1=-2, dim2=-1).abs().amax(-1).clamp(min=1.0)
    ok = (info == 0) & (diag.amin(-1) ** 2 > delta * scale)
    d = torch.empty_like(g)
    if bool(ok.any()):
        d[ok] = -torch.cholesky_solve(g[ok].unsqueeze(-1), chol[ok]).squeeze(-1)
    if not bool(ok.all()):
        d[~ok] = _eigen_direction(g[~ok], h[~ok], delta)
    return d


def _eigen_direction(g: torch.Tensor, h: torch.Tensor, delta: float) -> torch.Tensor:
    """Eigenvalues replaced by |λ|, and those numerically zero (|λ| <= δ·max(1, max|λ|)) by
    max(√‖g‖∞, δ·max(1, max|λ|)). The √‖g‖ floor (as in regularised Newton methods, Mishchenko
    2023, SIAM J. Optim. 33:1440-1462) keeps steps of order √‖g‖ along directions of zero
    curvature (the location of a Laplace fit) and vanishes at a minimum; small but genuine
    curvature (df of a Student-t far out, ~1e-8) keeps its full Newton step."""
    lam, q = torch.linalg.eigh(h)
    scale = lam.abs().amax(dim=-1, keepdim=True).clamp(min=1.0)
    zero = lam.abs() <= delta * scale  # numerically zero curvature
    floor = torch.maximum(delta * scale, g.abs().amax(-1, keepdim=True).sqrt())
    lam = torch.where(zero, floor.expand_as(lam), lam.abs())
    return -(q @ ((q.transpose(-1, -2) @ g.unsqueeze(-1)) / lam.unsqueeze(-1))).squeeze(-1)


def newton_minimize(
    fun: ValueFn,
    u0: torch.Tensor,
    *,
    max_iter: int = 100,
    gtol: float = 1e-9,
    ftol: float = 1e-15,
    xtol: float = 1e-12,
    max_step: float = 10.0,
    delta: float = 1e-12,
    armijo: float = 1e-4,
    max_halvings: int = 60,
    derivatives: DerivFn | None = None,
    boundary: float = 25.0,
) -> NewtonResult:
    """Minimise ``fun`` from ``u0`` (shape ``(B, p)``) for every problem independently.

    ``fun(u, idx)`` must return the objective of the problems ``idx`` (a long tensor) at ``u``
    and must treat the rows independently. ``gtol`` applies to the largest gradient component
    relative to ``1 + |f|``; ``ftol`` to the Newton decrement ``-gᵀd/2`` relative to
    ``1 + |f|``; ``max_step`` caps the largest component of a Newton step. ``derivatives``
    supplies values, gradients and Hessians in closed form; by default they come from autograd
    of ``fun`` (:func:`value_grad_hess`).
    """
    u = u0.detach().clone()
    b = u.shape[0]
    device = u.device
    value = torch.full((b,), float("nan"), dtype=u.dtype, device=device)
    n_iter = torch.zeros(b, dtype=torch.int64, device=device)
    code = torch.zeros(b, dtype=torch.int64, device=device)  # index into REASONS
    code_of = {r: i for i, r in enumerate(REASONS)}
    active = torch.arange(b, device=device)

    for it in range(max_iter + 1):
        if active.numel() == 0:
            break
        ua = u[active]
        if derivatives is None:
            v, g, h = value_grad_hess(fun, ua, active)
        else:
            v, g, h = derivatives(ua, active)
        value[active] = v
        finite = torch.isfinite(v) & torch.isfinite(g).all(-1) & torch.isfinite(h).all((-1, -2))
        small_g = g.abs().amax(-1) <= gtol * (1.0 + v.abs())
        flat = (g.abs().amax(-1) == 0) & (h.abs().amax((-1, -2)) == 0)
        done = torch.where(~finite, code_of["nonfinite"], 0)
        done = torch.where(finite & small_g, code_of["gtol"], done)
        done = torch.where(finite & flat, code_of["flat"], done)
        if it == max_iter:
            done = torch.where(done == 0, code_of["max_iter"], done)
        code[active] = done
        keep = done == 0
        active, ua, v, g, h = active[keep], ua[keep], v[keep], g[keep], h[keep]
        if active.numel() == 0:
            break
        n_iter[active] += 1

        d = saddle_free_direction(g, h, delta)
        slope = (g * d).sum(-1)
        # Newton decrement λ²/2 = -gᵀd/2: the decrease still available near a minimum (Boyd &
        # Vandenberghe 2004, sec. 9.5.1). Below ftol, the full Newton step is taken without a line
        # search (the quadratic model is exact to rounding there) and the problem is done.
        close = -0.5 * slope <= ftol * (1.0 + v.abs())
        biggest = d.abs().amax(-1, keepdim=True)
        d = d * torch.where(biggest > max_step, max_step / biggest, torch.ones_like(biggest))
        slope = (g * d).sum(-1)  # < 0: descent

        alpha = torch.ones_like(v)
        accepted = close.clone()
        v_new = v.clone()
        searching = torch.arange(active.numel(), device=device)[~close]
        for _ in range(max_halvings if searching.numel() else 0):
            trial = ua[searching] + alpha[searching, None] * d[searching]
            with torch.no_grad():
                vt = fun(trial, active[searching])
            ok = torch.isfinite(vt) & (
                vt <= v[searching] + armijo * alpha[searching] * slope[searching]
            )
            hit = searching[ok]
            accepted[hit] = True
            v_new[hit] = vt[ok]
            searching = searching[~ok]
            if searching.numel() == 0:
                break
            alpha[searching] = alpha[searching] * 0.5
            # a step below xtol cannot change the answer: stop searching for those problems
            negligible = (alpha[searching, None] * d[searching]).abs().amax(-1) <= xtol * (
                1.0 + ua[searching].abs().amax(-1)
            )
            searching = searching[~negligible]
            if searching.numel() == 0:
                break
        step = alpha[:, None] * d
        u[active[accepted]] = ua[accepted] + step[accepted]
        value[active[accepted]] = v_new[accepted]

        if bool(close.any()):  # the value after the final full step, for the record
            with torch.no_grad():
                v_close = fun(ua[close] + d[close], active[close])
            v_new[close] = torch.where(torch.isfinite(v_close), v_close, v[close])
        tiny_step = step.abs().amax(-1) <= xtol * (1.0 + ua.abs().amax(-1))
        stuck = ~accepted & tiny_step
        failed = ~accepted & ~tiny_step
        done = torch.zeros_like(code[active])
        done = torch.where(close, code_of["ftol"], done)
        done = torch.where(stuck, code_of["xtol"], done)
        done = torch.where(failed, code_of["line_search"], done)
        far = u[active].abs().amax(-1) > boundary
        done = torch.where((stuck | failed) & far, code_of["boundary"], done)
        code[active] = done
        active = active[done == 0]

    reason = [REASONS[c] for c in code.cpu().tolist()]
    return NewtonResult(u=u, value=value, n_iter=n_iter, reason=reason)
